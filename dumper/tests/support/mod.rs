//! Victim process handling shared by the live tests.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

static LOCK: Mutex<()> = Mutex::new(());

/// One live test at a time: they trace, kill and time processes.
pub fn serial() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A live test cannot run here (no C compiler, no ptrace...). Outside CI
/// that skips the test, said on the terminal (libtest would swallow an
/// `eprintln!` of a test that passes). In CI (`CI` set, as CI services do;
/// ours runs as root, where ptrace works) a test that cannot run fails:
/// it must not be counted as passed.
pub fn skip(why: impl std::fmt::Display) {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    if ci {
        panic!("cannot run this test in CI: {why}");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIP: {why}");
}

/// Compiles a test program from C, once per run of the tests.
fn compile(
    cache: &'static OnceLock<Option<PathBuf>>,
    name: &str,
    src: &Path,
) -> Option<&'static Path> {
    cache
        .get_or_init(|| {
            let out = std::env::temp_dir().join(format!("dumper-{name}-{}", std::process::id()));
            let st = Command::new("cc")
                .args(["-O1", "-pthread", "-o"])
                .arg(&out)
                .arg(src)
                .status();
            match st {
                Ok(s) if s.success() => Some(out),
                _ => {
                    skip(format_args!("cannot compile {} with cc", src.display()));
                    None
                }
            }
        })
        .as_deref()
}

/// The victim binary, compiled once from fixtures/progs/victim.c.
pub fn victim_bin() -> Option<&'static Path> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/progs/victim.c");
    compile(&BIN, "victim", &src)
}

/// The refusal tests' target, compiled once from tests/support/mapper.c.
pub fn mapper_bin() -> Option<&'static Path> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/mapper.c");
    compile(&BIN, "mapper", &src)
}

/// A line the victim wrote: `what key=value ...`.
#[derive(Debug, Clone)]
pub struct Report {
    pub what: String,
    pub kv: HashMap<String, String>,
}

impl Report {
    fn parse(line: &str) -> Report {
        let mut it = line.split_whitespace();
        let what = it.next().unwrap_or("").to_string();
        let kv = it
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Report { what, kv }
    }

    pub fn get(&self, k: &str) -> &str {
        self.kv.get(k).map(String::as_str).unwrap_or("")
    }

    pub fn num(&self, k: &str) -> u64 {
        let v = self.get(k);
        if let Some(h) = v.strip_prefix("0x") {
            u64::from_str_radix(h, 16).unwrap()
        } else if k == "sigmask" {
            u64::from_str_radix(v, 16).unwrap()
        } else {
            v.parse().unwrap()
        }
    }
}

/// A running victim, killed on drop.
pub struct Victim {
    pub child: Child,
    pub pid: i32,
    pub ready: Report,
    fifo: PathBuf,
    _dir: tempfile::TempDir,
}

fn read_fifo(fifo: &Path) -> Option<String> {
    let (tx, rx) = mpsc::channel();
    let p = fifo.to_path_buf();
    std::thread::spawn(move || {
        let mut s = String::new();
        let r = File::open(&p).and_then(|mut f| f.read_to_string(&mut s));
        let _ = tx.send(r.map(|_| s));
    });
    // Not a timing assumption: only a bound on a victim that died.
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(s)) => Some(s),
        _ => {
            // Unblock the reader thread if the victim never wrote.
            let _ = std::fs::OpenOptions::new().write(true).open(fifo);
            None
        }
    }
}

impl Victim {
    /// Starts the victim with `threads` extra threads and waits for its
    /// "ready" line. stdout is /dev/null unless `stdout` says otherwise.
    pub fn spawn_with(threads: u32, stdout: Stdio) -> Option<Victim> {
        Some(Self::spawn_prog(
            victim_bin()?,
            &[&threads.to_string()],
            stdout,
        ))
    }

    /// Starts `bin REPORT_FIFO ARGS...` and waits for its "ready" line.
    pub fn spawn_prog(bin: &Path, args: &[&str], stdout: Stdio) -> Victim {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("report");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let child = Command::new(bin)
            .arg(&fifo)
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let line = read_fifo(&fifo).expect("victim did not report ready");
        let ready = Report::parse(&line);
        assert_eq!(ready.what, "ready", "{line}");
        Victim {
            child,
            pid,
            ready,
            fifo,
            _dir: dir,
        }
    }

    pub fn spawn(threads: u32) -> Option<Victim> {
        Self::spawn_with(threads, Stdio::null())
    }

    /// Asks the victim for a status line (SIGUSR1) and returns it.
    pub fn status(&self) -> Report {
        kill(Pid::from_raw(self.pid), Signal::SIGUSR1).unwrap();
        let line = read_fifo(&self.fifo).expect("victim did not answer");
        let r = Report::parse(&line);
        assert_eq!(r.what, "status", "{line}");
        r
    }

    /// The victim's TracerPid (0 when nobody traces it).
    pub fn tracer(&self) -> i32 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("TracerPid:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// Checks that the victim goes on as before the dump: running, not
    /// traced, same signal mask, nice and alternate stack, memory intact.
    pub fn assert_untouched(&self) {
        assert_eq!(self.tracer(), 0, "still traced");
        let st = self.status();
        let before = &self.ready;
        assert!(st.num("counter") > 0, "main thread runs");
        assert_eq!(st.get("ok"), "1", "pattern intact");
        for k in ["sigmask", "nice", "ss_sp", "ss_size", "pattern"] {
            assert_eq!(st.get(k), before.get(k), "{k} changed");
        }
        assert_eq!(st.get("workers"), "1", "worker threads run");
        let again = self.status();
        assert!(again.num("counter") > st.num("counter"));
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Skips (returns None) when we may not ptrace the victim.
pub fn ptrace_allowed(v: &Victim) -> bool {
    match dumper::sys::Frozen::freeze(Pid::from_raw(v.pid), false) {
        Ok(f) => {
            drop(f);
            true
        }
        Err(e) => {
            skip(format_args!("cannot ptrace the victim: {e}"));
            false
        }
    }
}

/// A victim ready for a dump, or None (test skipped).
pub fn victim(threads: u32) -> Option<Victim> {
    let v = Victim::spawn(threads)?;
    ptrace_allowed(&v).then_some(v)
}

/// Decodes an image into typed messages: every entry of type `T` (a
/// pagemap image's head, of another type, is left out).
pub fn decode<T: prost::Message + prost::Name + Default>(path: &Path) -> Vec<T> {
    let f = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut r = criu_image::ImageReader::new(std::io::BufReader::new(f)).unwrap();
    let desc = r.desc();
    let mut out = Vec::new();
    while let Some(raw) = r.next_raw() {
        let raw = raw.unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        if desc.message(raw.index) != Some(T::NAME) {
            continue;
        }
        let m = raw.decode_as::<T>();
        out.push(m.unwrap_or_else(|err| panic!("{}: {err}", path.display())));
    }
    out
}

/// Names of the files in a directory, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

pub fn opts(pid: i32, dir: &Path, leave_running: bool) -> dumper::Opts {
    dumper::Opts {
        pid,
        dir: dir.to_path_buf(),
        leave_running,
        verbosity: 0,
        ..Default::default()
    }
}

/// Our uid (owner of /proc/self).
pub fn my_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid()
}
