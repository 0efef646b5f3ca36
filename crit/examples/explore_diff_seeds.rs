//! Writes the seed corpus of the `explore_diff` fuzz target: pairs of
//! fixture dumps in the input form `fuzz/checks_crit.rs` reads.
//!
//! ```text
//! cargo run -p crit --example explore_diff_seeds -- fuzz/corpus/explore_diff
//! cargo +nightly fuzz run explore_diff fuzz/corpus/explore_diff
//! ```

use std::fs;
use std::path::{Path, PathBuf};

#[path = "../../fuzz/checks_crit.rs"]
#[allow(dead_code)] // the check itself is for the target
mod checks_crit;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: explore_diff_seeds DIR")?,
    );
    fs::create_dir_all(&out)?;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/images");
    let mut cases: Vec<PathBuf> = fs::read_dir(&fixtures)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    cases.sort();
    let mut n = 0;
    for a in &cases {
        for b in &cases {
            let name = |p: &Path| {
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            };
            let seed = checks_crit::seed(a, b, 2 * 4096);
            fs::write(out.join(format!("{}-{}", name(a), name(b))), seed)?;
            n += 1;
        }
    }
    println!("{n} pairs of dumps");
    Ok(())
}
