//! The I/O seams: everything the engine does to the data file goes through
//! [`StorageBackend`], and everything it does to WAL segments through
//! [`LogDir`], so tests can swap the real files for memory or for
//! crash-simulating, fault-injecting images without `cfg` tricks.

mod backend;
mod crash;
mod crash_dir;
mod crash_disk;
mod failure;
mod fault;
mod file;
mod held_syncs;
mod latch;
mod log_dir;
mod memory;

pub use backend::StorageBackend;
pub use crash::{CrashBackend, PowerLine, TearMode};
pub use crash_dir::CrashLogDir;
pub use crash_disk::CrashDisk;
pub use failure::Failure;
pub use file::FileBackend;
pub(crate) use file::WriteBehind;
pub use held_syncs::HeldSyncs;
pub use log_dir::{FsLogDir, LogDir, MemLogDir, sync_dir};
pub use memory::MemoryBackend;

pub(crate) use latch::LatchedBackend;
