//! Damaged files: bit flips in the header, the commit slots and the pages, a
//! truncated file, a zero-filled file and random bytes. Each gives a clear
//! error or falls back to the older commit; none panics, and no damage is
//! silent (a read either errors or returns exactly the committed data).

mod common;

use std::ops::Bound;
use std::sync::Arc;

use common::{Model, TREE, key, numeric, value};
use sluicedb::btree::{TreeStore, TreeStoreOptions, bytewise};
use sluicedb::io::{CrashBackend, MemoryBackend};

/// A file with two durable commits; returns its bytes and both models.
fn build() -> (Vec<u8>, Model, Model) {
    let backend = Arc::new(CrashBackend::new());
    let store = TreeStore::create(backend.clone(), 1, TreeStoreOptions::default()).unwrap();
    let mut model = Model::new();
    let mut w = store.writer().unwrap();
    for k in 0..400u16 {
        let v = value(k.into(), if k % 100 == 0 { 6000 } else { 80 });
        w.insert(TREE, numeric, &key(k), &v).unwrap();
        model.insert(k, v);
    }
    w.commit(0).unwrap();
    let older = model.clone();
    let mut w = store.writer().unwrap();
    for k in (0..400u16).step_by(3) {
        w.remove(TREE, numeric, &key(k)).unwrap();
        model.remove(&k);
    }
    w.commit(0).unwrap();
    (backend.durable_image(), older, model)
}

/// Opens `image`, checks it, and reads the tree; any error as a string.
fn outcome(image: Vec<u8>) -> Result<Model, String> {
    let store =
        TreeStore::open(MemoryBackend::from_bytes(image), TreeStoreOptions::default()).map_err(|e| e.to_string())?;
    store
        .check_integrity(&|name, _| Some(if name == TREE { numeric } else { bytewise }))
        .map_err(|e| e.to_string())?;
    let snapshot = store.snapshot();
    let Some(info) = snapshot.tree(TREE).map_err(|e| e.to_string())? else {
        return Ok(Model::new());
    };
    let mut model = Model::new();
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
    Ok(model)
}

fn flip(image: &[u8], bit: usize) -> Vec<u8> {
    let mut damaged = image.to_vec();
    damaged[bit / 8] ^= 1 << (bit % 8);
    damaged
}

#[test]
fn header_damage_is_a_clear_error() {
    let (image, _, _) = build();
    for bit in 0..40 * 8 {
        let err = outcome(flip(&image, bit)).expect_err("damaged header accepted");
        assert!(err.contains("corrupted"), "{err}");
    }
    let mut foreign = image.clone();
    foreign[..8].copy_from_slice(b"SQLite f");
    assert!(outcome(foreign).unwrap_err().contains("not a sluicedb database"));
}

#[test]
fn a_damaged_slot_falls_back_to_the_older_commit() {
    let (image, older, newer) = build();
    let mut results = Vec::new();
    for slot_offset in [1024usize, 2048] {
        for bit in [0, 77, 300, 511] {
            results.push(outcome(flip(&image, slot_offset * 8 + bit)).expect("one slot is enough"));
        }
    }
    assert!(results.iter().all(|m| *m == older || *m == newer));
    assert!(results.contains(&older), "damaging the newest slot must fall back");
    assert!(results.contains(&newer), "damaging the older slot must not matter");
    let mut both = flip(&image, 1024 * 8);
    both[2048] ^= 1;
    assert!(outcome(both).unwrap_err().contains("both commit slots"));
}

#[test]
fn page_damage_is_never_silent() {
    let (image, _, model) = build();
    let mut detected = 0;
    let mut seed = 0x1234_5678_u64;
    for _ in 0..400 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        // Any bit after the header page.
        let bit = 4096 * 8 + (seed >> 16) as usize % ((image.len() - 4096) * 8);
        match outcome(flip(&image, bit)) {
            Ok(state) => assert_eq!(state, model, "bit {bit}: damage changed data silently"),
            Err(e) => {
                assert!(e.contains("corrupted"), "bit {bit}: {e}");
                detected += 1;
            }
        }
    }
    assert!(detected > 100, "only {detected} of 400 flips hit live pages");
}

#[test]
fn truncated_zeroed_and_random_files_are_rejected() {
    let (image, _, model) = build();
    for len in [
        0,
        7,
        39,
        100,
        2000,
        4095,
        4096,
        5000,
        image.len() / 2,
        image.len() - 4096,
        image.len() - 1,
    ] {
        match outcome(image[..len].to_vec()) {
            Ok(state) => assert_eq!(state, model, "truncation to {len} changed data silently"),
            Err(e) => assert!(e.contains("corrupted"), "len {len}: {e}"),
        }
    }
    assert!(outcome(vec![0; image.len()]).is_err());
    let mut seed = 99u64;
    let random: Vec<u8> = (0..image.len())
        .map(|_| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            (seed >> 56) as u8
        })
        .collect();
    assert!(outcome(random).is_err());
}
