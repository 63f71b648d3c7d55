//! Checks in-place sequence publication (`Inner::publish_seq`), the
//! writer's view memo and the boxed write transaction, under threads: one
//! thread commits small `Durability::None` transactions in a loop, each
//! adding one row and setting a counter to the number of rows, both in the
//! same transaction; small memtables make flushes run meanwhile, and a
//! thread checkpoints now and then. Readers on other threads check every
//! snapshot (`common::counted_rows::spawn_readers`): whole commits, never
//! going back, unchanged while held, and every commit that returned before
//! the read began. Now and then an aborted transaction writes a row that
//! would break the count if it leaked.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::counted_rows::{META, ROWS, check_whole, observe, spawn_checkpointer, spawn_readers, write_rows};
use sluicedb::{Database, Durability, ReadableDatabase};

const COMMITS: u64 = 3000;

#[test]
fn readers_see_the_counter_and_rows_of_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        Database::builder()
            .set_memtable_size(16 << 10)
            .create(dir.path().join("db"))
            .unwrap(),
    );
    let committed = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));

    let writer = {
        let (db, committed, done) = (db.clone(), committed.clone(), done.clone());
        std::thread::spawn(move || {
            for n in 0..COMMITS {
                let mut w = db.begin_write().unwrap();
                w.set_durability(Durability::None).unwrap();
                {
                    let (mut meta, mut rows) = (w.open_table(META).unwrap(), w.open_table(ROWS).unwrap());
                    write_rows(&mut rows, &mut meta, n, n + 1);
                }
                w.commit().unwrap();
                committed.store(n + 1, Ordering::SeqCst);
                if n % 50 == 25 {
                    let w = db.begin_write().unwrap();
                    w.open_table(ROWS).unwrap().insert(u64::MAX, 0).unwrap();
                    w.abort().unwrap();
                }
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let checkpointer = spawn_checkpointer(db.clone(), done.clone(), Duration::from_millis(15));
    let readers = spawn_readers(&db, &committed, &done, 3);

    writer.join().unwrap();
    checkpointer.join().unwrap();
    let reads: Vec<u64> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    assert!(reads.iter().all(|&n| n > 10), "every reader read: {reads:?}");
    let seen = observe(&db.begin_read().unwrap());
    check_whole(seen, "at the end");
    assert_eq!(seen.0, COMMITS);
}
