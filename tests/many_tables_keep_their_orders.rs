//! The id hasher (`engine::id_hash`: SplitMix64 for maps keyed by table id:
//! the key orders, the memo of trees, the memtable's counts): many tables
//! whose ids differ only in their low bits (created in one commit) or only
//! above bit 20 (one per commit), custom-ordered and byte-ordered, each
//! found with its own order, entries and count before and after a
//! checkpoint and across a reopen that replays them from the WAL.

mod common;

use std::ops::Bound;

use common::engine::{Disk, small_options};
use common::numeric;
use sluicedb::btree::{Comparator, bytewise};
use sluicedb::engine::Engine;

const TABLES: u16 = 600;

fn name(batch: &str, i: u16) -> Vec<u8> {
    format!("{batch}{i:05}").into_bytes()
}

fn table(i: u16) -> (&'static [u8], Comparator, Vec<u8>) {
    if i.is_multiple_of(2) {
        (b"numeric", numeric, i.to_le_bytes().to_vec())
    } else {
        (b"bytes", bytewise, i.to_be_bytes().to_vec())
    }
}

/// Table `i` holds `i % 5 + 1` entries, keys `i..`, each its own number.
fn check(db: &Engine, what: &str) {
    let read = db.begin_read().unwrap();
    assert_eq!(
        read.list_tables().unwrap().len(),
        2 * TABLES as usize,
        "{what}: tables listed"
    );
    for batch in ["one", "many"] {
        for i in 0..TABLES {
            let (_, cmp, _) = table(i);
            let t = read
                .open_table(&name(batch, i), cmp)
                .unwrap()
                .unwrap_or_else(|| panic!("{what}: table {batch}{i} missing"));
            let n = u64::from(i % 5 + 1);
            assert_eq!(read.len(&t).unwrap(), n, "{what}: table {batch}{i}'s len()");
            let values: Vec<Vec<u8>> = read
                .range(&t, Bound::Unbounded, Bound::Unbounded)
                .unwrap()
                .map(|e| e.unwrap().1.to_vec())
                .collect();
            let expected: Vec<Vec<u8>> = (0..n).map(|j| format!("{batch}{i}/{j}").into_bytes()).collect();
            assert_eq!(values, expected, "{what}: table {batch}{i}'s entries");
        }
    }
}

fn fill(batch: &str, i: u16, w: &mut sluicedb::engine::WriteTxn) {
    let (meta, cmp, _) = table(i);
    let t = w.open_table(&name(batch, i), meta, cmp).unwrap();
    for j in 0..i % 5 + 1 {
        let (_, _, key) = table(i + j * 2);
        w.insert(t, &key, format!("{batch}{i}/{j}").as_bytes()).unwrap();
    }
}

#[test]
fn many_tables_keep_their_orders_entries_and_counts() {
    let disk = Disk::new();
    let db = disk.open(small_options());
    // Ids `seq << 20 | n`: one commit, n = 0..TABLES.
    let mut w = db.begin_write().unwrap();
    for i in 0..TABLES {
        fill("many", i, &mut w);
    }
    w.commit().unwrap();
    // One per commit: ids differ only above bit 20.
    for i in 0..TABLES {
        let mut w = db.begin_write().unwrap();
        fill("one", i, &mut w);
        w.commit().unwrap();
    }
    check(&db, "live");
    db.checkpoint().unwrap();
    check(&db, "checkpointed");
    drop(db);
    let db = disk.open(small_options());
    check(&db, "reopened");
}
