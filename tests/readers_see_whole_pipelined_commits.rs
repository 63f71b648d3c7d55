//! Checks in-place sequence publication (`Inner::publish_seq`) racing the
//! other state changes: commits of 1 to 100 rows (so some go through the
//! inserter thread's hand-off, whose pending run is set and cleared in the
//! state beside the publications), ended by `commit` with
//! `Durability::None` or `Immediate`, or by `commit_pipelined` waited for
//! later, with small memtables (freezes and flushes) and checkpoints on
//! another thread. Each commit adds its rows and sets a counter to the
//! number of rows; readers on other threads check every snapshot's
//! counter against its rows, that held snapshots never change, that their
//! successive snapshots never go back, and that a commit acknowledged
//! before a read began is in it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sluicedb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

const ROWS: TableDefinition<u64, u64> = TableDefinition::new("rows");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const COMMITS: u64 = 700;
const SIZES: [u64; 9] = [1, 2, 63, 64, 65, 100, 3, 1, 40];

type Seen = (u64, u64, Option<u64>, Option<u64>, Option<u64>);

/// (counter, rows.len(), first row, last row, value of the last row).
fn observe(read: &sluicedb::ReadTransaction) -> Seen {
    let meta = match read.open_table(META) {
        Ok(t) => t,
        Err(sluicedb::TableError::TableDoesNotExist(_)) => return (0, 0, None, None, None),
        Err(e) => panic!("{e}"),
    };
    let rows = read.open_table(ROWS).unwrap();
    let count = meta.get("count").unwrap().map(|g| g.value()).unwrap_or(0);
    let last = rows.last().unwrap().map(|(k, v)| (k.value(), v.value()));
    (
        count,
        rows.len().unwrap(),
        rows.first().unwrap().map(|(k, _)| k.value()),
        last.map(|l| l.0),
        last.map(|l| l.1),
    )
}

fn check_invariant(seen: Seen, what: &str) {
    let (count, len, first, last, value) = seen;
    assert_eq!(count, len, "{what}: counter {count} but {len} rows");
    if count > 0 {
        assert_eq!(
            (first, last),
            (Some(0), Some(count - 1)),
            "{what}: rows of counter {count}"
        );
        // Each row's value is the counter its commit set.
        assert_eq!(
            value,
            Some(count),
            "{what}: the last row belongs to the commit that set the counter"
        );
    }
}

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
                    let mut meta = w.open_table(META).unwrap();
                    let mut rows = w.open_table(ROWS).unwrap();
                    let count = meta.get("count").unwrap().map(|g| g.value()).unwrap_or(0);
                    assert_eq!(count, total, "writer {n}: the counter its transaction starts with");
                    assert_eq!(
                        rows.len().unwrap(),
                        total,
                        "writer {n}: the rows its transaction starts with"
                    );
                    let after = total + rows_now;
                    for k in total..after {
                        rows.insert(k, after).unwrap();
                    }
                    meta.insert("count", after).unwrap();
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

    let checkpointer = {
        let (db, done) = (db.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
                db.checkpoint().unwrap();
            }
        })
    };

    let readers: Vec<_> = (0..3u64)
        .map(|r| {
            let (db, acked, done) = (db.clone(), acked.clone(), done.clone());
            std::thread::spawn(move || {
                let mut last_seen = 0u64;
                let mut held: Vec<(sluicedb::ReadTransaction, Seen)> = Vec::new();
                let mut reads = 0u64;
                let deadline = Instant::now() + Duration::from_secs(120);
                while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let before = acked.load(Ordering::SeqCst);
                    let read = db.begin_read().unwrap();
                    let seen = observe(&read);
                    reads += 1;
                    let what = format!("reader {r} read {reads}");
                    check_invariant(seen, &what);
                    assert!(
                        seen.0 >= before,
                        "{what}: counter {} below {before} acknowledged",
                        seen.0
                    );
                    assert!(
                        seen.0 >= last_seen,
                        "{what}: counter went back from {last_seen} to {}",
                        seen.0
                    );
                    last_seen = seen.0;
                    if reads % 5 == r {
                        held.push((read, seen));
                    }
                    if held.len() > 5 {
                        let (old, was) = held.remove(0);
                        assert_eq!(observe(&old), was, "reader {r}: a held snapshot changed");
                    }
                }
                for (old, was) in held {
                    assert_eq!(observe(&old), was, "reader {r}: a held snapshot changed (at the end)");
                }
                reads
            })
        })
        .collect();

    let total = writer.join().unwrap();
    checkpointer.join().unwrap();
    let reads: Vec<u64> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    assert!(reads.iter().all(|&n| n > 5), "every reader read: {reads:?}");
    let seen = observe(&db.begin_read().unwrap());
    check_invariant(seen, "at the end");
    assert_eq!(seen.0, total);
}
