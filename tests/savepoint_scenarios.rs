//! Persistent savepoints as pinned durable commits: several
//! savepoints at once over ordinary, custom-order and chunked multimap
//! tables, deleted in various orders across flushes and reopens; creation
//! after `Durability::None` and pipelined commits, and beside an old read
//! snapshot; deletion with `commit_pipelined` then compaction; stats;
//! read-only opens; integrity checks.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::mixed::{A, CI, LM, current, restored};
use sluicedb::{
    Builder, Database, Durability, ReadOnlyDatabase, ReadableDatabase, ReadableTable, ReadableTableMetadata,
};

fn lkey(i: u64) -> Vec<u8> {
    let mut k = vec![b'L'; 90];
    k[89] = b'0' + (i % 10) as u8;
    k
}

/// Round `r` of changes: overwrite, delete, grow the chunked multimap,
/// custom-order keys in other spellings.
fn change(db: &Database, r: u64, durability: Durability) {
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(durability).unwrap();
    {
        let mut a = txn.open_table(A).unwrap();
        for k in 0..300 {
            if (k + r).is_multiple_of(5) {
                a.remove(k).unwrap();
            } else {
                a.insert(k, vec![r as u8; 100 + (k as usize % 700)].as_slice()).unwrap();
            }
        }
        let mut ci = txn.open_table(CI).unwrap();
        for k in 0..40u64 {
            let name = format!("Key{k}");
            let spelled = if r.is_multiple_of(2) {
                name.to_uppercase()
            } else {
                name.to_lowercase()
            };
            ci.insert(spelled.as_str(), r * 100 + k).unwrap();
        }
        let mut lm = txn.open_multimap_table(LM).unwrap();
        for i in 0..400u64 {
            let v = (i * 7 + r * 13) % 1000;
            if (i + r).is_multiple_of(3) {
                lm.remove(lkey(i).as_slice(), v).unwrap();
            } else {
                lm.insert(lkey(i).as_slice(), v).unwrap();
            }
        }
        if r % 4 == 3 {
            lm.remove_all(lkey(r).as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
}

fn savepoint(db: &Database) -> u64 {
    let txn = db.begin_write().unwrap();
    let id = txn.persistent_savepoint().unwrap();
    txn.commit().unwrap();
    id
}

fn stats_ok(db: &Database) -> u64 {
    let txn = db.begin_write().unwrap();
    let s = txn.stats().unwrap();
    txn.abort().unwrap();
    s.allocated_pages()
}

#[test]
fn several_savepoints_restore_exactly_and_delete_in_any_order() {
    for order in [[0usize, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut db = Database::create(&path).unwrap();
        let mut saved = Vec::new();
        for r in 0..4u64 {
            change(
                &db,
                r,
                if r % 2 == 0 {
                    Durability::None
                } else {
                    Durability::Immediate
                },
            );
            let want = current(&db);
            let id = savepoint(&db);
            saved.push((id, want));
            // more changes, flushes and reopens after each savepoint
            change(&db, r + 10, Durability::Immediate);
            if r % 2 == 1 {
                db.checkpoint().unwrap();
            }
            if r == 2 {
                drop(db);
                db = Database::open(&path).unwrap();
            }
            stats_ok(&db);
        }
        for (id, want) in &saved {
            assert_eq!(
                &restored(&db, *id),
                want,
                "order {order:?}: restore of {id} before deletions"
            );
        }
        let mut alive: BTreeSet<usize> = (0..4).collect();
        for (step, &which) in order.iter().enumerate() {
            let txn = db.begin_write().unwrap();
            assert!(txn.delete_persistent_savepoint(saved[which].0).unwrap());
            txn.commit().unwrap();
            alive.remove(&which);
            change(&db, 100 + step as u64, Durability::Immediate);
            db.checkpoint().unwrap();
            if step % 2 == 0 {
                drop(db);
                db = Database::builder()
                    .set_check_integrity_on_open(true)
                    .open(&path)
                    .unwrap();
            }
            assert!(db.check_integrity().unwrap());
            stats_ok(&db);
            for &i in &alive {
                let (id, want) = &saved[i];
                assert_eq!(
                    &restored(&db, *id),
                    want,
                    "order {order:?} step {step}: restore of {id}"
                );
            }
        }
        assert!(db.compact().is_ok());
        assert!(db.check_integrity().unwrap());
    }
}

/// Restoring the oldest savepoint deletes the newer ones; their pages come
/// back; the remaining one still restores exactly after a reopen.
#[test]
fn restore_oldest_deletes_newer_then_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path).unwrap();
    let mut saved = Vec::new();
    for r in 0..3u64 {
        change(&db, r, Durability::Immediate);
        let want = current(&db);
        saved.push((savepoint(&db), want));
    }
    change(&db, 50, Durability::Immediate);
    {
        let mut txn = db.begin_write().unwrap();
        let sp = txn.get_persistent_savepoint(saved[0].0).unwrap();
        txn.restore_savepoint(&sp).unwrap();
        txn.commit().unwrap();
    }
    assert_eq!(current(&db), saved[0].1);
    let txn = db.begin_write().unwrap();
    let listed: Vec<u64> = txn.list_persistent_savepoints().unwrap().collect();
    txn.abort().unwrap();
    assert_eq!(listed, vec![saved[0].0]);
    drop(db);
    let mut db = Database::builder()
        .set_check_integrity_on_open(true)
        .open(&path)
        .unwrap();
    assert_eq!(current(&db), saved[0].1);
    change(&db, 60, Durability::Immediate);
    db.checkpoint().unwrap();
    assert_eq!(restored(&db, saved[0].0), saved[0].1);
    assert!(db.check_integrity().unwrap());
}

/// A savepoint right after `Durability::None` commits and pipelined ones
/// (big enough to be inserted by the inserter thread, and not waited for).
#[test]
fn savepoint_after_unsynced_and_pipelined_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path).unwrap();
    change(&db, 0, Durability::None);
    let mut pendings = Vec::new();
    for r in 0..3u64 {
        let txn = db.begin_write().unwrap();
        {
            let mut a = txn.open_table(A).unwrap();
            for k in 0..3000u64 {
                a.insert(k + 1000 * r, [r as u8; 20].as_slice()).unwrap();
            }
        }
        pendings.push(txn.commit_pipelined().unwrap());
    }
    let want = current(&db);
    let id = savepoint(&db);
    drop(pendings);
    change(&db, 1, Durability::None);
    let txn = db.begin_write().unwrap();
    {
        let mut a = txn.open_table(A).unwrap();
        for k in 0..5000u64 {
            a.insert(k, [9u8; 30].as_slice()).unwrap();
        }
    }
    let _p = txn.commit_pipelined().unwrap();
    // a second savepoint right after a pipelined commit
    let want2 = current(&db);
    let id2 = savepoint(&db);
    assert_eq!(restored(&db, id), want);
    assert_eq!(restored(&db, id2), want2);
    drop(db);
    let db = Database::open(&path).unwrap();
    assert_eq!(restored(&db, id), want);
    assert_eq!(restored(&db, id2), want2);
}

/// Created while a read transaction holds a snapshot older than the
/// savepoint's state; the reader's view never changes while the savepoint
/// is made, its pages rewritten, and deleted.
#[test]
fn savepoint_beside_an_old_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path).unwrap();
    change(&db, 0, Durability::Immediate);
    db.checkpoint().unwrap();
    let old = current(&db);
    let reader = db.begin_read().unwrap();
    let read_a = |r: &sluicedb::ReadTransaction| -> BTreeMap<u64, Vec<u8>> {
        let t = r.open_table(A).unwrap();
        t.iter()
            .unwrap()
            .map(|e| e.unwrap())
            .map(|(k, v)| (k.value(), v.value().to_vec()))
            .collect()
    };
    change(&db, 1, Durability::Immediate);
    db.checkpoint().unwrap();
    let want = current(&db);
    let id = savepoint(&db);
    for r in 2..6 {
        change(&db, r, Durability::Immediate);
        db.checkpoint().unwrap();
        assert_eq!(read_a(&reader), old.a, "the old reader's view after round {r}");
    }
    assert_eq!(restored(&db, id), want);
    let txn = db.begin_write().unwrap();
    txn.delete_persistent_savepoint(id).unwrap();
    txn.commit().unwrap();
    for r in 6..9 {
        change(&db, r, Durability::Immediate);
        db.checkpoint().unwrap();
        assert_eq!(read_a(&reader), old.a, "the old reader's view after round {r}");
    }
    drop(reader);
    let mut db = db;
    assert!(db.check_integrity().unwrap());
}

/// A deletion committed with `commit_pipelined` leaves an orphan pin; a
/// compaction drops it and gives the pages back; the read-only open of a
/// file with an orphan pin (and with a live one) reads the right data.
#[test]
fn pipelined_deletion_then_compaction_and_read_only_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path).unwrap();
    change(&db, 0, Durability::Immediate);
    let id_keep = savepoint(&db);
    let kept = restored(&db, id_keep);
    change(&db, 1, Durability::Immediate);
    let id = savepoint(&db);
    for r in 2..5 {
        change(&db, r, Durability::Immediate);
    }
    db.checkpoint().unwrap();
    let before = stats_ok(&db);
    let txn = db.begin_write().unwrap();
    txn.delete_persistent_savepoint(id).unwrap();
    let pending = txn.commit_pipelined().unwrap();
    drop(pending);
    let now = current(&db);
    // read-only while the orphan pin exists (the file is held by `db`: drop it first)
    db.checkpoint().unwrap();
    drop(db);
    {
        let ro: ReadOnlyDatabase = Builder::new().open_read_only(&path).unwrap();
        let read = ro.begin_read().unwrap();
        let t = read.open_table(A).unwrap();
        let a: BTreeMap<u64, Vec<u8>> = t
            .iter()
            .unwrap()
            .map(|e| e.unwrap())
            .map(|(k, v)| (k.value(), v.value().to_vec()))
            .collect();
        assert_eq!(a, now.a);
        let lm = read.open_multimap_table(LM).unwrap();
        assert_eq!(lm.len().unwrap(), now.lm_len);
    }
    let mut db = Database::open(&path).unwrap();
    // the deleted savepoint is gone, the kept one restores exactly
    let txn = db.begin_write().unwrap();
    let listed: Vec<u64> = txn.list_persistent_savepoints().unwrap().collect();
    txn.abort().unwrap();
    assert_eq!(listed, vec![id_keep]);
    assert_eq!(restored(&db, id_keep), kept);
    let after = stats_ok(&db);
    assert!(
        after <= before,
        "allocated pages {after} after deleting a savepoint, {before} before"
    );
    // deleting the last one with commit_pipelined, then compact at once
    let txn = db.begin_write().unwrap();
    txn.delete_persistent_savepoint(id_keep).unwrap();
    let pending = txn.commit_pipelined().unwrap();
    // Readers (and compaction's check) see a pipelined commit once durable.
    pending.wait().unwrap();
    let len0 = std::fs::metadata(&path).unwrap().len();
    db.compact().unwrap();
    assert!(db.check_integrity().unwrap());
    let len1 = std::fs::metadata(&path).unwrap().len();
    assert!(len1 <= len0, "{len1} > {len0}");
    assert_eq!(current(&db), now);
    drop(db);
    let db = Database::builder()
        .set_check_integrity_on_open(true)
        .open(&path)
        .unwrap();
    assert_eq!(current(&db), now);
}

/// Stats in the very transaction that creates, and deletes, savepoints,
/// and with everything deleted but the savepoint's pages.
#[test]
fn stats_with_pins_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    change(&db, 0, Durability::Immediate);
    let txn = db.begin_write().unwrap();
    let id = txn.persistent_savepoint().unwrap();
    let _ = txn.stats().unwrap().allocated_pages();
    let id2 = txn.persistent_savepoint().unwrap();
    let _ = txn.stats().unwrap().allocated_pages();
    assert!(txn.delete_persistent_savepoint(id2).unwrap());
    let _ = txn.stats().unwrap().allocated_pages();
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    txn.delete_table(A).unwrap();
    txn.delete_table(CI).unwrap();
    txn.delete_multimap_table(LM).unwrap();
    let s = txn.stats().unwrap();
    assert!(s.allocated_pages() > 0, "the savepoint's pages count");
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    let txn = db.begin_write().unwrap();
    let s = txn.stats().unwrap();
    assert!(s.allocated_pages() > 10, "pinned pages count: {}", s.allocated_pages());
    assert!(txn.delete_persistent_savepoint(id).unwrap());
    let _ = txn.stats().unwrap();
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    let s = txn.stats().unwrap();
    assert!(s.allocated_pages() < 10, "after deletion: {}", s.allocated_pages());
    txn.abort().unwrap();
}
