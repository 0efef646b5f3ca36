//! seccomp.img and timens-0.img: written for every dump, like CRIU does.

use criu_image::pb;

/// seccomp.img: the filter chains (none: tasks with filters are refused).
pub fn seccomp() -> pb::SeccompEntry {
    pb::SeccompEntry::default()
}

/// timens-0.img: CRIU stores the dumper's CLOCK_MONOTONIC and
/// CLOCK_BOOTTIME at dump time, from which restore computes offsets.
pub fn timens() -> pb::TimensEntry {
    let ts = |c| {
        nix::time::clock_gettime(c)
            .map(|t| pb::Timespec {
                tv_sec: t.tv_sec() as u64,
                tv_nsec: t.tv_nsec() as u64,
            })
            .unwrap_or_default()
    };
    pb::TimensEntry {
        monotonic: ts(nix::time::ClockId::CLOCK_MONOTONIC),
        boottime: ts(nix::time::ClockId::CLOCK_BOOTTIME),
    }
}
