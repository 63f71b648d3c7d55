//! A counter and the rows it counts, written together in every commit, and
//! readers that check each snapshot shows whole commits: for the tests of
//! readers beside committers (`tests/readers_see_whole_*.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sluicedb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata, Table, TableDefinition,
};

/// Rows `0..count`; each row's value is the counter of the commit that
/// wrote it.
pub const ROWS: TableDefinition<u64, u64> = TableDefinition::new("rows");
/// The counter, under `"count"`.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// What a snapshot shows: the counter, the row count, the first and the
/// last row, and the last row's value.
pub type Seen = (u64, u64, Option<u64>, Option<u64>, Option<u64>);

/// Writes rows `from..to`, each with value `to`, and sets the counter to
/// `to`, after checking that the transaction starts at counter `from`.
pub fn write_rows(rows: &mut Table<'_, u64, u64>, meta: &mut Table<'_, &str, u64>, from: u64, to: u64) {
    let count = meta.get("count").unwrap().map(|g| g.value()).unwrap_or(0);
    assert_eq!(count, from, "the counter a write transaction starts with");
    assert_eq!(rows.len().unwrap(), from, "the rows a write transaction starts with");
    for k in from..to {
        rows.insert(k, to).unwrap();
    }
    meta.insert("count", to).unwrap();
}

pub fn observe(read: &ReadTransaction) -> Seen {
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

/// A snapshot's counter equals its row count, its rows are `0..count`, and
/// its last row belongs to the commit that set the counter.
pub fn check_whole(seen: Seen, what: &str) {
    let (count, len, first, last, value) = seen;
    assert_eq!(count, len, "{what}: counter {count} but {len} rows");
    if count > 0 {
        assert_eq!(
            (first, last),
            (Some(0), Some(count - 1)),
            "{what}: rows of counter {count}"
        );
        assert_eq!(
            value,
            Some(count),
            "{what}: the last row belongs to the commit that set the counter"
        );
    } else {
        assert_eq!((first, last), (None, None), "{what}: rows of an empty table");
    }
}

/// A thread that checkpoints every `every` until `done`.
pub fn spawn_checkpointer(db: Arc<Database>, done: Arc<AtomicBool>, every: Duration) -> JoinHandle<()> {
    std::thread::spawn(move || {
        while !done.load(Ordering::SeqCst) {
            std::thread::sleep(every);
            db.checkpoint().unwrap();
        }
    })
}

/// `readers` threads reading until `done`: every snapshot whole
/// ([`check_whole`]), the same when looked at twice, never behind the
/// counter `acked` held when it began (commits acknowledged by then) nor
/// behind the reader's previous snapshot; some snapshots are held while
/// commits go by and must not change. Each thread returns its reads.
pub fn spawn_readers(
    db: &Arc<Database>,
    acked: &Arc<AtomicU64>,
    done: &Arc<AtomicBool>,
    readers: u64,
) -> Vec<JoinHandle<u64>> {
    (0..readers)
        .map(|r| {
            let (db, acked, done) = (db.clone(), acked.clone(), done.clone());
            std::thread::spawn(move || {
                let mut last_seen = 0u64;
                let mut held: Vec<(ReadTransaction, Seen)> = Vec::new();
                let mut reads = 0u64;
                let deadline = Instant::now() + Duration::from_secs(120);
                while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let before = acked.load(Ordering::SeqCst);
                    let read = db.begin_read().unwrap();
                    let seen = observe(&read);
                    reads += 1;
                    let what = format!("reader {r} read {reads}");
                    check_whole(seen, &what);
                    assert!(
                        seen.0 >= before,
                        "{what}: counter {} below {before} acknowledged before it began",
                        seen.0
                    );
                    assert!(
                        seen.0 >= last_seen,
                        "{what}: counter went back from {last_seen} to {}",
                        seen.0
                    );
                    last_seen = seen.0;
                    assert_eq!(observe(&read), seen, "{what}: the snapshot changed between two looks");
                    if reads % 6 == r {
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
        .collect()
}
