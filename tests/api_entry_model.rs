//! The in-place write API of redb 4.6 (issue 14, item 3): `get_mut` and
//! `AccessGuardMut`, the entry API, `insert_reserve`, and `extract_from_if`,
//! checked against a `BTreeMap` model over random operation sequences; the
//! committed table must equal the model after a reopen.

use std::collections::BTreeMap;

use proptest::prelude::*;
use sluicedb::{Builder, Database, Entry, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

const T: TableDefinition<u16, &[u8]> = TableDefinition::new("t");

#[derive(Clone, Debug)]
enum Op {
    Insert(u16, Vec<u8>),
    /// Appends a byte through `get_mut` if present.
    GetMutAppend(u16, u8),
    /// `entry(k).and_modify(append b).or_insert([b])`.
    Upsert(u16, u8),
    /// `entry(k).or_insert_with_key(parity)`.
    OrInsertWithKey(u16),
    /// Removes through an occupied entry (`remove` or `remove_entry`).
    EntryRemove(u16, bool),
    /// `insert_reserve(k, len)` filled with `b`.
    Reserve(u16, usize, u8),
    /// `extract_from_if(lo..hi, first byte even)`, consuming `take` items
    /// from the front or the back.
    Extract(u16, u16, usize, bool),
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u16..40;
    prop_oneof![
        (key.clone(), prop::collection::vec(any::<u8>(), 0..6)).prop_map(|(k, v)| Op::Insert(k, v)),
        (key.clone(), any::<u8>()).prop_map(|(k, b)| Op::GetMutAppend(k, b)),
        (key.clone(), any::<u8>()).prop_map(|(k, b)| Op::Upsert(k, b)),
        key.clone().prop_map(Op::OrInsertWithKey),
        (key.clone(), any::<bool>()).prop_map(|(k, e)| Op::EntryRemove(k, e)),
        (key.clone(), 0usize..8, any::<u8>()).prop_map(|(k, n, b)| Op::Reserve(k, n, b)),
        (key.clone(), key, 0usize..10, any::<bool>()).prop_map(|(a, b, n, back)| Op::Extract(
            a.min(b),
            a.max(b),
            n,
            back
        )),
    ]
}

fn parity(key: u16) -> &'static [u8] {
    if key.is_multiple_of(2) { b"even" } else { b"odd" }
}

fn even_first(v: &[u8]) -> bool {
    v.first().is_some_and(|b| b.is_multiple_of(2))
}

fn apply(table: &mut sluicedb::Table<'_, u16, &[u8]>, model: &mut BTreeMap<u16, Vec<u8>>, op: &Op) {
    match op {
        Op::Insert(k, v) => {
            let old = table.insert(k, v.as_slice()).unwrap().map(|g| g.value().to_vec());
            assert_eq!(old, model.insert(*k, v.clone()));
        }
        Op::GetMutAppend(k, b) => match table.get_mut(k).unwrap() {
            Some(mut guard) => {
                let mut v = guard.value().to_vec();
                assert_eq!(Some(&v), model.get(k));
                v.push(*b);
                guard.insert(v.as_slice()).unwrap();
                assert_eq!(guard.value(), v.as_slice());
                model.insert(*k, v);
            }
            None => assert!(!model.contains_key(k)),
        },
        Op::Upsert(k, b) => {
            let guard = table
                .entry(*k)
                .unwrap()
                .and_modify(|g| {
                    let mut v = g.value().to_vec();
                    v.push(*b);
                    g.insert(v.as_slice())
                })
                .unwrap()
                .or_insert([*b].as_slice())
                .unwrap();
            let v = model.entry(*k).and_modify(|v| v.push(*b)).or_insert_with(|| vec![*b]);
            assert_eq!(guard.value(), v.as_slice());
        }
        Op::OrInsertWithKey(k) => {
            let guard = table.entry(*k).unwrap().or_insert_with_key(|key| parity(*key)).unwrap();
            let v = model.entry(*k).or_insert_with(|| parity(*k).to_vec());
            assert_eq!(guard.value(), v.as_slice());
        }
        Op::EntryRemove(k, with_key) => match table.entry(*k).unwrap() {
            Entry::Occupied(occupied) => {
                assert_eq!(*occupied.key(), *k);
                assert_eq!(Some(occupied.get().unwrap().value().to_vec()), model.get(k).cloned());
                let value = if *with_key {
                    let (key, value) = occupied.remove_entry().unwrap();
                    assert_eq!(key, *k);
                    value.value().to_vec()
                } else {
                    occupied.remove().unwrap().value().to_vec()
                };
                assert_eq!(Some(value), model.remove(k));
            }
            Entry::Vacant(vacant) => {
                assert_eq!(vacant.into_key(), *k);
                assert!(!model.contains_key(k));
            }
        },
        Op::Reserve(k, n, b) => {
            let mut guard = table.insert_reserve(k, *n).unwrap();
            assert_eq!(guard.as_mut().len(), *n);
            guard.as_mut().fill(*b);
            drop(guard);
            model.insert(*k, vec![*b; *n]);
        }
        Op::Extract(lo, hi, take, back) => {
            let mut iter = table.extract_from_if(*lo..*hi, |_, v| even_first(v)).unwrap();
            let selected: Vec<u16> = model
                .range(*lo..*hi)
                .filter(|(_, v)| even_first(v))
                .map(|(k, _)| *k)
                .collect();
            let expected: Vec<u16> = if *back {
                selected.iter().rev().take(*take).copied().collect()
            } else {
                selected.iter().take(*take).copied().collect()
            };
            let mut got = Vec::new();
            for _ in 0..*take {
                let item = if *back { iter.next_back() } else { iter.next() };
                let Some(item) = item else { break };
                let (key, value) = item.unwrap();
                assert_eq!(Some(value.value().to_vec()), model.get(&key.value()).cloned());
                got.push(key.value());
            }
            drop(iter);
            assert_eq!(got, expected, "extracted keys");
            for k in got {
                model.remove(&k);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn in_place_writes_match_a_btreemap(ops in prop::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut model = BTreeMap::new();
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut table = txn.open_table(T).unwrap();
                for op in &ops {
                    apply(&mut table, &mut model, op);
                    prop_assert_eq!(table.len().unwrap(), model.len() as u64);
                }
            }
            txn.commit().unwrap();
        }
        let db = Builder::new().open(&path).unwrap();
        let read = db.begin_read().unwrap();
        let table = read.open_table(T).unwrap();
        let stored: BTreeMap<u16, Vec<u8>> = table
            .iter()
            .unwrap()
            .map(|e| e.map(|(k, v)| (k.value(), v.value().to_vec())))
            .collect::<Result<_, _>>()
            .unwrap();
        prop_assert_eq!(stored, model);
    }
}

#[test]
fn entry_refuses_an_oversized_key_and_changes_nothing() {
    const S: TableDefinition<&[u8], u8> = TableDefinition::new("s");
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    let mut table = txn.open_table(S).unwrap();
    let huge = vec![7u8; 1 << 20];
    // Refused with an error (whatever the key limit is), never a panic.
    if let Err(e) = table.entry(huge.as_slice()) {
        assert!(matches!(e, sluicedb::StorageError::KeyTooLarge(_)), "{e}");
    }
    assert!(table.is_empty().unwrap());
}
