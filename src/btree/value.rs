//! Values as readers receive them, and overflow runs for values too large to
//! sit in a leaf.
//!
//! An overflow value occupies `ceil(len / page_size)` consecutive pages with
//! no page header; its xxh3-64 checksum lives in the leaf entry that points at
//! it, so the value is verified as a whole on every read.

use xxhash_rust::xxh3::xxh3_64;

use super::node::{LeafValue, OverflowRef};
use crate::error::{Result, StorageError};
use crate::page::{Page, PageStore};

/// The largest value sluicedb stores: 128 MiB.
pub const MAX_VALUE_LEN: usize = 128 << 20;

/// A value read from a tree or a memtable: a slice of a cached page (no
/// copy), or an owned buffer (overflow values, and values found in memory).
#[derive(Clone)]
pub struct ValueBytes {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    InPage { page: Page, start: usize, len: usize },
    Owned(Vec<u8>),
}

impl ValueBytes {
    pub(crate) fn in_page(page: Page, start: usize, len: usize) -> Self {
        Self {
            repr: Repr::InPage { page, start, len },
        }
    }

    pub(crate) fn owned(bytes: Vec<u8>) -> Self {
        Self {
            repr: Repr::Owned(bytes),
        }
    }

    /// The value's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.repr {
            Repr::InPage { page, start, len } => &page[*start..*start + *len],
            Repr::Owned(bytes) => bytes,
        }
    }

    /// The value's bytes, owned.
    pub fn into_vec(self) -> Vec<u8> {
        match self.repr {
            Repr::Owned(bytes) => bytes,
            Repr::InPage { .. } => self.as_bytes().to_vec(),
        }
    }
}

impl std::ops::Deref for ValueBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl std::fmt::Debug for ValueBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ValueBytes").field(&self.as_bytes()).finish()
    }
}

impl PartialEq for ValueBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

/// Loads entry `i` of the leaf `page`.
pub(crate) fn load(
    store: &PageStore,
    page: &Page,
    value: LeafValue<'_>,
    range: Option<(usize, usize)>,
) -> Result<ValueBytes> {
    match (value, range) {
        (LeafValue::Overflow(r), _) => read_overflow(store, &r).map(ValueBytes::owned),
        (LeafValue::Inline(_), Some((start, len))) => Ok(ValueBytes::in_page(page.clone(), start, len)),
        (LeafValue::Inline(v), None) => Ok(ValueBytes::owned(v.to_vec())),
    }
}

pub(crate) fn read_overflow(store: &PageStore, r: &OverflowRef) -> Result<Vec<u8>> {
    let len = usize::try_from(r.len)
        .ok()
        .filter(|&len| len <= MAX_VALUE_LEN)
        .ok_or_else(|| StorageError::corrupted(format!("overflow value of {} bytes", r.len)))?;
    let bytes = store.read_run(r.start, len)?;
    if xxh3_64(&bytes) != r.checksum {
        return Err(StorageError::corrupted(format!(
            "overflow value at page {} checksum mismatch",
            r.start
        )));
    }
    Ok(bytes)
}
