//! What the dumper collects from odd targets: file names that are not
//! UTF-8, a huge PROT_NONE reservation, a page made PROT_NONE after it was
//! written (fixtures/progs/oddmem.c). The dumper binary runs as a child so
//! that its peak memory can be measured.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use criu_image::pb;

use crate::support::{decode, serial};

/// The victim binary, compiled once.
fn oddmem_bin() -> Option<&'static Path> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/progs/oddmem.c");
        let out = std::env::temp_dir().join(format!("dumper-oddmem-{}", std::process::id()));
        match Command::new("cc")
            .args(["-O1", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
        {
            Ok(s) if s.success() => Some(out),
            _ => {
                eprintln!("SKIP: cannot compile {} with cc", src.display());
                None
            }
        }
    })
    .as_deref()
}

/// A running oddmem, killed on drop.
struct OddMem {
    child: Child,
    pid: i32,
    /// The directory holding the file.
    dir: tempfile::TempDir,
    name: &'static [u8],
    file: u64,
    big: u64,
    none: u64,
}

impl Drop for OddMem {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OddMem {
    /// Starts oddmem with its file named `name`.
    fn spawn(name: &'static [u8]) -> Option<OddMem> {
        let bin = oddmem_bin()?;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("report");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let child = Command::new(bin)
            .arg(&fifo)
            .arg(dir.path())
            .arg(OsStr::from_bytes(name))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut s = String::new();
            let r = File::open(&fifo).and_then(|mut f| f.read_to_string(&mut s));
            let _ = tx.send(r.map(|_| s));
        });
        // Not a timing assumption: only a bound on a victim that died.
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("oddmem did not report")
            .unwrap();
        let addr = |k: &str| {
            let v = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix(k)?.strip_prefix('='))
                .unwrap_or_else(|| panic!("no {k} in {line:?}"));
            u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap()
        };
        let v = OddMem {
            pid,
            file: addr("file"),
            big: addr("big"),
            none: addr("none"),
            child,
            dir,
            name,
        };
        match dumper::sys::Frozen::freeze(nix::unistd::Pid::from_raw(pid), false) {
            Ok(_) => Some(v),
            Err(e) => {
                eprintln!("SKIP: cannot ptrace the victim: {e}");
                None
            }
        }
    }

    /// The full name of the file, as bytes.
    fn file_name(&self) -> Vec<u8> {
        let mut n = self.dir.path().as_os_str().as_bytes().to_vec();
        n.push(b'/');
        n.extend_from_slice(self.name);
        n
    }

    fn traced(&self) -> bool {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("TracerPid:"))
            .map(|v| v.trim() != "0")
            .unwrap()
    }
}

/// Runs `dumper -t PID -D DIR --leave-running` as a child; returns whether
/// it succeeded, its stderr and its peak RSS in KiB (from wait4).
// The child is reaped by wait4, which std's `wait` does not give the
// rusage of.
#[allow(clippy::zombie_processes)]
fn run_dumper(pid: i32, dir: &Path) -> (bool, String, u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dumper"))
        .args(["-t", &pid.to_string(), "-D"])
        .arg(dir)
        .arg("--leave-running")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let mut status = 0;
    // SAFETY: rusage is plain integers, for which all zeroes is a value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 writes one int to `status` and one rusage to `ru`,
    // both live locals; the child is ours and not waited for yet (its
    // `Child` is dropped without waiting).
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    assert_eq!(r, child.id() as i32, "wait4");
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    (ok, err, ru.ru_maxrss as u64)
}

/// Starts oddmem with its file named `name` and dumps it (leaving it
/// running): the victim, the images and the dumper's peak RSS in KiB.
fn dumped(name: &'static [u8]) -> Option<(OddMem, tempfile::TempDir, u64)> {
    let v = OddMem::spawn(name)?;
    let out = tempfile::tempdir().unwrap();
    let (ok, err, peak_kib) = run_dumper(v.pid, out.path());
    assert!(ok, "dumper failed: {err}");
    Some((v, out, peak_kib))
}

/// Regression test for issue 7, defect 2: the dumper read a whole VMA's
/// pagemap at once (8 bytes a page: 2 GiB twice over for a 1 TiB
/// reservation) and kept the target frozen seconds.
#[test]
fn huge_reservation_costs_no_memory() {
    let _g = serial();
    let Some((v, out, peak_kib)) = dumped(b"plain") else {
        return;
    };
    assert!(!v.traced(), "victim still traced");
    eprintln!("dumper peak RSS: {peak_kib} KiB");
    assert!(
        peak_kib < 64 << 10,
        "dumper peak RSS {peak_kib} KiB for a 1 TiB reservation"
    );

    let mm: Vec<pb::MmEntry> = decode(&out.path().join(format!("mm-{}.img", v.pid)));
    let big = mm[0]
        .vmas
        .iter()
        .find(|m| m.start == v.big)
        .expect("the reservation is in mm");
    assert_eq!(big.end - big.start, 1 << 40);
    assert_eq!(big.prot, 0);
    assert_ne!(big.flags & libc::MAP_NORESERVE as u32, 0);
    let none = mm[0].vmas.iter().find(|m| m.start == v.none).unwrap();
    assert_eq!(none.prot, 0);

    // The page written before mprotect(PROT_NONE) is dumped with its
    // contents; nothing of the reservation is.
    let pm: Vec<pb::PagemapEntry> = decode(&out.path().join(format!("pagemap-{}.img", v.pid)));
    let pages = std::fs::read(out.path().join("pages-1.img")).unwrap();
    let mut off = 0usize;
    let mut found = false;
    for e in &pm {
        let n = e.nr_pages.unwrap();
        assert!(
            e.vaddr + n * 4096 <= v.big || e.vaddr >= v.big + (1 << 40),
            "pages dumped from the reservation"
        );
        if e.vaddr <= v.none && v.none < e.vaddr + n * 4096 {
            let at = off + (v.none - e.vaddr) as usize;
            for i in 0..512usize {
                let w = u64::from_le_bytes(pages[at + i * 8..at + i * 8 + 8].try_into().unwrap());
                assert_eq!(w, 0xD0D0CAFE00000000 + i as u64);
            }
            found = true;
        }
        off += (n * 4096) as usize;
    }
    assert!(found, "the PROT_NONE page that was written is dumped");
}

/// Regression test for issue 7, defect 3: names that are not UTF-8 came
/// out of an fd as U+FFFD and made a mapping fail the whole dump.
#[test]
fn file_names_are_bytes() {
    let _g = serial();
    let Some((v, out, _)) = dumped(b"f\xff\xfe") else {
        return;
    };
    let name = v.file_name();

    let files: Vec<pb::FileEntry> = decode(&out.path().join("files.img"));
    let fdinfo: Vec<pb::FdinfoEntry> = decode(&out.path().join("fdinfo-2.img"));
    let fd3 = fdinfo.iter().find(|f| f.fd == 3).expect("fd 3 dumped");
    let open = files.iter().find(|f| f.id == fd3.id).unwrap();
    assert_eq!(open.reg.as_ref().unwrap().name, name, "fd 3's name");
    let mm: Vec<pb::MmEntry> = decode(&out.path().join(format!("mm-{}.img", v.pid)));
    let vma = mm[0].vmas.iter().find(|m| m.start == v.file).unwrap();
    let mapped = files.iter().find(|f| u64::from(f.id) == vma.shmid).unwrap();
    assert_eq!(
        mapped.reg.as_ref().unwrap().name,
        name,
        "the mapping's name"
    );
    assert_eq!(mapped.reg.as_ref().unwrap().size, Some(8192));

    // The image holds the name's bytes as they are.
    let raw = std::fs::read(out.path().join("files.img")).unwrap();
    let count = raw.windows(name.len()).filter(|w| *w == name).count();
    assert_eq!(count, 2, "the exact name, for the fd and for the mapping");

    // crit shows them in python's surrogateescape form.
    let f = File::open(out.path().join("files.img")).unwrap();
    let reader = criu_image::ImageReader::new(std::io::BufReader::new(f)).unwrap();
    let json = criu_image::json::decode(reader, Vec::new(), Default::default()).unwrap();
    let json = String::from_utf8(json).unwrap();
    let dir = v.dir.path().to_str().unwrap();
    let want = format!("\"name\": \"{dir}/f\\udcff\\udcfe\"");
    assert_eq!(json.matches(&want).count(), 2, "{want} in {json}");
    assert!(!json.contains('\u{fffd}'));
    assert!(Path::new(OsStr::from_bytes(&name)).exists());
}

/// The two ways of reading pagemap (PAGEMAP_SCAN, and pread of every
/// entry) find the same pages to dump in a real, frozen process.
#[test]
fn pagemap_scan_and_pread_agree() {
    use dumper::dump::pagemap::page_wanted;
    use dumper::proc::ProcDir;
    use dumper::sys::Pagemap;

    let _g = serial();
    let Some(v) = OddMem::spawn(b"plain") else {
        return;
    };
    let frozen = dumper::sys::Frozen::freeze(nix::unistd::Pid::from_raw(v.pid), false).unwrap();
    let dir = ProcDir::open(v.pid).unwrap();
    let me = ProcDir::myself().unwrap();
    let zero = dumper::collect::zero_page_pfn(&me);
    let open = || dir.open_file("pagemap").unwrap();
    let mut scan = Pagemap::new(dir.path_of("pagemap"), open());
    let mut pread = Pagemap::without_scan(dir.path_of("pagemap"), open());
    eprintln!("PAGEMAP_SCAN used: {}", scan.uses_scan());
    let mut total = 0;
    for m in dir.read_smaps().unwrap() {
        // The reservation would take pread a while in a debug build; its
        // emptiness is checked in huge_reservation_costs_no_memory.
        if m.end - m.start > 1 << 30 || m.path == b"[vsyscall]" {
            continue;
        }
        let wanted = |p: &mut Pagemap| {
            let mut pages = Vec::new();
            p.read(m.start, m.end, &mut |addr, entries| {
                for (i, &e) in entries.iter().enumerate() {
                    if page_wanted(e, zero) {
                        pages.push(addr + i as u64 * 4096);
                    }
                }
            })
            .unwrap();
            pages
        };
        let a = wanted(&mut scan);
        let b = wanted(&mut pread);
        assert_eq!(
            a,
            b,
            "pages of {:x}-{:x} {:?}",
            m.start,
            m.end,
            m.path_lossy()
        );
        total += a.len();
    }
    assert!(total > 0, "no page found to dump");
    drop(frozen);
    assert!(!v.traced());
}
