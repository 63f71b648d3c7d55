//! Opens arbitrary bytes as a database file: it must open, or fail with an
//! error, and every read of an opened file must return data or an error;
//! never a panic, a hang or undefined behaviour.

#![no_main]

use std::ops::Bound;

use libfuzzer_sys::fuzz_target;
use sluicedb::btree::{TreeStore, TreeStoreOptions, bytewise};
use sluicedb::io::MemoryBackend;

fuzz_target!(|data: &[u8]| {
    let Ok(store) = TreeStore::open(MemoryBackend::from_bytes(data.to_vec()), TreeStoreOptions::default()) else {
        return;
    };
    let _ = store.check_integrity(&|_, _| Some(bytewise));
    let snapshot = store.snapshot();
    let Ok(trees) = snapshot.list_trees() else { return };
    for (_, info) in trees.iter().take(4) {
        let Ok(iter) = snapshot.range(info, bytewise, Bound::Unbounded, Bound::Unbounded) else { continue };
        for entry in iter.take(10_000) {
            if entry.is_err() {
                break;
            }
        }
    }
    // A writer on a damaged file must fail cleanly too.
    if let Ok(mut writer) = store.writer() {
        let _ = writer.insert(b"t", bytewise, b"k", b"v");
        let _ = writer.commit(1);
    }
});
