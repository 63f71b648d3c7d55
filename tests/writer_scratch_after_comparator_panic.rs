//! The writer's scratch: a write transaction whose user comparator panicked
//! while it was being built (a write searching its ordered map) leaves its
//! write set to the next transaction, dropped during the unwind or after
//! the caller caught the panic. The next transactions must start clean,
//! commit (inline and through the inserter) and recover normally.

mod common;

use std::ops::Bound;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;

use common::bomb::{ARMED, BOMB, k, touchy, with_resolver};
use common::engine::{Disk, small_options};
use sluicedb::engine::Engine;

fn keys(db: &Engine) -> Vec<(u32, Vec<u8>)> {
    let read = db.begin_read().unwrap();
    let Some(t) = read.open_table(b"t", touchy).unwrap() else {
        return Vec::new();
    };
    read.range(&t, Bound::Unbounded, Bound::Unbounded)
        .unwrap()
        .map(|e| {
            let (key, value) = e.unwrap();
            (u32::from_be_bytes(key[..].try_into().unwrap()), value.to_vec())
        })
        .collect()
}

#[test]
fn a_transaction_whose_comparator_panicked_leaves_nothing_to_the_next() {
    let disk = Disk::new();
    let options = || with_resolver(small_options());
    let db = disk.open(options());
    let mut w = db.begin_write().unwrap();
    let t = w.open_table(b"t", b"touchy", touchy).unwrap();
    for i in 0..10 {
        w.insert(t, &k(i), b"base").unwrap();
    }
    w.commit().unwrap();
    BOMB.store(500, Ordering::SeqCst);

    for round in 0..6u32 {
        let mut w = db.begin_write().unwrap();
        assert!(
            w.touched_tables().is_empty(),
            "round {round}: a fresh transaction touched {:?}",
            w.touched_tables()
        );
        let t = w.open_table(b"t", b"touchy", touchy).unwrap();
        let o = w.open_table(b"o", b"touchy", touchy).unwrap();
        for i in 100..140 {
            w.insert(t, &k(i), b"doomed").unwrap();
            w.insert(o, &k(i), b"doomed").unwrap();
        }
        ARMED.store(true, Ordering::SeqCst);
        if round % 2 == 0 {
            // Dropped while the panic unwinds.
            let outcome = catch_unwind(AssertUnwindSafe(move || {
                let mut w = w;
                w.insert(t, &k(500), b"bomb").unwrap();
                w.pop_first(o).unwrap();
            }));
            assert!(outcome.is_err(), "round {round}: the bomb did not go off");
        } else {
            // Caught; the transaction is dropped afterwards.
            let outcome = catch_unwind(AssertUnwindSafe(|| w.insert(t, &k(500), b"bomb")));
            assert!(outcome.is_err(), "round {round}: the bomb did not go off");
            drop(w);
        }
        ARMED.store(false, Ordering::SeqCst);

        // The next transaction: clean, and its commit is its own.
        let mut w = db.begin_write().unwrap();
        assert!(
            w.touched_tables().is_empty(),
            "round {round}: after a panicked transaction, a fresh one touched {:?}",
            w.touched_tables()
        );
        let t = w.open_table(b"t", b"touchy", touchy).unwrap();
        // Inline (a few writes) or through the inserter (70).
        let n = if round < 3 { 2 } else { 70 };
        for i in 0..n {
            w.insert(t, &k(1000 + round * 100 + i), b"after").unwrap();
        }
        w.commit().unwrap();
        let got = keys(&db);
        assert!(
            got.iter().all(|(_, v)| v != b"doomed" && v != b"bomb"),
            "round {round}: a panicked transaction's writes were committed: {:?}",
            got.iter()
                .filter(|(_, v)| v != b"base" && v != b"after")
                .collect::<Vec<_>>()
        );
        let read = db.begin_read().unwrap();
        assert!(
            read.open_table(b"o", touchy).unwrap().is_none(),
            "round {round}: a panicked transaction's table was committed"
        );
    }
    let expected = keys(&db);
    assert_eq!(expected.len(), 10 + 3 * 2 + 3 * 70);
    drop(db);
    let db = disk.open(options());
    assert_eq!(keys(&db), expected, "reopened");
}
