//! files.img, fdinfo-N.img and fs-PID.img: regular files (mapped files,
//! exe, cwd, root, fds on files and /dev/null) and the fds that use them.
//!
//! Ids are given in CRIU's order: mapped files as the mappings come, then
//! fds, then (reusing a mapped file's id) exe, then cwd and root. Files
//! without an fd (mappings, exe, cwd, root) share an id when they are the
//! same inode on the same mount, except directories and devices, which
//! CRIU's `st_mode & (S_IFCHR | S_IFBLK)` test always gives a new id.

use criu_image::pb;

use crate::collect::{FdFacts, FileRef, ProcFacts};

/// A file already given an id by [`FileTable::special`]: same device,
/// inode and mount means same file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SpecialFile {
    dev: u64,
    ino: u64,
    mnt_id: i32,
    id: u32,
}

/// The files.img being built.
#[derive(Debug, Default)]
pub struct FileTable {
    next_id: u32,
    specials: Vec<SpecialFile>,
    /// The entries, in id order.
    pub entries: Vec<pb::FileEntry>,
}

fn build_id_words(b: &[u8]) -> Vec<u32> {
    b.chunks(4)
        .map(|c| {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(w)
        })
        .collect()
}

fn reg_entry(id: u32, f: &FileRef, flags: u32, pos: u64) -> pb::FileEntry {
    let is_reg = f.stat.mode & libc::S_IFMT == libc::S_IFREG;
    pb::FileEntry {
        r#type: pb::FdTypes::Reg as i32,
        id,
        reg: Some(pb::RegFileEntry {
            id,
            flags,
            pos,
            fown: pb::FownEntry::default(),
            name: f.name.clone(),
            mnt_id: None,
            size: is_reg.then_some(f.stat.size),
            ext: None,
            mode: Some(f.stat.mode),
            build_id: f
                .build_id
                .as_deref()
                .map(build_id_words)
                .unwrap_or_default(),
            checksum: None,
            checksum_config: None,
            checksum_parameter: None,
        }),
        ..Default::default()
    }
}

impl FileTable {
    /// An empty table; ids start at 1.
    pub fn new() -> Self {
        Self {
            next_id: 1,
            ..Default::default()
        }
    }

    fn new_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Id of a file opened by the kernel for the task without an fd
    /// (CRIU's `fd_id_generate_special`), adding its entry when new.
    pub fn special(&mut self, f: &FileRef) -> u32 {
        let s = &f.stat;
        let found = self
            .specials
            .iter()
            .find(|c| c.dev == s.dev && c.ino == s.ino && c.mnt_id == s.mnt_id)
            .map(|c| c.id);
        if let Some(id) = found {
            if s.mode & (libc::S_IFCHR | libc::S_IFBLK) == 0 {
                return id;
            }
        }
        let id = self.new_id();
        if found.is_none() {
            self.specials.push(SpecialFile {
                dev: s.dev,
                ino: s.ino,
                mnt_id: s.mnt_id,
                id,
            });
        }
        self.entries.push(reg_entry(id, f, 0, 0));
        id
    }

    /// The fdinfo entries for the task's fds, adding a file entry for each
    /// open file description (fds that are dups share one).
    pub fn fds(&mut self, fds: &[FdFacts]) -> Vec<pb::FdinfoEntry> {
        let mut ids: Vec<(i32, u32)> = Vec::new();
        let mut out = Vec::new();
        for fd in fds {
            let shared = fd
                .same_as
                .and_then(|o| ids.iter().find(|(f, _)| *f == o).map(|x| x.1));
            let id = match shared {
                Some(id) => id,
                None => {
                    let id = self.new_id();
                    let flags = fd.info.flags & !(libc::O_CLOEXEC as u32);
                    self.entries
                        .push(reg_entry(id, &fd.file, flags, fd.info.pos));
                    id
                }
            };
            ids.push((fd.fd, id));
            out.push(pb::FdinfoEntry {
                id,
                flags: if fd.info.flags & libc::O_CLOEXEC as u32 != 0 {
                    libc::FD_CLOEXEC as u32
                } else {
                    0
                },
                r#type: pb::FdTypes::Reg as i32,
                fd: fd.fd as u32,
                xattr_security_selinux: None,
            });
        }
        out
    }
}

/// fs-PID.img: cwd and root ids and the umask.
pub fn fs_entry(table: &mut FileTable, p: &ProcFacts) -> pb::FsEntry {
    pb::FsEntry {
        cwd_id: table.special(&p.cwd),
        root_id: table.special(&p.root),
        umask: p.status.umask,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::FileStat;
    use crate::proc::FdInfo;

    fn file(name: &str, ino: u64, mode: u32) -> FileRef {
        FileRef {
            name: name.into(),
            stat: FileStat {
                dev: 1,
                ino,
                mode,
                size: 10,
                ..Default::default()
            },
            build_id: Some(vec![1, 2, 3, 4, 5]),
        }
    }

    #[test]
    fn ids_like_criu() {
        let mut t = FileTable::new();
        let exe = file("/bin/x", 5, 0o100755);
        assert_eq!(t.special(&exe), 1);
        assert_eq!(t.special(&file("/lib/libc", 6, 0o100755)), 2);
        assert_eq!(t.special(&exe), 1, "second mapping of the same file");
        let null = FileRef {
            name: "/dev/null".into(),
            stat: FileStat {
                mode: 0o20666,
                ..Default::default()
            },
            build_id: None,
        };
        let fds = [
            FdFacts {
                fd: 0,
                file: null.clone(),
                info: FdInfo {
                    pos: 0,
                    flags: 0o100000,
                    mnt_id: 1,
                },
                same_as: None,
            },
            FdFacts {
                fd: 1,
                file: null.clone(),
                info: FdInfo {
                    pos: 0,
                    flags: 0o2100001,
                    mnt_id: 1,
                },
                same_as: None,
            },
            FdFacts {
                fd: 2,
                file: null,
                info: FdInfo::default(),
                same_as: Some(1),
            },
        ];
        let fi = t.fds(&fds);
        assert_eq!(fi.iter().map(|f| f.id).collect::<Vec<_>>(), vec![3, 4, 4]);
        assert_eq!(fi[1].flags, 1, "FD_CLOEXEC");
        let reg = t.entries[3].reg.as_ref().unwrap();
        assert_eq!(reg.flags, 0o100001, "O_CLOEXEC stripped");
        assert_eq!(reg.size, None, "no size for devices");
        let root = file("/", 2, 0o40755);
        assert_eq!(t.special(&root), 5);
        assert_eq!(t.special(&root), 6, "directories never share an id");
        assert_eq!(t.entries.len(), 6);
        assert_eq!(
            t.entries[0].reg.as_ref().unwrap().build_id,
            vec![0x0403_0201, 5]
        );
    }
}
