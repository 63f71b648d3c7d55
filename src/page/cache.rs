//! A sharded cache of verified pages.
//!
//! Pages are immutable while any snapshot can reach them (copy-on-write), so
//! the cache never holds dirty data: every page is written through to the
//! backend before it is cached, and an entry is only ever replaced when its
//! page id is reused, which the allocator allows only once no reader can reach
//! the old contents. Eviction is therefore free: drop the entry.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use parking_lot::Mutex;

use super::store::Page;

const SHARDS: usize = 64;

/// Page ids are small dense integers, not attacker-chosen strings: a
/// multiplicative hash spreads them over the table for a fraction of
/// SipHash's cost (the lookup is on every page access).
#[derive(Default)]
struct PageIdHasher(u64);

impl Hasher for PageIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        // Fibonacci hashing; shard selection already used the low bits.
        self.0 = (id / SHARDS as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Thread safety: each shard has its own mutex, held only for a hash lookup,
/// insert or eviction (never across I/O).
pub(crate) struct PageCache {
    shards: Box<[Mutex<Shard>]>,
    pages_per_shard: usize,
}

#[derive(Default)]
struct Shard {
    pages: HashMap<u64, Page, BuildHasherDefault<PageIdHasher>>,
    /// Insertion order, for FIFO eviction: exactly the ids in `pages`.
    order: VecDeque<u64>,
}

impl PageCache {
    pub(crate) fn new(capacity_bytes: usize, page_size: usize) -> Self {
        let pages = (capacity_bytes / page_size).max(SHARDS);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            pages_per_shard: pages / SHARDS,
        }
    }

    fn shard(&self, id: u64) -> &Mutex<Shard> {
        // Consecutive pages land in different shards.
        &self.shards[(id as usize) % SHARDS]
    }

    pub(crate) fn get(&self, id: u64) -> Option<Page> {
        self.shard(id).lock().pages.get(&id).cloned()
    }

    pub(crate) fn insert(&self, id: u64, page: Page) {
        let mut shard = self.shard(id).lock();
        if shard.pages.insert(id, page).is_none() {
            shard.order.push_back(id);
        }
        while shard.pages.len() > self.pages_per_shard {
            match shard.order.pop_front() {
                Some(victim) => {
                    shard.pages.remove(&victim);
                }
                None => break,
            }
        }
    }
}
