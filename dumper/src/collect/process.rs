//! The process as a whole, as /proc tells it before anything is injected:
//! stat, status, limits, personality, auxv, mappings, files, namespaces,
//! POSIX timers. What only the task can tell is filled in by
//! [`super::inside`].

use crate::error::Result;
use crate::proc::{PosixTimer, ProcDir, Rlimit, Stat, Status};

use super::files::{read_fds, read_linked, FdFacts, FileRef};
use super::memory::{read_mappings, MappingFacts};

/// One POSIX timer with its state read inside the task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimerFacts {
    pub proc: PosixTimer,
    pub overrun: u32,
    /// interval sec, nsec, value sec, nsec.
    pub spec: [u64; 4],
}

/// Everything about the process as a whole.
#[derive(Debug, Clone, Default)]
pub struct ProcFacts {
    pub pid: i32,
    pub stat: Stat,
    pub status: Status,
    pub limits: Vec<Rlimit>,
    pub personality: u32,
    pub loginuid: Option<u32>,
    pub oom_score_adj: Option<i32>,
    /// handler, flags, restorer, mask for signals 1..=64.
    pub sigactions: Vec<[u64; 4]>,
    /// real, virtual, prof: interval sec, usec, value sec, usec.
    pub itimers: [[u64; 4]; 3],
    pub timers: Vec<TimerFacts>,
    pub shared_pending: Vec<Vec<u8>>,
    pub brk: u64,
    pub dumpable: i32,
    pub thp_disabled: bool,
    pub child_subreaper: bool,
    pub membarrier_mask: u32,
    pub auxv: Vec<u64>,
    pub mappings: Vec<MappingFacts>,
    pub exe: FileRef,
    pub cwd: FileRef,
    pub root: FileRef,
    pub fds: Vec<FdFacts>,
    /// (name, inode) of pid, net, ipc, uts, time, mnt, user, cgroup.
    pub ns: Vec<(&'static str, u64)>,
}

/// Namespaces in the order CRIU numbers them.
pub const NS_ORDER: [&str; 8] = ["pid", "net", "ipc", "uts", "time", "mnt", "user", "cgroup"];

/// What /proc tells about the process (mappings, files, limits...); `me`
/// is the dumper's own /proc directory (namespaces to compare with, and
/// mount ids of files we open).
pub fn process_from_outside(dir: &ProcDir, me: &ProcDir) -> Result<ProcFacts> {
    let pid = dir.pid();
    let mut p = ProcFacts {
        pid,
        stat: dir.read_stat()?,
        status: dir.read_status()?,
        limits: dir.read_limits()?,
        personality: dir.read_personality()?,
        loginuid: dir.read_value("loginuid").ok(),
        oom_score_adj: dir.read_value("oom_score_adj").ok(),
        auxv: dir.read_auxv()?,
        ..Default::default()
    };
    p.mappings = read_mappings(dir, me)?;
    p.exe = read_linked(dir, me, "exe", true)?;
    p.cwd = read_linked(dir, me, "cwd", false)?;
    p.root = read_linked(dir, me, "root", false)?;
    p.fds = read_fds(dir, me)?;
    for ns in NS_ORDER {
        // check::frozen compares them with the dumper's.
        p.ns.push((ns, dir.read_ns(ns)?));
    }
    p.timers = dir
        .read_timers()?
        .into_iter()
        .map(|t| TimerFacts {
            proc: t,
            ..Default::default()
        })
        .collect();
    Ok(p)
}
