//! mm-PID.img: the address space: every mapping with CRIU's status bits,
//! the mm bounds from /proc/PID/stat, brk, auxv, dumpable, exe.

use criu_image::{flags, pb};

use crate::collect::{MappingFacts, ProcFacts};

/// x86_64 user address space end (4-level paging).
pub const TASK_SIZE: u64 = 0x7fff_ffff_f000;

/// What a mapping's VmFlags (smaps) say, as CRIU's `__parse_vmflags`
/// reads them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VmFlags {
    /// mmap flags: `MAP_GROWSDOWN`, `MAP_LOCKED`, `MAP_NORESERVE`,
    /// `MAP_HUGETLB`, `MAP_DROPPABLE`.
    pub mmap: u32,
    /// One bit per `MADV_*` advice in effect (`1 << MADV_SEQUENTIAL`...).
    pub madv: u64,
    /// VM_IO or VM_PFNMAP: device memory, not pages of the task.
    pub io: bool,
    /// A shadow stack.
    pub shadow_stack: bool,
}

/// Reads a VmFlags list.
pub fn vmflags(flags: &[String]) -> VmFlags {
    let mut v = VmFlags::default();
    for t in flags {
        match t.as_str() {
            "gd" => v.mmap |= flags::MAP_GROWSDOWN,
            "lo" => v.mmap |= flags::MAP_LOCKED,
            "nr" => v.mmap |= flags::MAP_NORESERVE,
            "ht" => v.mmap |= flags::MAP_HUGETLB,
            "dp" => v.mmap |= flags::MAP_DROPPABLE,
            "sr" => v.madv |= 1 << libc::MADV_SEQUENTIAL,
            "rr" => v.madv |= 1 << libc::MADV_RANDOM,
            "dc" => v.madv |= 1 << libc::MADV_DONTFORK,
            "dd" => v.madv |= 1 << libc::MADV_DONTDUMP,
            "mg" => v.madv |= 1 << libc::MADV_MERGEABLE,
            "hg" => v.madv |= 1 << libc::MADV_HUGEPAGE,
            "nh" => v.madv |= 1 << libc::MADV_NOHUGEPAGE,
            "wf" => v.madv |= 1 << libc::MADV_WIPEONFORK,
            "io" | "pf" => v.io = true,
            "ss" => v.shadow_stack = true,
            _ => {}
        }
    }
    v
}

/// `[vvar]` and `[vvar_vclock]`: the kernel's data pages for the vDSO.
pub fn is_vvar(path: &[u8]) -> bool {
    path == b"[vvar]" || path == b"[vvar_vclock]"
}

/// Turns the mappings into VMA entries. `file_id` gives the files.img id
/// of a mapped file (called once per file mapping, in order). Mappings
/// the dumper cannot dump were refused before ([`crate::check`]).
pub fn build_vmas(
    maps: &[MappingFacts],
    mut file_id: impl FnMut(&MappingFacts) -> u32,
) -> Vec<pb::VmaEntry> {
    let mut out: Vec<pb::VmaEntry> = Vec::new();
    for mf in maps {
        let m = &mf.map;
        let mut prot = 0u32;
        if m.read {
            prot |= libc::PROT_READ as u32;
        }
        if m.write {
            prot |= libc::PROT_WRITE as u32;
        }
        if m.exec {
            prot |= libc::PROT_EXEC as u32;
        }
        let vf = vmflags(&m.vmflags);
        let mut flags = if m.shared {
            flags::MAP_SHARED
        } else {
            flags::MAP_PRIVATE
        } | vf.mmap;
        if flags & flags::MAP_PRIVATE != 0 && flags & flags::MAP_DROPPABLE != 0 {
            flags &= !flags::MAP_PRIVATE;
        }
        let mut st = 0u32;
        let mut shmid = 0u64;
        let mut fdflags = None;
        let is_vvar = is_vvar(&m.path);
        match (m.path.as_slice(), &mf.file) {
            (b"[vsyscall]", _) => st |= flags::VMA_AREA_VSYSCALL,
            (b"[vdso]", _) => {
                st |= flags::VMA_AREA_REGULAR;
                if prot & 5 == 5 {
                    st |= flags::VMA_AREA_VDSO;
                }
            }
            _ if is_vvar => {
                st |= flags::VMA_AREA_REGULAR;
                if prot & 1 == 1 {
                    st |= flags::VMA_AREA_VVAR;
                }
            }
            (b"[heap]", _) => st |= flags::VMA_AREA_REGULAR | flags::VMA_AREA_HEAP,
            (_, Some((_, mode))) => {
                st |= flags::VMA_AREA_REGULAR;
                st |= if flags & flags::MAP_SHARED != 0 {
                    flags::VMA_FILE_SHARED
                } else {
                    flags::VMA_FILE_PRIVATE
                };
                shmid = file_id(mf) as u64;
                fdflags = Some(match mode & 0o600 {
                    0o200 => libc::O_WRONLY as u32,
                    0o600 => libc::O_RDWR as u32,
                    _ => libc::O_RDONLY as u32,
                });
            }
            _ => st |= flags::VMA_AREA_REGULAR,
        }
        if mf.file.is_none() {
            st |= flags::VMA_ANON_PRIVATE;
            flags |= flags::MAP_ANONYMOUS;
        }
        if vf.shadow_stack {
            st |= flags::VMA_AREA_SHSTK;
        }
        // Consecutive vvar mappings ([vvar] + [vvar_vclock]) become one.
        if is_vvar {
            if let Some(last) = out.last_mut() {
                if last.status & flags::VMA_AREA_VVAR != 0
                    && st & flags::VMA_AREA_VVAR != 0
                    && last.end == m.start
                {
                    last.end = m.end;
                    continue;
                }
            }
        }
        // CRIU adds back a stack guard page that kernels between 3.x and
        // 4.12 hid from /proc (its kerndat `stack_guard_gap_hidden`); since
        // 4.12 the gap lies outside the VMA and /proc shows the real start.
        let start = m.start;
        out.push(pb::VmaEntry {
            start,
            end: m.end,
            pgoff: m.pgoff,
            shmid,
            prot,
            flags,
            status: st,
            fd: -1,
            madv: (vf.madv != 0).then_some(vf.madv),
            fdflags,
        });
    }
    out
}

/// CRIU's `vma_entry_is_private`.
pub fn is_private(v: &pb::VmaEntry) -> bool {
    (v.status & flags::VMA_AREA_REGULAR != 0
        && v.status & (flags::VMA_ANON_PRIVATE | flags::VMA_FILE_PRIVATE) != 0
        && v.end <= TASK_SIZE)
        || v.status & flags::VMA_AREA_SHSTK != 0
}

/// CRIU's `vma_entry_can_be_lazy`.
pub fn can_be_lazy(v: &pb::VmaEntry) -> bool {
    v.flags & flags::MAP_ANONYMOUS != 0
        && v.flags & flags::MAP_PRIVATE != 0
        && v.flags & flags::MAP_LOCKED == 0
        && v.status & (flags::VMA_AREA_VDSO | flags::VMA_AREA_VVAR | flags::VMA_AREA_VSYSCALL) == 0
        && v.flags & flags::MAP_HUGETLB == 0
}

/// The mm entry.
pub fn build(p: &ProcFacts, vmas: Vec<pb::VmaEntry>, exe_file_id: u32) -> pb::MmEntry {
    let s = &p.stat;
    pb::MmEntry {
        mm_start_code: s.start_code,
        mm_end_code: s.end_code,
        mm_start_data: s.start_data,
        mm_end_data: s.end_data,
        mm_start_stack: s.start_stack,
        mm_start_brk: s.start_brk,
        mm_brk: p.brk,
        mm_arg_start: s.arg_start,
        mm_arg_end: s.arg_end,
        mm_env_start: s.env_start,
        mm_env_end: s.env_end,
        exe_file_id,
        mm_saved_auxv: p.auxv.clone(),
        vmas,
        dumpable: Some(p.dumpable),
        aios: Vec::new(),
        thp_disabled: Some(p.thp_disabled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{FileRef, FileStat};
    use crate::proc::parse_smaps;

    fn facts(smaps: &str) -> Vec<MappingFacts> {
        parse_smaps(smaps)
            .unwrap()
            .into_iter()
            .map(|m| {
                let file = m.path.starts_with(b"/").then(|| {
                    (
                        FileRef {
                            name: m.path.clone(),
                            stat: FileStat {
                                mode: 0o100755,
                                ..Default::default()
                            },
                            build_id: None,
                        },
                        0o120400,
                    )
                });
                MappingFacts { map: m, file }
            })
            .collect()
    }

    #[test]
    fn statuses_like_criu() {
        // Lines shaped like the `single` fixture's maps.
        let s = "55bdd4a81000-55bdd4a82000 r--p 00000000 fe:01 12 /srv/ckpt/progs/single\n\
55bde89b0000-55bde89d1000 rw-p 00000000 00:00 0 [heap]\n\
7f101f2cf000-7f101f2d3000 r--p 00000000 00:00 0 [vvar]\n\
VmFlags: rd mr pf io de dd\n\
7f101f2d3000-7f101f2d5000 r--p 00000000 00:00 0 [vvar_vclock]\n\
VmFlags: rd mr pf io de dd\n\
7f101f2d5000-7f101f2d7000 r-xp 00000000 00:00 0 [vdso]\n\
7ffc4f014000-7ffc4f034000 rw-p 00000000 00:00 0 [stack]\n\
VmFlags: rd wr mr mw me gd ac\n\
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]\n";
        let v = build_vmas(&facts(s), |_| 1);
        assert_eq!(v.len(), 6);
        assert_eq!(
            v[0].status,
            flags::VMA_AREA_REGULAR | flags::VMA_FILE_PRIVATE
        );
        assert_eq!(v[0].fdflags, Some(0));
        assert_eq!(v[0].shmid, 1);
        assert_eq!(
            v[1].status,
            flags::VMA_AREA_REGULAR | flags::VMA_AREA_HEAP | flags::VMA_ANON_PRIVATE
        );
        assert_eq!(v[1].flags, flags::MAP_PRIVATE | flags::MAP_ANONYMOUS);
        assert_eq!(
            v[2].status,
            flags::VMA_AREA_REGULAR | flags::VMA_ANON_PRIVATE | flags::VMA_AREA_VVAR
        );
        assert_eq!((v[2].start, v[2].end), (0x7f101f2cf000, 0x7f101f2d5000));
        assert_eq!(v[2].madv, Some(0x10000));
        assert_eq!(
            v[3].status,
            flags::VMA_AREA_REGULAR | flags::VMA_AREA_VDSO | flags::VMA_ANON_PRIVATE
        );
        assert_eq!(
            v[4].start, 0x7ffc4f014000,
            "no guard page on kernels >= 4.12"
        );
        assert_eq!(
            v[4].flags,
            flags::MAP_PRIVATE | flags::MAP_ANONYMOUS | flags::MAP_GROWSDOWN
        );
        assert_eq!(
            v[5].status,
            flags::VMA_AREA_VSYSCALL | flags::VMA_ANON_PRIVATE
        );
        assert!(!is_private(&v[5]));
        assert!(can_be_lazy(&v[1]) && !can_be_lazy(&v[3]) && !can_be_lazy(&v[0]));
    }
}
