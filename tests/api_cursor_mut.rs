//! `CursorMut` (redb 4.6's `Table::lower_bound_mut` / `upper_bound_mut`)
//! against a model: a sorted map and a gap position in it. Random moves,
//! peeks, inserts (in order and out of it) and removals, over a table whose
//! entries are partly committed and flushed into the tree, partly in the
//! memtable and partly in the transaction's own writes; in byte order and
//! in a custom order. The transaction is then committed or aborted, and the
//! table read back.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;

use common::Rng;
use common::keys::Reversed;
use sluicedb::{
    CursorError, CursorMut, Database, Key, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};

const BYTES: TableDefinition<u64, u64> = TableDefinition::new("bytes");
const REVERSED: TableDefinition<Reversed, u64> = TableDefinition::new("reversed");

/// The model: entries by (their key's sort key in the table's order, key)
/// and the gap as the number of entries before it.
struct Model {
    entries: BTreeMap<(Vec<u8>, u64), u64>,
    gap: usize,
}

impl Model {
    fn value(&self, i: usize) -> Option<(u64, u64)> {
        self.entries.iter().nth(i).map(|((_, k), v)| (*k, *v))
    }
}

/// What the cursor test needs of a key type: its values, their encoding's
/// sort key in the table's order, and a cursor.
trait Table {
    type K: Key + 'static;
    fn sort(k: u64) -> Vec<u8>;
    fn with_cursor<R>(
        txn: &sluicedb::WriteTransaction,
        lower: bool,
        bound: Bound<u64>,
        f: impl FnOnce(&mut CursorMut<'_, Self::K, u64>) -> R,
    ) -> R;
    fn peek(c: &mut CursorMut<'_, Self::K, u64>, next: bool) -> Option<(u64, u64)>;
    fn step(c: &mut CursorMut<'_, Self::K, u64>, next: bool) -> Option<(u64, u64)>;
    fn remove(c: &mut CursorMut<'_, Self::K, u64>, next: bool) -> Option<(u64, u64)>;
    fn insert(c: &mut CursorMut<'_, Self::K, u64>, before: bool, k: u64, v: u64) -> Result<(), CursorError>;
    fn contents(db: &Database) -> Vec<(u64, u64)>;
    fn write(txn: &sluicedb::WriteTransaction, k: u64, v: u64);
}

fn key_text(k: u64) -> String {
    format!("{k:05}")
}

struct ByBytes;
impl Table for ByBytes {
    type K = u64;
    fn sort(k: u64) -> Vec<u8> {
        k.to_be_bytes().to_vec()
    }
    fn with_cursor<R>(
        txn: &sluicedb::WriteTransaction,
        lower: bool,
        bound: Bound<u64>,
        f: impl FnOnce(&mut CursorMut<'_, u64, u64>) -> R,
    ) -> R {
        let mut t = txn.open_table(BYTES).unwrap();
        let mut c = if lower {
            t.lower_bound_mut(bound)
        } else {
            t.upper_bound_mut(bound)
        }
        .unwrap();
        let r = f(&mut c);
        c.close().unwrap();
        r
    }
    fn peek(c: &mut CursorMut<'_, u64, u64>, next: bool) -> Option<(u64, u64)> {
        let e = if next { c.peek_next() } else { c.peek_prev() }.unwrap();
        e.map(|(k, v)| (k.value(), v.value()))
    }
    fn step(c: &mut CursorMut<'_, u64, u64>, next: bool) -> Option<(u64, u64)> {
        let e = if next { c.next() } else { c.prev() }.unwrap();
        e.map(|(k, v)| (k.value(), v.value()))
    }
    fn remove(c: &mut CursorMut<'_, u64, u64>, next: bool) -> Option<(u64, u64)> {
        let e = if next { c.remove_next() } else { c.remove_prev() }.unwrap();
        e.map(|(k, v)| (k.value(), v.value()))
    }
    fn insert(c: &mut CursorMut<'_, u64, u64>, before: bool, k: u64, v: u64) -> Result<(), CursorError> {
        if before {
            c.insert_before(k, v)
        } else {
            c.insert_after(k, v)
        }
    }
    fn contents(db: &Database) -> Vec<(u64, u64)> {
        let r = db.begin_read().unwrap();
        let t = r.open_table(BYTES).unwrap();
        let all: Vec<_> = t
            .iter()
            .unwrap()
            .map(|e| e.unwrap())
            .map(|(k, v)| (k.value(), v.value()))
            .collect();
        assert_eq!(t.len().unwrap(), all.len() as u64);
        all
    }
    fn write(txn: &sluicedb::WriteTransaction, k: u64, v: u64) {
        txn.open_table(BYTES).unwrap().insert(k, v).unwrap();
    }
}

struct ByReversed;
impl Table for ByReversed {
    type K = Reversed;
    fn sort(k: u64) -> Vec<u8> {
        (u64::MAX - k).to_be_bytes().to_vec()
    }
    fn with_cursor<R>(
        txn: &sluicedb::WriteTransaction,
        lower: bool,
        bound: Bound<u64>,
        f: impl FnOnce(&mut CursorMut<'_, Reversed, u64>) -> R,
    ) -> R {
        let mut t = txn.open_table(REVERSED).unwrap();
        let text = bound.map(key_text);
        let bound = text.as_ref().map(String::as_str);
        let mut c = if lower {
            t.lower_bound_mut(bound)
        } else {
            t.upper_bound_mut(bound)
        }
        .unwrap();
        let r = f(&mut c);
        c.close().unwrap();
        r
    }
    fn peek(c: &mut CursorMut<'_, Reversed, u64>, next: bool) -> Option<(u64, u64)> {
        let e = if next { c.peek_next() } else { c.peek_prev() }.unwrap();
        e.map(|(k, v)| (k.value().parse().unwrap(), v.value()))
    }
    fn step(c: &mut CursorMut<'_, Reversed, u64>, next: bool) -> Option<(u64, u64)> {
        let e = if next { c.next() } else { c.prev() }.unwrap();
        e.map(|(k, v)| (k.value().parse().unwrap(), v.value()))
    }
    fn remove(c: &mut CursorMut<'_, Reversed, u64>, next: bool) -> Option<(u64, u64)> {
        let e = if next { c.remove_next() } else { c.remove_prev() }.unwrap();
        e.map(|(k, v)| (k.value().parse().unwrap(), v.value()))
    }
    fn insert(c: &mut CursorMut<'_, Reversed, u64>, before: bool, k: u64, v: u64) -> Result<(), CursorError> {
        let text = key_text(k);
        if before {
            c.insert_before(text.as_str(), v)
        } else {
            c.insert_after(text.as_str(), v)
        }
    }
    fn contents(db: &Database) -> Vec<(u64, u64)> {
        let r = db.begin_read().unwrap();
        let t = r.open_table(REVERSED).unwrap();
        let all: Vec<_> = t
            .iter()
            .unwrap()
            .map(|e| e.unwrap())
            .map(|(k, v)| (k.value().parse().unwrap(), v.value()))
            .collect();
        assert_eq!(t.len().unwrap(), all.len() as u64);
        all
    }
    fn write(txn: &sluicedb::WriteTransaction, k: u64, v: u64) {
        txn.open_table(REVERSED)
            .unwrap()
            .insert(key_text(k).as_str(), v)
            .unwrap();
    }
}

/// The model's gap for a cursor made at `bound`.
fn gap_at<T: Table>(m: &Model, lower: bool, bound: Bound<u64>) -> usize {
    let sorts: Vec<Vec<u8>> = m.entries.keys().map(|(s, _)| s.clone()).collect();
    match (bound, lower) {
        (Bound::Unbounded, true) => 0,
        (Bound::Unbounded, false) => sorts.len(),
        (Bound::Included(k), true) | (Bound::Excluded(k), false) => sorts.partition_point(|s| *s < T::sort(k)),
        (Bound::Excluded(k), true) | (Bound::Included(k), false) => sorts.partition_point(|s| *s <= T::sort(k)),
    }
}

fn run<T: Table>(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Database::builder();
    b.set_memtable_size(8 << 10);
    let db = b.create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    T::with_cursor(&txn, true, Bound::Unbounded, |_| ());
    txn.commit().unwrap();
    let mut rng = Rng(seed);
    let mut committed: BTreeMap<(Vec<u8>, u64), u64> = BTreeMap::new();
    for round in 0..30u64 {
        // Some committed entries, some flushed, some in this transaction.
        let txn = db.begin_write().unwrap();
        let mut model = Model {
            entries: committed.clone(),
            gap: 0,
        };
        for _ in 0..rng.below(20) {
            let k = rng.below(2000) * 2;
            T::write(&txn, k, round);
            model.entries.insert((T::sort(k), k), round);
        }
        let lower = rng.below(2) == 0;
        let bound = match rng.below(3) {
            0 => Bound::Unbounded,
            1 => Bound::Included(rng.below(4000)),
            _ => Bound::Excluded(rng.below(4000)),
        };
        model.gap = gap_at::<T>(&model, lower, bound);
        T::with_cursor(&txn, lower, bound, |c| {
            for step in 0..60 {
                let what = format!("seed {seed:x} round {round} step {step}");
                match rng.below(7) {
                    0 | 1 => {
                        let next = rng.below(2) == 0;
                        let want = if next {
                            model.value(model.gap)
                        } else {
                            model.gap.checked_sub(1).and_then(|i| model.value(i))
                        };
                        assert_eq!(T::peek(c, next), want, "{what}: peek");
                    }
                    2 | 3 => {
                        let next = rng.below(2) == 0;
                        let want = if next {
                            model.value(model.gap)
                        } else {
                            model.gap.checked_sub(1).and_then(|i| model.value(i))
                        };
                        assert_eq!(T::step(c, next), want, "{what}: step");
                        if want.is_some() {
                            if next {
                                model.gap += 1;
                            } else {
                                model.gap -= 1;
                            }
                        }
                    }
                    4 => {
                        let next = rng.below(2) == 0;
                        let at = if next {
                            Some(model.gap)
                        } else {
                            model.gap.checked_sub(1)
                        };
                        let want = at.and_then(|i| model.value(i));
                        assert_eq!(T::remove(c, next), want, "{what}: remove");
                        if let Some((k, _)) = want {
                            model.entries.remove(&(T::sort(k), k));
                            if !next {
                                model.gap -= 1;
                            }
                        }
                    }
                    _ => {
                        // Odd keys are never in the table: an insert fits or
                        // is out of order, never a duplicate of a stored key.
                        let before = rng.below(2) == 0;
                        let k = rng.below(2000) * 2 + 1;
                        let sort = T::sort(k);
                        let prev_ok = model.gap == 0 || model.entries.keys().nth(model.gap - 1).unwrap().0 < sort;
                        let next_ok = model.entries.keys().nth(model.gap).is_none_or(|(s, _)| sort < *s);
                        let got = T::insert(c, before, k, 7);
                        if prev_ok && next_ok {
                            got.unwrap_or_else(|e| panic!("{what}: insert {k} refused: {e}"));
                            model.entries.insert((sort, k), 7);
                            if before {
                                model.gap += 1;
                            }
                        } else {
                            assert!(
                                matches!(got, Err(CursorError::UnorderedKey)),
                                "{what}: insert {k}: {got:?}"
                            );
                        }
                    }
                }
            }
        });
        if rng.below(4) == 0 {
            txn.abort().unwrap();
        } else {
            txn.commit().unwrap();
            committed = model.entries;
        }
        let want: Vec<(u64, u64)> = committed.iter().map(|((_, k), v)| (*k, *v)).collect();
        assert_eq!(
            T::contents(&db),
            want,
            "seed {seed:x} round {round}: after the transaction"
        );
        if round % 7 == 6 {
            db.checkpoint().unwrap();
        }
    }
}

#[test]
fn cursor_mut_matches_a_model_in_byte_order() {
    for seed in 1..=6u64 {
        run::<ByBytes>(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    }
}

#[test]
fn cursor_mut_matches_a_model_in_a_custom_order() {
    for seed in 1..=6u64 {
        run::<ByReversed>(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1);
    }
}

/// Keys and values over the limits are the storage's errors, and change
/// nothing; so is a key equal to a neighbour (never an overwrite).
#[test]
fn cursor_mut_refuses_what_insert_refuses_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    const T: TableDefinition<&[u8], u64> = TableDefinition::new("t");
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        t.insert(&b"m"[..], 1).unwrap();
        let mut c = t.lower_bound_mut(Bound::Included(&b"m"[..])).unwrap();
        let long = vec![b'a'; (20 << 10) + 1];
        assert!(matches!(
            c.insert_before(long.as_slice(), 2),
            Err(CursorError::Storage(sluicedb::StorageError::KeyTooLarge(_)))
        ));
        assert!(matches!(c.insert_before(&b"m"[..], 3), Err(CursorError::UnorderedKey)));
        assert!(matches!(c.insert_after(&b"m"[..], 3), Err(CursorError::UnorderedKey)));
        c.insert_before(&b"a"[..], 4).unwrap();
        c.close().unwrap();
        let all: Vec<(Vec<u8>, u64)> = t
            .iter()
            .unwrap()
            .map(|e| e.unwrap())
            .map(|(k, v)| (k.value().to_vec(), v.value()))
            .collect();
        assert_eq!(all, vec![(b"a".to_vec(), 4), (b"m".to_vec(), 1)]);
    }
    txn.commit().unwrap();
    let err: sluicedb::Error = CursorError::UnorderedKey.into();
    assert!(matches!(err, sluicedb::Error::UnorderedKey));
}
