//! Read, write and convert CRIU checkpoint images.
//!
//! CRIU writes a checkpoint as a directory of image files. Most are a magic
//! number followed by size-prefixed protobuf messages, some with raw data
//! after each message. This crate knows every image kind of CRIU 4.2
//! ([`registry`]: magic, file name, the message of each entry and what
//! follows it), reads and writes the container one entry at a time
//! ([`framing`]), as typed messages ([`pb`], generated from the schema) or
//! as messages walked by their schema ([`schema`]), and converts entries to
//! and from the JSON that CRIU's python `crit` prints ([`json`]), byte for
//! byte. The bits CRIU packs into fields are in [`flags`].
//!
//! Bad input is an [`Error`] that says where (file offset, entry index,
//! JSON position), never a panic; no allocation is sized by a length read
//! from input before it is checked, and nothing recurses on the depth of
//! its input beyond protobuf's limit of 100 nested messages.
//!
//! Writing an image and reading it back, typed and as JSON:
//!
//! ```
//! use criu_image::json::{self, JsonOptions};
//! use criu_image::{pb, registry, ImageReader, ImageWriter};
//!
//! // an mm image: one entry, an mm_entry with one VMA
//! let vma = pb::VmaEntry {
//!     start: 0x1000,
//!     end: 0x3000,
//!     prot: criu_image::flags::PROT_READ,
//!     flags: criu_image::flags::MAP_PRIVATE | criu_image::flags::MAP_ANONYMOUS,
//!     status: criu_image::flags::VMA_AREA_REGULAR | criu_image::flags::VMA_ANON_PRIVATE,
//!     fd: -1,
//!     ..Default::default()
//! };
//! let mm = pb::MmEntry { exe_file_id: 1, vmas: vec![vma], ..Default::default() };
//! let mut w = ImageWriter::new(Vec::new(), &registry::MM)?;
//! w.write_message(&mm)?;
//! let img = w.finish()?;
//! assert_eq!(registry::MM.file_name(42).as_deref(), Some("mm-42.img"));
//!
//! // typed
//! let mut r = ImageReader::new(img.as_slice())?;
//! assert_eq!(r.desc().name, "MM");
//! let entry = r.next_as::<pb::MmEntry>().transpose()?.expect("one entry");
//! assert_eq!(entry.message, mm);
//!
//! // as python crit's JSON, and back
//! let text = json::decode(ImageReader::new(img.as_slice())?, Vec::new(), JsonOptions { pretty: true, nopl: false })?;
//! let text = String::from_utf8(text).expect("JSON is ASCII");
//! assert!(text.contains(r#""status": "VMA_AREA_REGULAR | VMA_ANON_PRIVATE""#));
//! assert_eq!(json::encode(text.as_bytes(), Vec::new())?, img);
//! # Ok::<(), criu_image::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod error;
pub mod flags;
pub mod framing;
pub mod json;
pub mod pb;
pub mod registry;
pub mod schema;
pub mod text;
mod wire;

pub use error::{Error, Result};
pub use framing::{Entry, ExtraData, ImageReader, ImageWriter, RawEntry, TypedEntry};
pub use registry::ImageDesc;
