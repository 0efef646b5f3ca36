//! `crit info`: an image's magic and entry count.

use std::io::{Read, Seek, SeekFrom};

use crate::error::{Error, Result};
use crate::framing::ImageReader;
use crate::registry::{ImageDesc, Layout};

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
    if desc.layout == Layout::GhostFile {
        r.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io("seeking", e))?;
        let n = ImageReader::new(&mut r)?.try_fold(0u64, |n, e| e.map(|_| n + 1))?;
        return Ok(Info { desc, count: n });
    }
    let end = r
        .seek(SeekFrom::End(0))
        .map_err(|e| Error::io("seeking", e))?;
    let mut pos = start;
    let mut count: u64 = 0;
    while pos < end {
        r.seek(SeekFrom::Start(pos))
            .map_err(|e| Error::io("seeking", e))?;
        let mut b = [0u8; 4];
        let avail = (end - pos).min(4) as usize;
        r.read_exact(&mut b[..avail])
            .map_err(|e| Error::io(format!("reading at byte {pos}"), e))?;
        if avail < 4 {
            return Err(Error::Truncated {
                offset: pos,
                expected: "an entry size",
                needed: 4,
                found: avail as u64,
            });
        }
        // python unpacks the size as a signed int and seeks by it
        let size = i64::from(i32::from_ne_bytes(b));
        let next = pos as i64 + 4 + size;
        if size < 0 {
            return Err(Error::Truncated {
                offset: pos,
                expected: "a non-negative entry size",
                needed: 4,
                found: 4,
            });
        }
        pos = next as u64;
        count += 1;
    }
    if desc.layout == Layout::Pagemap {
        count = count.saturating_sub(1);
    }
    Ok(Info { desc, count })
}
