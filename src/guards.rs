//! Mutable access to one stored value: [`AccessGuardMut`] (from
//! [`Table::get_mut`](crate::Table::get_mut) and the entry API) and
//! [`AccessGuardMutInPlace`] (from
//! [`Table::insert_reserve`](crate::Table::insert_reserve)).
//!
//! redb's guards point into a dirty page of the transaction's tree.
//! sluicedb's transaction keeps its changes in a private write set, so a
//! guard holds the key and the value's current bytes and writes through the
//! write set: what a guard writes is what the table then reads, exactly as
//! with [`Table::insert`](crate::Table::insert).

use std::borrow::Borrow;
use std::marker::PhantomData;

use crate::btree::ValueBytes;
use crate::engine::TableRef;
use crate::error::StorageError;
use crate::transaction::WriteTransaction;
use crate::types::{MutInPlaceValue, Value};

/// Byte-level writes to one table of a write transaction, for the guards,
/// the entry API and `extract_if`. A `TableWriter<'a>` is made from a
/// `&'a mut Table`, so while it lives nothing else writes the table.
#[derive(Clone, Copy)]
pub(crate) struct TableWriter<'a> {
    pub(crate) txn: &'a WriteTransaction,
    pub(crate) table: TableRef,
}

impl TableWriter<'_> {
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<ValueBytes>, StorageError> {
        self.txn.with_txn(|txn| txn.get(self.table, key))
    }

    pub(crate) fn insert(&self, key: &[u8], value: &[u8]) -> Result<Option<ValueBytes>, StorageError> {
        self.txn.with_txn(|txn| txn.insert(self.table, key, value))
    }

    pub(crate) fn remove(&self, key: &[u8]) -> Result<Option<ValueBytes>, StorageError> {
        self.txn.with_txn(|txn| txn.remove(self.table, key))
    }
}

/// A stored value that can be read and replaced in place, as redb's.
///
/// ```
/// use sluicedb::{Database, ReadableTable, TableDefinition};
///
/// const COUNTS: TableDefinition<&str, u64> = TableDefinition::new("counts");
///
/// # fn main() -> Result<(), sluicedb::Error> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = Database::create(dir.path().join("db"))?;
/// let txn = db.begin_write()?;
/// {
///     let mut counts = txn.open_table(COUNTS)?;
///     counts.insert("a", 1)?;
///     let mut guard = counts.get_mut("a")?.unwrap();
///     let next = guard.value() + 1;
///     guard.insert(next)?;
///     drop(guard);
///     assert_eq!(counts.get("a")?.unwrap().value(), 2);
/// }
/// txn.commit()?;
/// # Ok(())
/// # }
/// ```
pub struct AccessGuardMut<'a, V: Value + 'static> {
    writer: TableWriter<'a>,
    key: Vec<u8>,
    /// The value's current bytes: the stored ones, or the last `insert`ed.
    value: ValueBytes,
    _types: PhantomData<fn() -> V>,
}

impl<'a, V: Value + 'static> AccessGuardMut<'a, V> {
    pub(crate) fn new(writer: TableWriter<'a>, key: Vec<u8>, value: ValueBytes) -> Self {
        Self {
            writer,
            key,
            value,
            _types: PhantomData,
        }
    }

    /// The key's guard after a read, or `None` if the key is absent.
    pub(crate) fn lookup(writer: TableWriter<'a>, key: Vec<u8>) -> Result<Option<Self>, StorageError> {
        Ok(writer.get(&key)?.map(|value| Self::new(writer, key, value)))
    }

    /// The current value.
    pub fn value(&self) -> V::SelfType<'_> {
        V::from_bytes(self.value.as_bytes())
    }

    /// Replaces the value (visible at once to reads of this transaction).
    pub fn insert<'v>(&mut self, value: impl Borrow<V::SelfType<'v>>) -> Result<(), StorageError> {
        let bytes = V::as_bytes(value.borrow()).as_ref().to_vec();
        self.writer.insert(&self.key, &bytes)?;
        self.value = ValueBytes::owned(bytes);
        Ok(())
    }
}

impl<V: Value + 'static> std::fmt::Debug for AccessGuardMut<'_, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.value().fmt(f)
    }
}

/// Space reserved for a value by
/// [`Table::insert_reserve`](crate::Table::insert_reserve), written through
/// [`AsMut`]. The bytes are stored when the guard drops.
///
/// `insert_reserve` stores a placeholder of the reserved length at once,
/// which checks the key and the length and adds the key to the write set;
/// the drop then replaces it with the written bytes. That replacement cannot
/// fail: the key and length were accepted already, the write set holds the
/// key (so nothing is read from storage), and the table stays open while the
/// guard borrows it.
pub struct AccessGuardMutInPlace<'a, V: MutInPlaceValue + 'static> {
    writer: TableWriter<'a>,
    key: Vec<u8>,
    buffer: Vec<u8>,
    _types: PhantomData<fn() -> V>,
}

impl<'a, V: MutInPlaceValue + 'static> AccessGuardMutInPlace<'a, V> {
    /// Reserves `len` bytes under `key` (see the type's docs).
    pub(crate) fn reserve(writer: TableWriter<'a>, key: Vec<u8>, len: usize) -> Result<Self, StorageError> {
        let mut buffer = vec![0u8; len];
        V::initialize(&mut buffer);
        writer.insert(&key, &buffer)?;
        Ok(Self {
            writer,
            key,
            buffer,
            _types: PhantomData,
        })
    }
}

impl<V: MutInPlaceValue + 'static> AsMut<V::BaseRefType> for AccessGuardMutInPlace<'_, V> {
    fn as_mut(&mut self) -> &mut V::BaseRefType {
        V::from_bytes_mut(&mut self.buffer)
    }
}

impl<V: MutInPlaceValue + 'static> Drop for AccessGuardMutInPlace<'_, V> {
    fn drop(&mut self) {
        // Cannot fail; see the type's docs for why.
        let stored = self.writer.insert(&self.key, &self.buffer);
        debug_assert!(stored.is_ok(), "replacing a reserved value failed: {stored:?}");
    }
}
