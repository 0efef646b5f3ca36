//! Crafted images whose length fields lie (issue 7, defect 4): a length
//! read from the file never overflows, never panics, and is read as
//! protobuf reads the field (a `uint32` keeps the low 32 bits of its
//! varint, as python crit's decoder does), so the data that follows is the
//! data the JSON says.

use std::process::Output;

use crate::cli::{crit, image};

/// A protobuf message built field by field.
#[derive(Default, Clone)]
pub(crate) struct Pb(pub(crate) Vec<u8>);

pub(crate) fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

impl Pb {
    pub(crate) fn int(mut self, field: u32, v: u64) -> Pb {
        varint(u64::from(field) << 3, &mut self.0);
        varint(v, &mut self.0);
        self
    }
    pub(crate) fn bytes(mut self, field: u32, b: &[u8]) -> Pb {
        varint((u64::from(field) << 3) | 2, &mut self.0);
        varint(b.len() as u64, &mut self.0);
        self.0.extend_from_slice(b);
        self
    }
    pub(crate) fn msg(self, field: u32, m: &Pb) -> Pb {
        self.bytes(field, &m.0)
    }
}

const IPCNS_SHM: u32 = 0x4628_3044;
const IPCNS_SEM: u32 = 0x5957_3019;
const IPCNS_MSG: u32 = 0x5545_3737;
const BPFMAP_DATA: u32 = 0x6432_4033;
const PIPES_DATA: u32 = 0x5645_3709;

fn desc() -> Pb {
    (1..=7).fold(Pb::default(), |m, f| m.int(f, if f == 7 { 7 } else { 0 }))
}

/// `crit decode` of an image: its entries, then raw bytes after them.
fn decode(magic: u32, entries: &[&[u8]], after: &[u8]) -> Output {
    let mut img = image(magic, entries);
    img.extend_from_slice(after);
    crit(&["decode"], Some(&img))
}

fn ok(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn fails(o: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} not in {err:?}");
    }
}

#[test]
fn shm_size_that_overflows_when_padded() {
    // size near u64::MAX: padding it to 4 bytes used to overflow (a panic
    // in debug builds, `"extra": ""` in release builds)
    for size in [u64::MAX, u64::MAX - 1, u64::MAX - 2] {
        let shm = Pb::default().msg(1, &desc()).int(2, size);
        fails(
            &decode(IPCNS_SHM, &[&shm.0], b"data"),
            &["entry 0", &size.to_string()],
        );
    }
    // a size that pads without overflow but is past the end: truncated
    let shm = Pb::default().msg(1, &desc()).int(2, u64::MAX - 3);
    fails(
        &decode(IPCNS_SHM, &[&shm.0], b"data"),
        &["shm segment data", "found 4 of 18446744073709551612"],
    );
}

#[test]
fn uint32_lengths_keep_their_low_32_bits() {
    // pipe data: bytes = 2^32 + 5 is 5 for protobuf (and python crit)
    let pd = Pb::default().int(1, 3).int(2, (1 << 32) + 5);
    let j = ok(&decode(PIPES_DATA, &[&pd.0], b"hello"));
    assert!(j.contains(r#""bytes": 5, "extra": "aGVsbG8=\n""#), "{j}");

    // bpf map data: two lengths whose 64-bit sum overflows
    let bd = Pb::default()
        .int(1, 1)
        .int(2, (1 << 63) + 2)
        .int(3, (1 << 63) + (1 << 32) + 1)
        .int(4, 1);
    let j = ok(&decode(BPFMAP_DATA, &[&bd.0], b"abc"));
    assert!(
        j.contains(r#""keys_bytes": 2, "values_bytes": 1, "count": 1, "extra": "YWJj\n""#),
        "{j}"
    );

    // semaphores: 2 * nsems used to overflow
    let sem = Pb::default().msg(1, &desc()).int(2, (1 << 63) + 1);
    let j = ok(&decode(IPCNS_SEM, &[&sem.0], &[7, 0, 0, 0, 0, 0, 0, 0]));
    assert!(j.contains(r#""nsems": 1, "extra": [7]"#), "{j}");

    // message queues: qnum and msize as uint32
    let q = Pb::default()
        .msg(1, &desc())
        .int(2, 0)
        .int(3, (1 << 32) + 1);
    let m = Pb::default().int(1, 1).int(2, (0xffff_ffff << 32) | 3);
    let mut after = (m.0.len() as u32).to_ne_bytes().to_vec();
    after.extend_from_slice(&m.0);
    after.extend_from_slice(b"xyz\0\0\0\0\0");
    let j = ok(&decode(IPCNS_MSG, &[&q.0], &after));
    assert!(
        j.contains(r#""qnum": 1, "extra": [{"mtype": 1, "msize": 3}, "eHl6\n"]"#),
        "{j}"
    );
}
