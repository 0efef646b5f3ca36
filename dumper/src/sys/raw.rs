//! The only module allowed to use `unsafe`: ptrace requests, syscalls and
//! ioctls that nix does not wrap.
//!
//! Every raw request goes through one `unsafe fn` whose `# Safety` section
//! says what the kernel reads and writes; each safe wrapper here passes
//! buffers it owns, sized for that request, and copies the result out as
//! plain integers, so the rest of the crate only sees safe values.
#![allow(unsafe_code)]

use libc::{c_long, c_uint, c_void};
use nix::errno::Errno;
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
/// # Safety
///
/// `addr` and `data` must be what `req` expects: plain integers, or
/// addresses of live buffers owned by the caller that are at least as large
/// as what the kernel reads from or writes to them for `req`, and that stay
/// alive for the call (the kernel keeps no pointer after it returns).
unsafe fn raw_ptrace(req: c_uint, tid: Pid, addr: usize, data: usize) -> Result<c_long, Errno> {
    // SAFETY: the caller upholds this function's contract for `addr` and
    // `data`; the other arguments are integers.
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
    // SAFETY: the kernel writes exactly `addr` (= 8) bytes to `data`, a
    // live local u64.
    unsafe {
        raw_ptrace(
            PTRACE_GETSIGMASK,
            tid,
            std::mem::size_of::<u64>(),
            &mut mask as *mut u64 as usize,
        )
    }?;
    Ok(mask)
}

/// Sets the blocked signal mask of a stopped tracee (`PTRACE_SETSIGMASK`).
pub fn set_sigmask(tid: Pid, mask: u64) -> Result<(), Errno> {
    let m = mask;
    // SAFETY: the kernel reads exactly `addr` (= 8) bytes from `data`, a
    // live local u64.
    unsafe {
        raw_ptrace(
            PTRACE_SETSIGMASK,
            tid,
            std::mem::size_of::<u64>(),
            &m as *const u64 as usize,
        )
    }?;
    Ok(())
}

fn getregset(tid: Pid, note: usize, buf: &mut [u8]) -> Result<usize, Errno> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut c_void,
        iov_len: buf.len(),
    };
    // SAFETY: the kernel reads the iovec at `data` (a live local), writes
    // at most `iov_len` bytes to `iov_base` (`buf`, borrowed mutably for the
    // call) and updates `iov_len`.
    unsafe {
        raw_ptrace(
            PTRACE_GETREGSET,
            tid,
            note,
            &mut iov as *mut libc::iovec as usize,
        )
    }?;
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
    // SAFETY: for ARCH_SHSTK_STATUS the kernel writes one u64 to `addr`, a
    // live local; `data` is the integer sub-command.
    unsafe {
        raw_ptrace(
            PTRACE_ARCH_PRCTL,
            tid,
            &mut features as *mut u64 as usize,
            ARCH_SHSTK_STATUS,
        )
    }?;
    Ok(features)
}

/// One GDT TLS slot as `struct user_desc`: entry number, base, limit, flags.
pub fn get_thread_area(tid: Pid, idx: u32) -> Result<[u32; 4], Errno> {
    let mut desc = [0u32; 4];
    // SAFETY: the kernel writes one `struct user_desc` (16 bytes: three u32
    // and a u32 of bit fields) to `data`, a live local of 16 bytes; `addr`
    // is the integer slot number.
    unsafe {
        raw_ptrace(
            PTRACE_GET_THREAD_AREA,
            tid,
            idx as usize,
            desc.as_mut_ptr() as usize,
        )
    }?;
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
    // SAFETY: the kernel writes min(addr, sizeof(struct
    // ptrace_rseq_configuration) = 24) bytes to `data`, a live local of
    // `addr` bytes.
    unsafe {
        raw_ptrace(
            PTRACE_GET_RSEQ_CONFIGURATION,
            tid,
            raw.len(),
            raw.as_mut_ptr() as usize,
        )
    }?;
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
        // SAFETY: the kernel reads one `Args` from `addr` (a live local) and
        // writes at most `nr` siginfos (BATCH * 128 bytes, the size of
        // `buf`) to `data`.
        let n = unsafe {
            raw_ptrace(
                PTRACE_PEEKSIGINFO,
                tid,
                &args as *const Args as usize,
                buf.as_mut_ptr() as usize,
            )
        }?;
        let n = usize::try_from(n).unwrap_or(0).min(BATCH);
        out.extend(buf.chunks(SIGINFO_SIZE).take(n).map(<[u8]>::to_vec));
        if n < BATCH {
            return Ok(out);
        }
    }
}

/// A thread's robust futex list, as `get_robust_list` reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RobustList {
    /// Address of the list head.
    pub head: u64,
    /// Size of the head, as registered.
    pub len: u64,
}

/// `get_robust_list(tid)`.
pub fn get_robust_list(tid: Pid) -> Result<RobustList, Errno> {
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
    Ok(RobustList { head, len })
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

/// Page categories of the `PAGEMAP_SCAN` ioctl (linux/fs.h).
pub mod page_is {
    /// The page is backed by a file (not anonymous).
    pub const FILE: u64 = 1 << 2;
    /// The page is in memory.
    pub const PRESENT: u64 = 1 << 3;
    /// The page is swapped out.
    pub const SWAPPED: u64 = 1 << 4;
    /// The page is the zero page (or the huge zero page).
    pub const PFNZERO: u64 = 1 << 5;
    /// The page is a guard region (`MADV_GUARD_INSTALL`).
    pub const GUARD: u64 = 1 << 8;
}

/// One `struct page_region` of a `PAGEMAP_SCAN` answer: `[start, end)`
/// with the categories asked for in `return_mask`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageRegion {
    /// First address.
    pub start: u64,
    /// End address (exclusive).
    pub end: u64,
    /// `page_is::*` bits.
    pub categories: u64,
}

/// What to ask `PAGEMAP_SCAN` for: pages in `[start, end)` whose
/// categories, after flipping `inverted`, have every `mask` bit and at
/// least one `anyof` bit; `ret` is what each region reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanQuery {
    /// First address (page aligned).
    pub start: u64,
    /// End address (page aligned).
    pub end: u64,
    /// `category_inverted`.
    pub inverted: u64,
    /// `category_mask`.
    pub mask: u64,
    /// `category_anyof_mask`.
    pub anyof: u64,
    /// `return_mask`.
    pub ret: u64,
}

/// `struct pm_scan_arg` (linux/fs.h), 96 bytes.
#[repr(C)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

/// `_IOWR('f', 16, struct pm_scan_arg)`.
const PAGEMAP_SCAN: libc::c_ulong = 0xc060_6610;

/// Runs `PAGEMAP_SCAN` on an open /proc/PID/pagemap: fills `out` with
/// regions from `q.start` on and returns how many it filled and where the
/// walk ended (before `q.end` when `out` was full). ENOTTY: the kernel has
/// no such ioctl (before 6.7); EINVAL: it does not know a category asked
/// for.
pub fn pagemap_scan(
    pagemap: std::os::fd::BorrowedFd<'_>,
    q: &ScanQuery,
    out: &mut [PageRegion],
) -> Result<(usize, u64), Errno> {
    use std::os::fd::AsRawFd;
    let mut arg = PmScanArg {
        size: std::mem::size_of::<PmScanArg>() as u64,
        flags: 0,
        start: q.start,
        end: q.end,
        walk_end: 0,
        vec: out.as_mut_ptr() as u64,
        vec_len: out.len() as u64,
        max_pages: 0,
        category_inverted: q.inverted,
        category_mask: q.mask,
        category_anyof_mask: q.anyof,
        return_mask: q.ret,
    };
    // SAFETY: the kernel reads `arg` (a live local of the size it says),
    // writes `walk_end` back into it, and writes at most `vec_len` regions
    // of 24 bytes (`PageRegion` is repr(C) with three u64) to `vec`, which
    // is `out`, borrowed mutably for the call.
    let r = unsafe {
        libc::ioctl(
            pagemap.as_raw_fd(),
            PAGEMAP_SCAN,
            &mut arg as *mut PmScanArg,
        )
    };
    if r < 0 {
        return Err(Errno::last());
    }
    let n = usize::try_from(r).unwrap_or(0).min(out.len());
    Ok((n, arg.walk_end))
}

/// `getdents64(fd, buf)`: fills `buf` with `struct linux_dirent64`
/// records of the directory `fd` and returns how many bytes it wrote
/// (0 at the end). The records are parsed by `proc::parse_dirents`.
pub fn getdents64(dir: std::os::fd::BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    use std::os::fd::AsRawFd;
    // SAFETY: the kernel writes at most `buf.len()` bytes to `buf`,
    // borrowed mutably for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_getdents64,
            dir.as_raw_fd(),
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(usize::try_from(r).unwrap_or(0).min(buf.len()))
}
