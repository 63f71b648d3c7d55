//! Exact `len()` and contents of tables that are renamed, deleted and
//! recreated, across flushes with part commits, tree commits and
//! checkpoints: for the writer's own view, for readers holding old
//! snapshots, and after crash images (dropped, kept or torn unsynced
//! writes) and more commits on the reopened engine. Written by the
//! twenty-second session's review; it found nothing, and it is the model of
//! table counts through renames and tree commits that no other test has.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;

use common::Rng;
use common::engine::{Disk, small_options};
use sluicedb::btree::bytewise;
use sluicedb::engine::{Durability, Engine, EngineOptions, ReadTxn};
use sluicedb::io::TearMode;

type Tables = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

fn options() -> EngineOptions {
    EngineOptions {
        tree_commit_bytes: 3000,
        ..small_options()
    }
}

fn check_reader(r: &ReadTxn, model: &Tables, what: &str) {
    for name in ["a", "b", "c", "d"] {
        let t = r.open_table(name.as_bytes(), bytewise).unwrap();
        match (t, model.get(name)) {
            (None, None) => {}
            (Some(t), Some(m)) => {
                let got: BTreeMap<Vec<u8>, Vec<u8>> = r
                    .range(&t, Bound::Unbounded, Bound::Unbounded)
                    .unwrap()
                    .map(|e| {
                        let (k, v) = e.unwrap();
                        (k.to_vec(), v.as_bytes().to_vec())
                    })
                    .collect();
                assert!(
                    got == *m,
                    "{what}: table {name} contents differ ({} vs {})",
                    got.len(),
                    m.len()
                );
                assert_eq!(r.len(&t).unwrap(), m.len() as u64, "{what}: table {name} len");
            }
            (t, m) => panic!("{what}: table {name} exists {} vs model {}", t.is_some(), m.is_some()),
        }
    }
}

fn run(seed: u64) {
    let disk = Disk::new();
    let mut db: Engine = disk.open(options());
    let mut rng = Rng(seed);
    let mut model: Tables = BTreeMap::new();
    let mut held: Vec<(ReadTxn, Tables, u64)> = Vec::new();
    for step in 0..2000u64 {
        let mut w = db.begin_write().unwrap();
        w.set_durability(Durability::Immediate);
        let mut next = model.clone();
        let ops = match rng.below(10) {
            0 => 60, // big: through the tree
            _ => 1 + rng.below(12),
        };
        for _ in 0..ops {
            let name = ["a", "b", "c", "d"][rng.below(4) as usize].to_string();
            match rng.below(40) {
                0 => {
                    let ok = w.delete_table(name.as_bytes()).unwrap();
                    assert_eq!(ok, next.remove(&name).is_some(), "step {step}: delete {name}");
                }
                1 => {
                    let to = ["a", "b", "c", "d"][rng.below(4) as usize].to_string();
                    if next.contains_key(&name) && !next.contains_key(&to) {
                        assert!(w.rename_table(name.as_bytes(), to.as_bytes()).unwrap());
                        let t = next.remove(&name).unwrap();
                        next.insert(to, t);
                    }
                }
                _ => {
                    let t = w.open_table(name.as_bytes(), b"bytes", bytewise).unwrap();
                    let m = next.entry(name.clone()).or_default();
                    let key = format!("k{:04}", rng.below(300)).into_bytes();
                    if rng.below(3) == 0 {
                        let old = w.remove(t, &key).unwrap();
                        assert_eq!(
                            old.map(|v| v.as_bytes().to_vec()),
                            m.remove(&key),
                            "step {step}: remove"
                        );
                    } else {
                        let value = vec![b'v'; 20 + rng.below(60) as usize];
                        let old = w.insert(t, &key, &value).unwrap();
                        assert_eq!(
                            old.map(|v| v.as_bytes().to_vec()),
                            m.insert(key, value),
                            "step {step}: insert"
                        );
                    }
                    assert_eq!(w.len(t).unwrap(), m.len() as u64, "step {step}: writer's len of {name}");
                }
            }
        }
        w.commit().unwrap();
        model = next;
        let r = db.begin_read().unwrap();
        check_reader(&r, &model, &format!("step {step} fresh"));
        if rng.below(4) == 0 {
            held.push((r, model.clone(), step));
        }
        if held.len() > 6 || (rng.below(5) == 0 && !held.is_empty()) {
            let i = rng.below(held.len() as u64) as usize;
            let (r, m, at) = held.swap_remove(i);
            check_reader(&r, &m, &format!("step {step}: reader held since {at}"));
        }
        match rng.below(300) {
            0 => db.checkpoint().unwrap(),
            1 => {
                for (r, m, at) in held.drain(..) {
                    check_reader(&r, &m, &format!("step {step}: reader held since {at} before crash"));
                }
                let mode = [TearMode::DropAll, TearMode::KeepAll, TearMode::Random(step)][rng.below(3) as usize];
                let crashed = disk.crashed(mode);
                drop(db);
                db = crashed.open(options());
                check_reader(
                    &db.begin_read().unwrap(),
                    &model,
                    &format!("step {step}: after crash {mode:?}"),
                );
                // Continue on the crashed image.
                return run_on(crashed, db, rng, model, step);
            }
            _ => {}
        }
    }
    for (r, m, at) in held {
        check_reader(&r, &m, &format!("end: reader held since {at}"));
    }
}

fn run_on(disk: Disk, db: Engine, rng: Rng, model: Tables, step: u64) {
    // Simple: a few more rounds of the same without crashes, then a reopen.
    let mut rng = rng;
    let mut model = model;
    for s in step..step + 100 {
        let mut w = db.begin_write().unwrap();
        let name = ["a", "b", "c", "d"][rng.below(4) as usize].to_string();
        let t = w.open_table(name.as_bytes(), b"bytes", bytewise).unwrap();
        let m = model.entry(name.clone()).or_default();
        for _ in 0..(1 + rng.below(70)) {
            let key = format!("k{:04}", rng.below(300)).into_bytes();
            if rng.below(3) == 0 {
                w.remove(t, &key).unwrap();
                m.remove(&key);
            } else {
                let value = vec![b'w'; 20 + rng.below(60) as usize];
                w.insert(t, &key, &value).unwrap();
                m.insert(key, value);
            }
        }
        assert_eq!(w.len(t).unwrap(), m.len() as u64, "post-crash step {s}: writer len");
        w.commit().unwrap();
        check_reader(&db.begin_read().unwrap(), &model, &format!("post-crash step {s}"));
    }
    let st = db.stats();
    eprintln!(
        "step {step}: tree commits {} part commits {} flushes {} checkpoints {}",
        st.tree_commits, st.flush_part_commits, st.flushes, st.checkpoints
    );
    drop(db);
    let db = disk.crashed(TearMode::DropAll).open(options());
    check_reader(&db.begin_read().unwrap(), &model, "final reopen");
}

#[test]
fn len_and_contents_through_renames_deletes_tree_commits_and_crashes() {
    for seed in 1..=12u64 {
        run(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    }
}
