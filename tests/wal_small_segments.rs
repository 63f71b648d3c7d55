//! Small databases look small (operations issue): a new database's WAL is a
//! 1 MiB segment, not a 64 MiB one (its apparent length is what `ls`, redb's
//! benchmark and a copy see), and segments double as the log grows, up to
//! the configured size, where appends never change a file's size again.

use sluicedb::{Database, TableDefinition};

const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");

fn segment_lengths(dir: &std::path::Path) -> Vec<u64> {
    // Segments only: a busy log also keeps a spare (`tests/wal_spare_segments.rs`).
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .filter(|(name, _)| name.ends_with(".wal"))
        .collect();
    files.sort();
    files.into_iter().map(|(_, len)| len).collect()
}

#[test]
fn a_new_databases_wal_is_small_and_segments_grow_by_doubling() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path).unwrap();
    let wal = dir.path().join("db-wal");
    let txn = db.begin_write().unwrap();
    txn.open_table(T).unwrap().insert(1, &b"one"[..]).unwrap();
    txn.commit().unwrap();
    assert_eq!(segment_lengths(&wal), [1 << 20]);

    // About 7 MiB more: segments of 1, 2 and 4 MiB, then one of 8 MiB.
    let value = vec![7u8; 64 << 10];
    for i in 0..112u64 {
        let txn = db.begin_write().unwrap();
        txn.open_table(T).unwrap().insert(i, value.as_slice()).unwrap();
        txn.commit().unwrap();
    }
    let lengths = segment_lengths(&wal);
    assert_eq!(lengths, [1 << 20, 2 << 20, 4 << 20, 8 << 20], "{lengths:?}");
}
