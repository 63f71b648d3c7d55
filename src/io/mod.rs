//! The I/O seam: everything the engine does to a file goes through
//! [`StorageBackend`], so tests can swap the real file for memory or for a
//! crash-simulating image without `cfg` tricks.

mod backend;
mod crash;
mod file;
mod latch;
mod memory;

pub use backend::StorageBackend;
pub use crash::{CrashBackend, TearMode};
pub use file::FileBackend;
pub use memory::MemoryBackend;

pub(crate) use latch::LatchedBackend;
