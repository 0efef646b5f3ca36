//! The pieces of JSON output shared by every path: scalar forms (as python
//! crit's `pb2dict` shapes them: in pretty mode, integers take the form their
//! `(criu)` options select, hex > dev > flags > dict), entry data, and
//! decoded messages, which go through the same wire walk as raw entries
//! ([`super::from_wire`]) so that there is one conversion.

use super::from_wire;
use super::opts;
use super::out::{Open, Out};
use crate::error::{Error, Result};
use crate::framing::{Entry, ExtraData};
use crate::registry::Extra;
use crate::schema::{schema, FieldInfo, MessageInfo};
use crate::text::{base64_mime, qp_encode};
use crate::wire::WireError;

/// Writes a decoded message as a JSON object (re-encoded, then shown by the
/// wire walk).
pub(crate) fn write_message(
    out: &mut Out<'_>,
    info: &MessageInfo,
    msg: &impl prost::Message,
    pretty: bool,
    hex: bool,
) -> Result<()> {
    let mut obj = out.object();
    write_fields(out, &mut obj, info, msg, pretty, hex)?;
    out.close(obj);
    Ok(())
}

fn write_fields(
    out: &mut Out<'_>,
    obj: &mut Open,
    info: &MessageInfo,
    msg: &impl prost::Message,
    pretty: bool,
    hex: bool,
) -> Result<()> {
    let bytes = msg.encode_to_vec();
    from_wire::write_fields(out, obj, info, &bytes, pretty, hex, 0).map_err(
        |WireError::Invalid(detail)| Error::JsonShape {
            entry: None,
            path: info.desc.name().to_owned(),
            detail,
        },
    )
}

fn shape(path: &str, detail: &str) -> Error {
    Error::JsonShape {
        entry: None,
        path: path.to_owned(),
        detail: format!("cannot show as {detail}"),
    }
}

/// Writes a bytes (or string) field: text as a string, unix names in
/// quoted-printable, anything else in MIME base64.
pub(crate) fn write_bytes(out: &mut Out<'_>, fi: &FieldInfo, b: &[u8]) {
    if fi.fmt.text {
        out.str(b);
    } else if fi.fmt.conv.as_deref() == Some("unix_name") {
        out.str(&qp_encode(b));
    } else {
        out.str(base64_mime(b).as_bytes());
    }
}

/// Writes an enum value by name (by number when the schema has no name).
pub(crate) fn write_enum(out: &mut Out<'_>, fi: &FieldInfo, n: i32) {
    let name = match fi.desc.kind() {
        prost_reflect::Kind::Enum(e) => e.get_value(n),
        _ => None,
    };
    match name {
        Some(v) => out.str(v.name().as_bytes()),
        None => out.int(i64::from(n)),
    }
}

fn plain_int(out: &mut Out<'_>, v: i128) {
    match u64::try_from(v) {
        Ok(u) => out.int(u),
        Err(_) => out.int(i64::try_from(v).unwrap_or(i64::MIN)),
    }
}

/// Writes an integer; in pretty mode in the form the field's options select
/// (`hex` already includes inherited hex).
pub(crate) fn write_int(out: &mut Out<'_>, fi: &FieldInfo, v: i128, pretty: bool, hex: bool) {
    if !pretty {
        return plain_int(out, v);
    }
    if hex {
        return out.hex(v);
    }
    let unsigned = u64::try_from(v).ok();
    if let (Some(dev), Some(u)) = (fi.fmt.dev, unsigned) {
        let text = opts::dev_to_string(u, dev == crate::schema::DevFmt::Old);
        return out.str(text.as_bytes());
    }
    if let Some(flags) = &fi.fmt.flags {
        return match (crate::flags::table(flags), unsigned) {
            (Some(t), Some(u)) => out.flags(u, t),
            _ => out.hex(v),
        };
    }
    if let Some(dict) = &fi.fmt.dict {
        let name = opts::dict_table(dict, fi.desc.name())
            .and_then(|t| t.iter().find(|(n, _)| Some(*n) == unsigned))
            .map(|(_, name)| *name);
        if let Some(name) = name {
            return out.str(name.as_bytes());
        }
    }
    plain_int(out, v)
}

/// python crit's size text for `--nopl`: `1.5KB`, `14B`.
pub(crate) fn human_size(n: u64) -> String {
    let mut num = n as f64;
    for unit in ["", "K", "M", "G", "T", "P", "E", "Z"] {
        if num < 1024.0 {
            return if num.fract() == 0.0 {
                format!("{num:.0}{unit}B")
            } else {
                format!("{num:.1}{unit}B")
            };
        }
        num /= 1024.0;
    }
    format!("{num:.1}YB")
}

/// Writes one entry: its message, then `"extra"` when the image has data.
pub(crate) fn write_entry(
    out: &mut Out<'_>,
    info: &MessageInfo,
    entry: &Entry,
    pretty: bool,
    nopl: bool,
    kind: Extra,
) -> Result<()> {
    let mut obj = out.object();
    write_fields(out, &mut obj, info, &entry.message, pretty, false)?;
    write_extra_member(out, &mut obj, entry.extra.as_ref(), nopl, kind)?;
    out.close(obj);
    Ok(())
}

/// Writes `"extra"`, the data (of kind `kind`) that followed an entry, as
/// the object's last member; with `nopl` only its size.
pub(crate) fn write_extra_member(
    out: &mut Out<'_>,
    obj: &mut Open,
    extra: Option<&ExtraData>,
    nopl: bool,
    kind: Extra,
) -> Result<()> {
    let Some(extra) = extra else {
        return Ok(());
    };
    if nopl {
        // python crit drops ghost-file data silently with --nopl
        if !matches!(kind, Extra::GhostContents | Extra::GhostChunk) {
            out.key(obj, "extra");
            out.str(format!("... <{}>", human_size(extra.payload_len())).as_bytes());
        }
    } else {
        out.key(obj, "extra");
        write_extra(out, extra)?;
    }
    Ok(())
}

fn write_extra(out: &mut Out<'_>, extra: &ExtraData) -> Result<()> {
    match extra {
        ExtraData::Bytes(b) => out.str(base64_mime(b).as_bytes()),
        ExtraData::Tcp { inq, outq } => {
            let mut o = out.object();
            out.key(&mut o, "inq");
            out.str(base64_mime(inq).as_bytes());
            out.key(&mut o, "outq");
            out.str(base64_mime(outq).as_bytes());
            out.close(o);
        }
        ExtraData::Sems(values) => {
            let mut a = out.array();
            for v in values {
                out.item(&mut a);
                out.int(u64::from(*v));
            }
            out.close(a);
        }
        ExtraData::Msgs(msgs) => {
            let info = schema()
                .message("ipc_msg")
                .ok_or_else(|| shape("extra", "ipc_msg"))?;
            let mut a = out.array();
            for (head, text) in msgs {
                out.item(&mut a);
                // python crit prints queued message headers without pretty forms
                write_message(out, info, head, false, false)?;
                out.item(&mut a);
                out.str(base64_mime(text).as_bytes());
            }
            out.close(a);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_like_python() {
        assert_eq!(human_size(14), "14B");
        assert_eq!(human_size(1024), "1KB");
        assert_eq!(human_size(1536), "1.5KB");
        assert_eq!(human_size(65536), "64KB");
        assert_eq!(human_size(1_000_000), "976.6KB");
    }
}
