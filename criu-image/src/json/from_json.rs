//! JSON to messages, accepting what python crit's `dict2pb` accepts from
//! its own output, plain or pretty: integers as numbers or as strings (hex,
//! `"major:minor"`, flag names, table names), enums by name, bytes in base64
//! (or quoted-printable for unix names). Unknown keys are ignored, as there.
//! Anything else is an error with the path of the offending value.

use prost_reflect::{DynamicMessage, Kind, Value};

use super::opts;
use super::parse::Json;
use crate::error::{Error, Result};
use crate::flags;
use crate::schema::{schema, DevFmt, FieldInfo, MessageInfo};
use crate::text::{base64_decode, parse_int, qp_decode};

/// Where a value sits, for error messages.
#[derive(Debug, Default)]
pub(crate) struct Path(Vec<String>);

impl Path {
    fn push(&mut self, s: impl Into<String>) {
        self.0.push(s.into());
    }

    fn pop(&mut self) {
        self.0.pop();
    }

    /// The error for the current path.
    pub(crate) fn err(&self, detail: impl Into<String>) -> Error {
        let mut p = String::new();
        for part in &self.0 {
            if !part.starts_with('[') && !p.is_empty() {
                p.push('.');
            }
            p.push_str(part);
        }
        Error::JsonShape {
            entry: None,
            path: p,
            detail: detail.into(),
        }
    }
}

/// Builds a message of type `info` from a JSON object.
pub(crate) fn message(info: &MessageInfo, v: &Json, path: &mut Path) -> Result<DynamicMessage> {
    let Json::Obj(members) = v else {
        return Err(path.err(format!(
            "expected an object for {}, found {}",
            info.desc.name(),
            v.type_name()
        )));
    };
    let mut msg = DynamicMessage::new(info.desc.clone());
    for fi in &info.fields {
        let name = fi.desc.name();
        let Some((_, value)) = members.iter().rev().find(|(k, _)| k == name.as_bytes()) else {
            if fi.desc.is_required() {
                path.push(name);
                let e = path.err("required field is missing");
                path.pop();
                return Err(e);
            }
            continue;
        };
        path.push(name);
        let v = field(fi, value, path)?;
        path.pop();
        msg.set_field(&fi.desc, v);
    }
    Ok(msg)
}

fn field(fi: &FieldInfo, v: &Json, path: &mut Path) -> Result<Value> {
    if !fi.desc.is_list() {
        return scalar(fi, v, path);
    }
    let Json::Arr(items) = v else {
        return Err(path.err(format!("expected an array, found {}", v.type_name())));
    };
    if fi.fmt.ipadd {
        if let Some(Json::Str(s)) = items.first() {
            let text = String::from_utf8_lossy(s);
            let words = opts::ip_from_string(&text).map_err(|e| path.err(e))?;
            return Ok(Value::List(words.into_iter().map(Value::U32).collect()));
        }
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        path.push(format!("[{i}]"));
        out.push(scalar(fi, item, path)?);
        path.pop();
    }
    Ok(Value::List(out))
}

fn scalar(fi: &FieldInfo, v: &Json, path: &mut Path) -> Result<Value> {
    match fi.desc.kind() {
        Kind::Message(_) => {
            let info = schema()
                .message_of(&fi.desc)
                .ok_or_else(|| path.err("message type missing from the schema"))?;
            Ok(Value::Message(message(info, v, path)?))
        }
        Kind::Bytes => {
            let Json::Str(s) = v else {
                return Err(path.err(format!("expected a string, found {}", v.type_name())));
            };
            let b = if fi.fmt.text {
                s.clone()
            } else if fi.fmt.conv.as_deref() == Some("unix_name") {
                qp_decode(s)
            } else {
                base64_decode(s).map_err(|e| path.err(e.to_string()))?
            };
            Ok(Value::Bytes(b.into()))
        }
        Kind::String => match v {
            Json::Str(s) => Ok(Value::String(
                String::from_utf8(s.clone()).map_err(|_| path.err("string is not UTF-8"))?,
            )),
            _ => Err(path.err(format!("expected a string, found {}", v.type_name()))),
        },
        Kind::Bool => match v {
            Json::Bool(b) => Ok(Value::Bool(*b)),
            _ => Err(path.err(format!("expected true or false, found {}", v.type_name()))),
        },
        Kind::Enum(e) => match v {
            Json::Str(s) => {
                let name = String::from_utf8_lossy(s);
                e.get_value_by_name(&name)
                    .map(|ev| Value::EnumNumber(ev.number()))
                    .ok_or_else(|| {
                        let names: Vec<String> = e.values().map(|x| x.name().to_owned()).collect();
                        path.err(format!(
                            "{name:?} is not a value of {} (one of {})",
                            e.name(),
                            names.join(", ")
                        ))
                    })
            }
            Json::Int(n) => i32::try_from(*n)
                .map(Value::EnumNumber)
                .map_err(|_| path.err(format!("enum number {n} out of range"))),
            _ => Err(path.err(format!("expected an enum name, found {}", v.type_name()))),
        },
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            let n = integer(fi, v, path)?;
            i32::try_from(n)
                .map(Value::I32)
                .map_err(|_| range(path, n, "int32"))
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            let n = integer(fi, v, path)?;
            i64::try_from(n)
                .map(Value::I64)
                .map_err(|_| range(path, n, "int64"))
        }
        Kind::Uint32 | Kind::Fixed32 => {
            let n = integer(fi, v, path)?;
            u32::try_from(n)
                .map(Value::U32)
                .map_err(|_| range(path, n, "uint32"))
        }
        Kind::Uint64 | Kind::Fixed64 => {
            let n = integer(fi, v, path)?;
            u64::try_from(n)
                .map(Value::U64)
                .map_err(|_| range(path, n, "uint64"))
        }
        Kind::Float | Kind::Double => {
            Err(path.err("floating point fields are not part of CRIU images"))
        }
    }
}

fn range(path: &Path, n: i128, ty: &str) -> Error {
    path.err(format!("{n} is out of range for {ty}"))
}

fn integer(fi: &FieldInfo, v: &Json, path: &Path) -> Result<i128> {
    match v {
        Json::Int(n) => Ok(*n),
        Json::BigInt(s) => Err(path.err(format!("{s} is out of range"))),
        Json::Str(s) => {
            let text = std::str::from_utf8(s).map_err(|_| path.err("integer text is not UTF-8"))?;
            if let Some(dev) = fi.fmt.dev {
                return opts::dev_from_string(text, dev == DevFmt::Old)
                    .map(i128::from)
                    .map_err(|e| path.err(e));
            }
            if let Some(table) = fi.fmt.flags.as_deref().and_then(flags::table) {
                return flags::from_string(text, table)
                    .map(i128::from)
                    .map_err(|e| path.err(e));
            }
            if let Some(dict) = &fi.fmt.dict {
                if let Some((n, _)) = opts::dict_table(dict, fi.desc.name())
                    .and_then(|t| t.iter().find(|(_, name)| *name == text))
                {
                    return Ok(i128::from(*n));
                }
            }
            parse_int(text).ok_or_else(|| path.err(format!("expected an integer, found {text:?}")))
        }
        _ => Err(path.err(format!("expected an integer, found {}", v.type_name()))),
    }
}
