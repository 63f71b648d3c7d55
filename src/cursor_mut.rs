//! [`CursorMut`]: a gap between two entries of a write table, with inserts
//! into the gap and removals around it, from
//! [`Table::lower_bound_mut`](crate::Table::lower_bound_mut) and
//! [`upper_bound_mut`](crate::Table::upper_bound_mut), as redb 4.6's (and
//! the nightly `btree_map::CursorMut`).
//!
//! The gap is a cut in the key order, named by a key and a side: the keys
//! before `Before(k)` are those below `k`; before `After(k)`, those up to
//! and including `k`. A cut stays where it is when the entries around it
//! change, which is what the operations need: removing the entry after the
//! gap leaves the gap between that entry's old neighbours, and an insert
//! moves the cut to the new key's side. Every operation reads the first
//! entry on one side of the cut (`WriteTxn::edge`: a seek in each layer,
//! the transaction's writes, the memtables and the tree, merged; nothing
//! copied): nothing is buffered, so every write is in the transaction when
//! the call returns, and a failed call leaves the cursor where it was.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::marker::PhantomData;
use std::ops::Bound;

use crate::btree::ValueBytes;
use crate::engine::{Direction, TableRef};
use crate::error::{CursorError, StorageError};
use crate::table::AccessGuard;
use crate::transaction::WriteTransaction;
use crate::types::{Key, Value};

/// Where the gap is.
#[derive(Clone, Debug)]
enum Gap {
    /// Before every entry.
    Start,
    /// After every entry.
    End,
    /// After the keys below this one.
    Before(Vec<u8>),
    /// After the keys up to and including this one.
    After(Vec<u8>),
}

impl Gap {
    /// The lower bound of the entries after the gap; `None` at the end.
    fn after(&self) -> Option<Bound<&[u8]>> {
        match self {
            Self::Start => Some(Bound::Unbounded),
            Self::End => None,
            Self::Before(k) => Some(Bound::Included(k)),
            Self::After(k) => Some(Bound::Excluded(k)),
        }
    }

    /// The upper bound of the entries before the gap; `None` at the start.
    fn before(&self) -> Option<Bound<&[u8]>> {
        match self {
            Self::Start => None,
            Self::End => Some(Bound::Unbounded),
            Self::Before(k) => Some(Bound::Excluded(k)),
            Self::After(k) => Some(Bound::Included(k)),
        }
    }
}

type Raw = (ValueBytes, ValueBytes);
/// What a cursor stands for without holding it: its types, and the
/// table's mutable borrow for `'a`.
type Borrows<'a, K, V> = (fn() -> (K, V), &'a mut ());
type Pair<'c, K, V> = (AccessGuard<'c, K>, AccessGuard<'c, V>);

fn guards<'c, K: Key + 'static, V: Value + 'static>((key, value): Raw) -> Pair<'c, K, V> {
    (AccessGuard::new(key), AccessGuard::new(value))
}

/// A cursor over a [`Table`](crate::Table), pointing at a gap between two
/// entries, that inserts new entries into the gap and removes the entries
/// around it.
///
/// Made by [`Table::lower_bound_mut`](crate::Table::lower_bound_mut) and
/// [`Table::upper_bound_mut`](crate::Table::upper_bound_mut); it borrows the
/// table mutably for as long as it lives. Each call is applied to the
/// transaction before it returns (redb buffers runs of inserts and applies
/// them at the next move or at [`close`](Self::close); here nothing waits,
/// so `close` has nothing left to report).
///
/// ```
/// use std::ops::Bound;
/// use sluicedb::{Database, ReadableTableMetadata, TableDefinition};
///
/// const TABLE: TableDefinition<u64, u64> = TableDefinition::new("t");
///
/// # fn main() -> Result<(), sluicedb::Error> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = Database::create(dir.path().join("db"))?;
/// let txn = db.begin_write()?;
/// {
///     let mut table = txn.open_table(TABLE)?;
///     let mut cursor = table.upper_bound_mut(Bound::<u64>::Unbounded)?;
///     for key in 0..10 {
///         cursor.insert_before(key, &(key * 2))?;
///     }
///     // Keys must keep the order: 3 does not belong after 9.
///     assert!(cursor.insert_before(3, &0).is_err());
///     assert_eq!(cursor.remove_prev()?.map(|(k, _)| k.value()), Some(9));
///     cursor.close()?;
///     assert_eq!(table.len()?, 9);
/// }
/// txn.commit()?;
/// # Ok(())
/// # }
/// ```
pub struct CursorMut<'a, K: Key + 'static, V: Value + 'static> {
    txn: &'a WriteTransaction,
    table: TableRef,
    gap: Gap,
    _types: PhantomData<Borrows<'a, K, V>>,
}

impl<'a, K: Key + 'static, V: Value + 'static> CursorMut<'a, K, V> {
    /// A cursor at the gap `bound` names: before the entries at or above
    /// it (`lower`), or after the entries at or below it (`!lower`), as
    /// [`Table::lower_bound_mut`](crate::Table::lower_bound_mut) and
    /// [`upper_bound_mut`](crate::Table::upper_bound_mut) document.
    pub(crate) fn new(txn: &'a WriteTransaction, table: TableRef, bound: Bound<Vec<u8>>, lower: bool) -> Self {
        let gap = match (bound, lower) {
            (Bound::Unbounded, true) => Gap::Start,
            (Bound::Unbounded, false) => Gap::End,
            (Bound::Included(k), true) | (Bound::Excluded(k), false) => Gap::Before(k),
            (Bound::Excluded(k), true) | (Bound::Included(k), false) => Gap::After(k),
        };
        Self {
            txn,
            table,
            gap,
            _types: PhantomData,
        }
    }

    /// The first entry after the gap.
    fn next_raw(&self) -> Result<Option<Raw>, StorageError> {
        let Some(lower) = self.gap.after() else {
            return Ok(None);
        };
        self.txn
            .with_txn(|txn| txn.edge(self.table, lower, Bound::Unbounded, Direction::Forward))
    }

    /// The last entry before the gap.
    fn prev_raw(&self) -> Result<Option<Raw>, StorageError> {
        let Some(upper) = self.gap.before() else {
            return Ok(None);
        };
        self.txn
            .with_txn(|txn| txn.edge(self.table, Bound::Unbounded, upper, Direction::Backward))
    }

    /// Returns the entry after the gap without moving; `None` at the end of
    /// the table.
    pub fn peek_next(&mut self) -> Result<Option<Pair<'_, K, V>>, StorageError> {
        Ok(self.next_raw()?.map(guards))
    }

    /// Returns the entry before the gap without moving; `None` at the start
    /// of the table.
    pub fn peek_prev(&mut self) -> Result<Option<Pair<'_, K, V>>, StorageError> {
        Ok(self.prev_raw()?.map(guards))
    }

    /// Moves past the entry after the gap and returns it; `None`, without
    /// moving, at the end of the table. Not an [`Iterator`]: every step can
    /// fail (use [`ReadableTable::range`](crate::ReadableTable::range) to
    /// iterate).
    #[expect(clippy::should_implement_trait, reason = "redb's name; each step returns a Result")]
    pub fn next(&mut self) -> Result<Option<Pair<'_, K, V>>, StorageError> {
        let entry = self.next_raw()?;
        if let Some((key, _)) = &entry {
            self.gap = Gap::After(key.to_vec());
        }
        Ok(entry.map(guards))
    }

    /// Moves back over the entry before the gap and returns it; `None`,
    /// without moving, at the start of the table.
    pub fn prev(&mut self) -> Result<Option<Pair<'_, K, V>>, StorageError> {
        let entry = self.prev_raw()?;
        if let Some((key, _)) = &entry {
            self.gap = Gap::Before(key.to_vec());
        }
        Ok(entry.map(guards))
    }

    /// Inserts an entry into the gap; the cursor then points at the gap
    /// after it. The key must sort strictly between the entries around the
    /// gap, or the call is [`CursorError::UnorderedKey`] and changes
    /// nothing: unlike [`Table::insert`](crate::Table::insert) it never
    /// overwrites.
    pub fn insert_before<'k, 'v>(
        &mut self,
        key: impl Borrow<K::SelfType<'k>>,
        value: impl Borrow<V::SelfType<'v>>,
    ) -> Result<(), CursorError> {
        self.insert(
            K::as_bytes(key.borrow()).as_ref(),
            V::as_bytes(value.borrow()).as_ref(),
            true,
        )
    }

    /// Inserts an entry into the gap; the cursor then points at the gap
    /// before it. The key must sort strictly between the entries around the
    /// gap, as for [`insert_before`](Self::insert_before).
    pub fn insert_after<'k, 'v>(
        &mut self,
        key: impl Borrow<K::SelfType<'k>>,
        value: impl Borrow<V::SelfType<'v>>,
    ) -> Result<(), CursorError> {
        self.insert(
            K::as_bytes(key.borrow()).as_ref(),
            V::as_bytes(value.borrow()).as_ref(),
            false,
        )
    }

    /// Inserts `key` if it sorts strictly between the gap's neighbours; the
    /// gap then lies after it (`before`: the entry is before the gap) or
    /// before it.
    fn insert(&mut self, key: &[u8], value: &[u8], before: bool) -> Result<(), CursorError> {
        crate::btree::check_op(key, Some(value))?;
        let below = self
            .prev_raw()?
            .is_none_or(|(prev, _)| K::compare(&prev, key) == Ordering::Less);
        let above = self
            .next_raw()?
            .is_none_or(|(next, _)| K::compare(key, &next) == Ordering::Less);
        if !(below && above) {
            return Err(CursorError::UnorderedKey);
        }
        self.txn.with_txn(|txn| txn.insert(self.table, key, value))?;
        self.gap = if before {
            Gap::After(key.to_vec())
        } else {
            Gap::Before(key.to_vec())
        };
        Ok(())
    }

    /// Removes the entry after the gap and returns it; the gap stays
    /// between its old neighbours. `None`, removing nothing, at the end of
    /// the table.
    pub fn remove_next(&mut self) -> Result<Option<Pair<'_, K, V>>, StorageError> {
        let entry = self.next_raw()?;
        self.remove(entry, true)
    }

    /// Removes the entry before the gap and returns it; the gap stays
    /// between its old neighbours. `None`, removing nothing, at the start
    /// of the table.
    pub fn remove_prev(&mut self) -> Result<Option<Pair<'_, K, V>>, StorageError> {
        let entry = self.prev_raw()?;
        self.remove(entry, false)
    }

    /// Removes `entry`, the one after the gap (`next`) or before it. The
    /// gap stays where it is, but is named by the removed key's other side
    /// (the same place, as the key is gone): the next seek starts past its
    /// tombstone instead of stepping over every tombstone a run of removals
    /// left (found by review: draining a table through `remove_next` was
    /// quadratic).
    fn remove(&mut self, entry: Option<Raw>, next: bool) -> Result<Option<Pair<'_, K, V>>, StorageError> {
        if let Some((key, _)) = &entry {
            self.txn.with_txn(|txn| txn.remove(self.table, key))?;
            self.gap = if next {
                Gap::After(key.to_vec())
            } else {
                Gap::Before(key.to_vec())
            };
        }
        Ok(entry.map(guards))
    }

    /// Lets the table go. Every insert and removal is already in the
    /// transaction (see the type's docs), so this returns `Ok`; it is here
    /// for code written against redb, whose cursor reports deferred insert
    /// errors only here.
    pub fn close(self) -> Result<(), StorageError> {
        Ok(())
    }
}
