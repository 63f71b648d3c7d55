//! A commit big enough for the inserter thread (`engine::pending`), to a
//! table of a user-defined key order, returns only once the memtable holds
//! it: after `commit` returns, the user's comparator is called for it no
//! more (redb's own tests count comparator calls across transactions and
//! rely on it). Byte-ordered commits and `commit_pipelined` do not wait.

use std::cmp::Ordering;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::time::Duration;

use sluicedb::engine::{Durability, Engine, EngineOptions};
use sluicedb::io::{MemLogDir, MemoryBackend};

static CALLS: AtomicU64 = AtomicU64::new(0);

/// Byte order, counting its calls.
fn counting(a: &[u8], b: &[u8]) -> Ordering {
    CALLS.fetch_add(1, AtomicOrdering::SeqCst);
    a.cmp(b)
}

#[test]
fn a_big_commit_leaves_no_comparator_calls_behind() {
    // Default options: no flush or checkpoint (the other background users
    // of the comparator) runs within this test.
    let db = Engine::open(MemoryBackend::new(), MemLogDir::new(), EngineOptions::default()).unwrap();
    for (round, durability) in [Durability::None, Durability::Immediate, Durability::None]
        .into_iter()
        .enumerate()
    {
        let mut w = db.begin_write().unwrap();
        w.set_durability(durability);
        let t = w.open_table(b"t", b"counting", counting).unwrap();
        // Well past the hand-off threshold, so the inserter thread inserts
        // it, with keys interleaving the earlier rounds' (comparisons on
        // every level of the skip list).
        for i in 0..5000u32 {
            w.insert(t, &(i * 3 + round as u32).to_be_bytes(), b"v").unwrap();
        }
        w.commit().unwrap();
        let at_return = CALLS.load(AtomicOrdering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            CALLS.load(AtomicOrdering::SeqCst),
            at_return,
            "round {round} ({durability:?}): the comparator was called after commit returned"
        );
    }
    let txn = db.begin_read().unwrap();
    let t = txn.open_table(b"t", counting).unwrap().unwrap();
    let n = txn
        .range(&t, std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
        .unwrap()
        .count();
    assert_eq!(n, 15_000);
}
