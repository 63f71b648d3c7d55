//! A panic in the user's `Key::compare` (of the key or the value type)
//! while a multimap `insert`, `remove` or `remove_all` runs poisons the
//! write transaction, as redb's: `commit` refuses with
//! `CommitError::TransactionPoisoned` and the database keeps what it had.
//! The property test panics at every comparison of each operation in turn.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering as AtomicOrdering};

use proptest::prelude::*;
use sluicedb::{
    CommitError, Database, Key, MultimapTable, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable,
    ReadableTableMetadata, TypeName, Value,
};

static COMPARES: AtomicU64 = AtomicU64::new(0);
/// The comparison (counted from 0 since `COMPARES` was reset) that panics;
/// -1 for none.
static PANIC_AT: AtomicI64 = AtomicI64::new(-1);
/// The counters are global: one test at a time uses them.
static SERIAL: Mutex<()> = Mutex::new(());

/// A u64 whose comparison panics on the chosen call.
#[derive(Debug)]
struct Panicking;

impl Value for Panicking {
    type SelfType<'a> = u64;
    type AsBytes<'a> = [u8; 8];

    fn fixed_width() -> Option<usize> {
        Some(8)
    }

    fn from_bytes<'a>(data: &'a [u8]) -> u64
    where
        Self: 'a,
    {
        u64::from_le_bytes(data.try_into().unwrap())
    }

    fn as_bytes<'a, 'b: 'a>(value: &'a u64) -> [u8; 8]
    where
        Self: 'b,
    {
        value.to_le_bytes()
    }

    fn type_name() -> TypeName {
        TypeName::new("multimap_poisoned_txn::Panicking")
    }
}

impl Key for Panicking {
    fn compare(data1: &[u8], data2: &[u8]) -> Ordering {
        let call = COMPARES.fetch_add(1, AtomicOrdering::Relaxed);
        assert_ne!(PANIC_AT.load(AtomicOrdering::Relaxed), call as i64, "compare panic");
        Self::from_bytes(data1).cmp(&Self::from_bytes(data2))
    }
}

const BY_KEY: MultimapTableDefinition<Panicking, u64> = MultimapTableDefinition::new("by_key");
const BY_VALUE: MultimapTableDefinition<u64, Panicking> = MultimapTableDefinition::new("by_value");

#[derive(Clone, Copy, Debug)]
enum Op {
    Insert(u64, u64),
    Remove(u64, u64),
    RemoveAll(u64),
}

fn run<K: Key + for<'a> Key<SelfType<'a> = u64>, V: Key + for<'a> Key<SelfType<'a> = u64>>(
    table: &mut MultimapTable<K, V>,
    op: Op,
) {
    match op {
        Op::Insert(k, v) => {
            table.insert(k, v).unwrap();
        }
        Op::Remove(k, v) => {
            table.remove(k, v).unwrap();
        }
        Op::RemoveAll(k) => {
            table.remove_all(k).unwrap();
        }
    }
}

/// Every (key, value) pair of `definition`, in order.
fn contents<K: Key + for<'a> Key<SelfType<'a> = u64>, V: Key + for<'a> Key<SelfType<'a> = u64>>(
    db: &Database,
    definition: MultimapTableDefinition<K, V>,
) -> Vec<(u64, u64)> {
    let txn = db.begin_read().unwrap();
    let table = txn.open_multimap_table(definition).unwrap();
    let mut pairs = Vec::new();
    for entry in table.iter().unwrap() {
        let (key, values) = entry.unwrap();
        for value in values {
            pairs.push((key.value(), value.unwrap().value()));
        }
    }
    pairs
}

/// A database whose two tables hold `pairs`.
fn setup(pairs: &BTreeSet<(u64, u64)>) -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut by_key = txn.open_multimap_table(BY_KEY).unwrap();
        let mut by_value = txn.open_multimap_table(BY_VALUE).unwrap();
        for &(k, v) in pairs {
            by_key.insert(k, v).unwrap();
            by_value.insert(k, v).unwrap();
        }
    }
    txn.commit().unwrap();
    (dir, db)
}

/// Counts the comparisons `op` makes on `definition` (in a transaction that
/// is aborted), then runs it again panicking at comparison `at` (of that
/// count, modulo) and checks the transaction refuses to commit and nothing
/// changed. Returns the count.
fn panic_in<K: Key + for<'a> Key<SelfType<'a> = u64>, V: Key + for<'a> Key<SelfType<'a> = u64>>(
    db: &Database,
    definition: MultimapTableDefinition<K, V>,
    op: Op,
    at: u64,
) -> u64 {
    let before = contents(db, definition);
    let txn = db.begin_write().unwrap();
    let comparisons = {
        let mut table = txn.open_multimap_table(definition).unwrap();
        COMPARES.store(0, AtomicOrdering::Relaxed);
        run(&mut table, op);
        COMPARES.load(AtomicOrdering::Relaxed)
    };
    txn.abort().unwrap();
    if comparisons == 0 {
        return 0;
    }

    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_multimap_table(definition).unwrap();
        COMPARES.store(0, AtomicOrdering::Relaxed);
        PANIC_AT.store((at % comparisons) as i64, AtomicOrdering::Relaxed);
        let result = catch_unwind(AssertUnwindSafe(|| run(&mut table, op)));
        PANIC_AT.store(-1, AtomicOrdering::Relaxed);
        assert!(
            result.is_err(),
            "{op:?} made {comparisons} comparisons, panicking at {at}"
        );
    }
    assert!(matches!(txn.commit(), Err(CommitError::TransactionPoisoned)));
    assert_eq!(
        contents(db, definition),
        before,
        "a poisoned transaction commits nothing"
    );
    comparisons
}

#[test]
fn a_panic_in_insert_remove_or_remove_all_poisons_the_transaction() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let pairs: BTreeSet<(u64, u64)> = (0..50).flat_map(|k| (0..20).map(move |v| (k, v * 2))).collect();
    let (_dir, db) = setup(&pairs);
    // A key with no values (99) never has its values compared.
    for (op, compares_values) in [
        (Op::Insert(7, 1001), true),
        (Op::Remove(7, 10), true),
        (Op::RemoveAll(7), true),
        (Op::Insert(99, 1), false),
    ] {
        // The last comparison, as redb's test: the one after which a
        // half-done operation would be most complete.
        assert!(panic_in(&db, BY_KEY, op, u64::MAX) > 0, "{op:?} compares keys");
        assert_eq!(panic_in(&db, BY_VALUE, op, u64::MAX) > 0, compares_values, "{op:?}");
    }
    // The writer slot is free and the database is whole.
    let txn = db.begin_write().unwrap();
    assert!(!txn.open_multimap_table(BY_KEY).unwrap().insert(1000, 1).unwrap());
    txn.commit().unwrap();
    let read = db.begin_read().unwrap();
    let by_key = read.open_multimap_table(BY_KEY).unwrap();
    assert_eq!(by_key.len().unwrap(), pairs.len() as u64 + 1);
    assert_eq!(by_key.get(7).unwrap().len(), 20);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever comparison panics, in whichever operation and table, the
    /// transaction is poisoned and the stored pairs are unchanged.
    #[test]
    fn any_panicking_comparison_poisons(
        pairs in proptest::collection::btree_set((0u64..8, 0u64..8), 0..40),
        ops in proptest::collection::vec(
            (prop_oneof![
                (0u64..9, 0u64..9).prop_map(|(k, v)| Op::Insert(k, v)),
                (0u64..9, 0u64..9).prop_map(|(k, v)| Op::Remove(k, v)),
                (0u64..9).prop_map(Op::RemoveAll),
            ], any::<u64>(), any::<bool>()),
            1..6,
        ),
    ) {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let (_dir, db) = setup(&pairs);
        for (op, at, by_value) in ops {
            if by_value {
                panic_in(&db, BY_VALUE, op, at);
            } else {
                panic_in(&db, BY_KEY, op, at);
            }
        }
        let expected: Vec<(u64, u64)> = pairs.iter().copied().collect();
        prop_assert_eq!(contents(&db, BY_KEY), expected.clone());
        prop_assert_eq!(contents(&db, BY_VALUE), expected);
    }
}
