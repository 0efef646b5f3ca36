//! `crit diff` on real CRIU 4.2 dumps (fixtures/images) and on pairs made
//! from them with the library: the exact output, and the exit status of
//! diff(1) (0 same, 1 different, 2 trouble).

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use criu_image::json::{self, JsonOptions};
use criu_image::ImageReader;
use serde_json::{json, Value};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/images")
}

/// Runs `crit diff ARGS` in `dir`; returns stdout, stderr and the exit status.
fn diff(dir: &Path, args: &[&str]) -> (String, String, i32) {
    let o = Command::new(env!("CARGO_BIN_EXE_crit"))
        .arg("diff")
        .args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(!err.contains("panicked"), "{err}");
    (
        String::from_utf8(o.stdout).unwrap(),
        err,
        o.status.code().unwrap_or(-1),
    )
}

/// A temporary directory with copies of a fixture case as `a/` and `b/`.
fn pair(case: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for side in ["a", "b"] {
        let to = d.path().join(side);
        fs::create_dir(&to).unwrap();
        for e in fs::read_dir(fixtures().join(case)).unwrap() {
            let e = e.unwrap();
            let dst = to.join(e.file_name());
            fs::copy(e.path(), &dst).unwrap();
            fs::set_permissions(&dst, fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    d
}

/// Rewrites an image through its JSON form (plain numbers, as `crit decode`).
fn edit(path: &Path, f: impl FnOnce(&mut Value)) {
    let r = ImageReader::new(fs::File::open(path).unwrap()).unwrap();
    let text = json::decode(r, Vec::new(), JsonOptions::default()).unwrap();
    let mut v: Value = serde_json::from_slice(&text).unwrap();
    f(&mut v["entries"]);
    write_json(path, &v);
}

fn write_json(path: &Path, v: &Value) {
    let text = serde_json::to_vec(v).unwrap();
    let img = json::encode(text.as_slice(), Vec::new()).unwrap();
    fs::write(path, img).unwrap();
}

/// Overwrites `data` at `offset` in a file.
fn patch(path: &Path, offset: usize, data: &[u8]) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset..offset + data.len()].copy_from_slice(data);
    fs::write(path, bytes).unwrap();
}

const PAGE: usize = 4096;

#[test]
fn identical_dumps_are_the_same() {
    for case in ["single", "threads"] {
        assert_eq!(
            diff(&fixtures(), &[case, case]),
            (String::new(), String::new(), 0)
        );
    }
    // the pages images of these are left out of the repository: memory
    // cannot be compared, which is trouble, unless memory is ignored
    for case in ["tree", "files", "python"] {
        let (out, err, code) = diff(&fixtures(), &[case, case]);
        assert_eq!((out.as_str(), code), ("", 2));
        assert!(err.contains("(page contents not compared)"), "{err}");
        assert_eq!(
            diff(&fixtures(), &["--ignore", "memory", case, case]),
            (String::new(), String::new(), 0)
        );
    }
    let p = pair("single");
    assert_eq!(
        diff(p.path(), &["a", "b"]),
        (String::new(), String::new(), 0)
    );
    assert_eq!(
        diff(p.path(), &["--json", "a", "b"]).0,
        "{\"a\": \"a\", \"b\": \"b\", \"differences\": [], \"errors\": [], \"same\": true}\n"
    );
    assert_eq!(diff(p.path(), &["a/mm-29452.img", "b/mm-29452.img"]).2, 0);
}

#[test]
fn an_inserted_vma_is_one_addition() {
    let p = pair("single");
    edit(&p.path().join("b/mm-29452.img"), |e| {
        let vmas = e[0]["vmas"].as_array_mut().unwrap();
        // into the hole between 7f101f2b7000-7f101f2c4000 and 7f101f2cc000-...
        let at = vmas
            .iter()
            .position(|v| v["start"] == json!(0x7f10_1f2c_c000_u64))
            .unwrap();
        vmas.insert(
            at,
            json!({"start": 0x7f10_1f2c_4000_u64, "end": 0x7f10_1f2c_6000_u64, "pgoff": 0, "shmid": 0,
                   "prot": 3, "flags": 0x22, "status": 0x201, "fd": -1}),
        );
    });
    let (out, err, code) = diff(p.path(), &["a", "b"]);
    assert_eq!(
        out,
        "mm-29452.img vmas[7f101f2c4000-7f101f2c6000]: added {\"start\": \"0x7f101f2c4000\", \
         \"end\": \"0x7f101f2c6000\", \"pgoff\": 0, \"shmid\": 0, \"prot\": \"PROT_READ | PROT_WRITE\", \
         \"flags\": \"MAP_PRIVATE | MAP_ANON\", \"status\": \"VMA_AREA_REGULAR | VMA_ANON_PRIVATE\", \
         \"fd\": -1}\n"
    );
    assert_eq!((err.as_str(), code), ("", 1));
    // and the other way round, a removal
    let (out, _, code) = diff(p.path(), &["b", "a"]);
    assert!(
        out.starts_with("mm-29452.img vmas[7f101f2c4000-7f101f2c6000]: removed {"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 1);
    assert_eq!(code, 1);
}

/// b/ of `single` with a VMA's protection, a resource limit and a signal
/// handler changed.
fn changed_fields() -> tempfile::TempDir {
    let p = pair("single");
    edit(&p.path().join("b/mm-29452.img"), |e| {
        e[0]["vmas"][0]["prot"] = json!(3);
    });
    edit(&p.path().join("b/core-29452.img"), |e| {
        let tc = &mut e[0]["tc"];
        tc["rlimits"]["rlimits"][7]["cur"] = json!(1024);
        // sigactions skip SIGKILL: index 8 is SIGUSR1
        tc["sigactions"][8]["sigaction"] = json!(0);
    });
    p
}

#[test]
fn changed_fields_show_their_paths_and_values_as_crit_show() {
    let p = changed_fields();
    let (out, err, code) = diff(p.path(), &["a", "b"]);
    assert_eq!(
        out,
        "core-29452.img tc.rlimits.rlimits[RLIMIT_NOFILE].cur: 333 -> 1024\n\
         core-29452.img tc.sigactions[SIGUSR1].sigaction: 0x55bdd4a822f9 -> 0x0\n\
         mm-29452.img vmas[55bdd4a81000-55bdd4a82000].prot: PROT_READ -> PROT_READ | PROT_WRITE\n"
    );
    assert_eq!((err.as_str(), code), ("", 1));

    // the same as JSON
    let (out, _, code) = diff(p.path(), &["--json", "a", "b"]);
    assert_eq!(
        out,
        "{\"a\": \"a\", \"b\": \"b\", \"differences\": [\n\
         {\"file\": \"core-29452.img\", \"path\": \"tc.rlimits.rlimits[RLIMIT_NOFILE].cur\", \"kind\": \"changed\", \"a\": 333, \"b\": 1024},\n\
         {\"file\": \"core-29452.img\", \"path\": \"tc.sigactions[SIGUSR1].sigaction\", \"kind\": \"changed\", \"a\": \"0x55bdd4a822f9\", \"b\": \"0x0\"},\n\
         {\"file\": \"mm-29452.img\", \"path\": \"vmas[55bdd4a81000-55bdd4a82000].prot\", \"kind\": \"changed\", \"a\": \"PROT_READ\", \"b\": \"PROT_READ | PROT_WRITE\"}\n\
         ], \"errors\": [], \"same\": false}\n"
    );
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["differences"].as_array().unwrap().len(), 3);

    // two files, and a file against a directory
    let (out, _, code) = diff(p.path(), &["a/mm-29452.img", "b"]);
    assert_eq!(
        (out.as_str(), code),
        (
            "mm-29452.img vmas[55bdd4a81000-55bdd4a82000].prot: PROT_READ -> PROT_READ | PROT_WRITE\n",
            1
        )
    );
    assert_eq!(
        diff(p.path(), &["a", "b/core-29452.img"]).0.lines().count(),
        2
    );
}

#[test]
fn color_only_when_asked_or_on_a_terminal() {
    let p = changed_fields();
    let (out, _, _) = diff(
        p.path(),
        &["--color", "always", "a/mm-29452.img", "b/mm-29452.img"],
    );
    assert_eq!(
        out,
        "\x1b[1mmm-29452.img\x1b[0m vmas[55bdd4a81000-55bdd4a82000].prot: \
         \x1b[31mPROT_READ\x1b[0m -> \x1b[32mPROT_READ | PROT_WRITE\x1b[0m\n"
    );
    // stdout is a pipe here: auto means no color
    let (out, _, _) = diff(p.path(), &["a/mm-29452.img", "b/mm-29452.img"]);
    assert!(!out.contains('\x1b'));
}

#[test]
fn an_image_missing_on_one_side() {
    let p = pair("single");
    fs::remove_file(p.path().join("a/seccomp.img")).unwrap();
    fs::remove_file(p.path().join("b/timens-0.img")).unwrap();
    let (out, err, code) = diff(p.path(), &["a", "b"]);
    assert_eq!(out, "Only in a: timens-0.img\nOnly in b: seccomp.img\n");
    assert_eq!((err.as_str(), code), ("", 1));
    let (out, _, _) = diff(p.path(), &["--json", "a", "b"]);
    assert!(out.contains("\n{\"file\": \"timens-0.img\", \"kind\": \"only_in_a\"},\n"));
    // hidden by a file pattern
    assert_eq!(
        diff(
            p.path(),
            &["--ignore", "timens-*", "--ignore", "seccomp.img", "a", "b"]
        )
        .2,
        0
    );
}

#[test]
fn different_page_contents_as_address_ranges() {
    // single's pagemap: 13 entries of PE_PRESENT pages, 30 pages in pages-1.img;
    // pages 5 and 6 are the last of the heap entry at 55bde89c0000 and the
    // first of the one at 7f101f0df000
    let p = pair("single");
    let pages = p.path().join("b/pages-1.img");
    patch(&pages, 5 * PAGE + 100, b"XY");
    patch(&pages, 6 * PAGE, b"XY");
    let (out, err, code) = diff(p.path(), &["a", "b"]);
    assert_eq!(
        out,
        "pagemap-29452.img memory[55bde89c1000-55bde89c2000]: contents differ (1 page)\n\
         pagemap-29452.img memory[7f101f0df000-7f101f0e0000]: contents differ (1 page)\n"
    );
    assert_eq!((err.as_str(), code), ("", 1));

    // neighbouring pages make one range
    patch(&pages, 7 * PAGE + 4095, b"Z");
    let (out, _, _) = diff(p.path(), &["a/pagemap-29452.img", "b/pagemap-29452.img"]);
    assert_eq!(
        out,
        "pagemap-29452.img memory[55bde89c1000-55bde89c2000]: contents differ (1 page)\n\
         pagemap-29452.img memory[7f101f0df000-7f101f0e1000]: contents differ (2 pages)\n"
    );

    // JSON gives the range as numbers too
    let (out, _, _) = diff(p.path(), &["--json", "a", "b"]);
    assert!(out.contains(
        "{\"file\": \"pagemap-29452.img\", \"path\": \"memory[7f101f0df000-7f101f0e1000]\", \
         \"kind\": \"contents\", \"start\": \"0x7f101f0df000\", \"end\": \"0x7f101f0e1000\", \"pages\": 2}"
    ));
    assert_eq!(diff(p.path(), &["--ignore", "memory", "a", "b"]).2, 0);
}

#[test]
fn pages_on_one_side_and_changed_page_flags() {
    let p = pair("single");
    // the stack entry (3 pages, last in the pages file) goes, with its data;
    // the entry at 55bdd4a82000 becomes lazy
    edit(&p.path().join("b/pagemap-29452.img"), |e| {
        let entries = e.as_array_mut().unwrap();
        let last = entries.pop().unwrap();
        assert_eq!(last["vaddr"], json!(0x7ffc_4f03_1000_u64));
        entries[1]["flags"] = json!(6);
    });
    let pages = p.path().join("b/pages-1.img");
    let bytes = fs::read(&pages).unwrap();
    fs::write(&pages, &bytes[..bytes.len() - 3 * PAGE]).unwrap();
    let (out, err, code) = diff(p.path(), &["a", "b"]);
    assert_eq!(
        out,
        "pagemap-29452.img memory[55bdd4a82000-55bdd4a83000].flags: PE_PRESENT -> PE_LAZY | PE_PRESENT\n\
         pagemap-29452.img memory[7ffc4f031000-7ffc4f034000]: removed {\"pages\": 3, \"flags\": \"PE_LAZY | PE_PRESENT\"}\n"
    );
    assert_eq!((err.as_str(), code), ("", 1));
    let (out, _, _) = diff(p.path(), &["b", "a"]);
    assert!(out.ends_with(
        "memory[7ffc4f031000-7ffc4f034000]: added {\"pages\": 3, \"flags\": \"PE_LAZY | PE_PRESENT\"}\n"
    ));
}

#[test]
fn a_different_number_of_threads() {
    let p = pair("threads");
    fs::remove_file(p.path().join("b/core-29563.img")).unwrap();
    edit(&p.path().join("b/pstree.img"), |e| {
        e[0]["threads"].as_array_mut().unwrap().pop();
    });
    let (out, err, code) = diff(p.path(), &["a", "b"]);
    assert_eq!(
        out,
        "Only in a: core-29563.img\n\
         pstree.img [pid=29556].threads[29563]: removed\n"
    );
    assert_eq!((err.as_str(), code), ("", 1));
}

#[test]
fn same_program_hides_what_always_changes() {
    let p = pair("single");
    let b = p.path().join("b");
    edit(&b.join("core-29452.img"), |e| {
        e[0]["thread_info"]["gpregs"]["ip"] = json!(0x1234);
        e[0]["thread_info"]["fpregs"]["mxcsr"] = json!(0);
    });
    edit(&b.join("inventory.img"), |e| {
        e[0]["dump_criu_run_id"] = json!("00000000-0000-0000-0000-000000000000");
    });
    edit(&b.join("stats-dump"), |e| {
        e[0]["dump"]["frozen_time"] = json!(1);
    });
    edit(&b.join("timens-0.img"), |e| {
        e[0]["monotonic"]["tv_sec"] = json!(1);
    });
    let (out, _, code) = diff(p.path(), &["a", "b"]);
    assert_eq!(
        out,
        "core-29452.img thread_info.gpregs.ip: 0x7f101f1b1503 -> 0x1234\n\
         core-29452.img thread_info.fpregs.mxcsr: 8064 -> 0\n\
         inventory.img dump_criu_run_id: 4ba3e5a8-7aaf-4df8-a0d5-1bee27f6cd2a -> 00000000-0000-0000-0000-000000000000\n\
         stats-dump dump.frozen_time: 3215 -> 1\n\
         timens-0.img monotonic.tv_sec: 1135 -> 1\n"
            .replace(
                "4ba3e5a8-7aaf-4df8-a0d5-1bee27f6cd2a",
                &run_id(&p.path().join("a/inventory.img")),
            )
    );
    assert_eq!(code, 1);
    assert_eq!(
        diff(p.path(), &["--same-program", "a", "b"]),
        (String::new(), String::new(), 0)
    );
    // --ignore hides one subtree, here the registers
    let (out, _, _) = diff(p.path(), &["--ignore", "core-*.img thread_info", "a", "b"]);
    assert!(!out.contains("core-29452.img"), "{out}");
    assert_eq!(out.lines().count(), 3);
}

fn run_id(inventory: &Path) -> String {
    let r = ImageReader::new(fs::File::open(inventory).unwrap()).unwrap();
    let text = json::decode(r, Vec::new(), JsonOptions::default()).unwrap();
    let v: Value = serde_json::from_slice(&text).unwrap();
    v["entries"][0]["dump_criu_run_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn bad_paths_and_images_are_trouble() {
    let p = pair("single");
    assert_eq!(
        diff(p.path(), &["a", "nope"]),
        (
            String::new(),
            "crit diff: nope: No such file or directory (os error 2)\n".to_owned(),
            2
        )
    );
    assert_eq!(
        diff(p.path(), &["a", "b/nope.img"]).1,
        "crit diff: b/nope.img: No such file or directory (os error 2)\n"
    );
    // clap's usage error is trouble too
    assert_eq!(diff(p.path(), &["a"]).2, 2);

    // an image cut short: reported, and the rest is still compared
    let fs_img = p.path().join("b/fs-29452.img");
    let bytes = fs::read(&fs_img).unwrap();
    fs::write(&fs_img, &bytes[..bytes.len() - 3]).unwrap();
    fs::remove_file(p.path().join("b/seccomp.img")).unwrap();
    let (out, err, code) = diff(p.path(), &["a", "b"]);
    assert_eq!(out, "Only in a: seccomp.img\n");
    assert_eq!(
        err,
        "crit diff: b/fs-29452.img: truncated at byte 12: expected an entry payload, found 3 of 6 bytes\n"
    );
    assert_eq!(code, 2);
    // JSON lists it as well
    let (out, _, code) = diff(p.path(), &["--json", "a", "b"]);
    assert!(out.ends_with(
        "], \"errors\": [\"b/fs-29452.img: truncated at byte 12: expected an entry payload, found 3 of 6 bytes\"], \"same\": false}\n"
    ));
    assert_eq!(code, 2);

    // a pages image that is missing: memory is not compared, and that is trouble
    let q = pair("single");
    fs::remove_file(q.path().join("b/pages-1.img")).unwrap();
    let (out, err, code) = diff(q.path(), &["a", "b"]);
    assert_eq!(out, "Only in a: pages-1.img\n");
    assert_eq!(
        err,
        "crit diff: opening b/pages-1.img (page contents not compared): No such file or directory (os error 2)\n"
    );
    assert_eq!(code, 2);
    // a pages image shorter than its pagemap says
    let pages = q.path().join("a/pages-1.img");
    let bytes = fs::read(&pages).unwrap();
    fs::write(q.path().join("b/pages-1.img"), &bytes[..bytes.len() - 100]).unwrap();
    let (_, err, code) = diff(q.path(), &["a", "b"]);
    assert_eq!(
        err,
        "crit diff: b/pages-1.img: truncated at byte 122780: expected page data the pagemap points to, found 12188 of 12288 bytes\n"
    );
    assert_eq!(code, 2);
}

#[test]
fn hand_made_images_match_fds_by_number() {
    let d = tempfile::tempdir().unwrap();
    let fd = |fd: u32, id: u32| json!({"id": id, "flags": 0, "type": 1, "fd": fd});
    write_json(
        &d.path().join("a.img"),
        &json!({"magic": "FDINFO", "entries": [fd(0, 1), fd(1, 2), fd(2, 3)]}),
    );
    write_json(
        &d.path().join("b.img"),
        &json!({"magic": "FDINFO", "entries": [fd(0, 1), fd(1, 2), fd(5, 9), fd(2, 4)]}),
    );
    let (out, err, code) = diff(d.path(), &["a.img", "b.img"]);
    assert_eq!(
        out,
        "a.img [fd=2].id: 3 -> 4\n\
         a.img [fd=5]: added {\"id\": 9, \"flags\": 0, \"type\": \"REG\", \"fd\": 5}\n"
    );
    assert_eq!((err.as_str(), code), ("", 1));
    // not an image at all: compared as bytes
    fs::write(d.path().join("x.log"), "one").unwrap();
    fs::write(d.path().join("y.log"), "two!").unwrap();
    assert_eq!(
        diff(d.path(), &["x.log", "y.log"]).0,
        "x.log: contents differ (3 bytes -> 4 bytes)\n"
    );
}
