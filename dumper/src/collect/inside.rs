//! What only the task can tell: syscalls run inside each thread
//! (tid address, alternate stack, parent-death signal, securebits) and
//! inside the leader for the process (sigactions, itimers, POSIX timers,
//! brk, dumpable, THP, subreaper, membarrier). The task is left as it was
//! found: the scratch mapping is unmapped and the code bytes restored on
//! every path.

use crate::error::{DumpError, Result};
use crate::sys::inject::CodePatch;
use crate::sys::{Frozen, Remote, RemoteMem};

use super::process::ProcFacts;
use super::thread::{AltStack, ThreadFacts};

const NR_MMAP: i64 = libc::SYS_mmap;
const NR_MUNMAP: i64 = libc::SYS_munmap;
const NR_BRK: i64 = libc::SYS_brk;
const NR_RT_SIGACTION: i64 = libc::SYS_rt_sigaction;
const NR_GETITIMER: i64 = libc::SYS_getitimer;
const NR_SIGALTSTACK: i64 = libc::SYS_sigaltstack;
const NR_PRCTL: i64 = libc::SYS_prctl;
const NR_TIMER_GETTIME: i64 = libc::SYS_timer_gettime;
const NR_TIMER_GETOVERRUN: i64 = libc::SYS_timer_getoverrun;
const NR_MEMBARRIER: i64 = libc::SYS_membarrier;

const PR_GET_PDEATHSIG: u64 = libc::PR_GET_PDEATHSIG as u64;
const PR_GET_DUMPABLE: u64 = libc::PR_GET_DUMPABLE as u64;
const PR_GET_SECUREBITS: u64 = libc::PR_GET_SECUREBITS as u64;
const PR_GET_CHILD_SUBREAPER: u64 = libc::PR_GET_CHILD_SUBREAPER as u64;
const PR_GET_TID_ADDRESS: u64 = libc::PR_GET_TID_ADDRESS as u64;
const PR_GET_THP_DISABLE: u64 = libc::PR_GET_THP_DISABLE as u64;
const MEMBARRIER_CMD_GET_REGISTRATIONS: u64 = 1 << 9;

/// Number of signals; sigactions are dumped for 1..=SIGMAX except KILL/STOP.
pub const SIGMAX: usize = 64;

/// Where the scratch page's slots are.
mod slot {
    pub const TID_ADDR: u64 = 0;
    pub const PDEATH: u64 = 8;
    pub const SUBREAPER: u64 = 16;
    pub const ALTSTACK: u64 = 64;
    pub const ITIMERS: u64 = 128;
    pub const TIMER: u64 = 256;
    pub const SIGACTIONS: u64 = 512;
}

/// Runs the syscalls that only the task can answer, in every thread.
/// Leaves the task as it found it: the scratch mapping is unmapped and the
/// code bytes restored on every path.
pub fn from_inside(
    frozen: &mut Frozen,
    mem: &RemoteMem,
    exec_start: u64,
    proc_facts: &mut ProcFacts,
    threads: &mut [ThreadFacts],
) -> Result<()> {
    let pid = frozen.pid;
    let mut code = CodePatch::install(pid, exec_start)
        .map_err(|e| DumpError::ptrace(pid, "PTRACE_POKEDATA", e))?;
    const PROT_RW: u64 = (libc::PROT_READ | libc::PROT_WRITE) as u64;
    const MAP_PA: u64 = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
    let scratch = frozen.inject(0, &code, |r| {
        r.syscall("mmap", NR_MMAP, [0, 4096, PROT_RW, MAP_PA, u64::MAX, 0])
    })?;
    let res = (|| -> Result<()> {
        for (i, t) in threads.iter_mut().enumerate() {
            frozen.inject(i, &code, |r| per_thread(r, mem, scratch, t))?;
        }
        frozen.inject(0, &code, |r| per_process(r, mem, scratch, proc_facts))
    })();
    let unmap = frozen.inject(0, &code, |r| {
        r.syscall("munmap", NR_MUNMAP, [scratch, 4096, 0, 0, 0, 0])
    });
    let restored = code
        .restore()
        .map_err(|e| DumpError::ptrace(pid, "PTRACE_POKEDATA", e));
    res?;
    unmap?;
    restored?;
    Ok(())
}

/// `prctl(op, at)` for the `PR_GET_*` that write their answer to `at`
/// (a scratch slot) rather than returning it.
fn prctl_get(r: &mut Remote<'_>, name: &'static str, op: u64, at: u64) -> Result<()> {
    r.syscall(name, NR_PRCTL, [op, at, 0, 0, 0, 0]).map(drop)
}

fn per_thread(
    r: &mut Remote<'_>,
    mem: &RemoteMem,
    scratch: u64,
    t: &mut ThreadFacts,
) -> Result<()> {
    let at = scratch + slot::TID_ADDR;
    prctl_get(r, "prctl(PR_GET_TID_ADDRESS)", PR_GET_TID_ADDRESS, at)?;
    t.tid_address = mem.read_u64(at)?;
    r.syscall(
        "sigaltstack",
        NR_SIGALTSTACK,
        [0, scratch + slot::ALTSTACK, 0, 0, 0, 0],
    )?;
    // stack_t: void *ss_sp; int ss_flags; (pad) size_t ss_size.
    t.altstack = AltStack {
        sp: mem.read_u64(scratch + slot::ALTSTACK)?,
        flags: mem.read_u32(scratch + slot::ALTSTACK + 8)?,
        size: mem.read_u64(scratch + slot::ALTSTACK + 16)?,
    };
    let at = scratch + slot::PDEATH;
    prctl_get(r, "prctl(PR_GET_PDEATHSIG)", PR_GET_PDEATHSIG, at)?;
    t.pdeath_sig = mem.read_u32(at)?;
    t.secbits = r.syscall(
        "prctl(PR_GET_SECUREBITS)",
        NR_PRCTL,
        [PR_GET_SECUREBITS, 0, 0, 0, 0, 0],
    )? as u32;
    Ok(())
}

fn per_process(r: &mut Remote<'_>, mem: &RemoteMem, scratch: u64, p: &mut ProcFacts) -> Result<()> {
    p.sigactions.clear();
    for sig in 1..=SIGMAX as u64 {
        if sig == libc::SIGKILL as u64 || sig == libc::SIGSTOP as u64 {
            p.sigactions.push([0; 4]);
            continue;
        }
        let at = scratch + slot::SIGACTIONS + (sig - 1) * 32;
        r.syscall("rt_sigaction", NR_RT_SIGACTION, [sig, 0, at, 8, 0, 0])?;
        let mut b = [0u8; 32];
        mem.read(at, &mut b)?;
        let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        // struct kernel_sigaction: handler, flags, restorer, mask.
        p.sigactions.push([w(0), w(1), w(2), w(3)]);
    }
    for (i, which) in [0u64, 1, 2].into_iter().enumerate() {
        let at = scratch + slot::ITIMERS + which * 32;
        r.syscall("getitimer", NR_GETITIMER, [which, at, 0, 0, 0, 0])?;
        let mut v = [0u64; 4];
        for (k, x) in v.iter_mut().enumerate() {
            *x = mem.read_u64(at + 8 * k as u64)?;
        }
        p.itimers[i] = v;
    }
    for t in &mut p.timers {
        let at = scratch + slot::TIMER;
        r.syscall(
            "timer_gettime",
            NR_TIMER_GETTIME,
            [t.proc.id as u64, at, 0, 0, 0, 0],
        )?;
        for (k, x) in t.spec.iter_mut().enumerate() {
            *x = mem.read_u64(at + 8 * k as u64)?;
        }
        t.overrun = r.syscall(
            "timer_getoverrun",
            NR_TIMER_GETOVERRUN,
            [t.proc.id as u64, 0, 0, 0, 0, 0],
        )? as u32;
    }
    p.brk = r.syscall("brk", NR_BRK, [0; 6])?;
    p.dumpable = r.syscall(
        "prctl(PR_GET_DUMPABLE)",
        NR_PRCTL,
        [PR_GET_DUMPABLE, 0, 0, 0, 0, 0],
    )? as i32;
    p.thp_disabled = r.syscall(
        "prctl(PR_GET_THP_DISABLE)",
        NR_PRCTL,
        [PR_GET_THP_DISABLE, 0, 0, 0, 0, 0],
    )? != 0;
    let at = scratch + slot::SUBREAPER;
    prctl_get(
        r,
        "prctl(PR_GET_CHILD_SUBREAPER)",
        PR_GET_CHILD_SUBREAPER,
        at,
    )?;
    p.child_subreaper = mem.read_u32(at)? != 0;
    let mb = r.syscall_raw(
        NR_MEMBARRIER,
        [MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0, 0, 0, 0],
    )?;
    p.membarrier_mask = if mb > 0 { mb as u32 } else { 0 };
    Ok(())
}
