//! Image kinds the fixtures do not cover, built in code: every payload that
//! follows an entry, and the kinds python crit 4.2 cannot read. Each one is
//! decoded (plain and pretty) and encoded back to the same bytes.

use criu_image::json::{self, JsonOptions};
use criu_image::pb;
use criu_image::registry::by_name;
use criu_image::schema::schema;
use criu_image::{ImageReader, ImageWriter};
use prost::Message as _;

use crate::image;

struct Img {
    w: ImageWriter<Vec<u8>>,
}

impl Img {
    fn new(kind: &str) -> Img {
        Img {
            w: ImageWriter::new(Vec::new(), by_name(kind).unwrap()).unwrap(),
        }
    }
    fn msg(mut self, m: &impl prost::Message) -> Img {
        self.w.write_message(m).unwrap();
        self
    }
    fn raw(mut self, b: &[u8]) -> Img {
        self.w.write_raw(b).unwrap();
        self
    }
    fn bytes(self) -> Vec<u8> {
        self.w.finish().unwrap()
    }
}

fn to_json(img: &[u8], pretty: bool) -> String {
    let out = json::decode(
        ImageReader::new(img).unwrap(),
        Vec::new(),
        JsonOptions {
            pretty,
            nopl: false,
        },
    )
    .unwrap();
    String::from_utf8(out).unwrap()
}

/// Decodes plain and pretty, encodes both back, and returns the plain JSON.
fn round_trip(img: &[u8]) -> String {
    let plain = to_json(img, false);
    let pretty = to_json(img, true);
    for j in [&plain, &pretty] {
        let back = json::encode(j.as_bytes(), Vec::new()).unwrap_or_else(|e| panic!("{e}\n{j}"));
        assert_eq!(back, img, "{j}");
    }
    plain
}

fn desc() -> pb::IpcDescEntry {
    pb::IpcDescEntry {
        key: 1,
        uid: 0,
        gid: 0,
        cuid: 0,
        cgid: 0,
        mode: 0o600,
        id: 7,
    }
}

#[test]
fn pipe_fifo_and_socket_queue_data() {
    for kind in ["PIPES_DATA", "FIFO_DATA"] {
        let e = pb::PipeDataEntry {
            pipe_id: 3,
            bytes: 5,
            size: Some(4096),
        };
        let img = Img::new(kind)
            .msg(&e)
            .raw(b"hello")
            .msg(&pb::PipeDataEntry { bytes: 0, ..e })
            .bytes();
        let j = round_trip(&img);
        assert!(j.contains(r#""extra": "aGVsbG8=\n""#), "{j}");
        assert!(j.contains(r#""extra": """#), "{j}");
    }
    let e = pb::SkPacketEntry {
        id_for: 9,
        length: 3,
        ..Default::default()
    };
    let j = round_trip(&Img::new("SK_QUEUES").msg(&e).raw(b"abc").bytes());
    assert!(j.contains(r#""extra": "YWJj\n""#), "{j}");
}

#[test]
fn tcp_stream_queues() {
    let e = pb::TcpStreamEntry {
        inq_len: 2,
        outq_len: 3,
        mss_clamp: 1460,
        opt_mask: 0x1f,
        ..Default::default()
    };
    let img = Img::new("TCP_STREAM").msg(&e).raw(b"inout").bytes();
    let j = round_trip(&img);
    assert!(
        j.contains(r#""extra": {"inq": "aW4=\n", "outq": "b3V0\n"}"#),
        "{j}"
    );
    assert!(to_json(&img, true).contains(r#""opt_mask": "0x1f""#));
}

#[test]
fn ipc_sem_msg_shm() {
    let sem = pb::IpcSemEntry {
        desc: desc(),
        nsems: 3,
    };
    let mut raw: Vec<u8> = [1u16, 2, 65535]
        .iter()
        .flat_map(|v| v.to_ne_bytes())
        .collect();
    raw.extend_from_slice(&[0, 0]); // padded to 8
    let j = round_trip(&Img::new("IPCNS_SEM").msg(&sem).raw(&raw).bytes());
    assert!(j.contains(r#""extra": [1, 2, 65535]"#), "{j}");

    let q = pb::IpcMsgEntry {
        desc: desc(),
        qbytes: 100,
        qnum: 2,
    };
    let m1 = pb::IpcMsg { mtype: 1, msize: 3 };
    let m2 = pb::IpcMsg { mtype: 2, msize: 8 };
    let img = Img::new("IPCNS_MSG")
        .msg(&q)
        .msg(&m1)
        .raw(b"abc\0\0\0\0\0")
        .msg(&m2)
        .raw(b"12345678")
        .bytes();
    let j = round_trip(&img);
    assert!(j.contains(r#""extra": [{"mtype": 1, "msize": 3}, "YWJj\n", {"mtype": 2, "msize": 8}, "MTIzNDU2Nzg=\n"]"#), "{j}");

    let shm = pb::IpcShmEntry {
        desc: desc(),
        size: 5,
        in_pagemaps: None,
        hugetlb_flag: None,
    };
    let j = round_trip(&Img::new("IPCNS_SHM").msg(&shm).raw(b"hello\0\0\0").bytes());
    assert!(j.contains(r#""extra": "aGVsbG8=\n""#), "{j}");
    // CRIU 4.2 keeps shm contents in pagemap-shmem images: no data follows
    // (python crit would read the next entry as data here)
    let in_pm = pb::IpcShmEntry {
        in_pagemaps: Some(true),
        ..shm
    };
    let img = Img::new("IPCNS_SHM").msg(&in_pm).msg(&in_pm).bytes();
    let j = round_trip(&img);
    assert_eq!(j.matches("in_pagemaps").count(), 2, "{j}");
    assert!(!j.contains("extra"), "{j}");
}

#[test]
fn bpfmap_data() {
    let e = pb::BpfmapDataEntry {
        map_id: 1,
        keys_bytes: 4,
        values_bytes: 8,
        count: 1,
    };
    let j = round_trip(&Img::new("BPFMAP_DATA").msg(&e).raw(b"KKKKVVVVVVVV").bytes());
    assert!(j.contains(r#""extra": "S0tLS1ZWVlZWVlZW\n""#), "{j}");
}

#[test]
fn ghost_files_with_and_without_chunks() {
    let g = pb::GhostFileEntry {
        uid: 0,
        gid: 0,
        mode: 0o100644,
        dev: Some((8 << 20) | 1),
        ..Default::default()
    };
    let img = Img::new("GHOST_FILE").msg(&g).raw(b"whole file").bytes();
    let j = round_trip(&img);
    assert!(j.contains(r#""extra": "d2hvbGUgZmlsZQ==\n""#), "{j}");
    assert!(to_json(&img, true).contains(r#""dev": "8:1""#));

    let g = pb::GhostFileEntry {
        chunks: Some(true),
        size: Some(8192),
        ..g
    };
    let img = Img::new("GHOST_FILE")
        .msg(&g)
        .msg(&pb::GhostChunkEntry { len: 2, off: 0 })
        .raw(b"ab")
        .msg(&pb::GhostChunkEntry { len: 3, off: 4096 })
        .raw(b"cde")
        .bytes();
    let j = round_trip(&img);
    assert!(
        j.contains(
            r#"{"len": 2, "off": 0, "extra": "YWI=\n"}, {"len": 3, "off": 4096, "extra": "Y2Rl\n"}"#
        ),
        "{j}"
    );
}

#[test]
fn kinds_python_crit_cannot_read() {
    let j = round_trip(
        &Img::new("SIGNAL")
            .msg(&pb::SiginfoEntry {
                siginfo: vec![10, 0, 0, 0],
            })
            .bytes(),
    );
    assert_eq!(
        j,
        r#"{"magic": "SIGNAL", "entries": [{"siginfo": "CgAAAA==\n"}]}"#
    );

    let fown = pb::FownEntry {
        uid: 0,
        euid: 0,
        signum: 0,
        pid_type: 0,
        pid: 0,
    };
    let j = round_trip(
        &Img::new("PIDFD")
            .msg(&pb::PidfdEntry {
                id: 4,
                ino: 99,
                flags: 0,
                nspid: 42,
                fown,
            })
            .bytes(),
    );
    assert!(j.contains(r#""nspid": 42"#), "{j}");

    let b = pb::BinfmtMiscEntry {
        name: "qemu-arm".into(),
        enabled: true,
        interpreter: "/usr/bin/qemu-arm".into(),
        magic: Some("7f454c46".into()),
        ..Default::default()
    };
    let j = round_trip(&Img::new("BINFMT_MISC").msg(&b).bytes());
    assert!(j.contains(r#""name": "qemu-arm", "enabled": true"#), "{j}");
}

#[test]
fn every_registered_image_kind_has_its_message() {
    for d in criu_image::registry::IMAGES {
        if d.layout == criu_image::registry::Layout::NotAnImage {
            continue;
        }
        assert!(schema().entry(d, 0).is_some(), "{}", d.name);
        assert!(schema().entry(d, 1).is_some(), "{}", d.name);
        // an image with no entries round-trips
        let img = Img::new(d.name).bytes();
        let j = round_trip(&img);
        assert_eq!(j, format!(r#"{{"magic": "{}", "entries": []}}"#, d.name));
    }
}

/// The fast path (wire bytes to JSON) and the message path (decode, then
/// JSON) must agree on protobuf's corner cases.
fn both_paths(img: &[u8]) -> String {
    let mut r = ImageReader::new(img).unwrap();
    let desc = r.desc();
    let mut parts = Vec::new();
    for e in &mut r {
        let mut buf = Vec::new();
        json::entry_to_json(
            &mut buf,
            desc,
            &e.unwrap(),
            JsonOptions {
                pretty: true,
                nopl: false,
            },
            2,
        )
        .unwrap();
        parts.push(buf);
    }
    let fast = to_json(img, true);
    for p in &parts {
        let p = String::from_utf8(p.clone()).unwrap();
        assert!(
            fast.contains(&p),
            "fast path differs:\n{fast}\nslow entry:\n{p}"
        );
    }
    fast
}

#[test]
fn protobuf_corner_cases_match_the_message_path() {
    let core = |payload: &[u8]| image(0x5505_3847, &[payload]);
    // core_entry: mtype = X86_64, then tc given twice (the halves merge)
    let tc1 = [0x08u8, 1, 0x10, 0, 0x18, 0];
    let tc2 = [0x20u8, 0, 0x28, 0xff, 0x01, 0x32, 1, b'x'];
    let mut p = vec![0x08u8, 1, 0x1a, tc1.len() as u8];
    p.extend_from_slice(&tc1);
    p.extend_from_slice(&[0x1a, tc2.len() as u8]);
    p.extend_from_slice(&tc2);
    let j = both_paths(&core(&p));
    assert!(j.contains(r#""blk_sigset": "0xff""#), "{j}");
    assert!(j.contains(r#""task_state": "Alive""#), "{j}");

    // a scalar given twice: the last wins; an unknown field and an unknown
    // group are skipped
    let mut p2 = vec![0x08u8, 2, 0x08, 1];
    p2.extend_from_slice(&[0x1a, tc1.len() as u8 + tc2.len() as u8]);
    p2.extend_from_slice(&tc1);
    p2.extend_from_slice(&tc2);
    p2.extend_from_slice(&[0xf8, 0x07, 42]); // field 127, varint
    p2.extend_from_slice(&[0xfb, 0x07, 0x08, 1, 0xfc, 0x07]); // group 127 { 1: 1 }
    let j = both_paths(&core(&p2));
    assert!(j.contains(r#""mtype": "X86_64""#), "{j}");

    // truncated group and wrong wire type are errors on both paths
    for bad in [
        vec![0x08u8, 1, 0xfb, 0x07],
        vec![0x09u8, 1, 2, 3, 4, 5, 6, 7, 8],
    ] {
        let img = core(&bad);
        assert!(json::decode(
            ImageReader::new(img.as_slice()).unwrap(),
            Vec::new(),
            JsonOptions::default()
        )
        .is_err());
        assert!(ImageReader::new(img.as_slice())
            .unwrap()
            .next()
            .unwrap()
            .is_err());
    }
}

#[test]
fn data_that_disagrees_with_its_entry_is_refused() {
    // found by the fuzz smoke test: these encoded to images that do not
    // read back (the reader takes `length` bytes, then the rest as an entry)
    let cases: &[(&str, &str)] = &[
        (
            r#"{"magic": "SK_QUEUES", "entries": [{"id_for": 9, "length": 1, "extra": "YWJj\n"}]}"#,
            "3 bytes of queue data follow, length says 1",
        ),
        (
            r#"{"magic": "PIPES_DATA", "entries": [{"pipe_id": 1, "bytes": 14}]}"#,
            "0 bytes of pipe data follow, bytes says 14",
        ),
        (
            r#"{"magic": "TCP_STREAM", "entries": [{"inq_len": 1, "inq_seq": 0, "outq_len": 0, "outq_seq": 0, "opt_mask": 0, "snd_wscale": 0, "mss_clamp": 0, "extra": {"inq": "", "outq": ""}}]}"#,
            "0 bytes of queue follow, inq_len says 1",
        ),
        (
            r#"{"magic": "IPCNS_MSG", "entries": [{"desc": {"key": 0, "uid": 0, "gid": 0, "cuid": 0, "cgid": 0, "mode": 0, "id": 0}, "qbytes": 0, "qnum": 2, "extra": []}]}"#,
            "0 queued messages follow, qnum says 2",
        ),
        (
            r#"{"magic": "IPCNS_SHM", "entries": [{"desc": {"key": 0, "uid": 0, "gid": 0, "cuid": 0, "cgid": 0, "mode": 0, "id": 0}, "size": 4, "in_pagemaps": true, "extra": "AAAA"}]}"#,
            "no data follows this entry (the segment is in_pagemaps)",
        ),
    ];
    for (text, want) in cases {
        let e = json::encode(text.as_bytes(), Vec::new())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("entry 0 at byte 8: ") && e.contains(want),
            "{e}"
        );
    }
}

#[test]
fn typed_reads() {
    let task = pb::PstreeEntry {
        pid: 7,
        ppid: 1,
        pgid: 7,
        sid: 1,
        threads: vec![7, 8],
    };
    let img = Img::new("PSTREE").msg(&task).msg(&task).bytes();
    let mut r = ImageReader::new(img.as_slice()).unwrap();
    let all: Vec<_> = r
        .entries_as::<pb::PstreeEntry>()
        .map(Result::unwrap)
        .collect();
    assert_eq!(all.len(), 2);
    assert_eq!(
        (all[1].index, all[1].offset),
        (1, 8 + 4 + task.encoded_len() as u64)
    );
    assert_eq!(all[1].message, task);

    // the wrong type, with where
    let mut r = ImageReader::new(img.as_slice()).unwrap();
    let e = r.next_as::<pb::CoreEntry>().unwrap().unwrap_err();
    assert_eq!(
        e.to_string(),
        "entry 0 at byte 8 is a pstree_entry, not a core_entry"
    );
    assert!(
        r.next_as::<pb::PstreeEntry>().is_none(),
        "reading stops at an error"
    );

    // a missing required field (sid), nested ones by path, as the other paths
    let img = image(0x5027_3030, &[&[0x08, 1, 0x10, 0, 0x18, 1]]);
    let e = ImageReader::new(img.as_slice())
        .unwrap()
        .next_as::<pb::PstreeEntry>()
        .unwrap()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "entry 0 at byte 8: cannot decode pstree_entry: required field sid is missing"
    );
    let mm = pb::MmEntry {
        vmas: vec![pb::VmaEntry::default()],
        ..Default::default()
    };
    let mut bytes = mm.encode_to_vec();
    // drop the vma's last field (fd, field 8)
    let vma = pb::VmaEntry::default().encode_to_vec();
    assert_eq!(&vma[vma.len() - 2..], [0x40, 0]);
    let at = bytes.len() - 2;
    bytes.truncate(at);
    let len_at = bytes.len() - vma.len() + 1;
    bytes[len_at] -= 2;
    let img = image(0x5749_2820, &[&bytes]);
    for e in [
        ImageReader::new(img.as_slice())
            .unwrap()
            .next_as::<pb::MmEntry>()
            .unwrap()
            .unwrap_err(),
        ImageReader::new(img.as_slice())
            .unwrap()
            .next()
            .unwrap()
            .unwrap_err(),
    ] {
        assert!(
            e.to_string()
                .ends_with("required field vmas[0].fd is missing"),
            "{e}"
        );
    }
}
