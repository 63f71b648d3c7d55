//! Tree commits and flushes write a table in slices of 16K writes
//! (`engine::apply::APPLY_SLICE`): a slice that ends mid-leaf leaves the
//! next one to rewrite that leaf. Big enough transactions cross several
//! slice boundaries here, through a tree commit (new tree, then an existing
//! one with overwrites, removals and new keys) and through a flush, and the
//! table must read as a model says, pass the integrity check, and reopen
//! the same.

use std::collections::BTreeMap;

use sluicedb::{Builder, Database, ReadableDatabase, ReadableTableMetadata, TableDefinition};

const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");

/// A key spread over the key space, so that a commit's sorted slices fall
/// across the tree and not at its end.
fn key(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn value(i: u64, round: u8) -> Vec<u8> {
    let mut v = vec![round; 40 + (i % 50) as usize];
    v[..8].copy_from_slice(&i.to_le_bytes());
    v
}

/// One transaction: `puts` then `removes`, mirrored into `model`.
fn commit(db: &Database, model: &mut BTreeMap<u64, Vec<u8>>, puts: &[(u64, Vec<u8>)], removes: &[u64]) {
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(T).unwrap();
        for (k, v) in puts {
            table.insert(k, v.as_slice()).unwrap();
            model.insert(*k, v.clone());
        }
        for k in removes {
            let removed = table.remove(k).unwrap().map(|v| v.value().to_vec());
            assert_eq!(removed, model.remove(k), "remove of {k} returned another value");
        }
    }
    txn.commit().unwrap();
}

fn check(db: &mut Database, model: &BTreeMap<u64, Vec<u8>>, when: &str) {
    {
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(T).unwrap();
        assert_eq!(table.len().unwrap(), model.len() as u64, "{when}: len");
        let mut expected = model.iter();
        for entry in table.range::<u64>(..).unwrap() {
            let (k, v) = entry.unwrap();
            let (mk, mv) = expected
                .next()
                .unwrap_or_else(|| panic!("{when}: extra key {}", k.value()));
            assert_eq!((k.value(), v.value()), (*mk, mv.as_slice()), "{when}: entry");
        }
        assert!(expected.next().is_none(), "{when}: keys missing");
    }
    assert!(db.check_integrity().unwrap(), "{when}: integrity");
}

#[test]
fn tree_commits_and_flushes_across_slice_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sluice");
    let mut model = BTreeMap::new();
    {
        // Every commit of over 1 KiB goes through the tree.
        let mut db = Builder::new().set_tree_commit_size(1 << 10).create(&path).unwrap();
        let puts: Vec<_> = (0..40_000).map(|i| (key(i), value(i, 1))).collect();
        commit(&db, &mut model, &puts, &[]);
        check(&mut db, &model, "a new tree from 40K writes");

        let puts: Vec<_> = (0..60_000)
            .filter(|i| i % 3 == 0 || *i >= 40_000)
            .map(|i| (key(i), value(i, 2)))
            .collect();
        let removes: Vec<_> = (0..40_000).filter(|i| i % 5 == 1).map(key).collect();
        commit(&db, &mut model, &puts, &removes);
        check(&mut db, &model, "overwrites, removals and new keys in the tree");
    }
    {
        // Through the WAL and the memtable, then one flush: every key is
        // written in each of five commits, so the memtable holds five
        // versions of each, and wherever a slice ends, the older versions
        // of its last key must not reach the next slice.
        let mut db = Builder::new().open(&path).unwrap();
        check(&mut db, &model, "reopened");
        for round in 0..5u8 {
            let puts: Vec<_> = (60_000..80_000).map(|i| (key(i), value(i, 3 + round))).collect();
            let removes: Vec<_> = (0..2000).map(|j| key(u64::from(round) * 8000 + j * 4 + 2)).collect();
            commit(&db, &mut model, &puts, &removes);
        }
        db.checkpoint().unwrap();
        check(&mut db, &model, "a flush of 100K writes to 30K keys");
    }
    let mut db = Builder::new().open(&path).unwrap();
    check(&mut db, &model, "reopened after the flush");
}
