//! Opening a file that holds no sluicedb database fails as redb's does
//! (issue 14, item 5): an empty or foreign file is `StorageError::Io` of
//! kind `InvalidData`, a missing one `NotFound`, for every way to open; a
//! failed open leaves nothing behind and does not change the file.

use std::io::ErrorKind;

use sluicedb::backends::{FileBackend, InMemoryBackend};
use sluicedb::{Builder, Database, DatabaseError, ReadOnlyDatabase, StorageBackend, StorageError};

fn io_kind(result: Result<impl Sized, DatabaseError>) -> ErrorKind {
    match result.err().expect("the open must fail") {
        DatabaseError::Storage(StorageError::Io(e)) => e.kind(),
        other => panic!("expected an I/O error, got {other}"),
    }
}

#[test]
fn empty_and_missing_files_fail_to_open_as_in_redb() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::File::create(&empty).unwrap();
    assert_eq!(io_kind(Database::open(&empty)), ErrorKind::InvalidData);
    assert_eq!(io_kind(ReadOnlyDatabase::open(&empty)), ErrorKind::InvalidData);
    let missing = dir.path().join("missing");
    assert_eq!(io_kind(Database::open(&missing)), ErrorKind::NotFound);
    assert_eq!(io_kind(ReadOnlyDatabase::open(&missing)), ErrorKind::NotFound);
    // Neither failed open left anything behind.
    assert!(!missing.exists());
    assert!(!dir.path().join("missing-wal").exists());
    assert!(!dir.path().join("empty-wal").exists());
}

#[test]
fn a_foreign_file_is_invalid_data_for_every_open_and_is_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foreign");
    for contents in [b"hi".as_slice(), b"SLUICEDX and more".as_slice(), &[0xff; 5000]] {
        std::fs::write(&path, contents).unwrap();
        assert_eq!(io_kind(Database::open(&path)), ErrorKind::InvalidData);
        assert_eq!(io_kind(Database::create(&path)), ErrorKind::InvalidData);
        assert_eq!(io_kind(ReadOnlyDatabase::open(&path)), ErrorKind::InvalidData);
        let file =
            || FileBackend::new(std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap()).unwrap();
        assert_eq!(
            io_kind(Builder::new().create_with_backend(file())),
            ErrorKind::InvalidData
        );
        assert_eq!(
            io_kind(Builder::new().open_read_only_with_backend(file())),
            ErrorKind::InvalidData
        );
        assert_eq!(std::fs::read(&path).unwrap(), contents);
        assert!(!dir.path().join("foreign-wal").exists());
    }
    let backend = InMemoryBackend::new();
    backend.set_len(3).unwrap();
    backend.write(0, b"abc").unwrap();
    assert_eq!(
        io_kind(Builder::new().create_with_backend(backend)),
        ErrorKind::InvalidData
    );
    assert_eq!(
        io_kind(Builder::new().open_read_only_with_backend(InMemoryBackend::new())),
        ErrorKind::InvalidData
    );
}
