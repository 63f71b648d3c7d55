//! The page cache: a direct-mapped table of verified pages, indexed by page
//! id.
//!
//! Pages are immutable while any snapshot can reach them (copy-on-write), so
//! the cache never holds dirty data: every page is written through to the
//! backend before it is cached, and an entry is only ever replaced when its
//! page id is reused, which the allocator allows only once no reader can reach
//! the old contents. Eviction is therefore free: drop the entry.
//!
//! Page ids are dense (the allocator reuses low ids first), so a two-level
//! table indexed by id beats a hash map: a lookup is two dependent loads and
//! one uncontended slot lock, with no hashing or probing. Measured on the
//! 1M-key tree, a random point read spent a third of its time in the hash map
//! this replaced (see design/format.md).

use std::collections::VecDeque;
use std::sync::OnceLock;

use parking_lot::Mutex;

use super::store::Page;

const CHUNK_BITS: u32 = 16;
const CHUNK_LEN: usize = 1 << CHUNK_BITS;
/// Pages beyond `MAX_CHUNKS * CHUNK_LEN` (4 TiB at 4 KiB pages) are read
/// from storage every time rather than cached.
const MAX_CHUNKS: usize = 1 << 14;

type Slot = Mutex<Option<Page>>;

/// Thread safety: each slot has its own lock, held for a pointer copy; the
/// eviction queue has one lock, taken only when a page enters the cache.
/// No lock is held across I/O.
pub(crate) struct PageCache {
    chunks: Box<[OnceLock<Box<[Slot]>>]>,
    /// Ids of the cached pages in insertion order, for FIFO eviction: every
    /// slot that holds a page, and the ids of pages forgotten since (their
    /// slots empty).
    resident: Mutex<VecDeque<u64>>,
    capacity: usize,
}

impl PageCache {
    pub(crate) fn new(capacity_bytes: usize, page_size: usize) -> Self {
        Self {
            chunks: (0..MAX_CHUNKS).map(|_| OnceLock::new()).collect(),
            resident: Mutex::new(VecDeque::new()),
            // No floor: a cache of zero pages is what a caller who asks for
            // one wants (every read reaches the backend, as redb's tests
            // that inject read failures rely on).
            capacity: capacity_bytes / page_size,
        }
    }

    fn slot(&self, id: u64) -> Option<&Slot> {
        let chunk = self.chunks.get(usize::try_from(id >> CHUNK_BITS).ok()?)?;
        let chunk = chunk.get_or_init(|| (0..CHUNK_LEN).map(|_| Mutex::new(None)).collect());
        Some(&chunk[id as usize & (CHUNK_LEN - 1)])
    }

    pub(crate) fn get(&self, id: u64) -> Option<Page> {
        self.slot(id)?.lock().clone()
    }

    /// Drops page `id` from the cache. Its id stays in the eviction queue
    /// until its turn comes (removing it there would cost a search), so the
    /// cache holds up to that many pages fewer meanwhile.
    pub(crate) fn forget(&self, id: u64) {
        if let Some(slot) = self.slot(id) {
            slot.lock().take();
        }
    }

    pub(crate) fn insert(&self, id: u64, page: Page) {
        let Some(slot) = self.slot(id) else { return };
        let replaced = slot.lock().replace(page);
        if replaced.is_some() {
            return;
        }
        let mut resident = self.resident.lock();
        resident.push_back(id);
        while resident.len() > self.capacity {
            let Some(victim) = resident.pop_front() else {
                break;
            };
            if let Some(slot) = self.slot(victim) {
                slot.lock().take();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_oldest_beyond_capacity_and_replaces_in_place() {
        let cache = PageCache::new(16 * 4096, 4096);
        for id in 0..20u64 {
            cache.insert(id, Page::from(vec![id as u8; 8]));
        }
        assert!(cache.get(3).is_none(), "oldest pages evicted");
        assert_eq!(cache.get(19).unwrap()[0], 19);
        cache.insert(19, Page::from(vec![99u8; 8]));
        assert_eq!(cache.get(19).unwrap()[0], 99);
        let far = (MAX_CHUNKS as u64) << CHUNK_BITS;
        cache.insert(far, Page::from(vec![1u8; 8]));
        assert!(cache.get(far).is_none(), "ids past the table are not cached");
    }

    #[test]
    fn a_forgotten_page_is_gone_and_its_queue_place_harmless() {
        let cache = PageCache::new(4 * 4096, 4096);
        for id in 0..4u64 {
            cache.insert(id, Page::from(vec![id as u8; 8]));
        }
        cache.forget(1);
        assert!(cache.get(1).is_none(), "a forgotten page was served");
        cache.insert(1, Page::from(vec![42u8; 8]));
        assert_eq!(cache.get(1).unwrap()[0], 42);
        // Id 1 is queued twice now: its first turn evicts it early, which
        // costs a reload, never a wrong page.
        for id in 4..8u64 {
            cache.insert(id, Page::from(vec![id as u8; 8]));
        }
        for id in 4..8u64 {
            assert_eq!(cache.get(id).unwrap()[0], id as u8);
        }
        assert!(cache.resident.lock().len() <= 4, "the queue outgrew the capacity");
    }

    #[test]
    fn a_zero_byte_cache_holds_nothing() {
        let cache = PageCache::new(0, 4096);
        cache.insert(1, Page::from(vec![1u8; 8]));
        assert!(cache.get(1).is_none());
        assert!(cache.resident.lock().is_empty());
    }
}
