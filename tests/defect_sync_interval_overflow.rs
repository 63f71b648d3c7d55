//! Extreme `Builder` settings must give a working database or a
//! clear error, never a panic (BRIEF §4: invalid arguments get a clear
//! error).
//!
//! Checked and fine (a working database, no panic, no hang, 300 commits of
//! both durabilities, a pipelined commit, sync, checkpoint, close, reopen):
//! `set_sync_interval(0)`, `set_cache_size(0 | usize::MAX)`,
//! `set_memtable_size(0 | usize::MAX)`, `set_max_frozen_bytes(0 |
//! usize::MAX)`, `set_tree_commit_size(0 | usize::MAX)`,
//! `set_max_wal_queue_bytes(0 | usize::MAX)`.

use std::sync::{Arc, Mutex};

use sluicedb::{Builder, Durability, ReadableDatabase, TableDefinition};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");

/// `set_sync_interval(Duration::MAX)` (say, "never sync on a timer; my
/// commits wait") is accepted; the WAL sync thread panicked at its first
/// `Durability::None` commit ("overflow when adding duration to instant",
/// the deadline of its wait) and the journal ran degraded (the panic
/// caught, "sluicedb: writing the WAL panicked ..." on stderr, every
/// commit syncing on its own thread).
#[test]
fn a_huge_sync_interval_does_not_panic_the_sync_thread() {
    let panics: Arc<Mutex<Vec<String>>> = Arc::default();
    {
        let panics = panics.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            panics.lock().unwrap().push(format!(
                "thread {:?}: {info}",
                std::thread::current().name().unwrap_or("?")
            ));
            previous(info);
        }));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Builder::new()
        .set_sync_interval(std::time::Duration::MAX)
        .create(&path)
        .unwrap();
    for i in 0..3u64 {
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(Durability::None).unwrap();
        txn.open_table(T).unwrap().insert(i, i).unwrap();
        txn.commit().unwrap();
    }
    db.sync().unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(T).unwrap().insert(9, 9).unwrap();
    txn.commit().unwrap();
    assert_eq!(
        db.begin_read()
            .unwrap()
            .open_table(T)
            .unwrap()
            .get(2)
            .unwrap()
            .unwrap()
            .value(),
        2
    );
    db.close().unwrap();
    let panics = panics.lock().unwrap().clone();
    assert!(panics.is_empty(), "{panics:#?}");
}
