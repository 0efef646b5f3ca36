//! Checkpoint a live process, with all its threads, into CRIU 4.2 images,
//! like `criu dump -t PID -D DIR`.
//!
//! [`run`] seizes and freezes every thread ([`sys::Frozen`]), gathers what
//! /proc, ptrace and syscalls run inside the task tell ([`collect`]), builds
//! one image per CRIU image kind ([`dump`]), writes inventory.img last, and
//! then resumes the task (`leave_running`) or kills it as CRIU does. On any
//! error the task is resumed untouched and the images written so far are
//! removed.
//!
//! ```no_run
//! let opts = dumper::Opts {
//!     pid: 1234,
//!     dir: "/tmp/ckpt".into(),
//!     leave_running: true,
//!     ..Default::default()
//! };
//! let summary = dumper::run(&opts)?;
//! println!("{} threads, {} pages", summary.threads, summary.pages);
//! # Ok::<(), dumper::DumpError>(())
//! ```
#![deny(unsafe_code)]

pub mod collect;
pub mod dump;
pub mod error;
pub mod log;
pub mod proc;
pub mod sys;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use nix::unistd::Pid;

pub use error::{DumpError, Result};

use dump::{files::FileTable, pagemap, stats::Timings, ImageSet};
use log::Log;
use proc::ProcDir;
use sys::{Frozen, Release, RemoteMem};

/// What `dumper` was asked to do (the `criu dump` flags it takes).
#[derive(Debug, Clone, Default)]
pub struct Opts {
    /// `-t`: the process to dump.
    pub pid: i32,
    /// `-D`: the images directory (must exist).
    pub dir: PathBuf,
    /// `--leave-running`: resume the task after the dump instead of
    /// killing it.
    pub leave_running: bool,
    /// `-v`: 0 nothing, 1 errors, 2 warnings (default), 3 info, 4 debug.
    pub verbosity: u8,
    /// `-o`: log file; a relative path is taken inside `dir`, as CRIU does.
    pub log_file: Option<PathBuf>,
    /// Make the dump fail at a given point (tests of the failure paths;
    /// `DUMPER_FAULT` in the binary, like CRIU's `CRIU_FAULT`).
    pub fault: Option<Fault>,
}

/// Where [`Opts::fault`] makes a dump fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL the target right after it is frozen.
    KillAfterFreeze,
    /// Fail after the syscalls run inside the task.
    AfterInject,
    /// Fail after some images are written.
    WhileWriting,
}

impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "kill-after-freeze" => Ok(Fault::KillAfterFreeze),
            "after-inject" => Ok(Fault::AfterInject),
            "while-writing" => Ok(Fault::WhileWriting),
            _ => Err(format!("unknown fault {s:?}")),
        }
    }
}

/// What a successful dump did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Threads dumped.
    pub threads: usize,
    /// Pages written to pages-1.img.
    pub pages: u64,
    /// Bytes written to all images.
    pub bytes: u64,
}

/// Pages read from the target per read call.
const CHUNK_PAGES: u64 = 256;

/// Page buffers in flight between the memory reader and the image writer.
const BUFFERS: usize = 4;

/// Checkpoints `opts.pid` into `opts.dir`.
pub fn run(opts: &Opts) -> Result<Summary> {
    let log = Log::open(opts)?;
    let res = run_logged(opts, &log);
    match &res {
        Ok(s) => log.info(format_args!(
            "dump of {} done: {} threads, {} pages, {} bytes",
            opts.pid, s.threads, s.pages, s.bytes
        )),
        Err(e) => log.error(format_args!("dump of {} failed: {e}", opts.pid)),
    }
    res
}

fn run_logged(opts: &Opts, log: &Log) -> Result<Summary> {
    let pid_i = opts.pid;
    if pid_i <= 0 {
        return Err(DumpError::NoSuchProcess { pid: pid_i });
    }
    if pid_i == std::process::id() as i32 {
        return Err(DumpError::Unsupported {
            pid: pid_i,
            what: "dumping the dumper itself".into(),
        });
    }
    // Every /proc read of the dump goes through this directory fd, bound
    // to the process it was opened for (not to a pid that may be reused).
    let pdir = ProcDir::open(pid_i)?;
    let stat = match pdir.read_stat() {
        Ok(s) => s,
        Err(DumpError::Proc { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(DumpError::NoSuchProcess { pid: pid_i })
        }
        Err(e) => return Err(e),
    };
    if stat.state == 'Z' || stat.state == 'X' {
        return Err(DumpError::NoSuchProcess { pid: pid_i });
    }
    let mut images = ImageSet::open(&opts.dir)?;
    let status = pdir.read_status()?;
    if status.seccomp == 2 {
        return Err(DumpError::Unsupported {
            pid: pid_i,
            what: "seccomp filters".into(),
        });
    }
    let pid = Pid::from_raw(pid_i);
    log.info(format_args!("freezing {pid}"));
    let t_freeze = Instant::now();
    let mut frozen = Frozen::freeze_in(&pdir, status.seccomp != 0)?;
    let mut timings = Timings {
        freezing: t_freeze.elapsed(),
        ..Default::default()
    };
    let t_frozen = Instant::now();
    log.info(format_args!(
        "{} threads frozen in {:?}",
        frozen.threads.len(),
        timings.freezing
    ));
    let threads = frozen.threads.len();
    if opts.fault == Some(Fault::KillAfterFreeze) {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
    let res = dump_frozen(
        &pdir,
        &mut frozen,
        &mut images,
        log,
        &mut timings,
        opts.fault,
    )
    .and_then(|plan| {
        let inv = dump::inventory::build(dump::inventory::host_lsm(), dump::inventory::run_id());
        images.write("inventory.img", "INVENTORY", &[inv])?;
        Ok(plan)
    });
    let plan = match res {
        Ok(plan) => plan,
        Err(e) => {
            images.abort();
            if let Err(re) = frozen.release(Release::Resume) {
                log.error(format_args!("resuming {pid} after the failure: {re}"));
            }
            // Whatever failed first, a target that is gone is the cause: it
            // may be a zombie already, or still on its way out, which the
            // ESRCH the failing step got says.
            let gone = e.means_gone()
                || pdir
                    .read_stat()
                    .map_or(true, |s| s.state == 'Z' || s.state == 'X');
            return Err(if gone {
                DumpError::TargetGone { pid: pid_i }
            } else {
                e
            });
        }
    };
    let how = if opts.leave_running {
        Release::Resume
    } else {
        Release::Kill
    };
    let released = frozen.release(how);
    timings.frozen = t_frozen.elapsed();
    if let Err(e) = images.write(
        "stats-dump",
        "STATS",
        &[dump::stats::build(&timings, &plan)],
    ) {
        log.warn(format_args!("stats-dump: {e}"));
    }
    let bytes = images.bytes;
    images.commit();
    released?;
    Ok(Summary {
        threads,
        pages: plan.pages_written,
        bytes,
    })
}

fn dump_frozen(
    pdir: &ProcDir,
    frozen: &mut Frozen,
    images: &mut ImageSet,
    log: &Log,
    timings: &mut Timings,
    fault: Option<Fault>,
) -> Result<pagemap::Plan> {
    let pid = frozen.pid;
    let pid_i = pid.as_raw();
    let tids: Vec<i32> = frozen.threads.iter().map(|t| t.tid.as_raw()).collect();
    let children = pdir.read_children(&tids)?;
    if !children.is_empty() {
        return Err(DumpError::Unsupported {
            pid: pid_i,
            what: format!("a process tree (children {children:?})"),
        });
    }
    if let Some(t) = frozen.threads.iter().find(|t| t.group_stop.is_some()) {
        return Err(DumpError::Unsupported {
            pid: pid_i,
            what: format!("a stopped task (thread {} in group stop)", t.tid),
        });
    }
    let mem = RemoteMem::new(pid, pdir.open_file("mem")?);
    let me = ProcDir::myself()?;
    log.info(format_args!("collecting /proc facts"));
    let mut pf = collect::process_from_outside(pdir, &me)?;
    pf.shared_pending = sys::raw::peek_siginfo(pid, true)
        .map_err(|e| DumpError::ptrace(pid, "PTRACE_PEEKSIGINFO", e))?;
    if me.read("cgroup").ok() != pdir.read("cgroup").ok() {
        log.warn(format_args!(
            "{pid} is in another cgroup than the dumper; cgroups are not dumped"
        ));
    }
    let mut threads = Vec::with_capacity(frozen.threads.len());
    for t in &frozen.threads {
        let tf = collect::thread_from_outside(pdir, t, &mem)?;
        if tf.status.seccomp == 2 {
            return Err(DumpError::Unsupported {
                pid: pid_i,
                what: "seccomp filters".into(),
            });
        }
        threads.push(tf);
    }
    let exec_start = pf
        .mappings
        .iter()
        .map(|m| &m.map)
        .find(|m| m.exec && m.start < dump::mm::TASK_SIZE && m.end - m.start >= 4096)
        .map(|m| m.start)
        .ok_or_else(|| DumpError::Unsupported {
            pid: pid_i,
            what: "a task without an executable mapping".into(),
        })?;
    log.info(format_args!(
        "running syscalls inside the task (code at {exec_start:#x})"
    ));
    collect::from_inside(frozen, &mem, exec_start, &mut pf, &mut threads)?;
    if fault == Some(Fault::AfterInject) {
        return Err(DumpError::FaultInjected { at: "after inject" });
    }

    let mut table = FileTable::new();
    let vmas = dump::mm::build_vmas(&pf.mappings, |mf| match &mf.file {
        Some((f, _)) => table.special(f),
        None => 0,
    })
    .map_err(|u| DumpError::Unsupported {
        pid: pid_i,
        what: u.0,
    })?;
    let fdinfo = table.fds(&pf.fds);
    let exe_id = table.special(&pf.exe);
    let fs = dump::files::fs_entry(&mut table, &pf);

    // Pages.
    let t_mem = Instant::now();
    let mut pm = collect::memory::open_pagemap(pdir)?;
    let zero = collect::zero_page_pfn(&me);
    if zero.is_none() {
        log.warn(format_args!("zero page pfn unknown: zero pages get dumped"));
    }
    let sps: Vec<u64> = threads.iter().map(|t| t.regs.rsp).collect();
    let plan = pagemap::plan(&vmas, |v, sink| pm.read(v.start, v.end, sink), zero, &sps)?;
    log.info(format_args!(
        "{} pages to dump in {} runs ({} scanned)",
        plan.pages_written,
        plan.runs.len(),
        plan.pages_scanned
    ));
    let mut write_time = std::time::Duration::ZERO;
    let (pages_path, mut pages) = images.create_raw("pages-1.img")?;
    let progress = std::io::stderr().is_terminal() && plan.pages_written >= 16384;
    let mut done = 0u64;
    let mut show = |n: u64| {
        done += n;
        if progress && done % 4096 < n {
            eprint!(
                "\rdumper: {} of {} MiB of memory written",
                done / 256,
                plan.pages_written / 256
            );
        }
    };
    copy_pages_through(
        &mem,
        &plan,
        &pages_path,
        &mut pages,
        &mut write_time,
        &mut show,
    )?;
    if progress {
        eprintln!();
    }
    let t_w = Instant::now();
    images.finish_raw(&pages_path, pages)?;
    let (head, entries) = pagemap::entries(&plan);
    let (pm_img, mut w) = images.create(&format!("pagemap-{pid_i}.img"), "PAGEMAP")?;
    let werr = |source| DumpError::Image {
        path: pm_img.clone(),
        source,
    };
    w.write_message(&head).map_err(werr)?;
    for e in &entries {
        w.write_message(e).map_err(werr)?;
    }
    images.finish(&pm_img, w)?;
    write_time += t_w.elapsed();
    timings.memdump = t_mem.elapsed();
    timings.memwrite = write_time;

    // Everything else.
    let layout = dump::core::XsaveLayout::host();
    for (i, t) in threads.iter().enumerate() {
        let core = dump::core::build(t, (i == 0).then_some(&pf), &layout);
        images.write(&format!("core-{}.img", t.tid), "CORE", &[core])?;
    }
    if fault == Some(Fault::WhileWriting) {
        return Err(DumpError::FaultInjected {
            at: "while writing",
        });
    }
    let mm = dump::mm::build(&pf, vmas, exe_id);
    images.write(&format!("mm-{pid_i}.img"), "MM", &[mm])?;
    images.write(&format!("fs-{pid_i}.img"), "FS", &[fs])?;
    images.write(&format!("ids-{pid_i}.img"), "IDS", &[dump::ids::build(2)])?;
    images.write("pstree.img", "PSTREE", &[dump::pstree::build(&pf, &tids)])?;
    images.write("files.img", "FILES", &table.entries)?;
    images.write("fdinfo-2.img", "FDINFO", &fdinfo)?;
    images.write("seccomp.img", "SECCOMP", &[dump::seccomp::seccomp()])?;
    images.write("timens-0.img", "TIMENS", &[dump::seccomp::timens()])?;
    let _ = std::io::stderr().flush();
    Ok(plan)
}

/// Copies the pages through the dumper: a reader thread fills a few fixed
/// buffers from /proc/PID/mem while this thread writes the full ones, so
/// memory stays at BUFFERS chunks whatever the target's size.
fn copy_pages_through(
    mem: &RemoteMem,
    plan: &pagemap::Plan,
    pages_path: &std::path::Path,
    pages: &mut std::io::BufWriter<std::fs::File>,
    write_time: &mut std::time::Duration,
    show: &mut dyn FnMut(u64),
) -> Result<()> {
    // Reading the target's memory and writing the image overlap: a reader
    // thread fills a few fixed buffers while this thread writes the full
    // ones, so memory stays at BUFFERS chunks whatever the target's size,
    // and the time frozen is about the slower of the two, not their sum.
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<(Vec<u8>, usize)>(BUFFERS);
    let (empty_tx, empty_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(BUFFERS);
    for _ in 0..BUFFERS {
        let _ = empty_tx.send(vec![0u8; (CHUNK_PAGES * 4096) as usize]);
    }
    let runs = &plan.runs;
    let mem_ref = mem;
    std::thread::scope(|scope| -> Result<()> {
        let reader = scope.spawn(move || -> Result<()> {
            for run in runs {
                let mut off = 0;
                while off < run.nr_pages {
                    let n = (run.nr_pages - off).min(CHUNK_PAGES);
                    let len = (n * 4096) as usize;
                    // the writer has stopped (it failed): nothing more to do
                    let Ok(mut b) = empty_rx.recv() else {
                        return Ok(());
                    };
                    mem_ref.read(run.vaddr + off * 4096, &mut b[..len])?;
                    if full_tx.send((b, len)).is_err() {
                        return Ok(());
                    }
                    off += n;
                }
            }
            Ok(())
        });
        let mut written: Result<()> = Ok(());
        for (b, len) in full_rx.iter() {
            let t_w = Instant::now();
            if let Err(source) = pages.write_all(&b[..len]) {
                written = Err(DumpError::Write {
                    path: pages_path.to_path_buf(),
                    source,
                });
                break;
            }
            *write_time += t_w.elapsed();
            show((len / 4096) as u64);
            let _ = empty_tx.send(b);
        }
        drop(full_rx);
        drop(empty_tx);
        let read = reader
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        written.and(read)
    })
}
