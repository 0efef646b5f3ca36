//! `crit x DIR ps|fds|mems|rss`: text views over a whole dump, laid out as
//! python crit 4.2 prints them.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use prost_reflect::{DynamicMessage, ReflectMessage as _, Value};

use crate::error::{Error, Result};
use crate::framing::ImageReader;
use crate::text::qp_encode;

/// Reads every entry of an image in a dump directory.
pub fn load(dir: &Path, name: &str) -> Result<Vec<DynamicMessage>> {
    let path = dir.join(name);
    let f = File::open(&path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    ImageReader::new(BufReader::new(f))?
        .map(|e| e.map(|e| e.message))
        .collect::<Result<Vec<_>>>()
        .map_err(|e| in_file(&path, e))
}

fn in_file(path: &Path, e: Error) -> Error {
    match e {
        Error::Io { .. } => e,
        e => Error::io(
            path.display().to_string(),
            std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
        ),
    }
}

fn get<'a>(m: &'a DynamicMessage, name: &str) -> Option<std::borrow::Cow<'a, Value>> {
    let f = m.descriptor().get_field_by_name(name)?;
    m.has_field(&f).then(|| m.get_field(&f))
}

/// An integer field (0 when absent).
fn int(m: &DynamicMessage, name: &str) -> i128 {
    match get(m, name).as_deref() {
        Some(Value::U32(v)) => i128::from(*v),
        Some(Value::U64(v)) => i128::from(*v),
        Some(Value::I32(v)) => i128::from(*v),
        Some(Value::I64(v)) => i128::from(*v),
        Some(Value::EnumNumber(v)) => i128::from(*v),
        _ => 0,
    }
}

fn list_ints(m: &DynamicMessage, name: &str) -> Vec<i128> {
    match get(m, name).as_deref() {
        Some(Value::List(l)) => l
            .iter()
            .filter_map(|v| {
                v.as_u32()
                    .map(i128::from)
                    .or_else(|| v.as_u64().map(i128::from))
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn sub(m: &DynamicMessage, name: &str) -> Option<DynamicMessage> {
    match get(m, name).as_deref() {
        Some(Value::Message(s)) => Some(s.clone()),
        _ => None,
    }
}

fn bytes(m: &DynamicMessage, name: &str) -> Vec<u8> {
    match get(m, name).as_deref() {
        Some(Value::Bytes(b)) => b.to_vec(),
        Some(Value::String(s)) => s.clone().into_bytes(),
        _ => Vec::new(),
    }
}

fn enum_name(m: &DynamicMessage, name: &str) -> String {
    let Some(f) = m.descriptor().get_field_by_name(name) else {
        return String::new();
    };
    let n = int(m, name) as i32;
    match f.kind() {
        prost_reflect::Kind::Enum(e) => e
            .get_value(n)
            .map(|v| v.name().to_owned())
            .unwrap_or_else(|| n.to_string()),
        _ => n.to_string(),
    }
}

/// pid, pgid or sid of a pstree entry (python crit falls back to the first
/// `ns_*` value).
fn task_id(p: &DynamicMessage, what: &str) -> i128 {
    if get(p, what).is_some() {
        return int(p, what);
    }
    list_ints(p, &format!("ns_{what}"))
        .first()
        .copied()
        .unwrap_or(0)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs one explorer, writing its text to `w` as it goes (the text of a
/// deep process tree grows with the square of its depth).
pub fn explore(dir: &Path, what: &str, w: &mut dyn Write) -> Result<()> {
    let mut x = Explorer {
        dir: dir.to_path_buf(),
        files: None,
        legacy: HashMap::new(),
        out: String::new(),
        w,
    };
    match what {
        "ps" => x.ps()?,
        "fds" => x.fds()?,
        "mems" => x.mems()?,
        "rss" => x.rss()?,
        _ => {
            return Err(Error::JsonShape {
                entry: None,
                path: what.to_owned(),
                detail: "expected ps, fds, mems or rss".to_owned(),
            })
        }
    }
    x.flush()
}

struct Explorer<'w> {
    dir: PathBuf,
    files: Option<Vec<DynamicMessage>>,
    legacy: HashMap<&'static str, Vec<DynamicMessage>>,
    /// Text not yet written to `w`.
    out: String,
    w: &'w mut dyn Write,
}

/// Blanks for indenting, written a slice at a time.
const SPACES: &[u8; 256] = &[b' '; 256];

impl Explorer<'_> {
    /// Writes out the text so far.
    fn flush(&mut self) -> Result<()> {
        self.w
            .write_all(self.out.as_bytes())
            .map_err(|e| Error::io("writing", e))?;
        self.out.clear();
        Ok(())
    }

    fn pstree(&self) -> Result<Vec<DynamicMessage>> {
        load(&self.dir, "pstree.img")
    }

    fn ps(&mut self) -> Result<()> {
        let tree = self.pstree()?;
        // python crit keeps the tasks in a dict by pid: a later entry with
        // the same pid replaces the earlier one, in the earlier one's place
        let mut items: Vec<(i128, DynamicMessage, String)> = Vec::new();
        let mut index: HashMap<i128, usize> = HashMap::new();
        for p in tree {
            let pid = task_id(&p, "pid");
            let core = load(&self.dir, &format!("core-{pid}.img"))?;
            let comm = core
                .first()
                .and_then(|c| sub(c, "tc"))
                .map(|tc| lossy(&bytes(&tc, "comm")))
                .unwrap_or_default();
            match index.get(&pid) {
                Some(&i) => items[i] = (pid, p, comm),
                None => {
                    index.insert(pid, items.len());
                    items.push((pid, p, comm));
                }
            }
        }
        let mut kids: Vec<Vec<usize>> = vec![Vec::new(); items.len()];
        let mut root = None;
        for (i, (_, p, _)) in items.iter().enumerate() {
            let ppid = int(p, "ppid");
            if ppid == 0 {
                root = Some(i);
                continue;
            }
            let parent = index.get(&ppid).ok_or_else(|| Error::JsonShape {
                entry: Some(i),
                path: "pstree.img ppid".to_owned(),
                detail: format!("parent {ppid} is not in the tree"),
            })?;
            kids[*parent].push(i);
        }
        let _ = writeln!(self.out, "{:>7}{:>7}{:>7}   COMM", "PID", "PGID", "SID");
        // depth first, children in order, without recursing: a tree can be
        // as deep as it has tasks
        let mut todo: Vec<(usize, usize)> = root.map(|r| (r, 0)).into_iter().collect();
        while let Some((i, depth)) = todo.pop() {
            let (pid, p, comm) = &items[i];
            let _ = write!(
                self.out,
                "{:>7}{:>7}{:>7}   ",
                pid,
                task_id(p, "pgid"),
                task_id(p, "sid"),
            );
            self.flush()?;
            let mut indent = 4 * depth;
            while indent > 0 {
                let n = indent.min(SPACES.len());
                self.w
                    .write_all(&SPACES[..n])
                    .map_err(|e| Error::io("writing", e))?;
                indent -= n;
            }
            let _ = writeln!(self.out, "{comm}");
            todo.extend(kids[i].iter().rev().map(|&k| (k, depth + 1)));
        }
        Ok(())
    }

    /// What python crit prints for a file of this type and id.
    fn file_str(&mut self, ftype: &str, id: i128) -> Result<String> {
        let (field, legacy) = match ftype {
            "REG" => ("reg", "reg-files.img"),
            "PIPE" => ("pipe", "pipes.img"),
            "UNIXSK" => ("usk", "unixsk.img"),
            _ => return Ok(format!("{ftype}.{id}")),
        };
        if self.files.is_none() {
            self.files = Some(load(&self.dir, "files.img").unwrap_or_default());
        }
        let from_files = self
            .files
            .as_ref()
            .and_then(|fs| fs.iter().find(|f| int(f, "id") == id))
            .map(|f| sub(f, field));
        let found = match from_files {
            Some(found) => found,
            None => {
                if !self.legacy.contains_key(legacy) {
                    let entries = load(&self.dir, legacy).unwrap_or_default();
                    self.legacy.insert(legacy, entries);
                }
                self.legacy
                    .get(legacy)
                    .and_then(|es| es.iter().find(|f| int(f, "id") == id).cloned())
            }
        };
        Ok(match ftype {
            "REG" => match found.map(|f| bytes(&f, "name")) {
                Some(n) if !n.is_empty() => lossy(&n),
                _ => "unknown path".to_owned(),
            },
            "PIPE" => match found {
                Some(p) => format!("pipe[{}]", int(&p, "pipe_id")),
                None => "pipe[?]".to_owned(),
            },
            _ => match found {
                Some(u) => {
                    let name = bytes(&u, "name");
                    let n = if name.is_empty() {
                        String::new()
                    } else {
                        format!(" {}", lossy(&qp_encode(&name)))
                    };
                    format!("unix[{} ({}){n}]", int(&u, "ino"), int(&u, "peer"))
                }
                None => "unix[?]".to_owned(),
            },
        })
    }

    fn fds(&mut self) -> Result<()> {
        for p in self.pstree()? {
            let pid = task_id(&p, "pid");
            let ids = load(&self.dir, &format!("ids-{pid}.img"))?;
            let files_id = ids.first().map(|i| int(i, "files_id")).unwrap_or(0);
            let fdinfo = load(&self.dir, &format!("fdinfo-{files_id}.img"))?;
            self.flush()?;
            let _ = writeln!(self.out, "{pid}");
            for fd in &fdinfo {
                let s = self.file_str(&enum_name(fd, "type"), int(fd, "id"))?;
                let _ = writeln!(self.out, "\t{:>7}: {s}", int(fd, "fd"));
            }
            let fs = load(&self.dir, &format!("fs-{pid}.img"))?;
            let fs = fs
                .first()
                .cloned()
                .ok_or_else(|| missing(&format!("fs-{pid}.img")))?;
            for (label, key) in [("cwd", "cwd_id"), ("root", "root_id")] {
                let s = self.file_str("REG", int(&fs, key))?;
                let _ = writeln!(self.out, "\t{label:>7}: {s}");
            }
        }
        Ok(())
    }

    fn mm(&self, pid: i128) -> Result<DynamicMessage> {
        let name = format!("mm-{pid}.img");
        load(&self.dir, &name)?
            .into_iter()
            .next()
            .ok_or_else(|| missing(&name))
    }

    fn mems(&mut self) -> Result<()> {
        let mut shm_ids: HashMap<i128, usize> = HashMap::new();
        for p in self.pstree()? {
            let pid = task_id(&p, "pid");
            let mm = self.mm(pid)?;
            self.flush()?;
            let _ = writeln!(self.out, "{pid}");
            let exe = self.file_str("REG", int(&mm, "exe_file_id"))?;
            let _ = writeln!(self.out, "\t{:<36}    {exe}", "exe");
            for vma in vmas(&mm) {
                let st = int(&vma, "status");
                let shmid = int(&vma, "shmid");
                let mut vid = |id: i128| {
                    let next = shm_ids.len() + 1;
                    *shm_ids.entry(id).or_insert(next)
                };
                let mut fname = if st & (1 << 10) != 0 {
                    format!(" ips[{:x}]", vid(shmid))
                } else if st & (1 << 8) != 0 {
                    format!(" shmem[{:x}]", vid(shmid))
                } else if st & (1 << 11) != 0 {
                    format!(" packet[{:x}]", vid(shmid))
                } else if st & ((1 << 6) | (1 << 7)) != 0 {
                    let mut s = format!(" {}", self.file_str("REG", shmid)?);
                    let pgoff = int(&vma, "pgoff");
                    if pgoff != 0 {
                        let _ = write!(s, " + {pgoff:#x}");
                    }
                    if st & (1 << 7) != 0 {
                        s.push_str(" (s)");
                    }
                    s
                } else if st & (1 << 1) != 0 {
                    " [stack]".to_owned()
                } else if st & (1 << 2) != 0 {
                    " [vsyscall]".to_owned()
                } else if st & (1 << 3) != 0 {
                    " [vdso]".to_owned()
                } else if int(&vma, "flags") & 0x100 != 0 {
                    " [stack?]".to_owned()
                } else {
                    String::new()
                };
                if st & 1 == 0 {
                    fname.push_str(" *");
                }
                let prot = int(&vma, "prot");
                let ps: String = [(1, 'r'), (2, 'w'), (4, 'x')]
                    .iter()
                    .map(|(b, c)| if prot & b != 0 { *c } else { '-' })
                    .collect();
                let a = format!("{:08x}-{:08x}", int(&vma, "start"), int(&vma, "end"));
                let _ = writeln!(self.out, "\t{a:<36}{ps}{fname}");
            }
        }
        Ok(())
    }

    fn rss(&mut self) -> Result<()> {
        for p in self.pstree()? {
            let pid = task_id(&p, "pid");
            let vmas = vmas(&self.mm(pid)?);
            let pms = load(&self.dir, &format!("pagemap-{pid}.img"))?;
            self.flush()?;
            let _ = writeln!(self.out, "{pid}");
            let n = vmas.len() as i64;
            // python indexes with possibly negative numbers; mirror that
            let at = |i: i64| -> Option<&DynamicMessage> {
                let j = if i < 0 { n + i } else { i };
                usize::try_from(j).ok().and_then(|j| vmas.get(j))
            };
            let mut vmi: i64 = 0;
            let mut pvmi: i64 = -1;
            for pm in pms.iter().skip(1) {
                let vaddr = int(pm, "vaddr");
                let nr = if get(pm, "nr_pages").is_some() {
                    int(pm, "nr_pages")
                } else {
                    int(pm, "compat_nr_pages")
                };
                let pstr = format!("\t{vaddr:x} / {nr:<8}");
                while vmi < n && at(vmi).is_some_and(|v| int(v, "end") <= vaddr) {
                    vmi += 1;
                }
                let pme = vaddr + (nr << 12);
                let mut vstr = String::new();
                while vmi < n {
                    let Some(vma) = at(vmi) else { break };
                    if int(vma, "start") >= pme {
                        break;
                    }
                    if vmi == pvmi {
                        vstr.push_str(" ~");
                    } else {
                        let (s, e) = (int(vma, "start"), int(vma, "end"));
                        let _ = write!(vstr, " {s:08x} / {:<8}", (e - s) >> 12);
                        if int(vma, "status") & ((1 << 6) | (1 << 7)) != 0 {
                            let shmid = int(vma, "shmid");
                            let f = self.file_str("REG", shmid)?;
                            let _ = write!(vstr, " {f}");
                        }
                        pvmi = vmi;
                    }
                    let _ = write!(vstr, "\n\t{:23}", "");
                    vmi += 1;
                }
                vmi -= 1;
                let _ = writeln!(self.out, "{pstr:<24}{vstr}");
            }
        }
        Ok(())
    }
}

fn vmas(mm: &DynamicMessage) -> Vec<DynamicMessage> {
    match get(mm, "vmas").as_deref() {
        Some(Value::List(l)) => l.iter().filter_map(|v| v.as_message().cloned()).collect(),
        _ => Vec::new(),
    }
}

fn missing(name: &str) -> Error {
    Error::Truncated {
        offset: 0,
        expected: "an entry",
        needed: 1,
        found: 0,
    }
    .with_file(name)
}

trait WithFile {
    fn with_file(self, name: &str) -> Error;
}

impl WithFile for Error {
    fn with_file(self, name: &str) -> Error {
        Error::io(
            name.to_owned(),
            std::io::Error::new(std::io::ErrorKind::InvalidData, self.to_string()),
        )
    }
}
