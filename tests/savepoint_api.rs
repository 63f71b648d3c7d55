//! Savepoint rules the model test does not reach: durability errors,
//! savepoints of another database, table metadata, custom key orders,
//! state that has moved through frozen memtables into the tree, compaction,
//! and the reserved tables staying out of sight.

mod common;

use common::keys::CaseInsensitive;
use sluicedb::{
    CompactionError, Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, SavepointError,
    TableDefinition, TableError, TableHandle,
};

const NUMBERS: TableDefinition<u64, u64> = TableDefinition::new("numbers");
const WORDS: TableDefinition<CaseInsensitive, u64> = TableDefinition::new("words");

fn create() -> (tempfile::TempDir, Database) {
    common::savepoints::small_memtable_db()
}

fn put(db: &Database, key: u64, value: u64) {
    let txn = db.begin_write().unwrap();
    txn.open_table(NUMBERS).unwrap().insert(key, value).unwrap();
    txn.commit().unwrap();
}

/// The committed values of `keys`.
fn values(db: &Database, keys: &[u64]) -> Vec<Option<u64>> {
    let read = db.begin_read().unwrap();
    let t = read.open_table(NUMBERS).unwrap();
    keys.iter().map(|&k| t.get(k).unwrap().map(|v| v.value())).collect()
}

#[test]
fn persistent_savepoints_need_immediate_durability() {
    let (_dir, db) = create();
    put(&db, 1, 1);
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(Durability::None).unwrap();
    assert!(matches!(
        txn.persistent_savepoint(),
        Err(SavepointError::ImmediateDurabilityRequired)
    ));
    assert!(matches!(
        txn.delete_persistent_savepoint(1),
        Err(SavepointError::ImmediateDurabilityRequired)
    ));
    // An ephemeral one does not.
    txn.ephemeral_savepoint().unwrap();
    txn.abort().unwrap();

    let txn = db.begin_write().unwrap();
    let id = txn.persistent_savepoint().unwrap();
    txn.commit().unwrap();
    // A restore that would delete a newer persistent savepoint needs it too.
    let txn = db.begin_write().unwrap();
    let older = txn.ephemeral_savepoint().unwrap();
    txn.abort().unwrap();
    let txn = db.begin_write().unwrap();
    let newer = txn.persistent_savepoint().unwrap();
    txn.commit().unwrap();
    assert!(newer > id);
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(Durability::None).unwrap();
    assert!(matches!(
        txn.restore_savepoint(&older),
        Err(SavepointError::ImmediateDurabilityRequired)
    ));
}

#[test]
fn a_dirty_transaction_cannot_create_savepoints() {
    let (_dir, db) = create();
    put(&db, 1, 1);
    let txn = db.begin_write().unwrap();
    drop(txn.open_table(NUMBERS).unwrap());
    assert!(matches!(
        txn.ephemeral_savepoint(),
        Err(SavepointError::InvalidSavepoint)
    ));
    assert!(matches!(
        txn.persistent_savepoint(),
        Err(SavepointError::InvalidSavepoint)
    ));
    txn.abort().unwrap();

    let mut txn = db.begin_write().unwrap();
    let sp = txn.ephemeral_savepoint().unwrap();
    // Savepoint bookkeeping does not dirty it.
    let id = txn.persistent_savepoint().unwrap();
    assert!(txn.delete_persistent_savepoint(id).unwrap());
    txn.ephemeral_savepoint().unwrap();
    txn.restore_savepoint(&sp).unwrap();
    assert!(matches!(
        txn.ephemeral_savepoint(),
        Err(SavepointError::InvalidSavepoint)
    ));
    txn.commit().unwrap();
}

#[test]
fn savepoints_of_another_database_are_refused() {
    let (_a_dir, a) = create();
    let (_b_dir, b) = create();
    put(&a, 1, 1);
    put(&b, 1, 1);
    let txn = a.begin_write().unwrap();
    let ephemeral = txn.ephemeral_savepoint().unwrap();
    let id = txn.persistent_savepoint().unwrap();
    txn.commit().unwrap();
    let txn = a.begin_write().unwrap();
    let persistent = txn.get_persistent_savepoint(id).unwrap();
    txn.abort().unwrap();
    let mut txn = b.begin_write().unwrap();
    for sp in [&ephemeral, &persistent] {
        assert!(matches!(
            txn.restore_savepoint(sp),
            Err(SavepointError::InvalidSavepoint)
        ));
    }
    assert!(matches!(
        txn.get_persistent_savepoint(id),
        Err(SavepointError::InvalidSavepoint)
    ));
}

#[test]
fn restore_brings_back_tables_with_their_types_and_drops_new_ones() {
    let (_dir, db) = create();
    put(&db, 1, 10);
    let txn = db.begin_write().unwrap();
    let sp = txn.ephemeral_savepoint().unwrap();
    let id = txn.persistent_savepoint().unwrap();
    txn.commit().unwrap();

    // The name now holds a table of other types, and a new table exists.
    let txn = db.begin_write().unwrap();
    txn.delete_table(NUMBERS).unwrap();
    let other: TableDefinition<u64, &str> = TableDefinition::new("numbers");
    txn.open_table(other).unwrap().insert(1, "one").unwrap();
    txn.open_table(WORDS).unwrap().insert("Apple", 3).unwrap();
    txn.commit().unwrap();
    db.checkpoint().unwrap();

    let persistent = {
        let txn = db.begin_write().unwrap();
        let p = txn.get_persistent_savepoint(id).unwrap();
        txn.abort().unwrap();
        p
    };
    // The persistent one first: restoring the older ephemeral one deletes it.
    for savepoint in [&persistent, &sp] {
        let mut txn = db.begin_write().unwrap();
        txn.restore_savepoint(savepoint).unwrap();
        txn.commit().unwrap();
        let read = db.begin_read().unwrap();
        let names: Vec<String> = read.list_tables().unwrap().map(|h| h.name().to_string()).collect();
        assert_eq!(names, ["numbers"]);
        assert!(matches!(
            read.open_table(other),
            Err(TableError::TableTypeMismatch { .. })
        ));
        assert_eq!(read.open_table(NUMBERS).unwrap().get(1).unwrap().unwrap().value(), 10);
        // Back to the other timeline for the next savepoint.
        let txn = db.begin_write().unwrap();
        txn.delete_table(NUMBERS).unwrap();
        txn.commit().unwrap();
    }
}

#[test]
fn restore_under_a_custom_order_keeps_the_saved_key_bytes() {
    let (_dir, db) = create();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(WORDS).unwrap();
        t.insert("apple", 1).unwrap();
        t.insert("Berry", 2).unwrap();
    }
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    let sp = txn.ephemeral_savepoint().unwrap();
    let id = txn.persistent_savepoint().unwrap();
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(WORDS).unwrap();
        // The same key under the order, other bytes; the same value.
        t.insert("APPLE", 1).unwrap();
        t.remove("berry").unwrap();
        t.insert("cherry", 3).unwrap();
    }
    txn.commit().unwrap();
    for persistent in [false, true] {
        let mut txn = db.begin_write().unwrap();
        let p;
        let sp = if persistent {
            p = txn.get_persistent_savepoint(id).unwrap();
            &p
        } else {
            &sp
        };
        txn.restore_savepoint(sp).unwrap();
        let t = txn.open_table(WORDS).unwrap();
        let entries: Vec<(String, u64)> = t
            .iter()
            .unwrap()
            .map(|e| e.unwrap())
            .map(|(k, v)| (k.value().to_string(), v.value()))
            .collect();
        assert_eq!(entries, [("apple".to_string(), 1), ("Berry".to_string(), 2)]);
        drop(t);
        txn.abort().unwrap();
    }
}

#[test]
fn restore_reaches_state_that_moved_into_the_tree() {
    let (_dir, db) = create();
    // Enough commits to freeze and flush many 4 KiB memtables.
    for k in 0..300 {
        put(&db, k, k);
    }
    let txn = db.begin_write().unwrap();
    let sp = txn.ephemeral_savepoint().unwrap();
    txn.abort().unwrap();
    for k in 0..300 {
        put(&db, k, k + 1000);
        if k % 100 == 0 {
            db.checkpoint().unwrap();
        }
    }
    let mut txn = db.begin_write().unwrap();
    txn.restore_savepoint(&sp).unwrap();
    txn.commit().unwrap();
    let read = db.begin_read().unwrap();
    let t = read.open_table(NUMBERS).unwrap();
    assert_eq!(t.len().unwrap(), 300);
    for e in t.iter().unwrap() {
        let (k, v) = e.unwrap();
        assert_eq!(k.value(), v.value());
    }
}

#[test]
fn savepoints_block_compaction_while_they_exist() {
    let (_dir, mut db) = create();
    put(&db, 1, 1);
    let txn = db.begin_write().unwrap();
    let sp = txn.ephemeral_savepoint().unwrap();
    txn.abort().unwrap();
    assert!(matches!(db.compact(), Err(CompactionError::EphemeralSavepointExists)));
    drop(sp);
    db.compact().unwrap();

    let txn = db.begin_write().unwrap();
    let id = txn.persistent_savepoint().unwrap();
    txn.commit().unwrap();
    assert!(matches!(db.compact(), Err(CompactionError::PersistentSavepointExists)));
    let txn = db.begin_write().unwrap();
    assert!(txn.delete_persistent_savepoint(id).unwrap());
    txn.commit().unwrap();
    db.compact().unwrap();
}

#[test]
fn reserved_tables_stay_hidden_and_persistent_ones_need_their_commit() {
    let (_dir, db) = create();
    put(&db, 1, 1);
    let txn = db.begin_write().unwrap();
    let aborted = txn.persistent_savepoint().unwrap();
    txn.abort().unwrap();
    let txn = db.begin_write().unwrap();
    assert!(matches!(
        txn.get_persistent_savepoint(aborted),
        Err(SavepointError::InvalidSavepoint)
    ));
    let id = txn.persistent_savepoint().unwrap();
    assert_eq!(txn.list_tables().unwrap().count(), 1);
    txn.commit().unwrap();
    let read = db.begin_read().unwrap();
    let names: Vec<String> = read.list_tables().unwrap().map(|h| h.name().to_string()).collect();
    assert_eq!(names, ["numbers"]);
    let txn = db.begin_write().unwrap();
    assert_eq!(txn.list_persistent_savepoints().unwrap().collect::<Vec<_>>(), [id]);
}

#[test]
fn a_committed_restore_invalidates_newer_savepoints_and_an_aborted_one_does_not() {
    let (_dir, db) = create();
    put(&db, 1, 1);
    let txn = db.begin_write().unwrap();
    let older = txn.ephemeral_savepoint().unwrap();
    txn.abort().unwrap();
    put(&db, 2, 2);
    let txn = db.begin_write().unwrap();
    let newer = txn.ephemeral_savepoint().unwrap();
    let newer_persistent = txn.persistent_savepoint().unwrap();
    txn.commit().unwrap();

    // Aborted: nothing is invalidated.
    let mut txn = db.begin_write().unwrap();
    txn.restore_savepoint(&older).unwrap();
    txn.abort().unwrap();
    let mut txn = db.begin_write().unwrap();
    assert_eq!(
        txn.list_persistent_savepoints().unwrap().collect::<Vec<_>>(),
        [newer_persistent]
    );
    txn.restore_savepoint(&newer).unwrap();
    // Created after `newer` (ids follow creation), so deleted by its restore.
    assert_eq!(txn.list_persistent_savepoints().unwrap().count(), 0);
    txn.abort().unwrap();

    // Committed: the newer ones are gone, the restored one still works.
    let mut txn = db.begin_write().unwrap();
    txn.restore_savepoint(&older).unwrap();
    txn.commit().unwrap();
    let mut txn = db.begin_write().unwrap();
    assert!(matches!(
        txn.restore_savepoint(&newer),
        Err(SavepointError::InvalidSavepoint)
    ));
    assert!(matches!(
        txn.get_persistent_savepoint(newer_persistent),
        Err(SavepointError::InvalidSavepoint)
    ));
    txn.restore_savepoint(&older).unwrap();
    txn.commit().unwrap();
    // A savepoint created after the restore is valid.
    let txn = db.begin_write().unwrap();
    let later = txn.ephemeral_savepoint().unwrap();
    txn.abort().unwrap();
    let mut txn = db.begin_write().unwrap();
    txn.restore_savepoint(&later).unwrap();
    txn.commit().unwrap();
    assert_eq!(values(&db, &[1, 2]), [Some(1), None]);
}

#[test]
fn a_restore_with_no_other_savepoint_alive_leaves_nothing_behind() {
    let (_dir, db) = create();
    put(&db, 1, 1);
    let txn = db.begin_write().unwrap();
    let savepoint = txn.ephemeral_savepoint().unwrap();
    txn.commit().unwrap();
    let metadata = || {
        let txn = db.begin_write().unwrap();
        let bytes = txn.stats().unwrap().metadata_bytes();
        txn.abort().unwrap();
        bytes
    };
    let before = metadata();
    put(&db, 2, 2);
    let mut txn = db.begin_write().unwrap();
    txn.restore_savepoint(&savepoint).unwrap();
    txn.commit().unwrap();
    drop(savepoint);
    // No invalidation record: nothing alive could be invalidated.
    assert_eq!(metadata(), before);

    // Savepoints made after it work, and the restore held.
    let txn = db.begin_write().unwrap();
    let later = txn.ephemeral_savepoint().unwrap();
    txn.commit().unwrap();
    put(&db, 3, 3);
    let mut txn = db.begin_write().unwrap();
    txn.restore_savepoint(&later).unwrap();
    txn.commit().unwrap();
    assert_eq!(values(&db, &[1, 2, 3]), [Some(1), None, None]);
}

#[test]
fn a_backup_holds_the_data_without_the_savepoints() {
    let (dir, db) = create();
    let txn = db.begin_write().unwrap();
    txn.open_table(WORDS).unwrap().insert("Apple", 1).unwrap();
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    txn.persistent_savepoint().unwrap();
    txn.commit().unwrap();
    let dest = dir.path().join("copy");
    db.backup(&dest).unwrap();
    let copy = Database::open(&dest).unwrap();
    let txn = copy.begin_write().unwrap();
    assert_eq!(txn.list_persistent_savepoints().unwrap().count(), 0);
    assert_eq!(txn.open_table(WORDS).unwrap().get("apple").unwrap().unwrap().value(), 1);
}

#[test]
fn savepoints_can_move_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<sluicedb::Savepoint>();
    send_sync::<SavepointError>();
}
