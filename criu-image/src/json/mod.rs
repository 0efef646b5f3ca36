//! Images to JSON and back, in python crit's format.
//!
//! [`decode`] streams: it writes each entry as soon as it is read, so memory
//! does not grow with the number of entries. [`encode`] streams too when
//! `"magic"` comes before `"entries"` (as crit writes it): each entry is
//! parsed, converted and written before the next is read.
//!
//! Layers: `from_wire` shows a message in wire form (the one conversion to
//! JSON; decoded messages are re-encoded and shown by it), `to_json` the
//! scalar forms and entry data, `from_json` builds messages back, `parse`
//! reads JSON text into a [`Json`] value, `out` writes JSON text as
//! python's `json.dump` does. Below them are the framing, wire and schema
//! layers, which never call into this module.

mod from_json;
mod from_wire;
mod opts;
mod out;
mod parse;
mod to_json;
mod value;

use std::io::{BufRead, Read, Write};

use prost::Message as _;

use crate::error::{Error, Result};
use crate::framing::{Entry, ExtraData, ImageReader, ImageWriter, RawEntry};
use crate::pb;
use crate::registry::{self, Extra, ImageDesc, Layout};
use crate::schema::schema;
use crate::wire::WireError;
use out::Out;
use parse::Parser;
pub use value::Json;

/// How [`decode`] writes JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JsonOptions {
    /// Indent by 4 and show integers in their field-specific forms.
    pub pretty: bool,
    /// Replace entry data (`"extra"`) by its size (`crit show --nopl`).
    pub nopl: bool,
}

/// Writes one entry of an image of kind `desc` as JSON into `buf`, as
/// [`decode`] writes it inside `"entries"` (when pretty, indented as at
/// nesting depth `depth`).
pub fn entry_to_json(
    buf: &mut Vec<u8>,
    desc: &ImageDesc,
    entry: &Entry,
    opts: JsonOptions,
    depth: usize,
) -> Result<()> {
    let info = schema().entry(desc, entry.index).ok_or(Error::NotAnImage {
        name: desc.name,
        magic: desc.magic,
    })?;
    let mut out = Out::new(buf, opts.pretty, depth);
    to_json::write_entry(
        &mut out,
        info,
        entry,
        opts.pretty,
        opts.nopl,
        desc.extra(entry.index),
    )
    .map_err(|e| at_entry(e, entry.index))
}

/// One entry as a JSON value: what [`entry_to_json`] writes, read back.
/// With `pretty`, integers have the forms `crit show` gives them (hex
/// addresses, flag names), which is how `crit diff` compares entries.
pub fn entry_to_value(desc: &ImageDesc, entry: &Entry, opts: JsonOptions) -> Result<Json> {
    let mut buf = Vec::new();
    entry_to_json(&mut buf, desc, entry, opts, 0)?;
    Parser::new(buf.as_slice()).value()
}

/// Writes one entry read by [`ImageReader::next_raw`] as JSON, straight
/// from its wire bytes, and gives the payload buffer back (for
/// [`ImageReader::recycle`]).
fn write_raw_entry(
    out: &mut Out<'_>,
    desc: &ImageDesc,
    raw: RawEntry,
    opts: JsonOptions,
) -> Result<Vec<u8>> {
    let mut obj = out.object();
    if let Err(WireError::Invalid(detail)) = from_wire::write_fields(
        out,
        &mut obj,
        raw.message,
        &raw.payload,
        opts.pretty,
        false,
        0,
    ) {
        return Err(Error::Protobuf {
            index: raw.index,
            offset: raw.offset,
            message: raw.message.desc.full_name().to_owned(),
            detail,
        });
    }
    let kind = desc.extra(raw.index);
    to_json::write_extra_member(out, &mut obj, raw.extra.as_ref(), opts.nopl, kind)
        .map_err(|e| at_entry(e, raw.index))?;
    out.close(obj);
    Ok(raw.payload)
}

fn at_entry(e: Error, index: usize) -> Error {
    match e {
        Error::JsonShape { path, detail, .. } => Error::JsonShape {
            entry: Some(index),
            path,
            detail,
        },
        e => e,
    }
}

/// Converts an image to JSON: `{"magic": NAME, "entries": [...]}`, without a
/// trailing newline.
pub fn decode<R: Read, W: Write>(
    mut reader: ImageReader<R>,
    mut w: W,
    opts: JsonOptions,
) -> Result<W> {
    let desc = reader.desc();
    let mut buf = Vec::with_capacity(2 * out::FLUSH_AT);
    let mut out = Out::with_sink(&mut buf, opts.pretty, &mut w);
    let mut top = out.object();
    out.key(&mut top, "magic");
    out.str(desc.name.as_bytes());
    out.key(&mut top, "entries");
    let mut arr = out.array();
    while let Some(raw) = reader.next_raw() {
        out.item(&mut arr);
        let payload = write_raw_entry(&mut out, desc, raw?, opts)?;
        reader.recycle(payload);
    }
    out.close(arr);
    out.close(top);
    out.finish().map_err(|e| Error::io("writing JSON", e))?;
    w.flush().map_err(|e| Error::io("writing JSON", e))?;
    Ok(w)
}

/// Converts JSON (plain or pretty, as [`decode`] writes it) back to an image.
pub fn encode<R: BufRead, W: Write>(input: R, w: W) -> Result<W> {
    let mut p = Parser::new(input);
    match p.peek_token()? {
        Some(b'{') => {}
        _ => {
            return Err(p.error(
                "Cannot read JSON.\nMaybe you are feeding me an image with protobuf data? Encode expects JSON input.",
            ))
        }
    }
    p.expect(b'{')?;
    let mut writer: Option<ImageWriter<W>> = None;
    let mut w = Some(w);
    let mut pending: Option<Vec<Json>> = None;
    let mut seen_entries = false;
    if !p.take_if(b'}')? {
        loop {
            let key = p.key()?;
            match key.as_slice() {
                b"magic" => {
                    let at = p.offset();
                    let v = p.value()?;
                    let Json::Str(name) = &v else {
                        return Err(shape(
                            None,
                            "magic",
                            format!("expected a string, found {}", v.type_name()),
                        ));
                    };
                    let name = String::from_utf8_lossy(name);
                    let desc = registry::by_name(&name)
                        .filter(|d| d.layout != Layout::NotAnImage)
                        .ok_or_else(|| {
                            shape(
                                None,
                                "magic",
                                format!("unknown image magic {name:?} (at byte {at})"),
                            )
                        })?;
                    if writer.is_some() {
                        return Err(shape(None, "magic", "given twice".to_owned()));
                    }
                    let Some(inner) = w.take() else {
                        return Err(shape(None, "magic", "given twice".to_owned()));
                    };
                    let mut iw = ImageWriter::new(inner, desc)?;
                    if let Some(items) = pending.take() {
                        for (i, item) in items.iter().enumerate() {
                            write_json_entry(&mut iw, item, i)?;
                        }
                    }
                    writer = Some(iw);
                }
                b"entries" => {
                    if seen_entries {
                        return Err(shape(None, "entries", "given twice".to_owned()));
                    }
                    seen_entries = true;
                    p.expect(b'[')?;
                    let mut items = Vec::new();
                    if !p.take_if(b']')? {
                        let mut i = 0;
                        loop {
                            let v = p.value()?;
                            match &mut writer {
                                Some(iw) => write_json_entry(iw, &v, i)?,
                                None => items.push(v),
                            }
                            i += 1;
                            if !p.comma_or(b']')? {
                                break;
                            }
                        }
                    }
                    if writer.is_none() {
                        pending = Some(items);
                    }
                }
                _ => {
                    p.value()?;
                }
            }
            if !p.comma_or(b'}')? {
                break;
            }
        }
    }
    p.end()?;
    let Some(iw) = writer else {
        return Err(shape(None, "magic", "missing".to_owned()));
    };
    if !seen_entries {
        return Err(shape(None, "entries", "missing".to_owned()));
    }
    iw.finish()
}

fn shape(entry: Option<usize>, path: &str, detail: String) -> Error {
    Error::JsonShape {
        entry,
        path: path.to_owned(),
        detail,
    }
}

/// Converts entry `index` of an image of kind `desc`, as JSON (plain or
/// pretty, as [`decode`] writes it), into an [`Entry`].
pub fn entry_from_json(desc: &ImageDesc, v: &Json, index: usize) -> Result<Entry> {
    let info = schema().entry(desc, index).ok_or(Error::NotAnImage {
        name: desc.name,
        magic: desc.magic,
    })?;
    let mut path = from_json::Path::default();
    let message = from_json::message(info, v, &mut path).map_err(|e| at_entry(e, index))?;
    let extra = match (desc.extra(index), v.get("extra")) {
        (Extra::None, _) | (_, None) => None,
        (kind, Some(x)) => {
            Some(extra_from_json(kind, x).map_err(|d| shape(Some(index), "extra", d))?)
        }
    };
    Ok(Entry {
        index,
        offset: 0,
        message,
        extra,
    })
}

fn write_json_entry<W: Write>(w: &mut ImageWriter<W>, v: &Json, index: usize) -> Result<()> {
    let entry = entry_from_json(w.desc(), v, index)?;
    w.write_entry(&entry).map_err(|e| at_entry(e, index))
}

fn b64(v: &Json) -> std::result::Result<Vec<u8>, String> {
    match v {
        Json::Str(s) => crate::text::base64_decode(s).map_err(|e| e.to_string()),
        _ => Err(format!("expected a base64 string, found {}", v.type_name())),
    }
}

fn extra_from_json(kind: Extra, v: &Json) -> std::result::Result<ExtraData, String> {
    Ok(match kind {
        Extra::TcpStream => {
            let inq = v
                .get("inq")
                .ok_or("expected an object with \"inq\" and \"outq\"")?;
            let outq = v
                .get("outq")
                .ok_or("expected an object with \"inq\" and \"outq\"")?;
            ExtraData::Tcp {
                inq: b64(inq)?,
                outq: b64(outq)?,
            }
        }
        Extra::IpcSem => {
            let Json::Arr(items) = v else {
                return Err(format!(
                    "expected an array of semaphore values, found {}",
                    v.type_name()
                ));
            };
            let values = items
                .iter()
                .map(|x| match x {
                    Json::Int(n) => {
                        u16::try_from(*n).map_err(|_| format!("semaphore value {n} out of range"))
                    }
                    _ => Err(format!(
                        "expected a semaphore value, found {}",
                        x.type_name()
                    )),
                })
                .collect::<std::result::Result<Vec<u16>, String>>()?;
            ExtraData::Sems(values)
        }
        Extra::IpcMsg => {
            let Json::Arr(items) = v else {
                return Err(format!(
                    "expected an array of messages, found {}",
                    v.type_name()
                ));
            };
            let info = schema()
                .message("ipc_msg")
                .ok_or("ipc_msg missing from the schema")?;
            let mut msgs = Vec::new();
            for pair in items.chunks(2) {
                let [head, text] = pair else {
                    return Err("messages come in pairs: header, then base64 text".to_owned());
                };
                let mut path = from_json::Path::default();
                let m = from_json::message(info, head, &mut path).map_err(|e| e.to_string())?;
                // the header's fields are checked above: it converts
                let m =
                    pb::IpcMsg::decode(m.encode_to_vec().as_slice()).map_err(|e| e.to_string())?;
                msgs.push((m, b64(text)?));
            }
            ExtraData::Msgs(msgs)
        }
        _ => ExtraData::Bytes(b64(v)?),
    })
}
