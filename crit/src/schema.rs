//! The CRIU image schema as crit sees it at run time.
//!
//! The descriptor set compiled by `build.rs` is loaded once. Two changes are
//! made before the pool is built: every `string` field becomes `bytes` (file
//! names are bytes on Linux, and the wire form of both types is the same), and
//! every field's `(criu)` options are read into a [`FieldFmt`]. Nothing else in
//! the crate reads descriptor options.

use std::collections::HashMap;
use std::sync::LazyLock;

use prost::Message as _;
use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor, Value};
use prost_types::field_descriptor_proto::Type;

static DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/criu.bin"));

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
    /// The name as a JSON key, quoted and escaped.
    pub json_key: Vec<u8>,
    /// The field's type (cached from the descriptor).
    pub kind: Kind,
    /// The field is repeated.
    pub list: bool,
    /// For message fields: the index of the message's info in the schema.
    pub sub: Option<usize>,
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
        // Options first, from a pool that keeps them.
        let with_opts = DescriptorPool::decode(DESCRIPTOR_SET)
            .expect("descriptor set built by build.rs is valid");
        let mut fmts: HashMap<String, FieldFmt> = HashMap::new();
        if let Some(ext) = with_opts.get_extension_by_name("criu") {
            for desc in with_opts.all_messages() {
                for field in desc.fields() {
                    let opts = field.options();
                    if opts.has_extension(&ext) {
                        if let Value::Message(m) = opts.get_extension(&ext).as_ref() {
                            let mut fmt = FieldFmt::default();
                            read_opts(m, &mut fmt);
                            fmts.insert(field.full_name().to_owned(), fmt);
                        }
                    }
                }
            }
        }
        // Then the pool crit decodes with: strings turned into bytes.
        let mut fds = prost_types::FileDescriptorSet::decode(DESCRIPTOR_SET)
            .expect("descriptor set built by build.rs decodes");
        let mut text = std::collections::HashSet::new();
        for file in &mut fds.file {
            let prefix = match file.package() {
                "" => String::new(),
                p => format!("{p}."),
            };
            for msg in &mut file.message_type {
                mark_strings(&prefix, msg, &mut text);
            }
        }
        let pool = DescriptorPool::from_file_descriptor_set(fds)
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
                let mut fmt = fmts.remove(field.full_name()).unwrap_or_default();
                fmt.text = text.contains(field.full_name());
                by_number[field.number() as usize] = fields.len() as u32;
                let kind = field.kind();
                let sub = match &kind {
                    Kind::Message(m) => index.get(m.full_name()).copied(),
                    _ => None,
                };
                let mut json_key = Vec::new();
                crate::json::out::Out::new(&mut json_key, false, 0).str(field.name().as_bytes());
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

fn mark_strings(
    prefix: &str,
    msg: &mut prost_types::DescriptorProto,
    out: &mut std::collections::HashSet<String>,
) {
    let name = format!("{prefix}{}", msg.name());
    for f in &mut msg.field {
        if f.r#type() == Type::String {
            f.set_type(Type::Bytes);
            out.insert(format!("{name}.{}", f.name()));
        }
    }
    let nested = format!("{name}.");
    for m in &mut msg.nested_type {
        mark_strings(&nested, m, out);
    }
}

fn read_opts(m: &prost_reflect::DynamicMessage, fmt: &mut FieldFmt) {
    let (mut dev, mut odev) = (false, false);
    for (f, v) in m.fields() {
        match (f.name(), v) {
            ("hex", Value::Bool(b)) => fmt.hex = *b,
            ("ipadd", Value::Bool(b)) => fmt.ipadd = *b,
            ("dev", Value::Bool(b)) => dev = *b,
            ("odev", Value::Bool(b)) => odev = *b,
            ("flags", Value::String(s)) if !s.is_empty() => fmt.flags = Some(s.clone()),
            ("dict", Value::String(s)) if !s.is_empty() => fmt.dict = Some(s.clone()),
            ("conv", Value::String(s)) if !s.is_empty() => fmt.conv = Some(s.clone()),
            _ => {}
        }
    }
    // python crit looks at odev only for fields marked dev
    fmt.dev = match (dev, odev) {
        (true, true) => Some(DevFmt::Old),
        (true, false) => Some(DevFmt::Kernel),
        _ => None,
    };
}
