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
//! The page store's commit protocol (`PageStore::commit`) and the tree
//! writer's commit (`TreeWriter::commit`) are the two callers that must agree
//! with this.

use std::collections::{BTreeMap, BTreeSet, HashSet};

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
    /// Freed by a published commit, keyed by that commit's transaction id.
    pending: BTreeMap<u64, Freed>,
    /// Allocated since the last durable commit.
    since_durable: HashSet<u64>,
    durable_txn: u64,
}

impl Allocator {
    /// The allocator as of a durable commit: `free` is every page below
    /// `page_count` that the commit does not reach.
    pub(crate) fn new(page_count: u64, free: impl IntoIterator<Item = u64>, durable_txn: u64) -> Self {
        Self {
            page_count: page_count.max(1),
            free: free.into_iter().collect(),
            pending: BTreeMap::new(),
            since_durable: HashSet::new(),
            durable_txn,
        }
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
    pub(crate) fn retire(&mut self, txn: u64, pages: impl IntoIterator<Item = u64>) {
        let entry = self.pending.entry(txn).or_default();
        for page in pages {
            if self.since_durable.remove(&page) {
                entry.volatile.push(page);
            } else {
                entry.durable.push(page);
            }
        }
    }

    /// Commit `txn` is durable: nothing allocated before it is volatile now.
    pub(crate) fn mark_durable(&mut self, txn: u64) {
        self.durable_txn = txn;
        self.since_durable.clear();
    }

    /// Moves every pending page that the rule above allows into the free set.
    /// `oldest_reader` is the oldest transaction a live snapshot is pinned to.
    pub(crate) fn reclaim(&mut self, oldest_reader: Option<u64>) {
        let limit = oldest_reader.unwrap_or(u64::MAX);
        let durable_txn = self.durable_txn;
        let mut emptied = Vec::new();
        for (&txn, freed) in self.pending.range_mut(..=limit) {
            self.free.extend(freed.volatile.drain(..));
            if txn <= durable_txn {
                self.free.extend(freed.durable.drain(..));
                emptied.push(txn);
            }
        }
        for txn in emptied {
            self.pending.remove(&txn);
        }
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
    /// database may use freely. (After a restart no snapshot is live and only
    /// the durable commit matters.)
    pub(crate) fn free_after_restart(&self) -> Vec<u64> {
        let mut pages: Vec<u64> = self.free.iter().copied().collect();
        for freed in self.pending.values() {
            pages.extend_from_slice(&freed.durable);
            pages.extend_from_slice(&freed.volatile);
        }
        pages.sort_unstable();
        pages
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
        a.reclaim(None);
        assert_eq!(a.free_count(), 0, "commit 2 is not durable yet");
        a.mark_durable(2);
        a.reclaim(Some(1));
        assert_eq!(a.free_count(), 0, "a reader at commit 1 can reach them");
        a.reclaim(Some(2));
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
