//! Property test: random operations on the B+tree against a `BTreeMap` model,
//! with commits of both kinds, aborts, pinned snapshots, range reads in both
//! directions, simulated crashes and reopens.

mod common;

use std::ops::Bound;
use std::sync::Arc;

use common::{Model, TREE, check, key, numeric, read_all, value, writer_read_all};
use proptest::prelude::*;
use sluicedb::btree::{Snapshot, TreeStore, TreeStoreOptions};
use sluicedb::io::{CrashBackend, TearMode};

#[derive(Clone, Debug)]
enum Op {
    Insert(u16, u16),
    Remove(u16),
    /// A sorted batch: puts and deletes over a key range.
    Batch(u16, u16, bool),
    NonDurableCommit,
    DurableCommit,
    Abort,
    TakeSnapshot,
    DropSnapshot,
    /// A range read: lower and upper key, each bound's kind (0 included,
    /// 1 excluded, 2 unbounded), and which end each step reads from (bit
    /// `i % 32` set: the back), so forward, backward and interleaved reads
    /// are all checked.
    Range(u16, u16, u8, u8, u32),
    CrashAndReopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        20 => (0u16..600, 0u16..1200).prop_map(|(k, v)| Op::Insert(k, v)),
        8 => (0u16..600).prop_map(Op::Remove),
        4 => (0u16..600, 1u16..200, any::<bool>()).prop_map(|(a, n, d)| Op::Batch(a, n, d)),
        3 => Just(Op::NonDurableCommit),
        3 => Just(Op::DurableCommit),
        2 => Just(Op::Abort),
        2 => Just(Op::TakeSnapshot),
        1 => Just(Op::DropSnapshot),
        3 => (
            0u16..600,
            0u16..600,
            0u8..3,
            0u8..3,
            prop_oneof![Just(0u32), Just(u32::MAX), any::<u32>()]
        )
            .prop_map(|(a, b, lo, hi, ends)| Op::Range(a, b, lo, hi, ends)),
        1 => Just(Op::CrashAndReopen),
    ]
}

/// Value lengths span inline values and overflow runs (over 1 KiB).
fn value_for(k: u16, v: u16) -> Vec<u8> {
    let len = if v.is_multiple_of(97) {
        1500 + v as usize * 7
    } else {
        (v % 180) as usize
    };
    value(u64::from(k) << 16 | u64::from(v), len)
}

struct Harness {
    backend: Arc<CrashBackend>,
    store: TreeStore,
    crashes: u64,
    /// Uncommitted changes, as the writer should see them.
    working: Model,
    published: Model,
    durable: Model,
    snapshots: Vec<(Snapshot, Model)>,
}

impl Harness {
    fn run_all(&mut self, mut ops: &[Op]) {
        while !ops.is_empty() {
            let done = self.run(ops);
            ops = &ops[done..];
        }
    }

    /// Runs `ops` up to and including the first crash; returns how many ran.
    fn run(&mut self, ops: &[Op]) -> usize {
        let store = self.store.clone();
        let mut writer = Some(store.writer().unwrap());
        for (index, op) in ops.iter().enumerate() {
            let w = writer.as_mut().unwrap();
            match op {
                Op::Insert(k, v) => {
                    let v = value_for(*k, *v);
                    let old = w.insert(TREE, numeric, &key(*k), &v).unwrap();
                    assert_eq!(old.map(|o| o.into_vec()), self.working.insert(*k, v));
                }
                Op::Remove(k) => {
                    let old = w.remove(TREE, numeric, &key(*k)).unwrap();
                    assert_eq!(old.map(|o| o.into_vec()), self.working.remove(k));
                }
                Op::Batch(start, n, delete_odd) => {
                    let keys: Vec<u16> = (*start..start.saturating_add(*n)).collect();
                    let encoded: Vec<([u8; 2], Option<Vec<u8>>)> = keys
                        .iter()
                        .map(|&k| (key(k), (!(*delete_odd && k % 2 == 1)).then(|| value_for(k, k ^ 0x55))))
                        .collect();
                    let batch: Vec<(&[u8], Option<&[u8]>)> =
                        encoded.iter().map(|(k, v)| (&k[..], v.as_deref())).collect();
                    w.apply(TREE, numeric, &batch).unwrap();
                    for (&k, (_, v)) in keys.iter().zip(&encoded) {
                        match v {
                            Some(v) => self.working.insert(k, v.clone()),
                            None => self.working.remove(&k),
                        };
                    }
                }
                Op::NonDurableCommit | Op::DurableCommit | Op::Abort => {
                    let w = writer.take().unwrap();
                    match op {
                        Op::NonDurableCommit => {
                            w.non_durable_commit().unwrap();
                        }
                        Op::DurableCommit => {
                            w.commit(7).unwrap();
                            self.durable = self.working.clone();
                        }
                        _ => {
                            w.abort();
                            self.working = self.published.clone();
                        }
                    }
                    if !matches!(op, Op::Abort) {
                        self.published = self.working.clone();
                    }
                    check(&store);
                    writer = Some(store.writer().unwrap());
                }
                Op::TakeSnapshot => self.snapshots.push((store.snapshot(), self.published.clone())),
                Op::DropSnapshot => {
                    if !self.snapshots.is_empty() {
                        self.snapshots.remove(0);
                    }
                }
                Op::Range(a, b, lo, hi, ends) => {
                    let snapshot = store.snapshot();
                    let Some(info) = snapshot.tree(TREE).unwrap() else {
                        continue;
                    };
                    let (ka, kb) = (key(*a), key(*b));
                    fn bound(kind: u8, k: &[u8]) -> Bound<&[u8]> {
                        match kind {
                            0 => Bound::Included(k),
                            1 => Bound::Excluded(k),
                            _ => Bound::Unbounded,
                        }
                    }
                    let (lower, upper) = (bound(*lo, &ka), bound(*hi, &kb));
                    let model_bound = |kind: u8, k: u16| match kind {
                        0 => Bound::Included(k),
                        1 => Bound::Excluded(k),
                        _ => Bound::Unbounded,
                    };
                    let (mlo, mhi) = (model_bound(*lo, *a), model_bound(*hi, *b));
                    // BTreeMap::range panics on an empty or inverted range.
                    let empty = match (mlo, mhi) {
                        (Bound::Unbounded, _) | (_, Bound::Unbounded) => false,
                        (Bound::Included(x), Bound::Included(y)) => x > y,
                        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => x >= y,
                    };
                    let mut want: std::collections::VecDeque<u16> = if empty {
                        Default::default()
                    } else {
                        self.published.range((mlo, mhi)).map(|(k, _)| *k).collect()
                    };
                    let mut iter = snapshot.range(&info, numeric, lower, upper).unwrap();
                    let decode = |e: Result<sluicedb::btree::TreeEntry, _>| {
                        u16::from_le_bytes(e.unwrap().key().try_into().unwrap())
                    };
                    for step in 0.. {
                        let from_back = ends & (1 << (step % 32)) != 0;
                        let (got, expected) = if from_back {
                            (iter.next_back().map(decode), want.pop_back())
                        } else {
                            (iter.next().map(decode), want.pop_front())
                        };
                        assert_eq!(
                            got,
                            expected,
                            "step {step} from the {}",
                            if from_back { "back" } else { "front" }
                        );
                        if got.is_none() {
                            // Exhausted from both ends alike.
                            assert_eq!(iter.next().map(decode), None);
                            assert_eq!(iter.next_back().map(decode), None);
                            break;
                        }
                    }
                }
                Op::CrashAndReopen => {
                    drop(writer.take());
                    self.snapshots.clear();
                    // No commit is in flight, so whatever happens to the unsynced
                    // writes (all to free pages) the durable commit survives.
                    self.crashes += 1;
                    let image = self.backend.crash_image(TearMode::Random(self.crashes));
                    self.backend = Arc::new(CrashBackend::from_bytes(image));
                    self.store = TreeStore::open(self.backend.clone(), TreeStoreOptions::default()).unwrap();
                    check(&self.store);
                    assert_eq!(
                        read_all(&self.store.snapshot()),
                        self.durable,
                        "reopen lost or invented data"
                    );
                    self.working = self.durable.clone();
                    self.published = self.durable.clone();
                    return index + 1;
                }
            }
            if let Some(w) = writer.as_ref()
                && matches!(op, Op::Insert(..) | Op::Batch(..))
                && self.working.len() < 64
            {
                assert_eq!(writer_read_all(w), self.working);
            }
            for (snapshot, model) in &self.snapshots {
                if matches!(op, Op::DurableCommit | Op::NonDurableCommit) {
                    assert_eq!(&read_all(snapshot), model, "a pinned snapshot changed");
                }
            }
        }
        drop(writer);
        assert_eq!(read_all(&self.store.snapshot()), self.published);
        ops.len()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn tree_matches_model(ops in proptest::collection::vec(op(), 1..300)) {
        let backend = Arc::new(CrashBackend::new());
        let store = TreeStore::create(backend.clone(), 1, TreeStoreOptions::default()).unwrap();
        let mut h = Harness {
            backend,
            store,
            crashes: 0,
            working: Model::new(),
            published: Model::new(),
            durable: Model::new(),
            snapshots: Vec::new(),
        };
        h.run_all(&ops);
    }
}

/// Keys near the 1 KiB limit give branches a fan-out of about four, so a few
/// hundred keys build a tree five or six levels deep: root splits and
/// collapses at every height, and merges of under-full branches.
fn long_key(k: u16) -> Vec<u8> {
    let mut key = vec![b'k'; 1000];
    key.extend_from_slice(&k.to_be_bytes());
    key
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
    #[test]
    fn deep_trees_match_model(ops in proptest::collection::vec((0u16..400, any::<bool>(), 0u8..8), 1..400)) {
        use sluicedb::btree::bytewise;
        let store = TreeStore::create(CrashBackend::new(), 1, TreeStoreOptions::default()).unwrap();
        let mut model = std::collections::BTreeMap::new();
        let mut w = store.writer().unwrap();
        for (i, (k, put, commit)) in ops.iter().enumerate() {
            if *put {
                w.insert(b"deep", bytewise, &long_key(*k), &[*commit; 40]).unwrap();
                model.insert(long_key(*k), vec![*commit; 40]);
            } else {
                w.remove(b"deep", bytewise, &long_key(*k)).unwrap();
                model.remove(&long_key(*k));
            }
            if *commit == 0 || i + 1 == ops.len() {
                w.commit(0).unwrap();
                store.check_integrity(&|_, _| Some(bytewise)).unwrap();
                let snap = store.snapshot();
                let got: Vec<(Vec<u8>, Vec<u8>)> = match snap.tree(b"deep").unwrap() {
                    None => Vec::new(),
                    Some(info) => snap
                        .range(&info, bytewise, Bound::Unbounded, Bound::Unbounded)
                        .unwrap()
                        .map(|e| { let e = e.unwrap(); (e.key().to_vec(), e.value().as_bytes().to_vec()) })
                        .collect(),
                };
                let want: Vec<(Vec<u8>, Vec<u8>)> = model.clone().into_iter().collect();
                prop_assert_eq!(got, want);
                w = store.writer().unwrap();
            }
        }
    }
}
