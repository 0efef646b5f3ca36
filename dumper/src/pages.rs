//! Moving the task's pages into `pages-1.img` without copying them through
//! the dumper, as CRIU's parasite does: the task itself `vmsplice`s its
//! pages into a pipe (the pipe takes references, nothing is copied), and the
//! dumper `splice`s the pipe into the image file, the one copy, straight into
//! the page cache. The task is frozen the whole time, so the pages cannot
//! change between the two steps.
//!
//! The pipe is made inside the task (an injected `pipe2`), opened from here
//! through `/proc/PID/fd/N`, and closed inside the task again on every path,
//! like the scratch page and the patched code bytes.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};

use nix::fcntl::{splice, SpliceFFlags};

use crate::dump::pagemap::Run;
use crate::error::{DumpError, Result};
use crate::sys::inject::CodePatch;
use crate::sys::{Frozen, Remote, RemoteMem};

const NR_CLOSE: i64 = 3;
const NR_MMAP: i64 = 9;
const NR_MUNMAP: i64 = 11;
const NR_FCNTL: i64 = 72;
const NR_VMSPLICE: i64 = 278;
const NR_PIPE2: i64 = 293;
const F_SETPIPE_SZ: u64 = 1031;
const PAGE: u64 = 4096;
/// Pipe size asked for; the kernel may give less (pipe-max-size).
const PIPE_BYTES: u64 = 1 << 20;
/// iovecs per vmsplice call (they sit in the scratch page after the fds).
const MAX_IOV: usize = 200;

/// Where the scratch page and the pipe live in the task.
struct Setup {
    scratch: u64,
    rfd: u64,
    wfd: u64,
}

/// Writes the pages of `runs` to `out` through a pipe in the task. Returns
/// `Ok(None)` when the task could not be given a pipe (nothing was written;
/// the caller copies the pages another way), otherwise the number of bytes
/// and the time spent writing them into the image.
pub fn dump_via_pipe(
    frozen: &mut Frozen,
    mem: &RemoteMem,
    exec_start: u64,
    runs: &[Run],
    out: &File,
    progress: &mut dyn FnMut(u64),
) -> Result<Option<(u64, std::time::Duration)>> {
    let pid = frozen.pid;
    let mut code = CodePatch::install(pid, exec_start)
        .map_err(|e| DumpError::ptrace(pid, "PTRACE_POKEDATA", e))?;
    const PROT_RW: u64 = (libc::PROT_READ | libc::PROT_WRITE) as u64;
    const MAP_PA: u64 = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
    let scratch = frozen.inject(0, &code, |r| {
        r.syscall("mmap", NR_MMAP, [0, PAGE, PROT_RW, MAP_PA, u64::MAX, 0])
    });
    let result = match scratch {
        Err(e) => Err(e),
        Ok(scratch) => {
            let pipe = frozen.inject(0, &code, |r| {
                r.syscall(
                    "pipe2",
                    NR_PIPE2,
                    [scratch, libc::O_CLOEXEC as u64, 0, 0, 0, 0],
                )
            });
            let res = match pipe.and_then(|_| mem.read_u64(scratch)) {
                // no pipe: leave it to the caller
                Err(_) => Ok(None),
                Ok(fds) => {
                    let setup = Setup {
                        scratch,
                        rfd: fds & 0xffff_ffff,
                        wfd: fds >> 32,
                    };
                    let moved = move_pages(frozen, &code, &setup, runs, out, progress);
                    let closed = frozen.inject(0, &code, |r| {
                        r.syscall("close", NR_CLOSE, [setup.rfd, 0, 0, 0, 0, 0])?;
                        r.syscall("close", NR_CLOSE, [setup.wfd, 0, 0, 0, 0, 0])
                    });
                    moved.and_then(|n| closed.map(|_| Some(n)))
                }
            };
            let unmapped = frozen.inject(0, &code, |r| {
                r.syscall("munmap", NR_MUNMAP, [scratch, PAGE, 0, 0, 0, 0])
            });
            res.and_then(|n| unmapped.map(|_| n))
        }
    };
    let restored = code
        .restore()
        .map_err(|e| DumpError::ptrace(pid, "PTRACE_POKEDATA", e));
    let n = result?;
    restored?;
    Ok(n)
}

/// The pieces of one vmsplice call: at most `cap` bytes, at most MAX_IOV
/// iovecs, in address order.
fn batches(runs: &[Run], cap: u64) -> Vec<Vec<(u64, u64)>> {
    let mut all = Vec::new();
    let mut cur: Vec<(u64, u64)> = Vec::new();
    let mut used = 0;
    for run in runs {
        let mut addr = run.vaddr;
        let mut left = run.nr_pages * PAGE;
        while left > 0 {
            if used == cap || cur.len() == MAX_IOV {
                all.push(std::mem::take(&mut cur));
                used = 0;
            }
            let n = left.min(cap - used);
            cur.push((addr, n));
            used += n;
            addr += n;
            left -= n;
        }
    }
    if !cur.is_empty() {
        all.push(cur);
    }
    all
}

fn move_pages(
    frozen: &mut Frozen,
    code: &CodePatch,
    s: &Setup,
    runs: &[Run],
    out: &File,
    progress: &mut dyn FnMut(u64),
) -> Result<(u64, std::time::Duration)> {
    let pid = frozen.pid;
    let fd_path = format!("/proc/{pid}/fd/{}", s.rfd);
    let ours = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fd_path)
        .map_err(|e| DumpError::proc(&fd_path, e))?;
    let mem_path = format!("/proc/{pid}/mem");
    let memw = OpenOptions::new()
        .write(true)
        .open(&mem_path)
        .map_err(|e| DumpError::proc(&mem_path, e))?;
    frozen.inject(0, code, |r| {
        // a bigger pipe means fewer round trips; keep the default if refused
        let cap = match r.syscall_raw(NR_FCNTL, [s.wfd, F_SETPIPE_SZ, PIPE_BYTES, 0, 0, 0])? {
            n if n >= PAGE as i64 => (n as u64 / PAGE) * PAGE,
            _ => 16 * PAGE,
        };
        let mut total = 0;
        let mut writing = std::time::Duration::ZERO;
        for batch in batches(runs, cap) {
            let iov: Vec<u8> = batch
                .iter()
                .flat_map(|(a, n)| a.to_ne_bytes().into_iter().chain(n.to_ne_bytes()))
                .collect();
            let iov_at = s.scratch + 8;
            memw.write_all_at(&iov, iov_at)
                .map_err(|e| DumpError::proc(&mem_path, e))?;
            let want: u64 = batch.iter().map(|(_, n)| n).sum();
            let got = vmsplice_all(r, s, iov_at, &batch, want)?;
            let t = std::time::Instant::now();
            drain(&ours, out, got, pid.as_raw())?;
            writing += t.elapsed();
            total += got;
            progress(got / PAGE);
        }
        Ok((total, writing))
    })
}

/// One vmsplice of the whole batch (the pipe is empty and large enough).
fn vmsplice_all(
    r: &mut Remote<'_>,
    s: &Setup,
    iov_at: u64,
    batch: &[(u64, u64)],
    want: u64,
) -> Result<u64> {
    let got = r.syscall(
        "vmsplice",
        NR_VMSPLICE,
        [s.wfd, iov_at, batch.len() as u64, 0, 0, 0],
    )?;
    if got != want {
        return Err(DumpError::Memory {
            pid: r.tid().as_raw(),
            addr: batch.first().map_or(0, |b| b.0),
            source: std::io::Error::other(format!("vmsplice moved {got} of {want} bytes")),
        });
    }
    Ok(got)
}

/// Splices exactly `n` bytes from the pipe into the image.
fn drain(pipe: &File, out: &File, mut n: u64, pid: i32) -> Result<()> {
    while n > 0 {
        let len = usize::try_from(n).unwrap_or(usize::MAX);
        match splice(pipe, None, out, None, len, SpliceFFlags::SPLICE_F_MOVE) {
            Ok(0) => {
                return Err(DumpError::Memory {
                    pid,
                    addr: 0,
                    source: std::io::Error::other("pipe ended early"),
                })
            }
            Ok(k) => n -= k as u64,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                return Err(DumpError::Memory {
                    pid,
                    addr: 0,
                    source: std::io::Error::from(e),
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(vaddr: u64, nr_pages: u64) -> Run {
        Run {
            vaddr,
            nr_pages,
            lazy: false,
        }
    }

    #[test]
    fn batches_fill_the_pipe_and_keep_order() {
        let b = batches(&[run(0x1000, 3), run(0x10000, 5)], 4 * PAGE);
        assert_eq!(
            b,
            vec![
                vec![(0x1000, 3 * PAGE), (0x10000, PAGE)],
                vec![(0x11000, 4 * PAGE)],
            ]
        );
        let many: Vec<Run> = (0..(MAX_IOV as u64 + 1))
            .map(|i| run(i * 2 * PAGE, 1))
            .collect();
        let b = batches(&many, 1 << 30);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].len(), MAX_IOV);
        assert!(batches(&[], PAGE).is_empty());
    }
}
