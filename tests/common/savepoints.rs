//! What the savepoint tests compare: the user tables (ordinary and
//! multimap, `u64` to `u64`) a database or transaction holds, and with them
//! what each persistent savepoint would restore.

use std::collections::{BTreeMap, BTreeSet};

use sluicedb::{
    MultimapTableDefinition, MultimapTableHandle, ReadableMultimapTable, ReadableTable, ReadableTableMetadata,
    TableDefinition, TableHandle, WriteTransaction,
};

/// A fresh database whose memtable holds 4 KiB, so a few writes already
/// reach the tree (and savepoints span both).
pub fn small_memtable_db() -> (tempfile::TempDir, sluicedb::Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = sluicedb::Database::builder()
        .set_memtable_size(4096)
        .create(dir.path().join("db"))
        .unwrap();
    (dir, db)
}

pub fn table(name: &str) -> TableDefinition<'_, u64, u64> {
    TableDefinition::new(name)
}

pub fn multi(name: &str) -> MultimapTableDefinition<'_, u64, u64> {
    MultimapTableDefinition::new(name)
}

/// Every user table's contents.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Db {
    pub tables: BTreeMap<String, BTreeMap<u64, u64>>,
    pub multi: BTreeMap<String, BTreeSet<(u64, u64)>>,
}

/// A database's tables and, per persistent savepoint id, what restoring it
/// gives.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Full {
    pub db: Db,
    pub sps: BTreeMap<u64, Db>,
}

/// The tables as `txn` sees them (its own writes included), each checked
/// against its `len()`.
pub fn txn_db(txn: &WriteTransaction) -> Db {
    let mut out = Db::default();
    let names: Vec<String> = txn.list_tables().unwrap().map(|h| h.name().to_string()).collect();
    for name in names {
        let t = txn.open_table(table(&name)).unwrap();
        let c: BTreeMap<u64, u64> = t
            .iter()
            .unwrap()
            .map(|e| e.unwrap())
            .map(|(k, v)| (k.value(), v.value()))
            .collect();
        assert_eq!(t.len().unwrap(), c.len() as u64, "txn len() of {name}");
        out.tables.insert(name, c);
    }
    let names: Vec<String> = txn
        .list_multimap_tables()
        .unwrap()
        .map(|h| h.name().to_string())
        .collect();
    for name in names {
        let t = txn.open_multimap_table(multi(&name)).unwrap();
        let mut set = BTreeSet::new();
        for e in t.iter().unwrap() {
            let (k, vs) = e.unwrap();
            for v in vs {
                set.insert((k.value(), v.unwrap().value()));
            }
        }
        assert_eq!(t.len().unwrap(), set.len() as u64, "txn multimap len() of {name}");
        out.multi.insert(name, set);
    }
    out
}
