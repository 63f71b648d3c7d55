//! A custom-order table whose records recovery defers (its order is
//! unknown until an open names it), left unopened across crash and reopen
//! cycles, then opened: nothing acknowledged is lost, order and count are
//! exact, and stay so after more writes and crashes.
//!
//! The cycles write another table, checkpoint (deleting the WAL the
//! deferred records came from), open the table read-only (which registers
//! its order, so the next flush takes its records into the tree) and crash
//! before a checkpoint makes that durable, and commit a transaction big
//! enough to go straight into the tree (which takes them in its own
//! durable commit); crashes tear unsynced writes at random. Written by an
//! adversarial review in the fifty-fourth session; it found nothing.

mod common;

use common::Rng;
use common::engine::{
    Disk, REVERSE_META, apply_u64, commit_u64_to, random_u64_ops, read_u64_model, reopen, reverse, small_options,
    tagged_value,
};
use sluicedb::btree::{Comparator, bytewise};
use sluicedb::engine::{Durability, Engine, EngineOptions};
use sluicedb::io::TearMode;

type Model = std::collections::BTreeMap<u64, Vec<u8>>;

const REV: Comparator = reverse;

fn deferred_options() -> EngineOptions {
    EngineOptions {
        memtable_bytes: 8 << 10,
        checkpoint_wal_bytes: 32 << 10,
        flush_commit_bytes: 8 << 10,
        tree_commit_bytes: 6 << 10,
        ..small_options()
    }
}

fn check_exact(db: &Engine, name: &[u8], cmp: Comparator, model: &Model, what: &str) {
    db.check_integrity()
        .unwrap_or_else(|e| panic!("{what}: integrity: {e}"));
    let (found, len) = read_u64_model(db, name, cmp).unwrap_or_default();
    if &found != model {
        let missing = model.keys().find(|k| !found.contains_key(k));
        let extra = found.keys().find(|k| !model.contains_key(k));
        let differs = model
            .iter()
            .find(|(k, v)| found.get(k).is_some_and(|f| f != *v))
            .map(|(k, _)| k);
        panic!(
            "{what}: table {:?} has {} entries, expected {}; missing {missing:?}, extra {extra:?}, differs {differs:?}",
            String::from_utf8_lossy(name),
            found.len(),
            model.len()
        );
    }
    assert_eq!(
        len,
        model.len() as u64,
        "{what}: len() of {:?}",
        String::from_utf8_lossy(name)
    );
}

#[test]
fn deferred_records_survive_crashes_before_their_table_is_opened() {
    for seed in [3u64, 17, 101, 977] {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut rev = Model::new();
        let mut t = Model::new();
        let mut disk = Disk::new();
        let mut version = 0;
        {
            let db = disk.open(deferred_options());
            // A checkpointed part, then durable overwrites and removals.
            for _ in 0..4 {
                version += 1;
                let ops = random_u64_ops(&mut rng, "rev", 300, 60, version);
                commit_u64_to(&db, b"r", REVERSE_META, REV, &ops, Durability::Immediate);
                apply_u64(&mut rev, &ops);
            }
            db.checkpoint().unwrap();
            for _ in 0..6 {
                version += 1;
                let ops = random_u64_ops(&mut rng, "rev", 300, 30, version);
                commit_u64_to(&db, b"r", REVERSE_META, REV, &ops, Durability::Immediate);
                apply_u64(&mut rev, &ops);
                let ops = random_u64_ops(&mut rng, "t", 300, 20, version);
                commit_u64_to(&db, b"t", b"bytes", bytewise, &ops, Durability::Immediate);
                apply_u64(&mut t, &ops);
            }
            disk = disk.crashed(TearMode::Random(seed));
        }
        // Cycles that never open `r` for writing.
        for cycle in 0..5u64 {
            let what = format!("seed {seed} cycle {cycle}");
            let db = reopen(&disk, deferred_options(), &what);
            check_exact(&db, b"t", bytewise, &t, &what);
            if cycle == 0 {
                assert!(db.stats().recovery.deferred_records > 0, "{what}: nothing was deferred");
            }
            for round in 0..8 {
                version += 1;
                let ops = random_u64_ops(&mut rng, "t", 300, 25, version);
                commit_u64_to(&db, b"t", b"bytes", bytewise, &ops, Durability::Immediate);
                apply_u64(&mut t, &ops);
                if round % 3 == 2 {
                    db.checkpoint().unwrap();
                }
            }
            if cycle == 2 {
                // Registers the order: the next flush absorbs the records,
                // crash before any checkpoint makes that durable.
                let (found, len) = read_u64_model(&db, b"r", REV).expect("table r");
                assert_eq!(found, rev, "{what}: r read before its absorption");
                assert_eq!(len, rev.len() as u64, "{what}: len of r before its absorption");
                version += 1;
                let ops = random_u64_ops(&mut rng, "t", 300, 25, version);
                commit_u64_to(&db, b"t", b"bytes", bytewise, &ops, Durability::Immediate);
                apply_u64(&mut t, &ops);
            }
            if cycle == 3 {
                db.checkpoint().unwrap();
                let (found, len) = read_u64_model(&db, b"r", REV).expect("table r");
                assert_eq!(found, rev, "{what}: r read before its absorption");
                assert_eq!(len, rev.len() as u64);
                // A tree commit to `t` absorbs `r` in its own durable commit.
                version += 1;
                let ops: Vec<_> = (0..120).map(|k| (k, Some(tagged_value("t", k, version)))).collect();
                commit_u64_to(&db, b"t", b"bytes", bytewise, &ops, Durability::None);
                apply_u64(&mut t, &ops);
                assert_eq!(
                    db.stats().tree_commits,
                    1,
                    "{what}: the big commit did not go through the tree"
                );
            }
            disk = disk.crashed(TearMode::Random(seed ^ cycle));
        }
        let what = format!("seed {seed} final");
        let db = reopen(&disk, deferred_options(), &what);
        check_exact(&db, b"t", bytewise, &t, &what);
        check_exact(&db, b"r", REV, &rev, &what);
        // Now write `r`, crash, and check again (twice).
        for again in 0..2u64 {
            for _ in 0..5 {
                version += 1;
                let ops = random_u64_ops(&mut rng, "rev", 300, 40, version);
                commit_u64_to(&db, b"r", REVERSE_META, REV, &ops, Durability::Immediate);
                apply_u64(&mut rev, &ops);
            }
            let image = disk.crashed(TearMode::Random(seed + again));
            let what = format!("seed {seed} after writes {again}");
            let db2 = reopen(&image, deferred_options(), &what);
            check_exact(&db2, b"r", REV, &rev, &what);
            check_exact(&db2, b"t", bytewise, &t, &what);
        }
    }
}
