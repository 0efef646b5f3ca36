//! A short fuzz run on the stable toolchain, in every `cargo test`: the
//! fuzz targets' own checks (`fuzz/checks.rs`, included here) over the
//! fuzz seeds, the fixtures, every input a fuzz run found a problem with
//! (`tests/fuzz-regressions/`), and a few thousand deterministic mutations
//! of them (`fuzz/mutate.rs`). The long runs are `cargo +nightly fuzz run
//! decode_any` and `json_roundtrip` (docs/json.md).

use std::fs;
use std::path::{Path, PathBuf};

#[path = "../../fuzz/checks.rs"]
mod checks;
#[path = "../../fuzz/mutate.rs"]
mod mutate;

use mutate::{mutate, Rng};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The files below `dir`, sorted, whose name ends in one of `exts`.
fn files(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if exts.iter().any(|x| p.to_string_lossy().ends_with(x)) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Runs `check` on `input`, naming the input if it panics.
fn run(check: fn(&[u8]), what: &str, input: &[u8]) {
    if let Err(e) = std::panic::catch_unwind(|| check(input)) {
        let path = std::env::temp_dir().join(format!("crit-fuzz-{}", what.replace('/', "_")));
        let _ = fs::write(&path, input);
        eprintln!("{what}: check failed; the input is in {}", path.display());
        std::panic::resume_unwind(e);
    }
}

/// Runs `check` on the inputs and on mutants of them: `n` of each input
/// smaller than `small` (a tenth of that of the larger ones), ten times as
/// many of the seeds (named `seed ...`), which are small and reach what the
/// fixtures do not.
fn smoke(check: fn(&[u8]), name: &str, inputs: &[(String, Vec<u8>)], n: usize, small: usize) {
    let all: Vec<Vec<u8>> = inputs.iter().map(|(_, v)| v.clone()).collect();
    let mut rng = Rng(0x5eed_0fc4_1e00);
    let mut count = 0;
    for (what, input) in inputs {
        run(check, &format!("{name} {what}"), input);
        let mutants = match (what.starts_with("seed "), input.len() < small) {
            (true, _) => 10 * n,
            (false, true) => n,
            (false, false) => n / 10,
        };
        for i in 0..mutants {
            let m = mutate(&mut rng, input, &all);
            run(check, &format!("{name} {what} mutant {i}"), &m);
            count += 1;
        }
    }
    assert!(count > 1000, "only {count} mutants");
}

fn read_all(paths: &[PathBuf]) -> Vec<(String, Vec<u8>)> {
    paths
        .iter()
        .map(|p| {
            let name = p.strip_prefix(root()).unwrap_or(p).display().to_string();
            (name, fs::read(p).unwrap())
        })
        .collect()
}

fn regressions(ext: &str) -> Vec<(String, Vec<u8>)> {
    read_all(&files(
        &root().join("criu-image/tests/fuzz-regressions"),
        &[ext],
    ))
}

#[test]
fn decode_any_smoke() {
    let mut inputs: Vec<(String, Vec<u8>)> = checks::seeds()
        .into_iter()
        .map(|(n, v)| (format!("seed {n}"), v))
        .collect();
    inputs.extend(regressions(".img"));
    inputs.extend(read_all(&files(
        &root().join("fixtures/images"),
        &[".img", "stats-dump"],
    )));
    smoke(checks::decode_any, "decode_any", &inputs, 20, 2048);
}

#[test]
fn json_roundtrip_smoke() {
    let mut inputs = Vec::new();
    for (n, img) in checks::seeds() {
        for pretty in [false, true] {
            let r = criu_image::ImageReader::new(img.as_slice()).unwrap();
            let opts = criu_image::json::JsonOptions {
                pretty,
                nopl: false,
            };
            let text = criu_image::json::decode(r, Vec::new(), opts).unwrap();
            inputs.push((format!("seed {n} pretty={pretty}"), text));
        }
    }
    inputs.extend(regressions(".json"));
    let mut fixtures = read_all(&files(&root().join("fixtures/expected"), &[".json"]));
    fixtures.retain(|(_, v)| v.len() < 4096);
    inputs.extend(fixtures);
    smoke(checks::json_roundtrip, "json_roundtrip", &inputs, 10, 4096);
}
