//! Property test of compaction: random loads, overwrites and removes (inline
//! values and overflow runs, commits of both kinds, a snapshot sometimes held
//! across it), then compaction as `Engine::compact` runs it. The file never
//! grows, the tree equals a `BTreeMap` model, the integrity check passes,
//! a held snapshot still reads what it pinned, and the durable image reopens.

mod common;

use std::sync::Arc;

use common::{Model, TREE, check, key, numeric, read_all, value};
use proptest::prelude::*;
use sluicedb::btree::{TreeStore, TreeStoreOptions};
use sluicedb::io::MemoryBackend;

#[derive(Clone, Debug)]
enum Op {
    /// Puts keys `start..start + n`, values of `len` bytes (over 1 KiB
    /// becomes an overflow run).
    Put {
        start: u16,
        n: u16,
        len: u16,
        durable: bool,
    },
    /// Removes keys `start..start + n`.
    Remove {
        start: u16,
        n: u16,
        durable: bool,
    },
    /// A second tree is created or deleted (the catalog changes shape).
    OtherTree(bool),
    Compact {
        hold_snapshot: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u16..3000, 1u16..2000, prop_oneof![8 => 0u16..200, 1 => 1100u16..5000], any::<bool>())
            .prop_map(|(start, n, len, durable)| Op::Put { start, n, len, durable }),
        3 => (0u16..3000, 1u16..2000, any::<bool>()).prop_map(|(start, n, durable)| Op::Remove { start, n, durable }),
        1 => any::<bool>().prop_map(Op::OtherTree),
        2 => any::<bool>().prop_map(|hold_snapshot| Op::Compact { hold_snapshot }),
    ]
}

fn commit(store: &TreeStore, w: sluicedb::btree::TreeWriter<'_>, durable: bool) {
    if durable {
        w.commit(0).unwrap();
    } else {
        w.non_durable_commit().unwrap();
    }
    let _ = store;
}

fn run(ops: &[Op]) {
    let backend = Arc::new(MemoryBackend::new());
    let store = TreeStore::create(backend.clone(), 1, TreeStoreOptions::default()).unwrap();
    let mut model = Model::new();
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Put { start, n, len, durable } => {
                let keys: Vec<u16> = (*start..start.saturating_add(*n)).collect();
                let encoded: Vec<([u8; 2], Vec<u8>)> = keys
                    .iter()
                    .map(|&k| (key(k), value(u64::from(k) * 7 + i as u64, usize::from(*len))))
                    .collect();
                let batch: Vec<(&[u8], Option<&[u8]>)> = encoded.iter().map(|(k, v)| (&k[..], Some(&v[..]))).collect();
                let mut w = store.writer().unwrap();
                w.apply(TREE, numeric, &batch).unwrap();
                commit(&store, w, *durable);
                for (k, (_, v)) in keys.iter().zip(encoded) {
                    model.insert(*k, v);
                }
            }
            Op::Remove { start, n, durable } => {
                let keys: Vec<[u8; 2]> = (*start..start.saturating_add(*n)).map(key).collect();
                let batch: Vec<(&[u8], Option<&[u8]>)> = keys.iter().map(|k| (&k[..], None)).collect();
                let mut w = store.writer().unwrap();
                w.apply(TREE, numeric, &batch).unwrap();
                commit(&store, w, *durable);
                for k in *start..start.saturating_add(*n) {
                    model.remove(&k);
                }
            }
            Op::OtherTree(create) => {
                let mut w = store.writer().unwrap();
                if *create {
                    w.insert(b"other", sluicedb::btree::bytewise, b"k", &value(i as u64, 3000))
                        .unwrap();
                } else {
                    w.delete_tree(b"other").unwrap();
                }
                commit(&store, w, true);
            }
            Op::Compact { hold_snapshot } => {
                // `Engine::compact` checkpoints first: every commit durable.
                store.writer().unwrap().commit(0).unwrap();
                let held = hold_snapshot.then(|| store.snapshot());
                let (before, _) = store.page_counts();
                let live = check(&store).reachable_pages + 2;
                let mut w = store.writer().unwrap();
                w.relocate_all().unwrap();
                w.commit(0).unwrap();
                // The engine moves its state to the relocated tree here.
                store.writer().unwrap().commit(0).unwrap();
                let (after, _) = store.page_counts();
                assert!(
                    after <= before,
                    "op {i}: compaction grew the file from {before} to {after} pages"
                );
                if held.is_none() {
                    // On top of the live pages: the header, copies of the
                    // branches above moved pages, and room for the free
                    // lists of the two commits (the first lists about every
                    // page of the old file: 509 ids per 4 KiB page).
                    let near = live + live / 10 + 2 * before.div_ceil(509) + 8;
                    assert!(
                        after <= near,
                        "op {i}: {after} pages after compaction, live {live}, before {before}"
                    );
                }
                if let Some(snapshot) = &held {
                    // It was taken after the last commit, so it shows the model.
                    assert_eq!(read_all(snapshot), model, "op {i}: a held snapshot changed");
                }
                drop(held);
                check(&store);
                assert_eq!(
                    read_all(&store.snapshot()),
                    model,
                    "op {i}: compaction changed the content"
                );
            }
        }
    }
    // Make everything durable, then reopen the image.
    store.writer().unwrap().commit(0).unwrap();
    check(&store);
    let reopened = TreeStore::open(
        MemoryBackend::from_bytes(backend.to_bytes()),
        TreeStoreOptions::default(),
    )
    .unwrap();
    check(&reopened);
    assert_eq!(read_all(&reopened.snapshot()), model);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn compaction_never_grows_and_keeps_content(ops in proptest::collection::vec(op(), 1..24)) {
        run(&ops);
    }
}
