//! A hasher for maps keyed by table ids, on the commit path.
//!
//! The standard `HashMap` hashes with SipHash, a defence against keys an
//! attacker picks. Table ids are the engine's own (`seq << 20 | n`), and a
//! one-write commit looks ids up in three maps (the key orders, the
//! snapshot's trees, the memtable's counts): SipHash was about 100
//! instructions a lookup (callgrind).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by table id.
pub(crate) type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// Hashes `u64` keys with SplitMix64's finalizer (two multiplies and three
/// shifts): every bit of an id moves the low bits a table picks its bucket
/// by and the high bits it tags entries with. (A single multiply spread ids
/// that differ only above bit 20, as ids do, over less than half of 1024
/// buckets.)
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys use this hasher; any other input is still hashed.
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, id: u64) {
        let mut z = self.0 ^ id;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        self.0 = z ^ (z >> 31);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_differ_only_above_bit_20_spread_over_the_low_bits() {
        // Tables created first in their commits: `seq << 20`.
        let hash = |id: u64| {
            let mut h = IdHasher::default();
            h.write_u64(id);
            h.finish()
        };
        let buckets: std::collections::HashSet<u64> = (1..=1024u64).map(|seq| hash(seq << 20) & 1023).collect();
        assert!(buckets.len() > 600, "{} of 1024 buckets used", buckets.len());
        let mut map: IdMap<u64> = IdMap::default();
        for seq in 1..=1000u64 {
            map.insert(seq << 20, seq);
        }
        assert!((1..=1000u64).all(|seq| map[&(seq << 20)] == seq));
    }
}
