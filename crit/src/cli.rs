//! Command-line parsing and one small function per subcommand. Flags,
//! defaults and messages follow CRIU 4.2's python crit.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, IsTerminal as _, Read, Write};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use criu_image::json::{self, JsonOptions};
use criu_image::ImageReader;

use crit::diff::{self, JsonOut, Text};
use crit::explore::{self, View};

#[derive(Parser, Debug)]
#[command(name = "crit", about = "CRiu Image Tool", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// convert criu image from binary type to json
    Decode {
        /// Multiline with indents and some numerical fields in field-specific format
        #[arg(long)]
        pretty: bool,
        /// criu image in binary format to be decoded (stdin by default)
        #[arg(short = 'i', long = "in")]
        input: Option<PathBuf>,
        /// where to put criu image in json format (stdout by default)
        #[arg(short = 'o', long = "out")]
        output: Option<PathBuf>,
    },
    /// convert criu image from json type to binary
    Encode {
        /// criu image in json format to be encoded (stdin by default)
        #[arg(short = 'i', long = "in")]
        input: Option<PathBuf>,
        /// where to put criu image in binary format (stdout by default)
        #[arg(short = 'o', long = "out")]
        output: Option<PathBuf>,
    },
    /// show info about image
    Info {
        #[arg(value_name = "in")]
        input: PathBuf,
    },
    /// explore image dir
    X {
        dir: PathBuf,
        #[arg(value_parser = ["ps", "fds", "mems", "rss"])]
        what: String,
    },
    /// compare two images or two dump directories (exit status: 0 same, 1 different, 2 trouble)
    Diff {
        /// an image file or a dump directory
        a: PathBuf,
        /// the image or directory to compare it with
        b: PathBuf,
        /// write the differences as JSON
        #[arg(long)]
        json: bool,
        /// hide differences matching PATTERN: "FILE PATH" or one word, with * and ? (repeatable)
        #[arg(long, value_name = "PATTERN")]
        ignore: Vec<String>,
        /// hide what always changes between two dumps of one program (registers, timer remainders, kernel object ids, dump statistics)
        #[arg(long)]
        same_program: bool,
        /// color the text output
        #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
        color: String,
    },
    /// convert criu image from binary to human-readable json
    Show {
        #[arg(value_name = "in")]
        input: PathBuf,
        /// do not show entry payload (if exists)
        #[arg(long)]
        nopl: bool,
    },
}

/// Runs crit and returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                // python crit: no subcommand is "too few arguments", exit 1
                clap::error::ErrorKind::MissingSubcommand
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 1,
                _ => 2,
            };
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => exit_code(&e),
    }
}

/// One place maps errors to exit codes: a closed stdout is not an error.
fn exit_code(e: &anyhow::Error) -> i32 {
    let broken_pipe = e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return 0;
    }
    eprintln!("crit: {e:#}");
    1
}

/// Runs a subcommand; the exit code is 0 except for diff, which exits
/// like diff(1).
fn run(cli: Cli) -> Result<i32> {
    match cli.cmd {
        Cmd::Decode {
            pretty,
            input,
            output,
        } => decode(
            input.as_deref(),
            output.as_deref(),
            JsonOptions {
                pretty,
                nopl: false,
            },
        )
        .map(|()| 0),
        Cmd::Show { input, nopl } => {
            decode(Some(&input), None, JsonOptions { pretty: true, nopl }).map(|()| 0)
        }
        Cmd::Encode { input, output } => encode(input.as_deref(), output.as_deref()).map(|()| 0),
        Cmd::Info { input } => info(&input).map(|()| 0),
        Cmd::Diff {
            a,
            b,
            json,
            ignore,
            same_program,
            color,
        } => {
            let opts = diff::Options {
                ignore,
                same_program,
            };
            Ok(diff_main(&a, &b, &opts, json, &color))
        }
        Cmd::X { dir, what } => {
            let view: View = what.parse().map_err(anyhow::Error::msg)?;
            let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
            explore::explore(&dir, view, &mut out)
                .with_context(|| format!("exploring {}", dir.display()))?;
            out.flush()?;
            Ok(0)
        }
    }
}

fn name(p: Option<&Path>) -> String {
    p.map_or_else(|| "<stdin>".to_owned(), |p| p.display().to_string())
}

fn open_in(input: Option<&Path>) -> Result<Box<dyn Read>> {
    Ok(match input {
        Some(p) => Box::new(File::open(p).with_context(|| format!("opening {}", p.display()))?),
        None => Box::new(io::stdin().lock()),
    })
}

/// Writes through `f` into `out`, or to stdout. A failed conversion never
/// leaves a half-written file or clobbers an existing one: a new file is
/// removed on failure, and an existing one is replaced by a complete file
/// written beside it. Files are created 0600 (images hold memory).
fn with_output(
    out: Option<&Path>,
    newline: bool,
    f: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let Some(path) = out else {
        let stdout = io::stdout();
        let mut w = BufWriter::with_capacity(1 << 16, stdout.lock());
        f(&mut w)?;
        if newline {
            w.write_all(b"\n")?;
        }
        w.flush()?;
        return Ok(());
    };
    let is_regular_or_new = std::fs::metadata(path).map(|m| m.is_file()).unwrap_or(true);
    if !is_regular_or_new {
        let mut w = BufWriter::new(
            File::create(path).with_context(|| format!("opening {}", path.display()))?,
        );
        f(&mut w)?;
        w.flush()?;
        return Ok(());
    }
    // A new file is written in place and removed again if anything fails.
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => {
            let mut w = BufWriter::with_capacity(1 << 16, file);
            let res = f(&mut w).and_then(|()| w.flush().map_err(anyhow::Error::from));
            if res.is_err() {
                let _ = std::fs::remove_file(path);
            }
            return res.with_context(|| format!("writing {}", path.display()));
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
    }
    // An existing file is replaced only once the new contents are complete.
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    let mut w = BufWriter::with_capacity(1 << 16, tmp);
    f(&mut w)?;
    let tmp = w.into_inner().map_err(|e| e.into_error())?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn decode(input: Option<&Path>, output: Option<&Path>, opts: JsonOptions) -> Result<()> {
    let what = name(input);
    let reader = ImageReader::new(BufReader::with_capacity(1 << 16, open_in(input)?))
        .with_context(|| format!("decoding {what}"))?;
    with_output(output, true, |w| {
        json::decode(reader, w, opts).with_context(|| format!("decoding {what}"))?;
        Ok(())
    })
}

fn encode(input: Option<&Path>, output: Option<&Path>) -> Result<()> {
    let what = name(input);
    let r = BufReader::with_capacity(1 << 16, open_in(input)?);
    if output.is_none() && io::stdout().is_terminal() {
        anyhow::bail!("refusing to write a binary image to a terminal; use -o FILE or a pipe");
    }
    with_output(output, false, |w| {
        json::encode(r, w).with_context(|| format!("encoding {what}"))?;
        Ok(())
    })
}

fn info(input: &Path) -> Result<()> {
    let f = File::open(input).with_context(|| format!("opening {}", input.display()))?;
    let info = crit::info::info(BufReader::new(f))
        .with_context(|| format!("reading {}", input.display()))?;
    io::stdout().lock().write_all(info.to_json().as_bytes())?;
    Ok(())
}

/// `crit diff`: runs a diff to stdout (text, or JSON with `json`) and
/// returns diff(1)'s exit status: 0 same, 1 different, 2 trouble. `color`
/// is `always`, `never` or `auto` (color when stdout is a terminal and
/// `NO_COLOR` is not set). A closed stdout (`crit diff A B | head -1`)
/// ends the diff with status 1: output is only written for differences.
fn diff_main(a: &Path, b: &Path, opts: &diff::Options, json: bool, color: &str) -> i32 {
    let stdout = io::stdout();
    let color = match color {
        "always" => true,
        "never" => false,
        _ => stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    let out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let err = io::stderr();
    let res = if json {
        diff::diff(a, b, opts, &mut JsonOut::new(out, err.lock(), a, b))
    } else {
        diff::diff(a, b, opts, &mut Text::new(out, err.lock(), a, b, color))
    };
    match res {
        Ok(summary) => summary.exit_code(),
        Err(e) if e.is_broken_pipe() => 1,
        Err(e) => {
            eprintln!("crit diff: {}", crit::error::chain(&e));
            2
        }
    }
}
