//! Values as readers receive them, and overflow runs for values too large to
//! sit in a leaf.
//!
//! An overflow value occupies `ceil(len / page_size)` consecutive pages with
//! no page header; its xxh3-64 checksum lives in the leaf entry that points at
//! it, so the value is verified as a whole on every read.

use std::sync::Arc;

use xxhash_rust::xxh3::xxh3_64;

use super::node::{OverflowRef, ValueAt};
use crate::error::{Result, StorageError};
use crate::page::{Page, PageStore};

/// The largest value sluicedb stores: 128 MiB.
pub const MAX_VALUE_LEN: usize = 128 << 20;

/// A value read from a tree or a memtable: a copy held inline when it is
/// short, else a slice of a cached page (no copy), a slice of memory an
/// owner keeps alive (a memtable's arena, as a range reads it: no copy), or
/// an owned buffer (overflow values, and other long values found in
/// memory).
///
/// Short bytes are copied rather than shared: sharing a page costs an
/// atomic increment of its reference count when the bytes are handed out
/// and a decrement when they are dropped (the two were the hottest
/// instructions of a scan of 16-byte keys), an owned buffer an allocation
/// and a free, and a copy of up to 24 bytes a few word moves.
#[derive(Clone)]
pub struct ValueBytes {
    repr: Repr,
}

/// The longest bytes a [`ValueBytes`] holds inline: what fits in the space
/// the page variant takes anyway.
pub(crate) const INLINE_LEN: usize = 24;

/// Inline bytes, word-aligned: moved as whole words, as they were written
/// (in a first cut, unaligned inline bytes were loaded across the stores
/// that wrote them, which the processor cannot forward: full scans ran 25%
/// slower).
#[derive(Clone, Copy)]
#[repr(align(8))]
struct Inline([u8; INLINE_LEN]);

impl Inline {
    /// The first `len` bytes of `source`, which is shorter than the window.
    #[cold]
    #[inline(never)]
    fn short(source: &[u8], len: usize) -> Self {
        let mut inline = Inline([0; INLINE_LEN]);
        inline.0[..len].copy_from_slice(&source[..len]);
        inline
    }
}

#[derive(Clone)]
enum Repr {
    /// `len` bytes at the start of `bytes`; the rest of `bytes` is
    /// whatever followed them where they were copied from, never read.
    Inline { len: usize, bytes: Inline },
    /// Offsets in words (the variant is no bigger than `Inline` anyway):
    /// 32-bit halves were stored one by one and then loaded as one word
    /// by the moves of the value, which stalls the load.
    InPage { page: Page, start: usize, len: usize },
    Owned(Vec<u8>),
    /// `_owner` is held, never read: it keeps the bytes alive.
    Shared { _owner: Arc<dyn Send + Sync>, bytes: SharedSlice },
}

/// Bytes that a [`Repr::Shared`]'s owner keeps alive and unchanged (the
/// contract of [`ValueBytes::shared`]).
#[derive(Clone, Copy)]
struct SharedSlice {
    start: *const u8,
    len: usize,
}

// SAFETY: a `SharedSlice` only reads immutable bytes that its value's owner
// keeps alive; the owner is itself `Send + Sync`.
#[expect(unsafe_code, reason = "a handle to immutable bytes an owner keeps")]
unsafe impl Send for SharedSlice {}
// SAFETY: as for `Send`.
#[expect(unsafe_code, reason = "a handle to immutable bytes an owner keeps")]
unsafe impl Sync for SharedSlice {}

impl ValueBytes {
    /// `len` bytes of `page` from `start`: copied when short, else shared
    /// with the page (one reference more).
    #[inline]
    pub(crate) fn in_page(page: &Page, start: usize, len: usize) -> Self {
        if len <= INLINE_LEN {
            return Self::inline(&page[start..], len);
        }
        Self {
            repr: Repr::InPage {
                page: page.clone(),
                start,
                len,
            },
        }
    }

    /// Takes `bytes` as they are (no copy).
    pub(crate) fn owned(bytes: Vec<u8>) -> Self {
        Self {
            repr: Repr::Owned(bytes),
        }
    }

    /// `bytes` without a copy (a short one is still copied inline),
    /// holding an owner for as long as the value lives. The owner is asked
    /// for only when the bytes are too long to copy inline.
    ///
    /// # Safety
    /// `bytes` must stay valid and unchanged for as long as the owner
    /// lives (as a memtable's arena bytes do for as long as the memtable).
    #[expect(unsafe_code, reason = "the caller vouches for the bytes' lifetime")]
    pub(crate) unsafe fn shared(owner: impl FnOnce() -> Arc<dyn Send + Sync>, bytes: &[u8]) -> Self {
        if bytes.len() <= INLINE_LEN {
            return Self::inline(bytes, bytes.len());
        }
        Self {
            repr: Repr::Shared {
                _owner: owner(),
                bytes: SharedSlice {
                    start: bytes.as_ptr(),
                    len: bytes.len(),
                },
            },
        }
    }

    /// A copy of `bytes`: inline when short, else in a buffer of its own.
    pub(crate) fn copy_of(bytes: &[u8]) -> Self {
        if bytes.len() <= INLINE_LEN {
            Self::inline(bytes, bytes.len())
        } else {
            Self::owned(bytes.to_vec())
        }
    }

    /// The first `len` (at most [`INLINE_LEN`]) bytes of `source`, inline.
    /// When `source` runs on for a whole window, the window is copied: a
    /// fixed-size copy is a few word moves, where a copy of `len` bytes
    /// calls `memcpy`.
    #[inline]
    fn inline(source: &[u8], len: usize) -> Self {
        // The short copy is a call of its own: inline here, the compiler
        // shares one `memcpy` call between the two arms, which stores the
        // window as two overlapping 16-byte halves that the next move of
        // the value cannot load from until they reach the cache (a scan
        // stalled on that load for a sixth of its time).
        let inline = match source.first_chunk::<INLINE_LEN>() {
            Some(window) => Inline(*window),
            None => Inline::short(source, len),
        };
        Self {
            repr: Repr::Inline { len, bytes: inline },
        }
    }

    /// The value's bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.repr {
            Repr::Inline { len, bytes } => &bytes.0[..*len],
            Repr::InPage { page, start, len } => &page[*start..*start + *len],
            Repr::Owned(bytes) => bytes,
            #[expect(unsafe_code, reason = "bytes an owner keeps alive")]
            // SAFETY: `shared`'s caller vouched that the bytes stay valid
            // and unchanged while `owner`, held here, lives.
            Repr::Shared { bytes, .. } => unsafe { std::slice::from_raw_parts(bytes.start, bytes.len) },
        }
    }

    /// Makes this hold `other`'s bytes, for a holder of the last of a
    /// stream of keys: a short key is copied inline, a longer one into a
    /// buffer made once and reused for every later key (no allocation, and
    /// no reference count on a shared page, per key).
    pub(crate) fn assign(&mut self, other: &ValueBytes) {
        match (&mut self.repr, &other.repr) {
            (Repr::Owned(buffer), _) => {
                buffer.clear();
                buffer.extend_from_slice(other);
            }
            (_, Repr::Inline { .. }) => *self = other.clone(),
            _ => *self = Self::owned(other.to_vec()),
        }
    }

    /// The value's bytes, owned.
    pub fn into_vec(self) -> Vec<u8> {
        match self.repr {
            Repr::Owned(bytes) => bytes,
            Repr::Inline { .. } | Repr::InPage { .. } | Repr::Shared { .. } => self.as_bytes().to_vec(),
        }
    }
}

impl std::ops::Deref for ValueBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl std::fmt::Debug for ValueBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ValueBytes").field(&self.as_bytes()).finish()
    }
}

impl PartialEq for ValueBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

/// A leaf entry's value, at `at` in `page`.
#[inline]
pub(crate) fn load(store: &PageStore, page: &Page, at: ValueAt) -> Result<ValueBytes> {
    match at {
        ValueAt::Overflow(r) => read_overflow(store, &r).map(ValueBytes::owned),
        ValueAt::Inline(range) => Ok(ValueBytes::in_page(page, range.start, range.len())),
    }
}

pub(crate) fn read_overflow(store: &PageStore, r: &OverflowRef) -> Result<Vec<u8>> {
    let len = usize::try_from(r.len)
        .ok()
        .filter(|&len| len <= MAX_VALUE_LEN)
        .ok_or_else(|| StorageError::corrupted(format!("overflow value of {} bytes", r.len)))?;
    let bytes = store.read_run(r.start, len)?;
    if xxh3_64(&bytes) != r.checksum {
        return Err(StorageError::corrupted(format!(
            "overflow value at page {} checksum mismatch",
            r.start
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_bytes_are_copied_and_long_ones_share_the_page() {
        let page: Page = (0..=255u8).collect::<Vec<_>>().into();
        // A short slice is a copy: the page's count does not move.
        let short = ValueBytes::in_page(&page, 10, INLINE_LEN);
        assert_eq!(short.as_bytes(), &page[10..10 + INLINE_LEN]);
        assert_eq!(page.holders(), 1);
        // At the page's end there is no whole window to copy from.
        let tail = ValueBytes::in_page(&page, 250, 6);
        assert_eq!(tail.as_bytes(), &page[250..]);
        let long = ValueBytes::in_page(&page, 3, INLINE_LEN + 1);
        assert_eq!(long.as_bytes(), &page[3..4 + INLINE_LEN]);
        assert_eq!(page.holders(), 2);
        drop(long);
        assert_eq!(page.holders(), 1);
        assert_eq!(ValueBytes::copy_of(b"").as_bytes(), b"");
        assert_eq!(ValueBytes::copy_of(&page[..100]).into_vec(), &page[..100]);
        assert_eq!(short.into_vec(), &page[10..10 + INLINE_LEN]);
    }

    #[test]
    fn assign_holds_each_key_whatever_its_kind_and_keeps_its_buffer() {
        let page: Page = (0..=255u8).collect::<Vec<_>>().into();
        let short = ValueBytes::in_page(&page, 10, 16);
        let in_page = ValueBytes::in_page(&page, 40, 100);
        let owned = ValueBytes::copy_of(&[7; 60]);
        let mut last = ValueBytes::copy_of(&[]);
        last.assign(&short);
        assert_eq!(last.as_bytes(), &page[10..26]);
        last.assign(&in_page);
        assert_eq!(last.as_bytes(), &page[40..140]);
        assert_eq!(page.holders(), 2, "a long key is copied, not shared");
        let buffer = last.as_bytes().as_ptr();
        for key in [&owned, &short, &in_page] {
            last.assign(key);
            assert_eq!(last.as_bytes(), key.as_bytes());
            assert_eq!(last.as_bytes().as_ptr(), buffer, "the buffer is reused");
        }
    }

    #[test]
    fn shared_bytes_keep_their_owner_alive_and_short_ones_are_copied() {
        let owner: Arc<Vec<u8>> = Arc::new((0..200u8).collect());
        let as_owner = || owner.clone() as Arc<dyn Send + Sync>;
        // SAFETY: the bytes are the owner's, never changed.
        #[expect(unsafe_code, reason = "the test's owner holds the bytes")]
        let (long, short) = unsafe { (ValueBytes::shared(as_owner, &owner[10..110]), ValueBytes::shared(as_owner, &owner[..5])) };
        assert_eq!(Arc::strong_count(&owner), 2, "only the long bytes hold the owner");
        let copy = long.clone();
        assert_eq!(Arc::strong_count(&owner), 3);
        assert_eq!(long.as_bytes(), &owner[10..110]);
        assert_eq!(short.as_bytes(), &owner[..5]);
        drop((long, short));
        assert_eq!(copy.into_vec(), &owner[10..110]);
        assert_eq!(Arc::strong_count(&owner), 1);
    }

    #[test]
    fn a_value_is_five_words() {
        // Scans move every key and value through several layers: the
        // inline variant must not make them bigger than the page variant.
        assert_eq!(size_of::<ValueBytes>(), 40);
        assert_eq!(size_of::<Option<ValueBytes>>(), 40);
    }
}
