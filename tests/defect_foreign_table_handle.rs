//! Defect 16: a table handle from the engine API used with another
//! transaction read reused pages. `engine::ReadTable` held only a root page
//! and tree info, not the state that pins them; once the table was deleted
//! and its pages reused by another table, `get` through a newer transaction
//! returned the other table's data. A write `TableRef` was a bare slot
//! number, so with a later write transaction it named whatever table sat in
//! that slot there.
//!
//! Required: a handle pins what it reads, and a transaction refuses a handle
//! that is not its own with an error (never data).

mod common;

use common::engine::{Disk, small_options};
use sluicedb::btree::bytewise;
use sluicedb::engine::Engine;

fn k(i: u32) -> [u8; 4] {
    i.to_be_bytes()
}

const KEYS: u32 = 600;

/// Fills table `name` with `KEYS` keys (several leaves under a branch root)
/// whose values start with `tag`.
fn fill(db: &Engine, name: &[u8], tag: &str) {
    let mut w = db.begin_write().unwrap();
    let t = w.open_table(name, b"bytes", bytewise).unwrap();
    for i in 0..KEYS {
        w.insert(t, &k(i), format!("{tag} {i:>60}").as_bytes()).unwrap();
    }
    w.commit().unwrap();
}

#[test]
fn a_read_handle_is_refused_by_another_read_transaction() {
    let db = Disk::new().open(small_options());
    fill(&db, b"t", "first");
    let first = db.begin_read().unwrap();
    let handle = first.open_table(b"t", bytewise).unwrap().unwrap();
    fill(&db, b"t", "second");
    let second = db.begin_read().unwrap();
    assert!(
        second.get(&handle, &k(1)).is_err(),
        "a handle from another read transaction was accepted"
    );
    assert!(
        second
            .range(&handle, std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
            .is_err()
    );
    // Its own transaction (and a clone sharing the snapshot) still reads it.
    let value = first.get(&handle, &k(1)).unwrap().unwrap();
    assert!(value.as_bytes().starts_with(b"first"));
    assert!(first.clone().get(&handle, &k(1)).unwrap().is_some());
}

#[test]
fn a_write_handle_is_refused_by_a_later_write_transaction() {
    let db = Disk::new().open(small_options());
    let mut w = db.begin_write().unwrap();
    let a = w.open_table(b"a", b"bytes", bytewise).unwrap();
    w.insert(a, b"key", b"in a").unwrap();
    w.commit().unwrap();

    let mut w = db.begin_write().unwrap();
    // Slot 0 of this transaction is table "b"; the stale handle named slot
    // 0 of the first one.
    let b = w.open_table(b"b", b"bytes", bytewise).unwrap();
    assert!(
        w.get(a, b"key").is_err(),
        "a handle from another write transaction was accepted"
    );
    assert!(w.insert(a, b"stray", b"written through a stale handle").is_err());
    assert!(w.remove(a, b"key").is_err());
    assert!(
        w.range(a, std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
            .is_err()
    );
    w.insert(b, b"own", b"in b").unwrap();
    w.commit().unwrap();

    let r = db.begin_read().unwrap();
    let b = r.open_table(b"b", bytewise).unwrap().unwrap();
    assert_eq!(
        r.get(&b, b"stray").unwrap(),
        None,
        "a stale handle wrote into another table"
    );
    assert!(r.get(&b, b"own").unwrap().is_some());
}

/// The scenario: delete the table, let another table reuse its
/// pages, checkpoint, then read through the stale handle.
#[test]
fn a_stale_read_handle_never_shows_another_tables_pages() {
    let db = Disk::new().open(small_options());
    fill(&db, b"old", "old");
    db.checkpoint().unwrap();
    let handle = {
        let txn = db.begin_read().unwrap();
        txn.open_table(b"old", bytewise).unwrap().unwrap()
        // The transaction ends here; only the handle lives on.
    };

    let mut w = db.begin_write().unwrap();
    assert!(w.delete_table(b"old").unwrap());
    w.commit().unwrap();
    db.checkpoint().unwrap();
    db.checkpoint().unwrap();
    fill(&db, b"new", "new");
    db.checkpoint().unwrap();
    db.checkpoint().unwrap();

    let newer = db.begin_read().unwrap();
    assert!(newer.open_table(b"old", bytewise).unwrap().is_none());
    for i in [0, KEYS / 2, KEYS - 1] {
        match newer.get(&handle, &k(i)) {
            Err(_) => {}
            Ok(Some(v)) => panic!(
                "key {i} read through a stale handle with a newer transaction: {:?}",
                String::from_utf8_lossy(v.as_bytes()).trim()
            ),
            Ok(None) => panic!("key {i} read through a stale handle with a newer transaction: None"),
        }
    }
    db.check_integrity().unwrap();
}
