//! Checks in-place sequence publication (`Inner::publish_seq`), the
//! writer's view memo and the boxed write transaction, under threads: one
//! thread commits small `Durability::None` transactions in a loop, each
//! adding one row and setting a counter to the number of rows, both in the
//! same transaction; small memtables make flushes run meanwhile, and a
//! thread checkpoints now and then. Readers on other threads check that
//! every snapshot shows counter == rows.len() == the last row + 1, that a
//! snapshot does not change while held (re-read after commits went by),
//! that a read begun after a commit returned sees it, and that each
//! reader's successive snapshots never go backwards. The writer checks
//! the same invariant in each write transaction before it writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sluicedb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

const ROWS: TableDefinition<u64, &[u8]> = TableDefinition::new("rows");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const COMMITS: u64 = 3000;

/// (counter, rows.len(), first row, last row) of a snapshot.
/// What a reader sees: the counter, the row count, the first and last rows.
type Seen = (u64, u64, Option<u64>, Option<u64>);

fn observe(read: &sluicedb::ReadTransaction) -> Seen {
    let meta = match read.open_table(META) {
        Ok(t) => t,
        Err(sluicedb::TableError::TableDoesNotExist(_)) => return (0, 0, None, None),
        Err(e) => panic!("{e}"),
    };
    let rows = read.open_table(ROWS).unwrap();
    let count = meta.get("count").unwrap().map(|g| g.value()).unwrap_or(0);
    let len = rows.len().unwrap();
    let first = rows.first().unwrap().map(|(k, _)| k.value());
    let last = rows.last().unwrap().map(|(k, _)| k.value());
    (count, len, first, last)
}

fn check_invariant(seen: (u64, u64, Option<u64>, Option<u64>), what: &str) {
    let (count, len, first, last) = seen;
    assert_eq!(count, len, "{what}: counter {count} but {len} rows");
    if count > 0 {
        assert_eq!(
            (first, last),
            (Some(0), Some(count - 1)),
            "{what}: rows of counter {count}"
        );
    } else {
        assert_eq!((first, last), (None, None), "{what}: rows of an empty table");
    }
}

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
                    let mut meta = w.open_table(META).unwrap();
                    let mut rows = w.open_table(ROWS).unwrap();
                    let count = meta.get("count").unwrap().map(|g| g.value()).unwrap_or(0);
                    assert_eq!(count, n, "writer: the counter its transaction starts with");
                    assert_eq!(rows.len().unwrap(), n, "writer: rows its transaction starts with");
                    if n > 0 {
                        assert_eq!(
                            rows.last().unwrap().map(|(k, _)| k.value()),
                            Some(n - 1),
                            "writer: last row"
                        );
                    }
                    let value = vec![(n % 251) as u8; 40 + (n % 90) as usize];
                    rows.insert(n, value.as_slice()).unwrap();
                    meta.insert("count", n + 1).unwrap();
                }
                // Now and then an aborted transaction that would break the
                // invariant if it leaked.
                w.commit().unwrap();
                committed.store(n + 1, Ordering::SeqCst);
                if n % 50 == 25 {
                    let w = db.begin_write().unwrap();
                    w.open_table(ROWS)
                        .unwrap()
                        .insert(u64::MAX, b"aborted".as_slice())
                        .unwrap();
                    w.abort().unwrap();
                }
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    let checkpointer = {
        let (db, done) = (db.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(15));
                db.checkpoint().unwrap();
            }
        })
    };

    let readers: Vec<_> = (0..3)
        .map(|r| {
            let (db, committed, done) = (db.clone(), committed.clone(), done.clone());
            std::thread::spawn(move || {
                let mut last_seen = 0u64;
                let mut held: Vec<(sluicedb::ReadTransaction, Seen)> = Vec::new();
                let mut reads = 0u64;
                let deadline = Instant::now() + Duration::from_secs(120);
                while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let acked = committed.load(Ordering::SeqCst);
                    let read = db.begin_read().unwrap();
                    let seen = observe(&read);
                    reads += 1;
                    let what = format!("reader {r} read {reads}");
                    check_invariant(seen, &what);
                    assert!(
                        seen.0 >= acked,
                        "{what}: counter {} below the {acked} commits acknowledged before it began",
                        seen.0
                    );
                    assert!(
                        seen.0 >= last_seen,
                        "{what}: counter went back from {last_seen} to {}",
                        seen.0
                    );
                    last_seen = seen.0;
                    // Same snapshot again: unchanged.
                    assert_eq!(observe(&read), seen, "{what}: the snapshot changed between two looks");
                    if reads % 7 == r as u64 {
                        held.push((read, seen));
                    }
                    if held.len() > 4 {
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

    writer.join().unwrap();
    checkpointer.join().unwrap();
    let reads: Vec<u64> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    assert!(reads.iter().all(|&n| n > 10), "every reader read: {reads:?}");
    let read = db.begin_read().unwrap();
    let seen = observe(&read);
    check_invariant(seen, "at the end");
    assert_eq!(seen.0, COMMITS);
}
