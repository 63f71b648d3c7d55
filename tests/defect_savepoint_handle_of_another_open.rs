//! Defect (twenty-third session's review): a persistent `Savepoint` handle
//! named its engine by the engine's address, so once its database was
//! closed another database opened at the same address accepted it, and
//! restored *its own* savepoint with that id: the wrong state. Handles now
//! name the engine instance by an id never reused in the process
//! (`WriteTxn::engine_instance`), and `SavepointError::InvalidSavepoint`
//! refuses a savepoint of "another database (or an earlier open of this
//! one)", as its docs promise.

use sluicedb::{Builder, Database, ReadableDatabase, SavepointError, TableDefinition};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");

fn put(db: &Database, k: u64, v: u64) {
    let txn = db.begin_write().unwrap();
    txn.open_table(T).unwrap().insert(k, v).unwrap();
    txn.commit().unwrap();
}

fn get(db: &Database, k: u64) -> Option<u64> {
    let r = db.begin_read().unwrap();
    r.open_table(T).unwrap().get(k).unwrap().map(|g| g.value())
}

#[test]
fn a_persistent_savepoint_of_a_closed_database_is_refused_by_another() {
    let dir = tempfile::tempdir().unwrap();
    for attempt in 0..20 {
        // Database A: savepoint 1 holds t[1] = 100.
        let a = Builder::new().create(dir.path().join(format!("a{attempt}"))).unwrap();
        put(&a, 1, 100);
        let txn = a.begin_write().unwrap();
        let id = txn.persistent_savepoint().unwrap();
        txn.commit().unwrap();
        let txn = a.begin_write().unwrap();
        let foreign = txn.get_persistent_savepoint(id).unwrap();
        txn.abort().unwrap();
        drop(a);

        // Database B: its own savepoint with the same id holds t[1] = 200.
        let b = Builder::new().create(dir.path().join(format!("b{attempt}"))).unwrap();
        put(&b, 1, 200);
        let txn = b.begin_write().unwrap();
        assert_eq!(txn.persistent_savepoint().unwrap(), id);
        txn.commit().unwrap();
        put(&b, 1, 300);

        let mut txn = b.begin_write().unwrap();
        match txn.restore_savepoint(&foreign) {
            Err(SavepointError::InvalidSavepoint) => {
                txn.abort().unwrap();
            }
            Ok(()) => {
                txn.commit().unwrap();
                panic!(
                    "attempt {attempt}: database B accepted database A's savepoint handle \
                     (closed A's engine address reused); B's t[1] is now {:?} \
                     (A's savepoint held 100, B's own savepoint {id} held 200, B had 300)",
                    get(&b, 1)
                );
            }
            Err(e) => panic!("{e:?}"),
        }
        drop(b);
    }
}

/// The same with one database: a handle to a persistent savepoint whose
/// creation was aborted, kept across a reopen (the docs: "an earlier open of
/// this one" is refused). After the reopen the aborted id is handed out
/// again (documented), and the stale handle restores the new savepoint.
#[test]
fn a_persistent_savepoint_handle_of_an_earlier_open_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Builder::new().create(&path).unwrap();
    put(&db, 1, 100);
    let txn = db.begin_write().unwrap();
    let id = txn.persistent_savepoint().unwrap();
    let stale = txn.get_persistent_savepoint(id).unwrap();
    txn.abort().unwrap();
    drop(db);

    let db = Builder::new().open(&path).unwrap();
    put(&db, 1, 200);
    let txn = db.begin_write().unwrap();
    assert_eq!(
        txn.persistent_savepoint().unwrap(),
        id,
        "the aborted id is handed out again"
    );
    txn.commit().unwrap();
    put(&db, 1, 300);
    let mut txn = db.begin_write().unwrap();
    match txn.restore_savepoint(&stale) {
        Err(SavepointError::InvalidSavepoint) => txn.abort().unwrap(),
        Ok(()) => {
            txn.commit().unwrap();
            panic!(
                "a savepoint handle of an earlier open (an aborted savepoint) was accepted; t[1] is now {:?} \
                 (the aborted savepoint would have held 100; the new savepoint {id} holds 200)",
                get(&db, 1)
            );
        }
        Err(e) => panic!("{e:?}"),
    }
}
