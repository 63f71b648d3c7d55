//! The first failure a component latched, and the errors it answers with.
//!
//! Three latches hold one: the data file's ([`LatchedBackend`]), the WAL
//! journal's, and the engine's poison (which adopts either of the others, or
//! records a panic of its own). All three answer the same way, through
//! [`Failure::later_error`] and [`Failure::original_error`]:
//!
//! - an operation begun after the failure gets [`StorageError::PreviousIo`]
//!   when the failure was an I/O error (as redb's), and
//!   [`StorageError::Poisoned`] with the cause otherwise: a panic's message
//!   is what a user debugging it needs;
//! - an operation under way when it happened (a commit waiting for the sync
//!   that failed, a checkpoint waiting for the apply thread) is one the
//!   failure interrupted, and gets the original error: `Io` again.
//!
//! [`LatchedBackend`]: super::LatchedBackend

use std::fmt;
use std::io;

use crate::error::StorageError;

/// Why a component stopped: its first failure, kept to answer every later
/// call (a failed write or sync is never retried).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// An I/O error: what is on disk is unknown now.
    Io {
        /// The error's kind.
        kind: io::ErrorKind,
        /// The error's message, prefixed with what was being done.
        message: String,
    },
    /// Anything else: a panic in a background thread (a user comparator's
    /// included), a broken invariant, bad data met while applying a commit.
    Other(String),
}

impl Failure {
    /// The failure `error` is: an I/O error as [`Failure::Io`], anything
    /// else as [`Failure::Other`] with its message.
    pub fn of(error: &StorageError) -> Self {
        match error {
            StorageError::Io(e) => Self::Io {
                kind: e.kind(),
                message: e.to_string(),
            },
            StorageError::PreviousIo => Self::Io {
                kind: io::ErrorKind::Other,
                message: error.to_string(),
            },
            StorageError::Poisoned(cause) => Self::Other(cause.clone()),
            other => Self::Other(other.to_string()),
        }
    }

    /// The same failure, its message prefixed with `what` was being done.
    pub fn within(self, what: &str) -> Self {
        match self {
            Self::Io { kind, message } => Self::Io {
                kind,
                message: format!("{what}: {message}"),
            },
            Self::Other(message) => Self::Other(format!("{what}: {message}")),
        }
    }

    /// Whether it was an I/O error.
    pub fn is_io(&self) -> bool {
        matches!(self, Self::Io { .. })
    }

    /// The error for an operation begun after the failure.
    pub(crate) fn later_error(&self) -> StorageError {
        match self {
            Self::Io { .. } => StorageError::PreviousIo,
            Self::Other(cause) => StorageError::Poisoned(cause.clone()),
        }
    }

    /// The error for an operation the failure interrupted: the I/O error
    /// again. An `io::Error` cannot be cloned, so this is a copy of its kind
    /// and message; the operation that made the failing call got the error
    /// itself.
    pub(crate) fn original_error(&self) -> StorageError {
        match self {
            Self::Io { kind, message } => StorageError::Io(io::Error::new(*kind, message.clone())),
            Self::Other(cause) => StorageError::Poisoned(cause.clone()),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { message, .. } | Self::Other(message) => f.write_str(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_io_failure_answers_previous_io_later_and_io_to_those_it_interrupted() {
        let failure = Failure::of(&StorageError::Io(io::Error::new(io::ErrorKind::StorageFull, "disk full"))).within("WAL");
        assert!(failure.is_io());
        assert!(matches!(failure.later_error(), StorageError::PreviousIo));
        match failure.original_error() {
            StorageError::Io(e) => {
                assert_eq!(e.kind(), io::ErrorKind::StorageFull);
                assert_eq!(e.to_string(), "WAL: disk full");
            }
            other => panic!("expected the I/O error again, got {other}"),
        }
    }

    #[test]
    fn any_other_failure_keeps_its_cause_in_poisoned() {
        let failure = Failure::Other("the apply thread panicked: boom".into());
        assert!(!failure.is_io());
        for error in [failure.later_error(), failure.original_error()] {
            assert!(matches!(&error, StorageError::Poisoned(cause) if cause.contains("boom")), "{error}");
        }
        let corrupted = Failure::of(&StorageError::Corrupted("bad checksum".into()));
        assert_eq!(corrupted, Failure::Other("database corrupted: bad checksum".into()));
    }
}
