//! Tables of two key orders told apart by their metadata: `b"numeric"`
//! (little-endian u16 keys under [`numeric`](super::numeric)) or byte
//! order (big-endian u16 keys), for the engine-level model tests.

use sluicedb::btree::{Comparator, bytewise};
use sluicedb::engine::MergedRange;

/// The key order a table of metadata `meta` was created with.
pub fn order(meta: &[u8]) -> Comparator {
    if meta == b"numeric" { super::numeric } else { bytewise }
}

/// The metadata of a table the model knows (`known`), else either order
/// at random for a table about to be created.
pub fn meta_or_random(known: Option<&[u8]>, rng: &mut super::Rng) -> Vec<u8> {
    match known {
        Some(meta) => meta.to_vec(),
        None if rng.chance(50) => b"numeric".to_vec(),
        None => b"bytes".to_vec(),
    }
}

/// A byte-ordered table's keys are big-endian (byte order is numeric
/// order), a numeric table's little-endian (its comparator's).
pub fn enc(meta: &[u8], k: u16) -> Vec<u8> {
    if meta == b"numeric" {
        k.to_le_bytes().to_vec()
    } else {
        k.to_be_bytes().to_vec()
    }
}

pub fn dec(meta: &[u8], key: &[u8]) -> u16 {
    let b: [u8; 2] = key.try_into().expect("a two-byte key");
    if meta == b"numeric" {
        u16::from_le_bytes(b)
    } else {
        u16::from_be_bytes(b)
    }
}

/// A range's entries, keys decoded.
pub fn entries_of(meta: &[u8], range: MergedRange<'_>) -> Vec<(u16, Vec<u8>)> {
    range
        .map(|e| {
            let (k, v) = e.unwrap();
            (dec(meta, &k), v.to_vec())
        })
        .collect()
}
