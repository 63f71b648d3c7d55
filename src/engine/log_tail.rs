//! The record, in the data file, of the WAL segments an open must find:
//! what lets an open tell a log that was deleted, emptied or put back from
//! an older copy from one that never had anything to lose.
//!
//! A closed database is its data file alone (the close's checkpoint covers
//! every commit and the WAL is deleted), and after a crash the commits since
//! the checkpoint are only in the WAL. Without a record, an open that finds
//! no segment cannot tell the two apart: a WAL directory deleted, emptied or
//! replaced by an older copy after a crash opened silently without its
//! acknowledged commits (`tests/open_mishaps_review.rs`).
//!
//! The record, a tree of the catalog (like the flush marker), names up to
//! two segments, each by its log id and first sequence:
//! - `tail`: the segment that held the record after the checkpoint when a
//!   checkpoint (or an open) was made, or would hold it next;
//! - `opened`: the segment the last writable open started, where that open
//!   appended its first record (named while the checkpoint lies before it:
//!   an older copy of the WAL, taken before that open, lacks it).
//!
//! Invariants:
//! 1. A named segment exists while a durable commit names it: it is
//!    written (created and synced) before the record names it, and nothing
//!    deletes it while it is named. A checkpoint's truncation keeps it and
//!    every later segment ([`LogTail::keep_from`]); an open records the
//!    segments that survive its recovery before recovery deletes any
//!    (`Journal::recover`, then `RecoveredLog::start`); the close's
//!    retirement of the whole log follows a durable commit that names none.
//! 2. Every acknowledged commit after the durable checkpoint lies in the
//!    `tail` segment or a later one of the log (the segment holding the
//!    first sequence after the checkpoint, or an older one kept with it),
//!    and every commit since the last writable open in the `opened` segment
//!    or a later one. The journal seals each segment it rolls away from
//!    naming the next (`wal::journal`, invariant 9). So an open that does
//!    not find a named segment, with the log id the record gives, or finds
//!    the log's last segment sealed, has lost records the log held: it
//!    refuses, unless the WAL repair option accepts the loss.
//! 3. Other commits carry the record forward unchanged: a stale record
//!    names older segments, which invariant 1 keeps until a checkpoint
//!    names newer ones. Only more of the log is kept meanwhile.
//!
//! Not detected: an older copy of the WAL put back that holds the named
//! segments but not the newest ones, taken since the last open and before
//! the roll that sealed its last segment (or holding a shorter copy of the
//! last segment). A volatile WAL (in memory) keeps no record: after a crash
//! it is always empty.

use crate::btree::{Snapshot, TreeWriter, bytewise};
use crate::error::{Result, StorageError};
use crate::wal::Journal;

/// The record's tree; not 8 bytes long, so never taken for a data tree.
pub(crate) const LOG_TAIL_TREE: &[u8] = b"sluice.log_tail";

/// The key of the `tail` segment.
const TAIL_KEY: &[u8] = b"segment";

/// The key of the `opened` segment.
const OPENED_KEY: &[u8] = b"opened";

/// A WAL segment, by its log's id and the sequence of its first record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) log_id: u32,
    pub(crate) first_seq: u64,
}

impl Segment {
    /// The segment of `journal` that holds record `seq`, or will hold it
    /// next.
    pub(crate) fn holding(journal: &Journal, seq: u64) -> Result<Option<Self>> {
        Ok(journal.segment_holding(seq)?.map(Self::from_pair))
    }

    /// The segment `(log_id, first_seq)`, as the journal gives them.
    pub(crate) fn from_pair((log_id, first_seq): (u32, u64)) -> Self {
        Self { log_id, first_seq }
    }

    fn encode(self) -> [u8; 12] {
        let mut value = [0u8; 12];
        value[..4].copy_from_slice(&self.log_id.to_le_bytes());
        value[4..].copy_from_slice(&self.first_seq.to_le_bytes());
        value
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let bytes: [u8; 12] = bytes
            .try_into()
            .map_err(|_| StorageError::corrupted("malformed WAL segment record"))?;
        let (id, first) = bytes.split_at(4);
        Ok(Self {
            log_id: u32::from_le_bytes(id.try_into().expect("4 bytes")),
            first_seq: u64::from_le_bytes(first.try_into().expect("8 bytes")),
        })
    }
}

/// The segments the data file names (the module's record).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LogTail {
    pub(crate) tail: Option<Segment>,
    pub(crate) opened: Option<Segment>,
}

impl LogTail {
    /// The record in a tree snapshot (none named if none recorded).
    pub(crate) fn load(tree: &Snapshot) -> Result<Self> {
        let Some(info) = tree.tree(LOG_TAIL_TREE)? else {
            return Ok(Self::default());
        };
        let named = |key| -> Result<Option<Segment>> {
            tree.get(&info, bytewise, key)?
                .map(|entry| Segment::decode(entry.as_bytes()))
                .transpose()
        };
        Ok(Self {
            tail: named(TAIL_KEY)?,
            opened: named(OPENED_KEY)?,
        })
    }

    /// The named segments, `tail` first.
    pub(crate) fn segments(&self) -> impl Iterator<Item = Segment> {
        self.tail.into_iter().chain(self.opened)
    }

    /// Records `self` in the writer's next commit.
    pub(crate) fn write(&self, writer: &mut TreeWriter<'_>) -> Result<()> {
        if *self == Self::default() {
            writer.delete_tree(LOG_TAIL_TREE)?;
            return Ok(());
        }
        let (tail, opened) = (self.tail.map(Segment::encode), self.opened.map(Segment::encode));
        // In key order: "opened" < "segment".
        let ops: [(&[u8], Option<&[u8]>); 2] = [
            (OPENED_KEY, opened.as_ref().map(|v| &v[..])),
            (TAIL_KEY, tail.as_ref().map(|v| &v[..])),
        ];
        writer.apply(LOG_TAIL_TREE, bytewise, &ops)
    }

    /// The record after a checkpoint whose next record lies in `tail`:
    /// `opened` is dropped once the tail reaches it (the tail then proves
    /// what it proved).
    pub(crate) fn after_checkpoint(&self, tail: Option<Segment>) -> Self {
        let opened = self
            .opened
            .filter(|opened| tail.is_some_and(|tail| tail.first_seq < opened.first_seq));
        Self { tail, opened }
    }

    /// The first sequence of the oldest segment a checkpoint's truncation
    /// must keep for the record (invariant 1); `None` keeps none in
    /// particular.
    pub(crate) fn keep_from(&self) -> Option<u64> {
        self.segments().map(|segment| segment.first_seq).min()
    }
}
