//! crit's integration tests, one binary (modules per area).

mod cli;
mod crafted;
mod deep;
mod diff;
mod fuzz;
mod golden;
