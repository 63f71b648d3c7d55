//! Key orderings. Each tree is read and written with one comparator, chosen
//! by the layer above (typed keys order numerically, not bytewise). The
//! comparator must be a total order and must not change for a tree's life.

use std::cmp::Ordering;

/// Orders two encoded keys.
pub type Comparator = fn(&[u8], &[u8]) -> Ordering;

/// Lexicographic byte order: the catalog's order, and the default.
///
/// Never inlined, so the function has one address in a program (small
/// functions otherwise get a copy in every codegen unit and crate that calls
/// them), which [`is_bytewise`] relies on.
#[inline(never)]
pub fn bytewise(a: &[u8], b: &[u8]) -> Ordering {
    a.cmp(b)
}

/// Whether `cmp` is [`bytewise`], so that keys it calls equal are equal
/// bytes. Compares function addresses: were `bytewise` ever to get a second
/// address this would say `false`, which only costs a filter; two functions
/// share an address only when their code is identical, so a `true` is never
/// wrong.
pub fn is_bytewise(cmp: Comparator) -> bool {
    cmp as usize == (bytewise as Comparator) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytewise_is_recognized_through_the_typed_layer() {
        assert!(is_bytewise(bytewise));
        assert!(is_bytewise(crate::types::comparator::<&[u8]>()));
        assert!(is_bytewise(crate::types::comparator::<u64>()));
        fn reversed(a: &[u8], b: &[u8]) -> Ordering {
            b.cmp(a)
        }
        assert!(!is_bytewise(reversed));
    }
}
