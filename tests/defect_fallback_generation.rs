//! After media damage to the newer commit slot, opening falls back to the
//! older slot. Its pages may have been reused by later commits that never
//! became durable, so the fallback must report corruption rather than serve
//! data no durable commit held. Each page is stamped with the transaction
//! that wrote it; a commit's tree holds no page stamped after it.

mod common;

use std::ops::Bound;
use std::sync::Arc;

use common::{Model, TREE, key, numeric, value};
use proptest::prelude::*;
use sluicedb::btree::{TreeStore, TreeStoreOptions, bytewise};
use sluicedb::io::{CrashBackend, MemoryBackend};

/// Opens `image`, runs the integrity check, and reads the whole tree.
fn outcome(image: Vec<u8>) -> Result<Model, String> {
    let store =
        TreeStore::open(MemoryBackend::from_bytes(image), TreeStoreOptions::default()).map_err(|e| e.to_string())?;
    let snapshot = store.snapshot();
    let mut model = Model::new();
    if let Some(info) = snapshot.tree(TREE).map_err(|e| e.to_string())? {
        for entry in snapshot
            .range(&info, numeric, Bound::Unbounded, Bound::Unbounded)
            .map_err(|e| e.to_string())?
        {
            let entry = entry.map_err(|e| e.to_string())?;
            model.insert(
                u16::from_le_bytes([entry.key()[0], entry.key()[1]]),
                entry.value().as_bytes().to_vec(),
            );
        }
    }
    store
        .check_integrity(&|name, _| Some(if name == TREE { numeric } else { bytewise }))
        .map_err(|e| e.to_string())?;
    Ok(model)
}

/// Which slot holds the newer commit: the one with the higher transaction id.
fn newer_slot(image: &[u8]) -> usize {
    let txn = |at: usize| u64::from_le_bytes(image[at..at + 8].try_into().unwrap());
    if txn(2048) > txn(1024) { 1 } else { 0 }
}

fn damage_slot(image: &mut [u8], slot: usize) {
    image[[1024, 2048][slot] + 20] ^= 0x40;
}

/// Commits `changes` to the tree; returns the model after it.
fn commit(store: &TreeStore, model: &mut Model, changes: &[(u16, Option<usize>)], durable: bool, tag: u64) {
    let mut w = store.writer().unwrap();
    let mut ops: Vec<([u8; 2], Option<Vec<u8>>)> = Vec::new();
    for &(k, v) in changes {
        let v = v.map(|len| value(tag * 1000 + u64::from(k), len));
        match &v {
            Some(v) => model.insert(k, v.clone()),
            None => model.remove(&k),
        };
        ops.push((key(k), v));
    }
    // One bulk apply: sorted by the numeric order, unique keys.
    ops.sort_by(|a, b| numeric(&a.0, &b.0));
    ops.dedup_by(|a, b| a.0 == b.0);
    let ops: Vec<(&[u8], Option<&[u8]>)> = ops.iter().map(|(k, v)| (&k[..], v.as_deref())).collect();
    w.apply(TREE, numeric, &ops).unwrap();
    if durable {
        w.commit(0).unwrap();
    } else {
        w.non_durable_commit().unwrap();
    }
}

#[test]
fn fallback_to_a_slot_whose_pages_were_reused_is_corruption() {
    let backend = Arc::new(CrashBackend::new());
    let store = TreeStore::create(backend.clone(), 1, TreeStoreOptions::default()).unwrap();
    let mut model = Model::new();
    // Same keys and value lengths each time (only the bytes differ), so each
    // rewrite lays the tree out the same way.
    let all = (0..600u16).map(|k| (k, Some(60))).collect::<Vec<_>>();
    commit(&store, &mut model, &all, true, 1);
    let older = model.clone();
    // Rewrites every leaf: the older commit's pages are retired, and free for
    // reuse once this commit is durable.
    commit(&store, &mut model, &all, true, 2);
    let newer = model.clone();
    // A non-durable commit reuses the older commit's pages, in the same
    // order: the older slot's root now leads to a well-formed tree of this
    // commit's values.
    commit(&store, &mut model, &all, false, 3);
    drop(store);
    // The non-durable writes reached the disk (a crash may keep them).
    let mut image = backend.current_image();
    assert!(
        outcome(image.clone()).unwrap() == newer,
        "the undamaged file opens at the newer commit"
    );
    let newer_index = newer_slot(&image);
    damage_slot(&mut image, newer_index);
    match outcome(image) {
        Err(e) => assert!(e.contains("corrupted") && e.contains("written by commit"), "{e}"),
        Ok(state) => assert!(state == older, "fallback served data of no durable commit"),
    }
}

/// One step of a random history: keys changed (value length, or removal)
/// and whether the commit is durable.
fn step() -> impl Strategy<Value = (Vec<(u16, Option<usize>)>, bool)> {
    (
        proptest::collection::vec((0u16..300, proptest::option::weighted(0.8, 1usize..200)), 1..120),
        any::<bool>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The class: whatever commits ran and whichever slot is damaged, the
    /// reopened file serves exactly some durable commit's content, or an
    /// error; never other data.
    #[test]
    fn damaged_slot_gives_a_durable_commit_or_an_error(
        steps in proptest::collection::vec(step(), 1..10),
        damage_newer in any::<bool>(),
    ) {
        let backend = Arc::new(CrashBackend::new());
        let store = TreeStore::create(backend.clone(), 1, TreeStoreOptions::default()).unwrap();
        let mut model = Model::new();
        let mut durable = vec![Model::new()];
        for (i, (changes, is_durable)) in steps.iter().enumerate() {
            let mut changes = changes.clone();
            changes.sort_by_key(|c| c.0);
            changes.dedup_by_key(|c| c.0);
            commit(&store, &mut model, &changes, *is_durable, i as u64 + 1);
            if *is_durable {
                durable.push(model.clone());
            }
        }
        drop(store);
        let mut image = backend.current_image();
        let newer = newer_slot(&image);
        damage_slot(&mut image, if damage_newer { newer } else { 1 - newer });
        if let Ok(state) = outcome(image) {
            prop_assert!(durable.contains(&state), "served data of no durable commit");
        }
    }
}
