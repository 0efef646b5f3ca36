//! /proc: pure `parse_*` functions over file contents (bytes: file names
//! and comms are bytes on Linux), and [`ProcDir`], which opens `/proc/PID`
//! once and reads every file of that process relative to it.
//!
//! A directory fd of `/proc/PID` stays bound to the process it was opened
//! for: once that process is gone, reads through it fail with ESRCH or
//! ENOENT even if the pid is used again, so everything read through one
//! `ProcDir` is about one process. The parsers never panic on odd input;
//! they return [`ParseError`] with what was wrong.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;

use crate::error::{DumpError, Result};
use crate::sys::raw;

/// What a parser did not like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

fn perr(s: impl Into<String>) -> ParseError {
    ParseError(s.into())
}

/// The bytes as text, for fields that are ASCII numbers or names.
fn text(b: &[u8]) -> std::result::Result<&str, ParseError> {
    std::str::from_utf8(b).map_err(|_| perr(format!("not text: {:?}", b.escape_ascii())))
}

/// Lines of a /proc file, without their `\n`.
fn lines(b: &[u8]) -> impl Iterator<Item = &[u8]> {
    b.strip_suffix(b"\n")
        .unwrap_or(b)
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
}

/// `Key:  value` of a /proc line, the value trimmed.
fn key_value(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = line.iter().position(|&c| c == b':')?;
    Some((&line[..i], line[i + 1..].trim_ascii()))
}

/// `/proc/PID` (or `/proc/PID/task/TID`, or `/proc/self`), opened once.
#[derive(Debug)]
pub struct ProcDir {
    pid: i32,
    fd: OwnedFd,
    /// For messages only: files are opened relative to `fd`.
    path: PathBuf,
}

impl ProcDir {
    fn open_path(pid: i32, path: PathBuf) -> Result<Self> {
        let fd = nix::fcntl::open(
            &path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::ENOENT | Errno::ESRCH => DumpError::NoSuchProcess { pid },
            e => DumpError::proc(&path, e.into()),
        })?;
        Ok(Self { pid, fd, path })
    }

    /// Opens `/proc/PID`; a pid that does not exist is [`DumpError::NoSuchProcess`].
    pub fn open(pid: i32) -> Result<Self> {
        if pid <= 0 {
            return Err(DumpError::NoSuchProcess { pid });
        }
        Self::open_path(pid, PathBuf::from(format!("/proc/{pid}")))
    }

    /// Opens `/proc/self` (the dumper).
    pub fn myself() -> Result<Self> {
        Self::open_path(std::process::id() as i32, PathBuf::from("/proc/self"))
    }

    /// Opens the thread directory `task/TID` of this process.
    pub fn task(&self, tid: i32) -> Result<ProcDir> {
        let rel = format!("task/{tid}");
        let fd = nix::fcntl::openat(
            self.fd.as_fd(),
            rel.as_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.err(&rel, e))?;
        Ok(ProcDir {
            pid: self.pid,
            fd,
            path: self.path.join(rel),
        })
    }

    /// The process this directory is about.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The directory's path (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `rel` inside this directory (for messages).
    pub fn path_of(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }

    fn err(&self, rel: impl AsRef<Path>, e: Errno) -> DumpError {
        match e {
            Errno::ESRCH => DumpError::TargetGone { pid: self.pid },
            e => DumpError::proc(self.path_of(rel), e.into()),
        }
    }

    fn io_err(&self, rel: impl AsRef<Path>, e: std::io::Error) -> DumpError {
        match e.raw_os_error() {
            Some(libc::ESRCH) => DumpError::TargetGone { pid: self.pid },
            _ => DumpError::proc(self.path_of(rel), e),
        }
    }

    fn parsed<T>(&self, rel: &str, r: std::result::Result<T, ParseError>) -> Result<T> {
        r.map_err(|ParseError(what)| DumpError::Parse {
            path: self.path_of(rel),
            what,
        })
    }

    /// Opens `rel` (a name inside this directory, or bytes such as a
    /// `map_files` entry) for reading, following magic links to the file.
    pub fn open_file(&self, rel: impl AsRef<OsStr>) -> Result<File> {
        let rel = rel.as_ref();
        let fd = nix::fcntl::openat(
            self.fd.as_fd(),
            rel,
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.err(rel, e))?;
        Ok(File::from(fd))
    }

    /// Reads all of `rel`.
    pub fn read(&self, rel: &str) -> Result<Vec<u8>> {
        let mut f = self.open_file(rel)?;
        let mut v = Vec::new();
        f.read_to_end(&mut v).map_err(|e| self.io_err(rel, e))?;
        Ok(v)
    }

    /// Where the link `rel` points, as bytes.
    pub fn read_link(&self, rel: impl AsRef<OsStr>) -> Result<Vec<u8>> {
        let rel = rel.as_ref();
        nix::fcntl::readlinkat(self.fd.as_fd(), rel)
            .map(OsStringExt::into_vec)
            .map_err(|e| self.err(rel, e))
    }

    /// `lstat` of `rel` (the link itself, for `map_files` and `fd` entries).
    pub fn lstat(&self, rel: impl AsRef<OsStr>) -> Result<nix::sys::stat::FileStat> {
        let rel = rel.as_ref();
        nix::sys::stat::fstatat(self.fd.as_fd(), rel, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| self.err(rel, e))
    }

    /// `stat` of what `rel` points to.
    pub fn stat(&self, rel: impl AsRef<OsStr>) -> Result<nix::sys::stat::FileStat> {
        let rel = rel.as_ref();
        nix::sys::stat::fstatat(self.fd.as_fd(), rel, AtFlags::empty())
            .map_err(|e| self.err(rel, e))
    }

    /// The numeric names in the subdirectory `rel` (`task`, `fd`), sorted.
    pub fn list(&self, rel: &str) -> Result<Vec<i32>> {
        let dir = nix::fcntl::openat(
            self.fd.as_fd(),
            rel,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.err(rel, e))?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 16 << 10];
        loop {
            let n = raw::getdents64(dir.as_fd(), &mut buf).map_err(|e| self.err(rel, e))?;
            if n == 0 {
                break;
            }
            let got = buf.get(..n).unwrap_or(&[]);
            let names = self.parsed(rel, parse_dirents(got))?;
            out.extend(
                names
                    .into_iter()
                    .filter_map(|name| text(name).ok()?.parse::<i32>().ok()),
            );
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Thread ids (`task/`).
    pub fn tasks(&self) -> Result<Vec<i32>> {
        self.list("task")
    }

    /// Open fds (`fd/`).
    pub fn fds(&self) -> Result<Vec<i32>> {
        self.list("fd")
    }

    /// `stat`.
    pub fn read_stat(&self) -> Result<Stat> {
        let b = self.read("stat")?;
        self.parsed("stat", parse_stat(&b))
    }

    /// `status`.
    pub fn read_status(&self) -> Result<Status> {
        let b = self.read("status")?;
        self.parsed("status", parse_status(&b))
    }

    /// `smaps`.
    pub fn read_smaps(&self) -> Result<Vec<Mapping>> {
        let b = self.read("smaps")?;
        self.parsed("smaps", parse_smaps(&b))
    }

    /// `limits`.
    pub fn read_limits(&self) -> Result<Vec<Rlimit>> {
        let b = self.read("limits")?;
        self.parsed("limits", parse_limits(&b))
    }

    /// `fdinfo/FD`.
    pub fn read_fdinfo(&self, fd: i32) -> Result<FdInfo> {
        let rel = format!("fdinfo/{fd}");
        let b = self.read(&rel)?;
        self.parsed(&rel, parse_fdinfo(&b))
    }

    /// `auxv`, cut to [`AT_VECTOR_SIZE`] words as CRIU does.
    pub fn read_auxv(&self) -> Result<Vec<u64>> {
        let mut v = parse_auxv(&self.read("auxv")?);
        v.truncate(AT_VECTOR_SIZE);
        Ok(v)
    }

    /// `timers`.
    pub fn read_timers(&self) -> Result<Vec<PosixTimer>> {
        let b = self.read("timers")?;
        self.parsed("timers", parse_timers(&b))
    }

    /// A small one-value file such as `loginuid`.
    pub fn read_value<T: std::str::FromStr>(&self, rel: &str) -> Result<T> {
        let b = self.read(rel)?;
        self.parsed(rel, parse_value(&b))
    }

    /// `personality` (hex).
    pub fn read_personality(&self) -> Result<u32> {
        let b = self.read("personality")?;
        let r = text(b.trim_ascii())
            .and_then(|s| u32::from_str_radix(s, 16).map_err(|_| perr("bad personality")));
        self.parsed("personality", r)
    }

    /// `comm`, without the trailing newline.
    pub fn read_comm(&self) -> Result<Vec<u8>> {
        let mut b = self.read("comm")?;
        if b.last() == Some(&b'\n') {
            b.pop();
        }
        Ok(b)
    }

    /// The namespace inode of `ns/<name>` (from `name:[inode]`).
    pub fn read_ns(&self, name: &str) -> Result<u64> {
        let rel = format!("ns/{name}");
        let l = self.read_link(&rel)?;
        self.parsed(
            &rel,
            parse_ns_link(&l).ok_or_else(|| perr(format!("bad ns link {:?}", l.escape_ascii()))),
        )
    }

    /// Child pids of the given threads (`task/TID/children`).
    pub fn read_children(&self, tids: &[i32]) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        for &t in tids {
            let rel = format!("task/{t}/children");
            let b = match self.read(&rel) {
                Ok(b) => b,
                Err(DumpError::Proc { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    continue
                }
                Err(e) => return Err(e),
            };
            let r = text(&b).map(|s| {
                s.split_whitespace()
                    .filter_map(|x| x.parse::<i32>().ok())
                    .collect::<Vec<_>>()
            });
            out.extend(self.parsed(&rel, r)?);
        }
        Ok(out)
    }
}

/// The names in a buffer of `struct linux_dirent64` records (what
/// `getdents64` fills): `u64 ino, i64 off, u16 reclen, u8 type, name\0`.
pub fn parse_dirents(mut b: &[u8]) -> std::result::Result<Vec<&[u8]>, ParseError> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let reclen = b
            .get(16..18)
            .map(|r| u16::from_ne_bytes([r[0], r[1]]) as usize)
            .ok_or_else(|| perr("dirent record cut short"))?;
        let rec = b
            .get(..reclen)
            .filter(|_| reclen > 19)
            .ok_or_else(|| perr(format!("dirent record length {reclen}")))?;
        let name = &rec[19..];
        let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
        let name = &name[..end];
        if name != b"." && name != b".." {
            out.push(name);
        }
        b = &b[reclen..];
    }
    Ok(out)
}

/// The fields of /proc/PID/stat that a dump uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    /// The comm as bytes (it may be any bytes but NUL).
    pub comm: Vec<u8>,
    pub state: char,
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    pub flags: u32,
    pub nice: i32,
    pub num_threads: i64,
    pub start_code: u64,
    pub end_code: u64,
    pub start_stack: u64,
    pub rt_priority: u32,
    pub policy: u32,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
}

/// Parses /proc/PID/stat. The comm may hold spaces, parentheses and bytes
/// that are not UTF-8: it runs from the first '(' to the last ')'.
pub fn parse_stat(b: impl AsRef<[u8]>) -> std::result::Result<Stat, ParseError> {
    let b = b.as_ref().trim_ascii_end();
    let open = b
        .iter()
        .position(|&c| c == b'(')
        .ok_or_else(|| perr("no '(' before comm"))?;
    let close = b
        .iter()
        .rposition(|&c| c == b')')
        .ok_or_else(|| perr("no ')' after comm"))?;
    if close < open {
        return Err(perr("')' before '('"));
    }
    let pid = text(&b[..open])?
        .trim()
        .parse()
        .map_err(|_| perr("bad pid field"))?;
    let comm = b[open + 1..close].to_vec();
    // Field 3 (state) is rest[0].
    let rest: Vec<&str> = text(&b[close + 1..])?.split_whitespace().collect();
    let field = |n: usize| -> std::result::Result<&str, ParseError> {
        rest.get(n - 3)
            .copied()
            .ok_or_else(|| perr(format!("field {n} missing")))
    };
    let num = |n: usize| -> std::result::Result<u64, ParseError> {
        let f = field(n)?;
        f.parse::<u64>()
            .or_else(|_| f.parse::<i64>().map(|v| v as u64))
            .map_err(|_| perr(format!("field {n} is not a number: {f:?}")))
    };
    let state = field(3)?
        .chars()
        .next()
        .ok_or_else(|| perr("empty state"))?;
    Ok(Stat {
        pid,
        comm,
        state,
        ppid: num(4)? as i32,
        pgid: num(5)? as i32,
        sid: num(6)? as i32,
        flags: num(9)? as u32,
        nice: num(19)? as i64 as i32,
        num_threads: num(20)? as i64,
        start_code: num(26)?,
        end_code: num(27)?,
        start_stack: num(28)?,
        rt_priority: num(40)? as u32,
        policy: num(41)? as u32,
        start_data: num(45)?,
        end_data: num(46)?,
        start_brk: num(47)?,
        arg_start: num(48)?,
        arg_end: num(49)?,
        env_start: num(50)?,
        env_end: num(51)?,
    })
}

/// The fields of /proc/PID/status that a dump uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub umask: Option<u32>,
    /// Real, effective, saved, fs.
    pub uid: [u32; 4],
    /// Real, effective, saved, fs.
    pub gid: [u32; 4],
    pub groups: Vec<u32>,
    pub cap_inh: u64,
    pub cap_prm: u64,
    pub cap_eff: u64,
    pub cap_bnd: u64,
    pub cap_amb: u64,
    pub no_new_privs: u32,
    pub seccomp: u32,
    pub state: char,
}

/// Parses /proc/PID/status (whose `Name:` line may be any bytes).
pub fn parse_status(b: impl AsRef<[u8]>) -> std::result::Result<Status, ParseError> {
    let mut st = Status::default();
    let ids = |v: &str| -> std::result::Result<[u32; 4], ParseError> {
        let n: Vec<u32> = v
            .split_whitespace()
            .map(|x| x.parse().map_err(|_| perr(format!("bad id {x:?}"))))
            .collect::<std::result::Result<_, _>>()?;
        n.try_into()
            .map_err(|_| perr("expected 4 ids (real, effective, saved, fs)"))
    };
    let hex =
        |v: &str| u64::from_str_radix(v.trim(), 16).map_err(|_| perr(format!("bad hex {v:?}")));
    for line in lines(b.as_ref()) {
        let Some((k, v)) = key_value(line) else {
            continue;
        };
        if k == b"Name" {
            continue;
        }
        let v = text(v)?;
        match k {
            b"Umask" => st.umask = Some(u32::from_str_radix(v, 8).map_err(|_| perr("bad Umask"))?),
            b"State" => st.state = v.chars().next().unwrap_or('?'),
            b"Uid" => st.uid = ids(v)?,
            b"Gid" => st.gid = ids(v)?,
            b"Groups" => {
                st.groups = v
                    .split_whitespace()
                    .map(|x| x.parse().map_err(|_| perr("bad group")))
                    .collect::<std::result::Result<_, _>>()?
            }
            b"CapInh" => st.cap_inh = hex(v)?,
            b"CapPrm" => st.cap_prm = hex(v)?,
            b"CapEff" => st.cap_eff = hex(v)?,
            b"CapBnd" => st.cap_bnd = hex(v)?,
            b"CapAmb" => st.cap_amb = hex(v)?,
            b"NoNewPrivs" => st.no_new_privs = v.parse().map_err(|_| perr("bad NoNewPrivs"))?,
            b"Seccomp" => st.seccomp = v.parse().map_err(|_| perr("bad Seccomp"))?,
            _ => {}
        }
    }
    Ok(st)
}

/// One mapping from /proc/PID/smaps: the range line and its VmFlags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub read: bool,
    pub write: bool,
    pub exec: bool,
    pub shared: bool,
    pub pgoff: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub ino: u64,
    /// Path or pseudo name (`[heap]`) as the kernel prints it (bytes;
    /// a newline in a file name shows as `\012`), empty for anonymous
    /// mappings.
    pub path: Vec<u8>,
    /// Two-letter VmFlags (`rd`, `gd`, `dd`...).
    pub vmflags: Vec<String>,
}

impl Mapping {
    /// The path for messages.
    pub fn path_lossy(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

fn parse_range_line(line: &[u8]) -> Option<Mapping> {
    let mut it = line.splitn(6, |&c| c == b' ');
    let range = text(it.next()?).ok()?;
    let perms = it.next()?;
    let off = text(it.next()?).ok()?;
    let dev = text(it.next()?).ok()?;
    let ino = text(it.next()?).ok()?;
    let path = it.next().unwrap_or(b"").trim_ascii_start().to_vec();
    let (s, e) = range.split_once('-')?;
    if perms.len() != 4 {
        return None;
    }
    let (maj, min) = dev.split_once(':')?;
    Some(Mapping {
        start: u64::from_str_radix(s, 16).ok()?,
        end: u64::from_str_radix(e, 16).ok()?,
        read: perms[0] == b'r',
        write: perms[1] == b'w',
        exec: perms[2] == b'x',
        shared: perms[3] == b's',
        pgoff: u64::from_str_radix(off, 16).ok()?,
        dev_major: u32::from_str_radix(maj, 16).ok()?,
        dev_minor: u32::from_str_radix(min, 16).ok()?,
        ino: ino.parse().ok()?,
        path,
        vmflags: Vec::new(),
    })
}

/// Parses /proc/PID/smaps (or maps: VmFlags then stay empty).
pub fn parse_smaps(b: impl AsRef<[u8]>) -> std::result::Result<Vec<Mapping>, ParseError> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in lines(b.as_ref()) {
        if let Some(flags) = line.strip_prefix(b"VmFlags:") {
            let m = out
                .last_mut()
                .ok_or_else(|| perr("VmFlags before any mapping"))?;
            m.vmflags = text(flags)?
                .split_whitespace()
                .map(str::to_string)
                .collect();
            continue;
        }
        // Range lines start with a hex digit and hold a '-' in the first
        // word; counter lines are "Name:   value kB".
        let first = line.split(|&c| c == b' ').next().unwrap_or(b"");
        if first.contains(&b'-') && !first.ends_with(b":") {
            out.push(
                parse_range_line(line).ok_or_else(|| {
                    perr(format!("bad line {:?}", line.escape_ascii().to_string()))
                })?,
            );
        }
    }
    Ok(out)
}

/// Soft and hard limit of one resource; `u64::MAX` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    pub cur: u64,
    pub max: u64,
}

/// Parses /proc/PID/limits (with procfs-core's parser) into the 16
/// resources in RLIMIT_* order.
pub fn parse_limits(b: impl AsRef<[u8]>) -> std::result::Result<Vec<Rlimit>, ParseError> {
    use procfs_core::process::{Limit, LimitValue, Limits};
    use procfs_core::FromRead;
    let b = b.as_ref();
    // procfs-core indexes the columns of each line: keep it to lines it
    // can take (the kernel prints no others).
    if lines(b).any(|l| {
        l.split(u8::is_ascii_whitespace)
            .filter(|w| !w.is_empty())
            .count()
            < 5
    }) {
        return Err(perr("a line with fewer than 5 columns"));
    }
    let l = Limits::from_read(b).map_err(|e| perr(e.to_string()))?;
    let v = |x: LimitValue| match x {
        LimitValue::Unlimited => u64::MAX,
        LimitValue::Value(n) => n,
    };
    let r = |x: Limit| Rlimit {
        cur: v(x.soft_limit),
        max: v(x.hard_limit),
    };
    Ok(vec![
        r(l.max_cpu_time),
        r(l.max_file_size),
        r(l.max_data_size),
        r(l.max_stack_size),
        r(l.max_core_file_size),
        r(l.max_resident_set),
        r(l.max_processes),
        r(l.max_open_files),
        r(l.max_locked_memory),
        r(l.max_address_space),
        r(l.max_file_locks),
        r(l.max_pending_signals),
        r(l.max_msgqueue_size),
        r(l.max_nice_priority),
        r(l.max_realtime_priority),
        r(l.max_realtime_timeout),
    ])
}

/// The first lines of /proc/PID/fdinfo/FD.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FdInfo {
    pub pos: u64,
    /// `O_*` flags of the open file, plus `O_CLOEXEC` if the fd has it.
    pub flags: u32,
    pub mnt_id: i32,
}

/// Parses /proc/PID/fdinfo/FD.
pub fn parse_fdinfo(b: impl AsRef<[u8]>) -> std::result::Result<FdInfo, ParseError> {
    let mut fi = FdInfo::default();
    for line in lines(b.as_ref()) {
        let Some((k, v)) = key_value(line) else {
            continue;
        };
        match k {
            b"pos" => fi.pos = text(v)?.parse().map_err(|_| perr("bad pos"))?,
            b"flags" => {
                fi.flags = u32::from_str_radix(text(v)?, 8).map_err(|_| perr("bad flags"))?
            }
            b"mnt_id" => fi.mnt_id = text(v)?.parse().map_err(|_| perr("bad mnt_id"))?,
            _ => {}
        }
    }
    Ok(fi)
}

/// Parses /proc/PID/auxv: pairs of native u64 up to and including AT_NULL.
pub fn parse_auxv(b: &[u8]) -> Vec<u64> {
    let mut out = Vec::new();
    for pair in b.chunks_exact(16) {
        let mut k = [0u8; 8];
        let mut v = [0u8; 8];
        k.copy_from_slice(&pair[..8]);
        v.copy_from_slice(&pair[8..]);
        let k = u64::from_ne_bytes(k);
        out.push(k);
        out.push(u64::from_ne_bytes(v));
        if k == 0 {
            break;
        }
    }
    out
}

/// How many words of auxv CRIU keeps (its `AT_VECTOR_SIZE`); its restore
/// refuses more, so a longer vector loses its tail (normally just the
/// AT_NULL pair, which the kernel puts back on PR_SET_MM_AUXV).
pub const AT_VECTOR_SIZE: usize = 44;

/// One POSIX timer from /proc/PID/timers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PosixTimer {
    pub id: i32,
    pub signo: u32,
    pub sival_ptr: u64,
    /// SIGEV_* value.
    pub notify: u32,
    /// Thread id for SIGEV_THREAD_ID.
    pub notify_tid: Option<i32>,
    pub clock_id: u32,
}

/// Parses /proc/PID/timers.
pub fn parse_timers(b: impl AsRef<[u8]>) -> std::result::Result<Vec<PosixTimer>, ParseError> {
    let mut out: Vec<PosixTimer> = Vec::new();
    for line in lines(b.as_ref()) {
        let Some((k, v)) = key_value(line) else {
            continue;
        };
        let v = text(v)?;
        if k == b"ID" {
            out.push(PosixTimer {
                id: v.parse().map_err(|_| perr("bad timer ID"))?,
                ..Default::default()
            });
            continue;
        }
        let t = out
            .last_mut()
            .ok_or_else(|| perr("timer field before ID"))?;
        match k {
            b"signal" => {
                let (sig, ptr) = v.split_once('/').ok_or_else(|| perr("bad signal"))?;
                t.signo = sig.parse().map_err(|_| perr("bad signo"))?;
                t.sival_ptr = u64::from_str_radix(ptr, 16).map_err(|_| perr("bad sival"))?;
            }
            b"notify" => {
                // "signal/pid.N", "thread/tid.N", "none/pid.N" (the kernel
                // prints "tid" for SIGEV_THREAD_ID, "pid" otherwise).
                let (how, who) = v.split_once('/').ok_or_else(|| perr("bad notify"))?;
                let thread = who.starts_with("tid.");
                t.notify = match how {
                    "signal" => libc::SIGEV_SIGNAL as u32,
                    "none" => libc::SIGEV_NONE as u32,
                    "thread" => libc::SIGEV_THREAD as u32,
                    _ => libc::SIGEV_SIGNAL as u32,
                };
                if thread {
                    t.notify |= libc::SIGEV_THREAD_ID as u32;
                    t.notify_tid = who.split('.').nth(1).and_then(|n| n.parse().ok());
                }
            }
            b"ClockID" => t.clock_id = v.parse().map_err(|_| perr("bad ClockID"))?,
            _ => {}
        }
    }
    Ok(out)
}

/// Parses a one-value file such as /proc/PID/loginuid.
pub fn parse_value<T: std::str::FromStr>(b: &[u8]) -> std::result::Result<T, ParseError> {
    let s = text(b.trim_ascii())?;
    s.parse().map_err(|_| perr(format!("bad value {s:?}")))
}

/// The namespace inode of a `/proc/PID/ns/<name>` link (`name:[inode]`).
pub fn parse_ns_link(s: impl AsRef<[u8]>) -> Option<u64> {
    let s = std::str::from_utf8(s.as_ref()).ok()?;
    s.split_once(":[")?.1.strip_suffix(']')?.parse().ok()
}

/// A path from /proc as an `OsStr` (for opening or messages).
pub fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_comm() {
        let line = "29452 (anchor (x) y) S 1 29452 29452 0 -1 4194560 180 0 0 0 0 0 0 0 27 7 1 0 \
                    113490 2658304 384 18446744073709551615 94273804963840 94273804965893 \
                    140721634097808 0 0 0 4096 0 0 0 0 0 17 0 0 0 0 0 0 94273804979664 \
                    94273804980472 94274139652096 140721634098928 140721634099028 \
                    140721634099028 140721634099169 0";
        let st = parse_stat(line).unwrap();
        assert_eq!(st.pid, 29452);
        assert_eq!(st.comm, b"anchor (x) y");
        assert_eq!(st.state, 'S');
        assert_eq!(st.ppid, 1);
        assert_eq!(st.flags, 4194560);
        assert_eq!(st.nice, 7);
        assert_eq!(st.start_code, 94273804963840);
        assert_eq!(st.start_brk, 94274139652096);
        assert_eq!(st.env_end, 140721634099169);
    }

    #[test]
    fn stat_rejects_garbage() {
        assert!(parse_stat("").is_err());
        assert!(parse_stat("1 (x) S 1").is_err());
    }

    #[test]
    fn status_lines() {
        let s = "Name:\tsingle\nUmask:\t0027\nState:\tS (sleeping)\nUid:\t0\t1\t2\t3\n\
                 Gid:\t4\t5\t6\t7\nGroups:\t10 20 \nCapInh:\t0000000000000000\n\
                 CapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\n\
                 CapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\n\
                 Seccomp:\t0\n";
        let st = parse_status(s).unwrap();
        assert_eq!(st.umask, Some(0o27));
        assert_eq!(st.uid, [0, 1, 2, 3]);
        assert_eq!(st.gid, [4, 5, 6, 7]);
        assert_eq!(st.groups, vec![10, 20]);
        assert_eq!(st.cap_prm, 0x1ff_ffff_ffff);
        assert_eq!(st.state, 'S');
    }

    #[test]
    fn smaps_ranges_and_flags() {
        let s = "55bdd4a81000-55bdd4a82000 r--p 00000000 fe:01 1234   /srv/x y\n\
                 Size:                  4 kB\n\
                 VmFlags: rd mr mw me dw sd\n\
                 7ffc4f014000-7ffc4f034000 rw-p 00000000 00:00 0                          [stack]\n\
                 Rss:                  12 kB\n\
                 VmFlags: rd wr mr mw me gd ac\n\
                 7f101f2cf000-7f101f2d5000 r--p 00000000 00:00 0\n";
        let m = parse_smaps(s).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].path, b"/srv/x y");
        assert_eq!(m[0].dev_major, 0xfe);
        assert_eq!(m[0].ino, 1234);
        assert!(m[0].read && !m[0].write && !m[0].shared);
        assert_eq!(m[1].path, b"[stack]");
        assert!(m[1].vmflags.contains(&"gd".to_string()));
        assert!(m[2].path.is_empty());
        assert!(m[2].vmflags.is_empty());
    }

    #[test]
    fn limits_table() {
        let s = "Limit                     Soft Limit           Hard Limit           Units     \n\
Max cpu time              unlimited            unlimited            seconds   \n\
Max file size             unlimited            unlimited            bytes     \n\
Max data size             unlimited            unlimited            bytes     \n\
Max stack size            8388608              unlimited            bytes     \n\
Max core file size        1048576              4194304              bytes     \n\
Max resident set          unlimited            unlimited            bytes     \n\
Max processes             96365                96365                processes \n\
Max open files            333                  777                  files     \n\
Max locked memory         8388608              8388608              bytes     \n\
Max address space         unlimited            unlimited            bytes     \n\
Max file locks            unlimited            unlimited            locks     \n\
Max pending signals       96365                96365                signals   \n\
Max msgqueue size         819200               819200               bytes     \n\
Max nice priority         0                    0                    \n\
Max realtime priority     0                    0                    \n\
Max realtime timeout      unlimited            unlimited            us        \n";
        let l = parse_limits(s).unwrap();
        assert_eq!(l.len(), 16);
        assert_eq!(
            l[3],
            Rlimit {
                cur: 8388608,
                max: u64::MAX
            }
        );
        assert_eq!(l[7], Rlimit { cur: 333, max: 777 });
        assert_eq!(l[13], Rlimit { cur: 0, max: 0 });
    }

    #[test]
    fn fdinfo_octal_flags() {
        let fi = parse_fdinfo("pos:\t5\nflags:\t02100001\nmnt_id:\t27\nino:\t3\n").unwrap();
        assert_eq!(fi.pos, 5);
        assert_eq!(fi.flags, 0o2100001);
        assert_eq!(fi.mnt_id, 27);
    }

    #[test]
    fn auxv_stops_at_null() {
        let mut b = Vec::new();
        for v in [33u64, 7, 6, 4096, 0, 0, 99, 99] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(parse_auxv(&b), vec![33, 7, 6, 4096, 0, 0]);
    }

    #[test]
    fn timers_entries() {
        let s = "ID: 0\nsignal: 14/00007f0000001000\nnotify: signal/pid.1234\nClockID: 1\n\
                 ID: 1\nsignal: 10/0000000000000000\nnotify: thread/tid.1240\nClockID: 0\n";
        let t = parse_timers(s).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].signo, 14);
        assert_eq!(t[0].sival_ptr, 0x7f0000001000);
        assert_eq!(t[0].clock_id, 1);
        assert_eq!(t[1].notify_tid, Some(1240));
    }

    #[test]
    fn stat_with_comm_not_utf8() {
        let mut line = b"7 (f\xff\xfe) S 1 7 7 0 -1 4194560".to_vec();
        line.extend_from_slice(&b" 0".repeat(45));
        line.push(b'\n');
        let st = parse_stat(&line).unwrap();
        assert_eq!(st.comm, b"f\xff\xfe");
        assert_eq!((st.pid, st.ppid, st.state), (7, 1, 'S'));
    }

    #[test]
    fn status_name_not_utf8() {
        let st = parse_status(b"Name:\tf\xff\xfe\nUmask:\t0022\nSeccomp:\t2\n").unwrap();
        assert_eq!((st.umask, st.seccomp), (Some(0o22), 2));
        assert!(parse_status(b"Umask:\t00\xff2\n").is_err());
    }

    #[test]
    fn smaps_path_not_utf8() {
        let s = b"7f0000000000-7f0000002000 rw-p 00001000 fe:01 99                         /tmp/f\xff\xfe\n\
                  Rss:                   0 kB\n\
                  VmFlags: rd wr mr mw me ac\n\
                  7f0000002000-7f0000003000 r--p 00000000 fe:01 98 /tmp/a b  (deleted)\n";
        let m = parse_smaps(s).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].path, b"/tmp/f\xff\xfe");
        assert_eq!(
            (m[0].start, m[0].end, m[0].pgoff),
            (0x7f0000000000, 0x7f0000002000, 0x1000)
        );
        assert_eq!(m[0].vmflags.len(), 6);
        assert_eq!(m[1].path, b"/tmp/a b  (deleted)");
        assert!(parse_smaps(b"7f00-7f01 rw-p 0 fe:01\n").is_err());
    }

    #[test]
    fn dirents() {
        let mut b = Vec::new();
        for name in [&b"."[..], b"..", b"12", b"f\xff"] {
            let reclen = (19 + name.len() + 1).div_ceil(8) * 8;
            let mut rec = vec![0u8; reclen];
            rec[16..18].copy_from_slice(&(reclen as u16).to_ne_bytes());
            rec[19..19 + name.len()].copy_from_slice(name);
            b.extend(rec);
        }
        assert_eq!(parse_dirents(&b).unwrap(), vec![&b"12"[..], b"f\xff"]);
        assert!(parse_dirents(&b[..10]).is_err());
        let mut bad = b.clone();
        bad[16..18].copy_from_slice(&0u16.to_ne_bytes());
        assert!(
            parse_dirents(&bad).is_err(),
            "a zero record length must not loop"
        );
    }

    #[test]
    fn limits_refuse_short_lines() {
        assert!(parse_limits("Limit Soft Hard Units\nMax cpu\n").is_err());
    }

    #[test]
    fn ns_link() {
        assert_eq!(parse_ns_link("pid:[4026531836]"), Some(4026531836));
        assert_eq!(parse_ns_link("pid:4026531836"), None);
        assert_eq!(parse_ns_link(b"pid:[\xff]"), None);
    }
}
