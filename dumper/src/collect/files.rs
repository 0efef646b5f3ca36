//! Files the task refers to: open fds, exe, cwd, root and mapped files,
//! each named by the bytes /proc gives (file names need not be UTF-8) and
//! described by a `stat` of the file itself.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt};

use nix::unistd::Pid;

use crate::error::{DumpError, Result};
use crate::proc::{FdInfo, ProcDir};
use crate::sys::raw;

/// A `stat` of a file plus the mount id the kernel reports for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileStat {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub rdev: u64,
    pub size: u64,
    pub mnt_id: i32,
}

/// A file the task refers to (mapping, exe, cwd, root) with its build-id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileRef {
    /// The path, as the bytes of the link in /proc.
    pub name: Vec<u8>,
    pub stat: FileStat,
    pub build_id: Option<Vec<u8>>,
}

impl FileRef {
    /// The name for messages.
    pub fn name_lossy(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// One open fd.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FdFacts {
    pub fd: i32,
    pub file: FileRef,
    pub info: FdInfo,
    /// Lower fd sharing this open file description (kcmp), if any.
    pub same_as: Option<i32>,
}

/// Reads the build-id note of an ELF file (first MiB, program headers,
/// PT_NOTE, NT_GNU_BUILD_ID), the way CRIU does for file validation.
pub fn parse_build_id(b: &[u8]) -> Option<Vec<u8>> {
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 {
        return None;
    }
    let u16_at = |o: usize| -> Option<u64> {
        Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?) as u64)
    };
    let u32_at = |o: usize| -> Option<u64> {
        Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?) as u64)
    };
    let u64_at =
        |o: usize| -> Option<u64> { u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?).into() };
    let phoff = usize::try_from(u64_at(32)?).ok()?;
    let phentsize = usize::try_from(u16_at(54)?).ok()?;
    let phnum = usize::try_from(u16_at(56)?).ok()?;
    if phoff == 0 || phentsize < 56 {
        return None;
    }
    for i in 0..phnum {
        let ph = phoff.checked_add(i.checked_mul(phentsize)?)?;
        if u32_at(ph)? != 4 {
            continue; // not PT_NOTE
        }
        let off = usize::try_from(u64_at(ph + 8)?).ok()?;
        let filesz = usize::try_from(u64_at(ph + 32)?).ok()?;
        let end = off.checked_add(filesz)?.min(b.len());
        let mut n = off;
        while n + 12 <= end {
            let namesz = usize::try_from(u32_at(n)?).ok()?;
            let descsz = usize::try_from(u32_at(n + 4)?).ok()?;
            let ty = u32_at(n + 8)?;
            let desc = n + 12 + namesz.div_ceil(4) * 4;
            if ty == 3 {
                if descsz == 0 || descsz > 512 {
                    return None;
                }
                return b.get(desc..desc.checked_add(descsz)?).map(<[u8]>::to_vec);
            }
            n = desc.checked_add(descsz.div_ceil(4) * 4)?;
        }
    }
    None
}

/// The mount id of a file we opened, from our own fdinfo.
fn self_mnt_id(me: &ProcDir, f: &File) -> i32 {
    me.read_fdinfo(f.as_raw_fd())
        .map(|i| i.mnt_id)
        .unwrap_or(-1)
}

fn file_stat(md: &std::fs::Metadata, mnt_id: i32) -> FileStat {
    FileStat {
        dev: md.dev(),
        ino: md.ino(),
        mode: md.mode(),
        rdev: md.rdev(),
        size: md.size(),
        mnt_id,
    }
}

/// Opens the magic link `link` of `dir` (`exe`, `fd/3`, `map_files/..`)
/// and describes the file behind it; `name` is what the task calls it.
pub fn read_file_ref(
    dir: &ProcDir,
    me: &ProcDir,
    link: &str,
    name: Vec<u8>,
    want_build_id: bool,
) -> Result<FileRef> {
    let f = dir.open_file(link)?;
    let md = f
        .metadata()
        .map_err(|e| DumpError::proc(dir.path_of(link), e))?;
    let stat = file_stat(&md, self_mnt_id(me, &f));
    let mut build_id = None;
    if want_build_id && md.is_file() && md.size() >= 5 {
        let mut buf = vec![0u8; md.size().min(1 << 20) as usize];
        let n = f.read_at(&mut buf, 0).unwrap_or(0);
        buf.truncate(n);
        build_id = parse_build_id(&buf);
    }
    Ok(FileRef {
        name,
        stat,
        build_id,
    })
}

/// Describes the file behind the link `link` (`exe`, `cwd`, `root`),
/// named as the link says.
pub fn read_linked(
    dir: &ProcDir,
    me: &ProcDir,
    link: &str,
    want_build_id: bool,
) -> Result<FileRef> {
    let name = dir.read_link(link)?;
    read_file_ref(dir, me, link, name, want_build_id)
}

/// Describes every open fd; refuses kinds other than regular files,
/// directories and /dev/null.
pub fn read_fds(dir: &ProcDir, me: &ProcDir) -> Result<Vec<FdFacts>> {
    let pid = dir.pid();
    let mut out: Vec<FdFacts> = Vec::new();
    for fd in dir.fds()? {
        let link = format!("fd/{fd}");
        let name = dir.read_link(&link)?;
        // stat, not open: opening a socket fails and opening a FIFO can
        // block.
        let st = dir.stat(&link)?;
        // What kinds of fd are dumped is check::fd's to say.
        let ft = st.st_mode & libc::S_IFMT;
        let info = dir.read_fdinfo(fd)?;
        let file = if ft == libc::S_IFREG {
            let mut f = read_file_ref(dir, me, &link, name, true)?;
            f.stat.mnt_id = info.mnt_id;
            f
        } else {
            FileRef {
                name,
                stat: FileStat {
                    dev: st.st_dev,
                    ino: st.st_ino,
                    mode: st.st_mode,
                    rdev: st.st_rdev,
                    size: st.st_size as u64,
                    mnt_id: info.mnt_id,
                },
                build_id: None,
            }
        };
        let mut same_as = None;
        for prev in &out {
            if prev.same_as.is_none()
                && raw::kcmp_file(Pid::from_raw(pid), prev.fd, fd).ok() == Some(0)
            {
                same_as = Some(prev.fd);
                break;
            }
        }
        out.push(FdFacts {
            fd,
            file,
            info,
            same_as,
        });
    }
    Ok(out)
}
