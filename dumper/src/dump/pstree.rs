//! pstree.img: the process tree (one process for now) and its threads.

use criu_image::pb;

use crate::collect::ProcFacts;

/// The tree's only entry: the dumped process is the root (ppid 0).
pub fn build(p: &ProcFacts, tids: &[i32]) -> pb::PstreeEntry {
    pb::PstreeEntry {
        pid: p.pid as u32,
        ppid: 0,
        pgid: p.stat.pgid as u32,
        sid: p.stat.sid as u32,
        threads: tids.iter().map(|t| *t as u32).collect(),
    }
}
