//! A backup never overwrites and never publishes another backup's copy
//! (found by the twenty-third session's review): a second backup to the
//! same destination while the first runs is refused and leaves the first's
//! files alone; a file created at the destination during the copy is kept;
//! a dangling symbolic link at the destination is refused.

use sluicedb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");
const U: TableDefinition<u64, u64> = TableDefinition::new("u");

fn filled(path: &std::path::Path, base: u64) -> Database {
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        let mut u = txn.open_table(U).unwrap();
        for i in 0..1000 {
            t.insert(i, base + i).unwrap();
            u.insert(i, base + i).unwrap();
        }
    }
    txn.commit().unwrap();
    db
}

#[test]
fn a_second_backup_to_the_same_destination_is_refused_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = filled(&dir.path().join("a"), 0);
    let b = filled(&dir.path().join("b"), 1_000_000);
    let dest = dir.path().join("dest");
    let mut second = None;
    let report = a
        .backup_with_progress(&dest, |_| {
            if second.is_none() {
                // While A copies its first batch, B tries the same dest.
                second = Some(b.backup(&dest));
            }
        })
        .unwrap();
    let second = second.expect("the progress callback ran");
    assert!(second.is_err(), "a second backup to a busy destination: {second:?}");
    let copy = Database::open(&dest).unwrap();
    let read = copy.begin_read().unwrap();
    for table in [T, U] {
        let t = read.open_table(table).unwrap();
        assert_eq!(
            t.get(5).unwrap().map(|v| v.value()),
            Some(5),
            "dest holds A's data ({report:?})"
        );
        assert_eq!(t.iter().unwrap().count(), 1000);
    }
}

#[test]
fn a_file_created_at_the_destination_during_the_copy_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let db = filled(&dir.path().join("src"), 0);
    let dest = dir.path().join("dest");
    let mut first = true;
    let result = db.backup_with_progress(&dest, |_| {
        if first {
            first = false;
            std::fs::write(&dest, b"written meanwhile").unwrap();
        }
    });
    assert!(result.is_err(), "{result:?}");
    assert_eq!(std::fs::read(&dest).unwrap(), b"written meanwhile");
    // The failed backup's partial file is stale, and the next backup to a
    // free destination beside it works.
    db.backup(dir.path().join("dest2")).unwrap();
}

#[test]
fn existing_paths_and_dangling_links_are_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let db = filled(&dir.path().join("src"), 0);
    let existing = dir.path().join("existing");
    std::fs::write(&existing, b"keep me").unwrap();
    assert!(db.backup(&existing).is_err());
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");
    assert!(db.backup(dir.path().join("src")).is_err());
    assert!(db.backup(dir.path().join("src-wal")).is_err());
    assert!(db.backup(dir.path()).is_err());
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &link).unwrap();
    let result = db.backup(&link);
    assert!(result.is_err(), "a backup replaced a dangling link: {result:?}");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert!(!dir.path().join("nowhere").exists());
}
