//! Benchmark support shared by the micro-benchmarks and the head-to-head
//! runner (`compare`): the BRIEF's data set (16-byte keys, 100-byte values,
//! random order from a fixed seed), and the comparison itself.

pub mod compare;
pub mod raft_mem;
pub mod raft_rocks;

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

/// The `--seconds N` argument of the benchmark binaries (default 3).
pub fn seconds_arg() -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0)
}

/// The physical limit of one durable commit without grouping: appends of
/// `record_len` bytes into a preallocated file, each followed by
/// `fdatasync`, for `duration`; returns commits per second.
pub fn raw_fsync_limit(dir: &std::path::Path, record_len: usize, duration: std::time::Duration) -> f64 {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(dir.join("raw.log"))
        .unwrap();
    // Preallocated, as the fastest log is: appends inside the file's size
    // leave `fdatasync` no size to record (about 40% faster on ext4 here).
    file.set_len(256 << 20).unwrap();
    let record = vec![7u8; record_len];
    let start = std::time::Instant::now();
    let mut n = 0u64;
    while start.elapsed() < duration {
        file.write_all_at(&record, n * record_len as u64).unwrap();
        file.sync_data().unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// A temporary directory on the current directory's file system (TMPDIR
/// chooses another), so benchmarks sync the disk users would use.
pub fn bench_dir() -> tempfile::TempDir {
    let base = std::env::var_os("TMPDIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| ".".into());
    tempfile::tempdir_in(base).unwrap()
}
