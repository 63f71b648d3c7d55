//! Property test of the engine against a `BTreeMap` oracle: commits of both
//! durabilities, pipelined commits, aborts, reads at old snapshots, flushes
//! and checkpoints (tiny memtables force them), clean reopens and crashes;
//! once with every commit through the WAL and the memtable, once with the
//! bigger commits straight into the tree (`EngineOptions::tree_commit_bytes`).

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;

use common::engine::{CrashOracle, Disk, small_options};
use common::{key, numeric};
use proptest::prelude::*;
use sluicedb::engine::{Durability, Engine, EngineOptions, ReadTxn};
use sluicedb::io::TearMode;

type Model = BTreeMap<u16, Vec<u8>>;

#[derive(Clone, Debug)]
enum Op {
    Put(u16, u8),
    Del(u16),
    Commit,
    CommitNoSync,
    CommitPipelined,
    Abort,
    Snapshot,
    Checkpoint,
    Compact,
    Reopen,
    Crash(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => (0u16..300, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        10 => (0u16..300).prop_map(Op::Del),
        4 => Just(Op::Commit),
        3 => Just(Op::CommitNoSync),
        3 => Just(Op::CommitPipelined),
        2 => Just(Op::Abort),
        2 => Just(Op::Snapshot),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
        1 => any::<u64>().prop_map(Op::Crash),
    ]
}

fn value(k: u16, v: u8) -> Vec<u8> {
    let len = 20 + (v as usize % 5) * 30;
    (0..len).map(|i| (k as usize + i + v as usize) as u8).collect()
}

/// The keys on which two models disagree, briefly.
fn diff(got: &Model, want: &Model) -> String {
    let keys: std::collections::BTreeSet<u16> = got.keys().chain(want.keys()).copied().collect();
    let wrong: Vec<String> = keys
        .into_iter()
        .filter(|k| got.get(k) != want.get(k))
        .map(|k| {
            format!(
                "{k}: got {:?} want {:?}",
                got.get(&k).map(|v| v[0]),
                want.get(&k).map(|v| v[0])
            )
        })
        .collect();
    format!(
        "{} keys differ: {}",
        wrong.len(),
        wrong.iter().take(8).cloned().collect::<Vec<_>>().join(", ")
    )
}

fn read_all(txn: &ReadTxn) -> Model {
    let Some(table) = txn.open_table(b"t", numeric).unwrap() else {
        return Model::new();
    };
    let forward: Model = txn
        .range(&table, Bound::Unbounded, Bound::Unbounded)
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (u16::from_le_bytes([k[0], k[1]]), v.as_bytes().to_vec())
        })
        .collect();
    let backward: Vec<u16> = txn
        .range(&table, Bound::Unbounded, Bound::Unbounded)
        .unwrap()
        .rev()
        .map(|e| {
            let (k, _) = e.unwrap();
            u16::from_le_bytes([k[0], k[1]])
        })
        .collect();
    assert_eq!(
        backward,
        forward.keys().rev().copied().collect::<Vec<_>>(),
        "backward scan disagrees"
    );
    for (k, v) in forward.iter().take(5) {
        assert_eq!(
            txn.get(&table, &key(*k)).unwrap().map(|v| v.into_vec()),
            Some(v.clone())
        );
    }
    assert_eq!(
        txn.len(&table).unwrap(),
        forward.len() as u64,
        "len disagrees with the entries"
    );
    forward
}

/// Commits of more than a few puts go straight into the tree.
fn tree_commit_options() -> EngineOptions {
    EngineOptions {
        tree_commit_bytes: 600,
        ..small_options()
    }
}

/// What the engines of one run did.
#[derive(Default)]
struct Counts {
    flushes: u64,
    tree_commits: u64,
    commits: u64,
}

impl Counts {
    fn add(&mut self, stats: sluicedb::engine::Stats) {
        self.flushes += stats.flushes;
        self.tree_commits += stats.tree_commits;
        self.commits += stats.commits;
    }
}

/// Runs `ops` on engines opened with `options`.
fn run(ops: &[Op], options: EngineOptions) -> Counts {
    let mut counts = Counts::default();
    let mut disk = Disk::new();
    let mut engine: Option<Engine> = Some(disk.open(options));
    // `committed`: every commit so far; `durable`: what a crash may recover,
    // from the last commit known durable (Immediate commits, waited pipelined
    // ones, checkpoints) through each unwaited commit after it.
    let (mut committed, mut working) = (Model::new(), Model::new());
    let mut durable = CrashOracle::new(Model::new());
    let mut snapshots: Vec<(ReadTxn, Model)> = Vec::new();
    let mut txn = None;
    for op in ops {
        let db = engine.as_ref().unwrap();
        if txn.is_none() {
            txn = Some(db.begin_write().unwrap());
        }
        let w = txn.as_mut().unwrap();
        let table = w.open_table(b"t", b"numeric", numeric).unwrap();
        match op {
            Op::Put(k, v) => {
                let old = w.insert(table, &key(*k), &value(*k, *v)).unwrap().map(|o| o.into_vec());
                assert_eq!(old, working.insert(*k, value(*k, *v)));
                assert_eq!(w.len(table).unwrap(), working.len() as u64, "len in the writer");
            }
            Op::Del(k) => {
                let old = w.remove(table, &key(*k)).unwrap().map(|o| o.into_vec());
                assert_eq!(old, working.remove(k));
                assert_eq!(w.len(table).unwrap(), working.len() as u64, "len in the writer");
            }
            Op::Commit | Op::CommitNoSync | Op::CommitPipelined => {
                let mut w = txn.take().unwrap();
                match op {
                    Op::CommitNoSync => {
                        w.set_durability(Durability::None);
                        w.commit().unwrap();
                        durable.unwaited(working.clone());
                    }
                    Op::CommitPipelined => {
                        let pending = w.commit_pipelined().unwrap();
                        pending.wait().unwrap();
                        durable.durable(working.clone());
                    }
                    _ => {
                        w.commit().unwrap();
                        durable.durable(working.clone());
                    }
                }
                committed = working.clone();
                // Read-your-writes: a new reader sees the commit at once.
                assert_eq!(read_all(&db.begin_read().unwrap()), committed);
            }
            Op::Abort => {
                txn.take().unwrap().abort();
                working = committed.clone();
            }
            Op::Snapshot => snapshots.push((db.begin_read().unwrap(), committed.clone())),
            Op::Checkpoint | Op::Compact => {
                drop(txn.take());
                working = committed.clone();
                if matches!(op, Op::Compact) {
                    db.compact().unwrap();
                } else {
                    db.checkpoint().unwrap();
                }
                durable.durable(committed.clone());
                db.check_integrity().unwrap();
            }
            Op::Reopen | Op::Crash(_) => {
                drop(txn.take());
                snapshots.clear();
                if let Op::Crash(seed) = op {
                    disk = disk.crashed(TearMode::Random(*seed));
                    counts.add(engine.take().unwrap().stats());
                } else {
                    counts.add(engine.take().unwrap().stats());
                    // A clean close drains the WAL: everything is durable.
                    durable.durable(committed.clone());
                }
                let reopened = disk.open(options);
                let state = read_all(&reopened.begin_read().unwrap());
                if matches!(op, Op::Reopen) {
                    assert_eq!(state, committed, "clean reopen lost commits");
                } else {
                    // Unwaited commits may or may not survive (the sync thread
                    // syncs them on its timer): the state is one of the
                    // commit-order prefixes at or after the last durable one.
                    assert!(
                        durable.allows(&state),
                        "crash recovered no commit-order prefix between the last durable state ({}) and the committed one ({})",
                        diff(&state, durable.last_durable()),
                        diff(&state, &committed)
                    );
                }
                reopened.check_integrity().unwrap();
                committed = state.clone();
                durable.durable(state.clone());
                working = state;
                engine = Some(reopened);
            }
        }
        for (snapshot, model) in &snapshots {
            assert_eq!(&read_all(snapshot), model, "a snapshot changed");
        }
    }
    if let Some(engine) = engine {
        counts.add(engine.stats());
    }
    counts
}

fn long_run() -> Vec<Op> {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    (0..3000)
        .map(|_| op().new_tree(&mut runner).unwrap().current())
        .collect()
}

/// One long deterministic run that must cross every stage many times.
#[test]
fn a_long_run_flushes_checkpoints_and_recovers() {
    let counts = run(&long_run(), small_options());
    assert!(
        counts.flushes > 5,
        "only {} flushes: the test does not reach the tree",
        counts.flushes
    );
}

/// The same run with the bigger commits written straight into the tree,
/// between commits through the WAL.
#[test]
fn a_long_run_with_tree_commits_recovers() {
    let counts = run(&long_run(), tree_commit_options());
    assert!(
        counts.tree_commits >= 20 && counts.commits >= counts.tree_commits + 20,
        "too few of each kind of commit: {} through the tree of {}",
        counts.tree_commits,
        counts.commits
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn engine_matches_model(ops in proptest::collection::vec(op(), 1..250)) {
        run(&ops, small_options());
    }

    #[test]
    fn engine_with_tree_commits_matches_model(ops in proptest::collection::vec(op(), 1..250)) {
        run(&ops, tree_commit_options());
    }
}
