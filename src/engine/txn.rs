//! Transactions over the engine: the write transaction that runs the commit
//! pipeline, the read transaction over a pinned state, and the handle of a
//! pipelined commit.

use std::collections::HashMap;
use std::future::Future;
use std::ops::Bound;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use parking_lot::Mutex;

use super::batch::TABLES_PER_TXN;
use super::batch::TableDef;
use super::core::{Durability, Engine, Inner, RecoveryReport, apply_frame, apply_metadata, insert_ops, insert_runs, panic_message};
use super::inserter::Job;
use super::log_tail::LogTail;
use super::pending::{HANDOFF_OPS, PendingRun};
use super::pop::PopCursor;
use super::deferred::staging_table_id;
use super::merge::{Direction, MemOwner, MergedRange, Source, SourceFactory, first_visible};
use super::state::{State, TABLES_TREE, TableView, ViewMemo, data_tree_id, data_tree_name};
use super::tree_commit;
use super::writeset::{Below, Origin, Place, SharedSource, TableSlot, WriteSet};
use super::memtable::Memtable;
use super::recovery::Recovered;
use crate::btree::{
    Census, Comparator, PinnedCommit, Report, TreeInfo, TreeShape, ValueBytes, bytewise, is_bytewise,
};
use crate::error::{Result, StorageError};
use crate::wal::SyncBy;

/// Engine counters, as [`Database::stats`](crate::Database::stats) reports them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Transactions committed (with changes) since open.
    pub commits: u64,
    /// WAL records written.
    pub wal_records: u64,
    /// WAL bytes written.
    pub wal_bytes: u64,
    /// WAL fsyncs.
    pub fsyncs: u64,
    /// Average commits per WAL fsync.
    pub average_group: f64,
    /// Most commits made durable by one fsync.
    pub max_group: u64,
    /// Bytes in the active memtable.
    pub memtable_bytes: u64,
    /// The size at which the active memtable is frozen now: the configured
    /// size, grown with the tree (to an eighth of it) up to its maximum
    /// (256 MiB by default; see `Builder::set_memtable_size`).
    pub memtable_limit: u64,
    /// Frozen memtables waiting for flush.
    pub frozen_memtables: u64,
    /// Bytes in frozen memtables.
    pub frozen_bytes: u64,
    /// Committed sequences not yet flushed into the tree.
    pub apply_lag: u64,
    /// Memtables flushed into the tree.
    pub flushes: u64,
    /// Passes that flushed them: a pass applies the oldest frozen memtable
    /// together with the frozen ones after it when none of them creates,
    /// renames or drops a table, so a backlog costs one rewrite of the
    /// leaves, not one per memtable. `flushes` above this count is
    /// memtables that shared a pass.
    pub flush_passes: u64,
    /// Checkpoints taken.
    pub checkpoints: u64,
    /// Durable commits flushes made part way through a memtable, so that
    /// the pages they replaced could be reused before they ended (see
    /// `EngineOptions::flush_commit_bytes`).
    pub flush_part_commits: u64,
    /// Commits too big for the WAL path that went straight into the tree
    /// (see `EngineOptions::tree_commit_bytes`); counted in `commits` too.
    pub tree_commits: u64,
    /// Writers blocked until a flush made room.
    pub stalls: u64,
    /// Writers slowed because frozen memtables neared their limit.
    pub slowdowns: u64,
    /// Times a flush yielded the core to the commit path between slices of
    /// its work (it does while the frozen backlog is at most half its
    /// budget).
    pub flush_yields: u64,
    /// Tree filters built and made current since open (the first, and each
    /// rebuild as the tree outgrows one: `engine::tree_filter`).
    pub tree_filter_builds: u64,
    /// Keys `insert`'s old-value lookups found absent through the tree
    /// filter, without a descent of the tree.
    pub tree_filter_absent: u64,
    /// The sequence readers see.
    pub published_seq: u64,
    /// The highest durable sequence.
    pub durable_seq: u64,
    /// Whether writing the WAL panicked and commits now sync themselves.
    pub wal_degraded: bool,
    /// What recovery replayed and discarded when the database opened.
    pub recovery: RecoveryReport,
    /// WAL records appended and not yet written by the sync thread: how far
    /// the log's writer is behind the committers.
    pub wal_queue_depth: u64,
    /// Bytes of WAL records appended and not yet written (queued, or taken
    /// by the sync thread and being written): the memory the WAL queue holds
    /// now. At most `max_wal_queue_bytes`, or one record if a single record
    /// is larger.
    pub wal_queue_bytes: u64,
    /// Commits whose WAL append waited because the queue was at
    /// `max_wal_queue_bytes` (committers outran the log's writes; only
    /// `Durability::None` commits can).
    pub wal_queue_stalls: u64,
    /// Time those appends waited, summed, in microseconds.
    pub wal_queue_stall_micros: u64,
    /// WAL fsync latency, median, in µs: the upper bound of the histogram
    /// bucket holding it (buckets double from 50 µs to 102.4 ms), so
    /// accurate to a factor of two. 0 before the first fsync.
    pub fsync_p50_us: u64,
    /// WAL fsync latency, 99th percentile, in µs (as `fsync_p50_us`).
    pub fsync_p99_us: u64,
    /// The slowest WAL fsync so far, in µs (exact).
    pub fsync_max_us: u64,
    /// Live WAL segment files.
    pub wal_segments: u64,
    /// WAL segments begun from a spare written ahead as zeros (a busy
    /// log's; `design/wal.md`, "Spare segments"), since open.
    pub wal_segments_from_spares: u64,
    /// Spare segments that could not be made (an I/O error, a panic in the
    /// spare thread), since open: each costs the log speed (its roll
    /// creates the segment itself), never data.
    pub wal_spare_failures: u64,
    /// Why the last spare could not be made, if one could not.
    pub wal_last_spare_error: Option<String>,
    /// Apparent bytes of the files in the WAL directory (their lengths, as
    /// `ls -l` shows them). Filled by `Database::stats` for a database on
    /// files; 0 from `Engine::stats` (it does not know the directory).
    pub wal_disk_bytes: u64,
    /// Bytes the file system allocated to the WAL directory's files (as `du`
    /// counts them); below `wal_disk_bytes` where segments are sparse.
    pub wal_allocated_bytes: u64,
    /// Why the database stopped, if it did: the first failure it latched
    /// (an I/O error's kind and message, or a panic's message), named here
    /// because the errors every later operation gets
    /// ([`StorageError::PreviousIo`], as redb's, carries no message) cannot
    /// say it, and a failure in background work (a `Durability::None`
    /// commit's sync, a timed checkpoint) reaches no caller at all. `None`
    /// while the database works. Reopening recovers.
    pub failure: Option<String>,
    /// Time spent flushing memtables into the tree, summed over `flushes`.
    pub flush_time: std::time::Duration,
    /// Time spent in checkpoints, summed over `checkpoints`.
    pub checkpoint_time: std::time::Duration,
    /// Time writers spent blocked until a flush made room, summed over
    /// `stalls`.
    pub stall_time: std::time::Duration,
    /// Time writers spent slowed, summed over `slowdowns`.
    pub slowdown_time: std::time::Duration,
}

impl Engine {
    /// Starts the single write transaction, waiting while another is being
    /// built (not while one waits for its sync).
    ///
    /// Boxed: a transaction moves from here into its handle, and from the
    /// handle into its commit, and each move of the 312-byte value was a
    /// copy (a tenth of a one-write no-sync commit's instructions were
    /// such copies).
    pub fn begin_write(&self) -> Result<Box<WriteTxn>> {
        let inner = &self.inner;
        inner.check_poison()?;
        inner.acquire_writer()?;
        Ok(self.writer_holding_slot())
    }

    /// Like [`begin_write`](Self::begin_write), but `Ok(None)` instead of
    /// waiting when another write transaction holds the writer slot.
    /// (Added for `Database::try_begin_write`.)
    pub fn try_begin_write(&self) -> Result<Option<Box<WriteTxn>>> {
        self.inner.check_poison()?;
        if !self.inner.try_acquire_writer()? {
            return Ok(None);
        }
        Ok(Some(self.writer_holding_slot()))
    }

    /// The write transaction of a caller that has just taken the writer slot.
    /// REQUIRES: the caller holds the slot (the transaction releases it).
    fn writer_holding_slot(&self) -> Box<WriteTxn> {
        let inner = &self.inner;
        let state = inner.current_state();
        let seq = inner.publication.lock().last_committed;
        let WriterScratch { writes, views } = inner.writer_scratch.lock().take().unwrap_or_default();
        Box::new(WriteTxn {
            inner: inner.clone(),
            id: next_txn_id(),
            state,
            seq,
            writes,
            views,
            pop_cursors: Vec::new(),
            durability: Durability::Immediate,
            through_tree: false,
            holds_slot: true,
            created_pins: Vec::new(),
            dropped_pins: Vec::new(),
        })
    }

    /// A read transaction: a snapshot of everything published, taken with
    /// one `Arc` clone. It never waits for a writer and never changes.
    pub fn begin_read(&self) -> Result<ReadTxn> {
        self.inner.check_poison()?;
        // Read before the state: a state published in between only makes
        // the first range look for a newer one (`ReadTable::range_sources`).
        let generation = self.inner.view_generation.load(Ordering::Acquire);
        let state = self.inner.read_state();
        Ok(ReadTxn {
            inner: self.inner.clone(),
            seq: state.seq,
            state,
            generation,
        })
    }

    /// Makes every commit so far durable in the WAL.
    pub fn sync(&self) -> Result<()> {
        let inner = &self.inner;
        inner.check_poison()?;
        let result = inner.journal.sync();
        inner.poison_on(result)?;
        inner.refresh_publication();
        Ok(())
    }

    /// Whether the WAL is volatile ([`EngineOptions::volatile_wal`]).
    pub fn is_volatile_wal(&self) -> bool {
        self.inner.options.volatile_wal
    }

    /// Flushes everything committed so far into the tree, makes the tree
    /// durable, and deletes the WAL segments it covers.
    pub fn checkpoint(&self) -> Result<()> {
        checkpoint(&self.inner)
    }

    /// The ids of the tree pins (persistent savepoints' pinned commits).
    pub fn tree_pin_ids(&self) -> Result<Vec<u64>> {
        Ok(self.inner.trees.pins()?.into_iter().map(|(id, _)| id).collect())
    }

    /// Drops tree pin `id`, its savepoint gone for good (deleted by a
    /// durable commit, or never committed).
    pub fn drop_tree_pin(&self, id: u64) -> Result<()> {
        unpin(&self.inner, id)
    }

    /// Stops the WAL's spare segments and deletes the spare, as a closing
    /// database does before it gives up its file lock
    /// ([`Journal::stop_spares`](crate::wal::Journal::stop_spares)).
    pub(crate) fn stop_wal_spares(&self) {
        self.inner.journal.stop_spares();
    }

    /// After a checkpoint that covered every commit, as a close makes:
    /// deletes the whole WAL, so the data file alone holds the database
    /// ([`Journal::retire_through`](crate::wal::Journal::retire_through)).
    /// `Ok(false)` if a commit came after the checkpoint (it stays logged).
    pub fn retire_log(&self) -> Result<bool> {
        let checkpoint_seq = self.inner.trees.durable_checkpoint_seq();
        // The data file stops naming a segment before every segment goes
        // (`engine::log_tail`, invariant 1): from a writer at the durable
        // commit only, so that this commit makes nothing else durable. If
        // another writer holds changes, the log stays.
        if *self.inner.log_tail.lock() != LogTail::default() {
            let mut writer = self.inner.trees.writer()?;
            if !writer.at_durable() {
                return Ok(false);
            }
            LogTail::default().write(&mut writer)?;
            writer.commit(checkpoint_seq)?;
            *self.inner.log_tail.lock() = LogTail::default();
        }
        self.inner.journal.retire_through(checkpoint_seq)
    }

    /// The engine's counters.
    pub fn stats(&self) -> Stats {
        let inner = &self.inner;
        let wal = inner.journal.metrics();
        let state = inner.current_state();
        let counters = &inner.counters;
        let last = inner.publication.lock().last_committed;
        Stats {
            commits: counters.commits.load(Ordering::Relaxed),
            wal_records: wal.records,
            wal_bytes: wal.bytes,
            fsyncs: wal.fsyncs,
            average_group: wal.average_group(),
            max_group: wal.max_group,
            memtable_bytes: state.active.bytes() as u64,
            memtable_limit: inner.memtable_bytes() as u64,
            frozen_memtables: state.frozen.len() as u64,
            frozen_bytes: state.frozen_bytes() as u64,
            apply_lag: last.saturating_sub(counters.flushed_seq.load(Ordering::Relaxed)),
            flushes: counters.flushes.load(Ordering::Relaxed),
            flush_passes: counters.flush_passes.load(Ordering::Relaxed),
            checkpoints: counters.checkpoints.load(Ordering::Relaxed),
            flush_part_commits: counters.part_commits.load(Ordering::Relaxed),
            tree_commits: counters.tree_commits.load(Ordering::Relaxed),
            stalls: counters.stalls.load(Ordering::Relaxed),
            slowdowns: counters.slowdowns.load(Ordering::Relaxed),
            flush_yields: counters.flush_yields.load(Ordering::Relaxed),
            tree_filter_builds: inner.tree_filters.builds(),
            tree_filter_absent: inner.tree_filters.gate.absent(),
            published_seq: state.seq,
            durable_seq: inner.journal.durable_seq(),
            wal_degraded: wal.degraded,
            recovery: inner.recovery.clone(),
            wal_queue_depth: wal.queue_depth,
            wal_queue_bytes: wal.queue_bytes,
            wal_queue_stalls: wal.queue_stalls,
            wal_queue_stall_micros: wal.queue_stall_micros,
            fsync_p50_us: wal.sync_latency_quantile_us(0.5),
            fsync_p99_us: wal.sync_latency_quantile_us(0.99),
            fsync_max_us: wal.max_sync_us,
            wal_segments: inner.journal.segments().len() as u64,
            wal_segments_from_spares: wal.segments_from_spares,
            wal_spare_failures: wal.spare_failures,
            wal_last_spare_error: wal.last_spare_error.clone(),
            wal_disk_bytes: 0,
            wal_allocated_bytes: 0,
            failure: inner.failure().map(|failure| failure.to_string()),
            flush_time: nanos(&counters.flush_nanos),
            checkpoint_time: nanos(&counters.checkpoint_nanos),
            stall_time: nanos(&counters.stall_nanos),
            slowdown_time: nanos(&counters.slowdown_nanos),
        }
    }

    /// Checks the tree's pages, order and counts (see
    /// [`TreeStore::check_integrity`](crate::btree::TreeStore::check_integrity)).
    pub fn check_integrity(&self) -> Result<Report> {
        let inner = &self.inner;
        // Key orders by table id: registered in this process, or given by
        // the table's metadata. The check walks the newest commit, which may
        // hold tables newer than any state; an order known nowhere (a custom
        // order whose type this process has not opened) is checked for
        // structure only: an unknown order is not damage.
        let metas: HashMap<u64, Vec<u8>> = inner
            .current_state()
            .tree_tables()?
            .into_iter()
            .map(|(_, def)| (def.id, def.meta.to_vec()))
            .collect();
        let order_of = |name: &[u8], _: &TreeInfo| -> Option<Comparator> {
            if name == TABLES_TREE || staging_table_id(name).is_some() {
                return Some(bytewise);
            }
            let id = data_tree_id(name)?;
            inner
                .comparator(id)
                .or_else(|| metas.get(&id).and_then(|meta| (inner.options.resolver)(meta)))
        };
        inner.trees.check_integrity(&order_of)
    }

    /// Checkpoints, then moves the live pages at the end of the file into
    /// free pages nearer its start and commits twice, so the free end of the
    /// file is given back to the file system. Returns whether the file
    /// shrank.
    ///
    /// Both commits are durable, and each claims as its checkpoint the
    /// sequence its tree holds (`Inner::tree_held_seq`): the apply thread
    /// may flush between the checkpoint and the first, or between the two,
    /// and a flush's commit is not durable. Claiming the older checkpoint
    /// for a tree that holds a flush made recovery replay the flushed
    /// records over it, counting each table's changes twice (found by a
    /// review: `tests/durable_commits_beside_flushes_crash.rs`).
    ///
    /// Refused with `Internal`, nothing changed, while a tree pin exists
    /// (its pages must stay where it names them; `Database::compact` drops
    /// orphan pins first and refuses while a savepoint exists).
    pub fn compact(&self) -> Result<bool> {
        let inner = &self.inner;
        self.checkpoint()?;
        let before = inner.trees.file_len()?;
        let mut writer = inner.writer_at_published_tree()?;
        if writer.has_pins() {
            // Refused before anything changes: the engine stays usable.
            return Err(StorageError::Internal(
                "compaction with pinned commits (persistent savepoints): drop them first".into(),
            ));
        }
        let seq = inner.tree_held_seq(&writer);
        writer.forget_replaced_at_once(inner.readers_absent());
        inner.poison_on(writer.relocate_all().and_then(|_| writer.commit_and_continue(seq)))?;
        // The state pins the tree it shows; move it to the relocated one so
        // the old pages can be reused, then let a durable commit trim them.
        // The writer is still held, so the store's newest commit is the
        // relocation, and it holds the same entries as the tree the state
        // showed: `seq` and `tree_seq` stay.
        inner.update_state(|s| State {
            tree: inner.trees.snapshot(),
            ..s.clone()
        });
        drop(writer);
        let writer = inner.writer_at_published_tree()?;
        let seq = inner.tree_held_seq(&writer);
        inner.poison_on(writer.commit(seq))?;
        Ok(inner.trees.file_len()? < before)
    }

    /// Bytes in the data file.
    pub fn file_len(&self) -> Result<u64> {
        self.inner.trees.file_len()
    }

    /// The database id shared by the data file and its WAL segments.
    pub fn db_id(&self) -> u128 {
        self.inner.trees.db_id()
    }
}

fn nanos(counter: &AtomicU64) -> std::time::Duration {
    std::time::Duration::from_nanos(counter.load(Ordering::Relaxed))
}

/// The single write transaction. Its changes are private until commit;
/// dropping it without committing aborts it.
pub struct WriteTxn {
    inner: Arc<Inner>,
    /// Tells this transaction's table handles from any other's.
    id: u64,
    /// The state at begin. A checkpoint may freeze the active memtable while
    /// the transaction is built; the state keeps every memtable it read from.
    state: Arc<State>,
    /// Reads see every commit up to here, durable or not.
    seq: u64,
    writes: WriteSet,
    /// Each write-set table's view of the layers below, shared with its
    /// ranges: none for new tables, and none until a typed open gave an
    /// existing table its key order.
    views: Vec<Option<Arc<TableView>>>,
    /// Per write-set table, the pop loops' walks of the snapshot, forward
    /// and backward (`engine::pop`).
    pop_cursors: Vec<[Option<PopCursor>; 2]>,
    durability: Durability,
    /// Commit through the tree whatever the size (`engine::tree_commit`).
    through_tree: bool,
    holds_slot: bool,
    /// Tree pins made for this transaction's persistent savepoints: dropped
    /// again if it ends without trying to commit (once a commit is tried,
    /// its record may be in the WAL, and only a reopen can tell).
    created_pins: Vec<u64>,
    /// Tree pins whose savepoints this transaction deletes: dropped once
    /// its commit is durable.
    dropped_pins: Vec<u64>,
}

/// What a write transaction leaves the writer's next one (write
/// transactions never overlap): its write set, emptied with the buffers a
/// small transaction needs kept ([`WriteSet::recycle`]), and its list of
/// table views, empty.
#[derive(Default)]
pub(crate) struct WriterScratch {
    writes: WriteSet,
    views: Vec<Option<Arc<TableView>>>,
}

/// Records up to this long are encoded straight into the WAL's queue, under
/// its lock (`WriteTxn::append_and_apply`); longer ones outside it.
const ENCODE_IN_QUEUE_BYTES: usize = 4 << 10;

/// A table opened in a write transaction; usable only with that
/// transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableRef {
    slot: TableSlot,
    txn: u64,
}

/// `shape` projected over a census of `range`, every entry of its table
/// (see [`TreeShape::projected`]); `each` sees every entry too.
pub(crate) fn project(
    shape: TreeShape,
    range: MergedRange<'static>,
    mut each: impl FnMut(&[u8], &[u8]) -> Result<()>,
) -> Result<TreeShape> {
    let mut census = Census::default();
    // Byte-ordered trees shorten their leaves' separators (`btree::apply`):
    // the census measures them between neighbouring keys.
    let shortened = is_bytewise(range.order());
    let mut previous: Option<ValueBytes> = None;
    for item in range {
        let (key, value) = item?;
        census.add(&key, value.as_bytes().len(), shape.page_size);
        if let Some(previous) = previous.as_ref().filter(|_| shortened) {
            census.add_separator(previous, &key);
        }
        each(&key, value.as_bytes())?;
        // Kept for the next separator (moved, not copied).
        previous = shortened.then_some(key);
    }
    Ok(shape.projected(&census))
}

/// Adds `shape`'s pages and bytes to `sum` (its height: the taller).
fn add_shape(sum: &mut TreeShape, shape: &TreeShape) {
    sum.height = sum.height.max(shape.height);
    sum.leaf_pages += shape.leaf_pages;
    sum.branch_pages += shape.branch_pages;
    sum.overflow_pages += shape.overflow_pages;
    sum.stored_bytes += shape.stored_bytes;
    sum.leaf_bytes += shape.leaf_bytes;
    sum.branch_key_bytes += shape.branch_key_bytes;
}

/// Identities of transactions, for refusing a handle from another one.
fn next_txn_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The error for a table handle used with a transaction it is not from.
fn foreign_handle() -> StorageError {
    StorageError::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        "a table handle was used with a transaction it does not belong to",
    ))
}

impl WriteTxn {
    /// Chooses how `commit` waits (default `Immediate`).
    pub fn set_durability(&mut self, durability: Durability) {
        self.durability = durability;
    }

    /// The durability `commit` will use.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Makes `commit` write this transaction straight into the tree and
    /// publish it once the data file holds it durably, whatever its size
    /// (`engine::tree_commit`). For a database whose WAL is volatile
    /// (`Builder::create_with_backend`), where a commit is durable only in
    /// the data file: readers must not see it before.
    pub(crate) fn commit_through_tree(&mut self) {
        self.through_tree = true;
    }

    /// The shape of `table`'s tree in the data file as this transaction
    /// reads it (its own writes and the memtables are not in it). Added for
    /// `TableStats`.
    pub fn table_shape(&self, table: TableRef) -> Result<TreeShape> {
        let slot = self.slot(table)?;
        let tree = self.views.get(slot).and_then(|v| v.as_ref()).and_then(|v| v.tree.as_ref());
        self.state.tree.shape(tree)
    }

    /// The shapes behind `DatabaseStats`: `(each user table's as this
    /// transaction sees it, everything else summed)`. A table's shape is
    /// its tree's projected over the entries not yet flushed into it (this
    /// transaction's writes included; see [`TreeShape::projected`]), one
    /// scan of the table each; a table whose key order this process does
    /// not know (a custom order not opened since the reopen) is counted as
    /// its tree holds it. The rest are the tables `is_metadata` names (the
    /// API's bookkeeping: savepoints), the catalog of tables (projected
    /// over every table's definition) and the engine's other trees. A table
    /// `is_open` names is counted as the transaction's snapshot holds it.
    pub fn table_shapes(
        &mut self,
        is_metadata: impl Fn(&[u8]) -> bool,
        is_open: impl Fn(&[u8]) -> bool,
    ) -> Result<(Vec<TreeShape>, TreeShape)> {
        let mut own = self.state.tree.shape(None)?;
        let mut catalog = Census::default();
        let mut tables = Vec::new();
        for (name, meta) in self.list_tables()? {
            // The catalog's entry: name -> `encode_def` (id, then metadata).
            catalog.add(&name, size_of::<u64>() + meta.len(), own.page_size);
            // Tables this transaction has not touched stay untouched (a
            // savepoint needs a clean transaction).
            let shape = match self.writes.binding(&name) {
                // As redb does, a table with a handle open is counted as of
                // the transaction's start (a table it created: not at all).
                Some(Some(slot)) if is_open(&name) => match self.writes.tables[slot].origin {
                    Origin::Existing(id) => self.snapshot_shape(TableDef {
                        id,
                        meta: self.writes.tables[slot].meta.clone(),
                    })?,
                    Origin::New(_) => continue,
                },
                Some(Some(slot)) => self.projected_shape(slot)?,
                Some(None) => continue,
                None => match self.state.lookup_table(&name, self.seq)? {
                    Some(def) => self.snapshot_shape(def)?,
                    None => continue,
                },
            };
            if is_metadata(&name) {
                add_shape(&mut own, &shape);
            } else {
                tables.push(shape);
            }
        }
        // The catalog, flushed or not; the engine's other trees as they are.
        let trees = self.state.tree.list_trees()?;
        let catalog_tree = trees.iter().find(|(name, _)| name == TABLES_TREE).map(|(_, tree)| tree);
        add_shape(&mut own, &self.state.tree.shape(catalog_tree)?.projected(&catalog));
        for (name, tree) in &trees {
            if data_tree_id(name).is_none() && name != TABLES_TREE {
                add_shape(&mut own, &self.state.tree.shape(Some(tree))?);
            }
        }
        Ok((tables, own))
    }

    /// The shape of the table in `slot`, projected over its unflushed
    /// entries when this process knows its key order.
    fn projected_shape(&mut self, slot: TableSlot) -> Result<TreeShape> {
        let table = &self.writes.tables[slot];
        let (Some(cmp), view) = (table.cmp, &self.views[slot]) else {
            // No typed open gave it an order here, so no writes of its own.
            return match table.origin {
                Origin::Existing(id) => self.snapshot_shape(TableDef {
                    id,
                    meta: table.meta.clone(),
                }),
                Origin::New(_) => self.state.tree.shape(None),
            };
        };
        let shape = self.state.tree.shape(view.as_ref().and_then(|v| v.tree.as_ref()))?;
        let range = self.slot_range(slot, cmp, view.clone(), Bound::Unbounded, Bound::Unbounded)?;
        project(shape, range, |_, _| Ok(()))
    }

    /// The shape of table `def` as this transaction's snapshot holds it,
    /// projected as [`projected_shape`](Self::projected_shape) does.
    fn snapshot_shape(&self, def: TableDef) -> Result<TreeShape> {
        let tree = self.state.tree.tree(&data_tree_name(def.id))?;
        let shape = self.state.tree.shape(tree.as_ref())?;
        let Some(cmp) = self.order_of(def.id, &def.meta) else {
            return Ok(shape);
        };
        let view = self.state.view(def, cmp)?;
        let factory = snapshot_sources(self.state.clone(), Some(Arc::new(view)), self.seq, Vec::new());
        let range = MergedRange::new(factory, cmp, Bound::Unbounded, Bound::Unbounded);
        project(shape, range, |_, _| Ok(()))
    }

    /// A handle that checkpoints this transaction's engine (see
    /// [`Checkpointer`]).
    pub(crate) fn checkpointer(&self) -> Checkpointer {
        Checkpointer(self.inner.clone())
    }

    /// The write-set slot of the table bound to `name`, adopting an existing
    /// table on first use. With `cmp` (a typed open), also fixes the table's
    /// key order and builds its view; without, the order stays unknown and
    /// nothing is read through the table.
    fn resolve(&mut self, name: &[u8], cmp: Option<Comparator>) -> Result<Option<TableSlot>> {
        let slot = match self.writes.binding(name) {
            Some(None) => return Ok(None),
            Some(Some(slot)) => slot,
            None => {
                let Some(def) = self.state.lookup_table(name, self.seq)? else {
                    // Remembered, so savepoints see the name as touched
                    // (redb: deleting a missing table dirties the
                    // transaction); the state is fixed, so it stays missing
                    // until this transaction binds it.
                    self.writes.note_missing(name);
                    return Ok(None);
                };
                let slot = self.writes.adopt(name, &def);
                self.views.resize(slot + 1, None);
                slot
            }
        };
        if let Some(cmp) = cmp {
            self.fix_order(slot, cmp)?;
        }
        Ok(Some(slot))
    }

    /// Gives an adopted table its key order (the process-wide one if the
    /// table already has one) and a view built with it. Every path that
    /// learns a table's order comes through here or through
    /// [`Inner::register`]; none falls back to byte order.
    fn fix_order(&mut self, slot: TableSlot, cmp: Comparator) -> Result<()> {
        let table = &mut self.writes.tables[slot];
        let (Origin::Existing(id), None) = (table.origin, table.cmp) else {
            // New tables get their order at creation; others have it already.
            return Ok(());
        };
        let cmp = self.inner.register(id, cmp);
        table.cmp = Some(cmp);
        let def = TableDef {
            id,
            meta: table.meta.clone(),
        };
        self.views[slot] = Some(self.state.writer_view(def, cmp)?);
        Ok(())
    }

    /// The metadata a table was created with, if it exists.
    pub fn table_meta(&mut self, name: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .resolve(name, None)?
            .map(|slot| self.writes.tables[slot].meta.to_vec()))
    }

    /// Opens a table as [`open_table`](Self::open_table) does, but an
    /// existing table whose stored metadata differs from `meta` in its bytes
    /// is opened only if `accept(stored)` agrees (its error is returned
    /// otherwise, and the table's key order is then not fixed to `cmp`).
    /// One lookup of the name, and no copy of the stored metadata when it
    /// matches, as nearly every open finds: a typed `open_table` is part of
    /// every single-write commit.
    pub fn open_table_checked<E: From<StorageError>>(
        &mut self,
        name: &[u8],
        meta: &[u8],
        cmp: Comparator,
        accept: impl FnOnce(&[u8]) -> std::result::Result<(), E>,
    ) -> std::result::Result<TableRef, E> {
        crate::btree::check_key(name)?;
        let Some(slot) = self.resolve(name, None)? else {
            return Ok(self.open_table(name, meta, cmp)?);
        };
        let stored = &self.writes.tables[slot].meta;
        if stored[..] != *meta {
            accept(stored)?;
        }
        self.fix_order(slot, cmp)?;
        Ok(self.handle(slot))
    }

    /// Opens a table, creating it with `meta` and key order `cmp` if missing.
    pub fn open_table(&mut self, name: &[u8], meta: &[u8], cmp: Comparator) -> Result<TableRef> {
        crate::btree::check_key(name)?;
        if let Some(slot) = self.resolve(name, Some(cmp))? {
            return Ok(self.handle(slot));
        }
        if self.writes.created() >= TABLES_PER_TXN {
            return Err(StorageError::corrupted("too many tables created in one transaction"));
        }
        let slot = self.writes.create(name, meta, cmp);
        self.views.resize(slot + 1, None);
        Ok(self.handle(slot))
    }

    fn handle(&self, slot: TableSlot) -> TableRef {
        TableRef { slot, txn: self.id }
    }

    /// The slot of a handle from this transaction.
    fn slot(&self, table: TableRef) -> Result<TableSlot> {
        if table.txn != self.id {
            return Err(foreign_handle());
        }
        Ok(table.slot)
    }

    /// Deletes a table and its data; returns whether it existed.
    pub fn delete_table(&mut self, name: &[u8]) -> Result<bool> {
        let Some(slot) = self.resolve(name, None)? else {
            return Ok(false);
        };
        self.writes.delete(name, slot);
        self.views[slot] = None;
        self.drop_pop_cursors(Some(slot));
        Ok(true)
    }

    /// Renames a table; returns whether `from` existed.
    /// REQUIRES: no table named `to` exists.
    pub fn rename_table(&mut self, from: &[u8], to: &[u8]) -> Result<bool> {
        crate::btree::check_key(to)?;
        let Some(slot) = self.resolve(from, None)? else {
            return Ok(false);
        };
        self.writes.rename(from, to, slot);
        Ok(true)
    }

    /// Every table as this transaction sees it: `(name, metadata)`.
    pub fn list_tables(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut tables: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = self
            .state
            .list_tables(self.seq)?
            .into_iter()
            .map(|(n, d)| (n, d.meta.to_vec()))
            .collect();
        for (name, binding) in self.writes.bindings() {
            match binding {
                Some(slot) => tables.insert(name.to_vec(), self.writes.tables[slot].meta.to_vec()),
                None => tables.remove(name),
            };
        }
        Ok(tables.into_iter().collect())
    }

    /// The value of `key`, this transaction's writes included.
    pub fn get(&self, table: TableRef, key: &[u8]) -> Result<Option<ValueBytes>> {
        let slot = self.slot(table)?;
        if let Some(own) = self.writes.get(slot, key) {
            return Ok(own);
        }
        match &self.views[slot] {
            Some(view) => self.state.get(view, key, self.seq),
            None => Ok(None),
        }
    }

    /// The number of entries in a table, this transaction's writes included;
    /// O(number of memtables), never a scan.
    pub fn len(&mut self, table: TableRef) -> Result<u64> {
        let slot = self.slot(table)?;
        self.resolve_unread(Some(slot))?;
        let below = match &self.views[slot] {
            Some(view) => self.state.len(view, self.seq)?,
            None => 0,
        };
        (below as i64 + self.writes.count_change(slot))
            .try_into()
            .map_err(|_| StorageError::corrupted("a table's entry count went below zero"))
    }

    /// Puts `key`; returns the previous value.
    pub fn insert(&mut self, table: TableRef, key: &[u8], value: &[u8]) -> Result<Option<ValueBytes>> {
        crate::btree::check_key(key)?;
        if value.len() > crate::btree::MAX_VALUE_LEN {
            return Err(StorageError::ValueTooLarge(value.len()));
        }
        let slot = self.slot(table)?;
        let (state, view, seq) = (&self.state, &self.views[slot], self.seq);
        let gate = &self.inner.tree_filters.gate;
        self.writes.write(slot, key, Some(value), Place::Tail, || {
            Ok(Below::Read(match view {
                Some(view) => state.get_for_insert(view, key, seq, gate)?,
                None => None,
            }))
        })
    }

    /// Puts `key` without reading what it replaces (a blind write): the
    /// snapshot is not searched for the key now. The table's entry count
    /// still needs to know whether the key was there: the keys put this way
    /// are looked up together, their cache misses overlapping, when the
    /// count is next needed (`len`, the commit).
    pub fn put(&mut self, table: TableRef, key: &[u8], value: &[u8]) -> Result<()> {
        crate::btree::check_key(key)?;
        if value.len() > crate::btree::MAX_VALUE_LEN {
            return Err(StorageError::ValueTooLarge(value.len()));
        }
        let slot = self.slot(table)?;
        // A table with nothing beneath (created by this transaction) has
        // nothing to read later either.
        let below = if self.views[slot].is_some() { Below::Unread } else { Below::Read(None) };
        self.writes.write(slot, key, Some(value), Place::Tail, || Ok(below))?;
        Ok(())
    }

    /// Settles the entry counts of the tables that blind puts wrote (see
    /// [`put`](Self::put)): looks their unread keys up in the snapshot.
    fn resolve_unread(&mut self, slot: Option<TableSlot>) -> Result<()> {
        let slots: Vec<TableSlot> = match slot {
            Some(slot) => vec![slot],
            None => self.writes.slots_with_unread().collect(),
        };
        for slot in slots {
            let keys = self.writes.unread(slot);
            if keys.is_empty() {
                continue;
            }
            let view = self.views[slot]
                .as_ref()
                .expect("keys are put unread only over a table with a view");
            let present = self.state.count_present(view, keys, self.seq, &self.inner.tree_filters.gate)?;
            self.writes.resolve_unread(slot, present);
        }
        Ok(())
    }

    /// Deletes `key`; returns its value.
    pub fn remove(&mut self, table: TableRef, key: &[u8]) -> Result<Option<ValueBytes>> {
        let slot = self.slot(table)?;
        let (state, view, seq) = (&self.state, &self.views[slot], self.seq);
        self.writes.write(slot, key, None, Place::Tail, || {
            Ok(Below::Read(match view {
                Some(view) => state.get(view, key, seq)?,
                None => None,
            }))
        })
    }

    /// Entries between two bounds, this transaction's writes included, as
    /// they are now. The range owns what it reads (it shares the
    /// transaction's writes, which a later write copies if the range still
    /// holds them: `writeset::SharedSource`), so it does not borrow the
    /// transaction.
    pub fn range(&mut self, table: TableRef, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<MergedRange<'static>> {
        let slot = self.slot(table)?;
        let Some(cmp) = self.writes.tables[slot].cmp else {
            return Err(foreign_handle());
        };
        self.slot_range(slot, cmp, self.views[slot].clone(), lower, upper)
    }

    /// The first entry of `table` between two bounds in `direction` (the
    /// lowest for `Forward`, the highest for `Backward`), the transaction's
    /// own writes included: the first item of a [`range`](Self::range),
    /// read through the writes directly (no shared reference taken, so the
    /// next write never copies them): a cursor that asks for the neighbours
    /// of its position at every step costs a seek per layer.
    pub(crate) fn edge(
        &mut self,
        table: TableRef,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        direction: Direction,
    ) -> Result<Option<(ValueBytes, ValueBytes)>> {
        let slot = self.slot(table)?;
        let Some(cmp) = self.writes.tables[slot].cmp else {
            return Err(foreign_handle());
        };
        let below = snapshot_sources(self.state.clone(), self.views[slot].clone(), self.seq, Vec::new());
        let mut sources = vec![self.writes.source(slot, lower, upper, direction)];
        sources.extend(below(direction, lower, upper)?);
        first_visible(sources, direction, cmp)
    }

    /// [`range`](Self::range) of the table in `slot`, read in order `cmp`
    /// through `view` of the layers below.
    fn slot_range(
        &mut self,
        slot: TableSlot,
        cmp: Comparator,
        view: Option<Arc<TableView>>,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
    ) -> Result<MergedRange<'static>> {
        // The range reads the writes as they are now, shared, not copied
        // (`SharedSource`). A table no typed open gave its order has no
        // writes of its own.
        let own = self.writes.tables[slot].cmp.map(|_| self.writes.shared(slot));
        let below = snapshot_sources(self.state.clone(), view, self.seq, Vec::new());
        let factory: SourceFactory<'static> = Arc::new(move |direction, lower, upper| {
            let mut sources: Vec<Source<'static>> = Vec::new();
            if let Some(own) = &own {
                sources.push(Source::boxed(SharedSource::new(own.clone(), cmp, lower, upper, direction)));
            }
            sources.extend(below(direction, lower, upper)?);
            Ok(sources)
        });
        Ok(MergedRange::new(factory, cmp, lower, upper))
    }

    /// Removes and returns the entry with the smallest key.
    pub fn pop_first(&mut self, table: TableRef) -> Result<Option<(Vec<u8>, ValueBytes)>> {
        self.pop(table, true)
    }

    /// Removes and returns the entry with the largest key.
    pub fn pop_last(&mut self, table: TableRef) -> Result<Option<(Vec<u8>, ValueBytes)>> {
        self.pop(table, false)
    }

    /// Forgets the pop cursors of one table (`None`: of every table), whose
    /// own writes no longer shadow what the cursors passed: the table was
    /// deleted, or a savepoint restored (`engine::pop`'s invariant).
    fn drop_pop_cursors(&mut self, slot: Option<TableSlot>) {
        match slot {
            Some(slot) => {
                if let Some(cursors) = self.pop_cursors.get_mut(slot) {
                    *cursors = Default::default();
                }
            }
            None => self.pop_cursors.clear(),
        }
    }

    /// A pop from either end: the table's pop cursor for that direction
    /// (made on the first pop) merged with the transaction's own writes.
    fn pop(&mut self, table: TableRef, front: bool) -> Result<Option<(Vec<u8>, ValueBytes)>> {
        let slot = self.slot(table)?;
        let Some(cmp) = self.writes.tables[slot].cmp else {
            return Err(foreign_handle());
        };
        let Some((lower, upper)) = self.writes.unpopped(slot) else {
            return Ok(None);
        };
        let (lower, upper) = (borrowed(&lower), borrowed(&upper));
        let (direction, end) = if front {
            (Direction::Forward, 0)
        } else {
            (Direction::Backward, 1)
        };
        if self.pop_cursors.len() <= slot {
            self.pop_cursors.resize_with(slot + 1, Default::default);
        }
        if self.pop_cursors[slot][end].is_none() {
            let factory = snapshot_sources(self.state.clone(), self.views[slot].clone(), self.seq, Vec::new());
            let snapshot = MergedRange::new(factory, cmp, lower, upper);
            self.pop_cursors[slot][end] = Some(PopCursor::new(snapshot, direction));
        }
        let (near, far) = if front { (lower, upper) } else { (upper, lower) };
        let found = match &mut self.pop_cursors[slot][end] {
            Some(cursor) => cursor.next(cmp, near, far, self.writes.source(slot, lower, upper, direction))?,
            None => None,
        };
        let Some((key, value)) = found else {
            return Ok(None);
        };
        let key = key.into_vec();
        // The entry is visible (the pop just found it): a tombstone hides it.
        // From the front, in the tail: each such tombstone sorts after the
        // last, so the tail stays one ascending run behind the next pop's
        // bound, which the next pop's read leaves in place
        // (`WriteSet::source`). From the back (descending keys would leave
        // the run), in the map.
        let place = if front { Place::Tail } else { Place::Map };
        self.writes.write(slot, &key, None, place, || Ok(Below::Read(Some(value.clone()))))?;
        self.writes.note_popped(slot, key.clone(), front);
        Ok(Some((key, value)))
    }

    /// Commits: appends the transaction to the WAL, inserts it into the
    /// memtable, releases the writer slot, and then waits for durability as
    /// the transaction's [`Durability`] asks.
    ///
    /// A big commit's memtable insert runs on the inserter thread beside
    /// the WAL write and sync, and overlaps the next transaction. When the
    /// transaction touched a table of a user-defined key order, `commit`
    /// also waits for that insert, so that once it returns the user's
    /// comparator is called for this commit no more (byte order is the
    /// engine's own: nothing to observe, so no wait). A `Durability::None`
    /// commit is visible to every read begun once `commit` returns: if
    /// another thread's earlier `Immediate` commit is still syncing, it
    /// waits for that sync, since the publication rule shows no commit
    /// before it (`Inner::wait_published`). `commit_pipelined` never
    /// waits.
    pub fn commit(mut self: Box<Self>) -> Result<()> {
        let durability = self.durability;
        let inner = self.inner.clone();
        let user_order = self
            .writes
            .tables
            .iter()
            .any(|table| table.cmp.is_some_and(|cmp| !is_bytewise(cmp)));
        let sync = match durability {
            Durability::Immediate => SyncBy::Caller,
            Durability::None => SyncBy::Interval,
        };
        let dropped_pins = std::mem::take(&mut self.dropped_pins);
        let pending = self.commit_with(sync)?;
        let seq = pending.sequence();
        match durability {
            Durability::Immediate => pending.wait()?,
            // Visible once `commit` returns, as redb's: published, though
            // not durable (a read begun on any thread sees it).
            Durability::None => inner.wait_published(seq)?,
        }
        if durability == Durability::Immediate {
            // The commit is durable: it is not failed by what follows. An
            // unpin that fails (the engine is then poisoned, and says so
            // from the next operation on) leaves the pin to the next open.
            for id in dropped_pins {
                let _ = unpin(&inner, id);
            }
        }
        if user_order {
            inner.wait_inserted(seq)?;
        }
        Ok(())
    }

    /// Commits without waiting: returns as soon as the next writer may start.
    /// The returned [`PendingCommit`] says when the commit is durable.
    pub fn commit_pipelined(self: Box<Self>) -> Result<PendingCommit> {
        self.commit_with(SyncBy::Interval)
    }

    /// Commits without waiting; `sync` says who sees to the record's
    /// durability: the caller that waits for it next, or the sync thread.
    fn commit_with(mut self: Box<Self>, sync: SyncBy) -> Result<PendingCommit> {
        let inner = self.inner.clone();
        // From here on the pins stay: this commit's record may reach the
        // WAL. A reopen drops those whose savepoint did not.
        self.created_pins.clear();
        inner.check_poison()?;
        let seq = if self.writes.is_empty() {
            // Nothing to log; durable once everything before it is.
            inner.journal.last_seq()
        } else {
            self.append_and_apply(sync)?
        };
        // Dropped before publication, with its state: a state no one else
        // holds is published in place (`Inner::publish_seq`).
        drop(self);
        inner.refresh_publication();
        Ok(PendingCommit { inner, seq })
    }

    /// AppendWAL: one record, then the memtable: inline for a small commit,
    /// through the inserter thread for a big one (`engine::pending`).
    /// REQUIRES: the writer slot, so this transaction's sequence is the
    /// journal's next and nobody else inserts into the active memtable.
    fn append_and_apply(&mut self, sync: SyncBy) -> Result<u64> {
        self.resolve_unread(None)?;
        let inner = &self.inner;
        let seq = inner.journal.last_seq() + 1;
        let commit = self.writes.take_commit(seq);
        let len = commit.encoded_len();
        // Refused before the WAL sees it: this commit fails, the database
        // does not (an append error, by contrast, is an I/O failure).
        if len > inner.options.max_commit_bytes.min(crate::wal::MAX_PAYLOAD) {
            return Err(StorageError::ValueTooLarge(len));
        }
        let bulk = len >= inner.options.tree_commit_bytes;
        if bulk || self.through_tree {
            let new_orders: Vec<_> = self.writes.new_table_orders(seq).collect();
            tree_commit::commit(inner, seq, commit, &new_orders, bulk)?;
            return Ok(seq);
        }
        // A small record is encoded straight into the WAL's queue, under its
        // lock (no buffer of its own); a big one first, outside the lock,
        // so that the sync thread is not kept from the queue while its
        // thousands of writes are encoded (a buffer is cheap beside them).
        let staged = (len > ENCODE_IN_QUEUE_BYTES).then(|| {
            let mut payload = Vec::with_capacity(len);
            commit.encode_into(&mut payload, len);
            payload
        });
        let commits = inner.lock_commits();
        let appended = match &staged {
            Some(payload) => inner.journal.append_with(payload, sync),
            None => inner.journal.append_encoded(len, sync, |out| commit.encode_into(out, len)),
        };
        drop(staged);
        inner.check_assigned(inner.poison_on(appended)?, seq)?;
        // The previous big commit is in the memtable before this one
        // touches it (and its pending run is gone from the state).
        inner.wait_for_inserter()?;
        let active = inner.current_state().active.clone();
        // The record is in the WAL: a failure from here on (a panicking user
        // comparator, a table of unknown order) leaves the memtable partly
        // applied, which must never be published. Poison; reopening replays
        // the record whole.
        let insert = |insert: &dyn Fn()| {
            let inserted = catch_unwind(AssertUnwindSafe(insert)).map_err(|panic| {
                StorageError::corrupted(format!(
                    "a key comparator panicked while commit {seq} was applied: {}",
                    panic_message(&*panic)
                ))
            });
            inner.poison_on(inserted)
        };
        if commit.op_count() < HANDOFF_OPS {
            // Inserted from where the write set keeps the writes: no batch
            // of owned ops and no pending run, which only a hand-off needs.
            let charge = commit.charge();
            let (mut frame, tables) = commit.into_parts();
            apply_frame(&active, seq, &mut frame, charge);
            insert(&|| {
                let runs = tables.iter().map(|(id, cmp, writes)| (*id, *cmp, writes.iter()));
                insert_runs(&active, seq, runs);
            })?;
            self.writes.recycle_commit(tables, frame.counts);
        } else {
            let cmp_of = |id: u64| self.writes.order_of(id, seq);
            let ops = inner.poison_on(apply_metadata(&active, seq, commit.into_batch(), &cmp_of))?;
            let run = PendingRun::new(seq, ops, &cmp_of).expect("apply_metadata checked every table's order");
            let run = Arc::new(run);
            inner.update_state(|s| State {
                pending: Some(run.clone()),
                ..s.clone()
            });
            if let Err(job) = inner.inserter.submit(Job {
                mem: active.clone(),
                run,
            }) {
                // The engine's handle was dropped: no thread inserts it, so
                // this one does, and clears the run as that thread would.
                insert(&|| insert_ops(&active, seq, job.run.runs()))?;
                inner.clear_pending(&job.run);
            }
        }
        // Existing tables registered their order at their typed open.
        for (id, cmp) in self.writes.new_table_orders(seq) {
            inner.register(id, cmp);
        }
        inner.committed(seq, self.durability);
        if active.bytes() >= inner.memtable_bytes() {
            inner.freeze(&commits, true);
        }
        Ok(seq)
    }

    /// Discards the transaction.
    pub fn abort(self: Box<Self>) {}

    /// Gives the writer slot back, with this transaction's buffers for the
    /// next one (it is over: nothing reads its write set again). The
    /// scratch is stored before the slot is freed, so the writer that takes
    /// the slot next finds it; only the slot's holder touches the scratch.
    fn release(&mut self) {
        if std::mem::take(&mut self.holds_slot) {
            self.writes.recycle();
            self.views.clear();
            let scratch = WriterScratch {
                writes: std::mem::take(&mut self.writes),
                views: std::mem::take(&mut self.views),
            };
            *self.inner.writer_scratch.lock() = Some(scratch);
            self.inner.release_writer();
        }
    }
}

impl Drop for WriteTxn {
    fn drop(&mut self) {
        // Ended without a commit: no savepoint of it exists anywhere. A
        // failure leaves the pin to the next open (an orphan keeps pages,
        // never loses any).
        for id in std::mem::take(&mut self.created_pins) {
            let _ = unpin(&self.inner, id);
        }
        self.release();
    }
}

/// The sources of a table's range in a snapshot (the pending run, the
/// memtables, the overlay, the tree) at `seq`; none for a table the
/// snapshot does not have (`view` is `None`). `owners` are what the
/// memtables' long values hold ([`State::mem_owners`]; empty: each range
/// makes its own).
fn snapshot_sources(
    state: Arc<State>,
    view: Option<Arc<TableView>>,
    seq: u64,
    owners: Vec<MemOwner>,
) -> SourceFactory<'static> {
    Arc::new(move |direction, lower, upper| match &view {
        Some(view) => state.sources(view, seq, lower, upper, direction, &owners),
        None => Ok(Vec::new()),
    })
}

fn borrowed(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k),
        Bound::Excluded(k) => Bound::Excluded(k),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// A read transaction: a pinned snapshot of published state. Cloning
/// shares the snapshot.
#[derive(Clone)]
pub struct ReadTxn {
    inner: Arc<Inner>,
    state: Arc<State>,
    seq: u64,
    /// The view generation read before `state` was (`UNCHECKED` when not
    /// known): its tables' ranges look for a newer state once it moves.
    generation: u64,
}

/// A view generation no engine reaches: a table opened with it checks for
/// a newer state at its first range.
const UNCHECKED: u64 = u64::MAX;

/// A table opened in a read transaction. It pins the snapshot it was opened
/// in (the pages its view points at stay unreused while it lives) and reads
/// only through a transaction sharing that snapshot.
pub struct ReadTable {
    state: Arc<State>,
    /// Shared with every range read from it (a clone per range copied
    /// the table's metadata).
    view: Arc<TableView>,
    /// What its ranges read: see [`ReadTable::range_sources`].
    ranges: Mutex<RangeView>,
}

/// A state and the table's view in it, and the view generation
/// (`Inner::view_generation`) it was last checked against.
struct RangeView {
    state: Arc<State>,
    view: Arc<TableView>,
    generation: u64,
    /// The sources of a range of `view` in `state` at a sequence, made at
    /// the first range after the view changes and shared by the ranges
    /// after it (made per range, it was an allocation of every short scan).
    factory: Option<(u64, SourceFactory<'static>)>,
}

impl RangeView {
    fn new(state: Arc<State>, view: Arc<TableView>, generation: u64) -> Self {
        Self {
            state,
            view,
            generation,
            factory: None,
        }
    }
}

impl Clone for ReadTable {
    fn clone(&self) -> Self {
        let ranges = self.ranges.lock();
        Self {
            state: self.state.clone(),
            view: self.view.clone(),
            ranges: Mutex::new(RangeView::new(ranges.state.clone(), ranges.view.clone(), ranges.generation)),
        }
    }
}

impl ReadTable {
    /// A table of `state`, a snapshot current at view generation
    /// `generation` (or earlier).
    fn new(state: Arc<State>, view: TableView, generation: u64) -> Self {
        let view = Arc::new(view);
        Self {
            ranges: Mutex::new(RangeView::new(state.clone(), view.clone(), generation)),
            state,
            view,
        }
    }

    /// The metadata the table was created with.
    pub fn meta(&self) -> &[u8] {
        &self.view.def.meta
    }

    /// Whether this table's ranges read a pending run (a big commit not
    /// yet all in the memtable, `engine::pending`); for tests.
    pub fn ranges_read_a_pending_run(&self) -> bool {
        self.ranges.lock().state.pending.is_some()
    }

    /// Whether this table's ranges have moved to a newer state than its
    /// snapshot's (see [`ReadTable::range_sources`]); for tests.
    pub fn ranges_moved(&self) -> bool {
        !Arc::ptr_eq(&self.ranges.lock().state, &self.state)
    }

    /// The sources (and key order) of a range at `seq`, the table's
    /// snapshot. They read the newest published state whose tree holds
    /// nothing above `seq` (`State::tree_seq`), once one is published. Such
    /// a state shows the same data at `seq` as the snapshot's, through
    /// fewer sources: a reader that began while a memtable was being
    /// flushed otherwise merged that memtable into every range for as long
    /// as it lived (measured: a seek and ten entries ran at 0.30x redb
    /// against 0.47x without the frozen memtable), and one that began while
    /// the inserter thread took in a big commit merged its pending run.
    /// Once the tree has moved past `seq`, the last state taken stays. Point reads and counts keep the
    /// snapshot's own state: their memtable probes are a hash each.
    ///
    /// Lock order: this table's lock, then the engine's state lock (nothing
    /// takes them the other way). The new view is made under the table's
    /// lock, once per tree change at most: a range of the same table on
    /// another thread waits for it rather than make its own.
    fn range_sources(&self, inner: &Inner, seq: u64) -> (SourceFactory<'static>, Comparator) {
        let mut ranges = self.ranges.lock();
        let generation = inner.view_generation.load(Ordering::Acquire);
        if generation != ranges.generation {
            ranges.generation = generation;
            let newest = inner.current_state();
            // A newer state with the same tree reads through the same
            // sources or more (a memtable of newer commits only): only a
            // moved tree, or a pending run gone into the memtable with no
            // layer added, is worth a new view.
            let fewer = newest.tree.txn() != ranges.state.tree.txn()
                || newest.memory_layers() < ranges.state.memory_layers();
            if newest.tree_seq <= seq && fewer {
                // A view that cannot be made (a page that fails to read)
                // leaves the range on the state it had, which still holds
                // everything it reads.
                if let Ok(view) = newest.view(ranges.view.def.clone(), ranges.view.cmp) {
                    *ranges = RangeView::new(newest, Arc::new(view), generation);
                }
            }
        }
        let factory = match &ranges.factory {
            Some((made_at, factory)) if *made_at == seq => factory.clone(),
            _ => {
                // Made once per table and snapshot: a range of a
                // populated memtable allocated an owner of its own.
                let owners = ranges.state.mem_owners();
                let factory = snapshot_sources(ranges.state.clone(), Some(ranges.view.clone()), seq, owners);
                ranges.factory = Some((seq, factory.clone()));
                factory
            }
        };
        (factory, ranges.view.cmp)
    }
}

impl ReadTxn {
    /// The sequence this snapshot shows: every commit up to it, none after.
    pub fn sequence(&self) -> u64 {
        self.seq
    }

    /// Opens a table for reading, ordered by `cmp`; `None` if missing. The
    /// first open of a table in this process fixes its key order (see
    /// [`Inner::register`]).
    pub fn open_table(&self, name: &[u8], cmp: Comparator) -> Result<Option<ReadTable>> {
        let Some(def) = self.state.lookup_table(name, self.seq)? else {
            return Ok(None);
        };
        let cmp = self.inner.register(def.id, cmp);
        Ok(Some(ReadTable::new(self.state.clone(), self.state.view(def, cmp)?, self.generation)))
    }

    /// The metadata table `name` was created with, if it exists in this
    /// snapshot. Unlike [`open_table`](Self::open_table) this fixes no key
    /// order, so the typed layer checks a table's kind and types with it
    /// *before* opening: an open with the wrong types must not register
    /// their comparator as the table's order.
    pub fn table_meta(&self, name: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.state.lookup_table(name, self.seq)?.map(|def| def.meta.to_vec()))
    }

    /// The key order of table `name` as this process knows it, without
    /// fixing one: the order a typed open registered, or byte order when
    /// the table's metadata says so. `Ok(None)` if the table does not exist
    /// in this snapshot; `Ok(Some(None))` if its order is unknown here (a
    /// custom order whose key type this process has not opened). Tools that
    /// read tables untyped (backup, the `sluice` CLI) ask this first, so
    /// they never fix a wrong order with [`open_table`](Self::open_table).
    pub fn table_order(&self, name: &[u8]) -> Result<Option<Option<Comparator>>> {
        let Some(def) = self.state.lookup_table(name, self.seq)? else {
            return Ok(None);
        };
        Ok(Some(
            self.inner
                .comparator(def.id)
                .or_else(|| (self.inner.options.resolver)(&def.meta)),
        ))
    }

    /// Every table: `(name, metadata)`.
    pub fn list_tables(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Ok(self
            .state
            .list_tables(self.seq)?
            .into_iter()
            .map(|(n, d)| (n, d.meta.to_vec()))
            .collect())
    }

    /// The view of a table opened in this transaction's snapshot.
    /// The shape of `table`'s tree in the data file as of this snapshot
    /// (the memtables are not in it). Added for `TableStats`.
    pub fn table_shape(&self, table: &ReadTable) -> Result<TreeShape> {
        self.state.tree.shape(self.view(table)?.tree.as_ref())
    }

    fn view<'t>(&self, table: &'t ReadTable) -> Result<&'t Arc<TableView>> {
        if !Arc::ptr_eq(&table.state, &self.state) {
            return Err(foreign_handle());
        }
        Ok(&table.view)
    }

    /// The value of `key`.
    pub fn get(&self, table: &ReadTable, key: &[u8]) -> Result<Option<ValueBytes>> {
        self.state.get(self.view(table)?, key, self.seq)
    }

    /// The number of entries in a table, without a scan.
    pub fn len(&self, table: &ReadTable) -> Result<u64> {
        self.state.len(self.view(table)?, self.seq)
    }

    /// Entries between two bounds; the range holds the snapshot.
    pub fn range(&self, table: &ReadTable, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<MergedRange<'static>> {
        self.view(table)?;
        let (factory, cmp) = table.range_sources(&self.inner, self.seq);
        Ok(MergedRange::new(factory, cmp, lower, upper))
    }
}

/// A commit that has been appended and applied but may not be durable yet.
/// Wait for it with [`wait`](Self::wait), ask with
/// [`is_durable`](Self::is_durable), or `.await` it (no runtime needed).
///
/// Durable means what survives a crash: the synced WAL, or, for a volatile
/// WAL (`Builder::create_with_backend`), a checkpoint of the data file,
/// which waiting then takes (so `wait` and `.await` block for it).
pub struct PendingCommit {
    inner: Arc<Inner>,
    seq: u64,
}

impl PendingCommit {
    /// The commit's sequence number.
    pub fn sequence(&self) -> u64 {
        self.seq
    }

    /// Whether the commit is durable; never blocks.
    pub fn is_durable(&self) -> bool {
        self.inner.journal.is_durable(self.seq) && !self.needs_checkpoint()
    }

    /// Blocks until the commit is durable (and therefore published).
    pub fn wait(self) -> Result<()> {
        let result = self.inner.journal.wait_for_sync(self.seq);
        self.inner.poison_on(result)?;
        self.inner.refresh_publication();
        self.checkpoint_if_volatile()
    }

    /// Whether only a checkpoint still to come makes the commit durable: a
    /// volatile WAL's sync keeps nothing through a crash.
    fn needs_checkpoint(&self) -> bool {
        self.inner.options.volatile_wal && self.inner.trees.durable_checkpoint_seq() < self.seq
    }

    /// Once the WAL holds the commit: the checkpoint a volatile WAL needs.
    fn checkpoint_if_volatile(&self) -> Result<()> {
        if self.needs_checkpoint() {
            checkpoint(&self.inner)?;
        }
        Ok(())
    }
}

impl Future for PendingCommit {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.inner.journal.poll_durable(self.seq, cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => {
                let result = self.inner.poison_on(result);
                if result.is_err() {
                    return Poll::Ready(result);
                }
                self.inner.refresh_publication();
                // A volatile WAL's checkpoint blocks the polling thread, as
                // `commit` does there.
                Poll::Ready(self.checkpoint_if_volatile())
            }
        }
    }
}

/// What savepoints (`crate::savepoint`) need of the engine's transactions.
impl WriteTxn {
    /// A read snapshot of the state this transaction started from: every
    /// commit up to its start sequence, none of its own writes. It pins what
    /// a [`ReadTxn`] pins (memtables and tree pages) for as long as it lives.
    pub fn start_snapshot(&self) -> ReadTxn {
        ReadTxn {
            inner: self.inner.clone(),
            state: self.state.clone(),
            seq: self.seq,
            generation: UNCHECKED,
        }
    }

    /// Pins the tree at this transaction's start state under `id` (a
    /// persistent savepoint): checkpoints every commit so far, so the
    /// durable tree holds exactly that state, then pins that commit
    /// (`TreeWriter::pin_durable`). The pin is dropped again if the
    /// transaction ends without trying to commit.
    pub fn pin_start_tree(&mut self, id: u64) -> Result<PinnedCommit> {
        checkpoint(&self.inner)?;
        let mut writer = self.inner.trees.writer()?;
        // The writer slot is this transaction's: no commit came since it
        // began, so the checkpoint covered exactly its start state.
        if writer.durable_checkpoint_seq() != self.seq || !writer.at_durable() {
            return Err(StorageError::Internal(format!(
                "a savepoint's checkpoint reached {} for a transaction at {}",
                writer.durable_checkpoint_seq(),
                self.seq
            )));
        }
        let pin = writer.pin_durable(id)?;
        self.created_pins.push(id);
        show_own_tree_change(&self.inner);
        Ok(pin)
    }

    /// Tree pin `id`, if it exists.
    pub fn tree_pin(&self, id: u64) -> Result<Option<PinnedCommit>> {
        Ok(self.inner.trees.pins()?.into_iter().find(|(pin, _)| *pin == id).map(|(_, pin)| pin))
    }

    /// Pages named by tree pins, and how many of them this transaction's
    /// tree snapshot reaches (`TreeStore::pinned_pages`).
    pub fn pinned_pages(&self) -> Result<(u64, u64)> {
        self.inner.trees.pinned_pages(&self.state.tree)
    }

    /// Drops tree pin `id` once this transaction's commit is durable
    /// (only [`commit`](Self::commit) with `Durability::Immediate` does;
    /// otherwise the next open drops it, its savepoint gone).
    pub fn unpin_after_commit(&mut self, id: u64) {
        self.dropped_pins.push(id);
    }

    /// A read snapshot of pinned commit `pin`: its trees, with the records
    /// its staging trees hold for tables of then unknown order, at its
    /// checkpoint sequence.
    pub fn pinned_snapshot(&self, pin: &PinnedCommit) -> Result<ReadTxn> {
        let tree = self.inner.trees.snapshot_of(pin);
        let deferred = Recovered::load(&tree, self.inner.options.resolver)?.deferred_tables();
        let state = State {
            seq: pin.checkpoint_seq,
            pending: None,
            active: Arc::new(Memtable::new(self.inner.options.memtable_bytes)),
            frozen: Arc::new([]),
            deferred: Arc::new(deferred),
            tree,
            tree_seq: pin.checkpoint_seq,
            tree_filter: None,
            count_ahead: None,
            tables: Arc::default(),
            views: ViewMemo::default(),
        };
        Ok(ReadTxn {
            inner: self.inner.clone(),
            state: Arc::new(state),
            seq: pin.checkpoint_seq,
            generation: UNCHECKED,
        })
    }

    /// Whether `snapshot` was taken from this transaction's database (the
    /// same engine instance, not a reopened one).
    pub fn same_engine(&self, snapshot: &ReadTxn) -> bool {
        Arc::ptr_eq(&self.inner, &snapshot.inner)
    }

    /// This engine instance's id, unique in the process: a handle that
    /// names it can never be taken for another database, or for a later
    /// open of the same one (an address could: freed, it is reused).
    pub fn engine_instance(&self) -> u64 {
        self.inner.instance
    }

    /// Names the transaction resolved, created, deleted or renamed.
    pub fn touched_tables(&self) -> Vec<Vec<u8>> {
        self.writes.touched_names().map(<[u8]>::to_vec).collect()
    }

    /// Whether a savepoint was restored in this transaction.
    pub fn restored(&self) -> bool {
        self.writes.restored
    }

    /// Records that a savepoint was restored in this transaction.
    pub fn mark_restored(&mut self) {
        self.writes.restored = true;
        self.drop_pop_cursors(None);
    }

    /// Records that this transaction created or deleted a persistent
    /// savepoint.
    pub fn mark_persistent_modified(&mut self) {
        self.writes.persistent_modified = true;
    }

    /// Whether this transaction created or deleted a persistent savepoint.
    pub fn persistent_modified(&self) -> bool {
        self.writes.persistent_modified
    }

    /// Counts a live ephemeral savepoint until the pin drops.
    pub fn pin_ephemeral(&self) -> SavepointPin {
        SavepointPin::new(self.inner.clone(), SavepointPin::EPHEMERAL)
    }

    /// Counts a persistent savepoint created in this transaction until the
    /// transaction ends.
    pub fn pin_pending_persistent(&mut self) {
        let pin = SavepointPin::new(self.inner.clone(), SavepointPin::PENDING_PERSISTENT);
        self.writes.pins.push(pin);
    }

    /// Live ephemeral savepoints of this engine.
    pub fn live_ephemeral_savepoints(&self) -> u64 {
        self.inner.savepoint_pins[SavepointPin::EPHEMERAL].load(Ordering::Relaxed)
    }

    /// Hands out the next savepoint id: above every id this process gave
    /// out and above `floor` (the highest id the database has stored).
    pub fn next_savepoint_id(&self, floor: u64) -> u64 {
        let ids = &self.inner.savepoint_ids;
        ids.fetch_max(floor, Ordering::Relaxed);
        ids.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The table bound to `name`: `(id, metadata)`, the id `None` for a
    /// table this transaction created (it gets one at commit).
    pub fn table_identity(&mut self, name: &[u8]) -> Result<Option<(Option<u64>, Vec<u8>)>> {
        Ok(self.resolve(name, None)?.map(|slot| {
            let table = &self.writes.tables[slot];
            let id = match table.origin {
                Origin::Existing(id) => Some(id),
                Origin::New(_) => None,
            };
            (id, table.meta.to_vec())
        }))
    }

    /// The key order of table `name` as this process knows it, without
    /// fixing one (as [`ReadTxn::table_order`]); `Ok(None)` if missing.
    pub fn table_order(&mut self, name: &[u8]) -> Result<Option<Option<Comparator>>> {
        let Some(slot) = self.resolve(name, None)? else {
            return Ok(None);
        };
        let table = &self.writes.tables[slot];
        if let Some(cmp) = table.cmp {
            return Ok(Some(Some(cmp)));
        }
        Ok(Some(match table.origin {
            Origin::Existing(id) => self.order_of(id, &table.meta),
            Origin::New(_) => None,
        }))
    }

    /// The key order of table `id` registered in this process, or given by
    /// its metadata.
    pub fn order_of(&self, id: u64, meta: &[u8]) -> Option<Comparator> {
        self.inner
            .comparator(id)
            .or_else(|| (self.inner.options.resolver)(meta))
    }
}

/// What savepoints (`crate::savepoint`) need of the engine's snapshots.
impl ReadTxn {
    /// The table bound to `name` in this snapshot: `(id, metadata)`.
    pub fn table_def(&self, name: &[u8]) -> Result<Option<(u64, Vec<u8>)>> {
        Ok(self.state.lookup_table(name, self.seq)?.map(|d| (d.id, d.meta.to_vec())))
    }
}

/// Counts one savepoint in the engine while it lives (compaction reads the
/// counts: [`Engine::savepoint_pins`]).
pub struct SavepointPin {
    inner: Arc<Inner>,
    kind: usize,
}

impl SavepointPin {
    const EPHEMERAL: usize = 0;
    const PENDING_PERSISTENT: usize = 1;

    fn new(inner: Arc<Inner>, kind: usize) -> Self {
        inner.savepoint_pins[kind].fetch_add(1, Ordering::Relaxed);
        Self { inner, kind }
    }
}

impl Drop for SavepointPin {
    fn drop(&mut self) {
        self.inner.savepoint_pins[self.kind].fetch_sub(1, Ordering::Relaxed);
    }
}

impl Engine {
    /// `(live ephemeral savepoints, persistent ones created in transactions
    /// still open)`.
    pub fn savepoint_pins(&self) -> (u64, u64) {
        let pins = &self.inner.savepoint_pins;
        (pins[0].load(Ordering::Relaxed), pins[1].load(Ordering::Relaxed))
    }
}

/// [`Engine::checkpoint`], for holders of the engine's shared state (a
/// [`Checkpointer`]).
pub(crate) fn checkpoint(inner: &Arc<Inner>) -> Result<()> {
    inner.check_poison()?;
    // Not the writer slot: a write transaction open on this very thread
    // must not deadlock a checkpoint (redb allows it). The commit lock is
    // held only for a commit's memtable insert, never while a transaction
    // is being built.
    inner.freeze_if_not_empty();
    let ticket = inner.apply.request_checkpoint();
    // A failure from here on stopped this checkpoint: its error, not
    // `PreviousIo` (redb's `close` returns `Io` whichever sync fails).
    if !inner.apply.wait_checkpoint(ticket, || inner.check_poison_in_flight())? {
        // The apply thread has exited: stopped by a failure (reported as
        // it happened, as above), or gone with the engine's handle.
        inner.check_poison_in_flight()?;
        super::apply::checkpoint_inline(inner, ticket)?;
    }
    Ok(())
}

/// Drops tree pin `id` (`TreeWriter::unpin`) at a durable commit, after a
/// checkpoint: the tree then holds every commit so far, so the pages only
/// the pin kept (a value removed since it was taken, say) are free at once
/// (redb's `page_reuse_after_persistent_savepoint_delete`). The unpin
/// needs the writer at the durable commit: a flush that committed since
/// the checkpoint (not durably) is made durable first, at the sequence its
/// tree holds, as a checkpoint would (`Inner::tree_held_seq`). It gave up
/// after three checkpoints once, leaving the pin while flushes kept
/// coming, and a compaction after it then met the pin
/// (`tests/durable_commits_beside_flushes_crash.rs`).
pub(crate) fn unpin(inner: &Arc<Inner>, id: u64) -> Result<()> {
    checkpoint(inner)?;
    let mut writer = inner.writer_at_published_tree()?;
    if !writer.at_durable() {
        let seq = inner.tree_held_seq(&writer);
        inner.poison_on(writer.commit_and_continue(seq))?;
    }
    if inner.poison_on(writer.unpin(id))? {
        show_own_tree_change(inner);
    }
    Ok(())
}

/// After a tree commit that changed only the engine's own trees (a pin's
/// record): new transactions' state shows the store's newest tree, unless
/// a flush or tree commit waits for its publication (its tree holds data
/// the state does not account for yet: that publication will show this
/// change too). The data is the same, so `seq` and `tree_seq` stay.
/// REQUIRES: the tree writer held, so no tree commit starts meanwhile.
fn show_own_tree_change(inner: &Inner) {
    if inner.unpublished_trees.load(Ordering::SeqCst) == 0 {
        inner.update_state(|s| State {
            tree: inner.trees.snapshot(),
            ..s.clone()
        });
    }
}

/// Checkpoints the engine a write transaction belongs to. Added for
/// databases whose WAL is volatile (`Builder::create_with_backend`): their
/// durable commits are made durable by a checkpoint after the commit.
pub(crate) struct Checkpointer(Arc<Inner>);

impl Checkpointer {
    /// See [`Engine::checkpoint`].
    pub(crate) fn checkpoint(&self) -> Result<()> {
        checkpoint(&self.0)
    }

    /// Whether the engine's background threads have stopped (its handle
    /// was dropped): nothing will checkpoint a commit unless its committer
    /// does.
    pub(crate) fn background_stopped(&self) -> bool {
        self.0.apply.has_stopped()
    }
}
