//! One hot path of sluicedb or redb, for counting its instructions under
//! callgrind. The data set is the comparison's (16-byte keys, 100-byte
//! values, random order, loaded in 1000-key durable commits); only the
//! function named `measured_*` is meant to be counted:
//!
//! ```text
//! valgrind --tool=callgrind --toggle-collect='*measured_*' \
//!     sluicedb-instructions ENGINE OP KEYS OPS [populated|rewritten=N]
//! ```
//! ENGINE is `sluicedb` or `redb`; OP is `reads` (point reads of loaded
//! keys), `scans` (seek + 10 next) or `tombstone-scans` (the scans right
//! after every tenth key was removed in 1000-key commits, as the comparison's
//! row); `populated` leaves sluicedb's recent writes in its memtable instead
//! of checkpointing them into the tree (the removals always stay there);
//! `rewritten=N` checkpoints all and then rewrites the last N keys, so that
//! the memtable holds them above the full tree, as the comparison's
//! "memtable populated" rows read it.
//! Counts are repeatable for the same binary and input, whatever else the
//! machine runs, which wall-clock benchmarks on a shared machine are not.

use std::hint::black_box;

const KEY_LEN: usize = 16;
const VALUE_LEN: usize = 100;
const SLUICE: sluicedb::TableDefinition<&[u8], &[u8]> = sluicedb::TableDefinition::new("t");
const REDB: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("t");

/// SplitMix64, as the comparison's generator.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The comparison's key `i` (benches/src/lib.rs).
fn key(i: u64) -> [u8; KEY_LEN] {
    let mut rng = Rng(i);
    ((rng.next_u64() as u128) << 64 | i as u128).to_be_bytes()
}

fn value(i: u64) -> [u8; VALUE_LEN] {
    let mut v = [0u8; VALUE_LEN];
    let mut rng = Rng(i ^ 0xABCD);
    for chunk in v.chunks_mut(8) {
        let bits = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(&bits[..chunk.len()]);
    }
    v
}

/// The two engines' read-only tables behind one shape.
trait Reads {
    fn get(&self, key: &[u8]) -> bool;
    fn scan(&self, from: &[u8], n: usize) -> usize;
}

/// Both read-only tables read as their users call them (redb 4's
/// `ReadOnlyTable::get` and `range` are inherent methods; sluicedb's too).
macro_rules! reads {
    ($engine:ident) => {
        impl Reads for $engine::ReadOnlyTable<&'static [u8], &'static [u8]> {
            fn get(&self, key: &[u8]) -> bool {
                self.get(key).unwrap().is_some()
            }

            fn scan(&self, from: &[u8], n: usize) -> usize {
                let mut seen = 0;
                for entry in self.range(from..).unwrap().take(n) {
                    black_box(entry.unwrap());
                    seen += 1;
                }
                seen
            }
        }
    };
}

reads!(sluicedb);
reads!(redb);

#[inline(never)]
fn measured_reads(table: &dyn Reads, keys: u64, ops: u64) -> u64 {
    let mut rng = Rng(1000);
    (0..ops)
        .map(|_| u64::from(table.get(&key(rng.next_u64() % keys))))
        .sum()
}

#[inline(never)]
fn measured_scans(table: &dyn Reads, keys: u64, ops: u64) -> u64 {
    let mut rng = Rng(77);
    (0..ops)
        .map(|_| table.scan(&key(rng.next_u64() % keys), 11) as u64)
        .sum()
}

fn run(table: &dyn Reads, op: &str, keys: u64, ops: u64) {
    let seen = match op {
        "reads" => measured_reads(table, keys, ops),
        "scans" | "tombstone-scans" => measured_scans(table, keys, ops),
        other => panic!("unknown op {other:?}: reads or scans"),
    };
    println!("{op}: {ops} ops, {seen} entries");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage =
        "usage: sluicedb-instructions sluicedb|redb reads|scans|tombstone-scans KEYS OPS [populated|rewritten=N]";
    let [_, engine, op, keys, ops, rest @ ..] = args.as_slice() else {
        panic!("{usage}");
    };
    let (keys, ops): (u64, u64) = (keys.parse().expect(usage), ops.parse().expect(usage));
    let populated = rest.first().is_some_and(|a| a == "populated");
    // `rewritten=N`: the tree holds every key and the memtable the last N
    // rewritten, as the comparison's "memtable populated" rows leave it.
    let rewritten: u64 = rest
        .first()
        .and_then(|a| a.strip_prefix("rewritten="))
        .map_or(0, |n| n.parse().expect(usage));
    let dir = tempfile::tempdir().unwrap();
    let batches = (0..keys).step_by(1000).map(|start| start..(start + 1000).min(keys));
    // The two engines share the redb API: one loader, spelled for each.
    macro_rules! load {
        ($engine:ident, $table:expr) => {{
            let db = $engine::Database::builder()
                .set_cache_size(1 << 30)
                .create(dir.path().join("db"))
                .unwrap();
            for batch in batches {
                let txn = db.begin_write().unwrap();
                let mut table = txn.open_table($table).unwrap();
                for i in batch {
                    table.insert(key(i).as_slice(), value(i).as_slice()).unwrap();
                }
                drop(table);
                txn.commit().unwrap();
            }
            db
        }};
    }
    // Every tenth key removed, in 1000-key commits (the removals row).
    macro_rules! remove_tenth {
        ($db:expr, $table:expr) => {{
            let removed: Vec<u64> = (0..keys).step_by(10).collect();
            for batch in removed.chunks(1000) {
                let txn = $db.begin_write().unwrap();
                let mut table = txn.open_table($table).unwrap();
                for &i in batch {
                    table.remove(key(i).as_slice()).unwrap();
                }
                drop(table);
                txn.commit().unwrap();
            }
        }};
    }
    let tombstones = op == "tombstone-scans";
    match engine.as_str() {
        "sluicedb" => {
            let db = load!(sluicedb, SLUICE);
            if !populated {
                db.checkpoint().unwrap();
            }
            let first = keys - rewritten.min(keys);
            for start in (first..keys).step_by(1000) {
                let txn = db.begin_write().unwrap();
                let mut table = txn.open_table(SLUICE).unwrap();
                for i in start..(start + 1000).min(keys) {
                    table.insert(key(i).as_slice(), value(i).as_slice()).unwrap();
                }
                drop(table);
                txn.commit().unwrap();
            }
            if tombstones {
                remove_tenth!(db, SLUICE);
            }
            let read = sluicedb::ReadableDatabase::begin_read(&db).unwrap();
            run(&read.open_table(SLUICE).unwrap(), op, keys, ops);
        }
        "redb" => {
            let db = load!(redb, REDB);
            if tombstones {
                remove_tenth!(db, REDB);
            }
            let read = redb::ReadableDatabase::begin_read(&db).unwrap();
            run(&read.open_table(REDB).unwrap(), op, keys, ops);
        }
        other => panic!("unknown engine {other:?}: {usage}"),
    }
}
