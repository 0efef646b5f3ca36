//! `dumper -t PID -D DIR [--leave-running] [-v LEVEL] [-o LOG]`: the
//! `criu dump` flags; the work is done by [`dumper::run`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

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
    /// Images directory (must exist).
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
    dumper::run(&opts)?;
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
