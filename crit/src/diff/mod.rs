//! `crit diff A B`: a semantic diff of two images or two dump directories.
//!
//! Entries are decoded and shown as `crit show` shows them (hex addresses,
//! flag names), then compared as trees in which entries and list elements
//! are matched by identity ([`keys::KEYS`]: VMAs by address range, fds by
//! number, files by id, tasks by pid, signal handlers by signal...), so one
//! inserted VMA is one addition. Every difference is one [`Change`] with the
//! file and the path to it:
//!
//! ```text
//! mm-42.img vmas[7f3a1000-7f3a3000].prot: PROT_READ -> PROT_READ | PROT_WRITE
//! ```
//!
//! For directories, the files present on one side only come first, then the
//! differences of each file present on both, in file name order. Memory is
//! compared through the pagemaps ([`memory`]): pages whose contents differ
//! are reported as address ranges, read a chunk at a time from both pages
//! images, so memory use does not grow with the dump.
//!
//! Invariant: a problem with one file (unreadable, undecodable) is reported
//! to the [`Sink`] and the diff goes on with the next file; the
//! [`Summary`] counts it, and the exit status is then 2, as diff(1) does.
//! Only a problem with the two paths themselves, or with the output, stops
//! the diff.
//!
//! ```
//! use crit::diff::{self, Collect, Options};
//! use criu_image::{pb, registry, ImageWriter};
//! # let dir = tempfile::tempdir()?;
//! # let write = |name: &str, pid: u32| -> Result<(), Box<dyn std::error::Error>> {
//! #     let f = std::fs::File::create(dir.path().join(name))?;
//! #     let mut w = ImageWriter::new(f, &registry::PSTREE)?;
//! #     w.write_message(&pb::PstreeEntry { pid, ppid: 0, pgid: pid, sid: pid, threads: vec![pid] })?;
//! #     w.finish()?;
//! #     Ok(())
//! # };
//! # write("a.img", 42)?;
//! # write("b.img", 43)?;
//! # let (a, b) = (dir.path().join("a.img"), dir.path().join("b.img"));
//! let mut found = Collect::default();
//! let summary = diff::diff(&a, &b, &Options::default(), &mut found)?;
//! assert_eq!(summary.exit_code(), 1);
//! assert_eq!(found.changes[0].path, "[pid=42]");
//! assert_eq!(found.changes[1].path, "[pid=43]");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod filter;
pub mod keys;
pub mod memory;
pub mod render;
pub mod tree;

use std::cmp::Ordering;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use criu_image::json::Json;
use criu_image::{registry, ImageReader};

use crate::error::{Error, Result};
pub use filter::{Filter, SAME_PROGRAM};
pub use render::{Collect, JsonOut, Sink, Text};
use tree::Walk;

/// What to compare and what to hide.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Patterns of differences not to report (see [`filter`]).
    pub ignore: Vec<String>,
    /// Hide what changes between any two dumps of one running program
    /// ([`SAME_PROGRAM`]).
    pub same_program: bool,
}

/// One difference.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The file's name (in a dump directory) or, for two files, A's name.
    pub file: String,
    /// Where in the file; empty for the file as a whole.
    pub path: String,
    /// What differs.
    pub what: What,
    /// The address range, for memory.
    pub range: Option<(u64, u64)>,
}

/// The kinds of difference.
#[derive(Debug, Clone, PartialEq)]
pub enum What {
    /// The file is in A only.
    OnlyInA,
    /// The file is in B only.
    OnlyInB,
    /// A value differs.
    Changed {
        /// A's value.
        a: Json,
        /// B's value.
        b: Json,
    },
    /// Present in B only (the value, except for set members).
    Added(Option<Json>),
    /// Present in A only.
    Removed(Option<Json>),
    /// This many pages of memory differ in contents.
    Pages(u64),
    /// A file that is not an image differs; its sizes.
    Bytes {
        /// A's size.
        a: u64,
        /// B's size.
        b: u64,
    },
}

/// The outcome of a diff.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Differences reported.
    pub differences: u64,
    /// Files that could not be compared.
    pub troubles: u64,
}

impl Summary {
    /// diff(1)'s exit status: 0 same, 1 different, 2 trouble.
    pub fn exit_code(&self) -> i32 {
        if self.troubles > 0 {
            2
        } else if self.differences > 0 {
            1
        } else {
            0
        }
    }
}

/// Why comparing one file stopped: the output failed (the diff stops), or
/// an input did (reported; the diff goes on).
#[derive(Debug)]
pub enum Fail {
    /// Writing differences failed.
    Output(Error),
    /// Reading this file failed.
    Input(PathBuf, Error),
}

/// A step of comparing one file.
pub type Step<T> = std::result::Result<T, Fail>;

/// Compares two images, two dump directories, or an image with the image of
/// the same name in a directory, and sends the differences to `sink`.
pub fn diff(a: &Path, b: &Path, opts: &Options, sink: &mut dyn Sink) -> Result<Summary> {
    let filter = Filter::new(&opts.ignore, opts.same_program);
    let meta = |p: &Path| {
        fs::metadata(p).map_err(|source| Error::Io {
            context: p.display().to_string(),
            source,
        })
    };
    let (ma, mb) = (meta(a)?, meta(b)?);
    let mut summary = Summary::default();
    let mut run = Run {
        filter: &filter,
        sink,
        summary: &mut summary,
    };
    match (ma.is_dir(), mb.is_dir()) {
        (true, true) => run.dirs(a, b)?,
        (false, false) => run.file(a, b, &file_name(a))?,
        (true, false) => {
            let name = file_name(b);
            let pa = a.join(&name);
            meta(&pa)?;
            run.file(&pa, b, &name)?;
        }
        (false, true) => {
            let name = file_name(a);
            let pb = b.join(&name);
            meta(&pb)?;
            run.file(a, &pb, &name)?;
        }
    }
    sink.finish(&summary)?;
    Ok(summary)
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn parent(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

struct Run<'a> {
    filter: &'a Filter,
    sink: &'a mut dyn Sink,
    summary: &'a mut Summary,
}

impl Run<'_> {
    fn dirs(&mut self, a: &Path, b: &Path) -> Result<()> {
        let (la, lb) = (list(a)?, list(b)?);
        let only = |from: &[String], other: &[String]| -> Vec<String> {
            from.iter()
                .filter(|n| other.binary_search_by(|o| natural(o, n)).is_err())
                .cloned()
                .collect()
        };
        for (names, what) in [
            (only(&la, &lb), What::OnlyInA),
            (only(&lb, &la), What::OnlyInB),
        ] {
            for name in names {
                if self.filter.file(&name) {
                    continue;
                }
                self.summary.differences += 1;
                self.sink.change(&Change {
                    file: name,
                    path: String::new(),
                    what: what.clone(),
                    range: None,
                })?;
            }
        }
        for name in la
            .iter()
            .filter(|n| lb.binary_search_by(|o| natural(o, n)).is_ok())
        {
            // raw pages are compared through the pagemaps that point to them
            if name.starts_with("pages-") && registry::is_raw_file(name) {
                continue;
            }
            self.file(&a.join(name), &b.join(name), name)?;
        }
        Ok(())
    }

    /// Compares one file; a problem with it is reported and counted.
    fn file(&mut self, a: &Path, b: &Path, name: &str) -> Result<()> {
        if self.filter.file(name) {
            return Ok(());
        }
        let mut w = Walk {
            file: name,
            filter: self.filter,
            sink: &mut *self.sink,
            count: 0,
            troubles: 0,
        };
        let res = compare_file(&mut w, a, b, name);
        let (count, mut troubles) = (w.count, w.troubles);
        match res {
            Ok(()) => {}
            Err(Fail::Output(e)) => return Err(e),
            Err(Fail::Input(path, e)) => {
                troubles += 1;
                self.sink.trouble(&path, &e)?;
            }
        }
        self.summary.differences += count;
        self.summary.troubles += troubles;
        Ok(())
    }
}

/// The regular files of a directory (following symlinks), in natural order;
/// subdirectories (such as a `parent` link of incremental dumps) are left out.
fn list(dir: &Path) -> Result<Vec<String>> {
    let io = |source| Error::Io {
        context: dir.display().to_string(),
        source,
    };
    let rd = fs::read_dir(dir).map_err(io)?;
    let mut names = Vec::new();
    for entry in rd {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        if fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort_by(|x, y| natural(x, y));
    Ok(names)
}

/// Orders names with their numbers compared as numbers: core-9 < core-10.
pub fn natural(x: &str, y: &str) -> Ordering {
    let (mut xs, mut ys) = (x.as_bytes(), y.as_bytes());
    loop {
        match (xs.first(), ys.first()) {
            (None, None) => return x.cmp(y),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(a), Some(b)) if a.is_ascii_digit() && b.is_ascii_digit() => {
                let na = xs.iter().take_while(|c| c.is_ascii_digit()).count();
                let nb = ys.iter().take_while(|c| c.is_ascii_digit()).count();
                let (da, db) = (&xs[..na], &ys[..nb]);
                let trim = |d: &[u8]| -> usize { d.iter().take_while(|&&c| c == b'0').count() };
                let (ta, tb) = (&da[trim(da)..], &db[trim(db)..]);
                let ord = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb));
                if ord != Ordering::Equal {
                    return ord;
                }
                xs = &xs[na..];
                ys = &ys[nb..];
            }
            (Some(a), Some(b)) => {
                if a != b {
                    return a.cmp(b);
                }
                xs = &xs[1..];
                ys = &ys[1..];
            }
        }
    }
}

fn open_image(path: &Path) -> Result<ImageReader<BufReader<File>>> {
    let f = File::open(path).map_err(|source| Error::Io {
        context: format!("opening {}", path.display()),
        source,
    })?;
    Ok(ImageReader::new(BufReader::with_capacity(1 << 16, f))?)
}

fn compare_file(w: &mut Walk<'_>, a: &Path, b: &Path, name: &str) -> Step<()> {
    let input = |p: &Path| {
        let p = p.to_path_buf();
        move |e: Error| Fail::Input(p.clone(), e)
    };
    if registry::is_raw_file(name) {
        return compare_bytes(w, a, b);
    }
    let (ra, rb) = match (open_image(a), open_image(b)) {
        (Ok(ra), Ok(rb)) => (ra, rb),
        // not named like an image and not one: a log, a tarball, notes...
        (Err(ea), Err(eb))
            if registry::by_file_name(name).is_none() && not_image(&ea) && not_image(&eb) =>
        {
            return compare_bytes(w, a, b)
        }
        (Err(e), _) => return Err(input(a)(e)),
        (_, Err(e)) => return Err(input(b)(e)),
    };
    let (da, db) = (ra.desc(), rb.desc());
    if da.name != db.name {
        let s = |n: &str| Json::Str(n.as_bytes().to_vec());
        return w
            .emit(
                "magic",
                What::Changed {
                    a: s(da.name),
                    b: s(db.name),
                },
                None,
            )
            .map_err(Fail::Output);
    }
    if *da == registry::PAGEMAP {
        drop((ra, rb));
        return memory::diff(w, (a, parent(a)), (b, parent(b)));
    }
    let read = |r: ImageReader<BufReader<File>>, p: &Path| -> Step<Vec<Json>> {
        let desc = r.desc();
        r.map(|e| e.and_then(|e| tree::entry_json(desc, &e)))
            .collect::<criu_image::Result<Vec<_>>>()
            .map_err(|e| input(p)(e.into()))
    };
    let (la, lb) = (read(ra, a)?, read(rb, b)?);
    w.entries(da, &la, &lb).map_err(Fail::Output)
}

/// The file does not start with a magic crit knows (or is too short to).
fn not_image(e: &Error) -> bool {
    use criu_image::Error as E;
    matches!(
        e,
        Error::Image(
            E::UnknownMagic { .. } | E::NotAnImage { .. } | E::Truncated { offset: 0..=4, .. }
        )
    )
}

/// Compares two files that are not images, byte for byte, streaming.
fn compare_bytes(w: &mut Walk<'_>, a: &Path, b: &Path) -> Step<()> {
    let io = |p: &Path, what: &str| {
        let (p, what) = (p.to_path_buf(), what.to_owned());
        move |source| {
            let context = format!("{what} {}", p.display());
            Fail::Input(p, Error::Io { context, source })
        }
    };
    let open = |p: &Path| -> Step<(File, u64)> {
        let f = File::open(p).map_err(io(p, "opening"))?;
        let len = f
            .metadata()
            .map_err(io(p, "reading the metadata of"))?
            .len();
        Ok((f, len))
    };
    let ((mut fa, sa), (mut fb, sb)) = (open(a)?, open(b)?);
    let same = sa == sb && {
        let mut ba = vec![0u8; 1 << 16];
        let mut bb = vec![0u8; 1 << 16];
        loop {
            let na = read_full(&mut fa, &mut ba).map_err(io(a, "reading"))?;
            let nb = read_full(&mut fb, &mut bb).map_err(io(b, "reading"))?;
            if ba[..na] != bb[..nb] {
                break false;
            }
            if na == 0 {
                break true;
            }
        }
    };
    if same {
        return Ok(());
    }
    w.emit("", What::Bytes { a: sa, b: sb }, None)
        .map_err(Fail::Output)
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn read_full(f: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::natural;
    use std::cmp::Ordering;

    #[test]
    fn natural_order() {
        assert_eq!(natural("core-9.img", "core-10.img"), Ordering::Less);
        assert_eq!(natural("core-10.img", "core-9.img"), Ordering::Greater);
        assert_eq!(natural("core-1.img", "core-1.img"), Ordering::Equal);
        assert_eq!(natural("a", "b"), Ordering::Less);
        assert_eq!(natural("fdinfo-2.img", "files.img"), Ordering::Less);
        assert_eq!(natural("core-01", "core-1"), Ordering::Less);
    }
}
