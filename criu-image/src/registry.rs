//! The image registry: one table that ties each CRIU image kind to its magic,
//! its name in JSON, its file name, its protobuf message and what follows each
//! entry.
//!
//! Facts from CRIU 4.2: criu/include/magic.h (values; aliases such as
//! SHMEM_PAGEMAP share PAGEMAP's value and are one entry here), criu/image-desc.c
//! (file names) and lib/pycriu/images/images.py (message per image). The JSON
//! name is the magic.h name without `_MAGIC`.

/// The leading magic of every image except inventory (images v1.1).
pub const IMG_COMMON_MAGIC: u32 = 0x5456_4319;
/// The leading magic of service images (stats, irmap cache).
pub const IMG_SERVICE_MAGIC: u32 = 0x5510_5940;

/// Which leading magic CRIU writes before an image's own magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// None (inventory.img).
    None,
    /// [`IMG_COMMON_MAGIC`].
    Common,
    /// [`IMG_SERVICE_MAGIC`].
    Service,
}

/// Data that follows an entry's message in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    /// Nothing.
    None,
    /// `bytes` bytes of pipe or fifo contents (pipe_data_entry).
    PipeData,
    /// `length` bytes of a socket queue (sk_packet_entry).
    SkQueue,
    /// `inq_len` then `outq_len` bytes (tcp_stream_entry).
    TcpStream,
    /// `keys_bytes + values_bytes` bytes (bpfmap_data_entry).
    BpfmapData,
    /// `nsems` u16 values, padded to 8 bytes (ipc_sem_entry).
    IpcSem,
    /// `qnum` times (u32 size, ipc_msg, mtext padded to 8) (ipc_msg_entry).
    IpcMsg,
    /// `size` bytes padded to 4, unless `in_pagemaps` (ipc_shm_entry).
    IpcShm,
}

/// How an image's entries are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Every entry is `message`, followed by `extra`.
    Entries {
        /// Protobuf message name.
        message: &'static str,
        /// What follows each entry.
        extra: Extra,
    },
    /// A pagemap_head, then pagemap_entry messages.
    Pagemap,
    /// A ghost_file_entry; then ghost_chunk_entry + data for each chunk, or
    /// (without chunks) the file contents up to the end.
    GhostFile,
    /// A magic CRIU defines that no protobuf image uses (kerndat cache,
    /// image-format markers).
    NotAnImage,
}

/// One image kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageDesc {
    /// The name in JSON (`"magic"`), e.g. `MM`.
    pub name: &'static str,
    /// The image's own magic.
    pub magic: u32,
    /// The leading magic CRIU writes.
    pub head: Head,
    /// CRIU's file name pattern (printf style), empty where none.
    pub file: &'static str,
    /// The entries.
    pub layout: Layout,
    /// Python crit 4.2 has a handler for it.
    pub python_crit: bool,
}

const fn pb(
    name: &'static str,
    magic: u32,
    file: &'static str,
    message: &'static str,
) -> ImageDesc {
    ImageDesc {
        name,
        magic,
        head: Head::Common,
        file,
        layout: Layout::Entries {
            message,
            extra: Extra::None,
        },
        python_crit: true,
    }
}

const fn with_extra(mut d: ImageDesc, extra: Extra) -> ImageDesc {
    if let Layout::Entries { message, .. } = d.layout {
        d.layout = Layout::Entries { message, extra };
    }
    d
}

const fn head(mut d: ImageDesc, h: Head) -> ImageDesc {
    d.head = h;
    d
}

const fn layout(mut d: ImageDesc, l: Layout) -> ImageDesc {
    d.layout = l;
    d
}

const fn not_in_python(mut d: ImageDesc) -> ImageDesc {
    d.python_crit = false;
    d
}

/// Every image kind with a magic, in magic.h order.
pub static IMAGES: &[ImageDesc] = &[
    head(
        pb("INVENTORY", 0x5831_3116, "inventory", "inventory_entry"),
        Head::None,
    ),
    pb("PSTREE", 0x5027_3030, "pstree", "pstree_entry"),
    pb("FDINFO", 0x5621_3732, "fdinfo-%u", "fdinfo_entry"),
    layout(
        pb("PAGEMAP", 0x5608_4025, "pagemap-%lu", ""),
        Layout::Pagemap,
    ),
    pb("CORE", 0x5505_3847, "core-%u", "core_entry"),
    pb("IDS", 0x5443_2030, "ids-%u", "task_kobj_ids_entry"),
    pb("VMAS", 0x5412_3737, "vmas-%u", "vma_entry"),
    pb("PIPES", 0x5651_3555, "pipes", "pipe_entry"),
    with_extra(
        pb("PIPES_DATA", 0x5645_3709, "pipes-data", "pipe_data_entry"),
        Extra::PipeData,
    ),
    pb("FIFO", 0x5836_4939, "fifo", "fifo_entry"),
    with_extra(
        pb("FIFO_DATA", 0x5933_3054, "fifo-data", "pipe_data_entry"),
        Extra::PipeData,
    ),
    pb("SIGACT", 0x5534_4201, "sigacts-%u", "sa_entry"),
    pb("UNIXSK", 0x5437_3943, "unixsk", "unix_sk_entry"),
    pb("INETSK", 0x5644_3851, "inetsk", "inet_sk_entry"),
    pb("PACKETSK", 0x6045_4618, "packetsk", "packet_sock_entry"),
    pb("ITIMERS", 0x5746_4056, "itimers-%u", "itimer_entry"),
    pb(
        "POSIX_TIMERS",
        0x5260_3957,
        "posix-timers-%u",
        "posix_timer_entry",
    ),
    with_extra(
        pb("SK_QUEUES", 0x5626_4026, "sk-queues", "sk_packet_entry"),
        Extra::SkQueue,
    ),
    pb("UTSNS", 0x5447_3203, "utsns-%u", "utsns_entry"),
    pb("CREDS", 0x5402_3547, "creds-%u", "creds_entry"),
    pb("IPC_VAR", 0x5311_5007, "ipcns-var-%u", "ipc_var_entry"),
    with_extra(
        pb("IPCNS_SHM", 0x4628_3044, "ipcns-shm-%u", "ipc_shm_entry"),
        Extra::IpcShm,
    ),
    with_extra(
        pb("IPCNS_MSG", 0x5545_3737, "ipcns-msg-%u", "ipc_msg_entry"),
        Extra::IpcMsg,
    ),
    with_extra(
        pb("IPCNS_SEM", 0x5957_3019, "ipcns-sem-%u", "ipc_sem_entry"),
        Extra::IpcSem,
    ),
    pb("REG_FILES", 0x5036_3636, "reg-files", "reg_file_entry"),
    pb("EXT_FILES", 0x5925_5641, "ext-files", "ext_file_entry"),
    pb("FS", 0x5140_3912, "fs-%u", "fs_entry"),
    pb("MM", 0x5749_2820, "mm-%u", "mm_entry"),
    pb(
        "REMAP_FPATH",
        0x5913_3954,
        "remap-fpath",
        "remap_file_path_entry",
    ),
    layout(
        pb("GHOST_FILE", 0x5258_3605, "ghost-file-%x", ""),
        Layout::GhostFile,
    ),
    with_extra(
        pb(
            "TCP_STREAM",
            0x5146_5506,
            "tcp-stream-%x",
            "tcp_stream_entry",
        ),
        Extra::TcpStream,
    ),
    pb("EVENTFD_FILE", 0x4452_3722, "eventfd", "eventfd_file_entry"),
    pb(
        "EVENTPOLL_FILE",
        0x4502_3858,
        "eventpoll",
        "eventpoll_file_entry",
    ),
    pb(
        "EVENTPOLL_TFD",
        0x4443_3746,
        "eventpoll-tfd",
        "eventpoll_tfd_entry",
    ),
    pb("SIGNALFD", 0x5732_3820, "signalfd", "signalfd_entry"),
    pb("INOTIFY_FILE", 0x4842_4431, "inotify", "inotify_file_entry"),
    pb("INOTIFY_WD", 0x5456_2009, "inotify-wd", "inotify_wd_entry"),
    pb("MNTS", 0x5556_3928, "mountpoints-%u", "mnt_entry"),
    pb("NETDEV", 0x5737_3951, "netdev-%u", "net_device_entry"),
    pb("NETNS", 0x5593_3752, "netns-%u", "netns_entry"),
    pb("TTY_FILES", 0x5943_3025, "tty", "tty_file_entry"),
    pb("TTY_INFO", 0x5945_3036, "tty-info", "tty_info_entry"),
    pb("TTY_DATA", 0x5941_3026, "tty-data", "tty_data_entry"),
    pb("FILE_LOCKS", 0x5432_3616, "filelocks", "file_lock_entry"),
    pb("RLIMIT", 0x5711_3925, "rlimit-%u", "rlimit_entry"),
    pb(
        "FANOTIFY_FILE",
        0x5509_6122,
        "fanotify",
        "fanotify_file_entry",
    ),
    pb(
        "FANOTIFY_MARK",
        0x5650_6035,
        "fanotify-mark",
        "fanotify_mark_entry",
    ),
    not_in_python(pb("SIGNAL", 0x5925_5647, "signal-s-%u", "siginfo_entry")),
    pb("NETLINK_SK", 0x5800_5614, "netlinksk", "netlink_sk_entry"),
    pb("NS_FILES", 0x6139_4011, "ns-files", "ns_file_entry"),
    pb("TUNFILE", 0x5714_3751, "tunfile", "tunfile_entry"),
    pb("CGROUP", 0x5938_3330, "cgroup", "cgroup_entry"),
    pb("TIMERFD", 0x5049_3712, "timerfd", "timerfd_entry"),
    pb("CPUINFO", 0x6140_4013, "cpuinfo", "cpuinfo_entry"),
    pb("USERNS", 0x5547_4906, "userns-%u", "userns_entry"),
    pb("SECCOMP", 0x6441_3049, "seccomp", "seccomp_entry"),
    not_in_python(pb(
        "BINFMT_MISC",
        0x6734_3323,
        "binfmt-misc",
        "binfmt_misc_entry",
    )),
    pb("AUTOFS", 0x4935_3943, "autofs-%u", "autofs_entry"),
    pb("FILES", 0x5630_3138, "files", "file_entry"),
    pb("MEMFD_INODE", 0x4845_3499, "memfd", "memfd_inode_entry"),
    pb("TIMENS", 0x4311_4433, "timens-%u", "timens_entry"),
    pb("PIDNS", 0x6115_7326, "pidns-%u", "pidns_entry"),
    pb(
        "BPFMAP_FILE",
        0x5750_6142,
        "bpfmap-file",
        "bpfmap_file_entry",
    ),
    with_extra(
        pb(
            "BPFMAP_DATA",
            0x6432_4033,
            "bpfmap-data",
            "bpfmap_data_entry",
        ),
        Extra::BpfmapData,
    ),
    pb("APPARMOR", 0x5942_3047, "apparmor", "apparmor_entry"),
    not_in_python(pb("PIDFD", 0x5443_5556, "pidfd", "pidfd_entry")),
    head(
        pb("STATS", 0x5709_3306, "stats-%s", "stats_entry"),
        Head::Service,
    ),
    head(
        pb(
            "IRMAP_CACHE",
            0x5700_4059,
            "irmap-cache",
            "irmap_cache_entry",
        ),
        Head::Service,
    ),
    not_in_python(layout(pb("KDAT", 0x5702_3458, "", ""), Layout::NotAnImage)),
    layout(
        pb("IMG_COMMON", IMG_COMMON_MAGIC, "", ""),
        Layout::NotAnImage,
    ),
    layout(
        pb("IMG_SERVICE", IMG_SERVICE_MAGIC, "", ""),
        Layout::NotAnImage,
    ),
    layout(pb("CRTOOLS_IMAGES_V1_1", 2, "", ""), Layout::NotAnImage),
];

/// File names of images that hold raw data and have no magic (magic.h:
/// RAW_IMAGE_MAGIC), as printf patterns.
pub static RAW_FILES: &[&str] = &[
    "pages-%u",
    "pages-shmem-%ld",
    "ifaddr-%u",
    "route-%u",
    "route6-%u",
    "rule-%u",
    "iptables-%u",
    "ip6tables-%u",
    "nftables-%u",
    "tmpfs-%u.tar.gz",
    "tmpfs-dev-%u.tar.gz",
    "netns-ct-%u",
    "netns-exp-%u",
];

/// The image kind with this magic.
pub fn by_magic(magic: u32) -> Option<&'static ImageDesc> {
    IMAGES.iter().find(|d| d.magic == magic)
}

/// The image kind with this JSON name (`"magic"` in JSON), e.g. `MM`.
pub fn by_name(name: &str) -> Option<&'static ImageDesc> {
    IMAGES.iter().find(|d| d.name == name)
}

/// The image kind a file name belongs to, from CRIU's naming (e.g.
/// `mm-42.img` is MM, `signal-p-7.img` is SIGNAL, `stats-dump` is STATS).
pub fn by_file_name(file: &str) -> Option<&'static ImageDesc> {
    let stem = file.strip_suffix(".img").unwrap_or(file);
    if matches_pattern("signal-p-%u", stem) {
        return by_name("SIGNAL");
    }
    if matches_pattern("pagemap-shmem-%lu", stem) || matches_pattern("pages-%d", stem) {
        return by_name("PAGEMAP");
    }
    if matches_pattern("binfmt-misc-%u", stem) {
        return by_name("BINFMT_MISC");
    }
    IMAGES
        .iter()
        .find(|d| !d.file.is_empty() && matches_pattern(d.file, stem))
}

/// The file name is one of CRIU's raw images (pages, tarballs, netlink dumps).
pub fn is_raw_file(file: &str) -> bool {
    let stem = file.strip_suffix(".img").unwrap_or(file);
    RAW_FILES.iter().any(|p| matches_pattern(p, stem))
}

/// Matches a printf pattern with one conversion (`%u`, `%lu`, `%ld`, `%d`,
/// `%x`, `%s`) against a name.
fn matches_pattern(pattern: &str, name: &str) -> bool {
    let Some(pos) = pattern.find('%') else {
        return pattern == name;
    };
    let (pre, rest) = pattern.split_at(pos);
    let conv_len = rest
        .char_indices()
        .skip(1)
        .find(|(_, c)| c.is_ascii_alphabetic() && *c != 'l')
        .map(|(i, _)| i + 1)
        .unwrap_or(rest.len());
    let (conv, post) = rest.split_at(conv_len);
    let Some(mid) = name.strip_prefix(pre).and_then(|n| n.strip_suffix(post)) else {
        return false;
    };
    if mid.is_empty() {
        return false;
    }
    match conv.chars().last() {
        Some('x') => mid.chars().all(|c| c.is_ascii_hexdigit()),
        Some('s') => true,
        Some('d') => mid
            .strip_prefix('-')
            .unwrap_or(mid)
            .chars()
            .all(|c| c.is_ascii_digit()),
        _ => mid.chars().all(|c| c.is_ascii_digit()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magics_are_unique() {
        for (i, a) in IMAGES.iter().enumerate() {
            for b in &IMAGES[i + 1..] {
                assert_ne!(a.magic, b.magic, "{} and {}", a.name, b.name);
                assert_ne!(a.name, b.name);
            }
        }
    }

    #[test]
    fn file_names() {
        let name = |f| by_file_name(f).map(|d| d.name);
        assert_eq!(name("mm-42.img"), Some("MM"));
        assert_eq!(name("core-7.img"), Some("CORE"));
        assert_eq!(name("pagemap-shmem-112.img"), Some("PAGEMAP"));
        assert_eq!(name("pagemap-1.img"), Some("PAGEMAP"));
        assert_eq!(name("signal-p-3.img"), Some("SIGNAL"));
        assert_eq!(name("signal-s-3.img"), Some("SIGNAL"));
        assert_eq!(name("stats-dump"), Some("STATS"));
        assert_eq!(name("ghost-file-1f.img"), Some("GHOST_FILE"));
        assert_eq!(name("inventory.img"), Some("INVENTORY"));
        assert_eq!(name("files.img"), Some("FILES"));
        assert_eq!(name("mm-x.img"), None);
        assert!(is_raw_file("pages-1.img"));
        assert!(!is_raw_file("pagemap-1.img"));
    }
}
