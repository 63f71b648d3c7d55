//! Checks in-place sequence publication (`Inner::publish_seq`) racing the
//! other state changes: commits of 1 to 100 rows (so some go through the
//! inserter thread's hand-off, whose pending run is set and cleared in the
//! state beside the publications), ended by `commit` with
//! `Durability::None` or `Immediate`, or by `commit_pipelined` waited for
//! later, with small memtables (freezes and flushes) and checkpoints on
//! another thread. Each commit adds its rows and sets a counter to the
//! number of rows; readers on other threads check every snapshot
//! (`common::counted_rows::spawn_readers`): whole commits, never going
//! back, unchanged while held, and every commit acknowledged before the
//! read began.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::counted_rows::{META, ROWS, check_whole, observe, spawn_checkpointer, spawn_readers, write_rows};
use sluicedb::{Database, Durability, ReadableDatabase};

const COMMITS: u64 = 700;
const SIZES: [u64; 9] = [1, 2, 63, 64, 65, 100, 3, 1, 40];

#[test]
fn hand_offs_pipelines_and_publications_keep_snapshots_whole() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        Database::builder()
            .set_memtable_size(16 << 10)
            .create(dir.path().join("db"))
            .unwrap(),
    );
    let acked = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));

    let writer = {
        let (db, acked, done) = (db.clone(), acked.clone(), done.clone());
        std::thread::spawn(move || {
            let mut total = 0u64;
            let mut pending: Vec<(sluicedb::PendingCommit, u64)> = Vec::new();
            for n in 0..COMMITS {
                let rows_now = SIZES[(n % SIZES.len() as u64) as usize];
                let mut w = db.begin_write().unwrap();
                let end = n % 5;
                w.set_durability(if end == 1 || end == 3 {
                    Durability::Immediate
                } else {
                    Durability::None
                })
                .unwrap();
                {
                    let (mut meta, mut rows) = (w.open_table(META).unwrap(), w.open_table(ROWS).unwrap());
                    let after = total + rows_now;
                    write_rows(&mut rows, &mut meta, total, after);
                    total = after;
                }
                if end == 3 {
                    pending.push((w.commit_pipelined().unwrap(), total));
                    if pending.len() > 2 {
                        let (p, at) = pending.remove(0);
                        p.wait().unwrap();
                        acked.fetch_max(at, Ordering::SeqCst);
                    }
                } else {
                    w.commit().unwrap();
                    // `commit` returned: visible to any read begun now,
                    // unless a pipelined commit before it still waits.
                    if pending.is_empty() {
                        acked.fetch_max(total, Ordering::SeqCst);
                    }
                }
            }
            for (p, at) in pending {
                p.wait().unwrap();
                acked.fetch_max(at, Ordering::SeqCst);
            }
            done.store(true, Ordering::SeqCst);
            total
        })
    };

    let checkpointer = spawn_checkpointer(db.clone(), done.clone(), Duration::from_millis(20));
    let readers = spawn_readers(&db, &acked, &done, 3);

    let total = writer.join().unwrap();
    checkpointer.join().unwrap();
    let reads: Vec<u64> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    assert!(reads.iter().all(|&n| n > 5), "every reader read: {reads:?}");
    let seen = observe(&db.begin_read().unwrap());
    check_whole(seen, "at the end");
    assert_eq!(seen.0, total);
}
