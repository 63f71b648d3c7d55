//! Ephemeral savepoint restores against a model: restored twice in one
//! transaction with writes between, pops right after a restore, a table
//! renamed away, re-created with other types or turned multimap since,
//! restore then abort, the same savepoint restored again later, compaction
//! afterwards; `len` and ranges checked before and after commit and after a
//! checkpoint. (Persistent savepoints across a reopen of a multimap table:
//! `savepoint_multimap_order.rs`.)

use std::collections::BTreeMap;

use sluicedb::{
    Database, MultimapTableDefinition, MultimapTableHandle, ReadableDatabase, ReadableMultimapTable, ReadableTable,
    TableDefinition, TableHandle,
};

const A: TableDefinition<u64, u64> = TableDefinition::new("a");
const A_STR: TableDefinition<&str, &str> = TableDefinition::new("a");
const A_MM: MultimapTableDefinition<u64, u64> = MultimapTableDefinition::new("a");
const B: TableDefinition<u64, u64> = TableDefinition::new("b");
const M: MultimapTableDefinition<u64, u64> = MultimapTableDefinition::new("m");

fn dump(t: &impl ReadableTable<u64, u64>) -> BTreeMap<u64, u64> {
    let m: BTreeMap<u64, u64> = t
        .iter()
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.value(), v.value())
        })
        .collect();
    assert_eq!(t.len().unwrap(), m.len() as u64, "len disagrees with iteration");
    let back: Vec<u64> = t.iter().unwrap().rev().map(|e| e.unwrap().0.value()).collect();
    let mut fwd: Vec<u64> = m.keys().copied().collect();
    fwd.reverse();
    assert_eq!(back, fwd);
    m
}

fn mdump(t: &impl ReadableMultimapTable<u64, u64>) -> BTreeMap<u64, Vec<u64>> {
    let mut n = 0;
    let m: BTreeMap<u64, Vec<u64>> = t
        .iter()
        .unwrap()
        .map(|e| {
            let (k, vs) = e.unwrap();
            let vs: Vec<u64> = vs.map(|v| v.unwrap().value()).collect();
            n += vs.len() as u64;
            (k.value(), vs)
        })
        .collect();
    assert_eq!(t.len().unwrap(), n, "multimap len disagrees with iteration");
    m
}

fn initial(db: &Database) -> (BTreeMap<u64, u64>, BTreeMap<u64, Vec<u64>>) {
    let txn = db.begin_write().unwrap();
    let mut a = BTreeMap::new();
    let mut m = BTreeMap::new();
    {
        let mut t = txn.open_table(A).unwrap();
        for k in 0..500 {
            t.insert(k, k * 3).unwrap();
            a.insert(k, k * 3);
        }
        let mut mm = txn.open_multimap_table(M).unwrap();
        for k in 0..50 {
            for v in 0..(k % 7) {
                mm.insert(k, v * 100).unwrap();
                m.entry(k).or_insert_with(Vec::new).push(v * 100);
            }
        }
    }
    txn.commit().unwrap();
    (a, m)
}

fn mess_up(db: &Database) {
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(A).unwrap();
        for k in (0..500).step_by(3) {
            t.remove(k).unwrap();
        }
        for k in 500..700 {
            t.insert(k, 1).unwrap();
        }
        t.pop_first().unwrap();
        t.pop_last().unwrap();
        let mut mm = txn.open_multimap_table(M).unwrap();
        for k in 0..50 {
            mm.insert(k, 7).unwrap();
            mm.remove(k, 100).unwrap();
        }
        mm.remove_all(3).unwrap();
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    let txn = db.begin_write().unwrap();
    txn.rename_table(A, B).unwrap();
    {
        let mut t = txn.open_table(A_STR).unwrap();
        t.insert("x", "y").unwrap();
    }
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    txn.delete_table(A_STR).unwrap();
    {
        let mut t = txn.open_multimap_table(A_MM).unwrap();
        t.insert(1, 2).unwrap();
    }
    txn.delete_multimap_table(M).unwrap();
    txn.commit().unwrap();
}

fn check_restored(db: &Database, a: &BTreeMap<u64, u64>, m: &BTreeMap<u64, Vec<u64>>) {
    let read = db.begin_read().unwrap();
    assert_eq!(dump(&read.open_table(A).unwrap()), *a);
    assert_eq!(mdump(&read.open_multimap_table(M).unwrap()), *m);
    assert!(read.open_table(B).is_err(), "b was created after the savepoint");
    let names: Vec<String> = read.list_tables().unwrap().map(|h| h.name().to_string()).collect();
    assert_eq!(names, ["a"]);
    let mnames: Vec<String> = read
        .list_multimap_tables()
        .unwrap()
        .map(|h| h.name().to_string())
        .collect();
    assert_eq!(mnames, ["m"]);
}

#[test]
fn ephemeral_restore_after_renames_retyping_and_multimap() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let (a, m) = initial(&db);
    db.checkpoint().unwrap();
    let txn = db.begin_write().unwrap();
    let sp = txn.ephemeral_savepoint().unwrap();
    txn.commit().unwrap();
    mess_up(&db);

    // Restore, look inside the transaction, abort.
    let mut txn = db.begin_write().unwrap();
    txn.restore_savepoint(&sp).unwrap();
    {
        let t = txn.open_table(A).unwrap();
        assert_eq!(dump(&t), a);
        let mm = txn.open_multimap_table(M).unwrap();
        assert_eq!(mdump(&mm), m);
    }
    txn.abort().unwrap();
    // Not restored.
    let read = db.begin_read().unwrap();
    assert!(read.open_table(B).is_ok());
    drop(read);

    // Restore twice in one transaction, with writes between.
    let mut txn = db.begin_write().unwrap();
    txn.restore_savepoint(&sp).unwrap();
    {
        let mut t = txn.open_table(A).unwrap();
        t.insert(1_000_000, 5).unwrap();
        t.remove(4).unwrap();
        let mut b = txn.open_table(B).unwrap();
        b.insert(3, 3).unwrap();
    }
    txn.restore_savepoint(&sp).unwrap();
    {
        let mut t = txn.open_table(A).unwrap();
        assert_eq!(dump(&t), a);
        // pops after the restore
        let first = t.pop_first().unwrap().map(|(k, v)| (k.value(), v.value()));
        assert_eq!(first, a.iter().next().map(|(k, v)| (*k, *v)));
        t.insert(first.unwrap().0, first.unwrap().1).unwrap();
        assert_eq!(dump(&t), a);
    }
    txn.commit().unwrap();
    check_restored(&db, &a, &m);
    db.checkpoint().unwrap();
    check_restored(&db, &a, &m);

    // Again after more mess, with the savepoint still valid.
    mess_up(&db);
    let mut txn = db.begin_write().unwrap();
    txn.restore_savepoint(&sp).unwrap();
    txn.commit().unwrap();
    check_restored(&db, &a, &m);
    drop(sp);
    let mut db = db;
    assert!(db.check_integrity().unwrap());
    db.compact().unwrap();
    check_restored(&db, &a, &m);
}
