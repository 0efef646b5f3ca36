//! The crate's error type. Every variant says where the problem is: a byte
//! offset in the image, an entry index, a JSON position or field path.
//!
//! Each error prints one line of its own. The one that wraps an I/O error
//! ([`Error::Io`]) does not repeat it: the I/O error is its
//! [`source`](std::error::Error::source), so print the chain (anyhow's
//! `{:#}` does) to see both.

use std::io;

/// Errors from reading, writing and converting images.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error while reading or writing.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file ended where more bytes were expected.
    #[error("truncated at byte {offset}: expected {expected}, found {found} of {needed} bytes")]
    Truncated {
        /// Byte offset where the missing part starts.
        offset: u64,
        /// What was being read.
        expected: &'static str,
        /// Bytes needed.
        needed: u64,
        /// Bytes that were there.
        found: u64,
    },
    /// The image starts with a magic crit does not know.
    #[error("Unknown magic {magic:#x}.\nMaybe you are feeding me an image with raw data(i.e. pages.img)?")]
    UnknownMagic {
        /// The magic read.
        magic: u32,
    },
    /// A known magic that names no protobuf image (e.g. the kerndat cache).
    #[error("magic {name} ({magic:#x}) does not name an image crit can read")]
    NotAnImage {
        /// The JSON name of the magic.
        name: &'static str,
        /// The magic.
        magic: u32,
    },
    /// An entry's size field is larger than any entry CRIU writes.
    #[error(
        "entry {index} at byte {offset}: size {size} is larger than the limit of {limit} bytes"
    )]
    EntryTooLarge {
        /// Entry index.
        index: usize,
        /// Byte offset of the size field.
        offset: u64,
        /// The size read.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The payload of an entry is not a valid protobuf message of its type.
    #[error("entry {index} at byte {offset}: cannot decode {message}: {detail}")]
    Protobuf {
        /// Entry index.
        index: usize,
        /// Byte offset of the entry's size field.
        offset: u64,
        /// The message type.
        message: String,
        /// What is wrong.
        detail: String,
    },
    /// A typed read asked for another message than the entry holds.
    #[error("entry {index} at byte {offset} is a {found}, not a {wanted}")]
    WrongMessage {
        /// Entry index.
        index: usize,
        /// Byte offset of the entry's size field.
        offset: u64,
        /// The entry's message type.
        found: String,
        /// The type asked for.
        wanted: String,
    },
    /// The data after an entry does not fit what the entry says.
    #[error("entry {index} at byte {offset}: {detail}")]
    BadExtra {
        /// Entry index.
        index: usize,
        /// Byte offset.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// The JSON text is not valid JSON.
    #[error("JSON syntax error at line {line}, column {column} (byte {offset}): {detail}")]
    JsonSyntax {
        /// Byte offset in the input.
        offset: u64,
        /// 1-based line.
        line: u64,
        /// 1-based column (in bytes).
        column: u64,
        /// What was expected.
        detail: String,
    },
    /// The JSON is valid but does not describe an image.
    #[error("{}{path}: {detail}", entry.map(|i| format!("entry {i}: ")).unwrap_or_default())]
    JsonShape {
        /// The entry index, when inside `entries`.
        entry: Option<usize>,
        /// Where in the entry, e.g. `vmas[3].prot`.
        path: String,
        /// What was expected.
        detail: String,
    },
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Io`] saying what was being done.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The error comes from a closed output (a pipe whose reader left).
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
    }
}
