//! Identity of list elements: the one table that says how the entries of an
//! image, or the elements of a repeated field, are matched between two
//! images.
//!
//! Matching by identity instead of position is what makes one inserted VMA
//! one addition instead of a cascade of changes. The table is looked up by
//! `message.field` first (the repeated field), then by the element's message
//! type (which covers both an image's entries and every repeated field of
//! that type); anything not in it is matched by position.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt::Write as _;

use criu_image::json::Json;

/// How the elements of one list are matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// By position; shown `[i]`.
    Position,
    /// By position, which stands for a number: element `i` is the `i`-th of
    /// `first, first + 1, ...` leaving out `skip`; shown by its name in
    /// `names`, or the number.
    Numbered {
        /// The number of element 0.
        first: u64,
        /// Numbers that have no element.
        skip: &'static [u64],
        /// Names of numbers.
        names: &'static [(u64, &'static str)],
    },
    /// By the values of these fields (dotted paths into the element); shown
    /// `[f=v,g=w]` with values as `crit show` prints them.
    Fields(&'static [&'static str]),
    /// By an address range from two fields; shown `[start-end]` in bare hex,
    /// as in /proc/PID/maps.
    Range(&'static str, &'static str),
    /// There is one such element per list (a header entry); shown `[name]`.
    Const(&'static str),
    /// Scalar elements matched by value, as a set; shown `[value]`.
    Set,
    /// A flat list of (key, value) pairs, as the saved auxiliary vector:
    /// values matched by key, shown by the key's name in the table.
    Pairs(&'static [(u64, &'static str)]),
}

use Key::{Const, Fields, Numbered, Pairs, Range, Set};

const ID: Key = Fields(&["id"]);

/// Signal numbers as Linux numbers them on x86, arm, arm64, ppc64, s390,
/// riscv and loongarch (asm-generic); CRIU's sigactions skip SIGKILL and
/// SIGSTOP (criu/sigact.c).
const SIGNALS: &[(u64, &str)] = &[
    (1, "SIGHUP"),
    (2, "SIGINT"),
    (3, "SIGQUIT"),
    (4, "SIGILL"),
    (5, "SIGTRAP"),
    (6, "SIGABRT"),
    (7, "SIGBUS"),
    (8, "SIGFPE"),
    (9, "SIGKILL"),
    (10, "SIGUSR1"),
    (11, "SIGSEGV"),
    (12, "SIGUSR2"),
    (13, "SIGPIPE"),
    (14, "SIGALRM"),
    (15, "SIGTERM"),
    (16, "SIGSTKFLT"),
    (17, "SIGCHLD"),
    (18, "SIGCONT"),
    (19, "SIGSTOP"),
    (20, "SIGTSTP"),
    (21, "SIGTTIN"),
    (22, "SIGTTOU"),
    (23, "SIGURG"),
    (24, "SIGXCPU"),
    (25, "SIGXFSZ"),
    (26, "SIGVTALRM"),
    (27, "SIGPROF"),
    (28, "SIGWINCH"),
    (29, "SIGIO"),
    (30, "SIGPWR"),
    (31, "SIGSYS"),
];

/// Resource numbers of getrlimit(2); CRIU saves all 16 in order
/// (criu/cr-dump.c dump_task_rlimits).
const RLIMITS: &[(u64, &str)] = &[
    (0, "RLIMIT_CPU"),
    (1, "RLIMIT_FSIZE"),
    (2, "RLIMIT_DATA"),
    (3, "RLIMIT_STACK"),
    (4, "RLIMIT_CORE"),
    (5, "RLIMIT_RSS"),
    (6, "RLIMIT_NPROC"),
    (7, "RLIMIT_NOFILE"),
    (8, "RLIMIT_MEMLOCK"),
    (9, "RLIMIT_AS"),
    (10, "RLIMIT_LOCKS"),
    (11, "RLIMIT_SIGPENDING"),
    (12, "RLIMIT_MSGQUEUE"),
    (13, "RLIMIT_NICE"),
    (14, "RLIMIT_RTPRIO"),
    (15, "RLIMIT_RTTIME"),
];

/// The entries of an itimers image: ITIMER_REAL, _VIRTUAL, _PROF.
const ITIMERS: &[(u64, &str)] = &[(0, "real"), (1, "virt"), (2, "prof")];

/// Auxiliary vector keys (linux/auxvec.h, asm/auxvec.h).
const AUXV: &[(u64, &str)] = &[
    (0, "AT_NULL"),
    (1, "AT_IGNORE"),
    (2, "AT_EXECFD"),
    (3, "AT_PHDR"),
    (4, "AT_PHENT"),
    (5, "AT_PHNUM"),
    (6, "AT_PAGESZ"),
    (7, "AT_BASE"),
    (8, "AT_FLAGS"),
    (9, "AT_ENTRY"),
    (10, "AT_NOTELF"),
    (11, "AT_UID"),
    (12, "AT_EUID"),
    (13, "AT_GID"),
    (14, "AT_EGID"),
    (15, "AT_PLATFORM"),
    (16, "AT_HWCAP"),
    (17, "AT_CLKTCK"),
    (23, "AT_SECURE"),
    (24, "AT_BASE_PLATFORM"),
    (25, "AT_RANDOM"),
    (26, "AT_HWCAP2"),
    (27, "AT_RSEQ_FEATURE_SIZE"),
    (28, "AT_RSEQ_ALIGN"),
    (29, "AT_HWCAP3"),
    (30, "AT_HWCAP4"),
    (31, "AT_EXECFN"),
    (32, "AT_SYSINFO"),
    (33, "AT_SYSINFO_EHDR"),
    (51, "AT_MINSIGSTKSZ"),
];

/// The identity table: `message.field` (a repeated field) or a message type
/// (its entries in an image and its elements in any repeated field).
pub static KEYS: &[(&str, Key)] = &[
    // processes and threads
    ("pstree_entry", Fields(&["pid"])),
    ("pstree_entry.threads", Set),
    (
        "sa_entry",
        Numbered {
            first: 1,
            skip: &[9, 19],
            names: SIGNALS,
        },
    ),
    (
        "rlimit_entry",
        Numbered {
            first: 0,
            skip: &[],
            names: RLIMITS,
        },
    ),
    (
        "itimer_entry",
        Numbered {
            first: 0,
            skip: &[],
            names: ITIMERS,
        },
    ),
    ("posix_timer_entry", Fields(&["it_id"])),
    ("creds_entry.groups", Set),
    ("user_desc_t", Fields(&["entry_number"])),
    // memory
    ("mm_entry.mm_saved_auxv", Pairs(AUXV)),
    ("vma_entry", Range("start", "end")),
    ("aio_ring_entry", ID),
    ("pagemap_head", Const("head")),
    ("pagemap_entry", Fields(&["vaddr"])),
    // descriptors and files
    ("fdinfo_entry", Fields(&["fd"])),
    ("file_entry", ID),
    ("reg_file_entry", ID),
    ("ghost_file_entry", Const("file")),
    ("ghost_chunk_entry", Fields(&["off"])),
    ("remap_file_path_entry", Fields(&["orig_id"])),
    ("pipe_entry", ID),
    ("fifo_entry", ID),
    ("pipe_data_entry", Fields(&["pipe_id"])),
    ("eventfd_file_entry", ID),
    ("eventpoll_file_entry", ID),
    ("eventpoll_tfd_entry", Fields(&["id", "tfd"])),
    ("signalfd_entry", ID),
    ("timerfd_entry", ID),
    ("inotify_file_entry", ID),
    ("inotify_wd_entry", Fields(&["id", "wd"])),
    ("fanotify_file_entry", ID),
    ("tty_file_entry", ID),
    ("tty_info_entry", ID),
    ("tty_data_entry", Fields(&["tty_id"])),
    ("memfd_file_entry", ID),
    ("memfd_inode_entry", Fields(&["inode_id"])),
    ("bpfmap_file_entry", ID),
    ("bpfmap_data_entry", Fields(&["map_id"])),
    ("ext_file_entry", ID),
    ("pidfd_entry", ID),
    ("ns_file_entry", ID),
    ("file_lock_entry", Fields(&["pid", "fd", "start"])),
    // sockets and network
    ("unix_sk_entry", ID),
    ("inet_sk_entry", ID),
    ("packet_sock_entry", ID),
    ("packet_mclist", Fields(&["index", "type"])),
    ("netlink_sk_entry", ID),
    ("sk_packet_entry", Fields(&["id_for"])),
    ("tunfile_entry", ID),
    ("net_device_entry", Fields(&["ifindex"])),
    ("netns_id", Fields(&["target_ns_id"])),
    // namespaces, mounts, cgroups, LSMs
    ("mnt_entry", Fields(&["mnt_id"])),
    ("uid_gid_extent", Fields(&["first"])),
    ("ipc_shm_entry", Fields(&["desc.id"])),
    ("ipc_sem_entry", Fields(&["desc.id"])),
    ("ipc_msg_entry", Fields(&["desc.id"])),
    ("binfmt_misc_entry", Fields(&["name"])),
    ("cg_set_entry", ID),
    ("cg_member_entry", Fields(&["name"])),
    ("cg_controller_entry", Fields(&["cnames"])),
    ("cgroup_dir_entry", Fields(&["dir_name"])),
    ("cgroup_prop_entry", Fields(&["name"])),
    ("aa_namespace", Fields(&["name"])),
    ("aa_policy", Fields(&["name"])),
    ("irmap_cache_entry", Fields(&["dev", "inode"])),
];

/// The key for a list: the repeated field `parent.field` if the table names
/// it, else the element type `element`, else [`Key::Position`].
pub fn key_for(parent: Option<&str>, field: Option<&str>, element: Option<&str>) -> Key {
    let lookup = |name: &str| KEYS.iter().find(|(n, _)| *n == name).map(|(_, k)| *k);
    if let (Some(p), Some(f)) = (parent, field) {
        if let Some(k) = lookup(&format!("{p}.{f}")) {
            return k;
        }
    }
    element.and_then(lookup).unwrap_or(Key::Position)
}

/// One part of an element's identity; parts compare numerically when they
/// are numbers (hex or decimal), so elements come out in address/fd order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    /// A number.
    Int(i128),
    /// Anything else, as its text.
    Text(String),
}

/// An element's identity: what it is matched on, how it sorts, how it is
/// shown in paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    /// The values matched on.
    pub parts: Vec<Part>,
    /// The text between the brackets in a path.
    pub label: String,
    /// The n-th element with these parts (elements with equal keys are
    /// matched in order); shown as a `#n` suffix from the second on.
    pub nth: usize,
}

impl Ident {
    /// The path segment: `[label]`, or `[label]#n`.
    pub fn segment(&self) -> String {
        if self.nth == 0 {
            format!("[{}]", self.label)
        } else {
            format!("[{}]#{}", self.label, self.nth + 1)
        }
    }
}

impl Ord for Ident {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts
            .cmp(&other.parts)
            .then(self.nth.cmp(&other.nth))
            .then_with(|| self.label.cmp(&other.label))
    }
}

impl PartialOrd for Ident {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A value as a key part: `"0x10"` and `16` are both the number 16.
fn part(v: Option<&Json>) -> Part {
    match v {
        Some(Json::Int(n)) => Part::Int(*n),
        Some(Json::Str(s)) => {
            let text = String::from_utf8_lossy(s);
            match text
                .strip_prefix("0x")
                .and_then(|h| i128::from_str_radix(h, 16).ok())
            {
                Some(n) => Part::Int(n),
                None => Part::Text(text.into_owned()),
            }
        }
        Some(v) => Part::Text(super::render::plain(v)),
        None => Part::Text("-".to_owned()),
    }
}

/// The member at a dotted path (`desc.id`).
fn member<'a>(v: &'a Json, path: &str) -> Option<&'a Json> {
    path.split('.').try_fold(v, |v, name| v.get(name))
}

fn named(names: &[(u64, &str)], n: u64) -> String {
    names
        .iter()
        .find(|(k, _)| *k == n)
        .map_or_else(|| n.to_string(), |(_, name)| (*name).to_owned())
}

/// The identities of a list's elements, with the element each one names.
/// For [`Key::Pairs`] the elements are the values of the pairs.
pub fn idents<'a>(key: Key, items: &'a [Json]) -> Vec<(Ident, &'a Json)> {
    let mut out: Vec<(Ident, &Json)> = Vec::with_capacity(items.len());
    let mut seen: HashMap<Vec<Part>, usize> = HashMap::new();
    let mut push = |parts: Vec<Part>, label: String, v: &'a Json| {
        let count = seen.entry(parts.clone()).or_insert(0);
        let nth = *count;
        *count += 1;
        out.push((Ident { parts, label, nth }, v));
    };
    match key {
        Key::Position => {
            for (i, v) in items.iter().enumerate() {
                push(vec![Part::Int(i as i128)], i.to_string(), v);
            }
        }
        Key::Numbered { first, skip, names } => {
            let mut n = first;
            for v in items {
                while skip.contains(&n) {
                    n = n.saturating_add(1);
                }
                push(vec![Part::Int(i128::from(n))], named(names, n), v);
                n = n.saturating_add(1);
            }
        }
        Key::Fields(fields) => {
            for v in items {
                let mut parts = Vec::with_capacity(fields.len());
                let mut label = String::new();
                for (i, f) in fields.iter().enumerate() {
                    let m = member(v, f);
                    if i > 0 {
                        label.push(',');
                    }
                    let _ = write!(
                        label,
                        "{f}={}",
                        m.map_or_else(|| "-".to_owned(), super::render::plain)
                    );
                    parts.push(part(m));
                }
                push(parts, label, v);
            }
        }
        Key::Range(start, end) => {
            for v in items {
                let (s, e) = (part(v.get(start)), part(v.get(end)));
                let label = match (&s, &e) {
                    (Part::Int(s), Part::Int(e)) => format!("{s:x}-{e:x}"),
                    _ => format!("{}-{}", text(&s), text(&e)),
                };
                push(vec![s, e], label, v);
            }
        }
        Key::Const(name) => {
            for v in items {
                push(vec![Part::Text(name.to_owned())], name.to_owned(), v);
            }
        }
        Key::Set => {
            for v in items {
                let p = part(Some(v));
                push(vec![p], super::render::plain(v), v);
            }
        }
        Key::Pairs(names) => {
            for pair in items.chunks(2) {
                let (k, v) = match pair {
                    [k, v] => (k, v),
                    [k] => (k, &Json::Null),
                    _ => continue,
                };
                let label = match k {
                    Json::Int(n) => {
                        u64::try_from(*n).map_or_else(|_| n.to_string(), |n| named(names, n))
                    }
                    k => super::render::plain(k),
                };
                push(vec![part(Some(k))], label, v);
            }
        }
    }
    out
}

fn text(p: &Part) -> String {
    match p {
        Part::Int(n) => n.to_string(),
        Part::Text(t) => t.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_prefers_the_field() {
        assert_eq!(
            key_for(Some("pstree_entry"), Some("threads"), None),
            Key::Set
        );
        assert_eq!(
            key_for(Some("mm_entry"), Some("vmas"), Some("vma_entry")),
            Range("start", "end")
        );
        assert_eq!(key_for(None, None, Some("core_entry")), Key::Position);
    }

    #[test]
    fn sigactions_skip_kill_and_stop() {
        let items = vec![Json::Null; 20];
        let ids = idents(key_for(None, None, Some("sa_entry")), &items);
        let labels: Vec<_> = ids.iter().map(|(i, _)| i.label.as_str()).collect();
        assert_eq!(labels[7], "SIGFPE");
        assert_eq!(labels[8], "SIGUSR1");
        assert_eq!(labels[13], "SIGTERM");
        assert_eq!(labels[17], "SIGTSTP");
    }

    #[test]
    fn duplicates_are_numbered() {
        let e = |id: i128| Json::Obj(vec![(b"id_for".to_vec(), Json::Int(id))]);
        let items = vec![e(3), e(3), e(1)];
        let ids = idents(Fields(&["id_for"]), &items);
        let segs: Vec<_> = ids.iter().map(|(i, _)| i.segment()).collect();
        assert_eq!(segs, ["[id_for=3]", "[id_for=3]#2", "[id_for=1]"]);
    }

    #[test]
    fn ranges_in_bare_hex() {
        let vma = Json::Obj(vec![
            (b"start".to_vec(), Json::Str(b"0x7f3a1000".to_vec())),
            (b"end".to_vec(), Json::Str(b"0x7f3a3000".to_vec())),
        ]);
        let items = [vma];
        let ids = idents(Range("start", "end"), &items);
        assert_eq!(ids[0].0.segment(), "[7f3a1000-7f3a3000]");
    }
}
