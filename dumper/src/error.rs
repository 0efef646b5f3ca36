//! The crate's error type: what failed, on which pid/tid/path, and why.
//!
//! A variant's message says what failed; the OS or image-library error
//! behind it is its [`source`](std::error::Error::source), not repeated in
//! the message, so that a chain printer (anyhow's `{:#}`, or
//! [`DumpError::chain`]) prints each cause once, on one line.

use std::path::PathBuf;

use nix::errno::Errno;

/// Everything that can stop a dump. The target is resumed as it was before
/// any of these is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DumpError {
    /// No process with this pid exists (or it is a zombie).
    #[error("no process {pid}")]
    NoSuchProcess {
        /// The pid asked for.
        pid: i32,
    },
    /// The kernel refused to let us trace or inspect the target.
    #[error("no permission to {op} {pid}: {errno} (need CAP_SYS_PTRACE or the same uid, and ptrace_scope permitting)")]
    Permission {
        /// Pid or tid.
        pid: i32,
        /// What we tried.
        op: &'static str,
        /// The error the kernel gave.
        errno: Errno,
    },
    /// The target (or one of its threads) exited while it was being dumped.
    #[error("process {pid} exited during the dump")]
    TargetGone {
        /// Pid of the target.
        pid: i32,
    },
    /// A ptrace request failed.
    #[error("{op} on thread {tid}: {errno}")]
    Ptrace {
        /// Thread.
        tid: i32,
        /// Request name.
        op: &'static str,
        /// Error.
        errno: Errno,
    },
    /// A syscall run inside the target failed.
    #[error("{name}() inside thread {tid} failed: {errno}")]
    RemoteSyscall {
        /// Thread.
        tid: i32,
        /// Syscall name.
        name: &'static str,
        /// Error returned by the syscall.
        errno: Errno,
    },
    /// An injected syscall ended somewhere other than our trap.
    #[error("thread {tid} stopped at unexpected ip {ip:#x} while running an injected syscall")]
    UnexpectedStop {
        /// Thread.
        tid: i32,
        /// Instruction pointer where it stopped.
        ip: u64,
    },
    /// A /proc file or other system file could not be read.
    #[error("reading {path}")]
    Proc {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A /proc file did not have the expected format.
    #[error("cannot parse {path}: {what}")]
    Parse {
        /// File.
        path: PathBuf,
        /// What was wrong.
        what: String,
    },
    /// The target uses something this dumper cannot checkpoint yet.
    #[error("process {pid}: {what} is not supported yet")]
    Unsupported {
        /// Pid of the target.
        pid: i32,
        /// What.
        what: String,
    },
    /// The images directory is missing or not writable.
    #[error("images directory {path}")]
    OutputDir {
        /// Directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Writing an image failed.
    #[error("writing {path}")]
    Image {
        /// Image file.
        path: PathBuf,
        /// Cause.
        source: criu_image::Error,
    },
    /// Writing a file failed.
    #[error("writing {path}")]
    Write {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A failure injected on purpose ([`crate::Fault`]), for tests.
    #[error("fault injected: {at}")]
    FaultInjected {
        /// Where.
        at: &'static str,
    },
    /// Reading the target's memory failed.
    #[error("reading memory of {pid} at {addr:#x}")]
    Memory {
        /// Pid.
        pid: i32,
        /// Address.
        addr: u64,
        /// Cause.
        source: std::io::Error,
    },
}

/// `Result` with [`DumpError`].
pub type Result<T, E = DumpError> = std::result::Result<T, E>;

impl DumpError {
    pub(crate) fn ptrace(tid: nix::unistd::Pid, op: &'static str, errno: Errno) -> Self {
        match errno {
            Errno::ESRCH => DumpError::TargetGone { pid: tid.as_raw() },
            _ => DumpError::Ptrace {
                tid: tid.as_raw(),
                op,
                errno,
            },
        }
    }

    pub(crate) fn proc(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DumpError::Proc {
            path: path.into(),
            source,
        }
    }

    /// The error and its causes on one line (`writing X: No space left on
    /// device`), for logs.
    pub fn chain(&self) -> Chain<'_> {
        Chain(self)
    }

    /// The error is what a task that is going away gives (ESRCH from
    /// /proc, ptrace or its memory).
    pub fn means_gone(&self) -> bool {
        let esrch = |e: &std::io::Error| e.raw_os_error() == Some(libc::ESRCH);
        match self {
            DumpError::TargetGone { .. } => true,
            DumpError::Ptrace { errno, .. } | DumpError::RemoteSyscall { errno, .. } => {
                *errno == Errno::ESRCH
            }
            DumpError::Proc { source, .. } | DumpError::Memory { source, .. } => esrch(source),
            _ => false,
        }
    }
}

/// [`DumpError::chain`]: the error and each of its sources, joined by `: `.
#[derive(Debug, Clone, Copy)]
pub struct Chain<'a>(&'a DumpError);

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = std::error::Error::source(self.0);
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Issue 7, defect 7: the cause was in the message and also the source,
    // so a chain printer showed it twice.
    #[test]
    fn each_cause_printed_once() {
        let e = DumpError::OutputDir {
            path: "/x/y".into(),
            source: std::io::Error::from_raw_os_error(libc::ENOENT),
        };
        let line = e.chain().to_string();
        assert_eq!(
            line.matches("No such file or directory").count(),
            1,
            "{line}"
        );
        assert!(line.starts_with("images directory /x/y: "), "{line}");
    }
}
