//! An ephemeral savepoint (written by the twenty-third session's review; it
//! found nothing here) held while its pages are under
//! pressure (many flushes of small memtables, part-way flush commits, tree
//! commits, checkpoints, table deletions, persistent savepoints created and
//! deleted), then restored while the apply thread is still flushing the
//! frozen memtables of `Durability::None` commits. The restore must give
//! back exactly the saved contents, and the pages the savepoint pinned must
//! be reusable once it is dropped.

use std::collections::BTreeMap;

use sluicedb::{Builder, Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

const A: TableDefinition<u64, &[u8]> = TableDefinition::new("a");
const B: TableDefinition<u64, &[u8]> = TableDefinition::new("b");

type Model = BTreeMap<u64, Vec<u8>>;

fn val(k: u64, round: u64, len: usize) -> Vec<u8> {
    let mut v = vec![(k.wrapping_mul(31) ^ round) as u8; len];
    v[..8].copy_from_slice(&(k ^ (round << 32)).to_le_bytes());
    v
}

fn read(db: &Database, def: TableDefinition<u64, &[u8]>) -> Option<Model> {
    let r = db.begin_read().unwrap();
    let t = match r.open_table(def) {
        Ok(t) => t,
        Err(sluicedb::TableError::TableDoesNotExist(_)) => return None,
        Err(e) => panic!("{e}"),
    };
    Some(
        t.iter()
            .unwrap()
            .map(|e| e.unwrap())
            .map(|(k, v)| (k.value(), v.value().to_vec()))
            .collect(),
    )
}

fn write(db: &Database, def: TableDefinition<u64, &[u8]>, keys: impl Iterator<Item = u64>, round: u64, none: bool) {
    let mut txn = db.begin_write().unwrap();
    if none {
        txn.set_durability(Durability::None).unwrap();
    }
    {
        let mut t = txn.open_table(def).unwrap();
        for k in keys {
            t.insert(k, val(k, round, 100 + (k as usize % 300)).as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
}

fn builder() -> Builder {
    let mut b = Builder::new();
    b.set_memtable_size(16 << 10)
        .set_tree_commit_size(64 << 10)
        .set_max_frozen_bytes(4 << 20)
        .set_cache_size(256 << 10);
    b
}

#[test]
fn an_ephemeral_savepoint_survives_page_pressure_and_restores_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let db = builder().create(dir.path().join("db")).unwrap();
    for round in 0..3 {
        write(&db, A, 0..3000, round, false);
        write(&db, B, (0..3000).step_by(3), round, false);
    }
    db.checkpoint().unwrap();
    let saved_a = read(&db, A).unwrap();
    let saved_b = read(&db, B).unwrap();

    for cycle in 0..4u64 {
        let txn = db.begin_write().unwrap();
        let sp = txn.ephemeral_savepoint().unwrap();
        txn.abort().unwrap();
        // Restore first so each cycle starts from the saved state.
        let mut txn = db.begin_write().unwrap();
        txn.restore_savepoint(&sp).unwrap();
        txn.commit().unwrap();
        assert_eq!(read(&db, A).as_ref(), Some(&saved_a), "cycle {cycle} start");

        for round in 0..12u64 {
            let r = 100 + cycle * 100 + round;
            // Small commits through the memtable (flushes, part commits).
            for chunk in 0..10u64 {
                write(&db, A, (chunk * 300..chunk * 300 + 300).step_by(2), r, round % 2 == 0);
            }
            // A big commit straight into the tree.
            write(&db, A, (0..3000).rev().step_by(1), r + 7, false);
            if round % 3 == 0 {
                let txn = db.begin_write().unwrap();
                txn.delete_table(B).unwrap();
                txn.commit().unwrap();
            } else {
                write(&db, B, (round..3000).step_by(5), r, true);
            }
            if round % 4 == 1 {
                let txn = db.begin_write().unwrap();
                let id = txn.persistent_savepoint().unwrap();
                txn.commit().unwrap();
                write(&db, A, 0..500, r + 9, true);
                let txn = db.begin_write().unwrap();
                assert!(txn.delete_persistent_savepoint(id).unwrap());
                txn.commit().unwrap();
            }
            if round % 2 == 1 {
                db.checkpoint().unwrap();
            }
        }
        // Pile up frozen memtables, then restore while they flush.
        for chunk in 0..30u64 {
            write(&db, A, (chunk * 100..chunk * 100 + 100).step_by(1), 999 + chunk, true);
        }
        let mut txn = db.begin_write().unwrap();
        txn.restore_savepoint(&sp).unwrap();
        txn.commit().unwrap();
        assert_eq!(
            read(&db, A).as_ref(),
            Some(&saved_a),
            "cycle {cycle}: table a after restore"
        );
        assert_eq!(
            read(&db, B).as_ref(),
            Some(&saved_b),
            "cycle {cycle}: table b after restore"
        );
        drop(sp);
        db.checkpoint().unwrap();
        assert_eq!(
            read(&db, A).as_ref(),
            Some(&saved_a),
            "cycle {cycle}: table a after checkpoint"
        );
    }
    drop(db);
    let mut db = builder().open(dir.path().join("db")).unwrap();
    assert!(db.check_integrity().unwrap());
    assert_eq!(read(&db, A).as_ref(), Some(&saved_a), "after reopen");
    assert_eq!(read(&db, B).as_ref(), Some(&saved_b), "after reopen");
}

fn file_len(dir: &tempfile::TempDir) -> u64 {
    std::fs::metadata(dir.path().join("db")).unwrap().len()
}

/// Pages an ephemeral savepoint pinned are reused once it is dropped: the
/// file stops growing across cycles of (savepoint, overwrite everything,
/// drop).
#[test]
fn a_dropped_ephemeral_savepoints_pages_are_reused() {
    let dir = tempfile::tempdir().unwrap();
    let db = builder().create(dir.path().join("db")).unwrap();
    write(&db, A, 0..3000, 0, false);
    db.checkpoint().unwrap();
    let mut sizes = Vec::new();
    for cycle in 1..=8u64 {
        let txn = db.begin_write().unwrap();
        let sp = txn.ephemeral_savepoint().unwrap();
        txn.abort().unwrap();
        for round in 0..3 {
            write(&db, A, 0..3000, cycle * 10 + round, false);
            db.checkpoint().unwrap();
        }
        drop(sp);
        for round in 3..5 {
            write(&db, A, 0..3000, cycle * 10 + round, false);
            db.checkpoint().unwrap();
        }
        sizes.push(file_len(&dir));
    }
    let late = sizes[7];
    let early = sizes[2];
    assert!(late <= early + early / 4, "file keeps growing: {sizes:?}");
}
