//! The old values `insert`, `remove` and `pop_*` return, `len()` and
//! `get()` under every kind of background maintenance (flushes that commit
//! in parts, memtables growing with the tree, tree commits, the tree
//! filter's builds and rebuilds, checkpoints, compaction, clean reopens and
//! power cuts), against a model of every table. Written by an adversarial
//! review in the fifty-fourth session; it found nothing.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;

use common::engine::{CrashOracle, Disk};
use common::{Rng, mix, numeric};

use sluicedb::btree::{Comparator, bytewise};
use sluicedb::engine::{Durability, Engine, EngineOptions, TableRef, WriteTxn};
use sluicedb::io::TearMode;

/// Byte-ordered tables (the tree filter serves them), tables ordered by
/// `numeric` (little-endian u16 of the first two bytes: keys with other
/// trailing bytes are equal), known to recovery, and the same order under a
/// name recovery does not know (its records are deferred after a reopen).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Bytes,
    Numeric,
    Unknown,
}

const NAMES: &[(&str, Kind)] = &[
    ("b0", Kind::Bytes),
    ("b1", Kind::Bytes),
    ("b2", Kind::Bytes),
    ("n0", Kind::Numeric),
    ("n1", Kind::Numeric),
    ("u0", Kind::Unknown),
];

fn kind_of(name: &str) -> Kind {
    NAMES.iter().find(|(n, _)| *n == name).unwrap().1
}

fn meta(kind: Kind) -> &'static [u8] {
    match kind {
        Kind::Bytes => b"bytes",
        Kind::Numeric => b"numeric",
        Kind::Unknown => b"alias",
    }
}

fn cmp(kind: Kind) -> Comparator {
    match kind {
        Kind::Bytes => bytewise,
        _ => numeric,
    }
}

fn resolver(meta: &[u8]) -> Option<Comparator> {
    match meta {
        b"numeric" => Some(numeric),
        b"bytes" => Some(bytewise),
        _ => None,
    }
}

/// The model's key: the bytes for byte order, the u16 (big-endian, so the
/// map's order is the table's) for the numeric order.
fn norm(kind: Kind, key: &[u8]) -> Vec<u8> {
    match kind {
        Kind::Bytes => key.to_vec(),
        _ => u16::from_le_bytes([key[0], key[1]]).to_be_bytes().to_vec(),
    }
}

/// A key of the model key `nk` as the table takes it; `alias` adds a
/// trailing byte (an equal key of other bytes) for the numeric orders.
fn denorm(kind: Kind, nk: &[u8], alias: Option<u8>) -> Vec<u8> {
    match kind {
        Kind::Bytes => nk.to_vec(),
        _ => {
            let mut k = u16::from_be_bytes([nk[0], nk[1]]).to_le_bytes().to_vec();
            k.extend(alias);
            k
        }
    }
}

type Table = BTreeMap<Vec<u8>, Vec<u8>>;
type Full = BTreeMap<String, Table>;

struct H {
    options: EngineOptions,
    disk: Disk,
    db: Option<Engine>,
    committed: Full,
    oracle: CrashOracle<Full>,
    rng: Rng,
    fresh: u64,
    version: u64,
    log: Vec<String>,
    /// Per op kind, how many ran (to make sure the mix is exercised).
    seen: BTreeMap<&'static str, u64>,
    bulk_keys: u64,
    /// Flushes, part commits, tree commits and the largest memtable limit
    /// seen, summed over the engines opened.
    totals: [u64; 4],
    /// Whether the crash oracle follows the commits (off: every commit is
    /// durable, and a crash must recover the last).
    track: bool,
}

impl H {
    fn new(seed: u64, options: EngineOptions) -> Self {
        let disk = Disk::new();
        let db = disk.open(options);
        Self {
            options,
            disk,
            db: Some(db),
            committed: Full::new(),
            oracle: CrashOracle::new(Full::new()),
            rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            fresh: seed << 40,
            version: 0,
            log: Vec::new(),
            seen: BTreeMap::new(),
            bulk_keys: 1500,
            totals: [0; 4],
            track: true,
        }
    }

    /// Everything committed so far is durable.
    fn durable(&mut self) {
        if self.track {
            self.oracle.durable(self.committed.clone());
        }
    }

    fn tally(&mut self) {
        let s = self.db().stats();
        self.totals[0] += s.flushes;
        self.totals[1] += s.flush_part_commits;
        self.totals[2] += s.tree_commits;
        self.totals[3] = self.totals[3].max(s.memtable_limit);
    }

    fn db(&self) -> &Engine {
        self.db.as_ref().unwrap()
    }

    fn fail(&self, what: String) -> ! {
        let n = self.log.len();
        let tail = &self.log[n.saturating_sub(40)..];
        panic!("{what}\nlast ops ({n} in all):\n{}", tail.join("\n"));
    }

    fn note(&mut self, op: &'static str, detail: String) {
        *self.seen.entry(op).or_default() += 1;
        self.log.push(format!("{op} {detail}"));
    }

    fn value(&mut self) -> Vec<u8> {
        self.version += 1;
        let len = 1 + self.rng.below(40) as usize;
        let mut v = format!("v{}-", self.version).into_bytes();
        v.resize(len.max(v.len()), b'x');
        v
    }

    fn fresh_key(&mut self, kind: Kind) -> Vec<u8> {
        match kind {
            Kind::Bytes => {
                self.fresh += 1;
                mix(self.fresh).to_be_bytes().to_vec()
            }
            _ => (self.rng.below(3000) as u16).to_be_bytes().to_vec(),
        }
    }

    fn alias(&mut self, kind: Kind) -> Option<u8> {
        (kind != Kind::Bytes && self.rng.chance(30)).then(|| self.rng.below(256) as u8)
    }

    /// Every table's entries and len, read in one read transaction.
    fn observe(&self) -> Full {
        let txn = self.db().begin_read().unwrap();
        let mut full = Full::new();
        for (name, _) in txn.list_tables().unwrap() {
            let Ok(name) = String::from_utf8(name) else { continue };
            if !NAMES.iter().any(|(n, _)| *n == name) {
                continue;
            }
            let kind = kind_of(&name);
            let t = txn.open_table(name.as_bytes(), cmp(kind)).unwrap().unwrap();
            let mut table = Table::new();
            let mut last: Option<Vec<u8>> = None;
            for entry in txn.range(&t, Bound::Unbounded, Bound::Unbounded).unwrap() {
                let (k, v) = entry.unwrap();
                let nk = norm(kind, &k);
                if let Some(l) = &last
                    && l >= &nk
                {
                    self.fail(format!("table {name}: keys out of order"));
                }
                last = Some(nk.clone());
                table.insert(nk, v.to_vec());
            }
            let len = txn.len(&t).unwrap();
            if len != table.len() as u64 {
                self.fail(format!("table {name}: len() {len} but {} entries listed", table.len()));
            }
            full.insert(name, table);
        }
        full
    }

    fn check_all(&self, at: &str) {
        // Pipelined commits are published once synced: read after that.
        self.db().sync().unwrap();
        let got = self.observe();
        if got != self.committed {
            let mut diff = String::new();
            for name in got.keys().chain(self.committed.keys()) {
                let (g, w) = (got.get(name), self.committed.get(name));
                if g != w {
                    diff += &format!(
                        "table {name}: got {:?} entries, want {:?}",
                        g.map(|t| t.len()),
                        w.map(|t| t.len())
                    );
                    if let (Some(g), Some(w)) = (g, w) {
                        let only_g: Vec<_> = g.iter().filter(|(k, v)| w.get(*k) != Some(v)).take(5).collect();
                        let only_w: Vec<_> = w.iter().filter(|(k, v)| g.get(*k) != Some(v)).take(5).collect();
                        diff += &format!("; got-only {only_g:?}; want-only {only_w:?}");
                    }
                    diff += "\n";
                }
            }
            self.fail(format!("contents {at}:\n{diff}"));
        }
    }

    fn step(&mut self) {
        match self.rng.below(100) {
            0..=3 => {
                self.note("checkpoint", String::new());
                self.db().checkpoint().unwrap();
                self.durable();
            }
            4..=5 => {
                self.note("compact", String::new());
                self.db().compact().unwrap();
                self.durable();
                self.check_all("after compact");
            }
            6..=7 => self.crash(),
            8 => self.reopen(),
            9..=14 => self.bulk(),
            15..=16 => self.check_all("between transactions"),
            _ => self.txn(),
        }
    }

    fn crash(&mut self) {
        let mode = match self.rng.below(3) {
            0 => TearMode::DropAll,
            1 => TearMode::KeepAll,
            _ => TearMode::Random(self.rng.next()),
        };
        self.crash_with(mode);
    }

    fn crash_with(&mut self, mode: TearMode) {
        self.note("crash", format!("{mode:?}"));
        let image = self.disk.crashed(mode);
        self.tally();
        self.db = None;
        self.disk = image;
        self.db = Some(self.disk.open(self.options));
        let state = self.observe();
        if !self.track {
            self.check_all("after crash (every commit durable)");
        }
        if self.track && !self.oracle.allows(&state) {
            self.committed = self.oracle.last_durable().clone();
            self.check_all("after crash (state not allowed; diff against last durable)");
            self.fail("recovered state not allowed".into());
        }
        self.committed = state.clone();
        self.oracle.durable(state);
    }

    fn reopen(&mut self) {
        self.note("reopen", String::new());
        self.tally();
        self.db = None;
        self.db = Some(self.disk.open(self.options));
        self.check_all("after clean reopen");
        self.durable();
    }

    /// One transaction of fresh keys big enough to go straight into the
    /// tree (its table's keys then all in the tree, the filter learning
    /// them), with overwrites of a few present keys.
    fn bulk(&mut self) {
        let (name, kind) = NAMES[self.rng.below(3) as usize];
        let n = self.bulk_keys / 2 + self.rng.below(self.bulk_keys);
        // 0: plain; 1: the table deleted and recreated first; 2: renamed
        // from another byte-ordered table first; 3: blind puts.
        let variant = self.rng.below(4);
        let none = self.rng.chance(30);
        self.note("bulk", format!("{name} {n} variant {variant} none {none}"));
        let db = self.db.take().unwrap();
        let mut w = db.begin_write().unwrap();
        if none {
            w.set_durability(Durability::None);
        }
        let mut state = self.committed.clone();
        let mut errors = Vec::new();
        if variant == 1 {
            let got = w.delete_table(name.as_bytes()).unwrap();
            if got != state.remove(name).is_some() {
                errors.push(format!("delete_table {name}: {got}"));
            }
        }
        if variant == 2 {
            let from = NAMES[self.rng.below(3) as usize].0;
            if from != name && state.contains_key(from) {
                w.delete_table(name.as_bytes()).unwrap();
                state.remove(name);
                assert!(w.rename_table(from.as_bytes(), name.as_bytes()).unwrap());
                let t = state.remove(from).unwrap();
                state.insert(name.into(), t);
            }
        }
        let t = w.open_table(name.as_bytes(), meta(kind), cmp(kind)).unwrap();
        let model = state.entry(name.into()).or_default();
        let present: Vec<Vec<u8>> = model.keys().step_by(3).cloned().collect();
        for i in 0..n {
            let nk = if !present.is_empty() && i % 4 == 0 {
                present[self.rng.below(present.len() as u64) as usize].clone()
            } else {
                self.fresh_key(kind)
            };
            let v = self.value();
            if variant == 3 {
                w.put(t, &nk, &v).unwrap();
                model.insert(nk, v);
                continue;
            }
            if i % 9 == 0 {
                let got = w.remove(t, &nk).unwrap().map(|v| v.to_vec());
                let want = model.remove(&nk);
                expect_same(&mut errors, format_args!("bulk remove {name} {nk:?}"), &got, &want);
                continue;
            }
            let got = w.insert(t, &nk, &v).unwrap().map(|v| v.to_vec());
            let want = model.insert(nk.clone(), v);
            expect_same(&mut errors, format_args!("bulk insert {name} {nk:?}"), &got, &want);
        }
        let len = w.len(t).unwrap();
        expect_same(
            &mut errors,
            format_args!("bulk {name}: len"),
            &len,
            &(model.len() as u64),
        );
        if !errors.is_empty() {
            self.db = Some(db);
            errors.truncate(5);
            self.fail(format!("bulk: {errors:#?}"));
        }
        w.commit().unwrap();
        self.db = Some(db);
        self.committed = state;
        if none && self.track {
            // Small enough to go through the WAL unwaited, or a tree commit
            // (durable whatever its durability): either may be recovered.
            self.oracle.unwaited(self.committed.clone());
        } else {
            self.durable();
        }
    }

    fn txn(&mut self) {
        let db = self.db.take().unwrap();
        let mut w = db.begin_write().unwrap();
        let none = self.rng.chance(30);
        if none {
            w.set_durability(Durability::None);
        }
        let mut state = self.committed.clone();
        let n_ops = 1 + self.rng.below(12);
        self.note("begin", format!("none {none}"));
        let mut refs: BTreeMap<String, TableRef> = BTreeMap::new();
        let result = (|| -> Result<(), String> {
            for _ in 0..n_ops {
                self.op(&mut w, &mut state, &mut refs)?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            self.db = Some(db);
            self.fail(e);
        }
        if self.rng.chance(8) {
            self.note("abort", String::new());
            w.abort();
        } else {
            let pipelined = self.rng.chance(30);
            self.note("commit", format!("pipelined {pipelined}"));
            if pipelined {
                // Not waited for: the next transaction starts while this
                // one may still be a pending run beside the memtable.
                drop(w.commit_pipelined().unwrap());
            } else {
                w.commit().unwrap();
            }
            self.committed = state;
            if none || pipelined {
                self.oracle.unwaited(self.committed.clone());
            } else {
                self.durable();
            }
        }
        self.db = Some(db);
    }

    fn table(&mut self, w: &mut WriteTxn, refs: &mut BTreeMap<String, TableRef>, name: &str) -> TableRef {
        if let Some(t) = refs.get(name) {
            return *t;
        }
        let kind = kind_of(name);
        let t = w.open_table(name.as_bytes(), meta(kind), cmp(kind)).unwrap();
        refs.insert(name.into(), t);
        t
    }

    fn op(&mut self, w: &mut WriteTxn, state: &mut Full, refs: &mut BTreeMap<String, TableRef>) -> Result<(), String> {
        let (name, kind) = NAMES[self.rng.below(NAMES.len() as u64) as usize];
        let r = self.rng.below(100);
        if r < 6 {
            // Table management.
            match self.rng.below(4) {
                0 => {
                    self.note("delete_table", name.into());
                    let got = w.delete_table(name.as_bytes()).unwrap();
                    let want = state.remove(name).is_some();
                    refs.remove(name);
                    if got != want {
                        return Err(format!("delete_table {name}: got {got} want {want}"));
                    }
                }
                1 | 3 => {
                    let to: Vec<&str> = NAMES
                        .iter()
                        .filter(|(n, k)| *k == kind && *n != name && !state.contains_key(*n))
                        .map(|(n, _)| *n)
                        .collect();
                    if to.is_empty() || !state.contains_key(name) {
                        return Ok(());
                    }
                    let to = to[self.rng.below(to.len() as u64) as usize];
                    self.note("rename_table", format!("{name} -> {to}"));
                    let got = w.rename_table(name.as_bytes(), to.as_bytes()).unwrap();
                    if !got {
                        return Err(format!("rename {name} -> {to} refused"));
                    }
                    let t = state.remove(name).unwrap();
                    state.insert(to.into(), t);
                    refs.remove(name);
                    refs.remove(to);
                }
                _ => {
                    self.note("open_table", name.into());
                    self.table(w, refs, name);
                    state.entry(name.into()).or_default();
                }
            }
            return Ok(());
        }
        let t = self.table(w, refs, name);
        let model = state.entry(name.into()).or_default();
        let present: Option<Vec<u8>> = (!model.is_empty()).then(|| {
            model
                .keys()
                .nth(self.rng.below(model.len() as u64) as usize)
                .unwrap()
                .clone()
        });
        match r {
            6..=35 => {
                let nk = self.fresh_key(kind);
                let alias = self.alias(kind);
                let key = denorm(kind, &nk, alias);
                let v = self.value();
                self.note("insert_fresh", format!("{name} {key:?}"));
                let got = w.insert(t, &key, &v).unwrap().map(|v| v.to_vec());
                let want = model.insert(nk, v);
                same(format_args!("insert {name} {key:?}"), &got, &want)?;
            }
            36..=55 => {
                let Some(nk) = present else { return Ok(()) };
                let alias = self.alias(kind);
                let key = denorm(kind, &nk, alias);
                let v = self.value();
                self.note("overwrite", format!("{name} {key:?}"));
                let got = w.insert(t, &key, &v).unwrap().map(|v| v.to_vec());
                let want = model.insert(nk, v);
                same(format_args!("overwrite {name} {key:?}"), &got, &want)?;
            }
            56..=65 => {
                let nk = if self.rng.chance(50) {
                    present.unwrap_or_else(|| self.fresh_key(kind))
                } else {
                    self.fresh_key(kind)
                };
                let key = denorm(kind, &nk, self.alias(kind));
                self.note("remove", format!("{name} {key:?}"));
                let got = w.remove(t, &key).unwrap().map(|v| v.to_vec());
                let want = model.remove(&nk);
                same(format_args!("remove {name} {key:?}"), &got, &want)?;
            }
            66..=72 => {
                let nk = if self.rng.chance(50) {
                    present.unwrap_or_else(|| self.fresh_key(kind))
                } else {
                    self.fresh_key(kind)
                };
                let key = denorm(kind, &nk, self.alias(kind));
                let v = self.value();
                self.note("put", format!("{name} {key:?}"));
                w.put(t, &key, &v).unwrap();
                model.insert(nk, v);
            }
            73..=78 => {
                let first = self.rng.chance(50);
                self.note("pop", format!("{name} first {first}"));
                let got = if first { w.pop_first(t) } else { w.pop_last(t) }
                    .unwrap()
                    .map(|(k, v)| (norm(kind, &k), v.to_vec()));
                let want = if first { model.pop_first() } else { model.pop_last() };
                same(format_args!("pop {name} first {first}"), &got, &want)?;
            }
            79..=84 => {
                // Insert after remove, in one transaction.
                let Some(nk) = present else { return Ok(()) };
                let key = denorm(kind, &nk, self.alias(kind));
                self.note("remove_then_insert", format!("{name} {key:?}"));
                let got = w.remove(t, &key).unwrap().map(|v| v.to_vec());
                let want = model.remove(&nk);
                same(format_args!("remove {name} {key:?}"), &got, &want)?;
                let v = self.value();
                let got = w.insert(t, &key, &v).unwrap().map(|v| v.to_vec());
                let want = model.insert(nk, v);
                same(format_args!("insert after remove {name} {key:?}"), &got, &want)?;
            }
            _ => {
                let nk = if self.rng.chance(60) {
                    present.unwrap_or_else(|| self.fresh_key(kind))
                } else {
                    self.fresh_key(kind)
                };
                let key = denorm(kind, &nk, self.alias(kind));
                self.note("get", format!("{name} {key:?}"));
                let got = w.get(t, &key).unwrap().map(|v| v.to_vec());
                let want = model.get(&nk).cloned();
                same(format_args!("get {name} {key:?}"), &got, &want)?;
            }
        }
        let len = w.len(t).unwrap();
        let want = state[name].len() as u64;
        if len != want {
            return Err(format!("len {name}: got {len} want {want}"));
        }
        Ok(())
    }
}

fn run(seed: u64, options: EngineOptions, steps: usize, bulk_keys: u64) -> BTreeMap<&'static str, u64> {
    let mut h = H::new(seed, options);
    h.bulk_keys = bulk_keys;
    for _ in 0..steps {
        h.step();
    }
    h.check_all("at the end");
    h.reopen();
    h.tally();
    eprintln!("seed {seed}: {:?} totals {:?}", h.seen, h.totals);
    h.seen
}

/// Small memtables, flushes committing every few pages, small tree
/// commits: every stage runs in the background of every op.
fn small() -> EngineOptions {
    EngineOptions {
        memtable_bytes: 8 << 10,
        max_frozen_bytes: 128 << 10,
        segment_bytes: 8 << 10,
        checkpoint_wal_bytes: 32 << 10,
        flush_commit_bytes: 8 << 10,
        tree_commit_bytes: 16 << 10,
        resolver,
        ..EngineOptions::default()
    }
}

/// Memtables that hold everything until a checkpoint, whose flush then
/// commits every two pages.
fn parts() -> EngineOptions {
    EngineOptions {
        memtable_bytes: 4 << 20,
        max_frozen_bytes: 16 << 20,
        checkpoint_wal_bytes: 64 << 20,
        flush_commit_bytes: 8 << 10,
        tree_commit_bytes: 32 << 10,
        ..small()
    }
}

/// Memtables growing with the tree (an eighth of it) from a small start.
fn growing() -> EngineOptions {
    EngineOptions {
        memtable_bytes: 4 << 10,
        max_memtable_bytes: 1 << 20,
        ..small()
    }
}

/// A result `got` that is not the model's `want`, named by `what`, as an
/// error.
fn same<T: PartialEq + std::fmt::Debug>(what: std::fmt::Arguments<'_>, got: &T, want: &T) -> Result<(), String> {
    if got == want {
        return Ok(());
    }
    Err(format!("{what}: got {got:?} want {want:?}"))
}

/// [`same`], its error noted in `errors`.
fn expect_same<T: PartialEq + std::fmt::Debug>(
    errors: &mut Vec<String>,
    what: std::fmt::Arguments<'_>,
    got: &T,
    want: &T,
) {
    if let Err(e) = same(what, got, want) {
        errors.push(e);
    }
}

#[test]
fn model_small_memtables_part_flushes() {
    for seed in common::seeds(&[1, 2], "REVIEW_SEEDS") {
        run(seed, small(), 250, 1500);
    }
}

#[test]
fn model_flush_parts_at_checkpoints() {
    for seed in common::seeds(&[3, 4], "REVIEW_SEEDS") {
        run(seed, parts(), 250, 1500);
    }
}

#[test]
fn model_memtables_growing_with_the_tree() {
    for seed in common::seeds(&[5, 6], "REVIEW_SEEDS") {
        run(seed, growing(), 250, 2500);
    }
}

impl H {
    /// One transaction on byte-ordered table `name`: `fresh` new keys,
    /// `over` overwrites and `rm` removals of present keys (one in four
    /// removals of an absent key), `reins` removals then re-inserts in
    /// the same transaction, each result checked, then `len()`.
    fn mixed(&mut self, name: &str, fresh: u64, over: u64, rm: u64, reins: u64) {
        let kind = kind_of(name);
        let db = self.db.take().unwrap();
        let mut w = db.begin_write().unwrap();
        let t = w.open_table(name.as_bytes(), meta(kind), cmp(kind)).unwrap();
        let mut model = self.committed.get(name).cloned().unwrap_or_default();
        // A present key at a random place (the keys are spread over the
        // u64 range), or none.
        let pick = |rng: &mut Rng, model: &Table| {
            let from = rng.next().to_be_bytes().to_vec();
            model
                .range(from..)
                .next()
                .or_else(|| model.iter().next())
                .map(|(k, _)| k.clone())
        };
        let mut errors = Vec::new();
        for i in 0..fresh + over + rm + reins {
            let v = self.value();
            if i < fresh {
                let k = self.fresh_key(kind);
                let got = w.insert(t, &k, &v).unwrap().map(|v| v.to_vec());
                let want = model.insert(k.clone(), v);
                expect_same(&mut errors, format_args!("fresh insert {k:?}"), &got, &want);
            } else if i < fresh + over {
                let Some(k) = pick(&mut self.rng, &model) else { continue };
                let got = w.insert(t, &k, &v).unwrap().map(|v| v.to_vec());
                let want = model.insert(k.clone(), v);
                expect_same(&mut errors, format_args!("overwrite {k:?}"), &got, &want);
            } else if i < fresh + over + rm {
                let k = if self.rng.chance(25) {
                    Some(self.fresh_key(kind))
                } else {
                    pick(&mut self.rng, &model)
                };
                let Some(k) = k else { continue };
                let got = w.remove(t, &k).unwrap().map(|v| v.to_vec());
                let want = model.remove(&k);
                expect_same(&mut errors, format_args!("remove {k:?}"), &got, &want);
            } else {
                let Some(k) = pick(&mut self.rng, &model) else { continue };
                let got = w.remove(t, &k).unwrap().map(|v| v.to_vec());
                let want = model.remove(&k);
                expect_same(&mut errors, format_args!("remove before re-insert {k:?}"), &got, &want);
                let got = w.insert(t, &k, &v).unwrap().map(|v| v.to_vec());
                let want = model.insert(k.clone(), v);
                expect_same(&mut errors, format_args!("re-insert {k:?}"), &got, &want);
            }
        }
        let len = w.len(t).unwrap();
        expect_same(&mut errors, format_args!("len"), &len, &(model.len() as u64));
        w.commit().unwrap();
        self.db = Some(db);
        self.note(
            "mixed",
            format!("{name} fresh {fresh} over {over} rm {rm} reins {reins}"),
        );
        if !errors.is_empty() {
            let n = errors.len();
            errors.truncate(5);
            self.fail(format!("{n} wrong results in a mixed commit, first: {errors:#?}"));
        }
        self.committed.insert(name.into(), model);
        self.durable();
    }

    /// Re-inserts keys removed earlier (`removed`), checking each returns
    /// `None`, and forgets them.
    fn reinsert(&mut self, name: &str, removed: &mut Vec<Vec<u8>>) {
        let kind = kind_of(name);
        let db = self.db.take().unwrap();
        let mut w = db.begin_write().unwrap();
        let t = w.open_table(name.as_bytes(), meta(kind), cmp(kind)).unwrap();
        let mut model = self.committed.get(name).cloned().unwrap_or_default();
        let mut errors = Vec::new();
        for k in removed.drain(..) {
            let v = self.value();
            let got = w.insert(t, &k, &v).unwrap().map(|v| v.to_vec());
            let want = model.insert(k.clone(), v);
            expect_same(&mut errors, format_args!("re-insert {k:?}"), &got, &want);
        }
        let len = w.len(t).unwrap();
        expect_same(&mut errors, format_args!("len"), &len, &(model.len() as u64));
        w.commit().unwrap();
        self.db = Some(db);
        self.note("reinsert", name.into());
        if !errors.is_empty() {
            self.fail(format!("{} wrong results re-inserting: {errors:#?}", errors.len()));
        }
        self.committed.insert(name.into(), model);
        self.durable();
    }
}

/// Memtables whose point index fills (1 MiB memtable: an index of 8K
/// slots, full at 6K keys), so later keys live only in the key filter;
/// overwrites, removals and re-inserts of keys on both sides of that line,
/// across frozen memtables, checked one by one.
#[test]
fn memtable_point_index_overflow_old_values() {
    let options = EngineOptions {
        memtable_bytes: 1 << 20,
        max_frozen_bytes: 8 << 20,
        checkpoint_wal_bytes: 64 << 20,
        segment_bytes: 1 << 20,
        flush_commit_bytes: 64 << 10,
        tree_commit_bytes: 64 << 20,
        resolver,
        ..EngineOptions::default()
    };
    let mut h = H::new(11, options);
    h.track = false;
    for round in 0..40 {
        h.mixed("b0", 500, 100, 60, 20);
        if round % 10 == 9 {
            h.check_all("after a round");
        }
    }
    h.check_all("at the end");
    h.reopen();
    for _ in 0..5 {
        h.mixed("b0", 100, 400, 100, 50);
    }
    h.check_all("after reopen");
}

/// The tree filter around its builds: a tree of tens of thousands of keys,
/// reopened (a build starts) and crashed, with small commits flushing
/// beside the build; then tree commits that push the filter past its
/// capacity (a rebuild from the tree commit); keys removed before a
/// rebuild (which forgets them) re-inserted after it, and overwrites of
/// keys only the tree holds.
#[test]
fn tree_filter_builds_and_rebuilds_old_values() {
    let options = EngineOptions {
        memtable_bytes: 16 << 10,
        max_frozen_bytes: 256 << 10,
        checkpoint_wal_bytes: 64 << 10,
        flush_commit_bytes: 16 << 10,
        tree_commit_bytes: 64 << 10,
        resolver,
        ..EngineOptions::default()
    };
    let mut h = H::new(12, options);
    h.track = false;
    // Two tree commits of 12K fresh keys.
    for _ in 0..2 {
        h.mixed("b0", 12_000, 0, 0, 0);
    }
    let mut removed = Vec::new();
    // The filter's work, summed over the opens (each open counts anew).
    let (mut builds, mut absent) = (0, 0);
    for cycle in 0..6 {
        if cycle % 3 != 2 {
            let stats = h.db().stats();
            (builds, absent) = (builds + stats.tree_filter_builds, absent + stats.tree_filter_absent);
        }
        match cycle % 3 {
            0 => h.reopen(),
            1 => h.crash_with(TearMode::KeepAll),
            _ => h.mixed("b0", 25_000, 2000, 500, 100),
        }
        for i in 0..45 {
            h.mixed("b0", 20, 20, 5, 3);
            if i % 20 == 0 {
                // Remove some present keys: a rebuild after this forgets them.
                let keys: Vec<Vec<u8>> = h.committed["b0"].keys().step_by(997).cloned().collect();
                let db = h.db.take().unwrap();
                let mut w = db.begin_write().unwrap();
                let t = w.open_table(b"b0", b"bytes", bytewise).unwrap();
                for k in &keys {
                    assert!(w.remove(t, k).unwrap().is_some());
                    h.committed.get_mut("b0").unwrap().remove(k);
                }
                w.commit().unwrap();
                h.db = Some(db);
                h.durable();
                removed.extend(keys);
            }
            if i % 20 == 10 {
                h.db().checkpoint().unwrap();
            }
        }
        h.reinsert("b0", &mut removed);
        if cycle % 3 == 2 {
            h.check_all("after a cycle");
        }
    }
    let stats = h.db().stats();
    (builds, absent) = (builds + stats.tree_filter_builds, absent + stats.tree_filter_absent);
    // The scenario exercised the filter: it was built, and it answered.
    assert!(
        builds > 0 && absent > 0,
        "tree filter builds {builds}, keys proved absent {absent}"
    );
}

mod typed {
    //! The typed API on a crash-simulating disk: ephemeral savepoint
    //! restores, `retain`, `extract_if` and `pop_*` beside flushes, tree
    //! commits, checkpoints, compaction, reopens and power cuts; a byte-ordered
    //! table (`u64`) and a case-insensitive one (equal keys of other bytes,
    //! deferred after a crash until opened).

    use std::collections::BTreeMap;

    use super::common::Rng;
    use super::common::engine::CrashOracle;
    use super::common::keys::{CaseInsensitive, CrashDisk};
    use super::same;
    use sluicedb::io::TearMode;
    use sluicedb::{
        Builder, Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, Savepoint,
        TableDefinition,
    };

    const TB: TableDefinition<u64, u64> = TableDefinition::new("tb");
    const TC: TableDefinition<CaseInsensitive, u64> = TableDefinition::new("tc");

    #[derive(Clone, Debug, Default, PartialEq)]
    struct Db {
        tb: Option<BTreeMap<u64, u64>>,
        tc: Option<BTreeMap<String, u64>>,
    }

    struct T {
        builder: Builder,
        disk: CrashDisk,
        db: Option<Database>,
        committed: Db,
        oracle: CrashOracle<Db>,
        rng: Rng,
        sp: Option<(Savepoint, Db)>,
        next: u64,
        log: Vec<String>,
    }

    fn observe(db: &Database) -> Db {
        let r = db.begin_read().unwrap();
        let mut out = Db::default();
        if let Ok(t) = r.open_table(TB) {
            let m: BTreeMap<u64, u64> = t
                .iter()
                .unwrap()
                .map(|e| e.unwrap())
                .map(|(k, v)| (k.value(), v.value()))
                .collect();
            assert_eq!(t.len().unwrap(), m.len() as u64, "tb len vs entries");
            out.tb = Some(m);
        }
        if let Ok(t) = r.open_table(TC) {
            let m: BTreeMap<String, u64> = t
                .iter()
                .unwrap()
                .map(|e| e.unwrap())
                .map(|(k, v)| (k.value().to_ascii_lowercase(), v.value()))
                .collect();
            assert_eq!(t.len().unwrap(), m.len() as u64, "tc len vs entries");
            out.tc = Some(m);
        }
        out
    }

    impl T {
        fn db(&self) -> &Database {
            self.db.as_ref().unwrap()
        }

        fn fail(&self, what: String) -> ! {
            let n = self.log.len();
            panic!("{what}\nlast ops:\n{}", self.log[n.saturating_sub(40)..].join("\n"));
        }

        fn check(&self, at: &str) {
            let got = observe(self.db());
            if got != self.committed {
                self.fail(format!("contents {at}: got {got:?}\nwant {:?}", self.committed));
            }
        }

        /// A case variant of `k`.
        fn spell(&mut self, k: &str) -> String {
            k.chars()
                .map(|c| if self.rng.chance(50) { c.to_ascii_uppercase() } else { c })
                .collect()
        }

        fn step(&mut self) {
            match self.rng.below(100) {
                0..=3 => {
                    self.log.push("checkpoint".into());
                    self.db().checkpoint().unwrap();
                    self.oracle.durable(self.committed.clone());
                }
                4..=5 => {
                    self.log.push("compact".into());
                    self.sp = None;
                    self.db.as_mut().unwrap().compact().unwrap();
                    self.oracle.durable(self.committed.clone());
                    self.check("after compact");
                }
                6..=8 => {
                    let mode = match self.rng.below(3) {
                        0 => TearMode::DropAll,
                        1 => TearMode::KeepAll,
                        _ => TearMode::Random(self.rng.next()),
                    };
                    self.log.push(format!("crash {mode:?}"));
                    self.sp = None;
                    let image = self.disk.crashed(mode);
                    self.db = None;
                    self.disk = image;
                    self.db = Some(self.disk.open(&self.builder));
                    let state = observe(self.db());
                    if !self.oracle.allows(&state) {
                        self.fail(format!(
                            "recovered {state:?}\nnot allowed; last durable {:?}",
                            self.oracle.last_durable()
                        ));
                    }
                    self.committed = state.clone();
                    self.oracle.durable(state);
                }
                9 => {
                    self.log.push("reopen".into());
                    self.sp = None;
                    self.db.take().unwrap().close().unwrap();
                    self.db = Some(self.disk.open(&self.builder));
                    self.check("after reopen");
                    self.oracle.durable(self.committed.clone());
                }
                10..=11 => self.check("between transactions"),
                _ => self.txn(),
            }
        }

        fn txn(&mut self) {
            let db = self.db.take().unwrap();
            let mut txn = db.begin_write().unwrap();
            let mut state = self.committed.clone();
            let none = self.rng.chance(20);
            if none {
                txn.set_durability(Durability::None).unwrap();
            }
            self.log.push(format!("begin none {none}"));
            if self.sp.is_none() && self.rng.chance(10) {
                self.log.push("savepoint".into());
                let sp = txn.ephemeral_savepoint().unwrap();
                self.sp = Some((sp, self.committed.clone()));
            } else if self.sp.is_some() && self.rng.chance(25) {
                let (sp, saved) = self.sp.take().unwrap();
                self.log.push("restore".into());
                txn.restore_savepoint(&sp).unwrap();
                state = saved;
            }
            let n = 1 + self.rng.below(10);
            let mut err = None;
            for _ in 0..n {
                if let Err(e) = self.op(&txn, &mut state) {
                    err = Some(e);
                    break;
                }
            }
            if let Some(e) = err {
                drop(txn);
                self.db = Some(db);
                self.fail(e);
            }
            if self.rng.chance(8) {
                self.log.push("abort".into());
                txn.abort().unwrap();
            } else {
                self.log.push("commit".into());
                txn.commit().unwrap();
                self.committed = state;
                if none {
                    self.oracle.unwaited(self.committed.clone());
                } else {
                    self.oracle.durable(self.committed.clone());
                }
            }
            self.db = Some(db);
        }

        fn op(&mut self, txn: &sluicedb::WriteTransaction, state: &mut Db) -> Result<(), String> {
            let r = self.rng.below(100);
            if r < 4 {
                let b = self.rng.chance(50);
                self.log.push(format!("delete_table tb {b}"));
                let got = if b { txn.delete_table(TB) } else { txn.delete_table(TC) }.unwrap();
                let want = if b {
                    state.tb.take().is_some()
                } else {
                    state.tc.take().is_some()
                };
                if got != want {
                    return Err(format!("delete_table: got {got} want {want}"));
                }
                return Ok(());
            }
            if self.rng.chance(55) {
                let mut t = txn.open_table(TB).unwrap();
                let m = state.tb.get_or_insert_default();
                let present = (!m.is_empty()).then(|| *m.keys().nth(self.rng.below(m.len() as u64) as usize).unwrap());
                self.next += 1;
                let v = self.next;
                match r {
                    4..=30 => {
                        // Fresh keys, spread (the filter's trade), or a bulk.
                        let n = if self.rng.chance(10) {
                            300 + self.rng.below(700)
                        } else {
                            1
                        };
                        self.log.push(format!("tb insert fresh x{n}"));
                        for _ in 0..n {
                            self.next += 1;
                            let k = super::mix(self.next);
                            let got = t.insert(k, v).unwrap().map(|g| g.value());
                            let want = m.insert(k, v);
                            same(format_args!("tb insert {k}"), &got, &want)?;
                        }
                    }
                    31..=50 => {
                        let Some(k) = present else { return Ok(()) };
                        self.log.push(format!("tb overwrite {k}"));
                        let got = t.insert(k, v).unwrap().map(|g| g.value());
                        let want = m.insert(k, v);
                        same(format_args!("tb overwrite {k}"), &got, &want)?;
                    }
                    51..=62 => {
                        let k = if self.rng.chance(70) {
                            present.unwrap_or(1)
                        } else {
                            super::mix(v)
                        };
                        self.log.push(format!("tb remove {k}"));
                        let got = t.remove(k).unwrap().map(|g| g.value());
                        let want = m.remove(&k);
                        same(format_args!("tb remove {k}"), &got, &want)?;
                    }
                    63..=70 => {
                        let first = self.rng.chance(50);
                        self.log.push(format!("tb pop first {first}"));
                        let got = if first { t.pop_first() } else { t.pop_last() }
                            .unwrap()
                            .map(|(k, v)| (k.value(), v.value()));
                        let want = if first { m.pop_first() } else { m.pop_last() };
                        same(format_args!("tb pop first {first}"), &got, &want)?;
                    }
                    71..=76 => {
                        let d = 2 + self.rng.below(9);
                        self.log.push(format!("tb retain k % {d} != 0"));
                        t.retain(|k, _| k % d != 0).unwrap();
                        m.retain(|k, _| k % d != 0);
                    }
                    77..=81 => {
                        let d = 2 + self.rng.below(9);
                        self.log.push(format!("tb extract_if v % {d} == 0"));
                        let got: Vec<(u64, u64)> = t
                            .extract_if(|_, v| v % d == 0)
                            .unwrap()
                            .map(|e| e.unwrap())
                            .map(|(k, v)| (k.value(), v.value()))
                            .collect();
                        let want: Vec<(u64, u64)> =
                            m.iter().filter(|(_, v)| *v % d == 0).map(|(k, v)| (*k, *v)).collect();
                        m.retain(|_, v| *v % d != 0);
                        same(format_args!("tb extract_if"), &got, &want)?;
                    }
                    82..=88 => {
                        let k = if self.rng.chance(50) {
                            present.unwrap_or(2)
                        } else {
                            super::mix(v)
                        };
                        self.log.push(format!("tb put {k}"));
                        t.put(k, v).unwrap();
                        m.insert(k, v);
                    }
                    _ => {
                        let k = present.unwrap_or(3);
                        let got = t.get(k).unwrap().map(|g| g.value());
                        if got != m.get(&k).copied() {
                            return Err(format!("tb get {k}: got {got:?} want {:?}", m.get(&k)));
                        }
                    }
                }
                let len = t.len().unwrap();
                if len != m.len() as u64 {
                    return Err(format!("tb len {len} want {}", m.len()));
                }
            } else {
                let mut t = txn.open_table(TC).unwrap();
                let m = state.tc.get_or_insert_default();
                self.next += 1;
                let v = self.next;
                let k = if !m.is_empty() && self.rng.chance(50) {
                    m.keys().nth(self.rng.below(m.len() as u64) as usize).unwrap().clone()
                } else {
                    format!("k{}", self.rng.below(400))
                };
                let spelled = self.spell(&k);
                match r {
                    4..=45 => {
                        self.log.push(format!("tc insert {spelled}"));
                        let got = t.insert(spelled.as_str(), v).unwrap().map(|g| g.value());
                        let want = m.insert(k, v);
                        same(format_args!("tc insert {spelled}"), &got, &want)?;
                    }
                    46..=65 => {
                        self.log.push(format!("tc remove {spelled}"));
                        let got = t.remove(spelled.as_str()).unwrap().map(|g| g.value());
                        let want = m.remove(&k);
                        same(format_args!("tc remove {spelled}"), &got, &want)?;
                    }
                    66..=72 => {
                        let first = self.rng.chance(50);
                        self.log.push(format!("tc pop first {first}"));
                        let got = if first { t.pop_first() } else { t.pop_last() }
                            .unwrap()
                            .map(|(k, v)| (k.value().to_ascii_lowercase(), v.value()));
                        let want = if first { m.pop_first() } else { m.pop_last() };
                        same(format_args!("tc pop first {first}"), &got, &want)?;
                    }
                    73..=78 => {
                        let d = 2 + self.rng.below(5);
                        self.log.push(format!("tc retain v % {d} != 0"));
                        t.retain(|_, v| v % d != 0).unwrap();
                        m.retain(|_, v| *v % d != 0);
                    }
                    79..=86 => {
                        self.log.push(format!("tc put {spelled}"));
                        t.put(spelled.as_str(), v).unwrap();
                        m.insert(k, v);
                    }
                    _ => {
                        let got = t.get(spelled.as_str()).unwrap().map(|g| g.value());
                        if got != m.get(&k).copied() {
                            return Err(format!("tc get {spelled}: got {got:?} want {:?}", m.get(&k)));
                        }
                    }
                }
                let len = t.len().unwrap();
                if len != m.len() as u64 {
                    return Err(format!("tc len {len} want {}", m.len()));
                }
            }
            Ok(())
        }
    }

    fn run(seed: u64, builder: Builder, steps: usize) {
        let disk = CrashDisk::new();
        let db = disk.open(&builder);
        let mut t = T {
            builder,
            disk,
            db: Some(db),
            committed: Db::default(),
            oracle: CrashOracle::new(Db::default()),
            rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            sp: None,
            next: seed << 32,
            log: Vec::new(),
        };
        for _ in 0..steps {
            t.step();
        }
        t.check("at the end");
    }

    #[test]
    fn typed_model_savepoints_retain_pop_beside_maintenance() {
        for seed in super::common::seeds(&[21, 22, 23], "REVIEW_SEEDS") {
            let mut b = Builder::new();
            b.set_memtable_size(4 << 10)
                .set_tree_commit_size(8 << 10)
                .set_max_frozen_bytes(64 << 10);
            run(seed, b, 300);
        }
    }
}

/// Pop loops mixed with writes at the ends the pops walk from: keys below
/// the first and above the last (inserted, blindly put, removed), and
/// renames of the table away and back, in transactions over a table whose
/// entries lie in the tree, frozen memtables and the active one.
#[test]
fn pops_beside_writes_at_the_ends() {
    let mut h = H::new(31, small());
    h.track = false;
    for round in 0..800u64 {
        for (name, kind) in [("b0", Kind::Bytes), ("n0", Kind::Numeric)] {
            let db = h.db.take().unwrap();
            let mut w = db.begin_write().unwrap();
            let mut t = w.open_table(name.as_bytes(), meta(kind), cmp(kind)).unwrap();
            let mut model = h.committed.get(name).cloned().unwrap_or_default();
            let mut errors: Vec<String> = Vec::new();
            let mut ops = Vec::new();
            for _ in 0..30 {
                fn end(model: &Table, first: bool) -> Option<&Vec<u8>> {
                    if first {
                        model.keys().next()
                    } else {
                        model.keys().next_back()
                    }
                }
                let first = h.rng.chance(50);
                // A key just beyond (or at) an end.
                let near = |rng: &mut Rng, model: &Table| -> Vec<u8> {
                    let base = end(model, first).cloned().unwrap_or_else(|| norm(kind, &[0x80, 0x80]));
                    let v = match kind {
                        Kind::Bytes => base
                            .get(..8)
                            .map_or(1 << 63, |b| u64::from_be_bytes(b.try_into().unwrap())),
                        _ => u64::from(u16::from_be_bytes([base[0], base[1]])),
                    };
                    let d = rng.below(3);
                    let v = if first {
                        v.saturating_sub(d)
                    } else {
                        v.saturating_add(d)
                    };
                    match kind {
                        Kind::Bytes => v.to_be_bytes().to_vec(),
                        _ => (v.min(u64::from(u16::MAX)) as u16).to_be_bytes().to_vec(),
                    }
                };
                let v = h.value();
                match h.rng.below(100) {
                    0..=39 => {
                        ops.push(format!("pop first {first}"));
                        let got = if first { w.pop_first(t) } else { w.pop_last(t) }
                            .unwrap()
                            .map(|(k, v)| (norm(kind, &k), v.to_vec()));
                        let want = if first { model.pop_first() } else { model.pop_last() };
                        expect_same(&mut errors, format_args!("pop first {first}"), &got, &want);
                    }
                    40..=64 => {
                        let nk = near(&mut h.rng, &model);
                        let alias = (kind != Kind::Bytes && h.rng.chance(50)).then_some(7);
                        ops.push(format!("insert {nk:?}"));
                        let got = w.insert(t, &denorm(kind, &nk, alias), &v).unwrap().map(|v| v.to_vec());
                        let want = model.insert(nk.clone(), v);
                        expect_same(&mut errors, format_args!("insert {nk:?}"), &got, &want);
                    }
                    65..=79 => {
                        let nk = near(&mut h.rng, &model);
                        ops.push(format!("put {nk:?}"));
                        w.put(t, &denorm(kind, &nk, None), &v).unwrap();
                        model.insert(nk, v);
                    }
                    80..=92 => {
                        let nk = near(&mut h.rng, &model);
                        ops.push(format!("remove {nk:?}"));
                        let got = w.remove(t, &denorm(kind, &nk, Some(9))).unwrap().map(|v| v.to_vec());
                        let want = model.remove(&nk);
                        expect_same(&mut errors, format_args!("remove {nk:?}"), &got, &want);
                    }
                    _ => {
                        let tmp = if kind == Kind::Bytes { "b2" } else { "n1" };
                        ops.push(format!("rename to {tmp} and back"));
                        w.delete_table(tmp.as_bytes()).unwrap();
                        assert!(w.rename_table(name.as_bytes(), tmp.as_bytes()).unwrap());
                        assert!(w.rename_table(tmp.as_bytes(), name.as_bytes()).unwrap());
                        h.committed.remove(tmp);
                        t = w.open_table(name.as_bytes(), meta(kind), cmp(kind)).unwrap();
                    }
                }
                let len = w.len(t).unwrap();
                expect_same(&mut errors, format_args!("len"), &len, &(model.len() as u64));
                if !errors.is_empty() {
                    break;
                }
            }
            if !errors.is_empty() {
                drop(w);
                h.db = Some(db);
                h.fail(format!("round {round} table {name}: {errors:#?}\nops: {ops:#?}"));
            }
            // Refill now and then, so the pops reach the tree's entries.
            if model.len() < 50 {
                for _ in 0..300 {
                    let nk = h.fresh_key(kind);
                    let v = h.value();
                    let got = w.insert(t, &denorm(kind, &nk, None), &v).unwrap().map(|v| v.to_vec());
                    assert_eq!(got, model.insert(nk, v), "refill");
                }
            }
            w.commit().unwrap();
            h.db = Some(db);
            h.committed.insert(name.into(), model);
        }
        match round % 10 {
            3 => h.db().checkpoint().unwrap(),
            7 => h.check_all("between rounds"),
            9 => h.reopen(),
            _ => {}
        }
    }
    h.check_all("at the end");
}
