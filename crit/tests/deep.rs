//! Input as deep as it can be (issue 7, defect 5): a process tree that is
//! one long chain, protobuf messages nested as deep as protobuf allows and
//! deeper, JSON nested 100,000 levels. Nothing recurses on the depth of its
//! input: what is within the limits works (and prints what python crit
//! prints), what is beyond them is a clear error, never a stack overflow.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use criu_image::{pb, registry, ImageWriter};

use crate::crafted::Pb;

fn crit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_crit"))
}

fn write_image<M: prost::Message>(path: &Path, desc: &'static registry::ImageDesc, msgs: &[M]) {
    let mut w = ImageWriter::new(Vec::new(), desc).unwrap();
    for m in msgs {
        w.write_message(m).unwrap();
    }
    fs::write(path, w.finish().unwrap()).unwrap();
}

const CHAIN: u32 = 64_000;

fn comm(pid: u32) -> String {
    format!("task-{pid}")
}

/// A dump whose process tree is a chain: task 1 is the parent of 2, 2 of
/// 3, and so on to `CHAIN`.
fn chain_dump(dir: &Path) {
    let tree: Vec<pb::PstreeEntry> = (1..=CHAIN)
        .map(|pid| pb::PstreeEntry {
            pid,
            ppid: pid - 1,
            pgid: 1,
            sid: 1,
            threads: vec![pid],
        })
        .collect();
    write_image(&dir.join("pstree.img"), &registry::PSTREE, &tree);
    for pid in 1..=CHAIN {
        let core = pb::CoreEntry {
            mtype: pb::core_entry::March::X8664 as i32,
            tc: Some(pb::TaskCoreEntry {
                comm: comm(pid).into_bytes(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let name = registry::CORE.file_name(u64::from(pid)).unwrap();
        write_image(&dir.join(name), &registry::CORE, &[core]);
    }
}

/// Reads exactly `want` from `r`, in pieces, without keeping it.
fn expect(r: &mut impl BufRead, mut want: &[u8], line: u32) {
    while !want.is_empty() {
        let buf = r.fill_buf().unwrap();
        assert!(!buf.is_empty(), "output ends in line {line}");
        let n = buf.len().min(want.len());
        assert!(buf[..n] == want[..n], "line {line} differs");
        r.consume(n);
        want = &want[n..];
    }
}

#[test]
fn x_ps_on_a_64000_deep_process_tree() {
    let d = tempfile::tempdir().unwrap();
    chain_dump(d.path());
    let mut child = crit()
        .args(["x", d.path().to_str().unwrap(), "ps"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // python crit's show_ps: "%7d%7d%7d   %s%s" % (pid, pgid, sid,
    // ' ' * (4 * depth), comm), one line a task, children under parents
    let mut out = BufReader::with_capacity(1 << 20, child.stdout.take().unwrap());
    expect(
        &mut out,
        format!("{:>7}{:>7}{:>7}   COMM\n", "PID", "PGID", "SID").as_bytes(),
        0,
    );
    let spaces = vec![b' '; 4 * CHAIN as usize];
    for pid in 1..=CHAIN {
        let depth = (pid - 1) as usize;
        expect(
            &mut out,
            format!("{pid:>7}{:>7}{:>7}   ", 1, 1).as_bytes(),
            pid,
        );
        expect(&mut out, &spaces[..4 * depth], pid);
        expect(&mut out, format!("{}\n", comm(pid)).as_bytes(), pid);
    }
    let mut rest = Vec::new();
    out.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{} bytes after the last task", rest.len());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(err, "");
}

/// A cgroup image whose one controller holds a directory `dirs` levels
/// deep (each the only child of the one above), the deepest named `last`.
/// Built outside in, so that it takes time linear in `dirs`.
fn cgroup(dirs: usize, last: &[u8]) -> Vec<u8> {
    let deepest = Pb::default().bytes(1, last).0;
    // sizes[k]: the encoded size of directory k (0 is the top)
    let mut sizes = vec![deepest.len(); dirs];
    for k in (0..dirs - 1).rev() {
        let mut head = Pb::default().bytes(1, b"d").0;
        head.push(0x12);
        crate::crafted::varint(sizes[k + 1] as u64, &mut head);
        sizes[k] = head.len() + sizes[k + 1];
    }
    let mut dir = Vec::with_capacity(sizes[0]);
    for size in &sizes[1..] {
        dir.extend_from_slice(&Pb::default().bytes(1, b"d").0);
        dir.push(0x12);
        crate::crafted::varint(*size as u64, &mut dir);
    }
    dir.extend_from_slice(&deepest);
    let controller = Pb::default().bytes(2, &dir);
    let entry = Pb::default().msg(2, &controller);
    crate::cli::image(0x5938_3330, &[&entry.0])
}

/// Protobuf's decoders (prost, python's) refuse messages nested deeper
/// than 100 levels; so does crit, on every path. An entry of cgroup_entry
/// with `dirs` directories nests `dirs + 1` levels under the entry.
const MAX_DIRS: usize = 99;

#[test]
fn messages_nested_deeper_than_protobuf_allows_are_an_error() {
    let d = tempfile::tempdir().unwrap();
    for dirs in [MAX_DIRS + 1, 100_000] {
        let img = d.path().join(format!("cgroup-{dirs}.img"));
        fs::write(&img, cgroup(dirs, b"d")).unwrap();
        for args in [&["decode", "-i"][..], &["decode", "--pretty", "-i"][..]] {
            let o = crit().args(args).arg(&img).output().unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{dirs}: {err}");
            assert!(
                err.contains("entry 0") && err.contains("nested deeper than 100"),
                "{err}"
            );
        }
    }
}

#[test]
fn messages_nested_as_deep_as_protobuf_allows_round_trip_and_diff() {
    let d = tempfile::tempdir().unwrap();
    let img = cgroup(MAX_DIRS, b"d");
    for args in [&["decode"][..], &["decode", "--pretty"][..]] {
        let o = crate::cli::crit(args, Some(&img));
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let json = d.path().join("cgroup.json");
        fs::write(&json, &o.stdout).unwrap();
        let back = d.path().join("back.img");
        let _ = fs::remove_file(&back);
        let o = crit()
            .args(["encode", "-i"])
            .arg(&json)
            .arg("-o")
            .arg(&back)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            fs::read(&back).unwrap() == img,
            "{args:?}: not the same bytes"
        );
    }

    // diff walks both trees to the bottom
    for (side, last) in [("a", &b"d"[..]), ("b", b"e")] {
        fs::create_dir(d.path().join(side)).unwrap();
        fs::write(
            d.path().join(side).join("cgroup.img"),
            cgroup(MAX_DIRS, last),
        )
        .unwrap();
    }
    let o = crit()
        .arg("diff")
        .arg(d.path().join("a"))
        .arg(d.path().join("b"))
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(1), "{err}");
    let parent = format!(
        "cgroup.img controllers[cnames=-].dirs[dir_name=d]{}",
        ".children[dir_name=d]".repeat(MAX_DIRS - 2)
    );
    assert_eq!(
        out,
        format!(
            "{parent}.children[dir_name=d]: removed {{\"dir_name\": \"d\"}}\n\
             {parent}.children[dir_name=e]: added {{\"dir_name\": \"e\"}}\n"
        )
    );
}

#[test]
fn json_nested_100000_levels_is_an_error() {
    let nest = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let in_entry = format!("{{\"pid\": 1, \"ppid\": 0, \"pgid\": 1, \"sid\": 1, \"x\": {nest}}}");
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out.img");
    for entry in [&nest, &in_entry] {
        let text = format!("{{\"magic\": \"PSTREE\", \"entries\": [{entry}]}}");
        let o = crate::cli::crit(
            &["encode", "-o", out.to_str().unwrap()],
            Some(text.as_bytes()),
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains("nesting too deep") && err.contains("byte"),
            "{err}"
        );
        assert!(!out.exists(), "a failed encode left its output");
    }
}
