//! Successful dumps of a live victim, checked image by image.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;

use criu_image::pb;
use dumper::Progress;

use crate::support::{decode, files_in, opts, victim, Victim};

fn code_bytes(pid: i32) -> (u64, [u8; 64]) {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let line = maps
        .lines()
        .find(|l| l.split(' ').nth(1).unwrap().contains('x'))
        .unwrap();
    let start = u64::from_str_radix(line.split('-').next().unwrap(), 16).unwrap();
    let mut b = [0u8; 64];
    std::fs::File::open(format!("/proc/{pid}/mem"))
        .unwrap()
        .read_exact_at(&mut b, start)
        .unwrap();
    (start, b)
}

pub(crate) fn tasks(pid: i32) -> Vec<u32> {
    let mut t: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .into_string()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    t.sort_by_key(|x| (*x != pid as u32, *x));
    t
}

/// Checks every image of a dump of `v` (with `nthreads` workers).
pub(crate) fn check_images(v: &Victim, dir: &Path, threads: &[u32]) {
    let pid = v.pid;
    let mut expected: Vec<String> = threads.iter().map(|t| format!("core-{t}.img")).collect();
    for n in ["mm", "pagemap", "fs", "ids"] {
        expected.push(format!("{n}-{pid}.img"));
    }
    for n in [
        "pages-1.img",
        "pstree.img",
        "inventory.img",
        "files.img",
        "fdinfo-2.img",
        "seccomp.img",
        "timens-0.img",
        "stats-dump",
    ] {
        expected.push(n.to_string());
    }
    expected.sort();
    assert_eq!(files_in(dir), expected);
    for f in &expected {
        let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{f} mode {mode:o}");
    }

    let inv: Vec<pb::InventoryEntry> = decode(&dir.join("inventory.img"));
    assert_eq!(inv[0].img_version, 2);
    assert_eq!(inv[0].root_ids.unwrap().vm_id, 1);

    let ps: Vec<pb::PstreeEntry> = decode(&dir.join("pstree.img"));
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0].pid, pid as u32);
    assert_eq!(ps[0].threads, threads);

    // The leader.
    let core: Vec<pb::CoreEntry> = decode(&dir.join(format!("core-{pid}.img")));
    let core = &core[0];
    let tc = core.tc.as_ref().expect("leader has tc");
    assert_eq!(tc.comm, b"victim-main");
    assert_eq!(tc.task_state, 1);
    assert_eq!(tc.blk_sigset, v.ready.num("sigmask"));
    let nofile = tc.rlimits.as_ref().unwrap().rlimits[libc::RLIMIT_NOFILE as usize];
    assert_eq!((nofile.cur, nofile.max), (333, 777));
    assert_eq!(tc.sigactions.len(), 62);
    // SIGUSR1 (10) is at index 8: SIGKILL (9) has no entry. 0x04000000 is
    // SA_RESTORER.
    let usr1 = &tc.sigactions[8];
    let want = (libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK) as u64 | 0x0400_0000;
    assert_eq!(usr1.flags & want, want, "flags {:#x}", usr1.flags);
    assert_eq!(usr1.mask, 1 << (libc::SIGUSR2 - 1));
    assert_ne!(usr1.sigaction, 0);
    let th = core.thread_core.as_ref().unwrap();
    assert_eq!(th.sched_nice, Some(7));
    assert_eq!(th.sched_policy, Some(0));
    assert_eq!(th.blk_sigset, None, "leader's mask is in tc");
    assert_eq!(th.comm.as_deref(), Some(&b"victim-main"[..]));
    let sas = th.sas.unwrap();
    assert_eq!(sas.ss_size, v.ready.num("ss_size"));
    assert_eq!(sas.ss_sp, v.ready.num("ss_sp"));
    assert_eq!(th.creds.as_ref().unwrap().uid, crate::support::my_uid());
    let ti = core.thread_info.as_ref().unwrap();
    assert_ne!(ti.clear_tid_addr, 0);
    assert_ne!(ti.gpregs.fs_base, 0);
    assert_eq!(ti.gpregs.cs, 0x33);
    assert_eq!(ti.tls.len(), 3);
    assert!(ti.fpregs.xsave.is_some());

    // Workers.
    for (i, t) in threads.iter().skip(1).enumerate() {
        let c: Vec<pb::CoreEntry> = decode(&dir.join(format!("core-{t}.img")));
        assert!(c[0].tc.is_none());
        let th = c[0].thread_core.as_ref().unwrap();
        assert_eq!(th.comm.as_deref(), Some(format!("victim-w{i}").as_bytes()));
        assert!(th.blk_sigset.is_some());
        assert_ne!(c[0].thread_info.as_ref().unwrap().gpregs.sp, ti.gpregs.sp);
    }

    // Memory.
    let mm: Vec<pb::MmEntry> = decode(&dir.join(format!("mm-{pid}.img")));
    let mm = &mm[0];
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    assert_eq!(mm.mm_start_code, f[23].parse::<u64>().unwrap());
    assert_eq!(mm.mm_start_brk, f[44].parse::<u64>().unwrap());
    assert_eq!(mm.dumpable, Some(1));
    assert!(mm.vmas.windows(2).all(|w| w[0].end <= w[1].start));
    let pattern = v.ready.num("pattern");
    let pv = mm
        .vmas
        .iter()
        .find(|x| x.start <= pattern && pattern < x.end)
        .unwrap();
    assert_ne!(pv.status & (1 << 9), 0, "anon private");
    let files: Vec<pb::FileEntry> = decode(&dir.join("files.img"));
    let exe = files.iter().find(|f| f.id == mm.exe_file_id).unwrap();
    let exe_link = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(
        Path::new(OsStr::from_bytes(&exe.reg.as_ref().unwrap().name)),
        exe_link
    );

    // Pages: the pattern page is there with its contents.
    let pm: Vec<pb::PagemapEntry> = decode(&dir.join(format!("pagemap-{pid}.img")));
    let pages = std::fs::read(dir.join("pages-1.img")).unwrap();
    let total: u64 = pm.iter().map(|e| e.nr_pages.unwrap()).sum();
    assert_eq!(total * 4096, pages.len() as u64);
    let mut off = 0u64;
    let mut found = false;
    for e in &pm {
        let n = e.nr_pages.unwrap();
        if e.vaddr <= pattern && pattern < e.vaddr + n * 4096 {
            let at = (off + (pattern - e.vaddr)) as usize;
            for i in 0..512usize {
                let w = u64::from_le_bytes(pages[at + i * 8..at + i * 8 + 8].try_into().unwrap());
                assert_eq!(w, 0xC0FFEE0000000000 + i as u64);
            }
            found = true;
        }
        off += n * 4096;
    }
    assert!(found, "pattern page dumped");
    let stats: Vec<pb::StatsEntry> = decode(&dir.join("stats-dump"));
    assert_eq!(stats[0].dump.as_ref().unwrap().pages_written, total);

    // Files and fds: 0, 1, 2 on /dev/null.
    let fdinfo: Vec<pb::FdinfoEntry> = decode(&dir.join("fdinfo-2.img"));
    assert_eq!(
        fdinfo.iter().map(|f| f.fd).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    for fi in &fdinfo {
        let f = files.iter().find(|f| f.id == fi.id).unwrap();
        assert_eq!(f.reg.as_ref().unwrap().name, b"/dev/null");
    }
    let fs: Vec<pb::FsEntry> = decode(&dir.join(format!("fs-{pid}.img")));
    let cwd = files.iter().find(|f| f.id == fs[0].cwd_id).unwrap();
    let cwd_link = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    assert_eq!(
        Path::new(OsStr::from_bytes(&cwd.reg.as_ref().unwrap().name)),
        cwd_link
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let umask = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .unwrap()
        .trim();
    assert_eq!(fs[0].umask, Some(u32::from_str_radix(umask, 8).unwrap()));
    let ids: Vec<pb::TaskKobjIdsEntry> = decode(&dir.join(format!("ids-{pid}.img")));
    assert_eq!(ids[0].files_id, 2);
    let _: Vec<pb::SeccompEntry> = decode(&dir.join("seccomp.img"));
    let _: Vec<pb::TimensEntry> = decode(&dir.join("timens-0.img"));
}

#[test]
fn leave_running_dumps_all_threads_and_leaves_task_untouched() {
    let _g = crate::support::serial();
    let Some(v) = victim(3) else { return };
    let threads = tasks(v.pid);
    assert_eq!(threads.len(), 4);
    let code_before = code_bytes(v.pid);
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    let s = dumper::run(&opts(v.pid, dir.path(), true), Some(&mut |p| seen.push(p))).unwrap();
    assert_eq!(s.threads, 4);
    // Progress: the steps in order, pages as they are written.
    let pages: Vec<(u64, u64)> = seen
        .iter()
        .filter_map(|p| match *p {
            Progress::Pages { written, total } => Some((written, total)),
            _ => None,
        })
        .collect();
    assert!(pages.windows(2).all(|w| w[0].0 < w[1].0), "{pages:?}");
    assert_eq!(pages.last(), Some(&(s.pages, s.pages)));
    let steps: Vec<Progress> = seen
        .into_iter()
        .filter(|p| !matches!(p, Progress::Pages { .. }))
        .collect();
    assert_eq!(
        steps,
        [
            Progress::Freezing,
            Progress::Frozen { threads: 4 },
            Progress::Injecting,
            Progress::Committed
        ]
    );
    assert_eq!(code_bytes(v.pid), code_before, "code bytes restored");
    v.assert_untouched();
    check_images(&v, dir.path(), &threads);
}

#[test]
fn single_threaded_victim() {
    let _g = crate::support::serial();
    let Some(v) = victim(0) else { return };
    let dir = tempfile::tempdir().unwrap();
    dumper::run(&opts(v.pid, dir.path(), true), None).unwrap();
    v.assert_untouched();
    check_images(&v, dir.path(), &[v.pid as u32]);
}

#[test]
fn dump_kills_the_task_by_default() {
    let _g = crate::support::serial();
    let Some(mut v) = victim(1) else { return };
    let dir = tempfile::tempdir().unwrap();
    dumper::run(&opts(v.pid, dir.path(), false), None).unwrap();
    let st = v.child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    assert!(dir.path().join("inventory.img").exists());
}

#[test]
fn two_dumps_in_a_row() {
    let _g = crate::support::serial();
    let Some(v) = victim(2) else { return };
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        dumper::run(&opts(v.pid, dir.path(), true), None).unwrap();
        v.assert_untouched();
    }
}

/// Issue 7, defect 1: a dump into a directory that holds an older dump
/// (another process, other thread ids) leaves exactly the new dump: no
/// core-OLDTID.img or mm-OLDPID.img of the old one stays behind.
#[test]
fn dump_over_an_older_dump_leaves_only_the_new_one() {
    let _g = crate::support::serial();
    let Some(old) = victim(3) else { return };
    let dir = tempfile::tempdir().unwrap();
    dumper::run(&opts(old.pid, dir.path(), true), None).unwrap();
    let old_inv: Vec<pb::InventoryEntry> = decode(&dir.path().join("inventory.img"));
    drop(old);
    let Some(v) = victim(1) else { return };
    let threads = tasks(v.pid);
    dumper::run(&opts(v.pid, dir.path(), true), None).unwrap();
    v.assert_untouched();
    check_images(&v, dir.path(), &threads);
    let inv: Vec<pb::InventoryEntry> = decode(&dir.path().join("inventory.img"));
    assert_ne!(inv[0].dump_criu_run_id, old_inv[0].dump_criu_run_id);
}
