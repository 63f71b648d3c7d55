//! A reader pinned on a root keeps reading it, unchanged, while later commits
//! rewrite and free its pages; the pages are reused only once it is gone.

mod common;

use common::{TREE, check, key, numeric, read_all, value};
use sluicedb::btree::{TreeStore, TreeStoreOptions};
use sluicedb::io::MemoryBackend;

#[test]
fn pinned_snapshots_survive_many_commits_and_pages_are_reused_after() {
    let store = TreeStore::create(MemoryBackend::new(), 1, TreeStoreOptions::default()).unwrap();
    let mut w = store.writer().unwrap();
    let batch: Vec<([u8; 2], Vec<u8>)> = (0..2000u16).map(|k| (key(k), value(k.into(), 100))).collect();
    let ops: Vec<(&[u8], Option<&[u8]>)> = batch.iter().map(|(k, v)| (&k[..], Some(&v[..]))).collect();
    w.apply(TREE, numeric, &ops).unwrap();
    w.commit(0).unwrap();

    let pinned = store.snapshot();
    let expected = read_all(&pinned);
    assert_eq!(expected.len(), 2000);

    // Rewrite every page many times, durably and not.
    for round in 0..20u64 {
        let mut w = store.writer().unwrap();
        let batch: Vec<([u8; 2], Vec<u8>)> = (0..2000u16).map(|k| (key(k), value(round, 100))).collect();
        let ops: Vec<(&[u8], Option<&[u8]>)> = batch.iter().map(|(k, v)| (&k[..], Some(&v[..]))).collect();
        w.apply(TREE, numeric, &ops).unwrap();
        if round % 2 == 0 {
            w.commit(0).unwrap()
        } else {
            w.non_durable_commit().unwrap()
        };
        assert_eq!(
            read_all(&pinned),
            expected,
            "round {round}: the pinned snapshot changed"
        );
    }
    let (pages_while_pinned, _) = store.page_counts();
    check(&store);
    drop(pinned);

    // With the reader gone, further rounds reuse pages instead of growing.
    for round in 0..20u64 {
        let mut w = store.writer().unwrap();
        let batch: Vec<([u8; 2], Vec<u8>)> = (0..2000u16).map(|k| (key(k), value(round + 100, 100))).collect();
        let ops: Vec<(&[u8], Option<&[u8]>)> = batch.iter().map(|(k, v)| (&k[..], Some(&v[..]))).collect();
        w.apply(TREE, numeric, &ops).unwrap();
        w.commit(0).unwrap();
    }
    let (pages_after, _) = store.page_counts();
    assert!(
        pages_after <= pages_while_pinned,
        "file grew from {pages_while_pinned} to {pages_after} pages"
    );
    check(&store);
}

#[test]
fn a_range_iterator_outlives_its_snapshot_handle() {
    let store = TreeStore::create(MemoryBackend::new(), 1, TreeStoreOptions::default()).unwrap();
    let mut w = store.writer().unwrap();
    for k in 0..1000u16 {
        w.insert(TREE, numeric, &key(k), &value(1, 50)).unwrap();
    }
    w.commit(0).unwrap();
    let snapshot = store.snapshot();
    let info = snapshot.tree(TREE).unwrap().unwrap();
    let iter = snapshot
        .range(&info, numeric, std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
        .unwrap();
    drop(snapshot);
    for round in 0..10u64 {
        let mut w = store.writer().unwrap();
        for k in 0..1000u16 {
            w.insert(TREE, numeric, &key(k), &value(round + 2, 50)).unwrap();
        }
        w.commit(0).unwrap();
    }
    let values: Vec<Vec<u8>> = iter.map(|e| e.unwrap().value().as_bytes().to_vec()).collect();
    assert_eq!(values.len(), 1000);
    assert!(
        values.iter().all(|v| *v == value(1, 50)),
        "the iterator saw later commits"
    );
}

#[test]
fn first_and_last_follow_the_comparator() {
    let store = TreeStore::create(MemoryBackend::new(), 1, TreeStoreOptions::default()).unwrap();
    let mut w = store.writer().unwrap();
    // Little-endian u16 keys: byte order would put 256 before 1.
    for k in [256u16, 1, 7, 1000] {
        w.insert(TREE, numeric, &key(k), b"v").unwrap();
    }
    w.commit(0).unwrap();
    let snap = store.snapshot();
    let info = snap.tree(TREE).unwrap().unwrap();
    assert_eq!(snap.first(&info, numeric).unwrap().unwrap().key(), key(1));
    assert_eq!(snap.last(&info, numeric).unwrap().unwrap().key(), key(1000));
    assert_eq!(info.len(), 4);
}
