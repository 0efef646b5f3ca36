//! `dumper -t PID -D DIR [--leave-running] [-v LEVEL] [-o LOG]`: the
//! `criu dump` flags; the work is done by [`dumper::run`]. This file turns
//! arguments into [`dumper::Opts`], shows the progress line on a terminal
//! and prints the error, once, on one line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use dumper::Progress;

/// Checkpoint a running process (all its threads) into CRIU 4.2 images.
#[derive(Parser, Debug)]
#[command(name = "dumper", version, about)]
struct Args {
    /// `dump` is accepted (and ignored) for `criu dump` compatibility.
    #[arg(hide = true, value_parser = ["dump"])]
    action: Option<String>,
    /// Pid of the process to dump.
    #[arg(short = 't', long = "tree", value_name = "PID")]
    pid: i32,
    /// Images directory (must exist; an older dump in it is replaced).
    #[arg(short = 'D', long = "images-dir", value_name = "DIR")]
    dir: PathBuf,
    /// Leave the process running after the dump (default: kill it, as criu does).
    #[arg(long)]
    leave_running: bool,
    /// Log level: 0 none, 1 errors, 2 warnings, 3 info, 4 debug (`-v` alone: 4).
    #[arg(short = 'v', value_name = "LEVEL", num_args = 0..=1, default_missing_value = "4", default_value = "2")]
    verbosity: u8,
    /// Log file (relative paths are inside the images directory).
    #[arg(short = 'o', long = "log-file", value_name = "LOG")]
    log_file: Option<PathBuf>,
}

/// `DUMPER_FAULT`: where the tests of the failure paths make a dump fail.
/// A value that names no fault is an error, not a dump made without it.
#[cfg(feature = "fault-injection")]
fn fault_from_env() -> anyhow::Result<Option<dumper::Fault>> {
    match std::env::var("DUMPER_FAULT") {
        Ok(v) => v
            .parse()
            .map(Some)
            .map_err(|e| anyhow::anyhow!("DUMPER_FAULT: {e}")),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(e) => Err(anyhow::anyhow!("DUMPER_FAULT: {e}")),
    }
}

/// The "N of M MiB of memory written" line, on a terminal, for dumps of
/// 64 MiB or more, redrawn every 16 MiB.
struct ProgressLine {
    on: bool,
    shown: Option<u64>,
}

impl ProgressLine {
    const MIN_PAGES: u64 = 16384;
    const EVERY_PAGES: u64 = 4096;

    fn show(&mut self, p: Progress) {
        let Progress::Pages { written, total } = p else {
            return;
        };
        if !self.on || total < Self::MIN_PAGES {
            return;
        }
        let step = written / Self::EVERY_PAGES;
        if self.shown.is_some_and(|s| s / Self::EVERY_PAGES == step) && written != total {
            return;
        }
        self.shown = Some(written);
        eprint!(
            "\rdumper: {} of {} MiB of memory written",
            written / 256,
            total / 256
        );
    }

    fn end(&mut self) {
        if self.shown.take().is_some() {
            eprintln!();
        }
    }
}

fn dump(a: Args) -> anyhow::Result<()> {
    let opts = dumper::Opts {
        pid: a.pid,
        dir: a.dir,
        leave_running: a.leave_running,
        verbosity: a.verbosity,
        log_file: a.log_file,
        #[cfg(feature = "fault-injection")]
        fault: fault_from_env()?,
    };
    let mut line = ProgressLine {
        on: std::io::stderr().is_terminal(),
        shown: None,
    };
    let res = dumper::run(&opts, Some(&mut |p| line.show(p)));
    line.end();
    res?;
    Ok(())
}

fn main() -> ExitCode {
    match dump(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dumper: {e:#}");
            ExitCode::FAILURE
        }
    }
}
