//! What a table stores about its types, and how a process finds a key order
//! from it.
//!
//! A table's metadata records its key and value type names, whether the
//! key order is plain byte order, and whether it is a multimap table
//! (`crate::multimap`). Byte order needs no code; any other order is
//! the key type's `compare`, which the engine learns when the table is opened
//! with its type. Recovery never needs it: records of a table whose order is
//! not known yet are deferred until the table is opened (`engine::deferred`).

use super::traits::Key;
use crate::btree::{Comparator, bytewise};

/// The metadata the typed API stores with each table (a sluicedb
/// extension, for tools such as the `sluice` command-line tool that read
/// tables without their Rust types): the key and value type names, which
/// `open_table` compares to catch a table reopened with other types,
/// whether the key order is plain byte order, and whether the table is a
/// multimap table.
///
/// ```
/// use sluicedb::TableMeta;
///
/// let meta = TableMeta::decode(b"u64\0&str\0b").unwrap();
/// assert_eq!((meta.key_type.as_str(), meta.value_type.as_str(), meta.bytewise), ("u64", "&str", true));
/// assert!(!meta.multimap);
/// assert_eq!(meta.encode(), b"u64\0&str\0b");
/// let multimap = TableMeta::decode(b"u64\0u64\0c\0m").unwrap();
/// assert!(multimap.multimap && !multimap.bytewise);
/// assert_eq!(TableMeta::decode(b"not metadata"), None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableMeta {
    /// The key type's [`TypeName`](crate::TypeName).
    pub key_type: String,
    /// The value type's [`TypeName`](crate::TypeName).
    pub value_type: String,
    /// Whether keys are ordered by their bytes ([`Key::order_is_bytewise`]);
    /// otherwise only the key type's `compare` knows their order.
    pub bytewise: bool,
    /// Whether this is a multimap table ([`MultimapTableDefinition`](crate::MultimapTableDefinition)):
    /// its engine keys are encoded (key, value) pairs, its engine values
    /// empty, and its order is never byte order.
    pub multimap: bool,
}

impl TableMeta {
    pub(crate) fn of<K: Key, V: crate::Value>() -> Self {
        Self {
            key_type: K::type_name().name().to_string(),
            value_type: V::type_name().name().to_string(),
            bytewise: K::order_is_bytewise(),
            multimap: false,
        }
    }

    /// The metadata of a multimap table from `K` to `V`: its engine order is
    /// the pair order of `crate::multimap::pair`, never byte order.
    pub(crate) fn of_multimap<K: Key, V: Key>() -> Self {
        Self {
            key_type: K::type_name().name().to_string(),
            value_type: V::type_name().name().to_string(),
            bytewise: false,
            multimap: true,
        }
    }

    /// `key type \0 value type \0 order`, where order is `b` (bytewise) or
    /// `c`, then `\0m` for a multimap table. An ordinary table's metadata
    /// keeps the three fields it had before multimap tables existed, so
    /// older files read unchanged and older readers still read ordinary
    /// tables.
    pub fn encode(&self) -> Vec<u8> {
        format!(
            "{}\0{}\0{}{}",
            self.key_type,
            self.value_type,
            if self.bytewise { "b" } else { "c" },
            if self.multimap { "\0m" } else { "" }
        )
        .into_bytes()
    }

    /// Decodes what [`encode`](Self::encode) wrote; `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.split('\0');
        let (key_type, value_type, order) = (parts.next()?, parts.next()?, parts.next()?);
        let multimap = match parts.next() {
            None => false,
            Some("m") => true,
            Some(_) => return None,
        };
        // A multimap table's order is the pair order, never byte order: a
        // `b` with `m` is not something `encode` writes (and `resolve` must
        // never hand byte order to a multimap table's records).
        if parts.next().is_some() || !matches!(order, "b" | "c") || (multimap && order == "b") {
            return None;
        }
        Some(Self {
            key_type: key_type.into(),
            value_type: value_type.into(),
            bytewise: order == "b",
            multimap,
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
