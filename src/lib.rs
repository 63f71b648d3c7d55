//! sluicedb: an embedded, transactional key-value store. A copy-on-write
//! B+tree holds the data; a write-ahead log with group commit and a
//! skip-list memtable take the write path off the tree. The API is redb's:
//! code written for redb ports by changing the import.
//!
//! ```
//! use sluicedb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
//!
//! const TABLE: TableDefinition<u64, &str> = TableDefinition::new("my_data");
//!
//! # fn main() -> Result<(), sluicedb::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("my_db.sluice");
//! let db = Database::create(&path)?;
//!
//! // A durable commit: returns once its WAL record is synced.
//! let write_txn = db.begin_write()?;
//! {
//!     let mut table = write_txn.open_table(TABLE)?;
//!     table.insert(1, "one")?;
//!     table.insert(2, "two")?;
//! }
//! write_txn.commit()?;
//!
//! // A pipelined commit: the next writer can start while this one syncs.
//! let write_txn = db.begin_write()?;
//! write_txn.open_table(TABLE)?.insert(3, "three")?;
//! let pending = write_txn.commit_pipelined()?;
//! pending.wait()?;
//!
//! let read_txn = db.begin_read()?;
//! let table = read_txn.open_table(TABLE)?;
//! assert_eq!(table.get(2)?.unwrap().value(), "two");
//! let keys: Vec<u64> = table.range(2..)?.map(|e| e.map(|(k, _)| k.value())).collect::<Result<_, _>>()?;
//! assert_eq!(keys, [2, 3]);
//! # let _ = Durability::None;
//! # Ok(())
//! # }
//! ```
//!
//! Layers, each depending only on those below: the typed API (`Database`,
//! transactions, tables, `types`) → `engine` (memtable, commit pipeline,
//! flush and checkpoint, recovery) → `btree` (copy-on-write trees,
//! snapshots) → the page store (header, commit slots, allocator, cache) →
//! `io` (the storage and log-directory seams). The `wal` sits beside
//! the tree; only the commit pipeline and recovery use it. Only the typed
//! API is public: the layers beneath it are internal (the crate's own
//! tests, fuzz targets, benchmarks and `sluice` tool reach them through the
//! `internals` feature, which is not part of the stable API).

#![deny(unsafe_code)]

/// Declares an internal layer: public (but hidden from the documentation)
/// with the `internals` feature, which the tests, fuzz targets, benchmarks
/// and the `sluice` tool enable to reach beneath the typed API; private
/// otherwise. Nothing in these modules is part of the semver-bound API.
macro_rules! internal_layer {
    ($($(#[$attr:meta])* $name:ident;)*) => {$(
        $(#[$attr])*
        #[cfg(feature = "internals")]
        #[doc(hidden)]
        pub mod $name;
        $(#[$attr])*
        #[cfg(not(feature = "internals"))]
        #[allow(dead_code, unused_imports)]
        mod $name;
    )*};
}

pub mod backends;
mod backup;
mod cursor;
mod cursor_mut;
mod db;
mod db_stats;
mod entry;
mod error;
mod guards;
mod heap;
mod hugepage;
mod multimap;
mod page;
mod prefetch;
mod read_only;
mod savepoint;
mod striped;
mod sync;
mod table;
mod transaction;
mod types;

internal_layer! {
    btree;
    engine;
    io;
    wal;
}

pub use backends::{BackendError, StorageBackend};
pub use backup::BackupReport;
pub use cursor::Cursor;
pub use cursor_mut::CursorMut;
pub use db::{Builder, CacheStats, Database, ReadableDatabase, RepairSession};
pub use db_stats::DatabaseStats;
pub use engine::{Durability, PendingCommit, Stats};
pub use entry::{Entry, OccupiedEntry, VacantEntry};
pub use error::SavepointError;
pub use error::{
    CommitError, CompactionError, CursorError, DatabaseError, Error, Result, SetDurabilityError, StorageError,
    TableError, TransactionError,
};
pub use guards::{AccessGuardMut, AccessGuardMutInPlace};
pub use multimap::{
    MultimapEntry, MultimapRange, MultimapTable, MultimapTableDefinition, MultimapTableHandle, MultimapValue,
    OwnedMultimapRange, OwnedMultimapValue, ReadOnlyMultimapTable, ReadOnlyUntypedMultimapTable, ReadableMultimapTable,
    UntypedMultimapTableHandle,
};
pub use read_only::ReadOnlyDatabase;
pub use savepoint::{Savepoint, is_reserved_table_name};
pub use table::{
    AccessGuard, ExtractIf, Range, ReadOnlyTable, ReadableTable, ReadableTableMetadata, Table, TableDefinition,
    TableHandle, UntypedTableHandle,
};
pub use table::{OwnedAccessGuard, OwnedRange, ReadOnlyUntypedTable, TableStats};
pub use transaction::{ReadTransaction, WriteTransaction};
pub use types::{Key, MutInPlaceValue, TableMeta, TypeName, Value};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
