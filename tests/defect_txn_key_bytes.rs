//! Within one write transaction, a write to a key equal under the table's
//! order to one the transaction already wrote takes the new key bytes, as it
//! does across transactions (tests/custom_order_snapshot_key_bytes.rs) and in
//! redb. Found by the `crash_recovery` fuzz target (case-insensitive table:
//! "a" then "A" in one transaction, then a clean close): on the unmodified
//! engine the transaction's own reads, the committed state and the recovered
//! state all showed "apple", the first write's bytes.

mod common;

use common::keys::CaseInsensitive;
use sluicedb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

const T: TableDefinition<CaseInsensitive, u32> = TableDefinition::new("ci");

fn keys(table: &impl ReadableTable<CaseInsensitive, u32>) -> Vec<(String, u32)> {
    table
        .iter()
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.value().to_string(), v.value())
        })
        .collect()
}

#[test]
fn the_last_write_in_a_transaction_gives_the_key_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let want = vec![("APPLE".to_string(), 2)];
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(T).unwrap();
            t.insert("apple", 1).unwrap();
            assert_eq!(t.insert("APPLE", 2).unwrap().map(|v| v.value()), Some(1));
            assert_eq!(keys(&t), want, "the transaction's own view");
        }
        txn.commit().unwrap();
        let read = db.begin_read().unwrap();
        assert_eq!(keys(&read.open_table(T).unwrap()), want, "after commit");
    }
    let db = Database::open(&path).unwrap();
    let read = db.begin_read().unwrap();
    assert_eq!(
        keys(&read.open_table(T).unwrap()),
        want,
        "after a clean close and reopen"
    );
}
