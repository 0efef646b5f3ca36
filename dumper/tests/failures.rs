//! Dumps that fail: the target must go on as before, the error must say
//! why, and the images directory must not look like a dump.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use dumper::{DumpError, Fault};

use crate::support::{files_in, opts, ptrace_allowed, victim, Victim};

#[test]
fn bad_pid() {
    let _g = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id() as i32;
    c.wait().unwrap();
    let e = dumper::run(&opts(pid, dir.path(), true), None).unwrap_err();
    assert!(matches!(e, DumpError::NoSuchProcess { .. }), "{e}");
    assert!(e.to_string().contains("no process"));
    let e = dumper::run(&opts(0, dir.path(), true), None).unwrap_err();
    assert!(matches!(e, DumpError::NoSuchProcess { .. }), "{e}");
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn unwritable_dir_leaves_task_alone() {
    let _g = crate::support::serial();
    let Some(v) = victim(1) else { return };
    let e = dumper::run(&opts(v.pid, std::path::Path::new("/proc/self"), true), None).unwrap_err();
    assert!(matches!(e, DumpError::OutputDir { .. }), "{e}");
    let missing = tempfile::tempdir().unwrap().path().join("nope");
    let e = dumper::run(&opts(v.pid, &missing, true), None).unwrap_err();
    assert!(matches!(e, DumpError::OutputDir { .. }), "{e}");
    v.assert_untouched();
}

fn failing_dump(fault: Fault) -> Option<(Victim, DumpError, tempfile::TempDir)> {
    let v = victim(2)?;
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(v.pid, dir.path(), true);
    o.fault = Some(fault);
    let e = dumper::run(&o, None).unwrap_err();
    assert!(
        files_in(dir.path()).is_empty(),
        "left {:?}",
        files_in(dir.path())
    );
    Some((v, e, dir))
}

#[test]
fn failure_after_injection_restores_everything() {
    let _g = crate::support::serial();
    let Some((v, e, _d)) = failing_dump(Fault::AfterInject) else {
        return;
    };
    assert!(matches!(e, DumpError::FaultInjected { .. }), "{e}");
    v.assert_untouched();
}

#[test]
fn failure_while_writing_removes_images() {
    let _g = crate::support::serial();
    let Some((v, e, _d)) = failing_dump(Fault::WhileWriting) else {
        return;
    };
    assert!(matches!(e, DumpError::FaultInjected { .. }), "{e}");
    v.assert_untouched();
}

#[test]
fn target_exits_during_dump() {
    let _g = crate::support::serial();
    let Some((mut v, e, _d)) = failing_dump(Fault::KillAfterFreeze) else {
        return;
    };
    assert!(matches!(e, DumpError::TargetGone { .. }), "{e}");
    assert!(e.to_string().contains("exited during the dump"));
    let _ = v.child.wait();
}

#[test]
fn unsupported_fd_is_refused_cleanly() {
    let _g = crate::support::serial();
    let Some(v) = Victim::spawn_with(1, Stdio::piped()) else {
        return;
    };
    if !ptrace_allowed(&v) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let e = dumper::run(&opts(v.pid, dir.path(), true), None).unwrap_err();
    assert!(matches!(e, DumpError::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("fd 1"), "{e}");
    assert!(files_in(dir.path()).is_empty());
    v.assert_untouched();
}

#[test]
fn no_permission() {
    let _g = crate::support::serial();
    if crate::support::my_uid() != 0 {
        crate::support::skip("needs root to run the dumper as another user");
        return;
    }
    let Some(v) = victim(1) else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dumper"))
        .args(["-t", &v.pid.to_string(), "-D"])
        .arg(dir.path())
        .arg("--leave-running")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no permission") || err.contains("Permission denied"),
        "{err}"
    );
    assert!(files_in(dir.path()).is_empty());
    v.assert_untouched();
}

/// Every file of a directory with its contents (directories apart).
fn snapshot(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    files_in(dir)
        .into_iter()
        .filter(|n| dir.join(n).is_file())
        .map(|n| {
            let b = std::fs::read(dir.join(&n)).unwrap();
            (n, b)
        })
        .collect()
}

/// Dumps `v` into `dir`, then dumps it again there with `fault` (and
/// `leave_running` as given), which must fail; returns the files of the
/// first dump.
fn dump_then_fail(
    v: &Victim,
    dir: &std::path::Path,
    fault: Fault,
    leave_running: bool,
) -> Vec<(String, Vec<u8>)> {
    dumper::run(&opts(v.pid, dir, true), None).unwrap();
    let before = snapshot(dir);
    assert!(before.iter().any(|(n, _)| n == "inventory.img"));
    let mut o = opts(v.pid, dir, leave_running);
    o.fault = Some(fault);
    let e = dumper::run(&o, None).unwrap_err();
    assert!(matches!(e, DumpError::FaultInjected { .. }), "{e}");
    before
}

fn assert_same(after: &[(String, Vec<u8>)], before: &[(String, Vec<u8>)]) {
    assert_eq!(
        after.iter().map(|x| &x.0).collect::<Vec<_>>(),
        before.iter().map(|x| &x.0).collect::<Vec<_>>()
    );
    assert!(after == before, "an image of the earlier dump changed");
}

/// Issue 7, defect 1: a dump that fails in a directory holding a good dump
/// leaves that dump as it was (it used to remove the images it had
/// rewritten: core, pagemap and pages were gone, inventory.img stayed).
#[test]
fn failed_dump_keeps_the_earlier_dump() {
    let _g = crate::support::serial();
    let Some(v) = victim(2) else { return };
    let dir = tempfile::tempdir().unwrap();
    let before = dump_then_fail(&v, dir.path(), Fault::WhileWriting, true);
    assert_same(&snapshot(dir.path()), &before);
    assert_eq!(
        files_in(dir.path()).len(),
        before.len(),
        "nothing else left"
    );
    v.assert_untouched();
}

/// Issue 7, defect 1: a failure while the new images are moved into place
/// (half of them are) puts the earlier dump back as it was; a task that
/// was to be killed after the dump is resumed instead.
#[test]
fn failure_while_committing_puts_the_earlier_dump_back() {
    let _g = crate::support::serial();
    let Some(v) = victim(1) else { return };
    for leave_running in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let before = dump_then_fail(&v, dir.path(), Fault::WhileCommitting, leave_running);
        assert_same(&snapshot(dir.path()), &before);
        assert_eq!(
            files_in(dir.path()).len(),
            before.len(),
            "nothing else left"
        );
        v.assert_untouched();
    }
}

/// Issue 7, defect 1: the dumper killed while it moves the new images into
/// place leaves no directory that looks like a complete dump (the old
/// inventory.img went first, the new one was not there yet), the earlier
/// dump whole beside it, and the target running as before.
#[test]
fn dumper_killed_while_committing() {
    let _g = crate::support::serial();
    let Some(v) = victim(2) else { return };
    let dir = tempfile::tempdir().unwrap();
    dumper::run(&opts(v.pid, dir.path(), true), None).unwrap();
    let before = snapshot(dir.path());
    let out = dumper_bin(
        &["-t", &v.pid.to_string(), "--leave-running"],
        dir.path(),
        &[("DUMPER_FAULT", "kill-while-committing")],
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{out:?}");
    let left = files_in(dir.path());
    assert!(!left.contains(&"inventory.img".to_string()), "{left:?}");
    let old = left
        .iter()
        .find(|n| n.starts_with(".dumper-") && n.ends_with(".old"))
        .unwrap_or_else(|| panic!("no .old directory in {left:?}"));
    assert_same(&snapshot(&dir.path().join(old)), &before);
    v.assert_untouched();
}

/// Issue 7: shared anonymous and memfd mappings are refused before the
/// task is touched (they were refused once it was frozen, as "a mapping of
/// a deleted file"): no freeze, no code run inside it, nothing written.
#[test]
fn refused_mappings_leave_the_task_untouched() {
    let _g = crate::support::serial();
    let Some(bin) = crate::support::mapper_bin() else {
        return;
    };
    for (kind, what) in [
        ("shared-anon", "a shared anonymous mapping"),
        ("memfd", "a memfd mapping"),
    ] {
        let v = Victim::spawn_prog(bin, &[kind], Stdio::null());
        let before = v.status();
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Vec::new();
        let e =
            dumper::run(&opts(v.pid, dir.path(), true), Some(&mut |p| seen.push(p))).unwrap_err();
        assert!(matches!(e, DumpError::Unsupported { .. }), "{e}");
        assert!(e.to_string().contains(what), "{kind}: {e}");
        assert_eq!(seen, [], "{kind}: the task was frozen");
        assert!(
            files_in(dir.path()).is_empty(),
            "{:?}",
            files_in(dir.path())
        );
        let after = v.status();
        assert_eq!(after.get("traced"), "0", "{kind}");
        assert_eq!(after.get("ok"), "1", "{kind}: the shared page changed");
        assert!(after.num("counter") > before.num("counter"), "{kind}");
    }
}

/// Runs the dumper binary.
fn dumper_bin(args: &[&str], dir: &std::path::Path, env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dumper"))
        .args(args)
        .arg("-D")
        .arg(dir)
        .env_remove("DUMPER_FAULT")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// Issue 7, defect 7: one line per error on stderr, the OS error once.
#[test]
fn binary_prints_one_line_per_error() {
    let _g = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id().to_string();
    c.wait().unwrap();
    let out = dumper_bin(&["-t", &pid], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("dumper: no process {pid}\n")
    );

    let Some(v) = Victim::spawn(0) else { return };
    let missing = dir.path().join("nope");
    let out = dumper_bin(&["-t", &v.pid.to_string()], &missing, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("dumper: images directory "), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    v.assert_untouched();
}

/// Issue 7, defect 8: a DUMPER_FAULT the dumper does not know is an error,
/// not a dump made as if it were not set.
#[test]
fn unknown_dumper_fault_is_an_error() {
    let _g = crate::support::serial();
    let Some(v) = victim(1) else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dumper_bin(
        &["-t", &v.pid.to_string(), "--leave-running"],
        dir.path(),
        &[("DUMPER_FAULT", "while-writting")],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("DUMPER_FAULT") && err.contains("while-writting"),
        "{err}"
    );
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
    v.assert_untouched();
}
