//! stats-dump: timings (microseconds) and page counters, as CRIU records
//! them: freezing (seize until all threads stopped), frozen (stopped until
//! released), memdump (choosing and copying pages), memwrite (the part of
//! memdump spent writing pages-*.img and pagemap).

use std::time::Duration;

use criu_image::pb;

use super::pagemap::Plan;

/// Measured durations.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    pub freezing: Duration,
    pub frozen: Duration,
    pub memdump: Duration,
    pub memwrite: Duration,
}

fn us(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// The stats entry.
pub fn build(t: &Timings, plan: &Plan) -> pb::StatsEntry {
    pb::StatsEntry {
        dump: Some(pb::DumpStatsEntry {
            freezing_time: us(t.freezing),
            frozen_time: us(t.frozen),
            memdump_time: us(t.memdump),
            memwrite_time: us(t.memwrite),
            pages_scanned: plan.pages_scanned,
            pages_skipped_parent: 0,
            pages_written: plan.pages_written,
            irmap_resolve: Some(0),
            pages_lazy: 0,
            page_pipes: Some(plan.page_pipes),
            page_pipe_bufs: Some(plan.page_pipe_bufs),
            shpages_scanned: Some(0),
            shpages_skipped_parent: Some(0),
            shpages_written: Some(0),
        }),
        restore: None,
    }
}
