//! A JSON reader for crit's input: strict JSON (as python's `json.load`),
//! read from a stream so that an image's entries can be converted one at a
//! time. Strings are kept as bytes: a `\udcXX` escape that is not half of a
//! surrogate pair stands for the raw byte `XX` (python's `surrogateescape`),
//! which is how crit writes bytes that are not UTF-8.

use std::io::BufRead;

pub use super::value::Json;
use crate::error::{Error, Result};
use crate::wire::MAX_NESTING;

/// Nesting deeper than this is refused, which bounds the recursion here and
/// in everything that walks a value afterwards. The deepest entry crit
/// decodes nests [`MAX_NESTING`] messages, each an
/// object in a list (two levels) under the entry's object, plus the data
/// after it: whatever crit decodes, it encodes.
const MAX_DEPTH: usize = 2 * MAX_NESTING + 4;

/// Reads JSON tokens from a stream, tracking the position for errors.
#[derive(Debug)]
pub struct Parser<R> {
    r: R,
    offset: u64,
    line: u64,
    col: u64,
}

impl<R: BufRead> Parser<R> {
    /// A parser at the start of `r`.
    pub fn new(r: R) -> Self {
        Parser {
            r,
            offset: 0,
            line: 1,
            col: 1,
        }
    }

    /// Byte offset of the next byte.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// An error at the current position.
    pub fn error(&self, detail: impl Into<String>) -> Error {
        Error::JsonSyntax {
            offset: self.offset,
            line: self.line,
            column: self.col,
            detail: detail.into(),
        }
    }

    fn peek(&mut self) -> Result<Option<u8>> {
        loop {
            match self.r.fill_buf() {
                Ok(b) => return Ok(b.first().copied()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(Error::io(
                        format!("reading JSON at byte {}", self.offset),
                        e,
                    ))
                }
            }
        }
    }

    fn bump(&mut self, c: u8) {
        self.r.consume(1);
        self.offset += 1;
        if c == b'\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
    }

    fn next(&mut self) -> Result<u8> {
        match self.peek()? {
            Some(c) => {
                self.bump(c);
                Ok(c)
            }
            None => Err(self.error("unexpected end of input")),
        }
    }

    /// Skips blanks and returns the next byte without taking it.
    pub fn peek_token(&mut self) -> Result<Option<u8>> {
        while let Some(c) = self.peek()? {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.bump(c);
            } else {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// Takes the byte `want` after blanks.
    pub fn expect(&mut self, want: u8) -> Result<()> {
        match self.peek_token()? {
            Some(c) if c == want => {
                self.bump(c);
                Ok(())
            }
            Some(c) => Err(self.error(format!(
                "expected '{}', found '{}'",
                char::from(want),
                char::from(c).escape_default()
            ))),
            None => Err(self.error(format!(
                "expected '{}', found end of input",
                char::from(want)
            ))),
        }
    }

    /// After a member or item: takes `,` and returns true, or takes `close`
    /// and returns false.
    pub fn comma_or(&mut self, close: u8) -> Result<bool> {
        match self.peek_token()? {
            Some(b',') => {
                self.bump(b',');
                Ok(true)
            }
            Some(c) if c == close => {
                self.bump(c);
                Ok(false)
            }
            _ => Err(self.error(format!("expected ',' or '{}'", char::from(close)))),
        }
    }

    /// Takes `close` if it is next (an empty container).
    pub fn take_if(&mut self, close: u8) -> Result<bool> {
        if self.peek_token()? == Some(close) {
            self.bump(close);
            return Ok(true);
        }
        Ok(false)
    }

    /// Reads an object key and its colon.
    pub fn key(&mut self) -> Result<Vec<u8>> {
        if self.peek_token()? != Some(b'"') {
            return Err(self.error("expected a string key"));
        }
        let k = self.string()?;
        self.expect(b':')?;
        Ok(k)
    }

    /// Reads one value.
    pub fn value(&mut self) -> Result<Json> {
        self.value_at(0)
    }

    fn value_at(&mut self, depth: usize) -> Result<Json> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        let Some(c) = self.peek_token()? else {
            return Err(self.error("expected a value, found end of input"));
        };
        Ok(match c {
            b'{' => {
                self.bump(c);
                let mut members = Vec::new();
                if !self.take_if(b'}')? {
                    loop {
                        let k = self.key()?;
                        let v = self.value_at(depth + 1)?;
                        members.push((k, v));
                        if !self.comma_or(b'}')? {
                            break;
                        }
                    }
                }
                Json::Obj(members)
            }
            b'[' => {
                self.bump(c);
                let mut items = Vec::new();
                if !self.take_if(b']')? {
                    loop {
                        items.push(self.value_at(depth + 1)?);
                        if !self.comma_or(b']')? {
                            break;
                        }
                    }
                }
                Json::Arr(items)
            }
            b'"' => Json::Str(self.string()?),
            b't' => self.word(b"true", Json::Bool(true))?,
            b'f' => self.word(b"false", Json::Bool(false))?,
            b'n' => self.word(b"null", Json::Null)?,
            b'-' | b'0'..=b'9' => self.number()?,
            _ => {
                return Err(self.error(format!(
                    "expected a value, found '{}'",
                    char::from(c).escape_default()
                )))
            }
        })
    }

    fn word(&mut self, w: &[u8], v: Json) -> Result<Json> {
        for &want in w {
            if self.next()? != want {
                return Err(self.error("invalid literal"));
            }
        }
        Ok(v)
    }

    fn number(&mut self) -> Result<Json> {
        let mut text = Vec::new();
        let mut float = false;
        while let Some(c) = self.peek()? {
            match c {
                b'0'..=b'9' | b'-' | b'+' => {}
                b'.' | b'e' | b'E' => float = true,
                _ => break,
            }
            if text.len() > 400 {
                return Err(self.error("number too long"));
            }
            text.push(c);
            self.bump(c);
        }
        let s = String::from_utf8_lossy(&text).into_owned();
        if !valid_number(&text) {
            return Err(self.error(format!("invalid number {s:?}")));
        }
        if float {
            return s
                .parse::<f64>()
                .map(Json::Float)
                .map_err(|_| self.error(format!("invalid number {s:?}")));
        }
        Ok(match s.parse::<i128>() {
            Ok(v) => Json::Int(v),
            Err(_) => Json::BigInt(s),
        })
    }

    fn hex4(&mut self) -> Result<u32> {
        let mut v = 0;
        for _ in 0..4 {
            let c = self.next()?;
            let d = char::from(c)
                .to_digit(16)
                .ok_or_else(|| self.error("invalid \\u escape"))?;
            v = v * 16 + d;
        }
        Ok(v)
    }

    fn string(&mut self) -> Result<Vec<u8>> {
        self.expect(b'"')?;
        let start = self.offset;
        let mut s = Vec::new();
        // index in `s` where the current run of raw (unescaped) bytes began
        let mut raw_from = 0;
        loop {
            let c = self.next()?;
            match c {
                b'"' => break,
                b'\\' => {
                    check_utf8(&s[raw_from..]).map_err(|_| self.not_utf8(start))?;
                    let e = self.next()?;
                    match e {
                        b'"' | b'\\' | b'/' => s.push(e),
                        b'b' => s.push(8),
                        b'f' => s.push(12),
                        b'n' => s.push(b'\n'),
                        b'r' => s.push(b'\r'),
                        b't' => s.push(b'\t'),
                        b'u' => {
                            let u = self.hex4()?;
                            self.unicode_escape(u, &mut s)?;
                        }
                        _ => return Err(self.error("invalid escape")),
                    }
                    raw_from = s.len();
                }
                0..=0x1f => return Err(self.error("control character in string")),
                _ => s.push(c),
            }
        }
        check_utf8(&s[raw_from..]).map_err(|_| self.not_utf8(start))?;
        Ok(s)
    }

    fn not_utf8(&self, start: u64) -> Error {
        Error::JsonSyntax {
            offset: start,
            line: self.line,
            column: self.col,
            detail: "string is not valid UTF-8".to_owned(),
        }
    }

    fn unicode_escape(&mut self, u: u32, s: &mut Vec<u8>) -> Result<()> {
        let ch = if (0xd800..0xdc00).contains(&u) {
            // a high surrogate must be followed by a low one
            if self.next()? != b'\\' || self.next()? != b'u' {
                return Err(self.error("lone surrogate in \\u escape"));
            }
            let lo = self.hex4()?;
            if !(0xdc00..0xe000).contains(&lo) {
                return Err(self.error("invalid surrogate pair"));
            }
            0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00)
        } else if (0xdc80..0xdd00).contains(&u) {
            s.push((u - 0xdc00) as u8);
            return Ok(());
        } else if (0xdc00..0xe000).contains(&u) {
            return Err(self.error("lone surrogate in \\u escape"));
        } else {
            u
        };
        let ch = char::from_u32(ch).ok_or_else(|| self.error("invalid \\u escape"))?;
        let mut b = [0u8; 4];
        s.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
        Ok(())
    }

    /// Checks that only blanks remain.
    pub fn end(&mut self) -> Result<()> {
        match self.peek_token()? {
            None => Ok(()),
            Some(_) => Err(self.error("extra data after the JSON value")),
        }
    }
}

fn check_utf8(b: &[u8]) -> std::result::Result<(), std::str::Utf8Error> {
    std::str::from_utf8(b).map(|_| ())
}

/// JSON number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn valid_number(t: &[u8]) -> bool {
    let mut i = 0;
    let digits = |i: &mut usize| {
        let s = *i;
        while *i < t.len() && t[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > s
    };
    if t.first() == Some(&b'-') {
        i += 1;
    }
    if t.get(i) == Some(&b'0') {
        i += 1;
    } else if !digits(&mut i) {
        return false;
    }
    if t.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(t.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(t.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == t.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &[u8]) -> Result<Json> {
        let mut p = Parser::new(s);
        let v = p.value()?;
        p.end()?;
        Ok(v)
    }

    #[test]
    fn values() {
        assert_eq!(
            parse(br#"{"a": [1, -2, 1.5, true, null, "x"]}"#).unwrap(),
            Json::Obj(vec![(
                b"a".to_vec(),
                Json::Arr(vec![
                    Json::Int(1),
                    Json::Int(-2),
                    Json::Float(1.5),
                    Json::Bool(true),
                    Json::Null,
                    Json::Str(b"x".to_vec())
                ])
            )])
        );
        assert_eq!(
            parse(b"18446744073709551615").unwrap(),
            Json::Int(18446744073709551615)
        );
        assert!(matches!(
            parse(b"1234567890123456789012345678901234567890123").unwrap(),
            Json::BigInt(_)
        ));
    }

    #[test]
    fn strings_and_surrogates() {
        assert_eq!(
            parse(br#""\u00e9\ud83d\ude00""#).unwrap(),
            Json::Str("é😀".as_bytes().to_vec())
        );
        assert_eq!(
            parse(br#""a\udcffb""#).unwrap(),
            Json::Str(b"a\xffb".to_vec())
        );
        assert!(parse(br#""\ud800""#).is_err());
        assert!(parse(br#""\udc10""#).is_err());
        assert!(parse(b"\"a\xffb\"").is_err());
        assert!(parse(b"\"a\nb\"").is_err());
    }

    #[test]
    fn errors_have_positions() {
        let e = parse(b"{\n  \"a\": 01}").unwrap_err();
        assert!(matches!(e, Error::JsonSyntax { line: 2, .. }), "{e}");
        assert!(parse(b"[1,]").is_err());
        assert!(parse(b"{} x").is_err());
        assert!(parse(b"").is_err());
        assert!(parse(&[b'['; 1000]).is_err());
    }
}
