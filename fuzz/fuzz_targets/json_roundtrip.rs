//! Any text through the JSON reader and encoder: no panic; whatever encodes
//! decodes, and encodes again to the same bytes.
#![no_main]

use criu_image::json::{self, JsonOptions};
use criu_image::ImageReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(img) = json::encode(data, Vec::new()) else { return };
    let text = json::decode(ImageReader::new(img.as_slice()).expect("magic"), Vec::new(), JsonOptions::default())
        .expect("encoded image decodes");
    let again = json::encode(text.as_slice(), Vec::new()).expect("decoded JSON encodes");
    assert_eq!(img, again);
});
