//! The `crit` command: a thin shell over the crit library.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
