//! inventory.img: image version, the dumper's own ids, LSM, run id. It is
//! written last, so a directory without it is not a complete dump.

use criu_image::pb;

/// CRIU's `CRTOOLS_IMAGES_V1_1`.
pub const IMG_VERSION: u32 = 2;

/// The LSM of this host as CRIU names it (0 none, 1 SELinux, 2 AppArmor).
pub fn host_lsm() -> i32 {
    if std::path::Path::new("/sys/kernel/security/apparmor").exists() {
        2
    } else if std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        1
    } else {
        0
    }
}

/// A random run id in UUID form, like CRIU's `criu_run_id`.
pub fn run_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| format!("{:x}-dumper", std::process::id()))
}

/// The inventory entry.
pub fn build(lsm: i32, run_id: String) -> pb::InventoryEntry {
    pb::InventoryEntry {
        img_version: IMG_VERSION,
        fdinfo_per_id: Some(true),
        root_ids: Some(super::ids::build(1)),
        ns_per_id: Some(true),
        root_cg_set: Some(1),
        lsmtype: Some(lsm),
        dump_uptime: None,
        pre_dump_mode: None,
        tcp_close: None,
        network_lock_method: Some(0),
        plugins_entry: Some(pb::PluginsEntry::default()),
        dump_criu_run_id: Some(run_id.into_bytes()),
        ..Default::default()
    }
}
