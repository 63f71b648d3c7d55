//! Custom key orders (a case-insensitive table, a multimap table of
//! reversed keys, a tuple table with a variable-width first element) through
//! tree commits (tiny `set_tree_commit_size`), background flushes (tiny
//! memtables, so part commits), checkpoints, compaction, renames, deletes
//! and recreations, clean reopens and crashes with random tears; every
//! reopen is a fresh engine that never saw the key types. All commits are
//! durable, so every recovery must show exactly the committed state.
//! (Written by the twenty-third session's review; it found nothing.)

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::Rng;
use common::keys::{CaseInsensitive, CrashDisk, Reversed};
use sluicedb::io::TearMode;
use sluicedb::{
    Builder, Database, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTable,
    ReadableTableMetadata, TableDefinition,
};

const CI_NAMES: [&str; 2] = ["ci", "ci2"];
const MM: MultimapTableDefinition<Reversed, u64> = MultimapTableDefinition::new("mm");
const TUP: TableDefinition<(&str, u64), u64> = TableDefinition::new("tup");

fn ci(name: &str) -> TableDefinition<'_, CaseInsensitive, u64> {
    TableDefinition::new(name)
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Model {
    /// lower-cased key -> (stored spelling, value)
    ci: BTreeMap<String, (String, u64)>,
    mm: BTreeMap<String, BTreeSet<u64>>,
    tup: BTreeMap<(String, u64), u64>,
}

fn builder() -> Builder {
    let mut b = Builder::new();
    b.set_tree_commit_size(1 << 10).set_memtable_size(4 << 10);
    b
}

fn spelling(rng: &mut Rng, k: u64) -> String {
    let base = format!("key{k:03}x");
    base.chars()
        .map(|c| if rng.below(2) == 0 { c.to_ascii_uppercase() } else { c })
        .collect()
}

fn read_all(db: &Database, ci_name: &str, order: u64) -> Model {
    let rt = db.begin_read().unwrap();
    let mut m = Model::default();
    let mut parts: Vec<u64> = vec![0, 1, 2];
    parts.rotate_left((order % 3) as usize);
    for p in parts {
        match p {
            0 => {
                if let Ok(t) = rt.open_table(ci(ci_name)) {
                    let fwd: Vec<(String, u64)> = t
                        .iter()
                        .unwrap()
                        .map(|e| {
                            let (k, v) = e.unwrap();
                            (k.value().to_string(), v.value())
                        })
                        .collect();
                    let mut back: Vec<(String, u64)> = t
                        .iter()
                        .unwrap()
                        .rev()
                        .map(|e| {
                            let (k, v) = e.unwrap();
                            (k.value().to_string(), v.value())
                        })
                        .collect();
                    back.reverse();
                    assert_eq!(fwd, back, "ci: directions disagree");
                    assert_eq!(t.len().unwrap(), fwd.len() as u64, "ci len");
                    for w in fwd.windows(2) {
                        assert!(
                            w[0].0.to_ascii_lowercase() < w[1].0.to_ascii_lowercase(),
                            "ci out of order: {:?} then {:?}",
                            w[0].0,
                            w[1].0
                        );
                    }
                    for (k, v) in &fwd {
                        let other = k.to_ascii_lowercase();
                        assert_eq!(
                            t.get(other.as_str()).unwrap().map(|g| g.value()),
                            Some(*v),
                            "ci get {other}"
                        );
                        m.ci.insert(k.to_ascii_lowercase(), (k.clone(), *v));
                    }
                }
            }
            1 => {
                if let Ok(t) = rt.open_multimap_table(MM) {
                    let mut prev: Option<String> = None;
                    let mut pairs = 0u64;
                    for e in t.iter().unwrap() {
                        let (k, vals) = e.unwrap();
                        let k = k.value().to_string();
                        if let Some(p) = &prev {
                            assert!(p.as_str() > k.as_str(), "mm keys out of order: {p} then {k}");
                        }
                        prev = Some(k.clone());
                        let vs: Vec<u64> = vals.map(|v| v.unwrap().value()).collect();
                        assert!(
                            vs.windows(2).all(|w| w[0] < w[1]),
                            "mm values of {k} out of order: {vs:?}"
                        );
                        pairs += vs.len() as u64;
                        let got: Vec<u64> = t.get(k.as_str()).unwrap().map(|v| v.unwrap().value()).collect();
                        assert_eq!(got, vs, "mm get {k}");
                        m.mm.insert(k, vs.into_iter().collect());
                    }
                    assert_eq!(t.len().unwrap(), pairs, "mm len");
                }
            }
            _ => {
                if let Ok(t) = rt.open_table(TUP) {
                    let fwd: Vec<((String, u64), u64)> = t
                        .iter()
                        .unwrap()
                        .map(|e| {
                            let (k, v) = e.unwrap();
                            let (a, b) = k.value();
                            ((a.to_string(), b), v.value())
                        })
                        .collect();
                    for w in fwd.windows(2) {
                        assert!(w[0].0 < w[1].0, "tup out of order: {:?} then {:?}", w[0].0, w[1].0);
                    }
                    assert_eq!(t.len().unwrap(), fwd.len() as u64, "tup len");
                    for ((a, b), v) in fwd {
                        m.tup.insert((a, b), v);
                    }
                }
            }
        }
    }
    m
}

fn write(db: &Database, rng: &mut Rng, model: &mut Model, ci_name: &str, n: u64, step: u64) {
    let txn = db.begin_write().unwrap();
    // The tables in a random order of first open.
    let first = rng.below(3);
    {
        let mut t = txn.open_table(ci(ci_name)).unwrap();
        let mut mm = txn.open_multimap_table(MM).unwrap();
        let mut tup = txn.open_table(TUP).unwrap();
        let _ = first;
        for _ in 0..n {
            let k = rng.below(120);
            match rng.below(7) {
                0 => {
                    let s = spelling(rng, k);
                    let old = t.remove(s.as_str()).unwrap().map(|g| g.value());
                    assert_eq!(
                        old,
                        model.ci.remove(&s.to_ascii_lowercase()).map(|(_, v)| v),
                        "ci remove {s}"
                    );
                }
                1 | 2 => {
                    let s = spelling(rng, k);
                    let old = t.insert(s.as_str(), step).unwrap().map(|g| g.value());
                    assert_eq!(
                        old,
                        model
                            .ci
                            .insert(s.to_ascii_lowercase(), (s.clone(), step))
                            .map(|(_, v)| v),
                        "ci insert {s}"
                    );
                }
                3 => {
                    let key = format!("m{:02}", k % 40);
                    let v = rng.below(8);
                    let existed = mm.insert(key.as_str(), v).unwrap();
                    let was = !model.mm.entry(key.clone()).or_default().insert(v);
                    assert_eq!(existed, was, "mm insert {key} {v}");
                }
                4 => {
                    let key = format!("m{:02}", k % 40);
                    let v = rng.below(8);
                    let existed = mm.remove(key.as_str(), v).unwrap();
                    let was = model.mm.get_mut(&key).is_some_and(|s| s.remove(&v));
                    if model.mm.get(&key).is_some_and(|s| s.is_empty()) {
                        model.mm.remove(&key);
                    }
                    assert_eq!(existed, was, "mm remove {key} {v}");
                }
                5 => {
                    let a = "x".repeat((k % 5) as usize) + &format!("{}", k % 3);
                    let b = rng.below(4) * 1000 + k;
                    let old = tup.insert((a.as_str(), b), step).unwrap().map(|g| g.value());
                    assert_eq!(old, model.tup.insert((a.clone(), b), step), "tup insert");
                }
                _ => {
                    let a = "x".repeat((k % 5) as usize) + &format!("{}", k % 3);
                    let b = rng.below(4) * 1000 + k;
                    let old = tup.remove((a.as_str(), b)).unwrap().map(|g| g.value());
                    assert_eq!(old, model.tup.remove(&(a.clone(), b)), "tup remove");
                }
            }
        }
        if model.mm.values().any(|s| s.is_empty()) {
            model.mm.retain(|_, s| !s.is_empty());
        }
    }
    txn.commit().unwrap();
}

fn run(seed: u64, steps: u64) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut disk = CrashDisk::new();
    let mut db = Some(disk.open(&builder()));
    let mut model = Model::default();
    let mut name = 0usize;
    for step in 0..steps {
        let d = db.as_ref().unwrap();
        let what = rng.below(100);
        let ctx = format!("seed {seed} step {step}");
        match what {
            0..=44 => {
                let n = 1 + rng.below(8);
                write(d, &mut rng, &mut model, CI_NAMES[name], n, step);
            }
            45..=59 => {
                // Big: through the tree.
                let n = 150 + rng.below(250);
                write(d, &mut rng, &mut model, CI_NAMES[name], n, step);
            }
            60..=64 => {
                let t = d.begin_write().unwrap();
                match t.rename_table(ci(CI_NAMES[name]), ci(CI_NAMES[1 - name])) {
                    Ok(()) => name = 1 - name,
                    Err(sluicedb::TableError::TableDoesNotExist(_)) => {}
                    Err(e) => panic!("rename: {e}"),
                }
                // Sometimes write after the rename, in the same transaction.
                if rng.below(2) == 0 {
                    let mut tt = t.open_table(ci(CI_NAMES[name])).unwrap();
                    let kk = rng.below(120);
                    let s = spelling(&mut rng, kk);
                    tt.insert(s.as_str(), 7777).unwrap();
                    model.ci.insert(s.to_ascii_lowercase(), (s, 7777));
                }
                t.commit().unwrap();
            }
            65..=67 => {
                let t = d.begin_write().unwrap();
                t.delete_multimap_table(MM).unwrap();
                model.mm.clear();
                if rng.below(2) == 0 {
                    let mut mm = t.open_multimap_table(MM).unwrap();
                    mm.insert("m99", 1).unwrap();
                    model.mm.entry("m99".into()).or_default().insert(1);
                }
                t.commit().unwrap();
            }
            68..=72 => d.checkpoint().unwrap(),
            73..=75 => {
                db.as_mut().unwrap().compact().unwrap();
            }
            76..=91 => {
                let got = read_all(d, CI_NAMES[name], rng.below(3));
                assert_eq!(got, model, "{ctx}: read");
            }
            _ => {
                let crash = what >= 96;
                if crash {
                    let image = disk.crashed(TearMode::Random(rng.next()));
                    drop(db.take());
                    disk = image;
                } else {
                    drop(db.take());
                }
                let mut re = disk.open(&builder());
                if rng.below(2) == 0 {
                    assert!(re.check_integrity().unwrap(), "{ctx}: integrity before typed opens");
                }
                // Sometimes write (a small or a big commit) before any read.
                if rng.below(3) == 0 {
                    let n = if rng.below(2) == 0 { 3 } else { 300 };
                    write(&re, &mut rng, &mut model, CI_NAMES[name], n, step);
                }
                let got = read_all(&re, CI_NAMES[name], rng.below(3));
                assert_eq!(got, model, "{ctx}: after {}", if crash { "crash" } else { "reopen" });
                assert!(re.check_integrity().unwrap(), "{ctx}: integrity");
                db = Some(re);
            }
        }
    }
    let d = db.as_ref().unwrap();
    let st = d.stats();
    if seed <= 3 {
        eprintln!(
            "seed {seed}: last engine: tree commits {}, flushes {}, part commits {}, deferred at open {}",
            st.tree_commits, st.flushes, st.flush_part_commits, st.recovery.deferred_records
        );
    }
    d.checkpoint().unwrap();
    assert_eq!(read_all(d, CI_NAMES[name], 0), model, "seed {seed}: final");
}

#[test]
fn custom_orders_through_tree_commits_flushes_and_crashes() {
    let start = std::time::Instant::now();
    let mut seed = 1;
    while start.elapsed().as_secs() < 15 {
        run(seed, 120);
        seed += 1;
    }
    eprintln!("{} seeds", seed - 1);
}
