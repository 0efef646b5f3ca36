//! Byte-to-text encodings that python crit uses in its JSON: MIME base64
//! (`base64.encodebytes`) and quoted-printable (`binascii.b2a_qp`), written
//! here so the output matches byte for byte, with strict decoders; and
//! python's integer syntax.

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// MIME base64: lines of at most 76 characters, each ending in `\n`.
/// Empty input gives an empty string.
pub fn base64_mime(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4 + data.len() / 57 + 1);
    for line in data.chunks(57) {
        for c in line.chunks(3) {
            let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            let idx = |s: u32| char::from(B64[((n >> s) & 63) as usize]);
            out.push(idx(18));
            out.push(idx(12));
            out.push(if c.len() > 1 { idx(6) } else { '=' });
            out.push(if c.len() > 2 { idx(0) } else { '=' });
        }
        out.push('\n');
    }
    out
}

/// Why a base64 text was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base64Error {
    /// A character outside the alphabet, at this byte position.
    BadChar(usize, u8),
    /// The data ends in a partial group, or padding is misplaced.
    BadPadding,
}

impl std::fmt::Display for Base64Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Base64Error::BadChar(at, c) => {
                write!(
                    f,
                    "invalid base64 character {:?} at position {at}",
                    char::from(*c)
                )
            }
            Base64Error::BadPadding => f.write_str("invalid base64 length or padding"),
        }
    }
}

/// Decodes base64, skipping whitespace (MIME line breaks).
pub fn base64_decode(text: &[u8]) -> Result<Vec<u8>, Base64Error> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut quad = [0u8; 4];
    let mut n = 0;
    let mut pad = 0;
    for (i, &c) in text.iter().enumerate() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                pad += 1;
                quad[n] = 0;
                n += 1;
                if n == 4 {
                    if pad > 2 {
                        return Err(Base64Error::BadPadding);
                    }
                    flush(&quad, 3 - pad, &mut out)?;
                    n = 0;
                }
                continue;
            }
            b' ' | b'\n' | b'\r' | b'\t' => continue,
            _ => return Err(Base64Error::BadChar(i, c)),
        };
        if pad > 0 {
            return Err(Base64Error::BadPadding);
        }
        quad[n] = v;
        n += 1;
        if n == 4 {
            flush(&quad, 3, &mut out)?;
            n = 0;
        }
    }
    if n != 0 {
        return Err(Base64Error::BadPadding);
    }
    Ok(out)
}

fn flush(q: &[u8; 4], keep: usize, out: &mut Vec<u8>) -> Result<(), Base64Error> {
    if keep == 0 {
        return Err(Base64Error::BadPadding);
    }
    let n = (u32::from(q[0]) << 18)
        | (u32::from(q[1]) << 12)
        | (u32::from(q[2]) << 6)
        | u32::from(q[3]);
    let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
    out.extend_from_slice(&bytes[..keep]);
    Ok(())
}

const MAXLINE: usize = 76;

fn hexup(b: u8) -> [u8; 2] {
    const H: &[u8; 16] = b"0123456789ABCDEF";
    [H[usize::from(b >> 4)], H[usize::from(b & 15)]]
}

/// Quoted-printable in text mode, as python's `quopri.encodestring`
/// (`binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)`).
pub fn qp_encode(data: &[u8]) -> Vec<u8> {
    let crlf = data
        .iter()
        .position(|&c| c == b'\n')
        .is_some_and(|p| p > 0 && data[p - 1] == b'\r');
    let soft_break: &[u8] = if crlf { b"=\r\n" } else { b"=\n" };
    let mut out = Vec::with_capacity(data.len() * 3 / 2);
    let mut linelen = 0usize;
    let mut i = 0;
    let len = data.len();
    while i < len {
        let c = data[i];
        let next = data.get(i + 1).copied();
        let at_end = i + 1 == len;
        let must_quote = c > 126
            || c == b'='
            || (c == b'.'
                && linelen == 0
                && (at_end || next == Some(b'\n') || next == Some(b'\r') || next == Some(0)))
            || ((c == b'\t' || c == b' ') && at_end)
            || (c < 33 && c != b'\r' && c != b'\n' && c != b'\t' && c != b' ');
        if must_quote {
            if linelen + 3 >= MAXLINE {
                out.extend_from_slice(soft_break);
                linelen = 0;
            }
            out.push(b'=');
            out.extend_from_slice(&hexup(c));
            linelen += 3;
            i += 1;
        } else if c == b'\n' || (c == b'\r' && next == Some(b'\n')) {
            linelen = 0;
            // whitespace before a line break is protected
            if let Some(&last) = out.last() {
                if i > 0 && (last == b' ' || last == b'\t') {
                    out.pop();
                    out.push(b'=');
                    out.extend_from_slice(&hexup(last));
                }
            }
            if crlf {
                out.extend_from_slice(b"\r\n");
            } else {
                out.push(b'\n');
            }
            i += if c == b'\r' { 2 } else { 1 };
        } else {
            if !at_end && next != Some(b'\n') && linelen + 1 >= MAXLINE {
                out.extend_from_slice(soft_break);
                linelen = 0;
            }
            linelen += 1;
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Decodes quoted-printable as python's `quopri.decodestring`
/// (`binascii.a2b_qp`): `=XX` escapes and soft line breaks; anything else is
/// kept as it is.
pub fn qp_decode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    let hex = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    while i < text.len() {
        let c = text[i];
        if c != b'=' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        match (text.get(i).copied(), text.get(i + 1).copied()) {
            (None, _) => break,
            (Some(b'\n'), _) => i += 1,
            (Some(b'\r'), Some(b'\n')) => i += 2,
            (Some(b'\r'), _) => i += 1,
            (Some(a), Some(b)) if hex(a).is_some() && hex(b).is_some() => {
                out.push(hex(a).unwrap_or(0) << 4 | hex(b).unwrap_or(0));
                i += 2;
            }
            _ => out.push(b'='),
        }
    }
    out
}

/// python's `int(text, 0)`: optional sign, then decimal (no leading zeros),
/// `0x`, `0o` or `0b`, with `_` between digits; blanks around are allowed.
pub(crate) fn parse_int(text: &str) -> Option<i128> {
    let t = text.trim();
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let lower = t.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.strip_prefix('_').unwrap_or(d))
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.strip_prefix('_').unwrap_or(d))
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.strip_prefix('_').unwrap_or(d))
    } else {
        if lower.len() > 1
            && lower.starts_with('0')
            && lower.bytes().any(|c| c != b'0' && c != b'_')
        {
            return None;
        }
        (10, lower.as_str())
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    let v = i128::from_str_radix(&clean, radix).ok()?;
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_like_python() {
        assert_eq!(parse_int("0x1f"), Some(31));
        assert_eq!(parse_int(" 31 "), Some(31));
        assert_eq!(parse_int("-0x10"), Some(-16));
        assert_eq!(parse_int("1_000"), Some(1000));
        assert_eq!(parse_int("0"), Some(0));
        assert_eq!(parse_int("00"), Some(0));
        assert_eq!(parse_int("010"), None);
        assert_eq!(parse_int("0xg"), None);
        assert_eq!(parse_int(""), None);
    }

    #[test]
    fn mime_lines() {
        assert_eq!(base64_mime(b""), "");
        assert_eq!(base64_mime(b"pipe-data-123\n"), "cGlwZS1kYXRhLTEyMwo=\n");
        let long = base64_mime(&[0u8; 58]);
        let lines: Vec<&str> = long.split_terminator('\n').collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), 76);
        assert_eq!(lines[1], "AA==");
    }

    #[test]
    fn base64_roundtrip_and_errors() {
        for n in 0..70 {
            let data: Vec<u8> = (0..n).map(|i| (i * 37) as u8).collect();
            assert_eq!(base64_decode(base64_mime(&data).as_bytes()).unwrap(), data);
        }
        assert_eq!(base64_decode(b"AB"), Err(Base64Error::BadPadding));
        assert_eq!(base64_decode(b"AB!="), Err(Base64Error::BadChar(2, b'!')));
        assert_eq!(base64_decode(b"A==="), Err(Base64Error::BadPadding));
        assert_eq!(base64_decode(b"AA==AAAA"), Err(Base64Error::BadPadding));
    }

    #[test]
    fn qp_matches_binascii() {
        // expectations computed with python3's quopri.encodestring
        assert_eq!(qp_encode(b""), b"");
        assert_eq!(qp_encode(b"/tmp/sock"), b"/tmp/sock");
        assert_eq!(qp_encode(b"\0abstract"), b"=00abstract");
        assert_eq!(qp_encode(b"a=b"), b"a=3Db");
        assert_eq!(qp_encode(b"end "), b"end=20");
        assert_eq!(qp_encode(b"x \ny"), b"x=20\ny");
        assert_eq!(qp_encode(b"."), b"=2E");
        assert_eq!(qp_encode(&[0xff, b'a']), b"=FFa");
        let long = vec![b'a'; 100];
        let enc = qp_encode(&long);
        assert_eq!(&enc[..77], [&[b'a'; 75][..], b"=\n"].concat().as_slice());
        assert_eq!(qp_decode(&enc), long);
        for s in [
            &b"\0abstract"[..],
            b"a=b",
            b"end ",
            b"x \ny",
            b".",
            &[0xff, b'a', b'\t'],
        ] {
            assert_eq!(qp_decode(&qp_encode(s)), s);
        }
    }
}
