//! Any bytes through registry, framing and both JSON paths: no panic, and an
//! image that decodes re-encodes to JSON that decodes to the same text.
#![no_main]

use criu_image::json::{self, JsonOptions};
use criu_image::ImageReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for pretty in [false, true] {
        let Ok(r) = ImageReader::new(data) else { return };
        let Ok(text) = json::decode(r, Vec::new(), JsonOptions { pretty, nopl: false }) else {
            continue;
        };
        // what decodes must encode, and decode again to the same text
        let img = json::encode(text.as_slice(), Vec::new()).expect("decoded JSON encodes");
        let again = json::decode(ImageReader::new(img.as_slice()).expect("magic"), Vec::new(), JsonOptions { pretty, nopl: false })
            .expect("re-encoded image decodes");
        assert_eq!(text, again);
    }
    let _ = ImageReader::new(data).map(|r| r.count());
});
