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
//! An entry can be had three ways: as a [`RawEntry`] (the message still in
//! wire form: the fast path for converting), as an [`Entry`] (a
//! [`DynamicMessage`], for code that walks any message by its schema), or
//! typed, as the message struct generated in [`crate::pb`]
//! ([`ImageReader::next_as`]).
//!
//! Bounds: no buffer is ever sized from a length read from the file. Payloads
//! and extras are read through `Read::take(len)`, so a lying length costs only
//! the bytes that really exist, and a short read is an [`Error::Truncated`]
//! with the offset where the missing bytes should have been. Lengths are
//! combined with checked arithmetic. End of file on an entry boundary ends
//! the stream; anywhere else it is an error. Memory holds one entry at a
//! time.

use std::io::{self, Read, Write};

use prost::Message as _;
use prost_reflect::{DynamicMessage, ReflectMessage as _, Value};

use crate::error::{Error, Result};
use crate::pb;
use crate::registry::{self, Extra, Head, ImageDesc, Layout};
use crate::schema::{schema, MessageInfo};
use crate::wire::{self, WireError};

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

/// One entry decoded into its generated message type `M` (see
/// [`ImageReader::next_as`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TypedEntry<M> {
    /// Index in the image, from 0.
    pub index: usize,
    /// Byte offset of the entry's size field.
    pub offset: u64,
    /// The decoded message.
    pub message: M,
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
        let at = (self.index, self.offset);
        let message = decode_checked(self.message, &self.payload, at)?;
        Ok(Entry {
            index: self.index,
            offset: self.offset,
            message,
            extra: self.extra,
        })
    }

    /// Decodes the message into `M`, which must be the entry's type,
    /// checking required fields.
    pub fn decode_as<M: prost::Message + prost::Name + Default>(&self) -> Result<M> {
        let name = self.message.desc.full_name();
        if !is_named::<M>(name) {
            return Err(Error::WrongMessage {
                index: self.index,
                offset: self.offset,
                found: name.to_owned(),
                wanted: M::full_name(),
            });
        }
        decode_typed(self.message, &self.payload, (self.index, self.offset))
    }
}

/// `M`'s protobuf name is `full_name`.
fn is_named<M: prost::Name>(full_name: &str) -> bool {
    if M::PACKAGE.is_empty() {
        return full_name == M::NAME;
    }
    full_name
        .strip_prefix(M::PACKAGE)
        .and_then(|n| n.strip_prefix('.'))
        == Some(M::NAME)
}

fn protobuf_error(info: &MessageInfo, (index, offset): (usize, u64), detail: String) -> Error {
    Error::Protobuf {
        index,
        offset,
        message: info.desc.full_name().to_owned(),
        detail,
    }
}

/// Fails if a required field is missing anywhere in the message.
fn check_required(info: &MessageInfo, buf: &[u8], at: (usize, u64)) -> Result<()> {
    match wire::missing_required(info, buf) {
        Ok(None) => Ok(()),
        Ok(Some(path)) => Err(protobuf_error(
            info,
            at,
            format!("required field {path} is missing"),
        )),
        Err(WireError::Invalid(detail)) => Err(protobuf_error(info, at, detail)),
    }
}

fn decode_checked(info: &MessageInfo, buf: &[u8], at: (usize, u64)) -> Result<DynamicMessage> {
    let msg = DynamicMessage::decode(info.desc.clone(), buf)
        .map_err(|e| protobuf_error(info, at, e.to_string()))?;
    check_required(info, buf, at)?;
    Ok(msg)
}

fn decode_typed<M: prost::Message + Default>(
    info: &MessageInfo,
    buf: &[u8],
    at: (usize, u64),
) -> Result<M> {
    let msg = M::decode(buf).map_err(|e| protobuf_error(info, at, e.to_string()))?;
    check_required(info, buf, at)?;
    Ok(msg)
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
    Msgs(Vec<(pb::IpcMsg, Vec<u8>)>),
}

impl ExtraData {
    /// The payload size python crit reports for `--nopl`.
    pub fn payload_len(&self) -> u64 {
        match self {
            ExtraData::Bytes(b) => b.len() as u64,
            ExtraData::Tcp { inq, outq } => (inq.len() as u64).saturating_add(outq.len() as u64),
            ExtraData::Sems(s) => 2 * s.len() as u64,
            ExtraData::Msgs(m) => m
                .iter()
                .map(|(h, t)| (h.encoded_len() + t.len()) as u64)
                .fold(0, u64::saturating_add),
        }
    }
}

/// Reads until `buf` is full or the input ends; returns how much was read.
pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
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
            desc: &registry::INVENTORY,
            offset: 0,
            index: 0,
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
            *slot = schema().entry(self.desc, self.index);
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

    /// The next entry, decoded into its generated message type: entries of
    /// an mm image as [`pb::MmEntry`], the head of a pagemap as
    /// [`pb::PagemapHead`] and its other entries as [`pb::PagemapEntry`].
    /// An entry of another type is an [`Error::WrongMessage`]; a payload
    /// that does not decode, or lacks a required field, an
    /// [`Error::Protobuf`], both with the entry's index and offset.
    ///
    /// ```
    /// use criu_image::{pb, registry, ImageReader, ImageWriter};
    ///
    /// let mut w = ImageWriter::new(Vec::new(), &registry::PSTREE)?;
    /// w.write_message(&pb::PstreeEntry { pid: 7, ppid: 0, pgid: 7, sid: 7, threads: vec![7] })?;
    /// let img = w.finish()?;
    ///
    /// let mut r = ImageReader::new(img.as_slice())?;
    /// let task = r.next_as::<pb::PstreeEntry>().transpose()?.expect("one entry");
    /// assert_eq!((task.index, task.message.pid), (0, 7));
    /// assert!(r.next_as::<pb::PstreeEntry>().is_none());
    /// # Ok::<(), criu_image::Error>(())
    /// ```
    pub fn next_as<M: prost::Message + prost::Name + Default>(
        &mut self,
    ) -> Option<Result<TypedEntry<M>>> {
        let raw = match self.next_raw()? {
            Ok(raw) => raw,
            Err(e) => return Some(Err(e)),
        };
        let res = raw.decode_as::<M>().map(|message| TypedEntry {
            index: raw.index,
            offset: raw.offset,
            message,
            extra: raw.extra,
        });
        self.recycle(raw.payload);
        if res.is_err() {
            self.done = true;
        }
        Some(res)
    }

    /// The entries left, decoded into `M` (see [`ImageReader::next_as`]).
    pub fn entries_as<M: prost::Message + prost::Name + Default>(
        &mut self,
    ) -> impl Iterator<Item = Result<TypedEntry<M>>> + '_ {
        std::iter::from_fn(move || self.next_as::<M>())
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
        let extra = self.read_extra(self.desc.extra(index), info, &payload, (index, at))?;
        self.index += 1;
        Ok(Some(RawEntry {
            index,
            offset: at,
            message: info,
            payload,
            extra,
        }))
    }

    /// Reads the data of kind `kind` that follows entry `at` (index, offset),
    /// whose payload is `payload`.
    fn read_extra(
        &mut self,
        kind: Extra,
        info: &MessageInfo,
        payload: &[u8],
        at: (usize, u64),
    ) -> Result<Option<ExtraData>> {
        let len = |name: &str| wire::uint_field(info, payload, name);
        let too_large = |what: &str, len: u64| Error::BadExtra {
            index: at.0,
            offset: at.1,
            detail: format!("{what} {len} is larger than any image"),
        };
        Ok(Some(match kind {
            Extra::None => return Ok(None),
            Extra::PipeData => ExtraData::Bytes(self.read_bytes(len("bytes"), "pipe data")?),
            Extra::SkQueue => {
                ExtraData::Bytes(self.read_bytes(len("length"), "socket queue data")?)
            }
            Extra::BpfmapData => {
                let (keys, values) = (len("keys_bytes"), len("values_bytes"));
                let total = keys
                    .checked_add(values)
                    .ok_or_else(|| too_large("bpf map data size", keys))?;
                ExtraData::Bytes(self.read_bytes(total, "bpf map data")?)
            }
            Extra::TcpStream => {
                let inq = self.read_bytes(len("inq_len"), "tcp receive queue")?;
                let outq = self.read_bytes(len("outq_len"), "tcp send queue")?;
                ExtraData::Tcp { inq, outq }
            }
            Extra::IpcShm => {
                if len("in_pagemaps") != 0 {
                    return Ok(None);
                }
                let size = len("size");
                let padded =
                    round_up(size, 4).ok_or_else(|| too_large("shm segment size", size))?;
                let mut data = self.read_bytes(padded, "shm segment data")?;
                data.truncate(usize::try_from(size).unwrap_or(usize::MAX));
                ExtraData::Bytes(data)
            }
            Extra::IpcSem => {
                let n = len("nsems");
                let padded = n
                    .checked_mul(2)
                    .and_then(|bytes| round_up(bytes, 8))
                    .ok_or_else(|| too_large("semaphore count", n))?;
                let raw = self.read_bytes(padded, "semaphore values")?;
                ExtraData::Sems(
                    raw.chunks_exact(2)
                        .take(usize::try_from(n).unwrap_or(usize::MAX))
                        .map(|c| u16::from_ne_bytes([c[0], c[1]]))
                        .collect(),
                )
            }
            Extra::IpcMsg => ExtraData::Msgs(self.read_msgs(len("qnum"), at)?),
            Extra::GhostContents => {
                if len("chunks") != 0 {
                    return Ok(None);
                }
                let mut rest = Vec::new();
                self.inner
                    .read_to_end(&mut rest)
                    .map_err(|e| self.io_err("ghost file contents", e))?;
                self.offset += rest.len() as u64;
                self.done = true;
                ExtraData::Bytes(rest)
            }
            Extra::GhostChunk => {
                ExtraData::Bytes(self.read_bytes(len("len"), "ghost file chunk data")?)
            }
        }))
    }

    /// The `qnum` messages of a message queue: each a size, an ipc_msg and
    /// its text padded to 8 bytes.
    fn read_msgs(&mut self, qnum: u64, at: (usize, u64)) -> Result<Vec<(pb::IpcMsg, Vec<u8>)>> {
        let info = schema().message("ipc_msg").ok_or_else(|| Error::BadExtra {
            index: at.0,
            offset: at.1,
            detail: "ipc_msg missing from the schema".to_owned(),
        })?;
        let mut msgs = Vec::new();
        for _ in 0..qnum {
            let here = self.offset;
            let Some(buf) = self.read_payload(at.0, here)? else {
                return Err(Error::Truncated {
                    offset: here,
                    expected: "a queued message",
                    needed: 4,
                    found: 0,
                });
            };
            let head: pb::IpcMsg = decode_typed(info, &buf, (at.0, here))?;
            let msize = u64::from(head.msize);
            // msize is a u32: padding it cannot overflow
            let padded = round_up(msize, 8).unwrap_or(u64::MAX);
            let mut text = self.read_bytes(padded, "message text")?;
            text.truncate(usize::try_from(msize).unwrap_or(usize::MAX));
            msgs.push((head, text));
        }
        Ok(msgs)
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

/// What the fields of an entry say follows it.
enum Follows {
    /// Nothing (why, when that is not the kind's rule).
    Nothing(&'static str),
    /// `len` bytes (at least `len`, unless `exact`), which `fields` give.
    Bytes {
        len: u64,
        exact: bool,
        what: &'static str,
        fields: &'static str,
    },
    /// Any bytes, or none (a ghost file's contents).
    AnyBytes,
    /// TCP queues of these lengths.
    Tcp(u64, u64),
    /// This many semaphore values.
    Sems(u64),
    /// This many queued messages.
    Msgs(u64),
}

/// Whether `extra` is the data that entry `msg`, of an image whose entries
/// carry data of kind `kind`, says follows it (as [`ImageReader`] would
/// read it back).
fn check_extra(kind: Extra, msg: &DynamicMessage, extra: Option<&ExtraData>) -> Result<(), String> {
    let field = |name: &str| field_u64(msg, name);
    let bytes = |len: u64, what, fields| Follows::Bytes {
        len,
        exact: true,
        what,
        fields,
    };
    let follows = match kind {
        Extra::None => Follows::Nothing(""),
        Extra::PipeData => bytes(field("bytes"), "pipe data", "bytes"),
        Extra::SkQueue => bytes(field("length"), "queue data", "length"),
        Extra::GhostChunk => bytes(field("len"), "chunk data", "len"),
        Extra::BpfmapData => match field("keys_bytes").checked_add(field("values_bytes")) {
            Some(len) => bytes(len, "map data", "keys_bytes + values_bytes"),
            None => return Err("keys_bytes + values_bytes overflows".to_owned()),
        },
        Extra::TcpStream => Follows::Tcp(field("inq_len"), field("outq_len")),
        Extra::IpcShm if field("in_pagemaps") != 0 => {
            Follows::Nothing(" (the segment is in_pagemaps)")
        }
        Extra::IpcShm => Follows::Bytes {
            len: field("size"),
            exact: false,
            what: "shm data",
            fields: "size",
        },
        Extra::IpcSem => Follows::Sems(field("nsems")),
        Extra::IpcMsg => Follows::Msgs(field("qnum")),
        Extra::GhostContents => Follows::AnyBytes,
    };
    let disagree = |found: u64, what: &str, fields: &str, said: u64| {
        Err(format!("{found} {what} follow, {fields} says {said}"))
    };
    match (follows, extra) {
        (Follows::Nothing(_), None) | (Follows::AnyBytes, None | Some(ExtraData::Bytes(_))) => {
            Ok(())
        }
        (Follows::Nothing(why), Some(_)) => Err(format!("no data follows this entry{why}")),
        (Follows::Bytes { len: 0, .. }, None) => Ok(()),
        (
            Follows::Bytes {
                len, what, fields, ..
            },
            None,
        ) => disagree(0, &format!("bytes of {what}"), fields, len),
        (
            Follows::Bytes {
                len,
                exact,
                what,
                fields,
            },
            Some(ExtraData::Bytes(data)),
        ) => {
            let n = data.len() as u64;
            if n == len || (!exact && n > len) {
                Ok(())
            } else {
                disagree(n, &format!("bytes of {what}"), fields, len)
            }
        }
        (Follows::Tcp(inq, outq), None) => check_tcp(&[], &[], inq, outq),
        (Follows::Tcp(inq_len, outq_len), Some(ExtraData::Tcp { inq, outq })) => {
            check_tcp(inq, outq, inq_len, outq_len)
        }
        (Follows::Sems(0), None) => Ok(()),
        (Follows::Sems(n), Some(ExtraData::Sems(values))) if values.len() as u64 == n => Ok(()),
        // python crit's words
        (Follows::Sems(_), None | Some(ExtraData::Sems(_))) => {
            Err("Number of semaphores mismatch".to_owned())
        }
        (Follows::Msgs(n), None) => disagree(0, "queued messages", "qnum", n),
        (Follows::Msgs(n), Some(ExtraData::Msgs(msgs))) => {
            if msgs.len() as u64 != n {
                return disagree(msgs.len() as u64, "queued messages", "qnum", n);
            }
            for (head, text) in msgs {
                if (text.len() as u64) < u64::from(head.msize) {
                    let n = text.len() as u64;
                    return disagree(n, "bytes of message text", "msize", head.msize.into());
                }
            }
            Ok(())
        }
        (_, Some(_)) => Err(format!("extra data of the wrong kind for {kind:?}")),
    }
}

fn check_tcp(inq: &[u8], outq: &[u8], inq_len: u64, outq_len: u64) -> Result<(), String> {
    for (data, len, name) in [(inq, inq_len, "inq_len"), (outq, outq_len, "outq_len")] {
        if data.len() as u64 != len {
            return Err(format!(
                "{} bytes of queue follow, {name} says {len}",
                data.len()
            ));
        }
    }
    Ok(())
}

/// Writes an image: its magics, then entries.
#[derive(Debug)]
pub struct ImageWriter<W: Write> {
    inner: W,
    desc: &'static ImageDesc,
    index: usize,
    /// Bytes written so far.
    offset: u64,
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
            offset: head.len() as u64,
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
            offset: self.offset,
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
            .map_err(|e| Error::io(format!("writing entry {}", self.index.saturating_sub(1)), e))?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Writes an entry read by [`ImageReader`] or built from JSON, with its
    /// extra data laid out as the image kind wants. Data that disagrees
    /// with the lengths and counts the message gives is refused: the image
    /// would not read back.
    pub fn write_entry(&mut self, entry: &Entry) -> Result<()> {
        let kind = self.desc.extra(self.index);
        let msg = &entry.message;
        if let Err(detail) = check_extra(kind, msg, entry.extra.as_ref()) {
            return Err(Error::BadExtra {
                index: self.index,
                offset: self.offset,
                detail,
            });
        }
        self.write_message(msg)?;
        match &entry.extra {
            None => Ok(()),
            Some(ExtraData::Bytes(data)) => match kind {
                Extra::GhostContents if field_u64(msg, "chunks") != 0 => Ok(()),
                // check_extra made sure there are `size` bytes
                Extra::IpcShm => {
                    let size = usize::try_from(field_u64(msg, "size")).unwrap_or(usize::MAX);
                    self.write_padded(data.get(..size).unwrap_or(data), 4)
                }
                _ => self.write_raw(data),
            },
            Some(ExtraData::Tcp { inq, outq }) => {
                self.write_raw(inq)?;
                self.write_raw(outq)
            }
            Some(ExtraData::Sems(values)) => {
                let raw: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
                self.write_padded(&raw, 8)
            }
            Some(ExtraData::Msgs(msgs)) => {
                for (head, text) in msgs {
                    let mut sized = Vec::new();
                    let len = head.encoded_len() as u32;
                    sized.extend_from_slice(&len.to_ne_bytes());
                    head.encode_raw(&mut sized);
                    self.write_raw(&sized)?;
                    // check_extra made sure there are `msize` bytes
                    let text = text.get(..head.msize as usize).unwrap_or(text);
                    self.write_padded(text, 8)?;
                }
                Ok(())
            }
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
