//! Savepoints against a model of redb's rules: random inserts, removes,
//! table deletions and renames (tables of two types, so a table's metadata
//! changes when a name is reused) across commits and aborts, with ephemeral
//! and persistent savepoints, restores, deletions of persistent savepoints,
//! checkpoints and reopens. Every result and error must match the model, and
//! after every transaction the whole database (tables, their types and
//! contents) must equal it.
//!
//! The rules (redb 4.x):
//! - a savepoint captures the committed state as of its transaction's start;
//!   creating one in a transaction that opened, deleted or renamed a table or
//!   restored a savepoint is `InvalidSavepoint`;
//! - a persistent savepoint exists once its transaction commits; an
//!   ephemeral one until its handle drops (or the database closes);
//! - restoring `X` makes the database equal `X`'s state and, once
//!   committed, invalidates every savepoint created after `X` (persistent
//!   ones are deleted); restoring an invalid savepoint is `InvalidSavepoint`.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use sluicedb::{
    Database, ReadableDatabase, ReadableTable, Savepoint, SavepointError, TableDefinition, TableError, TableHandle,
    WriteTransaction,
};

const NAMES: [&str; 3] = ["a", "b", "c"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Numbers,
    Strings,
}

type Contents = BTreeMap<u64, u64>;
type Model = BTreeMap<String, (Kind, Contents)>;

fn numbers(name: &str) -> TableDefinition<'_, u64, u64> {
    TableDefinition::new(name)
}

fn strings(name: &str) -> TableDefinition<'_, u64, String> {
    TableDefinition::new(name)
}

#[derive(Clone, Debug)]
enum Op {
    Insert(usize, Kind, u64, u64),
    Remove(usize, u64),
    DeleteTable(usize),
    Rename(usize, usize),
    Ephemeral,
    Persistent,
    /// Restores the savepoint at this index (mod the number known).
    Restore(usize),
    DeletePersistent(usize),
    /// Drops an ephemeral savepoint's handle.
    DropEphemeral(usize),
    Commit,
    Abort,
    Checkpoint,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let name = 0..NAMES.len();
    let kind = prop_oneof![Just(Kind::Numbers), Just(Kind::Strings)];
    prop_oneof![
        8 => (name.clone(), kind, 0..12u64, 0..4u64).prop_map(|(n, k, key, v)| Op::Insert(n, k, key, v)),
        3 => (name.clone(), 0..12u64).prop_map(|(n, k)| Op::Remove(n, k)),
        1 => name.clone().prop_map(Op::DeleteTable),
        1 => (name.clone(), name).prop_map(|(a, b)| Op::Rename(a, b)),
        2 => Just(Op::Ephemeral),
        2 => Just(Op::Persistent),
        3 => (0..8usize).prop_map(Op::Restore),
        1 => (0..8usize).prop_map(Op::DeletePersistent),
        1 => (0..8usize).prop_map(Op::DropEphemeral),
        3 => Just(Op::Commit),
        1 => Just(Op::Abort),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Reopen),
    ]
}

/// A savepoint the test knows of, in order of creation (which is the order
/// of their ids).
struct Known {
    /// A persistent savepoint's id (0 for an ephemeral one).
    id: u64,
    state: Model,
    /// The handle of an ephemeral savepoint (dropped: `None`).
    ephemeral: Option<Savepoint>,
    persistent: bool,
    /// A persistent savepoint whose creation committed.
    committed: bool,
    /// Invalidated by a committed restore of an older savepoint.
    invalid: bool,
}

/// The database's contents as a write or read transaction's `list_tables`
/// and tables show them.
fn read_all(db: &Database) -> Model {
    let read = db.begin_read().unwrap();
    let mut out = Model::new();
    for handle in read.list_tables().unwrap() {
        let name = handle.name().to_string();
        match read.open_table(numbers(&name)) {
            Ok(t) => {
                let c = t
                    .iter()
                    .unwrap()
                    .map(|e| e.unwrap())
                    .map(|(k, v)| (k.value(), v.value()));
                out.insert(name, (Kind::Numbers, c.collect()));
            }
            Err(TableError::TableTypeMismatch { .. }) => {
                let t = read.open_table(strings(&name)).unwrap();
                let c = t
                    .iter()
                    .unwrap()
                    .map(|e| e.unwrap())
                    .map(|(k, v)| (k.value(), v.value().parse().unwrap()));
                out.insert(name, (Kind::Strings, c.collect()));
            }
            Err(e) => panic!("{e}"),
        }
    }
    out
}

fn txn_all(txn: &WriteTransaction) -> Model {
    let mut out = Model::new();
    let names: Vec<String> = txn.list_tables().unwrap().map(|h| h.name().to_string()).collect();
    for name in names {
        match txn.open_table(numbers(&name)) {
            Ok(t) => {
                let c = t
                    .iter()
                    .unwrap()
                    .map(|e| e.unwrap())
                    .map(|(k, v)| (k.value(), v.value()));
                out.insert(name, (Kind::Numbers, c.collect()));
            }
            Err(TableError::TableTypeMismatch { .. }) => {
                let t = txn.open_table(strings(&name)).unwrap();
                let c = t
                    .iter()
                    .unwrap()
                    .map(|e| e.unwrap())
                    .map(|(k, v)| (k.value(), v.value().parse().unwrap()));
                out.insert(name, (Kind::Strings, c.collect()));
            }
            Err(e) => panic!("{e}"),
        }
    }
    out
}

struct Harness {
    path: tempfile::TempDir,
    db: Option<Database>,
    committed: Model,
    known: Vec<Known>,
    /// The first savepoint created since the database was last opened.
    opened: usize,
    log: Vec<String>,
}

/// The transaction in progress, as the model sees it.
struct TxnModel {
    state: Model,
    dirty: bool,
    /// Savepoint indices this transaction's restore invalidates at commit.
    invalidates: BTreeSet<usize>,
    /// Persistent savepoints created (true) or deleted (false) here.
    persistent_changes: Vec<(usize, bool)>,
}

impl Harness {
    fn new() -> Self {
        let path = tempfile::tempdir().unwrap();
        let db = Database::create(path.path().join("db")).unwrap();
        Self {
            path,
            db: Some(db),
            committed: Model::new(),
            known: Vec::new(),
            opened: 0,
            log: Vec::new(),
        }
    }

    fn db(&self) -> &Database {
        self.db.as_ref().unwrap()
    }

    /// For a persistent savepoint, the newest one known with its id: an
    /// aborted one's id may be handed out again after a reopen.
    fn latest_with_id(&self, i: usize) -> usize {
        if !self.known[i].persistent {
            return i;
        }
        let id = self.known[i].id;
        (0..self.known.len())
            .rev()
            .find(|&j| self.known[j].persistent && self.known[j].id == id)
            .unwrap_or(i)
    }

    fn exists_in(&self, txn: &TxnModel, i: usize) -> bool {
        let k = &self.known[i];
        if !k.persistent {
            return false;
        }
        let mut exists = !k.invalid;
        for &(j, created) in &txn.persistent_changes {
            if j == i {
                exists = created;
            }
        }
        exists
    }

    fn run(&mut self, ops: Vec<Op>) {
        let mut ops = ops.into_iter().peekable();
        while ops.peek().is_some() {
            match ops.peek() {
                Some(Op::Checkpoint) => {
                    ops.next();
                    self.log.push("checkpoint".into());
                    self.db().checkpoint().unwrap();
                    continue;
                }
                Some(Op::Reopen) => {
                    ops.next();
                    self.log.push("reopen".into());
                    for k in &mut self.known {
                        k.ephemeral = None;
                    }
                    self.opened = self.known.len();
                    self.db = None;
                    self.db = Some(Database::open(self.path.path().join("db")).unwrap());
                    assert_eq!(read_all(self.db()), self.committed, "{:?}", self.log);
                    continue;
                }
                _ => {}
            }
            self.run_txn(&mut ops);
            assert_eq!(read_all(self.db()), self.committed, "{:?}", self.log);
        }
    }

    fn run_txn(&mut self, ops: &mut std::iter::Peekable<std::vec::IntoIter<Op>>) {
        let db = self.db.take().unwrap();
        let mut txn = db.begin_write().unwrap();
        let mut m = TxnModel {
            state: self.committed.clone(),
            dirty: false,
            invalidates: BTreeSet::new(),
            persistent_changes: Vec::new(),
        };
        let mut commit = false;
        while let Some(op) = ops.next_if(|o| !matches!(o, Op::Checkpoint | Op::Reopen)) {
            self.log.push(format!("{op:?}"));
            match op {
                Op::Insert(n, kind, key, value) => {
                    let name = NAMES[n];
                    m.dirty = true;
                    let kind = m.state.get(name).map_or(kind, |t| t.0);
                    match kind {
                        Kind::Numbers => drop(txn.open_table(numbers(name)).unwrap().insert(key, value).unwrap()),
                        Kind::Strings => drop(
                            txn.open_table(strings(name))
                                .unwrap()
                                .insert(key, value.to_string())
                                .unwrap(),
                        ),
                    }
                    m.state
                        .entry(name.into())
                        .or_insert((kind, Contents::new()))
                        .1
                        .insert(key, value);
                }
                Op::Remove(n, key) => {
                    let name = NAMES[n];
                    let Some((kind, contents)) = m.state.get_mut(name) else {
                        continue;
                    };
                    m.dirty = true;
                    let had = contents.remove(&key).is_some();
                    let got = match kind {
                        Kind::Numbers => txn.open_table(numbers(name)).unwrap().remove(key).unwrap().is_some(),
                        Kind::Strings => txn.open_table(strings(name)).unwrap().remove(key).unwrap().is_some(),
                    };
                    assert_eq!(got, had, "{:?}", self.log);
                }
                Op::DeleteTable(n) => {
                    let name = NAMES[n];
                    let existed = m.state.remove(name).is_some();
                    // Dirty even when the table is missing (as in redb).
                    m.dirty = true;
                    assert_eq!(txn.delete_table(name).unwrap(), existed, "{:?}", self.log);
                }
                Op::Rename(a, b) => {
                    let (from, to) = (NAMES[a], NAMES[b]);
                    if from == to || !m.state.contains_key(from) || m.state.contains_key(to) {
                        continue;
                    }
                    m.dirty = true;
                    txn.rename_table(from, to).unwrap();
                    let t = m.state.remove(from).unwrap();
                    m.state.insert(to.into(), t);
                }
                Op::Ephemeral => match txn.ephemeral_savepoint() {
                    Ok(sp) => {
                        assert!(!m.dirty, "{:?}", self.log);
                        self.known.push(Known {
                            id: 0,
                            state: self.committed.clone(),
                            ephemeral: Some(sp),
                            persistent: false,
                            committed: false,
                            invalid: false,
                        });
                    }
                    Err(SavepointError::InvalidSavepoint) => assert!(m.dirty, "{:?}", self.log),
                    Err(e) => panic!("{e}"),
                },
                Op::Persistent => match txn.persistent_savepoint() {
                    Ok(id) => {
                        assert!(!m.dirty, "{:?}", self.log);
                        // Ids grow: above every one this open gave out and
                        // every persistent one ever committed, deleted or
                        // not (an aborted one's id may come back after a
                        // reopen, as in redb).
                        let above = self
                            .known
                            .iter()
                            .enumerate()
                            .filter(|(j, k)| *j >= self.opened || k.committed);
                        assert!(above.into_iter().all(|(_, k)| k.id < id), "{:?}", self.log);
                        self.known.push(Known {
                            id,
                            state: self.committed.clone(),
                            ephemeral: None,
                            persistent: true,
                            committed: false,
                            // Until the commit: see `persistent_changes`.
                            invalid: true,
                        });
                        m.persistent_changes.push((self.known.len() - 1, true));
                    }
                    Err(SavepointError::InvalidSavepoint) => assert!(m.dirty, "{:?}", self.log),
                    Err(e) => panic!("{e}"),
                },
                Op::DeletePersistent(i) => {
                    if self.known.is_empty() {
                        continue;
                    }
                    let i = self.latest_with_id(i % self.known.len());
                    if !self.known[i].persistent {
                        continue;
                    }
                    let exists = self.exists_in(&m, i);
                    let got = txn.delete_persistent_savepoint(self.known[i].id).unwrap();
                    assert_eq!(got, exists, "{:?}", self.log);
                    if exists {
                        m.persistent_changes.push((i, false));
                    }
                }
                Op::DropEphemeral(i) => {
                    if let Some(k) = self.known.get_mut(i) {
                        k.ephemeral = None;
                    }
                }
                Op::Restore(i) => {
                    if self.known.is_empty() {
                        continue;
                    }
                    let i = self.latest_with_id(i % self.known.len());
                    let valid = if self.known[i].persistent {
                        self.exists_in(&m, i)
                    } else {
                        !self.known[i].invalid && !m.invalidates.contains(&i)
                    };
                    let handle = if self.known[i].persistent {
                        match txn.get_persistent_savepoint(self.known[i].id) {
                            Ok(sp) => Some(sp),
                            Err(SavepointError::InvalidSavepoint) => {
                                assert!(!valid, "{:?}", self.log);
                                continue;
                            }
                            Err(e) => panic!("{e}"),
                        }
                    } else {
                        None
                    };
                    let Some(sp) = handle.as_ref().or(self.known[i].ephemeral.as_ref()) else {
                        continue;
                    };
                    match txn.restore_savepoint(sp) {
                        Ok(()) => {
                            assert!(valid, "{:?}", self.log);
                            m.dirty = true;
                            m.state = self.known[i].state.clone();
                            // Created after it: ids follow creation order.
                            for j in i + 1..self.known.len() {
                                {
                                    if self.exists_in(&m, j) {
                                        m.persistent_changes.push((j, false));
                                    }
                                    m.invalidates.insert(j);
                                }
                            }
                            assert_eq!(txn_all(&txn), m.state, "{:?}", self.log);
                        }
                        Err(SavepointError::InvalidSavepoint) => assert!(!valid, "{:?}", self.log),
                        Err(e) => panic!("{e}"),
                    }
                }
                Op::Commit => {
                    commit = true;
                    break;
                }
                Op::Abort => break,
                Op::Checkpoint | Op::Reopen => unreachable!(),
            }
        }
        let mut listed: Vec<u64> = txn.list_persistent_savepoints().unwrap().collect();
        listed.sort();
        let expect: Vec<u64> = (0..self.known.len())
            .filter(|&i| self.exists_in(&m, i))
            .map(|i| self.known[i].id)
            .collect();
        assert_eq!(listed, expect, "{:?}", self.log);
        if commit {
            txn.commit().unwrap();
            self.committed = m.state;
            for (i, created) in m.persistent_changes {
                self.known[i].invalid = !created;
                self.known[i].committed = true;
            }
            for i in m.invalidates {
                self.known[i].invalid = true;
            }
        } else {
            txn.abort().unwrap();
        }
        self.db = Some(db);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn savepoints_match_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let mut h = Harness::new();
        h.run(ops);
    }
}
