//! Benchmark support shared by the micro-benchmarks and, later, the
//! head-to-head runner: the BRIEF's data set (16-byte keys, 100-byte values,
//! random order from a fixed seed).

/// Key length of the standard data set (RocksDB db_bench's default).
pub const KEY_LEN: usize = 16;
/// Value length of the standard data set (RocksDB db_bench's default).
pub const VALUE_LEN: usize = 100;

/// A deterministic generator (SplitMix64), so every engine sees the same data.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The key for index `i`: a 16-byte big-endian encoding of a scrambled `i`,
/// so keys are unique and arrive in random order.
pub fn key(i: u64) -> [u8; KEY_LEN] {
    let mut rng = Rng::new(i);
    ((rng.next_u64() as u128) << 64 | i as u128).to_be_bytes()
}

/// The value for index `i`.
pub fn value(i: u64) -> [u8; VALUE_LEN] {
    let mut v = [0u8; VALUE_LEN];
    let mut rng = Rng::new(i ^ 0xABCD);
    for chunk in v.chunks_mut(8) {
        let bits = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(&bits[..chunk.len()]);
    }
    v
}
