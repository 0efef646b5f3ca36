//! The pretty forms selected by `(criu)` field options: value tables,
//! device numbers and IP addresses, both ways (flag tables are in
//! [`crate::flags`]). The tables are the ones python crit 4.2 has
//! (lib/pycriu/images/pb2dict.py).

/// The value table `dict` for a field, from the dict name and field name
/// (python crit keys its tables by field name).
pub(crate) fn dict_table(dict: &str, field: &str) -> Option<&'static [(u64, &'static str)]> {
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
pub(crate) fn dev_to_string(v: u64, old: bool) -> String {
    if old {
        let major = ((v >> 8) & 0xfff) | ((v >> 32) & !0xfff);
        let minor = (v & 0xff) | ((v >> 12) & !0xff);
        format!("{major}:{minor}")
    } else {
        format!("{}:{}", v >> MINORBITS, v & ((1 << MINORBITS) - 1))
    }
}

/// Parses `"major:minor"` back into a device number.
pub(crate) fn dev_from_string(text: &str, old: bool) -> Result<u64, String> {
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

/// The text python's `ipaddress` gives for an address stored as CRIU stores
/// it: one u32 word (IPv4) or four (IPv6), each in network byte order.
pub(crate) fn ip_to_string(words: &[u32]) -> String {
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
pub(crate) fn ip_from_string(text: &str) -> Result<Vec<u32>, String> {
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
