//! Gathered page writes (`PageStore`'s `Gathered`, the
//! `gathered_range` word) seen by readers on other threads. With a page
//! cache of zero bytes every read reaches the backend, so a reader of a
//! commit published without a sync (`non_durable_commit`) reads pages that
//! may still sit in the gathered list, written through the cache or past
//! it (`bypass_cache`). Every snapshot a reader takes must read exactly the
//! model of the commit it names; after each durable commit a crash image
//! (every unsynced write dropped, kept, or torn) must reopen to exactly the
//! durable model.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Model, Rng, TREE, check, key, numeric, read_all};
use parking_lot::Mutex;
use sluicedb::btree::{TreeStore, TreeStoreOptions};
use sluicedb::io::{CrashBackend, TearMode};

fn value_for(k: u16, v: u64) -> Vec<u8> {
    let len = 40 + (v as usize * 7 + k as usize) % 300;
    (0..len)
        .map(|i| (k as usize ^ v as usize).wrapping_add(i) as u8)
        .collect()
}

#[test]
fn readers_on_other_threads_see_each_commit_exactly() {
    let backend = Arc::new(CrashBackend::new());
    let options = TreeStoreOptions { cache_bytes: 0 };
    let store = Arc::new(TreeStore::create(backend.clone(), 1, options).unwrap());
    // The model of every published commit, by transaction id.
    let models: Arc<Mutex<HashMap<u64, Model>>> = Arc::default();
    models.lock().insert(store.snapshot().txn(), Model::new());
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for r in 0..2u64 {
        let (store, models, done) = (store.clone(), models.clone(), done.clone());
        readers.push(std::thread::spawn(move || {
            let mut checked = 0u64;
            while !done.load(Ordering::Acquire) {
                let snapshot = store.snapshot();
                let txn = snapshot.txn();
                let got = read_all(&snapshot);
                // The model is recorded once the commit returns: wait for it.
                let want = loop {
                    if let Some(m) = models.lock().get(&txn) {
                        break m.clone();
                    }
                    std::thread::yield_now();
                };
                assert_eq!(got, want, "reader {r}: snapshot of commit {txn} read other entries");
                checked += 1;
            }
            checked
        }));
    }
    let mut rng = Rng(0x5eed_1234_5678_9abc);
    let mut model = Model::new();
    let mut durable = Model::new();
    let mut version = 0u64;
    let mut seq = 0u64;
    for round in 0..80 {
        let mut writer = store.writer().unwrap();
        if rng.chance(40) {
            writer.bypass_cache();
        }
        if writer.tree(TREE).unwrap().is_none() {
            writer.create_tree(TREE, b"numeric").unwrap();
        }
        let base = rng.below(3000) as u16;
        let n = 1 + rng.below(400);
        for i in 0..n {
            // Mostly ascending runs (consecutive leaves), some scattered keys.
            let k = if rng.chance(80) {
                base.wrapping_add(i as u16) % 4000
            } else {
                rng.below(4000) as u16
            };
            if rng.chance(20) {
                writer.remove(TREE, numeric, &key(k)).unwrap();
                model.remove(&k);
            } else {
                version += 1;
                let v = value_for(k, version);
                writer.insert(TREE, numeric, &key(k), &v).unwrap();
                model.insert(k, v);
            }
        }
        let durable_commit = rng.chance(30);
        let txn = if durable_commit {
            seq += 1;
            let txn = {
                // Record first: readers may see the commit before it returns.
                let next = writer.next_txn();
                models.lock().insert(next, model.clone());
                writer.commit(seq).unwrap()
            };
            durable = model.clone();
            txn
        } else {
            let next = writer.next_txn();
            models.lock().insert(next, model.clone());
            writer.non_durable_commit().unwrap()
        };
        assert!(
            models.lock().contains_key(&txn),
            "round {round}: commit {txn} not the one recorded"
        );
        if durable_commit && round % 5 == 0 {
            for mode in [TearMode::DropAll, TearMode::KeepAll, TearMode::Random(round as u64)] {
                let image = CrashBackend::from_bytes(backend.crash_image(mode));
                let reopened = TreeStore::open(image, TreeStoreOptions { cache_bytes: 0 }).unwrap();
                assert_eq!(
                    read_all(&reopened.snapshot()),
                    durable,
                    "round {round}: crash image {mode:?}"
                );
                check(&reopened);
            }
        }
    }
    done.store(true, Ordering::Release);
    for reader in readers {
        let checked = reader.join().unwrap();
        assert!(checked > 0);
    }
    assert_eq!(read_all(&store.snapshot()), model);
}
