//! `StorageBackend`'s byte-range lock methods (redb 4.6's): `FileBackend`
//! takes open-file-description locks, so two backends on two opens of one
//! file conflict even in one process; exclusive and shared locks, queries,
//! invalid ranges (`BackendError::Io` with `InvalidInput`, existing locks
//! kept), `close` releasing everything; a backend without locks (the
//! default methods, `InMemoryBackend`) says `Unsupported`.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::ops::Bound::{Excluded, Included, Unbounded};

use sluicedb::backends::{FileBackend, InMemoryBackend};
use sluicedb::{BackendError, StorageBackend};

fn two_backends() -> (tempfile::TempDir, FileBackend, FileBackend) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("file");
    let open = || {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .unwrap();
        FileBackend::new(file).unwrap()
    };
    let (a, b) = (open(), open());
    (dir, a, b)
}

fn is_invalid_input<T: std::fmt::Debug>(result: Result<T, BackendError>) -> bool {
    matches!(result, Err(BackendError::Io(err)) if err.kind() == ErrorKind::InvalidInput)
}

#[test]
fn exclusive_locks_conflict_and_shared_locks_share() {
    let (_dir, a, b) = two_backends();
    assert!(a.try_lock_range(Included(10), Excluded(20)).unwrap());
    assert!(!b.try_lock_range(Included(19), Included(19)).unwrap());
    assert!(!b.try_lock_shared_range(Included(0), Included(10)).unwrap());
    assert!(b.query_lock_range(Included(15), Included(15)).unwrap());
    // Outside the range: free.
    assert!(!b.query_lock_range(Included(20), Unbounded).unwrap());
    assert!(b.try_lock_range(Included(20), Included(20)).unwrap());
    b.unlock_range(Included(20), Included(20)).unwrap();
    a.unlock_range(Included(10), Excluded(20)).unwrap();
    assert!(!b.query_lock_range(Unbounded, Unbounded).unwrap());

    // Shared with shared, not with exclusive.
    assert!(a.try_lock_shared_range(Excluded(99), Included(102)).unwrap());
    assert!(b.try_lock_shared_range(Included(100), Included(100)).unwrap());
    assert!(!b.try_lock_range(Included(101), Included(101)).unwrap());
    b.unlock_range(Included(100), Included(100)).unwrap();
    // A waiting lock on a free range returns at once.
    b.lock_range(Included(200), Excluded(300)).unwrap();
    assert!(!a.try_lock_shared_range(Included(250), Included(250)).unwrap());
    b.lock_shared_range(Included(400), Included(400)).unwrap();
}

#[test]
fn invalid_ranges_are_refused_and_keep_held_locks() {
    let (_dir, a, b) = two_backends();
    assert!(a.try_lock_range(Included(500), Included(500)).unwrap());
    for (start, end) in [
        (Included(100), Excluded(100)),
        (Included(101), Included(100)),
        (Excluded(u64::MAX), Unbounded),
        (Unbounded, Included(u64::MAX)),
        (Included(1 << 63), Included(1 << 63)),
    ] {
        assert!(is_invalid_input(a.try_lock_range(start, end)));
        assert!(is_invalid_input(a.try_lock_shared_range(start, end)));
        assert!(is_invalid_input(a.lock_range(start, end)));
        assert!(is_invalid_input(a.lock_shared_range(start, end)));
        assert!(is_invalid_input(a.unlock_range(start, end)));
        assert!(is_invalid_input(a.query_lock_range(start, end)));
        assert!(!b.try_lock_range(Included(500), Included(500)).unwrap());
    }
    // `close` releases every range lock.
    a.close().unwrap();
    assert!(b.try_lock_range(Included(500), Included(500)).unwrap());
}

#[test]
fn backends_without_locks_say_unsupported() {
    let memory = InMemoryBackend::new();
    assert!(matches!(
        memory.try_lock_range(Unbounded, Unbounded),
        Err(BackendError::Unsupported)
    ));
    assert!(matches!(
        memory.query_lock_range(Included(0), Included(0)),
        Err(BackendError::Unsupported)
    ));
    assert_eq!(
        BackendError::Unsupported.to_string(),
        "the storage backend does not support this operation"
    );
}
