//! Writes large synthetic images with the image library, for benchmarks:
//!
//! ```text
//! cargo run --release --example gen_images -- pagemap 200000 pagemap-1.img
//! cargo run --release --example gen_images -- mm 50000 mm-1.img
//! ```

use std::fs::File;
use std::io::BufWriter;

use criu_image::{pb, registry, ImageWriter};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, n, out] = args.as_slice() else {
        return Err("usage: gen_images pagemap|mm COUNT OUT".into());
    };
    let n: u64 = n.parse()?;
    let file = BufWriter::new(File::create(out)?);
    match kind.as_str() {
        "pagemap" => {
            let mut w = ImageWriter::new(file, &registry::PAGEMAP)?;
            w.write_message(&pb::PagemapHead { pages_id: 1 })?;
            for i in 0..n {
                w.write_message(&pb::PagemapEntry {
                    vaddr: 0x5555_0000_0000 + i * 0x3000,
                    compat_nr_pages: 0,
                    in_parent: None,
                    flags: Some(4),
                    nr_pages: Some(1 + i % 2),
                })?;
            }
            w.finish()?;
        }
        "mm" => {
            let vmas = (0..n)
                .map(|i| pb::VmaEntry {
                    start: 0x7f00_0000_0000 + i * 0x2000,
                    end: 0x7f00_0000_1000 + i * 0x2000,
                    pgoff: 0,
                    shmid: 0,
                    prot: 3,
                    flags: 0x22,
                    status: 0x201,
                    fd: -1,
                    madv: None,
                    fdflags: None,
                })
                .collect();
            let mm = pb::MmEntry {
                mm_start_code: 0x5555_0000_0000,
                mm_end_code: 0x5555_0000_1000,
                exe_file_id: 1,
                vmas,
                mm_saved_auxv: vec![33, 0x7fff_0000_0000, 6, 4096, 0, 0],
                ..Default::default()
            };
            let mut w = ImageWriter::new(file, &registry::MM)?;
            w.write_message(&mm)?;
            w.finish()?;
        }
        _ => return Err(format!("unknown kind {kind}").into()),
    }
    Ok(())
}
