//! What the image-library fuzz targets check, in one place: the targets
//! (`fuzz_targets/decode_any.rs`, `json_roundtrip.rs`) call these, and so
//! does the stable-toolchain smoke test that `cargo test` runs
//! (`criu-image/tests/fuzz.rs` includes this file), so the test walks the
//! targets' exact code paths. A check panics when something is wrong: bad
//! input must give an error, never a panic (an overflow panics in builds
//! with debug assertions, as cargo fuzz and the tests build); and what the
//! library accepts must convert consistently.

use criu_image::json::{self, JsonOptions};
use criu_image::{pb, registry, ImageReader};

/// Any bytes as an image: the JSON conversion (fast path), the message
/// path (what `crit x`, `crit diff` and `crit show` use) and the typed
/// reads must agree on whether it is valid and on what it says; what
/// decodes encodes back to JSON that decodes to the same text.
pub fn decode_any(data: &[u8]) {
    for pretty in [false, true] {
        let opts = JsonOptions {
            pretty,
            nopl: false,
        };
        let Ok(r) = ImageReader::new(data) else {
            return;
        };
        let Ok(text) = json::decode(r, Vec::new(), opts) else {
            continue;
        };
        let img = json::encode(text.as_slice(), Vec::new()).expect("decoded JSON encodes");
        let r = ImageReader::new(img.as_slice()).expect("an encoded image has its magic");
        let again = json::decode(r, Vec::new(), opts).expect("an encoded image decodes");
        assert_eq!(text, again, "decode, encode, decode changed the JSON");
    }
    let fast = ImageReader::new(data)
        .and_then(|r| json::decode(r, Vec::new(), JsonOptions::default()))
        .ok();
    let slow = message_path(data);
    match (&fast, &slow) {
        (Some(f), Some(s)) => assert!(f == s, "the two JSON paths differ"),
        (None, None) => {}
        _ => panic!(
            "the JSON path {} the image, the message path {} it",
            if fast.is_some() { "accepts" } else { "refuses" },
            if slow.is_some() { "accepts" } else { "refuses" },
        ),
    }
    typed_reads(data, slow.is_some());
}

/// The image as JSON through decoded messages ([`criu_image::Entry`], then
/// `entry_to_json`), or `None` if an entry is refused.
fn message_path(data: &[u8]) -> Option<Vec<u8>> {
    let r = ImageReader::new(data).ok()?;
    let desc = r.desc();
    let mut text = format!("{{\"magic\": \"{}\", \"entries\": [", desc.name).into_bytes();
    for (i, e) in r.enumerate() {
        let e = e.ok()?;
        if i > 0 {
            text.extend_from_slice(b", ");
        }
        json::entry_to_json(&mut text, desc, &e, JsonOptions::default(), 0).ok()?;
        // and as a value, as diff reads it
        json::entry_to_value(
            desc,
            &e,
            JsonOptions {
                pretty: true,
                nopl: true,
            },
        )
        .expect("an entry that decodes is shown");
    }
    text.extend_from_slice(b"]}");
    Some(text)
}

/// Typed reads of the kinds `crit x` and `crit diff` read typed: valid
/// exactly when the message path finds the image valid.
fn typed_reads(data: &[u8], valid: bool) {
    let Ok(mut r) = ImageReader::new(data) else {
        return;
    };
    let desc = r.desc();
    let ok = if *desc == registry::PAGEMAP {
        match r.next_as::<pb::PagemapHead>() {
            None => true,
            Some(head) => head.is_ok() && all::<pb::PagemapEntry>(&mut r),
        }
    } else if *desc == registry::PSTREE {
        all::<pb::PstreeEntry>(&mut r)
    } else if *desc == registry::CORE {
        all::<pb::CoreEntry>(&mut r)
    } else if *desc == registry::MM {
        all::<pb::MmEntry>(&mut r)
    } else if *desc == registry::FILES {
        all::<pb::FileEntry>(&mut r)
    } else if *desc == registry::FDINFO {
        all::<pb::FdinfoEntry>(&mut r)
    } else if *desc == registry::IPCNS_MSG {
        all::<pb::IpcMsgEntry>(&mut r)
    } else {
        return;
    };
    assert_eq!(ok, valid, "typed and dynamic reads disagree");
}

fn all<M: prost::Message + prost::Name + Default>(r: &mut ImageReader<&[u8]>) -> bool {
    r.entries_as::<M>().all(|e| e.is_ok())
}

/// Any text as JSON: what encodes decodes, and encodes again to the same
/// bytes.
pub fn json_roundtrip(data: &[u8]) {
    let Ok(img) = json::encode(data, Vec::new()) else {
        return;
    };
    let r = ImageReader::new(img.as_slice()).expect("an encoded image has its magic");
    let text =
        json::decode(r, Vec::new(), JsonOptions::default()).expect("an encoded image decodes");
    let again = json::encode(text.as_slice(), Vec::new()).expect("decoded JSON encodes");
    assert_eq!(img, again, "encode, decode, encode changed the image");
}

/// Images no fixture has, built here: one of every kind with data after
/// its entries (which is where lengths are read from the file), and the
/// kinds `crit x` reads typed. The fuzz runs start from these and the
/// fixtures; the smoke test mutates them.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    use criu_image::ImageWriter;
    use prost::Message;

    /// A step of writing an image.
    type Part<'a> = &'a dyn Fn(&mut ImageWriter<Vec<u8>>);
    fn img(desc: &'static registry::ImageDesc, parts: &[Part<'_>]) -> Vec<u8> {
        let mut w = ImageWriter::new(Vec::new(), desc).expect("writing to memory");
        for p in parts {
            p(&mut w);
        }
        w.finish().expect("writing to memory")
    }
    fn msg<M: Message>(m: M) -> impl Fn(&mut ImageWriter<Vec<u8>>) {
        move |w| w.write_message(&m).expect("writing to memory")
    }
    fn raw(b: &'static [u8]) -> impl Fn(&mut ImageWriter<Vec<u8>>) {
        move |w| w.write_raw(b).expect("writing to memory")
    }
    let desc = || pb::IpcDescEntry {
        key: 1,
        uid: 0,
        gid: 0,
        cuid: 0,
        cgid: 0,
        mode: 0o600,
        id: 7,
    };
    let pipe = pb::PipeDataEntry {
        pipe_id: 3,
        bytes: 5,
        size: Some(4096),
    };
    vec![
        (
            "pipes-data",
            img(&registry::PIPES_DATA, &[&msg(pipe), &raw(b"hello")]),
        ),
        (
            "sk-queues",
            img(
                &registry::SK_QUEUES,
                &[
                    &msg(pb::SkPacketEntry {
                        id_for: 9,
                        length: 3,
                        ..Default::default()
                    }),
                    &raw(b"abc"),
                ],
            ),
        ),
        (
            "tcp-stream",
            img(
                &registry::TCP_STREAM,
                &[
                    &msg(pb::TcpStreamEntry {
                        inq_len: 2,
                        outq_len: 3,
                        ..Default::default()
                    }),
                    &raw(b"inout"),
                ],
            ),
        ),
        (
            "bpfmap-data",
            img(
                &registry::BPFMAP_DATA,
                &[
                    &msg(pb::BpfmapDataEntry {
                        map_id: 1,
                        keys_bytes: 4,
                        values_bytes: 8,
                        count: 1,
                    }),
                    &raw(b"KKKKVVVVVVVV"),
                ],
            ),
        ),
        (
            "ipcns-sem",
            img(
                &registry::IPCNS_SEM,
                &[
                    &msg(pb::IpcSemEntry {
                        desc: desc(),
                        nsems: 3,
                    }),
                    &raw(&[1, 0, 2, 0, 255, 255, 0, 0]),
                ],
            ),
        ),
        (
            "ipcns-msg",
            img(
                &registry::IPCNS_MSG,
                &[
                    &msg(pb::IpcMsgEntry {
                        desc: desc(),
                        qbytes: 100,
                        qnum: 2,
                    }),
                    &msg(pb::IpcMsg { mtype: 1, msize: 3 }),
                    &raw(b"abc\0\0\0\0\0"),
                    &msg(pb::IpcMsg { mtype: 2, msize: 8 }),
                    &raw(b"12345678"),
                ],
            ),
        ),
        (
            "ipcns-shm",
            img(
                &registry::IPCNS_SHM,
                &[
                    &msg(pb::IpcShmEntry {
                        desc: desc(),
                        size: 5,
                        in_pagemaps: None,
                        hugetlb_flag: None,
                    }),
                    &raw(b"hello\0\0\0"),
                ],
            ),
        ),
        (
            "ghost-file",
            img(
                &registry::GHOST_FILE,
                &[
                    &msg(pb::GhostFileEntry {
                        mode: 0o100644,
                        ..Default::default()
                    }),
                    &raw(b"whole file"),
                ],
            ),
        ),
        (
            "ghost-file-chunks",
            img(
                &registry::GHOST_FILE,
                &[
                    &msg(pb::GhostFileEntry {
                        mode: 0o100644,
                        chunks: Some(true),
                        size: Some(8192),
                        ..Default::default()
                    }),
                    &msg(pb::GhostChunkEntry { len: 2, off: 0 }),
                    &raw(b"ab"),
                    &msg(pb::GhostChunkEntry { len: 3, off: 4096 }),
                    &raw(b"cde"),
                ],
            ),
        ),
        (
            "pagemap",
            img(
                &registry::PAGEMAP,
                &[
                    &msg(pb::PagemapHead { pages_id: 1 }),
                    &msg(pb::PagemapEntry {
                        vaddr: 0x1000,
                        nr_pages: Some(2),
                        flags: Some(criu_image::flags::PE_PRESENT),
                        ..Default::default()
                    }),
                ],
            ),
        ),
        (
            "cgroup",
            img(
                &registry::CGROUP,
                &[&msg(pb::CgroupEntry {
                    controllers: vec![pb::CgControllerEntry {
                        cnames: vec![b"cpu".to_vec()],
                        dirs: vec![pb::CgroupDirEntry {
                            dir_name: b"a".to_vec(),
                            children: vec![pb::CgroupDirEntry {
                                dir_name: b"b".to_vec(),
                                ..Default::default()
                            }],
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                })],
            ),
        ),
    ]
}
