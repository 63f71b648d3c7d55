//! Table management against a model of redb's rules: random opens (with the
//! right or the wrong types), closes, inserts, deletes and renames over a few
//! names, in transactions that commit or abort. Every return value and error
//! variant (with the table it names) must match the model; after each
//! transaction the tables, their types and their contents must too, both in
//! the next write transaction's `list_tables` and through a read transaction.
//!
//! The rules (redb 4.x):
//! - `open_table`: already open here → `TableAlreadyOpen`; exists with other
//!   types → `TableTypeMismatch`; else opened, created if missing.
//! - `delete_table`: open → `TableAlreadyOpen`; else `Ok(existed)`.
//! - `rename_table(from, to)`: `from` open → `TableAlreadyOpen(from)`; `from`
//!   missing → `TableDoesNotExist(from)`; `from == to` → `Ok` (no change);
//!   `to` exists → `TableExists(to)`; else renamed, contents and types kept.
//! - a read transaction's `open_table`: missing → `TableDoesNotExist`; other
//!   types → `TableTypeMismatch`.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use sluicedb::{
    Database, ReadableDatabase, ReadableTable, Table, TableDefinition, TableError, TableHandle, WriteTransaction,
};

const NAMES: [&str; 4] = ["a", "b", "c", "d"];

/// The two type pairs a table can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Numbers,
    Strings,
}

/// A table in the model: its types and its keys (values derive from keys).
#[derive(Clone, Debug, PartialEq, Eq)]
struct ModelTable {
    kind: Kind,
    keys: BTreeSet<u64>,
}

type Model = BTreeMap<String, ModelTable>;

#[derive(Clone, Debug)]
enum Op {
    Open(usize, Kind),
    Close(usize),
    Insert(usize, u64),
    Delete(usize),
    Rename(usize, usize),
    Commit,
    Abort,
}

fn op() -> impl Strategy<Value = Op> {
    let name = 0..NAMES.len();
    let kind = prop_oneof![Just(Kind::Numbers), Just(Kind::Strings)];
    prop_oneof![
        4 => (name.clone(), kind).prop_map(|(n, k)| Op::Open(n, k)),
        2 => name.clone().prop_map(Op::Close),
        3 => (name.clone(), 0..8u64).prop_map(|(n, k)| Op::Insert(n, k)),
        2 => name.clone().prop_map(Op::Delete),
        4 => (name.clone(), name).prop_map(|(a, b)| Op::Rename(a, b)),
        1 => Just(Op::Commit),
        1 => Just(Op::Abort),
    ]
}

/// What an operation returned, with the names its errors carry.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    Existed(bool),
    AlreadyOpen(String),
    DoesNotExist(String),
    Exists(String),
    Mismatch(String),
}

fn outcome<T>(r: Result<T, TableError>, ok: impl FnOnce(T) -> Outcome) -> Outcome {
    match r {
        Ok(v) => ok(v),
        Err(TableError::TableAlreadyOpen(n, _)) => Outcome::AlreadyOpen(n),
        Err(TableError::TableDoesNotExist(n)) => Outcome::DoesNotExist(n),
        Err(TableError::TableExists(n)) => Outcome::Exists(n),
        Err(TableError::TableTypeMismatch { table, .. }) => Outcome::Mismatch(table),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn numbers(name: &str) -> TableDefinition<'_, u64, u64> {
    TableDefinition::new(name)
}

fn strings(name: &str) -> TableDefinition<'_, u64, &'static str> {
    TableDefinition::new(name)
}

fn string_of(key: u64) -> &'static str {
    ["zero", "one", "two", "three", "four", "five", "six", "seven"][key as usize % 8]
}

enum Open<'t> {
    Numbers(Table<'t, u64, u64>),
    Strings(Table<'t, u64, &'static str>),
}

/// Runs ops in one write transaction until a commit or an abort (or the
/// end); returns the model as the database should now hold it.
fn run_txn(
    txn: WriteTransaction,
    ops: &mut std::iter::Peekable<std::vec::IntoIter<Op>>,
    committed: &Model,
    log: &mut Vec<String>,
) -> Model {
    let mut model = committed.clone();
    let mut open: BTreeMap<String, Open<'_>> = BTreeMap::new();
    for op in ops.by_ref() {
        log.push(format!("{op:?}"));
        match op {
            Op::Open(n, kind) => {
                let name = NAMES[n];
                let want = if open.contains_key(name) {
                    Outcome::AlreadyOpen(name.into())
                } else if model.get(name).is_some_and(|t| t.kind != kind) {
                    Outcome::Mismatch(name.into())
                } else {
                    Outcome::Ok
                };
                let got = match kind {
                    Kind::Numbers => outcome(txn.open_table(numbers(name)), |t| {
                        open.insert(name.into(), Open::Numbers(t));
                        Outcome::Ok
                    }),
                    Kind::Strings => outcome(txn.open_table(strings(name)), |t| {
                        open.insert(name.into(), Open::Strings(t));
                        Outcome::Ok
                    }),
                };
                assert_eq!(got, want, "{log:?}");
                if want == Outcome::Ok {
                    model.entry(name.into()).or_insert(ModelTable {
                        kind,
                        keys: BTreeSet::new(),
                    });
                }
            }
            Op::Close(n) => drop(open.remove(NAMES[n])),
            Op::Insert(n, key) => {
                let name = NAMES[n];
                let Some(table) = open.get_mut(name) else { continue };
                match table {
                    Open::Numbers(t) => drop(t.insert(key, key * 10).unwrap()),
                    Open::Strings(t) => drop(t.insert(key, string_of(key)).unwrap()),
                }
                model.get_mut(name).unwrap().keys.insert(key);
            }
            Op::Delete(n) => {
                let name = NAMES[n];
                let want = if open.contains_key(name) {
                    Outcome::AlreadyOpen(name.into())
                } else {
                    Outcome::Existed(model.remove(name).is_some())
                };
                assert_eq!(outcome(txn.delete_table(name), Outcome::Existed), want, "{log:?}");
            }
            Op::Rename(f, t) => {
                let (from, to) = (NAMES[f], NAMES[t]);
                let want = if open.contains_key(from) {
                    Outcome::AlreadyOpen(from.into())
                } else if !model.contains_key(from) {
                    Outcome::DoesNotExist(from.into())
                } else if from == to {
                    Outcome::Ok
                } else if model.contains_key(to) {
                    Outcome::Exists(to.into())
                } else {
                    let table = model.remove(from).unwrap();
                    model.insert(to.into(), table);
                    Outcome::Ok
                };
                assert_eq!(outcome(txn.rename_table(from, to), |()| Outcome::Ok), want, "{log:?}");
            }
            Op::Commit | Op::Abort => {
                let listed: Vec<String> = txn.list_tables().unwrap().map(|h| h.name().to_string()).collect();
                assert_eq!(listed, model.keys().cloned().collect::<Vec<_>>(), "{log:?}");
                drop(open);
                if matches!(op, Op::Commit) {
                    txn.commit().unwrap();
                    return model;
                }
                txn.abort().unwrap();
                return committed.clone();
            }
        }
    }
    drop(open);
    txn.abort().unwrap();
    committed.clone()
}

/// The committed state, read through a read transaction.
fn check_committed(db: &Database, model: &Model, log: &[String]) {
    let read = db.begin_read().unwrap();
    let listed: Vec<String> = read.list_tables().unwrap().map(|h| h.name().to_string()).collect();
    assert_eq!(listed, model.keys().cloned().collect::<Vec<_>>(), "{log:?}");
    for name in NAMES {
        let numbers_open = read.open_table(numbers(name));
        let strings_open = read.open_table(strings(name));
        match model.get(name) {
            None => {
                assert!(
                    matches!(numbers_open, Err(TableError::TableDoesNotExist(ref n)) if n == name),
                    "{log:?}"
                );
                assert!(
                    matches!(strings_open, Err(TableError::TableDoesNotExist(ref n)) if n == name),
                    "{log:?}"
                );
            }
            Some(ModelTable {
                kind: Kind::Numbers,
                keys,
            }) => {
                assert!(matches!(strings_open, Err(TableError::TableTypeMismatch { ref table, .. }) if table == name));
                let got: Vec<(u64, u64)> = numbers_open
                    .unwrap()
                    .iter()
                    .unwrap()
                    .map(|e| e.map(|(k, v)| (k.value(), v.value())).unwrap())
                    .collect();
                let want: Vec<(u64, u64)> = keys.iter().map(|&k| (k, k * 10)).collect();
                assert_eq!(got, want, "{name}: {log:?}");
            }
            Some(ModelTable {
                kind: Kind::Strings,
                keys,
            }) => {
                assert!(matches!(numbers_open, Err(TableError::TableTypeMismatch { ref table, .. }) if table == name));
                let got: Vec<(u64, String)> = strings_open
                    .unwrap()
                    .iter()
                    .unwrap()
                    .map(|e| e.map(|(k, v)| (k.value(), v.value().to_string())).unwrap())
                    .collect();
                let want: Vec<(u64, String)> = keys.iter().map(|&k| (k, string_of(k).to_string())).collect();
                assert_eq!(got, want, "{name}: {log:?}");
            }
        }
    }
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let mut committed = Model::new();
    let mut log = Vec::new();
    let mut ops = ops.into_iter().peekable();
    while ops.peek().is_some() {
        committed = run_txn(db.begin_write().unwrap(), &mut ops, &committed, &mut log);
        check_committed(&db, &committed, &log);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn table_management_follows_redbs_rules(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops);
    }
}
