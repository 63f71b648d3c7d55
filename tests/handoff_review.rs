//! Adversarial review of a big commit's hand-off to the inserter thread
//! (`engine::pending`, `WriteTxn::append_and_apply`): while a commit of at
//! least `HANDOFF_OPS` writes is inserted into the active memtable by the
//! inserter thread, its writes are read from the state's pending run.
//!
//! Every scenario runs a deterministic workload whose state after each
//! commit is known in advance (a model per commit). Each commit also writes
//! its number into a byte-ordered `meta` table, so a reader knows which model
//! its snapshot must match exactly: point gets (present and removed keys),
//! `len()`, whole ranges from both ends, first/last, and a cursor stepped
//! from both ends until they meet. The workload mixes big commits
//! (overwrites, removals of keys in the memtable or the tree, new keys),
//! small ones (with `pop_first`/`pop_last`), commits big enough to go
//! straight into the tree, and the three ways to end a commit (`Immediate`,
//! `None`, pipelined), in a byte-ordered and a numeric (non-bytewise) table,
//! with memtables large enough for a pending run to live beside readers and
//! tiny enough to be frozen by every big commit, with checkpoints and
//! compactions on request beside them. Further scenarios: power cuts right
//! after a big commit returns, the engine handle dropped with a hand-off in
//! flight, renames and recreated tables inside big commits, and big commits
//! over a table whose recovered records were deferred (unknown order).
//!
//! Written by an adversarial review; every scenario passed (no defect
//! found).

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use common::Rng;
use common::engine::{Disk, small_options};
use sluicedb::btree::{Comparator, bytewise};
use sluicedb::engine::{Durability, Engine, EngineOptions, MergedRange, PendingCommit, ReadTable, ReadTxn};
use sluicedb::io::TearMode;

/// Logical keys are below this (fits the numeric order's u16 keys).
const KEYS: u32 = 3000;

type Model = BTreeMap<u32, Vec<u8>>;

/// The data table's key order and how logical keys are encoded for it.
#[derive(Clone, Copy)]
struct Order {
    meta: &'static [u8],
    cmp: Comparator,
    numeric: bool,
}

const BYTES: Order = Order {
    meta: b"bytes",
    cmp: bytewise,
    numeric: false,
};

/// `common::numeric`: little-endian u16 keys in numeric order, which
/// disagrees with byte order.
const NUMERIC: Order = Order {
    meta: b"numeric",
    cmp: common::numeric,
    numeric: true,
};

impl Order {
    fn enc(self, k: u32) -> Vec<u8> {
        if self.numeric {
            u16::try_from(k).unwrap().to_le_bytes().to_vec()
        } else {
            k.to_be_bytes().to_vec()
        }
    }

    fn dec(self, b: &[u8]) -> u32 {
        if self.numeric {
            u32::from(u16::from_le_bytes(b.try_into().unwrap()))
        } else {
            u32::from_be_bytes(b.try_into().unwrap())
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// Key, value, the old value the writer must get back.
    Put(u32, Vec<u8>, Option<Vec<u8>>),
    Del(u32, Option<Vec<u8>>),
    /// A blind put (`WriteTxn::put`: no old value read).
    Blind(u32, Vec<u8>),
    /// Front (`true`) or back, and what the pop must return.
    Pop(bool, Option<(u32, Vec<u8>)>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum End {
    Immediate,
    NoSync,
    Pipelined,
    /// `commit_pipelined` with `Durability::None`: published at once,
    /// while the inserter may still be at work even for a custom order.
    PipelinedNoSync,
}

struct Spec {
    ops: Vec<Op>,
    end: End,
}

fn value(k: u32, c: u32, pad: usize) -> Vec<u8> {
    format!("k{k} c{c} {}", "v".repeat(pad)).into_bytes()
}

/// A deterministic workload of `commits` commits and the model after each
/// (index 0: before the first). `huge`: some commits are big enough for
/// `tree_commit_bytes` of [`HUGE_BYTES`].
fn workload(seed: u64, commits: u32, huge: bool, ends: &[End]) -> (Vec<Spec>, Vec<Model>) {
    let mut rng = Rng(seed);
    let mut model = Model::new();
    let mut specs = Vec::new();
    let mut models = vec![model.clone()];
    for c in 1..=commits {
        let kind = rng.below(10);
        let mut ops = Vec::new();
        let (n, pad) = match kind {
            // Big enough for the tree (about 90 KiB against 48 KiB).
            9 if huge => (400, 600),
            // Small: inline, with pops reading below the writer's view.
            6..=8 => (1 + rng.below(6) as usize, 4),
            // Big: handed off to the inserter.
            _ => (70 + rng.below(300) as usize, (c % 5) as usize * 3),
        };
        let existing = |model: &Model, rng: &mut Rng| -> Option<u32> {
            if model.is_empty() {
                return None;
            }
            // A random present key (the model is small enough to walk).
            let at = rng.below(model.len() as u64) as usize;
            model.keys().nth(at).copied()
        };
        for _ in 0..n {
            let r = rng.below(100);
            let op = if kind == 9 && huge {
                // Mostly new values: the commit stays big once its writes
                // to the same key collapse.
                let k = rng.below(u64::from(KEYS)) as u32;
                if r < 10 {
                    Op::Del(k, model.remove(&k))
                } else {
                    let v = value(k, c, pad);
                    Op::Put(k, v.clone(), model.insert(k, v))
                }
            } else if (6..=8).contains(&kind) && r < 25 {
                let front = r < 12;
                let popped = if front { model.pop_first() } else { model.pop_last() };
                Op::Pop(front, popped)
            } else if r < 40 {
                match existing(&model, &mut rng) {
                    Some(k) => {
                        let v = value(k, c, pad);
                        Op::Put(k, v.clone(), model.insert(k, v))
                    }
                    None => continue,
                }
            } else if r < 55 {
                match existing(&model, &mut rng) {
                    Some(k) => Op::Del(k, model.remove(&k)),
                    None => continue,
                }
            } else if r < 60 {
                // A removal of a key that may well be absent.
                let k = rng.below(u64::from(KEYS)) as u32;
                Op::Del(k, model.remove(&k))
            } else if r >= 90 {
                let k = rng.below(u64::from(KEYS)) as u32;
                let v = value(k, c, pad);
                model.insert(k, v.clone());
                Op::Blind(k, v)
            } else {
                let k = rng.below(u64::from(KEYS)) as u32;
                let v = value(k, c, pad);
                Op::Put(k, v.clone(), model.insert(k, v))
            };
            ops.push(op);
        }
        let end = ends[rng.below(ends.len() as u64) as usize];
        specs.push(Spec { ops, end });
        models.push(model.clone());
    }
    (specs, models)
}

const HUGE_BYTES: usize = 48 << 10;

/// Runs `f` on a thread and fails if it takes longer than `secs`.
fn watchdog<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let out = f();
        let _ = tx.send(());
        out
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => handle.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Ok(_) => unreachable!(),
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("watchdog: the test hung for {secs} s"),
    }
}

/// Applies commit `c` of `spec` in one write transaction, checking every
/// old value, every pop and the transaction's `len()` against the model
/// (the writer reads the previous commit, perhaps from its pending run).
/// Returns the pending commit for a pipelined end.
fn run_commit(db: &Engine, order: Order, c: u32, spec: &Spec, after: &Model) -> Option<PendingCommit> {
    let mut w = db.begin_write().unwrap();
    let t = w.open_table(b"t", order.meta, order.cmp).unwrap();
    let m = w.open_table(b"meta", b"bytes", bytewise).unwrap();
    for (i, op) in spec.ops.iter().enumerate() {
        match op {
            Op::Put(k, v, old) => {
                let got = w.insert(t, &order.enc(*k), v).unwrap().map(|v| v.as_bytes().to_vec());
                assert_eq!(&got, old, "commit {c} op {i}: insert of {k} returned a wrong old value");
            }
            Op::Del(k, old) => {
                let got = w.remove(t, &order.enc(*k)).unwrap().map(|v| v.as_bytes().to_vec());
                assert_eq!(&got, old, "commit {c} op {i}: remove of {k} returned a wrong old value");
            }
            Op::Blind(k, v) => w.put(t, &order.enc(*k), v).unwrap(),
            Op::Pop(front, want) => {
                let got = if *front { w.pop_first(t) } else { w.pop_last(t) }.unwrap();
                let got = got.map(|(k, v)| (order.dec(&k), v.as_bytes().to_vec()));
                assert_eq!(
                    &got, want,
                    "commit {c} op {i}: pop (front {front}) returned a wrong entry"
                );
            }
        }
    }
    w.insert(m, &[0], &c.to_be_bytes()).unwrap();
    // The writer's own ranges: its writes merged over the layers below
    // (the previous commit perhaps still a pending run).
    let mut want: Vec<(u32, Vec<u8>)> = after.iter().map(|(k, v)| (*k, v.clone())).collect();
    want.sort_by(|a, b| (order.cmp)(&order.enc(a.0), &order.enc(b.0)));
    let fwd = entries(w.range(t, Bound::Unbounded, Bound::Unbounded).unwrap(), order, false);
    assert!(
        fwd == want,
        "commit {c}: the writer's forward range disagrees with the model"
    );
    let mut back = entries(w.range(t, Bound::Unbounded, Bound::Unbounded).unwrap(), order, true);
    back.reverse();
    assert!(
        back == want,
        "commit {c}: the writer's backward range disagrees with the model"
    );
    assert_eq!(
        w.len(t).unwrap(),
        after.len() as u64,
        "commit {c}: the writer's len() before committing"
    );
    match spec.end {
        End::Immediate => {
            w.commit().unwrap();
            None
        }
        End::NoSync => {
            w.set_durability(Durability::None);
            w.commit().unwrap();
            None
        }
        End::Pipelined => Some(w.commit_pipelined().unwrap()),
        End::PipelinedNoSync => {
            w.set_durability(Durability::None);
            Some(w.commit_pipelined().unwrap())
        }
    }
}

fn entries(range: MergedRange<'static>, order: Order, backward: bool) -> Vec<(u32, Vec<u8>)> {
    let all: Vec<(u32, Vec<u8>)> = if backward {
        range
            .rev()
            .map(|e| {
                let (k, v) = e.unwrap();
                (order.dec(&k), v.as_bytes().to_vec())
            })
            .collect()
    } else {
        range
            .map(|e| {
                let (k, v) = e.unwrap();
                (order.dec(&k), v.as_bytes().to_vec())
            })
            .collect()
    };
    all
}

/// The commit number `txn` shows (0: none yet).
fn snapshot_commit(txn: &ReadTxn) -> u32 {
    let Some(m) = txn.open_table(b"meta", bytewise).unwrap() else {
        return 0;
    };
    let v = txn.get(&m, &[0]).unwrap().expect("meta key");
    u32::from_be_bytes(v.as_bytes().try_into().unwrap())
}

/// Checks every read of `t` (opened in `txn`, or `None` if the table is
/// missing) against `exp`, the model of commit `c`; `rng` picks the keys
/// and bounds.
fn check_table(txn: &ReadTxn, t: Option<&ReadTable>, order: Order, c: u32, exp: &Model, rng: &mut Rng, what: &str) {
    let Some(t) = t else {
        assert!(exp.is_empty(), "{what}: commit {c}: the table is missing");
        return;
    };
    // The model in the table's order.
    let mut want: Vec<(u32, Vec<u8>)> = exp.iter().map(|(k, v)| (*k, v.clone())).collect();
    want.sort_by(|a, b| (order.cmp)(&order.enc(a.0), &order.enc(b.0)));
    assert_eq!(
        txn.len(t).unwrap(),
        exp.len() as u64,
        "{what}: commit {c}: len() disagrees with the model"
    );
    let fwd = entries(txn.range(t, Bound::Unbounded, Bound::Unbounded).unwrap(), order, false);
    if fwd != want {
        let got: Vec<u32> = fwd.iter().map(|e| e.0).collect();
        let exp_keys: Vec<u32> = want.iter().map(|e| e.0).collect();
        let extra: Vec<_> = got.iter().filter(|k| !exp.contains_key(k)).collect();
        let missing: Vec<_> = exp_keys.iter().filter(|k| !got.contains(k)).collect();
        let wrong: Vec<_> = fwd
            .iter()
            .filter(|(k, v)| exp.get(k).is_some_and(|e| e != v))
            .map(|e| e.0)
            .collect();
        panic!(
            "{what}: commit {c}: forward range: {} entries, model {}; extra {extra:?}, missing {missing:?}, \
             wrong values at {wrong:?}",
            got.len(),
            want.len()
        );
    }
    let mut back = entries(txn.range(t, Bound::Unbounded, Bound::Unbounded).unwrap(), order, true);
    back.reverse();
    assert!(
        back == want,
        "{what}: commit {c}: backward range disagrees with the model"
    );
    // First and last.
    let mut r = txn.range(t, Bound::Unbounded, Bound::Unbounded).unwrap();
    let first = r.next().map(|e| order.dec(&e.unwrap().0));
    let last = r.next_back().map(|e| order.dec(&e.unwrap().0));
    assert_eq!(first, want.first().map(|e| e.0), "{what}: commit {c}: first");
    let want_last = if want.len() > 1 { want.last().map(|e| e.0) } else { None };
    assert_eq!(last, want_last, "{what}: commit {c}: last");
    // A cursor over random bounds, stepped from both ends until they meet.
    let (a, b) = (rng.below(u64::from(KEYS)) as u32, rng.below(u64::from(KEYS)) as u32);
    let (lo, hi) = if (order.cmp)(&order.enc(a), &order.enc(b)).is_le() {
        (a, b)
    } else {
        (b, a)
    };
    let (lo_b, hi_b) = (order.enc(lo), order.enc(hi));
    let mut r = txn
        .range(t, Bound::Included(&lo_b[..]), Bound::Excluded(&hi_b[..]))
        .unwrap();
    let sub: Vec<(u32, Vec<u8>)> = want
        .iter()
        .filter(|(k, _)| {
            let k = order.enc(*k);
            (order.cmp)(&k, &lo_b).is_ge() && (order.cmp)(&k, &hi_b).is_lt()
        })
        .cloned()
        .collect();
    let (mut front, mut backs) = (Vec::new(), Vec::new());
    loop {
        let step = if rng.chance(50) {
            r.next().map(|e| front.push(e.unwrap()))
        } else {
            r.next_back().map(|e| backs.push(e.unwrap()))
        };
        if step.is_none() {
            break;
        }
    }
    let mut got: Vec<(u32, Vec<u8>)> = front
        .into_iter()
        .map(|(k, v)| (order.dec(&k), v.as_bytes().to_vec()))
        .collect();
    got.extend(
        backs
            .into_iter()
            .rev()
            .map(|(k, v)| (order.dec(&k), v.as_bytes().to_vec())),
    );
    assert!(
        got == sub,
        "{what}: commit {c}: cursor over [{lo}, {hi}) from both ends: {} entries, model {}",
        got.len(),
        sub.len()
    );
    // Point reads, present and absent keys.
    for _ in 0..24 {
        let k = rng.below(u64::from(KEYS)) as u32;
        let got = txn.get(t, &order.enc(k)).unwrap().map(|v| v.as_bytes().to_vec());
        assert_eq!(got.as_ref(), exp.get(&k), "{what}: commit {c}: get({k})");
    }
}

/// Checks a whole snapshot; returns its commit number.
fn check_snapshot(txn: &ReadTxn, order: Order, models: &[Model], rng: &mut Rng, what: &str) -> u32 {
    let c = snapshot_commit(txn);
    let t = txn.open_table(b"t", order.cmp).unwrap();
    check_table(txn, t.as_ref(), order, c, &models[c as usize], rng, what);
    c
}

fn options(memtable_bytes: usize, huge: bool) -> EngineOptions {
    EngineOptions {
        memtable_bytes,
        max_frozen_bytes: (memtable_bytes * 16).max(256 << 10),
        tree_commit_bytes: if huge { HUGE_BYTES } else { 64 << 20 },
        ..small_options()
    }
}

/// The shared body of the reader scenarios: a writer runs the workload
/// (checking its own reads: old values, pops, ranges, `len()`) while two
/// readers check snapshots and a third thread checkpoints and compacts; a
/// read transaction (a table of it, and ranges half read from each end)
/// taken early is checked again at the end, then the database is reopened.
fn readers_see_whole_commits(order: Order, memtable_bytes: usize, seed: u64) {
    const COMMITS: u32 = 120;
    let ends = [End::Immediate, End::NoSync, End::Pipelined, End::PipelinedNoSync];
    let (specs, models) = workload(seed, COMMITS, true, &ends);
    let models = Arc::new(models);
    let disk = Disk::new();
    let db = Arc::new(disk.open(options(memtable_bytes, true)));
    let acked = Arc::new(AtomicU32::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2u64)
        .map(|r| {
            let (db, models, acked, done) = (db.clone(), models.clone(), acked.clone(), done.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(seed ^ ((r + 1) * 0x9E37_79B9));
                let (mut last, mut reads) = (0, 0u32);
                while !done.load(Ordering::Acquire) {
                    let floor = acked.load(Ordering::Acquire);
                    let txn = db.begin_read().unwrap();
                    let c = check_snapshot(&txn, order, &models, &mut rng, "reader");
                    assert!(
                        c >= floor,
                        "reader: snapshot of commit {c}, but {floor} was acknowledged"
                    );
                    assert!(c >= last, "reader: went back from commit {last} to {c}");
                    last = c;
                    reads += 1;
                }
                reads
            })
        })
        .collect();

    // Checkpoints and compactions on request, beside the hand-offs.
    let maintenance = {
        let (db, done) = (db.clone(), done.clone());
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !done.load(Ordering::Acquire) {
                db.checkpoint().unwrap();
                if n.is_multiple_of(4) {
                    db.compact().unwrap();
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(3));
            }
            n
        })
    };
    let mut rng = Rng(seed);
    let mut held: Option<(ReadTxn, Option<ReadTable>, u32)> = None;
    let mut saw_pending = 0u32;
    type Held = (MergedRange<'static>, Vec<u32>, MergedRange<'static>, Vec<u32>);
    let mut held_ranges: Option<Held> = None;
    let mut pipelined: Vec<(PendingCommit, u32)> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let c = i as u32 + 1;
        if c == 6 {
            let txn = db.begin_read().unwrap();
            let t = txn.open_table(b"t", order.cmp).unwrap();
            let at = snapshot_commit(&txn);
            // Ranges of it from both ends, half read now, the rest at the end.
            if let Some(t) = &t {
                let mut fwd = txn.range(t, Bound::Unbounded, Bound::Unbounded).unwrap();
                let mut back = txn.range(t, Bound::Unbounded, Bound::Unbounded).unwrap();
                let half = models[at as usize].len() / 2;
                let front: Vec<_> = fwd.by_ref().take(half).map(|e| order.dec(&e.unwrap().0)).collect();
                let rear: Vec<_> = back
                    .by_ref()
                    .rev()
                    .take(half)
                    .map(|e| order.dec(&e.unwrap().0))
                    .collect();
                held_ranges = Some((fwd, front, back, rear));
            }
            held = Some((txn, t, at));
        }
        if let Some(p) = run_commit(&db, order, c, spec, &models[c as usize]) {
            pipelined.push((p, c));
            if pipelined.len() > 2 {
                let (p, _) = pipelined.remove(0);
                p.wait().unwrap();
            }
        } else {
            acked.fetch_max(c, Ordering::Release);
            // Visible to a read begun now, whatever the inserter's progress.
            let txn = db.begin_read().unwrap();
            if let Some(t) = txn.open_table(b"t", order.cmp).unwrap() {
                saw_pending += u32::from(t.ranges_read_a_pending_run());
            }
            let seen = check_snapshot(&txn, order, &models, &mut rng, "writer's read after commit");
            assert!(seen >= c, "commit {c} returned but a read after it shows {seen}");
        }
    }
    for (p, c) in pipelined {
        p.wait().unwrap();
        acked.fetch_max(c, Ordering::Release);
    }
    // Not asserted (it depends on timing): how often a read right after a
    // commit found the inserter still at work.
    eprintln!("reads of a pending run right after a commit: {saw_pending}");
    done.store(true, Ordering::Release);
    for reader in readers {
        assert!(reader.join().unwrap() > 0, "a reader never read");
    }
    assert!(maintenance.join().unwrap() > 0);
    let (txn, t, at) = held.unwrap();
    let keys: Vec<u32> = models[at as usize].keys().copied().collect();
    if let Some((fwd, mut front, back, mut rear)) = held_ranges {
        front.extend(fwd.map(|e| order.dec(&e.unwrap().0)));
        rear.extend(back.rev().map(|e| order.dec(&e.unwrap().0)));
        rear.reverse();
        assert!(front == keys, "a forward range held across the commits changed");
        assert!(rear == keys, "a backward range held across the commits changed");
    }
    check_table(
        &txn,
        t.as_ref(),
        order,
        at,
        &models[at as usize],
        &mut rng,
        "held table",
    );
    assert_eq!(check_snapshot(&txn, order, &models, &mut rng, "held read"), at);
    let txn = db.begin_read().unwrap();
    assert_eq!(check_snapshot(&txn, order, &models, &mut rng, "final"), COMMITS);
    db.check_integrity().unwrap();
    let stats = db.stats();
    assert!(stats.tree_commits > 0, "no commit went through the tree: {stats:?}");

    // A clean close and reopen keeps the last state, len() exact.
    drop(txn);
    drop(db);
    let db = disk.open(options(memtable_bytes, true));
    let txn = db.begin_read().unwrap();
    assert_eq!(check_snapshot(&txn, order, &models, &mut rng, "reopened"), COMMITS);
}

/// Byte-ordered table, memtables big enough that a pending run lives beside
/// the readers: every snapshot is exactly one commit's model (gets, len,
/// ranges from both ends, first/last, two-ended cursor), writers get the
/// right old values and pops from a pending run, a held read never changes.
#[test]
fn bytewise_readers_see_each_big_commit_whole() {
    watchdog(120, || readers_see_whole_commits(BYTES, 256 << 10, 0x5EED_0001));
}

/// The same with a numeric (non-bytewise) key order.
#[test]
fn custom_order_readers_see_each_big_commit_whole() {
    watchdog(120, || readers_see_whole_commits(NUMERIC, 256 << 10, 0x5EED_0002));
}

/// Byte order with tiny memtables: every big commit freezes the memtable
/// the inserter is filling, and the apply thread flushes beside readers.
#[test]
fn bytewise_big_commits_racing_freezes_and_flushes() {
    watchdog(120, || readers_see_whole_commits(BYTES, 4 << 10, 0x5EED_0003));
}

/// Numeric order with tiny memtables.
#[test]
fn custom_order_big_commits_racing_freezes_and_flushes() {
    watchdog(120, || readers_see_whole_commits(NUMERIC, 4 << 10, 0x5EED_0004));
}

/// Several big commits pipelined in a row over the same keys, then small
/// pipelined ones rewriting some of them: each next writer, reading before
/// anything is waited for, sees the newest value of every key; after the
/// waits, a reader too.
#[test]
fn pipelined_big_commits_then_small_ones_newest_wins() {
    watchdog(60, || {
        for order in [BYTES, NUMERIC] {
            let db = Disk::new().open(options(256 << 10, false));
            let mut pending = Vec::new();
            let key_value = |k: u32, round: u32| {
                if round < 5 {
                    value(k, round, 0)
                } else {
                    value(k, round, 9)
                }
            };
            for round in 0..8u32 {
                let mut w = db.begin_write().unwrap();
                let t = w.open_table(b"t", order.meta, order.cmp).unwrap();
                let m = w.open_table(b"meta", b"bytes", bytewise).unwrap();
                // Rounds 0-4: 400 keys each (big); 5-7: keys 0..5 (small).
                let keys = if round < 5 { 400 } else { 5 };
                for k in 0..keys {
                    // Every key's previous value: the last round that wrote it.
                    let prev = (0..round).rev().find(|&r| r < 5 || k < 5);
                    let got = w.get(t, &order.enc(k)).unwrap().map(|v| v.as_bytes().to_vec());
                    let want = prev.filter(|&r| !(r == 3 && k % 50 == 7)).map(|r| key_value(k, r));
                    assert_eq!(got, want, "round {round}: get({k}) before writing");
                    // Remove a few in round 3, which round 4 puts back.
                    if round == 3 && k % 50 == 7 {
                        w.remove(t, &order.enc(k)).unwrap();
                    } else {
                        w.insert(t, &order.enc(k), &key_value(k, round)).unwrap();
                    }
                }
                w.insert(m, &[0], &(round + 1).to_be_bytes()).unwrap();
                pending.push(w.commit_pipelined().unwrap());
            }
            for p in pending {
                p.wait().unwrap();
            }
            let mut model = Model::new();
            for k in 0..400 {
                model.insert(k, key_value(k, if k < 5 { 7 } else { 4 }));
            }
            let txn = db.begin_read().unwrap();
            let t = txn.open_table(b"t", order.cmp).unwrap();
            check_table(&txn, t.as_ref(), order, 8, &model, &mut Rng(7), "after the pipeline");
        }
    });
}

/// Power cuts right after a big commit returned (the inserter typically
/// still inserting it), with commits ended `Immediate` or pipelined: each
/// crash image reopens to a state that is exactly one allowed commit's
/// model (every acknowledged commit whole; a pipelined one after it whole
/// or absent), with `len()` exact and the integrity check clean.
#[test]
fn power_cut_while_the_inserter_is_mid_way() {
    watchdog(120, || {
        for (order, seed) in [(BYTES, 0xC0FF_EE01u64), (NUMERIC, 0xC0FF_EE02)] {
            const COMMITS: u32 = 30;
            let opts = || EngineOptions {
                checkpoint_wal_bytes: 24 << 10,
                ..options(64 << 10, true)
            };
            let ends = [End::Immediate, End::NoSync, End::Pipelined, End::PipelinedNoSync];
            let (specs, models) = workload(seed, COMMITS, true, &ends);
            let disk = Disk::new();
            let db = disk.open(opts());
            let mut images: Vec<(Disk, u32, u32, u32)> = Vec::new();
            let mut durable = 0;
            let mut pipelined: Vec<(PendingCommit, u32)> = Vec::new();
            for (i, spec) in specs.iter().enumerate() {
                let c = i as u32 + 1;
                match run_commit(&db, order, c, spec, &models[c as usize]) {
                    None if spec.end == End::Immediate => durable = c,
                    None => {}
                    Some(p) => pipelined.push((p, c)),
                }
                pipelined.retain(|(p, c)| {
                    if p.is_durable() {
                        durable = durable.max(*c);
                    }
                    !p.is_durable()
                });
                let mode = match c % 3 {
                    0 => TearMode::DropAll,
                    1 => TearMode::KeepAll,
                    _ => TearMode::Random(u64::from(c) * 31 + seed),
                };
                images.push((disk.crashed(mode), durable, c, c));
            }
            drop(pipelined);
            drop(db);
            let mut rng = Rng(seed);
            for (image, durable, last, at) in images {
                let db = image.open(opts());
                let txn = db.begin_read().unwrap();
                let what = format!("image after commit {at}");
                let c = check_snapshot(&txn, order, &models, &mut rng, &what);
                assert!(
                    (durable..=last).contains(&c),
                    "{what}: recovered commit {c}, allowed {durable}..={last}"
                );
                db.check_integrity().unwrap();
            }
        }
    });
}

/// The engine handle dropped right after a big commit returned (its insert
/// in flight): a read transaction taken before the drop still reads the
/// commit whole; a write transaction that outlived the handle commits a big
/// commit (inserted without the inserter thread); reopening the files has
/// both commits whole, `len()` exact.
#[test]
fn engine_dropped_while_a_handoff_is_in_flight() {
    watchdog(60, || {
        for order in [BYTES, NUMERIC] {
            let big: Vec<Op> = (0..500).map(|k| Op::Put(k, value(k, 1, 3), None)).collect();
            let mut m1 = Model::new();
            for k in 0..500 {
                m1.insert(k, value(k, 1, 3));
            }
            let mut m2 = m1.clone();
            let mut second = Vec::new();
            for k in (0..700).step_by(2) {
                if k % 4 == 0 && k < 500 {
                    second.push(Op::Del(k, m2.remove(&k)));
                } else {
                    let v = value(k, 2, 5);
                    second.push(Op::Put(k, v.clone(), m2.insert(k, v)));
                }
            }
            let specs = [
                Spec {
                    ops: big,
                    end: End::Immediate,
                },
                Spec {
                    ops: second,
                    end: End::Immediate,
                },
            ];
            let models = vec![Model::new(), m1, m2];
            let mut rng = Rng(3);
            let disk = Disk::new();
            let db = disk.open(options(256 << 10, false));
            run_commit(&db, order, 1, &specs[0], &models[1]);
            let txn = db.begin_read().unwrap();
            let outliving = db.begin_write();
            drop(db);
            assert_eq!(
                check_snapshot(&txn, order, &models, &mut rng, "read across the drop"),
                1
            );
            // The writer that outlived the handle: the inserter thread is gone.
            let mut w = outliving.unwrap();
            let t = w.open_table(b"t", order.meta, order.cmp).unwrap();
            let m = w.open_table(b"meta", b"bytes", bytewise).unwrap();
            for op in &specs[1].ops {
                match op {
                    Op::Put(k, v, old) => {
                        let got = w.insert(t, &order.enc(*k), v).unwrap().map(|v| v.as_bytes().to_vec());
                        assert_eq!(&got, old);
                    }
                    Op::Del(k, old) => {
                        let got = w.remove(t, &order.enc(*k)).unwrap().map(|v| v.as_bytes().to_vec());
                        assert_eq!(&got, old);
                    }
                    Op::Blind(..) | Op::Pop(..) => unreachable!(),
                }
            }
            w.insert(m, &[0], &2u32.to_be_bytes()).unwrap();
            w.commit().unwrap();
            assert_eq!(check_snapshot(&txn, order, &models, &mut rng, "old read after"), 1);
            drop(txn);
            let db = disk.open(options(256 << 10, false));
            let txn = db.begin_read().unwrap();
            assert_eq!(check_snapshot(&txn, order, &models, &mut rng, "reopened"), 2);
            db.check_integrity().unwrap();
        }
    });
}

fn order_of(name: &str) -> Order {
    if name == "c" { NUMERIC } else { BYTES }
}

/// Checks tables `a`, `b` and `c` of a new snapshot against the model of
/// its commit; returns the commit.
fn check_tables(db: &Engine, models: &[BTreeMap<&'static str, Model>], rng: &mut Rng, what: &str) -> u32 {
    let txn = db.begin_read().unwrap();
    let c = snapshot_commit(&txn);
    for name in ["a", "b", "c"] {
        let order = order_of(name);
        let t = txn.open_table(name.as_bytes(), order.cmp).unwrap();
        let empty = Model::new();
        let exp = models[c as usize].get(name).unwrap_or(&empty);
        check_table(&txn, t.as_ref(), order, c, exp, rng, &format!("{what}, table {name}"));
    }
    c
}

/// Big commits that also swap two tables' names (renames) and delete and
/// recreate a third (numeric order) before writing it: a reader sees every
/// table's name, contents and `len()` as of exactly one commit, while the
/// inserter inserts the data under the new table ids.
#[test]
fn big_commits_that_rename_and_recreate_tables() {
    watchdog(90, || {
        const COMMITS: u32 = 40;
        // The model after each commit: table name to contents.
        let mut models: Vec<BTreeMap<&'static str, Model>> = vec![BTreeMap::new()];
        for r in 1..=COMMITS {
            let mut m = models.last().unwrap().clone();
            if let (Some(a), Some(b)) = (m.remove("a"), m.remove("b")) {
                m.insert("a", b);
                m.insert("b", a);
            }
            let a = m.entry("a").or_default();
            for k in 0..100 {
                let k = (r * 37 + k * 3) % 600;
                a.insert(k, value(k, r, 2));
            }
            for k in 0..10 {
                a.remove(&((r * 11 + k * 13) % 600));
            }
            m.entry("b").or_default();
            let c: Model = (0..70).map(|k| ((k * 7 + r) % 900, value(k, r, 1))).collect();
            m.insert("c", c);
            models.push(m);
        }
        let models = Arc::new(models);
        let db = Arc::new(Disk::new().open(options(32 << 10, false)));
        let done = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2u64)
            .map(|i| {
                let (db, models, done) = (db.clone(), models.clone(), done.clone());
                std::thread::spawn(move || {
                    let mut rng = Rng(0xAB + i);
                    let (mut last, mut reads) = (0, 0u32);
                    while !done.load(Ordering::Acquire) {
                        let c = check_tables(&db, &models, &mut rng, "reader");
                        assert!(c >= last, "reader went back from {last} to {c}");
                        last = c;
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        let mut rng = Rng(0xCD);
        let mut pipelined = Vec::new();
        for r in 1..=COMMITS {
            let mut w = db.begin_write().unwrap();
            if r > 1 {
                assert!(w.rename_table(b"a", b"tmp").unwrap());
                assert!(w.rename_table(b"b", b"a").unwrap());
                assert!(w.rename_table(b"tmp", b"b").unwrap());
                assert!(w.delete_table(b"c").unwrap());
            }
            let a = w.open_table(b"a", b"bytes", bytewise).unwrap();
            for k in 0..100 {
                let k = (r * 37 + k * 3) % 600;
                w.insert(a, &k.to_be_bytes(), &value(k, r, 2)).unwrap();
            }
            for k in 0..10 {
                w.remove(a, &((r * 11 + k * 13) % 600).to_be_bytes()).unwrap();
            }
            w.open_table(b"b", b"bytes", bytewise).unwrap();
            let c = w.open_table(b"c", b"numeric", common::numeric).unwrap();
            for k in 0..70u32 {
                w.insert(c, &NUMERIC.enc((k * 7 + r) % 900), &value(k, r, 1)).unwrap();
            }
            let m = w.open_table(b"meta", b"bytes", bytewise).unwrap();
            w.insert(m, &[0], &r.to_be_bytes()).unwrap();
            match r % 3 {
                0 => w.commit().unwrap(),
                1 => pipelined.push(w.commit_pipelined().unwrap()),
                _ => {
                    w.set_durability(Durability::None);
                    w.commit().unwrap();
                    assert!(check_tables(&db, &models, &mut rng, "after commit") >= r);
                }
            }
        }
        for p in pipelined {
            p.wait().unwrap();
        }
        done.store(true, Ordering::Release);
        for reader in readers {
            assert!(reader.join().unwrap() > 0);
        }
        assert_eq!(check_tables(&db, &models, &mut rng, "final"), COMMITS);
        db.check_integrity().unwrap();
    });
}

/// A big commit ended with `commit_pipelined` (not waited for) and the
/// engine handle dropped at once: a read taken before the drop reads it
/// whole, and the reopened files hold it whole or not at all, `len()`
/// exact.
#[test]
fn pipelined_big_commit_then_drop() {
    watchdog(60, || {
        for order in [BYTES, NUMERIC] {
            let (specs, models) = workload(0xF00D, 12, false, &[End::Pipelined]);
            let disk = Disk::new();
            let db = disk.open(options(64 << 10, false));
            let mut rng = Rng(5);
            let mut pending = Vec::new();
            for (i, spec) in specs.iter().enumerate() {
                let c = i as u32 + 1;
                pending.extend(run_commit(&db, order, c, spec, &models[c as usize]));
            }
            // All but the last waited for: a read sees commit 11 at least.
            let last = pending.pop();
            for p in pending {
                p.wait().unwrap();
            }
            let txn = db.begin_read().unwrap();
            drop(db);
            let seen = check_snapshot(&txn, order, &models, &mut rng, "read across the drop");
            drop(last);
            drop(txn);
            let db = disk.open(options(64 << 10, false));
            let txn = db.begin_read().unwrap();
            let c = check_snapshot(&txn, order, &models, &mut rng, "reopened");
            // Pipelined commits are published once durable: what a reader
            // saw survives the clean close.
            assert!(seen >= 11, "commit 11 was waited for, a read shows {seen}");
            assert!(
                c >= seen,
                "reopened after a clean close at commit {c}, a read before it saw {seen}"
            );
            eprintln!("pipelined then drop: read before the drop saw {seen}, reopened at {c}");
            db.check_integrity().unwrap();
        }
    });
}

/// Reverse byte order, unknown to the test resolver: recovery defers the
/// table's records until an open names the order.
const REVERSE: Order = Order {
    meta: common::engine::REVERSE_META,
    cmp: common::engine::reverse,
    numeric: false,
};

/// A reverse-ordered table whose records recovery deferred (its order
/// unknown at open) gets big commits (visible at once, `None` pipelined)
/// overwriting and removing recovered keys: every read matches the model
/// in the table's order, `len()` exact, while the pending run sits above
/// the recovered overlay; again after a clean reopen.
#[test]
fn big_commits_over_a_deferred_custom_order_table() {
    watchdog(60, || {
        let opts = || options(256 << 10, false);
        let disk = Disk::new();
        let db = disk.open(opts());
        let mut model = Model::new();
        let commit = |db: &Engine, c: u32, ops: Vec<Op>, end: End, model: &mut Model| {
            for op in &ops {
                match op {
                    Op::Put(k, v, _) | Op::Blind(k, v) => {
                        model.insert(*k, v.clone());
                    }
                    Op::Del(k, _) => {
                        model.remove(k);
                    }
                    Op::Pop(..) => unreachable!(),
                }
            }
            // Old values are checked against the model as it was.
            run_commit(db, REVERSE, c, &Spec { ops, end }, model)
        };
        let with_old = |model: &Model, ops: Vec<(u32, Option<Vec<u8>>)>| -> Vec<Op> {
            let mut m = model.clone();
            ops.into_iter()
                .map(|(k, v)| match v {
                    Some(v) => Op::Put(k, v.clone(), m.insert(k, v)),
                    None => Op::Del(k, m.remove(&k)),
                })
                .collect()
        };
        let ops = with_old(&model, (0..300).map(|k| (k, Some(value(k, 1, 2)))).collect());
        commit(&db, 1, ops, End::Immediate, &mut model);
        let ops = with_old(&model, (0..5).map(|k| (k * 50, Some(value(k, 2, 2)))).collect());
        commit(&db, 2, ops, End::Immediate, &mut model);
        let image = disk.crashed(TearMode::DropAll);
        drop(db);

        let db = image.open(opts());
        assert!(db.stats().recovery.deferred_records > 0, "nothing was deferred");
        let mut rng = Rng(11);
        let mut pending = Vec::new();
        for c in 3..=6u32 {
            let ops: Vec<(u32, Option<Vec<u8>>)> = (0..400u32)
                .map(|i| (i * 7 + c) % 500)
                .map(|k| {
                    (
                        k,
                        if k % 3 == 0 {
                            None
                        } else {
                            Some(value(k, c, c as usize))
                        },
                    )
                })
                .collect();
            let ops = with_old(&model, ops);
            pending.extend(commit(&db, c, ops, End::PipelinedNoSync, &mut model));
            let txn = db.begin_read().unwrap();
            let t = txn.open_table(b"t", REVERSE.cmp).unwrap();
            assert_eq!(snapshot_commit(&txn), c);
            check_table(&txn, t.as_ref(), REVERSE, c, &model, &mut rng, "after a big commit");
        }
        for p in pending {
            p.wait().unwrap();
        }
        db.check_integrity().unwrap();
        drop(db);
        let db = image.open(opts());
        let txn = db.begin_read().unwrap();
        let t = txn.open_table(b"t", REVERSE.cmp).unwrap();
        assert_eq!(snapshot_commit(&txn), 6);
        check_table(&txn, t.as_ref(), REVERSE, 6, &model, &mut rng, "reopened");
    });
}
