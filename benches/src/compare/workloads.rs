//! The workloads of BRIEF §3, each run on every engine in turn (interleaved:
//! one workload on all engines, then the next), on the same data.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::engines::{Engine, Kv};
use crate::{KEY_LEN, Rng, key, value};

/// One engine's result on one workload.
#[derive(Clone, Debug, Serialize)]
pub struct Measurement {
    pub engine: String,
    /// Operations per second, or bytes, or milliseconds (see the row's unit).
    pub value: f64,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
}

/// One row of the report.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub workload: String,
    pub description: String,
    /// "ops/s" (higher is better), "bytes" or "ms" (lower is better), or
    /// "%" (a share, not ranked: no ratio between engines).
    pub unit: String,
    pub results: Vec<Measurement>,
    /// The physical limit, where one exists: (what, value).
    pub limit: Option<(String, f64)>,
}

impl Row {
    pub fn higher_is_better(&self) -> bool {
        self.unit == "ops/s"
    }

    /// Whether a ratio between two engines' values means anything: not for
    /// shares, whose better value depends on what the share pays for.
    pub fn ranked(&self) -> bool {
        self.unit != "%"
    }
}

/// The run's parameters.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub keys: u64,
    pub timed: Duration,
    pub batch: usize,
}

pub fn kv(i: u64) -> Kv {
    (key(i), value(i))
}

fn percentiles(mut lat: Vec<u32>) -> (Option<f64>, Option<f64>) {
    if lat.is_empty() {
        return (None, None);
    }
    lat.sort_unstable();
    let at = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize] as f64;
    (Some(at(0.50)), Some(at(0.99)))
}

fn measurement(engine: &str, value: f64, latencies: Vec<u32>) -> Measurement {
    let (p50_us, p99_us) = percentiles(latencies);
    Measurement {
        engine: engine.to_string(),
        value,
        p50_us,
        p99_us,
    }
}

/// Loads keys `0..plan.keys` in random order, `plan.batch` per durable commit.
pub fn load(name: &str, engine: &dyn Engine, plan: Plan, progress: &indicatif::ProgressBar) -> Measurement {
    let start = Instant::now();
    let mut latencies = Vec::new();
    let mut batch = Vec::with_capacity(plan.batch);
    for i in 0..plan.keys {
        batch.push(kv(i));
        if batch.len() == plan.batch || i + 1 == plan.keys {
            let t = Instant::now();
            engine.write(&batch, true);
            latencies.push(t.elapsed().as_micros() as u32);
            progress.inc(batch.len() as u64);
            batch.clear();
        }
    }
    measurement(name, plan.keys as f64 / start.elapsed().as_secs_f64(), latencies)
}

/// Keys a "memtable populated" row rewrites first: about what one default
/// write buffer holds (sluicedb's and RocksDB's are 64 MiB, some 290K of
/// these entries), so the row reads through a memtable a steady writer
/// would leave, whatever time the rows before it gave background flushes
/// (sluicedb checkpoints after 30 s without one).
const REPOPULATE_KEYS: u64 = 200_000;

/// Untimed: rewrites the most recently loaded keys (same values) in durable
/// batches, so an LSM engine's memtable holds them when a read row starts.
/// The B-trees write the same pages again, which their reads do not see.
/// Logs what the engine's write buffer then holds (named `name`): how full
/// it is when the row starts moves the row's number.
pub fn repopulate(name: &str, engine: &dyn Engine, plan: Plan) {
    let first = plan.keys.saturating_sub(REPOPULATE_KEYS);
    let keys: Vec<u64> = (first..plan.keys).collect();
    for chunk in keys.chunks(plan.batch) {
        let batch: Vec<Kv> = chunk.iter().map(|&i| kv(i)).collect();
        engine.write(&batch, true);
    }
    log_write_buffer(name, engine, "after the rewrite");
}

/// Logs what `engine`'s write buffer holds and what its background work has
/// done so far (`Engine::write_buffer_note`), `when` saying at which point.
pub fn log_write_buffer(name: &str, engine: &dyn Engine, when: &str) {
    if let Some(note) = engine.write_buffer_note() {
        println!("  {name} {when}: {note}");
    }
}

/// Single-key durable commits from `threads` threads for the timed duration.
pub fn commits(
    name: &str,
    engine: &Arc<dyn Engine>,
    plan: Plan,
    threads: u64,
    durable: bool,
    base: u64,
) -> Measurement {
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let mut i = 0u64;
                while start.elapsed() < plan.timed {
                    let kv = kv(base + t * (1 << 32) + i);
                    let began = Instant::now();
                    engine.write(std::slice::from_ref(&kv), durable);
                    latencies.push(began.elapsed().as_micros() as u32);
                    i += 1;
                }
                latencies
            })
        })
        .collect();
    let latencies: Vec<u32> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let n = latencies.len() as f64;
    measurement(name, n / start.elapsed().as_secs_f64(), latencies)
}

/// Single-key pipelined commits from one thread; engines without them run
/// their best durable configuration (one durable commit at a time).
pub fn pipelined(name: &str, engine: &Arc<dyn Engine>, plan: Plan, base: u64) -> Measurement {
    let start = Instant::now();
    let mut n = 0u64;
    let mut last = None;
    let mut latencies = Vec::new();
    while start.elapsed() < plan.timed {
        let kv = kv(base + n);
        let began = Instant::now();
        match engine.write_pipelined(&kv) {
            Some(wait) => last = Some(wait),
            None => engine.write(std::slice::from_ref(&kv), true),
        }
        latencies.push(began.elapsed().as_micros() as u32);
        n += 1;
    }
    // Everything committed is durable before the clock stops.
    if let Some(wait) = last {
        wait();
    }
    measurement(name, n as f64 / start.elapsed().as_secs_f64(), latencies)
}

/// Reader threads of the many-readers rows: well above the cores of the
/// machines this runs on (2 here), as a server with a thread per request
/// has; every engine reads through a handle per thread, as from 1 or 2.
pub const MANY_READERS: u64 = 32;

/// Random point reads of loaded keys from `threads` threads.
pub fn reads(name: &str, engine: &Arc<dyn Engine>, plan: Plan, threads: u64) -> Measurement {
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                let reader = engine.reader();
                let mut rng = Rng::new(1000 + t);
                let mut n = 0u64;
                while start.elapsed() < plan.timed {
                    for _ in 0..256 {
                        assert!(reader.get(&key(rng.next_u64() % plan.keys)), "a loaded key is missing");
                    }
                    n += 256;
                }
                n
            })
        })
        .collect();
    let n: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    measurement(name, n as f64 / start.elapsed().as_secs_f64(), Vec::new())
}

/// Range scans: a seek to a random key and ten entries.
pub fn scans(name: &str, engine: &Arc<dyn Engine>, plan: Plan) -> Measurement {
    let reader = engine.reader();
    let mut rng = Rng::new(77);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < plan.timed {
        for _ in 0..64 {
            std::hint::black_box(reader.scan(&key(rng.next_u64() % plan.keys), 11));
        }
        n += 64;
    }
    measurement(name, n as f64 / start.elapsed().as_secs_f64(), Vec::new())
}

/// One full scan; entries per second.
pub fn full_scan(name: &str, engine: &Arc<dyn Engine>, plan: Plan) -> Measurement {
    let reader = engine.reader();
    let start = Instant::now();
    let n = reader.full_scan();
    assert!(n as u64 >= plan.keys / 2, "full scan saw {n} entries");
    measurement(name, n as f64 / start.elapsed().as_secs_f64(), Vec::new())
}

/// Random reads from one thread while another commits durably.
pub fn reads_while_writing(name: &str, engine: &Arc<dyn Engine>, plan: Plan, base: u64) -> Measurement {
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (engine, stop) = (engine.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                engine.write(std::slice::from_ref(&kv(base + i)), true);
                i += 1;
            }
        })
    };
    let reading = reads(name, engine, plan, 1);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    reading
}

/// Overwrites a tenth of the keys (random), `plan.batch` per durable commit.
pub fn overwrite(name: &str, engine: &Arc<dyn Engine>, plan: Plan) -> Measurement {
    overwrite_with(name, engine, plan, 5, false)
}

/// [`overwrite`] of another random tenth of the keys, through the engine's
/// blind write (`Engine::write_blind`).
pub fn overwrite_blind(name: &str, engine: &Arc<dyn Engine>, plan: Plan) -> Measurement {
    overwrite_with(name, engine, plan, 6, true)
}

fn overwrite_with(name: &str, engine: &Arc<dyn Engine>, plan: Plan, seed: u64, blind: bool) -> Measurement {
    let mut rng = Rng::new(seed);
    let n = (plan.keys / 10).max(plan.batch as u64);
    let start = Instant::now();
    let mut batch = Vec::with_capacity(plan.batch);
    for i in 0..n {
        let k = rng.next_u64() % plan.keys;
        let mut entry = kv(k);
        entry.1[0] ^= 0xFF;
        batch.push(entry);
        if batch.len() == plan.batch || i + 1 == n {
            if blind {
                engine.write_blind(&batch, true);
            } else {
                engine.write(&batch, true);
            }
            batch.clear();
        }
    }
    measurement(name, n as f64 / start.elapsed().as_secs_f64(), Vec::new())
}

/// Removes a tenth of the keys, `plan.batch` per durable commit.
pub fn removals(name: &str, engine: &Arc<dyn Engine>, plan: Plan) -> Measurement {
    let n = (plan.keys / 10).max(1);
    let start = Instant::now();
    let keys: Vec<[u8; KEY_LEN]> = (0..n).map(|i| key(i * 10 % plan.keys)).collect();
    for chunk in keys.chunks(plan.batch) {
        engine.remove(chunk);
    }
    measurement(name, n as f64 / start.elapsed().as_secs_f64(), Vec::new())
}

/// The peak-RSS row's scenario, as a new user would write it: the data set
/// loaded in one transaction (generated as it goes, so the input is not held
/// in memory), then 10% of the keys overwritten in durable batches, one
/// random read per key, and 10% of the keys removed in durable batches.
/// Run alone in a child process, which reports its `VmHWM` after this.
pub fn rss_scenario(name: &str, engine: &Arc<dyn Engine>, plan: Plan) {
    engine.bulk_load(&mut (0..plan.keys).map(kv));
    overwrite(name, engine, plan);
    {
        let reader = engine.reader();
        let mut rng = Rng::new(2000);
        for _ in 0..plan.keys {
            assert!(
                reader.get(&key(rng.next_u64() % plan.keys)),
                "{name}: a loaded key is missing"
            );
        }
    }
    removals(name, engine, plan);
}

/// The floor of in-memory point reads: a `BTreeMap` of the same data.
pub fn btreemap_reads(plan: Plan) -> f64 {
    let map: std::collections::BTreeMap<[u8; KEY_LEN], [u8; crate::VALUE_LEN]> = (0..plan.keys).map(kv).collect();
    let mut rng = Rng::new(1000);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < plan.timed {
        for _ in 0..256 {
            std::hint::black_box(map.get(&key(rng.next_u64() % plan.keys)));
        }
        n += 256;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

// --- One-transaction rows ---------------------------------------------------

/// The key's bucket of ten: its high 8 bytes are random, so each bucket
/// holds about a tenth of any set of keys.
pub fn bucket(key: &[u8]) -> u64 {
    let mut high = [0u8; 8];
    high.copy_from_slice(&key[..8]);
    u64::from_be_bytes(high) % 10
}

/// `retain`'s predicate: keeps 90% of keys.
pub fn keep_nine_tenths(key: &[u8]) -> bool {
    bucket(key) != 0
}

/// `extract_if`'s predicate: takes 10% of keys (of those `retain` kept).
pub fn take_one_tenth(key: &[u8]) -> bool {
    bucket(key) == 1
}

/// Loads `kvs` as one transaction (see `Engine::bulk_load`); keys/s.
pub fn one_txn_load(name: &str, engine: &dyn Engine, kvs: &[Kv]) -> Measurement {
    let start = Instant::now();
    engine.bulk_load(&mut kvs.iter().copied());
    measurement(name, kvs.len() as f64 / start.elapsed().as_secs_f64(), Vec::new())
}

/// `n` single-key durable commits from one thread, one after another.
pub fn commits_counted(name: &str, engine: &dyn Engine, n: u64, base: u64) -> Measurement {
    let start = Instant::now();
    let mut latencies = Vec::with_capacity(n as usize);
    for i in 0..n {
        let kv = kv(base + i);
        let began = Instant::now();
        engine.write(std::slice::from_ref(&kv), true);
        latencies.push(began.elapsed().as_micros() as u32);
    }
    measurement(name, n as f64 / start.elapsed().as_secs_f64(), latencies)
}

/// The time of one exact `len()`, in ms; checks it against `expected`.
pub fn len_ms(name: &str, engine: &dyn Engine, expected: u64) -> Measurement {
    let start = Instant::now();
    let len = engine.exact_len();
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(len, expected, "{name}: len() is wrong");
    measurement(name, ms, Vec::new())
}

/// Pops the first `n` entries in one transaction; pops/s.
pub fn pop_first(name: &str, engine: &dyn Engine, n: usize) -> Measurement {
    let start = Instant::now();
    let popped = engine.pop_first(n);
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(popped, n, "{name}: pop_first ran out of entries");
    measurement(name, popped as f64 / secs, Vec::new())
}

/// `retain` keeping 90%, in one transaction; entries visited per second.
pub fn retain(name: &str, engine: &dyn Engine, expected: u64) -> Measurement {
    let start = Instant::now();
    let visited = engine.retain(keep_nine_tenths);
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(visited as u64, expected, "{name}: retain visited the wrong entries");
    measurement(name, visited as f64 / secs, Vec::new())
}

/// `extract_if` taking 10%, in one transaction; entries visited per second.
pub fn extract_if(name: &str, engine: &dyn Engine, expected: u64) -> Measurement {
    let start = Instant::now();
    let (visited, taken) = engine.extract_if(take_one_tenth);
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(visited as u64, expected, "{name}: extract_if visited the wrong entries");
    assert!(taken > 0 || expected < 100, "{name}: extract_if took nothing");
    measurement(name, visited as f64 / secs, Vec::new())
}
