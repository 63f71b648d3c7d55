//! Three tables of different kinds, for savepoint tests that cover them
//! together: `u64` keys to byte values, a custom key order (case-insensitive
//! strings) and a multimap of long byte keys (chunked values). Their
//! contents as one value, read and restored.

use std::collections::BTreeMap;

use super::keys::CaseInsensitive;
use sluicedb::{
    Database, MultimapTableDefinition, ReadableMultimapTable, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};

pub const A: TableDefinition<u64, &[u8]> = TableDefinition::new("a");
pub const CI: TableDefinition<CaseInsensitive, u64> = TableDefinition::new("ci");
pub const LM: MultimapTableDefinition<&[u8], u64> = MultimapTableDefinition::new("lm");

/// The three tables' contents; `lm_len` is the multimap's `len()`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mixed {
    pub a: BTreeMap<u64, Vec<u8>>,
    pub ci: BTreeMap<String, u64>,
    pub lm: BTreeMap<Vec<u8>, Vec<u64>>,
    pub lm_len: u64,
}

/// The tables as `txn` sees them, each `len()` checked against its entries.
pub fn read_mixed(txn: &WriteTransaction) -> Mixed {
    let mut s = Mixed::default();
    let a = txn.open_table(A).unwrap();
    for e in a.iter().unwrap() {
        let (k, v) = e.unwrap();
        s.a.insert(k.value(), v.value().to_vec());
    }
    assert_eq!(a.len().unwrap(), s.a.len() as u64);
    drop(a);
    let ci = txn.open_table(CI).unwrap();
    for e in ci.iter().unwrap() {
        let (k, v) = e.unwrap();
        s.ci.insert(k.value().to_string(), v.value());
    }
    assert_eq!(ci.len().unwrap(), s.ci.len() as u64);
    drop(ci);
    let lm = txn.open_multimap_table(LM).unwrap();
    let mut n = 0;
    for e in lm.iter().unwrap() {
        let (k, vs) = e.unwrap();
        let vs: Vec<u64> = vs.map(|v| v.unwrap().value()).collect();
        n += vs.len() as u64;
        s.lm.insert(k.value().to_vec(), vs);
    }
    s.lm_len = lm.len().unwrap();
    assert_eq!(s.lm_len, n, "multimap len() vs its pairs");
    s
}

/// The tables now (a write transaction's view, aborted).
pub fn current(db: &Database) -> Mixed {
    let txn = db.begin_write().unwrap();
    let s = read_mixed(&txn);
    txn.abort().unwrap();
    s
}

/// What restoring persistent savepoint `id` gives (the restore aborted).
pub fn restored(db: &Database, id: u64) -> Mixed {
    let mut txn = db.begin_write().unwrap();
    // Make the orders known (as a process that reopened must).
    drop(txn.open_table(CI).unwrap());
    drop(txn.open_multimap_table(LM).unwrap());
    let sp = txn.get_persistent_savepoint(id).unwrap();
    txn.restore_savepoint(&sp).unwrap();
    let s = read_mixed(&txn);
    txn.abort().unwrap();
    s
}
