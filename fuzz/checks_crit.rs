//! What the `crit x` / `crit diff` fuzz target checks, in one place: the
//! target (`fuzz_targets/explore_diff.rs`) calls it, and so does the
//! stable-toolchain smoke test (`crit/tests/fuzz.rs` includes this file).
//! Any bytes are split into the images of two small dumps, written to a
//! temporary directory; every view of `crit x` runs over the first, `crit
//! diff` compares the two. Bad images must give errors, never a panic, and
//! the text `x` writes goes nowhere.

use std::fs;
use std::io;
use std::path::Path;

use crit::diff::{self, Collect, Options};
use crit::explore::{self, View};
use criu_image::{pb, registry, ImageReader};

/// The images of one dump, in the order the input gives them.
pub const PARTS: [&str; 9] = [
    "pstree", "core", "ids", "fdinfo", "fs", "mm", "pagemap", "pages", "files",
];

/// What separates the images in the input.
pub const SEP: &[u8] = b"\n--crit--\n";

/// At most this many tasks get their own images.
const TASKS: usize = 4;

/// Any bytes as two dumps: `x` over the first, `diff` of the two.
pub fn explore_diff(data: &[u8]) {
    let parts = split(data);
    let Ok(d) = tempfile::tempdir() else {
        return;
    };
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    let none: &[&[u8]] = &[];
    if write_dump(&a, parts.get(..PARTS.len()).unwrap_or(&parts)).is_err()
        || write_dump(&b, parts.get(PARTS.len()..).unwrap_or(none)).is_err()
    {
        return;
    }
    for view in [View::Ps, View::Fds, View::Mems, View::Rss] {
        let _ = explore::explore(&a, view, &mut io::sink());
    }
    for same_program in [false, true] {
        let opts = Options {
            ignore: vec!["fs-*.img".to_owned()],
            same_program,
        };
        let _ = diff::diff(&a, &b, &opts, &mut Collect::default());
    }
}

fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while parts.len() < 2 * PARTS.len() {
        match rest.windows(SEP.len()).position(|w| w == SEP) {
            Some(i) => {
                parts.push(&rest[..i]);
                rest = &rest[i + SEP.len()..];
            }
            None => {
                parts.push(rest);
                break;
            }
        }
    }
    parts
}

/// The entries of an image as `M`, as far as they decode.
fn entries<M: prost::Message + prost::Name + Default>(img: &[u8]) -> Vec<M> {
    let Ok(mut r) = ImageReader::new(img) else {
        return Vec::new();
    };
    r.entries_as::<M>()
        .map_while(|e| e.ok().map(|e| e.message))
        .collect()
}

/// Writes a dump's images under CRIU's names: the per-task ones for each
/// task pstree.img names (at most [`TASKS`]), fdinfo and pages under the
/// ids the images give.
fn write_dump(dir: &Path, parts: &[&[u8]]) -> io::Result<()> {
    fs::create_dir(dir)?;
    let part = |name: &str| {
        PARTS
            .iter()
            .position(|p| *p == name)
            .and_then(|i| parts.get(i))
            .copied()
    };
    let mut pids: Vec<u32> = entries::<pb::PstreeEntry>(part("pstree").unwrap_or_default())
        .iter()
        .map(|p| p.pid)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids.truncate(TASKS);
    let files_id = entries::<pb::TaskKobjIdsEntry>(part("ids").unwrap_or_default())
        .first()
        .map_or(1, |i| i.files_id);
    let pages_id = part("pagemap")
        .and_then(|img| ImageReader::new(img).ok()?.next_as::<pb::PagemapHead>())
        .and_then(|h| h.ok())
        .map_or(1, |h| h.message.pages_id);
    let mut names: Vec<(String, &str)> = vec![
        ("pstree.img".to_owned(), "pstree"),
        ("files.img".to_owned(), "files"),
        (registry::pages_file_name(pages_id.into()), "pages"),
        (
            registry::FDINFO
                .file_name(files_id.into())
                .unwrap_or_default(),
            "fdinfo",
        ),
    ];
    for pid in &pids {
        for (kind, part) in [
            (&registry::CORE, "core"),
            (&registry::IDS, "ids"),
            (&registry::FS, "fs"),
            (&registry::MM, "mm"),
            (&registry::PAGEMAP, "pagemap"),
        ] {
            names.push((kind.file_name((*pid).into()).unwrap_or_default(), part));
        }
    }
    for (name, p) in names {
        if let Some(bytes) = part(p) {
            fs::write(dir.join(name), bytes)?;
        }
    }
    Ok(())
}

/// An input made of two dumps on disk (the fixtures), the pages cut to
/// `max_pages` bytes so that inputs stay small.
pub fn seed(a: &Path, b: &Path, max_pages: usize) -> Vec<u8> {
    let mut input = Vec::new();
    for (side, dir) in [a, b].into_iter().enumerate() {
        let read = |name: &str| fs::read(dir.join(name)).unwrap_or_default();
        let tree = read("pstree.img");
        let pid = entries::<pb::PstreeEntry>(&tree)
            .first()
            .map_or(1, |p| p.pid);
        let task =
            |kind: &registry::ImageDesc| read(&kind.file_name(pid.into()).unwrap_or_default());
        let ids = task(&registry::IDS);
        let files_id = entries::<pb::TaskKobjIdsEntry>(&ids)
            .first()
            .map_or(1, |i| i.files_id);
        let pagemap = task(&registry::PAGEMAP);
        let pages_id = ImageReader::new(pagemap.as_slice())
            .ok()
            .and_then(|mut r| r.next_as::<pb::PagemapHead>())
            .and_then(|h| h.ok())
            .map_or(1, |h| h.message.pages_id);
        let mut pages = read(&registry::pages_file_name(pages_id.into()));
        pages.truncate(max_pages);
        let fdinfo = read(
            &registry::FDINFO
                .file_name(files_id.into())
                .unwrap_or_default(),
        );
        let images = [
            tree,
            task(&registry::CORE),
            ids,
            fdinfo,
            task(&registry::FS),
            task(&registry::MM),
            pagemap,
            pages,
            read("files.img"),
        ];
        for (i, img) in images.iter().enumerate() {
            if side > 0 || i > 0 {
                input.extend_from_slice(SEP);
            }
            input.extend_from_slice(img);
        }
    }
    input
}
