//! Read and write transactions over typed tables.

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::Arc;

use crate::engine::{self, Durability, PendingCommit};
use crate::error::{CommitError, StorageError, TableError};
use crate::multimap::{
    MultimapTable, MultimapTableDefinition, MultimapTableHandle, ReadOnlyMultimapTable, UntypedMultimapTableHandle,
};
use crate::savepoint::{self, Savepoint};
use crate::table::{ReadOnlyTable, Table, TableDefinition, TableHandle, UntypedTableHandle};
use crate::types::{Key, TableMeta, TypeName, Value, comparator};

/// One share of a database's count of live transactions.
///
/// Every [`WriteTransaction`] and [`ReadTransaction`] holds one, and so does
/// every [`ReadOnlyTable`], which keeps its transaction's snapshot alive after
/// the transaction handle is dropped (as redb's tables hold their
/// transaction's guard). The share is released when its holder drops, which
/// `commit` and `abort` do. Invariant: a token is only ever made by cloning
/// the database's own or another live token, so the count can grow only while
/// some token other than the database's exists; `Database::compact` relies on
/// that (it holds `&mut Database`, so no transaction can begin meanwhile).
#[derive(Clone)]
pub(crate) struct LiveToken(Arc<()>);

impl LiveToken {
    /// The database's own token: the count's base.
    pub(crate) fn new() -> Self {
        Self(Arc::new(()))
    }

    /// Whether any token other than this one is alive.
    pub(crate) fn others_live(&self) -> bool {
        Arc::strong_count(&self.0) > 1
    }
}

/// The single read-write transaction. Its changes are invisible to others
/// until [`commit`](Self::commit); dropping it aborts it.
///
/// Commit runs the staged pipeline: the transaction is appended to the WAL
/// and applied to the memtable, the next writer may start at once, and then
/// `commit` waits until the WAL record is durable
/// ([`Durability::Immediate`], the default) or returns at once
/// ([`Durability::None`]). [`commit_pipelined`](Self::commit_pipelined)
/// returns without waiting.
pub struct WriteTransaction {
    txn: RefCell<engine::WriteTxn>,
    open: RefCell<HashSet<String>>,
    _live: LiveToken,
}

/// The error for opening an ordinary table whose stored metadata `stored`
/// differs from the requested one: the kind first, then the types.
fn meta_mismatch(name: &str, stored: &[u8]) -> TableError {
    match check_kind(name, stored, false) {
        Err(e) => e,
        Ok(()) => type_mismatch(name, stored),
    }
}

/// [`TableError::TableTypeMismatch`] naming the stored types.
fn type_mismatch(name: &str, stored: &[u8]) -> TableError {
    let meta = TableMeta::decode(stored);
    TableError::TableTypeMismatch {
        table: name.to_string(),
        key: TypeName::new(meta.as_ref().map_or("?", |m| m.key_type.as_str())),
        value: TypeName::new(meta.as_ref().map_or("?", |m| m.value_type.as_str())),
    }
}

/// Whether the stored metadata `stored` names a multimap table (metadata
/// that does not decode counts as an ordinary table's).
fn is_multimap(stored: &[u8]) -> bool {
    TableMeta::decode(stored).is_some_and(|m| m.multimap)
}

/// `Ok` if the table `name`, stored with `stored`, is of the kind asked for
/// (`multimap`); [`TableError::TableIsMultimap`] or
/// [`TableError::TableIsNotMultimap`] otherwise. Every typed entry point
/// that names a table (open, delete, rename, list) checks the kind, so an
/// ordinary table's methods never touch a multimap table's encoded pairs
/// and the reverse.
fn check_kind(name: &str, stored: &[u8], multimap: bool) -> Result<(), TableError> {
    match (is_multimap(stored), multimap) {
        (true, false) => Err(TableError::TableIsMultimap(name.to_string())),
        (false, true) => Err(TableError::TableIsNotMultimap(name.to_string())),
        _ => Ok(()),
    }
}

/// The names of the listed tables of one kind.
fn names_of_kind(tables: Vec<(Vec<u8>, Vec<u8>)>, multimap: bool) -> impl Iterator<Item = String> {
    tables
        .into_iter()
        // Savepoints' hidden tables are nobody's to list.
        .filter(move |(name, meta)| is_multimap(meta) == multimap && !savepoint::is_reserved(name))
        .map(|(name, _)| String::from_utf8_lossy(&name).into_owned())
}

impl WriteTransaction {
    pub(crate) fn new(txn: engine::WriteTxn, live: LiveToken) -> Self {
        Self {
            txn: RefCell::new(txn),
            open: RefCell::new(HashSet::new()),
            _live: live,
        }
    }

    /// Runs `f` on the engine transaction. Borrows are never held across
    /// calls into user code, so this cannot fail to borrow.
    pub(crate) fn with_txn<T>(&self, f: impl FnOnce(&mut engine::WriteTxn) -> T) -> T {
        f(&mut self.txn.borrow_mut())
    }

    pub(crate) fn close_table(&self, name: &str) {
        self.open.borrow_mut().remove(name);
    }

    fn ensure_closed(&self, name: &str) -> Result<(), TableError> {
        if self.open.borrow().contains(name) {
            return Err(TableError::TableAlreadyOpen(name.to_string()));
        }
        Ok(())
    }

    /// Opens a table, creating it if it does not exist. Opening it with
    /// types other than those it was created with is an error.
    pub fn open_table<'txn, K: Key + 'static, V: Value + 'static>(
        &'txn self,
        definition: TableDefinition<'_, K, V>,
    ) -> Result<Table<'txn, K, V>, TableError> {
        let name = definition.name();
        self.ensure_closed(name)?;
        let meta = TableMeta::of::<K, V>();
        let table = self.with_txn(|txn| -> Result<_, TableError> {
            if let Some(stored) = txn.table_meta(name.as_bytes())?
                && TableMeta::decode(&stored).as_ref() != Some(&meta)
            {
                return Err(meta_mismatch(name, &stored));
            }
            Ok(txn.open_table(name.as_bytes(), &meta.encode(), comparator::<K>())?)
        })?;
        self.open.borrow_mut().insert(name.to_string());
        Ok(Table::new(self, table, name.to_string()))
    }

    /// Deletes a table and all its entries; returns whether it existed.
    pub fn delete_table(&self, definition: impl TableHandle) -> Result<bool, TableError> {
        self.delete_kind(definition.name(), false)
    }

    /// Deletes a table of the given kind; see [`delete_table`](Self::delete_table).
    fn delete_kind(&self, name: &str, multimap: bool) -> Result<bool, TableError> {
        self.ensure_closed(name)?;
        self.with_txn(|txn| {
            if let Some(stored) = txn.table_meta(name.as_bytes())? {
                check_kind(name, &stored, multimap)?;
            }
            Ok(txn.delete_table(name.as_bytes())?)
        })
    }

    /// Renames a table.
    ///
    /// The checks run in redb's order, and the first that fails is the error:
    /// `from` is open in this transaction ([`TableError::TableAlreadyOpen`]);
    /// `from` does not exist ([`TableError::TableDoesNotExist`]); renaming a
    /// table to its own name then succeeds and changes nothing; a table named
    /// `new_name` exists, open or not ([`TableError::TableExists`]).
    /// Either table being a multimap table is
    /// [`TableError::TableIsMultimap`], checked where its existence is.
    pub fn rename_table(&self, definition: impl TableHandle, new_name: impl TableHandle) -> Result<(), TableError> {
        self.rename_kind(definition.name(), new_name.name(), false)
    }

    /// Renames a table of the given kind; see [`rename_table`](Self::rename_table).
    fn rename_kind(&self, from: &str, to: &str, multimap: bool) -> Result<(), TableError> {
        self.ensure_closed(from)?;
        self.with_txn(|txn| {
            let Some(stored) = txn.table_meta(from.as_bytes())? else {
                return Err(TableError::TableDoesNotExist(from.to_string()));
            };
            check_kind(from, &stored, multimap)?;
            if from == to {
                return Ok(());
            }
            // An open `to` exists (opening creates), so this covers it too.
            if let Some(stored) = txn.table_meta(to.as_bytes())? {
                check_kind(to, &stored, multimap)?;
                return Err(TableError::TableExists(to.to_string()));
            }
            // The engine's REQUIRES holds: `to` does not exist. `from` does,
            // so the rename cannot report it missing.
            if !txn.rename_table(from.as_bytes(), to.as_bytes())? {
                return Err(TableError::TableDoesNotExist(from.to_string()));
            }
            Ok(())
        })
    }

    /// The ordinary (not multimap) tables as this transaction sees them.
    pub fn list_tables(&self) -> Result<impl Iterator<Item = UntypedTableHandle> + use<>, StorageError> {
        let tables = self.with_txn(|txn| txn.list_tables())?;
        Ok(names_of_kind(tables, false).map(UntypedTableHandle::new))
    }

    /// Opens a multimap table, creating it if it does not exist. Opening it
    /// with other types is [`TableError::TableTypeMismatch`]; opening an
    /// ordinary table is [`TableError::TableIsNotMultimap`].
    pub fn open_multimap_table<'txn, K: Key + 'static, V: Key + 'static>(
        &'txn self,
        definition: MultimapTableDefinition<'_, K, V>,
    ) -> Result<MultimapTable<'txn, K, V>, TableError> {
        let name = definition.name();
        self.ensure_closed(name)?;
        let meta = TableMeta::of_multimap::<K, V>();
        let table = self.with_txn(|txn| -> Result<_, TableError> {
            if let Some(stored) = txn.table_meta(name.as_bytes())? {
                check_kind(name, &stored, true)?;
                if TableMeta::decode(&stored).as_ref() != Some(&meta) {
                    return Err(type_mismatch(name, &stored));
                }
            }
            Ok(txn.open_table(name.as_bytes(), &meta.encode(), crate::multimap::comparator::<K, V>())?)
        })?;
        self.open.borrow_mut().insert(name.to_string());
        Ok(MultimapTable::new(self, table, name.to_string()))
    }

    /// Deletes a multimap table and all its values; returns whether it
    /// existed. An open [`MultimapTable`] may be passed: it is closed first.
    pub fn delete_multimap_table(&self, definition: impl MultimapTableHandle) -> Result<bool, TableError> {
        let name = definition.name().to_string();
        drop(definition);
        self.delete_kind(&name, true)
    }

    /// Renames a multimap table, with [`rename_table`](Self::rename_table)'s
    /// checks; an ordinary table under either name is
    /// [`TableError::TableIsNotMultimap`]. An open [`MultimapTable`] may be
    /// passed: it is closed first.
    pub fn rename_multimap_table(
        &self,
        definition: impl MultimapTableHandle,
        new_name: impl MultimapTableHandle,
    ) -> Result<(), TableError> {
        let from = definition.name().to_string();
        drop(definition);
        self.rename_kind(&from, new_name.name(), true)
    }

    /// The multimap tables as this transaction sees them.
    pub fn list_multimap_tables(
        &self,
    ) -> Result<impl Iterator<Item = UntypedMultimapTableHandle> + use<>, StorageError> {
        let tables = self.with_txn(|txn| txn.list_tables())?;
        Ok(names_of_kind(tables, true).map(UntypedMultimapTableHandle::new))
    }

    /// Chooses how [`commit`](Self::commit) waits (default
    /// [`Durability::Immediate`]).
    pub fn set_durability(&mut self, durability: Durability) {
        self.txn.get_mut().set_durability(durability);
    }

    /// Commits. With [`Durability::Immediate`] this returns once the commit
    /// is durable (and visible); with [`Durability::None`], at once (visible
    /// now, durable within the sync interval).
    pub fn commit(self) -> Result<(), CommitError> {
        Ok(self.txn.into_inner().commit()?)
    }

    /// Commits without waiting for durability: returns as soon as the next
    /// writer may start. The [`PendingCommit`] can be waited on, polled, or
    /// awaited; readers see the commit once it is durable (with
    /// `Durability::Immediate`).
    pub fn commit_pipelined(self) -> Result<PendingCommit, CommitError> {
        Ok(self.txn.into_inner().commit_pipelined()?)
    }

    /// Discards every change.
    pub fn abort(self) -> Result<(), StorageError> {
        self.txn.into_inner().abort();
        Ok(())
    }

    /// A savepoint of the committed state as of this transaction's start,
    /// valid while the returned handle lives (and the database is open). It
    /// pins that state as a read transaction does (memtables and tree
    /// pages), so keep it short-lived.
    ///
    /// [`SavepointError::InvalidSavepoint`](crate::SavepointError::InvalidSavepoint) if this transaction has opened,
    /// deleted or renamed a table, or restored a savepoint.
    pub fn ephemeral_savepoint(&self) -> Result<Savepoint, crate::SavepointError> {
        self.with_txn(|txn| savepoint::ephemeral(txn, self._live.clone()))
    }

    /// Creates a persistent savepoint of the committed state as of this
    /// transaction's start and returns its id. It exists once this
    /// transaction commits, survives restarts and crashes, and lasts until
    /// [`delete_persistent_savepoint`](Self::delete_persistent_savepoint).
    /// sluicedb copies the tables into reserved tables of the same file (see
    /// `design/savepoints.md`): this costs a copy of the data, written with
    /// this commit.
    ///
    /// [`SavepointError::InvalidSavepoint`](crate::SavepointError::InvalidSavepoint) if this transaction has opened,
    /// deleted or renamed a table, or restored a savepoint;
    /// [`SavepointError::ImmediateDurabilityRequired`](crate::SavepointError::ImmediateDurabilityRequired) unless its durability
    /// is [`Durability::Immediate`].
    pub fn persistent_savepoint(&self) -> Result<u64, crate::SavepointError> {
        self.with_txn(savepoint::persistent)
    }

    /// The persistent savepoint `id`, as this transaction sees it
    /// ([`SavepointError::InvalidSavepoint`](crate::SavepointError::InvalidSavepoint) if there is none).
    pub fn get_persistent_savepoint(&self, id: u64) -> Result<Savepoint, crate::SavepointError> {
        self.with_txn(|txn| savepoint::get_persistent(txn, id))
    }

    /// Deletes persistent savepoint `id` (its space is freed once this
    /// commits); returns whether it existed.
    pub fn delete_persistent_savepoint(&self, id: u64) -> Result<bool, crate::SavepointError> {
        self.with_txn(|txn| savepoint::delete_persistent(txn, id))
    }

    /// The ids of the persistent savepoints, in increasing order.
    pub fn list_persistent_savepoints(&self) -> Result<impl Iterator<Item = u64> + use<>, StorageError> {
        Ok(self.with_txn(savepoint::list_persistent)?.into_iter())
    }

    /// Makes every table equal to its state at `savepoint` (tables created
    /// since are deleted, tables deleted since come back), and invalidates
    /// the savepoints created after it (persistent ones are deleted). Writes
    /// only the differences; they commit (or abort) with this transaction.
    pub fn restore_savepoint(&mut self, savepoint: &Savepoint) -> Result<(), crate::SavepointError> {
        self.with_txn(|txn| savepoint::restore(txn, savepoint))
    }
}

/// A read-only snapshot: it sees every commit published when it began and
/// nothing after, and never blocks or is blocked by a writer.
pub struct ReadTransaction {
    txn: engine::ReadTxn,
    live: LiveToken,
}

impl ReadTransaction {
    pub(crate) fn new(txn: engine::ReadTxn, live: LiveToken) -> Self {
        Self { txn, live }
    }

    /// Opens a table for reading.
    pub fn open_table<K: Key + 'static, V: Value + 'static>(
        &self,
        definition: TableDefinition<'_, K, V>,
    ) -> Result<ReadOnlyTable<K, V>, TableError> {
        let name = definition.name();
        // The types are checked before the open, which fixes the table's
        // key order in this process: a wrong type's order must never stick.
        self.check_meta(name, &TableMeta::of::<K, V>())?;
        let Some(table) = self.txn.open_table(name.as_bytes(), comparator::<K>())? else {
            return Err(TableError::TableDoesNotExist(name.to_string()));
        };
        Ok(ReadOnlyTable::new(self.txn.clone(), table, self.live.clone()))
    }

    /// `Ok` if table `name` exists with metadata `meta`; otherwise the
    /// error `open_table` or `open_multimap_table` reports.
    fn check_meta(&self, name: &str, meta: &TableMeta) -> Result<(), TableError> {
        let Some(stored) = self.txn.table_meta(name.as_bytes())? else {
            return Err(TableError::TableDoesNotExist(name.to_string()));
        };
        check_kind(name, &stored, meta.multimap)?;
        if TableMeta::decode(&stored).as_ref() != Some(meta) {
            return Err(type_mismatch(name, &stored));
        }
        Ok(())
    }

    /// The ordinary (not multimap) tables in this snapshot.
    pub fn list_tables(&self) -> Result<impl Iterator<Item = UntypedTableHandle> + use<>, StorageError> {
        Ok(names_of_kind(self.txn.list_tables()?, false).map(UntypedTableHandle::new))
    }

    /// Opens a multimap table for reading. Opening it with other types is
    /// [`TableError::TableTypeMismatch`]; opening an ordinary table is
    /// [`TableError::TableIsNotMultimap`].
    pub fn open_multimap_table<K: Key + 'static, V: Key + 'static>(
        &self,
        definition: MultimapTableDefinition<'_, K, V>,
    ) -> Result<ReadOnlyMultimapTable<K, V>, TableError> {
        let name = definition.name();
        self.check_meta(name, &TableMeta::of_multimap::<K, V>())?;
        let Some(table) = self
            .txn
            .open_table(name.as_bytes(), crate::multimap::comparator::<K, V>())?
        else {
            return Err(TableError::TableDoesNotExist(name.to_string()));
        };
        Ok(ReadOnlyMultimapTable::new(
            self.txn.clone(),
            table,
            name.to_string(),
            self.live.clone(),
        ))
    }

    /// The multimap tables in this snapshot.
    pub fn list_multimap_tables(
        &self,
    ) -> Result<impl Iterator<Item = UntypedMultimapTableHandle> + use<>, StorageError> {
        Ok(names_of_kind(self.txn.list_tables()?, true).map(UntypedMultimapTableHandle::new))
    }

    /// Ends the transaction (dropping it does the same).
    pub fn close(self) -> Result<(), StorageError> {
        Ok(())
    }
}
