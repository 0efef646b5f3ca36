//! Reading and writing the image container, one entry at a time.
//!
//! The grammar (CRIU's images.py and criu/image.c):
//!
//! ```text
//! IMAGE ::= [HEAD] MAGIC { ENTRY }
//! ENTRY ::= SIZE PAYLOAD [EXTRA]
//! HEAD, MAGIC, SIZE ::= u32, host byte order
//! PAYLOAD ::= SIZE bytes, a protobuf message
//! EXTRA ::= bytes whose length the PAYLOAD gives (see registry::Extra)
//! ```
//!
//! Bounds: no buffer is ever sized from a length read from the file. Payloads
//! and extras are read through `Read::take(len)`, so a lying length costs only
//! the bytes that really exist, and a short read is an [`Error::Truncated`]
//! with the offset where the missing bytes should have been. End of file on an
//! entry boundary ends the stream; anywhere else it is an error. Memory holds
//! one entry at a time.

use std::io::{self, Read, Write};

use prost::Message as _;
use prost_reflect::{DynamicMessage, Kind, ReflectMessage as _, Value};

use crate::error::{Error, Result};
use crate::registry::{self, Extra, Head, ImageDesc, Layout};
use crate::schema::{schema, MessageInfo};

/// The largest entry payload accepted (CRIU's largest entries, mm images of
/// processes with very many mappings, stay far below it).
pub const MAX_ENTRY: u64 = 1 << 30;

/// Payloads up to this size are read into a buffer allocated up front.
const SMALL_READ: u64 = 4096;

/// One entry of an image: its message and the data that followed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Index in the image, from 0 (the pagemap head is entry 0).
    pub index: usize,
    /// Byte offset of the entry's size field.
    pub offset: u64,
    /// The decoded message.
    pub message: DynamicMessage,
    /// What followed the message, for images that carry data.
    pub extra: Option<ExtraData>,
}

/// One entry with its message still in wire form (see
/// [`ImageReader::next_raw`]).
#[derive(Debug, Clone)]
pub struct RawEntry {
    /// Index in the image, from 0.
    pub index: usize,
    /// Byte offset of the entry's size field.
    pub offset: u64,
    /// The message's type.
    pub message: &'static MessageInfo,
    /// The message bytes.
    pub payload: Vec<u8>,
    /// What followed the message.
    pub extra: Option<ExtraData>,
}

impl RawEntry {
    /// Decodes the message, checking required fields.
    pub fn decode(self) -> Result<Entry> {
        let message = decode_checked(self.message, &self.payload, self.index, self.offset)?;
        Ok(Entry {
            index: self.index,
            offset: self.offset,
            message,
            extra: self.extra,
        })
    }
}

fn decode_checked(info: &MessageInfo, buf: &[u8], index: usize, at: u64) -> Result<DynamicMessage> {
    let msg = DynamicMessage::decode(info.desc.clone(), buf).map_err(|e| Error::Protobuf {
        index,
        offset: at,
        message: info.desc.full_name().to_owned(),
        detail: e.to_string(),
    })?;
    if let Some(missing) = missing_required(info, &msg) {
        return Err(Error::Protobuf {
            index,
            offset: at,
            message: info.desc.full_name().to_owned(),
            detail: format!("required field {missing} is missing"),
        });
    }
    Ok(msg)
}

/// The value of a top-level integer field of a message in wire form, as
/// protobuf reads it: the last occurrence wins, and a 32-bit field keeps the
/// low 32 bits of its varint (so that a length that follows an entry is the
/// one its JSON shows, and what python crit reads).
fn wire_u64(info: &MessageInfo, payload: &[u8], name: &str) -> u64 {
    let Some(f) = info.desc.get_field_by_name(name) else {
        return 0;
    };
    let v = crate::json::wire::field_varint(payload, f.number());
    match f.kind() {
        Kind::Uint32 => u64::from(v as u32),
        Kind::Bool => u64::from(v != 0),
        _ => v,
    }
}

/// Data after an entry's message.
#[derive(Debug, Clone, PartialEq)]
pub enum ExtraData {
    /// Raw bytes (pipe and fifo data, socket queues, bpf maps, shm
    /// segments, ghost file contents and chunks).
    Bytes(Vec<u8>),
    /// A TCP connection's queues.
    Tcp {
        /// Receive queue.
        inq: Vec<u8>,
        /// Send queue.
        outq: Vec<u8>,
    },
    /// Semaphore values of a SysV semaphore set.
    Sems(Vec<u16>),
    /// Messages of a SysV message queue: header and text.
    Msgs(Vec<(DynamicMessage, Vec<u8>)>),
}

impl ExtraData {
    /// The payload size python crit reports for `--nopl`.
    pub fn payload_len(&self) -> u64 {
        match self {
            ExtraData::Bytes(b) => b.len() as u64,
            ExtraData::Tcp { inq, outq } => (inq.len() + outq.len()) as u64,
            ExtraData::Sems(s) => 2 * s.len() as u64,
            ExtraData::Msgs(m) => m
                .iter()
                .map(|(h, t)| (h.encoded_len() + t.len()) as u64)
                .sum(),
        }
    }
}

/// Reads until `buf` is full or the input ends; returns how much was read.
pub fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// `x` rounded up to a multiple of `to`; `None` past `u64::MAX`.
fn round_up(x: u64, to: u64) -> Option<u64> {
    x.checked_next_multiple_of(to)
}

/// Reads entries from an image.
#[derive(Debug)]
pub struct ImageReader<R> {
    inner: R,
    desc: &'static ImageDesc,
    offset: u64,
    index: usize,
    /// Ghost file: the first entry said the data comes in chunks.
    ghost_chunks: bool,
    done: bool,
    /// Message types of entry 0 and of later entries, looked up once.
    info_first: Option<&'static MessageInfo>,
    info_rest: Option<&'static MessageInfo>,
    /// A payload buffer handed back by the caller, reused for the next read.
    spare: Option<Vec<u8>>,
}

fn field_u64(msg: &DynamicMessage, name: &str) -> u64 {
    let Some(f) = msg.descriptor().get_field_by_name(name) else {
        return 0;
    };
    match msg.get_field(&f).as_ref() {
        Value::U32(v) => u64::from(*v),
        Value::U64(v) => *v,
        Value::I32(v) => u64::try_from(*v).unwrap_or(0),
        Value::I64(v) => u64::try_from(*v).unwrap_or(0),
        Value::Bool(b) => u64::from(*b),
        _ => 0,
    }
}

impl<R: Read> ImageReader<R> {
    /// Reads the image's magic (and leading magic, if any) and returns a reader
    /// positioned at the first entry.
    pub fn new(inner: R) -> Result<Self> {
        let mut r = ImageReader {
            inner,
            desc: &registry::IMAGES[0],
            offset: 0,
            index: 0,
            ghost_chunks: false,
            done: false,
            info_first: None,
            info_rest: None,
            spare: None,
        };
        let mut magic = r.read_u32("the image magic")?;
        if magic == registry::IMG_COMMON_MAGIC || magic == registry::IMG_SERVICE_MAGIC {
            magic = r.read_u32("the image magic after the common magic")?;
        }
        let desc = registry::by_magic(magic).ok_or(Error::UnknownMagic { magic })?;
        if desc.layout == Layout::NotAnImage {
            return Err(Error::NotAnImage {
                name: desc.name,
                magic,
            });
        }
        r.desc = desc;
        Ok(r)
    }

    /// The kind of image being read.
    pub fn desc(&self) -> &'static ImageDesc {
        self.desc
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn read_bytes(&mut self, len: u64, expected: &'static str) -> Result<Vec<u8>> {
        // small lengths are allocated at once (cheap whatever the file says);
        // larger ones grow only as bytes arrive
        let mut buf;
        if len <= SMALL_READ {
            buf = self.spare.take().unwrap_or_default();
            buf.clear();
            buf.resize(len as usize, 0);
            let got = read_full(&mut self.inner, &mut buf).map_err(|e| self.io_err(expected, e))?;
            buf.truncate(got);
        } else {
            buf = Vec::new();
            (&mut self.inner)
                .take(len)
                .read_to_end(&mut buf)
                .map_err(|e| self.io_err(expected, e))?;
        }
        if buf.len() as u64 != len {
            return Err(Error::Truncated {
                offset: self.offset,
                expected,
                needed: len,
                found: buf.len() as u64,
            });
        }
        self.offset += len;
        Ok(buf)
    }

    fn io_err(&self, expected: &str, e: io::Error) -> Error {
        Error::io(format!("reading {expected} at byte {}", self.offset), e)
    }

    /// Reads a u32, or `None` at a clean end of file.
    fn read_u32_or_eof(&mut self, expected: &'static str) -> Result<Option<u32>> {
        let mut b = [0u8; 4];
        let got = read_full(&mut self.inner, &mut b).map_err(|e| self.io_err(expected, e))?;
        match got {
            0 => Ok(None),
            4 => {
                self.offset += 4;
                Ok(Some(u32::from_ne_bytes(b)))
            }
            n => Err(Error::Truncated {
                offset: self.offset,
                expected,
                needed: 4,
                found: n as u64,
            }),
        }
    }

    fn read_u32(&mut self, expected: &'static str) -> Result<u32> {
        let at = self.offset;
        self.read_u32_or_eof(expected)?.ok_or(Error::Truncated {
            offset: at,
            expected,
            needed: 4,
            found: 0,
        })
    }

    fn message_info(&mut self) -> Option<&'static MessageInfo> {
        let first = self.index == 0;
        let slot = if first {
            &mut self.info_first
        } else {
            &mut self.info_rest
        };
        if slot.is_none() {
            *slot = crate::json::entry_message(self.desc, self.index);
        }
        *slot
    }

    fn read_payload(&mut self, index: usize, at: u64) -> Result<Option<Vec<u8>>> {
        let Some(size) = self.read_u32_or_eof("an entry size")? else {
            return Ok(None);
        };
        let size = u64::from(size);
        if size > MAX_ENTRY {
            return Err(Error::EntryTooLarge {
                index,
                offset: at,
                size,
                limit: MAX_ENTRY,
            });
        }
        self.read_bytes(size, "an entry payload").map(Some)
    }

    /// Hands a payload buffer back (from a [`RawEntry`] that is done with),
    /// so the next small payload is read into it instead of a new one.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        self.spare = Some(buf);
    }

    /// The next entry with its message left in wire form: the fast path
    /// for converting, where building a message would be wasted work.
    pub fn next_raw(&mut self) -> Option<Result<RawEntry>> {
        if self.done {
            return None;
        }
        match self.raw_entry() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    fn raw_entry(&mut self) -> Result<Option<RawEntry>> {
        let index = self.index;
        let at = self.offset;
        let info = self.message_info().ok_or(Error::NotAnImage {
            name: self.desc.name,
            magic: self.desc.magic,
        })?;
        let Some(payload) = self.read_payload(index, at)? else {
            return Ok(None);
        };
        let extra = match self.desc.layout {
            Layout::Entries { extra, .. } => self.read_extra(extra, info, &payload, index, at)?,
            Layout::GhostFile if index == 0 => {
                self.ghost_chunks = wire_u64(info, &payload, "chunks") != 0;
                if self.ghost_chunks {
                    None
                } else {
                    let mut rest = Vec::new();
                    self.inner
                        .read_to_end(&mut rest)
                        .map_err(|e| Error::io("reading ghost file contents", e))?;
                    self.offset += rest.len() as u64;
                    self.done = true;
                    Some(ExtraData::Bytes(rest))
                }
            }
            Layout::GhostFile => {
                let len = wire_u64(info, &payload, "len");
                Some(ExtraData::Bytes(
                    self.read_bytes(len, "ghost file chunk data")?,
                ))
            }
            _ => None,
        };
        self.index += 1;
        Ok(Some(RawEntry {
            index,
            offset: at,
            message: info,
            payload,
            extra,
        }))
    }

    fn read_extra(
        &mut self,
        kind: Extra,
        info: &MessageInfo,
        payload: &[u8],
        index: usize,
        at: u64,
    ) -> Result<Option<ExtraData>> {
        let too_large = |what: &str, len: u64| Error::BadExtra {
            index,
            offset: at,
            detail: format!("{what} {len} is larger than any image"),
        };
        Ok(Some(match kind {
            Extra::None => return Ok(None),
            Extra::PipeData => {
                ExtraData::Bytes(self.read_bytes(wire_u64(info, payload, "bytes"), "pipe data")?)
            }
            Extra::SkQueue => ExtraData::Bytes(
                self.read_bytes(wire_u64(info, payload, "length"), "socket queue data")?,
            ),
            Extra::BpfmapData => {
                let keys = wire_u64(info, payload, "keys_bytes");
                let values = wire_u64(info, payload, "values_bytes");
                let len = keys
                    .checked_add(values)
                    .ok_or_else(|| too_large("bpf map data size", keys))?;
                ExtraData::Bytes(self.read_bytes(len, "bpf map data")?)
            }
            Extra::TcpStream => {
                let inq =
                    self.read_bytes(wire_u64(info, payload, "inq_len"), "tcp receive queue")?;
                let outq =
                    self.read_bytes(wire_u64(info, payload, "outq_len"), "tcp send queue")?;
                ExtraData::Tcp { inq, outq }
            }
            Extra::IpcShm => {
                if wire_u64(info, payload, "in_pagemaps") != 0 {
                    return Ok(None);
                }
                let size = wire_u64(info, payload, "size");
                let padded =
                    round_up(size, 4).ok_or_else(|| too_large("shm segment size", size))?;
                let mut data = self.read_bytes(padded, "shm segment data")?;
                data.truncate(usize::try_from(size).unwrap_or(usize::MAX));
                ExtraData::Bytes(data)
            }
            Extra::IpcSem => {
                let n = wire_u64(info, payload, "nsems");
                let padded = n
                    .checked_mul(2)
                    .and_then(|len| round_up(len, 8))
                    .ok_or_else(|| too_large("semaphore count", n))?;
                let raw = self.read_bytes(padded, "semaphore values")?;
                ExtraData::Sems(
                    raw.chunks_exact(2)
                        .take(usize::try_from(n).unwrap_or(usize::MAX))
                        .map(|c| u16::from_ne_bytes([c[0], c[1]]))
                        .collect(),
                )
            }
            Extra::IpcMsg => {
                let qnum = wire_u64(info, payload, "qnum");
                let msg_info = schema().message("ipc_msg").ok_or_else(|| Error::BadExtra {
                    index,
                    offset: self.offset,
                    detail: "ipc_msg missing from the schema".to_owned(),
                })?;
                let mut msgs = Vec::new();
                for _ in 0..qnum {
                    let at = self.offset;
                    let Some(buf) = self.read_payload(index, at)? else {
                        return Err(Error::Truncated {
                            offset: at,
                            expected: "a queued message",
                            needed: 4,
                            found: 0,
                        });
                    };
                    let m = decode_checked(msg_info, &buf, index, at)?;
                    let msize = wire_u64(msg_info, &buf, "msize");
                    let padded =
                        round_up(msize, 8).ok_or_else(|| too_large("message size", msize))?;
                    let mut text = self.read_bytes(padded, "message text")?;
                    text.truncate(usize::try_from(msize).unwrap_or(usize::MAX));
                    msgs.push((m, text));
                }
                ExtraData::Msgs(msgs)
            }
        }))
    }
}

impl<R: Read> Iterator for ImageReader<R> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_raw().map(|raw| {
            raw.and_then(RawEntry::decode)
                .inspect_err(|_| self.done = true)
        })
    }
}

/// The first required field (by path) that a message lacks, looking into
/// nested messages.
pub fn missing_required(info: &MessageInfo, msg: &DynamicMessage) -> Option<String> {
    for f in &info.fields {
        let present = msg.has_field(&f.desc);
        if f.desc.is_required() && !present {
            return Some(f.desc.name().to_owned());
        }
        if !present {
            continue;
        }
        let Some(sub) = schema().message_of(&f.desc) else {
            continue;
        };
        match msg.get_field(&f.desc).as_ref() {
            Value::Message(m) => {
                if let Some(p) = missing_required(sub, m) {
                    return Some(format!("{}.{p}", f.desc.name()));
                }
            }
            Value::List(items) => {
                for (i, v) in items.iter().enumerate() {
                    if let Value::Message(m) = v {
                        if let Some(p) = missing_required(sub, m) {
                            return Some(format!("{}[{i}].{p}", f.desc.name()));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// Writes an image: its magics, then entries.
#[derive(Debug)]
pub struct ImageWriter<W: Write> {
    inner: W,
    desc: &'static ImageDesc,
    index: usize,
    ghost_chunks: bool,
}

impl<W: Write> ImageWriter<W> {
    /// Writes the leading magic CRIU uses for this kind and the image's magic.
    pub fn new(mut inner: W, desc: &'static ImageDesc) -> Result<Self> {
        let mut head = Vec::with_capacity(8);
        match desc.head {
            Head::None => {}
            Head::Common => head.extend_from_slice(&registry::IMG_COMMON_MAGIC.to_ne_bytes()),
            Head::Service => head.extend_from_slice(&registry::IMG_SERVICE_MAGIC.to_ne_bytes()),
        }
        head.extend_from_slice(&desc.magic.to_ne_bytes());
        inner
            .write_all(&head)
            .map_err(|e| Error::io("writing the image magic", e))?;
        Ok(ImageWriter {
            inner,
            desc,
            index: 0,
            ghost_chunks: false,
        })
    }

    /// The kind of image being written.
    pub fn desc(&self) -> &'static ImageDesc {
        self.desc
    }

    /// Writes one message with its size. Data that follows it (for images
    /// with extras) is written with [`write_raw`](Self::write_raw).
    pub fn write_message<M: prost::Message>(&mut self, msg: &M) -> Result<()> {
        let len = msg.encoded_len();
        let size = u32::try_from(len).map_err(|_| Error::EntryTooLarge {
            index: self.index,
            offset: 0,
            size: len as u64,
            limit: MAX_ENTRY,
        })?;
        let mut buf = Vec::with_capacity(4 + len);
        buf.extend_from_slice(&size.to_ne_bytes());
        msg.encode_raw(&mut buf);
        self.index += 1;
        self.write_raw(&buf)
    }

    /// Writes bytes as they are.
    pub fn write_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.inner
            .write_all(bytes)
            .map_err(|e| Error::io(format!("writing entry {}", self.index.saturating_sub(1)), e))
    }

    /// Writes an entry read by [`ImageReader`] or built from JSON, with its
    /// extra data laid out as the image kind wants.
    pub fn write_entry(&mut self, entry: &Entry) -> Result<()> {
        let index = self.index;
        let bad = |detail: String| Error::BadExtra {
            index,
            offset: 0,
            detail,
        };
        if self.desc.layout == Layout::GhostFile && index == 0 {
            self.ghost_chunks = field_u64(&entry.message, "chunks") != 0;
        }
        self.write_message(&entry.message)?;
        let kind = match self.desc.layout {
            Layout::Entries { extra, .. } => extra,
            Layout::GhostFile if index > 0 || !self.ghost_chunks => Extra::PipeData,
            _ => Extra::None,
        };
        let msg = &entry.message;
        match (kind, &entry.extra) {
            (Extra::None, _) | (_, None) => Ok(()),
            (Extra::IpcShm, Some(ExtraData::Bytes(data))) => {
                let size = field_u64(msg, "size");
                if (data.len() as u64) < size {
                    return Err(bad(format!(
                        "shm data has {} bytes, size says {size}",
                        data.len()
                    )));
                }
                self.write_padded(&data[..size as usize], 4)
            }
            (Extra::TcpStream, Some(ExtraData::Tcp { inq, outq })) => {
                self.write_raw(inq)?;
                self.write_raw(outq)
            }
            (Extra::IpcSem, Some(ExtraData::Sems(values))) => {
                if values.len() as u64 != field_u64(msg, "nsems") {
                    return Err(bad("Number of semaphores mismatch".to_owned()));
                }
                let raw: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
                self.write_padded(&raw, 8)
            }
            (Extra::IpcMsg, Some(ExtraData::Msgs(msgs))) => {
                for (head, text) in msgs {
                    let msize = field_u64(head, "msize");
                    if (text.len() as u64) < msize {
                        return Err(bad(format!(
                            "message text has {} bytes, msize says {msize}",
                            text.len()
                        )));
                    }
                    let mut sized = Vec::new();
                    let len = head.encoded_len() as u32;
                    sized.extend_from_slice(&len.to_ne_bytes());
                    head.encode_raw(&mut sized);
                    self.write_raw(&sized)?;
                    self.write_padded(&text[..msize as usize], 8)?;
                }
                Ok(())
            }
            (_, Some(ExtraData::Bytes(data))) => self.write_raw(data),
            (k, Some(_)) => Err(bad(format!("extra data of the wrong kind for {k:?}"))),
        }
    }

    fn write_padded(&mut self, data: &[u8], to: u64) -> Result<()> {
        self.write_raw(data)?;
        // data.len() % to < to <= 8: the padding fits the zeros below
        let pad = (to - data.len() as u64 % to) % to;
        self.write_raw(&[0u8; 8][..pad as usize])
    }

    /// Flushes and returns the inner writer.
    pub fn finish(mut self) -> Result<W> {
        self.inner
            .flush()
            .map_err(|e| Error::io("flushing the image", e))?;
        Ok(self.inner)
    }
}
