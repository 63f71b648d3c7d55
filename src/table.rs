//! Typed tables: definitions, the read-write and read-only handles, ranges,
//! and the guards values are read through.

use std::borrow::Borrow;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use crate::btree::ValueBytes;
use crate::cursor::Cursor;
use crate::cursor_mut::CursorMut;
use crate::engine::{Direction, MergedRange};
use crate::entry::Entry;
use crate::error::StorageError;
use crate::guards::{AccessGuardMut, AccessGuardMutInPlace, TableWriter};
use crate::transaction::{LiveToken, PoisonOnUnwind, WriteTransaction};
use crate::types::{Key, MutInPlaceValue, Value};

/// Names a table and fixes its key and value types.
///
/// ```
/// use sluicedb::{TableDefinition, TableHandle};
/// const USERS: TableDefinition<u64, &str> = TableDefinition::new("users");
/// assert_eq!(USERS.name(), "users");
/// ```
pub struct TableDefinition<'a, K: Key + 'static, V: Value + 'static> {
    name: &'a str,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<'a, K: Key + 'static, V: Value + 'static> TableDefinition<'a, K, V> {
    /// A table named `name`.
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

impl<K: Key + 'static, V: Value + 'static> Clone for TableDefinition<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K: Key + 'static, V: Value + 'static> Copy for TableDefinition<'_, K, V> {}

impl<K: Key + 'static, V: Value + 'static> std::fmt::Debug for TableDefinition<'_, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TableDefinition({:?}: {} -> {})",
            self.name,
            K::type_name(),
            V::type_name()
        )
    }
}

/// `name<KeyType, ValueType>`, as redb's.
impl<K: Key + 'static, V: Value + 'static> std::fmt::Display for TableDefinition<'_, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}<{}, {}>", self.name, K::type_name().name(), V::type_name().name())
    }
}

/// Anything that names a table.
pub trait TableHandle {
    /// The table's name.
    fn name(&self) -> &str;
}

impl<K: Key + 'static, V: Value + 'static> TableHandle for TableDefinition<'_, K, V> {
    fn name(&self) -> &str {
        self.name
    }
}

/// A table known by name only, as `list_tables` returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UntypedTableHandle {
    name: String,
}

impl UntypedTableHandle {
    pub(crate) fn new(name: String) -> Self {
        Self { name }
    }
}

impl TableHandle for UntypedTableHandle {
    fn name(&self) -> &str {
        &self.name
    }
}

impl TableHandle for &str {
    fn name(&self) -> &str {
        self
    }
}

/// Ties a guard or range to the borrow it came from, and to its types,
/// without owning either.
type Marker<'a, T> = PhantomData<(&'a (), fn() -> T)>;

/// A stored key or value, read with [`value`](Self::value).
///
/// A guard may hold the memory its bytes came from rather than a copy of
/// them: the cached page of the tree, or, for a long value a range read
/// from recent writes, the write buffer (memtable) that holds it, until
/// the guard drops. Copy what you keep for long (`value().to_vec()` for
/// bytes) rather than keep guards.
pub struct AccessGuard<'a, V: Value + 'static> {
    bytes: ValueBytes,
    _types: Marker<'a, V>,
}

impl<V: Value + 'static> AccessGuard<'_, V> {
    pub(crate) fn new(bytes: ValueBytes) -> Self {
        Self {
            bytes,
            _types: PhantomData,
        }
    }

    /// The decoded value.
    pub fn value(&self) -> V::SelfType<'_> {
        V::from_bytes(self.bytes.as_bytes())
    }
}

impl<V: Value + 'static> std::fmt::Debug for AccessGuard<'_, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.value().fmt(f)
    }
}

/// One entry of a range: its key and value.
pub(crate) type Pair<'a, K, V> = (AccessGuard<'a, K>, AccessGuard<'a, V>);

/// A double-ended iterator over a table's entries in key order.
pub struct Range<'a, K: Key + 'static, V: Value + 'static> {
    inner: MergedRange<'static>,
    /// For a range that outlives its table ([`ReadOnlyTable::range`]): its
    /// snapshot's share of the database's live count, so that
    /// [`Database::compact`](crate::Database::compact) refuses while it
    /// lives, as redb's range holds its transaction.
    _live: Option<LiveToken>,
    _types: Marker<'a, (K, V)>,
}

impl<K: Key + 'static, V: Value + 'static> Range<'_, K, V> {
    /// A range that lives no longer than its table.
    pub(crate) fn new(inner: MergedRange<'static>) -> Self {
        Self::holding(inner, None)
    }

    /// A range holding `live` (see the field).
    fn holding(inner: MergedRange<'static>, live: Option<LiveToken>) -> Self {
        Self {
            inner,
            _live: live,
            _types: PhantomData,
        }
    }

    /// The next entry's bytes (for [`Cursor`]).
    pub(crate) fn next_raw(&mut self) -> Option<crate::Result<(ValueBytes, ValueBytes)>> {
        self.inner.next()
    }

    /// The last entry's bytes (for [`Cursor`]).
    pub(crate) fn next_back_raw(&mut self) -> Option<crate::Result<(ValueBytes, ValueBytes)>> {
        self.inner.next_back()
    }
}

impl<K: Key + 'static, V: Value + 'static> Clone for Range<'_, K, V> {
    /// A range at this one's position, as redb's: it yields what this one
    /// would yield next, from either end, and moves on its own.
    fn clone(&self) -> Self {
        Self::holding(self.inner.clone(), self._live.clone())
    }
}

fn entry<'a, K: Key + 'static, V: Value + 'static>(
    item: crate::Result<(ValueBytes, ValueBytes)>,
) -> Result<Pair<'a, K, V>, StorageError> {
    let (key, value) = item?;
    Ok((AccessGuard::new(key), AccessGuard::new(value)))
}

impl<'a, K: Key + 'static, V: Value + 'static> Iterator for Range<'a, K, V> {
    type Item = Result<Pair<'a, K, V>, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(entry)
    }
}

impl<K: Key + 'static, V: Value + 'static> DoubleEndedIterator for Range<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.inner.next_back().map(entry)
    }
}

/// The encoded bounds of a typed range, borrowing its keys where their
/// encoding does (a `&[u8]` key is not copied: the sources that keep a
/// bound copy it themselves).
pub(crate) fn encode_bounds<'r, 'a: 'r, K: Key + 'static, KR: Borrow<K::SelfType<'a>> + 'r>(
    range: &'r impl RangeBounds<KR>,
) -> (Bound<K::AsBytes<'r>>, Bound<K::AsBytes<'r>>) {
    let encode = |bound: Bound<&'r KR>| bound.map(|k| K::as_bytes(k.borrow()));
    (encode(range.start_bound()), encode(range.end_bound()))
}

pub(crate) fn as_ref_bound<B: AsRef<[u8]>>(b: &Bound<B>) -> Bound<&[u8]> {
    b.as_ref().map(|k| k.as_ref())
}

/// Byte-level access shared by both table kinds.
pub(crate) trait RawTable {
    fn raw_get(&self, key: &[u8]) -> crate::Result<Option<ValueBytes>>;
    fn raw_range(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> crate::Result<MergedRange<'static>>;
    /// The first entry of the whole table in `direction`: the first item of
    /// a range over it, which a write table reads without the copy of its
    /// transaction's writes a range makes (`WriteTxn::edge`).
    fn raw_edge(&self, direction: Direction) -> crate::Result<Option<(ValueBytes, ValueBytes)>> {
        let mut range = self.raw_range(Bound::Unbounded, Bound::Unbounded)?;
        match direction {
            Direction::Forward => range.next(),
            Direction::Backward => range.next_back(),
        }
        .transpose()
    }
    fn raw_len(&self) -> crate::Result<u64>;
    fn raw_shape(&self) -> crate::Result<crate::btree::TreeShape>;
}

/// Storage figures of one table, as redb's `TableStats`.
///
/// sluicedb keeps a table in two places: its B+tree in the data file, and
/// the commits not yet flushed into it (memtables, and a write
/// transaction's own writes). [`stored_bytes`](Self::stored_bytes) counts
/// every entry the table handle sees, exactly. The page figures are the
/// tree's in the data file as of the handle's snapshot, with the entries
/// not yet flushed into it counted as the pages they will take (an
/// estimate: their bytes packed into whole leaves under the branch levels
/// those leaves need):
/// a table with entries has a tree height of at least 1 whether or not a
/// flush reached it, and the figures are exact once one has
/// ([`Database::checkpoint`](crate::Database::checkpoint) flushes
/// everything).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    tree_height: u32,
    leaf_pages: u64,
    branch_pages: u64,
    stored_bytes: u64,
    metadata_bytes: u64,
    fragmented_bytes: u64,
}

impl TableStats {
    /// From one scan of every entry the table handle sees: `range`, over
    /// the table's tree shaped `shape`; `stored` gives the bytes an entry
    /// (engine key and value) counts for the user.
    pub(crate) fn from_scan(
        shape: crate::btree::TreeShape,
        range: MergedRange<'static>,
        stored: impl Fn(&[u8], &[u8]) -> crate::Result<u64>,
    ) -> crate::Result<Self> {
        let mut stored_bytes = 0;
        let shape = crate::engine::project(shape, range, |key, value| {
            stored_bytes += stored(key, value)?;
            Ok(())
        })?;
        let pages = shape.leaf_pages + shape.branch_pages + shape.overflow_pages;
        let used = shape.stored_bytes + shape.branch_key_bytes;
        Ok(Self {
            tree_height: u32::try_from(shape.height).unwrap_or(u32::MAX),
            leaf_pages: shape.leaf_pages,
            branch_pages: shape.branch_pages,
            stored_bytes,
            metadata_bytes: shape.branch_key_bytes,
            fragmented_bytes: (pages * shape.page_size as u64).saturating_sub(used),
        })
    }

    /// Levels of the table's tree (0 for an empty table).
    pub fn tree_height(&self) -> u32 {
        self.tree_height
    }

    /// Leaf pages of the table's tree.
    pub fn leaf_pages(&self) -> u64 {
        self.leaf_pages
    }

    /// Branch pages of the table's tree.
    pub fn branch_pages(&self) -> u64 {
        self.branch_pages
    }

    /// Bytes of the keys and values of every entry the handle sees (not
    /// counting any indexing overhead).
    pub fn stored_bytes(&self) -> u64 {
        self.stored_bytes
    }

    /// Bytes of keys in the tree's branch pages.
    pub fn metadata_bytes(&self) -> u64 {
        self.metadata_bytes
    }

    /// Bytes of the tree's pages holding neither entries nor branch keys.
    pub fn fragmented_bytes(&self) -> u64 {
        self.fragmented_bytes
    }
}

/// [`TableStats`] of a table: the tree's shape, and one scan.
fn table_stats(table: &impl RawTable) -> Result<TableStats, StorageError> {
    let range = table.raw_range(Bound::Unbounded, Bound::Unbounded)?;
    TableStats::from_scan(table.raw_shape()?, range, |key, value| {
        Ok((key.len() + value.len()) as u64)
    })
}

/// The size of a table.
pub trait ReadableTableMetadata {
    /// Storage figures of the table (see [`TableStats`]). O(entries): the
    /// stored bytes are counted by a scan.
    fn stats(&self) -> Result<TableStats, StorageError>;

    /// Number of entries. O(1) in the table's size: every layer keeps its
    /// table's entry count (the tree per table, each memtable per commit).
    fn len(&self) -> Result<u64, StorageError>;

    /// Whether the table has no entries.
    fn is_empty(&self) -> Result<bool, StorageError> {
        Ok(self.len()? == 0)
    }
}

/// Reads shared by [`Table`] and [`ReadOnlyTable`].
pub trait ReadableTable<K: Key + 'static, V: Value + 'static>: ReadableTableMetadata {
    /// The value stored under `key`.
    fn get<'a>(&self, key: impl Borrow<K::SelfType<'a>>) -> Result<Option<AccessGuard<'_, V>>, StorageError>;

    /// Entries whose keys lie in `range`, in key order (iterate with `.rev()`
    /// for descending order).
    fn range<'a, KR>(&self, range: impl RangeBounds<KR> + 'a) -> Result<Range<'_, K, V>, StorageError>
    where
        KR: Borrow<K::SelfType<'a>> + 'a;

    /// The entry with the smallest key.
    fn first(&self) -> Result<Option<Pair<'_, K, V>>, StorageError>;

    /// The entry with the largest key.
    fn last(&self) -> Result<Option<Pair<'_, K, V>>, StorageError>;

    /// Every entry, in key order.
    fn iter(&self) -> Result<Range<'_, K, V>, StorageError> {
        self.range::<K::SelfType<'_>>(..)
    }

    /// A [`Cursor`] at the gap before the smallest key within `bound`:
    /// `Included(x)`, the smallest key `>= x`; `Excluded(x)`, the smallest
    /// key `> x`; `Unbounded`, the smallest key. As `BTreeMap::lower_bound`.
    ///
    /// The default builds the cursor from two [`range`](Self::range)s;
    /// sluicedb's tables build them from their stored bytes directly.
    fn lower_bound<'a>(&self, bound: Bound<impl Borrow<K::SelfType<'a>>>) -> Result<Cursor<'_, K, V>, StorageError> {
        // Included(x): x is after the gap; Excluded(x): before it.
        let split = encode_bound::<K>(&bound);
        let inclusive = matches!(split, Bound::Included(_));
        cursor_at(
            |lo, hi| typed_range(self, lo, hi),
            as_ref_bound(&split),
            inclusive,
            true,
        )
    }

    /// A [`Cursor`] at the gap after the greatest key within `bound`:
    /// `Included(x)`, the greatest key `<= x`; `Excluded(x)`, the greatest
    /// key `< x`; `Unbounded`, the greatest key. As `BTreeMap::upper_bound`.
    ///
    /// The default builds the cursor from two [`range`](Self::range)s, as
    /// [`lower_bound`](Self::lower_bound)'s does.
    fn upper_bound<'a>(&self, bound: Bound<impl Borrow<K::SelfType<'a>>>) -> Result<Cursor<'_, K, V>, StorageError> {
        // Included(x): x is before the gap; Excluded(x): after it.
        let split = encode_bound::<K>(&bound);
        let inclusive = matches!(split, Bound::Excluded(_));
        cursor_at(
            |lo, hi| typed_range(self, lo, hi),
            as_ref_bound(&split),
            inclusive,
            false,
        )
    }
}

/// `table`'s range between two encoded bounds, through its typed
/// [`ReadableTable::range`] (the keys decoded for it).
fn typed_range<'t, K: Key + 'static, V: Value + 'static, T: ReadableTable<K, V> + ?Sized>(
    table: &'t T,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
) -> Result<Range<'t, K, V>, StorageError> {
    table.range::<K::SelfType<'_>>((lower.map(K::from_bytes), upper.map(K::from_bytes)))
}

/// The two ranges around a cursor's gap: entries at or after `split`
/// (`after_inclusive`: whether the split key itself is after the gap), and
/// those before it.
fn cursor_at<'t, K: Key + 'static, V: Value + 'static>(
    range: impl Fn(Bound<&[u8]>, Bound<&[u8]>) -> Result<Range<'t, K, V>, StorageError>,
    split: Bound<&[u8]>,
    after_inclusive: bool,
    empty_side_is_before: bool,
) -> Result<Cursor<'t, K, V>, StorageError> {
    let Some(key) = (match split {
        Bound::Included(k) | Bound::Excluded(k) => Some(k),
        Bound::Unbounded => None,
    }) else {
        let all = range(Bound::Unbounded, Bound::Unbounded)?;
        return Ok(if empty_side_is_before {
            Cursor::new(Some(all), None)
        } else {
            Cursor::new(None, Some(all))
        });
    };
    let (after_lo, before_hi) = if after_inclusive {
        (Bound::Included(key), Bound::Excluded(key))
    } else {
        (Bound::Excluded(key), Bound::Included(key))
    };
    let after = range(after_lo, Bound::Unbounded)?;
    let before = range(Bound::Unbounded, before_hi)?;
    Ok(Cursor::new(Some(after), Some(before)))
}

/// The encoding of a bound's key.
fn encode_bound<'a, K: Key + 'static>(bound: &Bound<impl Borrow<K::SelfType<'a>>>) -> Bound<Vec<u8>> {
    match bound {
        Bound::Included(k) => Bound::Included(K::as_bytes(k.borrow()).as_ref().to_vec()),
        Bound::Excluded(k) => Bound::Excluded(K::as_bytes(k.borrow()).as_ref().to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

macro_rules! readable {
    ($t:ident $(<$life:lifetime>)?) => {
        impl<$($life,)? K: Key + 'static, V: Value + 'static> ReadableTableMetadata for $t<$($life,)? K, V> {
            fn stats(&self) -> Result<TableStats, StorageError> {
                table_stats(self)
            }

            fn len(&self) -> Result<u64, StorageError> {
                self.raw_len()
            }
        }

        impl<$($life,)? K: Key + 'static, V: Value + 'static> ReadableTable<K, V> for $t<$($life,)? K, V> {
            fn get<'a>(&self, key: impl Borrow<K::SelfType<'a>>) -> Result<Option<AccessGuard<'_, V>>, StorageError> {
                Ok(self.raw_get(K::as_bytes(key.borrow()).as_ref())?.map(AccessGuard::new))
            }

            fn range<'a, KR>(&self, range: impl RangeBounds<KR> + 'a) -> Result<Range<'_, K, V>, StorageError>
            where
                KR: Borrow<K::SelfType<'a>> + 'a,
            {
                let (lower, upper) = encode_bounds::<K, KR>(&range);
                Ok(Range::new(self.raw_range(as_ref_bound(&lower), as_ref_bound(&upper))?))
            }

            fn first(&self) -> Result<Option<Pair<'_, K, V>>, StorageError> {
                self.raw_edge(Direction::Forward)?.map(|e| entry(Ok(e))).transpose()
            }

            fn last(&self) -> Result<Option<Pair<'_, K, V>>, StorageError> {
                self.raw_edge(Direction::Backward)?.map(|e| entry(Ok(e))).transpose()
            }

            fn iter(&self) -> Result<Range<'_, K, V>, StorageError> {
                Ok(Range::new(self.raw_range(Bound::Unbounded, Bound::Unbounded)?))
            }

            fn lower_bound<'a>(
                &self,
                bound: Bound<impl Borrow<K::SelfType<'a>>>,
            ) -> Result<Cursor<'_, K, V>, StorageError> {
                // Included(x): x is after the gap; Excluded(x): before it.
                let split = encode_bound::<K>(&bound);
                let inclusive = matches!(split, Bound::Included(_));
                cursor_at(|lo, hi| Ok(Range::new(self.raw_range(lo, hi)?)), as_ref_bound(&split), inclusive, true)
            }

            fn upper_bound<'a>(
                &self,
                bound: Bound<impl Borrow<K::SelfType<'a>>>,
            ) -> Result<Cursor<'_, K, V>, StorageError> {
                // Included(x): x is before the gap; Excluded(x): after it.
                let split = encode_bound::<K>(&bound);
                let inclusive = matches!(split, Bound::Excluded(_));
                cursor_at(|lo, hi| Ok(Range::new(self.raw_range(lo, hi)?)), as_ref_bound(&split), inclusive, false)
            }

        }
    };
}

/// A table opened in a [`WriteTransaction`]: reads see the transaction's own
/// writes.
pub struct Table<'txn, K: Key + 'static, V: Value + 'static> {
    txn: &'txn WriteTransaction,
    table: crate::engine::TableRef,
    name: Arc<str>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<'txn, K: Key + 'static, V: Value + 'static> Table<'txn, K, V> {
    pub(crate) fn new(txn: &'txn WriteTransaction, table: crate::engine::TableRef, name: Arc<str>) -> Self {
        Self {
            txn,
            table,
            name,
            _types: PhantomData,
        }
    }

    /// Inserts `value` under `key`; returns the previous value.
    pub fn insert<'k, 'v>(
        &mut self,
        key: impl Borrow<K::SelfType<'k>>,
        value: impl Borrow<V::SelfType<'v>>,
    ) -> Result<Option<AccessGuard<'_, V>>, StorageError> {
        let key = K::as_bytes(key.borrow());
        let value = V::as_bytes(value.borrow());
        let old = self
            .txn
            .with_txn(|txn| txn.insert(self.table, key.as_ref(), value.as_ref()))?;
        Ok(old.map(AccessGuard::new))
    }

    /// Inserts `value` under `key` without reading the value it replaces:
    /// [`insert`](Self::insert) for a caller that does not want the old
    /// value (RocksDB's `Put`, LMDB's `mdb_put`; redb has no such call).
    ///
    /// `insert` looks each key up in the database as it writes it, to return
    /// what was there. `put` does not: the keys it writes are looked up
    /// together when the table's entry count is next needed (the commit, or
    /// [`len`](ReadableTableMetadata::len)), their cache misses overlapping
    /// instead of following one another. Everything else is as `insert`:
    /// reads in this transaction see the value at once, and the commit is
    /// the same.
    ///
    /// ```
    /// use sluicedb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
    ///
    /// const SCORES: TableDefinition<&str, u64> = TableDefinition::new("scores");
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::create(dir.path().join("scores.sluice"))?;
    /// let txn = db.begin_write()?;
    /// {
    ///     let mut scores = txn.open_table(SCORES)?;
    ///     scores.put("ada", 30)?;
    ///     scores.put("ada", 31)?;
    ///     scores.put("grace", 40)?;
    ///     assert_eq!(scores.get("ada")?.unwrap().value(), 31);
    ///     assert_eq!(scores.len()?, 2);
    /// }
    /// txn.commit()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put<'k, 'v>(
        &mut self,
        key: impl Borrow<K::SelfType<'k>>,
        value: impl Borrow<V::SelfType<'v>>,
    ) -> Result<(), StorageError> {
        let key = K::as_bytes(key.borrow());
        let value = V::as_bytes(value.borrow());
        self.txn
            .with_txn(|txn| txn.put(self.table, key.as_ref(), value.as_ref()))
    }

    /// A [`CursorMut`] at the gap before the smallest key within `bound`:
    /// `Included(x)`, the smallest key `>= x`; `Excluded(x)`, the smallest
    /// key `> x`; `Unbounded`, the smallest key. As redb's (and
    /// `BTreeMap::lower_bound_mut`).
    pub fn lower_bound_mut<'a>(
        &mut self,
        bound: Bound<impl Borrow<K::SelfType<'a>>>,
    ) -> Result<CursorMut<'_, K, V>, StorageError> {
        Ok(CursorMut::new(self.txn, self.table, encode_bound::<K>(&bound), true))
    }

    /// A [`CursorMut`] at the gap after the greatest key within `bound`:
    /// `Included(x)`, the greatest key `<= x`; `Excluded(x)`, the greatest
    /// key `< x`; `Unbounded`, the greatest key. As redb's (and
    /// `BTreeMap::upper_bound_mut`).
    pub fn upper_bound_mut<'a>(
        &mut self,
        bound: Bound<impl Borrow<K::SelfType<'a>>>,
    ) -> Result<CursorMut<'_, K, V>, StorageError> {
        Ok(CursorMut::new(self.txn, self.table, encode_bound::<K>(&bound), false))
    }

    /// Removes `key`; returns its value.
    pub fn remove<'a>(
        &mut self,
        key: impl Borrow<K::SelfType<'a>>,
    ) -> Result<Option<AccessGuard<'_, V>>, StorageError> {
        let key = K::as_bytes(key.borrow());
        let old = self.txn.with_txn(|txn| txn.remove(self.table, key.as_ref()))?;
        Ok(old.map(AccessGuard::new))
    }

    fn remove_raw(&mut self, key: &[u8]) -> Result<(), StorageError> {
        self.txn.with_txn(|txn| txn.remove(self.table, key))?;
        Ok(())
    }

    /// Removes and returns the entry with the smallest key.
    pub fn pop_first(&mut self) -> Result<Option<Pair<'_, K, V>>, StorageError> {
        let first = self.txn.with_txn(|txn| txn.pop_first(self.table))?;
        Ok(first.map(popped))
    }

    /// Removes and returns the entry with the largest key.
    pub fn pop_last(&mut self) -> Result<Option<Pair<'_, K, V>>, StorageError> {
        let last = self.txn.with_txn(|txn| txn.pop_last(self.table))?;
        Ok(last.map(popped))
    }

    /// Keeps only the entries for which `predicate` returns true.
    pub fn retain<F: for<'f> FnMut(K::SelfType<'f>, V::SelfType<'f>) -> bool>(
        &mut self,
        predicate: F,
    ) -> Result<(), StorageError> {
        self.retain_bytes(Bound::Unbounded, Bound::Unbounded, predicate)
    }

    /// Like [`retain`](Self::retain), over the entries in `range` only.
    pub fn retain_in<'a, KR, F: for<'f> FnMut(K::SelfType<'f>, V::SelfType<'f>) -> bool>(
        &mut self,
        range: impl RangeBounds<KR> + 'a,
        predicate: F,
    ) -> Result<(), StorageError>
    where
        KR: Borrow<K::SelfType<'a>> + 'a,
    {
        let (lower, upper) = encode_bounds::<K, KR>(&range);
        self.retain_bytes(as_ref_bound(&lower), as_ref_bound(&upper), predicate)
    }

    fn retain_bytes<F: for<'f> FnMut(K::SelfType<'f>, V::SelfType<'f>) -> bool>(
        &mut self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        mut predicate: F,
    ) -> Result<(), StorageError> {
        for key in self.matching(lower, upper, |k, v| !predicate(k, v))? {
            self.remove_raw(&key.0)?;
        }
        Ok(())
    }

    /// Entries in the bounds that `predicate` selects.
    fn matching(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        mut predicate: impl for<'f> FnMut(K::SelfType<'f>, V::SelfType<'f>) -> bool,
    ) -> Result<Vec<(ValueBytes, ValueBytes)>, StorageError> {
        let mut selected = Vec::new();
        for item in self.raw_range(lower, upper)? {
            let (key, value) = item?;
            let _poison = PoisonOnUnwind(self.txn);
            if predicate(K::from_bytes(&key), V::from_bytes(value.as_bytes())) {
                selected.push((key, value));
            }
        }
        Ok(selected)
    }

    /// Removes the entries for which `predicate` returns true, yielding each
    /// as the iterator reaches it, in key order. Lazy, as redb's: the
    /// predicate runs on an entry only when the iterator reaches it, and
    /// entries the iterator does not reach (if it is dropped early) stay.
    pub fn extract_if<F: for<'f> FnMut(K::SelfType<'f>, V::SelfType<'f>) -> bool>(
        &mut self,
        predicate: F,
    ) -> Result<ExtractIf<'_, K, V, F>, StorageError> {
        self.extract_in_bounds(Bound::Unbounded, Bound::Unbounded, predicate)
    }

    /// Like [`extract_if`](Self::extract_if), over the entries in `range`
    /// only.
    pub fn extract_from_if<'a, KR, F: for<'f> FnMut(K::SelfType<'f>, V::SelfType<'f>) -> bool>(
        &mut self,
        range: impl RangeBounds<KR> + 'a,
        predicate: F,
    ) -> Result<ExtractIf<'_, K, V, F>, StorageError>
    where
        KR: Borrow<K::SelfType<'a>> + 'a,
    {
        let (lower, upper) = encode_bounds::<K, KR>(&range);
        self.extract_in_bounds(as_ref_bound(&lower), as_ref_bound(&upper), predicate)
    }

    fn extract_in_bounds<F: for<'f> FnMut(K::SelfType<'f>, V::SelfType<'f>) -> bool>(
        &mut self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        predicate: F,
    ) -> Result<ExtractIf<'_, K, V, F>, StorageError> {
        let range = self.raw_range(lower, upper)?;
        Ok(ExtractIf {
            writer: self.writer(),
            range,
            predicate,
            failed: None,
            _types: PhantomData,
        })
    }

    /// Byte-level writes to this table for as long as `self` is borrowed.
    fn writer(&mut self) -> TableWriter<'_> {
        TableWriter {
            txn: self.txn,
            table: self.table,
        }
    }

    /// The value stored under `key`, readable and replaceable in place.
    pub fn get_mut<'k>(
        &mut self,
        key: impl Borrow<K::SelfType<'k>>,
    ) -> Result<Option<AccessGuardMut<'_, V>>, StorageError> {
        let key = K::as_bytes(key.borrow()).as_ref().to_vec();
        AccessGuardMut::lookup(self.writer(), key)
    }

    /// The entry of `key`, for in-place manipulation (as
    /// [`BTreeMap::entry`](std::collections::BTreeMap::entry)).
    pub fn entry<'a>(&'a mut self, key: K::SelfType<'a>) -> Result<Entry<'a, K, V>, StorageError> {
        Entry::new(self.writer(), key)
    }
}

impl<K: Key + 'static, V: MutInPlaceValue + 'static> Table<'_, K, V> {
    /// Reserves `value_length` bytes under `key` (replacing any value) and
    /// returns them to write through [`AsMut`]; the written bytes are the
    /// value once the guard drops.
    pub fn insert_reserve<'a>(
        &mut self,
        key: impl Borrow<K::SelfType<'a>>,
        value_length: usize,
    ) -> Result<AccessGuardMutInPlace<'_, V>, StorageError> {
        let key = K::as_bytes(key.borrow()).as_ref().to_vec();
        AccessGuardMutInPlace::reserve(self.writer(), key, value_length)
    }
}

impl<K: Key + 'static, V: Value + 'static> std::fmt::Debug for Table<'_, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("name", &self.name)
            .field("len", &self.raw_len().ok())
            .finish()
    }
}

impl<K: Key + 'static, V: Value + 'static> TableHandle for Table<'_, K, V> {
    fn name(&self) -> &str {
        &self.name
    }
}

impl<K: Key + 'static, V: Value + 'static> Drop for Table<'_, K, V> {
    fn drop(&mut self) {
        self.txn.close_table(&self.name);
    }
}

impl<K: Key + 'static, V: Value + 'static> RawTable for Table<'_, K, V> {
    fn raw_get(&self, key: &[u8]) -> crate::Result<Option<ValueBytes>> {
        self.txn.with_txn(|txn| txn.get(self.table, key))
    }

    fn raw_range(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> crate::Result<MergedRange<'static>> {
        self.txn.with_txn(|txn| txn.range(self.table, lower, upper))
    }

    fn raw_edge(&self, direction: Direction) -> crate::Result<Option<(ValueBytes, ValueBytes)>> {
        self.txn
            .with_txn(|txn| txn.edge(self.table, Bound::Unbounded, Bound::Unbounded, direction))
    }

    fn raw_len(&self) -> crate::Result<u64> {
        self.txn.with_txn(|txn| txn.len(self.table))
    }

    fn raw_shape(&self) -> crate::Result<crate::btree::TreeShape> {
        self.txn.with_txn(|txn| txn.table_shape(self.table))
    }
}

readable!(Table<'txn>);

/// A popped entry as the typed API returns it.
fn popped<'a, K: Key + 'static, V: Value + 'static>((key, value): (Vec<u8>, ValueBytes)) -> Pair<'a, K, V> {
    (AccessGuard::new(ValueBytes::owned(key)), AccessGuard::new(value))
}

/// The entries an [`ExtractIf`] walks, and one of them.
type RangeItems = MergedRange<'static>;
type RangeItem = crate::Result<(ValueBytes, ValueBytes)>;

/// The iterator of [`Table::extract_if`] and [`Table::extract_from_if`].
/// It reads the table as it was when created (the range owns its view),
/// removing each selected entry as it yields it, from either end: removals
/// only touch keys it has already passed.
///
/// After it returns an error, every later call (from either end, and
/// [`close`](Self::close)) returns an error again, as redb's: an I/O error
/// as [`StorageError::PreviousIo`]. Ending quietly would look like
/// exhaustion. So stop at the first error: an adapter that skips errors
/// (`flatten`, `filter_map(Result::ok)`) would never end.
pub struct ExtractIf<'a, K: Key + 'static, V: Value + 'static, F> {
    writer: TableWriter<'a>,
    range: MergedRange<'static>,
    predicate: F,
    /// The first error returned, in the form later calls re-raise it.
    failed: Option<StorageError>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<'a, K, V, F> ExtractIf<'a, K, V, F>
where
    K: Key + 'static,
    V: Value + 'static,
    F: for<'f> FnMut(K::SelfType<'f>, V::SelfType<'f>) -> bool,
{
    /// Removes and returns `item` if the predicate selects it; `None` to
    /// go on.
    fn select(
        &mut self,
        item: crate::Result<(ValueBytes, ValueBytes)>,
    ) -> Option<Result<Pair<'a, K, V>, StorageError>> {
        let (key, value) = match item {
            Ok(entry) => entry,
            Err(e) => return Some(Err(e)),
        };
        let poison = PoisonOnUnwind(self.writer.txn);
        if !(self.predicate)(K::from_bytes(&key), V::from_bytes(value.as_bytes())) {
            return None;
        }
        drop(poison);
        Some(
            self.writer
                .remove(&key)
                .map(|_| (AccessGuard::new(key), AccessGuard::new(value))),
        )
    }

    /// The next selected entry from the end of the range `step` reads
    /// (`next` or `next_back`), or the latched error once one was returned.
    fn advance(
        &mut self,
        step: fn(&mut RangeItems) -> Option<RangeItem>,
    ) -> Option<Result<Pair<'a, K, V>, StorageError>> {
        if let Some(failed) = &self.failed {
            return Some(Err(failed.again()));
        }
        loop {
            let item = step(&mut self.range)?;
            if let Some(selected) = self.select(item) {
                if let Err(e) = &selected {
                    self.failed = Some(e.again());
                }
                return Some(selected);
            }
        }
    }
}

impl<K: Key + 'static, V: Value + 'static, F> ExtractIf<'_, K, V, F> {
    /// Ends the extraction, as redb's `close`. Each entry was removed as it
    /// was yielded, so nothing is left to finish: entries not reached stay.
    /// Returns the error the iteration stopped at, if it did (so `Ok` means
    /// every step succeeded).
    pub fn close(self) -> Result<(), StorageError> {
        match self.failed {
            Some(failed) => Err(failed),
            None => Ok(()),
        }
    }
}

impl<'a, K, V, F> Iterator for ExtractIf<'a, K, V, F>
where
    K: Key + 'static,
    V: Value + 'static,
    F: for<'f> FnMut(K::SelfType<'f>, V::SelfType<'f>) -> bool,
{
    type Item = Result<Pair<'a, K, V>, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.advance(Iterator::next)
    }
}

impl<K, V, F> DoubleEndedIterator for ExtractIf<'_, K, V, F>
where
    K: Key + 'static,
    V: Value + 'static,
    F: for<'f> FnMut(K::SelfType<'f>, V::SelfType<'f>) -> bool,
{
    fn next_back(&mut self) -> Option<Self::Item> {
        self.advance(DoubleEndedIterator::next_back)
    }
}

/// A table opened in a [`ReadTransaction`](crate::ReadTransaction). It holds
/// the transaction's snapshot, so it outlives the transaction handle.
pub struct ReadOnlyTable<K: Key + 'static, V: Value + 'static> {
    txn: crate::engine::ReadTxn,
    table: crate::engine::ReadTable,
    /// The snapshot is live while the table is: compaction waits for it.
    _live: LiveToken,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K: Key + 'static, V: Value + 'static> ReadOnlyTable<K, V> {
    pub(crate) fn new(txn: crate::engine::ReadTxn, table: crate::engine::ReadTable, live: LiveToken) -> Self {
        Self {
            txn,
            table,
            _live: live,
            _types: PhantomData,
        }
    }
}

impl<K: Key + 'static, V: Value + 'static> ReadOnlyTable<K, V> {
    /// The value stored under `key`. The guard does not borrow the table:
    /// it reads from the snapshot, which stays valid.
    pub fn get<'a>(&self, key: impl Borrow<K::SelfType<'a>>) -> Result<Option<AccessGuard<'static, V>>, StorageError> {
        Ok(self.raw_get(K::as_bytes(key.borrow()).as_ref())?.map(AccessGuard::new))
    }

    /// Like [`get`](Self::get), with a guard that keeps the snapshot live
    /// (so [`Database::compact`](crate::Database::compact) waits for it) for
    /// as long as it lives, as redb's does.
    pub fn get_owned<'a>(
        &self,
        key: impl Borrow<K::SelfType<'a>>,
    ) -> Result<Option<OwnedAccessGuard<V>>, StorageError> {
        Ok(self.get(key)?.map(|inner| OwnedAccessGuard {
            inner,
            _live: self._live.clone(),
        }))
    }

    /// Entries whose keys lie in `range`; the range does not borrow the table.
    /// It keeps the snapshot live while it lives (a compaction refuses
    /// meanwhile, as redb's does); its guards do not (as redb's hold only
    /// their pages).
    pub fn range<'a, KR>(&self, range: impl RangeBounds<KR>) -> Result<Range<'static, K, V>, StorageError>
    where
        KR: Borrow<K::SelfType<'a>>,
    {
        let (lower, upper) = encode_bounds::<K, KR>(&range);
        let inner = self.raw_range(as_ref_bound(&lower), as_ref_bound(&upper))?;
        Ok(Range::holding(inner, Some(self._live.clone())))
    }

    /// Like [`range`](Self::range), yielding owned guards; the range keeps
    /// the snapshot live while it or any of its guards lives.
    pub fn range_owned<'a, KR>(&self, range: impl RangeBounds<KR>) -> Result<OwnedRange<K, V>, StorageError>
    where
        KR: Borrow<K::SelfType<'a>>,
    {
        Ok(OwnedRange {
            inner: self.range(range)?,
            live: self._live.clone(),
        })
    }
}

/// A value read with [`ReadOnlyTable::get_owned`]: independent of the table
/// and the transaction, it keeps their snapshot live.
pub struct OwnedAccessGuard<V: Value + 'static> {
    inner: AccessGuard<'static, V>,
    _live: LiveToken,
}

impl<V: Value + 'static> OwnedAccessGuard<V> {
    /// A guard over `inner` that keeps the snapshot of `live` live.
    pub(crate) fn new(inner: AccessGuard<'static, V>, live: LiveToken) -> Self {
        Self { inner, _live: live }
    }

    /// The decoded value.
    pub fn value(&self) -> V::SelfType<'_> {
        self.inner.value()
    }
}

impl<V: Value + 'static> std::fmt::Debug for OwnedAccessGuard<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

/// A range from [`ReadOnlyTable::range_owned`], yielding owned guards.
pub struct OwnedRange<K: Key + 'static, V: Value + 'static> {
    inner: Range<'static, K, V>,
    live: LiveToken,
}

impl<K: Key + 'static, V: Value + 'static> OwnedRange<K, V> {
    fn own(&self, item: Result<Pair<'static, K, V>, StorageError>) -> <Self as Iterator>::Item {
        item.map(|(key, value)| {
            (
                OwnedAccessGuard {
                    inner: key,
                    _live: self.live.clone(),
                },
                OwnedAccessGuard {
                    inner: value,
                    _live: self.live.clone(),
                },
            )
        })
    }
}

impl<K: Key + 'static, V: Value + 'static> Iterator for OwnedRange<K, V> {
    type Item = Result<(OwnedAccessGuard<K>, OwnedAccessGuard<V>), StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.inner.next()?;
        Some(self.own(item))
    }
}

impl<K: Key + 'static, V: Value + 'static> DoubleEndedIterator for OwnedRange<K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let item = self.inner.next_back()?;
        Some(self.own(item))
    }
}

impl<K: Key + 'static, V: Value + 'static> std::fmt::Debug for ReadOnlyTable<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOnlyTable")
            .field("len", &self.raw_len().ok())
            .finish()
    }
}

impl<K: Key + 'static, V: Value + 'static> RawTable for ReadOnlyTable<K, V> {
    fn raw_get(&self, key: &[u8]) -> crate::Result<Option<ValueBytes>> {
        self._live.check_open()?;
        self.txn.get(&self.table, key)
    }

    fn raw_range(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> crate::Result<MergedRange<'static>> {
        self._live.check_open()?;
        self.txn.range(&self.table, lower, upper)
    }

    fn raw_len(&self) -> crate::Result<u64> {
        self._live.check_open()?;
        self.txn.len(&self.table)
    }

    fn raw_shape(&self) -> crate::Result<crate::btree::TreeShape> {
        self._live.check_open()?;
        self.txn.table_shape(&self.table)
    }
}

readable!(ReadOnlyTable);

/// A table opened by name only, with
/// [`ReadTransaction::open_untyped_table`](crate::ReadTransaction::open_untyped_table):
/// its size and storage figures, without its types. Holds the snapshot.
pub struct ReadOnlyUntypedTable {
    txn: crate::engine::ReadTxn,
    /// `None` when the key order is not known in this process (a custom
    /// order whose key type was never opened here): the figures then need
    /// that order, and are refused rather than computed in a wrong one.
    table: Option<crate::engine::ReadTable>,
    name: String,
    _live: LiveToken,
}

impl ReadOnlyUntypedTable {
    pub(crate) fn new(
        txn: crate::engine::ReadTxn,
        table: Option<crate::engine::ReadTable>,
        name: String,
        live: LiveToken,
    ) -> Self {
        Self {
            txn,
            table,
            name,
            _live: live,
        }
    }

    fn table(&self) -> crate::Result<&crate::engine::ReadTable> {
        self._live.check_open()?;
        self.table.as_ref().ok_or_else(|| {
            StorageError::Internal(format!(
                "table {:?} has a custom key order not known in this process: open it with its key type first",
                self.name
            ))
        })
    }
}

impl TableHandle for ReadOnlyUntypedTable {
    fn name(&self) -> &str {
        &self.name
    }
}

impl RawTable for ReadOnlyUntypedTable {
    fn raw_get(&self, key: &[u8]) -> crate::Result<Option<ValueBytes>> {
        self.txn.get(self.table()?, key)
    }

    fn raw_range(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> crate::Result<MergedRange<'static>> {
        self.txn.range(self.table()?, lower, upper)
    }

    fn raw_len(&self) -> crate::Result<u64> {
        self.txn.len(self.table()?)
    }

    fn raw_shape(&self) -> crate::Result<crate::btree::TreeShape> {
        self.txn.table_shape(self.table()?)
    }
}

impl ReadableTableMetadata for ReadOnlyUntypedTable {
    fn stats(&self) -> Result<TableStats, StorageError> {
        table_stats(self)
    }

    fn len(&self) -> Result<u64, StorageError> {
        self.raw_len()
    }
}
