//! The images of a dump: one module per CRIU image, each with pure `build*`
//! functions that turn gathered facts ([`crate::facts`]) into the image's
//! messages (tested without ptrace); [`build`] makes every image of one
//! process but its pages; [`ImageSet`] writes them.
//!
//! Image kinds and file names come from the registry
//! ([`criu_image::registry`]): [`Image::new`] names a file after its kind's
//! pattern and id (`core-TID.img`, `fdinfo-FILES_ID.img`), and the pages
//! image is [`registry::pages_file_name`]`(`[`PAGES_ID`]`)`, the id the
//! pagemap head points to.

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
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use criu_image::registry;
use criu_image::{pb, ImageDesc, ImageWriter};

use crate::error::{DumpError, Result};
use crate::facts::{ProcFacts, ThreadFacts};

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

/// The image files of one dump. Files are created 0600; if the dump fails,
/// dropping the set without [`ImageSet::commit`] removes every file it
/// created, so a failed dump leaves no partial image set.
#[derive(Debug)]
pub struct ImageSet {
    dir: PathBuf,
    created: Vec<PathBuf>,
    committed: bool,
    /// Bytes written so far.
    pub bytes: u64,
}

/// An open image being written.
pub type Writer = ImageWriter<BufWriter<File>>;

impl ImageSet {
    /// Checks that `dir` is a writable directory (by creating and removing
    /// a probe file) before anything is done to the target.
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
        let probe = dir.join(format!(".dumper-probe-{}", std::process::id()));
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&probe)
            .map_err(|source| DumpError::OutputDir {
                path: dir.to_path_buf(),
                source,
            })?;
        let _ = std::fs::remove_file(&probe);
        Ok(Self {
            dir: dir.to_path_buf(),
            created: Vec::new(),
            committed: false,
            bytes: 0,
        })
    }

    /// The images directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn create_file(&mut self, name: &str) -> Result<(PathBuf, File)> {
        let path = self.dir.join(name);
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| DumpError::Write {
                path: path.clone(),
                source,
            })?;
        self.created.push(path.clone());
        Ok((path, f))
    }

    /// Starts image `name` of kind `desc`; returns the path it is written to.
    pub fn create(&mut self, desc: &'static ImageDesc, name: &str) -> Result<(PathBuf, Writer)> {
        let (path, f) = self.create_file(name)?;
        let w = ImageWriter::new(BufWriter::new(f), desc).map_err(|source| DumpError::Image {
            path: path.clone(),
            source,
        })?;
        Ok((path, w))
    }

    /// Finishes an image started with [`ImageSet::create`].
    pub fn finish(&mut self, path: &Path, w: Writer) -> Result<()> {
        let buf = w.finish().map_err(|source| DumpError::Image {
            path: path.to_path_buf(),
            source,
        })?;
        let f = buf.into_inner().map_err(|e| DumpError::Write {
            path: path.to_path_buf(),
            source: e.into_error(),
        })?;
        self.bytes += f.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(())
    }

    /// Writes an image.
    pub fn write<M: prost::Message>(&mut self, img: &Image<M>) -> Result<()> {
        let (path, mut w) = self.create(img.desc, &img.name)?;
        for m in &img.entries {
            w.write_message(m).map_err(|source| DumpError::Image {
                path: path.clone(),
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
        w.flush().map_err(|source| DumpError::Write {
            path: path.to_path_buf(),
            source,
        })?;
        let f = w.into_inner().map_err(|e| DumpError::Write {
            path: path.to_path_buf(),
            source: e.into_error(),
        })?;
        self.bytes += f.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(())
    }

    /// The dump is complete: writes `inventory` (last) and keeps the files.
    pub fn commit(&mut self, inventory: &Image<pb::InventoryEntry>) -> Result<()> {
        self.write(inventory)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for ImageSet {
    fn drop(&mut self) {
        if !self.committed {
            for p in self.created.drain(..) {
                let _ = std::fs::remove_file(p);
            }
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
        }
    }
}
