//! Writing differences: one line per difference, as text (colored on
//! request) or as JSON.

use std::io::Write;
use std::path::Path;

use super::{Change, Summary, What};
use crate::error::{Error, Result};
use crate::json::out::Out;
use crate::json::parse::Json;

/// Where differences go, in the order they are found.
pub trait Sink {
    /// One difference.
    fn change(&mut self, c: &Change) -> Result<()>;
    /// A file that could not be compared; the diff goes on without it.
    fn trouble(&mut self, file: &Path, e: &Error) -> Result<()>;
    /// The end of the diff.
    fn finish(&mut self, summary: &Summary) -> Result<()>;
}

/// Collects differences in memory (for tests and callers that want values).
#[derive(Debug, Default)]
pub struct Collect {
    /// The differences, in order.
    pub changes: Vec<Change>,
    /// Problems, as `file: error` text.
    pub troubles: Vec<String>,
}

impl Sink for Collect {
    fn change(&mut self, c: &Change) -> Result<()> {
        self.changes.push(c.clone());
        Ok(())
    }
    fn trouble(&mut self, file: &Path, e: &Error) -> Result<()> {
        self.troubles.push(trouble_text(file, e));
        Ok(())
    }
    fn finish(&mut self, _: &Summary) -> Result<()> {
        Ok(())
    }
}

/// A value as text: strings bare when that is unambiguous (flag names, hex
/// numbers, paths), quoted JSON otherwise; containers as one-line JSON.
pub fn plain(v: &Json) -> String {
    match v {
        Json::Str(s) if bare(s) => String::from_utf8_lossy(s).into_owned(),
        v => compact(v),
    }
}

/// A string prints bare if it is not empty, has no blank at either end, no
/// control or non-ASCII character, no quote and no ` -> `.
fn bare(s: &[u8]) -> bool {
    let printable = |c: &u8| (b' '..=b'~').contains(c) && *c != b'"';
    !s.is_empty()
        && s.iter().all(printable)
        && s.first() != Some(&b' ')
        && s.last() != Some(&b' ')
        && !s.windows(4).any(|w| w == b" -> ")
}

/// One-line JSON, as python's `json.dumps` writes it.
pub fn compact(v: &Json) -> String {
    let mut buf = Vec::new();
    let mut out = Out::new(&mut buf, false, 0);
    write_json(&mut out, v);
    String::from_utf8_lossy(&buf).into_owned()
}

fn write_json(out: &mut Out<'_>, v: &Json) {
    match v {
        Json::Null => out.raw(b"null"),
        Json::Bool(b) => out.bool(*b),
        Json::Int(n) => out.raw(n.to_string().as_bytes()),
        Json::BigInt(s) => out.raw(s.as_bytes()),
        Json::Float(f) => out.raw(format!("{f:?}").as_bytes()),
        Json::Str(s) => out.str(s),
        Json::Arr(items) => {
            let mut a = out.array();
            for i in items {
                out.item(&mut a);
                write_json(out, i);
            }
            out.close(a);
        }
        Json::Obj(members) => {
            let mut o = out.object();
            for (k, m) in members {
                out.item(&mut o);
                out.str(k);
                out.raw(b": ");
                write_json(out, m);
            }
            out.close(o);
        }
    }
}

/// `file: error`, or just the error when it names the file already.
pub fn trouble_text(file: &Path, e: &Error) -> String {
    let text = e.to_string();
    let name = file.display().to_string();
    if text.contains(&name) {
        text
    } else {
        format!("{name}: {text}")
    }
}

fn io(e: std::io::Error) -> Error {
    Error::io("writing the diff", e)
}

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// Text output: `FILE PATH: OLD -> NEW`, one difference a line.
#[derive(Debug)]
pub struct Text<W, E> {
    out: W,
    err: E,
    a: String,
    b: String,
    color: bool,
}

impl<W: Write, E: Write> Text<W, E> {
    /// Differences to `out`, problems to `err`; `a` and `b` name the two
    /// sides in "Only in" lines; `color` adds ANSI colors.
    pub fn new(out: W, err: E, a: &Path, b: &Path, color: bool) -> Self {
        Text {
            out,
            err,
            a: a.display().to_string(),
            b: b.display().to_string(),
            color,
        }
    }

    fn paint(&self, color: &'static str, text: &str) -> String {
        if self.color {
            format!("{color}{text}{RESET}")
        } else {
            text.to_owned()
        }
    }
}

impl<W: Write, E: Write> Sink for Text<W, E> {
    fn change(&mut self, c: &Change) -> Result<()> {
        let line = match &c.what {
            What::OnlyInA => self.paint(RED, &format!("Only in {}: {}", self.a, c.file)),
            What::OnlyInB => self.paint(GREEN, &format!("Only in {}: {}", self.b, c.file)),
            what => {
                let mut line = self.paint(BOLD, &c.file);
                if !c.path.is_empty() {
                    line.push(' ');
                    line.push_str(&c.path);
                }
                line.push_str(": ");
                let detail = match what {
                    What::Changed { a, b } => format!(
                        "{} -> {}",
                        self.paint(RED, &plain(a)),
                        self.paint(GREEN, &plain(b))
                    ),
                    What::Added(v) => self.paint(
                        GREEN,
                        &v.as_ref()
                            .map_or_else(|| "added".to_owned(), |v| format!("added {}", plain(v))),
                    ),
                    What::Removed(v) => self.paint(
                        RED,
                        &v.as_ref().map_or_else(
                            || "removed".to_owned(),
                            |v| format!("removed {}", plain(v)),
                        ),
                    ),
                    What::Pages(n) => self.paint(
                        YELLOW,
                        &format!(
                            "contents differ ({n} page{})",
                            if *n == 1 { "" } else { "s" }
                        ),
                    ),
                    What::Bytes { a, b } if a == b => {
                        self.paint(YELLOW, &format!("contents differ ({a} bytes)"))
                    }
                    What::Bytes { a, b } => {
                        self.paint(YELLOW, &format!("contents differ ({a} bytes -> {b} bytes)"))
                    }
                    What::OnlyInA | What::OnlyInB => String::new(),
                };
                line.push_str(&detail);
                line
            }
        };
        writeln!(self.out, "{line}").map_err(io)
    }

    fn trouble(&mut self, file: &Path, e: &Error) -> Result<()> {
        // the differences so far must come before the complaint
        self.out.flush().map_err(io)?;
        writeln!(self.err, "crit diff: {}", trouble_text(file, e)).map_err(io)
    }

    fn finish(&mut self, _: &Summary) -> Result<()> {
        self.out.flush().map_err(io)
    }
}

/// JSON output: `{"a": A, "b": B, "differences": [...], "errors": [...]}`,
/// one difference a line, so that it streams and greps.
#[derive(Debug)]
pub struct JsonOut<W, E> {
    out: W,
    err: E,
    errors: Vec<String>,
    first: bool,
    a: String,
    b: String,
    started: bool,
}

impl<W: Write, E: Write> JsonOut<W, E> {
    /// Differences to `out` as JSON; problems are also written to `err`.
    pub fn new(out: W, err: E, a: &Path, b: &Path) -> Self {
        JsonOut {
            out,
            err,
            errors: Vec::new(),
            first: true,
            a: a.display().to_string(),
            b: b.display().to_string(),
            started: false,
        }
    }

    fn start(&mut self) -> Result<()> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        let mut buf = Vec::new();
        let mut out = Out::new(&mut buf, false, 0);
        out.raw(b"{\"a\": ");
        out.str(self.a.as_bytes());
        out.raw(b", \"b\": ");
        out.str(self.b.as_bytes());
        out.raw(b", \"differences\": [");
        self.out.write_all(&buf).map_err(io)
    }
}

impl<W: Write, E: Write> Sink for JsonOut<W, E> {
    fn change(&mut self, c: &Change) -> Result<()> {
        self.start()?;
        let mut buf = Vec::new();
        if !self.first {
            buf.push(b',');
        }
        self.first = false;
        buf.push(b'\n');
        let mut out = Out::new(&mut buf, false, 0);
        let mut o = out.object();
        out.key(&mut o, "file");
        out.str(c.file.as_bytes());
        if !c.path.is_empty() {
            out.key(&mut o, "path");
            out.str(c.path.as_bytes());
        }
        out.key(&mut o, "kind");
        let kind: &[u8] = match c.what {
            What::OnlyInA => b"only_in_a",
            What::OnlyInB => b"only_in_b",
            What::Changed { .. } => b"changed",
            What::Added(_) => b"added",
            What::Removed(_) => b"removed",
            What::Pages(_) | What::Bytes { .. } => b"contents",
        };
        out.str(kind);
        if let Some((start, end)) = c.range {
            out.key(&mut o, "start");
            out.str(format!("{start:#x}").as_bytes());
            out.key(&mut o, "end");
            out.str(format!("{end:#x}").as_bytes());
        }
        match &c.what {
            What::Changed { a, b } => {
                out.key(&mut o, "a");
                write_json(&mut out, a);
                out.key(&mut o, "b");
                write_json(&mut out, b);
            }
            What::Added(Some(v)) => {
                out.key(&mut o, "b");
                write_json(&mut out, v);
            }
            What::Removed(Some(v)) => {
                out.key(&mut o, "a");
                write_json(&mut out, v);
            }
            What::Pages(n) => {
                out.key(&mut o, "pages");
                out.int(*n);
            }
            What::Bytes { a, b } => {
                out.key(&mut o, "size_a");
                out.int(*a);
                out.key(&mut o, "size_b");
                out.int(*b);
            }
            _ => {}
        }
        out.close(o);
        self.out.write_all(&buf).map_err(io)
    }

    fn trouble(&mut self, file: &Path, e: &Error) -> Result<()> {
        let text = trouble_text(file, e);
        writeln!(self.err, "crit diff: {text}").map_err(io)?;
        self.errors.push(text);
        Ok(())
    }

    fn finish(&mut self, summary: &Summary) -> Result<()> {
        self.start()?;
        let mut buf = Vec::new();
        if !self.first {
            buf.push(b'\n');
        }
        let mut out = Out::new(&mut buf, false, 0);
        out.raw(b"], \"errors\": [");
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                out.raw(b", ");
            }
            out.str(e.as_bytes());
        }
        out.raw(b"], \"same\": ");
        out.bool(summary.differences == 0 && summary.troubles == 0);
        out.raw(b"}\n");
        self.out.write_all(&buf).map_err(io)?;
        self.out.flush().map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values() {
        let s = |t: &str| Json::Str(t.as_bytes().to_vec());
        assert_eq!(
            plain(&s("PROT_READ | PROT_WRITE")),
            "PROT_READ | PROT_WRITE"
        );
        assert_eq!(plain(&s("0x7f3a1000")), "0x7f3a1000");
        assert_eq!(plain(&s("")), "\"\"");
        assert_eq!(plain(&s("a\nb")), "\"a\\nb\"");
        assert_eq!(plain(&s(" x")), "\" x\"");
        assert_eq!(plain(&Json::Int(-1)), "-1");
        assert_eq!(
            plain(&Json::Obj(vec![(b"fd".to_vec(), Json::Int(3))])),
            "{\"fd\": 3}"
        );
    }
}
