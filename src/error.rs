//! Public error types.
//!
//! Each layer reports through these enums; none of them panics on bad input.
//! The redb-shaped transaction, table and database errors join them with the
//! public API.

use std::io;

/// A failure of the storage beneath the database: I/O, corruption, or a value
/// too large to store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The file's bytes are not a valid database: a checksum failed, a
    /// structure points outside the file, or the format is unknown.
    #[error("database corrupted: {0}")]
    Corrupted(String),
    /// A value exceeded the largest storable size, or a key exceeded even
    /// that (as redb reports an item too large for the database; the
    /// argument is its length).
    #[error("item of {0} bytes exceeds the maximum value size")]
    ValueTooLarge(usize),
    /// A key exceeded the largest key size, 20 KiB, or a multimap table's
    /// key + value the largest pair, 20 KiB less 5 bytes (the argument is
    /// the key's length, or the key's and value's together).
    #[error("key of {0} bytes exceeds the maximum key size")]
    KeyTooLarge(usize),
    /// An operating-system I/O error. The operation that meets an I/O error
    /// gets it here; every operation after it gets
    /// [`PreviousIo`](Self::PreviousIo).
    #[error("I/O error: {0}")]
    Io(#[source] io::Error),
    /// As redb's: an earlier I/O error left the storage in an unknown state,
    /// so the database refuses all further work; reopen it to recover its
    /// last durable state. The operation that met the error got it as
    /// [`Io`](Self::Io).
    #[error("an earlier I/O error left the storage in an unknown state; reopen the database to recover")]
    PreviousIo,
    /// The database stopped after a failure that was not an I/O error (a
    /// panic in a background thread or in a key comparator, or a broken
    /// invariant), named here; every operation now fails. Reopening
    /// recovers the last durable state.
    #[error("database poisoned: {0}; reopen it to recover")]
    Poisoned(String),
    /// A caller broke an internal invariant of the storage layers (a bug in
    /// sluicedb, not bad data); the operation was refused and changed nothing.
    #[error("internal error: {0}")]
    Internal(String),
    /// The database handle was closed or dropped while this transaction or
    /// table was alive, as redb's: it reads nothing more.
    #[error("the database is closed")]
    DatabaseClosed,
}

impl StorageError {
    pub(crate) fn corrupted(msg: impl Into<String>) -> Self {
        Self::Corrupted(msg.into())
    }

    /// This error as a later call that re-raises it reports it (an
    /// iterator that latched it: `table::ExtractIf`): an I/O error as
    /// `PreviousIo` (the operation that met it got it; the data file's latch
    /// holds it now), any other as itself.
    pub(crate) fn again(&self) -> Self {
        match self {
            Self::Io(_) | Self::PreviousIo => Self::PreviousIo,
            Self::Corrupted(m) => Self::Corrupted(m.clone()),
            Self::ValueTooLarge(n) => Self::ValueTooLarge(*n),
            Self::KeyTooLarge(n) => Self::KeyTooLarge(*n),
            Self::Poisoned(m) => Self::Poisoned(m.clone()),
            Self::Internal(m) => Self::Internal(m.clone()),
            Self::DatabaseClosed => Self::DatabaseClosed,
        }
    }
}

/// An I/O error becomes [`StorageError::Io`], unless a latched backend
/// returned it to refuse a call after its first failure
/// (`io::LatchedBackend::check`, which wraps a `RefusedAfterFailure`): that
/// one becomes [`StorageError::PreviousIo`], as the engine's and the
/// journal's latches answer (`io::Failure::later_error`).
impl From<io::Error> for StorageError {
    fn from(e: io::Error) -> Self {
        if e.get_ref().is_some_and(|inner| inner.is::<RefusedAfterFailure>()) {
            Self::PreviousIo
        } else {
            Self::Io(e)
        }
    }
}

/// The payload of the `io::Error` with which a latched backend refuses a
/// call after its first failure, named in the message.
#[derive(Debug)]
pub(crate) struct RefusedAfterFailure(pub(crate) String);

impl std::fmt::Display for RefusedAfterFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "storage refused: an earlier operation failed ({})", self.0)
    }
}

impl std::error::Error for RefusedAfterFailure {}

/// Shorthand for results of the storage layers.
pub type Result<T = (), E = StorageError> = std::result::Result<T, E>;

/// Errors opening or checking a database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatabaseError {
    /// The database is open already, in this process or another.
    #[error("database already open: another handle holds its file lock")]
    DatabaseAlreadyOpen,
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The repair callback ([`Builder::set_repair_callback`](crate::Builder::set_repair_callback))
    /// aborted the open.
    #[error("the repair callback aborted opening the database")]
    RepairAborted,
    /// A write transaction is in progress, so the database was not closed
    /// ([`Database::close`](crate::Database::close)).
    #[error("a transaction is in progress")]
    TransactionInProgress,
}

/// Errors starting a transaction.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Another write transaction is being built, which
    /// [`Database::try_begin_write`](crate::Database::try_begin_write) does
    /// not wait for.
    #[error("another write transaction is in progress")]
    WouldBlock,
    /// [`ReadTransaction::close`](crate::ReadTransaction::close) was called
    /// while a table or an owned guard of the transaction is alive; the
    /// transaction is handed back.
    #[error("the read transaction is still in use")]
    ReadTransactionStillInUse(Box<crate::ReadTransaction>),
}

/// Errors opening, deleting or renaming a table.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// The table exists with other key or value types.
    #[error("{table} has key type {key} and value type {value}")]
    TableTypeMismatch {
        /// The table.
        table: String,
        /// Its key type.
        key: crate::TypeName,
        /// Its value type.
        value: crate::TypeName,
    },
    /// The table does not exist.
    #[error("table {0:?} does not exist")]
    TableDoesNotExist(String),
    /// A table of that name exists already.
    #[error("table {0:?} exists")]
    TableExists(String),
    /// The table is open already in this transaction; the location is
    /// where it was opened.
    #[error("table {0:?} already opened at: {1}")]
    TableAlreadyOpen(String, &'static std::panic::Location<'static>),
    /// The table is a multimap table, named where an ordinary one was
    /// expected (`open_table`, `delete_table`, `rename_table`).
    #[error("{0} is a multimap table")]
    TableIsMultimap(String),
    /// The table is an ordinary table, named where a multimap table was
    /// expected (`open_multimap_table` and the other multimap methods).
    #[error("{0} is not a multimap table")]
    TableIsNotMultimap(String),
    /// A key or value type has the name the table was created with but
    /// another fixed width (`Value::fixed_width`): its stored bytes would
    /// not decode as the new definition. `width` is the stored one;
    /// `alignment` is always 1 (sluicedb stores values unaligned, as redb
    /// does).
    #[error(
        "Current definition of {} does not match stored definition (width={width:?}, alignment={alignment})",
        name.name()
    )]
    TypeDefinitionChanged {
        /// The type.
        name: crate::TypeName,
        /// Its stored alignment.
        alignment: usize,
        /// Its stored fixed width (`None`: variable).
        width: Option<usize>,
    },
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Errors committing a transaction.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// The storage failed; the commit is not durable (it may or may not
    /// survive a crash) and the database is poisoned.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The transaction was poisoned and was not committed (nothing of it
    /// was): a callback panicked in the middle of a table operation, or a
    /// table was leaked.
    #[error("transaction was poisoned by a panic or a leaked table")]
    TransactionPoisoned,
}

/// Errors compacting a database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompactionError {
    /// A transaction is in progress.
    #[error("a transaction is in progress")]
    TransactionInProgress,
    /// A persistent savepoint exists (or is being created).
    #[error("a persistent savepoint exists")]
    PersistentSavepointExists,
    /// An ephemeral savepoint exists.
    #[error("an ephemeral savepoint exists")]
    EphemeralSavepointExists,
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Any sluicedb error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// See [`DatabaseError::DatabaseAlreadyOpen`].
    #[error("database already open: another handle holds its file lock")]
    DatabaseAlreadyOpen,
    /// See [`TableError::TableTypeMismatch`].
    #[error("{table} has key type {key} and value type {value}")]
    TableTypeMismatch {
        /// The table.
        table: String,
        /// Its key type.
        key: crate::TypeName,
        /// Its value type.
        value: crate::TypeName,
    },
    /// See [`TableError::TableDoesNotExist`].
    #[error("table {0:?} does not exist")]
    TableDoesNotExist(String),
    /// See [`TableError::TableExists`].
    #[error("table {0:?} exists")]
    TableExists(String),
    /// See [`TableError::TableAlreadyOpen`].
    #[error("table {0:?} already opened at: {1}")]
    TableAlreadyOpen(String, &'static std::panic::Location<'static>),
    /// See [`TableError::TableIsMultimap`].
    #[error("{0} is a multimap table")]
    TableIsMultimap(String),
    /// See [`TableError::TableIsNotMultimap`].
    #[error("{0} is not a multimap table")]
    TableIsNotMultimap(String),
    /// See [`TableError::TypeDefinitionChanged`].
    #[error(
        "Current definition of {} does not match stored definition (width={width:?}, alignment={alignment})",
        name.name()
    )]
    TypeDefinitionChanged {
        /// The type.
        name: crate::TypeName,
        /// Its stored alignment.
        alignment: usize,
        /// Its stored fixed width (`None`: variable).
        width: Option<usize>,
    },
    /// See [`CompactionError::TransactionInProgress`].
    #[error("a transaction is in progress")]
    TransactionInProgress,
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// See [`SavepointError::InvalidSavepoint`].
    #[error("savepoint is invalid or cannot be created")]
    InvalidSavepoint,
    /// See [`SavepointError::ImmediateDurabilityRequired`].
    #[error("operation requires Durability::Immediate for the current transaction")]
    ImmediateDurabilityRequired,
    /// See [`CompactionError::PersistentSavepointExists`].
    #[error("a persistent savepoint exists")]
    PersistentSavepointExists,
    /// See [`CompactionError::EphemeralSavepointExists`].
    #[error("an ephemeral savepoint exists")]
    EphemeralSavepointExists,
    /// See [`DatabaseError::RepairAborted`].
    #[error("the repair callback aborted opening the database")]
    RepairAborted,
    /// See [`TransactionError::WouldBlock`].
    #[error("another write transaction is in progress")]
    WouldBlock,
    /// See [`SetDurabilityError::PersistentSavepointModified`].
    #[error("persistent savepoint modified: cannot reduce transaction durability")]
    PersistentSavepointModified,
    /// See [`SetDurabilityError::NonDurableCommitUnsupported`].
    #[error("non-durable commits are not supported by this database")]
    NonDurableCommitUnsupported,
    /// See [`CommitError::TransactionPoisoned`].
    #[error("transaction was poisoned by a panic or a leaked table")]
    TransactionPoisoned,
    /// See [`CursorError::UnorderedKey`].
    #[error("the key does not sort strictly between the entries adjacent to the cursor")]
    UnorderedKey,
    /// See [`TransactionError::ReadTransactionStillInUse`].
    #[error("the read transaction is still in use")]
    ReadTransactionStillInUse(Box<crate::ReadTransaction>),
}

/// Why a [`CursorMut`](crate::CursorMut) insert failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CursorError {
    /// The key does not sort strictly between the entries around the
    /// cursor's gap.
    #[error("the key does not sort strictly between the entries adjacent to the cursor")]
    UnorderedKey,
    /// The storage failed, or the key or value is too large.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<CursorError> for Error {
    fn from(err: CursorError) -> Error {
        match err {
            CursorError::UnorderedKey => Error::UnorderedKey,
            CursorError::Storage(storage) => storage.into(),
        }
    }
}

impl From<DatabaseError> for Error {
    fn from(e: DatabaseError) -> Self {
        match e {
            DatabaseError::DatabaseAlreadyOpen => Error::DatabaseAlreadyOpen,
            DatabaseError::Storage(s) => Error::Storage(s),
            DatabaseError::RepairAborted => Error::RepairAborted,
            DatabaseError::TransactionInProgress => Error::TransactionInProgress,
        }
    }
}

impl From<TransactionError> for Error {
    fn from(e: TransactionError) -> Self {
        match e {
            TransactionError::Storage(s) => Error::Storage(s),
            TransactionError::WouldBlock => Error::WouldBlock,
            TransactionError::ReadTransactionStillInUse(t) => Error::ReadTransactionStillInUse(t),
        }
    }
}

impl From<TableError> for Error {
    fn from(e: TableError) -> Self {
        match e {
            TableError::TableTypeMismatch { table, key, value } => Error::TableTypeMismatch { table, key, value },
            TableError::TableDoesNotExist(t) => Error::TableDoesNotExist(t),
            TableError::TableExists(t) => Error::TableExists(t),
            TableError::TableAlreadyOpen(t, at) => Error::TableAlreadyOpen(t, at),
            TableError::TableIsMultimap(t) => Error::TableIsMultimap(t),
            TableError::TableIsNotMultimap(t) => Error::TableIsNotMultimap(t),
            TableError::TypeDefinitionChanged { name, alignment, width } => {
                Error::TypeDefinitionChanged { name, alignment, width }
            }
            TableError::Storage(s) => Error::Storage(s),
        }
    }
}

impl From<CommitError> for Error {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::Storage(s) => Error::Storage(s),
            CommitError::TransactionPoisoned => Error::TransactionPoisoned,
        }
    }
}

impl From<CompactionError> for Error {
    fn from(e: CompactionError) -> Self {
        match e {
            CompactionError::TransactionInProgress => Error::TransactionInProgress,
            CompactionError::PersistentSavepointExists => Error::PersistentSavepointExists,
            CompactionError::EphemeralSavepointExists => Error::EphemeralSavepointExists,
            CompactionError::Storage(s) => Error::Storage(s),
        }
    }
}

/// Errors creating, finding or restoring a savepoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SavepointError {
    /// The savepoint is invalid or cannot be created: it belongs to another
    /// database (or an earlier open of this one), a savepoint older than it
    /// was restored after it was created, the persistent savepoint does not
    /// exist, or the transaction is "dirty" (it opened, deleted or renamed a
    /// table, or restored a savepoint) so it cannot create one.
    #[error("savepoint is invalid or cannot be created")]
    InvalidSavepoint,
    /// Creating or deleting a persistent savepoint (or a restore that would
    /// delete newer ones) needs the transaction's durability to be
    /// [`Durability::Immediate`](crate::Durability::Immediate).
    #[error("operation requires Durability::Immediate for the current transaction")]
    ImmediateDurabilityRequired,
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<SavepointError> for Error {
    fn from(e: SavepointError) -> Self {
        match e {
            SavepointError::InvalidSavepoint => Error::InvalidSavepoint,
            SavepointError::ImmediateDurabilityRequired => Error::ImmediateDurabilityRequired,
            SavepointError::Storage(s) => Error::Storage(s),
        }
    }
}

/// Errors choosing a transaction's durability with
/// [`WriteTransaction::set_durability`](crate::WriteTransaction::set_durability).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetDurabilityError {
    /// This transaction created or deleted a persistent savepoint, whose
    /// commit must be durable: the durability may not be lowered.
    #[error("persistent savepoint modified: cannot reduce transaction durability")]
    PersistentSavepointModified,
    /// A non-durable commit is not allowed here. redb returns it when the
    /// database is shared between processes; sluicedb opens a database in
    /// one process only, so it never returns it today (kept for redb parity).
    #[error("non-durable commits are not supported by this database")]
    NonDurableCommitUnsupported,
}

impl From<SetDurabilityError> for Error {
    fn from(e: SetDurabilityError) -> Self {
        match e {
            SetDurabilityError::PersistentSavepointModified => Error::PersistentSavepointModified,
            SetDurabilityError::NonDurableCommitUnsupported => Error::NonDurableCommitUnsupported,
        }
    }
}
