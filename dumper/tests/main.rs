//! Live tests: dump a victim we start ourselves, decode every image, and
//! compare with /proc and with what the victim reports about itself.
//! They skip themselves (with a message) when ptrace or a C compiler is
//! not available, and run one at a time.

mod collect;
mod failures;
mod live;
mod support;
