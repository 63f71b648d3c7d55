//! A persistent savepoint's space is kept exactly as long as it exists: its
//! copy holds pages while it lives (so deleting the data it saved does not
//! shrink the file), and once it is deleted those pages are free again, for
//! reuse by new data and for compaction to give back.

use sluicedb::{Database, TableDefinition};

const TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("data");
const ENTRIES: u64 = 2000;

fn fill(db: &Database, seed: u8) {
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(TABLE).unwrap();
        for k in 0..ENTRIES {
            t.insert(k, [seed; 500].as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
}

fn clear(db: &Database) {
    let txn = db.begin_write().unwrap();
    txn.delete_table(TABLE).unwrap();
    txn.commit().unwrap();
    db.checkpoint().unwrap();
}

#[test]
fn a_deleted_savepoints_pages_are_reused_and_compacted_away() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Database::create(dir.path().join("db")).unwrap();
    fill(&db, 1);

    let txn = db.begin_write().unwrap();
    let id = txn.persistent_savepoint().unwrap();
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    let with_savepoint = std::fs::metadata(dir.path().join("db")).unwrap().len();

    // The savepoint's copy pins its pages: clearing the data and compacting
    // leaves at least the copy's worth (2000 * 500 bytes) in the file.
    clear(&db);
    db.compact().unwrap();
    let pinned = std::fs::metadata(dir.path().join("db")).unwrap().len();
    assert!(pinned >= ENTRIES * 500, "pinned={pinned}");

    // Deleted: the copy's pages are free once a checkpoint makes that
    // durable; new data of the same size reuses them instead of growing the
    // file much.
    let txn = db.begin_write().unwrap();
    assert!(txn.delete_persistent_savepoint(id).unwrap());
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    db.checkpoint().unwrap();
    fill(&db, 2);
    let refilled = std::fs::metadata(dir.path().join("db")).unwrap().len();
    assert!(
        refilled <= pinned + pinned / 4,
        "pinned={pinned} refilled={refilled} with_savepoint={with_savepoint}"
    );

    // And with nothing left, compaction gives the space back.
    clear(&db);
    db.checkpoint().unwrap();
    db.compact().unwrap();
    let empty = std::fs::metadata(dir.path().join("db")).unwrap().len();
    assert!(empty < pinned / 4, "pinned={pinned} empty={empty}");
    let txn = db.begin_write().unwrap();
    assert_eq!(txn.list_persistent_savepoints().unwrap().count(), 0);
    assert!(txn.get_persistent_savepoint(id).is_err());
    txn.abort().unwrap();
    eprintln!("with_savepoint={with_savepoint} pinned={pinned} refilled={refilled} empty={empty}");
}
