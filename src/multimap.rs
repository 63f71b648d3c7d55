//! Multimap tables: tables where a key has a set of values (redb's
//! `MultimapTable` API).
//!
//! A multimap table is an ordinary engine table whose engine keys are the
//! encoded pairs (key, first value of a chunk) and whose engine values hold
//! the chunk's other values (`pair` has the layout and the order; a key
//! shorter than `pair::CHUNKED_KEY_LEN`, or of a type not ordered by its
//! bytes, has one value per chunk and empty engine values, `chunks` writes
//! the others). So it rides the WAL, the
//! memtable, flush, checkpoint and recovery unchanged, and a key's values
//! are the engine range between two probes that bracket that key's chunks.
//! Its order is never byte order, so recovery defers its records until the
//! table is opened with its types, as for any custom-order table
//! (`engine::deferred`). See `design/multimap.md`.

mod chunks;
mod pair;

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use crate::btree::{Comparator, ValueBytes};
use crate::engine::MergedRange;
use crate::error::StorageError;
use crate::table::TableStats;
use crate::table::{AccessGuard, OwnedAccessGuard, ReadableTableMetadata};
use crate::transaction::{LiveToken, PoisonOnUnwind, WriteTransaction};
use crate::types::Key;

/// The engine order of a multimap table from `K` to `V`: for byte-ordered
/// `K` and `V`, [`bytewise_pair_order`], the same function a process that
/// has not seen the types resolves such a table to (`TableMeta::bytewise_pair`).
pub(crate) fn comparator<K: Key, V: Key>() -> Comparator {
    if K::order_is_bytewise() && V::order_is_bytewise() {
        bytewise_pair_order()
    } else {
        pair::pair_cmp::<K, V>
    }
}

/// The pair order of every multimap table whose key and value types are
/// ordered by their bytes: `K::compare` and `V::compare` are then byte
/// comparison, whatever the types.
pub(crate) fn bytewise_pair_order() -> Comparator {
    pair::pair_cmp::<&[u8], &[u8]>
}

/// Names a multimap table and fixes its key and value types. A multimap
/// table maps each key to a set of distinct values, kept in `V`'s order.
///
/// ```
/// use sluicedb::{Database, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTableMetadata};
///
/// const TAGS: MultimapTableDefinition<&str, u64> = MultimapTableDefinition::new("tags");
///
/// # fn main() -> Result<(), sluicedb::Error> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = Database::create(dir.path().join("db.sluice"))?;
/// let txn = db.begin_write()?;
/// {
///     let mut tags = txn.open_multimap_table(TAGS)?;
///     assert!(!tags.insert("rust", 3)?);
///     assert!(!tags.insert("rust", 1)?);
///     assert!(tags.insert("rust", 3)?); // already there
///     tags.insert("go", 2)?;
/// }
/// txn.commit()?;
///
/// let read = db.begin_read()?;
/// let tags = read.open_multimap_table(TAGS)?;
/// let values: Vec<u64> = tags.get("rust")?.map(|v| v.map(|v| v.value())).collect::<Result<_, _>>()?;
/// assert_eq!(values, [1, 3]);
/// assert_eq!(tags.len()?, 3); // (key, value) pairs
/// # Ok(())
/// # }
/// ```
pub struct MultimapTableDefinition<'a, K: Key + 'static, V: Key + 'static> {
    name: &'a str,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<'a, K: Key + 'static, V: Key + 'static> MultimapTableDefinition<'a, K, V> {
    /// A multimap table named `name`.
    ///
    /// # Panics
    ///
    /// If `name` is empty, as redb's does. For a string literal that is a
    /// compile-time error in a `const`; a name built at run time must be
    /// checked by the caller.
    pub const fn new(name: &'a str) -> Self {
        assert!(!name.is_empty());
        Self {
            name,
            _types: PhantomData,
        }
    }
}

impl<K: Key + 'static, V: Key + 'static> Clone for MultimapTableDefinition<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K: Key + 'static, V: Key + 'static> Copy for MultimapTableDefinition<'_, K, V> {}

impl<K: Key + 'static, V: Key + 'static> fmt::Debug for MultimapTableDefinition<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MultimapTableDefinition({:?}: {} -> {})",
            self.name,
            K::type_name(),
            V::type_name()
        )
    }
}

impl<K: Key + 'static, V: Key + 'static> fmt::Display for MultimapTableDefinition<'_, K, V> {
    /// `name<K, V>`, as redb writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}<{}, {}>", self.name, K::type_name(), V::type_name())
    }
}

/// Anything that names a multimap table.
pub trait MultimapTableHandle {
    /// The table's name.
    fn name(&self) -> &str;
}

impl<K: Key + 'static, V: Key + 'static> MultimapTableHandle for MultimapTableDefinition<'_, K, V> {
    fn name(&self) -> &str {
        self.name
    }
}

impl MultimapTableHandle for &str {
    fn name(&self) -> &str {
        self
    }
}

/// A multimap table known by name only, as `list_multimap_tables` returns
/// it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UntypedMultimapTableHandle {
    name: String,
}

impl UntypedMultimapTableHandle {
    pub(crate) fn new(name: String) -> Self {
        Self { name }
    }
}

impl MultimapTableHandle for UntypedMultimapTableHandle {
    fn name(&self) -> &str {
        &self.name
    }
}

/// Ties an iterator to the borrow it came from, and to its types, without
/// owning either.
type Marker<'a, T> = PhantomData<(&'a (), fn() -> T)>;

/// The values of one key, in ascending order; iterate from either end.
///
/// It owns the values it yields (read when it was made), so it never sees
/// later writes and never blocks them.
pub struct MultimapValue<'a, V: Key + 'static> {
    values: VecDeque<Vec<u8>>,
    _types: Marker<'a, V>,
}

impl<V: Key + 'static> MultimapValue<'_, V> {
    fn new(values: VecDeque<Vec<u8>>) -> Self {
        Self {
            values,
            _types: PhantomData,
        }
    }

    /// The number of values still to be yielded.
    pub fn len(&self) -> u64 {
        self.values.len() as u64
    }

    /// Whether every value has been yielded.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl<'a, V: Key + 'static> Iterator for MultimapValue<'a, V> {
    type Item = Result<AccessGuard<'a, V>, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        let value = self.values.pop_front()?;
        Some(Ok(AccessGuard::new(ValueBytes::owned(value))))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.values.len(), Some(self.values.len()))
    }
}

impl<V: Key + 'static> DoubleEndedIterator for MultimapValue<'_, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let value = self.values.pop_back()?;
        Some(Ok(AccessGuard::new(ValueBytes::owned(value))))
    }
}

/// One stored pair, split.
struct Pair {
    key: Vec<u8>,
    value: Vec<u8>,
}

/// The pairs of one engine entry (a chunk), ascending.
fn chunk_pairs(item: crate::Result<(ValueBytes, ValueBytes)>) -> Result<VecDeque<Pair>, StorageError> {
    let (engine_key, rest) = item?;
    let malformed = || StorageError::corrupted("a multimap table holds a malformed pair");
    let (key, first) = pair::split_pair(&engine_key).ok_or_else(malformed)?;
    let rest = pair::decode_rest(rest.as_bytes()).ok_or_else(malformed)?;
    Ok(std::iter::once(first)
        .chain(rest)
        .map(|value| Pair {
            key: key.to_vec(),
            value: value.to_vec(),
        })
        .collect())
}

/// The pairs of a range of chunks, from either end.
///
/// Invariant: the pairs not yet yielded are, in order, `front`, the pairs
/// of the chunks `inner` has left, `back`.
struct Pairs {
    inner: MergedRange<'static>,
    front: VecDeque<Pair>,
    back: VecDeque<Pair>,
}

impl Pairs {
    fn new(inner: MergedRange<'static>) -> Self {
        Self {
            inner,
            front: VecDeque::new(),
            back: VecDeque::new(),
        }
    }

    fn next(&mut self) -> Option<Result<Pair, StorageError>> {
        if let Some(pair) = self.front.pop_front() {
            return Some(Ok(pair));
        }
        match self.inner.next() {
            Some(item) => match chunk_pairs(item) {
                Ok(pairs) => {
                    self.front = pairs;
                    self.front.pop_front().map(Ok)
                }
                Err(e) => Some(Err(e)),
            },
            None => self.back.pop_front().map(Ok),
        }
    }

    fn next_back(&mut self) -> Option<Result<Pair, StorageError>> {
        if let Some(pair) = self.back.pop_back() {
            return Some(Ok(pair));
        }
        match self.inner.next_back() {
            Some(item) => match chunk_pairs(item) {
                Ok(pairs) => {
                    self.back = pairs;
                    self.back.pop_back().map(Ok)
                }
                Err(e) => Some(Err(e)),
            },
            None => self.front.pop_back().map(Ok),
        }
    }
}

/// A double-ended iterator over the keys of a multimap table in a range,
/// each with its values.
///
/// Invariant: the underlying pairs not yet yielded are, in order,
/// `front` (if any), what `inner` has left, `back` (if any). `front` is the
/// first pair of the next key from the front, read while finding where the
/// previous key's values ended; `back` likewise from the back.
pub struct MultimapRange<'a, K: Key + 'static, V: Key + 'static> {
    inner: Pairs,
    front: Option<Pair>,
    back: Option<Pair>,
    /// Set when the range may outlive its table (the read-only table's
    /// `'static` range): compaction waits for the snapshot it reads.
    _live: Option<LiveToken>,
    _types: Marker<'a, (K, V)>,
}

/// One key and its values, as a [`MultimapRange`] yields them.
pub type MultimapEntry<'a, K, V> = (AccessGuard<'a, K>, MultimapValue<'a, V>);

impl<'a, K: Key + 'static, V: Key + 'static> MultimapRange<'a, K, V> {
    fn new(inner: MergedRange<'static>, live: Option<LiveToken>) -> Self {
        Self {
            inner: Pairs::new(inner),
            front: None,
            back: None,
            _live: live,
            _types: PhantomData,
        }
    }

    /// The next unyielded pair from the front (see the invariant).
    fn pull_front(&mut self) -> Option<Result<Pair, StorageError>> {
        match self.inner.next() {
            Some(item) => Some(item),
            None => self.back.take().map(Ok),
        }
    }

    /// The next unyielded pair from the back (see the invariant).
    fn pull_back(&mut self) -> Option<Result<Pair, StorageError>> {
        match self.inner.next_back() {
            Some(item) => Some(item),
            None => self.front.take().map(Ok),
        }
    }

    /// Gathers the key whose first pair (from the chosen end) is `first`.
    fn group(&mut self, first: Pair, forward: bool) -> Result<MultimapEntry<'a, K, V>, StorageError> {
        let mut values = VecDeque::from([first.value]);
        loop {
            let next = if forward { self.pull_front() } else { self.pull_back() };
            let Some(pair) = next.transpose()? else {
                break;
            };
            if K::compare(&pair.key, &first.key) != Ordering::Equal {
                // The first pair of the next key from this end.
                *(if forward { &mut self.front } else { &mut self.back }) = Some(pair);
                break;
            }
            if forward {
                values.push_back(pair.value);
            } else {
                values.push_front(pair.value);
            }
        }
        Ok((
            AccessGuard::new(ValueBytes::owned(first.key)),
            MultimapValue::new(values),
        ))
    }
}

impl<'a, K: Key + 'static, V: Key + 'static> Iterator for MultimapRange<'a, K, V> {
    type Item = Result<MultimapEntry<'a, K, V>, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        let first = match self.front.take() {
            Some(pair) => pair,
            None => match self.pull_front()? {
                Ok(pair) => pair,
                Err(e) => return Some(Err(e)),
            },
        };
        Some(self.group(first, true))
    }
}

impl<K: Key + 'static, V: Key + 'static> DoubleEndedIterator for MultimapRange<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let first = match self.back.take() {
            Some(pair) => pair,
            None => match self.pull_back()? {
                Ok(pair) => pair,
                Err(e) => return Some(Err(e)),
            },
        };
        Some(self.group(first, false))
    }
}

/// The engine bounds of the chunks whose keys lie in `range`: the probes
/// bracket each bound key's chunks, so every bound is exclusive, and an
/// unbounded start leaves out the count entry (`pair::EXTRA`), which sorts
/// before every chunk.
fn pair_bounds<'a, K: Key + 'static, KR: Borrow<K::SelfType<'a>>>(
    range: &impl RangeBounds<KR>,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let bytes = |k: &KR| K::as_bytes(k.borrow()).as_ref().to_vec();
    let lower = match range.start_bound() {
        Bound::Included(k) => Bound::Excluded(pair::low(&bytes(k))),
        Bound::Excluded(k) => Bound::Excluded(pair::high(&bytes(k))),
        Bound::Unbounded => Bound::Excluded(pair::EXTRA.to_vec()),
    };
    let upper = match range.end_bound() {
        Bound::Included(k) => Bound::Excluded(pair::high(&bytes(k))),
        Bound::Excluded(k) => Bound::Excluded(pair::low(&bytes(k))),
        Bound::Unbounded => Bound::Unbounded,
    };
    (lower, upper)
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k),
        Bound::Excluded(k) => Bound::Excluded(k),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Byte-level access shared by both multimap table kinds.
trait RawMultimap {
    fn raw_range(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> crate::Result<MergedRange<'static>>;
    /// The engine's entry count (chunks, and the count entry if any).
    fn raw_entries(&self) -> crate::Result<u64>;
    fn raw_get(&self, key: &[u8]) -> crate::Result<Option<ValueBytes>>;

    /// The number of (key, value) pairs: one per chunk, and one per value
    /// its engine value holds (`pair::EXTRA`, which is itself an entry).
    fn raw_len(&self) -> crate::Result<u64> {
        let entries = self.raw_entries()?;
        Ok(match self.raw_get(pair::EXTRA)? {
            Some(extra) => (entries + chunks::read_extra(Some(extra))?).saturating_sub(1),
            None => entries,
        })
    }

    /// The values of the key encoded as `key`, ascending.
    fn raw_values<'x, V: Key + 'static>(&self, key: &[u8]) -> Result<MultimapValue<'x, V>, StorageError> {
        let (low, high) = (pair::low(key), pair::high(key));
        let mut values = VecDeque::new();
        for item in self.raw_range(Bound::Excluded(&low), Bound::Excluded(&high))? {
            values.extend(chunk_pairs(item)?.into_iter().map(|p| p.value));
        }
        Ok(MultimapValue::new(values))
    }

    fn raw_key_range<'x, 'a, K: Key + 'static, V: Key + 'static, KR: Borrow<K::SelfType<'a>> + 'a>(
        &self,
        range: &impl RangeBounds<KR>,
    ) -> Result<MultimapRange<'x, K, V>, StorageError> {
        let (lower, upper) = pair_bounds::<K, KR>(range);
        Ok(MultimapRange::new(
            self.raw_range(as_ref(&lower), as_ref(&upper))?,
            None,
        ))
    }
}

/// Reads shared by [`MultimapTable`] and [`ReadOnlyMultimapTable`].
/// [`len`](ReadableTableMetadata::len) counts (key, value) pairs, as redb's.
pub trait ReadableMultimapTable<K: Key + 'static, V: Key + 'static>: ReadableTableMetadata {
    /// The values of `key`, ascending (empty if it has none).
    fn get<'a>(&self, key: impl Borrow<K::SelfType<'a>>) -> Result<MultimapValue<'_, V>, StorageError>;

    /// The keys in `range` with their values, in key order (iterate with
    /// `.rev()` for descending order).
    fn range<'a, KR>(&self, range: impl RangeBounds<KR> + 'a) -> Result<MultimapRange<'_, K, V>, StorageError>
    where
        KR: Borrow<K::SelfType<'a>> + 'a;

    /// Every key with its values, in key order.
    fn iter(&self) -> Result<MultimapRange<'_, K, V>, StorageError> {
        self.range::<K::SelfType<'_>>(..)
    }
}

/// A multimap table opened in a [`WriteTransaction`]: reads see the
/// transaction's own writes.
pub struct MultimapTable<'txn, K: Key + 'static, V: Key + 'static> {
    txn: &'txn WriteTransaction,
    table: crate::engine::TableRef,
    name: Arc<str>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<'txn, K: Key + 'static, V: Key + 'static> MultimapTable<'txn, K, V> {
    pub(crate) fn new(txn: &'txn WriteTransaction, table: crate::engine::TableRef, name: Arc<str>) -> Self {
        Self {
            txn,
            table,
            name,
            _types: PhantomData,
        }
    }

    /// Adds `value` to `key`'s values; returns whether it was there already.
    pub fn insert<'k, 'v>(
        &mut self,
        key: impl Borrow<K::SelfType<'k>>,
        value: impl Borrow<V::SelfType<'v>>,
    ) -> Result<bool, StorageError> {
        let (key, value) = (K::as_bytes(key.borrow()), V::as_bytes(value.borrow()));
        let (key, value) = (key.as_ref(), value.as_ref());
        pair::check_len(key, value)?;
        let pair = pair::pair(key, value);
        // The engine compares pairs with the user's `K::compare` and
        // `V::compare`: a panic there poisons the transaction, as redb's
        // (and part of a chunk's rewrite must never commit).
        let _poison = PoisonOnUnwind(self.txn);
        if !chunks::chunked::<K>(key) {
            let old = self.txn.with_txn(|txn| txn.insert(self.table, &pair, &[]))?;
            return Ok(old.is_some());
        }
        self.txn
            .with_txn(|txn| chunks::insert::<V>(txn, self.table, key, value))
    }

    /// Removes `value` from `key`'s values; returns whether it was there.
    pub fn remove<'k, 'v>(
        &mut self,
        key: impl Borrow<K::SelfType<'k>>,
        value: impl Borrow<V::SelfType<'v>>,
    ) -> Result<bool, StorageError> {
        let (key, value) = (K::as_bytes(key.borrow()), V::as_bytes(value.borrow()));
        let (key, value) = (key.as_ref(), value.as_ref());
        // As in `insert`: a panicking user comparator poisons.
        let _poison = PoisonOnUnwind(self.txn);
        if !chunks::chunked::<K>(key) {
            let old = self
                .txn
                .with_txn(|txn| txn.remove(self.table, &pair::pair(key, value)))?;
            return Ok(old.is_some());
        }
        self.txn
            .with_txn(|txn| chunks::remove::<V>(txn, self.table, key, value))
    }

    /// Removes every value of `key`; returns them, ascending.
    pub fn remove_all<'a>(&mut self, key: impl Borrow<K::SelfType<'a>>) -> Result<MultimapValue<'_, V>, StorageError> {
        let key = K::as_bytes(key.borrow());
        // As in `insert`; here a panic may also leave the key's values
        // partly removed, which must never commit.
        let _poison = PoisonOnUnwind(self.txn);
        let values = self
            .txn
            .with_txn(|txn| chunks::remove_all(txn, self.table, key.as_ref()))?;
        Ok(MultimapValue::new(values.into()))
    }
}

impl<K: Key + 'static, V: Key + 'static> MultimapTableHandle for MultimapTable<'_, K, V> {
    fn name(&self) -> &str {
        &self.name
    }
}

impl<K: Key + 'static, V: Key + 'static> Drop for MultimapTable<'_, K, V> {
    fn drop(&mut self) {
        self.txn.close_table(&self.name);
    }
}

impl<K: Key + 'static, V: Key + 'static> RawMultimap for MultimapTable<'_, K, V> {
    fn raw_range(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> crate::Result<MergedRange<'static>> {
        self.txn.with_txn(|txn| txn.range(self.table, lower, upper))
    }

    fn raw_entries(&self) -> crate::Result<u64> {
        self.txn.with_txn(|txn| txn.len(self.table))
    }

    fn raw_get(&self, key: &[u8]) -> crate::Result<Option<ValueBytes>> {
        self.txn.with_txn(|txn| txn.get(self.table, key))
    }
}

impl<K: Key + 'static, V: Key + 'static> ReadableTableMetadata for MultimapTable<'_, K, V> {
    fn stats(&self) -> Result<TableStats, StorageError> {
        let shape = self.txn.with_txn(|txn| txn.table_shape(self.table))?;
        multimap_stats(self, shape)
    }

    /// The number of (key, value) pairs.
    fn len(&self) -> Result<u64, StorageError> {
        self.raw_len()
    }
}

/// [`TableStats`] of a multimap table: the tree's shape, and one scan for
/// the stored bytes (each chunk's key once and its values, as redb counts
/// a key and its values, not the encoding's headers; the count entry
/// counts nothing).
fn multimap_stats(table: &impl RawMultimap, shape: crate::btree::TreeShape) -> Result<TableStats, StorageError> {
    let range = table.raw_range(Bound::Unbounded, Bound::Unbounded)?;
    TableStats::from_scan(shape, range, |engine_key, rest| {
        if engine_key == pair::EXTRA {
            return Ok(0);
        }
        let malformed = || StorageError::Corrupted("a multimap entry is not a (key, value) pair".into());
        let (key, first) = pair::split_pair(engine_key).ok_or_else(malformed)?;
        let rest = pair::decode_rest(rest).ok_or_else(malformed)?;
        Ok((key.len() + first.len() + rest.iter().map(|v| v.len()).sum::<usize>()) as u64)
    })
}

impl<K: Key + 'static, V: Key + 'static> ReadableMultimapTable<K, V> for MultimapTable<'_, K, V> {
    fn get<'a>(&self, key: impl Borrow<K::SelfType<'a>>) -> Result<MultimapValue<'_, V>, StorageError> {
        self.raw_values(K::as_bytes(key.borrow()).as_ref())
    }

    fn range<'a, KR>(&self, range: impl RangeBounds<KR> + 'a) -> Result<MultimapRange<'_, K, V>, StorageError>
    where
        KR: Borrow<K::SelfType<'a>> + 'a,
    {
        self.raw_key_range::<K, V, KR>(&range)
    }
}

/// A multimap table opened in a [`ReadTransaction`](crate::ReadTransaction).
/// It holds the transaction's snapshot, so it outlives the transaction
/// handle, and so do the iterators its inherent `get` and `range` return.
pub struct ReadOnlyMultimapTable<K: Key + 'static, V: Key + 'static> {
    txn: crate::engine::ReadTxn,
    table: crate::engine::ReadTable,
    name: String,
    /// The snapshot is live while the table is: compaction waits for it.
    live: LiveToken,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K: Key + 'static, V: Key + 'static> ReadOnlyMultimapTable<K, V> {
    pub(crate) fn new(
        txn: crate::engine::ReadTxn,
        table: crate::engine::ReadTable,
        name: String,
        live: LiveToken,
    ) -> Self {
        Self {
            txn,
            table,
            name,
            live,
            _types: PhantomData,
        }
    }

    /// The values of `key`, ascending; the iterator owns them, so it
    /// outlives the table (as redb's `'static` one).
    pub fn get<'a>(&self, key: impl Borrow<K::SelfType<'a>>) -> Result<MultimapValue<'static, V>, StorageError> {
        self.raw_values(K::as_bytes(key.borrow()).as_ref())
    }

    /// The keys in `range` with their values; the iterator holds the
    /// snapshot, so it outlives the table (as redb's `'static` one).
    pub fn range<'a, KR>(&self, range: impl RangeBounds<KR>) -> Result<MultimapRange<'static, K, V>, StorageError>
    where
        KR: Borrow<K::SelfType<'a>>,
    {
        let (lower, upper) = pair_bounds::<K, KR>(&range);
        let inner = self.raw_range(as_ref(&lower), as_ref(&upper))?;
        Ok(MultimapRange::new(inner, Some(self.live.clone())))
    }

    /// Like [`get`](Self::get), but the iterator and the
    /// [`OwnedAccessGuard`]s it yields each keep the snapshot live (so
    /// [`ReadTransaction::close`](crate::ReadTransaction::close) refuses and
    /// compaction waits) until dropped, as redb's.
    pub fn get_owned<'a>(&self, key: impl Borrow<K::SelfType<'a>>) -> Result<OwnedMultimapValue<V>, StorageError> {
        Ok(OwnedMultimapValue::new(self.get(key)?, self.live.clone()))
    }

    /// Like [`range`](Self::range), but the iterator and the keys and value
    /// iterators it yields each keep the snapshot live until dropped, as
    /// redb's.
    pub fn range_owned<'a, KR>(&self, range: impl RangeBounds<KR>) -> Result<OwnedMultimapRange<K, V>, StorageError>
    where
        KR: Borrow<K::SelfType<'a>>,
    {
        Ok(OwnedMultimapRange {
            inner: self.range(range)?,
            live: self.live.clone(),
        })
    }
}

/// A [`MultimapValue`] that keeps its snapshot live, from
/// [`ReadOnlyMultimapTable::get_owned`]; so do the guards it yields.
pub struct OwnedMultimapValue<V: Key + 'static> {
    inner: MultimapValue<'static, V>,
    live: LiveToken,
}

impl<V: Key + 'static> OwnedMultimapValue<V> {
    fn new(inner: MultimapValue<'static, V>, live: LiveToken) -> Self {
        Self { inner, live }
    }

    /// The number of values still to be yielded.
    pub fn len(&self) -> u64 {
        self.inner.len()
    }

    /// Whether every value has been yielded.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    fn own(&self, item: Result<AccessGuard<'static, V>, StorageError>) -> <Self as Iterator>::Item {
        item.map(|value| OwnedAccessGuard::new(value, self.live.clone()))
    }
}

impl<V: Key + 'static> Iterator for OwnedMultimapValue<V> {
    type Item = Result<OwnedAccessGuard<V>, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.inner.next()?;
        Some(self.own(item))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<V: Key + 'static> DoubleEndedIterator for OwnedMultimapValue<V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let item = self.inner.next_back()?;
        Some(self.own(item))
    }
}

/// A [`MultimapRange`] that keeps its snapshot live, from
/// [`ReadOnlyMultimapTable::range_owned`]; so do the keys and value
/// iterators it yields.
pub struct OwnedMultimapRange<K: Key + 'static, V: Key + 'static> {
    inner: MultimapRange<'static, K, V>,
    live: LiveToken,
}

impl<K: Key + 'static, V: Key + 'static> OwnedMultimapRange<K, V> {
    fn own(&self, item: Result<MultimapEntry<'static, K, V>, StorageError>) -> <Self as Iterator>::Item {
        item.map(|(key, values)| {
            (
                OwnedAccessGuard::new(key, self.live.clone()),
                OwnedMultimapValue::new(values, self.live.clone()),
            )
        })
    }
}

impl<K: Key + 'static, V: Key + 'static> Iterator for OwnedMultimapRange<K, V> {
    type Item = Result<(OwnedAccessGuard<K>, OwnedMultimapValue<V>), StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.inner.next()?;
        Some(self.own(item))
    }
}

impl<K: Key + 'static, V: Key + 'static> DoubleEndedIterator for OwnedMultimapRange<K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let item = self.inner.next_back()?;
        Some(self.own(item))
    }
}

/// A multimap table opened by name only, with
/// [`ReadTransaction::open_untyped_multimap_table`](crate::ReadTransaction::open_untyped_multimap_table):
/// its size and storage figures, without its types. Holds the snapshot
/// (so [`ReadTransaction::close`](crate::ReadTransaction::close) refuses
/// while it lives), as redb's.
pub struct ReadOnlyUntypedMultimapTable {
    txn: crate::engine::ReadTxn,
    /// `None` when the pair order is not known in this process (the table
    /// was never opened with its types here): the figures then need that
    /// order, and are refused rather than computed in a wrong one.
    table: Option<crate::engine::ReadTable>,
    name: String,
    live: LiveToken,
}

impl ReadOnlyUntypedMultimapTable {
    pub(crate) fn new(
        txn: crate::engine::ReadTxn,
        table: Option<crate::engine::ReadTable>,
        name: String,
        live: LiveToken,
    ) -> Self {
        Self { txn, table, name, live }
    }

    fn table(&self) -> crate::Result<&crate::engine::ReadTable> {
        self.live.check_open()?;
        self.table.as_ref().ok_or_else(|| {
            StorageError::Internal(format!(
                "multimap table {:?} has an order not known in this process: open it with its types first",
                self.name
            ))
        })
    }
}

impl MultimapTableHandle for ReadOnlyUntypedMultimapTable {
    fn name(&self) -> &str {
        &self.name
    }
}

impl RawMultimap for ReadOnlyUntypedMultimapTable {
    fn raw_range(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> crate::Result<MergedRange<'static>> {
        self.txn.range(self.table()?, lower, upper)
    }

    fn raw_entries(&self) -> crate::Result<u64> {
        self.txn.len(self.table()?)
    }

    fn raw_get(&self, key: &[u8]) -> crate::Result<Option<ValueBytes>> {
        self.txn.get(self.table()?, key)
    }
}

impl ReadableTableMetadata for ReadOnlyUntypedMultimapTable {
    /// The same figures as the typed table's `stats`.
    fn stats(&self) -> Result<TableStats, StorageError> {
        let shape = self.txn.table_shape(self.table()?)?;
        multimap_stats(self, shape)
    }

    /// The number of (key, value) pairs.
    fn len(&self) -> Result<u64, StorageError> {
        self.raw_len()
    }
}

impl<K: Key + 'static, V: Key + 'static> MultimapTableHandle for ReadOnlyMultimapTable<K, V> {
    fn name(&self) -> &str {
        &self.name
    }
}

impl<K: Key + 'static, V: Key + 'static> RawMultimap for ReadOnlyMultimapTable<K, V> {
    fn raw_range(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> crate::Result<MergedRange<'static>> {
        self.txn.range(&self.table, lower, upper)
    }

    fn raw_entries(&self) -> crate::Result<u64> {
        self.txn.len(&self.table)
    }

    fn raw_get(&self, key: &[u8]) -> crate::Result<Option<ValueBytes>> {
        self.txn.get(&self.table, key)
    }
}

impl<K: Key + 'static, V: Key + 'static> ReadableTableMetadata for ReadOnlyMultimapTable<K, V> {
    fn stats(&self) -> Result<TableStats, StorageError> {
        let shape = self.txn.table_shape(&self.table)?;
        multimap_stats(self, shape)
    }

    /// The number of (key, value) pairs.
    fn len(&self) -> Result<u64, StorageError> {
        self.raw_len()
    }
}

impl<K: Key + 'static, V: Key + 'static> ReadableMultimapTable<K, V> for ReadOnlyMultimapTable<K, V> {
    fn get<'a>(&self, key: impl Borrow<K::SelfType<'a>>) -> Result<MultimapValue<'_, V>, StorageError> {
        self.raw_values(K::as_bytes(key.borrow()).as_ref())
    }

    fn range<'a, KR>(&self, range: impl RangeBounds<KR> + 'a) -> Result<MultimapRange<'_, K, V>, StorageError>
    where
        KR: Borrow<K::SelfType<'a>> + 'a,
    {
        self.raw_key_range::<K, V, KR>(&range)
    }
}
