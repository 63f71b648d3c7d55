//! The publication rule, as a small pure state machine so it can be checked
//! exhaustively.
//!
//! Sequences are published strictly in commit order, and a sequence committed
//! with `Durability::Immediate` is published only once it is durable:
//!
//! ```text
//! published = (oldest Immediate commit not yet durable) - 1,
//!             or the last committed sequence if there is none
//! ```
//!
//! `Inner::committed` and `Inner::refresh_publication` (core.rs) drive it
//! under the engine's publication lock.

use std::collections::VecDeque;

use super::core::Durability;

#[derive(Debug)]
pub(crate) struct Publication {
    pub(crate) last_committed: u64,
    /// Immediate commits not yet known durable, in order.
    undurable: VecDeque<u64>,
    pub(crate) published: u64,
}

impl Publication {
    /// Everything up to `seq` committed, durable and published (after open).
    pub(crate) fn new(seq: u64) -> Self {
        Self {
            last_committed: seq,
            undurable: VecDeque::new(),
            published: seq,
        }
    }

    /// Records commit `seq`. REQUIRES: `seq` is the next sequence.
    pub(crate) fn commit(&mut self, seq: u64, durability: Durability) {
        debug_assert!(seq > self.last_committed);
        self.last_committed = seq;
        if durability == Durability::Immediate {
            self.undurable.push_back(seq);
        }
    }

    /// Applies the durable watermark; returns the new published sequence if
    /// it advanced.
    pub(crate) fn advance(&mut self, durable: u64) -> Option<u64> {
        while self.undurable.front().is_some_and(|&s| s <= durable) {
            self.undurable.pop_front();
        }
        let target = self.undurable.front().map_or(self.last_committed, |&s| s - 1);
        (target > self.published).then(|| {
            self.published = target;
            target
        })
    }

    /// The durable sequence at which publication can next advance.
    pub(crate) fn next_blocker(&self) -> u64 {
        self.undurable.front().copied().unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every interleaving of up to six commits (each `None` or `Immediate`)
    /// with steps of the durable watermark (which only covers committed
    /// sequences, in order): publication only moves forward, never passes
    /// the last commit, never shows an Immediate commit before it is durable,
    /// and never holds back what the rule allows.
    #[test]
    fn exhaustive_small_model() {
        let mut checked = 0u64;
        // Events: 0 = commit None, 1 = commit Immediate, 2 = durable += 1.
        fn walk(events: &mut Vec<u8>, depth: usize, checked: &mut u64) {
            check(events);
            *checked += 1;
            if depth == 0 {
                return;
            }
            for e in 0..3 {
                events.push(e);
                walk(events, depth - 1, checked);
                events.pop();
            }
        }
        fn check(events: &[u8]) {
            let mut p = Publication::new(0);
            let (mut seq, mut durable) = (0u64, 0u64);
            let mut kinds = vec![None];
            for &e in events {
                match e {
                    0 | 1 => {
                        seq += 1;
                        let d = if e == 0 {
                            Durability::None
                        } else {
                            Durability::Immediate
                        };
                        p.commit(seq, d);
                        kinds.push(Some(d));
                    }
                    _ if durable < seq => durable += 1,
                    _ => {}
                }
                let before = p.published;
                p.advance(durable);
                let published = p.published;
                assert!(published >= before, "{events:?}: publication went back");
                assert!(published <= seq, "{events:?}: published an uncommitted sequence");
                for s in 1..=published {
                    if kinds[s as usize] == Some(Durability::Immediate) {
                        assert!(
                            s <= durable,
                            "{events:?}: Immediate commit {s} published before durable"
                        );
                    }
                }
                // Maximal: the next sequence is held back only by a
                // non-durable Immediate commit at or before it.
                if published < seq {
                    let blocked = (published + 1..=seq)
                        .take(1)
                        .all(|s| kinds[s as usize] == Some(Durability::Immediate) && s > durable);
                    assert!(blocked, "{events:?}: publication held back at {published}");
                }
            }
        }
        let mut events = Vec::new();
        walk(&mut events, 8, &mut checked);
        assert_eq!(checked, (0..=8).map(|d| 3u64.pow(d)).sum::<u64>());
    }
}
