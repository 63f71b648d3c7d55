//! What recovery learns while it replays the WAL: each table's key order
//! where byte order is enough, and the records of the tables whose order
//! only their key type knows (see `engine::deferred`).
//!
//! Recovery never needs the caller's key types: a record of a table whose
//! order is unknown is *deferred*, not refused and never put in byte order.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use super::id_hash::IdMap;
use super::batch::{Batch, DataOp};
use super::core::Resolver;
use super::deferred::{DeferredOp, DeferredTable, decode_staged, encode_staged, staging_table_id, staging_tree_name};
use super::state::{TABLES_TREE, decode_def};
use crate::btree::{Comparator, Snapshot, TreeStore, bytewise};
use crate::error::{Result, StorageError};

pub(crate) struct Recovered {
    resolver: Resolver,
    /// Metadata of every table known so far, by id.
    metas: HashMap<u64, Vec<u8>>,
    /// Key orders known from metadata alone (byte-ordered tables).
    pub(crate) comparators: IdMap<Comparator>,
    /// Deferred records by table, in commit order: first those staged in
    /// the data file by an earlier open, then the WAL's.
    deferred: BTreeMap<u64, Vec<DeferredOp>>,
    /// Per table, the highest sequence its staging tree already holds: the
    /// WAL's records up to it are not deferred twice.
    staged_through: HashMap<u64, u64>,
}

impl Recovered {
    /// Reads the table map and the staging trees of the last checkpoint.
    pub(crate) fn load(tree: &Snapshot, resolver: Resolver) -> Result<Self> {
        let mut metas = HashMap::new();
        if let Some(info) = tree.tree(TABLES_TREE)? {
            for entry in tree.range(&info, bytewise, Bound::Unbounded, Bound::Unbounded)? {
                let def = decode_def(entry?.value().as_bytes())?;
                metas.insert(def.id, def.meta.to_vec());
            }
        }
        let mut deferred: BTreeMap<u64, Vec<DeferredOp>> = BTreeMap::new();
        for (name, info) in tree.list_trees()? {
            let Some(id) = staging_table_id(&name) else { continue };
            let ops = deferred.entry(id).or_default();
            for entry in tree.range(&info, bytewise, Bound::Unbounded, Bound::Unbounded)? {
                let entry = entry?;
                ops.push(decode_staged(entry.key(), entry.value().as_bytes())?);
            }
        }
        let staged_through = deferred
            .iter()
            .map(|(&id, ops)| (id, ops.last().map_or(0, |op| op.seq)))
            .collect();
        Ok(Self {
            resolver,
            metas,
            comparators: IdMap::default(),
            deferred,
            staged_through,
        })
    }

    /// Takes one replayed batch: learns its table definitions, defers the
    /// writes to tables of unknown order, and returns the rest, which every
    /// have a comparator in `self.comparators`.
    pub(crate) fn route(&mut self, seq: u64, mut batch: Batch) -> Result<Batch> {
        for def in batch.bindings.iter().filter_map(|(_, d)| d.as_ref()) {
            self.metas.insert(def.id, def.meta.to_vec());
        }
        for id in &batch.dropped {
            // Its data is gone, deferred records included; the flush that
            // drops its tree deletes its staging tree.
            self.deferred.remove(id);
            self.staged_through.remove(id);
        }
        let ops = std::mem::take(&mut batch.ops);
        for op in ops {
            if self.order(seq, &op)?.is_some() {
                batch.ops.push(op);
            } else if seq > self.staged_through.get(&op.table).copied().unwrap_or(0) {
                self.deferred.entry(op.table).or_default().push(DeferredOp {
                    seq,
                    key: op.key.to_vec(),
                    value: op.value.map(|v| v.to_vec()),
                });
            }
        }
        // A deferred table's count is its tree's plus its overlay's (counted
        // against the tree when first read), never the memtable's.
        let deferred = &self.deferred;
        batch.counts.retain(|(table, _)| !deferred.contains_key(table));
        Ok(batch)
    }

    /// The key order of `op`'s table, if its metadata alone gives it.
    fn order(&mut self, seq: u64, op: &DataOp) -> Result<Option<Comparator>> {
        if let Some(&cmp) = self.comparators.get(&op.table) {
            return Ok(Some(cmp));
        }
        let meta = self
            .metas
            .get(&op.table)
            .ok_or_else(|| StorageError::corrupted(format!("WAL record {seq} writes to unknown table {}", op.table)))?;
        let cmp = (self.resolver)(meta);
        if let Some(cmp) = cmp {
            self.comparators.insert(op.table, cmp);
        }
        Ok(cmp)
    }

    /// Writes the deferred records that only the WAL holds into their
    /// tables' staging trees, in one durable commit that keeps the
    /// checkpoint sequence where it is.
    pub(crate) fn stage(&mut self, trees: &TreeStore, checkpoint: u64) -> Result<()> {
        let mut fresh = self.deferred.iter().filter_map(|(&id, ops)| {
            let through = self.staged_through.get(&id).copied().unwrap_or(0);
            let start = ops.partition_point(|op| op.seq <= through);
            (start < ops.len()).then(|| (id, &ops[start..]))
        });
        let Some(first) = fresh.next() else {
            return Ok(());
        };
        let mut writer = trees.writer()?;
        for (id, ops) in std::iter::once(first).chain(fresh) {
            let mut entries = Vec::with_capacity(ops.len());
            let mut index = 0u32;
            for (i, op) in ops.iter().enumerate() {
                index = if i > 0 && ops[i - 1].seq == op.seq {
                    index + 1
                } else {
                    0
                };
                entries.push(encode_staged(op.seq, index, op));
            }
            let entries: Vec<(&[u8], Option<&[u8]>)> = entries.iter().map(|(k, v)| (&k[..], Some(&v[..]))).collect();
            writer.apply(&staging_tree_name(id), bytewise, &entries)?;
        }
        writer.commit(checkpoint)?;
        for (id, ops) in &self.deferred {
            self.staged_through.insert(*id, ops.last().map_or(0, |op| op.seq));
        }
        Ok(())
    }

    /// The deferred tables, for the first state.
    pub(crate) fn deferred_tables(&mut self) -> HashMap<u64, Arc<DeferredTable>> {
        std::mem::take(&mut self.deferred)
            .into_iter()
            .filter(|(_, ops)| !ops.is_empty())
            .map(|(id, ops)| (id, Arc::new(DeferredTable::new(ops))))
            .collect()
    }
}
