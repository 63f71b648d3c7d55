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
//!
//! ```text
//! 32 bytes, 8-aligned
//! offset  inline key            boxed key (longer than INLINE)
//!      0  the key, zero-padded  the key's first 8 bytes
//!      8  (to byte 29)          pointer to the whole key
//!     16                        its length
//!     29  length (0..=29)       BOXED
//!     30  tag (2 bytes)         tag
//! ```
//!
//! Either way the first eight bytes are the key's, zero-padded
//! ([`KeyBytes::head_word`]): the word byte-ordered comparisons settle on
//! first, which the memtable and the write set used to keep in a field of
//! their own beside the key (eight bytes of every skip-list node). The
//! tag is the owner's: the memtable keeps its key's order there
//! (`memtable::MemKey`), which took a word of every node of its own.

use std::fmt;
use std::ops::Deref;
use std::ptr::{self, NonNull};

/// The longest key kept inline.
pub(crate) const INLINE: usize = 29;

/// The length byte of a boxed key.
const BOXED: u8 = u8::MAX;

#[repr(C)]
#[derive(Clone, Copy)]
struct Inline {
    bytes: [u8; INLINE],
    len: u8,
    tag: [u8; 2],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Boxed {
    head: [u8; 8],
    /// From `Box::<[u8]>::into_raw`, freed by `KeyBytes`'s drop.
    ptr: NonNull<u8>,
    len: usize,
    spare: [u8; 5],
    /// [`BOXED`], where an inline key keeps its length.
    marker: u8,
    tag: [u8; 2],
}

/// Both layouts put the key's first eight bytes at 0, the length byte at
/// 29 and the tag at 30, so either can be read from whichever was written.
#[repr(C)]
union Repr {
    inline: Inline,
    boxed: Boxed,
}

const _: () = assert!(std::mem::size_of::<Repr>() == 32);
const _: () = assert!(std::mem::offset_of!(Inline, len) == std::mem::offset_of!(Boxed, marker));
const _: () = assert!(std::mem::offset_of!(Inline, tag) == std::mem::offset_of!(Boxed, tag));

/// Owned key bytes: inline up to [`INLINE`] bytes, boxed beyond.
pub(crate) struct KeyBytes {
    repr: Repr,
}

// SAFETY: a `KeyBytes` owns its bytes (inline, or the box it frees), as a
// `Box<[u8]>` would, and shares them only through `&self`.
#[expect(unsafe_code, reason = "owns a boxed slice through a raw pointer")]
unsafe impl Send for KeyBytes {}
// SAFETY: as for `Send`: `&KeyBytes` gives out only `&[u8]`.
#[expect(unsafe_code, reason = "owns a boxed slice through a raw pointer")]
unsafe impl Sync for KeyBytes {}

impl KeyBytes {
    pub(crate) fn new(key: &[u8]) -> Self {
        Self::tagged(key, 0)
    }

    /// `key`'s bytes with `tag` beside them (see [`tag`](Self::tag)).
    pub(crate) fn tagged(key: &[u8], tag: u16) -> Self {
        let tag = tag.to_ne_bytes();
        if key.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..key.len()].copy_from_slice(key);
            return Self {
                repr: Repr {
                    inline: Inline {
                        bytes,
                        len: key.len() as u8,
                        tag,
                    },
                },
            };
        }
        let mut head = [0; 8];
        head.copy_from_slice(&key[..8]);
        let raw = Box::into_raw(Box::<[u8]>::from(key));
        Self {
            repr: Repr {
                boxed: Boxed {
                    head,
                    ptr: NonNull::new(raw.cast::<u8>()).expect("a box is never null"),
                    len: key.len(),
                    spare: [0; 5],
                    marker: BOXED,
                    tag,
                },
            },
        }
    }

    /// The length byte: an inline key's length, or [`BOXED`].
    #[expect(unsafe_code, reason = "reads the byte both layouts keep at offset 29")]
    fn len_byte(&self) -> u8 {
        // SAFETY: both variants initialize the byte at offset 29 as a `u8`
        // (`Inline::len`, `Boxed::marker`; asserted above).
        unsafe { self.repr.inline.len }
    }

    /// Whether the bytes live in a box of their own (longer than
    /// [`INLINE`]): only then does dropping the key free anything.
    pub(crate) fn is_boxed(&self) -> bool {
        self.len_byte() == BOXED
    }

    /// The tag the key was made with (0 for [`new`](Self::new)).
    #[expect(unsafe_code, reason = "reads the bytes both layouts keep at offset 30")]
    pub(crate) fn tag(&self) -> u16 {
        // SAFETY: both variants initialize the two bytes at offset 30 as
        // `[u8; 2]` (`Inline::tag`, `Boxed::tag`; asserted above).
        u16::from_ne_bytes(unsafe { self.repr.inline.tag })
    }

    /// The key's first eight bytes as a big-endian word, zero-padded:
    /// `btree::prefix_word` of the key, without reading past the struct.
    #[expect(unsafe_code, reason = "reads the bytes both layouts keep at offset 0")]
    pub(crate) fn head_word(&self) -> u64 {
        // SAFETY: both variants start with eight initialized `u8`s: an
        // inline key's first bytes (zero-padded) or a boxed key's head.
        let head = unsafe { ptr::addr_of!(self.repr).cast::<[u8; 8]>().read() };
        u64::from_be_bytes(head)
    }
}

impl Deref for KeyBytes {
    type Target = [u8];

    #[expect(unsafe_code, reason = "reads the variant the length byte names")]
    fn deref(&self) -> &[u8] {
        match self.len_byte() {
            // SAFETY: an inline key's length byte is at most INLINE, and
            // its bytes are the `inline` variant's.
            len if len != BOXED => unsafe { &self.repr.inline.bytes[..len as usize] },
            // SAFETY: a boxed key holds the pointer and length of the box it
            // owns, alive until drop.
            _ => unsafe {
                let boxed = self.repr.boxed;
                std::slice::from_raw_parts(boxed.ptr.as_ptr(), boxed.len)
            },
        }
    }
}

impl Drop for KeyBytes {
    #[expect(unsafe_code, reason = "frees the box a boxed key owns")]
    fn drop(&mut self) {
        if self.is_boxed() {
            // SAFETY: the pointer and length came from `Box::into_raw` of a
            // boxed slice this key owns; it is freed once, here.
            unsafe {
                let boxed = self.repr.boxed;
                drop(Box::from_raw(ptr::slice_from_raw_parts_mut(boxed.ptr.as_ptr(), boxed.len)));
            }
        }
    }
}

impl Clone for KeyBytes {
    fn clone(&self) -> Self {
        Self::tagged(self, self.tag())
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
    use crate::btree::prefix_word;

    #[test]
    fn keys_read_back_inline_and_boxed_with_their_head_word_and_tag() {
        for len in [0, 1, 7, 8, 9, INLINE - 1, INLINE, INLINE + 1, 1000] {
            let key: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5a).collect();
            let bytes = KeyBytes::new(&key);
            assert_eq!(&*bytes, &key[..]);
            assert_eq!(bytes.head_word(), prefix_word(&key), "length {len}");
            let copy = bytes.clone();
            assert_eq!(copy, bytes);
            drop(bytes);
            assert_eq!(&*copy, &key[..], "a clone owns its own bytes");
            assert_eq!(copy.len_byte() == BOXED, len > INLINE);
            assert_eq!(copy.tag(), 0, "length {len}");
            let tagged = KeyBytes::tagged(&key, 0xbeef);
            assert_eq!((&*tagged, tagged.head_word(), tagged.tag()), (&key[..], prefix_word(&key), 0xbeef), "length {len}");
            assert_eq!(tagged.clone().tag(), 0xbeef, "a clone keeps the tag");
        }
    }



    #[test]
    fn every_length_around_inline_keeps_bytes_head_and_tag() {
        for len in 0..=70usize {
            for tag in [0u16, 1, 0x00ff, 0xff00, 0xffff] {
                let key: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(37) | 0x80).collect();
                let k = KeyBytes::tagged(&key, tag);
                assert_eq!((&*k, k.head_word(), k.tag()), (&key[..], prefix_word(&key), tag), "len {len} tag {tag:#x}");
                assert_eq!(k.len_byte() == BOXED, len > INLINE);
                let c = k.clone();
                drop(k);
                assert_eq!((&*c, c.head_word(), c.tag()), (&key[..], prefix_word(&key), tag), "clone len {len}");
                let zeros = vec![0u8; len];
                let z = KeyBytes::tagged(&zeros, tag);
                assert_eq!((&*z, z.tag()), (&zeros[..], tag));
            }
        }
    }
}
