//! Running a syscall inside a stopped thread, as CRIU's compel does: the
//! thread's registers are pointed at `syscall; int3` (poked over the first
//! bytes of an executable mapping by [`CodePatch`]), it is continued with
//! `PTRACE_CONT`, and traps back on the `int3`. The caller restores the
//! registers afterwards ([`super::Frozen::inject`] does it on every way
//! out); the code bytes go back when the [`CodePatch`] is restored or
//! dropped.

use libc::c_long;
use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// `syscall; int3; int3; ...`: what [`CodePatch`] writes (8 bytes, like
/// compel's `code_syscall`).
pub const SYSCALL_CODE: [u8; 8] = [0x0f, 0x05, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc];

/// Eight bytes of the tracee's code replaced by [`SYSCALL_CODE`]; the
/// original bytes go back on [`CodePatch::restore`] or on drop.
#[derive(Debug)]
pub struct CodePatch {
    pid: Pid,
    addr: u64,
    saved: Option<c_long>,
}

impl CodePatch {
    /// Pokes [`SYSCALL_CODE`] at `addr` (writable or not: `PTRACE_POKEDATA`
    /// forces a private copy of the page, as compel does).
    pub fn install(pid: Pid, addr: u64) -> Result<Self, Errno> {
        let saved = ptrace::read(pid, addr as ptrace::AddressType)?;
        ptrace::write(
            pid,
            addr as ptrace::AddressType,
            c_long::from_ne_bytes(SYSCALL_CODE),
        )?;
        Ok(Self {
            pid,
            addr,
            saved: Some(saved),
        })
    }

    /// Where the `syscall` instruction is.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// Writes the original bytes back.
    pub fn restore(&mut self) -> Result<(), Errno> {
        if let Some(saved) = self.saved {
            ptrace::write(self.pid, self.addr as ptrace::AddressType, saved)?;
            self.saved = None;
        }
        Ok(())
    }
}

impl Drop for CodePatch {
    fn drop(&mut self) {
        let _ = self.restore();
    }
}

/// How an injected syscall ended when it did not return normally.
#[derive(Debug)]
pub enum InjectError {
    /// A ptrace or wait call failed.
    Errno(&'static str, Errno),
    /// The thread exited or was killed.
    Gone,
    /// The thread stopped somewhere unexpected (ip, signal).
    UnexpectedStop(u64, Option<Signal>),
}

/// Runs syscall `nr` with `args` in the stopped thread `tid`, starting
/// from registers `base` (the thread's own), with `ip` at `code` (which
/// holds [`SYSCALL_CODE`]). Leaves the thread stopped on the trap with
/// clobbered registers: the caller restores them. Signals that are not our
/// trap (only unblockable ones can arrive: the caller blocked the rest) are
/// appended to `deferred` to be sent again after the dump.
pub fn remote_syscall(
    tid: Pid,
    base: &libc::user_regs_struct,
    code: u64,
    nr: i64,
    args: [u64; 6],
    deferred: &mut Vec<Signal>,
) -> Result<i64, InjectError> {
    const X86_EFLAGS_TF: u64 = 0x100;
    const X86_EFLAGS_DF: u64 = 0x400;
    let mut r = *base;
    r.rax = nr as u64;
    r.rdi = args[0];
    r.rsi = args[1];
    r.rdx = args[2];
    r.r10 = args[3];
    r.r8 = args[4];
    r.r9 = args[5];
    r.rip = code;
    // No syscall restart on the way out of the stop.
    r.orig_rax = u64::MAX;
    r.eflags &= !(X86_EFLAGS_TF | X86_EFLAGS_DF);
    ptrace::setregs(tid, r).map_err(|e| InjectError::Errno("PTRACE_SETREGS", e))?;
    ptrace::cont(tid, None).map_err(|e| InjectError::Errno("PTRACE_CONT", e))?;
    loop {
        let st = waitpid(tid, Some(WaitPidFlag::__WALL))
            .map_err(|e| InjectError::Errno("waitpid", e))?;
        match st {
            WaitStatus::Stopped(_, Signal::SIGTRAP) => break,
            WaitStatus::Stopped(_, sig) => {
                // A signal we did not block (SIGSTOP, SIGKILL is never
                // reported): keep it for later, go on.
                deferred.push(sig);
                ptrace::cont(tid, None).map_err(|e| InjectError::Errno("PTRACE_CONT", e))?;
            }
            WaitStatus::PtraceEvent(..) | WaitStatus::PtraceSyscall(_) => {
                ptrace::cont(tid, None).map_err(|e| InjectError::Errno("PTRACE_CONT", e))?;
            }
            WaitStatus::Exited(..) | WaitStatus::Signaled(..) => return Err(InjectError::Gone),
            _ => {}
        }
    }
    let out = ptrace::getregs(tid).map_err(|e| InjectError::Errno("PTRACE_GETREGS", e))?;
    // `syscall` is 2 bytes, the trap leaves ip after the first int3.
    if out.rip != code + 3 {
        return Err(InjectError::UnexpectedStop(out.rip, Some(Signal::SIGTRAP)));
    }
    Ok(out.rax as i64)
}
