//! crit's error type: which file of a dump, or which step, went wrong; the
//! image library's error, or the OS error, as its source.
//!
//! Each error prints one line of its own and does not repeat its source:
//! print the chain ([`chain`], or anyhow's `{:#}`) to see all of it.

use std::io;
use std::path::PathBuf;

/// Errors of `info`, `x` and `diff`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error of the image library, in the image the caller names.
    #[error(transparent)]
    Image(#[from] criu_image::Error),
    /// An image of a dump could not be read.
    #[error("{}", path.display())]
    File {
        /// The image.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: criu_image::Error,
    },
    /// A file or directory could not be opened, read, listed or written.
    #[error("{context}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The images of a dump do not fit together.
    #[error("{}: {detail}", path.display())]
    Dump {
        /// The image at fault.
        path: PathBuf,
        /// What does not fit.
        detail: String,
    },
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The error comes from a closed output (a pipe whose reader left).
    pub fn is_broken_pipe(&self) -> bool {
        match self {
            Error::Image(e) | Error::File { source: e, .. } => e.is_broken_pipe(),
            Error::Io { source, .. } => source.kind() == io::ErrorKind::BrokenPipe,
            Error::Dump { .. } => false,
        }
    }
}

/// An error and its sources on one line, `a: b: c`, as anyhow's `{:#}`
/// prints them.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        text.push_str(": ");
        text.push_str(&s.to_string());
        cur = s.source();
    }
    text
}
