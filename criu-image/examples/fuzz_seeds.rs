//! Writes the seed corpora of the image-library fuzz targets: the images
//! `fuzz/checks.rs` builds plus the fixtures for `decode_any`, and their
//! JSON (plain and pretty) for `json_roundtrip`.
//!
//! ```text
//! cargo run -p criu-image --example fuzz_seeds -- fuzz/corpus
//! cargo +nightly fuzz run decode_any fuzz/corpus/decode_any
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use criu_image::json::{self, JsonOptions};
use criu_image::ImageReader;

#[path = "../../fuzz/checks.rs"]
#[allow(dead_code)] // the checks themselves are for the targets
mod checks;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::args().nth(1).ok_or("usage: fuzz_seeds DIR")?);
    let (images, texts) = (out.join("decode_any"), out.join("json_roundtrip"));
    fs::create_dir_all(&images)?;
    fs::create_dir_all(&texts)?;
    let mut all: Vec<(String, Vec<u8>)> = checks::seeds()
        .into_iter()
        .map(|(n, v)| (format!("seed-{n}.img"), v))
        .collect();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/images");
    for case in fs::read_dir(&fixtures)? {
        let case = case?.path();
        for img in fs::read_dir(&case)? {
            let img = img?.path();
            let name = format!(
                "{}-{}",
                case.file_name().unwrap_or_default().to_string_lossy(),
                img.file_name().unwrap_or_default().to_string_lossy()
            );
            all.push((name, fs::read(&img)?));
        }
    }
    for (name, img) in &all {
        fs::write(images.join(name), img)?;
        for pretty in [false, true] {
            let Ok(r) = ImageReader::new(img.as_slice()) else {
                continue;
            };
            let opts = JsonOptions {
                pretty,
                nopl: false,
            };
            if let Ok(text) = json::decode(r, Vec::new(), opts) {
                fs::write(texts.join(format!("{name}.{pretty}.json")), text)?;
            }
        }
    }
    println!("{} images, their JSON", all.len());
    Ok(())
}
