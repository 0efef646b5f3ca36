//! One thread, before anything is injected: ptrace requests (FPU state,
//! TLS, rseq, robust list, pending signals, shadow stack), its rseq
//! critical section from memory, and its /proc files.

use nix::errno::Errno;

use crate::error::{DumpError, Result};
use crate::proc::{ProcDir, Stat, Status};
use crate::sys::raw::{self, RobustList, RseqConf};
use crate::sys::{RemoteMem, Tracee};

/// What `sigaltstack(NULL, &old)` returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AltStack {
    pub sp: u64,
    pub flags: u32,
    pub size: u64,
}

/// The rseq critical section a thread's `struct rseq` points to
/// (`struct rseq_cs`), and where it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RseqCs {
    /// Address of the `struct rseq_cs` ((struct rseq)->rseq_cs).
    pub ptr: u64,
    pub version: u32,
    pub flags: u32,
    pub start_ip: u64,
    pub post_commit_offset: u64,
    pub abort_ip: u64,
}

/// Everything about one thread.
#[derive(Debug, Clone)]
pub struct ThreadFacts {
    pub tid: i32,
    /// Registers as the thread had them (no syscall-restart fix-up).
    pub regs: libc::user_regs_struct,
    pub xstate: Vec<u8>,
    pub tls: [[u32; 4]; 3],
    pub sigmask: u64,
    pub rseq: Option<RseqConf>,
    /// The rseq critical section, when (struct rseq)->rseq_cs is set.
    pub rseq_cs: Option<RseqCs>,
    /// struct rseq flags.
    pub rseq_flags: u32,
    pub robust_list: RobustList,
    pub stat: Stat,
    pub status: Status,
    /// The comm, as bytes.
    pub comm: Vec<u8>,
    pub tid_address: u64,
    pub altstack: AltStack,
    pub pdeath_sig: u32,
    pub secbits: u32,
    pub pending: Vec<Vec<u8>>,
    /// (ARCH_SHSTK_STATUS features, ssp) when the CPU has shadow stacks.
    pub shstk: Option<(u64, u64)>,
}

/// Parses a `struct rseq_cs` (32 bytes: u32 version, u32 flags, u64
/// start_ip, post_commit_offset, abort_ip) found at `ptr`.
pub fn parse_rseq_cs(ptr: u64, b: &[u8; 32]) -> RseqCs {
    let u64_at = |o: usize| {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(x)
    };
    RseqCs {
        ptr,
        version: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        flags: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        start_ip: u64_at(8),
        post_commit_offset: u64_at(16),
        abort_ip: u64_at(24),
    }
}

/// What /proc and ptrace tell about one thread, before any injection.
pub fn thread_from_outside(proc: &ProcDir, t: &Tracee, mem: &RemoteMem) -> Result<ThreadFacts> {
    let tid = t.tid;
    let traced = |op: &'static str| move |e: Errno| DumpError::ptrace(tid, op, e);
    let xstate = raw::get_xstate(tid).map_err(traced("PTRACE_GETREGSET"))?;
    let mut tls = [[0u32; 4]; 3];
    for (i, slot) in tls.iter_mut().enumerate() {
        *slot =
            raw::get_thread_area(tid, 12 + i as u32).map_err(traced("PTRACE_GET_THREAD_AREA"))?;
    }
    let rseq = match raw::get_rseq_conf(tid) {
        Ok(c) => Some(c),
        Err(Errno::EIO) | Err(Errno::EINVAL) => None,
        Err(e) => return Err(DumpError::ptrace(tid, "PTRACE_GET_RSEQ_CONFIGURATION", e)),
    };
    let mut rseq_cs = None;
    let mut rseq_flags = 0;
    if let Some(c) = rseq.filter(|c| c.abi_pointer != 0) {
        // struct rseq: u32 cpu_id_start, u32 cpu_id, u64 rseq_cs, u32 flags.
        let cs = mem.read_u64(c.abi_pointer + 8)?;
        rseq_flags = mem.read_u32(c.abi_pointer + 16)?;
        if cs != 0 {
            let mut b = [0u8; 32];
            mem.read(cs, &mut b)?;
            rseq_cs = Some(parse_rseq_cs(cs, &b));
        }
    }
    let robust_list = raw::get_robust_list(tid).map_err(traced("get_robust_list"))?;
    let pending = raw::peek_siginfo(tid, false).map_err(traced("PTRACE_PEEKSIGINFO"))?;
    let shstk = if has_shstk() {
        match raw::shstk_status(tid) {
            Ok(f) if f & 1 != 0 => Some((f, raw::get_shstk_ssp(tid).unwrap_or(0))),
            _ => Some((0, 0)),
        }
    } else {
        None
    };
    let task = proc.task(tid.as_raw())?;
    Ok(ThreadFacts {
        tid: tid.as_raw(),
        regs: t.regs,
        xstate,
        tls,
        sigmask: t.sigmask,
        rseq,
        rseq_cs,
        rseq_flags,
        robust_list,
        stat: task.read_stat()?,
        status: task.read_status()?,
        comm: task.read_comm()?,
        tid_address: 0,
        altstack: AltStack::default(),
        pdeath_sig: 0,
        secbits: 0,
        pending,
        shstk,
    })
}

/// The CPU has CET shadow stacks (CPUID leaf 7, ECX bit 7), as compel checks.
pub fn has_shstk() -> bool {
    let (max, ..) = raw::cpuid(0, 0);
    max >= 7 && (raw::cpuid(7, 0).2 >> 7) & 1 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rseq_cs_layout() {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&0u32.to_le_bytes());
        b[4..8].copy_from_slice(&2u32.to_le_bytes());
        b[8..16].copy_from_slice(&0x1000u64.to_le_bytes());
        b[16..24].copy_from_slice(&0x20u64.to_le_bytes());
        b[24..].copy_from_slice(&0x2000u64.to_le_bytes());
        let cs = parse_rseq_cs(0x7f00, &b);
        assert_eq!(
            cs,
            RseqCs {
                ptr: 0x7f00,
                version: 0,
                flags: 2,
                start_ip: 0x1000,
                post_commit_offset: 0x20,
                abort_ip: 0x2000
            }
        );
    }
}
