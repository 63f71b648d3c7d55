//! What a table stores about its types, and how a process finds a key order
//! from it.
//!
//! A table's metadata records its key and value type names and whether the
//! key order is plain byte order. Byte order needs no code; any other order is
//! the key type's `compare`, which the engine learns when the table is opened
//! with its type. Recovery never needs it: records of a table whose order is
//! not known yet are deferred until the table is opened (`engine::deferred`).

use super::traits::Key;
use crate::btree::{Comparator, bytewise};

/// A table's stored metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TableMeta {
    pub(crate) key_type: String,
    pub(crate) value_type: String,
    pub(crate) bytewise: bool,
}

impl TableMeta {
    pub(crate) fn of<K: Key, V: crate::Value>() -> Self {
        Self {
            key_type: K::type_name().name().to_string(),
            value_type: V::type_name().name().to_string(),
            bytewise: K::order_is_bytewise(),
        }
    }

    /// `key type \0 value type \0 order`, where order is `b` (bytewise) or `c`.
    pub(crate) fn encode(&self) -> Vec<u8> {
        format!(
            "{}\0{}\0{}",
            self.key_type,
            self.value_type,
            if self.bytewise { "b" } else { "c" }
        )
        .into_bytes()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.split('\0');
        let (key_type, value_type, order) = (parts.next()?, parts.next()?, parts.next()?);
        Some(Self {
            key_type: key_type.into(),
            value_type: value_type.into(),
            bytewise: order == "b",
        })
    }
}

/// The comparator to build `K`'s tables with: plain byte order when `K`'s
/// order is byte order (the engine can then treat equal keys as equal bytes,
/// which its memtable filters rely on), `K::compare` otherwise.
pub(crate) fn comparator<K: Key>() -> Comparator {
    if K::order_is_bytewise() { bytewise } else { K::compare }
}

/// The key order of a table, from its metadata (the engine's resolver):
/// byte order when the metadata says so; `None` (unknown until the table is
/// opened with its key type) otherwise. The engine then defers the table's
/// recovered records (`engine::deferred`); nothing needs registering.
pub(crate) fn resolve(meta: &[u8]) -> Option<Comparator> {
    TableMeta::decode(meta)?.bytewise.then_some(bytewise as Comparator)
}
