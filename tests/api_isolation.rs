//! Isolation: a read transaction never sees later commits, and a second
//! `begin_write` blocks until the first commits or aborts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sluicedb::{Database, ReadableDatabase, TableDefinition};

const T: TableDefinition<&str, u64> = TableDefinition::new("t");

#[test]
fn readers_keep_their_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(T).unwrap().insert("k", 1).unwrap();
    txn.commit().unwrap();

    let before = db.begin_read().unwrap();
    let table_before = before.open_table(T).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        t.insert("k", 2).unwrap();
        t.insert("new", 3).unwrap();
        // Not visible before commit either.
        let during = db.begin_read().unwrap();
        assert_eq!(during.open_table(T).unwrap().get("k").unwrap().unwrap().value(), 1);
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap(); // flushed into the tree: the snapshot still holds
    assert_eq!(table_before.get("k").unwrap().unwrap().value(), 1);
    assert!(table_before.get("new").unwrap().is_none());
    let after = db.begin_read().unwrap();
    assert_eq!(after.open_table(T).unwrap().get("k").unwrap().unwrap().value(), 2);
}

#[test]
fn a_second_writer_waits_for_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Database::create(dir.path().join("db")).unwrap());
    let first = db.begin_write().unwrap();
    let started = Arc::new(AtomicBool::new(false));
    let second = {
        let (db, started) = (db.clone(), started.clone());
        std::thread::spawn(move || {
            let txn = db.begin_write().unwrap();
            started.store(true, Ordering::SeqCst);
            txn.open_table(T).unwrap().insert("second", 2).unwrap();
            txn.commit().unwrap();
        })
    };
    // Give the second writer every chance to (wrongly) get in.
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !started.load(Ordering::SeqCst),
        "a second writer started while the first was building"
    );
    first.open_table(T).unwrap().insert("first", 1).unwrap();
    first.abort().unwrap();
    second.join().unwrap();
    assert!(started.load(Ordering::SeqCst));
    let read = db.begin_read().unwrap();
    let t = read.open_table(T).unwrap();
    assert!(t.get("first").unwrap().is_none(), "the aborted write is gone");
    assert_eq!(t.get("second").unwrap().unwrap().value(), 2);
}
