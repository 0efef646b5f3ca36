//! `crit info`: an image's magic and entry count.

use std::io::{self, Read, Seek, SeekFrom};

use criu_image::{registry, ImageDesc, ImageReader};

use crate::error::{Error, Result};

/// Magic name and entry count, as `crit info` prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The image kind.
    pub desc: &'static ImageDesc,
    /// The count python crit reports.
    pub count: u64,
}

impl Info {
    /// The JSON text python crit prints (indent 4, then a newline).
    pub fn to_json(&self) -> String {
        format!(
            "{{\n    \"magic\": \"{}\",\n    \"count\": {}\n}}\n",
            self.desc.name, self.count
        )
    }
}

/// Counts entries the way python crit 4.2 does: it walks the size fields
/// only, so the data after entries (pipe data, socket queues...) is read as
/// further size fields, and the pagemap head is not counted. Scripts rely on
/// these numbers, so they are kept; `crit decode` gives the real entries.
/// Ghost files, which python crit cannot count, get their real count.
pub fn info<R: Read + Seek>(mut r: R) -> Result<Info> {
    let (desc, start) = {
        let reader = ImageReader::new(&mut r)?;
        (reader.desc(), reader.offset())
    };
    if *desc == registry::GHOST_FILE {
        r.seek(SeekFrom::Start(0)).map_err(io_err("seeking"))?;
        let n = ImageReader::new(&mut r)?.try_fold(0u64, |n, e| e.map(|_| n + 1))?;
        return Ok(Info { desc, count: n });
    }
    let end = r.seek(SeekFrom::End(0)).map_err(io_err("seeking"))?;
    let mut pos = start;
    let mut count: u64 = 0;
    while pos < end {
        r.seek(SeekFrom::Start(pos)).map_err(io_err("seeking"))?;
        let mut b = [0u8; 4];
        let avail = (end - pos).min(4) as usize;
        r.read_exact(&mut b[..avail]).map_err(|source| Error::Io {
            context: format!("reading at byte {pos}"),
            source,
        })?;
        if avail < 4 {
            return Err(criu_image::Error::Truncated {
                offset: pos,
                expected: "an entry size",
                needed: 4,
                found: avail as u64,
            }
            .into());
        }
        // python unpacks the size as a signed int and seeks by it
        let Ok(size) = u64::try_from(i32::from_ne_bytes(b)) else {
            return Err(criu_image::Error::Truncated {
                offset: pos,
                expected: "a non-negative entry size",
                needed: 4,
                found: 4,
            }
            .into());
        };
        // pos <= end, a file size, and size < 2^31: no overflow
        pos = pos.saturating_add(4 + size);
        count += 1;
    }
    if *desc == registry::PAGEMAP {
        count = count.saturating_sub(1);
    }
    Ok(Info { desc, count })
}

fn io_err(context: &'static str) -> impl Fn(io::Error) -> Error {
    move |source| Error::Io {
        context: context.to_owned(),
        source,
    }
}
