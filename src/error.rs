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
    /// A value exceeded the largest storable size (the argument is its length).
    #[error("value of {0} bytes exceeds the maximum value size")]
    ValueTooLarge(usize),
    /// A key exceeded the largest storable size (the argument is its length).
    #[error("key of {0} bytes exceeds the maximum key size")]
    KeyTooLarge(usize),
    /// An operating-system I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// An earlier I/O error left the storage in an unknown state, so it refuses
    /// all further work; reopen the database to recover its last durable state.
    #[error("storage poisoned by an earlier failure: {0}")]
    PreviousIo(String),
    /// The database stopped after a failure (an I/O error or a panic in a
    /// background thread), named here; every operation now fails. Reopening
    /// recovers the last durable state.
    #[error("database poisoned: {0}; reopen it to recover")]
    Poisoned(String),
}

impl StorageError {
    pub(crate) fn corrupted(msg: impl Into<String>) -> Self {
        Self::Corrupted(msg.into())
    }
}

/// Shorthand for results of the storage layers.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
