//! Point lookups and range seeks walk the inner nodes a commit pins for its lifetime (the
//! tree's upper levels, kept with the commit instead of asked of the page
//! cache): in a tree three levels tall, lookups from many transactions,
//! cold and warm, on two threads, before and after later commits rewrite
//! the tree, each read exactly what its snapshot holds; and with a cache of
//! a few pages, where the leaves below the pinned nodes are evicted and
//! read again between lookups.

use sluicedb::{Database, ReadableDatabase, ReadableTableMetadata, TableDefinition};

const TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("t");
const KEYS: u64 = 40_000;

fn value(key: u64, round: u64) -> Vec<u8> {
    format!("{key:>12}/{round:>4}").repeat(5).into_bytes()
}

fn write_round(db: &Database, round: u64, step: usize) {
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(TABLE).unwrap();
        for key in (0..KEYS).step_by(step) {
            table.insert(key, value(key, round).as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
    // Into the tree: the lookups below go through it, not the memtable.
    db.checkpoint().unwrap();
}

/// Every key through `txn`, expecting `round_of(key)`'s value; absent keys
/// (odd ones past `KEYS`) stay absent.
fn check_all(txn: &sluicedb::ReadTransaction, round_of: impl Fn(u64) -> u64) {
    let table = txn.open_table(TABLE).unwrap();
    for key in 0..KEYS + 100 {
        let got = table.get(key).unwrap().map(|v| v.value().to_vec());
        let expected = (key < KEYS).then(|| value(key, round_of(key)));
        assert_eq!(got, expected, "key {key}");
    }
    // Range seeks descend through the same pinned nodes.
    for start in (0..KEYS + 10).step_by(997) {
        let got: Vec<(u64, Vec<u8>)> = table
            .range(start..start + 3)
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.value(), v.value().to_vec())
            })
            .collect();
        let expected: Vec<(u64, Vec<u8>)> = (start..(start + 3).min(KEYS))
            .map(|k| (k, value(k, round_of(k))))
            .collect();
        assert_eq!(got, expected, "range from {start}");
    }
}

#[test]
fn lookups_through_pinned_inner_nodes_read_their_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    write_round(&db, 0, 1);
    let old = db.begin_read().unwrap();
    assert!(
        old.open_table(TABLE).unwrap().stats().unwrap().tree_height() >= 3,
        "the tree must have inner nodes above the level over the leaves"
    );
    // Cold, then warm: the second pass walks the nodes the first pinned.
    check_all(&old, |_| 0);
    check_all(&db.begin_read().unwrap(), |_| 0);

    // A later commit rewrites a third of the leaves (and the nodes above
    // them); the old snapshot keeps its own pinned nodes.
    write_round(&db, 1, 3);
    let new_round = |key: u64| u64::from(key.is_multiple_of(3));
    std::thread::scope(|s| {
        s.spawn(|| check_all(&old, |_| 0));
        s.spawn(|| check_all(&db.begin_read().unwrap(), new_round));
    });
    drop(old);
    check_all(&db.begin_read().unwrap(), new_round);
}

/// With a cache of sixteen pages, the leaves below the pinned nodes are
/// evicted and read again (into other memory, often a recycled page's)
/// between lookups, and their reads prefetch the page before they take
/// its reference count (`PageCache::get_prefetched`). Lookups and ranges
/// both ways, with the tree alone and with a memtable in front, read what
/// was written.
#[test]
fn lookups_through_stale_leaf_hints_read_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder()
        .set_cache_size(16 * 4096)
        .create(dir.path().join("db"))
        .unwrap();
    write_round(&db, 0, 1);
    check_all(&db.begin_read().unwrap(), |_| 0);
    check_all(&db.begin_read().unwrap(), |_| 0);

    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(TABLE).unwrap();
        for key in (0..KEYS).step_by(7) {
            table.insert(key, value(key, 2).as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
    let round = |key: u64| if key.is_multiple_of(7) { 2 } else { 0 };
    for _ in 0..2 {
        let txn = db.begin_read().unwrap();
        check_all(&txn, round);
        let table = txn.open_table(TABLE).unwrap();
        for end in (3..KEYS + 10).step_by(991) {
            let got: Vec<u64> = table
                .range(end - 3..end)
                .unwrap()
                .rev()
                .map(|e| e.unwrap().0.value())
                .collect();
            let expected: Vec<u64> = (end - 3..end.min(KEYS)).rev().collect();
            assert_eq!(got, expected, "reversed range to {end}");
        }
    }
}
