//! Read-your-writes of `Durability::None` commits while another thread
//! commits with `Durability::Immediate`. `WriteTransaction::commit`'s docs
//! and the README promise a `None` commit is visible once `commit()`
//! returns, as in redb. Publication holds every sequence behind the oldest
//! `Immediate` commit not yet durable, and `commit` returned at once for
//! `None`: while the other thread's commit waited for its fsync, this
//! thread's own commit was invisible to its next `begin_read` (80-90% of
//! them), though its next write transaction saw it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sluicedb::{Database, Durability, ReadableDatabase, TableDefinition};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");

#[test]
fn a_none_commit_is_visible_once_commit_returns() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Database::create(dir.path().join("db")).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let durable = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let txn = db.begin_write().unwrap();
                txn.open_table(T).unwrap().insert(1_000_000 + (i % 100), i).unwrap();
                txn.commit().unwrap();
                i += 1;
            }
            i
        })
    };
    let started = Instant::now();
    let mut misses = 0u64;
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(3) {
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(Durability::None).unwrap();
        txn.open_table(T).unwrap().insert(1, n).unwrap();
        txn.commit().unwrap();
        let read = db.begin_read().unwrap();
        let got = read.open_table(T).unwrap().get(1).unwrap().map(|v| v.value());
        if got != Some(n) {
            misses += 1;
        }
        n += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let durable_commits = durable.join().unwrap();
    assert_eq!(
        misses, 0,
        "{misses} of {n} Durability::None commits were not visible to a read begun right after commit() \
         returned ({durable_commits} Immediate commits ran beside them)"
    );
}
