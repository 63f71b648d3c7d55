//! Read and write transactions over typed tables.

use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use crate::db_stats::DatabaseStats;
use crate::engine::{self, Durability, PendingCommit};
use crate::error::{CommitError, SetDurabilityError, StorageError, TableError, TransactionError};
use crate::multimap::{
    MultimapTable, MultimapTableDefinition, MultimapTableHandle, ReadOnlyMultimapTable, UntypedMultimapTableHandle,
};
use crate::savepoint::{self, Savepoint};
use crate::table::{ReadOnlyTable, ReadOnlyUntypedTable, Table, TableDefinition, TableHandle, UntypedTableHandle};
use crate::types::{Key, TableMeta, TypeName, TypedMeta, Value, comparator};

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
///
/// A read transaction counts its own tables and guards with a child token
/// ([`child`](Self::child)), which holds one share of its parent: the
/// parent sees the child and everything made from it as one live share, and
/// the invariant above holds for both.
///
/// The tokens also carry the database's [`Closing`] state, which redb's
/// close semantics need (see [`Closing`]).
#[derive(Clone)]
pub(crate) struct LiveToken(Arc<TokenNode>);

struct TokenNode {
    /// The share of the parent this count holds (`None` for the database's).
    _parent: Option<LiveToken>,
    closing: Arc<Closing>,
    /// Whether this count is a write transaction's (see [`Closing`]).
    writer: bool,
}

/// Whether the database handle is closed, as redb's: once the
/// [`Database`](crate::Database) (or `ReadOnlyDatabase`) is closed or
/// dropped, read transactions and tables still alive fail with
/// [`StorageError::DatabaseClosed`]; a write transaction alive then stays
/// usable, and the close takes effect when it ends.
///
/// Invariant: `closed` is set once `pending` is set and no write
/// transaction's token is alive. Both sides check after they write
/// (`pending` then `writers`; `writers` then `pending`, all `SeqCst`), so
/// whichever runs second sets `closed`.
#[derive(Default)]
pub(crate) struct Closing {
    closed: AtomicBool,
    pending: AtomicBool,
    writers: std::sync::atomic::AtomicUsize,
    /// A handle to the locked data file, unlocked when the close takes
    /// effect: the file is free for another open then, as redb's, though
    /// read transactions may still hold the engine (they read nothing more).
    lock: Mutex<Option<std::fs::File>>,
}

impl Closing {
    fn mark_closed(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Some(file) = self.lock.lock().take() {
            // Nothing to report to; the lock also goes with the last handle.
            let _ = file.unlock();
        }
    }
}

impl Drop for TokenNode {
    fn drop(&mut self) {
        if self.writer {
            self.closing.writers.fetch_sub(1, Ordering::SeqCst);
            if self.closing.pending.load(Ordering::SeqCst) {
                self.closing.mark_closed();
            }
        }
    }
}

impl LiveToken {
    /// The database's own token: the count's base.
    pub(crate) fn new() -> Self {
        Self(Arc::new(TokenNode {
            _parent: None,
            closing: Arc::new(Closing::default()),
            writer: false,
        }))
    }

    /// A new count, itself one share of `self`.
    pub(crate) fn child(&self) -> Self {
        Self(Arc::new(TokenNode {
            _parent: Some(self.clone()),
            closing: self.0.closing.clone(),
            writer: false,
        }))
    }

    /// A write transaction's token: a child whose end completes a pending
    /// close.
    pub(crate) fn writer_child(&self) -> Self {
        self.0.closing.writers.fetch_add(1, Ordering::SeqCst);
        Self(Arc::new(TokenNode {
            _parent: Some(self.clone()),
            closing: self.0.closing.clone(),
            writer: true,
        }))
    }

    /// Closes the database handle: at once, or when the live write
    /// transaction ends.
    pub(crate) fn close(&self) {
        let closing = &self.0.closing;
        closing.pending.store(true, Ordering::SeqCst);
        if closing.writers.load(Ordering::SeqCst) == 0 {
            closing.mark_closed();
        }
    }

    /// Unlocks `file` (a handle to the locked data file) when the close
    /// takes effect.
    pub(crate) fn unlock_on_close(&self, file: std::fs::File) {
        *self.0.closing.lock.lock() = Some(file);
    }

    /// `Err(DatabaseClosed)` once the database handle is closed.
    pub(crate) fn check_open(&self) -> Result<(), StorageError> {
        if self.0.closing.closed.load(Ordering::SeqCst) {
            return Err(StorageError::DatabaseClosed);
        }
        Ok(())
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
    /// Locked only inside `with_txn`, never across a call into user code,
    /// so it never blocks: a transaction is used by one thread at a time
    /// (the lock makes it `Sync`, as redb's, so its tables are `Send`).
    txn: Mutex<Box<engine::WriteTxn>>,
    /// The tables open in this transaction, with where each was opened
    /// (for [`TableError::TableAlreadyOpen`]). A list: a transaction has a
    /// table or two open, and hashing the name three times per open (a
    /// lookup, an insert, a removal) cost more than the open's other work
    /// but the table lookup.
    open: Mutex<Vec<(Arc<str>, &'static Location<'static>)>>,
    _live: LiveToken,
    /// Whether a durable commit also checkpoints: set for databases whose
    /// WAL is volatile (see `Builder::create_with_backend`).
    checkpoint_on_commit: bool,
    /// Set when a user callback (a `retain` or `extract_if` predicate)
    /// panicked mid-operation: the transaction then refuses to commit, as
    /// redb's ([`CommitError::TransactionPoisoned`]).
    poisoned: AtomicBool,
}

/// Poisons a write transaction if dropped while its thread panics: wrap a
/// call into user code that runs in the middle of a table operation.
pub(crate) struct PoisonOnUnwind<'a>(pub(crate) &'a WriteTransaction);

impl Drop for PoisonOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.poisoned.store(true, Ordering::Relaxed);
        }
    }
}

/// `Ok` if a table stored with metadata `stored` may be opened with the
/// definition whose metadata is `current`; otherwise the error to report:
/// the wrong kind first ([`check_kind`]), then other types
/// ([`TableError::TableTypeMismatch`], naming the stored ones), then a
/// type whose fixed width changed ([`TableError::TypeDefinitionChanged`]).
fn check_types(name: &str, stored: &[u8], current: &TypedMeta) -> Result<(), TableError> {
    // The same types, as nearly every open finds: no decoding.
    if stored == current.encoded {
        return Ok(());
    }
    let current = &current.meta;
    check_kind(name, stored, current.multimap)?;
    let Some(meta) = TableMeta::decode(stored) else {
        return Err(type_mismatch(name, stored));
    };
    match meta.admits(current) {
        Ok(true) => Ok(()),
        Ok(false) => Err(type_mismatch(name, stored)),
        Err((type_name, width)) => Err(TableError::TypeDefinitionChanged {
            name: TypeName::new(type_name),
            alignment: 1,
            width,
        }),
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
        // Savepoints' reserved tables (their registry, and older versions'
        // copies) are nobody's to list.
        .filter(move |(name, meta)| is_multimap(meta) == multimap && !savepoint::is_reserved(name))
        .map(|(name, _)| String::from_utf8_lossy(&name).into_owned())
}

impl WriteTransaction {
    pub(crate) fn new(txn: Box<engine::WriteTxn>, live: LiveToken) -> Self {
        Self {
            txn: Mutex::new(txn),
            open: Mutex::new(Vec::new()),
            _live: live.writer_child(),
            checkpoint_on_commit: false,
            poisoned: AtomicBool::new(false),
        }
    }

    /// Refuses to commit a transaction that a panic poisoned, or one with a
    /// table still open, which only `mem::forget` of a table can leave (its
    /// borrow of the transaction otherwise ends before `commit`), as redb's.
    fn check_committable(&self) -> Result<(), CommitError> {
        if self.poisoned.load(Ordering::Relaxed) || !self.open.lock().is_empty() {
            return Err(CommitError::TransactionPoisoned);
        }
        Ok(())
    }

    /// Makes every `Durability::Immediate` commit of this transaction also
    /// checkpoint before it returns (for a volatile WAL).
    pub(crate) fn with_checkpoint_on_commit(mut self, on: bool) -> Self {
        self.checkpoint_on_commit = on;
        self
    }

    /// Runs `f` on the engine transaction. Borrows are never held across
    /// calls into user code, so this never waits.
    pub(crate) fn with_txn<T>(&self, f: impl FnOnce(&mut engine::WriteTxn) -> T) -> T {
        f(&mut self.txn.lock())
    }

    pub(crate) fn close_table(&self, name: &str) {
        let mut open = self.open.lock();
        if let Some(at) = open.iter().position(|(open, _)| **open == *name) {
            open.swap_remove(at);
        }
    }

    /// Notes table `name` open (opened at `location`) until its handle
    /// calls [`close_table`](Self::close_table); returns the name for the
    /// handle, shared with the note.
    fn mark_open(&self, name: &str, location: &'static Location<'static>) -> Arc<str> {
        let name: Arc<str> = Arc::from(name);
        self.open.lock().push((name.clone(), location));
        name
    }

    fn ensure_closed(&self, name: &str) -> Result<(), TableError> {
        if let Some((_, location)) = self.open.lock().iter().find(|(open, _)| **open == *name) {
            return Err(TableError::TableAlreadyOpen(name.to_string(), location));
        }
        Ok(())
    }

    /// Opens a table, creating it if it does not exist. Opening it with
    /// types other than those it was created with is an error.
    #[track_caller]
    pub fn open_table<'txn, K: Key + 'static, V: Value + 'static>(
        &'txn self,
        definition: TableDefinition<'_, K, V>,
    ) -> Result<Table<'txn, K, V>, TableError> {
        let name = definition.name();
        self.ensure_closed(name)?;
        let typed = TableMeta::typed::<K, V>();
        let table = self.with_txn(|txn| {
            txn.open_table_checked(name.as_bytes(), &typed.encoded, comparator::<K>(), |stored| {
                check_types(name, stored, &typed)
            })
        })?;
        Ok(Table::new(self, table, self.mark_open(name, Location::caller())))
    }

    /// Deletes a table and all its entries; returns whether it existed.
    /// `definition` is dropped first, so an open [`Table`] can be passed
    /// (as in redb).
    pub fn delete_table(&self, definition: impl TableHandle) -> Result<bool, TableError> {
        let name = definition.name().to_string();
        drop(definition);
        self.delete_kind(&name, false)
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
    /// `definition` is dropped first, so an open [`Table`] can be passed (as
    /// in redb).
    pub fn rename_table(&self, definition: impl TableHandle, new_name: impl TableHandle) -> Result<(), TableError> {
        let from = definition.name().to_string();
        drop(definition);
        self.rename_kind(&from, new_name.name(), false)
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
    #[track_caller]
    pub fn open_multimap_table<'txn, K: Key + 'static, V: Key + 'static>(
        &'txn self,
        definition: MultimapTableDefinition<'_, K, V>,
    ) -> Result<MultimapTable<'txn, K, V>, TableError> {
        let name = definition.name();
        self.ensure_closed(name)?;
        let typed = TableMeta::typed_multimap::<K, V>();
        let table = self.with_txn(|txn| {
            txn.open_table_checked(
                name.as_bytes(),
                &typed.encoded,
                crate::multimap::comparator::<K, V>(),
                |stored| check_types(name, stored, &typed),
            )
        })?;
        Ok(MultimapTable::new(
            self,
            table,
            self.mark_open(name, Location::caller()),
        ))
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
    /// [`Durability::Immediate`]). Returns `Result` as redb's does; every
    /// durability is accepted today (a transaction that modified a persistent
    /// savepoint refuses to go below `Immediate`, as redb's).
    pub fn set_durability(&mut self, durability: Durability) -> Result<(), SetDurabilityError> {
        let txn = self.txn.get_mut();
        if txn.persistent_modified() && durability != Durability::Immediate {
            return Err(SetDurabilityError::PersistentSavepointModified);
        }
        txn.set_durability(durability);
        Ok(())
    }

    /// Commits. With [`Durability::Immediate`] this returns once the commit
    /// is durable (and visible); with [`Durability::None`], at once (visible
    /// now, durable within the sync interval).
    pub fn commit(self) -> Result<(), CommitError> {
        self.check_committable()?;
        let mut txn = self.txn.into_inner();
        let durable = matches!(txn.durability(), Durability::Immediate);
        let checkpointer = self.checkpoint_on_commit.then(|| txn.checkpointer());
        if checkpointer.is_some() && durable {
            // The WAL is volatile: the commit is durable once the data file
            // holds it, and visible only then.
            txn.commit_through_tree();
        }
        txn.commit()?;
        if let Some(checkpointer) = checkpointer
            && (durable || checkpointer.background_stopped())
        {
            // Durable: what is left, the non-durable commits before an
            // empty one. Any durability once the database's handle is gone
            // (nothing else will checkpoint the volatile WAL, and the
            // commit would die with this process's memory). A commit that
            // ends while the handle's drop runs, after its checkpoint and
            // before its threads are told to stop, can still be lost, as a
            // non-durable commit may be.
            checkpointer.checkpoint()?;
        }
        Ok(())
    }

    /// Commits without waiting for durability: returns as soon as the next
    /// writer may start. The [`PendingCommit`] can be waited on, polled, or
    /// awaited; readers see the commit once it is durable (with
    /// `Durability::Immediate`). On a database with a volatile WAL
    /// ([`Builder::create_with_backend`](crate::Builder::create_with_backend))
    /// there is nothing to pipeline an `Immediate` commit with: it goes
    /// into the data file, durable and visible, before this returns, as
    /// [`commit`](Self::commit)'s does; waiting for any other commit
    /// checkpoints.
    pub fn commit_pipelined(self) -> Result<PendingCommit, CommitError> {
        self.check_committable()?;
        let volatile = self.checkpoint_on_commit;
        let mut txn = self.txn.into_inner();
        if volatile && matches!(txn.durability(), Durability::Immediate) {
            // Through the WAL, the volatile log's sync would publish it
            // before any checkpoint made it durable: a reader could see a
            // commit a power cut then loses
            // (`tests/mixed_durability_review.rs`).
            txn.commit_through_tree();
        }
        Ok(txn.commit_pipelined()?)
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
    /// sluicedb checkpoints the state and keeps that durable commit's pages
    /// from reuse until the savepoint is deleted (see
    /// `design/savepoints.md`): this costs one checkpoint, and no copy of
    /// the data.
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

    /// Accepted for redb parity; sluicedb's commit protocol already gives
    /// what two-phase commit guards against, with either setting.
    ///
    /// redb's 2-phase commit makes sure a crash cannot leave the primary
    /// commit slot pointing at a state whose pages were only partly
    /// flushed. sluicedb never acknowledges a commit on the data file's
    /// commit slot: a commit is durable once its checksummed WAL record is
    /// synced, and recovery replays records in order up to the first torn
    /// or invalid one, so a commit is whole or absent. The data file's
    /// commit slot is written only by a checkpoint, which already syncs the
    /// pages before it writes the slot and syncs again (two phases, always).
    /// So the flag changes nothing; it is not stored.
    pub fn set_two_phase_commit(&mut self, enabled: bool) {
        let _ = enabled;
    }

    /// Accepted for redb parity; sluicedb's reopen after a crash is always
    /// quick, with either setting.
    ///
    /// redb's quick-repair saves its allocator state with each commit so a
    /// reopen after a crash need not walk every tree to rebuild it. sluicedb
    /// never needs that walk: the data file changes only at checkpoints,
    /// which write the allocator state with the commit slot, and a crash
    /// between checkpoints is recovered by replaying the WAL written since
    /// the last one (bounded by the checkpoint thresholds). So the flag
    /// changes nothing; it is not stored.
    pub fn set_quick_repair(&mut self, enabled: bool) {
        let _ = enabled;
    }
    /// Storage figures of the database as this transaction sees it, as
    /// redb's (see [`DatabaseStats`] for what they cover). A table with a
    /// handle open is counted as of the transaction's start, as redb counts
    /// it; the rest with this transaction's writes.
    pub fn stats(&self) -> Result<DatabaseStats, StorageError> {
        let open = self.open.lock().clone();
        let is_open = |name: &[u8]| open.iter().any(|(open, _)| open.as_bytes() == name);
        let (tables, own) = self.with_txn(|txn| txn.table_shapes(savepoint::is_reserved, is_open))?;
        let (pinned, shared) = self.with_txn(|txn| txn.pinned_pages())?;
        Ok(DatabaseStats::new(&tables, &own).with_pinned_pages(pinned, shared))
    }
}

/// A read-only snapshot: it sees every commit published when it began and
/// nothing after, and never blocks or is blocked by a writer.
pub struct ReadTransaction {
    txn: engine::ReadTxn,
    live: LiveToken,
}

impl std::fmt::Debug for ReadTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadTransaction").finish_non_exhaustive()
    }
}

impl ReadTransaction {
    /// `live` is the database's token; the transaction counts its tables
    /// and owned guards with a child of it.
    pub(crate) fn new(txn: engine::ReadTxn, live: LiveToken) -> Self {
        Self {
            txn,
            live: live.child(),
        }
    }

    /// Opens a table for reading.
    pub fn open_table<K: Key + 'static, V: Value + 'static>(
        &self,
        definition: TableDefinition<'_, K, V>,
    ) -> Result<ReadOnlyTable<K, V>, TableError> {
        self.live.check_open()?;
        let name = definition.name();
        // The types are checked before the open, which fixes the table's
        // key order in this process: a wrong type's order must never stick.
        self.check_meta(name, &TableMeta::typed::<K, V>())?;
        let Some(table) = self.txn.open_table(name.as_bytes(), comparator::<K>())? else {
            return Err(TableError::TableDoesNotExist(name.to_string()));
        };
        Ok(ReadOnlyTable::new(self.txn.clone(), table, self.live.clone()))
    }

    /// `Ok` if table `name` exists with metadata `typed`; otherwise the
    /// error `open_table` or `open_multimap_table` reports.
    fn check_meta(&self, name: &str, typed: &TypedMeta) -> Result<(), TableError> {
        let Some(stored) = self.txn.table_meta(name.as_bytes())? else {
            return Err(TableError::TableDoesNotExist(name.to_string()));
        };
        check_types(name, &stored, typed)
    }

    /// The ordinary (not multimap) tables in this snapshot.
    pub fn list_tables(&self) -> Result<impl Iterator<Item = UntypedTableHandle> + use<>, StorageError> {
        self.live.check_open()?;
        Ok(names_of_kind(self.txn.list_tables()?, false).map(UntypedTableHandle::new))
    }

    /// Opens a multimap table for reading. Opening it with other types is
    /// [`TableError::TableTypeMismatch`]; opening an ordinary table is
    /// [`TableError::TableIsNotMultimap`].
    pub fn open_multimap_table<K: Key + 'static, V: Key + 'static>(
        &self,
        definition: MultimapTableDefinition<'_, K, V>,
    ) -> Result<ReadOnlyMultimapTable<K, V>, TableError> {
        self.live.check_open()?;
        let name = definition.name();
        self.check_meta(name, &TableMeta::typed_multimap::<K, V>())?;
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

    /// Opens a multimap table by name only, for its size and storage
    /// figures. Naming an ordinary table is
    /// [`TableError::TableIsNotMultimap`], as redb's.
    pub fn open_untyped_multimap_table(
        &self,
        handle: impl MultimapTableHandle,
    ) -> Result<crate::multimap::ReadOnlyUntypedMultimapTable, TableError> {
        self.live.check_open()?;
        let name = handle.name();
        let Some(stored) = self.txn.table_meta(name.as_bytes())? else {
            return Err(TableError::TableDoesNotExist(name.to_string()));
        };
        check_kind(name, &stored, true)?;
        let table = match self.txn.table_order(name.as_bytes())? {
            None => return Err(TableError::TableDoesNotExist(name.to_string())),
            // Opening with the order the process knows fixes nothing new.
            Some(Some(cmp)) => self.txn.open_table(name.as_bytes(), cmp)?,
            Some(None) => None,
        };
        Ok(crate::multimap::ReadOnlyUntypedMultimapTable::new(
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
        self.live.check_open()?;
        Ok(names_of_kind(self.txn.list_tables()?, true).map(UntypedMultimapTableHandle::new))
    }

    /// Ends the transaction, as dropping it does, but refuses with
    /// [`TransactionError::ReadTransactionStillInUse`] (handing the
    /// transaction back) while a table or an owned guard or range opened
    /// through it is alive, as redb's.
    pub fn close(self) -> Result<(), TransactionError> {
        if self.live.others_live() {
            return Err(TransactionError::ReadTransactionStillInUse(Box::new(self)));
        }
        Ok(())
    }
    /// Opens a table by name only, for its size and storage figures.
    pub fn open_untyped_table(&self, handle: impl TableHandle) -> Result<ReadOnlyUntypedTable, TableError> {
        self.live.check_open()?;
        let name = handle.name();
        // A multimap table is refused as redb refuses it.
        if let Some(stored) = self.txn.table_meta(name.as_bytes())? {
            check_kind(name, &stored, false)?;
        }
        let table = match self.txn.table_order(name.as_bytes())? {
            None => return Err(TableError::TableDoesNotExist(name.to_string())),
            // Opening with the order the process knows fixes nothing new.
            Some(Some(cmp)) => self.txn.open_table(name.as_bytes(), cmp)?,
            Some(None) => None,
        };
        Ok(ReadOnlyUntypedTable::new(
            self.txn.clone(),
            table,
            name.to_string(),
            self.live.clone(),
        ))
    }
}
