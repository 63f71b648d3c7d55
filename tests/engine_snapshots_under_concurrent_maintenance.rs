//! Readers held across concurrent big and small commits (pending runs, the
//! inserter hand-off), freezes, flushes in parts, checkpoints and
//! compactions, a table deleted and re-created, a custom key order: every
//! range (both directions, bounded and not, both ends interleaved, an
//! iterator held across), point read and `len` shows exactly the reader's
//! snapshot, checked against a model of every commit. Written by the
//! twenty-second session's review, where it caught compaction publishing a
//! flush's part commit before the flush did (3 runs in 9; see
//! `defect_compact_publishes_unpublished_tree.rs` for the deterministic
//! case). Runs for `SLUICE_STRESS_SECS` seconds (default 8).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::Rng;
use common::engine::{Disk, small_options};
use common::numeric;
use parking_lot::Mutex;
use sluicedb::btree::{Comparator, bytewise};
use sluicedb::engine::{Durability, EngineOptions, ReadTable, ReadTxn};

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Clone, Default)]
struct Snap {
    b: Option<Arc<Map>>,
    n: Option<Arc<Map>>, // keys as numeric u16 LE; model ordered by number
}

const BKEYS: u64 = 2000;
const NKEYS: u64 = 1500;

fn bkey(i: u64) -> Vec<u8> {
    format!("k{:05}", i).into_bytes()
}
fn nkey(i: u64) -> Vec<u8> {
    (i as u16).to_le_bytes().to_vec()
}
/// Model key for the numeric table: big-endian, so the BTreeMap orders by number.
fn nmodel(k: &[u8]) -> Vec<u8> {
    u16::from_le_bytes([k[0], k[1]]).to_be_bytes().to_vec()
}

fn options() -> EngineOptions {
    EngineOptions {
        memtable_bytes: 48 << 10,
        ..small_options()
    }
}

/// An iterator started at open, what it gave then, and whether it runs
/// backward.
type HeldIter = (sluicedb::engine::MergedRange<'static>, Vec<(Vec<u8>, Vec<u8>)>, bool);

struct Held {
    txn: ReadTxn,
    b: Option<ReadTable>,
    n: Option<ReadTable>,
    snap: Snap,
    /// An iterator started at open and continued later.
    iter: Option<HeldIter>,
}

fn collect(
    it: impl Iterator<Item = sluicedb::Result<(sluicedb::btree::ValueBytes, sluicedb::btree::ValueBytes)>>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    it.map(|e| {
        let (k, v) = e.unwrap();
        (k.to_vec(), v.to_vec())
    })
    .collect()
}

fn model_range(m: &Map, lo: &[u8], hi: &[u8], numeric_keys: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    m.range(lo.to_vec()..hi.to_vec())
        .map(|(k, v)| {
            let k = if numeric_keys {
                u16::from_be_bytes([k[0], k[1]]).to_le_bytes().to_vec()
            } else {
                k.clone()
            };
            (k, v.clone())
        })
        .collect()
}

fn check_table(txn: &ReadTxn, t: &ReadTable, m: &Map, numeric_keys: bool, rng: &mut Rng, what: &str) {
    let keys = if numeric_keys { NKEYS } else { BKEYS };
    let mk = |i: u64| if numeric_keys { nkey(i) } else { bkey(i) };
    let mm = |i: u64| if numeric_keys { nmodel(&nkey(i)) } else { bkey(i) };
    let all = model_range(m, &[], &[0xff; 8], numeric_keys);
    let seq = txn.sequence();
    let fwd = collect(txn.range(t, Bound::Unbounded, Bound::Unbounded).unwrap());
    if fwd != all {
        let diff: Vec<_> = all
            .iter()
            .filter(|e| !fwd.contains(e))
            .take(3)
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).to_string(),
                    String::from_utf8_lossy(v).to_string(),
                )
            })
            .collect();
        let extra: Vec<_> = fwd
            .iter()
            .filter(|e| !all.contains(e))
            .take(3)
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).to_string(),
                    String::from_utf8_lossy(v).to_string(),
                )
            })
            .collect();
        panic!(
            "{what} seq {seq}: full forward range: {} entries, model {}; ranges moved {}; missing {diff:?}; unexpected {extra:?}",
            fwd.len(),
            all.len(),
            t.ranges_moved()
        );
    }
    let mut back = collect(txn.range(t, Bound::Unbounded, Bound::Unbounded).unwrap().rev());
    back.reverse();
    assert!(
        back == all,
        "{what} seq {seq}: full backward range: {} entries, model {}",
        back.len(),
        all.len()
    );
    assert_eq!(txn.len(t).unwrap(), all.len() as u64, "{what} seq {seq}: len");
    let lo = rng.below(keys);
    let hi = lo + rng.below(300);
    let part = model_range(m, &mm(lo), &mm(hi), numeric_keys);
    let got = collect(
        txn.range(t, Bound::Included(&mk(lo)[..]), Bound::Excluded(&mk(hi)[..]))
            .unwrap(),
    );
    assert!(
        got == part,
        "{what} seq {seq}: range [{lo},{hi}) forward: {} vs model {}",
        got.len(),
        part.len()
    );
    let mut got = collect(
        txn.range(t, Bound::Included(&mk(lo)[..]), Bound::Excluded(&mk(hi)[..]))
            .unwrap()
            .rev(),
    );
    got.reverse();
    assert!(
        got == part,
        "{what} seq {seq}: range [{lo},{hi}) backward: {} vs model {}",
        got.len(),
        part.len()
    );
    // Both ends of one range, interleaved.
    let mut r = txn
        .range(t, Bound::Excluded(&mk(lo)[..]), Bound::Included(&mk(hi)[..]))
        .unwrap();
    let part: Vec<_> = model_range(m, &mm(lo), &mm(hi + 1), numeric_keys)
        .into_iter()
        .filter(|(k, _)| *k != mk(lo))
        .collect();
    let (mut front, mut backv) = (Vec::new(), Vec::new());
    loop {
        let e = if rng.below(2) == 0 {
            r.next().map(|e| (true, e))
        } else {
            r.next_back().map(|e| (false, e))
        };
        let Some((f, e)) = e else { break };
        let (k, v) = e.unwrap();
        if f {
            front.push((k.to_vec(), v.to_vec()))
        } else {
            backv.push((k.to_vec(), v.to_vec()))
        }
    }
    backv.reverse();
    front.extend(backv);
    assert!(
        front == part,
        "{what} seq {seq}: interleaved range ({lo},{hi}]: {} vs {}",
        front.len(),
        part.len()
    );
    // first / last
    let first = txn
        .range(t, Bound::Unbounded, Bound::Unbounded)
        .unwrap()
        .next()
        .map(|e| e.unwrap().0.to_vec());
    let last = txn
        .range(t, Bound::Unbounded, Bound::Unbounded)
        .unwrap()
        .next_back()
        .map(|e| e.unwrap().0.to_vec());
    assert_eq!(first, all.first().map(|e| e.0.clone()), "{what} seq {seq}: first");
    assert_eq!(last, all.last().map(|e| e.0.clone()), "{what} seq {seq}: last");
    for _ in 0..20 {
        let i = rng.below(keys);
        let got = txn.get(t, &mk(i)).unwrap().map(|v| v.to_vec());
        assert_eq!(got, m.get(&mm(i)).cloned(), "{what} seq {seq}: get {i}");
    }
}

impl Held {
    fn check(&mut self, rng: &mut Rng) {
        match (&self.b, &self.snap.b) {
            (Some(t), Some(m)) => check_table(&self.txn, t, m, false, rng, "bytewise"),
            (None, None) => {}
            _ => panic!("table b presence differs"),
        }
        match (&self.n, &self.snap.n) {
            (Some(t), Some(m)) => check_table(&self.txn, t, m, true, rng, "numeric"),
            (None, None) => {}
            _ => panic!("table n presence differs"),
        }
        // The held iterator: continue it to the end.
        if let Some((mut it, mut got, backward)) = self.iter.take() {
            let rest = if backward {
                collect(it.by_ref().rev())
            } else {
                collect(it.by_ref())
            };
            got.extend(rest);
            if backward {
                got.reverse();
            }
            let all = model_range(self.snap.b.as_ref().unwrap(), &[], &[0xff; 8], false);
            assert!(
                got == all,
                "held iterator (backward {backward}) seq {}: {} vs {}",
                self.txn.sequence(),
                got.len(),
                all.len()
            );
        }
    }
}

#[test]
fn readers_see_their_snapshot_under_concurrent_commits_flushes_and_compaction() {
    let db = Arc::new(Disk::new().open(options()));
    let snaps: Arc<Mutex<HashMap<u64, Snap>>> = Arc::new(Mutex::new(HashMap::new()));
    snaps
        .lock()
        .insert(db.begin_read().unwrap().sequence(), Snap::default());
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let secs = std::env::var("SLUICE_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let deadline = Instant::now() + Duration::from_secs(secs);

    let writer = {
        let (db, snaps, stop, commits) = (db.clone(), snaps.clone(), stop.clone(), commits.clone());
        std::thread::spawn(move || {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
            let mut b = Map::new();
            let mut n: Option<Map> = None;
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                let mut txn = db.begin_write().unwrap();
                txn.set_durability(if rng.below(4) == 0 {
                    Durability::Immediate
                } else {
                    Durability::None
                });
                let tb = txn.open_table(b"b", b"bytes", bytewise).unwrap();
                let big = rng.below(3) == 0;
                let count = if big { 64 + rng.below(300) } else { 1 + rng.below(30) };
                for _ in 0..count {
                    let k = bkey(rng.below(BKEYS));
                    if rng.below(4) == 0 {
                        txn.remove(tb, &k).unwrap();
                        b.remove(&k);
                    } else {
                        let v = format!("v{round}-{}", rng.below(1000)).into_bytes();
                        txn.insert(tb, &k, &v).unwrap();
                        b.insert(k, v);
                    }
                }
                let what = rng.below(40);
                if what == 0 && n.is_some() {
                    assert!(txn.delete_table(b"n").unwrap());
                    n = None;
                } else {
                    let tn = txn.open_table(b"n", b"numeric", numeric as Comparator).unwrap();
                    let m = n.get_or_insert_with(Map::new);
                    let count = if rng.below(3) == 0 {
                        64 + rng.below(200)
                    } else {
                        rng.below(20)
                    };
                    for _ in 0..count {
                        let i = rng.below(NKEYS);
                        if rng.below(4) == 0 {
                            txn.remove(tn, &nkey(i)).unwrap();
                            m.remove(&nmodel(&nkey(i)));
                        } else {
                            let v = format!("n{round}").into_bytes();
                            txn.insert(tn, &nkey(i), &v).unwrap();
                            m.insert(nmodel(&nkey(i)), v);
                        }
                    }
                }
                let snap = Snap {
                    b: Some(Arc::new(b.clone())),
                    n: n.clone().map(Arc::new),
                };
                let seq = txn.commit_pipelined().unwrap().sequence();
                snaps.lock().insert(seq, snap);
                commits.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let maintainer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(40));
                i += 1;
                if i.is_multiple_of(5) {
                    db.compact().unwrap();
                } else {
                    db.checkpoint().unwrap();
                }
            }
        })
    };
    let readers: Vec<_> = (0..2u64)
        .map(|r| {
            let (db, snaps) = (db.clone(), snaps.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ ((r + 1) * 0x1234_5678));
                let mut held: Vec<Held> = Vec::new();
                let mut checks = 0u64;
                let mut moved = 0u64;
                while Instant::now() < deadline {
                    if held.len() < 4 && rng.below(3) == 0 {
                        let txn = db.begin_read().unwrap();
                        let seq = txn.sequence();
                        let snap = loop {
                            if let Some(s) = snaps.lock().get(&seq) {
                                break s.clone();
                            }
                            std::thread::yield_now();
                        };
                        let b = txn.open_table(b"b", bytewise).unwrap();
                        let n = txn.open_table(b"n", numeric).unwrap();
                        let iter = match &b {
                            Some(t) if rng.below(2) == 0 => {
                                let backward = rng.below(2) == 0;
                                let mut it = txn.range(t, Bound::Unbounded, Bound::Unbounded).unwrap();
                                let take = rng.below(50) as usize;
                                let got = if backward {
                                    collect(it.by_ref().rev().take(take))
                                } else {
                                    collect(it.by_ref().take(take))
                                };
                                Some((it, got, backward))
                            }
                            _ => None,
                        };
                        held.push(Held { txn, b, n, snap, iter });
                    }
                    if !held.is_empty() {
                        let i = rng.below(held.len() as u64) as usize;
                        held[i].check(&mut rng);
                        checks += 1;
                        if rng.below(6) == 0 {
                            let h = held.remove(i);
                            moved += u64::from(h.b.as_ref().is_some_and(|t| t.ranges_moved()));
                        }
                    }
                    std::thread::sleep(Duration::from_millis(rng.below(5)));
                }
                (checks, moved)
            })
        })
        .collect();
    let mut failed = None;
    let mut totals = (0, 0);
    for r in readers {
        match r.join() {
            Ok((c, m)) => {
                totals.0 += c;
                totals.1 += m;
            }
            Err(e) => failed = Some(e),
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    maintainer.join().unwrap();
    if let Some(e) = failed {
        std::panic::resume_unwind(e);
    }
    let stats = db.stats();
    eprintln!(
        "commits {} checks {} moved {} flushes {} parts {} checkpoints {}",
        commits.load(Ordering::Relaxed),
        totals.0,
        totals.1,
        stats.flushes,
        stats.flush_part_commits,
        stats.checkpoints
    );
    assert!(totals.1 > 0, "no reader's ranges moved");
}
