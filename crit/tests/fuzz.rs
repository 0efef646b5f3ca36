//! A short fuzz run of `crit x` and `crit diff` on the stable toolchain,
//! in every `cargo test`: the fuzz target's own check
//! (`fuzz/checks_crit.rs`, included here) over pairs of fixture dumps and
//! deterministic mutations of them (`fuzz/mutate.rs`). The long run is
//! `cargo +nightly fuzz run explore_diff` (docs/diff.md).

use std::path::{Path, PathBuf};

#[path = "../../fuzz/checks_crit.rs"]
mod checks_crit;
#[path = "../../fuzz/mutate.rs"]
mod mutate;

use mutate::{mutate, Rng};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/images")
}

#[test]
fn explore_diff_smoke() {
    let pairs = [
        ("single", "single"),
        ("single", "threads"),
        ("threads", "single"),
        ("tree", "tree"),
        ("files", "files"),
        ("manyfds", "python"),
    ];
    let seeds: Vec<Vec<u8>> = pairs
        .iter()
        .map(|(a, b)| checks_crit::seed(&fixtures().join(a), &fixtures().join(b), 2 * 4096))
        .collect();
    let mut rng = Rng(0xd1ff_5eed);
    let mut count = 0;
    for (seed, (a, b)) in seeds.iter().zip(pairs) {
        checks_crit::explore_diff(seed);
        for i in 0..30 {
            let m = mutate(&mut rng, seed, &seeds);
            if let Err(e) = std::panic::catch_unwind(|| checks_crit::explore_diff(&m)) {
                let path = std::env::temp_dir().join(format!("crit-fuzz-explore_diff-{a}-{b}-{i}"));
                let _ = std::fs::write(&path, &m);
                eprintln!(
                    "mutant {i} of {a}/{b} failed; the input is in {}",
                    path.display()
                );
                std::panic::resume_unwind(e);
            }
            count += 1;
        }
    }
    assert!(count >= 180, "{count}");
}
