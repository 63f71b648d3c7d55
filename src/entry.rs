//! The entry API of [`Table::entry`](crate::Table::entry), in redb 4.x's
//! shape: the key shares the lifetime of the table borrow.

use std::borrow::Borrow;
use std::marker::PhantomData;

use crate::error::StorageError;
use crate::guards::{AccessGuardMut, TableWriter};
use crate::table::AccessGuard;
use crate::types::{Key, Value};

/// A key's entry in a table: occupied or vacant, as
/// [`BTreeMap::entry`](std::collections::BTreeMap::entry).
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
///     for word in ["a", "b", "a"] {
///         counts
///             .entry(word)?
///             .and_modify(|n| {
///                 let next = n.value() + 1;
///                 n.insert(next)
///             })?
///             .or_insert(1)?;
///     }
///     assert_eq!(counts.get("a")?.unwrap().value(), 2);
///     assert_eq!(counts.get("b")?.unwrap().value(), 1);
/// }
/// txn.commit()?;
/// # Ok(())
/// # }
/// ```
pub enum Entry<'a, K: Key + 'static, V: Value + 'static> {
    /// The key is present.
    Occupied(OccupiedEntry<'a, K, V>),
    /// The key is absent.
    Vacant(VacantEntry<'a, K, V>),
}

impl<'a, K: Key + 'static, V: Value + 'static> Entry<'a, K, V> {
    /// Looks `key` up through `writer`.
    pub(crate) fn new(writer: TableWriter<'a>, key: K::SelfType<'a>) -> Result<Self, StorageError> {
        let bytes = K::as_bytes(&key).as_ref().to_vec();
        crate::btree::check_key(&bytes)?;
        let slot = Slot {
            writer,
            key,
            bytes,
            _types: PhantomData,
        };
        Ok(if writer.get(&slot.bytes)?.is_some() {
            Entry::Occupied(OccupiedEntry(slot))
        } else {
            Entry::Vacant(VacantEntry(slot))
        })
    }

    /// The entry's key.
    pub fn key(&self) -> &K::SelfType<'a> {
        match self {
            Entry::Occupied(entry) => entry.key(),
            Entry::Vacant(entry) => entry.key(),
        }
    }

    /// The value, inserting `default` first if the key is absent.
    pub fn or_insert<'v>(self, default: impl Borrow<V::SelfType<'v>>) -> Result<AccessGuardMut<'a, V>, StorageError> {
        match self {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => entry.insert(default),
        }
    }

    /// The value, inserting `default()` first if the key is absent.
    pub fn or_insert_with<'v, F, B>(self, default: F) -> Result<AccessGuardMut<'a, V>, StorageError>
    where
        F: FnOnce() -> B,
        B: Borrow<V::SelfType<'v>>,
    {
        match self {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => entry.insert(default()),
        }
    }

    /// The value, inserting `default(&key)` first if the key is absent.
    pub fn or_insert_with_key<'v, F, B>(self, default: F) -> Result<AccessGuardMut<'a, V>, StorageError>
    where
        F: FnOnce(&K::SelfType<'a>) -> B,
        B: Borrow<V::SelfType<'v>>,
    {
        match self {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let value = default(entry.key());
                entry.insert(value)
            }
        }
    }

    /// Runs `f` on the value if the key is present; returns the entry.
    pub fn and_modify<F>(self, f: F) -> Result<Self, StorageError>
    where
        F: FnOnce(&mut AccessGuardMut<'_, V>) -> Result<(), StorageError>,
    {
        match self {
            Entry::Occupied(mut entry) => {
                {
                    let mut guard = entry.get_mut()?;
                    f(&mut guard)?;
                }
                Ok(Entry::Occupied(entry))
            }
            Entry::Vacant(entry) => Ok(Entry::Vacant(entry)),
        }
    }
}

/// What both entry kinds hold: the table, the key and its encoding.
struct Slot<'a, K: Key + 'static, V: Value + 'static> {
    writer: TableWriter<'a>,
    key: K::SelfType<'a>,
    bytes: Vec<u8>,
    _types: PhantomData<fn() -> V>,
}

/// The error when an occupied entry's key is gone; the entry borrows its
/// table mutably, so only a bug in sluicedb can cause it.
fn vanished() -> StorageError {
    StorageError::Internal("entry for key disappeared while OccupiedEntry was live".into())
}

/// An [`Entry`] whose key is present.
pub struct OccupiedEntry<'a, K: Key + 'static, V: Value + 'static>(Slot<'a, K, V>);

impl<'a, K: Key + 'static, V: Value + 'static> OccupiedEntry<'a, K, V> {
    /// The key.
    pub fn key(&self) -> &K::SelfType<'a> {
        &self.0.key
    }

    /// The value.
    pub fn get(&self) -> Result<AccessGuard<'_, V>, StorageError> {
        Ok(AccessGuard::new(
            self.0.writer.get(&self.0.bytes)?.ok_or_else(vanished)?,
        ))
    }

    /// The value, mutably.
    pub fn get_mut(&mut self) -> Result<AccessGuardMut<'_, V>, StorageError> {
        AccessGuardMut::lookup(self.0.writer, self.0.bytes.clone())?.ok_or_else(vanished)
    }

    /// The value, mutably, for as long as the table borrow.
    pub fn into_mut(self) -> Result<AccessGuardMut<'a, V>, StorageError> {
        AccessGuardMut::lookup(self.0.writer, self.0.bytes).and_then(|g| g.ok_or_else(vanished))
    }

    /// Replaces the value; returns the previous one.
    pub fn insert<'v>(&mut self, value: impl Borrow<V::SelfType<'v>>) -> Result<AccessGuard<'_, V>, StorageError> {
        let value = V::as_bytes(value.borrow());
        let old = self.0.writer.insert(&self.0.bytes, value.as_ref())?;
        Ok(AccessGuard::new(old.ok_or_else(vanished)?))
    }

    /// Removes the entry; returns its value.
    pub fn remove(self) -> Result<AccessGuard<'a, V>, StorageError> {
        Ok(AccessGuard::new(
            self.0.writer.remove(&self.0.bytes)?.ok_or_else(vanished)?,
        ))
    }

    /// Removes the entry; returns its key and value.
    pub fn remove_entry(self) -> Result<(K::SelfType<'a>, AccessGuard<'a, V>), StorageError> {
        let Slot { writer, key, bytes, .. } = self.0;
        let value = writer.remove(&bytes)?.ok_or_else(vanished)?;
        Ok((key, AccessGuard::new(value)))
    }
}

/// An [`Entry`] whose key is absent.
pub struct VacantEntry<'a, K: Key + 'static, V: Value + 'static>(Slot<'a, K, V>);

impl<'a, K: Key + 'static, V: Value + 'static> VacantEntry<'a, K, V> {
    /// The key.
    pub fn key(&self) -> &K::SelfType<'a> {
        &self.0.key
    }

    /// The key, taken back.
    pub fn into_key(self) -> K::SelfType<'a> {
        self.0.key
    }

    /// Inserts `value`; returns it, mutably.
    pub fn insert<'v>(self, value: impl Borrow<V::SelfType<'v>>) -> Result<AccessGuardMut<'a, V>, StorageError> {
        let value = V::as_bytes(value.borrow()).as_ref().to_vec();
        self.0.writer.insert(&self.0.bytes, &value)?;
        Ok(AccessGuardMut::new(
            self.0.writer,
            self.0.bytes,
            crate::btree::ValueBytes::owned(value),
        ))
    }
}
