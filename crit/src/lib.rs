//! The `crit` tool's library part: dump exploration (`x`), `info` and `diff`
//! over the [`criu_image`] crate, which reads and writes the images.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod diff;
pub mod explore;
pub mod info;

pub use criu_image::{error, framing, json, pb, registry, schema, text};
pub use criu_image::{
    Entry, Error, ExtraData, ImageDesc, ImageReader, ImageWriter, RawEntry, Result,
};
