//! Crafting data files: a small checkpointed database's image, its pages
//! read by offset, and a page resealed after an edit (its checksum made to
//! match again), for tests that feed the engine pages no writer made.

use std::path::Path;

use sluicedb::{Database, TableDefinition};
use xxhash_rust::xxh3::xxh3_64_with_seed;

pub const NUMS: TableDefinition<u64, u64> = TableDefinition::new("nums");

pub const PAGE: usize = 4096;

/// A checkpointed database with 600 `u64 -> u64` entries; its bytes.
pub fn make(path: &Path) -> Vec<u8> {
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(NUMS).unwrap();
        for i in 0..600u64 {
            t.insert(i, i * 3).unwrap();
        }
    }
    txn.commit().unwrap();
    db.close().unwrap();
    std::fs::read(path).unwrap()
}

pub fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

pub fn u16_at(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap()) as usize
}

/// The newest commit slot's catalog root.
pub fn catalog_root(img: &[u8]) -> usize {
    let slot = [1024, 2048].into_iter().max_by_key(|&s| u64_at(img, s)).unwrap();
    u64_at(img, slot + 16) as usize
}

/// Makes page `p`'s checksum match its bytes again.
pub fn reseal(img: &mut [u8], p: usize) {
    let page = &mut img[p * PAGE..(p + 1) * PAGE];
    let sum = xxh3_64_with_seed(&page[8..], p as u64);
    page[..8].copy_from_slice(&sum.to_le_bytes());
}

/// Runs `f`, turning a panic into an `Err` naming it.
pub fn no_panic<T>(f: impl FnOnce() -> T + std::panic::UnwindSafe) -> Result<T, String> {
    std::panic::catch_unwind(f).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}
