//! A memtable grows with the tree (`engine::MEMTABLE_TREE_SHARE`): after a
//! flush, the size at which the active memtable is frozen is an eighth of
//! the tree, never below the configured size nor above the maximum. A size
//! with no room to grow stays as it is. Nothing is lost either way.

mod common;

use std::collections::BTreeMap;

use common::engine::{Disk, commit_u64, read_u64, resolver, small_options};
use sluicedb::btree::bytewise;
use sluicedb::engine::EngineOptions;

const BASE: usize = 16 << 10;
const MAX: usize = 256 << 10;

fn growing() -> EngineOptions {
    EngineOptions {
        memtable_bytes: BASE,
        max_memtable_bytes: MAX,
        resolver,
        ..small_options()
    }
}

/// Loads `batches` durable commits of 100 keys with 200-byte values.
fn load(db: &sluicedb::engine::Engine, model: &mut BTreeMap<u64, Vec<u8>>, batches: u64) {
    for b in 0..batches {
        let ops: Vec<(u64, Option<Vec<u8>>)> = (0..100).map(|i| (b * 100 + i, Some(vec![b as u8; 200]))).collect();
        commit_u64(db, b"m", bytewise, model, &ops);
    }
}

#[test]
fn the_memtable_follows_the_tree_between_its_bounds() {
    let disk = Disk::new();
    let db = disk.open(growing());
    assert_eq!(
        db.stats().memtable_limit,
        BASE as u64,
        "an empty tree: the configured size"
    );
    let mut model = BTreeMap::new();
    // About 0.6 MiB of entries: a tree whose eighth is above 16 KiB.
    load(&db, &mut model, 30);
    db.checkpoint().unwrap();
    let grown = db.stats().memtable_limit;
    assert!(
        grown > BASE as u64 && grown <= MAX as u64,
        "the memtable should have grown with the tree, within its bounds: {grown}"
    );
    // Far more data: the maximum holds.
    load(&db, &mut model, 150);
    db.checkpoint().unwrap();
    assert_eq!(db.stats().memtable_limit, MAX as u64);
    // Grown memtables lose nothing, across a reopen too.
    let (listed, len) = read_u64(&db, bytewise);
    assert_eq!(listed, model.into_iter().collect::<Vec<_>>());
    assert_eq!(len, listed.len() as u64);
    drop(db);
    let db = disk.open(growing());
    assert_eq!(read_u64(&db, bytewise).0, listed);
}

#[test]
fn a_memtable_with_no_room_to_grow_keeps_its_size() {
    let disk = Disk::new();
    let db = disk.open(small_options());
    let mut model = BTreeMap::new();
    load(&db, &mut model, 60);
    db.checkpoint().unwrap();
    assert_eq!(db.stats().memtable_limit, small_options().memtable_bytes as u64);
    assert_eq!(read_u64(&db, bytewise).0, model.into_iter().collect::<Vec<_>>());
}
