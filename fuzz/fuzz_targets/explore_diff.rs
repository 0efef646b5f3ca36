//! Any bytes as a pair of dumps: see `checks_crit::explore_diff`.
#![no_main]

#[path = "../checks_crit.rs"]
#[allow(dead_code)] // the seeds are for the smoke test
mod checks_crit;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks_crit::explore_diff(data));
