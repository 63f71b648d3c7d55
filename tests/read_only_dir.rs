//! A directory the process may not write to gives a clear error, not a
//! panic or a half-created database.

use std::os::unix::fs::PermissionsExt;

use sluicedb::{Database, DatabaseError, StorageError};

#[test]
fn creating_in_a_read_only_directory_is_a_clear_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    // Root ignores directory permissions; /sys refuses new files even to root.
    let target = if std::fs::File::create(locked.join("probe")).is_ok() {
        std::path::PathBuf::from("/sys")
    } else {
        locked.clone()
    };
    match Database::create(target.join("db")) {
        Err(DatabaseError::Storage(StorageError::Io(e))) => {
            let message = e.to_string();
            assert!(
                matches!(
                    e.kind(),
                    std::io::ErrorKind::PermissionDenied
                        | std::io::ErrorKind::ReadOnlyFilesystem
                        | std::io::ErrorKind::NotFound
                ),
                "{message}"
            );
        }
        Err(other) => panic!("expected an I/O error, got {other}"),
        Ok(_) => panic!("created a database in a directory that refuses writes"),
    }
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
}
