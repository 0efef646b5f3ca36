//! The one conversion of messages to JSON: protobuf wire bytes straight to
//! text, driven by the schema, without building a message in between.
//! Decoded messages are re-encoded and come through here too
//! ([`super::to_json::write_message`]). Protobuf's rules apply: the last value
//! of a repeated singular field wins, repeated occurrences of a message field
//! merge, lists may be packed or not, unknown fields and groups are skipped,
//! required fields are checked, messages nest at most
//! [`MAX_NESTING`] levels.

use prost_reflect::Kind;

use super::out::{Open, Out};
use super::to_json::{write_bytes, write_enum, write_int};
use crate::schema::{schema, FieldInfo, MessageInfo};
use crate::wire::{
    self, invalid, len_value, merged, nested_too_deep, FieldList, Raw, WireError, MAX_NESTING,
};

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
                Raw::Fixed64(u64::from_le_bytes(wire::take(b, &mut pos)?))
            }
            Kind::Fixed32 | Kind::Sfixed32 | Kind::Float => {
                Raw::Fixed32(u32::from_le_bytes(wire::take(b, &mut pos)?))
            }
            _ => {
                Raw::Varint(wire::varint(b, &mut pos).ok_or_else(|| invalid("bad packed varint"))?)
            }
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

/// Writes the fields of a message (wire bytes), nested `depth` levels
/// inside the entry (0 for the entry itself), into an open object.
pub(crate) fn write_fields(
    out: &mut Out<'_>,
    obj: &mut Open,
    info: &MessageInfo,
    buf: &[u8],
    pretty: bool,
    hex: bool,
    depth: usize,
) -> Result<(), WireError> {
    let mut list = FieldList::parse(buf)?;
    let fs = list.sorted();
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
            return Err(nested_too_deep());
        }
        let hex = hex || fi.fmt.hex;
        if fi.list {
            if is_msg {
                let sub = schema()
                    .sub(fi)
                    .ok_or_else(|| invalid("message type missing from the schema"))?;
                out.key_json(obj, &fi.json_key);
                let mut arr = out.array();
                for (_, raw) in group {
                    out.item(&mut arr);
                    let mut o = out.object();
                    write_fields(
                        out,
                        &mut o,
                        sub,
                        len_value(raw, &fi.name)?,
                        pretty,
                        hex,
                        depth + 1,
                    )?;
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
            let bytes = merged(group, &fi.name)?;
            out.key_json(obj, &fi.json_key);
            let mut o = out.object();
            write_fields(out, &mut o, sub, &bytes, pretty, hex, depth + 1)?;
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
