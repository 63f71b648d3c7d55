//! What the multimap model tests share.

use sluicedb::{
    Database, Durability, Key, MultimapTableDefinition, ReadOnlyMultimapTable, ReadTransaction, ReadableDatabase,
    TableError, WriteTransaction,
};

/// The end of a model run: `check` reads the table as committed (it must be
/// missing exactly when the model is `empty`), then the integrity check.
pub fn check_committed<K: Key + 'static, V: Key + 'static>(
    db: &mut Database,
    def: MultimapTableDefinition<K, V>,
    empty: bool,
    check: impl FnOnce(&ReadOnlyMultimapTable<K, V>),
) {
    let read: ReadTransaction = db.begin_read().unwrap();
    match read.open_multimap_table(def) {
        Ok(table) => check(&table),
        Err(TableError::TableDoesNotExist(_)) => assert!(empty, "the table is missing"),
        Err(e) => panic!("{e}"),
    }
    drop(read);
    assert!(db.check_integrity().unwrap());
}

/// A model run's transaction and its two models: what the open transaction
/// sees (`working`) and what is committed.
pub struct Staged<M: Clone> {
    pub working: M,
    pub committed: M,
    pub txn: Option<WriteTransaction>,
}

impl<M: Clone> Staged<M> {
    pub fn new(empty: M) -> Self {
        Self {
            working: empty.clone(),
            committed: empty,
            txn: None,
        }
    }

    /// The open transaction (begun on `db` if none is), and the model of
    /// what it sees.
    pub fn begin(&mut self, db: &Database) -> (&WriteTransaction, &mut M) {
        let txn = self.txn.get_or_insert_with(|| db.begin_write().unwrap());
        (txn, &mut self.working)
    }

    /// Commits the open transaction, if any, with `durability` if given.
    pub fn commit(&mut self, durability: Option<Durability>) {
        let Some(mut txn) = self.txn.take() else { return };
        if let Some(durability) = durability {
            txn.set_durability(durability).unwrap();
        }
        txn.commit().unwrap();
        self.committed = self.working.clone();
    }

    /// Aborts the open transaction, if any.
    pub fn abort(&mut self) {
        if let Some(txn) = self.txn.take() {
            txn.abort().unwrap();
        }
        self.working = self.committed.clone();
    }

    /// Drops the open transaction, if any (as a reopen or compaction must).
    pub fn drop_txn(&mut self) {
        drop(self.txn.take());
        self.working = self.committed.clone();
    }
}
