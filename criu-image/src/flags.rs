//! The bit fields CRIU stores in images, defined once: a VMA's status
//! (`vma_entry.status`), its protection and mapping flags
//! (`vma_entry.prot`, `vma_entry.flags`) and a pagemap entry's flags
//! (`pagemap_entry.flags`); and the flag tables python crit prints them
//! with (`(criu).flags` options: `"PROT_READ | PROT_WRITE"`).
//!
//! Facts from CRIU 4.2: criu/include/image.h (VMA status bits),
//! criu/include/pagemap.h (`PE_*`), lib/pycriu/images/pb2dict.py (the
//! tables, their names and order). Mapping and protection flags are the
//! kernel's mmap(2) values as CRIU saves them, on x86-64 and the
//! asm-generic architectures (arm64, riscv64).
//!
//! ```
//! use criu_image::flags::{self, MMAP_STATUS, VMA_ANON_PRIVATE, VMA_AREA_REGULAR};
//!
//! let status = VMA_AREA_REGULAR | VMA_ANON_PRIVATE;
//! assert_eq!(flags::to_string(status.into(), MMAP_STATUS), "VMA_AREA_REGULAR | VMA_ANON_PRIVATE");
//! assert_eq!(flags::from_string("VMA_AREA_REGULAR | 0x200", MMAP_STATUS), Ok(0x201));
//! ```

// ---- vma_entry.status (criu/include/image.h) ----

/// No status bit.
pub const VMA_AREA_NONE: u32 = 0;
/// A mapping CRIU dumps and restores (anything else is special).
pub const VMA_AREA_REGULAR: u32 = 1 << 0;
/// The main thread's stack.
pub const VMA_AREA_STACK: u32 = 1 << 1;
/// `[vsyscall]`.
pub const VMA_AREA_VSYSCALL: u32 = 1 << 2;
/// `[vdso]`.
pub const VMA_AREA_VDSO: u32 = 1 << 3;
/// `[heap]`.
pub const VMA_AREA_HEAP: u32 = 1 << 5;
/// A private mapping of a file.
pub const VMA_FILE_PRIVATE: u32 = 1 << 6;
/// A shared mapping of a file.
pub const VMA_FILE_SHARED: u32 = 1 << 7;
/// Shared anonymous memory.
pub const VMA_ANON_SHARED: u32 = 1 << 8;
/// Private anonymous memory.
pub const VMA_ANON_PRIVATE: u32 = 1 << 9;
/// A SysV shared memory segment.
pub const VMA_AREA_SYSVIPC: u32 = 1 << 10;
/// A packet socket's ring.
pub const VMA_AREA_SOCKET: u32 = 1 << 11;
/// `[vvar]`.
pub const VMA_AREA_VVAR: u32 = 1 << 12;
/// An AIO ring.
pub const VMA_AREA_AIORING: u32 = 1 << 13;
/// A memfd mapping.
pub const VMA_AREA_MEMFD: u32 = 1 << 14;
/// A shadow stack.
pub const VMA_AREA_SHSTK: u32 = 1 << 15;
/// A guard region (MADV_GUARD_INSTALL); python crit's table lacks it.
pub const VMA_AREA_GUARD: u32 = 1 << 16;
/// `[uprobes]`.
pub const VMA_AREA_UPROBES: u32 = 1 << 17;
/// A mapping CRIU cannot dump.
pub const VMA_UNSUPP: u32 = 1 << 31;

// ---- pagemap_entry.flags (criu/include/pagemap.h) ----

/// The pages are in the parent dump (incremental dumps).
pub const PE_PARENT: u32 = 1 << 0;
/// The pages may be restored lazily.
pub const PE_LAZY: u32 = 1 << 1;
/// The pages are in the pages image.
pub const PE_PRESENT: u32 = 1 << 2;

// ---- vma_entry.prot and vma_entry.flags (mmap(2)) ----

/// Readable.
pub const PROT_READ: u32 = 0x1;
/// Writable.
pub const PROT_WRITE: u32 = 0x2;
/// Executable.
pub const PROT_EXEC: u32 = 0x4;

/// Shared mapping.
pub const MAP_SHARED: u32 = 0x01;
/// Private (copy-on-write) mapping.
pub const MAP_PRIVATE: u32 = 0x02;
/// Droppable mapping (Linux 6.11).
pub const MAP_DROPPABLE: u32 = 0x08;
/// Not backed by a file (python crit names it `MAP_ANON`).
pub const MAP_ANONYMOUS: u32 = 0x20;
/// Grows down (a stack).
pub const MAP_GROWSDOWN: u32 = 0x0100;
/// Locked in memory (VmFlags `lo`).
pub const MAP_LOCKED: u32 = 0x2000;
/// No swap reserved (VmFlags `nr`).
pub const MAP_NORESERVE: u32 = 0x4000;
/// Huge pages (VmFlags `ht`).
pub const MAP_HUGETLB: u32 = 0x4_0000;

/// A flag table: names and bit values, in the order python crit prints
/// them.
pub type FlagTable = &'static [(&'static str, u64)];

/// `(criu).flags = "mmap.prot"`.
pub const MMAP_PROT: FlagTable = &[
    ("PROT_READ", PROT_READ as u64),
    ("PROT_WRITE", PROT_WRITE as u64),
    ("PROT_EXEC", PROT_EXEC as u64),
];

/// `(criu).flags = "mmap.flags"`: the bits python crit names; the others
/// print as hex.
pub const MMAP_FLAGS: FlagTable = &[
    ("MAP_SHARED", MAP_SHARED as u64),
    ("MAP_PRIVATE", MAP_PRIVATE as u64),
    ("MAP_DROPPABLE", MAP_DROPPABLE as u64),
    ("MAP_ANON", MAP_ANONYMOUS as u64),
    ("MAP_GROWSDOWN", MAP_GROWSDOWN as u64),
];

/// `(criu).flags = "mmap.status"`.
pub const MMAP_STATUS: FlagTable = &[
    ("VMA_AREA_NONE", VMA_AREA_NONE as u64),
    ("VMA_AREA_REGULAR", VMA_AREA_REGULAR as u64),
    ("VMA_AREA_STACK", VMA_AREA_STACK as u64),
    ("VMA_AREA_VSYSCALL", VMA_AREA_VSYSCALL as u64),
    ("VMA_AREA_VDSO", VMA_AREA_VDSO as u64),
    ("VMA_AREA_HEAP", VMA_AREA_HEAP as u64),
    ("VMA_FILE_PRIVATE", VMA_FILE_PRIVATE as u64),
    ("VMA_FILE_SHARED", VMA_FILE_SHARED as u64),
    ("VMA_ANON_SHARED", VMA_ANON_SHARED as u64),
    ("VMA_ANON_PRIVATE", VMA_ANON_PRIVATE as u64),
    ("VMA_AREA_SYSVIPC", VMA_AREA_SYSVIPC as u64),
    ("VMA_AREA_SOCKET", VMA_AREA_SOCKET as u64),
    ("VMA_AREA_VVAR", VMA_AREA_VVAR as u64),
    ("VMA_AREA_AIORING", VMA_AREA_AIORING as u64),
    ("VMA_AREA_MEMFD", VMA_AREA_MEMFD as u64),
    ("VMA_AREA_SHSTK", VMA_AREA_SHSTK as u64),
    ("VMA_AREA_UPROBES", VMA_AREA_UPROBES as u64),
    ("VMA_UNSUPP", VMA_UNSUPP as u64),
];

/// `(criu).flags = "rfile.flags"`: open(2) flags of a regular file.
pub const RFILE_FLAGS: FlagTable = &[
    ("O_WRONLY", 0o1),
    ("O_RDWR", 0o2),
    ("O_CREAT", 0o100),
    ("O_EXCL", 0o200),
    ("O_NOCTTY", 0o400),
    ("O_TRUNC", 0o1000),
    ("O_APPEND", 0o2000),
    ("O_NONBLOCK", 0o4000),
    ("O_DSYNC", 0o10000),
    ("FASYNC", 0o20000),
    ("O_DIRECT", 0o40000),
    ("O_LARGEFILE", 0o100000),
    ("O_DIRECTORY", 0o200000),
    ("O_NOFOLLOW", 0o400000),
    ("O_NOATIME", 0o1000000),
    ("O_CLOEXEC", 0o2000000),
];

/// `(criu).flags = "pmap.flags"`.
pub const PMAP_FLAGS: FlagTable = &[
    ("PE_PARENT", PE_PARENT as u64),
    ("PE_LAZY", PE_LAZY as u64),
    ("PE_PRESENT", PE_PRESENT as u64),
];

/// `(criu).flags = "seals.flags"`: memfd seals (fcntl(2)).
pub const SEALS_FLAGS: FlagTable = &[
    ("F_SEAL_SEAL", 0x1),
    ("F_SEAL_SHRINK", 0x2),
    ("F_SEAL_GROW", 0x4),
    ("F_SEAL_WRITE", 0x8),
    ("F_SEAL_FUTURE_WRITE", 0x10),
];

/// The table a `(criu).flags` option names; `None` for a name python crit
/// does not know (such fields print as hex, as there).
pub fn table(name: &str) -> Option<FlagTable> {
    Some(match name {
        "mmap.prot" => MMAP_PROT,
        "mmap.flags" => MMAP_FLAGS,
        "mmap.status" => MMAP_STATUS,
        "rfile.flags" => RFILE_FLAGS,
        "pmap.flags" => PMAP_FLAGS,
        "seals.flags" => SEALS_FLAGS,
        _ => return None,
    })
}

/// `"A | B | 0x..."`, as python crit prints flags: the names of the set
/// bits in table order, then the bits it has no name for in hex; 0 gives
/// an empty string.
pub fn to_string(value: u64, table: FlagTable) -> String {
    let mut parts: Vec<String> = table
        .iter()
        .filter(|(_, bit)| value & bit != 0)
        .map(|(n, _)| (*n).to_owned())
        .collect();
    let known = table.iter().fold(0, |acc, (_, b)| acc | b);
    let rest = value & !known;
    if rest != 0 {
        parts.push(format!("{rest:#x}"));
    }
    parts.join(" | ")
}

/// Parses what [`to_string`] prints: names from the table or integers in
/// python's `int(x, 0)` forms, joined by `|`, their values added up as
/// python crit does. Empty text is 0.
pub fn from_string(text: &str, table: FlagTable) -> Result<u64, String> {
    if text.is_empty() {
        return Ok(0);
    }
    let mut v: u64 = 0;
    for part in text.split('|').map(str::trim) {
        let bit = match table.iter().find(|(n, _)| *n == part) {
            Some((_, b)) => *b,
            None => match crate::text::parse_int(part) {
                Some(n) => u64::try_from(n).map_err(|_| format!("negative flag value {part:?}"))?,
                None => return Err(format!("unknown flag {part:?}")),
            },
        };
        v = v
            .checked_add(bit)
            .ok_or_else(|| format!("flags {text:?} overflow"))?;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        let t = MMAP_PROT;
        assert_eq!(to_string(0, t), "");
        assert_eq!(to_string(3, t), "PROT_READ | PROT_WRITE");
        assert_eq!(to_string(0x13, t), "PROT_READ | PROT_WRITE | 0x10");
        assert_eq!(from_string("PROT_READ | PROT_WRITE | 0x10", t), Ok(0x13));
        assert_eq!(from_string("", t), Ok(0));
        assert!(from_string("PROT_BOGUS", t).is_err());
        assert_eq!(
            to_string(0x201, MMAP_STATUS),
            "VMA_AREA_REGULAR | VMA_ANON_PRIVATE"
        );
        // python crit's table has no guard bit: it prints as hex
        assert_eq!(
            to_string(u64::from(VMA_AREA_REGULAR | VMA_AREA_GUARD), MMAP_STATUS),
            "VMA_AREA_REGULAR | 0x10000"
        );
        assert_eq!(table("pmap.flags"), Some(PMAP_FLAGS));
        assert_eq!(table("nope"), None);
    }
}
