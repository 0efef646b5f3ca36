//! The target's memory: its contents through /proc/PID/mem, and which pages
//! it holds through /proc/PID/pagemap, read in windows of a bounded size
//! whatever the size of the range asked for.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::unistd::Pid;

use super::raw::{self, page_is, PageRegion, ScanQuery};
use crate::error::{DumpError, Result};

const PAGE: u64 = 4096;

/// Bits of a /proc/PID/pagemap entry (Documentation/admin-guide/mm/pagemap.rst).
pub mod pme {
    /// The page is in memory.
    pub const PRESENT: u64 = 1 << 63;
    /// The page is swapped out (or holds a swap-type entry).
    pub const SWAP: u64 = 1 << 62;
    /// The page is file-backed or shared anonymous.
    pub const FILE: u64 = 1 << 61;
    /// The page is a guard region.
    pub const GUARD_REGION: u64 = 1 << 58;
    /// Bits 0-54: the page frame number (zero without CAP_SYS_ADMIN).
    pub const PFN_MASK: u64 = (1 << 55) - 1;
}

/// Pagemap entries handed to the caller at a time: 64 KiB of them.
pub const WINDOW_PAGES: usize = 8192;

/// Regions asked of one `PAGEMAP_SCAN` call (24 bytes each).
const SCAN_REGIONS: usize = 2048;

/// What `PAGEMAP_SCAN` is asked for: pages present or swapped, and neither
/// the zero page, nor file-backed, nor a guard region (what CRIU 4.2 asks
/// for in its pagemap cache, guard regions included when the kernel knows
/// them).
const SKIP: u64 = page_is::PFNZERO | page_is::FILE | page_is::GUARD;
const ANY: u64 = page_is::PRESENT | page_is::SWAPPED;

/// The target's memory through /proc/PID/mem (which also reads mappings
/// without PROT_READ, as ptrace may).
#[derive(Debug)]
pub struct RemoteMem {
    pid: Pid,
    file: File,
}

impl RemoteMem {
    /// Wraps /proc/PID/mem, opened by the caller (we must be the tracer).
    pub fn new(pid: Pid, file: File) -> Self {
        Self { pid, file }
    }

    /// Fills `buf` from address `addr`.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        self.file
            .read_exact_at(buf, addr)
            .map_err(|source| DumpError::Memory {
                pid: self.pid.as_raw(),
                addr,
                source,
            })
    }

    /// Reads one little-endian u64.
    pub fn read_u64(&self, addr: u64) -> Result<u64> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Reads one little-endian u32.
    pub fn read_u32(&self, addr: u64) -> Result<u32> {
        let mut b = [0u8; 4];
        self.read(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
}

/// /proc/PID/pagemap, read a window at a time.
///
/// With `PAGEMAP_SCAN` (Linux 6.7 on, as CRIU 4.2 uses it) the kernel
/// reports only the runs of pages that hold something, so an untouched
/// reservation costs one call whatever its size; without it, pagemap is
/// read [`WINDOW_PAGES`] entries at a time. Either way the memory used is
/// fixed.
#[derive(Debug)]
pub struct Pagemap {
    path: PathBuf,
    file: File,
    scan: bool,
    entries: Vec<u64>,
    bytes: Vec<u8>,
    regions: Vec<PageRegion>,
}

impl Pagemap {
    /// Wraps an open pagemap file (`path` is for errors), using
    /// `PAGEMAP_SCAN` when the kernel answers it with the categories we need.
    pub fn new(path: PathBuf, file: File) -> Self {
        let mut one = [PageRegion::default()];
        let q = ScanQuery {
            start: 0,
            end: PAGE,
            inverted: SKIP,
            mask: SKIP,
            anyof: ANY,
            ret: ANY,
        };
        let scan = raw::pagemap_scan(file.as_fd(), &q, &mut one).is_ok();
        let mut p = Self::without_scan(path, file);
        p.scan = scan;
        p
    }

    /// Wraps an open pagemap file and reads it with `pread` only.
    pub fn without_scan(path: PathBuf, file: File) -> Self {
        Self {
            path,
            file,
            scan: false,
            entries: vec![0; WINDOW_PAGES],
            bytes: Vec::new(),
            regions: Vec::new(),
        }
    }

    /// `PAGEMAP_SCAN` is used.
    pub fn uses_scan(&self) -> bool {
        self.scan
    }

    /// Calls `sink(addr, entries)` for windows of pagemap entries of
    /// `[start, end)` (page aligned), in address order, each at most
    /// [`WINDOW_PAGES`] long. Pages no window covers hold nothing to dump:
    /// neither present nor swapped, or the zero page, a file page, a guard
    /// region.
    pub fn read(&mut self, start: u64, end: u64, sink: &mut dyn FnMut(u64, &[u64])) -> Result<()> {
        if start % PAGE != 0 || end % PAGE != 0 || end < start {
            return Err(DumpError::Parse {
                path: self.path.clone(),
                what: format!("range {start:#x}-{end:#x} is not a range of whole pages"),
            });
        }
        if self.scan {
            self.read_scan(start, end, sink)
        } else {
            self.read_entries(start, end, sink)
        }
    }

    fn read_entries(
        &mut self,
        start: u64,
        end: u64,
        sink: &mut dyn FnMut(u64, &[u64]),
    ) -> Result<()> {
        self.bytes.resize(WINDOW_PAGES * 8, 0);
        let mut addr = start;
        while addr < end {
            let n = ((end - addr) / PAGE).min(WINDOW_PAGES as u64) as usize;
            let bytes = &mut self.bytes[..n * 8];
            self.file
                .read_exact_at(bytes, addr / PAGE * 8)
                .map_err(|e| DumpError::proc(&self.path, e))?;
            for (e, c) in self.entries.iter_mut().zip(bytes.chunks_exact(8)) {
                let mut w = [0u8; 8];
                w.copy_from_slice(c);
                *e = u64::from_le_bytes(w);
            }
            sink(addr, &self.entries[..n]);
            addr += n as u64 * PAGE;
        }
        Ok(())
    }

    fn read_scan(&mut self, start: u64, end: u64, sink: &mut dyn FnMut(u64, &[u64])) -> Result<()> {
        self.regions.resize(SCAN_REGIONS, PageRegion::default());
        let mut addr = start;
        while addr < end {
            let q = ScanQuery {
                start: addr,
                end,
                inverted: SKIP,
                mask: SKIP,
                anyof: ANY,
                ret: ANY,
            };
            let (n, walk_end) = raw::pagemap_scan(self.file.as_fd(), &q, &mut self.regions)
                .map_err(|e: Errno| DumpError::proc(&self.path, std::io::Error::from(e)))?;
            for r in &self.regions[..n] {
                // Each page of the region gets the entry pread would show
                // for it, less the pfn (which the plan only compares with
                // the zero page's, and the scan left the zero page out).
                let e = if r.categories & page_is::PRESENT != 0 {
                    pme::PRESENT
                } else {
                    pme::SWAP
                };
                let mut a = r.start.max(addr);
                let r_end = r.end.min(end);
                while a < r_end {
                    let k = ((r_end - a) / PAGE).min(WINDOW_PAGES as u64) as usize;
                    self.entries[..k].fill(e);
                    sink(a, &self.entries[..k]);
                    a += k as u64 * PAGE;
                }
            }
            if walk_end <= addr || walk_end > end {
                return Err(DumpError::Parse {
                    path: self.path.clone(),
                    what: format!("PAGEMAP_SCAN of {addr:#x}-{end:#x} ended at {walk_end:#x}"),
                });
            }
            addr = walk_end;
        }
        Ok(())
    }
}
