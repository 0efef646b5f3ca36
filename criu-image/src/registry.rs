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
    /// The file's contents, to the end of the image, unless `chunks`
    /// (ghost_file_entry); then ghost_chunk_entry entries follow.
    GhostContents,
    /// `len` bytes of the file at `off` (ghost_chunk_entry).
    GhostChunk,
}

/// How an image's entries are laid out: which message each entry is, and
/// what follows it. [`ImageDesc::message`] and [`ImageDesc::extra`] read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Every entry is `message`, followed by `extra`.
    Entries {
        /// Protobuf message name.
        message: &'static str,
        /// What follows each entry.
        extra: Extra,
    },
    /// Entry 0 is `head` followed by `head_extra`; every later entry is
    /// `message` followed by `extra` (pagemap, ghost files).
    Headed {
        /// Protobuf message name of entry 0.
        head: &'static str,
        /// What follows entry 0.
        head_extra: Extra,
        /// Protobuf message name of the later entries.
        message: &'static str,
        /// What follows each later entry.
        extra: Extra,
    },
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

/// The INVENTORY image kind.
pub const INVENTORY: ImageDesc = head(
    pb("INVENTORY", 0x5831_3116, "inventory", "inventory_entry"),
    Head::None,
);

/// The PSTREE image kind.
pub const PSTREE: ImageDesc = pb("PSTREE", 0x5027_3030, "pstree", "pstree_entry");

/// The FDINFO image kind.
pub const FDINFO: ImageDesc = pb("FDINFO", 0x5621_3732, "fdinfo-%u", "fdinfo_entry");

/// The PAGEMAP image kind: a pagemap_head, then the pagemap_entry of each
/// run of pages (criu/pagemap.c).
pub const PAGEMAP: ImageDesc = layout(
    pb("PAGEMAP", 0x5608_4025, "pagemap-%lu", ""),
    Layout::Headed {
        head: "pagemap_head",
        head_extra: Extra::None,
        message: "pagemap_entry",
        extra: Extra::None,
    },
);

/// The CORE image kind.
pub const CORE: ImageDesc = pb("CORE", 0x5505_3847, "core-%u", "core_entry");

/// The IDS image kind.
pub const IDS: ImageDesc = pb("IDS", 0x5443_2030, "ids-%u", "task_kobj_ids_entry");

/// The VMAS image kind.
pub const VMAS: ImageDesc = pb("VMAS", 0x5412_3737, "vmas-%u", "vma_entry");

/// The PIPES image kind.
pub const PIPES: ImageDesc = pb("PIPES", 0x5651_3555, "pipes", "pipe_entry");

/// The PIPES_DATA image kind.
pub const PIPES_DATA: ImageDesc = with_extra(
    pb("PIPES_DATA", 0x5645_3709, "pipes-data", "pipe_data_entry"),
    Extra::PipeData,
);

/// The FIFO image kind.
pub const FIFO: ImageDesc = pb("FIFO", 0x5836_4939, "fifo", "fifo_entry");

/// The FIFO_DATA image kind.
pub const FIFO_DATA: ImageDesc = with_extra(
    pb("FIFO_DATA", 0x5933_3054, "fifo-data", "pipe_data_entry"),
    Extra::PipeData,
);

/// The SIGACT image kind.
pub const SIGACT: ImageDesc = pb("SIGACT", 0x5534_4201, "sigacts-%u", "sa_entry");

/// The UNIXSK image kind.
pub const UNIXSK: ImageDesc = pb("UNIXSK", 0x5437_3943, "unixsk", "unix_sk_entry");

/// The INETSK image kind.
pub const INETSK: ImageDesc = pb("INETSK", 0x5644_3851, "inetsk", "inet_sk_entry");

/// The PACKETSK image kind.
pub const PACKETSK: ImageDesc = pb("PACKETSK", 0x6045_4618, "packetsk", "packet_sock_entry");

/// The ITIMERS image kind.
pub const ITIMERS: ImageDesc = pb("ITIMERS", 0x5746_4056, "itimers-%u", "itimer_entry");

/// The POSIX_TIMERS image kind.
pub const POSIX_TIMERS: ImageDesc = pb(
    "POSIX_TIMERS",
    0x5260_3957,
    "posix-timers-%u",
    "posix_timer_entry",
);

/// The SK_QUEUES image kind.
pub const SK_QUEUES: ImageDesc = with_extra(
    pb("SK_QUEUES", 0x5626_4026, "sk-queues", "sk_packet_entry"),
    Extra::SkQueue,
);

/// The UTSNS image kind.
pub const UTSNS: ImageDesc = pb("UTSNS", 0x5447_3203, "utsns-%u", "utsns_entry");

/// The CREDS image kind.
pub const CREDS: ImageDesc = pb("CREDS", 0x5402_3547, "creds-%u", "creds_entry");

/// The IPC_VAR image kind.
pub const IPC_VAR: ImageDesc = pb("IPC_VAR", 0x5311_5007, "ipcns-var-%u", "ipc_var_entry");

/// The IPCNS_SHM image kind.
pub const IPCNS_SHM: ImageDesc = with_extra(
    pb("IPCNS_SHM", 0x4628_3044, "ipcns-shm-%u", "ipc_shm_entry"),
    Extra::IpcShm,
);

/// The IPCNS_MSG image kind.
pub const IPCNS_MSG: ImageDesc = with_extra(
    pb("IPCNS_MSG", 0x5545_3737, "ipcns-msg-%u", "ipc_msg_entry"),
    Extra::IpcMsg,
);

/// The IPCNS_SEM image kind.
pub const IPCNS_SEM: ImageDesc = with_extra(
    pb("IPCNS_SEM", 0x5957_3019, "ipcns-sem-%u", "ipc_sem_entry"),
    Extra::IpcSem,
);

/// The REG_FILES image kind.
pub const REG_FILES: ImageDesc = pb("REG_FILES", 0x5036_3636, "reg-files", "reg_file_entry");

/// The EXT_FILES image kind.
pub const EXT_FILES: ImageDesc = pb("EXT_FILES", 0x5925_5641, "ext-files", "ext_file_entry");

/// The FS image kind.
pub const FS: ImageDesc = pb("FS", 0x5140_3912, "fs-%u", "fs_entry");

/// The MM image kind.
pub const MM: ImageDesc = pb("MM", 0x5749_2820, "mm-%u", "mm_entry");

/// The REMAP_FPATH image kind.
pub const REMAP_FPATH: ImageDesc = pb(
    "REMAP_FPATH",
    0x5913_3954,
    "remap-fpath",
    "remap_file_path_entry",
);

/// The GHOST_FILE image kind: a ghost_file_entry; then the file contents
/// up to the end, or (with `chunks`) a ghost_chunk_entry and its data for
/// each chunk (criu/files-reg.c).
pub const GHOST_FILE: ImageDesc = layout(
    pb("GHOST_FILE", 0x5258_3605, "ghost-file-%x", ""),
    Layout::Headed {
        head: "ghost_file_entry",
        head_extra: Extra::GhostContents,
        message: "ghost_chunk_entry",
        extra: Extra::GhostChunk,
    },
);

/// The TCP_STREAM image kind.
pub const TCP_STREAM: ImageDesc = with_extra(
    pb(
        "TCP_STREAM",
        0x5146_5506,
        "tcp-stream-%x",
        "tcp_stream_entry",
    ),
    Extra::TcpStream,
);

/// The EVENTFD_FILE image kind.
pub const EVENTFD_FILE: ImageDesc =
    pb("EVENTFD_FILE", 0x4452_3722, "eventfd", "eventfd_file_entry");

/// The EVENTPOLL_FILE image kind.
pub const EVENTPOLL_FILE: ImageDesc = pb(
    "EVENTPOLL_FILE",
    0x4502_3858,
    "eventpoll",
    "eventpoll_file_entry",
);

/// The EVENTPOLL_TFD image kind.
pub const EVENTPOLL_TFD: ImageDesc = pb(
    "EVENTPOLL_TFD",
    0x4443_3746,
    "eventpoll-tfd",
    "eventpoll_tfd_entry",
);

/// The SIGNALFD image kind.
pub const SIGNALFD: ImageDesc = pb("SIGNALFD", 0x5732_3820, "signalfd", "signalfd_entry");

/// The INOTIFY_FILE image kind.
pub const INOTIFY_FILE: ImageDesc =
    pb("INOTIFY_FILE", 0x4842_4431, "inotify", "inotify_file_entry");

/// The INOTIFY_WD image kind.
pub const INOTIFY_WD: ImageDesc = pb("INOTIFY_WD", 0x5456_2009, "inotify-wd", "inotify_wd_entry");

/// The MNTS image kind.
pub const MNTS: ImageDesc = pb("MNTS", 0x5556_3928, "mountpoints-%u", "mnt_entry");

/// The NETDEV image kind.
pub const NETDEV: ImageDesc = pb("NETDEV", 0x5737_3951, "netdev-%u", "net_device_entry");

/// The NETNS image kind.
pub const NETNS: ImageDesc = pb("NETNS", 0x5593_3752, "netns-%u", "netns_entry");

/// The TTY_FILES image kind.
pub const TTY_FILES: ImageDesc = pb("TTY_FILES", 0x5943_3025, "tty", "tty_file_entry");

/// The TTY_INFO image kind.
pub const TTY_INFO: ImageDesc = pb("TTY_INFO", 0x5945_3036, "tty-info", "tty_info_entry");

/// The TTY_DATA image kind.
pub const TTY_DATA: ImageDesc = pb("TTY_DATA", 0x5941_3026, "tty-data", "tty_data_entry");

/// The FILE_LOCKS image kind.
pub const FILE_LOCKS: ImageDesc = pb("FILE_LOCKS", 0x5432_3616, "filelocks", "file_lock_entry");

/// The RLIMIT image kind.
pub const RLIMIT: ImageDesc = pb("RLIMIT", 0x5711_3925, "rlimit-%u", "rlimit_entry");

/// The FANOTIFY_FILE image kind.
pub const FANOTIFY_FILE: ImageDesc = pb(
    "FANOTIFY_FILE",
    0x5509_6122,
    "fanotify",
    "fanotify_file_entry",
);

/// The FANOTIFY_MARK image kind.
pub const FANOTIFY_MARK: ImageDesc = pb(
    "FANOTIFY_MARK",
    0x5650_6035,
    "fanotify-mark",
    "fanotify_mark_entry",
);

/// The SIGNAL image kind.
pub const SIGNAL: ImageDesc =
    not_in_python(pb("SIGNAL", 0x5925_5647, "signal-s-%u", "siginfo_entry"));

/// The NETLINK_SK image kind.
pub const NETLINK_SK: ImageDesc = pb("NETLINK_SK", 0x5800_5614, "netlinksk", "netlink_sk_entry");

/// The NS_FILES image kind.
pub const NS_FILES: ImageDesc = pb("NS_FILES", 0x6139_4011, "ns-files", "ns_file_entry");

/// The TUNFILE image kind.
pub const TUNFILE: ImageDesc = pb("TUNFILE", 0x5714_3751, "tunfile", "tunfile_entry");

/// The CGROUP image kind.
pub const CGROUP: ImageDesc = pb("CGROUP", 0x5938_3330, "cgroup", "cgroup_entry");

/// The TIMERFD image kind.
pub const TIMERFD: ImageDesc = pb("TIMERFD", 0x5049_3712, "timerfd", "timerfd_entry");

/// The CPUINFO image kind.
pub const CPUINFO: ImageDesc = pb("CPUINFO", 0x6140_4013, "cpuinfo", "cpuinfo_entry");

/// The USERNS image kind.
pub const USERNS: ImageDesc = pb("USERNS", 0x5547_4906, "userns-%u", "userns_entry");

/// The SECCOMP image kind.
pub const SECCOMP: ImageDesc = pb("SECCOMP", 0x6441_3049, "seccomp", "seccomp_entry");

/// The BINFMT_MISC image kind.
pub const BINFMT_MISC: ImageDesc = not_in_python(pb(
    "BINFMT_MISC",
    0x6734_3323,
    "binfmt-misc",
    "binfmt_misc_entry",
));

/// The AUTOFS image kind.
pub const AUTOFS: ImageDesc = pb("AUTOFS", 0x4935_3943, "autofs-%u", "autofs_entry");

/// The FILES image kind.
pub const FILES: ImageDesc = pb("FILES", 0x5630_3138, "files", "file_entry");

/// The MEMFD_INODE image kind.
pub const MEMFD_INODE: ImageDesc = pb("MEMFD_INODE", 0x4845_3499, "memfd", "memfd_inode_entry");

/// The TIMENS image kind.
pub const TIMENS: ImageDesc = pb("TIMENS", 0x4311_4433, "timens-%u", "timens_entry");

/// The PIDNS image kind.
pub const PIDNS: ImageDesc = pb("PIDNS", 0x6115_7326, "pidns-%u", "pidns_entry");

/// The BPFMAP_FILE image kind.
pub const BPFMAP_FILE: ImageDesc = pb(
    "BPFMAP_FILE",
    0x5750_6142,
    "bpfmap-file",
    "bpfmap_file_entry",
);

/// The BPFMAP_DATA image kind.
pub const BPFMAP_DATA: ImageDesc = with_extra(
    pb(
        "BPFMAP_DATA",
        0x6432_4033,
        "bpfmap-data",
        "bpfmap_data_entry",
    ),
    Extra::BpfmapData,
);

/// The APPARMOR image kind.
pub const APPARMOR: ImageDesc = pb("APPARMOR", 0x5942_3047, "apparmor", "apparmor_entry");

/// The PIDFD image kind.
pub const PIDFD: ImageDesc = not_in_python(pb("PIDFD", 0x5443_5556, "pidfd", "pidfd_entry"));

/// The STATS image kind.
pub const STATS: ImageDesc = head(
    pb("STATS", 0x5709_3306, "stats-%s", "stats_entry"),
    Head::Service,
);

/// The IRMAP_CACHE image kind.
pub const IRMAP_CACHE: ImageDesc = head(
    pb(
        "IRMAP_CACHE",
        0x5700_4059,
        "irmap-cache",
        "irmap_cache_entry",
    ),
    Head::Service,
);

/// The KDAT image kind.
pub const KDAT: ImageDesc =
    not_in_python(layout(pb("KDAT", 0x5702_3458, "", ""), Layout::NotAnImage));

/// The IMG_COMMON image kind.
pub const IMG_COMMON: ImageDesc = layout(
    pb("IMG_COMMON", IMG_COMMON_MAGIC, "", ""),
    Layout::NotAnImage,
);

/// The IMG_SERVICE image kind.
pub const IMG_SERVICE: ImageDesc = layout(
    pb("IMG_SERVICE", IMG_SERVICE_MAGIC, "", ""),
    Layout::NotAnImage,
);

/// The CRTOOLS_IMAGES_V1_1 image kind.
pub const CRTOOLS_IMAGES_V1_1: ImageDesc =
    layout(pb("CRTOOLS_IMAGES_V1_1", 2, "", ""), Layout::NotAnImage);

/// Every image kind with a magic, in magic.h order.
pub static IMAGES: &[ImageDesc] = &[
    INVENTORY,
    PSTREE,
    FDINFO,
    PAGEMAP,
    CORE,
    IDS,
    VMAS,
    PIPES,
    PIPES_DATA,
    FIFO,
    FIFO_DATA,
    SIGACT,
    UNIXSK,
    INETSK,
    PACKETSK,
    ITIMERS,
    POSIX_TIMERS,
    SK_QUEUES,
    UTSNS,
    CREDS,
    IPC_VAR,
    IPCNS_SHM,
    IPCNS_MSG,
    IPCNS_SEM,
    REG_FILES,
    EXT_FILES,
    FS,
    MM,
    REMAP_FPATH,
    GHOST_FILE,
    TCP_STREAM,
    EVENTFD_FILE,
    EVENTPOLL_FILE,
    EVENTPOLL_TFD,
    SIGNALFD,
    INOTIFY_FILE,
    INOTIFY_WD,
    MNTS,
    NETDEV,
    NETNS,
    TTY_FILES,
    TTY_INFO,
    TTY_DATA,
    FILE_LOCKS,
    RLIMIT,
    FANOTIFY_FILE,
    FANOTIFY_MARK,
    SIGNAL,
    NETLINK_SK,
    NS_FILES,
    TUNFILE,
    CGROUP,
    TIMERFD,
    CPUINFO,
    USERNS,
    SECCOMP,
    BINFMT_MISC,
    AUTOFS,
    FILES,
    MEMFD_INODE,
    TIMENS,
    PIDNS,
    BPFMAP_FILE,
    BPFMAP_DATA,
    APPARMOR,
    PIDFD,
    STATS,
    IRMAP_CACHE,
    KDAT,
    IMG_COMMON,
    IMG_SERVICE,
    CRTOOLS_IMAGES_V1_1,
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

/// The raw image that holds the pages a pagemap image points to
/// (`pagemap_head.pages_id` names it).
pub const PAGES_FILE: &str = "pages-%u";

impl ImageDesc {
    /// The protobuf message (its full name in the schema) of entry `index`;
    /// `None` for kinds that are not protobuf images.
    pub fn message(&self, index: usize) -> Option<&'static str> {
        match self.layout {
            Layout::Entries { message, .. } => Some(message),
            Layout::Headed { head, .. } if index == 0 => Some(head),
            Layout::Headed { message, .. } => Some(message),
            Layout::NotAnImage => None,
        }
    }

    /// What follows entry `index` in the file. Reading, writing and the
    /// JSON conversion all ask here.
    pub fn extra(&self, index: usize) -> Extra {
        match self.layout {
            Layout::Entries { extra, .. } => extra,
            Layout::Headed { head_extra, .. } if index == 0 => head_extra,
            Layout::Headed { extra, .. } => extra,
            Layout::NotAnImage => Extra::None,
        }
    }

    /// CRIU's file name for an image of this kind: the pattern with its
    /// conversion (if any) replaced by `id` (in hex for `%x`), and `.img`
    /// after it except for service images (`stats-dump`, `irmap-cache`),
    /// which CRIU names without one. Kinds without a file name give `None`.
    pub fn file_name(&self, id: u64) -> Option<String> {
        if self.file.is_empty() {
            return None;
        }
        let hex = self.file.ends_with("%x");
        let arg = if hex {
            format!("{id:x}")
        } else {
            id.to_string()
        };
        Some(self.file_name_with(&arg))
    }

    /// Like [`ImageDesc::file_name`], with the conversion replaced by `arg`
    /// as it is (`STATS.file_name_with("dump")` is `stats-dump`).
    pub fn file_name_with(&self, arg: &str) -> String {
        let mut name = fill_pattern(self.file, arg);
        if self.head != Head::Service {
            name.push_str(".img");
        }
        name
    }
}

/// The file name of the raw pages image `id` (`pages-1.img`).
pub fn pages_file_name(id: u64) -> String {
    fill_pattern(PAGES_FILE, &id.to_string()) + ".img"
}

/// A printf pattern with its one conversion replaced by `arg`.
fn fill_pattern(pattern: &str, arg: &str) -> String {
    let Some(pos) = pattern.find('%') else {
        return pattern.to_owned();
    };
    let rest = &pattern[pos + 1..];
    let conv_len = rest
        .find(|c: char| c.is_ascii_alphabetic() && c != 'l')
        .map_or(rest.len(), |i| i + 1);
    format!("{}{arg}{}", &pattern[..pos], &rest[conv_len..])
}

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
        return Some(&SIGNAL);
    }
    if matches_pattern("pagemap-shmem-%lu", stem) || matches_pattern("pages-%d", stem) {
        return Some(&PAGEMAP);
    }
    if matches_pattern("binfmt-misc-%u", stem) {
        return Some(&BINFMT_MISC);
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
    fn file_names_from_kinds() {
        assert_eq!(CORE.file_name(42).as_deref(), Some("core-42.img"));
        assert_eq!(PSTREE.file_name(0).as_deref(), Some("pstree.img"));
        assert_eq!(
            GHOST_FILE.file_name(0x1f).as_deref(),
            Some("ghost-file-1f.img")
        );
        assert_eq!(STATS.file_name_with("dump"), "stats-dump");
        assert_eq!(INVENTORY.file_name(0).as_deref(), Some("inventory.img"));
        assert_eq!(KDAT.file_name(0), None);
        assert_eq!(pages_file_name(1), "pages-1.img");
        for d in IMAGES
            .iter()
            .filter(|d| !d.file.is_empty() && d.name != "STATS")
        {
            let f = d.file_name(7).unwrap_or_default();
            assert_eq!(by_file_name(&f).map(|x| x.name), Some(d.name), "{f}");
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
        assert!(is_raw_file(&pages_file_name(1)));
        assert!(!is_raw_file("pagemap-1.img"));
    }
}
