//! Key bytes that live inline when short: in a skip-list node (the
//! memtable), in a write-set entry and in a commit's batch.
//!
//! Inside a skip-list node, a short key costs each comparison on a walk one
//! cache miss, not two. In the write set and the batch, a `Vec<u8>` per key
//! was one small heap allocation per write: a 1M-key transaction made a
//! million, and glibc keeps freed small chunks aside (its fastbins) until a
//! later, larger allocation coalesces them all at once (measured after a
//! 1M-key tree commit: 0.45 s in the next writer's first allocation).
//! Keys up to [`INLINE`] bytes (all the keys of the benchmark and most real
//! ones) need no allocation.

use std::fmt;
use std::ops::Deref;

/// The longest key kept inline.
pub(crate) const INLINE: usize = 30;

/// Owned key bytes: inline up to [`INLINE`] bytes, boxed beyond.
#[derive(Clone)]
pub(crate) enum KeyBytes {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl KeyBytes {
    pub(crate) fn new(key: &[u8]) -> Self {
        if key.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..key.len()].copy_from_slice(key);
            Self::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            Self::Heap(key.into())
        }
    }
}

impl Deref for KeyBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => &bytes[..*len as usize],
            Self::Heap(bytes) => bytes,
        }
    }
}

impl PartialEq for KeyBytes {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for KeyBytes {}

impl fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back_inline_and_boxed() {
        for len in [0, 1, INLINE - 1, INLINE, INLINE + 1, 1000] {
            let key: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5a).collect();
            let bytes = KeyBytes::new(&key);
            assert_eq!(&*bytes, &key[..]);
            assert_eq!(bytes.clone(), bytes);
            assert_eq!(matches!(bytes, KeyBytes::Inline { .. }), len <= INLINE);
        }
    }
}
