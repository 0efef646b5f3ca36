//! The images of a dump: one module per CRIU image, each with pure `build*`
//! functions that turn gathered facts ([`crate::collect`](mod@crate::collect)) into the image's
//! messages (tested without ptrace); [`build`] makes every image of one
//! process but its pages; [`ImageSet`] writes them.
//!
//! Image kinds and file names come from the registry
//! ([`criu_image::registry`]): [`Image::new`] names a file after its kind's
//! pattern and id (`core-TID.img`, `fdinfo-FILES_ID.img`), and the pages
//! image is [`registry::pages_file_name`]`(`[`PAGES_ID`]`)`, the id the
//! pagemap head points to.
//!
//! [`ImageSet`] keeps a failed dump from destroying an older one: images
//! are written into a private staging directory inside the images
//! directory and moved into place only when the whole dump has succeeded
//! ([`ImageSet::commit`]), inventory.img last; see its docs for the order.

pub mod core;
pub mod files;
pub mod ids;
pub mod inventory;
pub mod mm;
pub mod pagemap;
pub mod pstree;
pub mod seccomp;
pub mod stats;

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use criu_image::registry::{self, Head};
use criu_image::{pb, ImageDesc, ImageWriter};

use crate::collect::{ProcFacts, ThreadFacts};
use crate::error::{DumpError, Result};

/// The id of the pages image of a process (`pagemap_head.pages_id`, and
/// the `N` of `pages-N.img`). CRIU numbers pages images per dump from 1; a
/// dump of one process has one.
pub const PAGES_ID: u32 = 1;

/// The id CRIU gives the dumped process's vm, files, fs and sighand
/// objects (its own are 1): ids-PID.img holds it, and the fds are in
/// `fdinfo-<it>.img`.
pub const TASK_OBJ_ID: u32 = 2;

/// The file name of image `desc` for `id` (the pid, tid or object id its
/// pattern takes; ignored by kinds with one file per dump).
pub fn file_name(desc: &ImageDesc, id: u64) -> String {
    // Every kind the dumper writes has a file pattern (see the tests); the
    // kind's name is only a fallback that is never used.
    desc.file_name(id)
        .unwrap_or_else(|| desc.name.to_ascii_lowercase())
}

/// One image file: its kind, its file name, its entries.
#[derive(Debug, Clone, PartialEq)]
pub struct Image<M> {
    /// The kind.
    pub desc: &'static ImageDesc,
    /// The file name, from the kind's pattern.
    pub name: String,
    /// The messages, in order.
    pub entries: Vec<M>,
}

impl<M> Image<M> {
    /// An image of kind `desc` named after `id` (the pid, tid or object id
    /// its pattern takes; ignored by kinds with one file per dump).
    pub fn new(desc: &'static ImageDesc, id: u64, entries: Vec<M>) -> Self {
        Image {
            desc,
            name: file_name(desc, id),
            entries,
        }
    }

    /// An image holding one message.
    pub fn one(desc: &'static ImageDesc, id: u64, entry: M) -> Self {
        Self::new(desc, id, vec![entry])
    }
}

/// The images of one process but its pages (which are streamed from the
/// task) and inventory.img (written last, by the caller).
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessImages {
    /// core-TID.img, one per thread, leader first.
    pub cores: Vec<Image<pb::CoreEntry>>,
    /// mm-PID.img; its VMAs say which pages are dumped.
    pub mm: Image<pb::MmEntry>,
    /// fs-PID.img.
    pub fs: Image<pb::FsEntry>,
    /// ids-PID.img.
    pub ids: Image<pb::TaskKobjIdsEntry>,
    /// pstree.img.
    pub pstree: Image<pb::PstreeEntry>,
    /// files.img.
    pub files: Image<pb::FileEntry>,
    /// fdinfo-N.img, N being the files id in ids-PID.img.
    pub fdinfo: Image<pb::FdinfoEntry>,
    /// seccomp.img.
    pub seccomp: Image<pb::SeccompEntry>,
    /// timens-0.img.
    pub timens: Image<pb::TimensEntry>,
}

impl ProcessImages {
    /// The VMAs of mm-PID.img.
    pub fn vmas(&self) -> &[pb::VmaEntry] {
        self.mm.entries.first().map_or(&[], |m| &m.vmas)
    }
}

/// Builds every image of a process from its facts (`threads` leader
/// first), the CPU's XSAVE layout and the clocks read at dump time.
pub fn build(
    p: &ProcFacts,
    threads: &[ThreadFacts],
    layout: &core::XsaveLayout,
    clocks: pb::TimensEntry,
) -> ProcessImages {
    let pid = p.pid as u64;
    // files.img ids are given in CRIU's order: mapped files, fds, exe,
    // cwd and root (see files.rs).
    let mut table = files::FileTable::new();
    let vmas = mm::build_vmas(&p.mappings, |mf| match &mf.file {
        Some((f, _)) => table.special(f),
        None => 0,
    });
    let fdinfo = table.fds(&p.fds);
    let exe_id = table.special(&p.exe);
    let fs = files::fs_entry(&mut table, p);
    let ids = ids::build(TASK_OBJ_ID);
    let tids: Vec<i32> = threads.iter().map(|t| t.tid).collect();
    ProcessImages {
        cores: threads
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let leader = (i == 0).then_some(p);
                Image::one(
                    &registry::CORE,
                    t.tid as u64,
                    core::build(t, leader, layout),
                )
            })
            .collect(),
        mm: Image::one(&registry::MM, pid, mm::build(p, vmas, exe_id)),
        fs: Image::one(&registry::FS, pid, fs),
        fdinfo: Image::new(&registry::FDINFO, ids.files_id.into(), fdinfo),
        ids: Image::one(&registry::IDS, pid, ids),
        pstree: Image::one(&registry::PSTREE, 0, pstree::build(p, &tids)),
        files: Image::new(&registry::FILES, 0, table.entries),
        seccomp: Image::one(&registry::SECCOMP, 0, seccomp::seccomp()),
        // A task in the dumper's time namespace: CRIU writes the clocks
        // as timens-0.img (cr-dump.c, `dump_time_ns(0)`).
        timens: Image::one(&registry::TIMENS, 0, clocks),
    }
}

/// The pagemap image of a plan: its head points to the pages image
/// [`PAGES_ID`].
pub fn pagemap_head() -> pb::PagemapHead {
    pb::PagemapHead { pages_id: PAGES_ID }
}

/// The stats-dump image.
pub fn stats_image(entry: pb::StatsEntry) -> Image<pb::StatsEntry> {
    Image {
        desc: &registry::STATS,
        name: registry::STATS.file_name_with("dump"),
        entries: vec![entry],
    }
}

/// A file name in the images directory that is one of CRIU's images
/// (`core-7.img`, `pages-1.img`, `stats-dump`...), as opposed to a log or
/// anything else a user keeps there.
pub fn is_image_name(name: &str) -> bool {
    let img = name.ends_with(".img");
    match registry::by_file_name(name) {
        Some(d) if d.head == Head::Service => !img,
        Some(_) => img,
        None => img && registry::is_raw_file(name),
    }
}

/// The image files of one dump.
///
/// Files are created 0600 in a staging directory (0700) made inside the
/// images directory, so that renaming them into place is atomic and a dump
/// that fails (or is dropped without [`ImageSet::commit`]) leaves the
/// directory as it found it: the staging directory is removed with
/// everything in it.
#[derive(Debug)]
pub struct ImageSet {
    dir: PathBuf,
    staging: PathBuf,
    /// File names written in the staging directory and not yet moved.
    written: Vec<String>,
    committed: bool,
    /// After the commit: where the old dump went, removed on drop.
    old: Option<PathBuf>,
    /// Bytes written so far.
    pub bytes: u64,
}

/// An open image being written.
pub type Writer = ImageWriter<BufWriter<File>>;

/// Makes a directory `.dumper-PID[-N].KIND` in `dir` that no one else
/// uses, readable by us only.
fn private_dir(dir: &Path, kind: &str) -> Result<PathBuf> {
    let me = std::process::id();
    let mut n = 0u32;
    loop {
        let name = match n {
            0 => format!(".dumper-{me}.{kind}"),
            _ => format!(".dumper-{me}-{n}.{kind}"),
        };
        let path = dir.join(name);
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
            Err(source) => {
                return Err(DumpError::OutputDir {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|source| DumpError::Write {
        path: to.to_path_buf(),
        source,
    })
}

impl ImageSet {
    /// Checks that `dir` is a directory we can create files in (by making
    /// the staging directory there), before anything is done to the target.
    pub fn open(dir: &Path) -> Result<Self> {
        let md = std::fs::metadata(dir).map_err(|source| DumpError::OutputDir {
            path: dir.to_path_buf(),
            source,
        })?;
        if !md.is_dir() {
            return Err(DumpError::OutputDir {
                path: dir.to_path_buf(),
                source: std::io::Error::from(std::io::ErrorKind::NotADirectory),
            });
        }
        let staging = private_dir(dir, "new")?;
        Ok(Self {
            dir: dir.to_path_buf(),
            staging,
            written: Vec::new(),
            committed: false,
            old: None,
            bytes: 0,
        })
    }

    /// The images directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn create_file(&mut self, name: &str) -> Result<(PathBuf, File)> {
        let path = self.staging.join(name);
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| DumpError::Write {
                path: self.dir.join(name),
                source,
            })?;
        self.written.push(name.to_owned());
        Ok((path, f))
    }

    /// A file is complete: count it, and after the commit move it into
    /// place at once.
    fn done(&mut self, path: &Path, f: &File) -> Result<()> {
        self.bytes += f.metadata().map(|m| m.len()).unwrap_or(0);
        if self.committed {
            if let Some(name) = path.file_name() {
                rename(path, &self.dir.join(name))?;
                self.written.retain(|n| std::ffi::OsStr::new(n) != name);
            }
        }
        Ok(())
    }

    /// Starts image `name` of kind `desc`; returns the path it is written to.
    pub fn create(&mut self, desc: &'static ImageDesc, name: &str) -> Result<(PathBuf, Writer)> {
        let (path, f) = self.create_file(name)?;
        let w = ImageWriter::new(BufWriter::new(f), desc).map_err(|source| DumpError::Image {
            path: self.dir.join(name),
            source,
        })?;
        Ok((path, w))
    }

    /// Finishes an image started with [`ImageSet::create`].
    pub fn finish(&mut self, path: &Path, w: Writer) -> Result<()> {
        let shown = self.shown(path);
        let buf = w.finish().map_err(|source| DumpError::Image {
            path: shown.clone(),
            source,
        })?;
        let f = buf.into_inner().map_err(|e| DumpError::Write {
            path: shown,
            source: e.into_error(),
        })?;
        self.done(path, &f)
    }

    /// The path under which a staged file is shown in errors: where it
    /// goes, not where it is written.
    fn shown(&self, staged: &Path) -> PathBuf {
        staged
            .file_name()
            .map_or_else(|| self.dir.clone(), |n| self.dir.join(n))
    }

    /// Writes an image.
    pub fn write<M: prost::Message>(&mut self, img: &Image<M>) -> Result<()> {
        let (path, mut w) = self.create(img.desc, &img.name)?;
        for m in &img.entries {
            w.write_message(m).map_err(|source| DumpError::Image {
                path: self.dir.join(&img.name),
                source,
            })?;
        }
        self.finish(&path, w)
    }

    /// Starts a raw file (pages-N.img).
    pub fn create_raw(&mut self, name: &str) -> Result<(PathBuf, BufWriter<File>)> {
        let (path, f) = self.create_file(name)?;
        Ok((path, BufWriter::with_capacity(1 << 20, f)))
    }

    /// Flushes a raw file.
    pub fn finish_raw(&mut self, path: &Path, mut w: BufWriter<File>) -> Result<()> {
        let shown = self.shown(path);
        w.flush().map_err(|source| DumpError::Write {
            path: shown.clone(),
            source,
        })?;
        let f = w.into_inner().map_err(|e| DumpError::Write {
            path: shown,
            source: e.into_error(),
        })?;
        self.done(path, &f)
    }

    /// The dump is complete: writes `inventory` and puts the new images in
    /// place of whatever dump the directory held.
    ///
    /// The order keeps the directory from ever looking like a complete dump
    /// that is not one, even if the dumper is killed half way: the old
    /// inventory.img is moved out first (from then on the directory is not
    /// a complete dump), then the rest of the old dump's images (any file
    /// named like a CRIU image, so that no `core-OLDTID.img` stays), then
    /// the new images, and the new inventory.img last. The old images go to
    /// a `.dumper-PID.old` directory beside the staging one: if a rename
    /// fails, everything is moved back and the old dump is as it was; on
    /// success that directory is removed when the set is dropped. Files
    /// that are not images (logs) are left alone.
    pub fn commit(&mut self, inventory: &Image<pb::InventoryEntry>) -> Result<()> {
        self.commit_with(inventory, || Ok(()))
    }

    /// [`ImageSet::commit`], calling `midway` when half of the new images
    /// are in place (the fault-injection tests fail or die there).
    pub fn commit_with(
        &mut self,
        inventory: &Image<pb::InventoryEntry>,
        midway: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        self.write(inventory)?;
        let old = private_dir(&self.dir, "old")?;
        let mut moved_out: Vec<String> = Vec::new();
        let mut moved_in: Vec<String> = Vec::new();
        let res = self.swap(&inventory.name, &old, &mut moved_out, &mut moved_in, midway);
        if res.is_err() {
            self.roll_back(&inventory.name, &old, &moved_out, &moved_in);
            return res;
        }
        self.committed = true;
        self.written.clear();
        // The old dump is out of the directory; its files are removed on
        // drop, when the task is no longer stopped (unlinking a big pages
        // image takes a while).
        self.old = Some(old);
        Ok(())
    }

    fn swap(
        &self,
        inventory: &str,
        old: &Path,
        moved_out: &mut Vec<String>,
        moved_in: &mut Vec<String>,
        midway: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let dir = &self.dir;
        let out = |name: &str, moved_out: &mut Vec<String>| -> Result<()> {
            rename(&dir.join(name), &old.join(name))?;
            moved_out.push(name.to_owned());
            Ok(())
        };
        if std::fs::symlink_metadata(dir.join(inventory)).is_ok() {
            out(inventory, moved_out)?;
        }
        let entries = std::fs::read_dir(dir).map_err(|source| DumpError::OutputDir {
            path: dir.clone(),
            source,
        })?;
        let mut olds = Vec::new();
        for e in entries {
            let e = e.map_err(|source| DumpError::OutputDir {
                path: dir.clone(),
                source,
            })?;
            let is_file = e.file_type().is_ok_and(|t| t.is_file());
            if let Some(name) = e.file_name().to_str() {
                if is_file && is_image_name(name) {
                    olds.push(name.to_owned());
                }
            }
        }
        olds.sort();
        for name in &olds {
            out(name, moved_out)?;
        }
        let news: Vec<&String> = self.written.iter().filter(|n| *n != inventory).collect();
        let mut midway = Some(midway);
        for (i, name) in news.iter().enumerate() {
            if i == news.len() / 2 {
                if let Some(f) = midway.take() {
                    f()?;
                }
            }
            rename(&self.staging.join(name), &dir.join(name))?;
            moved_in.push((*name).clone());
        }
        rename(&self.staging.join(inventory), &dir.join(inventory))?;
        moved_in.push(inventory.to_owned());
        Ok(())
    }

    /// Undoes a commit that failed: the new images back to the staging
    /// directory (removed with it), the old ones back in place, inventory
    /// last. Whatever cannot be moved back stays in `old`, which is then
    /// not removed.
    fn roll_back(&self, inventory: &str, old: &Path, moved_out: &[String], moved_in: &[String]) {
        for name in moved_in.iter().rev() {
            let at = self.dir.join(name);
            if std::fs::rename(&at, self.staging.join(name)).is_err() {
                let _ = std::fs::remove_file(&at);
            }
        }
        let back = |name: &String| {
            let _ = std::fs::rename(old.join(name), self.dir.join(name));
        };
        moved_out.iter().filter(|n| *n != inventory).for_each(back);
        moved_out.iter().filter(|n| *n == inventory).for_each(back);
        let _ = std::fs::remove_dir(old);
    }
}

impl Drop for ImageSet {
    fn drop(&mut self) {
        // Before the commit: the images of a failed dump. After it: at most
        // a file written after the commit that failed.
        let _ = std::fs::remove_dir_all(&self.staging);
        if let Some(old) = &self.old {
            let _ = std::fs::remove_dir_all(old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_from_the_registry() {
        assert_eq!(
            Image::<()>::new(&registry::CORE, 42, vec![]).name,
            "core-42.img"
        );
        assert_eq!(
            Image::<()>::new(&registry::PSTREE, 0, vec![]).name,
            "pstree.img"
        );
        assert_eq!(
            Image::<()>::new(&registry::FDINFO, TASK_OBJ_ID.into(), vec![]).name,
            "fdinfo-2.img"
        );
        assert_eq!(stats_image(pb::StatsEntry::default()).name, "stats-dump");
        assert_eq!(
            registry::pages_file_name(PAGES_ID.into()),
            "pages-1.img",
            "the name CRIU gives the pages image pagemap_head.pages_id names"
        );
        for d in [
            &registry::CORE,
            &registry::MM,
            &registry::FS,
            &registry::IDS,
            &registry::PSTREE,
            &registry::FILES,
            &registry::FDINFO,
            &registry::SECCOMP,
            &registry::TIMENS,
            &registry::PAGEMAP,
            &registry::INVENTORY,
        ] {
            let name = d.file_name(7).expect("a file name pattern");
            assert_eq!(registry::by_file_name(&name), Some(d), "{name}");
            assert!(is_image_name(&name), "{name}");
        }
    }

    #[test]
    fn what_counts_as_an_image() {
        for n in [
            "core-1.img",
            "inventory.img",
            "pages-3.img",
            "stats-dump",
            "stats-restore",
            "tmpfs-dev-5.tar.gz.img",
        ] {
            assert!(is_image_name(n), "{n}");
        }
        for n in [
            "dump.log",
            "restore.log",
            "notes.img",
            "core-1",
            "tty",
            "stats-dump.img",
        ] {
            assert!(!is_image_name(n), "{n}");
        }
    }

    fn inventory() -> Image<pb::InventoryEntry> {
        Image::one(&registry::INVENTORY, 0, inventory::build(0, "run".into()))
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    fn old_dump(dir: &Path) {
        for n in ["core-9.img", "inventory.img", "pages-1.img", "stats-dump"] {
            std::fs::write(dir.join(n), format!("old {n}")).unwrap();
        }
        std::fs::write(dir.join("dump.log"), "log").unwrap();
    }

    fn new_dump(set: &mut ImageSet) {
        set.write(&Image::one(&registry::CORE, 5, pb::CoreEntry::default()))
            .unwrap();
        let (p, mut w) = set.create_raw("pages-1.img").unwrap();
        w.write_all(b"new pages").unwrap();
        set.finish_raw(&p, w).unwrap();
    }

    #[test]
    fn commit_replaces_the_old_dump_and_keeps_other_files() {
        let d = tempfile::tempdir().unwrap();
        old_dump(d.path());
        let mut set = ImageSet::open(d.path()).unwrap();
        new_dump(&mut set);
        set.commit(&inventory()).unwrap();
        set.write(&stats_image(pb::StatsEntry::default())).unwrap();
        drop(set);
        assert_eq!(
            names(d.path()),
            [
                "core-5.img",
                "dump.log",
                "inventory.img",
                "pages-1.img",
                "stats-dump"
            ]
        );
        assert_eq!(
            std::fs::read(d.path().join("pages-1.img")).unwrap(),
            b"new pages"
        );
        assert_eq!(std::fs::read(d.path().join("dump.log")).unwrap(), b"log");
        use std::os::unix::fs::PermissionsExt;
        for n in names(d.path()).iter().filter(|n| *n != "dump.log") {
            let mode = std::fs::metadata(d.path().join(n))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{n}");
        }
    }

    #[test]
    fn failed_commit_puts_the_old_dump_back() {
        let d = tempfile::tempdir().unwrap();
        old_dump(d.path());
        let before: Vec<(String, Vec<u8>)> = names(d.path())
            .into_iter()
            .map(|n| (n.clone(), std::fs::read(d.path().join(&n)).unwrap()))
            .collect();
        let mut set = ImageSet::open(d.path()).unwrap();
        new_dump(&mut set);
        let e = set
            .commit_with(&inventory(), || {
                Err(DumpError::FaultInjected {
                    at: "while committing",
                })
            })
            .unwrap_err();
        assert!(matches!(e, DumpError::FaultInjected { .. }));
        drop(set);
        let after: Vec<(String, Vec<u8>)> = names(d.path())
            .into_iter()
            .map(|n| (n.clone(), std::fs::read(d.path().join(&n)).unwrap()))
            .collect();
        assert_eq!(after, before);
    }

    #[test]
    fn dropped_set_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let mut set = ImageSet::open(d.path()).unwrap();
        new_dump(&mut set);
        drop(set);
        assert!(names(d.path()).is_empty());
    }
}
