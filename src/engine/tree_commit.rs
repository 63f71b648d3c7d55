//! Commits too big for the WAL path go straight into the tree.
//!
//! A transaction whose WAL payload would reach
//! `EngineOptions::tree_commit_bytes` (a bulk load) is neither logged nor
//! inserted into the memtable. Nor is a durable commit of a database whose
//! WAL is volatile (`WriteTxn::commit_through_tree`): there the data file
//! is the only durable copy, and readers must not see a commit before it is
//! durable, as step 4 ensures. Through the WAL it would sit in memory three
//! times at once (its write set, its record, the memtable) and leave a
//! memtable far above the flush size for the apply thread to merge while the
//! writers after it wait; through the tree it costs one sorted pass over the
//! tree and one checkpoint.
//!
//! Protocol, for commit `N` (the writer slot is held, so `N` is the journal's
//! next sequence and no other commit can start):
//! 1. Checkpoint: every commit below `N` is flushed into the tree, which is
//!    made durable (`Engine::checkpoint`).
//! 2. One tree commit writes `N`: the records of deferred tables whose order
//!    is now known first (as a flush does: they are older), then `N`'s table
//!    map changes, then its data, each table's sorted writes read where the
//!    write set keeps them and applied in slices of `APPLY_SLICE`; made durable
//!    with `checkpoint_seq = N` (pages, fsync, slot, fsync).
//! 3. An empty WAL record takes sequence `N` in the log and is synced, so
//!    the log's sequences stay contiguous.
//! 4. `N` is recorded as committed, published, and the state holding the
//!    new tree swapped in, in one step under the publication lock
//!    (`Inner::commit_and_publish_with`). Recorded in step 3, as it was
//!    until the twenty-second session's review, `N` was published with the
//!    old tree by whoever refreshed publication once step 3's record was
//!    durable (a `sync`, a `PendingCommit::wait`, a reader): a reader at
//!    `N` read `N - 1` (`tests/defect_tree_commit_published_early.rs`).
//!
//! Crash: until step 2's commit slot is durable nothing of `N` survives, and
//! nothing of it was acknowledged. After it, recovery starts from checkpoint
//! `N`, skips every WAL record (all at or below `N`) and the journal goes on
//! at `N + 1` in a fresh segment (`Journal::open`), whether or not step 3's
//! record reached the disk.
//!
//! Invariants:
//! - The tree never shows a reader a commit above the reader's sequence:
//!   readers hold the tree snapshot of their state, and the new one is
//!   published together with `N` (step 4).
//! - A tree commit is durable when it returns, whatever durability the
//!   transaction asked for.
//! - It never runs with anything of an earlier commit outside the tree
//!   (checked after step 1: an `Internal` error, the database untouched).

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Durability;
use super::apply::{APPLY_SLICE, absorb_deferred, apply_names, apply_table, without};
use super::batch::Batch;
use super::writeset::Commit;
use super::core::{Inner, UnpublishedTree, panic_message};
use super::state::State;
use crate::btree::{Comparator, Op};
use crate::error::{Result, StorageError};
use crate::wal::SyncBy;

/// Commits `commit` as sequence `seq` through the tree (see the module
/// docs); `new_orders` gives the key orders of the tables the commit
/// creates, registered before it is published. A `bulk` commit (one too
/// big for the WAL) bypasses the page cache and settles its freed memory;
/// a small one (`WriteTxn::commit_through_tree`) keeps the pages it writes
/// cached for the reads after it.
/// REQUIRES: the writer slot, `seq` the journal's next sequence, and not
/// the commit lock (step 1 waits for the apply thread, which takes it).
pub(crate) fn commit(
    inner: &Arc<Inner>,
    seq: u64,
    commit: Commit,
    new_orders: &[(u64, Comparator)],
    bulk: bool,
) -> Result<()> {
    // Step 1.
    super::txn::checkpoint(inner)?;
    {
        let state = inner.current_state();
        let flushed = inner.counters.flushed_seq.load(Ordering::Acquire);
        if !state.frozen.is_empty()
            || !state.active.is_empty()
            || state.pending.is_some()
            || inner.journal.last_seq() + 1 != seq
            || flushed + 1 != seq
        {
            return Err(StorageError::Internal(format!(
                "commit {seq} through the tree found earlier commits outside the tree (flushed through {flushed})"
            )));
        }
    }

    // Step 2.
    let puts = commit.puts();
    let Commit {
        bindings,
        dropped,
        tables,
        ..
    } = commit;
    let dropped: HashSet<u64> = dropped.into_iter().collect();
    // From step 2's commit to step 4's publication the store holds `seq`
    // and no state shows it: compaction waits (`Engine::compact`).
    let unpublished = UnpublishedTree::new(inner);
    let written = catch_unwind(AssertUnwindSafe(|| -> Result<Vec<u64>> {
        inner.tree_filters.rebuild_if_full(inner, puts)?;
        let filters = inner.tree_filters.targets();
        let mut writer = inner.tree_writer()?;
        // A bulk load bigger than the cache would evict every page readers
        // use and hold the whole load in memory beside its write set.
        if bulk {
            writer.bypass_cache();
        }
        let absorbed = absorb_deferred(inner, &mut writer, &filters)?;
        apply_names(
            &mut writer,
            bindings.iter().map(|(name, def)| (&name[..], def.as_ref())),
            &dropped,
        )?;
        // Each table's writes straight from the write set, in slices: the
        // tree pass holds a borrowed view of each write (and of each entry
        // of a new tree), which for a whole bulk load was 90 bytes per key
        // beside the load itself; and a table's writes are freed once in.
        for (table, cmp, writes) in tables {
            let mut items = writes.iter();
            loop {
                let part: Vec<Op<'_>> = items.by_ref().take(APPLY_SLICE).collect();
                if part.is_empty() {
                    break;
                }
                apply_table(&mut writer, &filters, table, cmp, &part)?;
            }
        }
        if bulk {
            settle_freed();
        }
        inner.check_poison()?;
        writer.commit(seq)?;
        Ok(absorbed)
    }))
    .unwrap_or_else(|panic| {
        Err(StorageError::corrupted(format!(
            "a key comparator panicked while commit {seq} was written to the tree: {}",
            panic_message(&*panic)
        )))
    });
    // Nothing is published yet, but the tree writer's failure may have left
    // the file half-written: the engine stops, as after a failed flush.
    let absorbed = inner.poison_on(written)?;

    // Step 3.
    let commits = inner.lock_commits();
    // Waited for below, so the sync thread need not be woken for it.
    let appended = inner.journal.append_with(&Batch::default().encode(), SyncBy::Caller);
    inner.check_assigned(inner.poison_on(appended)?, seq)?;
    for &(id, cmp) in new_orders {
        inner.register(id, cmp);
    }
    inner.counters.flushed_seq.store(seq, Ordering::Release);
    inner.counters.tree_commits.fetch_add(1, Ordering::Relaxed);
    drop(commits);
    inner.poison_on(inner.journal.wait_for_sync(seq))?;

    // Step 4: `seq` is recorded as committed only here, with its tree.
    let gone: Vec<u64> = absorbed.into_iter().chain(dropped).collect();
    inner.commit_and_publish_with(seq, Durability::Immediate, |s| State {
        deferred: without(&s.deferred, &gone),
        tree: inner.trees.snapshot(),
        tree_seq: s.tree_seq.max(seq),
        tree_filter: inner.tree_filters.current(),
        ..s.clone()
    });
    drop(unpublished);
    Ok(())
}

/// Has the allocator settle a tree commit's freed keys and values before
/// its durable commit. glibc keeps freed small chunks aside (fastbins, the
/// unsorted bin) until an allocation it cannot serve from them sorts and
/// coalesces them all. After a 1M-key commit that took 0.3-0.45 s, and it
/// landed on the next writer's first allocation: the 1,000 single-key
/// commits after a 1M-key load ran at 2K/s instead of 5-6K/s. Settling here
/// takes the cost inside the big commit, whose caller expects it to be slow,
/// instead of the small commit after it (the engine's promise: a big
/// transaction does not stall the writers that follow).
fn settle_freed() {
    /// Above glibc's small-request sizes (1 KiB), so it coalesces first.
    const SETTLE_BYTES: usize = 4096;
    std::hint::black_box(Vec::<u8>::with_capacity(SETTLE_BYTES));
    // The load was allocated on the writer's thread; the memtables after it
    // grow on others, which could not reuse its memory (`crate::heap`).
    crate::heap::release_free_memory();
}
