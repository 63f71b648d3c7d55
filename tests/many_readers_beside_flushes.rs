//! Many more reader threads than cores (32 on a 2-core machine)
//! reading while one writer commits, memtables freeze and flush, the
//! background checkpoint runs and another thread calls `checkpoint()`,
//! under a tiny page cache and a small memtable.
//!
//! Targets: the memtable seek index (rebuilt and its replaced copies freed
//! while searches run, `free_replaced_seek_indexes` / `in_seek_index` with
//! 32 threads on 8 `Striped` stripes), memtable values shared with arena
//! bytes held past their memtable and their transaction, a read table
//! shared by several threads switching its ranges to a newer state after a
//! flush (`ReadTable::range_sources`), and page cache eviction.
//!
//! Every check is made without a shared lock:
//! * a value is derived from `(key, version)` and carries both, so a value
//!   read from freed or reused memory, or from another key, is caught;
//! * keys come in strict order in the range's direction, ends never cross,
//!   a clone yields what its original yields;
//! * within a read transaction every observation of a key (point get,
//!   range, absence inferred from a range that passed over it) agrees, and
//!   a replay of the first reads at the end of the transaction matches;
//! * nothing committed before the transaction began is missing (a copy of
//!   the writer's per-key committed versions taken before `begin_read`);
//!   nothing newer than the writer has started is seen;
//! * a batch is atomic: seeing one key of batch `b` means every key of
//!   batch `b` is at `b` or newer (batch contents are a function of `b`);
//! * versions never go backwards between one thread's own successive read
//!   transactions;
//! * value guards and a range kept past their transaction still read
//!   right.
//!
//! `MANY_READERS_SECS` (default 3) sets how long the readers run;
//! `MANY_READERS_THREADS` (default 32) how many reader threads;
//! `MANY_READERS_MEMTABLE`, `MANY_READERS_CACHE` (bytes) and `MANY_READERS_CHECKPOINT_MS`
//! (mean interval of the explicit checkpoints) the pressure.
//! `MANY_READERS_SELFTEST=1` makes the writer announce each batch before
//! committing it: the test must then fail (proof the checks can).

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Rng, mix};
use sluicedb::{AccessGuard, Builder, Database, Durability, ReadOnlyTable, ReadableDatabase, TableDefinition};

const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");
const KEYS: usize = 16_384;
/// Keys per batch of the initial load (batches 1..=LOAD_BATCHES).
const LOAD_BATCH: usize = 2048;
const LOAD_BATCHES: u64 = (KEYS / LOAD_BATCH) as u64;

type Table = ReadOnlyTable<u64, &'static [u8]>;
type Range = sluicedb::Range<'static, u64, &'static [u8]>;
/// One step of a range: an entry, an error, or the end.
type RangeItem =
    Option<Result<(AccessGuard<'static, u64>, AccessGuard<'static, &'static [u8]>), sluicedb::StorageError>>;
/// A read table shared by a group of readers, with the committed versions
/// copied before its transaction began, and when it was opened.
type SharedTable = parking_lot::Mutex<Option<(Instant, Arc<(Table, Vec<u64>)>)>>;
/// Entries a range's end yielded: (key index, version).
type Seen = Vec<(usize, u64)>;

fn value_len(k: u64, ver: u64) -> usize {
    let h = mix(k ^ ver.rotate_left(32));
    match h % 100 {
        0..=39 => 16 + (h >> 8) as usize % 9,    // inline (<= 24 bytes)
        40..=97 => 25 + (h >> 8) as usize % 100, // long, in the arena
        98 => 200 + (h >> 8) as usize % 1300,    // longer
        _ => 2000 + (h >> 8) as usize % 3000,    // past a page's share
    }
}

fn value(k: u64, ver: u64) -> Vec<u8> {
    let len = value_len(k, ver);
    let h = mix(k.wrapping_mul(31) ^ ver);
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&k.to_le_bytes());
    v.extend_from_slice(&ver.to_le_bytes());
    for j in 16..len {
        v.push((h >> ((j % 8) * 8)) as u8 ^ j as u8);
    }
    v
}

/// Checks a value read under key `k`; returns its version.
fn check_value(k: u64, v: &[u8], what: &str) -> u64 {
    assert!(v.len() >= 16, "{what}: key {k:#x}: value of {} bytes", v.len());
    let vk = u64::from_le_bytes(v[..8].try_into().unwrap());
    let ver = u64::from_le_bytes(v[8..16].try_into().unwrap());
    assert_eq!(vk, k, "{what}: key {k:#x} holds a value of key {vk:#x} (version {ver})");
    assert!(
        v == value(k, ver).as_slice(),
        "{what}: key {k:#x} version {ver}: bytes differ (len {} want {})",
        v.len(),
        value_len(k, ver)
    );
    ver
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Put,
    Remove,
}

/// The contents of batch `b`: distinct key indexes and their ops.
fn batch(b: u64) -> Vec<(usize, Op)> {
    if b <= LOAD_BATCHES {
        let start = (b as usize - 1) * LOAD_BATCH;
        return (start..start + LOAD_BATCH).map(|i| (i, Op::Put)).collect();
    }
    let mut rng = Rng(b.wrapping_mul(0xA076_1D64_78BD_642F));
    let n = if b.is_multiple_of(101) {
        3000
    } else if b.is_multiple_of(2) {
        1 + rng.below(48) as usize
    } else {
        1 + rng.below(600) as usize
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(n);
    // Some batches are a run of neighbouring keys (walks past the index).
    let run = b.is_multiple_of(7);
    let base = rng.below(KEYS as u64) as usize;
    for j in 0..n {
        let i = if run {
            (base + j) % KEYS
        } else {
            rng.below(KEYS as u64) as usize
        };
        if seen.insert(i) {
            let op = if rng.one_in(8) { Op::Remove } else { Op::Put };
            out.push((i, op));
        }
    }
    out
}

fn durability(b: u64) -> Durability {
    if b.is_multiple_of(3) || b.is_multiple_of(101) {
        Durability::Immediate
    } else {
        Durability::None
    }
}

struct Shared {
    keys: Vec<u64>,
    /// Per key index: `version << 1 | removed`, stored after the commit
    /// that wrote it returned.
    committed: Vec<AtomicU64>,
    /// Per key index: the newest batch that removes it, stored before that
    /// batch's commit.
    last_removal: Vec<AtomicU64>,
    /// The newest batch the writer has begun to commit.
    started: AtomicU64,
    stop: AtomicBool,
    failed: AtomicBool,
    selftest: bool,
    // Counters.
    txns: AtomicU64,
    shared_txns: AtomicU64,
    gets: AtomicU64,
    ranges: AtomicU64,
    entries: AtomicU64,
    long_scans: AtomicU64,
    clones: AtomicU64,
    held_values: AtomicU64,
    held_ranges: AtomicU64,
    batches: AtomicU64,
    entries_written: AtomicU64,
    checkpoints_called: AtomicU64,
}

impl Shared {
    fn index_of(&self, k: u64, what: &str) -> usize {
        match self.keys.binary_search(&k) {
            Ok(i) => i,
            Err(_) => panic!("{what}: key {k:#x} was never written"),
        }
    }
}

/// One read transaction's view as one thread has observed it.
struct View<'a> {
    s: &'a Shared,
    table: &'a Table,
    lo: &'a [u64],
    /// Key index -> Some(version) or None (absent).
    seen: HashMap<usize, Option<u64>>,
    what: String,
}

impl View<'_> {
    fn observe(&mut self, i: usize, obs: Option<u64>, how: &str) {
        let s = self.s;
        let (lv, lr) = (self.lo[i] >> 1, self.lo[i] & 1 == 1);
        let k = s.keys[i];
        match obs {
            Some(w) => {
                let started = s.started.load(Ordering::SeqCst);
                assert!(
                    w >= lv && !(w == lv && lr),
                    "{} {how}: key {k:#x} at version {w}, but version {lv}{} was committed before the transaction began",
                    self.what,
                    if lr { " (a removal)" } else { "" }
                );
                assert!(
                    w <= started,
                    "{} {how}: key {k:#x} at version {w}, writer only started {started}",
                    self.what
                );
            }
            None => {
                let removal = s.last_removal[i].load(Ordering::SeqCst);
                assert!(
                    lv == 0 || lr || removal > lv,
                    "{} {how}: key {k:#x} missing, but version {lv} was committed before the transaction began (last removal started: {removal})",
                    self.what
                );
            }
        }
        if let Some(&before) = self.seen.get(&i) {
            assert_eq!(
                before, obs,
                "{} {how}: key {k:#x} read differently within one transaction",
                self.what
            );
        } else {
            self.seen.insert(i, obs);
        }
    }

    fn get(&mut self, i: usize, how: &str) -> Option<u64> {
        let k = self.s.keys[i];
        let got = self.table.get(k).unwrap_or_else(|e| panic!("{}: get: {e}", self.what));
        self.s.gets.fetch_add(1, Ordering::Relaxed);
        let obs = got.map(|g| check_value(k, g.value(), &self.what));
        self.observe(i, obs, how);
        obs
    }

    fn entry(&mut self, item: RangeItem, how: &str) -> Option<(usize, u64)> {
        let (k, v) = item?.unwrap_or_else(|e| panic!("{} {how}: {e}", self.what));
        let k = k.value();
        let ver = check_value(k, v.value(), &format!("{} {how}", self.what));
        self.s.entries.fetch_add(1, Ordering::Relaxed);
        let i = self.s.index_of(k, &self.what);
        self.observe(i, Some(ver), how);
        Some((i, ver))
    }

    /// Every key index in `from..to` not in `got` is absent.
    fn absent_between(&mut self, from: usize, to: usize, got: &[usize], how: &str) {
        let mut got: Vec<usize> = got.to_vec();
        got.sort_unstable();
        for i in from..to {
            if got.binary_search(&i).is_err() {
                self.observe(i, None, how);
            }
        }
    }

    fn forward(&mut self, range: &mut Range, n: usize, how: &str) -> Seen {
        self.walk(range, n, how, true)
    }

    fn backward(&mut self, range: &mut Range, n: usize, how: &str) -> Seen {
        self.walk(range, n, how, false)
    }

    /// Up to `n` entries from the range's front (`forward`) or back, each
    /// checked to come after the one before in that direction.
    fn walk(&mut self, range: &mut Range, n: usize, how: &str, forward: bool) -> Seen {
        let mut out: Seen = Vec::new();
        for _ in 0..n {
            let item = if forward { range.next() } else { range.next_back() };
            let Some(e) = self.entry(item, how) else { break };
            if let Some(last) = out.last() {
                assert!(
                    if forward { e.0 > last.0 } else { e.0 < last.0 },
                    "{} {how}: key order {:#x} then {:#x} (forward: {forward})",
                    self.what,
                    self.s.keys[last.0],
                    self.s.keys[e.0]
                );
            }
            out.push(e);
        }
        out
    }

    fn range(&self, from: usize, to: Option<usize>) -> Range {
        let a = self.s.keys[from];
        self.s.ranges.fetch_add(1, Ordering::Relaxed);
        let r = match to {
            Some(to) => self.table.range(a..self.s.keys[to]),
            None => self.table.range(a..),
        };
        r.unwrap_or_else(|e| panic!("{}: range: {e}", self.what))
    }

    /// Seek + n forward from key index `from`; infers absences.
    fn short_forward(&mut self, from: usize, n: usize) -> Vec<(usize, u64)> {
        let mut r = self.range(from, None);
        let got = self.forward(&mut r, n, "seek+next");
        let end = if got.len() < n { KEYS } else { got.last().unwrap().0 };
        let idx: Vec<usize> = got.iter().map(|e| e.0).collect();
        if let Some(first) = idx.first() {
            assert!(*first >= from, "{}: seek from {from} returned {first}", self.what);
        }
        self.absent_between(from, end, &idx, "seek+next gap");
        got
    }

    /// `..=k` reversed, n entries; infers absences.
    fn short_backward(&mut self, to: usize, n: usize) -> Vec<(usize, u64)> {
        self.s.ranges.fetch_add(1, Ordering::Relaxed);
        let mut r = self
            .table
            .range(..=self.s.keys[to])
            .unwrap_or_else(|e| panic!("{}: range: {e}", self.what));
        let got = self.backward(&mut r, n, "rev");
        let start = if got.len() < n { 0 } else { got.last().unwrap().0 + 1 };
        let idx: Vec<usize> = got.iter().map(|e| e.0).collect();
        if let Some(first) = idx.first() {
            assert!(*first <= to, "{}: reversed seek from {to} returned {first}", self.what);
        }
        self.absent_between(start, to + 1, &idx, "rev gap");
        got
    }

    /// Both ends of `from..to` in a random interleaving until exhausted.
    fn both_ends(&mut self, rng: &mut Rng, from: usize, to: usize) {
        let mut r = self.range(from, Some(to));
        let (mut fronts, mut backs): (Seen, Seen) = (Vec::new(), Vec::new());
        let mut clone_check = rng.one_in(3);
        loop {
            if clone_check && fronts.len() + backs.len() >= 3 {
                clone_check = false;
                // A clone made here yields what the original yields next.
                let mut c = r.clone();
                self.s.clones.fetch_add(1, Ordering::Relaxed);
                let a = self.forward(&mut r.clone(), 4, "both-ends clone probe");
                let b = self.forward(&mut c, 4, "both-ends clone");
                assert_eq!(a, b, "{}: clones of one range at one place differ", self.what);
            }
            let back = rng.one_in(2);
            let e = if back {
                self.entry(r.next_back(), "both-ends back")
            } else {
                self.entry(r.next(), "both-ends front")
            };
            let Some(e) = e else { break };
            assert!(
                e.0 >= from && e.0 < to,
                "{}: both-ends {e:?} outside {from}..{to}",
                self.what
            );
            if back {
                if let Some(l) = backs.last() {
                    assert!(e.0 < l.0, "{}: back end order {} then {}", self.what, l.0, e.0);
                }
                if let Some(f) = fronts.last() {
                    assert!(
                        e.0 > f.0,
                        "{}: ends crossed: back {} after front {}",
                        self.what,
                        e.0,
                        f.0
                    );
                }
                backs.push(e);
            } else {
                if let Some(l) = fronts.last() {
                    assert!(e.0 > l.0, "{}: front end order {} then {}", self.what, l.0, e.0);
                }
                if let Some(b) = backs.last() {
                    assert!(
                        e.0 < b.0,
                        "{}: ends crossed: front {} after back {}",
                        self.what,
                        e.0,
                        b.0
                    );
                }
                fronts.push(e);
            }
        }
        assert!(
            r.next().is_none() && r.next_back().is_none(),
            "{}: exhausted range yields again",
            self.what
        );
        let idx: Vec<usize> = fronts.iter().chain(backs.iter()).map(|e| e.0).collect();
        self.absent_between(from, to, &idx, "both-ends gap");
    }

    /// Seek, a few steps, clone, then both go on alike.
    fn clone_midway(&mut self, rng: &mut Rng, from: usize) {
        let mut r = self.range(from, None);
        let back = rng.one_in(2);
        let m = rng.below(20) as usize;
        if back {
            self.backward(&mut r, m, "pre-clone back");
        } else {
            self.forward(&mut r, m, "pre-clone");
        }
        let mut c = r.clone();
        self.s.clones.fetch_add(1, Ordering::Relaxed);
        let n = 5 + rng.below(30) as usize;
        let (a, b) = if back {
            (
                self.backward(&mut r, n, "orig back"),
                self.backward(&mut c, n, "clone back"),
            )
        } else {
            (self.forward(&mut r, n, "orig"), self.forward(&mut c, n, "clone"))
        };
        assert_eq!(a, b, "{}: a clone diverged from its original", self.what);
    }

    /// A whole scan, forward or backward; infers every absence.
    fn long_scan(&mut self, back: bool) {
        self.s.long_scans.fetch_add(1, Ordering::Relaxed);
        self.s.ranges.fetch_add(1, Ordering::Relaxed);
        let mut r: Range = self
            .table
            .range::<u64>(..)
            .unwrap_or_else(|e| panic!("{}: scan: {e}", self.what));
        let got = if back {
            self.backward(&mut r, usize::MAX, "long scan back")
        } else {
            self.forward(&mut r, usize::MAX, "long scan")
        };
        let idx: Vec<usize> = got.iter().map(|e| e.0).collect();
        self.absent_between(0, KEYS, &idx, "long scan gap");
    }

    /// Batch atomicity of the newest version seen, and that a few seen
    /// versions were written by their batches.
    fn check_batches(&mut self, rng: &mut Rng) {
        let newest = self.seen.values().filter_map(|v| *v).max();
        let Some(w) = newest else { return };
        let contents = batch(w);
        for &(i, op) in contents.iter().take(400) {
            let got = self.get(i, "batch atomicity");
            let k = self.s.keys[i];
            match got {
                Some(v) => {
                    assert!(
                        v >= w,
                        "{}: batch {w} seen, but its key {k:#x} is at version {v}: a torn batch",
                        self.what
                    );
                    if v == w {
                        assert_eq!(
                            op,
                            Op::Put,
                            "{}: key {k:#x} present at version {w}, which removed it",
                            self.what
                        );
                    }
                }
                None => {
                    let removal = self.s.last_removal[i].load(Ordering::SeqCst);
                    assert!(
                        op == Op::Remove || removal > w,
                        "{}: batch {w} seen, but its key {k:#x} (written by it) is missing",
                        self.what
                    );
                }
            }
        }
        let present: Vec<(usize, u64)> = self.seen.iter().filter_map(|(&i, v)| v.map(|v| (i, v))).collect();
        for _ in 0..3 {
            let (i, v) = present[rng.below(present.len() as u64) as usize];
            assert!(
                batch(v).contains(&(i, Op::Put)),
                "{}: key {:#x} at version {v}, which batch {v} never wrote",
                self.what,
                self.s.keys[i]
            );
        }
    }
}

fn copy_committed(s: &Shared) -> Vec<u64> {
    s.committed.iter().map(|c| c.load(Ordering::Acquire)).collect()
}

/// Runs a random mix of reads over one transaction's table; returns the
/// observations, held guards and maybe a held range.
fn read_session(
    s: &Shared,
    table: &Table,
    lo: &[u64],
    rng: &mut Rng,
    what: String,
    held: &mut Vec<(usize, u64, AccessGuard<'static, &'static [u8]>)>,
    held_range: &mut Option<Range>,
) -> HashMap<usize, Option<u64>> {
    let mut view = View {
        s,
        table,
        lo,
        seen: HashMap::new(),
        what,
    };
    // The first reads, replayed at the end.
    let a = rng.below(KEYS as u64) as usize;
    let first_range = view.short_forward(a, 10);
    let b = rng.below(KEYS as u64) as usize;
    let first_get = view.get(b, "first get");
    let ops = 4 + rng.below(12);
    for _ in 0..ops {
        if s.stop.load(Ordering::Relaxed) {
            break;
        }
        let i = rng.below(KEYS as u64) as usize;
        match rng.below(100) {
            0..=29 => {
                for _ in 0..1 + rng.below(16) {
                    let i = rng.below(KEYS as u64) as usize;
                    view.get(i, "get");
                }
                // Hold a guard past the transaction.
                if held.len() < 16 {
                    let k = s.keys[i];
                    if let Some(g) = table.get(k).unwrap() {
                        let v = check_value(k, g.value(), "held get");
                        view.observe(i, Some(v), "held get");
                        held.push((i, v, g));
                    }
                }
            }
            30..=49 => {
                view.short_forward(i, 10);
            }
            50..=64 => {
                view.short_backward(i, 10);
            }
            65..=79 => {
                let to = (i + 1 + rng.below(60) as usize).min(KEYS - 1);
                if to > i {
                    view.both_ends(rng, i, to);
                }
            }
            80..=93 => view.clone_midway(rng, i),
            94..=96 => {
                // Keep a range to read after the transaction is gone.
                if held_range.is_none() {
                    let mut r = view.range(i, None);
                    view.forward(&mut r, 3, "held range start");
                    *held_range = Some(r);
                }
            }
            _ => {
                if rng.one_in(4) {
                    view.long_scan(rng.one_in(2));
                } else {
                    view.short_forward(i, 200);
                }
            }
        }
    }
    view.check_batches(rng);
    // Replay the first reads: the transaction's view must not have moved.
    let again = view.short_forward(a, 10);
    assert_eq!(
        first_range, again,
        "{}: a range read again at the end differs",
        view.what
    );
    let again = view.get(b, "replayed get");
    assert_eq!(first_get, again, "{}: a get read again at the end differs", view.what);
    view.seen
}

fn reader(s: &Shared, db: &Database, id: usize, group: &SharedTable) {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03 ^ id as u64);
    // Versions seen by this thread's own last transaction.
    let mut last: HashMap<usize, Option<u64>> = HashMap::new();
    let mut held: Vec<(usize, u64, AccessGuard<'static, &'static [u8]>)> = Vec::new();
    let mut held_range: Option<Range> = None;
    let mut n = 0u64;
    while !s.stop.load(Ordering::Relaxed) {
        n += 1;
        // Guards and a range kept from earlier transactions (their
        // memtables flushed and dropped since, as likely as not).
        if !held.is_empty() && rng.one_in(3) {
            for (i, v, g) in held.drain(..) {
                assert_eq!(
                    check_value(s.keys[i], g.value(), "held guard"),
                    v,
                    "reader {id}: a held guard changed version"
                );
                s.held_values.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(mut r) = held_range.take_if(|_| rng.one_in(2)) {
            s.held_ranges.fetch_add(1, Ordering::Relaxed);
            let mut prev: Option<u64> = None;
            let started = s.started.load(Ordering::SeqCst);
            for _ in 0..30 {
                let Some(item) = r.next() else { break };
                let (k, v) = item.unwrap();
                let k = k.value();
                let ver = check_value(k, v.value(), "held range");
                assert!(ver <= started, "held range: version {ver} past {started}");
                s.index_of(k, "held range");
                if let Some(p) = prev {
                    assert!(k > p, "held range: order {p:#x} then {k:#x}");
                }
                prev = Some(k);
            }
        }
        if rng.one_in(3) {
            // A table shared with the other threads of the group.
            let shared = {
                let mut slot = group.lock();
                match &*slot {
                    Some((made, t)) if made.elapsed() < Duration::from_millis(40 + rng.below(200)) => t.clone(),
                    _ => {
                        let lo = copy_committed(s);
                        let txn = db.begin_read().unwrap();
                        let table = txn.open_table(T).unwrap();
                        let t = Arc::new((table, lo));
                        *slot = Some((Instant::now(), t.clone()));
                        s.shared_txns.fetch_add(1, Ordering::Relaxed);
                        t
                    }
                }
            };
            read_session(
                s,
                &shared.0,
                &shared.1,
                &mut rng,
                format!("reader {id} shared txn {n}"),
                &mut held,
                &mut held_range,
            );
        } else {
            let lo = copy_committed(s);
            let txn = db.begin_read().unwrap();
            let table = txn.open_table(T).unwrap();
            s.txns.fetch_add(1, Ordering::Relaxed);
            let what = format!("reader {id} txn {n}");
            let seen = read_session(s, &table, &lo, &mut rng, what.clone(), &mut held, &mut held_range);
            // Versions never go backwards from this thread's previous
            // transaction to this one.
            for (&i, &now) in &seen {
                let Some(Some(before)) = last.get(&i) else { continue };
                let k = s.keys[i];
                match now {
                    Some(v) => assert!(
                        v >= *before,
                        "{what}: key {k:#x} went back from version {before} (previous transaction) to {v}"
                    ),
                    None => {
                        let removal = s.last_removal[i].load(Ordering::SeqCst);
                        assert!(
                            removal > *before,
                            "{what}: key {k:#x} at version {before} in the previous transaction, missing now, no removal since"
                        );
                    }
                }
            }
            for (i, v) in seen {
                last.insert(i, v);
            }
            drop(table);
            drop(txn);
        }
    }
}

fn commit_batch(s: &Shared, db: &Database, b: u64) {
    let contents = batch(b);
    s.started.store(b, Ordering::SeqCst);
    for &(i, op) in &contents {
        if op == Op::Remove {
            s.last_removal[i].store(b, Ordering::SeqCst);
        }
    }
    // Self-test of the checks (MANY_READERS_SELFTEST=1): publish the batch as
    // committed before it is, which readers must catch as a missing or
    // older version.
    let early = s.selftest && b > LOAD_BATCHES;
    if early {
        for &(i, op) in &contents {
            s.committed[i].store(b << 1 | u64::from(op == Op::Remove), Ordering::Release);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(durability(b)).unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for &(i, op) in &contents {
            let k = s.keys[i];
            match op {
                Op::Put => {
                    t.insert(k, value(k, b).as_slice()).unwrap();
                }
                Op::Remove => {
                    t.remove(k).unwrap();
                }
            }
        }
    }
    txn.commit().unwrap();
    for &(i, op) in &contents {
        s.committed[i].store(b << 1 | u64::from(op == Op::Remove), Ordering::Release);
    }
    s.batches.fetch_add(1, Ordering::Relaxed);
    s.entries_written.fetch_add(contents.len() as u64, Ordering::Relaxed);
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn many_readers_beside_a_writer_flushes_and_checkpoints() {
    let secs = env("MANY_READERS_SECS", 3);
    let readers = env("MANY_READERS_THREADS", 32) as usize;
    let checkpoint_ms = env("MANY_READERS_CHECKPOINT_MS", 1000).max(2);
    let dir = tempfile::tempdir().unwrap();
    let db = Builder::new()
        .set_memtable_size(env("MANY_READERS_MEMTABLE", 2 << 20) as usize)
        .set_cache_size(env("MANY_READERS_CACHE", 96 << 10) as usize)
        .set_tree_commit_size(128 << 10)
        .create(dir.path().join("db"))
        .unwrap();
    let mut keys: Vec<u64> = (0..KEYS as u64).map(|i| mix(i ^ 0x5EED)).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), KEYS);
    let s = Shared {
        keys,
        committed: (0..KEYS).map(|_| AtomicU64::new(0)).collect(),
        last_removal: (0..KEYS).map(|_| AtomicU64::new(0)).collect(),
        started: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        failed: AtomicBool::new(false),
        selftest: env("MANY_READERS_SELFTEST", 0) == 1,
        txns: AtomicU64::new(0),
        shared_txns: AtomicU64::new(0),
        gets: AtomicU64::new(0),
        ranges: AtomicU64::new(0),
        entries: AtomicU64::new(0),
        long_scans: AtomicU64::new(0),
        clones: AtomicU64::new(0),
        held_values: AtomicU64::new(0),
        held_ranges: AtomicU64::new(0),
        batches: AtomicU64::new(0),
        entries_written: AtomicU64::new(0),
        checkpoints_called: AtomicU64::new(0),
    };
    for b in 1..=LOAD_BATCHES {
        commit_batch(&s, &db, b);
    }
    db.checkpoint().unwrap();
    let groups: Vec<SharedTable> = (0..readers.div_ceil(4))
        .map(|_| parking_lot::Mutex::new(None))
        .collect();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    std::thread::scope(|scope| {
        let (s, db) = (&s, &db);
        fn guard<'s>(s: &'s Shared, f: impl FnOnce() + Send + 's) -> impl FnOnce() + Send + 's {
            move || {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
                if let Err(e) = r {
                    s.failed.store(true, Ordering::SeqCst);
                    s.stop.store(true, Ordering::SeqCst);
                    std::panic::resume_unwind(e);
                }
            }
        }
        let mut handles = Vec::new();
        handles.push(scope.spawn(guard(s, move || {
            let mut b = LOAD_BATCHES;
            while !s.stop.load(Ordering::Relaxed) {
                b += 1;
                commit_batch(s, db, b);
            }
        })));
        handles.push(scope.spawn(guard(s, move || {
            let mut rng = Rng(77);
            while !s.stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(checkpoint_ms / 2 + rng.below(checkpoint_ms)));
                db.checkpoint().unwrap();
                s.checkpoints_called.fetch_add(1, Ordering::Relaxed);
            }
        })));
        for id in 0..readers {
            let group = &groups[id / 4];
            handles.push(scope.spawn(guard(s, move || reader(s, db, id, group))));
        }
        while Instant::now() < deadline && !s.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        s.stop.store(true, Ordering::SeqCst);
        let mut first_panic = None;
        for h in handles {
            if let Err(e) = h.join() {
                first_panic.get_or_insert(e);
            }
        }
        // Leave the shared tables before the scope's end.
        groups.iter().for_each(|g| *g.lock() = None);
        if let Some(e) = first_panic {
            std::panic::resume_unwind(e);
        }
    });
    let stats = db.stats();
    let cache = db.cache_stats();
    let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
    eprintln!(
        "many_readers_beside_flushes: {:.1}s, {readers} readers: batches {} ({} keys written), own txns {}, shared txns {}, gets {}, ranges {}, range entries {}, long scans {}, clones {}, held guards checked {}, held ranges read {}, checkpoint() calls {}; engine: commits {}, flushes {}, flush passes {}, flush part commits {}, tree commits {}, checkpoints {}, stalls {}; cache: evictions {}, read hits {}, read misses {}",
        start.elapsed().as_secs_f64(),
        c(&s.batches),
        c(&s.entries_written),
        c(&s.txns),
        c(&s.shared_txns),
        c(&s.gets),
        c(&s.ranges),
        c(&s.entries),
        c(&s.long_scans),
        c(&s.clones),
        c(&s.held_values),
        c(&s.held_ranges),
        c(&s.checkpoints_called),
        stats.commits,
        stats.flushes,
        stats.flush_passes,
        stats.flush_part_commits,
        stats.tree_commits,
        stats.checkpoints,
        stats.stalls,
        cache.evictions(),
        cache.read_hits(),
        cache.read_misses(),
    );
    assert!(!s.failed.load(Ordering::SeqCst));
    assert!(
        c(&s.batches) > LOAD_BATCHES,
        "the writer committed nothing beside the readers"
    );
}
