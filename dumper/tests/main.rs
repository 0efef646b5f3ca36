//! Live tests: dump a victim we start ourselves, decode every image, and
//! compare with /proc and with what the victim reports about itself.
//! They skip themselves (`SKIP: why` on the terminal) when ptrace or a C
//! compiler is not available, except in CI (`CI` set), where a test that
//! cannot run fails (`support::skip`); they run one at a time.

mod collect;
mod failures;
mod live;
mod support;
