//! A write transaction poisoned as redb's (`CommitError::TransactionPoisoned`):
//! a `retain` or `extract_if` predicate that panics, or a leaked table,
//! makes `commit` refuse and change nothing; the writer slot is free after.

use std::panic::{AssertUnwindSafe, catch_unwind};

use sluicedb::{CommitError, Database, ReadableDatabase, ReadableTableMetadata, TableDefinition};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");

fn setup() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for i in 0..4 {
            t.insert(i, i).unwrap();
        }
    }
    txn.commit().unwrap();
    (dir, db)
}

fn len(db: &Database) -> u64 {
    db.begin_read().unwrap().open_table(T).unwrap().len().unwrap()
}

#[test]
fn a_panicking_predicate_poisons_the_transaction() {
    let (_dir, db) = setup();
    for extract in [false, true] {
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(T).unwrap();
            t.insert(10, 10).unwrap();
            let result = catch_unwind(AssertUnwindSafe(|| {
                let pred = |k: u64, _: u64| {
                    assert_ne!(k, 2, "predicate panic");
                    k == 0
                };
                if extract {
                    let mut it = t.extract_if(pred).unwrap();
                    assert_eq!(it.next().unwrap().unwrap().0.value(), 0);
                    let _ = it.next();
                } else {
                    t.retain(pred).unwrap();
                }
            }));
            assert!(result.is_err());
        }
        assert!(matches!(txn.commit(), Err(CommitError::TransactionPoisoned)));
        assert_eq!(len(&db), 4, "nothing of a poisoned transaction is committed");
    }
    // The writer slot was released.
    let txn = db.begin_write().unwrap();
    txn.open_table(T).unwrap().insert(20, 20).unwrap();
    txn.commit().unwrap();
    assert_eq!(len(&db), 5);
}

#[test]
fn a_leaked_table_poisons_the_transaction() {
    let (_dir, db) = setup();
    let txn = db.begin_write().unwrap();
    let mut t = txn.open_table(T).unwrap();
    t.insert(9, 9).unwrap();
    std::mem::forget(t);
    assert!(matches!(txn.commit_pipelined(), Err(CommitError::TransactionPoisoned)));
    assert_eq!(len(&db), 4);
}

/// Copies the database at `from` (its data file and the WAL directory
/// beside it, `<path>-wal/`) to `to`, as a file-level backup of a running
/// database would.
fn copy_database(from: &std::path::Path, to: &std::path::Path) {
    std::fs::copy(from, to).unwrap();
    let wal = |p: &std::path::Path| {
        let mut s = p.as_os_str().to_owned();
        s.push("-wal");
        std::path::PathBuf::from(s)
    };
    let (from_wal, to_wal) = (wal(from), wal(to));
    std::fs::create_dir(&to_wal).unwrap();
    for entry in std::fs::read_dir(&from_wal).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to_wal.join(entry.file_name())).unwrap();
    }
}

/// redb 4.6's `commit_with_a_leaked_table_is_refused` with the copy taken
/// of the data file and its WAL directory (a sluicedb database is both:
/// README, "Coming from redb"): a large table rewritten and leaked, with
/// and without reopening it first, refuses to commit, and both the open
/// database and a copy of it hold the earlier commit intact.
#[test]
fn a_leaked_table_over_a_large_rewrite_leaves_the_last_commit_intact() {
    for reopened in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(T).unwrap();
            for i in 0..2000 {
                t.insert(i, i).unwrap();
            }
        }
        txn.commit().unwrap();

        let txn = db.begin_write().unwrap();
        let mut t = txn.open_table(T).unwrap();
        for i in 0..2000 {
            t.insert(i, i + 1).unwrap();
        }
        if reopened {
            drop(t);
            t = txn.open_table(T).unwrap();
        }
        std::mem::forget(t);
        assert!(matches!(txn.commit(), Err(CommitError::TransactionPoisoned)));

        let check = |db: &Database, what: &str| {
            let r = db.begin_read().unwrap();
            let t = r.open_table(T).unwrap();
            assert_eq!(t.len().unwrap(), 2000, "{what}");
            for i in 0..2000 {
                assert_eq!(t.get(i).unwrap().unwrap().value(), i, "{what}: key {i}");
            }
        };
        check(&db, "the open database");

        let copy = dir.path().join("copy");
        copy_database(&path, &copy);
        let mut copied = Database::open(&copy).unwrap();
        assert!(copied.check_integrity().unwrap());
        check(&copied, "the copy");
    }
}
