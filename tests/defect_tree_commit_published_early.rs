//! Defect (twenty-second session's review): a tree commit
//! (`tree_commit::commit`) recorded its sequence as committed in step 3 and
//! swapped in the state holding its tree only in step 4. Whoever refreshed
//! publication in between, once step 3's empty WAL record was durable
//! (`Engine::sync`, `PendingCommit::wait`, a reader), published sequence N
//! with the old tree: a reader at N read N - 1, and its ranges later moved
//! to the real state at N. The sequence is now recorded, published and its
//! state swapped in under one hold of the publication lock
//! (`Inner::commit_and_publish_with`). Failed within 0.1 s before (8 tree
//! commits).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sluicedb::btree::bytewise;
use sluicedb::engine::{Durability, Engine, EngineOptions};
use sluicedb::io::{MemLogDir, MemoryBackend};

#[test]
fn a_reader_at_a_tree_commits_sequence_sees_its_data() {
    let options = EngineOptions {
        tree_commit_bytes: 512,
        resolver: common::engine::resolver,
        ..EngineOptions::default()
    };
    let db = Arc::new(Engine::open(Arc::new(MemoryBackend::new()), MemLogDir::new(), options).unwrap());
    {
        let mut txn = db.begin_write().unwrap();
        let t = txn.open_table(b"t", b"bytes", bytewise).unwrap();
        txn.insert(t, b"counter", &0u64.to_be_bytes()).unwrap();
        txn.commit().unwrap();
    }
    db.checkpoint().unwrap();
    let base = db.begin_read().unwrap().sequence();
    let stop = Arc::new(AtomicBool::new(false));
    let bad = Arc::new(AtomicU64::new(0));
    let checked = Arc::new(AtomicU64::new(0));
    let watchers: Vec<_> = (0..2)
        .map(|_| {
            let (db, stop, bad, checked) = (db.clone(), stop.clone(), bad.clone(), checked.clone());
            std::thread::spawn(move || {
                let mut first_bad = None;
                while !stop.load(Ordering::Relaxed) {
                    db.sync().unwrap();
                    let r = db.begin_read().unwrap();
                    let seq = r.sequence();
                    let t = r.open_table(b"t", bytewise).unwrap().unwrap();
                    let v = r.get(&t, b"counter").unwrap().unwrap();
                    let counter = u64::from_be_bytes(v.as_bytes().try_into().unwrap());
                    checked.fetch_add(1, Ordering::Relaxed);
                    if counter != seq - base {
                        bad.fetch_add(1, Ordering::Relaxed);
                        first_bad.get_or_insert((seq, counter, r.len(&t).unwrap()));
                    }
                }
                first_bad
            })
        })
        .collect();
    let started = Instant::now();
    let mut i = 0u64;
    while started.elapsed() < Duration::from_secs(3) && bad.load(Ordering::Relaxed) == 0 {
        i += 1;
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(Durability::None);
        let t = txn.open_table(b"t", b"bytes", bytewise).unwrap();
        txn.insert(t, b"counter", &i.to_be_bytes()).unwrap();
        // Big enough to go through the tree.
        txn.insert(t, format!("k{i:08}").as_bytes(), &[b'x'; 600]).unwrap();
        txn.commit().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let firsts: Vec<_> = watchers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(db.stats().tree_commits >= i, "the commits did not go through the tree");
    assert_eq!(
        bad.load(Ordering::Relaxed),
        0,
        "after {i} tree commits and {} checked reads: a reader at sequence N saw commit N's counter missing \
         (first (seq, counter, len) per watcher: {firsts:?}, base {base})",
        checked.load(Ordering::Relaxed)
    );
}
