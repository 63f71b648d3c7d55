//! Savepoints against a model (written by the twenty-third session's
//! review; it found nothing here) while the engine's
//! background machinery runs underneath: tiny memtables (flushes during
//! every few commits), a tiny tree-commit size (big transactions, persistent
//! savepoint copies and restores go straight into the tree), multimap
//! tables, renames, table deletions, `Durability::None` commits,
//! checkpoints, compaction, clean reopens and power cuts (CrashDisk).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::Rng;
use common::engine::CrashOracle;
use common::keys::CrashDisk;
use common::savepoints::{Db, Full, multi, table, txn_db};
use sluicedb::io::TearMode;
use sluicedb::{
    Builder, CompactionError, Database, Durability, MultimapTableHandle, ReadableDatabase, ReadableMultimapTable,
    ReadableTable, ReadableTableMetadata, Savepoint, SavepointError, TableHandle,
};

const TABLES: [&str; 3] = ["a", "b", "c"];
const MULTI: [&str; 2] = ["m", "n"];

fn read_db(db: &Database) -> Db {
    let read = db.begin_read().unwrap();
    let mut out = Db::default();
    for h in read.list_tables().unwrap() {
        let t = read.open_table(table(h.name())).unwrap();
        let c: BTreeMap<u64, u64> = t
            .iter()
            .unwrap()
            .map(|e| e.unwrap())
            .map(|(k, v)| (k.value(), v.value()))
            .collect();
        assert_eq!(t.len().unwrap(), c.len() as u64, "read len() of {}", h.name());
        out.tables.insert(h.name().to_string(), c);
    }
    for h in read.list_multimap_tables().unwrap() {
        let t = read.open_multimap_table(multi(h.name())).unwrap();
        let mut set = BTreeSet::new();
        for e in t.iter().unwrap() {
            let (k, vs) = e.unwrap();
            for v in vs {
                set.insert((k.value(), v.unwrap().value()));
            }
        }
        assert_eq!(
            t.len().unwrap(),
            set.len() as u64,
            "read multimap len() of {}",
            h.name()
        );
        out.multi.insert(h.name().to_string(), set);
    }
    out
}

/// Opens every multimap table that exists, so this process knows their
/// key order (a fresh process must, before it can copy them).
fn learn_orders(db: &Database) {
    let read = db.begin_read().unwrap();
    for name in MULTI {
        let _ = read.open_multimap_table(multi(name));
    }
}

/// Restores persistent savepoint `id` in a transaction that is aborted.
fn restored_contents(db: &Database, id: u64, saved_multi: &[String]) -> Db {
    let mut txn = db.begin_write().unwrap();
    for name in saved_multi {
        drop(txn.open_multimap_table(multi(name)).unwrap());
    }
    let sp = txn.get_persistent_savepoint(id).unwrap();
    txn.restore_savepoint(&sp).unwrap();
    let out = txn_db(&txn);
    txn.abort().unwrap();
    out
}

fn observe(db: &Database) -> Full {
    let dbc = read_db(db);
    let ids: Vec<u64> = db
        .begin_write()
        .unwrap()
        .list_persistent_savepoints()
        .unwrap()
        .collect();
    let mut sps = BTreeMap::new();
    for id in ids {
        // All multimap names: any that the savepoint holds must have a
        // known order; extra ones are deleted by the restore.
        let all: Vec<String> = MULTI.iter().map(|s| s.to_string()).collect();
        sps.insert(id, restored_contents(db, id, &all));
    }
    Full { db: dbc, sps }
}

struct Known {
    persistent: Option<u64>,
    state: Db,
    handle: Option<Savepoint>,
    invalid: bool,
}

struct H {
    builder: Builder,
    disk: CrashDisk,
    db: Option<Database>,
    committed: Full,
    oracle: CrashOracle<Full>,
    known: Vec<Known>,
    log: Vec<String>,
    rng: Rng,
}

impl H {
    fn new(seed: u64, builder: Builder) -> Self {
        let disk = CrashDisk::new();
        let db = disk.open(&builder);
        Self {
            builder,
            disk,
            db: Some(db),
            committed: Full::default(),
            oracle: CrashOracle::new(Full::default()),
            known: Vec::new(),
            log: Vec::new(),
            rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        }
    }

    fn db(&self) -> &Database {
        self.db.as_ref().unwrap()
    }

    fn fail(&self, what: String) -> ! {
        let tail: Vec<&String> = self
            .log
            .iter()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        panic!("{what}\nlast ops: {tail:#?}");
    }

    fn check_eq<T: PartialEq + std::fmt::Debug>(&self, got: T, want: T, what: &str) {
        if got != want {
            let g = format!("{got:#?}");
            let w = format!("{want:#?}");
            let gl: Vec<&str> = g.lines().collect();
            let wl: Vec<&str> = w.lines().collect();
            let mut diff = String::new();
            let common = gl.iter().zip(&wl).take_while(|(a, b)| a == b).count();
            diff += &format!("first difference at line {common}:\n");
            for l in gl.iter().skip(common.saturating_sub(3)).take(12) {
                diff += &format!("  got : {l}\n");
            }
            for l in wl.iter().skip(common.saturating_sub(3)).take(12) {
                diff += &format!("  want: {l}\n");
            }
            self.fail(format!("{what}: mismatch\n{diff}"));
        }
    }

    fn rebuild_known(&mut self) {
        for k in &mut self.known {
            k.handle = None;
        }
        self.known = self
            .committed
            .sps
            .iter()
            .map(|(&id, db)| Known {
                persistent: Some(id),
                state: db.clone(),
                handle: None,
                invalid: false,
            })
            .collect();
    }

    fn step(&mut self) {
        let r = self.rng.below(100);
        match r {
            0..=3 => {
                self.log.push("checkpoint".into());
                self.db().checkpoint().unwrap();
                self.oracle.durable(self.committed.clone());
            }
            4..=5 => self.compact(),
            6..=8 => self.crash(),
            9 => self.reopen(),
            _ => self.txn(),
        }
    }

    fn compact(&mut self) {
        self.log.push("compact".into());
        let live_eph = self.known.iter().any(|k| k.handle.is_some());
        let persistent = !self.committed.sps.is_empty();
        let got = self.db.as_mut().unwrap().compact();
        match got {
            Err(CompactionError::PersistentSavepointExists) if persistent => {}
            Err(CompactionError::EphemeralSavepointExists) if !persistent && live_eph => {}
            Ok(_) if !persistent && !live_eph => {
                self.oracle.durable(self.committed.clone());
            }
            other => self.fail(format!(
                "compact: {other:?} (persistent {persistent}, ephemeral {live_eph})"
            )),
        }
        let now = read_db(self.db());
        self.check_eq(now, self.committed.db.clone(), "after compact");
    }

    fn crash(&mut self) {
        let mode = match self.rng.below(3) {
            0 => TearMode::DropAll,
            1 => TearMode::KeepAll,
            _ => TearMode::Random(self.rng.next()),
        };
        self.log.push(format!("crash {mode:?}"));
        let image = self.disk.crashed(mode);
        for k in &mut self.known {
            k.handle = None;
        }
        self.db = None;
        self.disk = image;
        let mut db = self.disk.open(&self.builder);
        if !db.check_integrity().unwrap() {
            self.fail("integrity check failed after crash".into());
        }
        learn_orders(&db);
        self.db = Some(db);
        let state = observe(self.db());
        if !self.oracle.allows(&state) {
            self.fail(format!(
                "recovered state not allowed:\n{state:?}\nlast durable:\n{:?}",
                self.oracle.last_durable()
            ));
        }
        self.committed = state.clone();
        self.oracle.durable(state);
        self.rebuild_known();
    }

    fn reopen(&mut self) {
        self.log.push("reopen".into());
        for k in &mut self.known {
            k.handle = None;
        }
        let db = self.db.take().unwrap();
        db.close().unwrap();
        let db = self.disk.open(&self.builder);
        learn_orders(&db);
        self.db = Some(db);
        let state = observe(self.db());
        self.check_eq(state.clone(), self.committed.clone(), "after clean reopen");
        self.oracle.durable(state);
        self.rebuild_known();
    }

    fn txn(&mut self) {
        let db = self.db.take().unwrap();
        let mut txn = db.begin_write().unwrap();
        let none = self.rng.chance(25);
        if none {
            txn.set_durability(Durability::None).unwrap();
        }
        self.log.push(format!("begin (none: {none})"));
        let mut w = self.committed.clone();
        let mut dirty = false;
        let mut txn_invalid: BTreeSet<usize> = BTreeSet::new();
        let first_new = self.known.len();
        let n_ops = 1 + self.rng.below(8);
        let mut end = 0; // 0 commit, 1 abort
        for _ in 0..n_ops {
            let r = self.rng.below(100);
            match r {
                0..=24 => {
                    let t = TABLES[self.rng.below(3) as usize];
                    let k = self.rng.below(600);
                    let v = self.rng.below(1000);
                    self.log.push(format!("put {t} {k} {v}"));
                    txn.open_table(table(t)).unwrap().insert(k, v).unwrap();
                    w.db.tables.entry(t.into()).or_default().insert(k, v);
                    dirty = true;
                }
                25..=34 => {
                    let t = TABLES[self.rng.below(3) as usize];
                    let start = self.rng.below(600);
                    let n = 20 + self.rng.below(400);
                    let v = self.rng.below(1000);
                    self.log.push(format!("bulk {t} {start}+{n} = {v}"));
                    let mut tb = txn.open_table(table(t)).unwrap();
                    let m = w.db.tables.entry(t.into()).or_default();
                    for k in start..start + n {
                        tb.insert(k, v + k).unwrap();
                        m.insert(k, v + k);
                    }
                    dirty = true;
                }
                35..=40 => {
                    let t = TABLES[self.rng.below(3) as usize];
                    if !w.db.tables.contains_key(t) {
                        continue;
                    }
                    let start = self.rng.below(600);
                    let n = 1 + self.rng.below(200);
                    self.log.push(format!("remove {t} {start}+{n}"));
                    let mut tb = txn.open_table(table(t)).unwrap();
                    let m = w.db.tables.get_mut(t).unwrap();
                    for k in start..start + n {
                        let got = tb.remove(k).unwrap().map(|g| g.value());
                        let want = m.remove(&k);
                        if got != want {
                            drop(tb);
                            self.fail(format!("remove {t} {k}: got {got:?} want {want:?}"));
                        }
                    }
                    dirty = true;
                }
                41..=43 => {
                    let t = TABLES[self.rng.below(3) as usize];
                    self.log.push(format!("delete_table {t}"));
                    let got = txn.delete_table(table(t)).unwrap();
                    let want = w.db.tables.remove(t).is_some();
                    self.check_eq(got, want, "delete_table");
                    dirty = true;
                }
                44..=46 => {
                    let from = TABLES[self.rng.below(3) as usize];
                    let to = TABLES[self.rng.below(3) as usize];
                    if from == to || !w.db.tables.contains_key(from) || w.db.tables.contains_key(to) {
                        continue;
                    }
                    self.log.push(format!("rename {from} -> {to}"));
                    txn.rename_table(table(from), table(to)).unwrap();
                    let c = w.db.tables.remove(from).unwrap();
                    w.db.tables.insert(to.into(), c);
                    dirty = true;
                }
                47..=53 => {
                    let t = MULTI[self.rng.below(2) as usize];
                    let big = self.rng.chance(30);
                    let n = 1 + self.rng.below(if big { 300 } else { 5 });
                    let k0 = self.rng.below(50);
                    self.log.push(format!("multi insert {t} x{n} from {k0}"));
                    let mut tb = txn.open_multimap_table(multi(t)).unwrap();
                    let m = w.db.multi.entry(t.into()).or_default();
                    for i in 0..n {
                        let k = (k0 + i / 4) % 60;
                        let v = self.rng.below(40);
                        let got = tb.insert(k, v).unwrap();
                        let had = !m.insert((k, v));
                        if got != had {
                            drop(tb);
                            self.fail(format!("multi insert {k} {v}: got {got} want {had}"));
                        }
                    }
                    dirty = true;
                }
                54..=56 => {
                    let t = MULTI[self.rng.below(2) as usize];
                    if !w.db.multi.contains_key(t) {
                        continue;
                    }
                    let k = self.rng.below(60);
                    self.log.push(format!("multi remove_all {t} {k}"));
                    let mut tb = txn.open_multimap_table(multi(t)).unwrap();
                    let m = w.db.multi.get_mut(t).unwrap();
                    let got: Vec<u64> = tb.remove_all(k).unwrap().map(|v| v.unwrap().value()).collect();
                    let want: Vec<u64> = m.iter().filter(|(kk, _)| *kk == k).map(|(_, v)| *v).collect();
                    m.retain(|(kk, _)| *kk != k);
                    self.check_eq(got, want, "remove_all");
                    dirty = true;
                }
                57..=58 => {
                    let t = MULTI[self.rng.below(2) as usize];
                    self.log.push(format!("delete_multimap {t}"));
                    let got = txn.delete_multimap_table(multi(t)).unwrap();
                    let want = w.db.multi.remove(t).is_some();
                    self.check_eq(got, want, "delete_multimap_table");
                    dirty = true;
                }
                59 => {
                    let (from, to) = if self.rng.chance(50) { ("m", "n") } else { ("n", "m") };
                    if !w.db.multi.contains_key(from) || w.db.multi.contains_key(to) {
                        continue;
                    }
                    self.log.push(format!("rename_multimap {from} -> {to}"));
                    txn.rename_multimap_table(multi(from), multi(to)).unwrap();
                    let c = w.db.multi.remove(from).unwrap();
                    w.db.multi.insert(to.into(), c);
                    dirty = true;
                }
                60..=66 => {
                    self.log.push("ephemeral".into());
                    match txn.ephemeral_savepoint() {
                        Ok(sp) => {
                            if dirty {
                                self.fail("ephemeral savepoint in a dirty txn".into());
                            }
                            self.known.push(Known {
                                persistent: None,
                                state: self.committed.db.clone(),
                                handle: Some(sp),
                                invalid: false,
                            });
                        }
                        Err(SavepointError::InvalidSavepoint) if dirty => {}
                        Err(e) => self.fail(format!("ephemeral: {e:?}")),
                    }
                }
                67..=73 => {
                    self.log.push("persistent".into());
                    match txn.persistent_savepoint() {
                        Ok(id) => {
                            if dirty || none {
                                self.fail("persistent savepoint allowed".into());
                            }
                            self.log.push(format!("  -> id {id}"));
                            w.sps.insert(id, self.committed.db.clone());
                            self.known.push(Known {
                                persistent: Some(id),
                                state: self.committed.db.clone(),
                                handle: None,
                                invalid: false,
                            });
                        }
                        Err(SavepointError::InvalidSavepoint) if dirty => {}
                        Err(SavepointError::ImmediateDurabilityRequired) if none => {}
                        Err(e) => self.fail(format!("persistent: {e:?}")),
                    }
                }
                74..=85 => {
                    if self.known.is_empty() {
                        continue;
                    }
                    let i = self.rng.below(self.known.len() as u64) as usize;
                    let k = &self.known[i];
                    let (valid, handle_owned) = match k.persistent {
                        Some(id) => {
                            let exists = w.sps.contains_key(&id);
                            let h = match txn.get_persistent_savepoint(id) {
                                Ok(h) => Some(h),
                                Err(SavepointError::InvalidSavepoint) => None,
                                Err(e) => self.fail(format!("get_persistent: {e:?}")),
                            };
                            self.check_eq(h.is_some(), exists, "get_persistent_savepoint exists");
                            (exists, h)
                        }
                        None => (!k.invalid && !txn_invalid.contains(&i) && k.handle.is_some(), None),
                    };
                    let Some(sp) = handle_owned.as_ref().or(self.known[i].handle.as_ref()) else {
                        continue;
                    };
                    self.log
                        .push(format!("restore #{i} ({:?}, valid {valid})", self.known[i].persistent));
                    let newer_persistent = w.sps.keys().any(|&id| {
                        self.known
                            .iter()
                            .position(|k| k.persistent == Some(id))
                            .is_some_and(|j| j > i)
                    });
                    if valid && self.known[i].persistent.is_some() && !(none && newer_persistent) {
                        // A fresh process knows a multimap table's order once
                        // it opened it (documented).
                        for name in self.known[i].state.multi.keys() {
                            drop(txn.open_multimap_table(multi(name)).unwrap());
                        }
                        dirty = true;
                    }
                    match txn.restore_savepoint(sp) {
                        Ok(()) => {
                            if !valid || (none && newer_persistent) {
                                self.fail("restore of an invalid savepoint succeeded".into());
                            }
                            dirty = true;
                            w.db = self.known[i].state.clone();
                            for j in i + 1..self.known.len() {
                                if let Some(id) = self.known[j].persistent {
                                    w.sps.remove(&id);
                                }
                                txn_invalid.insert(j);
                            }
                            let now = txn_db(&txn);
                            self.check_eq(now, w.db.clone(), "txn view after restore");
                        }
                        Err(SavepointError::InvalidSavepoint) if !valid => {}
                        Err(SavepointError::ImmediateDurabilityRequired) if none && newer_persistent => {}
                        Err(e) => self.fail(format!("restore: {e:?}")),
                    }
                }
                86..=89 => {
                    let ids: Vec<u64> = self.known.iter().filter_map(|k| k.persistent).collect();
                    if ids.is_empty() {
                        continue;
                    }
                    let id = ids[self.rng.below(ids.len() as u64) as usize];
                    self.log.push(format!("delete_persistent {id}"));
                    match txn.delete_persistent_savepoint(id) {
                        Ok(got) => {
                            if none {
                                self.fail("delete_persistent allowed with Durability::None".into());
                            }
                            let want = w.sps.remove(&id).is_some();
                            self.check_eq(got, want, "delete_persistent_savepoint");
                        }
                        Err(SavepointError::ImmediateDurabilityRequired) if none => {}
                        Err(e) => self.fail(format!("delete_persistent: {e:?}")),
                    }
                }
                90..=92 => {
                    if let Some(k) = self.known.get_mut(self.rng.below(8) as usize) {
                        self.log.push("drop ephemeral".into());
                        k.handle = None;
                    }
                }
                93..=95 => {
                    end = 1;
                    break;
                }
                _ => break,
            }
        }
        let listed: Vec<u64> = txn.list_persistent_savepoints().unwrap().collect();
        self.check_eq(
            listed,
            w.sps.keys().copied().collect::<Vec<_>>(),
            "list_persistent_savepoints",
        );
        if end == 1 {
            self.log.push("abort".into());
            txn.abort().unwrap();
            for k in &mut self.known[first_new..] {
                if k.persistent.is_some() {
                    k.invalid = true;
                }
            }
            self.known.retain(|k| k.persistent.is_none() || !k.invalid);
        } else {
            self.log.push("commit".into());
            txn.commit().unwrap();
            self.committed = w;
            if none {
                self.oracle.unwaited(self.committed.clone());
            } else {
                self.oracle.durable(self.committed.clone());
            }
            for j in txn_invalid {
                if let Some(k) = self.known.get_mut(j) {
                    k.invalid = true;
                    k.handle = None;
                }
            }
            let sps = self.committed.sps.clone();
            self.known
                .retain(|k| k.persistent.is_none_or(|id| sps.contains_key(&id)));
        }
        self.db = Some(db);
        let now = read_db(self.db());
        self.check_eq(now, self.committed.db.clone(), "database after txn");
    }
}

fn builder() -> Builder {
    let mut b = Builder::new();
    b.set_memtable_size(4 << 10)
        .set_tree_commit_size(6 << 10)
        .set_max_frozen_bytes(64 << 10);
    b
}

fn run(seed: u64, steps: usize) {
    let mut h = H::new(seed, builder());
    for _ in 0..steps {
        h.step();
    }
    // Every persistent savepoint restores exactly.
    let state = observe(h.db());
    h.check_eq(state, h.committed.clone(), "final state");
    if std::env::var("REVIEW_STATS").is_ok() {
        let st = h.db().stats();
        eprintln!(
            "tree_commits {} flushes {} checkpoints {} part {}",
            st.tree_commits, st.flushes, st.checkpoints, st.flush_part_commits
        );
    }
}

#[test]
fn savepoints_model_with_flushes_tree_commits_crashes() {
    let seeds: u64 = std::env::var("REVIEW_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let start: u64 = std::env::var("REVIEW_SEED_START")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    for seed in start..start + seeds {
        eprintln!("seed {seed}");
        run(seed, 120);
    }
}
