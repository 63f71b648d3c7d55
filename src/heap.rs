//! Returning freed heap memory to the system.
//!
//! glibc's malloc gives each thread that allocates an arena of its own and
//! never moves free memory between arenas. sluicedb frees on one thread what
//! another allocated: a page a reader loaded is dropped when a flush on the
//! apply thread replaces it, and a bulk load's write set, built by the
//! writer, is dropped after its tree commit while the next memtables grow on
//! other threads. Without help each arena keeps its free memory resident:
//! after a 1M-key tree commit, 107 MiB freed by the writer stayed resident
//! while the memtables after it grew elsewhere (`design/format.md`, "The
//! cache's memory", for the pages). [`release_free_memory`] is that help,
//! called after freeing a lot at once.

/// Hands the free memory of every heap arena back to the system (glibc's
/// `malloc_trim`, which also coalesces the small free chunks it keeps aside).
/// A no-op on other C libraries. Costs a walk of the arenas' free lists:
/// call it after freeing megabytes, not after every free.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(unsafe_code, reason = "malloc_trim takes no pointers and only returns free memory")]
pub(crate) fn release_free_memory() {
    // SAFETY: malloc_trim reads no memory of ours; it gives free pages of
    // every arena back to the system and leaves allocated memory alone.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// See the glibc version: other allocators return memory on their own terms.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn release_free_memory() {}
