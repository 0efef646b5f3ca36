//! The one conversion of messages to JSON: protobuf wire bytes straight to
//! text, driven by the schema, without building a message in between.
//! Decoded messages are re-encoded and come through here too
//! ([`super::to_json::write_message`]). Protobuf's rules apply: the last value
//! of a repeated singular field wins, repeated occurrences of a message field
//! merge, lists may be packed or not, unknown fields and groups are skipped,
//! required fields are checked.

use prost_reflect::Kind;

use super::out::Out;
use super::to_json::{write_bytes, write_enum, write_int};
use crate::schema::{schema, FieldInfo, MessageInfo};

/// Why bytes could not be shown.
#[derive(Debug)]
pub enum WireError {
    /// The bytes are not a valid message of the type.
    Invalid(String),
}

#[derive(Debug, Clone, Copy)]
enum Raw<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Len(&'a [u8]),
    Group,
}

fn invalid(s: impl Into<String>) -> WireError {
    WireError::Invalid(s.into())
}

/// Reads a varint at `*pos`.
pub fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
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

/// Fields of one message: most CRIU messages have a handful, so they stay
/// on the stack.
struct FieldList<'a> {
    inline: [(u32, Raw<'a>); INLINE],
    len: usize,
    heap: Vec<(u32, Raw<'a>)>,
}

const INLINE: usize = 10;

impl<'a> FieldList<'a> {
    fn new() -> Self {
        FieldList {
            inline: [(0, Raw::Varint(0)); INLINE],
            len: 0,
            heap: Vec::new(),
        }
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

    fn as_mut_slice(&mut self) -> &mut [(u32, Raw<'a>)] {
        if self.heap.is_empty() {
            &mut self.inline[..self.len]
        } else {
            &mut self.heap
        }
    }
}

fn fields<'a>(buf: &'a [u8], out: &mut FieldList<'a>) -> Result<(), WireError> {
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos).ok_or_else(|| invalid("bad field key"))?;
        let number = u32::try_from(key >> 3).map_err(|_| invalid("field number out of range"))?;
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
                skip_group(buf, &mut pos, number, 0)?;
                Raw::Group
            }
            _ => {
                return Err(invalid(format!(
                    "field {number}: bad wire type {}",
                    key & 7
                )))
            }
        };
        out.push((number, raw));
    }
    Ok(())
}

/// Takes `N` bytes at `*pos`.
fn take<const N: usize>(buf: &[u8], pos: &mut usize) -> Result<[u8; N], WireError> {
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

/// Skips a group's contents up to its end marker.
fn skip_group(buf: &[u8], pos: &mut usize, number: u32, depth: u32) -> Result<(), WireError> {
    if depth > 64 {
        return Err(invalid("groups nested too deep"));
    }
    loop {
        let key = varint(buf, pos).ok_or_else(|| invalid(format!("group {number}: no end")))?;
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
            3 => skip_group(buf, pos, u32::try_from(n).unwrap_or(0), depth + 1)?,
            4 if n == u64::from(number) => return Ok(()),
            t => return Err(invalid(format!("group {number}: bad wire type {t}"))),
        }
    }
}

/// The last varint value of top-level field `number` (0 when absent).
pub fn field_varint(buf: &[u8], number: u32) -> u64 {
    let mut fs = FieldList::new();
    if fields(buf, &mut fs).is_err() {
        return 0;
    }
    fs.as_mut_slice()
        .iter()
        .rev()
        .find_map(|(n, r)| match r {
            Raw::Varint(v) if *n == number => Some(*v),
            _ => None,
        })
        .unwrap_or(0)
}

/// A scalar value as it goes to JSON.
enum Scalar<'a> {
    Int(i128),
    Bool(bool),
    Enum(i32),
    Bytes(&'a [u8]),
}

fn scalar<'a>(fi: &FieldInfo, raw: Raw<'a>) -> Result<Scalar<'a>, WireError> {
    let kind = &fi.kind;
    let wrong = || invalid(format!("field {}: wrong wire type", fi.name));
    Ok(match (kind, raw) {
        (Kind::Int32, Raw::Varint(v)) => Scalar::Int(i128::from(v as i32)),
        (Kind::Int64, Raw::Varint(v)) => Scalar::Int(i128::from(v as i64)),
        (Kind::Uint32, Raw::Varint(v)) => Scalar::Int(i128::from(v as u32)),
        (Kind::Uint64, Raw::Varint(v)) => Scalar::Int(i128::from(v)),
        (Kind::Sint32, Raw::Varint(v)) => {
            let v = v as u32;
            Scalar::Int(i128::from(((v >> 1) as i32) ^ -((v & 1) as i32)))
        }
        (Kind::Sint64, Raw::Varint(v)) => {
            Scalar::Int(i128::from(((v >> 1) as i64) ^ -((v & 1) as i64)))
        }
        (Kind::Bool, Raw::Varint(v)) => Scalar::Bool(v != 0),
        (Kind::Enum(_), Raw::Varint(v)) => Scalar::Enum(v as i32),
        (Kind::Fixed64, Raw::Fixed64(v)) => Scalar::Int(i128::from(v)),
        (Kind::Sfixed64, Raw::Fixed64(v)) => Scalar::Int(i128::from(v as i64)),
        (Kind::Fixed32, Raw::Fixed32(v)) => Scalar::Int(i128::from(v)),
        (Kind::Sfixed32, Raw::Fixed32(v)) => Scalar::Int(i128::from(v as i32)),
        (Kind::Bytes | Kind::String, Raw::Len(b)) => Scalar::Bytes(b),
        _ => return Err(wrong()),
    })
}

fn packed_values<'a>(
    fi: &FieldInfo,
    b: &'a [u8],
    into: &mut Vec<Scalar<'a>>,
) -> Result<(), WireError> {
    let mut pos = 0;
    while pos < b.len() {
        let raw = match fi.kind {
            Kind::Fixed64 | Kind::Sfixed64 | Kind::Double => {
                Raw::Fixed64(u64::from_le_bytes(take(b, &mut pos)?))
            }
            Kind::Fixed32 | Kind::Sfixed32 | Kind::Float => {
                Raw::Fixed32(u32::from_le_bytes(take(b, &mut pos)?))
            }
            _ => Raw::Varint(varint(b, &mut pos).ok_or_else(|| invalid("bad packed varint"))?),
        };
        into.push(scalar(fi, raw)?);
    }
    Ok(())
}

fn write_scalar(out: &mut Out<'_>, fi: &FieldInfo, v: &Scalar<'_>, pretty: bool, hex: bool) {
    match v {
        Scalar::Int(n) => write_int(out, fi, *n, pretty, hex || fi.fmt.hex),
        Scalar::Bool(b) => out.bool(*b),
        Scalar::Enum(n) => write_enum(out, fi, *n),
        Scalar::Bytes(b) => write_bytes(out, fi, b),
    }
}

/// How deep messages may nest inside an entry: protobuf's own decoders
/// (prost, and the C++ and upb ones under python crit) stop at 100 levels,
/// and so does the walk here, which recurses once per level.
pub const MAX_NESTING: usize = 100;

/// Writes the fields of a message (wire bytes) into an open object.
pub fn write_fields(
    out: &mut Out<'_>,
    obj: &mut super::out::Open,
    info: &MessageInfo,
    buf: &[u8],
    pretty: bool,
    hex: bool,
) -> Result<(), WireError> {
    write_nested(out, obj, info, buf, pretty, hex, 0)
}

/// [`write_fields`] for a message nested `depth` levels inside the entry.
fn write_nested(
    out: &mut Out<'_>,
    obj: &mut super::out::Open,
    info: &MessageInfo,
    buf: &[u8],
    pretty: bool,
    hex: bool,
    depth: usize,
) -> Result<(), WireError> {
    let mut list = FieldList::new();
    fields(buf, &mut list)?;
    let fs = list.as_mut_slice();
    if !fs.windows(2).all(|w| w[0].0 <= w[1].0) {
        fs.sort_by_key(|(n, _)| *n);
    }
    for req in info.required() {
        if fs.binary_search_by_key(req, |(n, _)| *n).is_err() {
            let name = info.field(*req).map(|f| f.desc.name()).unwrap_or("?");
            return Err(invalid(format!("required field {name} is missing")));
        }
    }
    let mut i = 0;
    while i < fs.len() {
        let number = fs[i].0;
        let mut j = i + 1;
        while j < fs.len() && fs[j].0 == number {
            j += 1;
        }
        let group = &fs[i..j];
        i = j;
        let Some(fi) = info.field(number) else {
            continue; // unknown field: python crit does not show it either
        };
        let is_msg = fi.sub.is_some() || matches!(fi.kind, Kind::Message(_));
        if is_msg && depth >= MAX_NESTING {
            return Err(invalid(format!(
                "messages nested deeper than {MAX_NESTING} levels"
            )));
        }
        if fi.list {
            if is_msg {
                let sub = schema()
                    .sub(fi)
                    .ok_or_else(|| invalid("message type missing from the schema"))?;
                out.key_json(obj, &fi.json_key);
                let mut arr = out.array();
                for (_, raw) in group {
                    let Raw::Len(b) = raw else {
                        return Err(invalid(format!("field {}: wrong wire type", fi.name)));
                    };
                    out.item(&mut arr);
                    let mut o = out.object();
                    write_nested(out, &mut o, sub, b, pretty, hex || fi.fmt.hex, depth + 1)?;
                    out.close(o);
                }
                out.close(arr);
                continue;
            }
            let mut values = Vec::with_capacity(group.len());
            for (_, raw) in group {
                match (raw, &fi.kind) {
                    (Raw::Len(b), k) if !matches!(k, Kind::Bytes | Kind::String) => {
                        packed_values(fi, b, &mut values)?
                    }
                    (raw, _) => values.push(scalar(fi, *raw)?),
                }
            }
            if values.is_empty() {
                continue;
            }
            out.key_json(obj, &fi.json_key);
            if pretty && fi.fmt.ipadd {
                let words: Vec<u32> = values
                    .iter()
                    .map(|v| match v {
                        Scalar::Int(n) => *n as u32,
                        _ => 0,
                    })
                    .collect();
                if words.len() != 1 && words.len() < 4 {
                    return Err(invalid(format!(
                        "{}: an IP address needs 1 or 4 words",
                        fi.name
                    )));
                }
                let mut arr = out.array();
                out.item(&mut arr);
                out.str(super::opts::ip_to_string(&words).as_bytes());
                out.close(arr);
                continue;
            }
            let mut arr = out.array();
            for v in &values {
                out.item(&mut arr);
                write_scalar(out, fi, v, pretty, hex);
            }
            out.close(arr);
            continue;
        }
        if is_msg {
            let sub = schema()
                .sub(fi)
                .ok_or_else(|| invalid("message type missing from the schema"))?;
            let wrong = || invalid(format!("field {}: wrong wire type", fi.name));
            out.key_json(obj, &fi.json_key);
            let mut o = out.object();
            if let [(_, raw)] = group {
                let Raw::Len(b) = raw else {
                    return Err(wrong());
                };
                write_nested(out, &mut o, sub, b, pretty, hex || fi.fmt.hex, depth + 1)?;
            } else {
                // protobuf merges repeated occurrences of a message field,
                // which is the same as reading their bytes one after another
                let mut merged = Vec::new();
                for (_, raw) in group {
                    let Raw::Len(b) = raw else {
                        return Err(wrong());
                    };
                    merged.extend_from_slice(b);
                }
                write_nested(
                    out,
                    &mut o,
                    sub,
                    &merged,
                    pretty,
                    hex || fi.fmt.hex,
                    depth + 1,
                )?;
            }
            out.close(o);
            continue;
        }
        // the last occurrence wins; a packed encoding of a singular field is invalid
        let Some(((_, raw), earlier)) = group.split_last() else {
            continue;
        };
        for (_, r) in earlier {
            scalar(fi, *r)?; // every occurrence must have the right wire type
        }
        let v = scalar(fi, *raw)?;
        out.key_json(obj, &fi.json_key);
        write_scalar(out, fi, &v, pretty, hex);
    }
    Ok(())
}
