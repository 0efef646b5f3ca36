//! Safe access to a frozen process: seizing and freezing every thread,
//! reading registers and memory, running syscalls inside a thread, and
//! letting the threads go again.
//!
//! Invariant: every thread we seize is owned by a [`ThreadGuard`] from the
//! moment `PTRACE_SEIZE` succeeds; dropping the guard detaches the thread
//! (stopping it first if our interrupt has not been reported yet), so no
//! failure, anywhere, leaves a thread traced or stopped. While a [`Frozen`]
//! exists, every thread in it is in a ptrace stop, and its registers and
//! signal mask are the ones it had when it was frozen, except inside
//! [`Frozen::inject`], which puts them back before it returns, whatever
//! happens. Dropping a [`Frozen`] detaches from every thread (resuming it);
//! [`Frozen::release`] does the same or kills the task.
//!
//! Submodules: [`raw`] is the only module with `unsafe` code (ptrace
//! requests, syscalls and ioctls nix does not wrap); [`inject`] runs a
//! syscall inside a stopped thread; [`mem`] reads the target's memory and
//! its pagemap.

pub mod inject;
pub mod mem;
pub mod raw;

use std::collections::BTreeSet;

use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::signal::{self, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{DumpError, Result};
use inject::{CodePatch, InjectError};
pub use mem::{Pagemap, RemoteMem};

/// One thread we seized. Dropping it lets the thread go: it is detached,
/// after being brought to a ptrace stop if it is not known to be in one
/// (PTRACE_DETACH works only on a stopped tracee), or reaped if it died.
#[derive(Debug)]
pub struct ThreadGuard {
    tid: Pid,
    /// In a ptrace stop that we waited for.
    stopped: bool,
    /// Not the thread group leader (whose exit status is its parent's).
    reapable: bool,
    armed: bool,
}

impl ThreadGuard {
    /// Takes charge of `tid`, which `PTRACE_SEIZE` has just attached.
    fn seized(tid: Pid, leader: Pid) -> Self {
        Self {
            tid,
            stopped: false,
            reapable: tid != leader,
            armed: true,
        }
    }

    /// Detaches now, resuming the thread; an error says why it could not be.
    fn detach(&mut self) -> Result<()> {
        if !self.armed {
            return Ok(());
        }
        self.armed = false;
        if !self.stopped {
            // Our interrupt (if it was sent) is not reported yet: stop the
            // thread for good, delivering signals that come first.
            match ptrace::interrupt(self.tid) {
                Ok(()) => {}
                Err(Errno::ESRCH) => return Ok(()),
                Err(e) => return Err(DumpError::ptrace(self.tid, "PTRACE_INTERRUPT", e)),
            }
            match wait_stopped(self.tid)? {
                Seized::Gone => return Ok(()),
                Seized::Stopped(_) => {}
            }
        }
        match ptrace::detach(self.tid, None) {
            Ok(()) => Ok(()),
            // Not in a ptrace stop any more: it was killed. A dead traced
            // thread stays until its tracer waits for it, and the leader
            // cannot be reaped by its parent before that.
            Err(Errno::ESRCH) => {
                if self.reapable {
                    reap(self.tid);
                }
                Ok(())
            }
            Err(e) => Err(DumpError::ptrace(self.tid, "PTRACE_DETACH", e)),
        }
    }

    /// The thread exited: nothing to let go.
    fn gone(&mut self) {
        self.armed = false;
    }
}

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        let _ = self.detach();
    }
}

/// One stopped thread and what it had when it was frozen.
#[derive(Debug)]
pub struct Tracee {
    /// Thread id.
    pub tid: Pid,
    /// General registers at freeze time (unmodified: syscall restart not
    /// yet applied).
    pub regs: libc::user_regs_struct,
    /// Blocked signals at freeze time.
    pub sigmask: u64,
    /// The thread was in a group stop (SIGSTOP etc.) when we froze it.
    pub group_stop: Option<Signal>,
    /// Its registers or mask were changed and must be put back.
    dirty: bool,
    guard: ThreadGuard,
}

/// What to do with the task at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Detach and let it run on.
    Resume,
    /// Kill it (what `criu dump` does without `--leave-running`).
    Kill,
}

/// Every thread of one process, seized and stopped.
#[derive(Debug)]
pub struct Frozen {
    /// Thread group id.
    pub pid: Pid,
    /// The threads, leader first, then in /proc/PID/task order.
    pub threads: Vec<Tracee>,
    /// Signals that arrived while we ran code in the task; sent again when
    /// the task is resumed.
    deferred: Vec<Signal>,
    released: bool,
}

/// How the seize of one thread ended.
enum Seized {
    Stopped(Option<Signal>),
    Gone,
}

/// Waits until a freshly interrupted thread reports its ptrace stop;
/// signals that get in first are delivered (as they would have been).
fn wait_stopped(tid: Pid) -> Result<Seized> {
    loop {
        let st = match waitpid(tid, Some(WaitPidFlag::__WALL)) {
            Ok(st) => st,
            Err(Errno::ECHILD) => return Ok(Seized::Gone),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(DumpError::ptrace(tid, "waitpid", e)),
        };
        match st {
            WaitStatus::PtraceEvent(_, sig, ev) if ev == libc::PTRACE_EVENT_STOP => {
                let group = match sig {
                    Signal::SIGSTOP | Signal::SIGTSTP | Signal::SIGTTIN | Signal::SIGTTOU => {
                        Some(sig)
                    }
                    _ => None,
                };
                return Ok(Seized::Stopped(group));
            }
            WaitStatus::Stopped(_, sig) => {
                // Signal-delivery stop: deliver it and wait for our stop.
                match ptrace::cont(tid, Some(sig)) {
                    Ok(()) => {}
                    Err(Errno::ESRCH) => return Ok(Seized::Gone),
                    Err(e) => return Err(DumpError::ptrace(tid, "PTRACE_CONT", e)),
                }
            }
            WaitStatus::Exited(..) | WaitStatus::Signaled(..) => return Ok(Seized::Gone),
            _ => {}
        }
    }
}

/// Where a test makes [`Frozen::freeze`] fail (unit tests only: there is no
/// such hook in a normal build).
#[cfg(test)]
pub(crate) mod freeze_fault {
    use std::cell::Cell;

    /// A point in the freeze of one thread.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum At {
        /// Right after PTRACE_SEIZE, before PTRACE_INTERRUPT.
        AfterSeize,
        /// After the thread's stop was reported, before PTRACE_GETREGS.
        BeforeGetregs,
    }

    thread_local! {
        static FAULT: Cell<Option<(usize, At)>> = const { Cell::new(None) };
    }

    /// Fail at `at` for the `nth` thread seized (0: the leader).
    pub fn set(f: Option<(usize, At)>) {
        FAULT.with(|c| c.set(f));
    }

    pub(super) fn hit(nth: usize, at: At) -> bool {
        FAULT.with(|c| c.get() == Some((nth, at)))
    }
}

impl Frozen {
    /// Seizes and stops every thread of `pid`, including threads created
    /// while we were at it (the task list is read again until it holds no
    /// thread we have not stopped: a stopped thread cannot clone).
    ///
    /// With `suspend_seccomp`, the seize sets `PTRACE_O_SUSPEND_SECCOMP`
    /// so that syscalls we inject are not filtered.
    pub fn freeze(pid: Pid, suspend_seccomp: bool) -> Result<Frozen> {
        Self::freeze_in(&crate::proc::ProcDir::open(pid.as_raw())?, suspend_seccomp)
    }

    /// [`Frozen::freeze`] of the process `dir` was opened for: its task
    /// list is read through `dir`, and once its threads are seized, a read
    /// through `dir` checks that the process is still there, so the pid we
    /// seized is still its pid (a live process keeps its pid) and not one
    /// used again by another process.
    pub fn freeze_in(dir: &crate::proc::ProcDir, suspend_seccomp: bool) -> Result<Frozen> {
        let pid = Pid::from_raw(dir.pid());
        let mut frozen = Frozen {
            pid,
            threads: Vec::new(),
            deferred: Vec::new(),
            released: false,
        };
        let mut seen: BTreeSet<i32> = BTreeSet::new();
        let opts = if suspend_seccomp {
            ptrace::Options::from_bits_retain(libc::PTRACE_O_SUSPEND_SECCOMP)
        } else {
            ptrace::Options::empty()
        };
        let mut nth = 0usize;
        loop {
            let mut tids: Vec<Pid> = dir.tasks()?.into_iter().map(Pid::from_raw).collect();
            tids.sort_by_key(|t| (*t != pid, t.as_raw()));
            let new: Vec<Pid> = tids
                .into_iter()
                .filter(|t| !seen.contains(&t.as_raw()))
                .collect();
            if new.is_empty() {
                break;
            }
            for tid in new {
                seen.insert(tid.as_raw());
                match ptrace::seize(tid, opts) {
                    Ok(()) => {}
                    Err(Errno::ESRCH) => {
                        if tid == pid {
                            return Err(DumpError::NoSuchProcess { pid: pid.as_raw() });
                        }
                        continue;
                    }
                    Err(e @ (Errno::EPERM | Errno::EACCES)) => {
                        return Err(DumpError::Permission {
                            pid: tid.as_raw(),
                            op: "seize",
                            errno: e,
                        })
                    }
                    Err(e) => return Err(DumpError::ptrace(tid, "PTRACE_SEIZE", e)),
                }
                // From here on the guard lets the thread go on every way out.
                let mut guard = ThreadGuard::seized(tid, pid);
                let this = nth;
                nth += 1;
                #[cfg(test)]
                if freeze_fault::hit(this, freeze_fault::At::AfterSeize) {
                    return Err(DumpError::FaultInjected { at: "after seize" });
                }
                match ptrace::interrupt(tid) {
                    Ok(()) | Err(Errno::ESRCH) => {}
                    Err(e) => return Err(DumpError::ptrace(tid, "PTRACE_INTERRUPT", e)),
                }
                let group_stop = match wait_stopped(tid)? {
                    Seized::Gone => {
                        guard.gone();
                        if tid == pid {
                            return Err(DumpError::TargetGone { pid: pid.as_raw() });
                        }
                        continue;
                    }
                    Seized::Stopped(group_stop) => group_stop,
                };
                guard.stopped = true;
                #[cfg(test)]
                if freeze_fault::hit(this, freeze_fault::At::BeforeGetregs) {
                    return Err(DumpError::FaultInjected {
                        at: "before getregs",
                    });
                }
                let _ = this;
                let regs = ptrace::getregs(tid)
                    .map_err(|e| DumpError::ptrace(tid, "PTRACE_GETREGS", e))?;
                let sigmask = raw::get_sigmask(tid)
                    .map_err(|e| DumpError::ptrace(tid, "PTRACE_GETSIGMASK", e))?;
                frozen.threads.push(Tracee {
                    tid,
                    regs,
                    sigmask,
                    group_stop,
                    dirty: false,
                    guard,
                });
            }
        }
        if frozen.threads.first().map(|t| t.tid) != Some(pid) || dir.read_stat().is_err() {
            return Err(DumpError::TargetGone { pid: pid.as_raw() });
        }
        Ok(frozen)
    }

    /// Runs `f` with the thread `idx` ready for [`Remote::syscall`]: all
    /// signals blocked, and `code` holding the syscall instruction. The
    /// thread's registers and signal mask are put back before this returns,
    /// on success and on error.
    pub fn inject<T>(
        &mut self,
        idx: usize,
        code: &CodePatch,
        f: impl FnOnce(&mut Remote<'_>) -> Result<T>,
    ) -> Result<T> {
        let pid = self.pid;
        let Some(t) = self.threads.get_mut(idx) else {
            return Err(DumpError::TargetGone { pid: pid.as_raw() });
        };
        t.dirty = true;
        // SIGKILL and SIGSTOP stay unblocked whatever we ask.
        raw::set_sigmask(t.tid, u64::MAX)
            .map_err(|e| DumpError::ptrace(t.tid, "PTRACE_SETSIGMASK", e))?;
        let mut remote = Remote {
            tid: t.tid,
            base: t.regs,
            code: code.addr(),
            deferred: &mut self.deferred,
        };
        let out = f(&mut remote);
        let restored = restore_thread(t);
        let v = out?;
        restored?;
        Ok(v)
    }

    /// Lets the task go: detaches from every thread (`Release::Resume`) or
    /// kills the task (`Release::Kill`).
    pub fn release(mut self, how: Release) -> Result<()> {
        self.released = true;
        match how {
            Release::Resume => self.detach_all(),
            Release::Kill => {
                let _ = signal::kill(self.pid, Signal::SIGKILL);
                for t in &mut self.threads {
                    // Dead already: nothing to detach, only to reap.
                    t.guard.gone();
                    if t.tid != self.pid {
                        reap(t.tid);
                    }
                }
                Ok(())
            }
        }
    }

    fn detach_all(&mut self) -> Result<()> {
        let mut first_err = None;
        for t in &mut self.threads {
            if let Err(e) = restore_thread(t) {
                first_err.get_or_insert(e);
            }
            if let Err(e) = t.guard.detach() {
                first_err.get_or_insert(e);
            }
        }
        for sig in self.deferred.drain(..) {
            let _ = signal::kill(self.pid, sig);
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Waits for a dying traced thread (not the leader: its exit status
/// belongs to its parent, and it is reported once all threads are gone).
fn reap(tid: Pid) {
    loop {
        match waitpid(tid, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::Exited(..)) | Ok(WaitStatus::Signaled(..)) => break,
            Ok(_) => {
                let _ = ptrace::cont(tid, None);
            }
            Err(Errno::EINTR) => {}
            Err(_) => break,
        }
    }
}

fn restore_thread(t: &mut Tracee) -> Result<()> {
    if !t.dirty {
        return Ok(());
    }
    let r1 = ptrace::setregs(t.tid, t.regs);
    let r2 = raw::set_sigmask(t.tid, t.sigmask);
    match (r1, r2) {
        (Ok(()), Ok(())) => {
            t.dirty = false;
            Ok(())
        }
        (Err(e), _) => Err(DumpError::ptrace(t.tid, "PTRACE_SETREGS", e)),
        (_, Err(e)) => Err(DumpError::ptrace(t.tid, "PTRACE_SETSIGMASK", e)),
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if !self.released {
            self.released = true;
            let _ = self.detach_all();
        }
    }
}

/// A thread prepared for syscall injection (see [`Frozen::inject`]).
pub struct Remote<'a> {
    tid: Pid,
    base: libc::user_regs_struct,
    code: u64,
    deferred: &'a mut Vec<Signal>,
}

impl Remote<'_> {
    /// The thread.
    pub fn tid(&self) -> Pid {
        self.tid
    }

    /// Runs syscall `nr` inside the thread; negative kernel returns become
    /// [`DumpError::RemoteSyscall`].
    pub fn syscall(&mut self, name: &'static str, nr: i64, args: [u64; 6]) -> Result<u64> {
        let r = self.syscall_raw(nr, args)?;
        if (-4095..0).contains(&r) {
            return Err(DumpError::RemoteSyscall {
                tid: self.tid.as_raw(),
                name,
                errno: Errno::from_raw(-r as i32),
            });
        }
        Ok(r as u64)
    }

    /// Runs syscall `nr` and returns what the kernel returned, errors
    /// included (as negative numbers).
    pub fn syscall_raw(&mut self, nr: i64, args: [u64; 6]) -> Result<i64> {
        inject::remote_syscall(self.tid, &self.base, self.code, nr, args, self.deferred).map_err(
            |e| match e {
                InjectError::Errno(_, Errno::ESRCH) | InjectError::Gone => DumpError::TargetGone {
                    pid: self.tid.as_raw(),
                },
                InjectError::Errno(op, errno) => DumpError::Ptrace {
                    tid: self.tid.as_raw(),
                    op,
                    errno,
                },
                InjectError::UnexpectedStop(ip, _) => DumpError::UnexpectedStop {
                    tid: self.tid.as_raw(),
                    ip,
                },
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    use super::freeze_fault::{self, At};
    use super::*;

    /// Not a test: the process the tests below freeze. It runs only when
    /// they start this test binary again with `DUMPER_FREEZE_VICTIM` set;
    /// it starts three threads, says "ready" and sleeps until killed.
    #[test]
    #[ignore = "the victim of the freeze tests, started by them"]
    fn freeze_victim() {
        if std::env::var_os("DUMPER_FREEZE_VICTIM").is_none() {
            return;
        }
        for _ in 0..3 {
            std::thread::spawn(|| loop {
                std::thread::park();
            });
        }
        println!("\nready");
        loop {
            std::thread::park();
        }
    }

    struct Victim(std::process::Child);

    impl Drop for Victim {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// Starts `freeze_victim` and waits for its "ready" line.
    fn victim() -> Victim {
        let mut c = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "sys::tests::freeze_victim"])
            .args(["--nocapture", "--test-threads=1"])
            .env("DUMPER_FREEZE_VICTIM", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = c.stdout.take().unwrap();
        let v = Victim(c);
        let ready = BufReader::new(out)
            .lines()
            .map_while(|l| l.ok())
            .any(|l| l == "ready");
        assert!(ready, "the victim did not start");
        v
    }

    /// (tid, TracerPid, State letter) of every thread.
    fn threads(pid: i32) -> Vec<(i32, i32, char)> {
        let dir = crate::proc::ProcDir::open(pid).unwrap();
        let mut out = Vec::new();
        for tid in dir.tasks().unwrap() {
            let s = String::from_utf8(dir.task(tid).unwrap().read("status").unwrap()).unwrap();
            let field = |k: &str| {
                s.lines()
                    .find_map(|l| l.strip_prefix(k))
                    .unwrap()
                    .trim()
                    .to_string()
            };
            let tracer = field("TracerPid:").parse().unwrap();
            let state = field("State:").chars().next().unwrap();
            out.push((tid, tracer, state));
        }
        out
    }

    fn assert_let_go(pid: i32, how: &str) {
        for (tid, tracer, state) in threads(pid) {
            assert_eq!(tracer, 0, "{how}: thread {tid} still traced");
            assert!(
                state != 't' && state != 'T',
                "{how}: thread {tid} still stopped ({state})"
            );
        }
    }

    /// Regression test for issue 7, defect 6: a failure between the seize
    /// of a thread and the end of its freeze left it traced and stopped.
    #[test]
    fn a_failed_freeze_lets_every_thread_go() {
        let v = victim();
        let pid = Pid::from_raw(v.0.id() as i32);
        match Frozen::freeze(pid, false) {
            Ok(f) => drop(f),
            Err(e) => {
                eprintln!("SKIP: cannot ptrace the victim: {e}");
                return;
            }
        }
        // The leader, our 3 threads, and the harness's thread running the
        // victim "test".
        let n = threads(pid.as_raw()).len();
        assert!(n >= 4, "{n} threads");
        for nth in [0, 2] {
            for at in [At::AfterSeize, At::BeforeGetregs] {
                let how = format!("failure {at:?} of thread {nth}");
                freeze_fault::set(Some((nth, at)));
                let r = Frozen::freeze(pid, false);
                freeze_fault::set(None);
                let e = r.err().unwrap_or_else(|| panic!("{how}: no error"));
                assert!(matches!(e, DumpError::FaultInjected { .. }), "{how}: {e}");
                assert_let_go(pid.as_raw(), &how);
            }
        }
        // And the task can still be frozen as a whole, and let go again.
        let f = Frozen::freeze(pid, false).unwrap();
        assert_eq!(f.threads.len(), n);
        assert!(threads(pid.as_raw()).iter().all(|t| t.1 != 0));
        drop(f);
        assert_let_go(pid.as_raw(), "drop");
    }
}
