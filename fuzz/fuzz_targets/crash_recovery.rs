//! Crash recovery under arbitrary operation sequences, at the engine level.
//!
//! The input drives an engine over a crash-simulating data file and WAL
//! directory, with two tables:
//! - `t`, in byte order, which the resolver knows;
//! - `ci`, case-insensitive ("a" and "A" are one key, the newest write's key
//!   bytes are the ones shown), which the resolver does NOT know: at every
//!   reopen recovery defers its WAL records (engine::deferred), stages them in
//!   the data file, and reads them as an overlay once a typed open gives the
//!   order; the first flush after that absorbs them. Whether `ci` is opened
//!   at all before the next crash, and whether by a reader or a writer, is
//!   up to the input.
//!
//! Operations: puts (blind or returning the old value, which is checked),
//! removes (their returned old values checked), range
//! removals, table deletion, commits of every durability, pipelined commits
//! (waited on or not), aborts, bursts of `Durability::None` commits (with the
//! input's tiny memtables and WAL budget the apply thread flushes and
//! checkpoints while they run), checkpoints and compactions on this thread
//! (with a write transaction open or not) and on another thread while commits
//! continue, reads (gets, ranges forward, backward and from both ends) through
//! a snapshot and through the write transaction, a snapshot and its tables
//! held across later operations and read again, power cuts a few operations
//! ahead, crashes in which every unsynced write is dropped, kept or torn, and
//! clean closes.
//!
//! Oracle (BRIEF §1, `tests/common/engine.rs` `CrashOracle`):
//! - after a crash the recovered state is one of the committed states, in
//!   commit order, no older than the last commit acknowledged as durable (a
//!   waited commit, a durable pipelined commit, a checkpoint or compaction
//!   that returned: the latter cover every commit before they began);
//! - after a clean close, it is exactly the last committed state, even when
//!   unsynced writes of the data file are then torn;
//! - a snapshot shows a committed state no older than the last one it was
//!   bound to show, and the same state however long it is held (its
//!   tables' ranges may move to a newer engine state after a flush:
//!   `ReadTable`); a write transaction shows exactly the model;
//! - the integrity check passes after every reopen;
//! - with no power cut pending, no operation fails.
//!
//! Recovery's state is read from a copy of the disk first (a probe engine
//! that opens both tables), so the engine under test can leave `ci`
//! unopened, and its records deferred, for as long as the input wants.

#![no_main]

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sluicedb::StorageError;
use sluicedb::btree::{Comparator, ValueBytes, bytewise};
use sluicedb::engine::{Durability, Engine, EngineOptions, MergedRange, PendingCommit, ReadTable, ReadTxn, WriteTxn};
use sluicedb::io::{CrashDisk, TearMode};

type Result<T> = std::result::Result<T, StorageError>;

/// Byte order, known to the resolver.
const T: &[u8] = b"t";
const T_META: &[u8] = b"bytes";
/// Case-insensitive order, unknown to the resolver.
const C: &[u8] = b"ci";
const C_META: &[u8] = b"case-insensitive";

fn case_insensitive(a: &[u8], b: &[u8]) -> Ordering {
    a.iter()
        .map(u8::to_ascii_lowercase)
        .cmp(b.iter().map(u8::to_ascii_lowercase))
}

fn resolver(meta: &[u8]) -> Option<Comparator> {
    (meta == T_META).then_some(bytewise as Comparator)
}

/// A key of `ci`: one or two letters of either case, some of the two-letter
/// ones followed by 4500 `z`s (25 distinct keys, 10 of them longer than a
/// page: nodes that span pages, whose branches, in this custom order, hold
/// whole keys).
fn c_key(a: u8) -> Vec<u8> {
    let case = |ch: u8, bit: u8| if bit & 1 == 1 { ch.to_ascii_uppercase() } else { ch };
    let mut key = vec![case(b'a' + a % 5, a >> 3)];
    if a & 0x80 != 0 {
        key.push(case(b'a' + (a >> 4) % 3, a >> 6));
        if a & 0x20 != 0 {
            key.resize(2 + 4500, b'z');
        }
    }
    key
}

/// The committed contents of both tables (a missing table is empty).
#[derive(Clone, Debug, Default, PartialEq)]
struct State {
    t: BTreeMap<u8, Vec<u8>>,
    /// By lowercased key: the key bytes of the newest write, and the value.
    c: BTreeMap<Vec<u8>, (Vec<u8>, Vec<u8>)>,
}

fn t_entries(state: &State) -> Vec<(Vec<u8>, Vec<u8>)> {
    state.t.iter().map(|(k, v)| (vec![*k], v.clone())).collect()
}

fn c_entries(state: &State) -> Vec<(Vec<u8>, Vec<u8>)> {
    state.c.values().cloned().collect()
}

fn options(b: u8) -> EngineOptions {
    let memtable = [1usize << 10, 4 << 10, 64 << 10][usize::from(b % 3)];
    EngineOptions {
        cache_bytes: 4 << 20,
        memtable_bytes: memtable,
        max_frozen_bytes: memtable * 8,
        sync_interval: Duration::from_millis(5),
        segment_bytes: [2u64 << 10, 16 << 10][usize::from(b >> 2 & 1)],
        checkpoint_wal_bytes: [4u64 << 10, 1 << 30][usize::from(b >> 3 & 1)],
        checkpoint_interval: Duration::from_secs(3600),
        // Half the runs send every commit of more than a few writes
        // straight into the tree (engine::tree_commit).
        tree_commit_bytes: [64usize << 20, 1 << 10][usize::from(b >> 4 & 1)],
        // Half the runs' flushes commit durably every two pages
        // (engine::flush_marker), so crashes land between part commits.
        flush_commit_bytes: [16u64 << 20, 8 << 10][usize::from(b >> 5 & 1)],
        resolver,
        ..EngineOptions::default()
    }
}

/// The crash-simulating data file and WAL directory (imaged at one instant
/// while the engine runs), with an engine opener.
struct Disk(CrashDisk);

impl Disk {
    fn open(&self, options: EngineOptions) -> Result<Engine> {
        Engine::open(self.0.data.clone(), self.0.wal.clone(), options)
    }

    fn crashed(&self, mode: TearMode) -> Disk {
        Disk(self.0.crashed(mode))
    }

    /// A copy of everything written so far.
    fn copy(&self) -> Disk {
        Disk(self.0.copy())
    }
}

fn bound(b: Bound<&Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k),
        Bound::Excluded(k) => Bound::Excluded(k),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn pairs(range: MergedRange<'static>) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    range.map(|e| e.map(|(k, v)| (k.into_vec(), v.as_bytes().to_vec()))).collect()
}

/// Reads one table every way and checks the ways agree with each other;
/// returns its entries in key order.
fn observe(
    get: &dyn Fn(&[u8]) -> Result<Option<ValueBytes>>,
    range: &dyn Fn(Bound<&[u8]>, Bound<&[u8]>) -> Result<MergedRange<'static>>,
    cmp: Comparator,
    probes: [Vec<u8>; 2],
    how: u8,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let all = pairs(range(Bound::Unbounded, Bound::Unbounded)?)?;
    for w in all.windows(2) {
        assert_eq!(cmp(&w[0].0, &w[1].0), Ordering::Less, "keys out of order or repeated: {all:?}");
    }
    let mut backward = pairs_rev(range(Bound::Unbounded, Bound::Unbounded)?)?;
    backward.reverse();
    assert_eq!(backward, all, "backward iteration disagrees with forward");
    for probe in &probes {
        let want = all.iter().find(|(k, _)| cmp(k, probe).is_eq()).map(|(_, v)| v.clone());
        let got = get(probe)?.map(|v| v.as_bytes().to_vec());
        assert_eq!(got, want, "get({probe:?}) disagrees with iteration");
    }
    let [mut lo, mut hi] = probes;
    if cmp(&lo, &hi).is_gt() {
        std::mem::swap(&mut lo, &mut hi);
    }
    let lower = match how % 3 {
        0 => Bound::Included(&lo),
        1 => Bound::Excluded(&lo),
        _ => Bound::Unbounded,
    };
    let upper = match how / 3 % 3 {
        0 => Bound::Included(&hi),
        1 => Bound::Excluded(&hi),
        _ => Bound::Unbounded,
    };
    let inside = |k: &[u8]| {
        (match lower {
            Bound::Included(l) => cmp(k, l).is_ge(),
            Bound::Excluded(l) => cmp(k, l).is_gt(),
            Bound::Unbounded => true,
        }) && (match upper {
            Bound::Included(h) => cmp(k, h).is_le(),
            Bound::Excluded(h) => cmp(k, h).is_lt(),
            Bound::Unbounded => true,
        })
    };
    let want: Vec<_> = all.iter().filter(|(k, _)| inside(k)).cloned().collect();
    let (lower, upper) = (bound(lower), bound(upper));
    assert_eq!(pairs(range(lower, upper)?)?, want, "bounded range forward");
    let mut back = pairs_rev(range(lower, upper)?)?;
    back.reverse();
    assert_eq!(back, want, "bounded range backward");
    // From both ends at once, as the high bits say.
    let mut both = range(lower, upper)?;
    let (mut front, mut tail) = (Vec::new(), Vec::new());
    for i in 0.. {
        let next = if (how >> (i % 8)) & 1 == 1 { both.next_back() } else { both.next() };
        let Some(entry) = next else { break };
        let (k, v) = entry?;
        let item = (k.into_vec(), v.as_bytes().to_vec());
        if (how >> (i % 8)) & 1 == 1 {
            tail.push(item);
        } else {
            front.push(item);
        }
    }
    tail.reverse();
    front.extend(tail);
    assert_eq!(front, want, "bounded range from both ends");
    Ok(all)
}

fn pairs_rev(range: MergedRange<'static>) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    range.rev().map(|e| e.map(|(k, v)| (k.into_vec(), v.as_bytes().to_vec()))).collect()
}

fn t_probes(a: u8) -> [Vec<u8>; 2] {
    [vec![a % 64], vec![a.wrapping_mul(7) % 64]]
}

fn c_probes(a: u8) -> [Vec<u8>; 2] {
    [c_key(a), c_key(a.wrapping_mul(13).wrapping_add(5))]
}

/// Reads a table through a snapshot (empty if missing).
fn snapshot_read(read: &ReadTxn, name: &[u8], cmp: Comparator, probes: [Vec<u8>; 2], how: u8) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let table = read.open_table(name, cmp)?;
    let entries = table_read(read, table.as_ref(), cmp, probes, how)?;
    // Its count agrees with its entries: a recovery that replays records
    // the tree already holds counts them twice (a compaction beside a
    // flush did, fifty-fourth session).
    if let Some(table) = &table {
        assert_eq!(read.len(table)?, entries.len() as u64, "len() of a table after a reopen");
    }
    Ok(entries)
}

/// Reads a table opened in `read` (empty if it was missing).
fn table_read(
    read: &ReadTxn,
    table: Option<&ReadTable>,
    cmp: Comparator,
    probes: [Vec<u8>; 2],
    how: u8,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let Some(table) = table else { return Ok(Vec::new()) };
    observe(&|k| read.get(table, k), &|lo, hi| read.range(table, lo, hi), cmp, probes, how)
}

/// What a snapshot shows of `t`, and of `ci` when it was opened.
type Seen = (Vec<(Vec<u8>, Vec<u8>)>, Option<Vec<(Vec<u8>, Vec<u8>)>>);

/// Reads `t` and, when it was opened (`c` is `Some`), `ci` through `read`.
fn tables_read(read: &ReadTxn, t: Option<&ReadTable>, c: Option<Option<&ReadTable>>, how: u8) -> Result<Seen> {
    let t = table_read(read, t, bytewise, t_probes(how), how >> 1)?;
    let c = match c {
        Some(c) => Some(table_read(read, c, case_insensitive, c_probes(how), how >> 2)?),
        None => None,
    };
    Ok((t, c))
}

/// A snapshot kept across later operations, its tables opened, and what it
/// showed when it was taken.
struct Held {
    read: ReadTxn,
    t: Option<ReadTable>,
    /// `None`: `ci` was not read.
    c: Option<Option<ReadTable>>,
    seen: Seen,
}

/// Reads a table through a write transaction.
fn txn_read(txn: &mut WriteTxn, name: &[u8], meta: &[u8], cmp: Comparator, probes: [Vec<u8>; 2], how: u8) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let table = txn.open_table(name, meta, cmp)?;
    // A write transaction's range takes it mutably (it sorts its own
    // writes in first); `observe` calls one closure at a time.
    let txn = std::cell::RefCell::new(txn);
    observe(&|k| txn.borrow().get(table, k), &|lo, hi| txn.borrow_mut().range(table, lo, hi), cmp, probes, how)
}

struct Run {
    options: EngineOptions,
    disk: Disk,
    db: Option<Arc<Engine>>,
    /// Every committed state since the last recovery, in commit order.
    history: Vec<State>,
    /// The newest state acknowledged as durable.
    durable: usize,
    /// The oldest state a new snapshot may show.
    visible: usize,
    /// What the write transaction sees.
    working: State,
    txn: Option<Box<WriteTxn>>,
    /// Tables deleted by the open transaction (bounds table creations).
    deletes: u32,
    pending: Vec<(usize, PendingCommit)>,
    /// A checkpoint or compaction on another thread, and the newest state
    /// committed before it began.
    background: Option<(usize, JoinHandle<Result<()>>)>,
    /// A snapshot held since an earlier check.
    held: Option<Held>,
    /// A power cut may have happened since the last open: failures allowed.
    armed: bool,
    /// Something failed: only a reopen gets further.
    dead: bool,
}

impl Run {
    fn db(&self) -> &Engine {
        self.db.as_ref().expect("an open engine")
    }

    /// An error is fine only once the power may be gone.
    fn failed(&mut self, what: &str, error: StorageError) {
        assert!(self.armed, "{what} failed with no power cut pending: {error}");
        self.dead = true;
    }

    fn last(&self) -> usize {
        self.history.len() - 1
    }

    fn txn(&mut self) -> Option<&mut WriteTxn> {
        if self.txn.is_none() {
            match self.db().begin_write() {
                Ok(t) => {
                    self.txn = Some(t);
                    self.deletes = 0;
                }
                Err(e) => {
                    self.failed("begin_write", e);
                    return None;
                }
            }
        }
        self.txn.as_deref_mut()
    }

    fn drop_txn(&mut self) {
        self.txn = None;
        self.working = self.history[self.last()].clone();
    }

    fn commit(&mut self, how: u8) {
        let Some(mut txn) = self.txn.take() else { return };
        let index = self.history.len();
        let result = match how % 3 {
            0 => txn.commit(),
            1 => {
                txn.set_durability(Durability::None);
                txn.commit()
            }
            _ => txn.commit_pipelined().map(|p| self.pending.push((index, p))),
        };
        // Committed or not, a failed commit may have reached the log: it is
        // a possible state either way.
        self.history.push(self.working.clone());
        match result {
            Ok(()) if how % 3 == 0 => {
                self.durable = index;
                self.visible = index;
            }
            Ok(()) => {}
            Err(e) => self.failed("commit", e),
        }
    }

    fn put_t(&mut self, a: u8, len: usize) {
        let Some(txn) = self.txn() else { return };
        let value = vec![a; len];
        // The top bit picks a blind put, which returns nothing (its key
        // is counted at the commit or the next `len`, `txn_check`).
        let blind = a & 0x80 != 0;
        let result = txn.open_table(T, T_META, bytewise).and_then(|t| {
            if blind {
                txn.put(t, &[a % 64], &value).map(|()| None)
            } else {
                txn.insert(t, &[a % 64], &value)
            }
        });
        match result {
            Ok(old) => {
                let old = old.map(|v| v.as_bytes().to_vec());
                let was = self.working.t.insert(a % 64, value);
                if !blind {
                    assert_eq!(old, was, "insert's old value");
                }
            }
            Err(e) => self.failed("insert", e),
        }
    }

    fn put_c(&mut self, a: u8, len: usize) {
        let Some(txn) = self.txn() else { return };
        let (key, value) = (c_key(a), vec![a; len]);
        let result = txn.open_table(C, C_META, case_insensitive).and_then(|t| txn.insert(t, &key, &value));
        match result {
            Ok(old) => {
                let old = old.map(|v| v.as_bytes().to_vec());
                let was = self.working.c.insert(key.to_ascii_lowercase(), (key, value)).map(|(_, v)| v);
                assert_eq!(old, was, "insert's old value");
            }
            Err(e) => self.failed("insert", e),
        }
    }

    fn remove(&mut self, table: u8, a: u8) {
        let Some(txn) = self.txn() else { return };
        let result = if table == 0 {
            txn.open_table(T, T_META, bytewise).and_then(|t| txn.remove(t, &[a % 64]))
        } else {
            txn.open_table(C, C_META, case_insensitive).and_then(|t| txn.remove(t, &c_key(a)))
        };
        match result {
            Ok(old) => {
                let old = old.map(|v| v.as_bytes().to_vec());
                let was = if table == 0 {
                    self.working.t.remove(&(a % 64))
                } else {
                    self.working.c.remove(&c_key(a).to_ascii_lowercase()).map(|(_, v)| v)
                };
                assert_eq!(old, was, "remove's old value");
            }
            Err(e) => self.failed("remove", e),
        }
    }

    /// Writes every key of `t` in the transaction: a commit of 64 writes
    /// or more, which the engine's inserter thread inserts while the
    /// pending run answers reads (`engine::pending`).
    fn fill(&mut self, a: u8, len: usize) {
        for i in 0..64u8 {
            self.put_t(a.wrapping_add(i), len);
            if self.dead {
                return;
            }
        }
    }

    fn remove_range(&mut self, a: u8, width: u8) {
        let Some(txn) = self.txn() else { return };
        let (lo, hi) = (a % 64, (a % 64).saturating_add(width));
        let result = txn.open_table(T, T_META, bytewise).and_then(|t| {
            let keys = pairs(txn.range(t, Bound::Included(&[lo]), Bound::Excluded(&[hi]))?)?;
            for (k, _) in keys {
                txn.remove(t, &k)?;
            }
            Ok(())
        });
        match result {
            Ok(()) => self.working.t.retain(|k, _| !(lo..hi).contains(k)),
            Err(e) => self.failed("range removal", e),
        }
    }

    fn delete_c(&mut self) {
        if self.txn.is_some() && self.deletes >= 8 {
            return;
        }
        let Some(txn) = self.txn() else { return };
        match txn.delete_table(C) {
            Ok(_) => {
                self.deletes += 1;
                self.working.c.clear();
            }
            Err(e) => self.failed("delete_table", e),
        }
    }

    /// `n` commits nobody waits for, one after the other.
    fn burst(&mut self, a: u8, n: u8) {
        self.drop_txn();
        for i in 0..n {
            let k = a.wrapping_add(i.wrapping_mul(11));
            self.put_t(k, 40);
            if i % 3 == 0 {
                self.put_c(k.wrapping_mul(29), 9);
            }
            if self.dead {
                return;
            }
            self.commit(1);
            if self.dead {
                return;
            }
        }
    }

    /// Checkpoint (optionally with the write transaction kept open) or
    /// compaction, on this thread.
    fn checkpoint(&mut self, how: u8) {
        if how % 2 == 0 {
            self.drop_txn();
        }
        let covered = self.last();
        let result = if how % 3 == 2 {
            self.db().compact().map(|_| ())
        } else {
            self.db().checkpoint()
        };
        match result {
            Ok(()) => {
                self.durable = covered;
                self.visible = covered;
            }
            Err(e) => self.failed("checkpoint", e),
        }
    }

    fn spawn_background(&mut self, how: u8) {
        if self.background.is_some() {
            return;
        }
        let db = self.db.clone().expect("an open engine");
        let covered = self.last();
        let handle = std::thread::spawn(move || if how % 2 == 0 { db.checkpoint() } else { db.compact().map(|_| ()) });
        self.background = Some((covered, handle));
    }

    fn join_background(&mut self) {
        let Some((covered, handle)) = self.background.take() else { return };
        match handle.join().expect("the background checkpoint panicked") {
            Ok(()) => {
                // Durable; published too, though not necessarily seen yet
                // by a snapshot taken before it returned.
                self.durable = self.durable.max(covered);
                self.visible = self.visible.max(covered);
            }
            Err(e) => self.failed("background checkpoint", e),
        }
    }

    fn wait_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let (index, pending) = self.pending.remove(0);
        match pending.wait() {
            Ok(()) => {
                self.durable = self.durable.max(index);
                self.visible = self.visible.max(index);
            }
            Err(e) => self.failed("waiting for a pipelined commit", e),
        }
    }

    /// A snapshot shows a committed state no older than `visible`; a held
    /// one, the state it showed when it was taken.
    fn snapshot_check(&mut self, how: u8) {
        if let Some(held) = self.held.take() {
            match tables_read(&held.read, held.t.as_ref(), held.c.as_ref().map(Option::as_ref), how) {
                Ok(seen) => assert_eq!(seen, held.seen, "a held snapshot changed"),
                Err(e) => return self.failed("held snapshot read", e),
            }
            if how & 0x40 == 0 {
                self.held = Some(held);
            }
        }
        let with_c = how & 1 == 1;
        let db = self.db.clone().expect("an open engine");
        // One snapshot for both tables: two could straddle a publication.
        let read = match db.begin_read() {
            Ok(read) => read,
            Err(e) => return self.failed("begin_read", e),
        };
        let opened = read.open_table(T, bytewise).and_then(|t| {
            let c = if with_c { Some(read.open_table(C, case_insensitive)?) } else { None };
            Ok((t, c))
        });
        let (t_table, c_table) = match opened {
            Ok(opened) => opened,
            Err(e) => return self.failed("snapshot open", e),
        };
        let (t, c) = match tables_read(&read, t_table.as_ref(), c_table.as_ref().map(Option::as_ref), how) {
            Ok(seen) => seen,
            Err(e) => return self.failed("snapshot read", e),
        };
        // The entry count the commits recorded (blind puts' keys counted
        // at their commit) against the entries the snapshot shows.
        match t_table.as_ref().map_or(Ok(0), |table| read.len(table)) {
            Ok(len) => assert_eq!(len, t.len() as u64, "a snapshot's len of t"),
            Err(e) => return self.failed("snapshot len", e),
        }
        if how & 0x80 != 0 && self.held.is_none() {
            self.held = Some(Held {
                read,
                t: t_table,
                c: c_table,
                seen: (t.clone(), c.clone()),
            });
        }
        let found = (self.visible..self.history.len()).find(|&i| {
            let s = &self.history[i];
            t_entries(s) == t && c.as_ref().is_none_or(|c| c_entries(s) == *c)
        });
        let Some(found) = found else {
            panic!(
                "a snapshot shows no committed state at or after {}: t {t:?}, ci {c:?}, history {:?}",
                self.visible, self.history
            );
        };
        self.visible = found;
    }

    /// The write transaction shows exactly the model.
    fn txn_check(&mut self, how: u8) {
        let Some(txn) = self.txn() else { return };
        let t = txn_read(txn, T, T_META, bytewise, t_probes(how), how >> 1);
        let c = if how & 1 == 1 {
            txn_read(txn, C, C_META, case_insensitive, c_probes(how), how >> 2).map(Some)
        } else {
            Ok(None)
        };
        let t_len = txn.open_table(T, T_META, bytewise).and_then(|t| txn.len(t));
        match (t, c, t_len) {
            (Ok(t), Ok(c), Ok(t_len)) => {
                assert_eq!(t, t_entries(&self.working), "the write transaction's view of t");
                assert_eq!(t_len, t.len() as u64, "the write transaction's len of t");
                if let Some(c) = c {
                    assert_eq!(c, c_entries(&self.working), "the write transaction's view of ci");
                }
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => self.failed("write transaction read", e),
        }
    }

    fn arm_power_cut(&mut self, a: u8) {
        self.disk.0.wal.cut_power_after(self.disk.0.wal.ops() + u64::from(a % 8));
        self.disk.0.data.cut_power_after(self.disk.0.data.ops() + u64::from(a >> 4));
        self.armed = true;
    }

    /// A clean close (if nothing is armed or failed) or a crash, then
    /// recovery, checked against the model.
    fn reopen(&mut self, clean: bool, a: u8) {
        self.txn = None;
        self.held = None;
        self.join_background();
        for (index, p) in self.pending.drain(..) {
            if p.is_durable() {
                self.durable = self.durable.max(index);
            }
        }
        let clean = clean && !self.armed && !self.dead;
        if clean {
            // A clean close drains the WAL: everything committed stays.
            self.durable = self.last();
        }
        let db = self.db.take().expect("an open engine");
        assert_eq!(Arc::strong_count(&db), 1, "the engine is still shared");
        drop(db);
        let mode = match a % 3 {
            0 => TearMode::DropAll,
            1 => TearMode::KeepAll,
            _ => TearMode::Random(u64::from(a)),
        };
        // A clean close may still meet a crash right after: what the close
        // synced survives any tearing of the rest.
        if !clean || a & 4 != 0 {
            self.disk = self.disk.crashed(mode);
        }

        // What recovery finds, read from a copy with both tables opened.
        let state = {
            let probe = self.disk.copy().open(self.options).expect("reopen after a crash");
            probe.check_integrity().expect("integrity after a crash");
            let read = probe.begin_read().expect("a snapshot after a crash");
            let t = snapshot_read(&read, T, bytewise, t_probes(a), a >> 3).expect("read t after a crash");
            let c = snapshot_read(&read, C, case_insensitive, c_probes(a), a >> 4).expect("read ci after a crash");
            let mut state = State::default();
            for (k, v) in t {
                assert_eq!(k.len(), 1, "a key of t that was never written");
                state.t.insert(k[0], v);
            }
            for (k, v) in c {
                state.c.insert(k.to_ascii_lowercase(), (k, v));
            }
            probe.check_integrity().expect("integrity after reading every table");
            state
        };
        if clean {
            assert_eq!(&state, &self.history[self.last()], "a clean close lost commits");
        }
        let found = self
            .history
            .iter()
            .rposition(|s| *s == state)
            .unwrap_or_else(|| panic!("recovered a state that was never committed: {state:?}"));
        assert!(
            found >= self.durable,
            "lost an acknowledged commit: recovered state {found}, durable {}",
            self.durable
        );

        // The engine under test: `ci` stays unopened (its records deferred)
        // unless the input reads it now.
        let db = self.disk.open(self.options).expect("reopen after a crash (second open)");
        db.check_integrity().expect("integrity after a crash (second open)");
        let read = db.begin_read().expect("a snapshot after reopen");
        let t = snapshot_read(&read, T, bytewise, t_probes(a), a >> 5).expect("read t after reopen");
        assert_eq!(t, t_entries(&state), "the second open recovered another t");
        if a & 8 != 0 {
            let c = snapshot_read(&read, C, case_insensitive, c_probes(a), a >> 2).expect("read ci after reopen");
            assert_eq!(c, c_entries(&state), "the deferred ci differs from the probe's");
        }
        self.db = Some(Arc::new(db));
        self.history = vec![state.clone()];
        self.working = state;
        self.durable = 0;
        self.visible = 0;
        self.armed = false;
        self.dead = false;
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, data)) = data.split_first() else { return };
    let options = options(first);
    let disk = Disk(CrashDisk::new());
    let db = disk.open(options).expect("create");
    let mut run = Run {
        options,
        disk,
        db: Some(Arc::new(db)),
        history: vec![State::default()],
        durable: 0,
        visible: 0,
        working: State::default(),
        txn: None,
        deletes: 0,
        pending: Vec::new(),
        background: None,
        held: None,
        armed: false,
        dead: false,
    };
    let mut bytes = data.iter().copied();
    while let Some(op) = bytes.next() {
        let a = bytes.next().unwrap_or(0);
        let (kind, p) = (op % 24, op / 24);
        if run.dead && kind < 22 {
            continue;
        }
        match kind {
            0..=2 => run.put_t(a, usize::from(p) * 7),
            3 => run.fill(a, usize::from(p) * 7),
            4 => run.remove(0, a),
            5 => run.remove_range(a, p),
            6 | 7 => run.put_c(a, usize::from(p) * 3 + 1),
            8 => run.remove(1, a),
            9 => run.delete_c(),
            10..=12 => run.commit(p),
            13 => {
                if let Some(t) = run.txn.take() {
                    t.abort();
                }
                run.drop_txn();
            }
            14 => run.burst(a, 1 + p % 16),
            15 => run.checkpoint(p),
            16 => run.spawn_background(p),
            17 => run.join_background(),
            18 => run.snapshot_check(a),
            19 => run.txn_check(a),
            20 => run.arm_power_cut(a),
            21 => run.wait_pending(),
            22 => run.reopen(true, a),
            _ => run.reopen(false, a),
        }
    }
    // Whatever was left running ends here; a final clean close checks it.
    run.reopen(true, 0);
});
