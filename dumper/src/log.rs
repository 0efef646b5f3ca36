//! A small leveled log, like CRIU's `-v N -o FILE`: to the log file when
//! one is given, else to stderr.

use std::fmt::Arguments;
use std::fs::File;
use std::io::Write;
use std::sync::Mutex;

use crate::error::{DumpError, Result};
use crate::Opts;

/// Where log lines go and which ones are kept.
#[derive(Debug)]
pub struct Log {
    level: u8,
    file: Option<Mutex<File>>,
}

impl Log {
    /// Opens the log for `opts` (a relative `-o` path is inside `-D`).
    pub fn open(opts: &Opts) -> Result<Self> {
        let file = match &opts.log_file {
            Some(p) => {
                let p = if p.is_relative() {
                    opts.dir.join(p)
                } else {
                    p.clone()
                };
                let f = File::create(&p).map_err(|source| DumpError::Write { path: p, source })?;
                Some(Mutex::new(f))
            }
            None => None,
        };
        Ok(Self {
            level: opts.verbosity,
            file,
        })
    }

    fn line(&self, lvl: u8, tag: &str, args: Arguments<'_>) {
        // A log file gets everything up to -v; stderr only up to warnings
        // unless asked for more.
        if lvl > self.level.max(u8::from(self.file.is_some())) {
            return;
        }
        match &self.file {
            Some(f) => {
                if let Ok(mut f) = f.lock() {
                    let _ = writeln!(f, "({tag}) {args}");
                }
            }
            None => eprintln!("dumper: {tag}: {args}"),
        }
    }

    /// An error.
    pub fn error(&self, args: Arguments<'_>) {
        self.line(1, "Error", args);
    }

    /// The error that ended a dump: into the log file only, since the
    /// caller reports the error it gets back (the binary prints it once).
    pub fn failure(&self, args: Arguments<'_>) {
        if let Some(f) = &self.file {
            if let Ok(mut f) = f.lock() {
                let _ = writeln!(f, "(Error) {args}");
            }
        }
    }

    /// A warning.
    pub fn warn(&self, args: Arguments<'_>) {
        self.line(2, "Warn", args);
    }

    /// Progress information.
    pub fn info(&self, args: Arguments<'_>) {
        self.line(3, "Info", args);
    }
}
