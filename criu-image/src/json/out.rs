//! A JSON emitter that lays text out exactly as python's `json.dump` does:
//! `ensure_ascii` escapes, `", "` and `": "` separators on one line, or
//! indent 4 with `","` line ends when pretty; `[]` and `{}` for empty
//! containers.

use std::io::Write as _;

/// Writes JSON into a byte buffer, and from there (when given a sink) into
/// a writer whenever the buffer holds [`FLUSH_AT`] bytes at an item
/// boundary, so that even one huge entry does not sit in memory whole.
pub struct Out<'a> {
    buf: &'a mut Vec<u8>,
    pretty: bool,
    depth: usize,
    sink: Option<&'a mut dyn std::io::Write>,
    error: Option<std::io::Error>,
}

impl std::fmt::Debug for Out<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Out")
            .field("pretty", &self.pretty)
            .field("depth", &self.depth)
            .field("buffered", &self.buf.len())
            .finish()
    }
}

/// Buffered bytes that make [`Out`] pass its buffer on to its sink.
pub const FLUSH_AT: usize = 64 * 1024;

/// A container being written: remembers whether an item was written yet.
#[derive(Debug)]
#[must_use]
pub struct Open {
    close: u8,
    empty: bool,
}

impl<'a> Out<'a> {
    /// An emitter appending to `buf`, starting at nesting depth `depth`.
    pub fn new(buf: &'a mut Vec<u8>, pretty: bool, depth: usize) -> Self {
        Out {
            buf,
            pretty,
            depth,
            sink: None,
            error: None,
        }
    }

    /// An emitter that passes its output on to `sink` as it goes.
    pub fn with_sink(buf: &'a mut Vec<u8>, pretty: bool, sink: &'a mut dyn std::io::Write) -> Self {
        Out {
            buf,
            pretty,
            depth: 0,
            sink: Some(sink),
            error: None,
        }
    }

    fn pass_on(&mut self) {
        if let (Some(sink), None) = (self.sink.as_mut(), &self.error) {
            if let Err(e) = sink.write_all(self.buf) {
                self.error = Some(e);
            }
        }
        self.buf.clear();
    }

    /// Writes what is buffered to the sink and reports the first write error.
    pub fn finish(mut self) -> std::io::Result<()> {
        if self.sink.is_some() {
            self.pass_on();
        }
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn newline(&mut self) {
        self.buf.push(b'\n');
        self.buf.resize(self.buf.len() + 4 * self.depth, b' ');
    }

    /// Starts an object.
    pub fn object(&mut self) -> Open {
        self.buf.push(b'{');
        self.depth += 1;
        Open {
            close: b'}',
            empty: true,
        }
    }

    /// Starts an array.
    pub fn array(&mut self) -> Open {
        self.buf.push(b'[');
        self.depth += 1;
        Open {
            close: b']',
            empty: true,
        }
    }

    /// Starts the next array item.
    pub fn item(&mut self, c: &mut Open) {
        if self.sink.is_some() && self.buf.len() >= FLUSH_AT {
            self.pass_on();
        }
        if !c.empty {
            self.buf.push(b',');
            if !self.pretty {
                self.buf.push(b' ');
            }
        }
        c.empty = false;
        if self.pretty {
            self.newline();
        }
    }

    /// Starts the next object member: writes its key.
    pub fn key(&mut self, c: &mut Open, key: &str) {
        self.item(c);
        self.str(key.as_bytes());
        self.buf.extend_from_slice(b": ");
    }

    /// Starts the next object member with a key already quoted and escaped.
    pub fn key_json(&mut self, c: &mut Open, quoted: &[u8]) {
        self.item(c);
        self.buf.extend_from_slice(quoted);
        self.buf.extend_from_slice(b": ");
    }

    /// Closes a container.
    pub fn close(&mut self, c: Open) {
        self.depth -= 1;
        if self.pretty && !c.empty {
            self.newline();
        }
        self.buf.push(c.close);
    }

    /// Writes raw JSON text (a number, `true`, ...).
    pub fn raw(&mut self, s: &[u8]) {
        self.buf.extend_from_slice(s);
    }

    /// Writes an integer.
    pub fn int(&mut self, v: impl itoa_like::Int) {
        v.write_to(self.buf);
    }

    /// Writes `"0x..."` (python's `"0x%x"`, `"-0x..."` for negatives).
    pub fn hex(&mut self, v: i128) {
        const H: &[u8; 16] = b"0123456789abcdef";
        self.buf
            .extend_from_slice(if v < 0 { b"\"-0x" } else { b"\"0x" });
        let mut u = v.unsigned_abs();
        let mut tmp = [0u8; 32];
        let mut i = tmp.len();
        loop {
            i -= 1;
            tmp[i] = H[(u & 15) as usize];
            u >>= 4;
            if u == 0 {
                break;
            }
        }
        self.buf.extend_from_slice(&tmp[i..]);
        self.buf.push(b'"');
    }

    /// Writes flags as python crit does, `"A | B | 0x..."` (an empty string
    /// for 0), straight into the buffer.
    pub fn flags(&mut self, value: u64, table: crate::flags::FlagTable) {
        self.buf.push(b'"');
        let mut first = true;
        let mut known = 0;
        for (name, bit) in table {
            known |= bit;
            if value & bit != 0 {
                if !first {
                    self.buf.extend_from_slice(b" | ");
                }
                first = false;
                self.buf.extend_from_slice(name.as_bytes());
            }
        }
        let rest = value & !known;
        if rest != 0 {
            if !first {
                self.buf.extend_from_slice(b" | ");
            }
            let _ = write!(self.buf, "{rest:#x}");
        }
        self.buf.push(b'"');
    }

    /// Writes a bool.
    pub fn bool(&mut self, b: bool) {
        self.raw(if b { b"true" } else { b"false" });
    }

    /// Writes a string given as bytes. Valid UTF-8 is escaped as python does
    /// with `ensure_ascii`; each byte that is not part of valid UTF-8 is
    /// written as a lone surrogate `\udcXX` (python's `surrogateescape`).
    pub fn str(&mut self, s: &[u8]) {
        self.buf.push(b'"');
        if s.iter()
            .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
        {
            self.buf.extend_from_slice(s);
            self.buf.push(b'"');
            return;
        }
        for chunk in s.utf8_chunks() {
            self.escape_valid(chunk.valid());
            for &b in chunk.invalid() {
                let _ = write!(self.buf, "\\udc{b:02x}");
            }
        }
        self.buf.push(b'"');
    }

    fn escape_valid(&mut self, s: &str) {
        let bytes = s.as_bytes();
        let mut start = 0;
        for (i, ch) in s.char_indices() {
            let simple = matches!(ch, ' '..='~') && ch != '"' && ch != '\\';
            if simple {
                continue;
            }
            self.buf.extend_from_slice(&bytes[start..i]);
            start = i + ch.len_utf8();
            match ch {
                '"' => self.raw(b"\\\""),
                '\\' => self.raw(b"\\\\"),
                '\n' => self.raw(b"\\n"),
                '\r' => self.raw(b"\\r"),
                '\t' => self.raw(b"\\t"),
                '\u{8}' => self.raw(b"\\b"),
                '\u{c}' => self.raw(b"\\f"),
                _ => {
                    let mut units = [0u16; 2];
                    for u in ch.encode_utf16(&mut units) {
                        let _ = write!(self.buf, "\\u{u:04x}");
                    }
                }
            }
        }
        self.buf.extend_from_slice(&bytes[start..]);
    }
}

/// Integer formatting without going through `fmt`.
pub mod itoa_like {
    /// An integer that can be written in decimal.
    pub trait Int: Copy {
        /// Appends the decimal form.
        fn write_to(self, buf: &mut Vec<u8>);
    }

    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

    fn write_u64(mut v: u64, buf: &mut Vec<u8>) {
        let mut tmp = [0u8; 20];
        let mut i = tmp.len();
        while v >= 100 {
            let d = (v % 100) as usize * 2;
            v /= 100;
            i -= 2;
            tmp[i..i + 2].copy_from_slice(&PAIRS[d..d + 2]);
        }
        if v >= 10 {
            let d = v as usize * 2;
            i -= 2;
            tmp[i..i + 2].copy_from_slice(&PAIRS[d..d + 2]);
        } else {
            i -= 1;
            tmp[i] = b'0' + v as u8;
        }
        buf.extend_from_slice(&tmp[i..]);
    }

    impl Int for u64 {
        fn write_to(self, buf: &mut Vec<u8>) {
            write_u64(self, buf);
        }
    }

    impl Int for i64 {
        fn write_to(self, buf: &mut Vec<u8>) {
            if self < 0 {
                buf.push(b'-');
            }
            write_u64(self.unsigned_abs(), buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(b: &[u8]) -> String {
        let mut v = Vec::new();
        Out::new(&mut v, false, 0).str(b);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn python_escapes() {
        assert_eq!(s(b"plain"), r#""plain""#);
        assert_eq!(
            s("a\"b\\c\n\t\r\u{8}\u{c}\u{1}\u{7f}".as_bytes()),
            r#""a\"b\\c\n\t\r\b\f\u0001\u007f""#
        );
        assert_eq!(s("é😀".as_bytes()), r#""\u00e9\ud83d\ude00""#);
        assert_eq!(s(b"a\xffb\xc3"), r#""a\udcffb\udcc3""#);
    }

    #[test]
    fn integers() {
        for v in [0u64, 7, 10, 99, 100, 101, 12345, u64::MAX] {
            let mut b = Vec::new();
            Out::new(&mut b, false, 0).int(v);
            assert_eq!(String::from_utf8(b).unwrap(), v.to_string());
        }
        for v in [-1i64, i64::MIN, -100] {
            let mut b = Vec::new();
            Out::new(&mut b, false, 0).int(v);
            assert_eq!(String::from_utf8(b).unwrap(), v.to_string());
        }
        let mut b = Vec::new();
        Out::new(&mut b, false, 0).hex(-255);
        assert_eq!(b, b"\"-0xff\"");
    }

    #[test]
    fn flags_like_python() {
        let t = crate::flags::MMAP_PROT;
        for v in [0u64, 1, 3, 7, 0x13, 0x10] {
            let mut b = Vec::new();
            Out::new(&mut b, false, 0).flags(v, t);
            let want = format!("{:?}", crate::flags::to_string(v, t));
            assert_eq!(String::from_utf8(b).unwrap(), want);
        }
    }

    #[test]
    fn layout() {
        for (pretty, want) in [
            (false, "{\"a\": [1, 2], \"b\": {}, \"c\": []}"),
            (
                true,
                "{\n    \"a\": [\n        1,\n        2\n    ],\n    \"b\": {},\n    \"c\": []\n}",
            ),
        ] {
            let mut v = Vec::new();
            let mut o = Out::new(&mut v, pretty, 0);
            let mut obj = o.object();
            o.key(&mut obj, "a");
            let mut a = o.array();
            o.item(&mut a);
            o.int(1u64);
            o.item(&mut a);
            o.int(2u64);
            o.close(a);
            o.key(&mut obj, "b");
            let e = o.object();
            o.close(e);
            o.key(&mut obj, "c");
            let e = o.array();
            o.close(e);
            o.close(obj);
            assert_eq!(String::from_utf8(v).unwrap(), want);
        }
    }
}
