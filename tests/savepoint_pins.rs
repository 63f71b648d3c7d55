//! A persistent savepoint pins the pages of the commit it saved, and the pin
//! lives exactly as long as the savepoint: it is made durable before the
//! savepoint's commit, so a transaction that ends without committing
//! (aborted, or a process that dies first) leaves a pin with no savepoint,
//! which must give its pages back (at once on abort, at the next open after
//! a death); and a committed savepoint's pin must hold its pages across
//! reopens, so a restore after them is exact.

mod common;

use common::keys::{child_arg, run_in_child_process};
use sluicedb::{Database, ReadableDatabase, ReadableTableMetadata, TableDefinition};

const DATA: TableDefinition<u64, &[u8]> = TableDefinition::new("data");
const OTHER: TableDefinition<u64, &[u8]> = TableDefinition::new("other");
const ENTRIES: u64 = 2000;

fn fill(db: &Database, table: TableDefinition<u64, &[u8]>, seed: u8) {
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(table).unwrap();
        for k in 0..ENTRIES {
            t.insert(k, [seed; 500].as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
}

fn delete(db: &Database, table: TableDefinition<u64, &[u8]>) {
    let txn = db.begin_write().unwrap();
    txn.delete_table(table).unwrap();
    txn.commit().unwrap();
    db.checkpoint().unwrap();
}

/// The values of `DATA`, all of one byte each: that byte per entry.
fn data_seeds(db: &Database) -> Vec<u8> {
    let read = db.begin_read().unwrap();
    let t = read.open_table(DATA).unwrap();
    t.range::<u64>(..).unwrap().map(|e| e.unwrap().1.value()[0]).collect()
}

/// Deletes `DATA` (flushed and checkpointed) and returns the bytes the
/// database's pages take then (`DatabaseStats::allocated_pages`, which
/// counts the pages pins keep): about nothing when no pin keeps `DATA`'s
/// pages, about the data's size when one does.
fn allocated_after_deleting_data(db: &Database) -> u64 {
    delete(db, DATA);
    let txn = db.begin_write().unwrap();
    let stats = txn.stats().unwrap();
    txn.abort().unwrap();
    stats.allocated_pages() * stats.page_size() as u64
}

/// Opens with the integrity check, which walks every pinned commit too.
fn open_checked(path: &std::path::Path) {
    Database::builder()
        .set_check_integrity_on_open(true)
        .open(path)
        .unwrap();
}

#[test]
fn child() {
    let Some(path) = child_arg() else { return };
    let db = Database::open(&path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.persistent_savepoint().unwrap();
    // Dies before the commit, without running any destructor: the pin is
    // in the data file, the savepoint nowhere.
    std::process::exit(0);
}

#[test]
fn a_savepoint_that_never_committed_keeps_no_pages_after_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = Database::create(&path).unwrap();
        fill(&db, DATA, 1);
    }
    run_in_child_process("child", path.to_str().unwrap());
    let db = Database::open(&path).unwrap();
    let txn = db.begin_write().unwrap();
    assert_eq!(txn.list_persistent_savepoints().unwrap().count(), 0);
    txn.abort().unwrap();
    let allocated = allocated_after_deleting_data(&db);
    assert!(
        allocated < ENTRIES * 500 / 4,
        "{allocated} bytes: the orphan pin kept its pages"
    );
    drop(db);
    open_checked(&path);
}

#[test]
fn an_aborted_or_dropped_savepoint_transaction_gives_its_pages_back() {
    for abort in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let db = Database::create(&path).unwrap();
        fill(&db, DATA, 1);
        let txn = db.begin_write().unwrap();
        txn.persistent_savepoint().unwrap();
        if abort {
            txn.abort().unwrap();
        } else {
            drop(txn);
        }
        let allocated = allocated_after_deleting_data(&db);
        assert!(allocated < ENTRIES * 500 / 4, "abort={abort}: {allocated} bytes");
    }
}

#[test]
fn a_committed_savepoint_keeps_its_pages_across_reopens_and_restores_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let id = {
        let db = Database::create(&path).unwrap();
        fill(&db, DATA, 1);
        let txn = db.begin_write().unwrap();
        let id = txn.persistent_savepoint().unwrap();
        txn.commit().unwrap();
        id
    };
    let db = Database::open(&path).unwrap();
    // The pin came back with the open: DATA's pages are kept, and counted.
    let allocated = allocated_after_deleting_data(&db);
    assert!(
        allocated >= ENTRIES * 500,
        "{allocated} bytes: the pinned pages were let go"
    );
    // Rewritten over and over, flushed and checkpointed, then reopened:
    // the saved commit's pages are untouched.
    for seed in 2..6 {
        fill(&db, OTHER, seed);
    }
    drop(db);
    let db = Database::open(&path).unwrap();
    let mut txn = db.begin_write().unwrap();
    let savepoint = txn.get_persistent_savepoint(id).unwrap();
    txn.restore_savepoint(&savepoint).unwrap();
    txn.commit().unwrap();
    assert_eq!(data_seeds(&db), vec![1; ENTRIES as usize]);
    let read = db.begin_read().unwrap();
    assert!(read.open_table(OTHER).is_err(), "OTHER did not exist at the savepoint");
    assert_eq!(read.open_table(DATA).unwrap().len().unwrap(), ENTRIES);
    drop(read);

    // Deleted: the pages are free again.
    let txn = db.begin_write().unwrap();
    assert!(txn.delete_persistent_savepoint(id).unwrap());
    txn.commit().unwrap();
    let allocated = allocated_after_deleting_data(&db);
    assert!(allocated < ENTRIES * 500 / 4, "{allocated} bytes after the delete");
    drop(db);
    open_checked(&path);
}
