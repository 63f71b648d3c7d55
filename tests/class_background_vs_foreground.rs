//! The class of defects 2 and 3: background work (flushes, checkpoints by
//! volume and by time) and foreground work (commits of either durability,
//! `checkpoint()`, `compact()`) must neither starve nor undo each other.
//!
//! A property test over random interleavings: commits of both durabilities
//! and pipelined ones, requested checkpoints, compactions, races of a writer
//! thread against a checkpoint or a compaction, and power cuts. After every
//! cut the crash image opens, passes the integrity check, and holds a prefix
//! of the commit order, every commit whole, containing every commit known
//! durable (acknowledged `Immediate`, or followed by a completed
//! `checkpoint()` or `compact()`). Work then carries on from the image. Each
//! race is also followed by a check of the image a cut would leave then.

mod common;

use std::ops::Bound;
use std::sync::Arc;

use common::engine::{Disk, small_options};
use proptest::prelude::*;
use sluicedb::btree::bytewise;
use sluicedb::engine::{Durability, Engine, EngineOptions};
use sluicedb::io::TearMode;

/// Checkpoints by volume every few commits, so background checkpoints and
/// WAL deletion interleave with everything else.
fn options() -> EngineOptions {
    EngineOptions {
        memtable_bytes: 2 << 10,
        checkpoint_wal_bytes: 3 << 10,
        segment_bytes: 1 << 10,
        ..small_options()
    }
}

#[derive(Clone, Copy, Debug)]
enum How {
    Immediate,
    None,
    /// `commit_pipelined`, never waited for.
    Pipelined,
}

#[derive(Clone, Copy, Debug)]
enum Foreground {
    Checkpoint,
    Compact,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Commit {
        keys: u8,
        how: How,
    },
    Checkpoint,
    Compact,
    /// A writer thread makes `commits` commits while this thread runs `fg`.
    Race {
        commits: u8,
        fg: Foreground,
    },
    Crash {
        mode: u8,
    },
}

fn how() -> impl Strategy<Value = How> {
    prop_oneof![Just(How::Immediate), Just(How::None), Just(How::Pipelined)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..6, how()).prop_map(|(keys, how)| Op::Commit { keys, how }),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Compact),
        3 => (1u8..80, prop_oneof![Just(Foreground::Checkpoint), Just(Foreground::Compact)])
            .prop_map(|(commits, fg)| Op::Race { commits, fg }),
        1 => any::<u8>().prop_map(|mode| Op::Crash { mode }),
    ]
}

fn key(i: u64, j: u8) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[..8].copy_from_slice(&i.to_be_bytes());
    k[8] = j;
    k
}

fn value(i: u64, j: u8) -> Vec<u8> {
    format!("commit {i} key {j} {}", "x".repeat((i % 11 * 17) as usize)).into_bytes()
}

/// Commit `i` with `keys` keys; returns whether it is known durable.
fn commit(db: &Engine, i: u64, keys: u8, how: How) -> bool {
    let mut w = db.begin_write().unwrap();
    let t = w.open_table(b"log", b"bytes", bytewise).unwrap();
    for j in 0..keys {
        w.insert(t, &key(i, j), &value(i, j)).unwrap();
    }
    match how {
        How::Immediate => {
            w.commit().unwrap();
            true
        }
        How::None => {
            w.set_durability(Durability::None);
            w.commit().unwrap();
            false
        }
        How::Pipelined => {
            drop(w.commit_pipelined().unwrap());
            false
        }
    }
}

/// The model: how many keys each commit wrote (index 0 unused), and the
/// highest commit known durable.
struct Model {
    sizes: Vec<u8>,
    durable: u64,
}

impl Model {
    fn next(&self) -> u64 {
        self.sizes.len() as u64
    }

    /// Everything committed so far is durable.
    fn all_durable(&mut self) {
        self.durable = self.next() - 1;
    }
}

/// Opens a crash image and checks it against the model; returns the engine
/// and the last commit it holds.
fn recover(disk: &Disk, model: &Model, ops: &[Op]) -> (Engine, u64) {
    let db = Engine::open(disk.data.clone(), disk.wal.clone(), options())
        .unwrap_or_else(|e| panic!("the crash image does not open: {e}; ops {ops:?}"));
    db.check_integrity()
        .unwrap_or_else(|e| panic!("integrity check failed: {e}; ops {ops:?}"));
    let txn = db.begin_read().unwrap();
    let mut last = 0u64;
    if let Some(t) = txn.open_table(b"log", bytewise).unwrap() {
        let mut expect = (1u64, 0u8);
        for entry in txn.range(&t, Bound::Unbounded, Bound::Unbounded).unwrap() {
            let (k, v) = entry.unwrap();
            let i = u64::from_be_bytes(k[..8].try_into().unwrap());
            let j = k[8];
            if (i, j) != expect {
                // The previous commit must be whole before the next begins.
                assert!(
                    j == 0 && i == expect.0 + 1 && expect.1 == model.sizes[expect.0 as usize],
                    "not a prefix of whole commits at commit {i} key {j} (expected {expect:?}); ops {ops:?}"
                );
            }
            assert_eq!(v.as_bytes(), value(i, j), "commit {i} key {j} damaged; ops {ops:?}");
            last = i;
            expect = (i, j + 1);
        }
        if last > 0 {
            assert_eq!(
                expect.1, model.sizes[last as usize],
                "commit {last} is partial; ops {ops:?}"
            );
        }
    }
    assert!(
        last >= model.durable,
        "commit {} was known durable, the image holds up to {last}; ops {ops:?}",
        model.durable
    );
    drop(txn);
    (db, last)
}

fn tear(mode: u8) -> TearMode {
    match mode % 4 {
        0 => TearMode::DropAll,
        1 => TearMode::KeepAll,
        _ => TearMode::Random(mode as u64),
    }
}

fn run(ops: &[Op]) {
    let mut disk = Disk::new();
    let mut db = Arc::new(disk.open(options()));
    let mut model = Model {
        sizes: vec![0],
        durable: 0,
    };
    for (n, &op) in ops.iter().enumerate() {
        match op {
            Op::Commit { keys, how } => {
                let i = model.next();
                model.sizes.push(keys);
                if commit(&db, i, keys, how) {
                    model.durable = i;
                }
            }
            Op::Checkpoint => {
                db.checkpoint().unwrap();
                model.all_durable();
            }
            Op::Compact => {
                db.compact().unwrap();
                model.all_durable();
            }
            Op::Race { commits, fg } => {
                let first = model.next();
                let writer = {
                    let db = db.clone();
                    std::thread::spawn(move || {
                        let mut acked = 0;
                        for c in 0..commits as u64 {
                            let i = first + c;
                            let how = [How::None, How::Immediate, How::Pipelined][(i % 3) as usize];
                            if commit(&db, i, (i % 4 + 1) as u8, how) {
                                acked = i;
                            }
                        }
                        acked
                    })
                };
                match fg {
                    Foreground::Checkpoint => db.checkpoint().unwrap(),
                    Foreground::Compact => {
                        db.compact().unwrap();
                    }
                }
                let acked = writer.join().unwrap();
                model
                    .sizes
                    .extend((0..commits as u64).map(|c| ((first + c) % 4 + 1) as u8));
                model.durable = model.durable.max(acked);
                // Whatever the race left on disk must already be a valid
                // crash image (a later checkpoint could repair the damage
                // before the next power cut).
                recover(&disk.crashed(TearMode::DropAll), &model, &ops[..=n]);
            }
            Op::Crash { mode } => {
                let image = disk.crashed(tear(mode));
                let (reopened, last) = recover(&image, &model, &ops[..=n]);
                drop(std::mem::replace(&mut db, Arc::new(reopened)));
                disk = image;
                model.sizes.truncate(last as usize + 1);
                model.durable = last;
            }
        }
    }
    // A last power cut after everything.
    recover(&disk.crashed(TearMode::DropAll), &model, ops);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn background_and_foreground_work_never_lose_durable_commits(
        ops in proptest::collection::vec(op(), 1..20)
    ) {
        run(&ops);
    }
}
