//! Gathering everything a dump needs from a frozen task, by subject:
//! [`process`] (what /proc tells about the process as a whole),
//! [`thread`] (ptrace and /proc about one thread), [`memory`] (mappings
//! and the files behind them, the zero page), [`files`] (open fds, exe,
//! cwd, root), and [`inside`] (what only syscalls run inside the task can
//! tell). The image builders in [`crate::dump`] only look at the structs
//! defined here.

pub mod files;
pub mod inside;
pub mod memory;
pub mod process;
pub mod thread;

pub use files::{parse_build_id, FdFacts, FileRef, FileStat};
pub use inside::{from_inside, SIGMAX};
pub use memory::{zero_page_pfn, MappingFacts};
pub use process::{process_from_outside, ProcFacts, TimerFacts, NS_ORDER};
pub use thread::{has_shstk, thread_from_outside, AltStack, RseqCs, ThreadFacts};
