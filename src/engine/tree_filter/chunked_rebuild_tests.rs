//! The chunked rebuild's `valid_from` (crate-internal: it drives
//! `scan_trees` between tree commits; found as a gap by review).
//!
//! A chunked rebuild (`scan_trees`) reads each chunk from a fresh snapshot,
//! so it never sees a key of the first snapshot `S` that a later tree commit
//! removed before the key's chunk was read. The filter then covers only the
//! commits from the newest chunk snapshot on: claiming `valid_from = S`
//! (the snapshot the build was installed with) would let a lookup at `S`
//! trust a "no" for a key `S` holds. This drives `scan_trees` with a
//! removal committed between `S` and the chunks, and checks the filter's
//! answer at `S` for every key `S` holds.

use super::*;
use crate::engine::Engine;
use crate::engine::EngineOptions;
use crate::io::{MemLogDir, MemoryBackend};

/// Keys loaded: three chunks' worth, so the scan takes several snapshots.
const KEYS: u64 = 3 * SCAN_CHUNK as u64;

fn key(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

#[test]
fn a_chunked_rebuild_covers_no_commit_before_its_newest_chunk_snapshot() {
    let engine = Engine::open(MemoryBackend::new(), MemLogDir::new(), EngineOptions::default()).unwrap();
    let mut txn = engine.begin_write().unwrap();
    let table = txn.open_table(b"t", b"meta", bytewise).unwrap();
    for i in 0..KEYS {
        txn.insert(table, &key(i), b"v").unwrap();
    }
    txn.commit().unwrap();
    engine.checkpoint().unwrap();

    // `S`: the snapshot a rebuild would be installed with.
    let inner = &engine.inner;
    let first = inner.trees.snapshot();
    let first_txn = first.txn();
    let trees: Vec<(Vec<u8>, u64, TreeInfo)> = first
        .list_trees()
        .unwrap()
        .into_iter()
        .filter_map(|(name, info)| Some((data_tree_id(&name)?, name, info)))
        .map(|(table, name, info)| (name, table, info))
        .collect();
    assert_eq!(trees.len(), 1, "one data tree");
    let table_id = trees[0].1;
    assert!(inner.comparator(table_id).is_some(), "the chunked path is taken");

    // A tree commit after `S` and before any chunk is read removes every
    // third key (spread over all chunks).
    let mut txn = engine.begin_write().unwrap();
    let table = txn.open_table(b"t", b"meta", bytewise).unwrap();
    for i in (0..KEYS).step_by(3) {
        assert!(txn.remove(table, &key(i)).unwrap().is_some());
    }
    txn.commit().unwrap();
    engine.checkpoint().unwrap();
    assert!(inner.trees.snapshot().txn() > first_txn, "the removal is a later tree commit");

    let filter = TreeFilter::new(MIN_CAPACITY);
    let valid_from = scan_trees(inner, &filter, first, trees).expect("the scan ran to its end");
    filter.valid_from.store(valid_from, Ordering::Release);

    // Invariant: a filter that covers commit `S` holds every key of `S`.
    let hidden: Vec<u64> = (0..KEYS)
        .filter(|&i| !filter.may_contain(first_txn, key_hash(table_id, &key(i))))
        .collect();
    assert!(
        hidden.is_empty(),
        "the filter (valid_from {valid_from}) denies {} keys that tree commit {first_txn} holds, \
         e.g. {:?}",
        hidden.len(),
        &hidden[..hidden.len().min(5)]
    );
    // And it is built: the newest commit's keys are all in it.
    let newest = inner.trees.snapshot().txn();
    assert!((0..KEYS).filter(|i| i % 3 != 0).all(|i| filter.may_contain(newest, key_hash(table_id, &key(i)))));
}
