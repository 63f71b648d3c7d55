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
    byte_order(a, b)
}

/// Byte order, computed with the first eight bytes of each side as one
/// big-endian word ([`prefix_word`], zero-padded for shorter keys): the
/// order of two such words is the lexicographic order of their bytes, and
/// for most keys they differ there, which settles the comparison in a few
/// instructions instead of a call to `memcmp` (measured: 11% of a point
/// read's time in a 1M-key tree went to `memcmp`; then, as long as keys
/// under eight bytes took the `memcmp` path, the branch nodes' separators,
/// cut to the few bytes that tell their neighbours apart, sent every probe
/// of every inner node there: a third of a point read's instructions).
#[inline]
pub(crate) fn byte_order(a: &[u8], b: &[u8]) -> Ordering {
    let (x, y) = (prefix_word(a), prefix_word(b));
    if x != y {
        return x.cmp(&y);
    }
    match (a.get(8..), b.get(8..)) {
        (Some(a), Some(b)) => a.cmp(b),
        // Equal words and a key under eight bytes: its padding may hide
        // zero bytes of the other, or its end.
        _ => a.cmp(b),
    }
}

/// `cmp(a, b)`, with byte order inlined rather than called through the
/// pointer (measured: 3.5% of a short scan went to calls of [`bytewise`]
/// from the merge).
#[inline]
pub(crate) fn compare(cmp: Comparator, a: &[u8], b: &[u8]) -> Ordering {
    if is_bytewise(cmp) { byte_order(a, b) } else { cmp(a, b) }
}

/// A key's first eight bytes as a big-endian word, zero-padded: two keys
/// whose words differ are in the words' byte order (a shorter key's padding
/// sorts where its end does); equal words say nothing. Search structures
/// keep it beside a key so that most comparisons read no key bytes.
#[inline]
pub(crate) fn prefix_word(key: &[u8]) -> u64 {
    if let Some(head) = key.first_chunk::<8>() {
        return u64::from_be_bytes(*head);
    }
    // Shorter: byte by byte (a copy of a variable length calls `memcpy`).
    let mut word = 0;
    for (i, &byte) in key.iter().enumerate() {
        word |= u64::from(byte) << (56 - 8 * i);
    }
    word
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

    #[test]
    fn byte_order_is_lexicographic_order() {
        // Lengths around the eight-byte word, bytes that differ in and past
        // it, prefixes of one another, and bytes above 0x7f (sign-free).
        let alphabet = [0u8, 1, 0x7f, 0x80, 0xff];
        let mut keys: Vec<Vec<u8>> = vec![Vec::new()];
        for len in [1usize, 7, 8, 9, 16] {
            for (i, &a) in alphabet.iter().enumerate() {
                for &b in &alphabet {
                    let mut key = vec![a; len];
                    key[len - 1] = b;
                    key[len / 2] = alphabet[(i + 1) % alphabet.len()];
                    keys.push(key);
                }
            }
        }
        for a in &keys {
            for b in &keys {
                assert_eq!(byte_order(a, b), a.cmp(b), "{a:?} vs {b:?}");
            }
        }
    }
}
