//! Compiles the CRIU image schema in `../proto` without protoc.
//!
//! Outputs in OUT_DIR:
//! - `_.rs`: prost's typed messages, for programs (the dumper) that build
//!   images in code;
//! - `criu-bytes.bin`: the encoded FileDescriptorSet crit decodes with, where
//!   every `string` field is turned into `bytes` (file names are bytes on
//!   Linux; the wire form is the same);
//! - `field_fmts.rs`: each field's `(criu)` options and whether it was a
//!   string, read here once so that start-up does not decode options.

use std::fmt::Write as _;
use std::path::PathBuf;

use prost::Message as _;
use prost_reflect::{Kind, Value};
use prost_types::field_descriptor_proto::Type;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_dir = manifest.join("..").join("proto");
    println!("cargo:rerun-if-changed={}", proto_dir.display());

    let mut files: Vec<PathBuf> = std::fs::read_dir(&proto_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .collect();
    files.sort();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let names: Vec<PathBuf> = files
        .iter()
        .filter_map(|f| f.file_name().map(PathBuf::from))
        .collect();

    let mut compiler = protox::Compiler::new([&proto_dir])?;
    compiler.include_imports(true);
    compiler.open_files(&names)?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);

    // Field formats, from the pool that keeps custom options.
    let pool = compiler.descriptor_pool();
    let ext = pool
        .get_extension_by_name("criu")
        .ok_or("proto/opts.proto must define the criu extension")?;
    let mut table = String::from(
        "/// Fields with a `(criu)` option or declared `string`, by full name.\n\
         pub(crate) static FIELD_FMTS: &[(&str, RawFmt)] = &[\n",
    );
    for msg in pool.all_messages() {
        for field in msg.fields() {
            let text = matches!(field.kind(), Kind::String);
            let opts = field.options();
            let mut o = RawOpts::default();
            if opts.has_extension(&ext) {
                if let Value::Message(m) = opts.get_extension(&ext).as_ref() {
                    for (f, v) in m.fields() {
                        match (f.name(), v) {
                            ("hex", Value::Bool(b)) => o.hex = *b,
                            ("ipadd", Value::Bool(b)) => o.ipadd = *b,
                            ("dev", Value::Bool(b)) => o.dev = *b,
                            ("odev", Value::Bool(b)) => o.odev = *b,
                            ("flags", Value::String(s)) => o.flags = s.clone(),
                            ("dict", Value::String(s)) => o.dict = s.clone(),
                            ("conv", Value::String(s)) => o.conv = s.clone(),
                            _ => {}
                        }
                    }
                }
            }
            if !text && o == RawOpts::default() {
                continue;
            }
            writeln!(
                table,
                "    ({:?}, RawFmt {{ text: {text}, hex: {}, ipadd: {}, dev: {}, odev: {}, flags: {:?}, dict: {:?}, conv: {:?} }}),",
                field.full_name(),
                o.hex,
                o.ipadd,
                o.dev,
                o.odev,
                o.flags,
                o.dict,
                o.conv
            )?;
        }
    }
    table.push_str("];\n");
    std::fs::write(out.join("field_fmts.rs"), table)?;

    // The set crit decodes with: strings as bytes.
    let fds = compiler.file_descriptor_set();
    let mut bytes_fds = fds.clone();
    for file in &mut bytes_fds.file {
        for msg in &mut file.message_type {
            strings_to_bytes(msg);
        }
    }
    std::fs::write(out.join("criu-bytes.bin"), bytes_fds.encode_to_vec())?;

    let mut cfg = prost_build::Config::new();
    cfg.out_dir(&out);
    // `prost::Name` for every message: typed reads check the entry's type
    cfg.enable_type_names();
    cfg.compile_fds(bytes_fds)?;
    Ok(())
}

#[derive(Default, PartialEq)]
struct RawOpts {
    hex: bool,
    ipadd: bool,
    dev: bool,
    odev: bool,
    flags: String,
    dict: String,
    conv: String,
}

fn strings_to_bytes(msg: &mut prost_types::DescriptorProto) {
    for f in &mut msg.field {
        if f.r#type() == Type::String {
            f.set_type(Type::Bytes);
        }
    }
    for m in &mut msg.nested_type {
        strings_to_bytes(m);
    }
}
