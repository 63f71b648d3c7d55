//! A write transaction's range reads the transaction's own writes shared
//! with it, not copied (`writeset::SharedSource`): it shows them as they
//! were when the range was made, while the transaction writes on (the next
//! write copies the writes once, as extract_if's removals do), from either
//! end, and an empty or inverted range is empty, not a panic.

mod common;

use std::ops::Bound;
use std::sync::Arc;

use common::engine::{range_entries as read, small_options};
use sluicedb::btree::bytewise;
use sluicedb::engine::Engine;
use sluicedb::io::{MemLogDir, MemoryBackend};

fn key(i: u32) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

#[test]
fn a_range_shows_the_writes_as_they_were_while_the_transaction_writes_on() {
    let db = Engine::open(Arc::new(MemoryBackend::new()), MemLogDir::new(), small_options()).unwrap();
    // Some entries below the transaction (in the memtable), some its own.
    let mut txn = db.begin_write().unwrap();
    let t = txn.open_table(b"t", b"bytes", bytewise).unwrap();
    for i in (0..400).step_by(2) {
        txn.insert(t, &key(i), b"committed").unwrap();
    }
    txn.commit().unwrap();

    let mut txn = db.begin_write().unwrap();
    let t = txn.open_table(b"t", b"bytes", bytewise).unwrap();
    for i in 0..200 {
        txn.insert(t, &key(i * 2 + 1), b"own").unwrap();
    }
    txn.remove(t, &key(10)).unwrap();
    let expected = |lo: u32, hi: u32| -> Vec<(Vec<u8>, Vec<u8>)> {
        (lo..hi)
            .filter(|&i| i != 10)
            .map(|i| {
                (
                    key(i),
                    if i % 2 == 0 {
                        b"committed".to_vec()
                    } else {
                        b"own".to_vec()
                    },
                )
            })
            .collect()
    };
    let forward = txn
        .range(t, Bound::Included(&key(5)), Bound::Excluded(&key(300)))
        .unwrap();
    let backward = txn
        .range(t, Bound::Excluded(&key(4)), Bound::Included(&key(299)))
        .unwrap();
    let mut stepped = txn.range(t, Bound::Unbounded, Bound::Unbounded).unwrap();
    let first: Vec<_> = stepped.by_ref().take(3).map(|e| e.unwrap().0.to_vec()).collect();
    assert_eq!(first, vec![key(0), key(1), key(2)]);

    // Writes after the ranges were made, inside and outside their bounds.
    txn.insert(t, &key(7), b"later").unwrap();
    txn.remove(t, &key(8)).unwrap();
    txn.insert(t, &key(10), b"back").unwrap();
    txn.insert(t, &key(1000), b"new").unwrap();

    assert_eq!(read(forward, false), expected(5, 300));
    let mut back = expected(5, 300);
    back.reverse();
    assert_eq!(read(backward, true), back);
    let rest: Vec<_> = stepped.map(|e| e.unwrap().0.to_vec()).collect();
    let mut all: Vec<_> = expected(3, 400).into_iter().map(|(k, _)| k).collect();
    all.retain(|k| k != &key(10));
    assert_eq!(rest, all, "a range stepped before the writes goes on as it began");

    // A range made now sees them.
    let now = read(
        txn.range(t, Bound::Included(&key(6)), Bound::Included(&key(10)))
            .unwrap(),
        false,
    );
    let values: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (key(6), b"committed".to_vec()),
        (key(7), b"later".to_vec()),
        (key(9), b"own".to_vec()),
        (key(10), b"back".to_vec()),
    ];
    assert_eq!(now, values);

    // Empty and inverted bounds.
    let (a, b) = (key(50), key(60));
    assert!(read(txn.range(t, Bound::Excluded(&a), Bound::Excluded(&a)).unwrap(), false).is_empty());
    assert!(read(txn.range(t, Bound::Included(&b), Bound::Excluded(&a)).unwrap(), true).is_empty());
    assert_eq!(
        read(txn.range(t, Bound::Included(&a), Bound::Included(&a)).unwrap(), false).len(),
        1
    );
    txn.commit().unwrap();
}
