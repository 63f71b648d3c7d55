//! The engine: recovery, the writer slot, the commit pipeline's shared
//! state, publication, and the statistics.
//!
//! # Thread safety and locks
//! - `writer` (+ `writer_free`): the single writer slot. Held by a
//!   `WriteTxn` from `begin_write` until its record is appended and its
//!   writes are in the active memtable (AppendWAL), then released, so the next
//!   writer builds while this one waits for its sync.
//! - `state`: the current [`State`]. Read-locked for one `Arc` clone;
//!   write-locked only to swap in a new state (publish, freeze, flush).
//! - `publication`: which committed sequences may be shown to readers.
//! - `comparators`: each table id's key order.
//!
//! Lock order: `publication` before `state`. No lock is held across I/O
//! except the writer slot (the WAL append does none) and the tree writer's.
//!
//! # Publication rule
//! Sequences are published strictly in commit order, and a sequence committed
//! with `Durability::Immediate` is published only once it is durable:
//! `published = (oldest non-durable Immediate commit) - 1`, or the last
//! committed sequence if there is none. `Durability::None` commits are thus
//! visible as soon as every earlier commit is.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, MutexGuard, RwLock};

use super::id_hash::IdMap;
use super::apply::ApplyControl;
use super::batch::{Batch, DataOp, Frame};
use super::inserter::Inserter;
use super::memtable::{Memtable, entry_charge};
use super::pending::PendingRun;
use super::publication::Publication;
use super::recovery::Recovered;
use super::flush_marker::FlushMarker;
use super::log_tail::{LogTail, Segment};
use super::state::{State, ViewMemo};
use super::tree_filter::TreeFilters;
use super::txn::WriterScratch;
use crate::btree::{Comparator, TreeStore, TreeStoreOptions, TreeWriter, fresh_db_id};
use crate::error::{Result, StorageError};
use crate::hugepage::Pages;
use crate::io::{Failure, LogDir, StorageBackend};
use crate::wal::{Journal, JournalOptions, Recovery};

/// Finds the key order of a table from its stored metadata (the layer above
/// encodes its key type there). Tables opened in this process register their
/// comparator directly; this is asked for the others, during recovery.
pub type Resolver = fn(&[u8]) -> Option<Comparator>;

/// A memtable grows to this share of the tree (its size over this), within
/// [`EngineOptions::memtable_bytes`] and
/// [`EngineOptions::max_memtable_bytes`].
///
/// Why: a flush rewrites every leaf one of its keys falls in. A memtable far
/// smaller than the tree puts a few keys in each of most leaves, so each
/// key costs a large share of a page's write: at 10M keys (a 1.2 GiB tree,
/// about 350K leaves) a 64 MiB memtable holds about 500K keys, and blind
/// overwrites ran at 191K/s against 246K/s with 160 MiB memtables, about
/// an eighth of that tree (probe, 30 rounds of 100 durable 1000-key
/// batches each; overwrites through `insert` 177K -> 192K/s). A tree under
/// eight times `memtable_bytes` (512 MiB by default) keeps that size.
pub const MEMTABLE_TREE_SHARE: usize = 8;

/// The tree size from which new memtables put their point index on huge
/// pages (`Inner::huge_index`): the default memtable's size, so that the
/// index's 4 MiB are at most a sixteenth of the database.
pub(crate) const HUGE_INDEX_TREE_BYTES: u64 = 64 << 20;

/// Engine tuning.
#[derive(Clone, Copy, Debug)]
pub struct EngineOptions {
    /// Bytes of page cache for the tree.
    pub cache_bytes: usize,
    /// The active memtable is frozen once it holds this many bytes, or an
    /// eighth of the tree's size if that is more, up to
    /// [`max_memtable_bytes`](Self::max_memtable_bytes) (see
    /// [`MEMTABLE_TREE_SHARE`]).
    pub memtable_bytes: usize,
    /// The most a memtable grows to with the tree. At most
    /// `memtable_bytes` (0, the default here; a database's `Builder` sets
    /// 256 MiB) keeps every memtable at that size.
    pub max_memtable_bytes: usize,
    /// Frozen memtables queued behind the one being flushed may hold this
    /// many bytes before writers are slowed (past three quarters) and then
    /// blocked (past all of it); scaled by the memtable's growth, so that
    /// as many memtables fit. The memtable being flushed is not counted:
    /// one large transaction (a bulk load far above the memtable size) must
    /// not stall the writers after it while the apply thread flushes it, and
    /// memory stays bounded by this budget plus that one memtable.
    pub max_frozen_bytes: usize,
    /// Bytes of WAL records that may wait in memory to be written before
    /// committers block (see [`JournalOptions::max_queue_bytes`]; default
    /// [`crate::wal::DEFAULT_MAX_QUEUE_BYTES`]).
    pub max_wal_queue_bytes: usize,
    /// The loss window of `Durability::None` commits.
    pub sync_interval: Duration,
    /// WAL segment size.
    pub segment_bytes: u64,
    /// A checkpoint is taken once this many WAL bytes were written since the
    /// last one: it bounds the log replayed at reopen, and (below a
    /// memtable's worth) makes every flush a checkpoint, so the WAL
    /// segments it covers go at once.
    pub checkpoint_wal_bytes: u64,
    /// A flush commits durably each time it has written this many bytes of
    /// pages, so that the pages it replaced are reused by its next ones
    /// instead of the file growing by a whole tree (`engine::flush_marker`).
    pub flush_commit_bytes: u64,
    /// A checkpoint is also taken once commits have stopped for this long
    /// with some not yet in the tree: an idle database's, so that one left
    /// alone ends with its data in the tree and its log empty (a busy one
    /// checkpoints by volume). Measured from the last commit, not the last
    /// checkpoint (`engine::apply`, `IdleTrigger`).
    pub checkpoint_interval: Duration,
    /// Key order of tables not opened since the process started, from
    /// their metadata; `None` defers their recovered records (see
    /// `engine::deferred`).
    pub resolver: Resolver,
    /// The largest WAL payload one commit may produce; a larger transaction
    /// fails alone with `StorageError::ValueTooLarge`. At most (and by
    /// default) [`crate::wal::MAX_PAYLOAD`].
    pub max_commit_bytes: usize,
    /// A commit whose WAL payload would be at least this many bytes goes
    /// straight into the tree instead of through the WAL and the memtable
    /// (`engine::tree_commit`): a bulk load then costs one pass over the
    /// tree and one checkpoint, and leaves no memtable behind for the apply
    /// thread to flush while later writers wait. Default 64 MiB, the
    /// default memtable size: a commit that big would fill a memtable alone.
    pub tree_commit_bytes: usize,
    /// Whether recovery may discard valid WAL records behind damage in the
    /// middle of the log (keeping the prefix before it). Off, such damage
    /// is a `Corrupted` error at open; a torn tail never needs it.
    pub repair_wal: bool,
    /// Opened for a read-only database: the open writes nothing to the
    /// data file (no new log id, see `continued_log`; a read-only open's
    /// WAL is an in-memory copy of the log on disk, and its commits, which
    /// the read-only API never makes, would reach no disk).
    pub read_only: bool,
    /// The WAL does not survive the process (a memory log under a
    /// redb-shaped backend): a [`PendingCommit`](super::PendingCommit) is
    /// then durable only once a checkpoint holds its commit, and waiting for
    /// it checkpoints; the data file names no segment of it
    /// (`engine::log_tail`), since after a crash it is always empty.
    pub volatile_wal: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            cache_bytes: 1 << 30,
            memtable_bytes: 64 << 20,
            max_memtable_bytes: 0,
            tree_commit_bytes: 64 << 20,
            max_frozen_bytes: 256 << 20,
            max_wal_queue_bytes: crate::wal::DEFAULT_MAX_QUEUE_BYTES,
            sync_interval: Duration::from_millis(20),
            segment_bytes: 16 << 20,
            checkpoint_wal_bytes: 16 << 20,
            flush_commit_bytes: 16 << 20,
            checkpoint_interval: Duration::from_secs(30),
            resolver: |_| None,
            max_commit_bytes: crate::wal::MAX_PAYLOAD,
            repair_wal: false,
            read_only: false,
            volatile_wal: false,
        }
    }
}

/// Durability of one commit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledged once appended to the WAL and visible at once (after every
    /// earlier commit); made durable by the sync thread within the sync
    /// interval. A crash may lose it (and every later commit), never part of it.
    None,
    /// Acknowledged once its WAL record is synced; visible from then on.
    #[default]
    Immediate,
}

/// Engine counters. See [`Stats`](crate::engine::Stats) for their meaning.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) commits: AtomicU64,
    pub(crate) checkpoints: AtomicU64,
    pub(crate) flushes: AtomicU64,
    /// Flush passes (`Stats::flush_passes`).
    pub(crate) flush_passes: AtomicU64,
    /// Durable commits flushes made part way (`engine::flush_marker`).
    pub(crate) part_commits: AtomicU64,
    /// Commits applied straight to the tree (`engine::tree_commit`).
    pub(crate) tree_commits: AtomicU64,
    pub(crate) stalls: AtomicU64,
    pub(crate) slowdowns: AtomicU64,
    /// Times a flush gave way to the committers between slices.
    pub(crate) flush_yields: AtomicU64,
    /// The highest sequence flushed into the tree.
    pub(crate) flushed_seq: AtomicU64,
    /// WAL bytes written as of the last checkpoint.
    pub(crate) wal_bytes_at_checkpoint: AtomicU64,
    /// Time spent flushing memtables (nanoseconds, summed).
    pub(crate) flush_nanos: AtomicU64,
    /// Time spent checkpointing (nanoseconds, summed).
    pub(crate) checkpoint_nanos: AtomicU64,
    /// Time writers spent blocked by backpressure (nanoseconds, summed).
    pub(crate) stall_nanos: AtomicU64,
    /// Time writers spent slowed by backpressure (nanoseconds, summed).
    pub(crate) slowdown_nanos: AtomicU64,
}

/// Nanoseconds since `start`, saturating.
pub(crate) fn nanos_since(start: std::time::Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

pub(crate) struct Inner {
    pub(crate) options: EngineOptions,
    /// The memtable size now: see [`Inner::memtable_bytes`].
    memtable_target: AtomicUsize,
    /// Whether new memtables put their point index on huge pages: once the
    /// last flush left a tree of [`HUGE_INDEX_TREE_BYTES`] or more. A
    /// lookup's probe of a random slot of a 4 MiB table on base pages
    /// missed the TLB (`design/pipeline.md`, "point index"); a small
    /// database's few keys would instead hold two huge pages where they
    /// touch a few base pages.
    huge_index: AtomicBool,
    pub(crate) trees: TreeStore,
    pub(crate) journal: Journal,
    pub(crate) state: RwLock<Arc<State>>,
    /// Counts the published states that read through fewer or other
    /// sources than the one before: a new tree (a flush, a part of one, a
    /// tree commit, a compaction) or a pending run gone into the memtable.
    /// A read table asks for the current state only when this has moved.
    pub(crate) view_generation: AtomicU64,
    /// Tree commits with content that no published state shows yet: a tree
    /// commit from its step 2 to its publication, a flush from its last
    /// commit to its publication (both release the tree writer in between;
    /// part commits publish before they let it go). A compaction takes the
    /// writer only when this is zero, so the tree it relocates and publishes
    /// holds nothing unpublished ([`UnpublishedTree`]).
    pub(crate) unpublished_trees: AtomicU64,
    /// This engine instance among every one this process opens; never
    /// reused, unlike the instance's address once it is freed.
    pub(crate) instance: u64,
    /// The WAL segments the durable commit of the data file names
    /// (`engine::log_tail`): a checkpoint's truncation keeps them.
    pub(crate) log_tail: Mutex<LogTail>,
    writer: Mutex<bool>,
    writer_free: Condvar,
    /// The buffers the last write transaction left the next one.
    pub(crate) writer_scratch: Mutex<Option<WriterScratch>>,
    /// Serializes inserts into the active memtable with freezing it: held by
    /// a commit from its WAL append through its memtable insert (never while
    /// a transaction is being built, never across a wait), and by whoever
    /// freezes. So a checkpoint can freeze while a write transaction is open.
    commit_lock: Mutex<()>,
    pub(crate) publication: Mutex<Publication>,
    /// Once `durable_seq` reaches this, publication can advance.
    publish_hint: AtomicU64,
    comparators: RwLock<IdMap<Comparator>>,
    /// Set once `poison` holds a failure (a lock-free check for hot paths).
    poisoned: AtomicBool,
    /// The engine's first failure: its own (a panic, a broken invariant, an
    /// error a commit or the apply thread met), or the journal's or the tree
    /// store's, adopted by `check_poison`. Answered as `io::Failure` says.
    poison: Mutex<Option<Failure>>,
    pub(crate) apply: ApplyControl,
    /// Inserts big commits into the active memtable (`engine::pending`).
    pub(crate) inserter: Inserter,
    pub(crate) counters: Counters,
    /// What recovery replayed and discarded when this engine opened.
    pub(crate) recovery: RecoveryReport,
    /// The last savepoint id handed out in this process (see
    /// `crate::savepoint`); ids only grow.
    pub(crate) savepoint_ids: AtomicU64,
    /// Live ephemeral savepoints, and persistent ones created in a
    /// transaction still open: counted by `SavepointPin`s, read by
    /// compaction (which they block, as in redb).
    pub(crate) savepoint_pins: [AtomicU64; 2],
    /// The filter of the tree's keys and its builder (`engine::tree_filter`).
    pub(crate) tree_filters: TreeFilters,
}

/// What the WAL recovery at open found; see [`Stats`](crate::engine::Stats).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// WAL records replayed (those after the data file's checkpoint).
    pub replayed_records: u64,
    /// Bytes of those records.
    pub replayed_bytes: u64,
    /// Whether the log ended in a torn record, as a crash during a write
    /// leaves; the torn bytes held nothing acknowledged.
    pub torn_tail: bool,
    /// Valid records discarded behind mid-log damage because repair was on.
    pub discarded_records: u64,
    /// Bytes discarded past the point where reading stopped.
    pub discarded_bytes: u64,
    /// Recovered records of tables whose key order was not known at open,
    /// kept aside until the table is opened (see `engine::deferred`).
    pub deferred_records: u64,
}

/// The logs the database's commits continue in: `(current, previous)`
/// (`Slot::log_id`, `previous_log_id`). The journal writes the current one
/// into every segment, and recovery refuses a record after the checkpoint
/// in a segment of neither. Every writable open starts a new log: it draws
/// a new id and, once the journal has accepted the log it found, makes it
/// durable in the data file, with the old current id as the previous one
/// ([`LogIds::record`]), before any record of the new log can exist. So every copy of a data file that goes
/// its own way (copied alone or with its WAL, on disk or beside an
/// in-memory WAL) writes a log of its own, and a copy put back beside
/// another copy's log is refused rather than replaying it (a state neither
/// copy ever held), while the records this open replays, from the log it
/// found, are still read after a crash (the old id stays accepted only if
/// the open found segments of it). The exception: while a segment of
/// the previous log remains (a crash came before a checkpoint retired it),
/// a new log would leave it unreadable, so the open keeps the ids. A
/// read-only open writes nothing and keeps them too.
fn continued_log(trees: &TreeStore, wal: &impl LogDir, read_only: bool) -> Result<LogIds> {
    let (current, previous) = trees.log_ids();
    let unchanged = LogIds {
        current,
        previous,
        new: false,
    };
    if read_only {
        return Ok(unchanged);
    }
    let found = crate::wal::segment_log_ids(wal)?;
    if previous != 0 && found.contains(&previous) {
        return Ok(unchanged);
    }
    // The current log stays readable only if this open found some of it:
    // a data file copied without its log (its segments elsewhere) must not
    // accept that log, which its original goes on writing.
    let kept = if found.contains(&current) { current } else { 0 };
    // Random (the database id's generator), never 0 (none) nor an id this
    // file or a copy of it may still be writing.
    let mut log_id = fresh_db_id() as u32;
    while log_id == 0 || log_id == current || log_id == previous {
        log_id = log_id.wrapping_add(1);
    }
    Ok(LogIds {
        current: log_id,
        previous: kept,
        new: true,
    })
}

/// The WAL segments the data file names (`engine::log_tail`), once an
/// open has found each with the log id the record gives: an open that
/// cannot find one has lost acknowledged commits the log held (a WAL
/// directory deleted, emptied or replaced by an older copy after a crash)
/// and refuses, unless `repair` accepts the loss.
fn check_log_tail(trees: &TreeStore, wal: &impl LogDir, repair: bool) -> Result<LogTail> {
    let named = LogTail::load(&trees.snapshot())?;
    if repair {
        return Ok(named);
    }
    for segment in named.segments() {
        let name = crate::wal::segment_name(segment.first_seq);
        let found = crate::wal::segment_owner(wal, &name)?;
        if found.is_some_and(|(db_id, log_id)| db_id == trees.db_id() && log_id == segment.log_id) {
            continue;
        }
        let what = match found {
            None if wal.list()?.contains(&name) => "has a damaged header".to_string(),
            None => "is missing".to_string(),
            Some((db_id, _)) if db_id != trees.db_id() => {
                format!("belongs to another database (id {db_id:#x}, expected {:#x})", trees.db_id())
            }
            Some((_, log_id)) => format!(
                "belongs to another copy of this database's log (log {log_id:#x}, expected {:#x})",
                segment.log_id
            ),
        };
        let holds = if Some(segment) == named.tail {
            format!("which holds the commits after the data file's checkpoint {}", trees.durable_checkpoint_seq())
        } else {
            "where the last open of the database began its commits".to_string()
        };
        return Err(StorageError::corrupted(format!(
            "WAL segment {name}, {holds}, {what}: the WAL directory was deleted, emptied or replaced, and \
             acknowledged commits may be lost. Restore the WAL directory beside the data file, or open with the \
             WAL repair option to accept the loss. Nothing was changed."
        )));
    }
    Ok(named)
}

/// The log ids an open continues with ([`continued_log`]).
struct LogIds {
    current: u32,
    previous: u32,
    /// Whether they are new: [`LogIds::record`] writes them into the data
    /// file.
    new: bool,
}

impl LogIds {
    /// Makes new ids durable in the data file, with `named` if given (the
    /// segments the open names: `engine::log_tail`), in a commit at the
    /// unchanged checkpoint. Called once the journal has read and accepted
    /// the log the open found ([`Journal::recover`]), and before anything
    /// is appended: a refused open changes no byte of the data file (it used
    /// to record a new log first, so an open refused for a WAL of another
    /// database had already dropped the database's own log from the accepted
    /// ones, and with it put back it was refused as another copy's:
    /// `tests/open_mishaps_review.rs`), and no record of the new log exists
    /// before the data file names the log (the segment the open starts, of
    /// the new log, holds none until this commit is durable).
    fn record(&self, trees: &TreeStore, checkpoint: u64, named: Option<LogTail>) -> Result<()> {
        if self.new || named.is_some() {
            let mut writer = trees.writer()?;
            if self.new {
                writer.set_log_ids(self.current, self.previous);
            }
            if let Some(named) = named {
                named.write(&mut writer)?;
            }
            writer.commit(checkpoint)?;
        }
        Ok(())
    }
}

/// The engine under a database: owns the tree store, the journal and the
/// background apply thread.
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
    apply_thread: Option<JoinHandle<()>>,
    inserter_thread: Option<JoinHandle<()>>,
}

impl Engine {
    /// Opens (or, if `data` is empty, creates) a database: the tree at its
    /// last checkpoint, then the WAL replayed into the memtable.
    pub fn open(data: impl StorageBackend, wal: impl LogDir, options: EngineOptions) -> Result<Self> {
        Self::open_checked(data, wal, options, |_| Ok(()))
    }

    /// [`open`](Self::open), calling `check` with what recovery found in the
    /// log once it has read and accepted it, before the open changes the log
    /// or the data file (`Journal::recover`): an error from `check` fails
    /// the open with nothing changed (a database's repair callback aborts
    /// the open this way).
    pub fn open_checked(
        data: impl StorageBackend,
        wal: impl LogDir,
        options: EngineOptions,
        check: impl FnOnce(&Recovery) -> Result<()>,
    ) -> Result<Self> {
        let tree_options = TreeStoreOptions {
            cache_bytes: options.cache_bytes,
        };
        let trees = if data.is_empty()? {
            // An empty data file is a new database, unless a log lies beside
            // it: then it is a database whose file was emptied or replaced,
            // and a new one made there would be refused by that log after
            // the file had been written (`tests/open_mishaps_review.rs`).
            let segments = crate::wal::segment_log_ids(&wal)?.len();
            if segments > 0 {
                return Err(StorageError::corrupted(format!(
                    "the data file is empty but its WAL directory holds {segments} segment(s) of a database's \
                     log: it is not a new database (restore its data file, or move the WAL directory away to \
                     create a new database here)"
                )));
            }
            TreeStore::create(data, fresh_db_id(), tree_options)?
        } else {
            TreeStore::open(data, tree_options)?
        };
        let checkpoint = trees.durable_checkpoint_seq();
        let logs = continued_log(&trees, &wal, options.read_only)?;
        let named = check_log_tail(&trees, &wal, options.repair_wal)?;
        let mut recovered = Recovered::load(&trees.snapshot(), options.resolver)?;
        // A flush that committed part way and crashed (`engine::flush_marker`,
        // invariant 3): no memtable may end inside the one it was flushing.
        let marker = FlushMarker::load(&trees.snapshot())?;
        let no_freeze_through = marker.as_ref().map_or(0, |m| m.through);
        let mut active = Arc::new(Memtable::new(options.memtable_bytes));
        let mut frozen: Vec<Arc<Memtable>> = Vec::new();
        let journal_options = JournalOptions {
            segment_size: options.segment_bytes,
            sync_interval: options.sync_interval,
            repair: options.repair_wal,
            max_queue_bytes: options.max_wal_queue_bytes,
            log_id: logs.current,
            previous_log_id: logs.previous,
            ..JournalOptions::default()
        };
        let (log, recovery) = Journal::recover(wal, trees.db_id(), checkpoint, journal_options, |seq, payload| {
            let batch = recovered.route(seq, Batch::decode(payload)?)?;
            apply_batch(&active, seq, batch, &|id| recovered.comparators.get(&id).copied())?;
            if active.bytes() >= options.memtable_bytes && seq > no_freeze_through {
                frozen.insert(
                    0,
                    std::mem::replace(&mut active, Arc::new(Memtable::new(options.memtable_bytes))),
                );
            }
            Ok(())
        })?;
        check(&recovery)?;
        // What the data file names, kept durable through every step below
        // (`engine::log_tail`, invariant 1). A read-only open writes
        // nothing; a volatile WAL is named never.
        let persistent = !options.read_only && !options.volatile_wal;
        // First, if recovery is to delete a segment the data file names (a
        // segment whose every record a crash tore; the segments behind
        // damage a repair drops), the segments that survive, before it
        // deletes any: the one holding the record after the checkpoint, and
        // the last open's first if it survives.
        let survivors = if persistent {
            LogTail {
                tail: log
                    .segment_holding(checkpoint.saturating_add(1))?
                    .map(Segment::from_pair),
                opened: named.opened.filter(|opened| log.keeps(opened.first_seq)),
            }
        } else {
            named
        };
        if survivors != named {
            let mut writer = trees.writer()?;
            survivors.write(&mut writer)?;
            writer.commit(checkpoint)?;
        }
        let journal = log.start()?;
        // Then the segment this open's commits begin in, made now (an older
        // copy of the WAL, put back after this open went on, lacks it), and
        // named with the new log's ids in one commit. The segment holds no
        // record until that commit is durable: should a crash come first,
        // it is a segment of a log the data file does not know with nothing
        // in it, which recovery deletes as it does any empty segment.
        let log_tail = if persistent {
            let opened = Segment::from_pair(journal.start_segment()?);
            match survivors.tail {
                Some(tail) if tail != opened => LogTail {
                    tail: Some(tail),
                    opened: Some(opened),
                },
                _ => LogTail {
                    tail: Some(opened),
                    opened: None,
                },
            }
        } else {
            survivors
        };
        logs.record(&trees, checkpoint, (log_tail != survivors).then_some(log_tail))?;
        // Before anything can checkpoint past them, the deferred records the
        // WAL held move into the data file.
        recovered.stage(&trees, checkpoint)?;
        let last = journal.last_seq().max(checkpoint);
        let deferred = recovered.deferred_tables();
        let count_ahead = marker.map(|marker| {
            let mut ahead = marker.ahead;
            ahead.retain(|id, _| !deferred.contains_key(id));
            Arc::new(ahead)
        });
        let state = State {
            seq: last,
            pending: None,
            active,
            frozen: frozen.into(),
            deferred: Arc::new(deferred),
            tree: trees.snapshot(),
            tree_seq: last,
            tree_filter: None,
            count_ahead,
            tables: Arc::default(),
            views: ViewMemo::default(),
        };
        let report = RecoveryReport {
            replayed_records: recovery.replayed,
            replayed_bytes: recovery.replayed_bytes,
            torn_tail: recovery.torn_tail,
            discarded_records: recovery.discarded_records,
            discarded_bytes: recovery.discarded_bytes,
            deferred_records: state.deferred.values().map(|d| d.len() as u64).sum(),
        };
        let comparators = recovered.comparators;
        let inner = Arc::new(Inner {
            memtable_target: AtomicUsize::new(options.memtable_bytes),
            huge_index: AtomicBool::new(false),
            options,
            trees,
            journal,
            state: RwLock::new(Arc::new(state)),
            view_generation: AtomicU64::new(0),
            unpublished_trees: AtomicU64::new(0),
            instance: {
                static INSTANCES: AtomicU64 = AtomicU64::new(0);
                INSTANCES.fetch_add(1, Ordering::Relaxed)
            },
            log_tail: Mutex::new(log_tail),
            writer: Mutex::new(false),
            writer_free: Condvar::new(),
            writer_scratch: Mutex::new(None),
            commit_lock: Mutex::new(()),
            publication: Mutex::new(Publication::new(last)),
            publish_hint: AtomicU64::new(u64::MAX),
            comparators: RwLock::new(comparators),
            poisoned: AtomicBool::new(false),
            poison: Mutex::new(None),
            apply: ApplyControl::default(),
            inserter: Inserter::default(),
            counters: Counters::default(),
            recovery: report,
            savepoint_ids: AtomicU64::new(0),
            savepoint_pins: [AtomicU64::new(0), AtomicU64::new(0)],
            tree_filters: TreeFilters::default(),
        });
        // Before the apply thread starts: nothing writes the tree meanwhile.
        inner.tree_filters.rebuild_if_full(&inner, 0)?;
        inner.counters.flushed_seq.store(checkpoint, Ordering::Relaxed);
        inner
            .counters
            .wal_bytes_at_checkpoint
            .store(inner.journal.metrics().bytes, Ordering::Relaxed);
        let thread_inner = inner.clone();
        let apply_thread = std::thread::Builder::new()
            .name("sluicedb-apply".into())
            .spawn(move || super::apply::run(thread_inner))
            .map_err(|e| {
                inner.tree_filters.shutdown();
                StorageError::Io(e)
            })?;
        let thread_inner = inner.clone();
        let spawned = std::thread::Builder::new()
            .name("sluicedb-insert".into())
            .spawn(move || {
                thread_inner.inserter.run(|run, failure| match failure {
                    None => thread_inner.clear_pending(run),
                    // The memtable holds part of the commit: stop at once.
                    Some(cause) => thread_inner.poison_with(Failure::Other(cause.to_string())),
                })
            });
        let mut engine = Self {
            inner,
            apply_thread: Some(apply_thread),
            inserter_thread: None,
        };
        // On failure, dropping `engine` stops the apply thread.
        engine.inserter_thread = Some(spawned.map_err(StorageError::Io)?);
        Ok(engine)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.inner.tree_filters.shutdown();
        self.inner.apply.shutdown();
        if let Some(thread) = self.apply_thread.take() {
            let _ = thread.join();
        }
        self.inner.inserter.shutdown();
        if let Some(thread) = self.inserter_thread.take() {
            let _ = thread.join();
        }
    }
}

/// Applies a committed batch to a memtable at `seq`: everything but its
/// data (see [`apply_frame`]); returns the data, to insert here
/// ([`insert_ops`]) or, for a big commit, as a [`PendingRun`] by the
/// inserter thread (see `engine::pending`). Every table the batch writes
/// must have a comparator in `cmp_of`: a missing one is refused before
/// anything is applied, never replaced by byte order (the skip list would
/// then misplace the keys).
pub(crate) fn apply_metadata(
    mem: &Memtable,
    seq: u64,
    batch: Batch,
    cmp_of: &dyn Fn(u64) -> Option<Comparator>,
) -> Result<Vec<DataOp>> {
    let Batch {
        bindings,
        dropped,
        ops,
        counts,
    } = batch;
    if let Some(Err(table)) = table_runs(&ops, cmp_of).find(Result::is_err) {
        return Err(StorageError::corrupted(format!(
            "commit {seq} writes to table {table} of unknown key order"
        )));
    }
    let charge = ops.iter().map(|op| entry_charge(&op.key, op.value.as_deref())).sum();
    apply_frame(mem, seq, &mut Frame { bindings, dropped, counts }, charge);
    Ok(ops)
}

/// Applies a commit's `frame` to a memtable at `seq` (name bindings,
/// dropped tables, count changes), charges it `charge` bytes for the
/// commit's data and notes the sequence. Runs before the data is inserted:
/// a reader that finds the data finds the tables it belongs to. Leaves
/// the frame's lists empty, with their room (a commit's count list goes
/// back to its writer: `WriteSet::recycle_commit`).
pub(crate) fn apply_frame(mem: &Memtable, seq: u64, frame: &mut Frame, charge: usize) {
    for (name, def) in frame.bindings.drain(..) {
        mem.bind(seq, &name, def);
    }
    for id in frame.dropped.drain(..) {
        mem.drop_table(seq, id);
    }
    for (table, change) in frame.counts.drain(..) {
        mem.add_count(seq, table, change);
    }
    mem.charge(charge);
    mem.note_seq(seq);
}

/// Each table's run of `ops` (grouped by table, as a batch holds them) with
/// the table's comparator from `cmp_of`, or `Err` with a table it does not
/// know.
pub(crate) fn table_runs<'a>(
    ops: &'a [DataOp],
    cmp_of: &'a dyn Fn(u64) -> Option<Comparator>,
) -> impl Iterator<Item = std::result::Result<(Comparator, &'a [DataOp]), u64>> + 'a {
    ops.chunk_by(|a, b| a.table == b.table)
        .map(|run| cmp_of(run[0].table).map(|cmp| (cmp, run)).ok_or(run[0].table))
}

/// Inserts runs of writes into the memtable at `seq`, one thread, in order:
/// each run is a table's (its id and comparator, then its writes in that
/// comparator's order, `None` for a removal), so the skip list's splice
/// makes each insert a short search from the previous one. REQUIRES: the
/// memtable's single writer (the commit lock held by the caller, or the
/// inserter's job). Then starts a build of the memtable's seek index if one
/// is due ([`Memtable::maintain`]).
pub(crate) fn insert_runs<'k, W>(mem: &Arc<Memtable>, seq: u64, runs: impl Iterator<Item = (u64, Comparator, W)>)
where
    W: Iterator<Item = (&'k [u8], Option<&'k [u8]>)>,
{
    let mut inserter = mem.inserter();
    for (table, cmp, writes) in runs {
        inserter.insert_sorted(table, cmp, seq, writes);
    }
    drop(inserter);
    mem.maintain();
}

/// [`insert_runs`] of a batch's data, grouped by table (as a batch and a
/// [`PendingRun`] hold it), each group with its comparator.
pub(crate) fn insert_ops<'a>(mem: &Arc<Memtable>, seq: u64, runs: impl Iterator<Item = (Comparator, &'a [DataOp])>) {
    let runs = runs.map(|(cmp, ops)| {
        let writes = ops.iter().map(|op| (&op.key[..], op.value.as_deref()));
        (ops[0].table, cmp, writes)
    });
    insert_runs(mem, seq, runs);
}

/// [`apply_metadata`] and [`insert_ops`] in one: the whole batch, inline.
pub(crate) fn apply_batch(
    mem: &Arc<Memtable>,
    seq: u64,
    batch: Batch,
    cmp_of: &dyn Fn(u64) -> Option<Comparator>,
) -> Result<()> {
    let ops = apply_metadata(mem, seq, batch, cmp_of)?;
    let runs = table_runs(&ops, cmp_of).map(|run| run.expect("apply_metadata checked every table's order"));
    insert_ops(mem, seq, runs);
    Ok(())
}

/// The message a panic carried, for the poison cause.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}


impl Inner {
    /// Refuses an operation that begins after the engine failed:
    /// `PreviousIo` if the failure was an I/O error, `Poisoned` with the
    /// cause otherwise. A failure the journal or the tree store latched
    /// first becomes the engine's here.
    pub(crate) fn check_poison(&self) -> Result<()> {
        match self.failure() {
            Some(failure) => Err(failure.later_error()),
            None => Ok(()),
        }
    }

    /// For an operation that was under way when the engine failed (it
    /// passed [`check_poison`](Self::check_poison), then waited for
    /// background work the failure stopped): the failure's original error,
    /// `Io` for an I/O error, as the operation that met it would have got.
    pub(crate) fn check_poison_in_flight(&self) -> Result<()> {
        match self.failure() {
            Some(failure) => Err(failure.original_error()),
            None => Ok(()),
        }
    }

    /// The engine's first failure, adopting the journal's or the tree
    /// store's if the engine has not latched one of its own yet.
    pub(crate) fn failure(&self) -> Option<Failure> {
        if !self.poisoned.load(Ordering::Acquire) {
            self.poison_with(self.component_failure()?);
        }
        self.poison.lock().clone()
    }

    /// The journal's or the tree store's latched failure, if either has one.
    fn component_failure(&self) -> Option<Failure> {
        self.journal.failure().or_else(|| self.trees.failure())
    }

    /// Latches the first failure; wakes anyone blocked on the engine.
    pub(crate) fn poison_with(&self, failure: Failure) {
        {
            let mut poison = self.poison.lock();
            if poison.is_none() {
                *poison = Some(failure);
            }
        }
        self.poisoned.store(true, Ordering::Release);
        self.writer_free.notify_all();
        self.apply.wake_all();
    }

    /// Latches any error from below as the engine's failure (the database
    /// stops) and returns what the caller gets: an I/O error as it is (this
    /// operation met it), `PreviousIo` as it is (a latch below refused it),
    /// anything else as `Poisoned` with its message.
    pub(crate) fn poison_on<T>(&self, result: Result<T>) -> Result<T> {
        result.map_err(|e| {
            self.poison_with(self.failure_of(&e));
            match e {
                StorageError::Io(_) | StorageError::PreviousIo | StorageError::Poisoned(_) => e,
                other => StorageError::Poisoned(other.to_string()),
            }
        })
    }

    /// Checks that the journal gave a commit the sequence its writer
    /// expected; poisons the engine if not (sequences would no longer
    /// match the commit order).
    pub(crate) fn check_assigned(&self, appended: u64, seq: u64) -> Result<()> {
        if appended == seq {
            return Ok(());
        }
        let cause = format!("WAL assigned sequence {appended}, the writer expected {seq}");
        self.poison_with(Failure::Other(cause.clone()));
        Err(StorageError::Poisoned(cause))
    }

    /// The failure `error` reports. `PreviousIo` names no cause: the latch
    /// below that refused holds it.
    pub(crate) fn failure_of(&self, error: &StorageError) -> Failure {
        match error {
            StorageError::PreviousIo => self.component_failure().unwrap_or_else(|| Failure::of(error)),
            other => Failure::of(other),
        }
    }

    pub(crate) fn current_state(&self) -> Arc<State> {
        self.state.read().clone()
    }

    /// Whether no one but the engine holds a state or a tree snapshot:
    /// no reader can read a page of an older tree, so a writer may drop
    /// the pages it replaces from the page cache at once
    /// (`TreeWriter::forget_replaced_at_once`). A reader that begins right
    /// after may still read one: from the file, which is only slower.
    pub(crate) fn readers_absent(&self) -> bool {
        let state = self.state.read();
        Arc::strong_count(&state) == 1 && state.tree.is_only_view()
    }

    /// The sequence the tree `writer` holds: every commit up to it and none
    /// after, as a durable commit of that tree may claim for its checkpoint.
    /// The durable checkpoint's, or the last flush's if a flush has
    /// committed since (not durably); never below the durable checkpoint's
    /// (a lower one would claim that WAL records a checkpoint deleted are
    /// still to be replayed). REQUIRES: `writer` from
    /// [`writer_at_published_tree`](Self::writer_at_published_tree): a flush
    /// notes its sequence (`counters.flushed_seq`) before it stops counting
    /// as unpublished, and holds the writer for the whole of its pass, so
    /// no flush is part way through this tree.
    pub(crate) fn tree_held_seq(&self, writer: &TreeWriter<'_>) -> u64 {
        let flushed = self.counters.flushed_seq.load(Ordering::Acquire);
        writer.durable_checkpoint_seq().max(flushed)
    }

    /// The tree writer, taken when no tree commit waits for publication
    /// ([`unpublished_trees`](Self::unpublished_trees)). A tree commit and
    /// a flush release the writer before they publish the state that shows
    /// their commit (a tree commit waits for its WAL sync in between); a
    /// compaction or an unpin in that gap would publish their tree under
    /// the older state's sequence, and readers would see a commit that is
    /// not published, and perhaps not durable. So it waits for the publication, holding nothing meanwhile.
    /// (Commits that change no entry, a checkpoint's or compaction's trim,
    /// publish nothing and need not be waited for.)
    pub(crate) fn writer_at_published_tree(&self) -> Result<TreeWriter<'_>> {
        loop {
            self.check_poison()?;
            let writer = self.poison_on(self.trees.writer())?;
            if self.unpublished_trees.load(Ordering::SeqCst) == 0 {
                return Ok(writer);
            }
            drop(writer);
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }

    /// The tree writer, told whether any reader may read the pages it
    /// replaces ([`readers_absent`](Self::readers_absent)).
    pub(crate) fn tree_writer(&self) -> Result<TreeWriter<'_>> {
        let mut writer = self.trees.writer()?;
        writer.forget_replaced_at_once(self.readers_absent());
        Ok(writer)
    }

    pub(crate) fn update_state(&self, f: impl FnOnce(&State) -> State) {
        let mut state = self.state.write();
        let next = f(&state);
        if next.tree.txn() != state.tree.txn() {
            // Under the state lock: whoever sees the new count and then
            // reads the state gets this one or a newer.
            self.view_generation.fetch_add(1, Ordering::Release);
        }
        *state = Arc::new(next);
    }

    /// Takes the writer slot, waiting for the current writer; applies
    /// backpressure when frozen memtables exceed their budget.
    pub(crate) fn acquire_writer(&self) -> Result<()> {
        {
            let mut busy = self.writer.lock();
            while *busy {
                self.check_poison()?;
                self.writer_free.wait(&mut busy);
            }
            *busy = true;
        }
        if let Err(e) = self.backpressure() {
            self.release_writer();
            return Err(e);
        }
        Ok(())
    }

    /// Takes the writer slot only if it is free now; `Ok(false)` when another
    /// writer holds it. Added for `Database::try_begin_write`: the same slot
    /// and backpressure as [`acquire_writer`](Self::acquire_writer), minus
    /// the wait for the slot (backpressure may still wait for a flush).
    pub(crate) fn try_acquire_writer(&self) -> Result<bool> {
        {
            let mut busy = self.writer.lock();
            if *busy {
                return Ok(false);
            }
            *busy = true;
        }
        if let Err(e) = self.backpressure() {
            self.release_writer();
            return Err(e);
        }
        Ok(true)
    }

    /// Whether a write transaction holds the writer slot now. Added for
    /// `Database::close`, which refuses while one is being built.
    pub(crate) fn writer_busy(&self) -> bool {
        *self.writer.lock()
    }

    pub(crate) fn release_writer(&self) {
        *self.writer.lock() = false;
        self.writer_free.notify_one();
    }

    /// Whether a flush, between two slices of its work, may give the core to
    /// the threads on the commit path (the committers, the inserter): yes
    /// while the frozen backlog is at most half of `max_frozen_bytes`, so
    /// well before `backpressure` slows a writer. On two cores the
    /// committer, the inserter thread and the flush compete; a flush that
    /// yields between slices lets a commit woken by its sync run at once
    /// instead of waiting for the flush's time slice (measured: batch
    /// commits' p99 about a quarter lower, `design/pipeline.md`). Past half
    /// the budget the flush stops yielding and takes its full share, so
    /// readers that fill the cores can slow it but never starve it (a
    /// yield only moves it behind the threads ready to run).
    pub(crate) fn flush_may_yield(&self) -> bool {
        self.current_state().queued_bytes() <= self.max_frozen_bytes() / 2
    }

    /// The size at which the active memtable is frozen now: it follows the
    /// tree's size ([`MEMTABLE_TREE_SHARE`]), as the last flush left it.
    pub(crate) fn memtable_bytes(&self) -> usize {
        self.memtable_target.load(Ordering::Relaxed)
    }

    /// [`EngineOptions::max_frozen_bytes`], grown as the memtables have.
    pub(crate) fn max_frozen_bytes(&self) -> usize {
        let base = self.options.memtable_bytes.max(1) as u128;
        let scaled = self.options.max_frozen_bytes as u128 * self.memtable_bytes() as u128 / base;
        usize::try_from(scaled).unwrap_or(usize::MAX)
    }

    /// Sets the memtable size for a tree of `tree_bytes` (after a flush;
    /// `TreeWriter::used_bytes`, read while the flush held the writer: the
    /// writer's lock is not taken again here).
    pub(crate) fn resize_memtables(&self, tree_bytes: u64) {
        let share = usize::try_from(tree_bytes / MEMTABLE_TREE_SHARE as u64).unwrap_or(usize::MAX);
        // `max(base)` last: a maximum below the configured size (0 by
        // default) keeps the configured size.
        let target = share.min(self.options.max_memtable_bytes).max(self.options.memtable_bytes);
        self.memtable_target.store(target, Ordering::Relaxed);
        self.huge_index
            .store(tree_bytes >= HUGE_INDEX_TREE_BYTES, Ordering::Relaxed);
    }

    fn backpressure(&self) -> Result<()> {
        let limit = self.max_frozen_bytes();
        let frozen = self.current_state().queued_bytes();
        if frozen > limit {
            self.counters.stalls.fetch_add(1, Ordering::Relaxed);
            let started = std::time::Instant::now();
            let waited = (|| -> Result<()> {
                while self.current_state().queued_bytes() > limit {
                    self.check_poison()?;
                    self.apply.wait_for_flush(Duration::from_millis(100));
                }
                Ok(())
            })();
            self.counters
                .stall_nanos
                .fetch_add(nanos_since(started), Ordering::Relaxed);
            waited?;
        } else if frozen > limit / 4 * 3 {
            self.counters.slowdowns.fetch_add(1, Ordering::Relaxed);
            let started = std::time::Instant::now();
            std::thread::sleep(Duration::from_millis(1));
            self.counters
                .slowdown_nanos
                .fetch_add(nanos_since(started), Ordering::Relaxed);
        }
        Ok(())
    }

    pub(crate) fn comparator(&self, id: u64) -> Option<Comparator> {
        self.comparators.read().get(&id).copied()
    }

    /// The comparator of table `id`: `cmp` unless another was registered
    /// first. A table has one key order per process; the typed layer refuses
    /// to open a table with another key type than it was created with.
    pub(crate) fn register(&self, id: u64, cmp: Comparator) -> Comparator {
        if let Some(known) = self.comparator(id) {
            return known;
        }
        *self.comparators.write().entry(id).or_insert(cmp)
    }

    /// Records a committed sequence. REQUIRES: the writer slot.
    pub(crate) fn committed(&self, seq: u64, durability: Durability) {
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        self.publication.lock().commit(seq, durability);
    }

    /// Waits until commit `seq` is published, so that a read begun after
    /// this returns sees it. Only an earlier `Immediate` commit still
    /// waiting for its sync holds it back (the publication rule): this
    /// waits for that sync, as redb's next commit would have waited for
    /// the earlier one's to take the write lock.
    pub(crate) fn wait_published(&self, seq: u64) -> Result<()> {
        loop {
            self.refresh_publication();
            let blocker = {
                let publication = self.publication.lock();
                if publication.published >= seq {
                    return Ok(());
                }
                publication.next_blocker()
            };
            self.poison_on(self.journal.wait_for_sync(blocker.min(seq)))?;
        }
    }

    /// Advances publication as far as the rule allows.
    pub(crate) fn refresh_publication(&self) {
        let (_publication, advanced) = self.advance_publication();
        if let Some(target) = advanced {
            self.publish_seq(target);
        }
    }

    /// Makes `seq` the visible sequence of the current state: in place when
    /// no one else holds that state (no reader, and the committing writer
    /// has let its own go), else in a copy. A copy takes an allocation and
    /// a count on every layer the state shares, and dropping the state it
    /// replaces gives them back (one of the nine allocations a one-write
    /// no-sync commit made, and most of its atomic operations).
    fn publish_seq(&self, seq: u64) {
        let mut state = self.state.write();
        match Arc::get_mut(&mut state) {
            Some(only) => only.seq = seq,
            None => *state = Arc::new(State { seq, ..State::clone(&state) }),
        }
    }

    /// Records commit `seq` (as [`committed`](Self::committed)), advances
    /// publication and swaps in `change`'s state, all under the publication
    /// lock, so no reader sees the new state under the old sequence or the
    /// reverse (a tree commit's data, published with its sequence). Recorded
    /// any earlier, `seq` could be published without its state by whoever
    /// refreshes publication first (a `sync`, a `PendingCommit::wait`, a
    /// reader) once its WAL record is durable. REQUIRES: the writer slot.
    pub(crate) fn commit_and_publish_with(&self, seq: u64, durability: Durability, change: impl FnOnce(&State) -> State) {
        let mut publication = self.publication.lock();
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        publication.commit(seq, durability);
        let advanced = publication.advance(self.journal.durable_seq());
        self.publish_hint.store(publication.next_blocker(), Ordering::Release);
        self.update_state(|s| {
            let next = change(s);
            State {
                seq: advanced.unwrap_or(next.seq),
                ..next
            }
        });
    }

    /// Applies the durable watermark to publication; returns the new
    /// published sequence if it advanced, and the publication lock, held
    /// until the caller has published it.
    fn advance_publication(&self) -> (MutexGuard<'_, Publication>, Option<u64>) {
        let durable = self.journal.durable_seq();
        let mut p = self.publication.lock();
        let advanced = p.advance(durable);
        self.publish_hint.store(p.next_blocker(), Ordering::Release);
        (p, advanced)
    }

    /// The state readers should see now.
    pub(crate) fn read_state(&self) -> Arc<State> {
        if self.journal.durable_seq() >= self.publish_hint.load(Ordering::Acquire) {
            self.refresh_publication();
        }
        self.current_state()
    }

    /// Waits until the inserter thread has no commit left to insert;
    /// poisons the engine if one failed. REQUIRES: the commit lock (no new
    /// job can start meanwhile).
    pub(crate) fn wait_for_inserter(&self) -> Result<()> {
        match self.inserter.wait_idle() {
            Ok(()) => Ok(()),
            Err(cause) => {
                self.poison_with(Failure::Other(cause.clone()));
                Err(StorageError::Poisoned(cause))
            }
        }
    }

    /// Waits until commit `seq` is in the memtable (see
    /// [`Inserter::wait_inserted`](super::inserter::Inserter::wait_inserted));
    /// poisons the engine if an insert failed. Any thread, no lock.
    pub(crate) fn wait_inserted(&self, seq: u64) -> Result<()> {
        self.inserter.wait_inserted(seq).map_err(|cause| {
            self.poison_with(Failure::Other(cause.clone()));
            StorageError::Poisoned(cause)
        })
    }

    /// Drops `run` from the state once the memtable holds all of it (its
    /// batch is then only memory), unless a newer commit replaced it.
    pub(crate) fn clear_pending(&self, run: &Arc<PendingRun>) {
        let mut state = self.state.write();
        if state.pending.as_ref().is_some_and(|p| Arc::ptr_eq(p, run)) {
            *state = Arc::new(State {
                pending: None,
                ..(**state).clone()
            });
            // Under the state lock, as in `update_state`.
            self.view_generation.fetch_add(1, Ordering::Release);
        }
    }

    /// Takes the commit lock (see its field).
    pub(crate) fn lock_commits(&self) -> MutexGuard<'_, ()> {
        self.commit_lock.lock()
    }

    /// Freezes the active memtable unless it is empty.
    pub(crate) fn freeze_if_not_empty(&self) {
        let commits = self.lock_commits();
        if !self.current_state().active.is_empty() {
            self.freeze(&commits, false);
        }
    }

    /// Freezes the active memtable. The commit lock guard proves no commit is
    /// inserting into it.
    /// A poisoned engine never freezes: its active memtable may hold part of
    /// a commit whose insert failed (poisoning happens under the commit
    /// lock, so a freezer that takes the lock after it sees the flag).
    /// A commit still being inserted by the inserter thread is waited for
    /// first (`engine::pending`): a frozen memtable is complete. `filled`:
    /// the active memtable reached its size, under writes that will fill
    /// the next one too; else (a checkpoint's or an idle flush's freeze)
    /// the next one may stay nearly empty.
    pub(crate) fn freeze(&self, _commits: &MutexGuard<'_, ()>, filled: bool) {
        if self.wait_for_inserter().is_err() || self.poisoned.load(Ordering::Acquire) {
            return;
        }
        // A memtable that will fill as this one did has its point index
        // backed now, not page by page as lookups read it and the inserter
        // writes it: a page first read maps the system's zero page, and the
        // write after it must replace that mapping on every core (an
        // interrupt each; in a virtual machine, an exit to the host). At 1M
        // keys the first commits into each new memtable waited 13-22 ms in
        // all for those faults, against 1.2 ms to back the table here. Not
        // after a checkpoint's freeze: its table could hold few keys, and a
        // resident 4 MiB would cost the memory of a quiet database.
        let next_pages = match (self.huge_index.load(Ordering::Relaxed), filled) {
            (true, _) => Pages::Huge,
            (false, true) => Pages::Populated,
            (false, false) => Pages::Lazy,
        };
        // Made before the state's lock is taken: readers wait on that lock,
        // and backing the table takes a millisecond. The commit lock, held,
        // keeps the active memtable as it is meanwhile.
        let next = Arc::new(Memtable::with_index_pages(self.memtable_bytes(), next_pages));
        self.update_state(|s| {
            let frozen = std::iter::once(s.active.clone()).chain(s.frozen.iter().cloned()).collect();
            State {
                active: next,
                frozen,
                ..s.clone()
            }
        });
        self.apply.wake();
    }
}

/// What one WAL record (one committed transaction) does, for inspection
/// tools (`sluice wal`): decoded from its payload, changing nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordSummary {
    /// Table names bound (created, renamed to) or unbound (deleted, renamed
    /// from) by the transaction: `(name, Some(table id))` or `(name, None)`.
    pub bindings: Vec<(Vec<u8>, Option<u64>)>,
    /// Ids of tables whose data the transaction dropped.
    pub dropped: Vec<u64>,
    /// Per table id written: `(id, puts, deletes)`, in the record's order.
    pub tables: Vec<(u64, u64, u64)>,
}

impl RecordSummary {
    /// Decodes a WAL record's payload; an inconsistent payload is a
    /// `Corrupted` error.
    pub fn decode(payload: &[u8]) -> Result<Self> {
        let batch = Batch::decode(payload)?;
        let mut tables: Vec<(u64, u64, u64)> = Vec::new();
        for op in &batch.ops {
            if tables.last().is_none_or(|t| t.0 != op.table) {
                tables.push((op.table, 0, 0));
            }
            if let Some(last) = tables.last_mut() {
                if op.value.is_some() {
                    last.1 += 1;
                } else {
                    last.2 += 1;
                }
            }
        }
        Ok(Self {
            bindings: batch
                .bindings
                .into_iter()
                .map(|(name, def)| (name, def.map(|d| d.id)))
                .collect(),
            dropped: batch.dropped,
            tables,
        })
    }
}

/// A table in the checkpointed tree: `(name, table id, metadata)`.
pub type CheckpointedTable = (Vec<u8>, u64, Vec<u8>);

/// The tables the checkpointed tree of `snapshot` holds, by name. Reads only; for inspection tools that look at a data
/// file without opening the database (`sluice wal`).
pub fn checkpointed_tables(snapshot: &crate::btree::Snapshot) -> Result<Vec<CheckpointedTable>> {
    let Some(info) = snapshot.tree(super::state::TABLES_TREE)? else {
        return Ok(Vec::new());
    };
    snapshot
        .range(
            &info,
            crate::btree::bytewise,
            std::ops::Bound::Unbounded,
            std::ops::Bound::Unbounded,
        )?
        .map(|entry| {
            let entry = entry?;
            let def = super::state::decode_def(entry.value().as_bytes())?;
            Ok((entry.key().to_vec(), def.id, def.meta.to_vec()))
        })
        .collect()
}

/// Counts one tree commit in [`Inner::unpublished_trees`] from before it is
/// made until the state showing it is published, or the commit fails (a
/// failure after the commit poisons the engine first, so a waiting
/// compaction stops on the poison rather than publish the tree).
pub(crate) struct UnpublishedTree<'a>(&'a AtomicU64);

impl<'a> UnpublishedTree<'a> {
    /// REQUIRES: taken before the tree commit it counts.
    pub(crate) fn new(inner: &'a Inner) -> Self {
        inner.unpublished_trees.fetch_add(1, Ordering::SeqCst);
        Self(&inner.unpublished_trees)
    }
}

impl Drop for UnpublishedTree<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
