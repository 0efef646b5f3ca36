//! `crit x DIR ps|fds|mems|rss`: text views over a whole dump, laid out as
//! python crit 4.2 prints them (crit/crit/__main__.py, `explore_*`), and
//! written as they go: the `ps` text of a deep process tree grows with the
//! square of its depth.
//!
//! The images are read as typed messages ([`criu_image::pb`]). Numbers are
//! printed from the values the images hold, with python's arithmetic where
//! python computes (`rss`: page counts and ends in `i128`, never
//! overflowing); nothing recurses on the depth of the process tree.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use criu_image::flags::{
    MAP_GROWSDOWN, PROT_EXEC, PROT_READ, PROT_WRITE, VMA_ANON_SHARED, VMA_AREA_REGULAR,
    VMA_AREA_SOCKET, VMA_AREA_STACK, VMA_AREA_SYSVIPC, VMA_AREA_VDSO, VMA_AREA_VSYSCALL,
    VMA_FILE_PRIVATE, VMA_FILE_SHARED,
};
use criu_image::text::qp_encode;
use criu_image::{pb, registry, ImageReader};

use crate::error::{Error, Result};

/// The views of `crit x`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The process tree: pid, pgid, sid and command of each task.
    Ps,
    /// Each task's open files, cwd and root.
    Fds,
    /// Each task's mappings.
    Mems,
    /// Each task's dumped pages, by mapping.
    Rss,
}

impl FromStr for View {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<View, String> {
        Ok(match s {
            "ps" => View::Ps,
            "fds" => View::Fds,
            "mems" => View::Mems,
            "rss" => View::Rss,
            _ => return Err(format!("{s:?}: expected ps, fds, mems or rss")),
        })
    }
}

/// A message that is the entries of an image.
trait Msg: prost::Message + prost::Name + Default {}
impl<M: prost::Message + prost::Name + Default> Msg for M {}

fn open(path: &Path) -> Result<ImageReader<BufReader<File>>> {
    let f = File::open(path).map_err(|source| Error::Io {
        context: format!("opening {}", path.display()),
        source,
    })?;
    ImageReader::new(BufReader::new(f)).map_err(|source| Error::File {
        path: path.to_path_buf(),
        source,
    })
}

/// Every entry of an image.
fn load<M: Msg>(path: &Path) -> Result<Vec<M>> {
    open(path)?
        .entries_as::<M>()
        .map(|e| e.map(|e| e.message))
        .collect::<std::result::Result<_, _>>()
        .map_err(|source| Error::File {
            path: path.to_path_buf(),
            source,
        })
}

/// The first entry of an image, which must have one.
fn first<M: Msg>(path: &Path) -> Result<M> {
    load(path)?.into_iter().next().ok_or_else(|| Error::Dump {
        path: path.to_path_buf(),
        detail: "the image has no entry".to_owned(),
    })
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs one view of the dump in `dir`, writing its text to `w` as it goes.
pub fn explore(dir: &Path, view: View, w: &mut dyn Write) -> Result<()> {
    let mut x = Explorer {
        dir: dir.to_path_buf(),
        files: None,
        reg_files: None,
        pipes: None,
        unix_sockets: None,
        out: String::new(),
        w,
    };
    match view {
        View::Ps => x.ps()?,
        View::Fds => x.fds()?,
        View::Mems => x.mems()?,
        View::Rss => x.rss()?,
    }
    x.flush()
}

struct Explorer<'w> {
    dir: PathBuf,
    /// files.img, and the images that held files before it, read when
    /// first needed (python crit's caches).
    files: Option<Vec<pb::FileEntry>>,
    reg_files: Option<Vec<pb::RegFileEntry>>,
    pipes: Option<Vec<pb::PipeEntry>>,
    unix_sockets: Option<Vec<pb::UnixSkEntry>>,
    /// Text not yet written to `w`.
    out: String,
    w: &'w mut dyn Write,
}

/// Blanks for indenting, written a slice at a time.
const SPACES: &[u8; 256] = &[b' '; 256];

/// Finds file `id` as python crit's `ftype_find_in_image` does: in
/// files.img if it has entries (the entry's part `field`, which may be
/// missing), otherwise in the image of the old layout, `legacy`.
fn find<'a, T: Msg>(
    files: &'a [pb::FileEntry],
    field: impl Fn(&'a pb::FileEntry) -> Option<&'a T>,
    legacy: &'a mut Option<Vec<T>>,
    legacy_path: &Path,
    id_of: impl Fn(&T) -> u32,
    id: u64,
) -> Option<&'a T> {
    if let Some(f) = files.iter().find(|f| u64::from(f.id) == id) {
        return field(f);
    }
    legacy
        .get_or_insert_with(|| load(legacy_path).unwrap_or_default())
        .iter()
        .find(|e| u64::from(id_of(e)) == id)
}

impl Explorer<'_> {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// An image of a task (or of its files table), by kind and id.
    fn task_image(&self, kind: &registry::ImageDesc, id: u64) -> PathBuf {
        self.dir.join(kind.file_name(id).unwrap_or_default())
    }

    fn pstree(&self) -> Result<Vec<pb::PstreeEntry>> {
        load(&self.path("pstree.img"))
    }

    /// Writes out the text so far.
    fn flush(&mut self) -> Result<()> {
        self.w
            .write_all(self.out.as_bytes())
            .map_err(|source| Error::Io {
                context: "writing".to_owned(),
                source,
            })?;
        self.out.clear();
        Ok(())
    }

    fn ps(&mut self) -> Result<()> {
        // python crit keeps the tasks in a dict by pid: a later entry with
        // the same pid replaces the earlier one, in the earlier one's place
        let mut items: Vec<(pb::PstreeEntry, String)> = Vec::new();
        let mut index: HashMap<u32, usize> = HashMap::new();
        for p in self.pstree()? {
            let core: pb::CoreEntry = first(&self.task_image(&registry::CORE, p.pid.into()))?;
            let comm = core.tc.map(|tc| lossy(&tc.comm)).unwrap_or_default();
            match index.get(&p.pid) {
                Some(&i) => items[i] = (p, comm),
                None => {
                    index.insert(p.pid, items.len());
                    items.push((p, comm));
                }
            }
        }
        let mut kids: Vec<Vec<usize>> = vec![Vec::new(); items.len()];
        let mut root = None;
        for (i, (p, _)) in items.iter().enumerate() {
            if p.ppid == 0 {
                root = Some(i);
                continue;
            }
            let parent = index.get(&p.ppid).ok_or_else(|| Error::Dump {
                path: self.path("pstree.img"),
                detail: format!("the parent {} of task {} is not in the tree", p.ppid, p.pid),
            })?;
            kids[*parent].push(i);
        }
        let _ = writeln!(self.out, "{:>7}{:>7}{:>7}   COMM", "PID", "PGID", "SID");
        // depth first, children in order, with a stack: a tree can be as
        // deep as it has tasks
        let mut todo: Vec<(usize, usize)> = root.map(|r| (r, 0)).into_iter().collect();
        while let Some((i, depth)) = todo.pop() {
            let (p, comm) = &items[i];
            let _ = write!(self.out, "{:>7}{:>7}{:>7}   ", p.pid, p.pgid, p.sid);
            self.flush()?;
            let mut indent = 4 * depth;
            while indent > 0 {
                let n = indent.min(SPACES.len());
                self.w.write_all(&SPACES[..n]).map_err(|source| Error::Io {
                    context: "writing".to_owned(),
                    source,
                })?;
                indent -= n;
            }
            let _ = writeln!(self.out, "{comm}");
            todo.extend(kids[i].iter().rev().map(|&k| (k, depth + 1)));
        }
        Ok(())
    }

    /// What python crit prints for a file of type `ftype` (an fd_types
    /// name) and id.
    fn file_str(&mut self, ftype: &str, id: u64) -> Result<String> {
        if !matches!(ftype, "REG" | "PIPE" | "UNIXSK") {
            return Ok(format!("{ftype}.{id}"));
        }
        let files_path = self.path("files.img");
        let files = self
            .files
            .get_or_insert_with(|| load(&files_path).unwrap_or_default());
        Ok(match ftype {
            "REG" => {
                let legacy = self.dir.join("reg-files.img");
                let f = find(
                    files,
                    |f| f.reg.as_ref(),
                    &mut self.reg_files,
                    &legacy,
                    |r| r.id,
                    id,
                );
                match f.map(|f| &f.name) {
                    Some(n) if !n.is_empty() => lossy(n),
                    _ => "unknown path".to_owned(),
                }
            }
            "PIPE" => {
                let legacy = self.dir.join("pipes.img");
                match find(
                    files,
                    |f| f.pipe.as_ref(),
                    &mut self.pipes,
                    &legacy,
                    |p| p.id,
                    id,
                ) {
                    Some(p) => format!("pipe[{}]", p.pipe_id),
                    None => "pipe[?]".to_owned(),
                }
            }
            _ => {
                let legacy = self.dir.join("unixsk.img");
                let sockets = &mut self.unix_sockets;
                match find(files, |f| f.usk.as_ref(), sockets, &legacy, |u| u.id, id) {
                    Some(u) => {
                        let name = if u.name.is_empty() {
                            String::new()
                        } else {
                            format!(" {}", lossy(&qp_encode(&u.name)))
                        };
                        format!("unix[{} ({}){name}]", u.ino, u.peer)
                    }
                    None => "unix[?]".to_owned(),
                }
            }
        })
    }

    fn fds(&mut self) -> Result<()> {
        for p in self.pstree()? {
            let pid = u64::from(p.pid);
            let ids: Vec<pb::TaskKobjIdsEntry> = load(&self.task_image(&registry::IDS, pid))?;
            let files_id = ids.first().map_or(0, |i| i.files_id);
            let fdinfo: Vec<pb::FdinfoEntry> =
                load(&self.task_image(&registry::FDINFO, files_id.into()))?;
            self.flush()?;
            let _ = writeln!(self.out, "{pid}");
            for fd in &fdinfo {
                let ftype = pb::FdTypes::try_from(fd.r#type)
                    .map_or_else(|_| fd.r#type.to_string(), |t| t.as_str_name().to_owned());
                let s = self.file_str(&ftype, fd.id.into())?;
                let _ = writeln!(self.out, "\t{:>7}: {s}", fd.fd);
            }
            let fs: pb::FsEntry = first(&self.task_image(&registry::FS, pid))?;
            for (label, id) in [("cwd", fs.cwd_id), ("root", fs.root_id)] {
                let s = self.file_str("REG", id.into())?;
                let _ = writeln!(self.out, "\t{label:>7}: {s}");
            }
        }
        Ok(())
    }

    fn mm(&self, pid: u32) -> Result<pb::MmEntry> {
        first(&self.task_image(&registry::MM, pid.into()))
    }

    fn mems(&mut self) -> Result<()> {
        // python crit numbers shared segments 1, 2, ... in the order met
        let mut shm_ids: HashMap<u64, usize> = HashMap::new();
        for p in self.pstree()? {
            let mm = self.mm(p.pid)?;
            self.flush()?;
            let _ = writeln!(self.out, "{}", p.pid);
            let exe = self.file_str("REG", mm.exe_file_id.into())?;
            let _ = writeln!(self.out, "\t{:<36}    {exe}", "exe");
            for vma in &mm.vmas {
                let st = vma.status;
                let mut vid = |id: u64| {
                    let next = shm_ids.len() + 1;
                    *shm_ids.entry(id).or_insert(next)
                };
                let mut fname = if st & VMA_AREA_SYSVIPC != 0 {
                    format!(" ips[{:x}]", vid(vma.shmid))
                } else if st & VMA_ANON_SHARED != 0 {
                    format!(" shmem[{:x}]", vid(vma.shmid))
                } else if st & VMA_AREA_SOCKET != 0 {
                    format!(" packet[{:x}]", vid(vma.shmid))
                } else if st & (VMA_FILE_PRIVATE | VMA_FILE_SHARED) != 0 {
                    let mut s = format!(" {}", self.file_str("REG", vma.shmid)?);
                    if vma.pgoff != 0 {
                        let _ = write!(s, " + {:#x}", vma.pgoff);
                    }
                    if st & VMA_FILE_SHARED != 0 {
                        s.push_str(" (s)");
                    }
                    s
                } else if st & VMA_AREA_STACK != 0 {
                    " [stack]".to_owned()
                } else if st & VMA_AREA_VSYSCALL != 0 {
                    " [vsyscall]".to_owned()
                } else if st & VMA_AREA_VDSO != 0 {
                    " [vdso]".to_owned()
                } else if vma.flags & MAP_GROWSDOWN != 0 {
                    " [stack?]".to_owned()
                } else {
                    String::new()
                };
                if st & VMA_AREA_REGULAR == 0 {
                    fname.push_str(" *");
                }
                let ps: String = [(PROT_READ, 'r'), (PROT_WRITE, 'w'), (PROT_EXEC, 'x')]
                    .iter()
                    .map(|(b, c)| if vma.prot & b != 0 { *c } else { '-' })
                    .collect();
                let a = format!("{:08x}-{:08x}", vma.start, vma.end);
                let _ = writeln!(self.out, "\t{a:<36}{ps}{fname}");
            }
        }
        Ok(())
    }

    fn rss(&mut self) -> Result<()> {
        for p in self.pstree()? {
            let vmas = self.mm(p.pid)?.vmas;
            let pagemap = self.task_image(&registry::PAGEMAP, p.pid.into());
            let mut r = open(&pagemap)?;
            let in_file = |source| Error::File {
                path: pagemap.clone(),
                source,
            };
            // python crit skips entry 0, the head
            let pms: Vec<pb::PagemapEntry> = match r.next_as::<pb::PagemapHead>() {
                None => Vec::new(),
                Some(head) => {
                    head.map_err(in_file)?;
                    r.entries_as::<pb::PagemapEntry>()
                        .map(|e| e.map(|e| e.message))
                        .collect::<std::result::Result<_, _>>()
                        .map_err(in_file)?
                }
            };
            self.flush()?;
            let _ = writeln!(self.out, "{}", p.pid);
            // python's arithmetic: unbounded integers, and list indices
            // that may be negative (-1 is the last VMA)
            let n = vmas.len() as i64;
            let at = |i: i64| -> Option<&pb::VmaEntry> {
                let j = if i < 0 { n + i } else { i };
                usize::try_from(j).ok().and_then(|j| vmas.get(j))
            };
            let mut vmi: i64 = 0;
            let mut pvmi: i64 = -1;
            for pm in &pms {
                let vaddr = i128::from(pm.vaddr);
                let nr = pm.nr_pages.unwrap_or(u64::from(pm.compat_nr_pages));
                let pstr = format!("\t{vaddr:x} / {nr:<8}");
                while vmi < n && at(vmi).is_some_and(|v| i128::from(v.end) <= vaddr) {
                    vmi += 1;
                }
                let pme = vaddr + (i128::from(nr) << 12);
                let mut vstr = String::new();
                while vmi < n {
                    let Some(vma) = at(vmi) else { break };
                    if i128::from(vma.start) >= pme {
                        break;
                    }
                    if vmi == pvmi {
                        vstr.push_str(" ~");
                    } else {
                        let (s, e) = (i128::from(vma.start), i128::from(vma.end));
                        let _ = write!(vstr, " {s:08x} / {:<8}", (e - s) >> 12);
                        if vma.status & (VMA_FILE_PRIVATE | VMA_FILE_SHARED) != 0 {
                            let f = self.file_str("REG", vma.shmid)?;
                            let _ = write!(vstr, " {f}");
                        }
                        pvmi = vmi;
                    }
                    let _ = write!(vstr, "\n\t{:23}", "");
                    vmi += 1;
                }
                vmi -= 1;
                let _ = writeln!(self.out, "{pstr:<24}{vstr}");
            }
        }
        Ok(())
    }
}
