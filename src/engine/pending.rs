//! A big commit's writes while the inserter thread moves them into the
//! memtable: readable at once, as a sorted run.
//!
//! Inserting a 1000-key batch into a full memtable is a chain of cache
//! misses per key, and it was the largest cost on the committer's path. A
//! commit of at least [`HANDOFF_OPS`] writes therefore hands its batch to the
//! inserter thread (`engine::inserter`) and publishes it in the state as a
//! pending run; the committer releases the writer slot and the next
//! transaction builds while the previous one is inserted.
//!
//! # Invariants
//! - A state's pending run, if any, is the newest commit in that state: a
//!   commit waits until the inserter is idle and then replaces or clears
//!   the run before it applies anything of its own (`WriteTxn::commit`), so
//!   nothing in any memtable is newer than the run. Reads therefore ask the
//!   run first, then the memtables, then the tree.
//! - Until the inserter finishes, the active memtable holds any part of the
//!   run's writes, at the run's sequence; where both have a key, they agree.
//!   So a reader that sees a key in both gets the same answer from either.
//! - Everything but the data (name bindings, dropped tables, count changes,
//!   the memtable's byte charge and sequence) is applied by the committer
//!   itself, under the commit lock, before the hand-off.
//! - Whatever needs the active memtable complete waits for the inserter
//!   first: freezing it (so a flush never sees a partial commit) and the
//!   next commit.

use std::ops::Bound;
use std::sync::Arc;

use super::batch::DataOp;
use super::core::table_runs;
use super::memtable::Lookup;
use super::merge::{Direction, Item, Source};
use crate::btree::{Comparator, ValueBytes, compare, is_bytewise, prefix_word};

/// Commits with at least this many writes go through the inserter thread;
/// smaller ones insert inline (a hand-off costs a thread wake-up, tens of
/// microseconds, against a few hundred nanoseconds per inline insert).
pub(crate) const HANDOFF_OPS: usize = 64;

/// One commit's data writes, sorted by table and, within each table, by its
/// comparator (as the write set emits them).
pub(crate) struct PendingRun {
    pub(crate) seq: u64,
    pub(crate) ops: Vec<DataOp>,
    /// Per table: its comparator and its ops' index range.
    tables: Vec<(u64, Comparator, std::ops::Range<usize>)>,
    /// Each op's key's [`prefix_word`], for byte-ordered tables (zero for
    /// others): a lookup binary-searches these 8-byte words, one cache line
    /// per eight ops, and reads a key only where words tie. Searching the
    /// 64-byte ops themselves missed the cache at every step: the next
    /// transaction looks up every key it writes here first (measured: 8% of
    /// the writer's time in batch overwrites of a 1M-key table).
    prefixes: Vec<u64>,
}

impl PendingRun {
    /// A run of `ops` (REQUIRES: grouped by table, each group sorted by its
    /// table's comparator); `Err` with a table whose comparator `cmp_of`
    /// does not know.
    pub(crate) fn new(seq: u64, ops: Vec<DataOp>, cmp_of: &dyn Fn(u64) -> Option<Comparator>) -> Result<Self, u64> {
        let mut tables: Vec<(u64, Comparator, std::ops::Range<usize>)> = Vec::new();
        for run in table_runs(&ops, cmp_of) {
            let (cmp, run) = run?;
            let start = tables.last().map_or(0, |(_, _, range)| range.end);
            tables.push((run[0].table, cmp, start..start + run.len()));
        }
        let prefixes = tables
            .iter()
            .flat_map(|(_, cmp, range)| {
                let bytewise = is_bytewise(*cmp);
                ops[range.clone()]
                    .iter()
                    .map(move |op| if bytewise { prefix_word(&op.key) } else { 0 })
            })
            .collect();
        Ok(Self {
            seq,
            ops,
            tables,
            prefixes,
        })
    }

    /// Each table's comparator, in the order of the ops.
    pub(crate) fn runs(&self) -> impl Iterator<Item = (Comparator, &[DataOp])> {
        self.tables
            .iter()
            .map(|(_, cmp, range)| (*cmp, &self.ops[range.clone()]))
    }

    /// `table`'s comparator and the index range of its ops.
    fn table(&self, table: u64) -> Option<(Comparator, std::ops::Range<usize>)> {
        self.tables
            .iter()
            .find(|(t, _, _)| *t == table)
            .map(|(_, cmp, range)| (*cmp, range.clone()))
    }

    /// What the run says about `key` of `table` at snapshot `seq`.
    pub(crate) fn get(&self, table: u64, key: &[u8], seq: u64) -> Lookup<'_> {
        if seq < self.seq {
            return Lookup::Absent;
        }
        let Some((cmp, range)) = self.table(table) else {
            return Lookup::Absent;
        };
        let (ops, prefixes) = (&self.ops[range.clone()], &self.prefixes[range]);
        let found = if is_bytewise(cmp) {
            // Equal words narrow the search to the ops whose keys share the
            // first eight bytes; byte order decides among those.
            let word = prefix_word(key);
            let from = prefixes.partition_point(|&p| p < word);
            let to = from + prefixes[from..].partition_point(|&p| p == word);
            ops[from..to]
                .binary_search_by(|op| compare(cmp, &op.key, key))
                .map(|i| from + i)
        } else {
            ops.binary_search_by(|op| compare(cmp, &op.key, key))
        };
        match found {
            Ok(i) => Lookup::Found(ops[i].value.as_deref()),
            Err(_) => Lookup::Absent,
        }
    }

    /// The run's entries of `table` within the bounds, as a merge source
    /// (tombstones included), or `None` if it has none for this snapshot.
    pub(crate) fn source(
        self: &Arc<Self>,
        table: u64,
        seq: u64,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        direction: Direction,
    ) -> Option<Source<'static>> {
        if seq < self.seq {
            return None;
        }
        let (cmp, range) = self.table(table)?;
        let ops = &self.ops[range.clone()];
        let start = match lower {
            Bound::Included(k) => ops.partition_point(|op| compare(cmp, &op.key, k).is_lt()),
            Bound::Excluded(k) => ops.partition_point(|op| compare(cmp, &op.key, k).is_le()),
            Bound::Unbounded => 0,
        };
        let end = match upper {
            Bound::Included(k) => ops.partition_point(|op| compare(cmp, &op.key, k).is_le()),
            Bound::Excluded(k) => ops.partition_point(|op| compare(cmp, &op.key, k).is_lt()),
            Bound::Unbounded => ops.len(),
        };
        let range = (range.start + start)..(range.start + end.max(start));
        let run = self.clone();
        let item = move |i: usize| -> crate::error::Result<Item> {
            let op = &run.ops[i];
            Ok((
                ValueBytes::copy_of(&op.key),
                op.value.as_ref().map(|v| ValueBytes::copy_of(v)),
            ))
        };
        Some(match direction {
            Direction::Forward => Source::boxed(range.map(item)),
            Direction::Backward => Source::boxed(range.rev().map(item)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btree::{Comparator, bytewise};
    use crate::engine::key_bytes::KeyBytes;

    fn reversed(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
        b.cmp(a)
    }

    /// Keys sharing their first eight bytes (and shorter ones, which pad
    /// with zeros), in two tables: one byte-ordered, one in reverse order.
    #[test]
    fn lookups_find_every_op_and_nothing_else() {
        let mut keys: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"a".to_vec(),
            b"a\0".to_vec(),
            b"abcdefgh".to_vec(),
            b"abcdefgh\0".to_vec(),
            b"abcdefgha".to_vec(),
            b"abcdefghb".to_vec(),
            b"abcdefgi".to_vec(),
            vec![0xFF; 12],
        ];
        keys.sort();
        let op = |table, key: &[u8]| DataOp {
            table,
            key: KeyBytes::new(key),
            value: Some(key.to_vec().into()),
        };
        let mut ops: Vec<DataOp> = keys.iter().map(|k| op(1, k)).collect();
        ops.extend(keys.iter().rev().map(|k| op(2, k)));
        let cmp_of = |table: u64| -> Option<Comparator> { Some(if table == 1 { bytewise } else { reversed }) };
        let run = PendingRun::new(5, ops, &cmp_of).unwrap();
        for table in [1, 2] {
            for key in &keys {
                match run.get(table, key, 5) {
                    Lookup::Found(Some(value)) => assert_eq!(value, &key[..]),
                    _ => panic!("table {table}: {key:?} not found"),
                }
            }
            for absent in [&b"abcdefg"[..], b"abcdefgh\0\0", b"b", b"a\0\0"] {
                assert!(matches!(run.get(table, absent, 5), Lookup::Absent), "{absent:?}");
            }
            // Not visible to an older snapshot.
            assert!(matches!(run.get(table, b"a", 4), Lookup::Absent));
        }
        assert!(matches!(run.get(3, b"a", 5), Lookup::Absent));
    }
}
