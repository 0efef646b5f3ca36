//! The pretty forms selected by `(criu)` field options: flag tables, value
//! tables, device numbers and IP addresses, both ways. The tables are the
//! ones python crit 4.2 has (lib/pycriu/images/pb2dict.py); a table name it
//! does not know prints as hex, as there.

/// A flag table: names and bit values, in python crit's order.
pub type FlagTable = &'static [(&'static str, u64)];

const MMAP_PROT: FlagTable = &[("PROT_READ", 0x1), ("PROT_WRITE", 0x2), ("PROT_EXEC", 0x4)];

const MMAP_FLAGS: FlagTable = &[
    ("MAP_SHARED", 0x1),
    ("MAP_PRIVATE", 0x2),
    ("MAP_DROPPABLE", 0x08),
    ("MAP_ANON", 0x20),
    ("MAP_GROWSDOWN", 0x0100),
];

const MMAP_STATUS: FlagTable = &[
    ("VMA_AREA_NONE", 0),
    ("VMA_AREA_REGULAR", 1 << 0),
    ("VMA_AREA_STACK", 1 << 1),
    ("VMA_AREA_VSYSCALL", 1 << 2),
    ("VMA_AREA_VDSO", 1 << 3),
    ("VMA_AREA_HEAP", 1 << 5),
    ("VMA_FILE_PRIVATE", 1 << 6),
    ("VMA_FILE_SHARED", 1 << 7),
    ("VMA_ANON_SHARED", 1 << 8),
    ("VMA_ANON_PRIVATE", 1 << 9),
    ("VMA_AREA_SYSVIPC", 1 << 10),
    ("VMA_AREA_SOCKET", 1 << 11),
    ("VMA_AREA_VVAR", 1 << 12),
    ("VMA_AREA_AIORING", 1 << 13),
    ("VMA_AREA_MEMFD", 1 << 14),
    ("VMA_AREA_SHSTK", 1 << 15),
    ("VMA_AREA_UPROBES", 1 << 17),
    ("VMA_UNSUPP", 1 << 31),
];

const RFILE_FLAGS: FlagTable = &[
    ("O_WRONLY", 0o1),
    ("O_RDWR", 0o2),
    ("O_CREAT", 0o100),
    ("O_EXCL", 0o200),
    ("O_NOCTTY", 0o400),
    ("O_TRUNC", 0o1000),
    ("O_APPEND", 0o2000),
    ("O_NONBLOCK", 0o4000),
    ("O_DSYNC", 0o10000),
    ("FASYNC", 0o20000),
    ("O_DIRECT", 0o40000),
    ("O_LARGEFILE", 0o100000),
    ("O_DIRECTORY", 0o200000),
    ("O_NOFOLLOW", 0o400000),
    ("O_NOATIME", 0o1000000),
    ("O_CLOEXEC", 0o2000000),
];

const PMAP_FLAGS: FlagTable = &[("PE_PARENT", 1), ("PE_LAZY", 2), ("PE_PRESENT", 4)];

const SEALS_FLAGS: FlagTable = &[
    ("F_SEAL_SEAL", 0x1),
    ("F_SEAL_SHRINK", 0x2),
    ("F_SEAL_GROW", 0x4),
    ("F_SEAL_WRITE", 0x8),
    ("F_SEAL_FUTURE_WRITE", 0x10),
];

/// The flag table of this name.
pub fn flag_table(name: &str) -> Option<FlagTable> {
    Some(match name {
        "mmap.prot" => MMAP_PROT,
        "mmap.flags" => MMAP_FLAGS,
        "mmap.status" => MMAP_STATUS,
        "rfile.flags" => RFILE_FLAGS,
        "pmap.flags" => PMAP_FLAGS,
        "seals.flags" => SEALS_FLAGS,
        _ => return None,
    })
}

/// `"A | B | 0x..."`; 0 gives an empty string.
pub fn flags_to_string(value: u64, table: FlagTable) -> String {
    let mut parts: Vec<String> = table
        .iter()
        .filter(|(_, bit)| value & bit != 0)
        .map(|(n, _)| (*n).to_owned())
        .collect();
    let known = table.iter().fold(0, |acc, (_, b)| acc | b);
    let rest = value & !known;
    if rest != 0 {
        parts.push(format!("{rest:#x}"));
    }
    parts.join(" | ")
}

/// Parses `"A | B | 0x10"`: names from the table or integers in python's
/// `int(x, 0)` forms. Empty text is 0.
pub fn flags_from_string(text: &str, table: FlagTable) -> Result<u64, String> {
    if text.is_empty() {
        return Ok(0);
    }
    let mut v: u64 = 0;
    for part in text.split('|').map(str::trim) {
        let bit = match table.iter().find(|(n, _)| *n == part) {
            Some((_, b)) => *b,
            None => match parse_int(part) {
                Some(n) => u64::try_from(n).map_err(|_| format!("negative flag value {part:?}"))?,
                None => return Err(format!("unknown flag {part:?}")),
            },
        };
        v = v
            .checked_add(bit)
            .ok_or_else(|| format!("flags {text:?} overflow"))?;
    }
    Ok(v)
}

/// The value table `dict` for a field, from the dict name and field name
/// (python crit keys its tables by field name).
pub fn dict_table(dict: &str, field: &str) -> Option<&'static [(u64, &'static str)]> {
    Some(match (dict, field) {
        ("gen", "task_state") => &[(1, "Alive"), (3, "Zombie"), (6, "Stopped")],
        ("sk", "family") => &[
            (1, "UNIX"),
            (2, "INET"),
            (10, "INET6"),
            (16, "NETLINK"),
            (17, "PACKET"),
        ],
        ("sk", "type") => &[
            (1, "STREAM"),
            (2, "DGRAM"),
            (3, "RAW"),
            (5, "SEQPACKET"),
            (10, "PACKET"),
        ],
        ("sk", "state") => &[
            (1, "ESTABLISHED"),
            (2, "SYN_SENT"),
            (3, "SYN_RECV"),
            (4, "FIN_WAIT1"),
            (5, "FIN_WAIT2"),
            (6, "TIME_WAIT"),
            (7, "CLOSE"),
            (8, "CLOSE_WAIT"),
            (9, "LAST_ACK"),
            (10, "LISTEN"),
        ],
        ("sk", "proto") => &[(0, "IP"), (6, "TCP"), (17, "UDP"), (136, "UDPLITE")],
        _ => return None,
    })
}

const MINORBITS: u32 = 20;

/// `"major:minor"` of a device number in the kernel's or glibc's encoding.
pub fn dev_to_string(v: u64, old: bool) -> String {
    if old {
        let major = ((v >> 8) & 0xfff) | ((v >> 32) & !0xfff);
        let minor = (v & 0xff) | ((v >> 12) & !0xff);
        format!("{major}:{minor}")
    } else {
        format!("{}:{}", v >> MINORBITS, v & ((1 << MINORBITS) - 1))
    }
}

/// Parses `"major:minor"` back into a device number.
pub fn dev_from_string(text: &str, old: bool) -> Result<u64, String> {
    let bad = || format!("expected a device as \"major:minor\", got {text:?}");
    let (a, b) = text.split_once(':').ok_or_else(bad)?;
    let major: u64 = a.trim().parse().map_err(|_| bad())?;
    let minor: u64 = b.trim().parse().map_err(|_| bad())?;
    if old {
        Ok(((major & 0xfff) << 8)
            | ((major & !0xfff) << 32)
            | (minor & 0xff)
            | ((minor & !0xff) << 12))
    } else {
        major
            .checked_shl(MINORBITS)
            .filter(|m| m >> MINORBITS == major)
            .map(|m| m | minor)
            .ok_or_else(bad)
    }
}

/// python's `int(text, 0)`: optional sign, then decimal (no leading zeros),
/// `0x`, `0o` or `0b`, with `_` between digits; blanks around are allowed.
pub fn parse_int(text: &str) -> Option<i128> {
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

/// The text python's `ipaddress` gives for an address stored as CRIU stores
/// it: one u32 word (IPv4) or four (IPv6), each in network byte order.
pub fn ip_to_string(words: &[u32]) -> String {
    if words.len() == 1 {
        let b = words[0].to_ne_bytes();
        return format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]);
    }
    let mut hextets = [0u16; 8];
    for (i, w) in words.iter().take(4).enumerate() {
        let b = w.to_ne_bytes();
        hextets[2 * i] = u16::from_be_bytes([b[0], b[1]]);
        hextets[2 * i + 1] = u16::from_be_bytes([b[2], b[3]]);
    }
    // the longest run of two or more zero hextets (the first of equals) is "::"
    let (mut best, mut best_len, mut cur, mut cur_len) = (0, 0, 0, 0);
    for (i, &h) in hextets.iter().enumerate() {
        if h == 0 {
            if cur_len == 0 {
                cur = i;
            }
            cur_len += 1;
            if cur_len > best_len {
                best = cur;
                best_len = cur_len;
            }
        } else {
            cur_len = 0;
        }
    }
    let hex = |s: &[u16]| {
        s.iter()
            .map(|h| format!("{h:x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    if best_len > 1 {
        format!(
            "{}::{}",
            hex(&hextets[..best]),
            hex(&hextets[best + best_len..])
        )
    } else {
        hex(&hextets)
    }
}

/// Parses an IPv4 or IPv6 address into CRIU's words.
pub fn ip_from_string(text: &str) -> Result<Vec<u32>, String> {
    if let Ok(v4) = text.parse::<std::net::Ipv4Addr>() {
        return Ok(vec![u32::from_ne_bytes(v4.octets())]);
    }
    let v6: std::net::Ipv6Addr = text
        .parse()
        .map_err(|_| format!("expected an IP address, got {text:?}"))?;
    let o = v6.octets();
    Ok(o.chunks_exact(4)
        .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        let t = flag_table("mmap.prot").unwrap();
        assert_eq!(flags_to_string(0, t), "");
        assert_eq!(flags_to_string(3, t), "PROT_READ | PROT_WRITE");
        assert_eq!(flags_to_string(0x13, t), "PROT_READ | PROT_WRITE | 0x10");
        assert_eq!(
            flags_from_string("PROT_READ | PROT_WRITE | 0x10", t),
            Ok(0x13)
        );
        assert_eq!(flags_from_string("", t), Ok(0));
        assert!(flags_from_string("PROT_BOGUS", t).is_err());
        let s = flag_table("mmap.status").unwrap();
        assert_eq!(
            flags_to_string(0x201, s),
            "VMA_AREA_REGULAR | VMA_ANON_PRIVATE"
        );
    }

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
    fn devices() {
        assert_eq!(dev_to_string((8 << 20) | 1, false), "8:1");
        assert_eq!(dev_from_string("8:1", false), Ok((8 << 20) | 1));
        assert_eq!(dev_to_string(0x801, true), "8:1");
        assert_eq!(dev_from_string("8:1", true), Ok(0x801));
        assert!(dev_from_string("8", false).is_err());
    }

    #[test]
    fn ips() {
        let w = |b: [u8; 4]| u32::from_ne_bytes(b);
        assert_eq!(ip_to_string(&[w([127, 0, 0, 1])]), "127.0.0.1");
        let v6 = ip_from_string("::1").unwrap();
        assert_eq!(ip_to_string(&v6), "::1");
        assert_eq!(ip_to_string(&ip_from_string("::").unwrap()), "::");
        assert_eq!(
            ip_to_string(&ip_from_string("fe80::1:0:0:2").unwrap()),
            "fe80::1:0:0:2"
        );
        assert_eq!(
            ip_to_string(&ip_from_string("1:0:0:2:0:0:0:3").unwrap()),
            "1:0:0:2::3"
        );
        // python prints v4-mapped addresses in plain hex
        assert_eq!(
            ip_to_string(&ip_from_string("::ffff:1.2.3.4").unwrap()),
            "::ffff:102:304"
        );
    }
}
