//! Recovered writes to tables whose key order this process does not know yet.
//!
//! A table whose key order is not byte order is ordered by its key type's
//! `compare`, which only the process that opens the table with that type can
//! call. Recovery replays the WAL before anyone has opened a table, so it
//! cannot put such a table's records into the memtable (a skip list ordered
//! by the table's comparator). Instead it keeps them here, in commit order,
//! and never asks the caller to register key types.
//!
//! Lifecycle of a deferred table `T`:
//! 1. **Recovery** collects `T`'s records from the WAL (and from its staging
//!    tree, if an earlier crash left one), then writes the WAL's part into the
//!    staging tree `sluice.deferred.<id>` of the data file in one durable
//!    commit before the database opens. From then on the checkpoint may delete
//!    those WAL segments as usual: the records live on in the data file.
//! 2. **Reads**: the first `open_table` with `T`'s type gives its comparator;
//!    the records are sorted by it once (newest version of each key kept) and
//!    read as a layer between the memtables and the tree. Every snapshot taken
//!    after open is above every deferred record's sequence, so all of them are
//!    visible to every reader.
//! 3. **Absorption**: the next flush after `T`'s comparator became known
//!    applies the sorted records to `T`'s tree and deletes the staging tree in
//!    the same tree commit, *before* it applies that flush's memtable, so newer
//!    writes to `T` always land on top of the recovered ones.
//!
//! Invariants:
//! - A deferred table's records are older than every memtable entry of that
//!   table: writing to `T` needs `open_table` with its type, which registers
//!   the comparator first; recovery defers only tables with no comparator.
//! - Records are never lost between the WAL and the data file: they reach
//!   the staging tree in a durable commit before any checkpoint can run.
//! - A table dropped while deferred loses its records and staging tree with
//!   its data (`apply::flush_oldest` deletes both).

use std::ops::Bound;
use std::sync::{Arc, OnceLock};

use super::merge::{Direction, Item, Source};
use crate::btree::{Comparator, ValueBytes};
use crate::error::{Result, StorageError};

/// Prefix of the staging trees' names; the table id follows, big-endian.
const STAGING_PREFIX: &[u8] = b"sluice.deferred.";

/// The name of table `id`'s staging tree.
pub(crate) fn staging_tree_name(id: u64) -> Vec<u8> {
    let mut name = STAGING_PREFIX.to_vec();
    name.extend_from_slice(&id.to_be_bytes());
    name
}

/// The table id of a staging tree's name, if `name` is one.
pub(crate) fn staging_table_id(name: &[u8]) -> Option<u64> {
    let id = name.strip_prefix(STAGING_PREFIX)?;
    Some(u64::from_be_bytes(id.try_into().ok()?))
}

/// One recovered put (`Some`) or delete (`None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DeferredOp {
    pub(crate) seq: u64,
    pub(crate) key: Vec<u8>,
    pub(crate) value: Option<Vec<u8>>,
}

/// Staging-tree entries:
///
/// ```text
/// key:   u64 seq (big-endian), u32 index of the op among the table's ops
///        of that commit (big-endian): byte order is commit order
/// value: u8 kind (1 put, 2 delete), u32 key length (little-endian), key,
///        then the value (the rest) if a put
/// ```
pub(crate) fn encode_staged(seq: u64, index: u32, op: &DeferredOp) -> ([u8; 12], Vec<u8>) {
    let mut key = [0u8; 12];
    key[..8].copy_from_slice(&seq.to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    let mut value = Vec::with_capacity(5 + op.key.len() + op.value.as_ref().map_or(0, Vec::len));
    value.push(if op.value.is_some() { 1 } else { 2 });
    value.extend_from_slice(&(op.key.len() as u32).to_le_bytes());
    value.extend_from_slice(&op.key);
    if let Some(v) = &op.value {
        value.extend_from_slice(v);
    }
    (key, value)
}

/// Decodes a staging-tree entry; a malformed one is corruption.
pub(crate) fn decode_staged(key: &[u8], value: &[u8]) -> Result<DeferredOp> {
    let bad = || StorageError::corrupted("malformed entry in a deferred-records staging tree");
    let seq = key.get(..8).ok_or_else(bad)?;
    if key.len() != 12 {
        return Err(bad());
    }
    let seq = u64::from_be_bytes(seq.try_into().map_err(|_| bad())?);
    let (&kind, rest) = value.split_first().ok_or_else(bad)?;
    let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len {
        return Err(bad());
    }
    let (k, v) = rest.split_at(len);
    let value = match kind {
        1 => Some(v.to_vec()),
        2 if v.is_empty() => None,
        _ => return Err(bad()),
    };
    Ok(DeferredOp {
        seq,
        key: k.to_vec(),
        value,
    })
}

/// The visible entries of a deferred table in its key order: the newest
/// record of each key (tombstones kept, they hide the tree beneath).
pub(crate) type Overlay = Arc<Vec<Item>>;

/// One table's recovered records.
pub(crate) struct DeferredTable {
    /// In commit order.
    ops: Vec<DeferredOp>,
    /// The overlay, built by the first comparator asked for (a table has one
    /// comparator per process: `Inner::register` fixes it).
    sorted: OnceLock<Overlay>,
    /// How the overlay changes the entry count of the table's tree. While a
    /// table is deferred its tree does not change (the flush that would
    /// change it absorbs the overlay first), so this is computed once.
    count_change: OnceLock<i64>,
}

impl DeferredTable {
    pub(crate) fn new(ops: Vec<DeferredOp>) -> Self {
        Self {
            ops,
            sorted: OnceLock::new(),
            count_change: OnceLock::new(),
        }
    }

    /// Records held.
    pub(crate) fn len(&self) -> usize {
        self.ops.len()
    }

    /// How the overlay (in `cmp`'s order) changes the entry count of the
    /// tree beneath it: a value for a key the tree lacks adds one, a
    /// tombstone for a key it holds removes one. `in_tree` asks the tree.
    pub(crate) fn count_change(&self, cmp: Comparator, in_tree: impl Fn(&[u8]) -> Result<bool>) -> Result<i64> {
        if let Some(&change) = self.count_change.get() {
            return Ok(change);
        }
        let mut change = 0;
        for (key, value) in self.overlay(cmp).iter() {
            change += match (value.is_some(), in_tree(key)?) {
                (true, false) => 1,
                (false, true) => -1,
                _ => 0,
            };
        }
        Ok(*self.count_change.get_or_init(|| change))
    }

    /// The overlay in `cmp`'s order.
    pub(crate) fn overlay(&self, cmp: Comparator) -> Overlay {
        self.sorted
            .get_or_init(|| {
                // Newest first, then a stable sort by key: each key's newest
                // record comes first among its equals and is the one kept.
                let mut newest_first: Vec<&DeferredOp> = self.ops.iter().rev().collect();
                newest_first.sort_by(|a, b| cmp(&a.key, &b.key));
                newest_first.dedup_by(|later, kept| cmp(&later.key, &kept.key).is_eq());
                Arc::new(
                    newest_first
                        .into_iter()
                        .map(|op| (ValueBytes::owned(op.key.clone()), op.value.clone().map(ValueBytes::owned)))
                        .collect(),
                )
            })
            .clone()
    }
}

/// The overlay's entry for `key`, if it has one (`Some(None)`: deleted).
pub(crate) fn overlay_get(overlay: &[Item], cmp: Comparator, key: &[u8]) -> Option<Option<ValueBytes>> {
    let at = overlay.binary_search_by(|(k, _)| cmp(k, key)).ok()?;
    Some(overlay[at].1.clone())
}

/// The overlay's entries between two bounds, as a merge source.
pub(crate) fn overlay_source<'a>(
    overlay: Overlay,
    cmp: Comparator,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
    direction: Direction,
) -> Source<'a> {
    let start = match lower {
        Bound::Included(k) => overlay.partition_point(|(x, _)| cmp(x, k).is_lt()),
        Bound::Excluded(k) => overlay.partition_point(|(x, _)| cmp(x, k).is_le()),
        Bound::Unbounded => 0,
    };
    let end = match upper {
        Bound::Included(k) => overlay.partition_point(|(x, _)| cmp(x, k).is_le()),
        Bound::Excluded(k) => overlay.partition_point(|(x, _)| cmp(x, k).is_lt()),
        Bound::Unbounded => overlay.len(),
    };
    let indices = start..end.max(start);
    match direction {
        Direction::Forward => Source::boxed(indices.map(move |i| Ok(overlay[i].clone()))),
        Direction::Backward => Source::boxed(indices.rev().map(move |i| Ok(overlay[i].clone()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btree::bytewise;

    fn op(seq: u64, key: &[u8], value: Option<&[u8]>) -> DeferredOp {
        DeferredOp {
            seq,
            key: key.to_vec(),
            value: value.map(<[u8]>::to_vec),
        }
    }

    fn case_insensitive(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
        a.to_ascii_lowercase().cmp(&b.to_ascii_lowercase())
    }

    #[test]
    fn staged_entries_round_trip_and_reject_garbage() {
        for o in [
            op(7, b"k", Some(b"v")),
            op(u64::MAX / 2, b"", None),
            op(1, b"key", Some(b"")),
        ] {
            let (k, v) = encode_staged(o.seq, 3, &o);
            assert_eq!(decode_staged(&k, &v).unwrap(), o);
        }
        assert!(decode_staged(&[0; 11], &[1, 0, 0, 0, 0]).is_err());
        assert!(decode_staged(&[0; 12], &[]).is_err());
        assert!(decode_staged(&[0; 12], &[1, 9, 0, 0, 0, b'a']).is_err());
        assert!(decode_staged(&[0; 12], &[2, 1, 0, 0, 0, b'a', b'x']).is_err());
        assert!(decode_staged(&[0; 12], &[3, 0, 0, 0, 0]).is_err());
        assert_eq!(staging_table_id(&staging_tree_name(42)), Some(42));
        assert_eq!(staging_table_id(b"sluice.tables"), None);
    }

    #[test]
    fn the_overlay_keeps_each_keys_newest_record_and_its_key_bytes() {
        let table = DeferredTable::new(vec![
            op(1, b"apple", Some(b"1")),
            op(2, b"b", Some(b"2")),
            op(3, b"APPLE", Some(b"3")),
            op(4, b"b", None),
        ]);
        let overlay = table.overlay(case_insensitive);
        let keys: Vec<(&[u8], Option<&[u8]>)> = overlay
            .iter()
            .map(|(k, v)| (&k[..], v.as_ref().map(ValueBytes::as_bytes)))
            .collect();
        assert_eq!(keys, [(&b"APPLE"[..], Some(&b"3"[..])), (&b"b"[..], None)]);
        assert!(overlay_get(&overlay, case_insensitive, b"Apple").is_some());
        let range: Vec<Vec<u8>> = overlay_source(
            overlay.clone(),
            bytewise,
            Bound::Excluded(b"APPLE"),
            Bound::Unbounded,
            Direction::Backward,
        )
        .map(|e| e.unwrap().0.into_vec())
        .collect();
        assert_eq!(range, [b"b".to_vec()]);
    }
}
