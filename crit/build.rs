//! Compiles the CRIU image schema in `../proto` without protoc.
//!
//! Two outputs go to OUT_DIR: `criu.bin`, the encoded FileDescriptorSet that
//! the JSON conversion reads field options from, and `_.rs`, prost's typed
//! messages for programs (the dumper) that build images in code.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_dir = std::env::var_os("CRIT_PROTO_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("..").join("proto"));
    println!("cargo:rerun-if-env-changed=CRIT_PROTO_DIR");
    println!("cargo:rerun-if-changed={}", proto_dir.display());

    let mut files: Vec<PathBuf> = std::fs::read_dir(&proto_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .filter(|p| !p.ends_with("rpc.proto"))
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
    // the encoded set keeps the custom (criu) field options; prost's typed
    // FileDescriptorSet would drop them
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("criu.bin"), compiler.encode_file_descriptor_set())?;
    let fds = compiler.file_descriptor_set();

    let mut cfg = prost_build::Config::new();
    cfg.out_dir(&out);
    cfg.compile_fds(fds)?;
    Ok(())
}
