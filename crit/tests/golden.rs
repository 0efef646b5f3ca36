//! Golden tests: every fixture image decodes to exactly what CRIU 4.2's
//! python crit printed, plain and pretty; both JSON forms encode back to the
//! original bytes; `info` and `x` match. All mismatches are listed, then the
//! test fails once.

use std::fs;
use std::path::{Path, PathBuf};

use criu_image::json::{self, JsonOptions};
use criu_image::ImageReader;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn cases() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(fixtures().join("images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    assert!(v.len() >= 5, "fixtures missing");
    v
}

fn decode(img: &[u8], pretty: bool) -> Result<Vec<u8>, criu_image::Error> {
    json::decode(
        ImageReader::new(img)?,
        Vec::new(),
        JsonOptions {
            pretty,
            nopl: false,
        },
    )
}

#[test]
fn images_match_python_crit() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let expected = fixtures().join("expected").join(&name);
        let mut imgs: Vec<PathBuf> = fs::read_dir(&case)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        imgs.sort();
        for img in imgs {
            let file = img.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = fs::read(&img).unwrap();
            let label = format!("{name}/{file}");
            let want_plain = expected.join(format!("{file}.json"));
            if !want_plain.exists() {
                assert!(
                    criu_image::registry::is_raw_file(&file),
                    "{label}: no expected output"
                );
                match ImageReader::new(bytes.as_slice()) {
                    Err(criu_image::Error::UnknownMagic { .. }) => {}
                    other => failures.push(format!(
                        "{label}: raw image should be refused, got {other:?}"
                    )),
                }
                continue;
            }
            let want_pretty = fs::read(expected.join(format!("{file}.pretty.json"))).unwrap();
            let want_plain = fs::read(want_plain).unwrap();
            for (pretty, want, kind) in [
                (false, &want_plain, "decode"),
                (true, &want_pretty, "pretty"),
            ] {
                checked += 1;
                match decode(&bytes, pretty) {
                    Ok(got) if &got == want => {}
                    Ok(got) => failures.push(format!("{kind} {label}: {}", first_diff(&got, want))),
                    Err(e) => failures.push(format!("{kind} {label}: {e}")),
                }
            }
            for (src, kind) in [
                (&want_plain, "encode plain"),
                (&want_pretty, "encode pretty"),
            ] {
                checked += 1;
                match json::encode(src.as_slice(), Vec::new()) {
                    Ok(got) if got == bytes => {}
                    Ok(got) => {
                        failures.push(format!("{kind} {label}: {}", first_diff(&got, &bytes)))
                    }
                    Err(e) => failures.push(format!("{kind} {label}: {e}")),
                }
            }
            let info_file = expected.join(format!("{file}.info.txt"));
            if info_file.exists() {
                checked += 1;
                let want = fs::read_to_string(info_file).unwrap();
                match crit::info::info(std::io::Cursor::new(&bytes)) {
                    Ok(i) if i.to_json() == want => {}
                    Ok(i) => failures.push(format!(
                        "info {label}: got {:?}, want {want:?}",
                        i.to_json()
                    )),
                    Err(e) => failures.push(format!("info {label}: {e}")),
                }
            }
        }
        for what in ["ps", "fds", "mems", "rss"] {
            let want = expected.join(format!("x-{what}.txt"));
            if !want.exists() {
                continue;
            }
            checked += 1;
            let want = fs::read_to_string(want).unwrap();
            let mut got = Vec::new();
            match crit::explore::explore(&case, what.parse().unwrap(), &mut got) {
                Ok(()) if got == want.as_bytes() => {}
                Ok(()) => failures.push(format!(
                    "x {what} {name}: {}",
                    first_diff(&got, want.as_bytes())
                )),
                Err(e) => failures.push(format!("x {what} {name}: {e}")),
            }
        }
    }
    assert!(checked > 300, "only {checked} checks ran");
    assert!(
        failures.is_empty(),
        "{} of {checked} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn first_diff(got: &[u8], want: &[u8]) -> String {
    let i = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let lo = i.saturating_sub(40);
    format!(
        "first difference at byte {i}: got {:?}, want {:?}",
        String::from_utf8_lossy(&got[lo..(i + 40).min(got.len())]),
        String::from_utf8_lossy(&want[lo..(i + 40).min(want.len())])
    )
}
