//! A journal kept alive past its `Database` by a read transaction (allowed:
//! `tests/ranges_outlive_their_database.rs`) must leave alone the
//! `next-segment.spare` of the next open of the same path. Found by review:
//! the journal deleted the spare by its name when it was finally dropped,
//! whichever log's it was by then, and the next open's next roll failed
//! ("No such file or directory"), poisoning it. A closing database now stops
//! its spares and deletes its own before it gives up the file lock
//! (`Journal::stop_spares`).

use std::time::{Duration, Instant};

use sluicedb::{Database, ReadableDatabase, ReadableTableMetadata, TableDefinition};

const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");
const SPARE: &str = "next-segment.spare";

fn commit(db: &Database, k: u64, value: &[u8]) -> Result<(), String> {
    let txn = db.begin_write().map_err(|e| e.to_string())?;
    txn.open_table(T)
        .map_err(|e| e.to_string())?
        .insert(k, value)
        .map_err(|e| e.to_string())?;
    txn.commit().map_err(|e| e.to_string())
}

#[test]
fn an_old_journal_dropped_late_does_not_delete_the_new_journals_spare() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let wal = dir.path().join("db-wal");
    let value = vec![7u8; 64 << 10];

    let db1 = Database::create(&path).unwrap();
    commit(&db1, 0, &value).unwrap();
    // A read transaction alive across the drop keeps the first engine, and
    // its journal (and spare thread), alive.
    let old_read = db1.begin_read().unwrap();
    drop(db1);

    let db2 = Database::open(&path).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut k = 1u64;
    // Durable commits until the second journal has made a spare (rolled into
    // its 2 MiB segment, which asks for the 4 MiB one ahead).
    while !wal.join(SPARE).exists() {
        assert!(Instant::now() < deadline, "no spare appeared");
        commit(&db2, k, &value).unwrap();
        k += 1;
    }
    // Let the spare thread finish it (4 MiB of zeros and a sync).
    std::thread::sleep(Duration::from_millis(500));
    assert!(wal.join(SPARE).exists());

    // The first engine goes away now.
    drop(old_read);
    let spare_survived = wal.join(SPARE).exists();

    // Keep committing durably into the next roll (the one that takes the spare).
    let first_failure = (0..200u64).find_map(|i| commit(&db2, k + i, &value).err().map(|e| (k + i, e)));
    assert!(
        spare_survived && first_failure.is_none(),
        "the second database's spare was deleted by the first journal's drop \
         (spare still there: {spare_survived}); first failed commit: {first_failure:?}"
    );
    let rtxn = db2.begin_read().unwrap();
    assert_eq!(rtxn.open_table(T).unwrap().len().unwrap(), k + 200);
}
