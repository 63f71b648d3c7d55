//! Segment files: naming, listing, and the active segment being appended to.

use crate::error::{Result, StorageError};
use crate::io::{LogDir, StorageBackend};

use super::reader::Owner;
use super::record::SegmentHeader;

const SUFFIX: &str = ".wal";

/// The name a spare segment is written under (see `LogDir::spare_segments`):
/// not a segment's name, so recovery never reads it.
pub(crate) const SPARE_NAME: &str = "next-segment.spare";

/// A segment's file name: its first sequence number, zero-padded so names
/// sort in sequence order.
pub(crate) fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}{SUFFIX}")
}

/// The first sequence number a segment's name gives, if it is a segment name.
pub(crate) fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    (digits.len() == 20).then(|| digits.parse().ok()).flatten()
}

/// The segment files in `dir` as `(first_seq, name)`, in sequence order.
/// Files with other names are not ours and are left alone.
pub(crate) fn list_segments(dir: &dyn LogDir) -> Result<Vec<(u64, String)>> {
    let mut segments: Vec<(u64, String)> = dir
        .list()?
        .into_iter()
        .filter_map(|name| parse_name(&name).map(|seq| (seq, name)))
        .collect();
    segments.sort();
    Ok(segments)
}

/// The segment being appended to. Owned by the journal's I/O state.
pub(crate) struct ActiveSegment {
    pub(crate) file: Box<dyn StorageBackend>,
    /// Bytes written so far (header included); the next write goes here.
    pub(crate) len: u64,
    /// The size it was preallocated to: the journal starts the next segment
    /// before a write would pass it.
    pub(crate) capacity: u64,
}

impl ActiveSegment {
    /// Creates the segment whose first record will be `first_seq`, writes
    /// its header, preallocates it to `size` bytes, so that appends inside
    /// it never change the file's size (cheaper syncs; the reader ends a
    /// segment at its zero tail), and syncs it.
    ///
    /// Invariant (journal invariant 6): a segment's header is durable before
    /// any record is written to it. So a crash can leave a segment with a
    /// torn header only with no record behind it, and recovery may treat a
    /// valid record behind a bad header as damage, not as a crash (see
    /// `reader::search_past_segment`). One extra sync per segment.
    pub(crate) fn create(dir: &dyn LogDir, owner: Owner, first_seq: u64, size: u64) -> Result<Self> {
        let name = segment_name(first_seq);
        let file = match dir.create(&name) {
            // Only an interrupted create of this same segment leaves this
            // name behind: the journal names a new segment after its last
            // written record, recovery deletes any segment with no valid
            // record, and a panic between the `create` below and this
            // function's return (a degraded journal then retries) leaves the
            // file. No record was ever written to it (records are written
            // after this returns), so it is replaced.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                dir.remove(&name)?;
                dir.create(&name)?
            }
            created => created?,
        };
        Self::start(file, owner, first_seq, size)
    }

    /// Makes the spare `file` (named [`SPARE_NAME`], `capacity` bytes of
    /// durable zeros) the segment whose first record will be `first_seq`:
    /// renames it, writes its header and syncs it, as
    /// [`create`](Self::create) does a new file (journal invariant 8; the
    /// rename replaces a leftover of an interrupted creation of this same
    /// segment, which holds no record). Appends then fill blocks already
    /// written, whose syncs record no allocation.
    pub(crate) fn from_spare(
        dir: &dyn LogDir,
        owner: Owner,
        first_seq: u64,
        file: Box<dyn StorageBackend>,
        capacity: u64,
    ) -> Result<Self> {
        dir.rename(SPARE_NAME, &segment_name(first_seq))?;
        Self::start(file, owner, first_seq, capacity)
    }

    /// Writes segment `first_seq`'s header into `file`, extends the file to
    /// `capacity` bytes if it is shorter (a spare already is that size), and
    /// syncs both (invariant 6).
    fn start(file: Box<dyn StorageBackend>, owner: Owner, first_seq: u64, capacity: u64) -> Result<Self> {
        let header = SegmentHeader {
            db_id: owner.db_id,
            log_id: owner.log_id,
            first_seq,
        }
        .encode();
        file.write(0, &header)?;
        file.preallocate(capacity)?;
        file.sync_data()?;
        Ok(Self {
            file,
            len: header.len() as u64,
            capacity,
        })
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.file.write(self.len, bytes).map_err(StorageError::Io)?;
        self.len += bytes.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_sequence_and_foreign_files_are_ignored() {
        assert_eq!(segment_name(42), "00000000000000000042.wal");
        assert_eq!(parse_name(&segment_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_name("42.wal"), None);
        assert_eq!(parse_name("00000000000000000042.tmp"), None);
    }
}
