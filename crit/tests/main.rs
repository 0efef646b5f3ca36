//! crit's integration tests, one binary (modules per area).

mod cli;
mod crafted;
mod diff;
mod golden;
mod images;
