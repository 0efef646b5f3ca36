//! The `crit` tool's library part, over the [`criu_image`] crate (which
//! reads, writes and converts the images): exploring a dump (`crit x`,
//! [`explore`]), counting entries as python crit does (`crit info`,
//! [`info`]) and comparing images and dumps (`crit diff`, [`diff`]). The
//! command line, exit codes, colours and stdout are the binary's
//! (`src/cli.rs`); everything here writes to a writer it is given.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod diff;
pub mod error;
pub mod explore;
pub mod info;

pub use error::{Error, Result};
