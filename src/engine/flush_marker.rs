//! The record a flush leaves in the tree while it commits durably part way.
//!
//! A flush of a big memtable rewrites most leaves of the tree, and copy on
//! write keeps every page the last durable commit reaches until a newer
//! commit is durable: flushed in one commit, the file held the old tree and
//! the new one at once (a 138 MiB database grew to 256 MiB at each flush).
//! So a flush commits durably every [`flush_commit_bytes`](super::EngineOptions::flush_commit_bytes)
//! of pages written (`engine::apply`), and the leaves it replaced are
//! reused by its next slices.
//!
//! (`M` below may be several frozen memtables flushed in one pass,
//! `engine::apply::flush_oldest`: to this record they are one memtable,
//! whose last sequence is the newest one's.)
//!
//! Such a commit holds part of the memtable `M` in the tree while the
//! commit slot still names the checkpoint before `M` (the WAL is replayed
//! from there, and replaying a key's newest version over itself changes
//! nothing). The entries are right, the counts are not: a table's count in
//! the tree counts what the partial flush put there, and the replayed
//! records (or `M`, for readers of the state published meanwhile) count the
//! same changes again. This marker, a tree of the catalog, says by how much
//! each table's tree count is ahead of its count at the checkpoint, and the
//! last sequence of the memtable being flushed.
//!
//! Invariants:
//! 1. A flush that commits part way starts from a durable tree that holds
//!    exactly the checkpoint (no marker; every earlier flush checkpointed).
//!    So "ahead of the checkpoint" is "ahead of where this flush began".
//! 2. Every durable commit between a flush's start and its end carries the
//!    marker; the flush's last commit (non-durable) deletes it, and a
//!    checkpoint then makes the exact counts durable.
//! 3. Recovery that finds the marker reads counts through it
//!    ([`State::count_ahead`](super::state::State)) and replays the WAL
//!    without freezing a memtable at or below `through`, so the first flush
//!    after the open covers all of `M` and leaves exact counts (it is not a
//!    flush with part commits: a marker in its starting tree forbids that,
//!    invariant 1).
//!    Tables whose records recovery defers (an unknown key order) count by
//!    presence in the tree (`engine::deferred`), so their entries are
//!    dropped from the marker's corrections.
//!
//! Not covered: a WAL repair (`repair_wal`) that discards records of `M`
//! cannot take out of the tree what the part commits already put there;
//! the tree keeps those writes of the discarded commits (repair is the
//! mode that gives up records to open at all).

use std::collections::HashMap;
use std::sync::Arc;

use crate::btree::{Snapshot, TreeWriter, bytewise};
use crate::error::{Result, StorageError};

/// The marker's tree; not 8 bytes long, so never taken for a data tree.
pub(crate) const FLUSH_MARKER_TREE: &[u8] = b"sluice.flushing";

/// The marker's key for `through`; table keys are 8 bytes.
const THROUGH_KEY: &[u8] = b"through";

/// How much each table's tree count is ahead of its count at the durable
/// checkpoint, by table id.
pub(crate) type CountAhead = Arc<HashMap<u64, i64>>;

/// A partly flushed memtable, as the tree records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FlushMarker {
    /// The last sequence of the memtable being flushed.
    pub(crate) through: u64,
    pub(crate) ahead: HashMap<u64, i64>,
}

impl FlushMarker {
    /// Replaces the marker in the writer's next commit.
    pub(crate) fn write(&self, writer: &mut TreeWriter<'_>) -> Result<()> {
        writer.delete_tree(FLUSH_MARKER_TREE)?;
        let entries: Vec<([u8; 8], [u8; 8])> = self
            .ahead
            .iter()
            .map(|(&id, &n)| (id.to_be_bytes(), n.to_le_bytes()))
            .collect();
        let through = self.through.to_le_bytes();
        let mut ops: Vec<(&[u8], Option<&[u8]>)> = entries.iter().map(|(k, v)| (&k[..], Some(&v[..]))).collect();
        ops.push((THROUGH_KEY, Some(&through[..])));
        // `apply` takes its writes in key order.
        ops.sort_unstable_by(|a, b| a.0.cmp(b.0));
        writer.apply(FLUSH_MARKER_TREE, bytewise, &ops)
    }

    /// Deletes the marker in the writer's next commit, if there is one.
    pub(crate) fn clear(writer: &mut TreeWriter<'_>) -> Result<()> {
        writer.delete_tree(FLUSH_MARKER_TREE)?;
        Ok(())
    }

    /// The marker in a tree snapshot, if a flush left one.
    pub(crate) fn load(tree: &Snapshot) -> Result<Option<Self>> {
        let Some(info) = tree.tree(FLUSH_MARKER_TREE)? else {
            return Ok(None);
        };
        let bad = || StorageError::corrupted("malformed flush marker");
        let mut marker = FlushMarker {
            through: 0,
            ahead: HashMap::new(),
        };
        let mut saw_through = false;
        for entry in tree.range(&info, bytewise, std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)? {
            let entry = entry?;
            let value: [u8; 8] = entry.value().as_bytes().try_into().map_err(|_| bad())?;
            if entry.key() == THROUGH_KEY {
                marker.through = u64::from_le_bytes(value);
                saw_through = true;
            } else {
                let id: [u8; 8] = entry.key().try_into().map_err(|_| bad())?;
                marker.ahead.insert(u64::from_be_bytes(id), i64::from_le_bytes(value));
            }
        }
        if !saw_through {
            return Err(bad());
        }
        Ok(Some(marker))
    }
}
