//! The address space: every mapping from smaps, the file behind each file
//! mapping (through `map_files`, so its name is the kernel's bytes, not
//! smaps' escaped text), and the zero page's pfn.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::error::Result;
use crate::proc::{Mapping, ProcDir};
use crate::sys::mem::pme;
use crate::sys::Pagemap;

use super::files::{read_file_ref, FileRef};

/// A mapping with what only the filesystem knows about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MappingFacts {
    pub map: Mapping,
    /// For file mappings: the file and the map_files link mode bits.
    pub file: Option<(FileRef, u32)>,
}

/// Reads every mapping and the file behind each file mapping.
pub fn read_mappings(dir: &ProcDir, me: &ProcDir) -> Result<Vec<MappingFacts>> {
    let mut out = Vec::new();
    for m in dir.read_smaps()? {
        let is_file =
            m.path.starts_with(b"/") && (m.ino != 0 || m.dev_major != 0 || m.dev_minor != 0);
        let file = if is_file {
            let link = format!("map_files/{:x}-{:x}", m.start, m.end);
            let mode = dir.lstat(&link)?.st_mode;
            // The link holds the name as bytes; smaps escapes some.
            let name = dir.read_link(&link)?;
            Some((read_file_ref(dir, me, &link, name, true)?, mode))
        } else {
            None
        };
        out.push(MappingFacts { map: m, file });
    }
    Ok(out)
}

/// Opens the task's pagemap for windowed reads.
pub fn open_pagemap(dir: &ProcDir) -> Result<Pagemap> {
    Ok(Pagemap::new(
        dir.path_of("pagemap"),
        dir.open_file("pagemap")?,
    ))
}

/// The pfn of the kernel's zero page, found by reading an untouched page
/// of our own and looking it up in our pagemap (CRIU's kerndat does the
/// same). None when pfns are hidden.
pub fn zero_page_pfn(me: &ProcDir) -> Option<u64> {
    // Large enough for calloc to mmap fresh pages; too small for THP.
    let v = vec![0u8; 256 << 10];
    let addr = v.as_ptr() as usize + (64 << 10);
    let _ = std::hint::black_box(std::hint::black_box(&v)[64 << 10]);
    let f: File = me.open_file("pagemap").ok()?;
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, (addr / 4096 * 8) as u64).ok()?;
    let e = u64::from_le_bytes(b);
    let pfn = e & pme::PFN_MASK;
    (e & pme::PRESENT != 0 && pfn != 0).then_some(pfn)
}
