//! Page allocation and the rule for reusing freed pages.
//!
//! Invariant (BRIEF §1): a page is written only if no live snapshot can reach
//! it and the last durable commit cannot reach it. Concretely a page freed by
//! commit `T` was reachable only from roots of commits before `T`, so it
//! becomes reusable once
//! 1. every live snapshot is at `T` or later (`reclaim`'s `oldest_reader`), and
//! 2. commit `T` or a later one is durable, unless the page was allocated after
//!    the last durable commit, in which case no durable root ever held it.
//!
//! Pages allocated by a writer and dropped again before it commits were never
//! visible to anyone and are reusable at once (`release_unpublished`).
//!
//! Retired pages pass two gates, in this order, each a queue whose work per
//! publish is independent of how many non-durable commits came since the
//! last durable one (amortised O(1) per commit plus O(1) per page):
//! 1. `waiting_readers`, one entry per retiring commit in transaction order:
//!    `reclaim` pops entries from the front only while the oldest reader
//!    allows, and stops at the first it does not.
//! 2. `waiting_durable`, one bucket: a page past the readers gate needs only
//!    a durable commit at or after the commit that retired it. Every
//!    non-durable commit since the last durable one shares the same
//!    boundary (the next durable commit covers them all, being the newest),
//!    so their pages are coalesced, and the bucket waits for the largest of
//!    their transaction ids: conservative, never early.
//!
//! **Pins** (persistent savepoints, `design/savepoints.md`): a pin names
//! the pages a durable commit reached when it was taken, as sorted ranges.
//! A pinned page that passes both gates is *held* instead of freed: it
//! stays out of the free set until every pin naming it is dropped. Held
//! pages are not reachable from the durable commit, so the on-disk free
//! list lists them (`free_after_restart`); a reopened store pins them again
//! from the pins it finds in its catalog before anything is allocated.
//!
//! **The page cache** may keep a retired page while a reader can reach it.
//! Every page that passes the readers gate is named once by
//! `take_unreachable`, and the tree writer drops it from the cache right
//! after each `reclaim`, under the writer lock, before anything is
//! allocated (`Shared::reclaim` in `btree::store`): a cached page is never
//! older than what its id holds once the id is reused.
//!
//! The page store's commit protocol (`PageStore::commit`) and the tree
//! writer's commit (`TreeWriter::commit`) are the two callers that must agree
//! with this.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::sync::Arc;

/// Sorted, disjoint page ranges `[start, end)`: the pages one pin keeps.
pub(crate) type PageRanges = Arc<[(u64, u64)]>;

fn in_ranges(ranges: &[(u64, u64)], page: u64) -> bool {
    let i = ranges.partition_point(|&(_, end)| end <= page);
    ranges.get(i).is_some_and(|&(start, _)| start <= page)
}

#[derive(Debug, Default)]
struct Freed {
    /// Reachable from the last durable commit: needs a newer durable commit.
    durable: Vec<u64>,
    /// Allocated after the last durable commit: only readers can hold them.
    volatile: Vec<u64>,
}

/// Single-threaded: owned by the tree writer, behind its lock.
#[derive(Debug)]
pub(crate) struct Allocator {
    /// Pages `0..page_count` belong to the file; page 0 is the header.
    page_count: u64,
    /// Reusable now. Ordered, so allocation prefers low pages and the file's
    /// tail tends to empty out and can be given back.
    free: BTreeSet<u64>,
    /// Freed by published commits and maybe still reachable by a reader:
    /// `(retiring transaction, pages)`, transaction ids strictly increasing.
    waiting_readers: VecDeque<(u64, Freed)>,
    /// Unreachable by any reader, but reachable from the last durable commit:
    /// reusable once a commit at or after `waiting_durable_txn` is durable.
    waiting_durable: Vec<u64>,
    waiting_durable_txn: u64,
    /// Allocated since the last durable commit.
    since_durable: HashSet<u64>,
    durable_txn: u64,
    /// Pins by id (see the module docs).
    pins: BTreeMap<u64, PageRanges>,
    /// Past both gates but pinned: free once no pin names them.
    held: BTreeSet<u64>,
    /// Pages past the readers gate since the last
    /// [`take_unreachable`](Self::take_unreachable): no snapshot reaches
    /// them any more, so whatever the page cache holds under their ids is
    /// dead (the tree writer drops it).
    unreachable: Vec<u64>,
}

impl Allocator {
    /// The allocator as of a durable commit: `free` is every page below
    /// `page_count` that the commit does not reach.
    pub(crate) fn new(page_count: u64, free: impl IntoIterator<Item = u64>, durable_txn: u64) -> Self {
        Self {
            page_count: page_count.max(1),
            free: free.into_iter().collect(),
            waiting_readers: VecDeque::new(),
            waiting_durable: Vec::new(),
            waiting_durable_txn: 0,
            since_durable: HashSet::new(),
            durable_txn,
            pins: BTreeMap::new(),
            held: BTreeSet::new(),
            unreachable: Vec::new(),
        }
    }

    fn is_pinned(&self, page: u64) -> bool {
        self.pins.values().any(|ranges| in_ranges(ranges, page))
    }

    /// Pages past both gates: free, or held while a pin names them.
    fn release(&mut self, pages: impl IntoIterator<Item = u64>) {
        if self.pins.is_empty() {
            self.free.extend(pages);
            return;
        }
        for page in pages {
            if self.is_pinned(page) {
                self.held.insert(page);
            } else {
                self.free.insert(page);
            }
        }
    }

    /// Keeps the pages in `ranges` from reuse until [`unpin`](Self::unpin)
    /// of `id`; free pages among them (a reopened store's) are held now.
    pub(crate) fn pin(&mut self, id: u64, ranges: PageRanges) {
        let caught: Vec<u64> = self
            .free
            .iter()
            .copied()
            .filter(|&page| in_ranges(&ranges, page))
            .collect();
        for page in caught {
            self.free.remove(&page);
            self.held.insert(page);
        }
        self.pins.insert(id, ranges);
    }

    /// Drops pin `id`; the held pages no other pin names are free.
    pub(crate) fn unpin(&mut self, id: u64) {
        if self.pins.remove(&id).is_none() {
            return;
        }
        let held = std::mem::take(&mut self.held);
        self.release(held);
    }

    /// What a pin of the last durable commit would keep: every page below
    /// the page count that is neither free after a restart nor held
    /// (the pages the commit reaches, and its free list's own pages).
    ///
    /// REQUIRES: nothing allocated since the last durable commit.
    pub(crate) fn durable_ranges(&self) -> PageRanges {
        // Sorted; held pages included.
        let skip = self.free_after_restart();
        let mut ranges = Vec::new();
        let mut start = 1;
        for page in skip.into_iter().chain([self.page_count]) {
            if page > start {
                ranges.push((start, page));
            }
            start = start.max(page + 1);
        }
        ranges.into()
    }

    /// Pages held for pins (not reachable from the durable commit).
    pub(crate) fn held_count(&self) -> usize {
        self.held.len()
    }

    /// Pages named by any pin.
    pub(crate) fn pinned_count(&self) -> u64 {
        let mut all: Vec<(u64, u64)> = self.pins.values().flat_map(|r| r.iter().copied()).collect();
        all.sort_unstable();
        let (mut count, mut reach) = (0, 0);
        for (start, end) in all {
            let from = start.max(reach);
            if end > from {
                count += end - from;
            }
            reach = reach.max(end);
        }
        count
    }

    /// Whether a pin names `page`.
    pub(crate) fn pinned(&self, page: u64) -> bool {
        self.is_pinned(page)
    }

    pub(crate) fn page_count(&self) -> u64 {
        self.page_count
    }

    pub(crate) fn alloc(&mut self) -> u64 {
        let page = self.free.pop_first().unwrap_or_else(|| {
            self.page_count += 1;
            self.page_count - 1
        });
        self.since_durable.insert(page);
        page
    }

    /// `n` consecutive pages (for an overflow value); first fit, else the tail.
    pub(crate) fn alloc_run(&mut self, n: u64) -> u64 {
        if n == 1 {
            return self.alloc();
        }
        self.alloc_run_below(n, u64::MAX).unwrap_or_else(|| {
            let start = self.page_count;
            self.page_count += n;
            self.since_durable.extend(start..start + n);
            start
        })
    }

    /// The lowest free page below `limit`, or `None`: never grows the file.
    /// Compaction (`apply::relocate`) allocates only through this and
    /// [`alloc_run_below`](Self::alloc_run_below).
    pub(crate) fn alloc_below(&mut self, limit: u64) -> Option<u64> {
        let page = self.free.first().copied().filter(|&page| page < limit)?;
        self.free.remove(&page);
        self.since_durable.insert(page);
        Some(page)
    }

    /// The first run of `n` free pages that ends below `limit`, or `None`:
    /// never grows the file.
    pub(crate) fn alloc_run_below(&mut self, n: u64, limit: u64) -> Option<u64> {
        let mut run_start = 0;
        let mut run_len = 0;
        let mut found = None;
        for &page in self.free.range(..limit) {
            if run_len > 0 && page == run_start + run_len {
                run_len += 1;
            } else {
                run_start = page;
                run_len = 1;
            }
            if run_len == n {
                found = Some(run_start);
                break;
            }
        }
        let start = found?;
        for page in start..start + n {
            self.free.remove(&page);
        }
        self.since_durable.extend(start..start + n);
        Some(start)
    }

    /// The pages free now, in ascending order.
    pub(crate) fn free_pages(&self) -> impl Iterator<Item = u64> + '_ {
        self.free.iter().copied()
    }

    /// REQUIRES: `page` was allocated by the current writer and never
    /// published, so no reader and no durable commit can reach it.
    pub(crate) fn release_unpublished(&mut self, page: u64) {
        self.since_durable.remove(&page);
        self.free.insert(page);
    }

    /// Records the pages that commit `txn` stopped referencing.
    ///
    /// REQUIRES: `txn` at or after every earlier `retire` (commits retire in
    /// order; a commit may retire more pages, e.g. its predecessor's free
    /// list). Should it not be, the pages join the newest entry, which is
    /// released no earlier: safe, only later.
    pub(crate) fn retire(&mut self, txn: u64, pages: impl IntoIterator<Item = u64>) {
        let entry = match self.waiting_readers.back_mut() {
            Some((last, freed)) if *last >= txn => freed,
            _ => {
                self.waiting_readers.push_back((txn, Freed::default()));
                let Some((_, freed)) = self.waiting_readers.back_mut() else {
                    unreachable!("an entry was just pushed");
                };
                freed
            }
        };
        for page in pages {
            if self.since_durable.remove(&page) {
                entry.volatile.push(page);
            } else {
                entry.durable.push(page);
            }
        }
    }

    /// Commit `txn` is durable: nothing allocated before it is volatile now,
    /// and the pages waiting only for durability up to `txn` are free.
    pub(crate) fn mark_durable(&mut self, txn: u64) {
        self.durable_txn = txn;
        self.since_durable.clear();
        self.release_durable();
    }

    fn release_durable(&mut self) {
        if self.waiting_durable_txn <= self.durable_txn {
            let pages = std::mem::take(&mut self.waiting_durable);
            self.release(pages);
        }
    }

    /// Moves every pending page that the rule above allows into the free set.
    /// `oldest_reader` is the oldest transaction a live snapshot is pinned to.
    ///
    /// REQUIRES: every commit that retired pages is published, and snapshots
    /// taken later pin the newest published commit (so a page past the
    /// readers gate stays past it). `TreeWriter::publish` and `make_durable`
    /// call this after publishing, and `TreeStore::writer` when a writer
    /// starts (a reader may have gone since the last commit), reading the
    /// oldest reader under the lock snapshots register under.
    ///
    /// Work: one step per entry that passes the readers gate (each entry
    /// passes once) plus one per page, and O(1) when the oldest entry waits.
    pub(crate) fn reclaim(&mut self, oldest_reader: Option<u64>) {
        let limit = oldest_reader.unwrap_or(u64::MAX);
        while self.waiting_readers.front().is_some_and(|(txn, _)| *txn <= limit) {
            let Some((txn, freed)) = self.waiting_readers.pop_front() else {
                break;
            };
            self.unreachable.extend(freed.volatile.iter().chain(&freed.durable));
            // Volatile pages were never in a durable commit: free now (no
            // pin names them: pins name pages of durable commits).
            self.free.extend(freed.volatile);
            if txn <= self.durable_txn {
                self.release(freed.durable);
            } else {
                // Coalesced: the bucket waits for the newest of its commits.
                self.waiting_durable.extend(freed.durable);
                self.waiting_durable_txn = self.waiting_durable_txn.max(txn);
            }
        }
        self.release_durable();
    }

    /// The pages that have passed the readers gate since the last call (in
    /// [`reclaim`](Self::reclaim)), whether free now or still waiting for a
    /// durable commit or a pin: no reader reaches them any more.
    pub(crate) fn take_unreachable(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.unreachable)
    }

    /// Gives back free pages at the end of the file; returns whether any were.
    pub(crate) fn trim_tail(&mut self) -> bool {
        let before = self.page_count;
        while self.page_count > 1 && self.free.remove(&(self.page_count - 1)) {
            self.page_count -= 1;
        }
        self.page_count != before
    }

    /// Every page the current durable commit does not reach: what a reopened
    /// database may use freely, once it has pinned again what its pins name.
    /// (After a restart no snapshot is live and only the durable commit
    /// matters.)
    pub(crate) fn free_after_restart(&self) -> Vec<u64> {
        let mut pages: Vec<u64> = self.free.iter().chain(&self.held).copied().collect();
        for (_, freed) in &self.waiting_readers {
            pages.extend_from_slice(&freed.durable);
            pages.extend_from_slice(&freed.volatile);
        }
        pages.extend_from_slice(&self.waiting_durable);
        pages.sort_unstable();
        pages
    }

    /// Entries in the pending structure, for tests.
    #[cfg(test)]
    fn pending_entries(&self) -> usize {
        self.waiting_readers.len() + usize::from(!self.waiting_durable.is_empty())
    }

    /// Number of pages free now, for statistics and tests.
    pub(crate) fn free_count(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durable_frees_wait_for_a_durable_commit_and_for_readers() {
        let mut a = Allocator::new(10, [], 1);
        a.retire(2, [3, 4]);
        a.reclaim(Some(1));
        assert_eq!(a.free_count(), 0, "a reader at commit 1 can reach them");
        a.mark_durable(2);
        a.reclaim(Some(1));
        assert_eq!(a.free_count(), 0, "a reader at commit 1 can still reach them");
        a.reclaim(Some(2));
        assert_eq!(a.free_count(), 2);
        a.retire(3, [5]);
        a.reclaim(None);
        assert_eq!(a.free_count(), 2, "commit 3 is not durable yet");
        a.mark_durable(3);
        assert_eq!(a.free_count(), 3);
    }

    /// `take_unreachable` names a retired page once, as soon as no reader
    /// can reach it, before it is free (the page cache drops it then, and
    /// must have before the page is reused).
    #[test]
    fn pages_are_named_unreachable_once_the_readers_allow_and_before_reuse() {
        let mut a = Allocator::new(10, [], 1);
        a.retire(2, [3, 4]);
        a.reclaim(Some(1));
        assert!(a.take_unreachable().is_empty(), "a reader at commit 1 can reach them");
        a.reclaim(Some(2));
        let mut named = a.take_unreachable();
        named.sort_unstable();
        assert_eq!(named, [3, 4]);
        assert_eq!(a.free_count(), 0, "unreachable, but commit 2 is not durable yet");
        a.mark_durable(2);
        a.reclaim(None);
        assert!(a.take_unreachable().is_empty(), "each page is named once");
        assert_eq!(a.free_count(), 2);
    }

    #[test]
    fn volatile_pages_need_only_the_readers_gone() {
        let mut a = Allocator::new(1, [], 0);
        let p = a.alloc();
        a.retire(1, [p]);
        a.reclaim(Some(0));
        assert_eq!(a.free_count(), 0);
        a.reclaim(None);
        assert_eq!(a.free_count(), 1);
        assert_eq!(a.alloc(), p);
    }

    /// Defect: one pending entry per non-durable commit, all walked on every
    /// publish. The structure must stay bounded however many non-durable
    /// commits follow the last durable one (with no reader holding them).
    #[test]
    fn pending_entries_stay_bounded_across_non_durable_commits() {
        let mut a = Allocator::new(1, [], 0);
        // A durable tree of one page, rewritten by every commit.
        let mut live = a.alloc();
        a.mark_durable(0);
        let mut most = 0;
        for txn in 1..=10_000u64 {
            let next = a.alloc();
            a.retire(txn, [live]);
            live = next;
            a.reclaim(None);
            most = most.max(a.pending_entries());
        }
        assert!(
            most <= 2,
            "up to {most} pending entries across 10,000 non-durable commits"
        );
        a.mark_durable(10_001);
        a.reclaim(None);
        assert_eq!(a.pending_entries(), 0);
        assert_eq!(a.free_after_restart().len() as u64, a.page_count() - 2);
    }

    #[test]
    fn pinned_pages_are_held_until_unpinned_and_listed_free_on_disk() {
        // Pages 1..=6 reached by the durable commit 1; 7 and 8 free.
        let mut a = Allocator::new(9, [7, 8], 1);
        let ranges = a.durable_ranges();
        assert_eq!(&ranges[..], &[(1, 7)]);
        a.pin(5, ranges);
        a.retire(2, [2, 3]);
        a.mark_durable(2);
        a.reclaim(None);
        assert_eq!(a.free_count(), 2, "pinned pages are held, not freed");
        assert_eq!(a.held_count(), 2);
        assert_eq!(a.free_after_restart(), vec![2, 3, 7, 8], "held pages are free on disk");
        assert_eq!(a.alloc(), 7);
        // Once commit 3 (which reaches page 7) is durable, a second pin of
        // it names neither the held pages nor the free one.
        a.mark_durable(3);
        assert_eq!(&a.durable_ranges()[..], &[(1, 2), (4, 8)]);
        a.unpin(5);
        assert_eq!(a.held_count(), 0);
        assert_eq!(a.free_pages().collect::<Vec<_>>(), vec![2, 3, 8]);
    }

    #[test]
    fn a_pin_taken_at_open_holds_the_free_pages_it_names() {
        let mut a = Allocator::new(10, [2, 3, 8], 1);
        a.pin(1, vec![(1, 4)].into());
        a.pin(2, vec![(3, 5)].into());
        assert_eq!(a.free_pages().collect::<Vec<_>>(), vec![8]);
        assert_eq!(a.pinned_count(), 4);
        a.unpin(1);
        assert_eq!(
            a.free_pages().collect::<Vec<_>>(),
            vec![2, 8],
            "page 3 is still pinned by 2"
        );
        a.unpin(2);
        assert_eq!(a.free_pages().collect::<Vec<_>>(), vec![2, 3, 8]);
    }

    mod model {
        //! Property test of the reuse rule: a model copy-on-write store over
        //! the allocator, with non-durable and durable commits, snapshots
        //! held and dropped, aborted pages and tail trimming. A page handed
        //! out is never reachable from the newest commit, a live snapshot,
        //! or the last durable commit.

        use std::collections::BTreeSet;

        use proptest::prelude::*;

        use super::super::Allocator;

        #[derive(Clone, Debug)]
        enum Op {
            /// Rewrite some pages (indexes into the live set), add `grow`
            /// pages, maybe a run, drop `abort` fresh pages; then commit.
            Commit {
                rewrite: Vec<usize>,
                grow: usize,
                run: Option<u64>,
                abort: usize,
                durable: bool,
            },
            TakeSnapshot,
            DropSnapshot(usize),
            TrimTail,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                6 => (
                    proptest::collection::vec(0usize..64, 0..6),
                    0usize..4,
                    proptest::option::of(2u64..5),
                    0usize..3,
                    proptest::bool::weighted(0.25),
                )
                    .prop_map(|(rewrite, grow, run, abort, durable)| Op::Commit { rewrite, grow, run, abort, durable }),
                2 => Just(Op::TakeSnapshot),
                2 => (0usize..8).prop_map(Op::DropSnapshot),
                1 => Just(Op::TrimTail),
            ]
        }

        struct Model {
            a: Allocator,
            txn: u64,
            live: BTreeSet<u64>,
            durable: BTreeSet<u64>,
            snapshots: Vec<(u64, BTreeSet<u64>)>,
        }

        impl Model {
            fn check_handed_out(&self, page: u64, fresh: &BTreeSet<u64>) {
                assert!(page != 0, "the header page was handed out");
                assert!(!self.live.contains(&page), "page {page} is in the newest commit");
                assert!(!self.durable.contains(&page), "page {page} is in the durable commit");
                assert!(!fresh.contains(&page), "page {page} handed out twice");
                for (txn, pages) in &self.snapshots {
                    assert!(!pages.contains(&page), "page {page} is held by the snapshot at {txn}");
                }
            }

            fn oldest(&self) -> Option<u64> {
                self.snapshots.iter().map(|(txn, _)| *txn).min()
            }

            fn commit(&mut self, rewrite: &[usize], grow: usize, run: Option<u64>, abort: usize, durable: bool) {
                let mut fresh = BTreeSet::new();
                let mut retired = BTreeSet::new();
                let live: Vec<u64> = self.live.iter().copied().collect();
                for &i in rewrite {
                    if live.is_empty() {
                        break;
                    }
                    retired.insert(live[i % live.len()]);
                }
                for _ in 0..retired.len() + grow + abort {
                    let page = self.a.alloc();
                    self.check_handed_out(page, &fresh);
                    fresh.insert(page);
                }
                if let Some(n) = run {
                    let start = self.a.alloc_run(n);
                    for page in start..start + n {
                        self.check_handed_out(page, &fresh);
                        fresh.insert(page);
                    }
                }
                // Some fresh pages are dropped before the commit.
                let dropped: Vec<u64> = fresh.iter().copied().take(abort).collect();
                for page in dropped {
                    fresh.remove(&page);
                    self.a.release_unpublished(page);
                }
                self.txn += 1;
                self.a.retire(self.txn, retired.iter().copied());
                self.live = self.live.difference(&retired).copied().chain(fresh).collect();
                // Published; the writer reads the oldest reader afterwards.
                self.a.reclaim(self.oldest());
                if durable {
                    self.a.mark_durable(self.txn);
                    self.durable = self.live.clone();
                    self.a.reclaim(self.oldest());
                }
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
            #[test]
            fn freed_pages_are_reused_only_when_unreachable(ops in proptest::collection::vec(op(), 1..200)) {
                let mut m = Model {
                    a: Allocator::new(1, [], 0),
                    txn: 0,
                    live: BTreeSet::new(),
                    durable: BTreeSet::new(),
                    snapshots: Vec::new(),
                };
                for op in &ops {
                    match op {
                        Op::Commit { rewrite, grow, run, abort, durable } => {
                            m.commit(rewrite, *grow, *run, *abort, *durable);
                        }
                        Op::TakeSnapshot => m.snapshots.push((m.txn, m.live.clone())),
                        Op::DropSnapshot(i) => {
                            if !m.snapshots.is_empty() {
                                let i = i % m.snapshots.len();
                                m.snapshots.remove(i);
                            }
                        }
                        Op::TrimTail => {
                            m.a.trim_tail();
                            let used = m.live.iter().chain(&m.durable).chain(m.snapshots.iter().flat_map(|(_, p)| p));
                            if let Some(&top) = used.max() {
                                prop_assert!(top < m.a.page_count(), "trimmed page {top} is in use");
                            }
                        }
                    }
                    // What a durable commit of the newest state would list
                    // as free never includes a page of that state.
                    let free: BTreeSet<u64> = m.a.free_after_restart().into_iter().collect();
                    for page in &m.live {
                        prop_assert!(!free.contains(page), "live page {page} listed free");
                    }
                }
                // With no snapshot and a durable commit, everything not live
                // is free again, and nothing is pending.
                m.snapshots.clear();
                m.commit(&[], 0, None, 0, true);
                prop_assert_eq!(m.a.pending_entries(), 0);
                prop_assert_eq!(m.a.free_count() as u64 + m.live.len() as u64 + 1, m.a.page_count());
            }
        }
    }

    #[test]
    fn runs_and_tail_trimming() {
        let mut a = Allocator::new(10, [2, 4, 5, 6, 9], 0);
        assert_eq!(a.alloc_run(3), 4);
        assert_eq!(a.alloc_run(2), 10, "no run of two left: grows the file");
        a.release_unpublished(10);
        a.release_unpublished(11);
        assert!(a.trim_tail());
        assert_eq!(a.page_count(), 9, "pages 9, 10, 11 were free");
        assert_eq!(a.free_after_restart(), vec![2]);
    }
}
