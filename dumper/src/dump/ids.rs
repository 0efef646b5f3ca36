//! ids-PID.img: the task's kernel-object and namespace ids.
//!
//! CRIU numbers objects as it meets them, starting with its own process
//! (whose ids go to inventory.img as `root_ids`): vm, files, fs and
//! sighand of the dumper are 1, those of the target 2; namespaces are
//! numbered in the order pid, net, ipc, uts, time, mnt, user, cgroup, and
//! the target shares all of them with the dumper (others are refused).

use criu_image::pb;

/// Ids for a process whose vm/files/fs/sighand objects got number `obj`.
pub fn build(obj: u32) -> pb::TaskKobjIdsEntry {
    pb::TaskKobjIdsEntry {
        vm_id: obj,
        files_id: obj,
        fs_id: obj,
        sighand_id: obj,
        pid_ns_id: Some(1),
        net_ns_id: Some(2),
        ipc_ns_id: Some(3),
        uts_ns_id: Some(4),
        mnt_ns_id: Some(6),
        user_ns_id: Some(7),
        cgroup_ns_id: Some(8),
        time_ns_id: Some(5),
    }
}
