//! A closed database is its data file alone: the close's final checkpoint
//! covers every commit, and the close then deletes the whole WAL, the active
//! segment too (`Journal::retire_through`). The data file copied by itself
//! opens with every commit; a commit after the close (a write transaction
//! that outlives its handle) starts a new segment and survives; a power cut
//! at any step of the deletes loses nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use sluicedb::io::{CrashBackend, CrashLogDir, LogDir, TearMode};
use sluicedb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

const TABLE: TableDefinition<u64, u64> = TableDefinition::new("t");

fn commit(db: &Database, keys: std::ops::Range<u64>, durability: Durability) {
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(durability).unwrap();
    {
        let mut table = txn.open_table(TABLE).unwrap();
        for k in keys {
            table.insert(k, k * 7).unwrap();
        }
    }
    txn.commit().unwrap();
}

fn contents(db: &Database) -> BTreeMap<u64, u64> {
    let read = db.begin_read().unwrap();
    let table = read.open_table(TABLE).unwrap();
    table
        .iter()
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.value(), v.value())
        })
        .collect()
}

fn expected(keys: std::ops::Range<u64>) -> BTreeMap<u64, u64> {
    keys.map(|k| (k, k * 7)).collect()
}

/// The segment files in a database's WAL directory.
fn segments(data: &Path) -> Vec<String> {
    let dir = data.with_file_name(format!("{}-wal", data.file_name().unwrap().to_str().unwrap()));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().file_name().into_string().unwrap()).collect())
        .unwrap_or_default();
    names.retain(|n| n.ends_with(".wal"));
    names
}

#[test]
fn a_closed_database_is_its_data_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path).unwrap();
    commit(&db, 0..500, Durability::Immediate);
    commit(&db, 500..600, Durability::None);
    assert!(
        !segments(&path).is_empty(),
        "commits are logged while the database is open"
    );
    db.close().unwrap();
    assert_eq!(segments(&path), Vec::<String>::new(), "the close deleted the WAL");

    // The data file alone, copied beside nothing, holds every commit.
    let copy = dir.path().join("copy");
    std::fs::copy(&path, &copy).unwrap();
    assert_eq!(contents(&Database::open(&copy).unwrap()), expected(0..600));

    // The original reopens, logs new commits from where its checkpoint
    // left off, and a drop retires them as a close does.
    let db = Database::open(&path).unwrap();
    assert_eq!(contents(&db), expected(0..600));
    commit(&db, 600..700, Durability::Immediate);
    assert!(!segments(&path).is_empty());
    drop(db);
    assert_eq!(segments(&path), Vec::<String>::new(), "the drop deleted the WAL");
    assert_eq!(contents(&Database::open(&path).unwrap()), expected(0..700));
}

#[test]
fn a_commit_after_the_close_starts_a_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path).unwrap();
    commit(&db, 0..100, Durability::Immediate);
    // A write transaction outlives its handle (as redb's): the drop
    // checkpoints and empties the log first, then the transaction commits.
    let txn = db.begin_write().unwrap();
    drop(db);
    assert_eq!(segments(&path), Vec::<String>::new());
    {
        let mut table = txn.open_table(TABLE).unwrap();
        for k in 100..150 {
            table.insert(k, k * 7).unwrap();
        }
    }
    txn.commit().unwrap();
    assert_eq!(segments(&path).len(), 1, "the commit started a segment");
    // The engine ended with the transaction; the next open replays it.
    assert_eq!(contents(&Database::open(&path).unwrap()), expected(0..150));
}

/// A power cut at every operation of the close's log deletes (after its
/// final checkpoint), with torn unsynced writes: the reopened database
/// holds every commit, whichever segments survived.
#[test]
fn a_power_cut_while_the_log_is_deleted_loses_nothing() {
    let run = |cut: Option<u64>| -> (u64, u64, Option<BTreeMap<u64, u64>>) {
        let (data, wal) = (Arc::new(CrashBackend::new()), CrashLogDir::new());
        let db = Database::builder()
            .create_with_backends(data.clone(), wal.clone())
            .unwrap();
        for i in 0..20 {
            commit(&db, i * 50..(i + 1) * 50, Durability::Immediate);
        }
        db.engine().checkpoint().unwrap();
        commit(&db, 1000..1100, Durability::Immediate);
        let before = wal.ops();
        if let Some(k) = cut {
            wal.cut_power_after(before + k);
        }
        let closed = db.close();
        let ops = wal.ops() - before;
        let left = wal.list().unwrap().iter().filter(|n| n.ends_with(".wal")).count() as u64;
        if cut.is_none() {
            closed.unwrap();
            return (ops, left, None);
        }
        let mode = TearMode::Random(cut.unwrap());
        let reopened = Database::builder()
            .create_with_backends(CrashBackend::from_bytes(data.crash_image(mode)), wal.crash(mode))
            .unwrap();
        (ops, left, Some(contents(&reopened)))
    };
    let (ops, left, _) = run(None);
    assert_eq!(left, 0, "a clean close leaves no segment");
    assert!(ops > 0);
    let want: BTreeMap<u64, u64> = expected(0..1000).into_iter().chain(expected(1000..1100)).collect();
    for k in 0..ops {
        let (_, _, found) = run(Some(k));
        assert_eq!(
            found.unwrap(),
            want,
            "power cut after {k} of the close's {ops} log operations"
        );
    }
}

/// The log is emptied only when a checkpoint covers every commit: with a
/// commit after the checkpoint, nothing is deleted and the commit replays.
#[test]
fn a_commit_after_the_checkpoint_keeps_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path).unwrap();
    commit(&db, 0..100, Durability::Immediate);
    db.engine().checkpoint().unwrap();
    commit(&db, 100..200, Durability::Immediate);
    let logged = segments(&path);
    assert!(!db.engine().retire_log().unwrap(), "a commit is past the checkpoint");
    assert_eq!(segments(&path), logged, "nothing deleted");
    db.engine().checkpoint().unwrap();
    assert!(db.engine().retire_log().unwrap());
    assert_eq!(segments(&path), Vec::<String>::new());
    commit(&db, 200..300, Durability::Immediate);
    db.close_without_checkpoint();
    assert_eq!(contents(&Database::open(&path).unwrap()), expected(0..300));
}
