//! `check_integrity` on a healthy database whose custom-order table this
//! process has not opened yet reports no corruption (correctness issue,
//! defect 12). On the unmodified engine a new process got
//! `Corrupted("cannot check table \"t\": its key order is unknown to this
//! process")`, an error an application may answer by restoring a backup.

mod common;

use common::keys::{child_arg, run_in_child_process};
use sluicedb::{Database, ReadableDatabase, TableDefinition};

const T: TableDefinition<(&str, u32), u32> = TableDefinition::new("t");

#[test]
fn a_table_of_unknown_order_is_not_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(T).unwrap();
            for i in 0..500u32 {
                t.insert(("x".repeat(i as usize % 9 + 1).as_str(), i), i).unwrap();
            }
        }
        txn.commit().unwrap();
        db.checkpoint().unwrap();
    }
    run_in_child_process("check_in_a_fresh_process", &path.display().to_string());
}

/// The child: checks before and after opening the table.
#[test]
fn check_in_a_fresh_process() {
    let Some(path) = child_arg() else { return };
    let mut db = Database::open(&path).unwrap();
    assert!(db.check_integrity().unwrap());
    {
        let read = db.begin_read().unwrap();
        let t = read.open_table(T).unwrap();
        assert_eq!(t.get(("xxx", 2)).unwrap().map(|v| v.value()), Some(2));
    }
    assert!(db.check_integrity().unwrap());
}
