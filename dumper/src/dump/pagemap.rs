//! pagemap-PID.img and pages-N.img: which pages of private mappings are
//! dumped, and their contents.
//!
//! The choice of pages is CRIU's: a page is dumped when it is present or
//! swapped, not the zero page, not a file page that was never written
//! (`PAGE_IS_FILE`), not a guard region; the vDSO is dumped whole; vvar
//! and `MAP_DROPPABLE` never. The split into pagemap entries follows
//! CRIU's page pipe (one buffer per run of same-lazy pages, pipes of 16
//! pages growing to 1024, at most 8 pipes before a flush), which is
//! simulated here so that the entries and the `page_pipes` and
//! `page_pipe_bufs` counters match what CRIU would write.

use criu_image::{flags, pb};

use super::mm;
use crate::sys::mem::pme;

/// Pagemap entry bits (criu/include/mem.h, from the kernel's pagemap).
pub const PME_PRESENT: u64 = pme::PRESENT;
pub const PME_SWAP: u64 = pme::SWAP;
pub const PME_FILE: u64 = pme::FILE;
pub const PME_GUARD_REGION: u64 = pme::GUARD_REGION;
const PFN_MASK: u64 = pme::PFN_MASK;
/// Pagemap image entry flags.
const PAGE: u64 = 4096;
const PIPE_DEFAULT_PAGES: u32 = 16;
/// CRIU's PIPE_MAX_SIZE: (1 << PAGE_ALLOC_COSTLY_ORDER) pages of 40-byte
/// pipe_buffers.
const PIPE_MAX_PAGES: u32 = 8 * 4096 / 40;
const NR_PIPES_PER_CHUNK: u32 = 8;

/// A run of pages to dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub vaddr: u64,
    pub nr_pages: u64,
    pub lazy: bool,
}

/// The result of planning: entries in address order plus CRIU's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub runs: Vec<Run>,
    pub pages_scanned: u64,
    pub pages_written: u64,
    pub page_pipes: u64,
    pub page_pipe_bufs: u64,
}

/// Should this pagemap entry's page be dumped (for a VMA that is not
/// dumped whole)?
pub fn page_wanted(pme: u64, zero_pfn: Option<u64>) -> bool {
    if pme & PME_GUARD_REGION != 0 || pme & PME_FILE != 0 {
        return false;
    }
    if pme & (PME_PRESENT | PME_SWAP) == 0 {
        return false;
    }
    !(pme & PME_PRESENT != 0 && zero_pfn == Some(pme & PFN_MASK))
}

#[derive(Debug, Clone)]
struct Buf {
    pipe_pages: u32,
    pages_in: u32,
    lazy: bool,
    iovs: Vec<(u64, u64)>,
}

/// CRIU's page pipe in chunk mode, reduced to what decides entries and
/// counters.
#[derive(Debug, Default)]
struct PagePipe {
    bufs: Vec<Buf>,
    free: Vec<Buf>,
    nr_pipes: u32,
    plan: Plan,
}

fn roundup_pow2(n: u32) -> u32 {
    n.next_power_of_two()
}

impl PagePipe {
    fn new() -> Self {
        let mut pp = PagePipe::default();
        pp.grow(false);
        pp
    }

    /// Room for one more page in `b`, growing its pipe if needed.
    fn resize(b: &mut Buf) -> bool {
        if b.pages_in < b.pipe_pages {
            return true;
        }
        let mut new = b.pipe_pages << 1;
        if new > PIPE_MAX_PAGES {
            if b.pipe_pages < PIPE_MAX_PAGES {
                new = PIPE_MAX_PAGES;
            } else {
                return false;
            }
        }
        // F_SETPIPE_SZ rounds up to a power of two of pages.
        b.pipe_pages = roundup_pow2(new);
        true
    }

    fn try_add(&mut self, addr: u64, lazy: bool) -> bool {
        let Some(b) = self.bufs.last_mut() else {
            return false;
        };
        if b.lazy != lazy || !Self::resize(b) {
            return false;
        }
        match b.iovs.last_mut() {
            Some((start, n)) if *start + *n * PAGE == addr => *n += 1,
            _ => b.iovs.push((addr, 1)),
        }
        b.pages_in += 1;
        true
    }

    /// false: all pipes in use, the caller must flush.
    fn grow(&mut self, lazy: bool) -> bool {
        if !self.free.is_empty() {
            let mut b = self.free.remove(0);
            b.pages_in = 0;
            b.lazy = lazy;
            b.iovs.clear();
            self.bufs.push(b);
            return true;
        }
        if self.nr_pipes == NR_PIPES_PER_CHUNK {
            return false;
        }
        self.plan.page_pipe_bufs += 1;
        self.plan.page_pipes += 1;
        self.nr_pipes += 1;
        self.bufs.push(Buf {
            pipe_pages: PIPE_DEFAULT_PAGES,
            pages_in: 0,
            lazy,
            iovs: Vec::new(),
        });
        true
    }

    fn flush(&mut self) {
        for b in self.bufs.drain(..) {
            for &(vaddr, nr_pages) in &b.iovs {
                self.plan.runs.push(Run {
                    vaddr,
                    nr_pages,
                    lazy: b.lazy,
                });
            }
            // list_move() to the head: the free list ends up reversed.
            self.free.insert(0, b);
        }
    }

    /// Adds a page; false when the pipe must be flushed first (then the
    /// caller flushes, re-inits and tries the same page again).
    fn add(&mut self, addr: u64, lazy: bool) -> bool {
        if self.try_add(addr, lazy) {
            return true;
        }
        if !self.grow(lazy) {
            return false;
        }
        self.try_add(addr, lazy)
    }

    fn reinit(&mut self) {
        self.flush();
        self.grow(false);
    }
}

/// Plans the dump of `vmas` given each VMA's pagemap entries, the zero
/// page's pfn, and the stack pointers of the threads (the page under a
/// thread's sp is not lazy: CRIU means to do this but its test compares
/// the wrong bits, so with CRIU it only happens when sp is page aligned).
///
/// `pagemap(vma, sink)` streams the VMA's entries: it calls `sink(addr,
/// entries)` for windows in address order inside the VMA; pages that no
/// window covers hold nothing to dump. It is not called for VMAs that are
/// dumped whole (the vDSO) or not at all. The plan holds only its runs, so
/// memory does not grow with the size of a VMA.
pub fn plan<E>(
    vmas: &[pb::VmaEntry],
    mut pagemap: impl FnMut(&pb::VmaEntry, &mut dyn FnMut(u64, &[u64])) -> Result<(), E>,
    zero_pfn: Option<u64>,
    thread_sps: &[u64],
) -> Result<Plan, E> {
    let mut pp = PagePipe::new();
    for v in vmas {
        if v.status & flags::VMA_AREA_GUARD != 0 {
            continue;
        }
        if !mm::is_private(v)
            || v.status & flags::VMA_AREA_VVAR != 0
            || v.flags & flags::MAP_DROPPABLE != 0
        {
            continue;
        }
        let mut scan = VmaScan {
            pp: &mut pp,
            lazy_vma: mm::can_be_lazy(v),
            thread_sps,
            next: v.start,
            end: v.end,
            skipping: false,
        };
        if v.status & flags::VMA_AREA_VDSO != 0 {
            let mut a = v.start;
            while a < v.end {
                scan.page(a);
                a += PAGE;
            }
            continue;
        }
        pagemap(v, &mut |addr, pmes| {
            // Pages before this window that no window covered: one jump.
            if addr > scan.next {
                scan.skip();
            }
            let mut a = addr;
            for &e in pmes {
                // Entries outside the VMA, or repeated, are not ours.
                if a >= scan.next && a < scan.end {
                    if page_wanted(e, zero_pfn) {
                        scan.page(a);
                    } else {
                        scan.skip();
                    }
                    scan.next = a + PAGE;
                }
                a += PAGE;
            }
        })?;
        if scan.next < scan.end {
            scan.skip();
        }
    }
    pp.flush();
    Ok(pp.plan)
}

/// The walk through one VMA's pages, as CRIU's `generate_iovs` goes: every
/// page dumped counts as scanned, and so does every jump over a run of
/// pages not dumped (CRIU jumps to the next page to dump in one step).
struct VmaScan<'a> {
    pp: &'a mut PagePipe,
    lazy_vma: bool,
    thread_sps: &'a [u64],
    /// The first page not yet seen.
    next: u64,
    end: u64,
    /// Inside a run of pages not dumped (already counted once).
    skipping: bool,
}

impl VmaScan<'_> {
    fn skip(&mut self) {
        if !self.skipping {
            self.pp.plan.pages_scanned += 1;
            self.skipping = true;
        }
    }

    fn page(&mut self, vaddr: u64) {
        self.skipping = false;
        let pp = &mut *self.pp;
        pp.plan.pages_scanned += 1;
        let on_stack = self.thread_sps.iter().any(|sp| sp & !(PAGE - 1) == vaddr);
        let lazy = self.lazy_vma && !on_stack;
        if !pp.add(vaddr, lazy) {
            pp.reinit();
            if !pp.add(vaddr, lazy) {
                // Cannot happen: a fresh pipe always takes one page.
                pp.grow(lazy);
                pp.try_add(vaddr, lazy);
            }
        }
        pp.plan.pages_written += 1;
    }
}

/// The pagemap image's entries after its head ([`super::pagemap_head`]): one per run.
pub fn entries(plan: &Plan) -> Vec<pb::PagemapEntry> {
    plan.runs
        .iter()
        .map(|r| pb::PagemapEntry {
            vaddr: r.vaddr,
            compat_nr_pages: 0,
            in_parent: None,
            flags: Some(flags::PE_PRESENT | if r.lazy { flags::PE_LAZY } else { 0 }),
            nr_pages: Some(r.nr_pages),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vma(start: u64, pages: u64, st: u32, flags: u32) -> pb::VmaEntry {
        pb::VmaEntry {
            start,
            end: start + pages * PAGE,
            pgoff: 0,
            shmid: 0,
            prot: 3,
            flags,
            status: st,
            fd: -1,
            madv: None,
            fdflags: None,
        }
    }

    const P: u64 = PME_PRESENT | 0x1234;

    type Sink<'a> = &'a mut dyn FnMut(u64, &[u64]);

    /// A pagemap source that hands each VMA's entries over in one window.
    fn whole(
        pmes: impl Fn(&pb::VmaEntry) -> Vec<u64>,
    ) -> impl FnMut(&pb::VmaEntry, Sink<'_>) -> Result<(), ()> {
        move |v, sink| {
            sink(v.start, &pmes(v));
            Ok(())
        }
    }

    /// The same entries in windows of `n`, leaving out the windows that
    /// hold nothing to dump (as PAGEMAP_SCAN does) when `sparse`.
    fn windowed(
        pmes: impl Fn(&pb::VmaEntry) -> Vec<u64>,
        n: usize,
        sparse: bool,
    ) -> impl FnMut(&pb::VmaEntry, Sink<'_>) -> Result<(), ()> {
        move |v, sink| {
            let all = pmes(v);
            for (i, w) in all.chunks(n).enumerate() {
                if sparse && w.iter().all(|&e| !page_wanted(e, Some(7))) {
                    continue;
                }
                sink(v.start + (i * n) as u64 * PAGE, w);
            }
            Ok(())
        }
    }

    #[test]
    fn runs_split_on_lazy_and_counters() {
        let anon = flags::VMA_AREA_REGULAR | flags::VMA_ANON_PRIVATE;
        let file = flags::VMA_AREA_REGULAR | flags::VMA_FILE_PRIVATE;
        let vmas = [
            vma(0x10000, 3, file, 2),
            vma(0x13000, 2, file, 2),
            vma(0x20000, 4, anon, 0x22),
        ];
        let pmes = |v: &pb::VmaEntry| match v.start {
            0x10000 => vec![PME_PRESENT | PME_FILE, P, 0],
            0x13000 => vec![P, P],
            _ => vec![P, 0, P, PME_PRESENT | 7],
        };
        let plan = plan(&vmas, whole(pmes), Some(7), &[]).unwrap();
        assert_eq!(
            plan.runs,
            vec![
                Run {
                    vaddr: 0x11000,
                    nr_pages: 1,
                    lazy: false
                },
                Run {
                    vaddr: 0x13000,
                    nr_pages: 2,
                    lazy: false
                },
                Run {
                    vaddr: 0x20000,
                    nr_pages: 1,
                    lazy: true
                },
                Run {
                    vaddr: 0x22000,
                    nr_pages: 1,
                    lazy: true
                },
            ]
        );
        assert_eq!(plan.pages_written, 5);
        // 5 pages + jumps: file[0], file[2], anon[1], anon[3].
        assert_eq!(plan.pages_scanned, 9);
        assert_eq!((plan.page_pipes, plan.page_pipe_bufs), (2, 2));
    }

    #[test]
    fn stack_page_is_not_lazy() {
        let anon = flags::VMA_AREA_REGULAR | flags::VMA_ANON_PRIVATE;
        let vmas = [vma(0x20000, 3, anon, 0x22)];
        let plan = plan(&vmas, whole(|_| vec![P, P, P]), None, &[0x21f80]).unwrap();
        assert_eq!(plan.runs.len(), 3);
        assert!(!plan.runs[1].lazy && plan.runs[0].lazy && plan.runs[2].lazy);
    }

    #[test]
    fn big_run_splits_at_pipe_limit() {
        let anon = flags::VMA_AREA_REGULAR | flags::VMA_ANON_PRIVATE;
        let vmas = [vma(0x100000, 3000, anon, 0x22)];
        let plan = plan(&vmas, whole(|_| vec![P; 3000]), None, &[]).unwrap();
        let sizes: Vec<u64> = plan.runs.iter().map(|r| r.nr_pages).collect();
        assert_eq!(sizes, vec![1024, 1024, 952]);
        assert_eq!(
            plan.page_pipe_bufs, 4,
            "the first, unused flags-0 buffer counts too"
        );
    }

    /// The plan as it was made before pagemap was streamed: a whole VMA's
    /// entries at once, one page at a time (kept as the oracle).
    fn plan_from_whole_vmas(
        vmas: &[pb::VmaEntry],
        pagemap: impl Fn(&pb::VmaEntry) -> Vec<u64>,
        zero_pfn: Option<u64>,
        thread_sps: &[u64],
    ) -> Plan {
        let mut pp = PagePipe::new();
        for v in vmas {
            if v.status & flags::VMA_AREA_GUARD != 0
                || !mm::is_private(v)
                || v.status & flags::VMA_AREA_VVAR != 0
                || v.flags & flags::MAP_DROPPABLE != 0
            {
                continue;
            }
            let pmes = pagemap(v);
            let all = v.status & flags::VMA_AREA_VDSO != 0;
            let lazy_vma = mm::can_be_lazy(v);
            let mut i = 0usize;
            while i < pmes.len() {
                let vaddr = v.start + i as u64 * PAGE;
                pp.plan.pages_scanned += 1;
                if !all && !page_wanted(pmes[i], zero_pfn) {
                    i += 1;
                    while i < pmes.len() && !page_wanted(pmes[i], zero_pfn) {
                        i += 1;
                    }
                    continue;
                }
                let on_stack = thread_sps.iter().any(|sp| sp & !(PAGE - 1) == vaddr);
                let lazy = lazy_vma && !on_stack;
                if !pp.add(vaddr, lazy) {
                    pp.reinit();
                    pp.add(vaddr, lazy);
                }
                pp.plan.pages_written += 1;
                i += 1;
            }
        }
        pp.flush();
        pp.plan
    }

    #[test]
    fn windows_give_the_same_plan() {
        let anon = flags::VMA_AREA_REGULAR | flags::VMA_ANON_PRIVATE;
        let file = flags::VMA_AREA_REGULAR | flags::VMA_FILE_PRIVATE;
        let vmas = [
            vma(0x100000, 5000, anon, 0x22),
            vma(0x2000000, 7, file, 2),
            vma(0x3000000, 4096, anon, 0x22),
            vma(
                0x5000000,
                2,
                flags::VMA_AREA_REGULAR | flags::VMA_AREA_VDSO | flags::VMA_ANON_PRIVATE,
                0x22,
            ),
        ];
        // Runs and holes of all lengths, with zero and file pages.
        let pmes = |v: &pb::VmaEntry| -> Vec<u64> {
            let n = ((v.end - v.start) / PAGE) as usize;
            (0..n)
                .map(|i| match (i * 7 + (v.start as usize >> 12)) % 23 {
                    0..=9 => P,
                    10 => PME_PRESENT | 7,
                    11 => PME_SWAP,
                    12 => PME_PRESENT | PME_FILE,
                    13 => PME_GUARD_REGION | PME_SWAP,
                    _ if i % 1000 < 300 => 0,
                    _ => P,
                })
                .collect()
        };
        let sps = [0x100000 + 77 * PAGE];
        let want = plan_from_whole_vmas(&vmas, pmes, Some(7), &sps);
        assert!(want.pages_written > 1000 && want.runs.len() > 100);
        assert_eq!(plan(&vmas, whole(pmes), Some(7), &sps).unwrap(), want);
        for n in [1, 2, 3, 7, 64, 1000, 4096, 8192] {
            for sparse in [false, true] {
                let got = plan(&vmas, windowed(pmes, n, sparse), Some(7), &sps).unwrap();
                assert_eq!(got, want, "windows of {n}, sparse {sparse}");
            }
        }
    }

    #[test]
    fn vdso_is_dumped_whole_without_reading_pagemap() {
        let vdso = flags::VMA_AREA_REGULAR | flags::VMA_AREA_VDSO | flags::VMA_ANON_PRIVATE;
        let vmas = [vma(0x7000, 2, vdso, 0x22)];
        let plan = plan(
            &vmas,
            |_: &pb::VmaEntry, _: Sink<'_>| -> Result<(), ()> { panic!("pagemap read") },
            None,
            &[],
        )
        .unwrap();
        assert_eq!((plan.pages_written, plan.pages_scanned), (2, 2));
    }
}
