//! A memtable's key filter: a blocked Bloom filter that lets a point lookup
//! skip a memtable that cannot hold its key, without walking the skip list.
//!
//! Every key goes to one 64-byte block (one cache line), where it sets
//! [`BITS_PER_KEY`] bits; a lookup reads that one line. Blocked filters trade
//! a slightly higher false-positive rate than a classic Bloom filter for one
//! cache miss per probe (after RocksDB's cache-local Bloom filters).
//!
//! Keys are hashed with their table id, as bytes: a filter answer is only
//! valid for tables whose comparator calls keys equal exactly when their
//! bytes are equal ([`is_bytewise`](crate::btree::is_bytewise)); the memtable
//! consults it only for those.
//!
//! # Thread safety
//! The inserting thread (the committer or the inserter; see the memtable's
//! thread safety) sets bits with `fetch_or` (relaxed) before inserting each
//! entry into the skip list. A bit its load finds set already (by this
//! thread, or by another inserting into a tree filter beside it) is left
//! alone: any reader that later synchronizes with this thread sees that
//! bit too (a load that happens after one which read a write reads that
//! write or a later one), and bits are only ever set. A commit whose insert another thread may still
//! be doing is answered by the state's pending run before any memtable is
//! asked; every earlier commit's inserts finished before the reader could
//! learn its sequence (through the commit lock and the inserter's idle
//! signal, then the publication), so the reader sees all of their bits.

use std::sync::atomic::{AtomicU64, Ordering};

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Bits set per key, inside one block.
const BITS_PER_KEY: u32 = 6;

/// Words per block: 8 x 64 bits = one 64-byte cache line.
const BLOCK_WORDS: usize = 8;

pub(crate) struct KeyFilter {
    words: Box<[AtomicU64]>,
    blocks: u64,
}

impl KeyFilter {
    /// A filter of about `bytes` bytes (at least one block).
    pub(crate) fn with_bytes(bytes: usize) -> Self {
        let blocks = (bytes / (BLOCK_WORDS * 8)).max(1);
        Self {
            words: (0..blocks * BLOCK_WORDS).map(|_| AtomicU64::new(0)).collect(),
            blocks: blocks as u64,
        }
    }

    /// The block and the bit positions (0..512) of a key's [`key_hash`].
    fn locate(&self, hash: u64) -> (usize, [u32; BITS_PER_KEY as usize]) {
        // The high half picks the block (multiply-shift: no division); the
        // hash remixed gives six 9-bit positions within it.
        let block = (((hash >> 32) * self.blocks) >> 32) as usize;
        let mut bits = [0u32; BITS_PER_KEY as usize];
        let mut h = hash.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for bit in &mut bits {
            *bit = (h >> 55) as u32;
            h <<= 9;
        }
        (block * BLOCK_WORDS, bits)
    }

    /// Adds the key whose [`key_hash`] is `hash`; `false` if its bits were
    /// all set already (a key added before, or one the filter would have
    /// called present anyway), when the filter is left unchanged. Only a
    /// missing bit costs a locked read-modify-write: a rewritten key costs
    /// plain loads of its one line.
    pub(crate) fn insert(&self, hash: u64) -> bool {
        let (base, bits) = self.locate(hash);
        let mut added = false;
        for bit in bits {
            let word = &self.words[base + (bit / 64) as usize];
            let mask = 1 << (bit % 64);
            if word.load(Ordering::Relaxed) & mask == 0 {
                word.fetch_or(mask, Ordering::Relaxed);
                added = true;
            }
        }
        added
    }

    /// Prefetches the block a key with this [`key_hash`] sets its bits in.
    pub(crate) fn prefetch(&self, hash: u64) {
        let (base, _) = self.locate(hash);
        crate::prefetch::prefetch(&self.words[base]);
    }

    /// `false` only if no key with this [`key_hash`] was inserted.
    pub(crate) fn may_contain(&self, hash: u64) -> bool {
        let (base, bits) = self.locate(hash);
        bits.iter()
            .all(|&bit| self.words[base + (bit / 64) as usize].load(Ordering::Relaxed) & (1 << (bit % 64)) != 0)
    }
}

/// The hash of `key` in `table` that the filter (and the memtable's point
/// index) is probed with: computed once per lookup or insert.
pub(crate) fn key_hash(table: u64, key: &[u8]) -> u64 {
    xxh3_64_with_seed(key, table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserted_keys_are_always_found_and_others_mostly_not() {
        // 10 bits per key.
        let keys = 10_000u64;
        let filter = KeyFilter::with_bytes((keys * 10 / 8) as usize);
        for i in 0..keys {
            filter.insert(key_hash(1, &i.to_be_bytes()));
        }
        assert!((0..keys).all(|i| filter.may_contain(key_hash(1, &i.to_be_bytes()))));
        let false_positives = (keys..keys * 11)
            .filter(|i| filter.may_contain(key_hash(1, &i.to_be_bytes())))
            .count();
        let rate = false_positives as f64 / (keys * 10) as f64;
        assert!(rate < 0.03, "false-positive rate {rate}");
        // The table id is part of the key.
        let other_table = (0..keys).filter(|i| filter.may_contain(key_hash(2, &i.to_be_bytes()))).count();
        assert!((other_table as f64) < keys as f64 * 0.03);
    }

    #[test]
    fn a_key_added_again_changes_nothing_and_says_so() {
        let filter = KeyFilter::with_bytes(4096);
        let bits = |f: &KeyFilter| f.words.iter().map(|w| w.load(Ordering::Relaxed)).collect::<Vec<_>>();
        let hash = key_hash(1, b"key");
        assert!(filter.insert(hash), "a first key sets bits");
        let after_first = bits(&filter);
        assert!(after_first.iter().any(|&w| w != 0));
        assert!(!filter.insert(hash), "the same key again sets none");
        assert_eq!(bits(&filter), after_first);
        assert!(filter.insert(key_hash(1, b"another key")));
    }

    #[test]
    fn a_tiny_filter_still_has_one_block() {
        let filter = KeyFilter::with_bytes(0);
        filter.insert(key_hash(0, b"k"));
        assert!(filter.may_contain(key_hash(0, b"k")));
    }
}
