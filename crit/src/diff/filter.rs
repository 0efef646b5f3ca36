//! What not to show: `--ignore` patterns and the `--same-program` set.
//!
//! A pattern is `FILE PATH` or a single word. `*` matches any run of
//! characters (dots and brackets too), `?` any one character; everything
//! else matches itself. A pattern hides the paths it matches and everything
//! under them (`thread_info.fpregs` hides every register in it).
//!
//! - `FILE PATH`: in files whose name matches FILE, the paths matching PATH.
//! - `WORD`: whole files whose name matches it (`stats-*`), and in any file
//!   the paths matching it (`thread_info.gpregs`).

/// What changes between any two dumps of one running program, so says
/// `--same-program`. Each line is a pattern; why it changes is noted.
pub static SAME_PROGRAM: &[&str] = &[
    // dump statistics: times and counters of the dump itself
    "stats-*",
    // logs kept in the images directory (criu -o)
    "*.log",
    // when and by which criu run the dump was made
    "inventory.img dump_uptime",
    "inventory.img dump_criu_run_id",
    // the clocks at dump time (time namespace offsets are saved as readings)
    "timens-*.img monotonic",
    "timens-*.img boottime",
    // registers: the program runs between dumps
    "core-*.img thread_info.gpregs",
    "core-*.img thread_info.fpregs",
    "core-*.img ti_*.gpregs",
    "core-*.img ti_*.fp*",
    "core-*.img ti_*.v*",
    "core-*.img ti_*.tmstate",
    // timer remainders and overrun counts
    "core-*.img tc.timers.*.vsec",
    "core-*.img tc.timers.*.vusec",
    "core-*.img tc.timers.posix[*].vnsec",
    "core-*.img tc.timers.posix[*].overrun",
    "itimers-*.img [*].vsec",
    "itimers-*.img [*].vusec",
    "posix-timers-*.img [*].vsec",
    "posix-timers-*.img [*].vnsec",
    "posix-timers-*.img [*].overrun",
    "files.img [*].tfd.vsec",
    "files.img [*].tfd.vnsec",
    "files.img [*].tfd.ticks",
    "timerfd.img [*].vsec",
    "timerfd.img [*].vnsec",
    "timerfd.img [*].ticks",
    // kernel object ids CRIU numbers afresh on every dump
    "ids-*.img",
    "core-*.img ids",
    "inventory.img root_ids",
    // TCP sequence numbers and timestamps move on while the program runs
    "tcp-stream-*.img inq_seq",
    "tcp-stream-*.img outq_seq",
    "tcp-stream-*.img timestamp",
    "tcp-stream-*.img snd_wl1",
    "tcp-stream-*.img rcv_wup",
];

#[derive(Debug, Clone)]
struct Pattern {
    file: Option<String>,
    path: String,
}

/// A set of patterns.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    patterns: Vec<Pattern>,
}

impl Filter {
    /// The user's patterns, plus [`SAME_PROGRAM`] when asked.
    pub fn new(ignore: &[String], same_program: bool) -> Filter {
        let extra = if same_program { SAME_PROGRAM } else { &[] };
        let patterns = ignore
            .iter()
            .map(String::as_str)
            .chain(extra.iter().copied())
            .map(|p| match p.split_once(' ') {
                Some((f, path)) => Pattern {
                    file: Some(f.to_owned()),
                    path: path.trim_start().to_owned(),
                },
                None => Pattern {
                    file: None,
                    path: p.to_owned(),
                },
            })
            .collect();
        Filter { patterns }
    }

    /// The whole file is hidden.
    pub fn file(&self, file: &str) -> bool {
        self.patterns
            .iter()
            .any(|p| p.file.is_none() && glob(&p.path, file))
    }

    /// The path (and what is under it) is hidden in this file. Callers ask
    /// at every level on the way down, so matching the path itself is enough
    /// to hide what is under it.
    pub fn path(&self, file: &str, path: &str) -> bool {
        if path.is_empty() {
            return false;
        }
        self.patterns.iter().any(|p| match &p.file {
            Some(f) => glob(f, file) && glob(&p.path, path),
            None => glob(&p.path, path),
        })
    }
}

/// Wildcard match of the whole text: `*` any run, `?` any one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // where the last `*` was, and the text position it matched up to
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("core-*.img", "core-42.img"));
        assert!(!glob("core-*.img", "core-42.img.bak"));
        assert!(glob("vmas[*].prot", "vmas[7f3a1000-7f3a3000].prot"));
        assert!(glob("a?c", "abc"));
        assert!(glob("*", ""));
        assert!(!glob("", "x"));
        assert!(glob("*x*y", "axbxcy"));
    }

    #[test]
    fn patterns() {
        let f = Filter::new(&["mm-*.img vmas[*].madv".to_owned()], true);
        assert!(f.file("stats-dump"));
        assert!(!f.file("mm-1.img"));
        assert!(f.path("mm-1.img", "vmas[1000-2000].madv"));
        assert!(!f.path("core-1.img", "vmas[1000-2000].madv"));
        assert!(f.path("core-1.img", "thread_info.gpregs"));
        assert!(!f.path("core-1.img", "thread_info.clear_tid_addr"));
        assert!(f.path("core-1.img", "tc.timers.real.vsec"));
    }
}
