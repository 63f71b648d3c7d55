//! The background apply thread: flushes frozen memtables into the tree and
//! checkpoints it.
//!
//! Flush protocol, for the oldest frozen memtable `M`:
//! 1. Wait until every sequence in `M` is durable in the WAL and published,
//!    so the tree never shows readers anything they could not already see.
//! 2. Merge `M` into the tree as one sorted batch per table (name bindings and
//!    dropped tables first) and publish the new root with
//!    `non_durable_commit`: nothing is synced. A flush of plain writes also
//!    commits durably every `flush_commit_bytes` of pages it writes, at the
//!    unchanged checkpoint, so the pages it replaced are reused by its next
//!    ones (`engine::flush_marker` says how the counts stay exact).
//! 3. Swap in a state without `M` and with the new tree. Readers holding the
//!    old state keep reading `M` and the old root, both still pinned.
//! 4. Keep a reference to `M` until it is the last one, then free `M` here:
//!    a full memtable is hundreds of thousands of nodes, and freeing them
//!    would otherwise stall whichever committer or reader let go last.
//!
//! Checkpoint protocol: flush every frozen memtable, make the tree durable
//! with `checkpoint_seq` = the last flushed sequence (pages, fsync, slot,
//! fsync), and only then delete the WAL segments wholly at or below it.
//!
//! A panic or an error here poisons the database: every operation then fails
//! (`PreviousIo` after an I/O error, `Poisoned` with the cause otherwise; a
//! checkpoint waiting for this thread gets the error itself), and reopening
//! recovers from the last checkpoint and the WAL.

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::core::nanos_since;
use super::core::{Inner, UnpublishedTree, panic_message};
use super::deferred::staging_tree_name;
use super::flush_marker::{FLUSH_MARKER_TREE, FlushMarker};
use super::log_tail::{LogTail, Segment};
use super::memtable::{MemKey, MemValue, Memtable};
use super::skiplist::SkipList;
use super::state::{DeferredTables, State, TABLES_TREE, data_tree_name, encode_def};
use super::tree_filter::FilterTargets;
use super::batch::TableDef;
use crate::btree::{Comparator, Op, TreeWriter, bytewise};
use crate::error::Result;
use crate::io::Failure;

#[derive(Default)]
struct Control {
    /// Checkpoints asked for, and completed; each request is a ticket.
    requested: u64,
    completed: u64,
    shutdown: bool,
    /// The apply thread has returned (told to stop, or stopped by a
    /// failure): nobody serves requests but their askers (`checkpoint_inline`).
    exited: bool,
}

/// How the apply thread is asked for work and reports progress.
#[derive(Default)]
pub(crate) struct ApplyControl {
    control: Mutex<Control>,
    /// Wakes the apply thread.
    work: Condvar,
    /// Signalled after every flush and checkpoint.
    progress: Condvar,
    /// Serializes the checkpoints that askers run themselves once the
    /// apply thread has exited.
    inline: Mutex<()>,
}

impl ApplyControl {
    pub(crate) fn wake(&self) {
        let _guard = self.control.lock();
        self.work.notify_one();
    }

    pub(crate) fn wake_all(&self) {
        let _guard = self.control.lock();
        self.work.notify_all();
        self.progress.notify_all();
    }

    pub(crate) fn shutdown(&self) {
        self.control.lock().shutdown = true;
        self.wake_all();
    }

    /// Whether the apply thread was told to stop, or has exited: it will
    /// flush and checkpoint nothing more.
    pub(crate) fn has_stopped(&self) -> bool {
        let control = self.control.lock();
        control.shutdown || control.exited
    }

    /// Asks for a checkpoint; returns the ticket to wait for.
    pub(crate) fn request_checkpoint(&self) -> u64 {
        let mut control = self.control.lock();
        control.requested += 1;
        self.work.notify_one();
        control.requested
    }

    /// Waits until checkpoint `ticket` completed (`true`), or the apply
    /// thread has exited without it (`false`: see [`checkpoint_inline`]), or
    /// `give_up` says stop. `give_up` runs without the control lock held: it
    /// may poison the engine, which takes that lock to wake everyone.
    pub(crate) fn wait_checkpoint(&self, ticket: u64, give_up: impl Fn() -> Result<()>) -> Result<bool> {
        loop {
            {
                let mut control = self.control.lock();
                if control.completed >= ticket {
                    return Ok(true);
                }
                if control.exited {
                    return Ok(false);
                }
                self.progress.wait_for(&mut control, Duration::from_millis(100));
                if control.completed >= ticket {
                    return Ok(true);
                }
            }
            give_up()?;
        }
    }

    pub(crate) fn wait_for_flush(&self, timeout: Duration) {
        let mut control = self.control.lock();
        self.progress.wait_for(&mut control, timeout);
    }

    fn notify_progress(&self) {
        let _guard = self.control.lock();
        self.progress.notify_all();
    }
}

/// How often the apply thread looks again at flushed memtables that someone
/// still holds.
const RETIRE_POLL: Duration = Duration::from_millis(10);

/// Marks the apply thread exited when it returns or unwinds.
struct Exiting<'a>(&'a ApplyControl);

impl Drop for Exiting<'_> {
    fn drop(&mut self) {
        self.0.control.lock().exited = true;
        self.0.progress.notify_all();
    }
}

/// Serves checkpoint request `ticket` on the asking thread, once the apply
/// thread has exited: a transaction that outlived the engine's handle
/// commits a big transaction (whose step 1 is a checkpoint) or makes a
/// commit durable on a volatile WAL. Flushes every frozen memtable, then
/// checkpoints, as the apply thread's step would.
pub(crate) fn checkpoint_inline(inner: &Arc<Inner>, ticket: u64) -> Result<()> {
    let _alone = inner.apply.inline.lock();
    if inner.apply.control.lock().completed >= ticket {
        return Ok(());
    }
    inner.check_poison()?;
    // A failure here poisons the engine, as it would on the apply thread: a
    // flush stopped part way leaves nothing else to trust.
    inner.poison_on((|| {
        while !flush_oldest(inner)?.is_empty() {}
        checkpoint(inner)
    })())?;
    let mut control = inner.apply.control.lock();
    control.completed = control.completed.max(ticket);
    inner.apply.progress.notify_all();
    Ok(())
}

/// The time trigger of checkpoints, an idle database's: once commits have
/// stopped for `checkpoint_interval`, with some since the last checkpoint,
/// the apply thread flushes what the active memtable holds and checkpoints,
/// so a database left alone ends with its data in the tree and its log
/// empty. A busy one checkpoints by volume (`checkpoint_wal_bytes`).
///
/// Measured from the last commit, not from the last checkpoint: a timer
/// that fired in the middle of a burst flushed a memtable still being
/// written (a leaf rewritten for the few keys it had gained since the last
/// flush, and again for the next ones) and took a core from the work that
/// followed the burst (the benchmark's two-thread point reads through a
/// populated memtable: 2.45-2.55M/s with the timer landing in the row,
/// 2.93-3.02M/s without it).
///
/// Commits are seen when the apply thread wakes (at least every quarter
/// interval), so a commit's quiet time is counted from up to a quarter
/// interval after it.
struct IdleTrigger {
    /// `Counters::commits` when the thread last looked.
    seen: u64,
    /// When `seen` was first seen.
    since: Instant,
    /// `Counters::commits` when the last timed checkpoint's step began, if
    /// it left no commit unflushed: what it covers. `None` until one has:
    /// what recovery put in the memtables is not counted.
    at_checkpoint: Option<u64>,
}

impl IdleTrigger {
    fn new(commits: u64) -> Self {
        Self {
            seen: commits,
            since: Instant::now(),
            at_checkpoint: None,
        }
    }

    /// Whether the database has been idle for `interval` with commits that
    /// no checkpoint covers, `commits` being `Counters::commits` now.
    fn is_due(&mut self, commits: u64, interval: Duration) -> bool {
        let quiet = self.quiet(commits);
        self.at_checkpoint != Some(commits) && quiet >= interval
    }

    /// How long no commit has come, `commits` being `Counters::commits`
    /// now (seen as [`is_due`](Self::is_due) sees it).
    fn quiet(&mut self, commits: u64) -> Duration {
        if commits != self.seen {
            self.seen = commits;
            self.since = Instant::now();
        }
        self.since.elapsed()
    }

    /// A timed checkpoint covered the commits counted before its step
    /// began.
    fn checkpointed(&mut self, commits: u64) {
        self.at_checkpoint = Some(commits);
    }
}

/// Frozen memtables a flush waits for while commits keep coming: it merges
/// them into the tree in one pass (`flush_oldest` takes every plain frozen
/// memtable), so a leaf that gains keys from both is rewritten once, not
/// twice. Random writes into a tree much larger than a memtable rewrite
/// nearly every leaf per pass, so the flush's work per key halves (RocksDB's
/// `min_write_buffer_number_to_merge` is the same idea). Measured, four
/// runs of `compare --only load,reads,scans,commits,pipelined,no-sync,
/// overwrite,remove,blind-overwrite` alternating one and two: single-key
/// no-sync writes 271K / 264K -> 319K / 300K per second, 1000-key durable
/// overwrites 408K / 417K -> 509K / 481K, removals 369K / 407K -> 665K /
/// 631K, batch writes' p99 3.62 / 3.56 -> 2.75 / 2.32 ms.
const FLUSH_TOGETHER: usize = 2;

/// A frozen memtable is flushed without waiting for another once no commit
/// has come for this long: a burst of writes that ends leaves nothing
/// frozen for long, and a reader soon has one memtable fewer to look in.
const FLUSH_QUIET: Duration = Duration::from_millis(20);

/// Whether the apply thread flushes the frozen memtables now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FlushDue {
    /// Nothing is frozen.
    Nothing,
    /// Frozen memtables wait for another, or for commits to pause
    /// ([`FLUSH_QUIET`]).
    WhenQuiet,
    Now,
}

/// When `state`'s frozen memtables are flushed: once [`FLUSH_TOGETHER`]
/// wait, or they hold half of the frozen-bytes budget (a small budget never
/// waits, and writers are never slowed for a flush that has not begun), or
/// no commit has come for [`FLUSH_QUIET`] (`quiet`: how long none has).
fn flush_due(state: &State, max_frozen_bytes: usize, quiet: Duration) -> FlushDue {
    flush_due_of(state.frozen.len(), state.frozen_bytes(), max_frozen_bytes, quiet)
}

/// [`flush_due`] of `frozen` memtables holding `frozen_bytes`.
fn flush_due_of(frozen: usize, frozen_bytes: usize, max_frozen_bytes: usize, quiet: Duration) -> FlushDue {
    if frozen == 0 {
        FlushDue::Nothing
    } else if frozen >= FLUSH_TOGETHER || frozen_bytes >= max_frozen_bytes / 2 || quiet >= FLUSH_QUIET {
        FlushDue::Now
    } else {
        FlushDue::WhenQuiet
    }
}

pub(crate) fn run(inner: Arc<Inner>) {
    let _exiting = Exiting(&inner.apply);
    let commits = || inner.counters.commits.load(Ordering::Relaxed);
    let mut idle = IdleTrigger::new(commits());
    // Flushed memtables, freed here once nobody else holds them (step 4).
    let mut retired: Vec<Arc<Memtable>> = Vec::new();
    loop {
        // Step 4, outside every lock: freeing a memtable takes milliseconds.
        retired.retain(|mem| Arc::strong_count(mem) > 1);
        let ticket = {
            let mut control = inner.apply.control.lock();
            loop {
                if control.shutdown {
                    return;
                }
                if control.requested > control.completed {
                    break Some(control.requested);
                }
                let now = commits();
                let flush = flush_due(&inner.current_state(), inner.max_frozen_bytes(), idle.quiet(now));
                if flush == FlushDue::Now || idle.is_due(now, inner.options.checkpoint_interval) {
                    break Some(control.requested);
                }
                if retired.iter().any(|mem| Arc::strong_count(mem) == 1) {
                    break None;
                }
                // At least a millisecond: an interval of zero ("checkpoint
                // as soon as commits stop") must not spin this loop.
                let quarter = (inner.options.checkpoint_interval / 4).max(Duration::from_millis(1));
                let mut wait = if retired.is_empty() {
                    quarter
                } else {
                    RETIRE_POLL.min(quarter)
                };
                if flush == FlushDue::WhenQuiet {
                    wait = wait.min(FLUSH_QUIET / 4);
                }
                inner.apply.work.wait_for(&mut control, wait);
            }
        };
        let Some(ticket) = ticket else {
            continue;
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| step(&inner, ticket, &mut idle, &mut retired)));
        let failure = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => inner.failure_of(&e),
            Err(panic) => Failure::Other(format!("the apply thread panicked: {}", panic_message(&*panic))),
        };
        inner.poison_with(failure);
        return;
    }
}

fn step(inner: &Arc<Inner>, ticket: u64, idle: &mut IdleTrigger, retired: &mut Vec<Arc<Memtable>>) -> Result<()> {
    // A poisoned engine may hold a partly applied commit in its active
    // memtable (a comparator panicked mid-insert): nothing of it may reach
    // the tree, let alone a durable checkpoint that would make the WAL skip
    // its record. The apply thread stops (`run` exits on this error).
    inner.check_poison()?;
    let requested = ticket > inner.apply.control.lock().completed;
    // Counted before the freeze: a commit after it is not in this step's
    // memtables, and keeps the next timed checkpoint due.
    let commits = inner.counters.commits.load(Ordering::Relaxed);
    let timed = idle.is_due(commits, inner.options.checkpoint_interval);
    if timed && !requested {
        // Time-based checkpoints also cover what sits in the active memtable.
        inner.freeze_if_not_empty();
    }
    // Only the memtables frozen when this step began: under sustained
    // writes new ones keep arriving, and a loop until none is left would
    // starve every checkpoint (by volume, by time and on request) below.
    let frozen = inner.current_state().frozen.len();
    let mut flushed = 0;
    while flushed < frozen {
        let mems = flush_oldest(inner)?;
        if mems.is_empty() {
            break;
        }
        flushed += mems.len();
        retired.extend(mems);
    }
    let wal_bytes = inner.journal.metrics().bytes;
    let by_volume = wal_bytes - inner.counters.wal_bytes_at_checkpoint.load(Ordering::Relaxed)
        >= inner.options.checkpoint_wal_bytes;
    if requested || by_volume || timed {
        checkpoint(inner)?;
    }
    if timed {
        // Covered only if nothing is left to flush: a commit the freeze
        // missed (a run the inserter had not started) keeps it due.
        let state = inner.current_state();
        if state.active.is_empty() && state.frozen.is_empty() && state.pending.is_none() {
            idle.checkpointed(commits);
        }
    }
    if requested {
        inner.apply.control.lock().completed = ticket;
    }
    inner.apply.notify_progress();
    Ok(())
}

/// Flushes the oldest frozen memtable, with the frozen memtables after it
/// when it and they are plain (no table created, renamed or dropped in
/// them), and returns them (none: nothing was frozen).
///
/// Why together: at 10M keys a flush of one 64 MiB memtable rewrites more
/// than half of the tree's leaves, and a batch load freezes memtables
/// about as fast as one flush runs, so a backlog builds behind it
/// (`design/benchmarks.md`, twenty-ninth session). Flushed in one pass,
/// newest version first across them, a leaf is rewritten once for all of
/// them. The memtables flushed together are, to the protocol, one
/// memtable `M` whose last sequence is the newest one's
/// (`engine::flush_marker`): every one stays in the state until step 3
/// publishes the tree without all of them.
fn flush_oldest(inner: &Arc<Inner>) -> Result<Vec<Arc<Memtable>>> {
    let state = inner.current_state();
    // Oldest first (`frozen` lists the newest first).
    let mut frozen = state.frozen.iter().rev();
    let mut mems: Vec<Arc<Memtable>> = frozen.next().into_iter().cloned().collect();
    if mems.first().is_some_and(|oldest| is_plain(oldest)) {
        mems.extend(frozen.take_while(|mem| is_plain(mem)).cloned());
    }
    drop(state);
    let Some(newest) = mems.last().cloned() else {
        return Ok(Vec::new());
    };
    let oldest = mems[0].clone();
    let started = Instant::now();
    let max_seq = newest.max_seq();
    // Step 1: durable and published.
    inner.journal.wait_for_sync(max_seq)?;
    inner.refresh_publication();

    // Step 2: one batch per table, after the recovered records of tables
    // whose order is now known (engine::deferred: they are older than any
    // memtable entry of their table, so they go in first).
    // Room in the tree filter for these memtables' keys (64 bytes is below
    // any entry's charge, so this overestimates them).
    let bytes: usize = mems.iter().map(|mem| mem.bytes()).sum();
    inner.tree_filters.rebuild_if_full(inner, (bytes / 64) as u64)?;
    let filters = inner.tree_filters.targets();
    let mut writer = inner.tree_writer()?;
    let absorbed = absorb_deferred(inner, &mut writer, &filters)?;
    // Only the oldest may have bindings or drops (it is then alone).
    let bindings = oldest.bindings(u64::MAX);
    let dropped: HashSet<u64> = oldest.dropped(u64::MAX).into_iter().collect();
    apply_names(
        &mut writer,
        bindings.iter().map(|(_, name, def)| (&name[..], def.as_ref())),
        &dropped,
    )?;
    let mut parts = PartCommits::start(
        inner,
        &mut writer,
        max_seq,
        bindings.is_empty() && dropped.is_empty() && absorbed.is_empty(),
    )?;
    let mut entries = MergedEntries::new(mems.iter().map(|mem| mem.map())).peekable();
    while let Some(first) = entries.peek() {
        let table = first.key().table;
        let cmp = first.key().comparator();
        let keep = !dropped.contains(&table);
        parts.begin_table(&writer, table)?;
        // In slices, as a tree commit (`APPLY_SLICE`): a view of every
        // write of a big memtable at once was 32 bytes per write beside it.
        let mut ops: Vec<Op<'_>> = Vec::new();
        let mut last: Option<&[u8]> = None;
        loop {
            let entry = entries.next_if(|e| e.key().table == table);
            if let Some(entry) = entry {
                let key = &entry.key().key[..];
                // Newest version first within a key: keep the first of each key.
                if last.is_none_or(|last| cmp(last, key).is_ne()) {
                    last = Some(key);
                    if keep {
                        ops.push((key, entry.bytes()));
                    }
                }
            }
            if ops.len() == parts.slice_len() || (entry.is_none() && !ops.is_empty()) {
                // Asked again per slice: a reader that began meanwhile keeps
                // the leaves it reads cached (`Inner::readers_absent`).
                writer.forget_replaced_at_once(inner.readers_absent());
                apply_table(&mut writer, &filters, table, cmp, &ops)?;
                ops.clear();
                parts.commit_if_due(inner, &mut writer)?;
                // Give way to the commit path while no writer is held back
                // (`Inner::flush_may_yield`).
                if inner.flush_may_yield() {
                    inner.counters.flush_yields.fetch_add(1, Ordering::Relaxed);
                    std::thread::yield_now();
                }
            }
            if entry.is_none() {
                break;
            }
        }
    }
    drop(entries);
    inner.check_poison()?;
    // The tree now holds all of `M`: its counts are exact (flush_marker,
    // invariant 2; and 3 for a marker recovery found).
    FlushMarker::clear(&mut writer)?;
    // The commit below lets the writer go before step 3 publishes it.
    let unpublished = UnpublishedTree::new(inner);
    let tree_bytes = writer.used_bytes();
    writer.non_durable_commit()?;

    // Step 3: publish the state without the memtables (and without the
    // absorbed and dropped tables' deferred records). The snapshot is this
    // flush's commit: a compaction does not take the writer while
    // `unpublished` counts it (`Engine::compact`).
    let gone: Vec<u64> = absorbed.into_iter().chain(dropped.iter().copied()).collect();
    inner.update_state(|s| State {
        frozen: s
            .frozen
            .iter()
            .filter(|m| !mems.iter().any(|flushed| Arc::ptr_eq(m, flushed)))
            .cloned()
            .collect(),
        deferred: without(&s.deferred, &gone),
        tree: inner.trees.snapshot(),
        tree_seq: s.tree_seq.max(max_seq),
        tree_filter: inner.tree_filters.current(),
        count_ahead: None,
        ..s.clone()
    });
    // Noted before the tree stops counting as unpublished: a compaction
    // that takes the writer once nothing is unpublished commits the tree
    // at this sequence (`Inner::tree_held_seq`).
    inner.counters.flushed_seq.store(max_seq, Ordering::Release);
    drop(unpublished);
    inner.resize_memtables(tree_bytes);
    inner.counters.flushes.fetch_add(mems.len() as u64, Ordering::Relaxed);
    inner.counters.flush_passes.fetch_add(1, Ordering::Relaxed);
    inner
        .counters
        .flush_nanos
        .fetch_add(nanos_since(started), Ordering::Relaxed);
    inner.apply.notify_progress();
    Ok(mems)
}

/// Whether `mem` creates, renames or drops no table (a flush may take it
/// with others).
fn is_plain(mem: &Memtable) -> bool {
    mem.bindings(u64::MAX).is_empty() && mem.dropped(u64::MAX).is_empty()
}

/// The entries of several memtables in one order (`MemKey`'s: table, key,
/// newest version first), for a flush of them in one pass. A key's
/// versions in different memtables have different sequences, so the first
/// of a key is its newest across all of them.
struct MergedEntries<'a> {
    ranges: Vec<MemSweep<'a>>,
    heads: Vec<Option<MemEntry<'a>>>,
}

type MemSweep<'a> = super::skiplist::Sweep<'a, MemKey, MemValue, fn(MemEntry<'a>)>;
type MemEntry<'a> = super::skiplist::Entry<'a, MemKey, MemValue>;

impl<'a> MergedEntries<'a> {
    fn new(maps: impl Iterator<Item = &'a SkipList<MemKey, MemValue>>) -> Self {
        // Each memtable swept (its cache misses overlapped), its values'
        // bytes loaded as the sweep reaches their nodes.
        let load: fn(MemEntry<'a>) = |entry| entry.prefetch_bytes();
        let mut ranges: Vec<MemSweep<'a>> = maps.map(|map| map.sweep(load)).collect();
        let heads = ranges.iter_mut().map(Iterator::next).collect();
        Self { ranges, heads }
    }
}

impl<'a> Iterator for MergedEntries<'a> {
    type Item = MemEntry<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut least: Option<usize> = None;
        for (i, head) in self.heads.iter().enumerate() {
            let Some(head) = head else { continue };
            if least.is_none_or(|at| self.heads[at].as_ref().is_some_and(|best| head.key() < best.key())) {
                least = Some(i);
            }
        }
        let at = least?;
        let next = self.ranges[at].next();
        std::mem::replace(&mut self.heads[at], next)
    }
}

/// A flush's durable commits part way through its memtable
/// (`engine::flush_marker`).
struct PartCommits {
    enabled: bool,
    /// The last sequence of the memtable being flushed.
    through: u64,
    /// Each table's tree count when the flush reached it.
    start_len: HashMap<u64, u64>,
    /// Pages the writer may write before the next part commit.
    pages_per_part: usize,
}

impl PartCommits {
    /// Enabled for a flush of plain writes (`plain`: no table created,
    /// dropped or absorbed, whose counts the marker does not describe)
    /// whose tree holds no marker. Makes the tree durable at the last
    /// flushed sequence first if it is not (flush_marker, invariant 1).
    fn start(inner: &Inner, writer: &mut TreeWriter<'_>, through: u64, plain: bool) -> Result<Self> {
        let enabled = plain && writer.tree(FLUSH_MARKER_TREE)?.is_none();
        if enabled {
            let flushed = inner.counters.flushed_seq.load(Ordering::Acquire);
            if writer.durable_checkpoint_seq() < flushed {
                writer.commit_and_continue(flushed)?;
            }
        }
        let page_size = inner.trees.page_size().max(1);
        Ok(Self {
            enabled,
            through,
            start_len: HashMap::new(),
            pages_per_part: (inner.options.flush_commit_bytes / page_size as u64).max(1) as usize,
        })
    }

    /// Writes per apply: a slice of `n` sorted writes rewrites at most `n`
    /// leaves, so a part commit can come no later than a quarter of a part
    /// past its due point.
    fn slice_len(&self) -> usize {
        if self.enabled {
            (self.pages_per_part / 4).clamp(64, APPLY_SLICE)
        } else {
            APPLY_SLICE
        }
    }

    fn begin_table(&mut self, writer: &TreeWriter<'_>, table: u64) -> Result<()> {
        if self.enabled {
            let len = writer.tree(&data_tree_name(table))?.map_or(0, |info| info.len);
            self.start_len.insert(table, len);
        }
        Ok(())
    }

    /// Once the writer has written `pages_per_part` pages: the marker, a
    /// durable commit at the unchanged checkpoint, and a state with the new
    /// tree, so that the pages this part replaced are reused by the next.
    fn commit_if_due(&mut self, inner: &Inner, writer: &mut TreeWriter<'_>) -> Result<()> {
        if !self.enabled || writer.written_pages() < self.pages_per_part {
            return Ok(());
        }
        let mut ahead = HashMap::new();
        for (&table, &start) in &self.start_len {
            let now = writer.tree(&data_tree_name(table))?.map_or(0, |info| info.len);
            ahead.insert(table, now as i64 - start as i64);
        }
        let marker = FlushMarker {
            through: self.through,
            ahead,
        };
        marker.write(writer)?;
        inner.check_poison()?;
        writer.commit_and_continue(writer.durable_checkpoint_seq())?;
        // The memtable stays in the state: it still answers for every key
        // it holds, and its counts are taken back out of the tree's.
        let ahead = Arc::new(marker.ahead);
        inner.update_state(|s| State {
            tree: inner.trees.snapshot(),
            tree_seq: s.tree_seq.max(self.through),
            tree_filter: inner.tree_filters.current(),
            count_ahead: Some(ahead.clone()),
            ..s.clone()
        });
        // The previous state, and its pin on the pages this part replaced,
        // is gone unless a reader holds it: those pages serve the next part.
        writer.reclaim();
        inner.counters.part_commits.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Applies the deferred records of every table whose key order this process
/// now knows to its tree and deletes its staging tree, in the writer's
/// commit; returns those tables.
pub(crate) fn absorb_deferred(inner: &Inner, writer: &mut TreeWriter<'_>, filters: &FilterTargets) -> Result<Vec<u64>> {
    let deferred = inner.current_state().deferred.clone();
    let mut absorbed = Vec::new();
    for (&id, table) in deferred.iter() {
        let Some(cmp) = inner.comparator(id) else { continue };
        let overlay = table.overlay(cmp);
        let ops: Vec<(&[u8], Option<&[u8]>)> = overlay
            .iter()
            .map(|(k, v)| (&k[..], v.as_ref().map(|v| v.as_bytes())))
            .collect();
        apply_table(writer, filters, id, cmp, &ops)?;
        writer.delete_tree(&staging_tree_name(id))?;
        absorbed.push(id);
    }
    Ok(absorbed)
}

/// Writes a flush or a tree commit applies to a table in one pass.
/// Consecutive slices of sorted writes touch consecutive leaves, so slicing
/// costs only the rewrite of the path to the leaf where one slice ends and
/// the next begins.
pub(crate) const APPLY_SLICE: usize = 16 * 1024;

/// Writes one table's net changes (sorted by `cmp`) into its tree, and the
/// keys they put into the tree filters, before the commit that holds them
/// is published (a filter that missed a key would hide it from readers).
pub(crate) fn apply_table(
    writer: &mut TreeWriter<'_>,
    filters: &FilterTargets,
    table: u64,
    cmp: Comparator,
    ops: &[(&[u8], Option<&[u8]>)],
) -> Result<()> {
    filters.add_all(table, ops.iter().filter(|(_, value)| value.is_some()).map(|&(key, _)| key));
    writer.apply(&data_tree_name(table), cmp, ops)
}

/// Writes the table map's changes (each name bound to a table, `Some`, or
/// unbound, `None`), then deletes the trees of the `dropped` tables.
pub(crate) fn apply_names<'a>(
    writer: &mut TreeWriter<'_>,
    bindings: impl IntoIterator<Item = (&'a [u8], Option<&'a TableDef>)>,
    dropped: &HashSet<u64>,
) -> Result<()> {
    for (name, def) in bindings {
        match def {
            Some(def) => {
                writer.insert(TABLES_TREE, bytewise, name, &encode_def(def))?;
            }
            None => {
                writer.remove(TABLES_TREE, bytewise, name)?;
            }
        }
    }
    for &id in dropped {
        writer.delete_tree(&data_tree_name(id))?;
        writer.delete_tree(&staging_tree_name(id))?;
    }
    Ok(())
}

/// `deferred` without the tables in `gone`.
pub(crate) fn without(deferred: &DeferredTables, gone: &[u64]) -> DeferredTables {
    if !gone.iter().any(|id| deferred.contains_key(id)) {
        return deferred.clone();
    }
    let mut rest = (**deferred).clone();
    for id in gone {
        rest.remove(id);
    }
    Arc::new(rest)
}

fn checkpoint(inner: &Inner) -> Result<()> {
    let started = Instant::now();
    let seq = inner.counters.flushed_seq.load(Ordering::Acquire);
    inner.check_poison()?;
    if seq > inner.trees.durable_checkpoint_seq() {
        let mut writer = inner.trees.writer()?;
        // The segment that holds (or will hold) the record after the
        // checkpoint, named in the checkpoint's commit (`engine::log_tail`);
        // none for a volatile WAL, which keeps nothing through a crash.
        let named = *inner.log_tail.lock();
        let now = if inner.options.volatile_wal {
            LogTail::default()
        } else {
            named.after_checkpoint(Segment::holding(&inner.journal, seq.saturating_add(1))?)
        };
        if now != named {
            now.write(&mut writer)?;
        }
        writer.commit(seq)?;
        *inner.log_tail.lock() = now;
    }
    let keep = inner.log_tail.lock().keep_from();
    inner.journal.truncate_keeping(seq, keep)?;
    inner.counters.checkpoints.fetch_add(1, Ordering::Relaxed);
    inner
        .counters
        .checkpoint_nanos
        .fetch_add(nanos_since(started), Ordering::Relaxed);
    inner
        .counters
        .wal_bytes_at_checkpoint
        .store(inner.journal.metrics().bytes, Ordering::Relaxed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;
    const BUDGET: usize = 256 * MIB;
    const BUSY: Duration = Duration::ZERO;

    #[test]
    fn a_frozen_memtable_waits_for_a_second_while_commits_come() {
        assert_eq!(flush_due_of(0, 0, BUDGET, BUSY), FlushDue::Nothing);
        assert_eq!(flush_due_of(0, 0, BUDGET, FLUSH_QUIET), FlushDue::Nothing, "nothing to flush");
        assert_eq!(flush_due_of(1, 64 * MIB, BUDGET, BUSY), FlushDue::WhenQuiet);
        assert_eq!(flush_due_of(1, 64 * MIB, BUDGET, FLUSH_QUIET / 2), FlushDue::WhenQuiet);
        assert_eq!(flush_due_of(2, 128 * MIB, BUDGET, BUSY), FlushDue::Now, "two go in one pass");
        assert_eq!(flush_due_of(3, 192 * MIB, BUDGET, BUSY), FlushDue::Now);
    }

    #[test]
    fn a_lone_frozen_memtable_goes_once_commits_pause_or_it_fills_half_the_budget() {
        assert_eq!(flush_due_of(1, 64 * MIB, BUDGET, FLUSH_QUIET), FlushDue::Now);
        // One big transaction's memtable, or a small budget: at once.
        assert_eq!(flush_due_of(1, 128 * MIB, BUDGET, BUSY), FlushDue::Now);
        assert_eq!(flush_due_of(1, 64 * MIB, 64 * MIB, BUSY), FlushDue::Now);
    }
}
