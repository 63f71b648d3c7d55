//! `sluice wal` says where recovery would stop, changing nothing, so it
//! must read the log as `Database::open` does: beside a data file put back
//! from a copy that went its own way, both refuse the other copy's log
//! (found by review: the tool read segments of any log id and reported the
//! other copy's records as the ones recovery replays).

use std::path::Path;
use std::process::Command;

use sluicedb::{Database, TableDefinition};

const TABLE: TableDefinition<&str, &str> = TableDefinition::new("t");

fn put(db: &Database, key: &str, value: &str) {
    let txn = db.begin_write().unwrap();
    txn.open_table(TABLE).unwrap().insert(key, value).unwrap();
    txn.commit().unwrap();
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn sluice_wal_agrees_with_open_about_another_copys_log() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("db");
    let copy = dir.path().join("copy");

    let db = Database::create(&original).unwrap();
    put(&db, "base", "0");
    db.close().unwrap();
    std::fs::copy(&original, &copy).unwrap();

    let db = Database::open(&original).unwrap();
    put(&db, "a", "original");
    put(&db, "b", "original");
    db.close_without_checkpoint();

    let db = Database::open(&copy).unwrap();
    put(&db, "a", "copy");
    db.close().unwrap();

    std::fs::copy(&copy, &original).unwrap();
    let Err(refusal) = Database::open(&original) else {
        panic!("open refuses another copy's log");
    };
    let refusal = refusal.to_string();
    assert!(refusal.contains("another copy"), "{refusal}");

    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["wal", path_str(&original)])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !out.status.success() && stderr.contains("another copy"),
        "open refuses this log ({refusal}), but `sluice wal` reports (exit {:?}):\n{stdout}{stderr}",
        out.status.code()
    );
}
