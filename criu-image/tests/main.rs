//! The image library's integration tests, one binary (modules per area).

mod fuzz;
mod images;

/// An image with the common magic, `magic` and these raw entry payloads.
pub(crate) fn image(magic: u32, entries: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&criu_image::registry::IMG_COMMON_MAGIC.to_ne_bytes());
    v.extend_from_slice(&magic.to_ne_bytes());
    for e in entries {
        v.extend_from_slice(&(e.len() as u32).to_ne_bytes());
        v.extend_from_slice(e);
    }
    v
}
