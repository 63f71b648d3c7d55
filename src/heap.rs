//! Returning freed heap memory to the system, and mapping in ahead of use.
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
//!
//! The other way round, [`prefault`] maps in at once the pages of a large
//! zeroed allocation that is about to be written all over.

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

/// Maps in the pages wholly inside `memory` now, writable, in one call
/// (`madvise(MADV_POPULATE_WRITE)`, Linux 5.14), without changing a byte:
/// for a large zeroed allocation whose pages would otherwise each take a
/// page fault at its first write. A no-op where the call is missing.
#[cfg(target_os = "linux")]
#[expect(
    unsafe_code,
    reason = "madvise to populate pages reads and writes none of their bytes"
)]
pub(crate) fn prefault<T>(memory: &[T]) {
    const PAGE: usize = 4096;
    let start = (memory.as_ptr() as usize).next_multiple_of(PAGE);
    let end = (memory.as_ptr() as usize + std::mem::size_of_val(memory)) / PAGE * PAGE;
    if end > start {
        // SAFETY: the range lies inside `memory`, mapped and owned by this
        // process; populating faults its pages in and leaves their contents
        // as they are. An error (an older kernel) leaves them to fault later.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_POPULATE_WRITE);
        }
    }
}

/// See the Linux version: elsewhere the pages fault in as written.
#[cfg(not(target_os = "linux"))]
pub(crate) fn prefault<T>(_memory: &[T]) {}

#[cfg(test)]
mod tests {
    #[test]
    fn prefault_leaves_every_byte_as_it_was() {
        // Pages wholly inside, and the partial pages at either end.
        let memory: Vec<u64> = (0..10_000u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect();
        super::prefault(&memory[3..9_990]);
        super::prefault(&memory[..0]);
        assert!(
            memory
                .iter()
                .enumerate()
                .all(|(i, &w)| w == (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        );
        let zeroed = vec![0u64; 1 << 16];
        super::prefault(&zeroed);
        assert!(zeroed.iter().all(|&w| w == 0));
    }
}
