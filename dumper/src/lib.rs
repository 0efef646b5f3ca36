//! Checkpoint a live process, with all its threads, into CRIU 4.2 images,
//! like `criu dump -t PID -D DIR`.
//!
//! [`run`] is five steps:
//!
//! 1. **check** ([`check::target`], [`dump::ImageSet::open`]): every
//!    refusal, from what /proc shows from outside, and the images
//!    directory; a refused task is not touched.
//! 2. **freeze** ([`sys::Frozen::freeze`]): seize and stop every thread.
//! 3. **collect** ([`collect`](mod@collect)): /proc and ptrace from outside, the refusal
//!    rules once more on what was gathered ([`check::frozen`]), then the
//!    syscalls run inside the task.
//! 4. **write** ([`dump`]): pure builders turn the facts into messages;
//!    pages are streamed from the task; everything is written under a
//!    staging directory.
//! 5. **release** ([`sys::Frozen::release`]) and commit
//!    ([`dump::ImageSet::commit`]: the images moved into place,
//!    inventory.img last): with `leave_running` the task is resumed, then
//!    the images committed; otherwise they are committed, then the task is
//!    killed as CRIU does. Then stats-dump.
//!
//! On any error the task is resumed untouched and the directory is left as
//! it was, an older dump in it included. Progress is reported through a
//! callback, never printed.
//!
//! ```no_run
//! let opts = dumper::Opts {
//!     pid: 1234,
//!     dir: "/tmp/ckpt".into(),
//!     leave_running: true,
//!     ..Default::default()
//! };
//! let mut pages = 0;
//! let summary = dumper::run(&opts, Some(&mut |p| {
//!     if let dumper::Progress::Pages { written, .. } = p {
//!         pages = written;
//!     }
//! }))?;
//! println!("{} threads, {} pages", summary.threads, summary.pages);
//! # Ok::<(), dumper::DumpError>(())
//! ```
#![deny(unsafe_code)]

pub mod check;
pub mod collect;
pub mod dump;
pub mod error;
pub mod log;
pub mod proc;
pub mod sys;

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::unistd::Pid;

pub use error::{DumpError, Result};

use check::Target;
use collect::{ProcFacts, ThreadFacts};
use criu_image::registry;
use dump::{pagemap, stats::Timings, ImageSet, ProcessImages};
use log::Log;
use proc::ProcDir;
use sys::{Frozen, Release, RemoteMem};

/// What `dumper` was asked to do (the `criu dump` flags it takes).
#[derive(Debug, Clone, Default)]
pub struct Opts {
    /// `-t`: the process to dump.
    pub pid: i32,
    /// `-D`: the images directory (must exist). An older dump in it is
    /// replaced, and kept if this dump fails.
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
    #[cfg(feature = "fault-injection")]
    pub fault: Option<Fault>,
}

impl Opts {
    /// The dump is to fail at `at` (`Opts::fault`).
    #[cfg(feature = "fault-injection")]
    fn fault_at(&self, at: Fault) -> bool {
        self.fault == Some(at)
    }

    /// Built without the `fault-injection` feature: never.
    #[cfg(not(feature = "fault-injection"))]
    fn fault_at(&self, _at: Fault) -> bool {
        false
    }
}

/// Where `Opts::fault` makes a dump fail (with the `fault-injection`
/// feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL the target right after it is frozen.
    KillAfterFreeze,
    /// Fail after the syscalls run inside the task.
    AfterInject,
    /// Fail after some images are written.
    WhileWriting,
    /// Fail when half of the new images have been moved into place.
    WhileCommitting,
    /// SIGKILL the dumper itself when half of the new images have been
    /// moved into place (for the binary: it kills the calling process).
    KillWhileCommitting,
}

impl Fault {
    /// Every fault with its name in `DUMPER_FAULT`.
    pub const ALL: [(&'static str, Fault); 5] = [
        ("kill-after-freeze", Fault::KillAfterFreeze),
        ("after-inject", Fault::AfterInject),
        ("while-writing", Fault::WhileWriting),
        ("while-committing", Fault::WhileCommitting),
        ("kill-while-committing", Fault::KillWhileCommitting),
    ];

    fn injected(self) -> DumpError {
        let at = Fault::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("?", |(n, _)| n);
        DumpError::FaultInjected { at }
    }
}

impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match Fault::ALL.iter().find(|(n, _)| *n == s) {
            Some((_, f)) => Ok(*f),
            None => {
                let names: Vec<&str> = Fault::ALL.iter().map(|(n, _)| *n).collect();
                Err(format!("unknown fault {s:?} (known: {})", names.join(", ")))
            }
        }
    }
}

/// What [`run`] reports while it works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// The checks passed; the task is being frozen.
    Freezing,
    /// Every thread is stopped.
    Frozen {
        /// How many.
        threads: usize,
    },
    /// Code is about to be run inside the task (nothing is refused after
    /// this point).
    Injecting,
    /// Pages written to the pages image so far.
    Pages {
        /// Written so far.
        written: u64,
        /// To write in all.
        total: u64,
    },
    /// The images are in place, inventory.img last.
    Committed,
}

/// What a successful dump did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Threads dumped.
    pub threads: usize,
    /// Pages written to the pages image.
    pub pages: u64,
    /// Bytes written to all images.
    pub bytes: u64,
}

/// Pages read from the target per read call.
const CHUNK_PAGES: u64 = 256;

/// Page buffers in flight between the memory reader and the image writer.
const BUFFERS: usize = 4;

/// Checkpoints `opts.pid` into `opts.dir`, telling `progress` (if given)
/// how far it is. The error is returned, not printed; with a log file
/// (`opts.log_file`) it is also written there.
pub fn run(opts: &Opts, progress: Option<&mut dyn FnMut(Progress)>) -> Result<Summary> {
    let log = Log::open(opts)?;
    let mut quiet = |_: Progress| {};
    let progress = progress.unwrap_or(&mut quiet);
    let res = checkpoint(opts, &log, progress);
    match &res {
        Ok(s) => log.info(format_args!(
            "dump of {} done: {} threads, {} pages, {} bytes",
            opts.pid, s.threads, s.pages, s.bytes
        )),
        Err(e) => log.failure(format_args!("dump of {} failed: {}", opts.pid, e.chain())),
    }
    res
}

/// A frozen task's facts, gathered from outside and inside.
struct Collected {
    proc: ProcFacts,
    threads: Vec<ThreadFacts>,
    mem: RemoteMem,
}

/// check → freeze → collect → write → release.
fn checkpoint(opts: &Opts, log: &Log, progress: &mut dyn FnMut(Progress)) -> Result<Summary> {
    let target = check::target(opts.pid)?;
    let mut images = ImageSet::open(&opts.dir)?;
    progress(Progress::Freezing);
    let mut timings = Timings::default();
    let mut frozen = freeze(&target, log, &mut timings)?;
    let t_frozen = Instant::now();
    let threads = frozen.threads.len();
    progress(Progress::Frozen { threads });
    if opts.fault_at(Fault::KillAfterFreeze) {
        let _ = nix::sys::signal::kill(frozen.pid, nix::sys::signal::Signal::SIGKILL);
    }
    let written = collect(&target.dir, &mut frozen, opts, log, progress).and_then(|task| {
        write(
            &target.dir,
            &task,
            &mut images,
            opts,
            log,
            progress,
            &mut timings,
        )
    });
    let plan = match written {
        Ok(plan) => plan,
        Err(e) => return Err(failed(&target.dir, frozen, images, log, e)),
    };
    // The task stays stopped no longer than it must: with --leave-running
    // it goes on before the images are moved into place (a failed commit
    // then fails the dump, not the task); to be killed, it is killed only
    // once they are in place.
    let released = if opts.leave_running {
        let released = frozen.release(Release::Resume);
        timings.frozen = t_frozen.elapsed();
        commit(&mut images, opts)?;
        released
    } else {
        if let Err(e) = commit(&mut images, opts) {
            return Err(failed(&target.dir, frozen, images, log, e));
        }
        let released = frozen.release(Release::Kill);
        timings.frozen = t_frozen.elapsed();
        released
    };
    progress(Progress::Committed);
    // After the commit, like CRIU's: not part of what makes a dump complete.
    let stats = dump::stats_image(dump::stats::build(&timings, &plan));
    if let Err(e) = images.write(&stats) {
        log.warn(format_args!("{}", e.chain()));
    }
    released?;
    Ok(Summary {
        threads,
        pages: plan.pages_written,
        bytes: images.bytes,
    })
}

/// Seizes and stops every thread.
fn freeze(target: &Target, log: &Log, timings: &mut Timings) -> Result<Frozen> {
    let pid = Pid::from_raw(target.pid);
    log.info(format_args!("freezing {pid}"));
    let t = Instant::now();
    let frozen = Frozen::freeze_in(&target.dir, target.seccomp_strict)?;
    timings.freezing = t.elapsed();
    log.info(format_args!(
        "{} threads frozen in {:?}",
        frozen.threads.len(),
        timings.freezing
    ));
    Ok(frozen)
}

/// A dump failed after the freeze: the images written so far go (an older
/// dump in the directory stays as it was) and the task is resumed. A task
/// that is gone is the cause, whatever failed first.
fn failed(dir: &ProcDir, frozen: Frozen, images: ImageSet, log: &Log, e: DumpError) -> DumpError {
    drop(images);
    let pid = frozen.pid.as_raw();
    if let Err(re) = frozen.release(Release::Resume) {
        log.error(format_args!(
            "resuming {pid} after the failure: {}",
            re.chain()
        ));
    }
    // It may be a zombie already, or still on its way out, which the ESRCH
    // the failing step got says.
    let gone = e.means_gone()
        || dir
            .read_stat()
            .map_or(true, |s| matches!(s.state, 'Z' | 'X'));
    match gone {
        true => DumpError::TargetGone { pid },
        false => e,
    }
}

/// Everything a dump needs from the frozen task: facts from outside, the
/// last refusals, then the syscalls run inside it.
fn collect(
    dir: &ProcDir,
    frozen: &mut Frozen,
    opts: &Opts,
    log: &Log,
    progress: &mut dyn FnMut(Progress),
) -> Result<Collected> {
    let pid = frozen.pid;
    let mem = RemoteMem::new(pid, dir.open_file("mem")?);
    let me = ProcDir::myself()?;
    log.info(format_args!("collecting /proc facts"));
    let mut pf = collect::process_from_outside(dir, &me)?;
    pf.shared_pending = sys::raw::peek_siginfo(pid, true)
        .map_err(|e| DumpError::ptrace(pid, "PTRACE_PEEKSIGINFO", e))?;
    if me.read("cgroup").ok() != dir.read("cgroup").ok() {
        log.warn(format_args!(
            "{pid} is in another cgroup than the dumper; cgroups are not dumped"
        ));
    }
    let mut threads = Vec::with_capacity(frozen.threads.len());
    for t in &frozen.threads {
        threads.push(collect::thread_from_outside(dir, t, &mem)?);
    }
    let code_at = check::frozen(dir, frozen, &pf, &threads)?;
    progress(Progress::Injecting);
    log.info(format_args!(
        "running syscalls inside the task (code at {code_at:#x})"
    ));
    collect::from_inside(frozen, &mem, code_at, &mut pf, &mut threads)?;
    if opts.fault_at(Fault::AfterInject) {
        return Err(Fault::AfterInject.injected());
    }
    Ok(Collected {
        proc: pf,
        threads,
        mem,
    })
}

/// Builds every image and writes it in the staging directory, pages first.
fn write(
    dir: &ProcDir,
    task: &Collected,
    images: &mut ImageSet,
    opts: &Opts,
    log: &Log,
    progress: &mut dyn FnMut(Progress),
    timings: &mut Timings,
) -> Result<pagemap::Plan> {
    let built = dump::build(
        &task.proc,
        &task.threads,
        &dump::core::XsaveLayout::host(),
        dump::seccomp::timens(),
    );
    let plan = write_pages(dir, task, &built, images, log, progress, timings)?;
    for core in &built.cores {
        images.write(core)?;
    }
    if opts.fault_at(Fault::WhileWriting) {
        return Err(Fault::WhileWriting.injected());
    }
    images.write(&built.mm)?;
    images.write(&built.fs)?;
    images.write(&built.ids)?;
    images.write(&built.pstree)?;
    images.write(&built.files)?;
    images.write(&built.fdinfo)?;
    images.write(&built.seccomp)?;
    images.write(&built.timens)?;
    Ok(plan)
}

/// Writes inventory.img and moves the new images into place
/// ([`ImageSet::commit`]).
fn commit(images: &mut ImageSet, opts: &Opts) -> Result<()> {
    let inventory = dump::Image::one(
        &registry::INVENTORY,
        0,
        dump::inventory::build(dump::inventory::host_lsm(), dump::inventory::run_id()),
    );
    images.commit_with(&inventory, || {
        if opts.fault_at(Fault::KillWhileCommitting) {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
        match opts.fault_at(Fault::WhileCommitting) {
            true => Err(Fault::WhileCommitting.injected()),
            false => Ok(()),
        }
    })
}

/// Chooses the pages to dump, copies them into the pages image and writes
/// the pagemap image that lists them.
fn write_pages(
    dir: &ProcDir,
    task: &Collected,
    built: &ProcessImages,
    images: &mut ImageSet,
    log: &Log,
    progress: &mut dyn FnMut(Progress),
    timings: &mut Timings,
) -> Result<pagemap::Plan> {
    let t_mem = Instant::now();
    let pid = task.proc.pid;
    let mut pm = collect::memory::open_pagemap(dir)?;
    let zero = collect::zero_page_pfn(&ProcDir::myself()?);
    if zero.is_none() {
        log.warn(format_args!("zero page pfn unknown: zero pages get dumped"));
    }
    let sps: Vec<u64> = task.threads.iter().map(|t| t.regs.rsp).collect();
    let plan = pagemap::plan(
        built.vmas(),
        |v, sink| pm.read(v.start, v.end, sink),
        zero,
        &sps,
    )?;
    log.info(format_args!(
        "{} pages to dump in {} runs ({} scanned)",
        plan.pages_written,
        plan.runs.len(),
        plan.pages_scanned
    ));
    let mut write_time = Duration::ZERO;
    let pages_name = registry::pages_file_name(dump::PAGES_ID.into());
    let (pages_path, mut pages) = images.create_raw(&pages_name)?;
    let total = plan.pages_written;
    let mut written = 0u64;
    let mut report = |n: u64| {
        written += n;
        progress(Progress::Pages { written, total });
    };
    copy_pages(
        &task.mem,
        &plan,
        &images.dir().join(&pages_name),
        &mut pages,
        &mut write_time,
        &mut report,
    )?;
    let t_w = Instant::now();
    images.finish_raw(&pages_path, pages)?;
    let entries = pagemap::entries(&plan);
    let name = dump::file_name(&registry::PAGEMAP, pid as u64);
    let (pm_img, mut w) = images.create(&registry::PAGEMAP, &name)?;
    let werr = |source| DumpError::Image {
        path: images.dir().join(&name),
        source,
    };
    w.write_message(&dump::pagemap_head()).map_err(werr)?;
    for e in &entries {
        w.write_message(e).map_err(werr)?;
    }
    images.finish(&pm_img, w)?;
    write_time += t_w.elapsed();
    timings.memdump = t_mem.elapsed();
    timings.memwrite = write_time;
    Ok(plan)
}

/// Copies the pages through the dumper: a reader thread fills a few fixed
/// buffers from /proc/PID/mem while this thread writes the full ones, so
/// memory stays at BUFFERS chunks whatever the target's size, and the time
/// frozen is about the slower of the two, not their sum. `pages_path` is
/// the image's name in errors; `done(n)` is told of every `n` pages written.
fn copy_pages(
    mem: &RemoteMem,
    plan: &pagemap::Plan,
    pages_path: &std::path::Path,
    pages: &mut std::io::BufWriter<std::fs::File>,
    write_time: &mut Duration,
    done: &mut dyn FnMut(u64),
) -> Result<()> {
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<(Vec<u8>, usize)>(BUFFERS);
    let (empty_tx, empty_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(BUFFERS);
    for _ in 0..BUFFERS {
        let _ = empty_tx.send(vec![0u8; (CHUNK_PAGES * 4096) as usize]);
    }
    let runs = &plan.runs;
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
                    mem.read(run.vaddr + off * 4096, &mut b[..len])?;
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
            done((len / 4096) as u64);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_names() {
        for (name, f) in Fault::ALL {
            assert_eq!(name.parse::<Fault>(), Ok(f));
            assert!(matches!(f.injected(), DumpError::FaultInjected { at } if at == name));
        }
        let e = "while-writting".parse::<Fault>().unwrap_err();
        assert!(
            e.contains("\"while-writting\"") && e.contains("while-writing"),
            "{e}"
        );
    }
}
