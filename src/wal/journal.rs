//! The journal: appends queue without I/O, a sync thread writes and syncs
//! them in groups, and waiters park until their record is durable.
//!
//! # Thread safety
//! `Journal` is shared by all committers. Its locks, and what each guards:
//! - `queue`: records appended but not yet taken for writing, the next
//!   sequence number, the bytes taken and not yet written (for the queue's
//!   byte cap), and the sync thread's wake-up conditions. Held only to
//!   copy a record in or to take the whole queue out: never across I/O. A
//!   short-held lock rather than a lock-free queue, because appends are
//!   already serialized by the engine's single writer slot, so the lock is
//!   uncontended in the common case and keeps records contiguous in one buffer
//!   that is written with one call.
//! - `io`: the active segment. Held across `write` and `fdatasync` by the one
//!   thread that writes the log: the sync thread, a lone committer waiting
//!   for its record while the log is idle (`wait_for_sync`), or (degraded)
//!   any committer.
//! - `segments`: the list of live segment files; taken when the sync thread
//!   creates a segment and when a checkpoint deletes old ones.
//! - `spare`: the next segment's file, written ahead by the spare thread
//!   (invariant 8): what the roll asked for and what is ready. Held only
//!   to hand a request or a file over, never across I/O.
//! - `waiters`: futures' wakers; `durable_seq` advances under it, and parked
//!   committers wait on `synced` with it, so no wake-up is lost. The count
//!   of parked committers (`parked`) changes only under it too, so a
//!   publication counts exactly the committers it wakes (`last_woken`, the
//!   target of the sync thread's `gather`).
//!
//! Lock order: `io` before `queue`, `segments`, `spare` and `metrics`;
//! `queue` and `spare` are never held while taking another lock.
//!
//! # Invariants
//! 1. Records are written in sequence order, each write appending to the
//!    previous one, by whoever holds `io`.
//! 2. `durable_seq` is set only to `Io::written_seq` as it was when the
//!    `fdatasync` that covers it began: it covers a contiguous prefix of
//!    records completely written before that sync (BRIEF §1).
//! 3. A failed write or sync is never retried: the journal latches `failure`,
//!    wakes every waiter with the error, and refuses all later work. A
//!    waiter (its record was appended before the failure, which lost it) and
//!    an appender blocked when it happened get the I/O error; a call begun
//!    after it gets `PreviousIo` (see `io::Failure`, which the engine's and
//!    the data file's latches answer through too).
//! 4. A segment is closed (a new one created) only once every record in it
//!    is durable, so a sync of the active segment covers all unsynced records.
//! 5. Records taken from the queue live in `Io` until written, so a panic
//!    mid-write loses nothing.
//! 6. A segment's header is durable before any record is written to it
//!    (`ActiveSegment::create`). With 4, a valid record or header behind a
//!    bad record proves the bad one was once durable: recovery reports
//!    damage and never mistakes it for a torn tail (`reader::read_log`).
//! 7. Queued-but-unwritten bytes (`Queue::buf` plus `Queue::taken`, the
//!    bytes the writer took into `Io::pending` and has not yet written) never
//!    exceed `max(max_queue_bytes, the largest record)`: `append` waits on
//!    `room` until its record fits, or until nothing is queued. Every change
//!    that can end that wait (bytes written, failure, degradation, shutdown)
//!    is made or announced under the `queue` lock and notifies `room`.
//! 8. A segment made from a spare (see `LogDir::spare_segments`) holds
//!    zeros durably past its header before it takes a segment's name: the
//!    spare thread syncs the zeros before it hands the file over, and the
//!    roll renames it, then writes and syncs the header, as a create does.
//!    So a crash at any step leaves either a file recovery never reads (the
//!    spare's own name, deleted by the next open) or a segment with no
//!    valid record, as one interrupted in `ActiveSegment::create` is. One
//!    spare at most: the spare thread creates the spare's name only while
//!    no spare is ready (`run_spare_thread`), a roll renames only a ready
//!    one and clears any request still standing when it takes it (so no
//!    new spare is begun before its rename), and the spare thread never
//!    deletes a file by that name (`make_spare`), so the name never stands
//!    for two files. A closing database stops its spares and deletes its
//!    spare before it gives up its file lock (`Journal::stop_spares`): the
//!    name is the directory's, and the next open's log makes its own.
//! 9. A segment the journal rolls away from ends in a seal naming the next
//!    one (`record`, seal), written and synced once the next segment's
//!    header is durable, before any record is written to the next. So a
//!    log whose last segment is sealed has lost the segment after it: an
//!    operator deleted the newest segments, whose commits were
//!    acknowledged (a crash cannot: the named segment was durable first).
//!    Recovery refuses such a log unless repairing. A crash during the
//!    seal's write leaves bad bytes after the sealed segment's last record,
//!    followed by a segment starting at the next sequence number: the log
//!    continues (`reader::read_log`), nothing is taken for damage. Nothing
//!    deletes a named segment while its seal stands: truncation and
//!    retirement delete oldest first and stop at the first failure, and an
//!    open cuts off the seal of a log's last segment before it deletes the
//!    empty segment the seal names.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::metrics::JournalMetrics;
use super::reader::{LaterRecord, LogEnd, Owner, Seal, Stop, read_log};
use super::record::{MAX_PAYLOAD, RECORD_HEADER_LEN, SEAL_LEN, SEGMENT_HEADER_LEN, encode_record_with, encode_seal};
use super::segment::{ActiveSegment, SPARE_NAME, segment_name};
use crate::error::{Result, StorageError};
use crate::io::{Failure, LogDir, StorageBackend};
use crate::sync::{AtomicBool, AtomicU64, Condvar, Mutex, thread};

/// Tuning for a [`Journal`].
#[derive(Clone, Copy, Debug)]
pub struct JournalOptions {
    /// A segment is closed and a new one started once it would grow past
    /// this many bytes (a single larger record still gets written).
    pub segment_size: u64,
    /// The size the journal's first segment is preallocated to; each next
    /// one doubles, up to `segment_size` (see [`FIRST_SEGMENT_BYTES`]).
    pub first_segment_size: u64,
    /// How long a record that nobody waits for may stay unsynced: the loss
    /// window of `Durability::None` commits. Waited-for records are synced at
    /// once, never delayed by it.
    pub sync_interval: Duration,
    /// Whether [`Journal::open`] may discard valid records behind damage in
    /// the middle of the log. Off (the default), such damage is a
    /// `Corrupted` error and nothing is changed; on, the log is cut back to
    /// the valid prefix before the damage and [`Recovery`] reports what was
    /// discarded. A torn tail (the expected end of a crash) needs no repair.
    pub repair: bool,
    /// The most bytes of records (headers included) that may sit in memory
    /// appended but not yet written to a segment: the queue plus what the
    /// sync thread has taken and is writing. An [`append`](Journal::append)
    /// that would pass it waits until the sync thread has *written* enough
    /// (written bytes are the OS's, no longer ours; they need not be synced
    /// yet). A record larger than the cap is admitted once nothing is
    /// queued, so it never deadlocks; the bound is therefore
    /// `max(max_queue_bytes, largest record)`. Only `Durability::None`
    /// committers, whom nobody makes wait for a sync, can reach it.
    ///
    /// Default [`DEFAULT_MAX_QUEUE_BYTES`] (64 MiB). 0 means "one record at
    /// a time" (every append waits for the previous ones to be written).
    pub max_queue_bytes: usize,
    /// The log this journal continues: new segments record it, and
    /// [`Journal::open`] refuses a record after the checkpoint in a segment
    /// that records neither it nor [`previous_log_id`](Self::previous_log_id)
    /// (a copy of the data file that went its own way wrote it). The
    /// engine passes the data file's (its commit slot's, renewed by every
    /// writable open). Default 0: none, every segment is accepted.
    pub log_id: u32,
    /// The log before [`log_id`](Self::log_id), whose segments are still
    /// read (the open that started the new log may have replayed them).
    pub previous_log_id: u32,
}

/// The default [`JournalOptions::max_queue_bytes`]: 64 MiB.
///
/// Why this much: the sync thread writes the whole queue with one call, so
/// the queue only needs to absorb what committers produce during one write
/// and sync. At 64 MiB that is over 100 ms of a fast SSD's sequential
/// bandwidth (and several seconds of a slow disk's), far longer than a group
/// commit round, so the cap does not throttle a disk that keeps up: it only
/// stops committers that outrun the disk for good, which a larger queue
/// would not help either (it would just be more memory to lose at a crash).
/// It matches the default segment and memtable sizes, so the WAL queue adds
/// at most one memtable's worth to the memory a database uses (two such
/// buffers are allocated at most: the queue and the one being written).
pub const DEFAULT_MAX_QUEUE_BYTES: usize = 64 << 20;

impl Default for JournalOptions {
    fn default() -> Self {
        Self {
            segment_size: 64 << 20,
            first_segment_size: FIRST_SEGMENT_BYTES,
            sync_interval: Duration::from_millis(20),
            repair: false,
            max_queue_bytes: DEFAULT_MAX_QUEUE_BYTES,
            log_id: 0,
            previous_log_id: 0,
        }
    }
}

/// What opening the journal found in the log: the report for
/// `Database::stats()` and for operators.
///
/// A clean log has `stop == None`. After a crash, `torn_tail` is usually set:
/// the last write was cut short, and its records, never acknowledged as
/// durable, are gone (`discarded_bytes` of them). `repaired` is set only when
/// [`JournalOptions::repair`] discarded valid records behind damage.
#[derive(Clone, Debug, Default)]
pub struct Recovery {
    /// Records after the checkpoint handed to the replay callback.
    pub replayed: u64,
    /// Bytes of those records (record headers included).
    pub replayed_bytes: u64,
    /// The last valid record's sequence number (0 if the log is empty).
    pub last_seq: u64,
    /// Where and why reading stopped before the end of the files, if it did.
    pub stop: Option<Stop>,
    /// Whether reading stopped at a torn tail: bad bytes with no valid record
    /// behind them, as a crash during a write leaves.
    pub torn_tail: bool,
    /// The first valid record found behind the stop point, if any: damage in
    /// the middle of the log (refused unless repairing).
    pub later_record: Option<LaterRecord>,
    /// Whether the repair option discarded valid records (`later_record`
    /// and those after it).
    pub repaired: bool,
    /// Valid records discarded behind the stop point (0 unless `repaired`).
    pub discarded_records: u64,
    /// Bytes discarded past the stop point, zero fill not counted.
    pub discarded_bytes: u64,
    /// Segment files deleted because they lay past the stop point.
    pub discarded: Vec<String>,
    /// Segment files wholly at or below the checkpoint that an earlier
    /// checkpoint failed to delete: not read, and deleted by the next
    /// [`Journal::truncate_through`].
    pub leftovers: Vec<String>,
    /// The segment the log's last segment names as the one it went on in
    /// (its seal), missing from the directory: the log's newest segments
    /// were deleted or moved, with whatever commits they held. Refused
    /// unless repairing; a repair accepts the loss (and sets `repaired`).
    pub missing_segment: Option<String>,
}

/// The largest sequence number, never assigned to a record: keeping it
/// free means `seq + 1` of any assigned number fits in a u64.
const LAST_SEQ: u64 = u64::MAX;

fn exhausted(last: u64) -> StorageError {
    StorageError::corrupted(format!(
        "WAL sequence numbers are exhausted: the last one in use is {last}, the largest assignable is {}",
        LAST_SEQ - 1
    ))
}

/// The sequence number that follows `last`, if one may still be assigned.
fn first_assignable(last: u64) -> Result<u64> {
    last.checked_add(1).ok_or_else(|| exhausted(last))
}

/// Who sees to a queued record's durability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncBy {
    /// The sync thread, within [`JournalOptions::sync_interval`] of the
    /// record's append: it is woken to time the interval (records nobody
    /// waits for, or waits for only later, as a pipelined commit's).
    Interval,
    /// The caller, who waits for the record next ([`Journal::wait_for_sync`]):
    /// that wait syncs the log itself or asks the sync thread to, so the
    /// sync thread is not woken for the record. Woken by every commit's
    /// append, the sync thread took the queue's lock just as the lone
    /// committer that had woken it came to write the queue: the committer
    /// parked on the lock about once per commit (measured on 1000-key
    /// durable batches: 553K -> 593K writes/s with the wake-up left out).
    /// A record queued this way and never waited for (its caller failed in
    /// between) is synced with the next record the sync thread is woken
    /// for, or at shutdown; records appended after it with
    /// [`SyncBy::Interval`] still wake the sync thread.
    Caller,
}

struct Queue {
    /// Encoded records, in sequence order.
    buf: Vec<u8>,
    /// The sequence number the next append gets.
    next_seq: u64,
    records: u64,
    /// Bytes the writer took from `buf` into `Io::pending` and has not yet
    /// written: with `buf.len()`, what the queue's byte cap counts
    /// (invariant 7). Kept here, not in `Io`, so an appender reads it under
    /// the lock it waits with; `io` is held across I/O.
    taken: usize,
    /// When the oldest queued record was appended.
    oldest: Option<Instant>,
    /// The sync thread was woken to time the queued records' sync interval
    /// (by the first of them appended with [`SyncBy::Interval`]). Cleared
    /// with `oldest` when the queue is taken (`take_queue`), so each queue
    /// generation wakes the sync thread once at most, and a
    /// [`SyncBy::Interval`] record is never queued behind only records that
    /// did not wake it.
    interval_armed: bool,
    /// A waiter wants everything appended so far made durable now.
    sync_wanted: bool,
    shutdown: bool,
}

struct Io {
    segment: Option<ActiveSegment>,
    /// Records taken from the queue and not yet written (kept here, not on
    /// the writer's stack, so a panic mid-write loses nothing).
    pending: Vec<u8>,
    pending_last: u64,
    pending_records: u64,
    /// The last sequence number completely written to the active segment.
    written_seq: u64,
    /// Records written since the last sync.
    unsynced_records: u64,
    /// The size the next segment is preallocated to (see
    /// [`FIRST_SEGMENT_BYTES`]).
    next_segment_size: u64,
}

/// By default the first segment a journal creates is preallocated to this
/// many bytes (or the configured segment size, if smaller), each next one to twice the
/// last, up to the configured size. A small database then shows a small WAL
/// (`ls`, redb's benchmark and backups count a sparse file's length), while a
/// busy one soon appends inside full-size segments whose size never changes
/// (cheaper syncs).
pub const FIRST_SEGMENT_BYTES: u64 = 1 << 20;

/// The next segment's file, written ahead of the roll that will need it
/// (invariant 8; see `LogDir::spare_segments`). Requests and files pass
/// through here between the log's writer and the spare thread.
#[derive(Default)]
struct Spare {
    /// The size the spare thread is to make the next spare: set by a roll,
    /// taken by the spare thread.
    wanted: Option<u64>,
    /// A spare made and durable: the file named [`SPARE_NAME`], this many
    /// bytes of zeros. Taken by the next roll.
    ready: Option<(Box<dyn StorageBackend>, u64)>,
    /// The journal is being dropped: the spare thread stops, leaving any
    /// spare it was writing unfinished.
    shutdown: bool,
}

/// How many zero bytes the spare thread writes per call.
const SPARE_CHUNK: usize = 1 << 20;

struct Inner {
    dir: Box<dyn LogDir>,
    /// The sequence number of the first record appended since open.
    first_seq: u64,
    /// The database and log ids new segments record and recovery read.
    owner: Owner,
    options: JournalOptions,
    queue: Mutex<Queue>,
    /// Wakes the sync thread: records queued, a sync wanted, shutdown.
    work: Condvar,
    /// Wakes appenders waiting for room in the queue (invariant 7): bytes
    /// written, failure, degradation, shutdown. Waited on with `queue`.
    room: Condvar,
    io: Mutex<Io>,
    segments: Mutex<Vec<(u64, String)>>,
    /// Whether a spare thread runs (`LogDir::spare_segments`).
    spares: bool,
    /// A record appended since the last roll has a committer waiting for
    /// it ([`SyncBy::Caller`]): only then does the next roll ask for a
    /// spare (see `write_pending`).
    awaited: AtomicBool,
    spare: Mutex<Spare>,
    /// Wakes the spare thread: a spare wanted, shutdown.
    spare_work: Condvar,
    durable_seq: AtomicU64,
    waiters: Mutex<Vec<(u64, Waker)>>,
    synced: Condvar,
    failed: AtomicBool,
    failure: Mutex<Option<Failure>>,
    degraded: AtomicBool,
    metrics: Mutex<JournalMetrics>,
    /// Records the last sync covered, and how long it took (see `gather`).
    last_group: AtomicU64,
    last_sync_nanos: AtomicU64,
    /// Committers parked in `wait_for_sync`. Changed and read only under
    /// `waiters`, so `publish` counts exactly the committers its
    /// notification reaches.
    parked: AtomicU64,
    /// Waiters the last publication woke: parked committers and futures'
    /// wakers. These are the committers that may commit again at once;
    /// records nobody waited for (pipelined commits, `Durability::None`)
    /// bring nobody back (see `gather`).
    last_woken: AtomicU64,
}

/// Reads the log in `dir` without changing anything: `visit` gets every
/// record [`Journal::open`] would replay (the valid ones after `after`, in
/// order, up to the first torn or invalid record), and the result says what
/// opening would find, including the files it would delete. Damage in the
/// middle of the log is the same error as for `open` without repair.
///
/// Starts no thread and takes no lock on the log, so it suits inspection
/// tools and tests that check a crash image. `log_ids` are the data
/// file's, the current log and the one before it (see
/// [`JournalOptions::log_id`]; `(0, 0)` reads segments of any log).
pub fn scan(
    dir: &impl LogDir,
    db_id: u128,
    log_ids: (u32, u32),
    after: u64,
    visit: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<Recovery> {
    scan_log(dir, Owner::new(db_id, log_ids), after, false, visit).map(|(recovery, _)| recovery)
}

/// [`scan`], plus what opening acts on: the reader's findings.
fn scan_log(
    dir: &impl LogDir,
    owner: Owner,
    after: u64,
    repair: bool,
    mut visit: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<(Recovery, LogEnd)> {
    let mut replayed = 0;
    let mut end = read_log(dir, owner, after, |seq, payload| {
        replayed += 1;
        visit(seq, payload)
    })?;
    if let (Some(later), Some(stop)) = (&end.later, &end.stop)
        && !repair
    {
        return Err(mid_log_damage(stop, later, end.last_seq, end.discarded_records));
    }
    let missing = end.seal.as_ref().filter(|seal| !seal.next_listed);
    if let Some(seal) = missing
        && !repair
    {
        return Err(missing_successor(seal));
    }
    let recovery = Recovery {
        replayed,
        replayed_bytes: end.replayed_bytes,
        last_seq: end.last_seq,
        stop: end.stop.clone(),
        torn_tail: end.stop.is_some() && end.later.is_none(),
        later_record: end.later.clone(),
        repaired: end.later.is_some() || missing.is_some(),
        discarded_records: end.discarded_records,
        discarded_bytes: end.discarded_bytes,
        discarded: std::mem::take(&mut end.discard),
        leftovers: end.obsolete.iter().map(|(_, name)| name.clone()).collect(),
        missing_segment: missing.map(|seal| segment_name(seal.next)),
    };
    Ok((recovery, end))
}

/// The error for a log whose last segment is sealed (the journal rolled
/// away from it) while the segment it went on in is missing: the newest
/// segments were deleted or moved, and the commits they held with them.
fn missing_successor(seal: &Seal) -> StorageError {
    StorageError::corrupted(format!(
        "WAL segment {} ends by naming segment {} (log {:#010x}) as the one the log went on in, and that segment \
         is missing: the log's newest segments were deleted or moved, and acknowledged commits may be lost. \
         Restore them into the WAL directory, or open with the WAL repair option to accept the loss. \
         Nothing was changed.",
        seal.segment,
        segment_name(seal.next),
        seal.log_id
    ))
}

/// The error for damage followed by valid records: acknowledged commits may
/// lie behind it, so it is never silently cut off.
fn mid_log_damage(stop: &Stop, later: &LaterRecord, last_seq: u64, records: u64) -> StorageError {
    let at = if later.offset == 0 {
        format!(
            "segment {} (its header proves earlier records were durable)",
            later.segment
        )
    } else {
        format!("segment {} offset {}", later.segment, later.offset)
    };
    StorageError::corrupted(format!(
        "WAL damaged mid-log: reading stopped in segment {} at offset {} ({:?}) after record {last_seq}, \
         but valid record {} follows in {at}; {records} valid records lie behind the damage. \
         Nothing was changed. Opening with the WAL repair option keeps records through {last_seq} \
         and discards the rest",
        stop.segment, stop.offset, stop.reason, later.seq
    ))
}

/// A segmented write-ahead log with group commit (the `AsyncWALJournal`).
///
/// [`append`](Self::append) assigns the next sequence number and queues the
/// record; a background sync thread writes everything queued and calls
/// `fdatasync` once for the group. [`wait_for_sync`](Self::wait_for_sync)
/// parks until a record is durable; [`is_durable`](Self::is_durable) and
/// [`poll_durable`](Self::poll_durable) ask without blocking.
///
/// A committer waiting alone (the last sync covered one record) while nobody
/// writes the log writes and syncs it itself, sparing the two thread
/// wake-ups of a hand-off. If writing the log panics, the journal degrades
/// to synchronous mode: each committer writes and syncs the log itself
/// under the journal's lock.
/// Dropping the journal writes and syncs everything appended before the drop.
pub struct Journal {
    inner: Arc<Inner>,
    sync_thread: Option<thread::JoinHandle<()>>,
    /// Taken by [`stop_spares`](Self::stop_spares), which a closing
    /// database calls through a shared handle.
    spare_thread: Mutex<Option<thread::JoinHandle<()>>>,
}

impl Journal {
    /// The largest payload [`append`](Self::append) accepts (a record's
    /// length field is a u32). A larger one fails that append alone with
    /// [`StorageError::ValueTooLarge`]: the journal stays usable and no
    /// sequence number is consumed, so callers may check before encoding or
    /// simply try.
    pub const MAX_PAYLOAD: usize = MAX_PAYLOAD;

    /// Recovers the log in `dir` and starts the journal:
    /// [`recover`](Self::recover), then [`RecoveredLog::start`].
    ///
    /// Every valid record with a sequence number above `after` (the data
    /// file's checkpoint) is passed to `replay` in order. Reading stops at the
    /// first torn or invalid record; segment files past that point are
    /// deleted, and new records go to a fresh segment, never after a torn
    /// tail. Sequence numbers continue after the last valid record (or after
    /// `after`, whichever is larger).
    pub fn open<D: LogDir>(
        dir: D,
        db_id: u128,
        after: u64,
        options: JournalOptions,
        replay: impl FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<(Self, Recovery)> {
        let (log, recovery) = Self::recover(dir, db_id, after, options, replay)?;
        Ok((log.start()?, recovery))
    }

    /// Reads the log in `dir` as [`open`](Self::open) does, passing every
    /// record after `after` to `replay`, and accepts it (or refuses it, with
    /// the same errors), without changing anything: the files recovery
    /// deletes or cuts are changed only by [`RecoveredLog::start`]. In
    /// between, the caller may make durable what must precede those changes
    /// (the engine records in the data file which segments survive them, so
    /// that no crash leaves it naming one that is gone: `engine::log_tail`).
    pub fn recover<D: LogDir>(
        dir: D,
        db_id: u128,
        after: u64,
        options: JournalOptions,
        replay: impl FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<(RecoveredLog<D>, Recovery)> {
        let owner = Owner::new(db_id, (options.log_id, options.previous_log_id));
        let (recovery, end) = scan_log(&dir, owner, after, options.repair, replay)?;
        let last = recovery.last_seq.max(after);
        // `after` comes from the data file and `last_seq` from the log:
        // both are checked before any arithmetic (u64::MAX is never assigned,
        // so the next sequence number always fits).
        let next_seq = first_assignable(last)?;
        let log = RecoveredLog {
            dir,
            owner,
            options,
            end,
            last,
            next_seq,
            repaired: recovery.repaired,
            discarded: recovery.discarded.clone(),
        };
        Ok((log, recovery))
    }

    /// Stops making spares and deletes this log's spare, if it has one. A
    /// closing database calls it before it gives up its file lock: the
    /// journal itself lives on while read transactions hold the engine, and
    /// the spare's name is the directory's, not this log's. Deleted only at
    /// the journal's drop, it was the spare of the next database opened at
    /// the same path, whose next roll then failed
    /// (`tests/wal_spare_of_the_next_open_survives.rs`). Rolls after this create
    /// their segments as a log without spares does.
    pub fn stop_spares(&self) {
        let Some(thread) = self.spare_thread.lock().take() else {
            return;
        };
        self.inner.spare.lock().shutdown = true;
        self.inner.spare_work.notify_all();
        let _ = thread.join();
        // A closed log keeps no spare (the next open would delete it).
        self.inner.spare.lock().ready = None;
        let _ = self.inner.dir.remove(SPARE_NAME);
    }

    /// Queues `payload` as the next record and returns its sequence number,
    /// to be synced by the sync thread within the sync interval at the
    /// latest (`append_with(payload, SyncBy::Interval)`).
    pub fn append(&self, payload: &[u8]) -> Result<u64> {
        self.append_with(payload, SyncBy::Interval)
    }

    /// Queues `payload` as the next record and returns its sequence number.
    /// No I/O happens on the caller's thread (unless the journal is degraded).
    /// `sync` says who sees to the record's durability (see [`SyncBy`]).
    ///
    /// Waits while the record would push the queued-but-unwritten bytes past
    /// [`JournalOptions::max_queue_bytes`] (backpressure; see
    /// [`JournalMetrics::queue_stalls`]), until the sync thread has written
    /// enough, the journal fails (the error is returned) or shuts down.
    ///
    /// A payload over [`Self::MAX_PAYLOAD`] is refused with
    /// `ValueTooLarge` before anything changes: it is the caller's error, not
    /// the log's, so the journal is not failed and the sequence continues.
    pub fn append_with(&self, payload: &[u8], sync: SyncBy) -> Result<u64> {
        self.append_encoded(payload.len(), sync, |out| out.extend_from_slice(payload))
    }

    /// [`append_with`](Self::append_with) of the `len`-byte payload that
    /// `write` appends to the buffer it is given: the payload is encoded
    /// straight into the queue (under its lock), with no buffer of its own
    /// and no copy. `write` is called once, if the record is admitted; a
    /// `write` that appends other than `len` bytes fails the append
    /// (`Internal`) and leaves the queue as it was.
    pub fn append_encoded(&self, len: usize, sync: SyncBy, write: impl FnOnce(&mut Vec<u8>)) -> Result<u64> {
        if len > MAX_PAYLOAD {
            return Err(StorageError::ValueTooLarge(len));
        }
        self.inner.check_failed()?;
        let inner = &*self.inner;
        let record_len = RECORD_HEADER_LEN + len;
        let mut write = Some(write);
        let mut stalled: Option<Instant> = None;
        let appended = loop {
            let mut q = inner.queue.lock();
            if q.shutdown {
                // Unreachable: `shutdown` is set by `Drop`, which no appender outlives.
                break Err(StorageError::Internal("append to a journal being dropped".into()));
            }
            if inner.failed.load(Ordering::Acquire) {
                // The failure came while this append was under way (it was
                // checked on entry): it gets the error itself (invariant 3).
                drop(q);
                break Err(inner.interrupted_error());
            }
            // Invariant 7: admit the record if it fits under the cap, or if
            // nothing is queued (a record larger than the cap must not wait
            // forever for room that can never be).
            let queued = q.buf.len() + q.taken;
            if queued == 0 || queued.saturating_add(record_len) <= inner.options.max_queue_bytes {
                // Invariant: `next_seq < u64::MAX` (see `first_assignable`), so the
                // increment cannot wrap; the last number is never handed out.
                let seq = q.next_seq;
                if seq == LAST_SEQ {
                    break Err(exhausted(seq - 1));
                }
                let write = write.take().expect("a record is admitted once");
                if !encode_record_with(&mut q.buf, seq, len, write) {
                    break Err(StorageError::Internal(format!(
                        "a payload's encoding is not the {len} bytes it was sized at"
                    )));
                }
                q.next_seq += 1;
                q.records += 1;
                debug_assert!(
                    q.buf.len() + q.taken <= inner.options.max_queue_bytes.max(record_len),
                    "invariant 7: the queue stays under its cap, or holds one record"
                );
                if q.oldest.is_none() {
                    q.oldest = Some(Instant::now());
                }
                if sync == SyncBy::Interval && !q.interval_armed {
                    q.interval_armed = true;
                    inner.work.notify_one();
                }
                // Read first: a log that already knows writes nothing shared.
                if sync == SyncBy::Caller && inner.spares && !inner.awaited.load(Ordering::Relaxed) {
                    inner.awaited.store(true, Ordering::Relaxed);
                }
                break Ok(seq);
            }
            stalled.get_or_insert_with(Instant::now);
            if inner.degraded.load(Ordering::Acquire) {
                // No sync thread: write the queue ourselves (we hold no
                // journal lock now; `flush` takes `io`, then `queue`).
                drop(q);
                if let Err(e) = inner.flush_locally() {
                    break Err(e);
                }
                continue;
            }
            // Why this wait cannot deadlock. The caller holds the engine's
            // writer slot and commit lock (appends are serialized by them:
            // `WriteTxn::append_and_apply`), so everyone who wants either
            // waits for us: the next writer, and a checkpoint or the apply
            // thread freezing the active memtable (`freeze_if_not_empty`
            // takes the commit lock briefly). That is safe because what we
            // wait for needs neither: the sync thread takes only the
            // journal's own locks (`queue`, `io`, `segments`, `metrics`,
            // `waiters`), none of which anyone holds while waiting for an
            // engine lock (`truncate_through`, the checkpoint's one journal
            // call, holds `segments` only while unlinking files), and it
            // writes the queue once asked (`sync_wanted`) without waiting
            // for any committer, checkpoint or the apply thread. So the
            // sync thread's write completes, `write_pending` frees room and
            // notifies `room`; a failed write latches the failure and
            // `fail` notifies; a panicking sync thread degrades and
            // `degrade` notifies (we then write ourselves, above); a drop
            // sets `shutdown` and notifies. Each of those changes its state
            // under (or announces it by taking) the `queue` lock we check
            // it with, so no wake-up falls between our check and our wait.
            // The wait parks; it never holds `queue` while blocked.
            q.sync_wanted = true;
            inner.work.notify_one();
            inner.room.wait(&mut q);
        };
        if let Some(since) = stalled {
            let mut metrics = inner.metrics.lock();
            metrics.queue_stalls += 1;
            metrics.queue_stall_micros += since.elapsed().as_micros() as u64;
        }
        let seq = appended?;
        if inner.degraded.load(Ordering::Acquire) {
            inner.flush_locally()?;
        }
        Ok(seq)
    }

    /// The highest sequence number known durable.
    pub fn durable_seq(&self) -> u64 {
        self.inner.durable_seq.load(Ordering::Acquire)
    }

    /// The sequence number of the last appended record.
    pub fn last_seq(&self) -> u64 {
        self.inner.queue.lock().next_seq - 1
    }

    /// Whether record `seq` is durable; never blocks.
    pub fn is_durable(&self, seq: u64) -> bool {
        self.durable_seq() >= seq
    }

    /// Blocks until record `seq` is durable, or fails if the journal failed
    /// first. Parks; never spins or sleep-polls.
    pub fn wait_for_sync(&self, seq: u64) -> Result<()> {
        self.inner.wait_for_sync(seq)
    }

    /// Makes every record appended so far durable.
    pub fn sync(&self) -> Result<()> {
        self.wait_for_sync(self.last_seq())
    }

    /// Future-style wait: `Ready` once `seq` is durable (or the journal
    /// failed); otherwise registers `cx`'s waker and returns `Pending`.
    pub fn poll_durable(&self, seq: u64, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.inner.poll_durable(seq, cx)
    }

    /// Deletes the segments whose records all lie at or below
    /// `checkpoint_seq` (the data file holds them durably). The active
    /// segment is never deleted. Returns how many files were deleted.
    ///
    /// A delete that fails is not an error: the segment stays, the failure
    /// is counted in [`JournalMetrics::segment_delete_failures`], and the
    /// next call retries. Errors only if the journal has already failed.
    pub fn truncate_through(&self, checkpoint_seq: u64) -> Result<usize> {
        self.inner.truncate_through(checkpoint_seq, None)
    }

    /// [`truncate_through`](Self::truncate_through), keeping the segment
    /// whose first record is `keep_from` and every later one, whatever the
    /// checkpoint: the segment a durable commit of the data file names
    /// (`engine::log_tail`).
    pub fn truncate_keeping(&self, checkpoint_seq: u64, keep_from: Option<u64>) -> Result<usize> {
        self.inner.truncate_through(checkpoint_seq, keep_from)
    }

    /// The segment that holds record `seq`, or would hold it next (the
    /// newest whose first record is at or below `seq`), as its log id and
    /// first sequence; `None` if no segment does.
    pub fn segment_holding(&self, seq: u64) -> Result<Option<(u32, u64)>> {
        let found = {
            let segments = self.inner.segments.lock();
            segments.iter().rev().find(|(first, _)| *first <= seq).cloned()
        };
        let Some((first, name)) = found else {
            return Ok(None);
        };
        Ok(super::segment_owner(self.inner.dir.as_ref(), &name)?.map(|(_, id)| (id, first)))
    }

    /// Starts the segment the next record will go to, if no segment is
    /// active (as after an open), so that it exists, durably, before any
    /// record is appended: an open names it in the data file
    /// (`engine::log_tail`). Returns its log id and first sequence.
    pub fn start_segment(&self) -> Result<(u32, u64)> {
        self.inner.check_failed()?;
        let mut io = self.inner.io.lock();
        if io.segment.is_none() {
            self.inner.roll(&mut io)?;
        }
        // The active segment is the newest listed.
        let first = self.inner.segments.lock().last().map_or(io.written_seq + 1, |(first, _)| *first);
        Ok((self.inner.owner.log_id, first))
    }

    /// Empties the log when every record is at or below `checkpoint_seq`
    /// (a durable checkpoint) and none is queued: deletes every segment,
    /// the active one too, and the next append starts a segment at
    /// `checkpoint_seq + 1`. For a close: the data file alone then holds
    /// the database, which can be copied or replaced as one file (a log left
    /// beside a data file that was replaced belongs to another database,
    /// and opening the pair is refused). `Ok(false)` if records remain.
    /// Failed deletes are counted as [`truncate_through`](Self::truncate_through)'s.
    pub fn retire_through(&self, checkpoint_seq: u64) -> Result<bool> {
        self.inner.retire_through(checkpoint_seq)
    }

    /// The journal's counters.
    pub fn metrics(&self) -> JournalMetrics {
        let mut metrics = self.inner.metrics.lock().clone();
        {
            let q = self.inner.queue.lock();
            metrics.queue_depth = q.records;
            metrics.queue_bytes = (q.buf.len() + q.taken) as u64;
            metrics.records = q.next_seq - self.inner.first_seq;
        }
        metrics.degraded = self.is_degraded();
        metrics
    }

    /// The first failure, if the journal has failed (it then refuses all work).
    pub fn failure(&self) -> Option<Failure> {
        // Asked before every transaction: a healthy journal answers
        // without its lock (`fail` stores the failure before the flag).
        if !self.inner.failed.load(Ordering::Acquire) {
            return None;
        }
        self.inner.failure.lock().clone()
    }

    /// Whether writing the log panicked (in the sync thread or a lone
    /// committer) and committers now sync for themselves.
    pub fn is_degraded(&self) -> bool {
        self.inner.degraded.load(Ordering::Acquire)
    }

    /// Names of the live segment files, oldest first.
    pub fn segments(&self) -> Vec<String> {
        self.inner
            .segments
            .lock()
            .iter()
            .map(|(_, name)| name.clone())
            .collect()
    }
}


/// A log [`Journal::recover`] has read and accepted, unchanged until
/// [`start`](Self::start).
pub struct RecoveredLog<D: LogDir> {
    dir: D,
    owner: Owner,
    options: JournalOptions,
    end: LogEnd,
    /// The last sequence number in use: the log's last record's, or the
    /// checkpoint's if larger.
    last: u64,
    next_seq: u64,
    repaired: bool,
    /// The segments `start` deletes, past the stop point.
    discarded: Vec<String>,
}

impl<D: LogDir> RecoveredLog<D> {
    /// The segment that will hold record `seq` once the journal starts, of
    /// those recovery keeps (the newest whose first record is at or below
    /// `seq`), as its log id and first sequence; `None` if none of them
    /// does (the next segment the journal starts will).
    pub fn segment_holding(&self, seq: u64) -> Result<Option<(u32, u64)>> {
        let Some((first, name)) = self.end.keep.iter().rev().find(|(first, _)| *first <= seq) else {
            return Ok(None);
        };
        Ok(super::segment_owner(&self.dir, name)?.map(|(_, id)| (id, *first)))
    }

    /// Whether the segment whose first record is `first_seq` holds records
    /// recovery keeps (it survives [`start`](Self::start)).
    pub fn keeps(&self, first_seq: u64) -> bool {
        self.end.keep.iter().any(|(first, _)| *first == first_seq)
    }

    /// Makes the changes recovery found necessary and starts the journal:
    /// cuts a repaired segment back to its valid prefix, cuts off the seal
    /// of the last segment holding records if the segment it names holds
    /// none, deletes the segments past the stop point (and, before them,
    /// any segment wholly at or below the checkpoint whose seal could name
    /// one: invariant 9), syncs the segments kept, and starts the sync
    /// thread. New records go to a fresh segment.
    pub fn start(self) -> Result<Journal> {
        let Self {
            dir,
            owner,
            options,
            end,
            last,
            next_seq,
            repaired,
            discarded,
        } = self;
        // A repair cuts the damaged segment back to its valid prefix before
        // deleting the segments after it: a crash in between leaves a log
        // that still reports the damage (the later segments prove it), so
        // the repair can simply be run again. Cut, the segment reads clean,
        // and later opens need no repair.
        if let (true, Some((name, offset))) = (repaired, &end.cut) {
            dir.truncate(name, *offset)?;
        }
        // The last segment holding records is sealed, and the segment it
        // names holds none (a crash came before the first record after the
        // roll was durable) or, repairing, is missing: the log ends in the
        // sealed segment, and the next one this journal starts takes the
        // named one's name. The seal is cut off first, so that no crash
        // leaves it naming a segment deleted below (invariant 9).
        if let Some(seal) = &end.seal {
            dir.truncate(&seal.segment, seal.offset)?;
        }
        // With no segment kept, the last segment at or below the checkpoint
        // (not read: `reader::read_log`) may be sealed, naming the first
        // one deleted below: those segments go first, oldest first. (Their
        // deletion is housekeeping, left to truncation otherwise.)
        let mut obsolete = end.obsolete;
        if end.keep.is_empty() && !discarded.is_empty() {
            for (_, name) in &obsolete {
                dir.remove(name)?;
            }
            obsolete.clear();
        }
        for name in &discarded {
            dir.remove(name)?;
        }
        // What survived a process crash may still sit unsynced in the OS
        // cache; it is about to be treated as durable (and built upon), so
        // make it so.
        for (_, name) in &end.keep {
            dir.open(name)?.sync_data()?;
        }
        // A spare left by a crash, or by a journal that failed to delete
        // it, may be unfinished (invariant 8): a new one is made when wanted.
        // Recovery never reads it, so a failure to delete it is no reason
        // to refuse the open: the log then goes without spares (the spare
        // thread cannot create the name) until an open deletes it.
        if dir.list()?.iter().any(|name| name == SPARE_NAME) {
            let _ = dir.remove(SPARE_NAME);
        }
        let spares = dir.spare_segments();
        let inner = Arc::new(Inner {
            dir: Box::new(dir),
            first_seq: next_seq,
            owner,
            options,
            queue: Mutex::new(Queue {
                buf: Vec::new(),
                next_seq,
                records: 0,
                taken: 0,
                oldest: None,
                interval_armed: false,
                sync_wanted: false,
                shutdown: false,
            }),
            work: Condvar::new(),
            room: Condvar::new(),
            io: Mutex::new(Io {
                segment: None,
                pending: Vec::new(),
                pending_last: last,
                pending_records: 0,
                written_seq: last,
                unsynced_records: 0,
                next_segment_size: options.first_segment_size.clamp(1, options.segment_size.max(1)),
            }),
            // Leftovers first: `truncate_through` retries their deletion.
            segments: Mutex::new(obsolete.into_iter().chain(end.keep).collect()),
            spares,
            awaited: AtomicBool::new(false),
            spare: Mutex::new(Spare::default()),
            spare_work: Condvar::new(),
            durable_seq: AtomicU64::new(last),
            waiters: Mutex::new(Vec::new()),
            synced: Condvar::new(),
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
            degraded: AtomicBool::new(false),
            metrics: Mutex::new(JournalMetrics::default()),
            last_group: AtomicU64::new(0),
            last_sync_nanos: AtomicU64::new(0),
            parked: AtomicU64::new(0),
            last_woken: AtomicU64::new(0),
        });
        let thread_inner = inner.clone();
        let sync_thread = thread::Builder::new()
            .name("sluicedb-wal-sync".into())
            .spawn(move || thread_inner.run_sync_thread())
            .map_err(StorageError::Io)?;
        let journal = Journal {
            inner,
            sync_thread: Some(sync_thread),
            spare_thread: Mutex::new(None),
        };
        if spares {
            let thread_inner = journal.inner.clone();
            *journal.spare_thread.lock() = Some(
                thread::Builder::new()
                    .name("sluicedb-wal-spare".into())
                    .spawn(move || thread_inner.run_spare_thread())
                    .map_err(StorageError::Io)?,
            );
        }
        Ok(journal)
    }
}

impl Drop for Journal {
    /// Drains: everything appended before the drop is written and synced
    /// (unless the journal has failed).
    fn drop(&mut self) {
        self.stop_spares();
        self.inner.queue.lock().shutdown = true;
        self.inner.work.notify_all();
        self.inner.room.notify_all();
        if let Some(thread) = self.sync_thread.take() {
            let _ = thread.join();
        }
        if self.inner.degraded.load(Ordering::Acquire) {
            let _ = self.inner.flush_locally();
        }
    }
}

impl Inner {
    /// Refuses a call begun after the journal failed: `PreviousIo` for an
    /// I/O failure (invariant 3).
    fn check_failed(&self) -> Result<()> {
        if self.failed.load(Ordering::Acquire) {
            return Err(self.failure.lock().as_ref().map_or(StorageError::PreviousIo, Failure::later_error));
        }
        Ok(())
    }

    /// The error for a call the failure interrupted (a wait for a record
    /// it lost, an append blocked when it came): the I/O error itself.
    /// REQUIRES: `failed` is set.
    fn interrupted_error(&self) -> StorageError {
        self.failure
            .lock()
            .as_ref()
            .map_or(StorageError::PreviousIo, Failure::original_error)
    }

    /// Latches the first failure and wakes every waiter to see it.
    fn fail(&self, error: &StorageError) {
        {
            let mut failure = self.failure.lock();
            if failure.is_none() {
                *failure = Some(Failure::of(error).within("WAL"));
            }
        }
        self.failed.store(true, Ordering::Release);
        self.wake_all();
    }

    /// Wakes appenders waiting for queue room to re-check. Taking `queue`
    /// orders this after the flag the caller just set: an appender either
    /// saw the flag before waiting or is already waiting (invariant 7).
    fn wake_appenders(&self) {
        let _q = self.queue.lock();
        self.room.notify_all();
    }

    /// Wakes everyone who waits on the journal: durability waiters (parked
    /// and futures) and appenders waiting for queue room. For a failure or
    /// a degradation, after its flag is set.
    fn wake_all(&self) {
        let wakers: Vec<Waker> = {
            let mut waiters = self.waiters.lock();
            self.synced.notify_all();
            waiters.drain(..).map(|(_, w)| w).collect()
        };
        wakers.into_iter().for_each(Waker::wake);
        self.wake_appenders();
    }

    fn publish(&self, seq: u64) {
        let ready: Vec<Waker> = {
            let mut waiters = self.waiters.lock();
            self.durable_seq.store(seq, Ordering::Release);
            self.synced.notify_all();
            let (ready, waiting): (Vec<_>, Vec<_>) = waiters.drain(..).partition(|(s, _)| *s <= seq);
            *waiters = waiting;
            let woken = self.parked.load(Ordering::Relaxed) + ready.len() as u64;
            self.last_woken.store(woken, Ordering::Relaxed);
            ready.into_iter().map(|(_, w)| w).collect()
        };
        ready.into_iter().for_each(Waker::wake);
    }

    fn request_sync(&self) {
        self.queue.lock().sync_wanted = true;
        self.work.notify_one();
    }

    fn wait_for_sync(&self, seq: u64) -> Result<()> {
        loop {
            if self.durable_seq.load(Ordering::Acquire) >= seq {
                return Ok(());
            }
            // Record `seq` was appended before the failure (appends after it
            // are refused), and the failure lost it: invariant 3.
            if self.failed.load(Ordering::Acquire) {
                return Err(self.interrupted_error());
            }
            if self.degraded.load(Ordering::Acquire) {
                self.flush_locally()?;
                continue;
            }
            // A lone committer (the last sync covered one record) syncs for
            // itself when nobody is writing the log: handing the sync to
            // the sync thread and being woken by it puts two thread
            // wake-ups on its path, and on a busy machine each can wait for
            // a core. Committers that arrive together still group (the
            // last group was larger, or the log is busy: they wait below).
            // A panic here (a panicking log directory) is the sync
            // thread's panic: the journal degrades, as it does for that.
            if self.last_group.load(Ordering::Relaxed) <= 1
                && let Some(mut io) = self.io.try_lock()
            {
                if self.durable_seq.load(Ordering::Acquire) < seq {
                    match catch_unwind(AssertUnwindSafe(|| self.flush(&mut io))) {
                        Ok(result) => result?,
                        Err(panic) => {
                            drop(io);
                            self.degrade(panic.as_ref());
                        }
                    }
                }
                continue;
            }
            self.request_sync();
            let mut waiters = self.waiters.lock();
            if self.durable_seq.load(Ordering::Acquire) < seq
                && !self.failed.load(Ordering::Acquire)
                && !self.degraded.load(Ordering::Acquire)
            {
                self.parked.fetch_add(1, Ordering::Relaxed);
                self.synced.wait(&mut waiters);
                self.parked.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    fn poll_durable(&self, seq: u64, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if self.durable_seq.load(Ordering::Acquire) >= seq {
            return Poll::Ready(Ok(()));
        }
        // As in `wait_for_sync`: the failure lost record `seq`.
        if self.failed.load(Ordering::Acquire) {
            return Poll::Ready(Err(self.interrupted_error()));
        }
        if self.degraded.load(Ordering::Acquire) {
            return Poll::Ready(self.wait_for_sync(seq));
        }
        self.request_sync();
        let mut waiters = self.waiters.lock();
        if self.durable_seq.load(Ordering::Acquire) >= seq
            || self.failed.load(Ordering::Acquire)
            || self.degraded.load(Ordering::Acquire)
        {
            drop(waiters);
            return self.poll_durable(seq, cx);
        }
        waiters.push((seq, cx.waker().clone()));
        Poll::Pending
    }

    fn flush_locally(&self) -> Result<()> {
        let mut io = self.io.lock();
        self.flush(&mut io)
    }

    /// Writes everything queued and syncs it: the one routine that does log
    /// I/O, run by the sync thread or, degraded, by committers. Holds `io`.
    fn flush(&self, io: &mut Io) -> Result<()> {
        self.check_failed()?;
        self.take_queue(io);
        let result = self.write_pending(io).and_then(|()| self.sync_active(io));
        if let Err(e) = &result {
            self.fail(e);
        }
        result
    }

    fn take_queue(&self, io: &mut Io) {
        let mut q = self.queue.lock();
        q.sync_wanted = false;
        if q.records == 0 {
            return;
        }
        // Invariant 7: the bytes stay counted until written.
        q.taken += q.buf.len();
        if io.pending.is_empty() {
            std::mem::swap(&mut io.pending, &mut q.buf);
        } else {
            io.pending.extend_from_slice(&q.buf);
            q.buf.clear();
            self.trim(&mut q.buf);
        }
        io.pending_last = q.next_seq - 1;
        io.pending_records += q.records;
        q.records = 0;
        q.oldest = None;
        q.interval_armed = false;
    }

    fn write_pending(&self, io: &mut Io) -> Result<()> {
        if io.pending.is_empty() {
            return Ok(());
        }
        let roll = match &io.segment {
            None => true,
            // Room is left for the seal the roll writes (invariant 9), so
            // that it too fills space preallocated.
            Some(s) => {
                s.len > SEGMENT_HEADER_LEN as u64 && s.len + (io.pending.len() + SEAL_LEN) as u64 > s.capacity
            }
        };
        if roll {
            self.roll(io)?;
        }
        let Some(segment) = io.segment.as_mut() else {
            return Err(StorageError::Internal("no active WAL segment after a roll".into()));
        };
        segment.write(&io.pending)?;
        // Invariant 1: from here the records are completely written.
        let written = io.pending.len();
        self.metrics.lock().bytes += written as u64;
        io.written_seq = io.pending_last;
        io.unsynced_records += io.pending_records;
        io.pending_records = 0;
        io.pending.clear();
        self.trim(&mut io.pending);
        // Invariant 7: the written bytes are the OS's now, not our memory:
        // make room and wake the appenders waiting for it (before the sync,
        // which they need not wait for).
        {
            let mut q = self.queue.lock();
            debug_assert!(q.taken >= written, "invariant 7: written bytes were taken");
            q.taken = q.taken.saturating_sub(written);
            self.room.notify_all();
        }
        Ok(())
    }

    /// Starts a new active segment at the next sequence number: closes the
    /// active one, if any, once all of it is durable (invariant 4), makes
    /// the new one durable (from a spare if one is ready: invariant 8), then
    /// seals the old one naming it (invariant 9).
    fn roll(&self, io: &mut Io) -> Result<()> {
        // Invariant 4: close the segment only once all of it is durable.
        self.sync_active(io)?;
        // Cannot wrap: `written_seq` < `next_seq` <= u64::MAX.
        let first = io.written_seq + 1;
        let size = io.next_segment_size;
        let spare = {
            // A request still standing was for this roll, which the
            // spare now serves: left, it would have the spare thread
            // create the spare's name again before this roll renames
            // the file it holds (the name would stand for two files).
            let mut spare = self.spare.lock();
            spare.wanted = None;
            spare.ready.take()
        };
        let from_spare = spare.is_some();
        let segment = match spare {
            Some((file, capacity)) => {
                ActiveSegment::from_spare(self.dir.as_ref(), self.owner, first, file, capacity)?
            }
            None => ActiveSegment::create(self.dir.as_ref(), self.owner, first, size)?,
        };
        // Invariant 9: the new segment is durable; now the old one
        // names it.
        if let Some(old) = io.segment.as_mut() {
            let mut seal = Vec::with_capacity(SEAL_LEN);
            encode_seal(&mut seal, first, self.owner.log_id);
            old.write(&seal)?;
            old.file.sync_data()?;
        }
        io.next_segment_size = size.saturating_mul(2).min(self.options.segment_size);
        // A log that fills a segment gets its next one written ahead, if
        // a committer waited for one of the records since the last roll:
        // a faster sync only matters to a waiting committer, and records
        // nobody waits for (`Durability::None`, pipelined commits) are
        // synced in the background, where a spare's zeros would be
        // writes (a segment's size each) for nothing. The first segment
        // since open (or since `retire_through` emptied the log) asks
        // for none: a small database never fills its first one, and
        // keeps no spare.
        if self.spares && io.segment.is_some() && self.awaited.swap(false, Ordering::Relaxed) {
            self.spare.lock().wanted = Some(io.next_segment_size);
            self.spare_work.notify_one();
        }
        self.segments.lock().push((first, segment_name(first)));
        let mut metrics = self.metrics.lock();
        metrics.segments_created += 1;
        metrics.segments_from_spares += u64::from(from_spare);
        metrics.bytes += segment.len;
        io.segment = Some(segment);
        Ok(())
    }

    /// Frees an emptied buffer that a record larger than the cap grew past
    /// twice the cap, so one huge commit does not keep its size allocated;
    /// buffers within that are kept for reuse.
    fn trim(&self, buf: &mut Vec<u8>) {
        if buf.capacity() > self.options.max_queue_bytes.saturating_mul(2) {
            *buf = Vec::new();
        }
    }

    fn sync_active(&self, io: &mut Io) -> Result<()> {
        // Invariant 2: read what is written *before* the sync starts.
        let covered = io.written_seq;
        if covered <= self.durable_seq.load(Ordering::Acquire) {
            return Ok(());
        }
        let Some(segment) = io.segment.as_ref() else {
            return Ok(());
        };
        let start = Instant::now();
        segment.file.sync_data()?;
        let took = start.elapsed();
        self.metrics.lock().record_sync(io.unsynced_records, took);
        self.last_group.store(io.unsynced_records, Ordering::Relaxed);
        self.last_sync_nanos.store(took.as_nanos() as u64, Ordering::Relaxed);
        io.unsynced_records = 0;
        self.publish(covered);
        Ok(())
    }

    fn truncate_through(&self, checkpoint_seq: u64, keep_from: Option<u64>) -> Result<usize> {
        self.check_failed()?;
        let mut segments = self.segments.lock();
        let mut deleted = 0;
        // Segment 0 holds records first..next_first-1; the last is active
        // (after `retire_through`, a leftover it failed to delete, whose
        // records all lie below the next segment's first one).
        while segments.len() >= 2
            && segments[1].0 <= checkpoint_seq.saturating_add(1)
            && keep_from.is_none_or(|keep| segments[0].0 < keep)
        {
            // Deletion stops at the first failure, so leftovers are always
            // the oldest segments.
            if !self.remove_segment(&segments[0].1) {
                break;
            }
            segments.remove(0);
            deleted += 1;
        }
        self.metrics.lock().segments_deleted += deleted as u64;
        Ok(deleted)
    }

    /// Deletes a segment wholly at or below a durable checkpoint; `false`
    /// (counted in the metrics) if that failed.
    ///
    /// Deleting is housekeeping, not durability: every record in the
    /// segment is in the data file and recovery skips a segment wholly at
    /// or below the checkpoint (`reader::read_log`). So unlike a failed
    /// write or sync (invariant 3) a failed unlink does not fail the
    /// journal: the caller keeps the segment listed, and the next
    /// checkpoint retries.
    fn remove_segment(&self, name: &str) -> bool {
        match self.dir.remove(name) {
            Ok(()) => true,
            // Already gone: an earlier attempt unlinked it and then failed
            // to sync the directory. Should the unlink be undone by a
            // crash, recovery skips the file.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => {
                let mut metrics = self.metrics.lock();
                metrics.segment_delete_failures += 1;
                metrics.last_delete_error = Some(format!("removing WAL segment {name}: {e}"));
                false
            }
        }
    }

    fn retire_through(&self, checkpoint_seq: u64) -> Result<bool> {
        self.truncate_through(checkpoint_seq, None)?;
        // Lock order: `io`, then `queue` (as `write_pending`). Holding `io`,
        // nothing is written meanwhile; an append that comes later finds no
        // active segment and starts one (`write_pending`).
        let mut io = self.io.lock();
        {
            let queue = self.queue.lock();
            let last_appended = queue.next_seq - 1;
            // Durable too: a waiter for an unsynced record would otherwise
            // ask a sync of a segment that is gone.
            let durable = self.durable_seq.load(Ordering::Acquire) >= last_appended;
            if queue.records > 0 || !io.pending.is_empty() || last_appended > checkpoint_seq || !durable {
                return Ok(false);
            }
        }
        // Closes the active segment; it and every segment left are now
        // wholly at or below the checkpoint.
        io.segment = None;
        // Oldest first, stopping at the first failure (invariant 9): a
        // leftover's seal always names a segment that is still there.
        let mut segments = self.segments.lock();
        let before = segments.len();
        while let Some((_, name)) = segments.first() {
            if !self.remove_segment(name) {
                break;
            }
            segments.remove(0);
        }
        self.metrics.lock().segments_deleted += (before - segments.len()) as u64;
        Ok(segments.is_empty())
    }

    fn run_sync_thread(self: Arc<Self>) {
        loop {
            match catch_unwind(AssertUnwindSafe(|| self.sync_round())) {
                Ok(true) => {}
                Ok(false) => return,
                Err(panic) => {
                    self.degrade(panic.as_ref());
                    return;
                }
            }
        }
    }

    /// Waits for work, then flushes; returns whether to keep going.
    fn sync_round(&self) -> bool {
        {
            let mut q = self.queue.lock();
            loop {
                if self.failed.load(Ordering::Acquire) {
                    return false;
                }
                let behind = self.durable_seq.load(Ordering::Acquire) < q.next_seq - 1;
                let interval_over = q.oldest.is_some_and(|t| t.elapsed() >= self.options.sync_interval);
                if behind && (q.sync_wanted || q.shutdown || interval_over) {
                    break;
                }
                if q.shutdown {
                    return false;
                }
                q.sync_wanted = false;
                // An interval past the clock's range (`Duration::MAX`: "never
                // on time alone") waits for a request, as with nothing queued.
                match q.oldest.and_then(|t| t.checked_add(self.options.sync_interval)) {
                    Some(deadline) => {
                        self.work.wait_until(&mut q, deadline);
                    }
                    None => self.work.wait(&mut q),
                }
            }
        }
        self.gather();
        self.flush_locally().is_ok()
    }

    /// Group commit's one deliberate delay. The committers the last sync
    /// woke are re-appending right now; if fewer records are queued than
    /// that sync covered, yield until they are (or half of the last
    /// sync's duration has passed), so they share this sync instead of each
    /// starting their own. A lone committer never waits: its group was one.
    ///
    /// Only woken committers are waited for: a record nobody waited for
    /// (a pipelined commit whose durability is reported by a callback, as
    /// sluicedb-raft's appends are) brings no committer back, and waiting
    /// for its like to arrive only delays the sync.
    fn gather(&self) {
        /// Bounds the yields whatever the clock says.
        const MAX_YIELDS: u32 = 256;
        let want = self.gather_target();
        if want == 0 {
            return;
        }
        let budget = Duration::from_nanos(self.last_sync_nanos.load(Ordering::Relaxed) / 2);
        let start = Instant::now();
        for _ in 0..MAX_YIELDS {
            thread::yield_now();
            if self.queue.lock().records >= want || start.elapsed() >= budget {
                return;
            }
        }
    }

    /// The records `gather` waits for: one per committer the last sync
    /// woke, at most as many as it covered.
    fn gather_target(&self) -> u64 {
        self.last_group
            .load(Ordering::Relaxed)
            .min(self.last_woken.load(Ordering::Relaxed))
    }

    /// The spare thread (invariant 8): makes the spare each roll asks for,
    /// until the journal is dropped. A spare it fails to make is counted
    /// ([`JournalMetrics::spare_failures`]) and its file deleted; the roll
    /// that finds none creates its segment as before, so a failure here
    /// costs speed, never the log.
    fn run_spare_thread(self: Arc<Self>) {
        loop {
            let size = {
                let mut spare = self.spare.lock();
                loop {
                    if spare.shutdown {
                        return;
                    }
                    // One spare at most: while one is ready, the roll that
                    // takes it has not come (or failed), and its name is
                    // taken. It serves the next roll, whatever its size.
                    if let Some(size) = spare.wanted.take()
                        && spare.ready.is_none()
                    {
                        break size;
                    }
                    self.spare_work.wait(&mut spare);
                }
            };
            match catch_unwind(AssertUnwindSafe(|| self.make_spare(size))) {
                Ok(Ok(Some(file))) => {
                    let mut spare = self.spare.lock();
                    if !spare.shutdown {
                        spare.ready = Some((file, size));
                        continue;
                    }
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => self.spare_failed(&e.to_string()),
                Err(_) => self.spare_failed("the spare thread panicked"),
            }
            // Shut down mid-spare, or failed: the file is no use.
            let _ = self.dir.remove(SPARE_NAME);
        }
    }

    /// Writes a spare of `size` zero bytes and syncs it; `None` if the
    /// journal began to shut down meanwhile.
    fn make_spare(&self, size: u64) -> std::io::Result<Option<Box<dyn StorageBackend>>> {
        // The name is free unless a file this thread could not delete is
        // left (the open deletes a crash's, a failed spare deletes its own):
        // that counts as a failed spare. Never deleted here by name: the
        // file under it could be the one a roll holds and is renaming.
        let file = self.dir.create(SPARE_NAME)?;
        let zeros = vec![0u8; SPARE_CHUNK];
        let mut at = 0;
        while at < size {
            if self.spare.lock().shutdown {
                return Ok(None);
            }
            let n = (size - at).min(SPARE_CHUNK as u64) as usize;
            file.write(at, &zeros[..n])?;
            at += n as u64;
        }
        file.sync_data()?;
        Ok(Some(file))
    }

    fn spare_failed(&self, why: &str) {
        let mut metrics = self.metrics.lock();
        metrics.spare_failures += 1;
        metrics.last_spare_error = Some(why.to_string());
    }

    fn degrade(&self, panic: &(dyn Any + Send)) {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        if !self.degraded.swap(true, Ordering::AcqRel) {
            eprintln!(
                "sluicedb: writing the WAL panicked ({message}); committers now write and sync the log themselves"
            );
        }
        self.metrics.lock().degraded = true;
        self.wake_all();
    }
}

// Under the `shuttle` feature the journal's threads and locks work only
// inside a shuttle test; these run on the real ones.
#[cfg(all(test, not(feature = "shuttle")))]
mod tests {
    use super::*;
    use crate::io::MemLogDir;

    const DB: u128 = 3;

    fn open_at(dir: &MemLogDir, after: u64) -> Result<(Journal, Recovery)> {
        Journal::open(dir.clone(), DB, after, JournalOptions::default(), |_, _| Ok(()))
    }

    /// A segment starting at `first` holding records `seqs`, planted as is.
    fn plant(dir: &MemLogDir, first: u64, seqs: &[u64]) {
        use super::super::record::{SegmentHeader, encode_record};
        let mut bytes = SegmentHeader {
            db_id: DB,
            log_id: 0,
            first_seq: first,
        }
        .encode()
        .to_vec();
        for &seq in seqs {
            encode_record(&mut bytes, seq, b"crafted");
        }
        let file = dir.create(&segment_name(first)).unwrap();
        file.write(0, &bytes).unwrap();
    }

    /// The segment a data file names (`engine::log_tail`) survives a
    /// checkpoint's truncation, with every later one, though its records
    /// lie at or below the checkpoint; without it named, they go.
    #[test]
    fn truncation_keeps_the_named_segment_and_the_ones_after_it() {
        let (dir, journal, last) = rolling_journal();
        let segments = segment_files;
        let all = segments(&dir);
        let (_, second) = journal.segment_holding(all[1].trim_end_matches(".wal").parse().unwrap()).unwrap().unwrap();
        assert_eq!(segment_name(second), all[1], "the segment holding its own first record");
        journal.truncate_keeping(last, Some(second)).unwrap();
        assert_eq!(segments(&dir), all[1..], "the named segment and the later ones stay");
        journal.truncate_through(last).unwrap();
        assert_eq!(segments(&dir), all[all.len() - 1..], "unnamed, all but the active one go");
    }

    /// The segment files in `dir`, in sequence order.
    fn segment_files(dir: &MemLogDir) -> Vec<String> {
        let mut names: Vec<String> = dir.list().unwrap().into_iter().filter(|n| n.ends_with(".wal")).collect();
        names.sort();
        names
    }

    /// A journal of 4 KiB segments that rolled several times (each segment
    /// sealed into the next: invariant 9): its directory, the journal and
    /// its last sequence.
    fn rolling_journal() -> (MemLogDir, Journal, u64) {
        let dir = MemLogDir::new();
        let options = JournalOptions {
            segment_size: 4096,
            first_segment_size: 4096,
            ..JournalOptions::default()
        };
        let (journal, _) = Journal::open(dir.clone(), DB, 0, options, |_, _| Ok(())).unwrap();
        let mut last = 0;
        for _ in 0..20 {
            // One record a write, so that segments fill and roll.
            last = journal.append(&[7u8; 900]).unwrap();
            journal.wait_for_sync(last).unwrap();
        }
        let all = segment_files(&dir);
        assert!(all.len() >= 4, "the records span several segments: {all:?}");
        (dir, journal, last)
    }

    /// [`rolling_journal`]'s log, closed: its directory, segment names and
    /// last sequence.
    fn rolled_log() -> (MemLogDir, Vec<String>, u64) {
        let (dir, journal, last) = rolling_journal();
        drop(journal);
        let all = segment_files(&dir);
        (dir, all, last)
    }

    /// Segment `name`'s bytes.
    fn bytes_of(dir: &MemLogDir, name: &str) -> Vec<u8> {
        let file = dir.open(name).unwrap();
        let mut bytes = vec![0; file.len().unwrap() as usize];
        file.read(0, &mut bytes).unwrap();
        bytes
    }

    #[test]
    fn a_log_whose_newest_segment_is_gone_is_refused_unless_repairing() {
        let (dir, all, last) = rolled_log();
        let newest = all.last().unwrap().clone();
        dir.remove(&newest).unwrap();
        let err = open_at(&dir, 0).err().expect("a sealed last segment is refused");
        assert!(matches!(err, StorageError::Corrupted(_)), "{err}");
        assert!(err.to_string().contains(newest.as_str()), "{err}");
        assert_eq!(segment_files(&dir), all[..all.len() - 1], "the refused open changed the log");

        let repair = JournalOptions {
            repair: true,
            ..JournalOptions::default()
        };
        let (journal, recovery) = Journal::open(dir.clone(), DB, 0, repair, |_, _| Ok(())).unwrap();
        assert_eq!(recovery.missing_segment.as_deref(), Some(newest.as_str()));
        assert!(recovery.repaired);
        assert!(recovery.last_seq < last, "the missing segment's records are lost");
        // The log goes on where the missing segment began.
        let next = journal.append(b"after the repair").unwrap();
        journal.wait_for_sync(next).unwrap();
        assert_eq!(segment_name(next), newest);
        drop(journal);
        let (_, recovery) = open_at(&dir, 0).expect("a repaired log opens plainly");
        assert_eq!(recovery.last_seq, next);
    }

    #[test]
    fn a_seal_naming_a_segment_without_records_is_cut_before_that_segment_goes() {
        let (dir, all, _) = rolled_log();
        // As a crash right after the roll leaves it: the header, no record.
        let newest = all.last().unwrap();
        dir.open(newest).unwrap().set_len(SEGMENT_HEADER_LEN as u64).unwrap();
        let (journal, recovery) = open_at(&dir, 0).unwrap();
        assert_eq!(segment_name(recovery.last_seq + 1), *newest);
        assert!(recovery.missing_segment.is_none());
        // No append: the log ends in the once sealed segment, whose seal
        // must be gone with the segment it named.
        drop(journal);
        assert_eq!(segment_files(&dir), all[..all.len() - 1]);
        open_at(&dir, 0).expect("no seal names a deleted segment");
    }

    #[test]
    fn a_torn_seal_before_the_next_segment_reads_as_the_log_going_on() {
        let (dir, all, last) = rolled_log();
        let sealed = &all[all.len() - 2];
        let mut bytes = bytes_of(&dir, sealed);
        let seal = bytes.windows(8).position(|w| w == [0xff; 8]).expect("the roll sealed it");
        for byte in &mut bytes[seal + RECORD_HEADER_LEN..seal + SEAL_LEN] {
            *byte = 0x55;
        }
        dir.open(sealed).unwrap().write(0, &bytes).unwrap();
        let (_, recovery) = open_at(&dir, 0).expect("a torn seal is what a crash during the roll leaves");
        assert_eq!(recovery.last_seq, last, "every record is read past it");
    }

    #[test]
    fn a_checkpoint_at_the_end_of_the_sequence_space_is_an_error_not_a_panic() {
        let err = open_at(&MemLogDir::new(), u64::MAX).err().expect("refused");
        assert!(matches!(err, StorageError::Corrupted(_)), "{err}");
        assert!(err.to_string().contains("sequence"), "{err}");
    }

    #[test]
    fn appends_stop_with_an_error_at_the_end_of_the_sequence_space() {
        let dir = MemLogDir::new();
        let (journal, _) = open_at(&dir, u64::MAX - 2).unwrap();
        let seq = journal.append(b"the last one").unwrap();
        assert_eq!(seq, u64::MAX - 1);
        journal.wait_for_sync(seq).unwrap();
        let err = journal.append(b"one too many").expect_err("refused");
        assert!(err.to_string().contains("sequence"), "{err}");
        assert!(journal.failure().is_none(), "refusing an append is not an I/O failure");
        assert_eq!(journal.last_seq(), u64::MAX - 1, "no sequence consumed");
        drop(journal);
        let (_, recovery) = open_at(&dir, u64::MAX - 2).unwrap();
        assert_eq!(recovery.last_seq, u64::MAX - 1);
    }

    #[test]
    fn a_payload_of_another_length_than_announced_is_refused_and_consumes_no_sequence() {
        let dir = MemLogDir::new();
        let (journal, _) = open_at(&dir, 0).unwrap();
        let first = journal.append_encoded(5, SyncBy::Caller, |out| out.extend_from_slice(b"first")).unwrap();
        let err = journal
            .append_encoded(5, SyncBy::Caller, |out| out.extend_from_slice(b"longer"))
            .expect_err("refused");
        assert!(matches!(err, StorageError::Internal(_)), "{err}");
        assert!(journal.failure().is_none(), "a refused record is not an I/O failure");
        let next = journal.append_with(b"next", SyncBy::Caller).unwrap();
        assert_eq!(next, first + 1, "no sequence consumed");
        journal.wait_for_sync(next).unwrap();
        drop(journal);
        let mut replayed = Vec::new();
        Journal::open(dir, DB, 0, JournalOptions::default(), |seq, payload| {
            replayed.push((seq, payload.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(replayed, vec![(first, b"first".to_vec()), (next, b"next".to_vec())]);
    }

    #[test]
    fn a_record_carrying_the_largest_sequence_is_a_clear_error() {
        let dir = MemLogDir::new();
        plant(&dir, u64::MAX - 1, &[u64::MAX - 1, u64::MAX]);
        let err = open_at(&dir, u64::MAX - 2).err().expect("refused");
        assert!(matches!(err, StorageError::Corrupted(_)), "{err}");
        assert!(err.to_string().contains("sequence"), "{err}");
        let dir = MemLogDir::new();
        plant(&dir, u64::MAX, &[u64::MAX]);
        let err = open_at(&dir, u64::MAX - 1).err().expect("refused");
        assert!(matches!(err, StorageError::Corrupted(_)), "{err}");
    }

    /// Waits (up to ten seconds) until `done` holds, giving the sync thread
    /// time; panics naming `what` if it never does.
    fn eventually(what: &str, done: impl Fn() -> bool) {
        for _ in 0..10_000 {
            if done() {
                return;
            }
            thread::sleep(Duration::from_millis(1));
        }
        panic!("{what} never happened");
    }

    /// Group commit waits only for committers a sync woke: records whose
    /// durability nobody waited for (pipelined commits) bring nobody back,
    /// so the next sync does not wait for their like; a waiting future
    /// does count.
    #[test]
    fn gather_waits_only_for_the_committers_a_sync_woke() {
        // Only asked-for syncs: none comes by the interval.
        let options = JournalOptions {
            sync_interval: Duration::from_secs(3600),
            ..JournalOptions::default()
        };
        let (journal, _) = Journal::open(MemLogDir::new(), DB, 0, options, |_, _| Ok(())).unwrap();
        journal.append(b"a").unwrap();
        let b = journal.append(b"b").unwrap();
        // Nobody waits: the sync thread is asked to sync, as for a
        // pipelined commit whose durability a callback reports.
        journal.inner.request_sync();
        eventually("record b durable", || journal.is_durable(b));
        assert_eq!(journal.inner.last_group.load(Ordering::Relaxed), 2);
        assert_eq!(journal.inner.last_woken.load(Ordering::Relaxed), 0);
        assert_eq!(journal.inner.gather_target(), 0, "no committer to wait for");

        // Two futures wait for the next two records: one sync wakes both.
        struct Flag(AtomicBool);
        impl std::task::Wake for Flag {
            fn wake(self: Arc<Self>) {
                self.0.store(true, Ordering::Release);
            }
        }
        let c = journal.append(b"c").unwrap();
        let d = journal.append(b"d").unwrap();
        let flags: Vec<Arc<Flag>> = (0..2).map(|_| Arc::new(Flag(AtomicBool::new(false)))).collect();
        {
            // Holding the log's I/O keeps the sync the first poll asks for
            // from landing before the second future is registered.
            let _io = journal.inner.io.lock();
            for (seq, flag) in [c, d].into_iter().zip(&flags) {
                let waker = Waker::from(flag.clone());
                let polled = journal.poll_durable(seq, &mut Context::from_waker(&waker));
                assert!(polled.is_pending(), "record {seq} is not synced yet");
            }
        }
        // The sync thread wakes the futures just after publishing.
        eventually("both futures woken", || flags.iter().all(|f| f.0.load(Ordering::Acquire)));
        assert!(journal.is_durable(d));
        assert_eq!(journal.inner.last_group.load(Ordering::Relaxed), 2);
        assert_eq!(journal.inner.last_woken.load(Ordering::Relaxed), 2);
        assert_eq!(journal.inner.gather_target(), 2);
    }

    /// The class: whatever sequence numbers the data file's checkpoint and
    /// the segments' names, headers and records claim, opening and
    /// appending return results, never panic or wrap.
    #[test]
    fn no_combination_of_edge_sequence_numbers_panics_or_wraps() {
        let edges = [0, 1, 2, 1 << 63, u64::MAX - 2, u64::MAX - 1, u64::MAX];
        for &after in &edges {
            for &first in &edges {
                for &second in &edges {
                    let dir = MemLogDir::new();
                    plant(&dir, first, &[first, second]);
                    let Ok((journal, recovery)) = open_at(&dir, after) else {
                        continue;
                    };
                    let last = recovery.last_seq.max(after);
                    match journal.append(b"next") {
                        Ok(seq) => assert_eq!(Some(seq), last.checked_add(1), "{after} {first} {second}"),
                        Err(_) => assert_eq!(last, u64::MAX - 1, "{after} {first} {second}"),
                    }
                }
            }
        }
    }
}
