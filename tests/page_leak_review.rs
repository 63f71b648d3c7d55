//! Adversarial review of the page accounting of the copy-on-write tree:
//! pages that no commit reaches must become free again, so that a steady
//! workload settles at a bounded file size, crashes do not ratchet the file
//! up one at a time, deleted savepoints give their pages back, and
//! `compact()` brings a file near its live data.
//!
//! Each test measures the data file's length per round and compares it to
//! a baseline taken from the same workload (the size after a warm-up
//! round, or a fresh database loaded with the same live data). Written by
//! an adversarial review in the fifty-fifth session; it found that a
//! writer did not reclaim when it started (a compaction after tree commits
//! left the file 2.2 times a fresh load's, and tree commits kept three
//! copies of the tree), and no unbounded leak.

mod common;

use std::collections::BTreeMap;

use common::engine::{Disk, small_options};
use sluicedb::btree::bytewise;
use sluicedb::engine::{Durability, Engine, EngineOptions};
use sluicedb::io::TearMode;
use sluicedb::{Database, TableDefinition};

const META: &[u8] = b"bytes";
const TABLE: &[u8] = b"t";

fn value(key: u64, round: u64, len: usize) -> Vec<u8> {
    let mut v = format!("key {key} round {round} ").into_bytes();
    v.resize(len, (key.wrapping_mul(31).wrapping_add(round) % 251) as u8);
    v
}

/// Rewrites keys `keys` with values of `len` bytes for `round`, `per_txn`
/// keys a transaction, each commit of durability `durability`.
fn rewrite(db: &Engine, keys: std::ops::Range<u64>, round: u64, len: usize, per_txn: usize, durability: Durability) {
    let all: Vec<u64> = keys.collect();
    for chunk in all.chunks(per_txn) {
        let mut w = db.begin_write().unwrap();
        let t = w.open_table(TABLE, META, bytewise).unwrap();
        for &k in chunk {
            w.insert(t, &k.to_be_bytes(), &value(k, round, len)).unwrap();
        }
        w.set_durability(durability);
        w.commit().unwrap();
    }
}

/// Removes keys `keys`, `per_txn` a transaction.
fn remove(db: &Engine, keys: impl Iterator<Item = u64>, per_txn: usize) {
    let all: Vec<u64> = keys.collect();
    for chunk in all.chunks(per_txn) {
        let mut w = db.begin_write().unwrap();
        let t = w.open_table(TABLE, META, bytewise).unwrap();
        for &k in chunk {
            w.remove(t, &k.to_be_bytes()).unwrap();
        }
        w.commit().unwrap();
    }
}

/// Table `t` as key to value, and its `len()`.
fn read_all(db: &Engine) -> (BTreeMap<u64, Vec<u8>>, u64) {
    common::engine::read_u64_model(db, TABLE, bytewise).expect("table t")
}

fn expected(keys: std::ops::Range<u64>, round: u64, len: usize) -> BTreeMap<u64, Vec<u8>> {
    keys.map(|k| (k, value(k, round, len))).collect()
}

/// The file lengths of a steady workload must stay bounded: no round after
/// the first `warm` goes over `factor` times the largest of those. (The
/// length after a round is a high-water mark that depends on where the
/// apply thread's flushes and checkpoints fell, so it is noisy; a leak
/// shows in [`assert_compacts_to_fresh`] as well.)
fn assert_bounded(what: &str, lens: &[u64], warm: usize, factor: u64) {
    let base = lens[..warm].iter().copied().max().unwrap();
    let worst = lens[warm..].iter().copied().max().unwrap();
    assert!(
        worst <= factor * base,
        "{what}: the file grew to {worst} bytes, over {factor}x its {base} bytes in the first {warm} rounds; per round: {lens:?}"
    );
}

/// Table `t` of a fresh engine holding `data`, compacted: the size the same
/// live data needs.
fn fresh_len(data: &BTreeMap<u64, Vec<u8>>) -> u64 {
    let disk = Disk::new();
    let db = disk.open(steady_options());
    let mut w = db.begin_write().unwrap();
    let t = w.open_table(TABLE, META, bytewise).unwrap();
    for (k, v) in data {
        w.insert(t, &k.to_be_bytes(), v).unwrap();
    }
    w.commit().unwrap();
    db.checkpoint().unwrap();
    db.compact().unwrap();
    db.file_len().unwrap()
}

/// Checkpoints and compacts `db`: it must come within half again of a
/// fresh engine with the same data (plus a few pages of slack). A page
/// the allocator lost (neither reachable nor ever free again) stays in the
/// file through any number of compactions and commits.
///
/// Up to four tries, each after one more small durable commit: a single
/// compaction is checked by
/// [`compact_right_after_tree_commits_nears_a_fresh_load`] (it fails on
/// main), and a compaction after a reopen sometimes gives nothing back at
/// all while some snapshot outlives its commits (intermittent, see the
/// report; the next durable commits give the pages back), which this test
/// does not try to prove.
fn assert_compacts_to_fresh(what: &str, db: &Engine, lens: &[u64]) {
    db.checkpoint().unwrap();
    let before = db.file_len().unwrap();
    let mut tries = Vec::new();
    for attempt in 0..4u64 {
        rewrite(db, KEYS..KEYS + 1, attempt, LEN, 1, Durability::Immediate);
        db.checkpoint().unwrap();
        db.compact().unwrap();
        let after = db.file_len().unwrap();
        db.check_integrity().unwrap();
        let (data, len) = read_all(db);
        assert_eq!(len, data.len() as u64, "{what}: len() disagrees with the entries");
        let fresh = fresh_len(&data);
        tries.push((after, fresh));
        if after <= fresh + fresh / 2 + 8 * 4096 {
            eprintln!("{what}: rounds {lens:?}; {before} before compact, then (after, fresh) {tries:?}");
            return;
        }
    }
    panic!(
        "{what}: four compactions, each after a durable commit, left (bytes, a fresh load's bytes) {tries:?}, from {before}; per round: {lens:?}"
    );
}

fn steady_options() -> EngineOptions {
    EngineOptions {
        memtable_bytes: 16 << 10,
        // Flushes commit durably every two pages.
        flush_commit_bytes: 8 << 10,
        ..small_options()
    }
}

const KEYS: u64 = 600;
const LEN: usize = 120;

/// Scenario 1: the same keys rewritten every round, flushes committing in
/// parts, a checkpoint per round.
#[test]
fn steady_overwrites_with_part_flushes_settle() {
    let disk = Disk::new();
    let db = disk.open(steady_options());
    let mut lens = Vec::new();
    for round in 0..24 {
        rewrite(&db, 0..KEYS, round, LEN, 40, Durability::Immediate);
        db.checkpoint().unwrap();
        lens.push(db.file_len().unwrap());
    }
    assert!(db.stats().flush_part_commits > 0, "no flush committed in parts");
    assert_eq!(read_all(&db).0, expected(0..KEYS, 23, LEN));
    db.check_integrity().unwrap();
    eprintln!("part flushes: {lens:?}");
    assert_bounded("part flushes", &lens, 3, 3);
    assert_compacts_to_fresh("part flushes", &db, &lens);
}

/// Scenario 1, `Durability::None` commits: only checkpoints make the tree
/// durable.
#[test]
fn steady_non_durable_overwrites_settle() {
    let disk = Disk::new();
    let db = disk.open(steady_options());
    let mut lens = Vec::new();
    for round in 0..24 {
        rewrite(&db, 0..KEYS, round, LEN, 40, Durability::None);
        db.checkpoint().unwrap();
        lens.push(db.file_len().unwrap());
    }
    assert_eq!(read_all(&db).0, expected(0..KEYS, 23, LEN));
    db.check_integrity().unwrap();
    eprintln!("non-durable: {lens:?}");
    assert_bounded("non-durable commits", &lens, 3, 3);
    assert_compacts_to_fresh("non-durable commits", &db, &lens);
}

/// Scenario 1 with big transactions that go straight into the tree
/// (`tree_commit_bytes` small).
#[test]
fn steady_tree_commits_settle() {
    let disk = Disk::new();
    let db = disk.open(EngineOptions {
        tree_commit_bytes: 4 << 10,
        ..steady_options()
    });
    let mut lens = Vec::new();
    for round in 0..24 {
        // One transaction per round: far over `tree_commit_bytes`.
        rewrite(&db, 0..KEYS, round, LEN, KEYS as usize, Durability::Immediate);
        lens.push(db.file_len().unwrap());
    }
    assert!(
        db.stats().tree_commits >= 20,
        "{:?} tree commits",
        db.stats().tree_commits
    );
    assert_eq!(read_all(&db).0, expected(0..KEYS, 23, LEN));
    db.check_integrity().unwrap();
    eprintln!("tree commits: {lens:?}");
    assert_bounded("tree commits", &lens, 3, 3);
    // Two copies of the tree at most, the durable one and the one being
    // written: three (286720 bytes here) until a writer reclaimed when it
    // started, since a tree commit's retired pages waited for the state
    // that still showed them.
    let steady = lens[3..].iter().copied().max().unwrap();
    assert!(
        steady <= 2 * lens[0] + 4 * 4096,
        "tree commits keep {steady} bytes, over two copies of the first round's {}; per round: {lens:?}",
        lens[0]
    );
    assert_compacts_to_fresh("tree commits", &db, &lens);
}

// Failed before the fix (fifty-fifth session): a compaction right after
// tree commits planned its move without the pages the last tree commit
// retired. Those waited for the readers gate (the engine's state still
// showed the older tree when the commit reclaimed: `tree_commit.rs`
// publishes the state after the durable commit), and nothing reclaimed
// them before `Engine::compact` took the writer and
// `TreeWriter::relocate_all` read `free_pages()`: the target was computed
// as if a whole copy of the tree were live. 600 keys: 282624 bytes before,
// 221184 after one compaction, 98304 for a fresh load. `TreeStore::writer`
// now reclaims when it starts.
/// Scenario 4 after big transactions: one `compact()` right after a run of
/// tree commits must bring the file near a fresh load of the same data.
#[test]
fn compact_right_after_tree_commits_nears_a_fresh_load() {
    let disk = Disk::new();
    let db = disk.open(EngineOptions {
        tree_commit_bytes: 4 << 10,
        ..steady_options()
    });
    let mut lens = Vec::new();
    for round in 0..6 {
        rewrite(&db, 0..KEYS, round, LEN, KEYS as usize, Durability::Immediate);
        lens.push(db.file_len().unwrap());
    }
    assert!(db.stats().tree_commits >= 6, "{} tree commits", db.stats().tree_commits);
    let (data, _) = read_all(&db);
    assert_eq!(data, expected(0..KEYS, 5, LEN));
    let before = db.file_len().unwrap();
    db.compact().unwrap();
    let after = db.file_len().unwrap();
    db.check_integrity().unwrap();
    assert_eq!(read_all(&db).0, data);
    let fresh = fresh_len(&data);
    assert!(
        after <= fresh + fresh / 2 + 8 * 4096,
        "one compaction after tree commits left {after} bytes (from {before}); a fresh load of the same data compacts to {fresh}; per round: {lens:?}"
    );
}

/// Scenario 1 with a reader held across several rounds, then dropped: the
/// file grows while it lives (the pages it reads stay), and once it is gone
/// the pages it held are reused, so the file stops growing again.
#[test]
fn long_readers_held_across_rounds_then_dropped_settle() {
    let disk = Disk::new();
    let db = disk.open(steady_options());
    let mut lens = Vec::new();
    for round in 0..30u64 {
        // A reader lives through rounds 3k..3k+2, then goes.
        let reader = (round % 6 < 3).then(|| db.begin_read().unwrap());
        rewrite(&db, 0..KEYS, round, LEN, 40, Durability::Immediate);
        db.checkpoint().unwrap();
        drop(reader);
        lens.push(db.file_len().unwrap());
    }
    // Nothing held now: two more rounds reuse everything.
    for round in 30..32 {
        rewrite(&db, 0..KEYS, round, LEN, 40, Durability::Immediate);
        db.checkpoint().unwrap();
        lens.push(db.file_len().unwrap());
    }
    assert_eq!(read_all(&db).0, expected(0..KEYS, 31, LEN));
    db.check_integrity().unwrap();
    eprintln!("long readers: {lens:?}");
    assert_bounded("long readers", &lens, 6, 2);
    assert_compacts_to_fresh("long readers", &db, &lens);
}

/// Scenario 2: every round ends in a crash image (all unsynced writes lost,
/// all kept, or torn at random) that the next round opens; the file must
/// not ratchet up one crash at a time.
#[test]
fn crash_cycles_do_not_ratchet_the_file() {
    for mode in [TearMode::DropAll, TearMode::KeepAll, TearMode::Random(7)] {
        let mut disk = Disk::new();
        let mut lens = Vec::new();
        for round in 0..16u64 {
            let db = disk.open(steady_options());
            if round > 0 {
                // Durable commits only: recovery finds the last round whole.
                let found = read_all(&db).0;
                assert_eq!(found.len() as u64, KEYS, "{mode:?} round {round}");
                for k in 0..KEYS / 2 {
                    assert_eq!(found[&k], value(k, round - 1 + 500, LEN), "{mode:?} round {round}");
                }
                db.check_integrity().unwrap();
                // What the crash left, once a checkpoint has run on it.
                db.checkpoint().unwrap();
                lens.push(db.file_len().unwrap());
            }
            rewrite(&db, 0..KEYS, round, LEN, 40, Durability::Immediate);
            if round % 2 == 0 {
                db.checkpoint().unwrap();
            }
            // More commits, with flushes in flight at the crash.
            rewrite(&db, 0..KEYS / 2, round + 500, LEN, 60, Durability::Immediate);
            disk = disk.crashed(mode);
        }
        eprintln!("crash cycles {mode:?}: {lens:?}");
        assert_bounded(&format!("crash cycles {mode:?}"), &lens, 3, 3);
        let db = disk.open(steady_options());
        assert_compacts_to_fresh(&format!("crash cycles {mode:?}"), &db, &lens);
    }
}

/// Scenario 2, reopen without a crash: a clean close and open per round.
#[test]
fn clean_reopens_do_not_ratchet_the_file() {
    let disk = Disk::new();
    let mut lens = Vec::new();
    for round in 0..20u64 {
        let db = disk.open(steady_options());
        rewrite(&db, 0..KEYS, round, LEN, 40, Durability::Immediate);
        // Half a round more, left in the WAL (and part flushed) at close.
        rewrite(&db, 0..KEYS / 3, round + 1000, LEN, 50, Durability::None);
        lens.push(db.file_len().unwrap());
        drop(db);
    }
    let db = disk.open(steady_options());
    db.check_integrity().unwrap();
    eprintln!("clean reopens: {lens:?}");
    assert_bounded("clean reopens", &lens, 3, 3);
    assert_compacts_to_fresh("clean reopens", &db, &lens);
}

/// Scenario 3, on the engine: tree pins created and dropped repeatedly
/// beside flushes; after the last is dropped, `compact()` brings the file
/// back near the size of the same data without pins.
#[test]
fn engine_tree_pins_created_and_dropped_then_compacted() {
    let disk = Disk::new();
    let db = disk.open(steady_options());
    rewrite(&db, 0..KEYS, 0, LEN, 40, Durability::Immediate);
    db.checkpoint().unwrap();
    db.compact().unwrap();
    let without_pins = db.file_len().unwrap();
    let mut lens = Vec::new();
    for round in 1..16u64 {
        let id = 1000 + round;
        let mut w = db.begin_write().unwrap();
        w.pin_start_tree(id).unwrap();
        let t = w.open_table(TABLE, META, bytewise).unwrap();
        w.insert(t, &u64::MAX.to_be_bytes(), b"x").unwrap();
        w.commit().unwrap();
        // Rewritten while pinned: the pinned pages are kept.
        rewrite(&db, 0..KEYS, round, LEN, 40, Durability::Immediate);
        // Every other pin is dropped at once; the rest two rounds later.
        if round % 2 == 0 {
            db.drop_tree_pin(id).unwrap();
        }
        if round >= 3 && (round - 2) % 2 == 1 {
            db.drop_tree_pin(1000 + round - 2).unwrap();
        }
        lens.push(db.file_len().unwrap());
    }
    for id in db.tree_pin_ids().unwrap() {
        db.drop_tree_pin(id).unwrap();
    }
    assert!(db.tree_pin_ids().unwrap().is_empty());
    // Two rounds without pins reuse what they held.
    for round in 16..18 {
        rewrite(&db, 0..KEYS, round, LEN, 40, Durability::Immediate);
        db.checkpoint().unwrap();
    }
    let before = db.file_len().unwrap();
    db.compact().unwrap();
    let after = db.file_len().unwrap();
    db.check_integrity().unwrap();
    assert_eq!(read_all(&db).0.len() as u64, KEYS + 1);
    eprintln!("engine pins: without {without_pins}, rounds {lens:?}, before compact {before}, after {after}");
    assert!(
        after <= without_pins + without_pins / 2,
        "after dropping every pin and compacting, the file is {after} bytes; {without_pins} for the same data without pins (per round {lens:?}, {before} before compact)"
    );
}

const DATA: TableDefinition<u64, &[u8]> = TableDefinition::new("data");

fn db_file_len(dir: &tempfile::TempDir) -> u64 {
    std::fs::metadata(dir.path().join("db")).unwrap().len()
}

fn db_rewrite(db: &Database, keys: std::ops::Range<u64>, round: u64, len: usize) {
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(DATA).unwrap();
        for k in keys {
            t.insert(k, value(k, round, len).as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
}

/// Scenario 3, through the `Database` API: persistent savepoints created
/// and deleted repeatedly between overwrites; once all are deleted,
/// `compact()` brings the file back near a savepoint-free database's.
#[test]
fn database_savepoints_created_and_deleted_then_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Database::create(dir.path().join("db")).unwrap();
    db_rewrite(&db, 0..KEYS * 2, 0, LEN);
    db.checkpoint().unwrap();
    db.compact().unwrap();
    let without = db_file_len(&dir);
    let mut live: Vec<u64> = Vec::new();
    let mut lens = Vec::new();
    for round in 1..16u64 {
        let txn = db.begin_write().unwrap();
        live.push(txn.persistent_savepoint().unwrap());
        txn.commit().unwrap();
        db_rewrite(&db, 0..KEYS * 2, round, LEN);
        // Keep at most two; delete the oldest.
        if live.len() > 2 {
            let id = live.remove(0);
            let txn = db.begin_write().unwrap();
            assert!(txn.delete_persistent_savepoint(id).unwrap());
            txn.commit().unwrap();
        }
        db.checkpoint().unwrap();
        lens.push(db_file_len(&dir));
    }
    let txn = db.begin_write().unwrap();
    for id in live.drain(..) {
        assert!(txn.delete_persistent_savepoint(id).unwrap());
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    let before = db_file_len(&dir);
    assert!(db.compact().unwrap() || before <= without);
    let after = db_file_len(&dir);
    assert!(db.check_integrity().unwrap());
    eprintln!("db savepoints: without {without}, rounds {lens:?}, before compact {before}, after {after}");
    assert!(
        after <= without + without / 2,
        "after deleting every savepoint and compacting, the file is {after} bytes; {without} for the same data without savepoints (per round {lens:?}, {before} before compact)"
    );
    // And the rounds with at most two savepoints live stayed bounded.
    assert_bounded("savepoint rounds", &lens, 3, 2);
}

/// Scenario 4: heavy deletes, then `compact()`: the file ends near a fresh
/// database loaded with the same live data.
#[test]
fn compact_after_heavy_deletes_nears_a_fresh_load() {
    let disk = Disk::new();
    let db = disk.open(steady_options());
    let keys = 3000u64;
    rewrite(&db, 0..keys, 0, LEN, 200, Durability::Immediate);
    rewrite(&db, 0..keys, 1, LEN, 200, Durability::Immediate);
    db.checkpoint().unwrap();
    let full = db.file_len().unwrap();
    // Keep one key in ten, scattered across the key space.
    remove(&db, (0..keys).filter(|k| k % 10 != 0), 200);
    db.checkpoint().unwrap();
    db.compact().unwrap();
    let compacted = db.file_len().unwrap();
    db.check_integrity().unwrap();
    let (found, len) = read_all(&db);
    assert_eq!(len, keys / 10);
    assert_eq!(found.len() as u64, keys / 10);

    let fresh_disk = Disk::new();
    let fresh = fresh_disk.open(steady_options());
    let live: Vec<u64> = (0..keys).filter(|k| k % 10 == 0).collect();
    let mut w = fresh.begin_write().unwrap();
    let t = w.open_table(TABLE, META, bytewise).unwrap();
    for &k in &live {
        w.insert(t, &k.to_be_bytes(), &value(k, 1, LEN)).unwrap();
    }
    w.commit().unwrap();
    fresh.checkpoint().unwrap();
    fresh.compact().unwrap();
    let fresh_len = fresh.file_len().unwrap();
    eprintln!("heavy deletes: full {full}, compacted {compacted}, fresh {fresh_len}");
    assert!(
        compacted <= 2 * fresh_len,
        "compacted to {compacted} bytes after deleting 90% of {full} bytes; a fresh load of the same data is {fresh_len}"
    );
}
