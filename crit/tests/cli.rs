//! The `crit` command as users and scripts meet it: flags, outputs, exit
//! codes, and a clear error (with file and position) for every kind of bad
//! input.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Runs crit with `args`, feeding it `stdin` (a closed pipe it stopped
/// reading is fine).
pub(crate) fn crit(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crit"));
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        use std::io::Write;
        let _ = child.stdin.take().unwrap().write_all(input);
    }
    child.wait_with_output().unwrap()
}

fn fixture(case: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/images")
        .join(case)
        .join(file)
}

fn expected(case: &str, file: &str) -> Vec<u8> {
    fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/expected")
            .join(case)
            .join(file),
    )
    .unwrap()
}

fn tmpdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs crit expecting exit code 1 and an error that mentions every needle.
fn fails(args: &[&str], stdin: Option<&[u8]>, needles: &[&str]) {
    let o = crit(args, stdin);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
    assert!(
        o.stdout.is_empty() || args[0] != "encode",
        "{args:?} wrote output"
    );
    for n in needles {
        assert!(err.contains(n), "{args:?}: {n:?} not in {err:?}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

/// An image with the common magic, `magic` and these raw entry payloads.
pub(crate) fn image(magic: u32, entries: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0x5456_4319u32.to_ne_bytes());
    v.extend_from_slice(&magic.to_ne_bytes());
    for e in entries {
        v.extend_from_slice(&(e.len() as u32).to_ne_bytes());
        v.extend_from_slice(e);
    }
    v
}

const PSTREE: u32 = 0x5027_3030;

#[test]
fn decode_stdout_ends_with_newline_file_does_not() {
    let img = fixture("single", "fs-29452.img");
    let want = expected("single", "fs-29452.img.json");
    let o = crit(&["decode", "-i", img.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(o.stdout, [want.as_slice(), b"\n"].concat());

    let d = tmpdir();
    let out = d.path().join("fs.json");
    let o = crit(
        &[
            "decode",
            "--pretty",
            "-i",
            img.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        fs::read(&out).unwrap(),
        expected("single", "fs-29452.img.pretty.json")
    );

    // stdin works too
    let o = crit(&["decode"], Some(&fs::read(&img).unwrap()));
    assert_eq!(o.stdout, [want.as_slice(), b"\n"].concat());
}

#[test]
fn encode_pretty_and_plain_give_original_bytes() {
    let img = fixture("single", "mm-29452.img");
    let d = tmpdir();
    for (src, name) in [
        ("mm-29452.img.json", "plain"),
        ("mm-29452.img.pretty.json", "pretty"),
    ] {
        let out = d.path().join(name);
        let o = crit(
            &["encode", "-o", out.to_str().unwrap()],
            Some(&expected("single", src)),
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(fs::read(&out).unwrap(), fs::read(&img).unwrap(), "{name}");
    }
}

#[test]
fn show_info_and_x() {
    let img = fixture("files", "pipes-data.img");
    let o = crit(&["show", img.to_str().unwrap(), "--nopl"], None);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("\"extra\": \"... <14B>\""), "{text}");
    assert!(text.starts_with("{\n    \"magic\": \"PIPES_DATA\""));

    let o = crit(&["show", img.to_str().unwrap()], None);
    assert_eq!(
        o.stdout,
        [
            expected("files", "pipes-data.img.pretty.json").as_slice(),
            b"\n"
        ]
        .concat()
    );

    let o = crit(
        &[
            "info",
            fixture("single", "core-29452.img").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.stdout, expected("single", "core-29452.img.info.txt"));

    let dir = fixture("tree", "");
    let o = crit(&["x", dir.to_str().unwrap(), "ps"], None);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(o.stdout, expected("tree", "x-ps.txt"));
}

#[test]
fn raw_images_are_refused_as_python_crit_does() {
    fails(
        &[
            "decode",
            "-i",
            fixture("single", "pages-1.img").to_str().unwrap(),
        ],
        None,
        &["pages-1.img", "Unknown magic", "raw data"],
    );
}

#[test]
fn bad_images_give_clear_errors() {
    let d = tmpdir();
    let write = |name: &str, bytes: &[u8]| {
        let p = d.path().join(name);
        fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let pid_1 = [0x08u8, 1, 0x10, 0, 0x18, 1, 0x20, 1]; // pid 1, ppid 0, pgid 1, sid 1

    fails(
        &["decode", "-i", &write("empty.img", b"")],
        None,
        &["empty.img", "byte 0", "image magic"],
    );
    fails(
        &["decode", "-i", &write("short.img", &[0x19, 0x43])],
        None,
        &["short.img", "byte 0"],
    );
    fails(
        &[
            "decode",
            "-i",
            &write("unknown.img", &0x1234_5678u32.to_ne_bytes()),
        ],
        None,
        &["unknown.img", "Unknown magic 0x12345678"],
    );
    // a size field cut short
    let mut cut = image(PSTREE, &[]);
    cut.extend_from_slice(&[5, 0]);
    fails(
        &["decode", "-i", &write("cut-size.img", &cut)],
        None,
        &["cut-size.img", "byte 8", "entry size"],
    );
    // a payload cut short
    let mut cut = image(PSTREE, &[&pid_1]);
    cut.truncate(cut.len() - 3);
    fails(
        &["decode", "-i", &write("cut-payload.img", &cut)],
        None,
        &["byte 12", "found 5 of 8"],
    );
    // a size larger than any entry: refused before reading, nothing allocated
    let mut huge = image(PSTREE, &[]);
    huge.extend_from_slice(&u32::MAX.to_ne_bytes());
    fails(
        &["decode", "-i", &write("huge.img", &huge)],
        None,
        &["huge.img", "entry 0", "larger than the limit"],
    );
    // a size past the end of the file
    let mut past = image(PSTREE, &[]);
    past.extend_from_slice(&100_000u32.to_ne_bytes());
    past.extend_from_slice(&pid_1);
    fails(
        &["decode", "-i", &write("past.img", &past)],
        None,
        &["found 8 of 100000"],
    );
    // garbage protobuf
    fails(
        &[
            "decode",
            "-i",
            &write("garbage.img", &image(PSTREE, &[&[0xff, 0xff, 0xff]])),
        ],
        None,
        &["garbage.img", "entry 0", "cannot decode pstree_entry"],
    );
    // a missing required field (sid)
    fails(
        &[
            "decode",
            "-i",
            &write("noreq.img", &image(PSTREE, &[&pid_1[..6]])),
        ],
        None,
        &["noreq.img", "required field sid is missing"],
    );
    // the error names the entry
    fails(
        &[
            "decode",
            "-i",
            &write("second.img", &image(PSTREE, &[&pid_1, &[0x08]])),
        ],
        None,
        &["entry 1 at byte 20"],
    );
    fails(
        &["decode", "-i", "/nonexistent/x.img"],
        None,
        &["/nonexistent/x.img"],
    );
    fails(&["info", &write("empty2.img", b"")], None, &["empty2.img"]);
    fails(&["x", "/nonexistent", "ps"], None, &["pstree.img"]);
}

#[test]
fn bad_json_gives_clear_errors() {
    let cases: &[(&[u8], &[&str])] = &[
        (b"", &["Cannot read JSON"]),
        (&[0x19, 0x43, 0x56, 0x54, 0x30], &["Cannot read JSON", "protobuf"]),
        (b"{\"magic\": \"PSTREE\", \"entries\": [}", &["line 1", "column 33", "byte 32"]),
        (b"{\"magic\": \"NOPE\", \"entries\": []}", &["unknown image magic \"NOPE\""]),
        (b"{\"entries\": []}", &["magic", "missing"]),
        (b"[1, 2]", &["Cannot read JSON"]),
        (b"{\"magic\": \"PSTREE\", \"entries\": [{\"pid\": 1}]}", &["entry 0", "ppid", "required field is missing"]),
        (
            b"{\"magic\": \"PSTREE\", \"entries\": [{\"pid\": \"x\", \"ppid\": 0, \"pgid\": 1, \"sid\": 1}]}",
            &["entry 0", "pid", "expected an integer"],
        ),
        (
            b"{\"magic\": \"PSTREE\", \"entries\": [{\"pid\": 4294967296, \"ppid\": 0, \"pgid\": 1, \"sid\": 1}]}",
            &["pid", "out of range for uint32"],
        ),
        (
            b"{\"magic\": \"PSTREE\", \"entries\": [{\"pid\": 1, \"ppid\": 0, \"pgid\": 1, \"sid\": 1, \"threads\": 5}]}",
            &["threads", "expected an array"],
        ),
        (
            b"{\"magic\": \"PSTREE\", \"entries\": [{\"pid\": 1e99, \"ppid\": 0, \"pgid\": 1, \"sid\": 1}]}",
            &["pid", "expected an integer, found a float"],
        ),
        (
            b"{\"magic\": \"PIPES_DATA\", \"entries\": [{\"pipe_id\": 1, \"bytes\": 3, \"extra\": \"!!!!\"}]}",
            &["entry 0", "extra", "invalid base64"],
        ),
        (
            b"{\"magic\": \"MM\", \"entries\": [{\"mm_start_code\": 0, \"mm_end_code\": 0, \"mm_start_data\": 0, \"mm_end_data\": 0, \"mm_start_stack\": 0, \"mm_start_brk\": 0, \"mm_brk\": 0, \"mm_arg_start\": 0, \"mm_arg_end\": 0, \"mm_env_start\": 0, \"mm_env_end\": 0, \"exe_file_id\": 1, \"vmas\": [{\"start\": \"0x1000\", \"end\": \"0x2000\", \"pgoff\": 0, \"shmid\": 0, \"prot\": \"PROT_READ | PROT_BOGUS\", \"flags\": 0, \"status\": 0, \"fd\": -1}]}]}",
            &["entry 0", "vmas[0].prot", "unknown flag \"PROT_BOGUS\""],
        ),
        (
            b"{\"magic\": \"CORE\", \"entries\": [{\"mtype\": \"Z80\"}]}",
            &["mtype", "\"Z80\" is not a value of march"],
        ),
        (b"{\"magic\": \"PSTREE\", \"entries\": []} trailing", &["extra data"]),
    ];
    let d = tmpdir();
    for (input, needles) in cases {
        fails(
            &["encode", "-o", d.path().join("out.img").to_str().unwrap()],
            Some(input),
            needles,
        );
        assert!(
            !d.path().join("out.img").exists(),
            "failed encode left a file"
        );
    }
}

#[test]
fn failed_conversion_keeps_existing_output() {
    let d = tmpdir();
    let out = d.path().join("keep.img");
    fs::write(&out, b"precious").unwrap();
    fails(
        &["encode", "-o", out.to_str().unwrap()],
        Some(b"{\"magic\": \"PSTREE\", \"entries\": [1]}"),
        &["entry 0"],
    );
    assert_eq!(fs::read(&out).unwrap(), b"precious");
}

#[test]
fn non_utf8_names_round_trip() {
    // a reg_file_entry whose name is not UTF-8: id 1, flags 0, pos 0, fown {0...}, name "a\xffb"
    let reg = [
        0x08u8, 1, 0x10, 0, 0x18, 0, 0x2a, 10, 0x08, 0, 0x10, 0, 0x18, 0, 0x20, 0, 0x28, 0, 0x32,
        3, b'a', 0xff, b'b',
    ];
    let img = image(0x5036_3636, &[&reg]);
    let o = crit(&["decode"], Some(&img));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains(r#""name": "a\udcffb""#), "{text}");
    let o = crit(&["encode"], Some(text.as_bytes()));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(o.stdout, img);
}

#[test]
fn usage_errors_exit_like_python_crit() {
    // no subcommand: usage, exit 1 (argparse's "too few arguments")
    let o = crit(&[], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Usage"), "{}", stderr(&o));
    // a bad flag or choice: argparse's exit 2
    assert_eq!(crit(&["decode", "--bogus"], None).status.code(), Some(2));
    assert_eq!(crit(&["x", ".", "nope"], None).status.code(), Some(2));
    assert_eq!(crit(&["--version"], None).status.code(), Some(0));
}

#[test]
fn each_cause_is_printed_once() {
    // issue 7, defect 7: an error that printed its source and also returned
    // it as its source made `{:#}` print the OS error twice
    let d = tmpdir();
    fs::create_dir(d.path().join("pstree.img")).unwrap();
    let dir = d.path().to_str().unwrap();
    let img = d.path().join("pstree.img");
    let img = img.to_str().unwrap();
    for args in [
        &["decode", "-i", img][..],
        &["info", img][..],
        &["x", dir, "ps"][..],
    ] {
        let o = crit(args, None);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.matches("Is a directory").count(), 1, "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}
