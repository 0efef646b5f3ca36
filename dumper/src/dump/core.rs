//! core-TID.img: registers, FPU state, TLS, signals, scheduling, creds of
//! one thread; for the leader also the task-wide part (`tc`): sigactions,
//! rlimits, timers, personality...

use criu_image::pb;

use crate::collect::{ProcFacts, ThreadFacts, SIGMAX};
use crate::sys::raw as inject;

const ERESTARTSYS: i64 = 512;
const ERESTARTNOINTR: i64 = 513;
const ERESTARTNOHAND: i64 = 514;
const ERESTART_RESTARTBLOCK: i64 = 516;
const EINTR: i64 = 4;
const TASK_ALIVE: u32 = 1;
const RSEQ_CS_FLAG_NO_RESTART_ON_SIGNAL: u32 = 1 << 1;

/// The registers a restored thread should start with: a thread stopped in
/// an interrupted syscall gets the syscall restarted (ip back over the
/// 2-byte `syscall`, ax = nr) or, for restart_block syscalls, `-EINTR`,
/// as the kernel would have done on its way back to user space.
pub fn restart_fixup(regs: &libc::user_regs_struct) -> libc::user_regs_struct {
    let mut r = *regs;
    if (r.orig_rax as i64) >= 0 {
        match -(r.rax as i64) {
            ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND => {
                r.rax = r.orig_rax;
                r.rip = r.rip.wrapping_sub(2);
            }
            ERESTART_RESTARTBLOCK => r.rax = (-EINTR) as u64,
            _ => {}
        }
    }
    r
}

fn gpregs(r: &libc::user_regs_struct) -> pb::UserX86RegsEntry {
    pb::UserX86RegsEntry {
        r15: r.r15,
        r14: r.r14,
        r13: r.r13,
        r12: r.r12,
        bp: r.rbp,
        bx: r.rbx,
        r11: r.r11,
        r10: r.r10,
        r9: r.r9,
        r8: r.r8,
        ax: r.rax,
        cx: r.rcx,
        dx: r.rdx,
        si: r.rsi,
        di: r.rdi,
        orig_ax: r.orig_rax,
        ip: r.rip,
        cs: r.cs,
        flags: r.eflags,
        sp: r.rsp,
        ss: r.ss,
        fs_base: r.fs_base,
        gs_base: r.gs_base,
        ds: r.ds,
        es: r.es,
        fs: r.fs,
        gs: r.gs,
        mode: Some(pb::UserX86RegsMode::Native as i32),
    }
}

/// One XSAVE state component in the standard (non-compacted) layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XsaveComponent {
    /// Its bit in XCR0 / `xstate_bv` (2 YMM, 5 opmask, 9 PKRU...).
    pub feature: u32,
    /// Byte offset in the XSAVE area.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
}

/// Which XSAVE components the CPU has and where they sit in the standard
/// layout (CPUID leaf 0xD), like compel's `compel_fpu_feature_offset`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XsaveLayout {
    /// The user components that have a field in the image.
    pub comps: Vec<XsaveComponent>,
    /// The CPU has user shadow stacks.
    pub shstk: bool,
}

impl XsaveLayout {
    /// Reads the layout of this CPU.
    pub fn host() -> Self {
        let (max, ..) = inject::cpuid(0, 0);
        let mut comps = Vec::new();
        if max >= 0xd {
            let (eax, _, _, edx) = inject::cpuid(0xd, 0);
            let mask = (eax as u64) | ((edx as u64) << 32);
            // User features with a field in the image: YMM..Hi16_ZMM, PKRU.
            for feature in [2u32, 3, 4, 5, 6, 7, 9] {
                if mask & (1 << feature) != 0 {
                    let (size, offset, ..) = inject::cpuid(0xd, feature);
                    comps.push(XsaveComponent {
                        feature,
                        offset: offset as usize,
                        size: size as usize,
                    });
                }
            }
        }
        Self {
            comps,
            shstk: crate::collect::has_shstk(),
        }
    }

    fn get(&self, feature: u32) -> Option<&XsaveComponent> {
        self.comps.iter().find(|c| c.feature == feature)
    }
}

fn words32(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn words64(b: &[u8]) -> Vec<u64> {
    b.chunks_exact(8)
        .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect()
}

/// Splits an XSAVE area into the image's FPU message.
pub fn fpregs(
    xs: &[u8],
    layout: &XsaveLayout,
    shstk: Option<(u64, u64)>,
) -> pb::UserX86FpregsEntry {
    let mut area = xs.to_vec();
    if area.len() < 576 {
        area.resize(576, 0);
    }
    let u16_at = |o: usize| u16::from_le_bytes([area[o], area[o + 1]]) as u32;
    let u32_at = |o: usize| u32::from_le_bytes([area[o], area[o + 1], area[o + 2], area[o + 3]]);
    let u64_at = |o: usize| words64(&area[o..o + 8])[0];
    let comp = |feature: u32, want: usize| -> Option<&[u8]> {
        let c = layout.get(feature)?;
        (c.size == want)
            .then(|| area.get(c.offset..c.offset.checked_add(c.size)?))
            .flatten()
    };
    let xsave = pb::UserX86XsaveEntry {
        xstate_bv: u64_at(512),
        ymmh_space: comp(2, 256).map(words32).unwrap_or_default(),
        bndreg_state: comp(3, 64).map(words64).unwrap_or_default(),
        bndcsr_state: comp(4, 16).map(words64).unwrap_or_default(),
        opmask_reg: comp(5, 64).map(words64).unwrap_or_default(),
        zmm_upper: comp(6, 512).map(words64).unwrap_or_default(),
        hi16_zmm: comp(7, 1024).map(words64).unwrap_or_default(),
        pkru: comp(9, 8).map(words32).unwrap_or_default(),
        cet: layout.shstk.then(|| {
            let (cet, ssp) = shstk.unwrap_or((0, 0));
            pb::UserX86CetEntry { cet, ssp }
        }),
    };
    pb::UserX86FpregsEntry {
        cwd: u16_at(0),
        swd: u16_at(2),
        twd: u16_at(4),
        fop: u16_at(6),
        rip: u64_at(8),
        rdp: u64_at(16),
        mxcsr: u32_at(24),
        mxcsr_mask: u32_at(28),
        st_space: words32(&area[32..160]),
        xmm_space: words32(&area[160..416]),
        padding: Vec::new(),
        xsave: Some(xsave),
    }
}

/// One GDT TLS slot as the image wants it.
pub fn tls_entry(d: &[u32; 4]) -> pb::UserDescT {
    let f = d[3];
    let bit = |n: u32| (f >> n) & 1 == 1;
    pb::UserDescT {
        entry_number: d[0],
        base_addr: d[1],
        limit: d[2],
        seg_32bit: bit(0),
        contents_h: bit(2),
        contents_l: bit(1),
        read_exec_only: bit(3),
        limit_in_pages: bit(4),
        seg_not_present: bit(5),
        usable: bit(6),
    }
}

fn caps(v: u64) -> Vec<u32> {
    vec![v as u32, (v >> 32) as u32]
}

fn creds(t: &ThreadFacts) -> pb::CredsEntry {
    let s = &t.status;
    pb::CredsEntry {
        uid: s.uid[0],
        gid: s.gid[0],
        euid: s.uid[1],
        egid: s.gid[1],
        suid: s.uid[2],
        sgid: s.gid[2],
        fsuid: s.uid[3],
        fsgid: s.gid[3],
        cap_inh: caps(s.cap_inh),
        cap_prm: caps(s.cap_prm),
        cap_eff: caps(s.cap_eff),
        cap_bnd: caps(s.cap_bnd),
        secbits: t.secbits,
        groups: s.groups.clone(),
        lsm_profile: None,
        lsm_sockcreate: None,
        apparmor_data: None,
        no_new_privs: (s.no_new_privs > 0).then_some(s.no_new_privs),
        cap_amb: caps(s.cap_amb),
    }
}

fn signal_queue(q: &[Vec<u8>]) -> pb::SignalQueueEntry {
    pb::SignalQueueEntry {
        signals: q
            .iter()
            .map(|s| pb::SiginfoEntry { siginfo: s.clone() })
            .collect(),
    }
}

/// The registers for the image: restart fix-up, then the rseq abort
/// fix-up when the thread stopped inside an rseq critical section.
pub fn image_regs(t: &ThreadFacts) -> libc::user_regs_struct {
    let mut r = restart_fixup(&t.regs);
    if let Some(cs) = t.rseq_cs.filter(|cs| cs.version == 0) {
        let flags = cs.flags | t.rseq_flags;
        let inside =
            r.rip >= cs.start_ip && r.rip < cs.start_ip.wrapping_add(cs.post_commit_offset);
        if inside && flags & RSEQ_CS_FLAG_NO_RESTART_ON_SIGNAL == 0 {
            r.rip = cs.abort_ip;
        }
    }
    r
}

/// The thread-only part of a core entry.
pub fn thread_core(t: &ThreadFacts, leader: bool) -> pb::ThreadCoreEntry {
    let rt = t.stat.policy & !0x4000_0000;
    pb::ThreadCoreEntry {
        futex_rla: t.robust_list.head,
        futex_rla_len: t.robust_list.len as u32,
        sched_nice: Some(t.stat.nice),
        sched_policy: Some(t.stat.policy),
        sched_prio: (rt == libc::SCHED_FIFO as u32 || rt == libc::SCHED_RR as u32)
            .then_some(t.stat.rt_priority),
        blk_sigset: (!leader).then_some(t.sigmask),
        sas: Some(pb::ThreadSasEntry {
            ss_sp: t.altstack.sp,
            ss_size: t.altstack.size,
            ss_flags: t.altstack.flags,
        }),
        pdeath_sig: (t.pdeath_sig != 0).then_some(t.pdeath_sig),
        signals_p: Some(signal_queue(&t.pending)),
        creds: Some(creds(t)),
        seccomp_mode: (t.status.seccomp != 0).then_some(t.status.seccomp as i32),
        seccomp_filter: None,
        comm: Some(t.comm.clone()),
        blk_sigset_extended: None,
        rseq_entry: t.rseq.map(|c| pb::RseqEntry {
            rseq_abi_pointer: c.abi_pointer,
            rseq_abi_size: c.abi_size,
            signature: c.signature,
            rseq_cs_pointer: t.rseq_cs.and_then(|cs| {
                ((cs.flags | t.rseq_flags) & RSEQ_CS_FLAG_NO_RESTART_ON_SIGNAL != 0)
                    .then_some(cs.ptr)
            }),
        }),
        cg_set: Some(1),
    }
}

fn itimer(v: &[u64; 4]) -> pb::ItimerEntry {
    pb::ItimerEntry {
        isec: v[0],
        iusec: v[1],
        vsec: v[2],
        vusec: v[3],
    }
}

/// The task-wide part, dumped with the leader.
pub fn task_core(p: &ProcFacts, leader: &ThreadFacts) -> pb::TaskCoreEntry {
    let sigactions = (1..=SIGMAX)
        .filter(|&s| s != libc::SIGKILL as usize && s != libc::SIGSTOP as usize)
        .filter_map(|s| p.sigactions.get(s - 1))
        .map(|a| pb::SaEntry {
            sigaction: a[0],
            flags: a[1],
            restorer: a[2],
            mask: a[3],
            compat_sigaction: Some(false),
            mask_extended: None,
        })
        .collect();
    pb::TaskCoreEntry {
        task_state: TASK_ALIVE,
        exit_code: 0,
        personality: p.personality,
        flags: p.stat.flags,
        blk_sigset: leader.sigmask,
        comm: p.stat.comm.clone(),
        timers: Some(pb::TaskTimersEntry {
            real: itimer(&p.itimers[0]),
            virt: itimer(&p.itimers[1]),
            prof: itimer(&p.itimers[2]),
            posix: p
                .timers
                .iter()
                .map(|t| pb::PosixTimerEntry {
                    it_id: t.proc.id as u32,
                    clock_id: t.proc.clock_id,
                    si_signo: t.proc.signo,
                    it_sigev_notify: t.proc.notify,
                    sival_ptr: t.proc.sival_ptr,
                    overrun: t.overrun,
                    isec: t.spec[0],
                    insec: t.spec[1],
                    vsec: t.spec[2],
                    vnsec: t.spec[3],
                    notify_thread_id: t.proc.notify_tid,
                })
                .collect(),
        }),
        rlimits: Some(pb::TaskRlimitsEntry {
            rlimits: p
                .limits
                .iter()
                .map(|l| pb::RlimitEntry {
                    cur: l.cur,
                    max: l.max,
                })
                .collect(),
        }),
        cg_set: None,
        signals_s: Some(signal_queue(&p.shared_pending)),
        old_seccomp_mode: None,
        old_seccomp_filter: None,
        loginuid: p.loginuid,
        oom_score_adj: p.oom_score_adj,
        sigactions,
        child_subreaper: Some(p.child_subreaper),
        blk_sigset_extended: None,
        stop_signo: None,
        membarrier_registration_mask: (p.membarrier_mask != 0).then_some(p.membarrier_mask),
    }
}

/// The whole core entry of one thread (`proc_facts` for the leader only).
pub fn build(
    t: &ThreadFacts,
    proc_facts: Option<&ProcFacts>,
    layout: &XsaveLayout,
) -> pb::CoreEntry {
    let regs = image_regs(t);
    pb::CoreEntry {
        mtype: pb::core_entry::March::X8664 as i32,
        thread_info: Some(pb::ThreadInfoX86 {
            clear_tid_addr: t.tid_address,
            gpregs: gpregs(&regs),
            fpregs: fpregs(&t.xstate, layout, t.shstk),
            tls: t.tls.iter().map(tls_entry).collect(),
        }),
        tc: proc_facts.map(|p| task_core(p, t)),
        thread_core: Some(thread_core(t, proc_facts.is_some())),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs() -> libc::user_regs_struct {
        // SAFETY-free: user_regs_struct is plain integers; build it field
        // by field through Default-like zeroing.
        let mut r: libc::user_regs_struct = unsafe_free_zero();
        r.rip = 0x1000;
        r
    }

    fn unsafe_free_zero() -> libc::user_regs_struct {
        libc::user_regs_struct {
            r15: 0,
            r14: 0,
            r13: 0,
            r12: 0,
            rbp: 0,
            rbx: 0,
            r11: 0,
            r10: 0,
            r9: 0,
            r8: 0,
            rax: 0,
            rcx: 0,
            rdx: 0,
            rsi: 0,
            rdi: 0,
            orig_rax: 0,
            rip: 0,
            cs: 0,
            eflags: 0,
            rsp: 0,
            ss: 0,
            fs_base: 0,
            gs_base: 0,
            ds: 0,
            es: 0,
            fs: 0,
            gs: 0,
        }
    }

    #[test]
    fn restart_rules() {
        let mut r = regs();
        r.orig_rax = 230;
        r.rax = (-516i64) as u64;
        let f = restart_fixup(&r);
        assert_eq!(f.rax as i64, -4);
        assert_eq!(f.rip, 0x1000);
        r.rax = (-512i64) as u64;
        let f = restart_fixup(&r);
        assert_eq!(f.rax, 230);
        assert_eq!(f.rip, 0xffe);
        r.orig_rax = u64::MAX;
        assert_eq!(restart_fixup(&r).rip, 0x1000);
    }

    #[test]
    fn empty_tls_slot() {
        // What the kernel reports for an unused slot: read_exec_only and
        // seg_not_present set.
        let e = tls_entry(&[12, 0, 0, 0b10_1000]);
        assert!(e.read_exec_only && e.seg_not_present && !e.usable);
        assert_eq!(e.entry_number, 12);
    }

    #[test]
    fn fpregs_legacy_area() {
        let mut xs = vec![0u8; 1024];
        xs[0..2].copy_from_slice(&0x37fu16.to_le_bytes());
        xs[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        xs[512..520].copy_from_slice(&0xa2u64.to_le_bytes());
        let layout = XsaveLayout {
            comps: vec![XsaveComponent {
                feature: 2,
                offset: 576,
                size: 256,
            }],
            shstk: true,
        };
        let f = fpregs(&xs, &layout, None);
        assert_eq!(f.cwd, 895);
        assert_eq!(f.mxcsr, 8064);
        assert_eq!(f.st_space.len(), 32);
        assert_eq!(f.xmm_space.len(), 64);
        let x = f.xsave.unwrap();
        assert_eq!(x.xstate_bv, 162);
        assert_eq!(x.ymmh_space.len(), 64);
        assert_eq!(x.cet, Some(pb::UserX86CetEntry { cet: 0, ssp: 0 }));
        assert!(x.opmask_reg.is_empty());
    }
}
