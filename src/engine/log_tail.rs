//! The record, in the data file, of the WAL segment that holds the commits
//! after the checkpoint: what lets an open tell a log that was deleted from
//! one that never had anything to lose.
//!
//! A closed database is its data file alone (the close's checkpoint covers
//! every commit and the WAL is deleted), and after a crash the commits since
//! the checkpoint are only in the WAL. Without a record, an open that finds
//! no segment cannot tell the two apart: a WAL directory deleted, emptied or
//! replaced by an older copy after a crash opened silently without its
//! acknowledged commits (`tests/open_mishaps_review.rs`).
//!
//! The record, a tree of the catalog (like the flush marker), names one
//! segment by its log id and first sequence: the segment that held the
//! record after the checkpoint when a checkpoint was made (`None`: no
//! segment held one, or the close retired the log).
//!
//! Invariants:
//! 1. The named segment exists while a durable commit names it: it is
//!    written (created and synced) before the record names it, and the
//!    journal never deletes it while it is named: a checkpoint's
//!    `truncate_through` keeps it and every later segment
//!    ([`LogTail::keep_from`]), and the close's retirement of the whole log
//!    follows a durable commit that names none.
//! 2. Every acknowledged commit after the durable checkpoint lies in the
//!    named segment or a later one of the same log (the segment holding the
//!    first sequence after the checkpoint, or an older one kept with it).
//!    So an open that does not find the named segment, with the log id the
//!    record gives, has lost records the log held: it refuses, unless the
//!    WAL repair option accepts the loss.
//! 3. Other commits carry the record forward unchanged: a stale record
//!    names an older segment, which invariant 1 keeps until a checkpoint
//!    names a newer one. Only more of the log is kept meanwhile.
//!
//! Not detected: the named segment kept and a later one deleted (the newest
//! segment, say); the log ends there as a crash could end it. A volatile WAL
//! (in memory) keeps no record: after a crash it is always empty.

use crate::btree::{Snapshot, TreeWriter, bytewise};
use crate::error::{Result, StorageError};
use crate::wal::Journal;

/// The record's tree; not 8 bytes long, so never taken for a data tree.
pub(crate) const LOG_TAIL_TREE: &[u8] = b"sluice.log_tail";

/// The record's one key.
const SEGMENT_KEY: &[u8] = b"segment";

/// A WAL segment, by its log's id and the sequence of its first record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LogTail {
    pub(crate) log_id: u32,
    pub(crate) first_seq: u64,
}

impl LogTail {
    /// The record in a tree snapshot (`None`: none recorded).
    pub(crate) fn load(tree: &Snapshot) -> Result<Option<Self>> {
        let Some(info) = tree.tree(LOG_TAIL_TREE)? else {
            return Ok(None);
        };
        let Some(entry) = tree.get(&info, bytewise, SEGMENT_KEY)? else {
            return Ok(None);
        };
        let bytes: [u8; 12] = entry
            .as_bytes()
            .try_into()
            .map_err(|_| StorageError::corrupted("malformed WAL segment record"))?;
        let (id, first) = bytes.split_at(4);
        Ok(Some(Self {
            log_id: u32::from_le_bytes(id.try_into().expect("4 bytes")),
            first_seq: u64::from_le_bytes(first.try_into().expect("8 bytes")),
        }))
    }

    /// Records `tail` (`None`: no segment) in the writer's next commit.
    pub(crate) fn write(tail: Option<Self>, writer: &mut TreeWriter<'_>) -> Result<()> {
        match tail {
            Some(tail) => {
                let mut value = [0u8; 12];
                value[..4].copy_from_slice(&tail.log_id.to_le_bytes());
                value[4..].copy_from_slice(&tail.first_seq.to_le_bytes());
                writer.apply(LOG_TAIL_TREE, bytewise, &[(SEGMENT_KEY, Some(&value[..]))])
            }
            None => {
                writer.delete_tree(LOG_TAIL_TREE)?;
                Ok(())
            }
        }
    }

    /// The segment of `journal` that holds the record after `checkpoint`,
    /// or will hold it next (the one a checkpoint at `checkpoint` names).
    pub(crate) fn after(journal: &Journal, checkpoint: u64) -> Result<Option<Self>> {
        Ok(journal
            .segment_holding(checkpoint.saturating_add(1))?
            .map(|(log_id, first_seq)| Self { log_id, first_seq }))
    }

    /// The first sequence of the oldest segment a checkpoint's truncation
    /// must keep for `tail` (invariant 1); `None` keeps none in particular.
    pub(crate) fn keep_from(tail: Option<Self>) -> Option<u64> {
        tail.map(|tail| tail.first_seq)
    }
}
