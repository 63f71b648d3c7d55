//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound;

use sluicedb::btree::{RangeIter, Snapshot, TreeInfo, TreeStore, TreeWriter};

/// Keys are little-endian u16s ordered numerically: a comparator that
/// disagrees with byte order, so any place that forgets it shows up.
pub fn numeric(a: &[u8], b: &[u8]) -> Ordering {
    let n = |x: &[u8]| u16::from_le_bytes([x[0], x[1]]);
    n(a).cmp(&n(b))
}

pub fn key(k: u16) -> [u8; 2] {
    k.to_le_bytes()
}

/// The seeds a randomized test runs: `fixed`, then as many more as the
/// environment variable `var` asks for (`VAR=n`: n seeds spread from 1..=n).
pub fn seeds(fixed: &[u64], var: &str) -> Vec<u64> {
    let extra: u64 = std::env::var(var).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let more = (1..=extra).map(|seed| seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    fixed.iter().copied().chain(more).collect()
}

/// The model of a double-ended range: what it yields from either end, given
/// its entries in order.
#[derive(Clone)]
pub struct ModelRange<T> {
    entries: Vec<T>,
    lo: usize,
    hi: usize,
}

impl<T: Clone> ModelRange<T> {
    pub fn new(entries: Vec<T>) -> Self {
        let hi = entries.len();
        Self { entries, lo: 0, hi }
    }

    /// The next entry from the front (`forward`) or the back; `None` once
    /// the two ends meet, and ever after.
    pub fn step(&mut self, forward: bool) -> Option<T> {
        if self.lo == self.hi {
            return None;
        }
        if forward {
            self.lo += 1;
            Some(self.entries[self.lo - 1].clone())
        } else {
            self.hi -= 1;
            Some(self.entries[self.hi].clone())
        }
    }

    /// Whether the two ends have met.
    pub fn is_done(&self) -> bool {
        self.lo == self.hi
    }
}

/// SplitMix64's finalizer: a reproducible, well-spread key or value stream
/// from a counter.
pub fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A tiny deterministic generator (xorshift64) for randomized tests.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform enough below `n` (at least 1).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True about `pct` times in a hundred.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }

    /// True about once in `n` times.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

pub type Model = BTreeMap<u16, Vec<u8>>;

pub const TREE: &[u8] = b"numbers";

/// The whole tree as a snapshot sees it, checked against its reported length.
pub fn read_all(snapshot: &Snapshot) -> Model {
    let Some(info) = snapshot.tree(TREE).unwrap() else {
        return Model::new();
    };
    let model = collect(snapshot, &info, Bound::Unbounded, Bound::Unbounded);
    assert_eq!(model.len() as u64, info.len(), "tree length disagrees with its entries");
    model
}

pub fn collect(snapshot: &Snapshot, info: &TreeInfo, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> Model {
    to_model(snapshot.range(info, numeric, lo, hi).unwrap())
}

pub fn writer_read_all(writer: &TreeWriter<'_>) -> Model {
    to_model(writer.range(TREE, numeric, Bound::Unbounded, Bound::Unbounded).unwrap())
}

fn to_model(entries: RangeIter<'_>) -> Model {
    entries
        .map(|e| {
            let e = e.unwrap();
            (
                u16::from_le_bytes([e.key()[0], e.key()[1]]),
                e.value().as_bytes().to_vec(),
            )
        })
        .collect()
}

/// Runs the integrity check with the test comparator for every tree.
pub fn check(store: &TreeStore) -> sluicedb::btree::Report {
    store
        .check_integrity(&|name, _| {
            Some(if name == TREE {
                numeric
            } else {
                sluicedb::btree::bytewise
            })
        })
        .unwrap()
}

/// A value of `len` bytes derived from `seed`.
pub fn value(seed: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seed.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8)
        .collect()
}

pub mod bomb;
pub mod counted_rows;
pub mod engine;
pub mod failing;
pub mod faulty;
pub mod keys;
pub mod mixed;
pub mod multimap;
pub mod pages;
pub mod savepoints;
pub mod two_orders;
pub mod wal;

/// A crash-simulating backend as a user's redb-shaped backend
/// (`sluicedb::StorageBackend`, what `Builder::create_with_backend` takes).
#[derive(Debug)]
pub struct Crashing(pub std::sync::Arc<sluicedb::io::CrashBackend>);

impl sluicedb::StorageBackend for Crashing {
    fn len(&self) -> Result<u64, std::io::Error> {
        sluicedb::io::StorageBackend::len(&*self.0)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        sluicedb::io::StorageBackend::read(&*self.0, offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        sluicedb::io::StorageBackend::set_len(&*self.0, len)
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        sluicedb::io::StorageBackend::sync_data(&*self.0)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        sluicedb::io::StorageBackend::write(&*self.0, offset, data)
    }
}
