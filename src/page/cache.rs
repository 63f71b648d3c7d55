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
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::store::Page;
use crate::striped::Striped;

const CHUNK_BITS: u32 = 16;
const CHUNK_LEN: usize = 1 << CHUNK_BITS;
/// Pages beyond `MAX_CHUNKS * CHUNK_LEN` (4 TiB at 4 KiB pages) are read
/// from storage every time rather than cached.
const MAX_CHUNKS: usize = 1 << 14;

type Slot = Mutex<Option<Page>>;

/// Thread safety: each slot has its own lock, held for a pointer copy; each
/// shard of the eviction order has one, taken only when a page of the shard
/// enters the cache. No lock is held across I/O or while a page is freed.
pub(crate) struct PageCache {
    chunks: Box<[OnceLock<Box<[Slot]>>]>,
    /// The eviction order, in shards by page id (see [`Shard`]).
    shards: Box<[Shard]>,
    /// Pages the slots hold.
    cached: AtomicUsize,
    /// Bytes of pages `recycle` has freed (no spare slot, or held elsewhere
    /// until then) since it last returned free heap memory to the system
    /// (`crate::heap`: pages move between readers' threads and the flush's).
    forgotten: AtomicUsize,
    /// Page memory to reuse (see [`recycle`](Self::recycle)).
    spare: Mutex<Vec<Page>>,
    page_size: usize,
    counters: Counters,
}

/// Spare pages kept at most (4 MiB of 4 KiB pages). A writer frees about as
/// many pages as it writes, but in bursts: a flush frees the leaves under
/// one parent after writing their replacements. With room for 64, half the
/// freed pages of a flush of 200K writes into a 1M-key tree found none and
/// were freed; with 1024, one in fourteen.
const MAX_SPARE: usize = 1024;

/// Pages of cache below which it has a single shard, and per shard above.
const SHARD_PAGES: usize = 256;
/// The most shards the eviction order is split into.
const MAX_SHARDS: usize = 16;
/// Ids a shard's queue keeps before it is pruned, whatever it holds.
const PRUNE_FLOOR: usize = 64;

/// A share of the cache's capacity with its own eviction order (FIFO, a
/// scan's leaves first: see `queue`): the pages whose id falls in it (id
/// modulo the shard count: dense ids spread evenly). One queue for the
/// whole cache was the hottest lock of a scan that ran beside a flush (10M
/// keys: the scanning thread blocked in `insert` ~2,000 times a second,
/// the flush's ~1,500, each waiting while the other evicted and freed
/// pages under it).
#[repr(align(64))]
struct Shard {
    /// Ids of the shard's cached pages in eviction order: every slot of the
    /// shard that holds a page, and ids whose page was forgotten since (their
    /// slots empty, or holding a later page of the same id, which then has
    /// two places in the queue). Pages enter at the back, in insertion
    /// order, but for a scan's leaves ([`PageCache::insert_cold`]), which
    /// enter at the front once the evictions they cause are done: the front
    /// is evicted first, so in a full shard the next page to enter evicts a
    /// scan's leaf before anything else. Pruned of ids with empty slots once it
    /// holds twice as many ids as the shard holds pages, and twice as many
    /// as the last prune left (`prune_at`).
    queue: Mutex<VecDeque<u64>>,
    /// Ids the queue may hold before its next prune, whatever the pages
    /// held: twice what the last prune kept. Moves under `queue`'s lock.
    ///
    /// Why: an id forgotten and then cached again has two places in the
    /// queue, and both pass the prune's test (the slot holds a page).
    /// Without this floor a queue of such duplicates stayed just above
    /// twice the pages held after every prune, and each next page cached
    /// walked the whole queue again to drop a few ids: loading 10M keys, 3,136
    /// prunes walked 63M ids and kept 98% of them, and the 10M overwrite
    /// batches spent 3.6% of the process's samples there (8% of the
    /// committing thread's). Such duplicates leave the queue as before: at
    /// their turn to evict (the first evicts the page, the second finds
    /// its slot empty).
    prune_at: AtomicUsize,
    /// Pages the shard's slots hold; moves with `cached`, under the slot's
    /// lock.
    held: AtomicUsize,
    /// Pages the shard may hold.
    capacity: usize,
}

/// What [`PageCache::stats`] reports, counted as the cache works.
#[derive(Default)]
struct Counters {
    /// Hits are counted on every read, so by each thread on a line of its
    /// own (one shared counter made concurrent readers trade its cache line
    /// on every page).
    read_hits: Striped,
    read_misses: AtomicU64,
    write_hits: AtomicU64,
    write_misses: AtomicU64,
    evictions: AtomicU64,
    /// Ids the queues' prunes have walked (tests).
    #[cfg(test)]
    prune_walked: AtomicU64,
}

/// The page cache's counters since the database opened, and what it holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CacheCounters {
    pub(crate) read_hits: u64,
    pub(crate) read_misses: u64,
    pub(crate) write_hits: u64,
    pub(crate) write_misses: u64,
    pub(crate) evictions: u64,
    pub(crate) used_bytes: usize,
}

/// `recycle` returns free heap memory to the system after freeing this many
/// bytes of pages.
const RELEASE_EVERY: usize = 8 << 20;

impl PageCache {
    pub(crate) fn new(capacity_bytes: usize, page_size: usize) -> Self {
        // No floor: a cache of zero pages is what a caller who asks for one
        // wants (every read reaches the backend, as redb's tests that inject
        // read failures rely on).
        let capacity = capacity_bytes / page_size;
        let count = (capacity / SHARD_PAGES).clamp(1, MAX_SHARDS);
        let shards = (0..count)
            .map(|i| Shard {
                queue: Mutex::new(VecDeque::new()),
                held: AtomicUsize::new(0),
                prune_at: AtomicUsize::new(0),
                capacity: capacity / count + usize::from(i < capacity % count),
            })
            .collect();
        Self {
            chunks: (0..MAX_CHUNKS).map(|_| OnceLock::new()).collect(),
            shards,
            cached: AtomicUsize::new(0),
            forgotten: AtomicUsize::new(0),
            spare: Mutex::new(Vec::new()),
            page_size,
            counters: Counters::default(),
        }
    }

    /// The counters and the bytes of pages held now.
    pub(crate) fn stats(&self) -> CacheCounters {
        let c = &self.counters;
        CacheCounters {
            read_hits: c.read_hits.sum(Ordering::Relaxed),
            read_misses: c.read_misses.load(Ordering::Relaxed),
            write_hits: c.write_hits.load(Ordering::Relaxed),
            write_misses: c.write_misses.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
            used_bytes: self.cached.load(Ordering::Relaxed) * self.page_size,
        }
    }

    fn shard(&self, id: u64) -> &Shard {
        &self.shards[(id % self.shards.len() as u64) as usize]
    }

    fn slot(&self, id: u64) -> Option<&Slot> {
        let chunk = self.chunks.get(usize::try_from(id >> CHUNK_BITS).ok()?)?;
        let chunk = chunk.get_or_init(|| (0..CHUNK_LEN).map(|_| Mutex::new(None)).collect());
        Some(&chunk[id as usize & (CHUNK_LEN - 1)])
    }

    /// Starts loading the slot of page `id` into the cache, for a
    /// [`get`](Self::get) soon after (making the slot's chunk if it has
    /// none yet, as that `get` would).
    pub(crate) fn prefetch(&self, id: u64) {
        if let Some(slot) = self.slot(id) {
            crate::prefetch::prefetch(slot);
        }
    }

    /// Starts loading the first line of the cached page `id` and its
    /// reference count, which a [`get`](Self::get) soon after touches
    /// first, without taking a reference (the slot's lock is held for the
    /// prefetch only): a caller with several pages to read asks for them
    /// all first, and their misses overlap.
    pub(crate) fn prefetch_page_head(&self, id: u64) {
        if let Some(slot) = self.slot(id)
            && let Some(page) = slot.lock().as_ref()
        {
            // An `Arc`'s two counts sit just before its data.
            let counts = page.as_ptr().wrapping_sub(2 * size_of::<usize>());
            crate::prefetch::prefetch(counts);
            crate::prefetch::prefetch(page.as_ptr());
        }
    }

    /// The cached page `id`, counted as a read hit or miss.
    pub(crate) fn get(&self, id: u64) -> Option<Page> {
        self.get_with(id, 0)
    }

    /// The cached page `id`, as [`get`](Self::get), with the lines of its
    /// first `head` bytes asked for before its reference count is taken.
    /// The count's atomic increment is usually the first touch of the page:
    /// it waits for that line, and the loads after it wait for the
    /// increment, so prefetches issued once `get` returns start a cache
    /// miss late. For a caller about to search the page, which asks for
    /// the rest it needs once it can read the page's header
    /// (`Node::prefetch_rest`).
    pub(crate) fn get_prefetched(&self, id: u64, head: usize) -> Option<Page> {
        self.get_with(id, head)
    }

    /// The page, its first `head` bytes asked for (0: none).
    #[inline]
    fn get_with(&self, id: u64, head: usize) -> Option<Page> {
        let held = self.slot(id)?.lock();
        if let (1.., Some(page)) = (head, held.as_ref()) {
            crate::prefetch::prefetch_bytes(&page[..head.min(page.len())]);
        }
        let page = held.clone();
        drop(held);
        match page {
            Some(_) => self.counters.read_hits.mine().fetch_add(1, Ordering::Relaxed),
            None => self.counters.read_misses.fetch_add(1, Ordering::Relaxed),
        };
        page
    }

    /// Drops page `id` from the cache. Its id stays in the eviction queue
    /// until its turn comes or the queue is pruned (removing it now would
    /// cost a search).
    pub(crate) fn forget(&self, id: u64) {
        if let Some(page) = self.take(id) {
            self.recycle(page);
        }
    }

    /// Drops page `id` from the cache and returns it.
    fn take(&self, id: u64) -> Option<Page> {
        self.take_from(id, self.slot(id)?)
    }

    /// Empties `slot`, page `id`'s. `cached` and the shard's `held` move
    /// under the slot's lock, here and in `insert`, so a slot's decrement
    /// always follows its increment and the counts never dip below zero
    /// while a reader caches a page the writer is dropping.
    fn take_from(&self, id: u64, slot: &Slot) -> Option<Page> {
        let mut held = slot.lock();
        let page = held.take()?;
        let pages = self.pages_of(&page);
        self.cached.fetch_sub(pages, Ordering::Relaxed);
        self.shard(id).held.fetch_sub(pages, Ordering::Relaxed);
        Some(page)
    }

    /// Takes a page out of use: its memory becomes a spare that the next
    /// page read or written reuses (see [`spare_page`](Self::spare_page)),
    /// if no one else holds it and there is room; else it is freed, and
    /// every [`RELEASE_EVERY`] bytes freed to the heap (pages not in
    /// frames) the heap's free memory is returned to the system.
    ///
    /// Why spares: pages move between threads. Readers load pages the
    /// apply thread's flush replaces, a reader evicts pages the flush
    /// wrote, and glibc's malloc never moves free memory between the
    /// arenas of threads: with an allocation per page and a free on
    /// another thread, the freed pages stayed resident in one arena beside
    /// the fresh ones of the other (`crate::heap`), and a scan beside a
    /// flush blocked on the other thread's arena lock in `free` more than
    /// anywhere else (10M keys). Pages of the default size now live in
    /// frames of a process-wide pool (`page::frame`), which any thread
    /// reuses; a spare still saves the pool's lock and a page of another
    /// size still comes from the heap.
    pub(crate) fn recycle(&self, mut page: Page) {
        if page.len() == self.page_size && page.get_mut().is_some() {
            let mut spare = self.spare.lock();
            if spare.len() < MAX_SPARE {
                spare.push(page);
                return;
            }
        }
        // A frame goes back to its chunk (`page::frame`), not to the heap:
        // only pages allocated alone count towards a trim of the heap.
        let len = if page.is_frame() { 0 } else { page.len() };
        drop(page);
        if len > 0 && self.forgotten.fetch_add(len, Ordering::Relaxed) + len >= RELEASE_EVERY {
            self.forgotten.store(0, Ordering::Relaxed);
            crate::heap::release_free_memory();
        }
    }

    /// A spare page's memory (see [`recycle`](Self::recycle)), which no one
    /// else holds: its bytes are stale, for the caller to overwrite whole.
    pub(crate) fn spare_page(&self) -> Option<Page> {
        self.spare.lock().pop()
    }

    /// The pages `page` counts for against the capacity: one, or a node's
    /// run (`page::store`, "Nodes longer than a page").
    fn pages_of(&self, page: &Page) -> usize {
        (page.len() / self.page_size).max(1)
    }

    /// Caches `page` as `id`, a read's (`written` false) or a write's, last
    /// in its shard's eviction order.
    pub(crate) fn insert(&self, id: u64, page: Page, written: bool) {
        self.insert_at(id, page, written, false);
    }

    /// Caches `page` as `id`, a read's, first in its shard's eviction order:
    /// for a page a scan reads once on its way through (a leaf a cursor
    /// steps into, `PageStore::read_page_stepped`). A full shard evicts it
    /// for the next page that enters, so a scan of more pages than the
    /// cache holds turns over one page per shard instead of the whole cache:
    /// the pages cached before it stay, and a second scan finds them.
    /// Where the shard has room, it stays as any page does.
    ///
    /// Why: with every page queued last, a full scan of a 10M-key tree
    /// (313K leaves beside a 1 GiB cache of 262K pages) read every leaf from
    /// the file on every scan, and evicted what point reads had cached.
    pub(crate) fn insert_cold(&self, id: u64, page: Page) {
        self.insert_at(id, page, false, true);
    }

    fn insert_at(&self, id: u64, page: Page, written: bool, cold: bool) {
        let Some(slot) = self.slot(id) else { return };
        let shard = self.shard(id);
        let pages = self.pages_of(&page);
        let replaced = {
            let mut held = slot.lock();
            let replaced = held.replace(page);
            // A page replacing another under its id may span more or fewer
            // pages (an id freed and reused for a node of another length).
            let before = replaced.as_ref().map_or(0, |old| self.pages_of(old));
            if pages != before {
                self.cached.fetch_add(pages, Ordering::Relaxed);
                self.cached.fetch_sub(before, Ordering::Relaxed);
                shard.held.fetch_add(pages, Ordering::Relaxed);
                shard.held.fetch_sub(before, Ordering::Relaxed);
            }
            replaced
        };
        if written {
            let counter = if replaced.is_some() {
                &self.counters.write_hits
            } else {
                &self.counters.write_misses
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if replaced.is_some() {
            return;
        }
        // Evicted pages are recycled after the queue's lock is released: a
        // free may wait for another thread's heap arena.
        let mut evicted = Vec::new();
        {
            let mut queue = shard.queue.lock();
            let mut evict = |queue: &mut VecDeque<u64>| {
                while shard.held.load(Ordering::Relaxed) > shard.capacity {
                    let Some(victim) = queue.pop_front() else {
                        break;
                    };
                    if let Some(page) = self.slot(victim).and_then(|slot| self.take_from(victim, slot)) {
                        self.counters.evictions.fetch_add(1, Ordering::Relaxed);
                        evicted.push(page);
                    }
                }
            };
            if cold {
                // Queued after the evictions, so that the page that made
                // room for it is an older one (a scan's previous page, as a
                // rule), not itself; itself only if no other page could
                // (a cache of no pages, a queue of forgotten ids).
                evict(&mut queue);
                queue.push_front(id);
                evict(&mut queue);
            } else {
                queue.push_back(id);
                evict(&mut queue);
            }
            let floor =
                (2 * shard.held.load(Ordering::Relaxed).max(PRUNE_FLOOR)).max(shard.prune_at.load(Ordering::Relaxed));
            if queue.len() > floor {
                #[cfg(test)]
                self.counters
                    .prune_walked
                    .fetch_add(queue.len() as u64, Ordering::Relaxed);
                queue.retain(|&id| self.slot(id).is_some_and(|slot| slot.lock().is_some()));
                shard.prune_at.store(2 * queue.len(), Ordering::Relaxed);
            }
        }
        for page in evicted {
            self.recycle(page);
        }
    }

    /// Where the spare pages' bytes lie (tests).
    #[cfg(test)]
    pub(crate) fn spares(&self) -> Vec<*const u8> {
        self.spare.lock().iter().map(Page::as_ptr).collect()
    }

    /// Ids the eviction queues hold (tests).
    #[cfg(test)]
    fn queued(&self) -> usize {
        self.shards.iter().map(|s| s.queue.lock().len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_oldest_beyond_capacity_and_replaces_in_place() {
        let cache = PageCache::new(16 * 4096, 4096);
        for id in 0..20u64 {
            cache.insert(id, Page::from(vec![id as u8; 8]), false);
        }
        assert!(cache.get(3).is_none(), "oldest pages evicted");
        assert_eq!(cache.get(19).unwrap()[0], 19);
        cache.insert(19, Page::from(vec![99u8; 8]), false);
        assert_eq!(cache.get(19).unwrap()[0], 99);
        let far = (MAX_CHUNKS as u64) << CHUNK_BITS;
        cache.insert(far, Page::from(vec![1u8; 8]), false);
        assert!(cache.get(far).is_none(), "ids past the table are not cached");
    }

    #[test]
    fn a_forgotten_page_is_gone_and_its_queue_place_harmless() {
        let cache = PageCache::new(4 * 4096, 4096);
        for id in 0..4u64 {
            cache.insert(id, Page::from(vec![id as u8; 8]), false);
        }
        cache.forget(1);
        assert!(cache.get(1).is_none(), "a forgotten page was served");
        cache.insert(1, Page::from(vec![42u8; 8]), false);
        assert_eq!(cache.get(1).unwrap()[0], 42);
        // Id 1 is queued twice now: its first turn evicts it early, which
        // costs a reload, never a wrong page.
        for id in 4..8u64 {
            cache.insert(id, Page::from(vec![id as u8; 8]), false);
        }
        for id in 4..8u64 {
            assert_eq!(cache.get(id).unwrap()[0], id as u8);
        }
        assert_eq!(
            cache.stats().used_bytes,
            4 * 4096,
            "the cache holds more than its capacity"
        );
    }

    #[test]
    fn pages_cached_again_under_their_ids_do_not_make_every_insert_prune() {
        // Each page forgotten and cached again under its id, as a flush
        // reuses the ids it frees: each id gains a place in the queue that
        // a prune must keep (its slot holds a page), and nothing is evicted.
        let cache = PageCache::new(1024 * 4096, 4096);
        let mut inserts = 0u64;
        for round in 0..20u8 {
            for id in 0..1024u64 {
                cache.forget(id);
                cache.insert(id, Page::from(vec![round; 8]), true);
                inserts += 1;
            }
        }
        assert_eq!(cache.get(1023).unwrap()[0], 19);
        // Pruned only once the queue doubled since the last prune: a few
        // ids walked per insert. Pruned whenever the queue held twice the
        // pages, every insert walked the whole queue again (52M ids here).
        let walked = cache.counters.prune_walked.load(Ordering::Relaxed);
        assert!(
            walked <= 4 * inserts,
            "prunes walked {walked} ids for {inserts} inserts"
        );
    }

    #[test]
    fn forgotten_ids_leave_the_queue_and_the_counters_follow() {
        let cache = PageCache::new(1 << 30, 4096);
        // A flush's churn: every page forgotten and a new one cached, round
        // after round, far below the capacity (no eviction ever prunes).
        for round in 0..10u64 {
            for id in 0..2000u64 {
                cache.forget(round * 2000 + id);
                cache.insert((round + 1) * 2000 + id, Page::from(vec![0u8; 8]), true);
            }
        }
        let queued = cache.queued();
        assert!(queued <= 2 * 2048 + 1, "the queue kept {queued} ids for 2000 pages");
        let stats = cache.stats();
        assert_eq!(stats.used_bytes, 2000 * 4096);
        assert_eq!((stats.write_misses, stats.write_hits, stats.evictions), (20_000, 0, 0));
        assert!(cache.get(20_000).is_some() && cache.get(0).is_none());
        let stats = cache.stats();
        assert_eq!((stats.read_hits, stats.read_misses), (1, 1));
    }

    /// A cache large enough to be sharded holds exactly its capacity
    /// (shares that do not divide evenly included) and, for ids inserted in
    /// order, the newest of them, as one queue would.
    #[test]
    fn shards_split_the_capacity_exactly_and_evict_the_oldest() {
        for pages in [4096usize, 4100] {
            let cache = PageCache::new(pages * 4096, 4096);
            assert_eq!(cache.shards.len(), MAX_SHARDS);
            assert_eq!(cache.shards.iter().map(|s| s.capacity).sum::<usize>(), pages);
            let n = 10_000u64;
            for id in 0..n {
                cache.insert(id, Page::from(vec![id as u8; 8]), false);
            }
            assert_eq!(cache.stats().used_bytes, pages * 4096);
            assert_eq!(cache.stats().evictions, n - pages as u64);
            // Shares of 256 or 257 pages: each keeps its own newest ids.
            let kept = (0..n).filter(|&id| cache.get(id).is_some()).count();
            assert_eq!(kept, pages);
            assert!(
                (n - 4096..n).all(|id| cache.get(id).is_some()),
                "a recent page was evicted"
            );
            assert!(
                (0..n - 4112).all(|id| cache.get(id).is_none()),
                "an old page outlived newer ones"
            );
        }
    }

    /// A scan's pages through a full cache: each evicts the scan's page
    /// before it, never what was cached first; with room, they stay.
    #[test]
    fn cold_pages_turn_over_among_themselves_in_a_full_cache() {
        let cache = PageCache::new(16 * 4096, 4096);
        for id in 0..16u64 {
            cache.insert(id, Page::from(vec![id as u8; 8]), false);
        }
        for id in 100..200u64 {
            cache.insert_cold(id, Page::from(vec![id as u8; 8]));
        }
        let kept: Vec<u64> = (0..16).filter(|&id| cache.get(id).is_some()).collect();
        assert_eq!(kept, (1..16).collect::<Vec<_>>(), "only the oldest page made room");
        assert!(cache.get(199).is_some() && cache.get(198).is_none());
        assert_eq!(cache.stats().used_bytes, 16 * 4096);
        // A page cached as any is comes after them: the cold one goes first.
        cache.insert(300, Page::from(vec![1u8; 8]), false);
        assert!(cache.get(199).is_none() && cache.get(1).is_some() && cache.get(300).is_some());

        let roomy = PageCache::new(16 * 4096, 4096);
        for id in 0..16u64 {
            roomy.insert_cold(id, Page::from(vec![id as u8; 8]));
        }
        assert!(
            (0..16).all(|id| roomy.get(id).is_some()),
            "a cache with room keeps them"
        );
    }

    #[test]
    fn a_zero_byte_cache_holds_nothing() {
        let cache = PageCache::new(0, 4096);
        cache.insert(1, Page::from(vec![1u8; 8]), false);
        cache.insert_cold(2, Page::from(vec![2u8; 8]));
        assert!(cache.get(1).is_none() && cache.get(2).is_none());
        assert_eq!(cache.queued(), 0);
        assert_eq!(cache.stats().used_bytes, 0);
    }
}
