//! A write transaction that names a custom-order table before opening it
//! with its real types (a rename, an open with the wrong types, a failed
//! rename onto its name) still reads and deletes in the table's own order
//! (correctness issue, defect 11). On the unmodified engine the first
//! name-only lookup fixed the transaction's view of the table in byte order:
//! `get` missed stored keys and `remove` of them wrote no tombstone.

mod common;

use sluicedb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableError};

const T: TableDefinition<(&str, u32), u32> = TableDefinition::new("t");
const T_WRONG: TableDefinition<u64, u32> = TableDefinition::new("t");
const OTHER: TableDefinition<u64, u64> = TableDefinition::new("other");

const N: u32 = 300;

fn word(i: u32) -> String {
    // Lengths vary so that the tuple's order is not byte order.
    "w".repeat((i % 7 + 1) as usize) + &format!("{}", (i * 7919) % 1000)
}

fn setup(path: &std::path::Path) {
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for i in 0..N {
            t.insert((word(i).as_str(), i), i).unwrap();
        }
        txn.open_table(OTHER).unwrap().insert(1, 1).unwrap();
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
}

/// In a fresh process (one that never used the key type): `name_first`
/// touches the table by name, then the transaction opens it with its types,
/// reads every key and removes the even ones; a later process must see
/// exactly the odd ones.
fn check(case: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    setup(&path);
    let arg = format!("{case}|{}", path.display());
    common::keys::run_in_child_process("child", &arg);
    common::keys::run_in_child_process("verify", &arg);
}

/// The part of [`check`] that runs in the fresh process.
#[test]
fn child() {
    let Some(arg) = common::keys::child_arg() else { return };
    let (case, path) = arg.split_once('|').unwrap();
    let name_first = |txn: &sluicedb::WriteTransaction| match case {
        "rename" => {
            const T2: TableDefinition<(&str, u32), u32> = TableDefinition::new("t2");
            txn.rename_table(T, T2).unwrap();
            txn.rename_table(T2, T).unwrap();
        }
        "wrong types" => assert!(txn.open_table(T_WRONG).is_err()),
        "failed rename" => assert!(matches!(txn.rename_table(OTHER, T), Err(TableError::TableExists(_)))),
        other => panic!("unknown case {other}"),
    };
    {
        let db = Database::open(path).unwrap();
        let txn = db.begin_write().unwrap();
        name_first(&txn);
        {
            let mut t = txn.open_table(T).unwrap();
            for i in 0..N {
                let key = (word(i), i);
                assert_eq!(
                    t.get((key.0.as_str(), i)).unwrap().map(|v| v.value()),
                    Some(i),
                    "key {i} missed"
                );
                if i % 2 == 0 {
                    assert!(
                        t.remove((key.0.as_str(), i)).unwrap().is_some(),
                        "remove of {i} found nothing"
                    );
                }
            }
        }
        txn.commit().unwrap();
    }
}

/// Checks, in another fresh process, what [`child`] left.
#[test]
fn verify() {
    let Some(arg) = common::keys::child_arg() else { return };
    let (_, path) = arg.split_once('|').unwrap();
    let db = Database::open(path).unwrap();
    let read = db.begin_read().unwrap();
    let t = read.open_table(T).unwrap();
    assert_eq!(t.len().unwrap(), u64::from(N / 2));
    for i in 0..N {
        assert_eq!(t.get((word(i).as_str(), i)).unwrap().is_some(), i % 2 == 1, "key {i}");
    }
}

#[test]
fn after_a_rename_to_itself_and_back() {
    check("rename");
}

#[test]
fn after_an_open_with_the_wrong_types() {
    check("wrong types");
}

#[test]
fn after_a_failed_rename_onto_its_name() {
    check("failed rename");
}
