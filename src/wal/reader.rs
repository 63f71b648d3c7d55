//! The recovery reader: iterates the records after a given sequence number,
//! in order, across segments, and stops at the first record that is torn,
//! damaged or out of sequence. A record behind a bad one is never returned;
//! the reader searches for one, to tell a torn tail (none: the expected end
//! of a crash) from damage in the middle of the log (some: corruption, for
//! the journal to refuse or, asked to, repair).

use crate::error::{Result, StorageError};
use crate::io::{LogDir, StorageBackend};

use super::record::{
    Decoded, HeaderError, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN, OLDEST_WAL_VERSION, SegmentHeader, WAL_VERSION, decode_any, decode_record,
};
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

/// A valid record found past the point where reading stopped: proof that the
/// log was damaged in the middle, not torn at its end (a torn write leaves
/// only a prefix of its records, then garbage or zeros; bit rot leaves valid
/// records behind the damage).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaterRecord {
    /// The segment file holding it.
    pub segment: String,
    /// Its byte offset there (0 for a segment whose header alone proves
    /// that earlier records were durable).
    pub offset: u64,
    /// Its sequence number (for a header, the segment's first).
    pub seq: u64,
}

/// What the reader found: the segments to keep, the sequence to continue
/// from, and the files to discard because they lie past the stop point.
#[derive(Debug, Default)]
pub(crate) struct LogEnd {
    /// The last valid record's sequence number (0 if none).
    pub(crate) last_seq: u64,
    /// Bytes of the records passed to `visit` (headers included).
    pub(crate) replayed_bytes: u64,
    /// Segments holding valid records, as `(first_seq, name)`.
    pub(crate) keep: Vec<(u64, String)>,
    /// Segments after the stop point, or holding no valid record.
    pub(crate) discard: Vec<String>,
    /// Segments wholly at or below the checkpoint, not read (their delete
    /// failed or a crash interrupted it), as `(first_seq, name)`.
    pub(crate) obsolete: Vec<(u64, String)>,
    pub(crate) stop: Option<Stop>,
    /// The first valid record past the stop: mid-log corruption.
    pub(crate) later: Option<LaterRecord>,
    /// Valid records past the stop point (none for a torn tail).
    pub(crate) discarded_records: u64,
    /// Bytes past the stop point that are not zero fill.
    pub(crate) discarded_bytes: u64,
    /// A kept segment with bytes past the stop point, and the offset where
    /// its valid records end: where a repair cuts it.
    pub(crate) cut: Option<(String, u64)>,
    /// The seal that ends the segment holding the last valid record, if it
    /// has one: the log went on in the segment it names.
    pub(crate) seal: Option<Seal>,
}

/// A seal found at the end of a segment (`record`, seal): the segment the
/// log went on in, which the journal made durable before the seal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Seal {
    /// The sealed segment's file.
    pub(crate) segment: String,
    /// The seal's byte offset there: where cutting it off leaves the
    /// segment's records and nothing after them.
    pub(crate) offset: u64,
    /// The next segment's first sequence number (its name's).
    pub(crate) next: u64,
    /// The log id the next segment records.
    pub(crate) log_id: u32,
    /// Whether the named segment is in the directory.
    pub(crate) next_listed: bool,
}

/// Whose log a reader accepts: segments of this database (`db_id`, from
/// the data file's header) and of the log its commits continue in or the
/// one before it (`log_id`, `previous_log_id`, from its newest commit slot;
/// a `log_id` of 0 accepts any, as does a segment that records none).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Owner {
    pub(crate) db_id: u128,
    /// The log new segments record.
    pub(crate) log_id: u32,
    pub(crate) previous_log_id: u32,
}

impl Owner {
    /// The owner of database `db_id`'s log with ids `(current, previous)`.
    pub(crate) fn new(db_id: u128, (log_id, previous_log_id): (u32, u32)) -> Self {
        Self {
            db_id,
            log_id,
            previous_log_id,
        }
    }

    /// Whether a segment that records `log_id` belongs to another log.
    fn refuses(&self, log_id: u32) -> bool {
        log_id != 0 && self.log_id != 0 && log_id != self.log_id && log_id != self.previous_log_id
    }
}

/// Reads every valid record of the log in `dir`, calling `visit` for those
/// after `after` in sequence order, and classifies whatever follows the last
/// one (see `design/wal.md`, Recovery).
pub(crate) fn read_log(
    dir: &dyn LogDir,
    owner: Owner,
    after: u64,
    mut visit: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<LogEnd> {
    let mut segments = list_segments(dir)?;
    let listed: Vec<u64> = segments.iter().map(|&(first, _)| first).collect();
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
    // Segments past the stop point, to search for later records.
    let mut past = Vec::new();
    let mut segments = segments.into_iter();
    for (first_seq, name) in segments.by_ref() {
        let stop = |offset, reason| Stop {
            segment: name.clone(),
            offset,
            reason,
        };
        if let Some(want) = expected.filter(|&want| want != first_seq) {
            if end.stop.is_none() {
                end.stop = Some(stop(
                    0,
                    StopReason::Gap {
                        expected: want,
                        found: first_seq,
                    },
                ));
            }
            past.push(name);
            break;
        }
        // This segment continues the log exactly where the valid records
        // end: it was started by an earlier recovery that stopped at the
        // same point, so that tail (already searched: no later record in
        // it) was discarded then, not now.
        end.stop = None;
        end.cut = None;
        end.discarded_bytes = 0;
        let file = dir.open(&name)?;
        let mut bytes = SegmentBytes::new(file.as_ref())?;
        let foreign = match check_header(&mut bytes, &name, first_seq, owner)? {
            Ok(foreign) => foreign,
            Err(why) => {
                end.stop = Some(stop(0, StopReason::BadHeader(why.to_string())));
                expected.get_or_insert(first_seq);
                past.push(name);
                break;
            }
        };
        if first_seq > after.saturating_add(1) && expected.is_none() {
            return Err(StorageError::corrupted(format!(
                "WAL records {}..{first_seq} are missing: the oldest segment starts after the checkpoint",
                after.saturating_add(1)
            )));
        }
        let mut next = first_seq;
        let mut pos = SEGMENT_HEADER_LEN;
        let mut stopped = None;
        let mut seal = None;
        while pos < bytes.len {
            let truncated = match decode_record(bytes.loaded(pos), next) {
                Decoded::Record { seq, payload, len } => {
                    if seq > after {
                        if let Some(found) = foreign {
                            return Err(foreign_log(&name, found, owner));
                        }
                        visit(seq, payload)?;
                        end.replayed_bytes += len as u64;
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
                // The segment ends here; whatever follows the seal in the
                // file is not the log's.
                Decoded::Seal { log_id } => {
                    seal = Some(Seal {
                        segment: name.clone(),
                        offset: pos as u64,
                        next,
                        log_id,
                        next_listed: listed.binary_search(&next).is_ok(),
                    });
                    break;
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
            end.seal = seal;
        } else {
            end.discard.push(name.clone());
        }
        expected = Some(next);
        if let Some(reason) = stopped {
            end.stop = Some(stop(pos as u64, reason));
            // Torn or damaged? Only this error path reads the rest of the
            // segment: a valid record behind the bad one means damage.
            let found = bytes.search(pos, next, &name)?;
            end.discarded_records += found.records;
            end.discarded_bytes += found.data_end.saturating_sub(pos) as u64;
            if next > first_seq {
                end.cut = Some((name.clone(), pos as u64));
            }
            if found.first.is_some() {
                end.later = found.first;
                break;
            }
        }
    }
    past.extend(segments.map(|(_, name)| name));
    let want = expected.unwrap_or(0);
    for name in past {
        search_past_segment(dir, owner, &name, want, &mut end)?;
        end.discard.push(name);
    }
    Ok(end)
}

/// Checks a segment's header: `Ok(Err(why))` if it is not (or no longer) a
/// valid header, an error if it is valid but of another database, of
/// another format or misnamed; `Ok(Ok(foreign))` otherwise, `foreign` when
/// it belongs to another log of this database ([`foreign_log`]).
fn check_header(
    bytes: &mut SegmentBytes<'_>,
    name: &str,
    first_seq: u64,
    owner: Owner,
) -> Result<std::result::Result<Option<u32>, &'static str>> {
    let db_id = owner.db_id;
    let header = match SegmentHeader::decode(bytes.get(0, SEGMENT_HEADER_LEN)?) {
        Ok(header) => header,
        Err(HeaderError::Version(v)) => {
            return Err(StorageError::corrupted(format!(
                "WAL segment {name} has format version {v}; this build reads versions {OLDEST_WAL_VERSION} to {WAL_VERSION}"
            )));
        }
        Err(HeaderError::Invalid(why)) => return Ok(Err(why)),
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
    Ok(Ok(owner.refuses(header.log_id).then_some(header.log_id)))
}

/// The error for a record after the checkpoint in a segment of log
/// `found`, where the data file continues log `owner.log_id` (after
/// `owner.previous_log_id`): another copy
/// of this data file wrote it (`design/wal.md`, "Log identity"). Only such
/// a record is refused: a segment of another log holding nothing after the
/// checkpoint (a delete whose directory sync was lost, brought back by a
/// crash; a copy's leftover) adds nothing, and is deleted as any leftover.
fn foreign_log(name: &str, found: u32, owner: Owner) -> StorageError {
    StorageError::corrupted(format!(
        "WAL segment {name} belongs to another copy of this database (log {found:#010x}; the data file \
         continues log {:#010x}): the data file was replaced by a copy that was written elsewhere; \
         move the WAL directory away to open the data file alone",
        owner.log_id
    ))
}

/// Searches a segment past the stop point for records at or after `want`.
/// A valid header alone is proof: a segment is created only once every
/// record before it is durable (journal invariant 4), and its header is
/// durable before any record is written to it (invariant 6).
fn search_past_segment(dir: &dyn LogDir, owner: Owner, name: &str, want: u64, end: &mut LogEnd) -> Result<()> {
    let file = dir.open(name)?;
    let mut bytes = SegmentBytes::new(file.as_ref())?;
    let first_seq = super::segment::parse_name(name).unwrap_or(0);
    // Past the stop, so its records would come after the checkpoint.
    let valid_header = match check_header(&mut bytes, name, first_seq, owner)? {
        Ok(Some(found)) => return Err(foreign_log(name, found, owner)),
        Ok(None) => true,
        Err(_) => false,
    };
    // Its records start at its first sequence number (its name's).
    let found = bytes.search(SEGMENT_HEADER_LEN, want.max(first_seq), name)?;
    end.discarded_records += found.records;
    end.discarded_bytes += found.data_end as u64;
    if end.later.is_none() {
        end.later = if valid_header && first_seq >= want {
            Some(LaterRecord {
                segment: name.to_string(),
                offset: 0,
                seq: first_seq,
            })
        } else {
            found.first
        };
    }
    Ok(())
}

/// What a search past the stop point found.
struct Found {
    /// The first valid record at or after the sequence searched for.
    first: Option<LaterRecord>,
    /// How many such records.
    records: u64,
    /// The offset just past the last nonzero byte.
    data_end: usize,
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

/// The longest segment recovery reads whole to search past a bad record
/// ([`SegmentBytes::search`]): a segment holds records of at most
/// `MAX_PAYLOAD` bytes each, and the journal rolls to a new one once a
/// segment's size is reached, so no segment it writes comes near this.
const SEARCH_LIMIT: usize = if usize::BITS >= 64 { (8u64 << 30) as usize } else { usize::MAX };

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

    /// Searches the bytes from `from` on for valid records with sequence
    /// numbers at or after `want`: record by record where records decode,
    /// byte by byte where they do not. Loads the whole segment, so it runs
    /// only on the error path. A plausible sequence number is also at most
    /// one per [`RECORD_HEADER_LEN`] bytes beyond `want` (no record is
    /// shorter), which rejects almost every offset of garbage or zeros
    /// before any checksum is computed.
    ///
    /// A segment longer than [`SEARCH_LIMIT`] is an error rather than an
    /// allocation of its length: the journal writes none (its largest
    /// record fits well inside), and a file stretched to a terabyte of
    /// unwritten zeros aborted the process here (found by a review,
    /// fifty-fourth session).
    fn search(&mut self, from: usize, want: u64, name: &str) -> Result<Found> {
        if self.len > SEARCH_LIMIT {
            return Err(StorageError::corrupted(format!(
                "WAL segment {name}: the bytes at offset {from} are not a record, and the segment is {} bytes, \
                 more than any segment the log writes ({SEARCH_LIMIT}); recovery cannot tell a torn tail from \
                 damage in it: move it out of the WAL directory to open without its records",
                self.len
            )));
        }
        self.load_to(self.len)?;
        let bytes = &self.loaded;
        let most = want.saturating_add((bytes.len() / RECORD_HEADER_LEN) as u64);
        let mut found = Found {
            first: None,
            records: 0,
            data_end: bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1),
        };
        let mut at = from;
        while at < found.data_end {
            match decode_any(&bytes[at..], want..=most) {
                Some((seq, len)) => {
                    found.first.get_or_insert_with(|| LaterRecord {
                        segment: name.to_string(),
                        offset: at as u64,
                        seq,
                    });
                    found.records += 1;
                    at += len;
                }
                None => at += 1,
            }
        }
        Ok(found)
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

/// The log id each segment in `dir` records, for the segments whose header
/// reads as valid (an open decides from them whether it may start a new
/// log: `engine::core::continued_log`).
pub(crate) fn segment_log_ids(dir: &dyn LogDir) -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    for (_, name) in list_segments(dir)? {
        ids.extend(header_log_id(dir, &name)?);
    }
    Ok(ids)
}

/// The database id and log id in segment `name`'s header; `None` if the
/// segment is missing or its header unreadable.
pub(crate) fn segment_owner(dir: &dyn LogDir, name: &str) -> Result<Option<(u128, u32)>> {
    if !dir.list()?.iter().any(|listed| listed == name) {
        return Ok(None);
    }
    Ok(header_of(dir, name)?.map(|header| (header.db_id, header.log_id)))
}

/// The log id in the header of segment `name`, which is listed.
fn header_log_id(dir: &dyn LogDir, name: &str) -> Result<Option<u32>> {
    Ok(header_of(dir, name)?.map(|header| header.log_id))
}

/// The header of segment `name`, which is listed; `None` if unreadable.
fn header_of(dir: &dyn LogDir, name: &str) -> Result<Option<SegmentHeader>> {
    let file = dir.open(name)?;
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    if file.len()? < SEGMENT_HEADER_LEN as u64 {
        return Ok(None);
    }
    file.read(0, &mut header)?;
    Ok(SegmentHeader::decode(&header).ok())
}
