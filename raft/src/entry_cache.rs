//! [`EntryCache`]: the newest log entries, kept typed in memory.
//!
//! openraft reads the entries a node has just appended twice: the leader's
//! replication streams send them to the followers, and the state machine
//! worker reads them to apply them. From the table, each read is a read
//! transaction, a range scan and the decoding of every entry; from this
//! cache it is a clone of each entry.
//!
//! # Invariants
//! - The cache holds consecutive indexes `first..first + len`, each the
//!   entry the log table holds at that index. It answers only a range that
//!   lies inside those indexes: the table may hold entries past the cache's
//!   end (after an append that rewrote entries without a
//!   truncation), so a range reaching further, or unbounded, reads the
//!   table. openraft's reads are bounded by its own last log index: the
//!   leader's replication and the state machine worker read within it.
//! - Appends enter the cache after their commit is visible; removals leave
//!   it before their commit, and a removal that fails empties it. A reader
//!   that misses the cache reads the table, which is never behind it.
//! - An empty cache answers nothing: it is always safe.

use std::collections::VecDeque;
use std::ops::Bound;

/// Entries a log store keeps: a busy leader's last few hundred appends, a
/// few hundred KiB of typed entries.
pub(crate) const CAPACITY: usize = 4096;

/// The newest entries of one log (see the module docs).
pub(crate) struct EntryCache<E> {
    /// The index of `entries[0]`.
    first: u64,
    entries: VecDeque<E>,
    capacity: usize,
}

impl<E> EntryCache<E> {
    /// An empty cache keeping at most `capacity` entries.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            first: 0,
            entries: VecDeque::new(),
            capacity,
        }
    }

    /// One past the last cached index.
    fn end(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    /// Records `entries`, appended at consecutive indexes from `first`.
    /// Anything cached at or after `first` is dropped first (the table may
    /// still hold entries past the new ones; the cache then ends short of
    /// them, which is allowed); a gap before `first` starts the cache afresh.
    pub(crate) fn append(&mut self, first: u64, entries: Vec<E>) {
        if entries.is_empty() {
            return;
        }
        if self.entries.is_empty() || first < self.first || first > self.end() {
            self.entries.clear();
            self.first = first;
        } else {
            self.entries.truncate((first - self.first) as usize);
        }
        self.entries.extend(entries);
        let excess = self.entries.len().saturating_sub(self.capacity);
        self.entries.drain(..excess);
        self.first += excess as u64;
    }

    /// Forgets the entries at `index` and after.
    pub(crate) fn truncate_from(&mut self, index: u64) {
        if index <= self.first {
            self.entries.clear();
        } else if index < self.end() {
            self.entries.truncate((index - self.first) as usize);
        }
    }

    /// Forgets the entries up to and including `index`.
    pub(crate) fn purge_through(&mut self, index: u64) {
        if index >= self.first {
            let gone = (index - self.first + 1).min(self.entries.len() as u64);
            self.entries.drain(..gone as usize);
            self.first = index + 1;
        }
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

impl<E: Clone> EntryCache<E> {
    /// The entries of the log within the bounds, if the cache holds the
    /// whole range: `None` for a range that starts before the first cached
    /// index, ends after the last, or is unbounded.
    pub(crate) fn get(&self, start: Bound<u64>, end: Bound<u64>) -> Option<Vec<E>> {
        if self.entries.is_empty() {
            return None;
        }
        let from = match start {
            Bound::Included(i) => i,
            Bound::Excluded(i) => i.checked_add(1)?,
            Bound::Unbounded => return None,
        };
        let to = match end {
            Bound::Included(i) => i.checked_add(1)?,
            Bound::Excluded(i) => i,
            Bound::Unbounded => return None,
        };
        if from >= to {
            return Some(Vec::new());
        }
        if from < self.first || to > self.end() {
            return None;
        }
        let (lo, hi) = ((from - self.first) as usize, (to - self.first) as usize);
        Some(self.entries.range(lo..hi).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::ops::Bound::{Excluded, Included, Unbounded};
    use std::ops::RangeBounds;

    use super::*;

    /// What a log table would answer for the bounds.
    fn model_get(log: &BTreeMap<u64, u64>, start: Bound<u64>, end: Bound<u64>) -> Vec<u64> {
        log.iter()
            .filter(|(i, _)| (start, end).contains(*i))
            .map(|(_, v)| *v)
            .collect()
    }

    /// A log and its cache, changed the way `LogStore` changes them; every
    /// answer the cache gives must be the log's.
    #[test]
    fn answers_agree_with_the_log_through_appends_truncations_and_purges() {
        let mut log: BTreeMap<u64, u64> = BTreeMap::new();
        let mut cache = EntryCache::new(8);
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut answered = 0;
        for step in 0..20_000u64 {
            let last = log.keys().next_back().copied().unwrap_or(0);
            match next() % 9 {
                0..=3 => {
                    // Appends continue the log (openraft truncates before
                    // it overwrites), a few entries at a time.
                    let n = next() % 4 + 1;
                    let entries: Vec<u64> = (0..n).map(|k| step * 10 + k).collect();
                    for (k, v) in entries.iter().enumerate() {
                        log.insert(last + 1 + k as u64, *v);
                    }
                    cache.append(last + 1, entries);
                }
                8 => {
                    // An append that rewrites entries inside the log with
                    // no truncation first: the table keeps what follows.
                    let from = last.saturating_sub(next() % 8).max(1);
                    let entries: Vec<u64> = (0..2).map(|k| step * 10 + 5 + k).collect();
                    for (k, v) in entries.iter().enumerate() {
                        log.insert(from + k as u64, *v);
                    }
                    cache.append(from, entries);
                }
                4 => {
                    let from = last.saturating_sub(next() % 6);
                    log.retain(|i, _| *i < from);
                    cache.truncate_from(from);
                }
                5 => {
                    let through = last.saturating_sub(next() % 12);
                    log.retain(|i, _| *i > through);
                    cache.purge_through(through);
                }
                6 if next() % 50 == 0 => cache.clear(),
                _ => {}
            }
            let last = log.keys().next_back().copied().unwrap_or(0);
            let lo = last.saturating_sub(next() % 12);
            let hi = lo + next() % 14;
            for start in [Included(lo), Excluded(lo), Unbounded] {
                for end in [Included(hi), Excluded(hi), Unbounded] {
                    if let Some(got) = cache.get(start, end) {
                        assert_eq!(got, model_get(&log, start, end), "step {step}, {start:?}..{end:?}");
                        answered += 1;
                    }
                }
            }
        }
        assert!(answered > 10_000, "the cache answered only {answered} reads");
    }

    #[test]
    fn keeps_only_the_newest_entries_within_its_capacity() {
        let mut cache = EntryCache::new(4);
        cache.append(1, (1..=10u64).collect());
        assert_eq!(cache.get(Included(7), Included(10)), Some(vec![7, 8, 9, 10]));
        assert_eq!(cache.get(Included(6), Included(10)), None, "evicted");
        assert_eq!(cache.get(Included(7), Included(11)), None, "past the cache's end");
        assert_eq!(cache.get(Included(7), Unbounded), None, "unbounded");
    }
}
