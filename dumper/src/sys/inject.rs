//! The only module allowed to use `unsafe`: ptrace requests and syscalls
//! that nix does not wrap, and running a syscall inside a stopped thread.
//!
//! Every raw request here writes into a buffer owned by the caller and sized
//! for that request; every result is copied out as plain integers before it
//! leaves this module, so the rest of the crate only sees safe values.
//!
//! Syscall injection follows CRIU's compel: a stopped thread gets its
//! registers pointed at `syscall; int3` (poked over the first bytes of an
//! executable mapping by [`CodePatch`]), is continued with `PTRACE_CONT`, and
//! traps back on the `int3`. The caller restores the registers afterwards
//! ([`super::Tracee`] does it on every way out).
#![allow(unsafe_code)]

use libc::{c_long, c_uint, c_void};
use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

const PTRACE_GETREGSET: c_uint = libc::PTRACE_GETREGSET as c_uint;
const PTRACE_PEEKSIGINFO: c_uint = libc::PTRACE_PEEKSIGINFO as c_uint;
const PTRACE_GETSIGMASK: c_uint = libc::PTRACE_GETSIGMASK as c_uint;
const PTRACE_SETSIGMASK: c_uint = libc::PTRACE_SETSIGMASK as c_uint;
const PTRACE_GET_RSEQ_CONFIGURATION: c_uint = libc::PTRACE_GET_RSEQ_CONFIGURATION as c_uint;
const PTRACE_GET_THREAD_AREA: c_uint = 25; // x86 only, not in libc
const PTRACE_ARCH_PRCTL: c_uint = 30; // x86 only, not in libc
const PTRACE_PEEKSIGINFO_SHARED: u32 = libc::PTRACE_PEEKSIGINFO_SHARED;
const NT_X86_XSTATE: usize = 0x202;
const NT_X86_SHSTK: usize = 0x204;
const ARCH_SHSTK_STATUS: usize = 0x5005;

/// Size of one `siginfo_t` as the kernel copies it out.
pub const SIGINFO_SIZE: usize = 128;

/// One raw ptrace request whose result is only "ok or errno".
///
/// `addr` and `data` are integers or addresses of buffers that the caller
/// keeps alive and that are at least as large as the request writes.
fn raw_ptrace(req: c_uint, tid: Pid, addr: usize, data: usize) -> Result<c_long, Errno> {
    // SAFETY: every caller in this module passes either plain integers or
    // pointers to live, writable buffers sized for what `req` writes (see
    // each call site); the kernel never keeps these pointers.
    let r = unsafe { libc::ptrace(req, tid.as_raw(), addr as *mut c_void, data as *mut c_void) };
    if r == -1 {
        Err(Errno::last())
    } else {
        Ok(r)
    }
}

/// The blocked signal mask of a stopped tracee (`PTRACE_GETSIGMASK`).
pub fn get_sigmask(tid: Pid) -> Result<u64, Errno> {
    let mut mask: u64 = 0;
    // The kernel writes exactly `addr` (= 8) bytes to `data`.
    raw_ptrace(
        PTRACE_GETSIGMASK,
        tid,
        std::mem::size_of::<u64>(),
        &mut mask as *mut u64 as usize,
    )?;
    Ok(mask)
}

/// Sets the blocked signal mask of a stopped tracee (`PTRACE_SETSIGMASK`).
pub fn set_sigmask(tid: Pid, mask: u64) -> Result<(), Errno> {
    let m = mask;
    // The kernel reads exactly 8 bytes from `data`.
    raw_ptrace(
        PTRACE_SETSIGMASK,
        tid,
        std::mem::size_of::<u64>(),
        &m as *const u64 as usize,
    )?;
    Ok(())
}

fn getregset(tid: Pid, note: usize, buf: &mut [u8]) -> Result<usize, Errno> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut c_void,
        iov_len: buf.len(),
    };
    // The kernel writes at most `iov_len` bytes to `iov_base` (our buffer)
    // and updates `iov_len`.
    raw_ptrace(
        PTRACE_GETREGSET,
        tid,
        note,
        &mut iov as *mut libc::iovec as usize,
    )?;
    Ok(iov.iov_len)
}

/// The thread's XSAVE area (`PTRACE_GETREGSET`, `NT_X86_XSTATE`), in the
/// standard (non-compacted) layout.
pub fn get_xstate(tid: Pid) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; 16384];
    let n = getregset(tid, NT_X86_XSTATE, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// The user shadow stack pointer (`NT_X86_SHSTK`).
pub fn get_shstk_ssp(tid: Pid) -> Result<u64, Errno> {
    let mut buf = [0u8; 8];
    getregset(tid, NT_X86_SHSTK, &mut buf)?;
    Ok(u64::from_ne_bytes(buf))
}

/// `ARCH_SHSTK_STATUS` of the thread, through `PTRACE_ARCH_PRCTL`.
pub fn shstk_status(tid: Pid) -> Result<u64, Errno> {
    let mut features: u64 = 0;
    // The kernel writes one u64 to `addr`.
    raw_ptrace(
        PTRACE_ARCH_PRCTL,
        tid,
        &mut features as *mut u64 as usize,
        ARCH_SHSTK_STATUS,
    )?;
    Ok(features)
}

/// One GDT TLS slot as `struct user_desc`: entry number, base, limit, flags.
pub fn get_thread_area(tid: Pid, idx: u32) -> Result<[u32; 4], Errno> {
    let mut desc = [0u32; 4];
    // `struct user_desc` is 16 bytes: three u32 and a u32 of bit fields.
    raw_ptrace(
        PTRACE_GET_THREAD_AREA,
        tid,
        idx as usize,
        desc.as_mut_ptr() as usize,
    )?;
    Ok(desc)
}

/// What `PTRACE_GET_RSEQ_CONFIGURATION` reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RseqConf {
    /// Address of the registered `struct rseq`, 0 if none.
    pub abi_pointer: u64,
    /// Registered size.
    pub abi_size: u32,
    /// Abort signature.
    pub signature: u32,
    /// Flags passed at registration.
    pub flags: u32,
}

/// The thread's rseq registration.
pub fn get_rseq_conf(tid: Pid) -> Result<RseqConf, Errno> {
    let mut raw = [0u8; 24];
    // The kernel writes min(addr, sizeof(ptrace_rseq_configuration) = 24).
    raw_ptrace(
        PTRACE_GET_RSEQ_CONFIGURATION,
        tid,
        raw.len(),
        raw.as_mut_ptr() as usize,
    )?;
    let u32_at = |o: usize| u32::from_ne_bytes([raw[o], raw[o + 1], raw[o + 2], raw[o + 3]]);
    let mut p = [0u8; 8];
    p.copy_from_slice(&raw[..8]);
    Ok(RseqConf {
        abi_pointer: u64::from_ne_bytes(p),
        abi_size: u32_at(8),
        signature: u32_at(12),
        flags: u32_at(16),
    })
}

/// Pending signals of a thread (`shared == false`) or of its thread group,
/// each as the raw 128-byte `siginfo_t` (`PTRACE_PEEKSIGINFO`).
pub fn peek_siginfo(tid: Pid, shared: bool) -> Result<Vec<Vec<u8>>, Errno> {
    #[repr(C)]
    struct Args {
        off: u64,
        flags: u32,
        nr: i32,
    }
    const BATCH: usize = 32;
    let mut out = Vec::new();
    loop {
        let mut buf = vec![0u8; BATCH * SIGINFO_SIZE];
        let args = Args {
            off: out.len() as u64,
            flags: if shared { PTRACE_PEEKSIGINFO_SHARED } else { 0 },
            nr: BATCH as i32,
        };
        // The kernel reads `Args` from `addr` and writes at most `nr`
        // siginfos (BATCH * 128 bytes, the size of `buf`) to `data`.
        let n = raw_ptrace(
            PTRACE_PEEKSIGINFO,
            tid,
            &args as *const Args as usize,
            buf.as_mut_ptr() as usize,
        )?;
        let n = usize::try_from(n).unwrap_or(0).min(BATCH);
        out.extend(buf.chunks(SIGINFO_SIZE).take(n).map(<[u8]>::to_vec));
        if n < BATCH {
            return Ok(out);
        }
    }
}

/// `get_robust_list(tid)`: head address and length.
pub fn get_robust_list(tid: Pid) -> Result<(u64, u64), Errno> {
    let mut head: u64 = 0;
    let mut len: u64 = 0;
    // SAFETY: get_robust_list writes one pointer to `head` and one size_t
    // to `len`, both u64-sized locals on x86_64.
    let r = unsafe {
        libc::syscall(
            libc::SYS_get_robust_list,
            tid.as_raw(),
            &mut head as *mut u64,
            &mut len as *mut u64,
        )
    };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok((head, len))
}

/// `kcmp(pid, pid, KCMP_FILE, fd1, fd2)`: 0 when both fds of `pid` refer to
/// the same open file description.
pub fn kcmp_file(pid: Pid, fd1: i32, fd2: i32) -> Result<i64, Errno> {
    const KCMP_FILE: i32 = 0;
    // SAFETY: kcmp takes only integers and touches no user memory for
    // KCMP_FILE.
    let r = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            pid.as_raw(),
            pid.as_raw(),
            KCMP_FILE,
            fd1 as libc::c_ulong,
            fd2 as libc::c_ulong,
        )
    };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(r)
}

/// `cpuid` with a sub-leaf: (eax, ebx, ecx, edx).
pub fn cpuid(leaf: u32, sub: u32) -> (u32, u32, u32, u32) {
    // SAFETY: cpuid is available on every x86_64 CPU and has no memory
    // effects.
    #[allow(unused_unsafe)]
    let r = unsafe { core::arch::x86_64::__cpuid_count(leaf, sub) };
    (r.eax, r.ebx, r.ecx, r.edx)
}

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
