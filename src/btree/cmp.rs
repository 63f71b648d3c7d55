//! Key orderings. Each tree is read and written with one comparator, chosen
//! by the layer above (typed keys order numerically, not bytewise). The
//! comparator must be a total order and must not change for a tree's life.

use std::cmp::Ordering;

/// Orders two encoded keys.
pub type Comparator = fn(&[u8], &[u8]) -> Ordering;

/// Lexicographic byte order: the catalog's order, and the default.
pub fn bytewise(a: &[u8], b: &[u8]) -> Ordering {
    a.cmp(b)
}
