//! One module per CRIU image. Each module has a pure `build*` function that
//! turns gathered facts ([`crate::collect`]) into the image's messages (tested
//! without ptrace); [`ImageSet`] writes them.

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

use criu_image::ImageWriter;

use crate::error::{DumpError, Result};

/// The image files of one dump. Files are created 0600; if the dump fails,
/// [`ImageSet::abort`] (or drop without [`ImageSet::commit`]) removes every
/// file this set created, so a failed dump leaves no partial image set.
#[derive(Debug)]
pub struct ImageSet {
    dir: PathBuf,
    created: Vec<PathBuf>,
    committed: bool,
    /// Bytes written so far (for the progress line and the log).
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
                source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
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

    /// The directory.
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

    /// Starts image `name` of kind `kind` (a registry name: "CORE", "MM"...).
    pub fn create(&mut self, name: &str, kind: &str) -> Result<(PathBuf, Writer)> {
        let (path, f) = self.create_file(name)?;
        let desc = criu_image::registry::by_name(kind).ok_or_else(|| DumpError::Write {
            path: path.clone(),
            source: std::io::Error::other(format!("unknown image kind {kind}")),
        })?;
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

    /// Writes an image holding the given messages.
    pub fn write<M: prost::Message>(&mut self, name: &str, kind: &str, msgs: &[M]) -> Result<()> {
        let (path, mut w) = self.create(name, kind)?;
        for m in msgs {
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

    /// The dump is complete: keep the files.
    pub fn commit(mut self) {
        self.committed = true;
    }

    /// The dump failed: remove every file this set created.
    pub fn abort(mut self) {
        self.remove_all();
    }

    fn remove_all(&mut self) {
        for p in self.created.drain(..) {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for ImageSet {
    fn drop(&mut self) {
        if !self.committed {
            self.remove_all();
        }
    }
}
