//! /proc: pure `parse_*` functions over file contents, and `read_*`
//! functions that read a file of one pid and parse it. The parsers never
//! panic on odd input; they return [`ParseError`] with what was wrong.

use std::path::{Path, PathBuf};

use crate::error::{DumpError, Result};

/// What a parser did not like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

fn perr(s: impl Into<String>) -> ParseError {
    ParseError(s.into())
}

fn read_string(path: &Path) -> Result<String> {
    // ESRCH (the task is exiting) is told apart by DumpError::means_gone.
    std::fs::read_to_string(path).map_err(|e| DumpError::proc(path, e))
}

fn parsed<T>(path: &Path, r: std::result::Result<T, ParseError>) -> Result<T> {
    r.map_err(|ParseError(what)| DumpError::Parse {
        path: path.to_path_buf(),
        what,
    })
}

/// `/proc/PID/<rel>` (or `/proc/PID/task/TID/<rel>`).
pub fn path(pid: i32, tid: Option<i32>, rel: &str) -> PathBuf {
    match tid {
        Some(t) => PathBuf::from(format!("/proc/{pid}/task/{t}/{rel}")),
        None => PathBuf::from(format!("/proc/{pid}/{rel}")),
    }
}

/// The fields of /proc/PID/stat that a dump uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    pub flags: u32,
    pub nice: i32,
    pub num_threads: i64,
    pub start_code: u64,
    pub end_code: u64,
    pub start_stack: u64,
    pub rt_priority: u32,
    pub policy: u32,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
}

/// Parses one line of /proc/PID/stat. The comm may hold spaces and
/// parentheses: it runs from the first '(' to the last ')'.
pub fn parse_stat(s: &str) -> std::result::Result<Stat, ParseError> {
    let open = s.find('(').ok_or_else(|| perr("no '(' before comm"))?;
    let close = s.rfind(')').ok_or_else(|| perr("no ')' after comm"))?;
    if close < open {
        return Err(perr("')' before '('"));
    }
    let pid = s[..open]
        .trim()
        .parse()
        .map_err(|_| perr("bad pid field"))?;
    let comm = s[open + 1..close].to_string();
    // Field 3 (state) is rest[0].
    let rest: Vec<&str> = s[close + 1..].split_whitespace().collect();
    let field = |n: usize| -> std::result::Result<&str, ParseError> {
        rest.get(n - 3)
            .copied()
            .ok_or_else(|| perr(format!("field {n} missing")))
    };
    let num = |n: usize| -> std::result::Result<u64, ParseError> {
        let f = field(n)?;
        f.parse::<u64>()
            .or_else(|_| f.parse::<i64>().map(|v| v as u64))
            .map_err(|_| perr(format!("field {n} is not a number: {f:?}")))
    };
    let state = field(3)?
        .chars()
        .next()
        .ok_or_else(|| perr("empty state"))?;
    Ok(Stat {
        pid,
        comm,
        state,
        ppid: num(4)? as i32,
        pgid: num(5)? as i32,
        sid: num(6)? as i32,
        flags: num(9)? as u32,
        nice: num(19)? as i64 as i32,
        num_threads: num(20)? as i64,
        start_code: num(26)?,
        end_code: num(27)?,
        start_stack: num(28)?,
        rt_priority: num(40)? as u32,
        policy: num(41)? as u32,
        start_data: num(45)?,
        end_data: num(46)?,
        start_brk: num(47)?,
        arg_start: num(48)?,
        arg_end: num(49)?,
        env_start: num(50)?,
        env_end: num(51)?,
    })
}

/// Reads /proc/PID/stat (or a thread's).
pub fn read_stat(pid: i32, tid: Option<i32>) -> Result<Stat> {
    let p = path(pid, tid, "stat");
    let s = read_string(&p)?;
    parsed(&p, parse_stat(s.trim_end()))
}

/// The fields of /proc/PID/status that a dump uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub umask: Option<u32>,
    /// Real, effective, saved, fs.
    pub uid: [u32; 4],
    /// Real, effective, saved, fs.
    pub gid: [u32; 4],
    pub groups: Vec<u32>,
    pub cap_inh: u64,
    pub cap_prm: u64,
    pub cap_eff: u64,
    pub cap_bnd: u64,
    pub cap_amb: u64,
    pub no_new_privs: u32,
    pub seccomp: u32,
    pub state: char,
}

/// Parses /proc/PID/status.
pub fn parse_status(s: &str) -> std::result::Result<Status, ParseError> {
    let mut st = Status::default();
    let ids = |v: &str| -> std::result::Result<[u32; 4], ParseError> {
        let n: Vec<u32> = v
            .split_whitespace()
            .map(|x| x.parse().map_err(|_| perr(format!("bad id {x:?}"))))
            .collect::<std::result::Result<_, _>>()?;
        n.try_into()
            .map_err(|_| perr("expected 4 ids (real, effective, saved, fs)"))
    };
    let hex =
        |v: &str| u64::from_str_radix(v.trim(), 16).map_err(|_| perr(format!("bad hex {v:?}")));
    for line in s.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k {
            "Umask" => st.umask = Some(u32::from_str_radix(v, 8).map_err(|_| perr("bad Umask"))?),
            "State" => st.state = v.chars().next().unwrap_or('?'),
            "Uid" => st.uid = ids(v)?,
            "Gid" => st.gid = ids(v)?,
            "Groups" => {
                st.groups = v
                    .split_whitespace()
                    .map(|x| x.parse().map_err(|_| perr("bad group")))
                    .collect::<std::result::Result<_, _>>()?
            }
            "CapInh" => st.cap_inh = hex(v)?,
            "CapPrm" => st.cap_prm = hex(v)?,
            "CapEff" => st.cap_eff = hex(v)?,
            "CapBnd" => st.cap_bnd = hex(v)?,
            "CapAmb" => st.cap_amb = hex(v)?,
            "NoNewPrivs" => st.no_new_privs = v.parse().map_err(|_| perr("bad NoNewPrivs"))?,
            "Seccomp" => st.seccomp = v.parse().map_err(|_| perr("bad Seccomp"))?,
            _ => {}
        }
    }
    Ok(st)
}

/// Reads /proc/PID/status (or a thread's).
pub fn read_status(pid: i32, tid: Option<i32>) -> Result<Status> {
    let p = path(pid, tid, "status");
    let s = read_string(&p)?;
    parsed(&p, parse_status(&s))
}

/// One mapping from /proc/PID/smaps: the range line and its VmFlags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub read: bool,
    pub write: bool,
    pub exec: bool,
    pub shared: bool,
    pub pgoff: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub ino: u64,
    /// Path or pseudo name (`[heap]`), empty for anonymous mappings.
    pub path: String,
    /// Two-letter VmFlags (`rd`, `gd`, `dd`...).
    pub vmflags: Vec<String>,
}

fn parse_range_line(line: &str) -> Option<Mapping> {
    let mut it = line.splitn(6, ' ');
    let range = it.next()?;
    let perms = it.next()?;
    let off = it.next()?;
    let dev = it.next()?;
    let ino = it.next()?;
    let path = it.next().unwrap_or("").trim_start().to_string();
    let (s, e) = range.split_once('-')?;
    let p = perms.as_bytes();
    if p.len() != 4 {
        return None;
    }
    let (maj, min) = dev.split_once(':')?;
    Some(Mapping {
        start: u64::from_str_radix(s, 16).ok()?,
        end: u64::from_str_radix(e, 16).ok()?,
        read: p[0] == b'r',
        write: p[1] == b'w',
        exec: p[2] == b'x',
        shared: p[3] == b's',
        pgoff: u64::from_str_radix(off, 16).ok()?,
        dev_major: u32::from_str_radix(maj, 16).ok()?,
        dev_minor: u32::from_str_radix(min, 16).ok()?,
        ino: ino.parse().ok()?,
        path,
        vmflags: Vec::new(),
    })
}

/// Parses /proc/PID/smaps (or maps: VmFlags then stay empty).
pub fn parse_smaps(s: &str) -> std::result::Result<Vec<Mapping>, ParseError> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in s.lines() {
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            let m = out
                .last_mut()
                .ok_or_else(|| perr("VmFlags before any mapping"))?;
            m.vmflags = flags.split_whitespace().map(str::to_string).collect();
            continue;
        }
        // Range lines start with a hex digit and hold a '-' in the first
        // word; counter lines are "Name:   value kB".
        let first = line.split(' ').next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            out.push(parse_range_line(line).ok_or_else(|| perr(format!("bad line {line:?}")))?);
        }
    }
    Ok(out)
}

/// Reads /proc/PID/smaps.
pub fn read_smaps(pid: i32) -> Result<Vec<Mapping>> {
    let p = path(pid, None, "smaps");
    let s = read_string(&p)?;
    parsed(&p, parse_smaps(&s))
}

/// Soft and hard limit of one resource; `u64::MAX` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    pub cur: u64,
    pub max: u64,
}

/// Parses /proc/PID/limits: the 16 resources in RLIMIT_* order.
pub fn parse_limits(s: &str) -> std::result::Result<Vec<Rlimit>, ParseError> {
    let mut out = Vec::new();
    for line in s.lines().skip(1) {
        // Columns are fixed width: name (26), soft (21), hard (21), units.
        let Some(rest) = line.get(26..) else {
            continue;
        };
        let mut w = rest.split_whitespace();
        let num = |v: Option<&str>| -> std::result::Result<u64, ParseError> {
            match v {
                Some("unlimited") => Ok(u64::MAX),
                Some(x) => x.parse().map_err(|_| perr(format!("bad limit {x:?}"))),
                None => Err(perr("missing limit")),
            }
        };
        let cur = num(w.next())?;
        let max = num(w.next())?;
        out.push(Rlimit { cur, max });
    }
    if out.len() != 16 {
        return Err(perr(format!("expected 16 limits, found {}", out.len())));
    }
    Ok(out)
}

/// Reads /proc/PID/limits.
pub fn read_limits(pid: i32) -> Result<Vec<Rlimit>> {
    let p = path(pid, None, "limits");
    let s = read_string(&p)?;
    parsed(&p, parse_limits(&s))
}

/// The first lines of /proc/PID/fdinfo/FD.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FdInfo {
    pub pos: u64,
    /// `O_*` flags of the open file, plus `O_CLOEXEC` if the fd has it.
    pub flags: u32,
    pub mnt_id: i32,
}

/// Parses /proc/PID/fdinfo/FD.
pub fn parse_fdinfo(s: &str) -> std::result::Result<FdInfo, ParseError> {
    let mut fi = FdInfo::default();
    for line in s.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k {
            "pos" => fi.pos = v.parse().map_err(|_| perr("bad pos"))?,
            "flags" => fi.flags = u32::from_str_radix(v, 8).map_err(|_| perr("bad flags"))?,
            "mnt_id" => fi.mnt_id = v.parse().map_err(|_| perr("bad mnt_id"))?,
            _ => {}
        }
    }
    Ok(fi)
}

/// Reads /proc/PID/fdinfo/FD.
pub fn read_fdinfo(pid: i32, fd: i32) -> Result<FdInfo> {
    let p = path(pid, None, &format!("fdinfo/{fd}"));
    let s = read_string(&p)?;
    parsed(&p, parse_fdinfo(&s))
}

/// Parses /proc/PID/auxv: pairs of native u64 up to and including AT_NULL.
pub fn parse_auxv(b: &[u8]) -> Vec<u64> {
    let mut out = Vec::new();
    for pair in b.chunks_exact(16) {
        let mut k = [0u8; 8];
        let mut v = [0u8; 8];
        k.copy_from_slice(&pair[..8]);
        v.copy_from_slice(&pair[8..]);
        let k = u64::from_ne_bytes(k);
        out.push(k);
        out.push(u64::from_ne_bytes(v));
        if k == 0 {
            break;
        }
    }
    out
}

/// How many words of auxv CRIU keeps (its `AT_VECTOR_SIZE`); its restore
/// refuses more, so a longer vector loses its tail (normally just the
/// AT_NULL pair, which the kernel puts back on PR_SET_MM_AUXV).
pub const AT_VECTOR_SIZE: usize = 44;

/// Reads /proc/PID/auxv, cut to [`AT_VECTOR_SIZE`] words as CRIU does.
pub fn read_auxv(pid: i32) -> Result<Vec<u64>> {
    let p = path(pid, None, "auxv");
    let b = std::fs::read(&p).map_err(|e| DumpError::proc(&p, e))?;
    let mut v = parse_auxv(&b);
    v.truncate(AT_VECTOR_SIZE);
    Ok(v)
}

/// One POSIX timer from /proc/PID/timers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PosixTimer {
    pub id: i32,
    pub signo: u32,
    pub sival_ptr: u64,
    /// SIGEV_* value.
    pub notify: u32,
    /// Thread id for SIGEV_THREAD_ID.
    pub notify_tid: Option<i32>,
    pub clock_id: u32,
}

/// Parses /proc/PID/timers.
pub fn parse_timers(s: &str) -> std::result::Result<Vec<PosixTimer>, ParseError> {
    let mut out: Vec<PosixTimer> = Vec::new();
    for line in s.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k == "ID" {
            out.push(PosixTimer {
                id: v.parse().map_err(|_| perr("bad timer ID"))?,
                ..Default::default()
            });
            continue;
        }
        let t = out
            .last_mut()
            .ok_or_else(|| perr("timer field before ID"))?;
        match k {
            "signal" => {
                let (sig, ptr) = v.split_once('/').ok_or_else(|| perr("bad signal"))?;
                t.signo = sig.parse().map_err(|_| perr("bad signo"))?;
                t.sival_ptr = u64::from_str_radix(ptr, 16).map_err(|_| perr("bad sival"))?;
            }
            "notify" => {
                let (how, who) = v.split_once('/').ok_or_else(|| perr("bad notify"))?;
                // "signal/tid.123": SIGEV_THREAD_ID to thread 123.
                let thread = who.starts_with("tid.");
                t.notify = match how {
                    "signal" => libc::SIGEV_SIGNAL as u32,
                    "none" => libc::SIGEV_NONE as u32,
                    "thread" => libc::SIGEV_THREAD as u32,
                    _ => libc::SIGEV_SIGNAL as u32,
                };
                if thread {
                    t.notify |= libc::SIGEV_THREAD_ID as u32;
                }
                let n = who.split('.').nth(1).unwrap_or("0");
                if thread {
                    t.notify_tid = n.parse().ok();
                }
            }
            "ClockID" => t.clock_id = v.parse().map_err(|_| perr("bad ClockID"))?,
            _ => {}
        }
    }
    Ok(out)
}

/// Reads /proc/PID/timers.
pub fn read_timers(pid: i32) -> Result<Vec<PosixTimer>> {
    let p = path(pid, None, "timers");
    let s = read_string(&p)?;
    parsed(&p, parse_timers(&s))
}

/// Reads a small one-value file such as /proc/PID/loginuid.
pub fn read_value<T: std::str::FromStr>(pid: i32, rel: &str) -> Result<T> {
    let p = path(pid, None, rel);
    let s = read_string(&p)?;
    parsed(
        &p,
        s.trim()
            .parse()
            .map_err(|_| perr(format!("bad value {:?}", s.trim()))),
    )
}

/// Reads /proc/PID/personality (hex).
pub fn read_personality(pid: i32) -> Result<u32> {
    let p = path(pid, None, "personality");
    let s = read_string(&p)?;
    parsed(
        &p,
        u32::from_str_radix(s.trim(), 16).map_err(|_| perr("bad personality")),
    )
}

/// Reads a thread's comm without the trailing newline.
pub fn read_comm(pid: i32, tid: i32) -> Result<String> {
    let p = path(pid, Some(tid), "comm");
    Ok(read_string(&p)?.trim_end_matches('\n').to_string())
}

/// The namespace inode of `/proc/PID/ns/<name>` (from `name:[inode]`).
pub fn parse_ns_link(s: &str) -> Option<u64> {
    s.split_once(":[")?.1.strip_suffix(']')?.parse().ok()
}

/// Reads a namespace link of a pid (`"self"` for our own).
pub fn read_ns(pid: &str, name: &str) -> Result<u64> {
    let p = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
    let l = std::fs::read_link(&p).map_err(|e| DumpError::proc(&p, e))?;
    parsed(
        &p,
        parse_ns_link(&l.to_string_lossy()).ok_or_else(|| perr("bad ns link")),
    )
}

/// Child pids of every thread (from /proc/PID/task/*/children).
pub fn read_children(pid: i32, tids: &[i32]) -> Result<Vec<i32>> {
    let mut out = Vec::new();
    for t in tids {
        let p = path(pid, Some(*t), "children");
        let s = match std::fs::read_to_string(&p) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(DumpError::proc(&p, e)),
        };
        out.extend(s.split_whitespace().filter_map(|x| x.parse::<i32>().ok()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_comm() {
        let line = "29452 (anchor (x) y) S 1 29452 29452 0 -1 4194560 180 0 0 0 0 0 0 0 27 7 1 0 \
                    113490 2658304 384 18446744073709551615 94273804963840 94273804965893 \
                    140721634097808 0 0 0 4096 0 0 0 0 0 17 0 0 0 0 0 0 94273804979664 \
                    94273804980472 94274139652096 140721634098928 140721634099028 \
                    140721634099028 140721634099169 0";
        let st = parse_stat(line).unwrap();
        assert_eq!(st.pid, 29452);
        assert_eq!(st.comm, "anchor (x) y");
        assert_eq!(st.state, 'S');
        assert_eq!(st.ppid, 1);
        assert_eq!(st.flags, 4194560);
        assert_eq!(st.nice, 7);
        assert_eq!(st.start_code, 94273804963840);
        assert_eq!(st.start_brk, 94274139652096);
        assert_eq!(st.env_end, 140721634099169);
    }

    #[test]
    fn stat_rejects_garbage() {
        assert!(parse_stat("").is_err());
        assert!(parse_stat("1 (x) S 1").is_err());
    }

    #[test]
    fn status_lines() {
        let s = "Name:\tsingle\nUmask:\t0027\nState:\tS (sleeping)\nUid:\t0\t1\t2\t3\n\
                 Gid:\t4\t5\t6\t7\nGroups:\t10 20 \nCapInh:\t0000000000000000\n\
                 CapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\n\
                 CapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\n\
                 Seccomp:\t0\n";
        let st = parse_status(s).unwrap();
        assert_eq!(st.umask, Some(0o27));
        assert_eq!(st.uid, [0, 1, 2, 3]);
        assert_eq!(st.gid, [4, 5, 6, 7]);
        assert_eq!(st.groups, vec![10, 20]);
        assert_eq!(st.cap_prm, 0x1ff_ffff_ffff);
        assert_eq!(st.state, 'S');
    }

    #[test]
    fn smaps_ranges_and_flags() {
        let s = "55bdd4a81000-55bdd4a82000 r--p 00000000 fe:01 1234   /srv/x y\n\
                 Size:                  4 kB\n\
                 VmFlags: rd mr mw me dw sd\n\
                 7ffc4f014000-7ffc4f034000 rw-p 00000000 00:00 0                          [stack]\n\
                 Rss:                  12 kB\n\
                 VmFlags: rd wr mr mw me gd ac\n\
                 7f101f2cf000-7f101f2d5000 r--p 00000000 00:00 0\n";
        let m = parse_smaps(s).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].path, "/srv/x y");
        assert_eq!(m[0].dev_major, 0xfe);
        assert_eq!(m[0].ino, 1234);
        assert!(m[0].read && !m[0].write && !m[0].shared);
        assert_eq!(m[1].path, "[stack]");
        assert!(m[1].vmflags.contains(&"gd".to_string()));
        assert_eq!(m[2].path, "");
        assert!(m[2].vmflags.is_empty());
    }

    #[test]
    fn limits_table() {
        let s = "Limit                     Soft Limit           Hard Limit           Units     \n\
Max cpu time              unlimited            unlimited            seconds   \n\
Max file size             unlimited            unlimited            bytes     \n\
Max data size             unlimited            unlimited            bytes     \n\
Max stack size            8388608              unlimited            bytes     \n\
Max core file size        1048576              4194304              bytes     \n\
Max resident set          unlimited            unlimited            bytes     \n\
Max processes             96365                96365                processes \n\
Max open files            333                  777                  files     \n\
Max locked memory         8388608              8388608              bytes     \n\
Max address space         unlimited            unlimited            bytes     \n\
Max file locks            unlimited            unlimited            locks     \n\
Max pending signals       96365                96365                signals   \n\
Max msgqueue size         819200               819200               bytes     \n\
Max nice priority         0                    0                    \n\
Max realtime priority     0                    0                    \n\
Max realtime timeout      unlimited            unlimited            us        \n";
        let l = parse_limits(s).unwrap();
        assert_eq!(l.len(), 16);
        assert_eq!(
            l[3],
            Rlimit {
                cur: 8388608,
                max: u64::MAX
            }
        );
        assert_eq!(l[7], Rlimit { cur: 333, max: 777 });
        assert_eq!(l[13], Rlimit { cur: 0, max: 0 });
    }

    #[test]
    fn fdinfo_octal_flags() {
        let fi = parse_fdinfo("pos:\t5\nflags:\t02100001\nmnt_id:\t27\nino:\t3\n").unwrap();
        assert_eq!(fi.pos, 5);
        assert_eq!(fi.flags, 0o2100001);
        assert_eq!(fi.mnt_id, 27);
    }

    #[test]
    fn auxv_stops_at_null() {
        let mut b = Vec::new();
        for v in [33u64, 7, 6, 4096, 0, 0, 99, 99] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(parse_auxv(&b), vec![33, 7, 6, 4096, 0, 0]);
    }

    #[test]
    fn timers_entries() {
        let s = "ID: 0\nsignal: 14/00007f0000001000\nnotify: signal/pid.1234\nClockID: 1\n\
                 ID: 1\nsignal: 10/0000000000000000\nnotify: thread/tid.1240\nClockID: 0\n";
        let t = parse_timers(s).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].signo, 14);
        assert_eq!(t[0].sival_ptr, 0x7f0000001000);
        assert_eq!(t[0].clock_id, 1);
        assert_eq!(t[1].notify_tid, Some(1240));
    }

    #[test]
    fn ns_link() {
        assert_eq!(parse_ns_link("pid:[4026531836]"), Some(4026531836));
        assert_eq!(parse_ns_link("pid:4026531836"), None);
    }
}
