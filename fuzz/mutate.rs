//! Deterministic mutations for the smoke tests that run the fuzz checks on
//! the stable toolchain (`criu-image/tests/fuzz.rs`, `crit/tests/fuzz.rs`
//! include this file): bit flips, interesting bytes, truncations, edits of
//! the entry size fields and of protobuf varints, inserted JSON tokens,
//! splices from other inputs. A fixed seed: every run tries the same
//! inputs, and a failure names the one that failed.

/// splitmix64.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Offsets of the entry size fields of an image (after its one or two
/// magics), as far as they lead.
fn size_fields(img: &[u8]) -> Vec<usize> {
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(img.get(at..at + 4)?.try_into().ok()?))
    };
    let mut at = match u32_at(0) {
        Some(0x5456_4319 | 0x5510_5940) => 8,
        _ => 4,
    };
    let mut out = Vec::new();
    while let Some(size) = u32_at(at) {
        out.push(at);
        at = at.saturating_add(4).saturating_add(size as usize);
    }
    out
}

const BYTES: &[u8] = &[0, 1, 0x7f, 0x80, 0xff, b'"', b'[', b'{', b'0', b'9', b'-'];
const SIZES: &[u32] = &[
    0,
    1,
    2,
    3,
    4,
    8,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 30,
];
const VARINTS: &[&[u8]] = &[
    &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    &[0x80, 0x80, 0x80, 0x80, 0x10],
    &[0xff, 0xff, 0xff, 0xff, 0x0f],
    &[0x00],
    &[0x80],
];
const TOKENS: &[&[u8]] = &[
    b"18446744073709551616",
    b"-1",
    b"4294967296",
    b"\"0xffffffffffffffff\"",
    b"null",
    b"[[[[",
    b"\"\\udcff\"",
    b"\"extra\": \"AAAA\"",
    b", ",
];

/// Values a length or count read from a file is tried with.
const VALUES: &[u64] = &[
    0,
    1,
    0xffff_ffff,
    1 << 32,
    (1 << 32) + 1,
    i64::MAX as u64,
    1 << 63,
    u64::MAX - 3,
    u64::MAX - 1,
    u64::MAX,
];

fn varint(mut v: u64, out: &mut Vec<u8>) {
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

/// The (start, end) of each top-level varint value in a protobuf message.
fn varint_values(msg: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    let read = |pos: &mut usize| -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *msg.get(*pos)?;
            *pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    };
    while pos < msg.len() {
        let Some(key) = read(&mut pos) else { break };
        let start = pos;
        match key & 7 {
            0 => {
                if read(&mut pos).is_none() {
                    break;
                }
                out.push((start, pos));
            }
            1 => pos += 8,
            5 => pos += 4,
            2 => match read(&mut pos) {
                Some(len) => pos = pos.saturating_add(len as usize),
                None => break,
            },
            _ => break,
        }
    }
    out
}

/// Sets an integer field of one entry to a value from [`VALUES`], fixing
/// the entry's size: how a crafted length or count reaches the code that
/// reads the data after an entry.
fn edit_field(rng: &mut Rng, v: &mut Vec<u8>) {
    let fields = size_fields(v);
    if fields.is_empty() {
        return;
    }
    let f = *rng.pick(&fields);
    let size = u32::from_ne_bytes([v[f], v[f + 1], v[f + 2], v[f + 3]]) as usize;
    let Some(payload) = v.get(f + 4..f + 4 + size) else {
        return;
    };
    let values = varint_values(payload);
    if values.is_empty() {
        return;
    }
    let (start, end) = *rng.pick(&values);
    let mut new = Vec::new();
    varint(*rng.pick(VALUES), &mut new);
    let (start, end) = (f + 4 + start, f + 4 + end);
    let new_size = size - (end - start) + new.len();
    v.splice(start..end, new);
    v[f..f + 4].copy_from_slice(&(new_size as u32).to_ne_bytes());
}

/// One mutant of `input`; `others` are spliced from.
pub fn mutate(rng: &mut Rng, input: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = if v.is_empty() { 0 } else { rng.below(v.len()) };
        match rng.below(10) {
            7 | 8 => edit_field(rng, &mut v),
            0 if !v.is_empty() => v[at] ^= 1 << rng.below(8),
            1 if !v.is_empty() => v[at] = *rng.pick(BYTES),
            2 => v.truncate(at),
            3 => {
                let fields = size_fields(&v);
                if !fields.is_empty() {
                    let f = *rng.pick(&fields);
                    let old = u32::from_ne_bytes([v[f], v[f + 1], v[f + 2], v[f + 3]]);
                    let new = match rng.below(3) {
                        0 => *rng.pick(SIZES),
                        1 => old.wrapping_add(1),
                        _ => old.wrapping_sub(1),
                    };
                    v[f..f + 4].copy_from_slice(&new.to_ne_bytes());
                }
            }
            4 => {
                let len = rng.below(3).min(v.len() - at);
                v.splice(at..at + len, rng.pick(VARINTS).iter().copied());
            }
            5 => {
                v.splice(at..at, rng.pick(TOKENS).iter().copied());
            }
            6 if !others.is_empty() => {
                let other = rng.pick(others);
                if !other.is_empty() {
                    let from = rng.below(other.len());
                    let len = rng.below(64).min(other.len() - from);
                    v.splice(at..at, other[from..from + len].iter().copied());
                }
            }
            _ => {
                let len = rng.below(16).min(v.len() - at);
                v.drain(at..at + len);
            }
        }
    }
    v
}

/// The fuzz targets' mutator: half of the mutations are libFuzzer's, half
/// [`mutate`]'s (which knows where entry sizes and integer fields are).
/// Expanded only by the targets (`#[macro_use] mod mutate;`).
#[allow(unused_macros)]
macro_rules! half_structured_mutator {
    () => {
        libfuzzer_sys::fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
            if seed % 2 == 0 {
                return libfuzzer_sys::fuzzer_mutate(data, size, max_size);
            }
            let mut rng = mutate::Rng(u64::from(seed));
            let m = mutate::mutate(&mut rng, &data[..size], &[]);
            let n = m.len().min(max_size);
            data[..n].copy_from_slice(&m[..n]);
            n
        });
    };
}
