//! Comparing decoded entries as value trees.
//!
//! An entry becomes the JSON `crit show` prints for it (so values read as
//! there: hex addresses, flag names), parsed back into a [`Json`] tree. Two
//! trees are walked together with the schema at hand: objects member by
//! member, lists element by element matched by identity ([`super::keys`]),
//! anything else compared as a value. Only leaves that differ, and elements
//! present on one side only, are reported.

use std::collections::BTreeMap;

use criu_image::json::{self, Json, JsonOptions};
use criu_image::schema::{schema, MessageInfo};
use criu_image::{Entry, ExtraData, ImageDesc};

use super::filter::Filter;
use super::keys::{self, Ident, Key, Part};
use super::render::Sink;
use super::{Change, What};
use crate::error::Result;

/// Reports differences found in one file.
pub struct Walk<'a> {
    /// The file's name in paths.
    pub file: &'a str,
    /// What not to report.
    pub filter: &'a Filter,
    /// Where differences go.
    pub sink: &'a mut dyn Sink,
    /// Differences reported so far.
    pub count: u64,
    /// Problems reported so far.
    pub troubles: u64,
}

impl Walk<'_> {
    /// Reports one difference unless the filter hides it.
    pub fn emit(&mut self, path: &str, what: What, range: Option<(u64, u64)>) -> Result<()> {
        if self.filter.path(self.file, path) {
            return Ok(());
        }
        self.count += 1;
        self.sink.change(&Change {
            file: self.file.to_owned(),
            path: path.to_owned(),
            what,
            range,
        })
    }

    /// Compares two values of message type `info` (when known) at `path`.
    pub fn value(
        &mut self,
        path: &str,
        info: Option<&MessageInfo>,
        a: &Json,
        b: &Json,
    ) -> Result<()> {
        self.run(Job::Value {
            path: path.to_owned(),
            info,
            a,
            b,
        })
    }

    /// Compares two lists whose elements are matched by `key`.
    pub fn list(
        &mut self,
        path: &str,
        key: Key,
        info: Option<&MessageInfo>,
        la: &[Json],
        lb: &[Json],
    ) -> Result<()> {
        self.run(Job::List {
            path: path.to_owned(),
            key,
            info,
            la,
            lb,
        })
    }

    /// Walks the two trees depth first, in order, with a stack of what is
    /// left to compare instead of recursion: a job's parts are pushed in
    /// reverse, so the first is done (with everything under it) first.
    fn run<'j>(&mut self, first: Job<'j>) -> Result<()> {
        let mut todo = vec![first];
        let mut parts = Vec::new();
        while let Some(job) = todo.pop() {
            match job {
                Job::Emit { path, what } => self.emit(&path, what, None)?,
                Job::Value { path, info, a, b } => {
                    if a == b || self.filter.path(self.file, &path) {
                        continue;
                    }
                    match (a, b) {
                        (Json::Obj(ma), Json::Obj(mb)) => {
                            self.object(&path, info, ma, mb, &mut parts)
                        }
                        (Json::Arr(la), Json::Arr(lb)) => parts.push(Job::List {
                            path,
                            key: Key::Position,
                            info: None,
                            la,
                            lb,
                        }),
                        _ => self.emit(
                            &path,
                            What::Changed {
                                a: a.clone(),
                                b: b.clone(),
                            },
                            None,
                        )?,
                    }
                }
                Job::List {
                    path,
                    key,
                    info,
                    la,
                    lb,
                } => list(&path, key, info, la, lb, &mut parts),
            }
            todo.extend(parts.drain(..).rev());
        }
        Ok(())
    }

    /// The parts of comparing two objects, in order.
    fn object<'j>(
        &self,
        path: &str,
        info: Option<&'j MessageInfo>,
        ma: &'j [(Vec<u8>, Json)],
        mb: &'j [(Vec<u8>, Json)],
        parts: &mut Vec<Job<'j>>,
    ) {
        // members in A's order, then those only B has; in field order when
        // the message is known (`extra` and unknown names last)
        let mut names: Vec<&[u8]> = ma.iter().map(|(k, _)| k.as_slice()).collect();
        for (k, _) in mb {
            if !names.contains(&k.as_slice()) {
                names.push(k);
            }
        }
        if let Some(info) = info {
            names.sort_by_key(|n| {
                info.fields
                    .iter()
                    .position(|f| f.desc.name().as_bytes() == *n)
                    .unwrap_or(usize::MAX)
            });
        }
        for name in names {
            let text = String::from_utf8_lossy(name);
            let sub = join(path, &text);
            let field = info.and_then(|i| i.fields.iter().find(|f| f.desc.name() == text));
            let sub_info = field.and_then(|f| schema().message_of(&f.desc));
            match (member(ma, name), member(mb, name)) {
                (Some(Json::Arr(la)), Some(Json::Arr(lb))) => {
                    if la == lb || self.filter.path(self.file, &sub) {
                        continue;
                    }
                    let key = keys::key_for(
                        info.map(|i| i.desc.full_name()),
                        Some(&text),
                        sub_info.map(|i| i.desc.full_name()),
                    );
                    parts.push(Job::List {
                        path: sub,
                        key,
                        info: sub_info,
                        la,
                        lb,
                    });
                }
                (Some(a), Some(b)) => parts.push(Job::Value {
                    path: sub,
                    info: sub_info,
                    a,
                    b,
                }),
                (Some(a), None) => parts.push(Job::Emit {
                    path: sub,
                    what: What::Removed(Some(a.clone())),
                }),
                (None, Some(b)) => parts.push(Job::Emit {
                    path: sub,
                    what: What::Added(Some(b.clone())),
                }),
                (None, None) => {}
            }
        }
    }

    /// Compares the entries of two images of kind `desc`. An image of one
    /// entry on each side (mm, core, inventory...) is compared at the top:
    /// its paths start with field names.
    pub fn entries(&mut self, desc: &ImageDesc, la: &[Json], lb: &[Json]) -> Result<()> {
        // images whose entry 0 has a type of its own (ghost files): the head is
        // compared at the top, the others as a list
        let split = desc.message(0) != desc.message(1);
        if split {
            let h0 = schema().entry(desc, 0);
            match (la.first(), lb.first()) {
                (Some(a), Some(b)) => self.value("", h0, a, b)?,
                (Some(a), None) => self.emit("", What::Removed(Some(a.clone())), None)?,
                (None, Some(b)) => self.emit("", What::Added(Some(b.clone())), None)?,
                (None, None) => {}
            }
            let info = schema().entry(desc, 1);
            let key = keys::key_for(None, None, info.map(|i| i.desc.full_name()));
            return self.list("", key, info, tail(la), tail(lb));
        }
        let info = schema().entry(desc, 0);
        let key = keys::key_for(None, None, info.map(|i| i.desc.full_name()));
        match (la, lb) {
            ([a], [b]) if key == Key::Position => self.value("", info, a, b),
            _ => self.list("", key, info, la, lb),
        }
    }
}

/// What is left to compare.
enum Job<'j> {
    /// Two values at a path.
    Value {
        path: String,
        info: Option<&'j MessageInfo>,
        a: &'j Json,
        b: &'j Json,
    },
    /// Two lists whose elements are matched by `key`.
    List {
        path: String,
        key: Key,
        info: Option<&'j MessageInfo>,
        la: &'j [Json],
        lb: &'j [Json],
    },
    /// A difference found on the way.
    Emit { path: String, what: What },
}

/// The parts of comparing two lists, in identity order.
fn list<'j>(
    path: &str,
    key: Key,
    info: Option<&'j MessageInfo>,
    la: &'j [Json],
    lb: &'j [Json],
    parts: &mut Vec<Job<'j>>,
) {
    type Pair<'j> = (Option<(Ident, &'j Json)>, Option<(Ident, &'j Json)>);
    let mut all: BTreeMap<(Vec<Part>, usize), Pair<'_>> = BTreeMap::new();
    for (id, v) in keys::idents(key, la) {
        let k = (id.parts.clone(), id.nth);
        all.entry(k).or_default().0 = Some((id, v));
    }
    for (id, v) in keys::idents(key, lb) {
        let k = (id.parts.clone(), id.nth);
        all.entry(k).or_default().1 = Some((id, v));
    }
    let set = key == Key::Set;
    for (_, pair) in all {
        match pair {
            (Some((id, a)), Some((_, b))) => parts.push(Job::Value {
                path: format!("{path}{}", id.segment()),
                info,
                a,
                b,
            }),
            (Some((id, a)), None) => parts.push(Job::Emit {
                path: format!("{path}{}", id.segment()),
                what: What::Removed((!set).then(|| a.clone())),
            }),
            (None, Some((id, b))) => parts.push(Job::Emit {
                path: format!("{path}{}", id.segment()),
                what: What::Added((!set).then(|| b.clone())),
            }),
            (None, None) => {}
        }
    }
}

fn tail(l: &[Json]) -> &[Json] {
    l.get(1..).unwrap_or(&[])
}

/// The member `name` of an object (the last one, as python keeps).
fn member<'j>(m: &'j [(Vec<u8>, Json)], name: &[u8]) -> Option<&'j Json> {
    m.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// An entry as `crit show` shows it, with its data (`extra`) summarised:
/// short data as a string of its bytes, longer data by size and hash.
pub fn entry_json(desc: &ImageDesc, entry: &Entry) -> criu_image::Result<Json> {
    let opts = JsonOptions {
        pretty: true,
        nopl: true,
    };
    let mut v = json::entry_to_value(desc, entry, opts)?;
    if let Json::Obj(members) = &mut v {
        members.retain(|(k, _)| k != b"extra");
        if let Some(x) = &entry.extra {
            members.push((b"extra".to_vec(), extra_json(x)));
        }
    }
    Ok(v)
}

/// Data this long or shorter is shown as it is.
const SHOW_BYTES: usize = 64;

fn bytes_json(b: &[u8]) -> Json {
    if b.len() <= SHOW_BYTES {
        return Json::Str(b.to_vec());
    }
    // FNV-1a: enough to tell two payloads of one size apart at a glance
    let hash = b.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &c| {
        (h ^ u64::from(c)).wrapping_mul(0x0100_0000_01b3)
    });
    Json::Str(format!("<{} bytes, fnv1a {hash:016x}>", b.len()).into_bytes())
}

fn extra_json(x: &ExtraData) -> Json {
    match x {
        ExtraData::Bytes(b) => bytes_json(b),
        ExtraData::Tcp { inq, outq } => Json::Obj(vec![
            (b"inq".to_vec(), bytes_json(inq)),
            (b"outq".to_vec(), bytes_json(outq)),
        ]),
        ExtraData::Sems(v) => Json::Arr(v.iter().map(|&s| Json::Int(i128::from(s))).collect()),
        // each queued message as its header, as `crit show` prints it,
        // with its text
        ExtraData::Msgs(msgs) => Json::Arr(
            msgs.iter()
                .map(|(head, text)| {
                    Json::Obj(vec![
                        (b"mtype".to_vec(), Json::Int(i128::from(head.mtype))),
                        (b"msize".to_vec(), Json::Int(i128::from(head.msize))),
                        (b"text".to_vec(), bytes_json(text)),
                    ])
                })
                .collect(),
        ),
    }
}
