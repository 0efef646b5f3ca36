//! Comparing memory: two pagemaps walked together in address order, and
//! the pages they point to read side by side, a chunk at a time.
//!
//! Facts (criu/pagemap.c, criu/include/pagemap.h): entry 0 of a pagemap is
//! `pagemap_head { pages_id }`; every later entry covers `nr_pages` pages of
//! 4096 bytes from `vaddr`. The data of the entries flagged `PE_PRESENT` is
//! in `pages-<pages_id>.img`, one after the other in entry order; entries
//! with only `PE_LAZY` or `PE_PARENT` have none there. Old images have no
//! `flags`/`nr_pages`: `in_parent` means `PE_PARENT`, otherwise the pages
//! are present, and `compat_nr_pages` counts them (`init_compat_pagemap_entry`).
//!
//! Invariant: memory holds one entry per side and two chunk buffers,
//! whatever the size of the dump. Entries must come in increasing address
//! order without overlap (CRIU writes them so); anything else is an error.

use std::fs::File;
use std::io::{self, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use criu_image::flags::{self, PE_PARENT, PE_PRESENT};
use criu_image::json::Json;
use criu_image::{pb, registry, ImageReader};

use super::tree::Walk;
use super::{Fail, Step, What};
use crate::error::Error;

/// Bytes in a page (CRIU's PAGE_SIZE on the architectures it dumps).
pub const PAGE: u64 = 4096;
/// Pages compared per read.
const CHUNK_PAGES: u64 = 64;

/// A run of pages of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seg {
    start: u64,
    end: u64,
    flags: u32,
}

impl Seg {
    fn present(&self) -> bool {
        self.flags & PE_PRESENT != 0
    }
}

/// One side: its pagemap entries and its pages file.
struct Side {
    path: PathBuf,
    entries: ImageReader<BufReader<File>>,
    pages: Option<Pages>,
    cur: Option<Seg>,
    prev_end: u64,
}

struct Pages {
    path: PathBuf,
    file: File,
    offset: u64,
}

impl Side {
    /// A problem with entry `index` at `offset` of this side's pagemap.
    fn invalid(&self, index: usize, offset: u64, detail: String) -> Error {
        Error::Dump {
            path: self.path.clone(),
            detail: format!("entry {index} at byte {offset}: {detail}"),
        }
    }

    /// The next entry with pages, as a segment.
    fn next_seg(&mut self) -> Result<Option<Seg>, Error> {
        loop {
            let Some(entry) = self.entries.next_as::<pb::PagemapEntry>() else {
                return Ok(None);
            };
            let e = entry?;
            let m = &e.message;
            let vaddr = m.vaddr;
            let nr = m.nr_pages.unwrap_or(u64::from(m.compat_nr_pages));
            let flags = match (m.in_parent, m.flags) {
                (Some(true), f) => f.unwrap_or(0) | PE_PARENT,
                (_, Some(f)) => f,
                (_, None) => PE_PRESENT,
            };
            if vaddr % PAGE != 0 {
                return Err(self.invalid(
                    e.index,
                    e.offset,
                    format!("vaddr {vaddr:#x} is not page aligned"),
                ));
            }
            let end = nr
                .checked_mul(PAGE)
                .and_then(|len| vaddr.checked_add(len))
                .ok_or_else(|| {
                    self.invalid(
                        e.index,
                        e.offset,
                        format!("{nr} pages from {vaddr:#x} overflow the address space"),
                    )
                })?;
            if vaddr < self.prev_end {
                return Err(self.invalid(
                    e.index,
                    e.offset,
                    format!(
                        "vaddr {vaddr:#x} is below the end of the entry before ({:#x}): \
                         entries must be in address order",
                        self.prev_end
                    ),
                ));
            }
            if nr == 0 {
                continue;
            }
            self.prev_end = end;
            return Ok(Some(Seg {
                start: vaddr,
                end,
                flags,
            }));
        }
    }

    fn fill(&mut self) -> Result<(), Error> {
        if self.cur.is_none() {
            self.cur = self.next_seg()?;
        }
        Ok(())
    }

    /// Moves past the pages below `to` of the current segment, skipping
    /// their data unless `read` says it was read already.
    fn advance(&mut self, to: u64, read: bool) -> Result<(), Error> {
        let Some(seg) = self.cur else {
            return Ok(());
        };
        if seg.present() && !read {
            if let Some(p) = &mut self.pages {
                p.skip(to - seg.start)?;
            }
        }
        self.cur = (to < seg.end).then_some(Seg { start: to, ..seg });
        Ok(())
    }
}

impl Pages {
    fn open(path: PathBuf) -> Result<Pages, Error> {
        let file = File::open(&path).map_err(|source| Error::Io {
            context: format!("opening {} (page contents not compared)", path.display()),
            source,
        })?;
        Ok(Pages {
            path,
            file,
            offset: 0,
        })
    }

    fn io(&self, what: &str) -> impl Fn(io::Error) -> Error {
        let context = format!("{what} {}", self.path.display());
        move |source| Error::Io {
            context: context.clone(),
            source,
        }
    }

    fn skip(&mut self, bytes: u64) -> Result<(), Error> {
        let to = self.offset.saturating_add(bytes);
        let delta = i64::try_from(bytes).map_err(|_| {
            self.io("seeking in")(io::Error::new(
                io::ErrorKind::InvalidInput,
                "skip too large",
            ))
        })?;
        self.file
            .seek(SeekFrom::Current(delta))
            .map_err(self.io("seeking in"))?;
        self.offset = to;
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), Error> {
        let what = format!("reading at byte {} of", self.offset);
        let got = super::read_full(&mut self.file, buf).map_err(self.io(&what))?;
        let at = self.offset.saturating_add(got as u64);
        if got < buf.len() {
            return Err(Error::Image(criu_image::Error::Truncated {
                offset: at,
                expected: "page data the pagemap points to",
                needed: buf.len() as u64,
                found: got as u64,
            }));
        }
        self.offset = at;
        Ok(())
    }

    /// Data the pagemap did not account for, or that it wanted beyond the end.
    fn check_end(&self) -> Result<(), Error> {
        let len = self.file.metadata().map_err(self.io("reading"))?.len();
        if self.offset > len {
            return Err(Error::Image(criu_image::Error::Truncated {
                offset: len,
                expected: "page data the pagemap points to",
                needed: self.offset - len,
                found: 0,
            }));
        }
        Ok(())
    }
}

/// What a run of pages is like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    Differ,
    OnlyA(u32),
    OnlyB(u32),
    Flags(u32, u32),
}

/// Joins neighbouring pages of one kind into one reported range.
#[derive(Default)]
struct Runs {
    cur: Option<(Run, u64, u64)>,
}

impl Runs {
    fn push(&mut self, w: &mut Walk<'_>, run: Run, start: u64, end: u64) -> Step<()> {
        match &mut self.cur {
            Some((r, _, e)) if *r == run && *e == start => {
                *e = end;
                Ok(())
            }
            _ => {
                self.flush(w)?;
                self.cur = Some((run, start, end));
                Ok(())
            }
        }
    }

    fn flush(&mut self, w: &mut Walk<'_>) -> Step<()> {
        let Some((run, start, end)) = self.cur.take() else {
            return Ok(());
        };
        let path = format!("memory[{start:x}-{end:x}]");
        let pages = (end - start) / PAGE;
        let what = match run {
            Run::Differ => What::Pages(pages),
            Run::OnlyA(f) => What::Removed(Some(summary(pages, f))),
            Run::OnlyB(f) => What::Added(Some(summary(pages, f))),
            Run::Flags(fa, fb) => {
                let s = |f| Json::Str(flag_names(f).into_bytes());
                return w
                    .emit(
                        &format!("{path}.flags"),
                        What::Changed { a: s(fa), b: s(fb) },
                        Some((start, end)),
                    )
                    .map_err(Fail::Output);
            }
        };
        w.emit(&path, what, Some((start, end)))
            .map_err(Fail::Output)
    }
}

fn flag_names(f: u32) -> String {
    flags::to_string(u64::from(f), flags::PMAP_FLAGS)
}

fn summary(pages: u64, flags: u32) -> Json {
    Json::Obj(vec![
        (b"pages".to_vec(), Json::Int(i128::from(pages))),
        (b"flags".to_vec(), Json::Str(flag_names(flags).into_bytes())),
    ])
}

/// Opens a pagemap and reads its head.
fn open_side(path: &Path) -> Step<(Side, Json, Option<u64>)> {
    let input = |e: Error| Fail::Input(path.to_path_buf(), e);
    let f = File::open(path).map_err(|source| {
        input(Error::Io {
            context: format!("opening {}", path.display()),
            source,
        })
    })?;
    let mut entries =
        ImageReader::new(BufReader::with_capacity(1 << 16, f)).map_err(|e| input(e.into()))?;
    let desc = entries.desc();
    let head = match entries.next() {
        Some(e) => e.map_err(|e| input(e.into()))?,
        None => {
            return Err(input(Error::Image(criu_image::Error::Truncated {
                offset: entries.offset(),
                expected: "a pagemap_head entry",
                needed: 4,
                found: 0,
            })))
        }
    };
    let head_json = super::tree::entry_json(desc, &head).map_err(|e| input(e.into()))?;
    let pages_id = head
        .message
        .transcode_to::<pb::PagemapHead>()
        .ok()
        .map(|h| h.pages_id);
    let side = Side {
        path: path.to_path_buf(),
        entries,
        pages: None,
        cur: None,
        prev_end: 0,
    };
    Ok((side, head_json, pages_id.map(u64::from)))
}

/// Opens `pages-<id>.img` in `dir`. A missing pages file is reported (once,
/// if both sides name the same one) and the walk goes on without comparing
/// contents.
fn open_pages(
    w: &mut Walk<'_>,
    dir: &Path,
    id: Option<u64>,
    reported: &mut Vec<PathBuf>,
) -> Step<Option<Pages>> {
    let Some(id) = id else {
        return Ok(None);
    };
    let p = dir.join(registry::pages_file_name(id));
    match Pages::open(p.clone()) {
        Ok(pages) => Ok(Some(pages)),
        Err(e) => {
            if !reported.contains(&p) {
                w.troubles += 1;
                w.sink.trouble(&p, &e).map_err(Fail::Output)?;
                reported.push(p);
            }
            Ok(None)
        }
    }
}

/// Compares two pagemaps (files `a` and `b`, pages files in `dir_a` and
/// `dir_b`): the heads as values, then memory as address ranges under
/// `memory[start-end]`.
pub fn diff(w: &mut Walk<'_>, (a, dir_a): (&Path, &Path), (b, dir_b): (&Path, &Path)) -> Step<()> {
    let (mut sa, ha, id_a) = open_side(a)?;
    let (mut sb, hb, id_b) = open_side(b)?;
    let info = criu_image::schema::schema().message("pagemap_head");
    w.value("", info, &ha, &hb).map_err(Fail::Output)?;
    if w.filter.path(w.file, "memory") {
        return Ok(());
    }
    let mut reported = Vec::new();
    sa.pages = open_pages(w, dir_a, id_a, &mut reported)?;
    sb.pages = open_pages(w, dir_b, id_b, &mut reported)?;
    let mut runs = Runs::default();
    let (mut buf_a, mut buf_b) = (Vec::new(), Vec::new());
    loop {
        let fa = |s: &mut Side| s.fill().map_err(|e| Fail::Input(s.path.clone(), e));
        fa(&mut sa)?;
        fa(&mut sb)?;
        match (sa.cur, sb.cur) {
            (None, None) => break,
            (Some(x), None) => {
                runs.push(w, Run::OnlyA(x.flags), x.start, x.end)?;
                advance(&mut sa, x.end, false)?;
            }
            (None, Some(y)) => {
                runs.push(w, Run::OnlyB(y.flags), y.start, y.end)?;
                advance(&mut sb, y.end, false)?;
            }
            (Some(x), Some(y)) if x.start < y.start => {
                let end = x.end.min(y.start);
                runs.push(w, Run::OnlyA(x.flags), x.start, end)?;
                advance(&mut sa, end, false)?;
            }
            (Some(x), Some(y)) if y.start < x.start => {
                let end = y.end.min(x.start);
                runs.push(w, Run::OnlyB(y.flags), y.start, end)?;
                advance(&mut sb, end, false)?;
            }
            (Some(x), Some(y)) => {
                let end = x.end.min(y.end);
                let both = x.present() && y.present();
                if both && sa.pages.is_some() && sb.pages.is_some() {
                    // a flags change is reported first, then the pages in it
                    if x.flags != y.flags {
                        runs.push(w, Run::Flags(x.flags, y.flags), x.start, end)?;
                    }
                    compare(
                        w,
                        &mut runs,
                        (&mut sa, &mut buf_a),
                        (&mut sb, &mut buf_b),
                        x.start,
                        end,
                    )?;
                    advance(&mut sa, end, true)?;
                    advance(&mut sb, end, true)?;
                } else {
                    if x.flags != y.flags {
                        runs.push(w, Run::Flags(x.flags, y.flags), x.start, end)?;
                    } else {
                        runs.flush(w)?;
                    }
                    advance(&mut sa, end, false)?;
                    advance(&mut sb, end, false)?;
                }
            }
        }
    }
    runs.flush(w)?;
    for s in [&sa, &sb] {
        if let Some(p) = &s.pages {
            p.check_end().map_err(|e| Fail::Input(p.path.clone(), e))?;
        }
    }
    Ok(())
}

fn advance(s: &mut Side, to: u64, read: bool) -> Step<()> {
    s.advance(to, read)
        .map_err(|e| Fail::Input(pages_path(s), e))
}

fn pages_path(s: &Side) -> PathBuf {
    s.pages
        .as_ref()
        .map_or_else(|| s.path.clone(), |p| p.path.clone())
}

/// Reads the pages of [start, end) from both sides and reports those whose
/// contents differ.
fn compare(
    w: &mut Walk<'_>,
    runs: &mut Runs,
    (sa, buf_a): (&mut Side, &mut Vec<u8>),
    (sb, buf_b): (&mut Side, &mut Vec<u8>),
    start: u64,
    end: u64,
) -> Step<()> {
    let mut at = start;
    while at < end {
        let n = ((end - at) / PAGE).min(CHUNK_PAGES);
        if n == 0 {
            break; // cannot happen: every bound is page aligned
        }
        let len = (n * PAGE) as usize;
        buf_a.resize(len, 0);
        buf_b.resize(len, 0);
        for (s, buf) in [(&mut *sa, &mut *buf_a), (&mut *sb, &mut *buf_b)] {
            if let Some(p) = &mut s.pages {
                p.read(buf).map_err(|e| Fail::Input(p.path.clone(), e))?;
            }
        }
        for (i, (pa, pb)) in buf_a
            .chunks_exact(PAGE as usize)
            .zip(buf_b.chunks_exact(PAGE as usize))
            .enumerate()
        {
            let page = at + i as u64 * PAGE;
            if pa == pb {
                runs.flush(w)?;
            } else {
                runs.push(w, Run::Differ, page, page + PAGE)?;
            }
        }
        at += n * PAGE;
    }
    Ok(())
}
