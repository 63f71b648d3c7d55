//! The recovery reader: iterates the records after a given sequence number,
//! in order, across segments, and stops at the first record that is torn,
//! damaged or out of sequence. A record behind a bad one is never returned.

use crate::error::{Result, StorageError};
use crate::io::{LogDir, StorageBackend};

use super::record::{Decoded, HeaderError, SEGMENT_HEADER_LEN, SegmentHeader, WAL_VERSION, decode_record};
use super::segment::list_segments;

/// Why the reader stopped before the end of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The log ends inside a record (a torn write).
    Truncated,
    /// A record's checksum fails (torn, zero-filled or damaged bytes).
    Corrupt,
    /// A valid record carries an unexpected sequence number.
    OutOfOrder {
        /// The sequence number expected.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// A segment's header is damaged (a crash while creating it).
    BadHeader(String),
    /// The next segment does not continue the sequence.
    Gap {
        /// The sequence number expected.
        expected: u64,
        /// The next segment's first sequence number.
        found: u64,
    },
}

/// Where the reader stopped, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stop {
    /// The segment file.
    pub segment: String,
    /// Byte offset of the first bad byte in it.
    pub offset: u64,
    /// Why.
    pub reason: StopReason,
}

/// What the reader found: the segments to keep, the sequence to continue
/// from, and the files to discard because they lie past the stop point.
#[derive(Debug, Default)]
pub(crate) struct LogEnd {
    /// The last valid record's sequence number (0 if none).
    pub(crate) last_seq: u64,
    /// Segments holding valid records, as `(first_seq, name)`.
    pub(crate) keep: Vec<(u64, String)>,
    /// Segments after the stop point, or holding no valid record.
    pub(crate) discard: Vec<String>,
    /// Segments wholly at or below the checkpoint, not read (their delete
    /// failed or a crash interrupted it), as `(first_seq, name)`.
    pub(crate) obsolete: Vec<(u64, String)>,
    pub(crate) stop: Option<Stop>,
}

/// Reads every valid record of the log in `dir`, calling `visit` for those
/// after `after` in sequence order.
pub(crate) fn read_log(
    dir: &dyn LogDir,
    db_id: u128,
    after: u64,
    mut visit: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<LogEnd> {
    let mut segments = list_segments(dir)?;
    let mut end = LogEnd::default();
    // Segment i holds records first_i..first_{i+1}-1, so a segment followed
    // by one starting at or below `after + 1` holds nothing after the
    // checkpoint. Such leftovers (a failed or interrupted delete, see
    // `Journal::truncate_through`) are not read: damage in them, or a gap
    // between them, loses nothing.
    let start = segments
        .iter()
        .rposition(|&(first, _)| first <= after.saturating_add(1))
        .unwrap_or(0);
    end.obsolete = segments.drain(..start).collect();
    // The sequence the next record must carry; set by the first segment.
    let mut expected: Option<u64> = None;
    let mut segments = segments.into_iter();
    for (first_seq, name) in segments.by_ref() {
        let stop = |offset, reason| Stop {
            segment: name.clone(),
            offset,
            reason,
        };
        if let Some(want) = expected.filter(|&want| want != first_seq) {
            end.stop = Some(stop(
                0,
                StopReason::Gap {
                    expected: want,
                    found: first_seq,
                },
            ));
            end.discard.push(name.clone());
            break;
        }
        // This segment continues the log: an earlier stop was not the end.
        end.stop = None;
        let file = dir.open(&name)?;
        let mut bytes = SegmentBytes::new(file.as_ref())?;
        let header = match SegmentHeader::decode(bytes.get(0, SEGMENT_HEADER_LEN)?) {
            Ok(header) => header,
            Err(HeaderError::Version(v)) => {
                return Err(StorageError::corrupted(format!(
                    "WAL segment {name} has format version {v}; this build reads version {WAL_VERSION}"
                )));
            }
            Err(HeaderError::Invalid(why)) => {
                end.stop = Some(stop(0, StopReason::BadHeader(why.to_string())));
                end.discard.push(name.clone());
                break;
            }
        };
        if header.db_id != db_id {
            return Err(StorageError::corrupted(format!(
                "WAL segment {name} belongs to another database (id {:#x}, expected {db_id:#x})",
                header.db_id
            )));
        }
        if header.first_seq != first_seq {
            return Err(StorageError::corrupted(format!(
                "WAL segment {name} says it starts at sequence {}",
                header.first_seq
            )));
        }
        if first_seq > after.saturating_add(1) && expected.is_none() {
            return Err(StorageError::corrupted(format!(
                "WAL records {}..{first_seq} are missing: the oldest segment starts after the checkpoint",
                after.saturating_add(1)
            )));
        }
        let mut next = first_seq;
        let mut pos = SEGMENT_HEADER_LEN;
        let mut stopped = None;
        while pos < bytes.len {
            let truncated = match decode_record(bytes.loaded(pos), next) {
                Decoded::Record { seq, payload, len } => {
                    if seq > after {
                        visit(seq, payload)?;
                    }
                    // A number from disk: checked, never wrapped (u64::MAX
                    // is never assigned; see `Journal::append`).
                    next = seq.checked_add(1).ok_or_else(|| {
                        StorageError::corrupted(format!(
                            "WAL segment {name} at offset {pos} holds sequence number {seq}, past the largest assignable"
                        ))
                    })?;
                    pos += len;
                    false
                }
                Decoded::Truncated => true,
                Decoded::Corrupt => {
                    stopped = Some(StopReason::Corrupt);
                    false
                }
                Decoded::OutOfOrder { seq } => {
                    stopped = Some(StopReason::OutOfOrder {
                        expected: next,
                        found: seq,
                    });
                    false
                }
            };
            // A record cut off by the end of what is loaded may continue in
            // the file; cut off by the end of the file, it is torn.
            if truncated && !bytes.load_more()? {
                stopped = Some(StopReason::Truncated);
            }
            if stopped.is_some() {
                // A zero tail is space preallocated and never written (or
                // written and lost to a crash: no sync covered it, so no
                // record in it was acknowledged): the segment ends here.
                if bytes.zeros_from(pos)? {
                    stopped = None;
                }
                break;
            }
        }
        if next > first_seq {
            end.last_seq = next - 1;
            end.keep.push((first_seq, name.clone()));
        } else {
            end.discard.push(name.clone());
        }
        expected = Some(next);
        if let Some(reason) = stopped {
            // Only a fresh segment that continues exactly where this one's
            // valid records end may follow a bad tail; it was started by an
            // earlier recovery that stopped here too.
            end.stop = Some(stop(pos as u64, reason));
        }
    }
    end.discard.extend(segments.map(|(_, name)| name));
    Ok(end)
}

/// A segment's bytes, loaded from the front as the reader needs them: a
/// preallocated segment is mostly an unwritten (sparse) tail, and reading
/// it whole would cost every reopen tens of milliseconds of zeros.
struct SegmentBytes<'a> {
    file: &'a dyn StorageBackend,
    /// The file's length.
    len: usize,
    /// Its first `loaded.len()` bytes.
    loaded: Vec<u8>,
}

/// Bytes loaded by the first read of a segment; each later read doubles it.
const FIRST_LOAD: usize = 1 << 20;

/// How far past the last record a zero tail is checked (see `zeros_from`).
const ZERO_TAIL_PROBE: usize = 64 << 10;

impl<'a> SegmentBytes<'a> {
    fn new(file: &'a dyn StorageBackend) -> Result<Self> {
        let len =
            usize::try_from(file.len()?).map_err(|_| StorageError::corrupted("a WAL segment larger than memory"))?;
        let mut bytes = Self {
            file,
            len,
            loaded: Vec::new(),
        };
        bytes.load_to(FIRST_LOAD)?;
        Ok(bytes)
    }

    fn load_to(&mut self, want: usize) -> Result<()> {
        let want = want.min(self.len);
        let have = self.loaded.len();
        if want > have {
            self.loaded.resize(want, 0);
            self.file.read(have as u64, &mut self.loaded[have..])?;
        }
        Ok(())
    }

    /// Loads twice as much; `false` if the whole file is already loaded.
    fn load_more(&mut self) -> Result<bool> {
        if self.loaded.len() >= self.len {
            return Ok(false);
        }
        self.load_to(self.loaded.len() * 2)?;
        Ok(true)
    }

    /// `len` bytes from `at`, loading them if needed (fewer at the end).
    fn get(&mut self, at: usize, len: usize) -> Result<&[u8]> {
        self.load_to(at + len)?;
        Ok(&self.loaded[at.min(self.loaded.len())..(at + len).min(self.loaded.len())])
    }

    /// The loaded bytes from `at` on.
    fn loaded(&self, at: usize) -> &[u8] {
        &self.loaded[at.min(self.loaded.len())..]
    }

    /// Whether the segment holds only zeros from `at`: checked through the
    /// end of what is loaded and at least [`ZERO_TAIL_PROBE`] bytes further,
    /// not to the end of a preallocated file. A tail of zeros with damage
    /// far beyond it is treated as the end, like the zeros themselves: the
    /// records replayed are the same either way; only the report differs.
    fn zeros_from(&mut self, at: usize) -> Result<bool> {
        let end = (at + ZERO_TAIL_PROBE).max(self.loaded.len());
        Ok(self.get(at, end - at)?.iter().all(|&b| b == 0))
    }
}
