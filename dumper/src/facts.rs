//! Gathering everything a dump needs from a frozen task: /proc files,
//! ptrace requests, and syscalls run inside the task. The image builders
//! in [`crate::dump`] only look at the structs defined here.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt};

use nix::errno::Errno;
use nix::unistd::Pid;

use crate::error::{DumpError, Result};
use crate::proc::{self, Mapping, PosixTimer, Rlimit, Stat, Status};
use crate::sys::inject::{self, CodePatch, RseqConf};
use crate::sys::{Frozen, Remote, RemoteMem};

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
    pub name: String,
    pub stat: FileStat,
    pub build_id: Option<Vec<u8>>,
}

/// One open fd.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FdFacts {
    pub fd: i32,
    pub file: FileRef,
    pub info: proc::FdInfo,
    /// Lower fd sharing this open file description (kcmp), if any.
    pub same_as: Option<i32>,
}

/// A mapping with what only the filesystem knows about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MappingFacts {
    pub map: Mapping,
    /// For file mappings: the file and the map_files link mode bits.
    pub file: Option<(FileRef, u32)>,
}

/// What `sigaltstack(NULL, &old)` returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AltStack {
    pub sp: u64,
    pub flags: u32,
    pub size: u64,
}

/// One POSIX timer with its state read inside the task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimerFacts {
    pub proc: PosixTimer,
    pub overrun: u32,
    /// interval sec, nsec, value sec, nsec.
    pub spec: [u64; 4],
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
    /// (struct rseq)->rseq_cs and the rseq_cs it points to (version, flags,
    /// start_ip, post_commit_offset, abort_ip), when set.
    pub rseq_cs: Option<(u64, u32, u32, u64, u64, u64)>,
    /// struct rseq flags.
    pub rseq_flags: u32,
    pub robust_list: (u64, u64),
    pub stat: Stat,
    pub status: Status,
    pub comm: String,
    pub tid_address: u64,
    pub altstack: AltStack,
    pub pdeath_sig: u32,
    pub secbits: u32,
    pub pending: Vec<Vec<u8>>,
    /// (ARCH_SHSTK_STATUS features, ssp) when the CPU has shadow stacks.
    pub shstk: Option<(u64, u64)>,
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

fn self_mnt_id(f: &File) -> i32 {
    let p = format!("/proc/self/fdinfo/{}", f.as_raw_fd());
    std::fs::read_to_string(p)
        .ok()
        .and_then(|s| proc::parse_fdinfo(&s).ok())
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

/// Opens a /proc magic link and describes the file behind it.
pub fn read_file_ref(link: &str, name: String, want_build_id: bool) -> Result<FileRef> {
    let f = File::open(link).map_err(|e| DumpError::proc(link, e))?;
    let md = f.metadata().map_err(|e| DumpError::proc(link, e))?;
    let stat = file_stat(&md, self_mnt_id(&f));
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

fn link_name(link: &str) -> Result<String> {
    let p = std::fs::read_link(link).map_err(|e| DumpError::proc(link, e))?;
    Ok(p.to_string_lossy().into_owned())
}

/// The pfn of the kernel's zero page, found by reading an untouched page
/// of our own and looking it up in /proc/self/pagemap (CRIU's kerndat
/// does the same). None when pfns are hidden.
pub fn zero_page_pfn() -> Option<u64> {
    // Large enough for calloc to mmap fresh pages; too small for THP.
    let v = vec![0u8; 256 << 10];
    let addr = v.as_ptr() as usize + (64 << 10);
    let _ = std::hint::black_box(std::hint::black_box(&v)[64 << 10]);
    let f = File::open("/proc/self/pagemap").ok()?;
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, (addr / 4096 * 8) as u64).ok()?;
    let pme = u64::from_le_bytes(b);
    let pfn = pme & ((1 << 55) - 1);
    (pme >> 63 == 1 && pfn != 0).then_some(pfn)
}

/// Reads the pagemap entries of `[start, end)`.
pub fn read_pagemap(pagemap: &File, start: u64, end: u64) -> Result<Vec<u64>> {
    let n = ((end - start) / 4096) as usize;
    let mut buf = vec![0u8; n * 8];
    pagemap
        .read_exact_at(&mut buf, start / 4096 * 8)
        .map_err(|e| DumpError::proc("pagemap", e))?;
    Ok(buf
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect())
}

/// What /proc and ptrace tell about one thread, before any injection.
pub fn thread_from_outside(
    pid: i32,
    t: &crate::sys::Tracee,
    mem: &RemoteMem,
) -> Result<ThreadFacts> {
    let tid = t.tid;
    let traced = |op: &'static str| move |e: Errno| DumpError::ptrace(tid, op, e);
    let xstate = inject::get_xstate(tid).map_err(traced("PTRACE_GETREGSET"))?;
    let mut tls = [[0u32; 4]; 3];
    for (i, slot) in tls.iter_mut().enumerate() {
        *slot = inject::get_thread_area(tid, 12 + i as u32)
            .map_err(traced("PTRACE_GET_THREAD_AREA"))?;
    }
    let rseq = match inject::get_rseq_conf(tid) {
        Ok(c) => Some(c),
        Err(Errno::EIO) | Err(Errno::EINVAL) => None,
        Err(e) => return Err(DumpError::ptrace(tid, "PTRACE_GET_RSEQ_CONFIGURATION", e)),
    };
    let mut rseq_cs = None;
    let mut rseq_flags = 0;
    if let Some(c) = rseq.filter(|c| c.abi_pointer != 0) {
        // struct rseq: u32 cpu_id_start, u32 cpu_id, u64 rseq_cs, u32 flags.
        let cs = mem.read_u64(c.abi_pointer + 8)?;
        rseq_flags = (mem.read_u64(c.abi_pointer + 16)? & 0xffff_ffff) as u32;
        if cs != 0 {
            let mut b = [0u8; 32];
            mem.read(cs, &mut b)?;
            let u64_at = |o: usize| {
                let mut x = [0u8; 8];
                x.copy_from_slice(&b[o..o + 8]);
                u64::from_le_bytes(x)
            };
            let version = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let flags = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            rseq_cs = Some((cs, version, flags, u64_at(8), u64_at(16), u64_at(24)));
        }
    }
    let robust_list = inject::get_robust_list(tid).map_err(traced("get_robust_list"))?;
    let pending = inject::peek_siginfo(tid, false).map_err(traced("PTRACE_PEEKSIGINFO"))?;
    let shstk = if has_shstk() {
        match inject::shstk_status(tid) {
            Ok(f) if f & 1 != 0 => Some((f, inject::get_shstk_ssp(tid).unwrap_or(0))),
            _ => Some((0, 0)),
        }
    } else {
        None
    };
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
        stat: proc::read_stat(pid, Some(tid.as_raw()))?,
        status: proc::read_status(pid, Some(tid.as_raw()))?,
        comm: proc::read_comm(pid, tid.as_raw())?,
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
    let (max, ..) = inject::cpuid(0, 0);
    max >= 7 && (inject::cpuid(7, 0).2 >> 7) & 1 == 1
}

/// What /proc tells about the process (mappings, files, limits...).
pub fn process_from_outside(pid: i32) -> Result<ProcFacts> {
    let mut p = ProcFacts {
        pid,
        stat: proc::read_stat(pid, None)?,
        status: proc::read_status(pid, None)?,
        limits: proc::read_limits(pid)?,
        personality: proc::read_personality(pid)?,
        loginuid: proc::read_value(pid, "loginuid").ok(),
        oom_score_adj: proc::read_value(pid, "oom_score_adj").ok(),
        auxv: proc::read_auxv(pid)?,
        ..Default::default()
    };
    for m in proc::read_smaps(pid)? {
        let is_file =
            m.path.starts_with('/') && (m.ino != 0 || m.dev_major != 0 || m.dev_minor != 0);
        let file = if is_file {
            if m.path.ends_with(" (deleted)") {
                return Err(DumpError::Unsupported {
                    pid,
                    what: format!("mapping of a deleted file ({})", m.path),
                });
            }
            let link = format!("/proc/{pid}/map_files/{:x}-{:x}", m.start, m.end);
            let mode = std::fs::symlink_metadata(&link)
                .map_err(|e| DumpError::proc(&link, e))?
                .mode();
            Some((read_file_ref(&link, m.path.clone(), true)?, mode))
        } else {
            None
        };
        p.mappings.push(MappingFacts { map: m, file });
    }
    let exe = format!("/proc/{pid}/exe");
    p.exe = read_file_ref(&exe, link_name(&exe)?, true)?;
    let cwd = format!("/proc/{pid}/cwd");
    p.cwd = read_file_ref(&cwd, link_name(&cwd)?, false)?;
    let root = format!("/proc/{pid}/root");
    p.root = read_file_ref(&root, link_name(&root)?, false)?;
    p.fds = read_fds(pid)?;
    let pid_s = pid.to_string();
    for ns in NS_ORDER {
        let theirs = proc::read_ns(&pid_s, ns)?;
        let ours = proc::read_ns("self", ns)?;
        if theirs != ours {
            return Err(DumpError::Unsupported {
                pid,
                what: format!("a {ns} namespace other than the dumper's"),
            });
        }
        p.ns.push((ns, theirs));
    }
    p.timers = proc::read_timers(pid)?
        .into_iter()
        .map(|t| TimerFacts {
            proc: t,
            ..Default::default()
        })
        .collect();
    Ok(p)
}

/// Describes every open fd; refuses kinds other than regular files,
/// directories and /dev/null.
pub fn read_fds(pid: i32) -> Result<Vec<FdFacts>> {
    let dir = format!("/proc/{pid}/fd");
    let mut fds: Vec<i32> = std::fs::read_dir(&dir)
        .map_err(|e| DumpError::proc(&dir, e))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    let mut out: Vec<FdFacts> = Vec::new();
    for fd in fds {
        let link = format!("{dir}/{fd}");
        let name = link_name(&link)?;
        let md = std::fs::metadata(&link).map_err(|e| DumpError::proc(&link, e))?;
        let ft = md.mode() & libc::S_IFMT;
        let devnull = ft == libc::S_IFCHR && md.rdev() == libc::makedev(1, 3);
        if !(ft == libc::S_IFREG || ft == libc::S_IFDIR || devnull) || name.ends_with(" (deleted)")
        {
            return Err(DumpError::Unsupported {
                pid,
                what: format!(
                    "fd {fd} ({name}), which is not a regular file, directory or /dev/null,"
                ),
            });
        }
        let info = proc::read_fdinfo(pid, fd)?;
        let file = if ft == libc::S_IFREG {
            let mut f = read_file_ref(&link, name, true)?;
            f.stat.mnt_id = info.mnt_id;
            f
        } else {
            FileRef {
                name,
                stat: file_stat(&md, info.mnt_id),
                build_id: None,
            }
        };
        let mut same_as = None;
        for prev in &out {
            if prev.same_as.is_none()
                && inject::kcmp_file(Pid::from_raw(pid), prev.fd, fd).ok() == Some(0)
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

fn per_thread(
    r: &mut Remote<'_>,
    mem: &RemoteMem,
    scratch: u64,
    t: &mut ThreadFacts,
) -> Result<()> {
    r.syscall(
        "prctl(PR_GET_TID_ADDRESS)",
        NR_PRCTL,
        [PR_GET_TID_ADDRESS, scratch + slot::TID_ADDR, 0, 0, 0, 0],
    )?;
    t.tid_address = mem.read_u64(scratch + slot::TID_ADDR)?;
    r.syscall(
        "sigaltstack",
        NR_SIGALTSTACK,
        [0, scratch + slot::ALTSTACK, 0, 0, 0, 0],
    )?;
    // stack_t: void *ss_sp; int ss_flags; (pad) size_t ss_size.
    t.altstack = AltStack {
        sp: mem.read_u64(scratch + slot::ALTSTACK)?,
        flags: (mem.read_u64(scratch + slot::ALTSTACK + 8)? & 0xffff_ffff) as u32,
        size: mem.read_u64(scratch + slot::ALTSTACK + 16)?,
    };
    r.syscall(
        "prctl(PR_GET_PDEATHSIG)",
        NR_PRCTL,
        [PR_GET_PDEATHSIG, scratch + slot::PDEATH, 0, 0, 0, 0],
    )?;
    t.pdeath_sig = (mem.read_u64(scratch + slot::PDEATH)? & 0xffff_ffff) as u32;
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
    r.syscall(
        "prctl(PR_GET_CHILD_SUBREAPER)",
        NR_PRCTL,
        [
            PR_GET_CHILD_SUBREAPER,
            scratch + slot::SUBREAPER,
            0,
            0,
            0,
            0,
        ],
    )?;
    p.child_subreaper = mem.read_u64(scratch + slot::SUBREAPER)? & 0xffff_ffff != 0;
    let mb = r.syscall_raw(
        NR_MEMBARRIER,
        [MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0, 0, 0, 0],
    )?;
    p.membarrier_mask = if mb > 0 { mb as u32 } else { 0 };
    Ok(())
}

/// Reads the rest of a file (helper for tests and small files).
pub fn read_all(mut f: File) -> std::io::Result<Vec<u8>> {
    let mut v = Vec::new();
    f.read_to_end(&mut v)?;
    Ok(v)
}
