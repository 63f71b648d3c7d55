//! Ordinary and multimap tables are different kinds: every method that names
//! a table of the other kind fails with `TableIsMultimap` /
//! `TableIsNotMultimap` and changes nothing, the two listings separate them,
//! and a wrong-kind open in a fresh process does not fix a wrong key order
//! for the table (a later right-kind open still reads it correctly).

mod common;

use common::keys::Reversed;
use sluicedb::{
    Database, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, TableDefinition, TableError,
    TableHandle,
};

const MULTI: MultimapTableDefinition<Reversed, u16> = MultimapTableDefinition::new("multi");
const MULTI_AS_TABLE: TableDefinition<Reversed, u16> = TableDefinition::new("multi");
const PLAIN: TableDefinition<u64, u64> = TableDefinition::new("plain");
const PLAIN_AS_MULTI: MultimapTableDefinition<u64, u64> = MultimapTableDefinition::new("plain");

fn is_multimap(e: TableError) -> bool {
    matches!(e, TableError::TableIsMultimap(name) if name == "multi")
}

fn is_not_multimap(e: TableError) -> bool {
    matches!(e, TableError::TableIsNotMultimap(name) if name == "plain")
}

fn setup(db: &Database) {
    let txn = db.begin_write().unwrap();
    {
        let mut multi = txn.open_multimap_table(MULTI).unwrap();
        for (k, v) in [("a", 1), ("a", 2), ("b", 3), ("c", 4)] {
            multi.insert(k, v).unwrap();
        }
        txn.open_table(PLAIN).unwrap().insert(1, 10).unwrap();
    }
    txn.commit().unwrap();
}

fn multi_contents(db: &Database) -> Vec<(String, Vec<u16>)> {
    let read = db.begin_read().unwrap();
    let table = read.open_multimap_table(MULTI).unwrap();
    table
        .iter()
        .unwrap()
        .map(|e| {
            let (k, vs) = e.unwrap();
            (k.value().to_string(), vs.map(|v| v.unwrap().value()).collect())
        })
        .collect()
}

fn expected() -> Vec<(String, Vec<u16>)> {
    vec![("c".into(), vec![4]), ("b".into(), vec![3]), ("a".into(), vec![1, 2])]
}

#[test]
fn every_method_refuses_a_table_of_the_other_kind() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    setup(&db);

    let txn = db.begin_write().unwrap();
    assert!(is_multimap(txn.open_table(MULTI_AS_TABLE).err().unwrap()));
    assert!(is_not_multimap(txn.open_multimap_table(PLAIN_AS_MULTI).err().unwrap()));
    assert!(is_multimap(txn.delete_table("multi").unwrap_err()));
    assert!(is_not_multimap(txn.delete_multimap_table("plain").unwrap_err()));
    assert!(is_multimap(txn.rename_table("multi", "other").unwrap_err()));
    assert!(is_not_multimap(
        txn.rename_multimap_table("plain", "other").unwrap_err()
    ));
    // The target name is of the other kind.
    assert!(is_not_multimap(
        txn.rename_multimap_table("multi", "plain").unwrap_err()
    ));
    assert!(is_multimap(txn.rename_table("plain", "multi").unwrap_err()));
    let tables: Vec<String> = txn.list_tables().unwrap().map(|t| t.name().to_string()).collect();
    let multimaps: Vec<String> = txn
        .list_multimap_tables()
        .unwrap()
        .map(|t| sluicedb::MultimapTableHandle::name(&t).to_string())
        .collect();
    assert_eq!(
        (tables, multimaps),
        (vec!["plain".to_string()], vec!["multi".to_string()])
    );
    txn.commit().unwrap();

    let read = db.begin_read().unwrap();
    assert!(is_multimap(read.open_table(MULTI_AS_TABLE).err().unwrap()));
    assert!(is_not_multimap(read.open_multimap_table(PLAIN_AS_MULTI).err().unwrap()));
    // The untyped opens refuse the other kind too, as redb's.
    assert!(is_multimap(read.open_untyped_table("multi").err().unwrap()));
    assert!(is_not_multimap(
        read.open_untyped_multimap_table("plain").err().unwrap()
    ));
    assert_eq!(read.list_tables().unwrap().count(), 1);
    assert_eq!(read.list_multimap_tables().unwrap().count(), 1);
    assert_eq!(read.open_table(PLAIN).unwrap().get(1).unwrap().unwrap().value(), 10);
    drop(read);
    assert_eq!(multi_contents(&db), expected());

    // The right-kind methods work on the same tables.
    let txn = db.begin_write().unwrap();
    txn.rename_multimap_table(MULTI, "renamed").unwrap();
    txn.rename_multimap_table("renamed", MULTI).unwrap();
    {
        // An open multimap table may be passed to delete: it is closed first.
        let table = txn.open_multimap_table(PLAIN_AS_MULTI);
        assert!(table.is_err());
        let scratch = txn
            .open_multimap_table(MultimapTableDefinition::<u64, u64>::new("scratch"))
            .unwrap();
        assert!(txn.delete_multimap_table(scratch).unwrap());
    }
    assert!(!txn.delete_multimap_table("scratch").unwrap());
    txn.commit().unwrap();
    assert_eq!(multi_contents(&db), expected());
}

/// In a fresh process (a reopened database knows no key orders), the first
/// open of a custom-order table fixes its order for the process. A
/// wrong-kind open must be refused *before* that, or the multimap table
/// would be read with the key type's order instead of the pair order. The
/// same goes for an ordinary table opened with the wrong key type.
#[test]
fn a_wrong_kind_open_does_not_fix_the_order_of_a_reopened_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = Database::create(&path).unwrap();
        setup(&db);
    }
    let db = Database::open(&path).unwrap();
    let read = db.begin_read().unwrap();
    assert!(is_multimap(read.open_table(MULTI_AS_TABLE).err().unwrap()));
    drop(read);
    assert_eq!(multi_contents(&db), expected());
}
