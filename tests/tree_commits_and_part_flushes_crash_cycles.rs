//! Many crash cycles of mixed commits: durable and not, small ones through
//! the WAL and big ones straight into the tree, overwrites and removals
//! over a byte-order and a reverse-order table, flushes that commit part
//! way, checkpoints. Each cycle's crash image (unsynced writes all lost,
//! all kept, or torn at random) must open to a prefix of the commit order
//! that holds every commit acknowledged durable, with exact counts; the
//! next cycle goes on from it. Written by an adversarial review in the
//! fifty-fourth session; it found nothing.

mod common;

use common::Rng;
use common::engine::{
    CrashOracle, Disk, REVERSE_META, apply_u64, commit_u64_to, random_u64_ops, read_u64_model, reopen, reverse,
    small_options,
};
use sluicedb::btree::{Comparator, bytewise};
use sluicedb::engine::{Durability, Engine, EngineOptions};
use sluicedb::io::TearMode;

type Model = std::collections::BTreeMap<u64, Vec<u8>>;

const REV: Comparator = reverse;

fn mixed_options() -> EngineOptions {
    EngineOptions {
        memtable_bytes: 6 << 10,
        max_frozen_bytes: 64 << 10,
        segment_bytes: 4 << 10,
        checkpoint_wal_bytes: 24 << 10,
        flush_commit_bytes: 4 << 10,
        tree_commit_bytes: 4 << 10,
        ..small_options()
    }
}

#[derive(Clone, PartialEq, Debug, Default)]
struct Both {
    a: Model,
    b: Model,
}

fn read_both(db: &Engine) -> Result<Both, String> {
    let mut both = Both::default();
    for (name, cmp, slot) in [(&b"a"[..], bytewise as Comparator, 0), (&b"b"[..], REV, 1)] {
        if let Some((m, len)) = read_u64_model(db, name, cmp) {
            if len != m.len() as u64 {
                return Err(format!("table {:?}: len() {len}, {} entries", name, m.len()));
            }
            if slot == 0 {
                both.a = m;
            } else {
                both.b = m;
            }
        }
    }
    Ok(both)
}

#[test]
fn mixed_durability_tree_commits_and_part_flushes_over_crash_cycles() {
    let (mut tree_commits, mut part_commits) = (0, 0);
    for seed in [5u64, 29, 4242] {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut disk = Disk::new();
        let mut state = Both::default();
        let mut version = 0;
        for cycle in 0..12u64 {
            let what = format!("seed {seed} cycle {cycle}");
            let db = reopen(&disk, mixed_options(), &what);
            db.check_integrity()
                .unwrap_or_else(|e| panic!("{what}: integrity: {e}"));
            let found = read_both(&db).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(found, state, "{what}: recovered state differs from the oracle's choice");
            let mut oracle = CrashOracle::new(state.clone());
            let commits = 6 + rng.below(20);
            for _ in 0..commits {
                version += 1;
                let big = rng.one_in(6);
                let n = if big { 60 + rng.below(80) } else { 1 + rng.below(12) };
                let on_b = rng.chance(40);
                let ops = random_u64_ops(&mut rng, if on_b { "b" } else { "a" }, 400, n, version);
                let durable = rng.chance(35);
                let d = if durable {
                    Durability::Immediate
                } else {
                    Durability::None
                };
                if on_b {
                    commit_u64_to(&db, b"b", REVERSE_META, REV, &ops, d);
                    apply_u64(&mut state.b, &ops);
                } else {
                    commit_u64_to(&db, b"a", b"bytes", bytewise, &ops, d);
                    apply_u64(&mut state.a, &ops);
                }
                // A big commit goes through the tree, durable when it returns.
                let payload: usize = ops.iter().map(|(_, v)| 12 + v.as_ref().map_or(0, Vec::len)).sum();
                if durable || payload >= (4 << 10) {
                    oracle.durable(state.clone());
                } else {
                    oracle.unwaited(state.clone());
                }
                if rng.one_in(10) {
                    db.checkpoint().unwrap();
                    oracle.durable(state.clone());
                }
            }
            let mode = match rng.below(3) {
                0 => TearMode::DropAll,
                1 => TearMode::KeepAll,
                _ => TearMode::Random(seed ^ cycle),
            };
            let image = disk.crashed(mode);
            tree_commits += db.stats().tree_commits;
            part_commits += db.stats().flush_part_commits;
            drop(db);
            // The crash image opens to an allowed state; continue from it.
            let probe = reopen(&image, mixed_options(), &what);
            let got = read_both(&probe).unwrap_or_else(|e| panic!("{what} {mode:?}: {e}"));
            assert!(
                oracle.allows(&got),
                "{what} {mode:?}: recovered a state that is no allowed prefix (a {} b {} entries; last durable a {} b {})",
                got.a.len(),
                got.b.len(),
                oracle.last_durable().a.len(),
                oracle.last_durable().b.len()
            );
            drop(probe);
            state = got;
            disk = image;
        }
    }
    assert!(
        tree_commits > 0 && part_commits > 0,
        "tree commits {tree_commits}, part commits {part_commits}"
    );
}
