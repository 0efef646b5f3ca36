//! Every refusal in one place: what the dumper cannot checkpoint (yet).
//!
//! The rules ([`mapping`], [`fd`], [`code_site`] and the task-wide ones in
//! [`target`]) look only at what /proc shows from outside. They are applied
//! twice: by [`target`] before the task is touched (a refused task is never
//! seized, let alone stopped), and by [`frozen`] on the facts gathered
//! once it is frozen (the task may have mapped or opened something in
//! between), before any code runs inside it. Nothing after [`frozen`]
//! refuses a task. Only the VM_IO/VM_PFNMAP rule waits for [`frozen`]: it
//! needs smaps' VmFlags, which are not worth a second page-table walk.

use crate::collect::{ProcFacts, ThreadFacts, NS_ORDER};
use crate::dump::mm;
use crate::error::{DumpError, Result};
use crate::proc::{self, Mapping, ProcDir};
use crate::sys::Frozen;

/// What a rule refuses, as `process PID: <this> is not supported yet`
/// ([`DumpError::Unsupported`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl Refusal {
    fn of(self, pid: i32) -> DumpError {
        DumpError::Unsupported { pid, what: self.0 }
    }
}

/// A task that passed the checks made before freezing it.
#[derive(Debug)]
pub struct Target {
    /// Its pid.
    pub pid: i32,
    /// Its /proc directory, opened once: every later read of the dump goes
    /// through it (bound to this process, not to a pid that may be reused).
    pub dir: ProcDir,
    /// It runs in seccomp strict mode: the seize must suspend seccomp so
    /// that the syscalls run inside it are not killed.
    pub seccomp_strict: bool,
}

/// A mapping of a file (rather than anonymous memory or a pseudo file
/// such as `[heap]`), as [`crate::collect`](mod@crate::collect) decides it.
fn is_file(m: &Mapping) -> bool {
    m.path.starts_with(b"/") && (m.ino != 0 || m.dev_major != 0 || m.dev_minor != 0)
}

/// A mapping the dumper cannot dump. `file_mode` is the `st_mode` of the
/// mapped file, when it is one and known.
pub fn mapping(m: &Mapping, file_mode: Option<u32>) -> std::result::Result<(), Refusal> {
    let range = format!("{:x}-{:x}", m.start, m.end);
    let path = m.path.as_slice();
    let name = m.path_lossy();
    if path == b"[uprobes]" {
        return Err(Refusal("a [uprobes] mapping".into()));
    }
    if is_file(m) {
        if path.starts_with(b"/memfd:") {
            return Err(Refusal(format!("a memfd mapping ({name} at {range})")));
        }
        if path.starts_with(b"/SYSV") {
            return Err(Refusal(format!(
                "a SysV shared memory mapping ({name} at {range})"
            )));
        }
        // MAP_SHARED | MAP_ANONYMOUS memory is a file on the kernel's
        // internal shmem mount, unlinked, named "dev/zero".
        if m.shared && m.dev_major == 0 && path == b"/dev/zero (deleted)" {
            return Err(Refusal(format!("a shared anonymous mapping ({range})")));
        }
        if path.ends_with(b" (deleted)") {
            return Err(Refusal(format!("a mapping of a deleted file ({name})")));
        }
        if let Some(mode) = file_mode {
            if mode & libc::S_IFMT != libc::S_IFREG {
                return Err(Refusal(format!(
                    "a mapping of non-regular file {name} ({range})"
                )));
            }
        }
    } else if m.shared {
        return Err(Refusal(format!("a shared anonymous mapping ({range})")));
    }
    let io = mm::vmflags(&m.vmflags).io;
    if io && !mm::is_vvar(path) && !(is_file(m) && m.shared) {
        return Err(Refusal(format!("a VM_IO/VM_PFNMAP mapping ({range})")));
    }
    Ok(())
}

/// An fd the dumper cannot dump: only regular files, directories and
/// /dev/null are dumped. `name` is the fd's link (bytes), `mode` and
/// `rdev` from a stat of the open file.
pub fn fd(fd: i32, name: &[u8], mode: u32, rdev: u64) -> std::result::Result<(), Refusal> {
    let ft = mode & libc::S_IFMT;
    let devnull = ft == libc::S_IFCHR && rdev == libc::makedev(1, 3);
    if !(ft == libc::S_IFREG || ft == libc::S_IFDIR || devnull) || name.ends_with(b" (deleted)") {
        return Err(Refusal(format!(
            "fd {fd} ({}), which is not a regular file, directory or /dev/null,",
            String::from_utf8_lossy(name)
        )));
    }
    Ok(())
}

/// Where the syscall instruction goes when code is run inside the task:
/// the start of its first executable mapping in user space (compel's
/// choice too).
pub fn code_site<'a>(
    maps: impl IntoIterator<Item = &'a Mapping>,
) -> std::result::Result<u64, Refusal> {
    maps.into_iter()
        .find(|m| m.exec && m.start < mm::TASK_SIZE && m.end - m.start >= 4096)
        .map(|m| m.start)
        .ok_or_else(|| Refusal("a task without an executable mapping".into()))
}

fn seccomp(mode: u32) -> std::result::Result<(), Refusal> {
    match mode {
        2 => Err(Refusal("seccomp filters".into())),
        _ => Ok(()),
    }
}

fn children(c: &[i32]) -> std::result::Result<(), Refusal> {
    match c {
        [] => Ok(()),
        _ => Err(Refusal(format!("a process tree (children {c:?})"))),
    }
}

fn namespace(me: &ProcDir, ns: &str, theirs: u64) -> Result<std::result::Result<(), Refusal>> {
    let ours = me.read_ns(ns)?;
    Ok(match theirs == ours {
        true => Ok(()),
        false => Err(Refusal(format!("a {ns} namespace other than the dumper's"))),
    })
}

/// Before freezing, an error that says the task went away means there is
/// no such process, and one that says we may not read its /proc files
/// means we may not dump it.
fn outside<T>(pid: i32, r: Result<T>) -> Result<T> {
    r.map_err(|e| {
        let errno = match &e {
            DumpError::Proc { source, .. } => source.raw_os_error(),
            _ => None,
        };
        match errno {
            _ if is_not_found(&e) || e.means_gone() => DumpError::NoSuchProcess { pid },
            Some(n @ (libc::EACCES | libc::EPERM)) => DumpError::Permission {
                pid,
                op: "inspect",
                errno: nix::errno::Errno::from_raw(n),
            },
            _ => e,
        }
    })
}

/// The checks made before the task is touched: it exists and is not the
/// dumper, is not stopped, has no seccomp filter, no children, the
/// dumper's namespaces, and no mapping or fd [`mapping`] or [`fd`] refuse
/// (mappings as /proc/PID/maps shows them, without VmFlags).
pub fn target(pid: i32) -> Result<Target> {
    if pid <= 0 {
        return Err(DumpError::NoSuchProcess { pid });
    }
    if pid == std::process::id() as i32 {
        return Err(Refusal("dumping the dumper itself".into()).of(pid));
    }
    let dir = outside(pid, ProcDir::open(pid))?;
    let me = ProcDir::myself()?;
    let stat = outside(pid, dir.read_stat())?;
    match stat.state {
        'Z' | 'X' => return Err(DumpError::NoSuchProcess { pid }),
        'T' => return Err(Refusal("a stopped task (group stop)".into()).of(pid)),
        _ => {}
    }
    let refuse = |r: std::result::Result<(), Refusal>| r.map_err(|r| r.of(pid));
    let tids = outside(pid, dir.tasks())?;
    let mut seccomp_strict = false;
    for &tid in &tids {
        let status = match dir.task(tid).and_then(|t| t.read_status()) {
            Ok(s) => s,
            // A thread that just exited.
            Err(e) if tid != pid && (e.means_gone() || is_not_found(&e)) => continue,
            Err(e) => return outside(pid, Err(e)),
        };
        refuse(seccomp(status.seccomp))?;
        seccomp_strict |= status.seccomp == 1;
    }
    refuse(children(&outside(pid, dir.read_children(&tids))?))?;
    for ns in NS_ORDER {
        let theirs = outside(pid, dir.read_ns(ns))?;
        refuse(namespace(&me, ns, theirs)?)?;
    }
    let maps = outside(pid, read_maps(&dir))?;
    for m in &maps {
        let mode = if is_file(m) && !m.path.ends_with(b" (deleted)") {
            match dir.stat(format!("map_files/{:x}-{:x}", m.start, m.end)) {
                Ok(st) => Some(st.st_mode),
                // Unmapped since maps was read: nothing to refuse.
                Err(e) if is_not_found(&e) => None,
                Err(e) => return outside(pid, Err(e)),
            }
        } else {
            None
        };
        refuse(mapping(m, mode))?;
    }
    code_site(&maps).map_err(|r| r.of(pid))?;
    for n in outside(pid, dir.fds())? {
        let link = format!("fd/{n}");
        // An fd closed since the directory was read is not refused.
        let (Ok(name), Ok(st)) = (dir.read_link(&link), dir.stat(&link)) else {
            continue;
        };
        refuse(fd(n, &name, st.st_mode, st.st_rdev))?;
    }
    Ok(Target {
        pid,
        dir,
        seccomp_strict,
    })
}

/// /proc/PID/maps: the mappings without their VmFlags. smaps would give
/// those too, but it walks the page tables (3 ms per GiB mapped, counted
/// again in collect); the VM_IO/VM_PFNMAP rule, which needs them, is
/// applied by [`frozen`] to the smaps the facts are gathered from.
fn read_maps(dir: &ProcDir) -> Result<Vec<Mapping>> {
    let b = dir.read("maps")?;
    proc::parse_smaps(&b).map_err(|proc::ParseError(what)| DumpError::Parse {
        path: dir.path_of("maps"),
        what,
    })
}

fn is_not_found(e: &DumpError) -> bool {
    matches!(e, DumpError::Proc { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

/// The checks made on a frozen task, on the facts gathered from outside,
/// before any code runs inside it: the rules of [`target`] again, plus a
/// thread in group stop. Returns where the injected code goes
/// ([`code_site`]).
pub fn frozen(
    dir: &ProcDir,
    frozen: &Frozen,
    p: &ProcFacts,
    threads: &[ThreadFacts],
) -> Result<u64> {
    let me = ProcDir::myself()?;
    let pid = p.pid;
    let refuse = |r: std::result::Result<(), Refusal>| r.map_err(|r| r.of(pid));
    if let Some(t) = frozen.threads.iter().find(|t| t.group_stop.is_some()) {
        return Err(Refusal(format!("a stopped task (thread {} in group stop)", t.tid)).of(pid));
    }
    for t in threads {
        refuse(seccomp(t.status.seccomp))?;
    }
    let tids: Vec<i32> = frozen.threads.iter().map(|t| t.tid.as_raw()).collect();
    refuse(children(&dir.read_children(&tids)?))?;
    for (ns, theirs) in &p.ns {
        refuse(namespace(&me, ns, *theirs)?)?;
    }
    for mf in &p.mappings {
        refuse(mapping(&mf.map, mf.file.as_ref().map(|(f, _)| f.stat.mode)))?;
    }
    for f in &p.fds {
        refuse(fd(f.fd, &f.file.name, f.file.stat.mode, f.file.stat.rdev))?;
    }
    code_site(p.mappings.iter().map(|m| &m.map)).map_err(|r| r.of(pid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc::parse_smaps;

    fn one(line: &str) -> Mapping {
        parse_smaps(line).unwrap().remove(0)
    }

    fn refused(line: &str, mode: Option<u32>) -> String {
        mapping(&one(line), mode).unwrap_err().0
    }

    #[test]
    fn mappings_refused() {
        let shared_anon = "7f0000000000-7f0000001000 rw-s 00000000 00:01 5 /dev/zero (deleted)\n";
        assert!(refused(shared_anon, None).starts_with("a shared anonymous mapping"));
        let memfd = "7f0000000000-7f0000001000 rw-s 00000000 00:01 6 /memfd:x (deleted)\n";
        assert!(refused(memfd, None).starts_with("a memfd mapping (/memfd:x"));
        let sysv = "7f0000000000-7f0000001000 rw-s 00000000 00:01 7 /SYSV00000000 (deleted)\n";
        assert!(refused(sysv, None).starts_with("a SysV shared memory"));
        let deleted = "7f0000000000-7f0000001000 r--p 00000000 fe:01 8 /tmp/x (deleted)\n";
        assert!(refused(deleted, None).contains("deleted file (/tmp/x (deleted))"));
        let dev = "7f0000000000-7f0000001000 rw-s 00000000 00:05 9 /dev/fb0\n";
        assert!(refused(dev, Some(libc::S_IFCHR | 0o666)).contains("non-regular file /dev/fb0"));
        let io = "7f0000000000-7f0000001000 rw-p 00000000 00:00 0 \nVmFlags: rd wr io pf\n";
        assert!(refused(io, None).starts_with("a VM_IO"));
        let up = "7fffffffe000-7ffffffff000 --xp 00000000 00:00 0 [uprobes]\n";
        assert_eq!(refused(up, None), "a [uprobes] mapping");
        let anon_shared = "7f0000000000-7f0000001000 rw-s 00000000 00:00 0 \n";
        assert!(refused(anon_shared, None).starts_with("a shared anonymous"));
    }

    #[test]
    fn mappings_dumped() {
        for (line, mode) in [
            (
                "55bdd4a81000-55bdd4a82000 r--p 00000000 fe:01 12 /usr/bin/x\n",
                Some(libc::S_IFREG | 0o755),
            ),
            (
                "7f0000000000-7f0000001000 rw-s 00000000 fe:01 13 /var/db\n",
                Some(libc::S_IFREG | 0o644),
            ),
            (
                "7f101f2cf000-7f101f2d3000 r--p 00000000 00:00 0 [vvar]\nVmFlags: rd mr pf io de dd\n",
                None,
            ),
            ("7ffc4f014000-7ffc4f034000 rw-p 00000000 00:00 0 [stack]\n", None),
            ("7f0000000000-7f0000001000 rw-p 00000000 00:00 0 \n", None),
        ] {
            assert_eq!(mapping(&one(line), mode), Ok(()), "{line}");
        }
    }

    #[test]
    fn fds() {
        assert!(fd(0, b"/dev/null", libc::S_IFCHR | 0o666, libc::makedev(1, 3)).is_ok());
        assert!(fd(3, b"/etc/passwd", libc::S_IFREG | 0o644, 0).is_ok());
        assert!(fd(4, b"/tmp", libc::S_IFDIR | 0o755, 0).is_ok());
        let e = fd(1, b"pipe:[77]", libc::S_IFIFO | 0o600, 0).unwrap_err();
        assert!(e.0.starts_with("fd 1 (pipe:[77])"), "{e:?}");
        assert!(fd(5, b"/dev/zero", libc::S_IFCHR | 0o666, libc::makedev(1, 5)).is_err());
        assert!(fd(6, b"/tmp/x (deleted)", libc::S_IFREG | 0o644, 0).is_err());
    }

    #[test]
    fn code_goes_in_the_first_executable_mapping() {
        let maps = parse_smaps(
            "1000-2000 r--p 00000000 fe:01 12 /x\n\
             2000-4000 r-xp 00001000 fe:01 12 /x\n\
             ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]\n",
        )
        .unwrap();
        assert_eq!(code_site(&maps), Ok(0x2000));
        assert!(code_site(&maps[..1]).is_err());
        assert!(code_site(&maps[2..]).is_err(), "not above TASK_SIZE");
    }
}
