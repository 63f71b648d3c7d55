//! A persistent savepoint's space is kept exactly as long as it exists: it
//! pins the pages of the commit it saved (nothing is copied, so creating
//! one adds no data to the file), deleting the data it saved frees none of
//! them (and compaction is refused, as in redb), and once it is deleted
//! those pages are free again, for reuse by new data and for compaction to
//! give back.

use sluicedb::{CompactionError, Database, TableDefinition};

const TABLES: [TableDefinition<u64, &[u8]>; 2] = [TableDefinition::new("data"), TableDefinition::new("more")];
const ENTRIES: u64 = 2000;

fn fill(db: &Database, table: usize, seed: u8) {
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(TABLES[table]).unwrap();
        for k in 0..ENTRIES {
            t.insert(k, [seed; 500].as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
}

fn clear(db: &Database) {
    let txn = db.begin_write().unwrap();
    for table in TABLES {
        txn.delete_table(table).unwrap();
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
}

fn file_len(dir: &tempfile::TempDir) -> u64 {
    std::fs::metadata(dir.path().join("db")).unwrap().len()
}

#[test]
fn a_deleted_savepoints_pages_are_reused_and_compacted_away() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Database::create(dir.path().join("db")).unwrap();
    fill(&db, 0, 1);
    let one_copy = file_len(&dir);

    let txn = db.begin_write().unwrap();
    let id = txn.persistent_savepoint().unwrap();
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    let with_savepoint = file_len(&dir);
    // Nothing is copied: the savepoint pins the pages the data has.
    assert!(
        with_savepoint < one_copy + one_copy / 8,
        "one_copy={one_copy} with_savepoint={with_savepoint}"
    );

    // Clearing the data frees none of its pages while the savepoint pins
    // them: a new table of the same size grows the file by its size.
    // Compaction is refused while the savepoint exists.
    clear(&db);
    assert!(matches!(db.compact(), Err(CompactionError::PersistentSavepointExists)));
    fill(&db, 0, 2);
    let beside_savepoint = file_len(&dir);
    assert!(
        beside_savepoint >= with_savepoint + ENTRIES * 500,
        "with_savepoint={with_savepoint} beside_savepoint={beside_savepoint}"
    );

    // Deleted: once that commit is durable the pinned pages are free, and a
    // second table of the data's size fits in the file as it is.
    let txn = db.begin_write().unwrap();
    assert!(txn.delete_persistent_savepoint(id).unwrap());
    txn.commit().unwrap();
    fill(&db, 1, 3);
    let refilled = file_len(&dir);
    assert!(
        refilled <= beside_savepoint + beside_savepoint / 16,
        "beside_savepoint={beside_savepoint} refilled={refilled}"
    );

    // And with nothing left, compaction gives the space back.
    clear(&db);
    db.compact().unwrap();
    let empty = file_len(&dir);
    assert!(empty < one_copy / 4, "one_copy={one_copy} empty={empty}");
    let txn = db.begin_write().unwrap();
    assert_eq!(txn.list_persistent_savepoints().unwrap().count(), 0);
    assert!(txn.get_persistent_savepoint(id).is_err());
    txn.abort().unwrap();
}

/// The control for the test above: while the savepoint lives, the same two
/// tables do not fit, so the bound there measures reuse of the pinned pages.
#[test]
fn a_live_savepoints_pages_are_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    fill(&db, 0, 1);
    let txn = db.begin_write().unwrap();
    txn.persistent_savepoint().unwrap();
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    clear(&db);
    fill(&db, 0, 2);
    let beside_savepoint = file_len(&dir);
    fill(&db, 1, 3);
    let grown = file_len(&dir);
    assert!(
        grown > beside_savepoint + beside_savepoint / 8,
        "beside_savepoint={beside_savepoint} grown={grown}"
    );
}
