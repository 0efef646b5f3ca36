//! Writing differences: one line per difference, as text (colored on
//! request) or as JSON.

use std::io::Write;
use std::path::Path;

use criu_image::json::Json;

use super::{Change, Summary, What};
use crate::error::{chain, Error, Result};

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
    v.to_string()
}

/// A string as a JSON value.
fn string(s: &str) -> Json {
    Json::Str(s.as_bytes().to_vec())
}

/// `file: error`, or just the error when it names the file already.
pub fn trouble_text(file: &Path, e: &Error) -> String {
    let text = chain(e);
    let name = file.display().to_string();
    if text.contains(&name) {
        text
    } else {
        format!("{name}: {text}")
    }
}

fn io(source: std::io::Error) -> Error {
    Error::Io {
        context: "writing the diff".to_owned(),
        source,
    }
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
        let (a, b) = (string(&self.a), string(&self.b));
        write!(self.out, "{{\"a\": {a}, \"b\": {b}, \"differences\": [").map_err(io)
    }
}

impl<W: Write, E: Write> Sink for JsonOut<W, E> {
    fn change(&mut self, c: &Change) -> Result<()> {
        self.start()?;
        let mut o: Vec<(Vec<u8>, Json)> = Vec::new();
        let mut put = |k: &str, v: Json| o.push((k.as_bytes().to_vec(), v));
        put("file", string(&c.file));
        if !c.path.is_empty() {
            put("path", string(&c.path));
        }
        let kind = match c.what {
            What::OnlyInA => "only_in_a",
            What::OnlyInB => "only_in_b",
            What::Changed { .. } => "changed",
            What::Added(_) => "added",
            What::Removed(_) => "removed",
            What::Pages(_) | What::Bytes { .. } => "contents",
        };
        put("kind", string(kind));
        if let Some((start, end)) = c.range {
            put("start", string(&format!("{start:#x}")));
            put("end", string(&format!("{end:#x}")));
        }
        match &c.what {
            What::Changed { a, b } => {
                put("a", a.clone());
                put("b", b.clone());
            }
            What::Added(Some(v)) => put("b", v.clone()),
            What::Removed(Some(v)) => put("a", v.clone()),
            What::Pages(n) => put("pages", Json::Int(i128::from(*n))),
            What::Bytes { a, b } => {
                put("size_a", Json::Int(i128::from(*a)));
                put("size_b", Json::Int(i128::from(*b)));
            }
            _ => {}
        }
        let sep = if std::mem::take(&mut self.first) {
            ""
        } else {
            ","
        };
        write!(self.out, "{sep}\n{}", Json::Obj(o)).map_err(io)
    }

    fn trouble(&mut self, file: &Path, e: &Error) -> Result<()> {
        let text = trouble_text(file, e);
        writeln!(self.err, "crit diff: {text}").map_err(io)?;
        self.errors.push(text);
        Ok(())
    }

    fn finish(&mut self, summary: &Summary) -> Result<()> {
        self.start()?;
        let end = if self.first { "" } else { "\n" };
        let errors = Json::Arr(self.errors.iter().map(|e| string(e)).collect());
        let same = summary.differences == 0 && summary.troubles == 0;
        writeln!(self.out, "{end}], \"errors\": {errors}, \"same\": {same}}}").map_err(io)?;
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
