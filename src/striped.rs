//! Counters that many threads move at once, split across cache lines.
//!
//! One shared counter makes every thread that moves it take its cache line
//! from the last one that did: concurrent readers counting their page-cache
//! hits traded it on every page. Here each thread moves the stripe it was
//! given at its first use, so threads (up to [`STRIPES`] of them) keep to
//! lines of their own, and a reader of the total sums the stripes.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Stripes of a counter.
pub(crate) const STRIPES: usize = 8;

/// A counter in [`STRIPES`] cache lines.
#[derive(Default)]
pub(crate) struct Striped([Line; STRIPES]);

#[derive(Default)]
#[repr(align(64))]
struct Line(AtomicU64);

impl Striped {
    /// This thread's stripe.
    pub(crate) fn mine(&self) -> &AtomicU64 {
        &self.0[stripe()].0
    }

    /// Every stripe.
    pub(crate) fn stripes(&self) -> impl Iterator<Item = &AtomicU64> {
        self.0.iter().map(|line| &line.0)
    }

    /// The stripes' sum, each read with `order`.
    pub(crate) fn sum(&self, order: Ordering) -> u64 {
        self.stripes().map(|s| s.load(order)).sum()
    }
}

/// This thread's stripe: threads take them in turn.
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local!(static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES);
    STRIPE.with(|s| *s)
}
