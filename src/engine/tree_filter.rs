//! A key filter over the tree: lets a point lookup of a key the tree does
//! not hold skip the descent.
//!
//! `insert` and `remove` return the old value, so every write looks its key
//! up, and a write of a new key (a load, a stream of fresh ids) descends the
//! tree to learn that it is absent. The memtables have their own filters;
//! this one answers for the tree, as an SST's Bloom filter answers for it in
//! an LSM. Only `insert`'s old-value lookup asks it (`State::get_for_insert`):
//! reads usually look up present keys, for which it saves nothing; and
//! `insert` asks only while the filter proves enough of its keys absent
//! ([`FilterGate`]: overwrites gain nothing from it either). It is one blocked Bloom filter ([`KeyFilter`]) of
//! [`key_hash`](super::filter::key_hash)`(table, key)` over every data tree,
//! consulted only for tables whose keys are equal exactly when their bytes
//! are.
//!
//! # Invariant
//! A filter *covers* tree commit `T` if every key of every data tree in `T`
//! was added to it. A lookup trusts a "no" only for a commit the filter
//! covers; otherwise it descends as if there were no filter. Each filter
//! keeps the range of commits it covers, `valid_from ..= valid_through`:
//!
//! * A filter is installed (as `next`) by the apply thread, the only thread
//!   that adds keys to the data trees, between two flushes, with a tree
//!   snapshot `S` taken at that moment, so every flush that commits after
//!   `S` adds its keys to it (below). The builder thread then reads every
//!   key of `S`'s data trees into it: in chunks of a few thousand keys,
//!   each from a fresh snapshot `S_i` and resuming after the last key read
//!   (`scan_trees`), so no snapshot pins the pages the flushes retire
//!   meanwhile. Once the scan ends it covers every commit from the newest
//!   snapshot it read on, `valid_from = max(S, S_i)`: a key of such a
//!   commit was in its chunk's range at `S_i` (read) or was put there by a
//!   flush after `S` (added by the flush).
//! * Every flush adds the keys it puts to the current filter and to the one
//!   being built, before its tree commit is published. Keys are never
//!   removed (a removed key stays a false positive until the next rebuild).
//! * The builder promotes the filter when its scan ends, and publishes a
//!   state with it: the old one stops getting keys, so it covers no commit
//!   after the newest at that moment (`valid_through`; a flush committing
//!   later took the new filter as a target too). Compaction commits add no
//!   keys, so whichever filter is current covers them.
//!
//! A state pairs a tree snapshot with the filter current when the state was
//! made; the check above makes any pairing safe, whichever is newer.
//!
//! # Size
//! A filter is sized for 1.5 times the entries of the snapshot it is built
//! from and of the memtable about to be flushed (at least [`MIN_CAPACITY`]
//! keys), at [`BITS_PER_KEY`] bits each. When a flush would take the keys
//! added past that, the apply thread first starts a rebuild from the tree
//! as it then is (which also forgets removed keys): the scans cost at most
//! two key reads per key added, amortized. Only keys that set a bit count
//! as added: rewrites of keys the tree holds leave the filter unchanged
//! (adding a key whose bits are all set is a no-op, so the invariant above
//! holds without it), and do not bring a rebuild nearer.

use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::thread::JoinHandle;

use parking_lot::Mutex;

use super::core::Inner;
use super::filter::{KeyFilter, key_hash};
use super::state::{State, data_tree_id};
use crate::btree::{Snapshot, TreeEntry, TreeInfo, bytewise};
use crate::error::{Result, StorageError};

/// Filter bits per key of capacity.
const BITS_PER_KEY: u64 = 8;

/// The smallest capacity a filter is built for, in keys (64 KiB of bits).
const MIN_CAPACITY: u64 = 1 << 16;

/// A filter of the keys of a range of tree commits (see the module docs).
pub(crate) struct TreeFilter {
    bits: KeyFilter,
    /// Keys it is sized for; a rebuild starts once `added` exceeds it.
    capacity: u64,
    /// Keys added that set a bit (repeats and keys it already answered
    /// for do not count).
    added: AtomicU64,
    /// The first tree commit it covers; `u64::MAX` until its build ends.
    valid_from: AtomicU64,
    /// The last tree commit it covers; `u64::MAX` while it gets keys.
    valid_through: AtomicU64,
}

impl TreeFilter {
    fn new(capacity: u64) -> Self {
        let bytes = capacity.saturating_mul(BITS_PER_KEY) / 8;
        Self {
            bits: KeyFilter::with_bytes(usize::try_from(bytes).unwrap_or(usize::MAX)),
            capacity,
            added: AtomicU64::new(0),
            valid_from: AtomicU64::new(u64::MAX),
            valid_through: AtomicU64::new(u64::MAX),
        }
    }

    /// Adds a key; only a key that changed the bits counts against the
    /// capacity. A key the filter already answers for (a flush of rewrites
    /// of keys the tree holds) leaves the filter as it was, so it brings a
    /// rebuild no closer: counting those, every flush of overwrites drew
    /// the next full rebuild nearer (a scan of every key in the tree on a
    /// thread of its own, 13% of a profile of 1000-key overwrite batches at
    /// 1M keys).
    fn add(&self, hash: u64) {
        if self.bits.insert(hash) {
            self.added.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Starts loading the block [`may_contain`](Self::may_contain) reads
    /// for `hash`.
    pub(crate) fn prefetch(&self, hash: u64) {
        self.bits.prefetch(hash);
    }

    /// `false` only if tree commit `tree_txn` holds no key whose
    /// [`key_hash`] is `hash`.
    pub(crate) fn may_contain(&self, tree_txn: u64, hash: u64) -> bool {
        let covers = self.valid_from.load(Ordering::Acquire) <= tree_txn
            && tree_txn <= self.valid_through.load(Ordering::Acquire);
        !covers || self.bits.may_contain(hash)
    }
}

#[derive(Default)]
struct Slots {
    /// The filter lookups use (none until the first build ends).
    current: Option<Arc<TreeFilter>>,
    /// The filter being built, if any.
    next: Option<Arc<TreeFilter>>,
}

/// The engine's tree filters and their builder thread.
#[derive(Default)]
pub(crate) struct TreeFilters {
    slots: Mutex<Slots>,
    builder: Mutex<Option<JoinHandle<()>>>,
    /// Tells a running builder to stop (the engine is shutting down).
    stop: Arc<AtomicBool>,
    /// Whether `insert`'s lookups ask the filter now.
    pub(crate) gate: FilterGate,
    /// Filters built and made current so far (`Stats::tree_filter_builds`).
    builds: AtomicU64,
}

/// Whether `insert`'s old-value lookups ask the tree filter, from what it
/// answered lately. A write of a new key saves a descent when the filter
/// proves it absent; a write of a present key (an overwrite) gains nothing
/// and pays the filter's cache miss: skipping the filter for 1000-key
/// overwrite batches at 1M keys cut their build 1.13-1.30 -> 1.01-1.08 ms
/// a commit (a probe, thirty-seventh session). So the filter earns credit:
/// [`ABSENT_CREDIT`] for each key it proves absent, minus one for each it
/// cannot, up to [`MAX_CREDIT`]; without credit, only every
/// [`SAMPLE_EVERY`]th lookup asks, so that new keys are noticed again. It
/// stays asked while more than about one key in seventeen is new.
///
/// Only a cost is at stake: a lookup that does not ask descends the tree,
/// as one without a filter does. Updated with plain loads and stores: a
/// lost update between two racing writers only moves the credit by one
/// step.
pub(crate) struct FilterGate {
    credit: AtomicU32,
    /// Lookups while the gate had no credit.
    closed_lookups: AtomicU32,
    /// Keys the filter proved absent, for `Stats::tree_filter_absent`
    /// (plain load and store, as the credit: only the writer asks).
    absent: AtomicU64,
}

const ABSENT_CREDIT: u32 = 16;
const MAX_CREDIT: u32 = 256;
const SAMPLE_EVERY: u32 = 16;

impl Default for FilterGate {
    /// Open: the first lookups ask.
    fn default() -> Self {
        Self {
            credit: AtomicU32::new(ABSENT_CREDIT),
            closed_lookups: AtomicU32::new(0),
            absent: AtomicU64::new(0),
        }
    }
}

impl FilterGate {
    /// Keys the filter has proved absent so far.
    pub(crate) fn absent(&self) -> u64 {
        self.absent.load(Ordering::Relaxed)
    }

    /// Whether this lookup asks the filter.
    pub(crate) fn ask(&self) -> bool {
        if self.credit.load(Ordering::Relaxed) > 0 {
            return true;
        }
        let lookups = self.closed_lookups.load(Ordering::Relaxed).wrapping_add(1);
        self.closed_lookups.store(lookups, Ordering::Relaxed);
        lookups.is_multiple_of(SAMPLE_EVERY)
    }

    /// Notes the filter's answer to a lookup that asked it.
    pub(crate) fn answered(&self, absent: bool) {
        if absent {
            self.absent
                .store(self.absent.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
        let credit = self.credit.load(Ordering::Relaxed);
        let credit = if absent {
            (credit + ABSENT_CREDIT).min(MAX_CREDIT)
        } else {
            credit.saturating_sub(1)
        };
        self.credit.store(credit, Ordering::Relaxed);
    }
}

/// Keys whose filter blocks [`FilterTargets::add_all`] prefetches before it
/// adds the first of them: enough misses in flight to fill the core's line
/// fill buffers, few enough that the first block is still cached when read.
const ADD_AHEAD: usize = 16;

/// What a flush adds its keys to: the current filter and the one being built.
pub(crate) struct FilterTargets(Vec<Arc<TreeFilter>>);

impl FilterTargets {
    /// Adds keys put into `table`'s tree. Hashes [`ADD_AHEAD`] keys and
    /// prefetches their blocks before adding them: a flush's keys land on
    /// random lines of a filter of megabytes, and one at a time their cache
    /// misses added up (`KeyFilter::insert` was 3.7-6.5% of all samples in
    /// two profiles of 1000-key overwrite batches at 1M keys, nearly all of
    /// it one load; 2.3% with this window).
    pub(crate) fn add_all<'k>(&self, table: u64, keys: impl IntoIterator<Item = &'k [u8]>) {
        if self.0.is_empty() {
            return;
        }
        let mut keys = keys.into_iter();
        let mut hashes = [0; ADD_AHEAD];
        loop {
            let mut ahead = 0;
            for key in keys.by_ref().take(ADD_AHEAD) {
                let hash = key_hash(table, key);
                for filter in &self.0 {
                    filter.prefetch(hash);
                }
                hashes[ahead] = hash;
                ahead += 1;
            }
            if ahead == 0 {
                return;
            }
            for &hash in &hashes[..ahead] {
                for filter in &self.0 {
                    filter.add(hash);
                }
            }
        }
    }
}

impl TreeFilters {
    /// The filter for lookups in states made from now on.
    pub(crate) fn current(&self) -> Option<Arc<TreeFilter>> {
        self.slots.lock().current.clone()
    }

    /// For the apply thread, before a flush writes the tree: the filters
    /// the flush adds its keys to.
    pub(crate) fn targets(&self) -> FilterTargets {
        let slots = self.slots.lock();
        FilterTargets(slots.current.iter().chain(slots.next.iter()).cloned().collect())
    }

    /// For the apply thread, between flushes (or before it starts), with
    /// `incoming` keys about to be flushed: starts a build from the newest
    /// tree commit, sized for its entries and the incoming ones, unless one
    /// is running or the current filter has room for them. The builder
    /// promotes the filter when its scan ends.
    pub(crate) fn rebuild_if_full(&self, inner: &Arc<Inner>, incoming: u64) -> Result<()> {
        let mut slots = self.slots.lock();
        let full = slots
            .current
            .as_ref()
            .is_none_or(|f| f.added.load(Ordering::Relaxed) + incoming > f.capacity);
        if slots.next.is_some() || !full || self.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let snapshot = inner.trees.snapshot();
        let trees: Vec<_> = snapshot
            .list_trees()?
            .into_iter()
            .filter_map(|(name, info)| Some((data_tree_id(&name)?, name, info)))
            .map(|(table, name, info)| (name, table, info))
            .collect();
        // The catalog's counts size an allocation: a crafted or damaged
        // count (2^40) aborted the open on a failed allocation. A table of
        // N distinct keys takes more than N bytes of the file once N
        // passes 256 (keys of one byte), and a smaller one a page, so the
        // file's length bounds any honest sum: a larger one is corruption.
        let entries = trees
            .iter()
            .fold(0u64, |sum, (_, _, info)| sum.saturating_add(info.len()));
        let file_bytes = inner.trees.file_len()?;
        if entries > file_bytes {
            return Err(StorageError::corrupted(format!(
                "the catalog counts {entries} entries in the tables, more than a file of {file_bytes} bytes can hold"
            )));
        }
        let capacity = ((entries + incoming).saturating_mul(3) / 2).max(MIN_CAPACITY);
        let filter = Arc::new(TreeFilter::new(capacity));
        slots.next = Some(filter.clone());
        drop(slots);

        let inner = inner.clone();
        let build = move || {
            if let Some(valid_from) = scan_trees(&inner, &filter, snapshot, trees) {
                filter.valid_from.store(valid_from, Ordering::Release);
                let filters = &inner.tree_filters;
                filters.promote(inner.trees.snapshot().txn());
                inner.update_state(|s| State {
                    tree_filter: filters.current(),
                    ..s.clone()
                });
            }
        };
        let mut builder = self.builder.lock();
        if let Some(done) = builder.take() {
            let _ = done.join();
        }
        // Without a thread the filter is never promoted: lookups descend.
        *builder = std::thread::Builder::new()
            .name("sluicedb-filter".into())
            .spawn(build)
            .ok();
        Ok(())
    }

    /// Makes the built filter current. The old one stops getting keys: it
    /// covers no commit after `latest_txn`, the newest tree commit (a flush
    /// committing later took both filters as targets, or only the new one).
    fn promote(&self, latest_txn: u64) {
        let mut slots = self.slots.lock();
        if let Some(old) = &slots.current {
            old.valid_through.store(latest_txn, Ordering::Release);
        }
        slots.current = slots.next.take();
        self.builds.fetch_add(1, Ordering::Relaxed);
    }

    /// Filters built and made current so far.
    pub(crate) fn builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    /// Stops and joins a running build (the engine is closing).
    pub(crate) fn shutdown(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.builder.lock().take() {
            let _ = thread.join();
        }
    }
}

/// Keys a rebuild reads from one tree snapshot before it takes a fresh one.
const SCAN_CHUNK: usize = 4096;

/// A rebuild's scan: adds to `filter` every key of `trees` (the data trees
/// of `first`, the snapshot taken as `filter` was installed). Returns the
/// first tree commit the filter then covers, or `None` if the scan stopped
/// (a read error, which the tree's own readers will meet and report, or
/// the engine closing): the filter is then never used.
///
/// A table whose comparator is known is read in chunks of [`SCAN_CHUNK`]
/// keys, each from a fresh snapshot, resuming after the last key read: one
/// snapshot held for the whole scan (tens of seconds at 10M keys) would keep
/// every page the flushes retire meanwhile from reuse, and the file grows
/// by that much. The filter then covers every commit from the newest
/// snapshot read on: a key in such a commit was in its chunk's range when
/// that chunk was read (and added), or a flush put it there later, and
/// every flush since `first` adds its keys to this filter. A table whose
/// comparator this process has not learned (not opened since the database
/// was) is read whole from `first`, the one order-free walk.
fn scan_trees(inner: &Inner, filter: &TreeFilter, first: Snapshot, trees: Vec<(Vec<u8>, u64, TreeInfo)>) -> Option<u64> {
    let stop = &inner.tree_filters.stop;
    // Adds up to `limit` keys; `Some(last key)` if it stopped at the limit,
    // `Some(None)` at the end, `None` if the scan must stop.
    let add = |entries: &mut dyn Iterator<Item = Result<TreeEntry>>, table: u64, limit: usize| -> Option<Option<Vec<u8>>> {
        let mut read = 0;
        for entry in entries.take(limit) {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            let entry = entry.ok()?;
            filter.add(key_hash(table, entry.key()));
            read += 1;
            if read == limit {
                return Some(Some(entry.key().to_vec()));
            }
        }
        Some(None)
    };
    let mut ordered = Vec::new();
    for (name, table, info) in trees {
        match inner.comparator(table) {
            Some(cmp) => ordered.push((name, table, cmp)),
            None => {
                // Unbounded: the walk compares no keys, whatever the order.
                let mut entries = first.range(&info, bytewise, Bound::Unbounded, Bound::Unbounded).ok()?;
                add(&mut entries, table, usize::MAX)?;
            }
        }
    }
    let mut valid_from = first.txn();
    drop(first);
    for (name, table, cmp) in ordered {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let snapshot = inner.trees.snapshot();
            valid_from = valid_from.max(snapshot.txn());
            // Dropped since `first`: its keys are in no later commit.
            let Some(info) = snapshot.tree(&name).ok()? else { break };
            let lower = after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
            let mut entries = snapshot.range(&info, cmp, lower, Bound::Unbounded).ok()?;
            after = add(&mut entries, table, SCAN_CHUNK)?;
            if after.is_none() {
                break;
            }
        }
    }
    Some(valid_from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Present keys close the gate, which then asks one lookup in
    /// `SAMPLE_EVERY`; new keys found by those samples open it again, and
    /// a mix with enough new keys keeps it open.
    #[test]
    fn the_filter_gate_follows_what_the_filter_answers() {
        let gate = FilterGate::default();
        let mut asked = 0;
        for _ in 0..1_000 {
            if gate.ask() {
                asked += 1;
                gate.answered(false);
            }
        }
        assert!(asked < 16 + 1_000 / SAMPLE_EVERY as usize + 1, "{asked} of 1000 present keys asked");
        assert_eq!(gate.credit.load(Ordering::Relaxed), 0);
        // New keys again: the first sample that proves one absent opens it.
        let until_open = (0..SAMPLE_EVERY * 2).take_while(|_| !gate.ask()).count();
        assert!(until_open < SAMPLE_EVERY as usize);
        gate.answered(true);
        assert!((0..10).all(|_| gate.ask()), "open after a key proved absent");
        // One key in eight new: every lookup asks.
        for i in 0..1_000 {
            assert!(gate.ask(), "closed at lookup {i} of a mix with one new key in eight");
            gate.answered(i % 8 == 0);
        }
        // Every key proved absent is counted (`Stats::tree_filter_absent`).
        assert_eq!(gate.absent(), 1 + 1_000 / 8);
    }

    #[test]
    fn only_keys_that_set_bits_count_against_the_capacity() {
        let filter = TreeFilter::new(MIN_CAPACITY);
        for _ in 0..3 {
            filter.add(key_hash(7, b"rewritten"));
        }
        filter.add(key_hash(7, b"fresh"));
        assert_eq!(filter.added.load(Ordering::Relaxed), 2);
        assert!(filter.bits.may_contain(key_hash(7, b"rewritten")));
    }

    #[test]
    fn a_filter_trusts_its_no_only_for_the_commits_it_covers() {
        let filter = TreeFilter::new(MIN_CAPACITY);
        let hash = key_hash(7, b"present");
        let absent = key_hash(7, b"absent");
        filter.add(hash);
        // Not built yet: every answer is "maybe".
        assert!(filter.may_contain(5, absent));
        filter.valid_from.store(5, Ordering::Release);
        assert!(filter.may_contain(4, absent), "commit 4 predates the build");
        assert!(filter.may_contain(5, hash));
        assert!(!filter.may_contain(5, absent));
        assert!(!filter.may_contain(900, absent));
        filter.valid_through.store(10, Ordering::Release);
        assert!(!filter.may_contain(10, absent));
        assert!(filter.may_contain(11, absent), "commit 11 came after it stopped getting keys");
    }

    #[test]
    fn promotion_retires_the_old_filter_at_the_newest_commit() {
        let filters = TreeFilters::default();
        let first = Arc::new(TreeFilter::new(MIN_CAPACITY));
        filters.slots.lock().next = Some(first.clone());
        // Being built: a flush adds to it, lookups do not see it yet.
        assert_eq!(filters.targets().0.len(), 1);
        assert!(filters.current().is_none());
        first.valid_from.store(3, Ordering::Release);
        filters.promote(4);
        assert!(Arc::ptr_eq(&filters.current().unwrap(), &first));

        let second = Arc::new(TreeFilter::new(MIN_CAPACITY));
        filters.slots.lock().next = Some(second.clone());
        let targets = filters.targets();
        assert_eq!(targets.0.len(), 2, "the current filter and the one being built");
        let keys: Vec<Vec<u8>> = (0..40u32).map(|i| i.to_be_bytes().to_vec()).collect();
        targets.add_all(1, keys.iter().map(Vec::as_slice));
        for key in &keys {
            let hash = key_hash(1, key);
            assert!(first.bits.may_contain(hash) && second.bits.may_contain(hash), "every key, past each prefetched group");
        }
        second.valid_from.store(6, Ordering::Release);
        filters.promote(8);
        assert!(Arc::ptr_eq(&filters.current().unwrap(), &second));
        assert_eq!(first.valid_through.load(Ordering::Acquire), 8);
        assert!(first.may_contain(9, key_hash(1, b"never added")));
        assert_eq!(filters.targets().0.len(), 1, "the retired filter gets no more keys");
    }
}

#[cfg(test)]
mod chunked_rebuild_tests;
