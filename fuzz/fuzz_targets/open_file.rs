//! Opens arbitrary bytes as a database file: it must open, or fail with an
//! error, and every read and commit on an opened file must return data or an
//! error; never a panic, a hang or undefined behaviour.
//!
//! Input: a file image as is, when it starts with `S` (the magic's first
//! byte, so the seed files are read this way). Otherwise the input drives the
//! numbers a checksum would hide from a byte-flipping fuzzer:
//!
//! ```text
//! offset  size  field
//!      0     1  flags: bit 0 = which commit slot to craft; bit 1 = also
//!               craft the header's version and page size; bit 2 = open
//!               through the engine (WAL, memtable) instead of the tree store;
//!               bit 3 = craft no slot: reseal every page after the header
//!               instead (below)
//!      1    48  the slot's six u64 fields (txn, checkpoint_seq, catalog
//!               root, catalog count, free-list head, page count)
//!     49     8  header: version u32, page size u32 (used with bit 1)
//!     57     -  the file image the fields are written into
//! ```
//!
//! The target writes the fields into the image and recomputes the slot's
//! (and header's) checksum, so every value reaches the code that uses it.
//! With bit 3 the image's slots stay as they are and each page after the
//! header gets its checksum recomputed: bytes flipped in a node page reach
//! the code that parses it, as a crafted file's would (this found a
//! catalog count that sized an allocation, and leaf keys out of order that
//! a flush asserted on).

#![no_main]

use std::ops::Bound;

use libfuzzer_sys::fuzz_target;
use sluicedb::btree::{TreeStore, TreeStoreOptions, bytewise};
use sluicedb::io::{MemLogDir, MemoryBackend};
use sluicedb::{Builder, ReadableDatabase, TableDefinition};
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

const SLOT_OFFSETS: [usize; 2] = [1024, 2048];
const PREFIX: usize = 1 + 48 + 8;
const TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("fuzz");

/// Writes the input's fields into its image; returns the image and whether
/// to open it through the engine.
fn craft(data: &[u8]) -> Option<(Vec<u8>, bool)> {
    if data.first() == Some(&b'S') {
        return Some((data.to_vec(), false));
    }
    let flags = *data.first()?;
    let fields = data.get(1..PREFIX)?;
    let mut image = data.get(PREFIX..)?.to_vec();
    if flags & 8 != 0 {
        reseal_pages(&mut image);
        return Some((image, flags & 4 != 0));
    }
    let slot = SLOT_OFFSETS[usize::from(flags & 1)];
    if image.len() < slot + 64 {
        image.resize(slot + 64, 0);
    }
    image[slot..slot + 48].copy_from_slice(&fields[..48]);
    image[slot + 48..slot + 56].fill(0);
    let sum = xxh3_64_with_seed(&image[slot..slot + 56], u64::from(flags & 1));
    image[slot + 56..slot + 64].copy_from_slice(&sum.to_le_bytes());
    if flags & 2 != 0 {
        image[8..16].copy_from_slice(&fields[48..56]);
        let sum = xxh3_64(&image[..32]);
        image[32..40].copy_from_slice(&sum.to_le_bytes());
    }
    Some((image, flags & 4 != 0))
}

/// Page size of every seed (the format's default).
const PAGE: usize = 4096;

/// Recomputes the checksum of every whole page after page 0: the page's
/// first eight bytes, xxh3 of the rest seeded with its page id.
fn reseal_pages(image: &mut [u8]) {
    for (id, page) in image.chunks_exact_mut(PAGE).enumerate().skip(1) {
        let sum = xxh3_64_with_seed(&page[8..], id as u64);
        page[..8].copy_from_slice(&sum.to_le_bytes());
    }
}

fn tree_store(image: Vec<u8>) {
    let Ok(store) = TreeStore::open(MemoryBackend::from_bytes(image), TreeStoreOptions::default()) else {
        return;
    };
    let _ = store.check_integrity(&|_, _| Some(bytewise));
    let snapshot = store.snapshot();
    if let Ok(trees) = snapshot.list_trees() {
        for (_, info) in trees.iter().take(4) {
            let Ok(iter) = snapshot.range(info, bytewise, Bound::Unbounded, Bound::Unbounded) else {
                continue;
            };
            for entry in iter.take(10_000) {
                if entry.is_err() {
                    break;
                }
            }
        }
    }
    // A writer on a damaged file must fail cleanly too, and so must the
    // commits after it (their transaction ids and page ids grow from the
    // slot's numbers).
    for round in 0..2u8 {
        let Ok(mut writer) = store.writer() else { return };
        let _ = writer.insert(b"t", bytewise, &[round], b"v");
        if writer.commit(u64::from(round)).is_err() {
            return;
        }
    }
    let _ = store.check_integrity(&|_, _| Some(bytewise));
}

fn engine(image: Vec<u8>) {
    let Ok(db) = Builder::new().create_with_backends(MemoryBackend::from_bytes(image), MemLogDir::new()) else {
        return;
    };
    for round in 0..2u64 {
        let Ok(txn) = db.begin_write() else { return };
        {
            let Ok(mut table) = txn.open_table(TABLE) else { return };
            if table.insert(round, &b"value"[..]).is_err() {
                return;
            }
        }
        if txn.commit().is_err() {
            return;
        }
    }
    // Commits that returned Ok are visible.
    let Ok(read) = db.begin_read() else { return };
    let Ok(table) = read.open_table(TABLE) else { return };
    if let Ok(value) = table.get(1) {
        assert!(value.is_some(), "an acknowledged commit is not visible");
    }
    let _ = db.checkpoint();
}

fuzz_target!(|data: &[u8]| {
    let Some((image, through_engine)) = craft(data) else {
        return;
    };
    if through_engine {
        engine(image);
    } else {
        tree_store(image);
    }
});
