//! Read, write and convert CRIU checkpoint images.
//!
//! CRIU writes a checkpoint as a directory of image files. Most are a magic
//! number followed by size-prefixed protobuf messages, some with raw data
//! after each message. This crate knows every image kind of CRIU 4.2
//! ([`registry`]), reads and writes the container one entry at a time
//! ([`framing`]), and converts entries to and from the JSON that CRIU's python
//! `crit` prints ([`json`]), byte for byte.
//!
//! ```
//! use criu_image::{framing::ImageReader, json::{self, JsonOptions}};
//!
//! // An inventory image: no leading magic, then one entry.
//! let img = criu_image::pb::InventoryEntry { img_version: 2, ..Default::default() };
//! let mut bytes = Vec::new();
//! let mut w = criu_image::ImageWriter::new(&mut bytes, criu_image::registry::by_name("INVENTORY").unwrap())?;
//! w.write_message(&img)?;
//! w.finish()?;
//!
//! let mut out = Vec::new();
//! json::decode(ImageReader::new(bytes.as_slice())?, &mut out, JsonOptions::default())?;
//! assert_eq!(out, br#"{"magic": "INVENTORY", "entries": [{"img_version": 2}]}"#);
//! # Ok::<(), criu_image::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod error;
pub mod framing;
pub mod json;
pub mod pb;
pub mod registry;
pub mod schema;
pub mod text;

pub use error::{Error, Result};
pub use framing::{Entry, ExtraData, ImageReader, ImageWriter, RawEntry};
pub use registry::ImageDesc;
