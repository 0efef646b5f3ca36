//! A JSON value as crit reads and writes it: strings are bytes (a string
//! that is not UTF-8 is written with python's `surrogateescape` escapes),
//! integers are exact (up to 128 bits), objects keep their members in
//! order.

use std::fmt;

use super::out::Out;

/// A parsed JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer literal.
    Int(i128),
    /// An integer literal too large for i128.
    BigInt(String),
    /// A number with a fraction or exponent.
    Float(f64),
    /// A string, as bytes.
    Str(Vec<u8>),
    /// An array.
    Arr(Vec<Json>),
    /// An object, members in order.
    Obj(Vec<(Vec<u8>, Json)>),
}

impl Json {
    /// The member `key` of an object (the last one, as python keeps).
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m
                .iter()
                .rev()
                .find(|(k, _)| k == key.as_bytes())
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// A short name of the value's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a bool",
            Json::Int(_) | Json::BigInt(_) => "an integer",
            Json::Float(_) => "a float",
            Json::Str(_) => "a string",
            Json::Arr(_) => "an array",
            Json::Obj(_) => "an object",
        }
    }
}

/// One line of JSON, as python's `json.dumps` writes it (`", "` and `": "`
/// separators, `ensure_ascii` escapes). Written with a stack, not by
/// recursion, so that no value is too deep to print.
impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = Vec::new();
        write_compact(&mut buf, self);
        f.write_str(&String::from_utf8_lossy(&buf))
    }
}

/// What is left to write of a container.
enum Rest<'a> {
    Items(std::slice::Iter<'a, Json>, bool),
    Members(std::slice::Iter<'a, (Vec<u8>, Json)>, bool),
}

fn write_compact(buf: &mut Vec<u8>, v: &Json) {
    let mut out = Out::new(buf, false, 0);
    let mut stack: Vec<Rest<'_>> = Vec::new();
    let mut next = Some(v);
    loop {
        if let Some(v) = next.take() {
            match v {
                Json::Null => out.raw(b"null"),
                Json::Bool(b) => out.bool(*b),
                Json::Int(n) => out.raw(n.to_string().as_bytes()),
                Json::BigInt(s) => out.raw(s.as_bytes()),
                Json::Float(x) => out.raw(format!("{x:?}").as_bytes()),
                Json::Str(s) => out.str(s),
                Json::Arr(items) => {
                    out.raw(b"[");
                    stack.push(Rest::Items(items.iter(), true));
                }
                Json::Obj(members) => {
                    out.raw(b"{");
                    stack.push(Rest::Members(members.iter(), true));
                }
            }
        }
        let Some(top) = stack.last_mut() else {
            return;
        };
        match top {
            Rest::Items(items, first) => match items.next() {
                Some(item) => {
                    if !std::mem::take(first) {
                        out.raw(b", ");
                    }
                    next = Some(item);
                }
                None => {
                    out.raw(b"]");
                    stack.pop();
                }
            },
            Rest::Members(members, first) => match members.next() {
                Some((k, m)) => {
                    if !std::mem::take(first) {
                        out.raw(b", ");
                    }
                    out.str(k);
                    out.raw(b": ");
                    next = Some(m);
                }
                None => {
                    out.raw(b"}");
                    stack.pop();
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Json;

    #[test]
    fn compact_like_python() {
        let v = Json::Obj(vec![
            (
                b"a".to_vec(),
                Json::Arr(vec![Json::Int(1), Json::Null, Json::Arr(vec![])]),
            ),
            (b"b\n".to_vec(), Json::Str(b"\xc3\xa9\xff".to_vec())),
            (b"c".to_vec(), Json::Obj(vec![])),
            (b"d".to_vec(), Json::Bool(false)),
        ]);
        assert_eq!(
            v.to_string(),
            r#"{"a": [1, null, []], "b\n": "\u00e9\udcff", "c": {}, "d": false}"#
        );
        let mut deep = Json::Int(0);
        for _ in 0..100_000 {
            deep = Json::Arr(vec![deep]);
        }
        assert_eq!(deep.to_string().len(), 200_001);
        // the derived drop would recurse: take it apart by hand
        let mut v = deep;
        while let Json::Arr(mut items) = v {
            v = items.pop().unwrap_or(Json::Null);
        }
    }
}
