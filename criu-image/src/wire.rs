//! Protobuf's wire format, walked without building a message: the fields
//! of one message as (number, raw value) pairs, the integer fields that
//! give the length of the data after an entry, and the required-field
//! check. The JSON conversion ([`crate::json`]) and the image reader
//! ([`crate::framing`]) both walk messages through here.
//!
//! Bounds: every length is checked against the buffer it points into before
//! it is used (no allocation is sized by one); groups, which no CRIU field
//! is, are skipped with a stack of at most [`MAX_GROUPS`] open groups;
//! walks into nested messages stop at [`MAX_NESTING`] levels, as protobuf's
//! own decoders do.

use prost_reflect::Kind;

use crate::schema::{schema, MessageInfo};

/// How deep messages may nest inside an entry: protobuf's decoders (prost,
/// and the C++ and upb ones under python crit) stop at 100 levels, and so
/// does every walk here, which recurses once per level.
pub(crate) const MAX_NESTING: usize = 100;

/// Groups nested deeper than this are refused.
const MAX_GROUPS: usize = 64;

/// Why bytes are not a message of the type they should be.
#[derive(Debug)]
pub(crate) enum WireError {
    /// The bytes are not a valid message of the type.
    Invalid(String),
}

pub(crate) fn invalid(s: impl Into<String>) -> WireError {
    WireError::Invalid(s.into())
}

/// One field's value as it is on the wire.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Raw<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Len(&'a [u8]),
    Group,
}

/// Reads a field key (a varint of at most 32 bits, as protobuf's decoders
/// require) at `*pos`.
fn key(buf: &[u8], pos: &mut usize, what: impl Fn() -> String) -> Result<u32, WireError> {
    let key = varint(buf, pos).ok_or_else(|| invalid(what()))?;
    u32::try_from(key).map_err(|_| invalid(format!("invalid key value {key}")))
}

/// Reads a varint at `*pos`.
pub(crate) fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..70).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        if shift == 63 && b > 1 {
            return None;
        }
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The fields of one message: most CRIU messages have a handful, so they
/// stay on the stack.
pub(crate) struct FieldList<'a> {
    inline: [(u32, Raw<'a>); INLINE],
    len: usize,
    heap: Vec<(u32, Raw<'a>)>,
}

const INLINE: usize = 10;

impl<'a> FieldList<'a> {
    /// The fields of `buf`, in wire order.
    pub(crate) fn parse(buf: &'a [u8]) -> Result<Self, WireError> {
        let mut list = FieldList {
            inline: [(0, Raw::Varint(0)); INLINE],
            len: 0,
            heap: Vec::new(),
        };
        let mut pos = 0;
        while pos < buf.len() {
            let key = key(buf, &mut pos, || "bad field key".to_owned())?;
            let number = key >> 3;
            if number == 0 {
                return Err(invalid("field number 0"));
            }
            let raw = match key & 7 {
                0 => Raw::Varint(varint(buf, &mut pos).ok_or_else(|| invalid("bad varint"))?),
                1 => Raw::Fixed64(u64::from_le_bytes(take(buf, &mut pos)?)),
                5 => Raw::Fixed32(u32::from_le_bytes(take(buf, &mut pos)?)),
                2 => Raw::Len(
                    take_len(buf, &mut pos)
                        .map_err(|WireError::Invalid(e)| invalid(format!("field {number}: {e}")))?,
                ),
                // groups: no CRIU field is one; skipped like any unknown field
                3 => {
                    skip_group(buf, &mut pos, number)?;
                    Raw::Group
                }
                _ => {
                    return Err(invalid(format!(
                        "field {number}: bad wire type {}",
                        key & 7
                    )))
                }
            };
            list.push((number, raw));
        }
        Ok(list)
    }

    fn push(&mut self, f: (u32, Raw<'a>)) {
        if self.len < INLINE {
            self.inline[self.len] = f;
            self.len += 1;
        } else {
            if self.heap.is_empty() {
                self.heap.extend_from_slice(&self.inline);
            }
            self.heap.push(f);
        }
    }

    /// The fields by number; occurrences of one field stay in wire order
    /// (the sort is stable), as protobuf's "last one wins" and list order
    /// want.
    pub(crate) fn sorted(&mut self) -> &[(u32, Raw<'a>)] {
        let fs = if self.heap.is_empty() {
            &mut self.inline[..self.len]
        } else {
            &mut self.heap[..]
        };
        if !fs.windows(2).all(|w| w[0].0 <= w[1].0) {
            fs.sort_by_key(|(n, _)| *n);
        }
        fs
    }
}

/// The occurrences of field `number` in a sorted field list.
pub(crate) fn occurrences<'s, 'a>(fs: &'s [(u32, Raw<'a>)], number: u32) -> &'s [(u32, Raw<'a>)] {
    let start = fs.partition_point(|(n, _)| *n < number);
    let len = fs[start..].partition_point(|(n, _)| *n == number);
    &fs[start..start + len]
}

/// Takes `N` bytes at `*pos`.
pub(crate) fn take<const N: usize>(buf: &[u8], pos: &mut usize) -> Result<[u8; N], WireError> {
    let end = pos.checked_add(N).filter(|&e| e <= buf.len());
    let b = end
        .and_then(|e| buf[*pos..e].try_into().ok())
        .ok_or_else(|| invalid(format!("truncated {}-byte value", N)))?;
    *pos += N;
    Ok(b)
}

/// Takes a length-delimited value at `*pos`.
fn take_len<'a>(buf: &'a [u8], pos: &mut usize) -> Result<&'a [u8], WireError> {
    let len = varint(buf, pos).ok_or_else(|| invalid("bad length"))?;
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| pos.checked_add(l))
        .filter(|&e| e <= buf.len())
        .ok_or_else(|| invalid(format!("length {len} past the end")))?;
    let s = &buf[*pos..end];
    *pos = end;
    Ok(s)
}

/// Skips a group's contents up to its end marker, and any groups in it.
fn skip_group(buf: &[u8], pos: &mut usize, number: u32) -> Result<(), WireError> {
    // the numbers of the groups open here, innermost last
    let mut open: Vec<u32> = vec![number];
    while let Some(&inner) = open.last() {
        let key = key(buf, pos, || format!("group {number}: no end"))?;
        let n = key >> 3;
        match key & 7 {
            0 => {
                varint(buf, pos).ok_or_else(|| invalid("bad varint"))?;
            }
            1 => {
                take::<8>(buf, pos)?;
            }
            5 => {
                take::<4>(buf, pos)?;
            }
            2 => {
                take_len(buf, pos)?;
            }
            3 if open.len() > MAX_GROUPS => return Err(invalid("groups nested too deep")),
            3 => open.push(n),
            4 if n == inner => {
                open.pop();
            }
            t => return Err(invalid(format!("group {number}: bad wire type {t}"))),
        }
    }
    Ok(())
}

/// The value of the top-level integer field `name` of a message in wire
/// form, as protobuf reads it: the last occurrence wins, a 32-bit field
/// keeps the low 32 bits of its varint. 0 when absent or unreadable (the
/// message itself is then refused when it is decoded or shown). The
/// lengths of the data after an entry are read so: the length is the one
/// the entry's JSON shows, and the one python crit uses.
pub(crate) fn uint_field(info: &MessageInfo, buf: &[u8], name: &str) -> u64 {
    let Some(f) = info.desc.get_field_by_name(name) else {
        return 0;
    };
    let Ok(mut list) = FieldList::parse(buf) else {
        return 0;
    };
    let last = occurrences(list.sorted(), f.number())
        .iter()
        .rev()
        .find_map(|(_, r)| match r {
            Raw::Varint(v) => Some(*v),
            _ => None,
        })
        .unwrap_or(0);
    match f.kind() {
        Kind::Uint32 => u64::from(last as u32),
        Kind::Bool => u64::from(last != 0),
        _ => last,
    }
}

/// The first required field (as a path: `tc.comm`, `vmas[3].start`) that a
/// message in wire form lacks, looking into the messages nested in it, in
/// declaration order. Occurrences of a singular message field merge, as
/// protobuf merges them.
pub(crate) fn missing_required(
    info: &MessageInfo,
    buf: &[u8],
) -> Result<Option<String>, WireError> {
    missing_at(info, buf, 0)
}

fn missing_at(info: &MessageInfo, buf: &[u8], depth: usize) -> Result<Option<String>, WireError> {
    let mut list = FieldList::parse(buf)?;
    let fs = list.sorted();
    for f in &info.fields {
        let group = occurrences(fs, f.desc.number());
        if group.is_empty() {
            if f.desc.is_required() {
                return Ok(Some(f.name.clone()));
            }
            continue;
        }
        let Some(sub) = schema().sub(f) else {
            continue;
        };
        if depth >= MAX_NESTING {
            return Err(nested_too_deep());
        }
        if f.list {
            for (i, (_, raw)) in group.iter().enumerate() {
                if let Some(p) = missing_at(sub, len_value(raw, &f.name)?, depth + 1)? {
                    return Ok(Some(format!("{}[{i}].{p}", f.name)));
                }
            }
        } else {
            let merged = merged(group, &f.name)?;
            if let Some(p) = missing_at(sub, &merged, depth + 1)? {
                return Ok(Some(format!("{}.{p}", f.name)));
            }
        }
    }
    Ok(None)
}

/// The bytes of a length-delimited value (a message) of field `name`.
pub(crate) fn len_value<'a>(raw: &Raw<'a>, name: &str) -> Result<&'a [u8], WireError> {
    match raw {
        Raw::Len(b) => Ok(b),
        _ => Err(invalid(format!("field {name}: wrong wire type"))),
    }
}

/// The occurrences of a singular message field as one message: protobuf
/// merges them, which is the same as reading their bytes one after another.
pub(crate) fn merged<'a>(
    group: &[(u32, Raw<'a>)],
    name: &str,
) -> Result<std::borrow::Cow<'a, [u8]>, WireError> {
    if let [(_, raw)] = group {
        return len_value(raw, name).map(std::borrow::Cow::Borrowed);
    }
    let mut all = Vec::new();
    for (_, raw) in group {
        all.extend_from_slice(len_value(raw, name)?);
    }
    Ok(std::borrow::Cow::Owned(all))
}

/// The error for a message nested deeper than [`MAX_NESTING`] levels.
pub(crate) fn nested_too_deep() -> WireError {
    invalid(format!("messages nested deeper than {MAX_NESTING} levels"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_over_32_bits_are_invalid() {
        // found by fuzzing: prost refuses such a key, the walk skipped it
        // as an unknown field, so `crit decode` showed what `crit show`
        // refused
        let mut buf = vec![0x08, 1];
        buf.extend_from_slice(&[0xc0, 0xfb, 0xb7, 0xff, 0x50, 0x07]);
        assert!(FieldList::parse(&buf).is_err());
        // the largest field number protobuf allows is fine
        let max = [0xf8, 0xff, 0xff, 0xff, 0x0f, 0x01];
        let mut list = FieldList::parse(&max).unwrap();
        assert_eq!(list.sorted()[0].0, (1 << 29) - 1);
    }
}
