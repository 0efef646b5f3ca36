//! The CRIU image schema as crit sees it at run time.
//!
//! `build.rs` compiles `proto/` into a descriptor set where every `string`
//! field is `bytes` (file names are bytes on Linux, and the wire form of both
//! types is the same), and reads every field's `(criu)` options into a table.
//! Both are loaded once, here, into [`MessageInfo`]s whose fields carry a
//! [`FieldFmt`]; nothing else in the crate looks at descriptor options.

use std::collections::HashMap;
use std::sync::LazyLock;

use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};

use crate::registry::ImageDesc;

static DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/criu-bytes.bin"));

/// A field's options as build.rs found them.
#[derive(Debug)]
pub(crate) struct RawFmt {
    text: bool,
    hex: bool,
    ipadd: bool,
    dev: bool,
    odev: bool,
    flags: &'static str,
    dict: &'static str,
    conv: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/field_fmts.rs"));

impl RawFmt {
    fn fmt(&self) -> FieldFmt {
        let name = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        FieldFmt {
            text: self.text,
            hex: self.hex,
            ipadd: self.ipadd,
            // python crit looks at odev only for fields marked dev
            dev: match (self.dev, self.odev) {
                (true, true) => Some(DevFmt::Old),
                (true, false) => Some(DevFmt::Kernel),
                _ => None,
            },
            flags: name(self.flags),
            dict: name(self.dict),
            conv: name(self.conv),
        }
    }
}

/// How a field is shown in JSON, from its type and its `(criu)` options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldFmt {
    /// The field was declared `string` (its value is kept as bytes).
    pub text: bool,
    /// `(criu).hex`: pretty output prints "0x..."; nested messages inherit it.
    pub hex: bool,
    /// `(criu).ipadd`: a repeated u32 holding one IPv4 or IPv6 address.
    pub ipadd: bool,
    /// `(criu).dev` or `(criu).odev`.
    pub dev: Option<DevFmt>,
    /// `(criu).flags`: the flag table's name.
    pub flags: Option<String>,
    /// `(criu).dict`: the table's name.
    pub dict: Option<String>,
    /// `(criu).conv`: a named conversion for bytes.
    pub conv: Option<String>,
}

/// The two encodings of a device number crit knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevFmt {
    /// The kernel's: major << 20 | minor.
    Kernel,
    /// glibc's `makedev`, as the old images stored it.
    Old,
}

/// One field of a message, with what the JSON conversion needs.
#[derive(Debug, Clone)]
pub struct FieldInfo {
    /// The field's descriptor (in the string-as-bytes pool).
    pub desc: FieldDescriptor,
    /// How to show it.
    pub fmt: FieldFmt,
    /// The field's name (cached from the descriptor).
    pub name: String,
    /// The name as a JSON key, quoted (protobuf names are identifiers:
    /// nothing to escape).
    pub(crate) json_key: Vec<u8>,
    /// The field's type (cached from the descriptor).
    pub kind: Kind,
    /// The field is repeated.
    pub list: bool,
    /// For message fields: the index of the message's info in the schema
    /// ([`Schema::sub`]).
    pub(crate) sub: Option<usize>,
}

/// A message's fields, in declaration order and by number.
#[derive(Debug)]
pub struct MessageInfo {
    /// The message descriptor.
    pub desc: MessageDescriptor,
    /// Fields in declaration order (the order python crit's encoder walks).
    pub fields: Vec<FieldInfo>,
    by_number: Vec<u32>,
    required: Vec<u32>,
}

impl MessageInfo {
    /// The field with this number.
    pub fn field(&self, number: u32) -> Option<&FieldInfo> {
        let i = *self.by_number.get(usize::try_from(number).ok()?)?;
        self.fields.get(usize::try_from(i).ok()?)
    }

    /// Numbers of the required fields, ascending.
    pub fn required(&self) -> &[u32] {
        &self.required
    }
}

/// The loaded schema: a descriptor pool plus per-field formats.
#[derive(Debug)]
pub struct Schema {
    pool: DescriptorPool,
    messages: Vec<MessageInfo>,
    by_name: HashMap<String, usize>,
}

static SCHEMA: LazyLock<Schema> = LazyLock::new(Schema::load);

/// The schema compiled into this crate.
pub fn schema() -> &'static Schema {
    &SCHEMA
}

impl Schema {
    #[allow(clippy::expect_used)] // the descriptor set is built by build.rs; a failure is a build bug
    fn load() -> Schema {
        let fmts: HashMap<&str, &RawFmt> = FIELD_FMTS.iter().map(|(n, f)| (*n, f)).collect();
        let pool = DescriptorPool::decode(DESCRIPTOR_SET)
            .expect("descriptor set built by build.rs is valid");
        let index: HashMap<String, usize> = pool
            .all_messages()
            .enumerate()
            .map(|(i, m)| (m.full_name().to_owned(), i))
            .collect();
        let mut messages = Vec::new();
        for desc in pool.all_messages() {
            let mut fields = Vec::new();
            let max = desc.fields().map(|f| f.number()).max().unwrap_or(0);
            // field numbers in CRIU's schema are small: index them directly
            let mut by_number = vec![u32::MAX; max as usize + 1];
            for field in desc.fields() {
                let fmt = fmts
                    .get(field.full_name())
                    .map(|f| f.fmt())
                    .unwrap_or_default();
                by_number[field.number() as usize] = fields.len() as u32;
                let kind = field.kind();
                let sub = match &kind {
                    Kind::Message(m) => index.get(m.full_name()).copied(),
                    _ => None,
                };
                let json_key = format!("\"{}\"", field.name()).into_bytes();
                fields.push(FieldInfo {
                    json_key,
                    name: field.name().to_owned(),
                    list: field.is_list(),
                    kind,
                    sub,
                    desc: field,
                    fmt,
                });
            }
            let mut required: Vec<u32> = fields
                .iter()
                .filter(|f| f.desc.is_required())
                .map(|f| f.desc.number())
                .collect();
            required.sort_unstable();
            messages.push(MessageInfo {
                desc,
                fields,
                by_number,
                required,
            });
        }
        Schema {
            pool,
            messages,
            by_name: index,
        }
    }

    /// The descriptor pool (strings appear as bytes).
    pub fn pool(&self) -> &DescriptorPool {
        &self.pool
    }

    /// A message by its full name, e.g. `mm_entry`.
    pub fn message(&self, name: &str) -> Option<&MessageInfo> {
        self.by_name.get(name).and_then(|&i| self.messages.get(i))
    }

    /// The message type of entry `index` of an image of kind `desc` (see
    /// [`ImageDesc::message`]).
    pub fn entry(&self, desc: &ImageDesc, index: usize) -> Option<&MessageInfo> {
        desc.message(index).and_then(|name| self.message(name))
    }

    /// The info of a field's message type.
    pub fn sub(&self, field: &FieldInfo) -> Option<&MessageInfo> {
        field.sub.and_then(|i| self.messages.get(i))
    }

    /// The info of a message field's type, for a field of kind message.
    pub fn message_of(&self, field: &FieldDescriptor) -> Option<&MessageInfo> {
        match field.kind() {
            Kind::Message(m) => self.message(m.full_name()),
            _ => None,
        }
    }
}
