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
use super::memtable::Lookup;
use super::merge::{Direction, Item, Source};
use crate::btree::{Comparator, ValueBytes, compare};

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
}

impl PendingRun {
    /// A run of `ops` (REQUIRES: grouped by table, each group sorted by its
    /// table's comparator); `Err` with a table whose comparator `cmp_of`
    /// does not know.
    pub(crate) fn new(seq: u64, ops: Vec<DataOp>, cmp_of: &dyn Fn(u64) -> Option<Comparator>) -> Result<Self, u64> {
        let mut tables: Vec<(u64, Comparator, std::ops::Range<usize>)> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            match tables.last_mut() {
                Some((table, _, range)) if *table == op.table => range.end = i + 1,
                _ => tables.push((op.table, cmp_of(op.table).ok_or(op.table)?, i..i + 1)),
            }
        }
        Ok(Self { seq, ops, tables })
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
    pub(crate) fn get(&self, table: u64, key: &[u8], seq: u64) -> Lookup {
        if seq < self.seq {
            return Lookup::Absent;
        }
        let Some((cmp, range)) = self.table(table) else {
            return Lookup::Absent;
        };
        let ops = &self.ops[range];
        match ops.binary_search_by(|op| compare(cmp, &op.key, key)) {
            Ok(i) => Lookup::Found(ops[i].value.as_deref().map(std::sync::Arc::from)),
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
                ValueBytes::owned(op.key.to_vec()),
                op.value.as_ref().map(|v| ValueBytes::owned(v.to_vec())),
            ))
        };
        Some(match direction {
            Direction::Forward => Box::new(range.map(item)),
            Direction::Backward => Box::new(range.rev().map(item)),
        })
    }
}
