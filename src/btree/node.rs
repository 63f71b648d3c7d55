//! Leaf and branch node layouts, zero-copy views over them, and the packer
//! that lays sorted entries out over as few pages as possible.
//!
//! ```text
//! node page (after the common 24-byte page header, whose byte 9 holds the
//! node's level: 0 for a leaf, parent = child + 1; count = entries)
//! offset        size  field
//!     24   2*count    entry offsets from the page start, u16 each, in key order
//!      -           -  entries, packed after the offsets
//!
//! leaf entry
//!      0     2  key length k
//!      2     2  value word: bit 15 set = overflow; else the inline value length v
//!      4     k  key
//!    4+k     v  inline value, or a 24-byte overflow reference:
//!               first page u64, length u64, xxh3-64 of the value u64
//!
//! branch entry
//!      0     8  child page
//!      8     2  key length k
//!     10     k  key: a lower bound of every key under the child, and greater
//!               than every key under the previous child
//!
//! fixed-width leaf: every key k bytes, every value inline and v bytes
//! (page header bytes 14..16 hold k + 1; 0 in every other node)
//!     24     2  value length v
//!     26  count*k  the keys, in key order
//!      -  count*v  the values, in the keys' order
//! ```
//!
//! A leaf is written fixed-width whenever its entries allow (fixed-size
//! keys and values, as integer keys and fixed records make): entry `i` is
//! found by arithmetic, and the six bytes of offset and lengths each entry
//! of a slotted leaf carries are not stored (a leaf of 16-byte keys and
//! 100-byte values holds 35 entries instead of 33). Its keys lie together,
//! before the values: a search reads the lines of the keys alone (ten of a
//! page's 64 for 35 16-byte keys), and so does a range that does not read
//! its values.
//!
//! Search in a branch takes the last entry whose key is at most the target
//! (the first entry when the target is below all keys). Nodes are never
//! modified in place: a change rewrites the node to a new page.

use crate::error::StorageError;
use crate::page::{MAX_NODE_BYTES, Page, PageId, PageKind};

use super::cmp::{Comparator, byte_order, is_bytewise, prefix_word};

pub(crate) const NODE_HEADER_LEN: usize = crate::page::PAGE_HEADER_LEN;
/// The page header's byte 9: the node's height above the leaves.
const LEVEL_OFFSET: usize = 9;
const OFFSET_LEN: usize = size_of::<u16>();
/// Two bytes of key length and two of value word: an inline value is at
/// most [`MAX_INLINE_VALUE`] bytes, so its length needs no more (a four-byte
/// word made a leaf of 16-byte keys and 100-byte values hold 32 entries, not
/// 33: 3% of the tree, in the cache and on disk).
const LEAF_ENTRY_HEADER: usize = size_of::<u16>() + size_of::<u16>();
const BRANCH_ENTRY_HEADER: usize = size_of::<u64>() + size_of::<u16>();
pub(crate) const OVERFLOW_REF_LEN: usize = 3 * size_of::<u64>();
const OVERFLOW_FLAG: usize = 1 << 15;
/// The bytes at a node page's start that a search asks for before it can
/// read the header ([`Node::prefetch_rest`] asks for the rest it reads):
/// the header and, in a fixed-width leaf of short keys, most of the keys.
pub(crate) const SEARCH_HEAD: usize = 512;

/// The page header's bytes 14..16: a fixed-width leaf's key length plus
/// one; 0 in a slotted leaf and in a branch.
const FIXED_KEY_OFFSET: usize = 14;
/// Where a fixed-width leaf keeps its value length (u16), and where its
/// entries start.
const FIXED_VALUE_OFFSET: usize = NODE_HEADER_LEN;
const FIXED_ENTRIES: usize = FIXED_VALUE_OFFSET + size_of::<u16>();

/// The largest key, 20 KiB. A node whose entries do not fit one page spans
/// a run of pages (`page::store`, "Nodes longer than a page"), up to
/// `MAX_NODE_BYTES` (64 KiB): three branch entries of keys this long fit
/// that, so the packer can always give a branch node at least two entries
/// (every level of the tree then has at most half the nodes of the level
/// below; see `pack`), and a leaf entry of one with the largest inline
/// value fits it alone.
pub const MAX_KEY_LEN: usize = 20 << 10;
/// Values longer than this are stored in an overflow run of pages.
pub(crate) const MAX_INLINE_VALUE: usize = 1024;

const _: () = assert!(3 * branch_entry_len(MAX_KEY_LEN) <= MAX_NODE_BYTES - NODE_HEADER_LEN);
const _: () = assert!(leaf_entry_len(MAX_KEY_LEN, MAX_INLINE_VALUE) <= MAX_NODE_BYTES - NODE_HEADER_LEN);
const _: () = assert!(MAX_INLINE_VALUE < OVERFLOW_FLAG, "an inline length never reaches the overflow bit");

/// Bytes a leaf entry takes in its node, its offset slot included, when its
/// value takes `value_field` bytes there (see [`value_field_len`]).
pub(crate) const fn leaf_entry_len(key_len: usize, value_field: usize) -> usize {
    OFFSET_LEN + LEAF_ENTRY_HEADER + key_len + value_field
}

/// Bytes a `len`-byte value takes in its leaf: itself, or the reference to
/// its overflow pages when it is longer than [`MAX_INLINE_VALUE`].
pub(crate) const fn value_field_len(len: usize) -> usize {
    if len > MAX_INLINE_VALUE { OVERFLOW_REF_LEN } else { len }
}

/// Bytes of the shortest separator between two neighbouring keys of a
/// byte-ordered tree (`last < next`): `next` up to and including the first
/// byte where the two differ, which sorts above `last` and at or below
/// `next` (a branch key's bounds, above).
pub(crate) fn separator_len(last: &[u8], next: &[u8]) -> usize {
    let shared = last.iter().zip(next).take_while(|(a, b)| a == b).count();
    (shared + 1).min(next.len())
}

/// Bytes a branch entry with a `key_len`-byte separator takes in its node,
/// its offset slot included.
pub(crate) const fn branch_entry_len(key_len: usize) -> usize {
    OFFSET_LEN + BRANCH_ENTRY_HEADER + key_len
}

/// Where a leaf entry's value is: a byte range of its page, or an overflow
/// run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ValueAt {
    Inline(std::ops::Range<usize>),
    Overflow(OverflowRef),
}

/// Where a leaf entry's value lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LeafValue<'a> {
    Inline(&'a [u8]),
    Overflow(OverflowRef),
}

/// A value stored outside the leaf, in `pages` consecutive pages from `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OverflowRef {
    pub(crate) start: PageId,
    pub(crate) len: u64,
    pub(crate) checksum: u64,
}

impl OverflowRef {
    pub(crate) fn pages(&self, page_size: usize) -> u64 {
        self.len.div_ceil(page_size as u64)
    }
}

/// A read-only view of a verified leaf or branch page.
#[derive(Clone, Copy)]
pub(crate) struct Node<'a> {
    page: &'a [u8],
    /// A fixed-width leaf's layout (see the module's); `None` for a
    /// slotted node.
    fixed: Option<Fixed>,
}

/// Where a fixed-width leaf's keys and values lie: key `i` at
/// `FIXED_ENTRIES + i * key`, value `i` at `values + i * value`.
#[derive(Clone, Copy)]
struct Fixed {
    key: u16,
    value: u16,
    /// Where the values start: past the `count` keys.
    values: u32,
}

impl Fixed {
    /// The layout of `count` entries of `key`- and `value`-byte lengths:
    /// the keys from [`FIXED_ENTRIES`], then the values.
    #[inline]
    fn new(key: u16, value: u16, count: usize) -> Self {
        Self {
            key,
            value,
            values: (FIXED_ENTRIES + count * key as usize) as u32,
        }
    }

    #[inline]
    fn key_at(self, i: usize) -> usize {
        FIXED_ENTRIES + i * self.key as usize
    }

    #[inline]
    fn value_at(self, i: usize) -> usize {
        self.values as usize + i * self.value as usize
    }

    /// The bytes `count` entries take after the header.
    fn entries_end(self, count: usize) -> usize {
        FIXED_ENTRIES + count * (self.key as usize + self.value as usize)
    }
}

#[inline]
fn u16_at(b: &[u8], at: usize) -> usize {
    // One bounds check for both bytes.
    match b.get(at..at + 2) {
        Some(&[lo, hi]) => u16::from_le_bytes([lo, hi]) as usize,
        _ => past_the_page(at, b.len()),
    }
}

/// A read past a verified page: a bug, not bad input.
#[cold]
#[inline(never)]
fn past_the_page(at: usize, len: usize) -> ! {
    panic!("u16 at {at} past a page of {len} bytes")
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

impl<'a> Node<'a> {
    /// REQUIRES: `page` passed [`validate`] (the page store runs it on load).
    #[inline]
    pub(crate) fn new(page: &'a [u8]) -> Self {
        let fixed = match u16_at(page, FIXED_KEY_OFFSET) {
            0 => None,
            key => Some(Fixed::new(
                key as u16 - 1,
                u16_at(page, FIXED_VALUE_OFFSET) as u16,
                crate::page::page_count_field(page),
            )),
        };
        Self { page, fixed }
    }

    /// Whether this is a fixed-width leaf (see the module's layout).
    pub(crate) fn is_fixed_width(&self) -> bool {
        self.fixed.is_some()
    }

    #[inline]
    pub(crate) fn is_leaf(&self) -> bool {
        crate::page::page_kind(self.page) == PageKind::Leaf
    }

    /// Height above the leaves: 0 for a leaf, 1 for a branch over leaves.
    pub(crate) fn level(&self) -> u8 {
        self.page[LEVEL_OFFSET]
    }

    #[inline]
    pub(crate) fn count(&self) -> usize {
        crate::page::page_count_field(self.page)
    }

    /// Pages the node occupies: one, but for a node of keys too long for
    /// one page.
    pub(crate) fn span(&self) -> u64 {
        crate::page::page_span(self.page) as u64
    }

    fn entry(&self, i: usize) -> usize {
        u16_at(self.page, NODE_HEADER_LEN + i * OFFSET_LEN)
    }

    /// Asks the CPU to load every cache line of the page at once, before
    /// its search (for a page from the page cache, `PageStore::
    /// read_page_prefetched` does this before it takes the page's
    /// reference count; this serves pinned pages): a binary
    /// search of a cold page misses the cache at every probe, one after
    /// the other, where these loads overlap (and the entries a scan steps
    /// through next arrive with them). Measured at 1M keys, flushed:
    /// random point reads 0.83-0.90M/s -> 1.12-1.31M/s, seek + 10 next
    /// 330-340K/s -> 405-445K/s. Prefetching only each probe's two
    /// possible successors, one step ahead, measured nothing: every probe
    /// still waited for its own miss.
    #[inline]
    pub(crate) fn prefetch(&self) {
        crate::prefetch::prefetch_bytes(self.page);
    }

    /// The lines a search reads past the page's first [`SEARCH_HEAD`]
    /// bytes (which `PageStore::read_page_prefetched` asked for before the
    /// header could be read): a fixed-width leaf's keys, any other node's
    /// whole page. A fixed-width leaf's values are left alone: a search
    /// does not read them, and asking for every line of the page queued
    /// the keys' loads behind the values' (the CPU has room for about ten
    /// misses in flight; a page is 64 lines).
    #[inline]
    pub(crate) fn prefetch_rest(&self) {
        let end = match self.fixed {
            Some(fixed) => fixed.values as usize,
            None => self.page.len(),
        };
        if let Some(rest) = self.page.get(SEARCH_HEAD..end) {
            crate::prefetch::prefetch_bytes(rest);
        }
    }

    #[inline]
    pub(crate) fn key(&self, i: usize) -> &'a [u8] {
        &self.page[self.key_range(i)]
    }

    /// Where entry `i`'s key lies in the page.
    #[inline]
    pub(crate) fn key_range(&self, i: usize) -> std::ops::Range<usize> {
        if let Some(fixed) = self.fixed {
            let at = fixed.key_at(i);
            return at..at + fixed.key as usize;
        }
        let at = self.entry(i);
        if self.is_leaf() {
            let k = u16_at(self.page, at);
            at + LEAF_ENTRY_HEADER..at + LEAF_ENTRY_HEADER + k
        } else {
            let k = u16_at(self.page, at + 8);
            at + BRANCH_ENTRY_HEADER..at + BRANCH_ENTRY_HEADER + k
        }
    }

    /// Leaf only.
    pub(crate) fn value(&self, i: usize) -> LeafValue<'a> {
        if let Some(fixed) = self.fixed {
            let at = fixed.value_at(i);
            return LeafValue::Inline(&self.page[at..at + fixed.value as usize]);
        }
        let at = self.entry(i);
        let k = u16_at(self.page, at);
        let word = u16_at(self.page, at + 2);
        let body = at + LEAF_ENTRY_HEADER + k;
        if word & OVERFLOW_FLAG != 0 {
            LeafValue::Overflow(OverflowRef {
                start: u64_at(self.page, body),
                len: u64_at(self.page, body + 8),
                checksum: u64_at(self.page, body + 16),
            })
        } else {
            LeafValue::Inline(&self.page[body..body + word])
        }
    }

    /// Leaf only: where entry `i`'s key lies in the page and where its
    /// value does, decoded from the entry's header once (a scan reads both
    /// for every entry).
    #[inline]
    pub(crate) fn leaf_entry(&self, i: usize) -> (std::ops::Range<usize>, ValueAt) {
        if let Some(fixed) = self.fixed {
            let (key, value) = (fixed.key_at(i), fixed.value_at(i));
            return (key..key + fixed.key as usize, ValueAt::Inline(value..value + fixed.value as usize));
        }
        let at = self.entry(i);
        let k = u16_at(self.page, at);
        let word = u16_at(self.page, at + 2);
        let body = at + LEAF_ENTRY_HEADER + k;
        let value = if word & OVERFLOW_FLAG != 0 {
            ValueAt::Overflow(OverflowRef {
                start: u64_at(self.page, body),
                len: u64_at(self.page, body + 8),
                checksum: u64_at(self.page, body + 16),
            })
        } else {
            ValueAt::Inline(body..body + word)
        };
        (at + LEAF_ENTRY_HEADER..body, value)
    }

    /// Branch only.
    pub(crate) fn child(&self, i: usize) -> PageId {
        u64_at(self.page, self.entry(i))
    }

    /// The first index whose key is not less than `key` (`Ok` if equal).
    pub(crate) fn search(&self, key: &[u8], cmp: Comparator) -> Result<usize, usize> {
        // Where a key's length and bytes sit in an entry, decided once for
        // the node rather than per probe (as `key_range` does).
        let (len_at, header) = self.probe_layout();
        // Byte order is compared inline rather than through the pointer,
        // on each probe's first eight bytes as one word first (read from
        // the page whole and masked to the key's length: branch keys are
        // separators of a few bytes), the key's own word computed once.
        let key_word = is_bytewise(cmp).then(|| prefix_word(key));
        let (mut lo, mut hi) = (0, self.count());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let (start, len) = self.probe_key(mid, len_at, header);
            let order = match key_word {
                Some(key_word) => self.probe_order(start, len, key, key_word),
                None => cmp(&self.page[start..start + len], key),
            };
            match order {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// Where an entry keeps its key's length and where its key starts,
    /// from the entry's offset (a leaf's entries and a branch's differ).
    #[inline]
    fn probe_layout(&self) -> (usize, usize) {
        if self.is_leaf() {
            (0, LEAF_ENTRY_HEADER)
        } else {
            (8, BRANCH_ENTRY_HEADER)
        }
    }

    /// Where a search's probe of entry `mid` finds its key: start and
    /// length (`len_at` and `header` from [`probe_layout`](Self::probe_layout)).
    #[inline]
    fn probe_key(&self, mid: usize, len_at: usize, header: usize) -> (usize, usize) {
        match self.fixed {
            Some(fixed) => (fixed.key_at(mid), fixed.key as usize),
            None => {
                let at = self.entry(mid);
                (at + header, u16_at(self.page, at + len_at))
            }
        }
    }

    /// The byte order of the `len` bytes at `start` against `key`, whose
    /// [`prefix_word`] is `key_word`: on the words first.
    #[inline]
    fn probe_order(&self, start: usize, len: usize, key: &[u8], key_word: u64) -> std::cmp::Ordering {
        match self.word_at(start, len).cmp(&key_word) {
            std::cmp::Ordering::Equal => byte_order(&self.page[start..start + len], key),
            unequal => unequal,
        }
    }

    /// Asks for the line a search's probe of entry `mid` reads first (its
    /// offset, or a fixed-width entry's key).
    #[inline]
    fn prefetch_probe(&self, mid: usize) {
        let at = match self.fixed {
            Some(fixed) => fixed.key_at(mid),
            None => NODE_HEADER_LEN + mid * OFFSET_LEN,
        };
        crate::prefetch::prefetch(self.page.as_ptr().wrapping_add(at));
    }

    /// [`prefix_word`] of the `len` bytes at `start`: the eight bytes there
    /// read whole and masked to `len` when the page holds eight.
    #[inline]
    fn word_at(&self, start: usize, len: usize) -> u64 {
        match self.page.get(start..start + 8) {
            Some(&[a, b, c, d, e, f, g, h]) => {
                let word = u64::from_be_bytes([a, b, c, d, e, f, g, h]);
                if len >= 8 { word } else { word & !(u64::MAX >> (8 * len)) }
            }
            _ => prefix_word(&self.page[start..start + len]),
        }
    }

    /// The child of a branch to descend into for `key`.
    pub(crate) fn child_index(&self, key: &[u8], cmp: Comparator) -> usize {
        match self.search(key, cmp) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
    }
}

/// The most nodes [`search_each`] searches at once.
pub(crate) const SEARCH_GROUP: usize = 16;

/// [`Node::search`] of each node for its key, in byte order, the searches
/// run together: each round takes one step of every search still going and
/// asks for the line that search reads next, so the nodes' cache misses
/// overlap instead of following one another (lookups of many keys at once,
/// none of their pages cached: `cursor::count_found`). `found(i, result)`
/// hears each node's result. REQUIRES: at most [`SEARCH_GROUP`] nodes.
pub(crate) fn search_each(nodes: &[(Node<'_>, &[u8])], mut found: impl FnMut(usize, Result<usize, usize>)) {
    /// One node's search: its key's word, its entries' layout
    /// ([`Node::probe_layout`]) and the bounds still open; `lo` is
    /// `usize::MAX` once the result is reported.
    #[derive(Clone, Copy, Default)]
    struct Search {
        key_word: u64,
        len_at: usize,
        header: usize,
        lo: usize,
        hi: usize,
    }
    assert!(nodes.len() <= SEARCH_GROUP, "{} nodes at once", nodes.len());
    let mut searches = [Search::default(); SEARCH_GROUP];
    for ((node, key), search) in nodes.iter().zip(&mut searches) {
        let (len_at, header) = node.probe_layout();
        *search = Search {
            key_word: prefix_word(key),
            len_at,
            header,
            lo: 0,
            hi: node.count(),
        };
        node.prefetch_probe(node.count() / 2);
    }
    let mut going = nodes.len();
    while going > 0 {
        for (i, ((node, key), search)) in nodes.iter().zip(&mut searches).enumerate() {
            if search.lo == usize::MAX {
                continue;
            }
            if search.lo < search.hi {
                let mid = (search.lo + search.hi) / 2;
                let (start, len) = node.probe_key(mid, search.len_at, search.header);
                match node.probe_order(start, len, key, search.key_word) {
                    std::cmp::Ordering::Less => search.lo = mid + 1,
                    std::cmp::Ordering::Greater => search.hi = mid,
                    std::cmp::Ordering::Equal => {
                        found(i, Ok(mid));
                        (search.lo, going) = (usize::MAX, going - 1);
                        continue;
                    }
                }
                if search.lo < search.hi {
                    node.prefetch_probe((search.lo + search.hi) / 2);
                    continue;
                }
            }
            found(i, Err(search.lo));
            (search.lo, going) = (usize::MAX, going - 1);
        }
    }
}

/// Checks that a node page's offsets and lengths stay inside the page, so the
/// accessors above cannot index out of bounds even on a crafted file whose
/// checksums pass. Runs once per page load.
pub(crate) fn validate(page: &[u8]) -> Result<(), String> {
    let kind = crate::page::page_kind(page);
    if kind == PageKind::FreeList {
        return Ok(());
    }
    let node = Node::new(page);
    let n = node.count();
    if n == 0 {
        return Err("empty node".into());
    }
    if (kind == PageKind::Leaf) != (node.level() == 0) {
        return Err(format!("{kind:?} node at level {}", node.level()));
    }
    if let Some(fixed) = node.fixed {
        if kind != PageKind::Leaf {
            return Err(format!("a {kind:?} node laid out as a fixed-width leaf"));
        }
        if fixed.value as usize > MAX_INLINE_VALUE {
            return Err(format!(
                "fixed-width leaf of {}-byte values, longer than a leaf holds",
                fixed.value
            ));
        }
        if fixed.entries_end(n) > page.len() {
            return Err(format!("{n} fixed-width entries run past the page end"));
        }
        return Ok(());
    }
    let data_start = NODE_HEADER_LEN + n * OFFSET_LEN;
    if data_start > page.len() {
        return Err(format!("{n} entries do not fit a page"));
    }
    for i in 0..n {
        let at = node.entry(i);
        let header = if kind == PageKind::Leaf {
            LEAF_ENTRY_HEADER
        } else {
            BRANCH_ENTRY_HEADER
        };
        if at < data_start || at + header > page.len() {
            return Err(format!("entry {i} offset {at} out of bounds"));
        }
        let end = if kind == PageKind::Leaf {
            let k = u16_at(page, at);
            let word = u16_at(page, at + 2);
            let v = if word & OVERFLOW_FLAG != 0 { OVERFLOW_REF_LEN } else { word };
            let end = at + header + k + v;
            if word & OVERFLOW_FLAG != 0 && end <= page.len() {
                check_overflow_ref(node, i, page.len() / crate::page::page_span(page))?;
            }
            end
        } else {
            at + header + u16_at(page, at + 8)
        };
        if end > page.len() {
            return Err(format!("entry {i} runs past the page end"));
        }
    }
    Ok(())
}

/// An overflow reference read from disk names a run that could exist: not
/// page 0, a length no larger than the largest value, and a last page whose
/// id and byte offset fit a `u64`, so no arithmetic on it can overflow.
fn check_overflow_ref(node: Node<'_>, i: usize, page_size: usize) -> Result<(), String> {
    let LeafValue::Overflow(r) = node.value(i) else {
        return Ok(());
    };
    let fits = r.start != 0
        && r.len > 0
        && r.len <= super::value::MAX_VALUE_LEN as u64
        && r.start
            .checked_add(r.pages(page_size))
            .and_then(|end| end.checked_mul(page_size as u64))
            .is_some();
    if fits {
        Ok(())
    } else {
        Err(format!(
            "entry {i}: impossible overflow run of {} bytes at page {}",
            r.len, r.start
        ))
    }
}

/// An entry about to be written into a node.
pub(crate) trait Entry {
    /// The fewest entries a node of these holds (when there are that
    /// many): a branch needs two, or a level of them could have as many
    /// nodes as the level below and a tree would never stop growing.
    const MIN_PER_NODE: usize;
    fn key(&self) -> &[u8];
    /// Bytes the entry takes in a slotted node, its offset slot included.
    fn encoded_len(&self) -> usize;
    fn encode(&self, out: &mut [u8]);
    /// The value, if the entry may share a fixed-width leaf with others of
    /// its key and value lengths (a leaf entry whose value is inline).
    fn inline_value(&self) -> Option<&[u8]> {
        None
    }
}

/// A leaf entry borrowed from an old page or from the batch being applied.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LeafEntry<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) value: LeafValue<'a>,
}

impl Entry for LeafEntry<'_> {
    const MIN_PER_NODE: usize = 1;

    fn key(&self) -> &[u8] {
        self.key
    }

    fn inline_value(&self) -> Option<&[u8]> {
        match self.value {
            LeafValue::Inline(v) => Some(v),
            LeafValue::Overflow(_) => None,
        }
    }

    fn encoded_len(&self) -> usize {
        let v = match self.value {
            LeafValue::Inline(v) => v.len(),
            LeafValue::Overflow(_) => OVERFLOW_REF_LEN,
        };
        leaf_entry_len(self.key.len(), v)
    }

    fn encode(&self, out: &mut [u8]) {
        let k = self.key.len();
        out[..2].copy_from_slice(&(k as u16).to_le_bytes());
        out[LEAF_ENTRY_HEADER..LEAF_ENTRY_HEADER + k].copy_from_slice(self.key);
        let (head, body) = out.split_at_mut(LEAF_ENTRY_HEADER + k);
        match self.value {
            LeafValue::Inline(v) => {
                debug_assert!(v.len() <= MAX_INLINE_VALUE);
                head[2..4].copy_from_slice(&(v.len() as u16).to_le_bytes());
                body[..v.len()].copy_from_slice(v);
            }
            LeafValue::Overflow(r) => {
                head[2..4].copy_from_slice(&(OVERFLOW_FLAG as u16).to_le_bytes());
                body[..8].copy_from_slice(&r.start.to_le_bytes());
                body[8..16].copy_from_slice(&r.len.to_le_bytes());
                body[16..24].copy_from_slice(&r.checksum.to_le_bytes());
            }
        }
    }
}

/// A branch entry; keys are owned because they come from rewritten children.
#[derive(Clone, Debug)]
pub(crate) struct BranchEntry {
    pub(crate) key: Vec<u8>,
    pub(crate) child: PageId,
    /// Bytes the child uses if it was just written, `None` if unknown or if
    /// it must not be merged again.
    pub(crate) fill: Option<usize>,
}

impl Entry for BranchEntry {
    const MIN_PER_NODE: usize = 2;

    fn key(&self) -> &[u8] {
        &self.key
    }

    fn encoded_len(&self) -> usize {
        branch_entry_len(self.key.len())
    }

    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.child.to_le_bytes());
        out[8..10].copy_from_slice(&(self.key.len() as u16).to_le_bytes());
        out[BRANCH_ENTRY_HEADER..BRANCH_ENTRY_HEADER + self.key.len()].copy_from_slice(&self.key);
    }
}

/// Splits `entries` into consecutive groups that each fit a page, using as
/// few pages as possible and spreading the bytes evenly, so a rewrite never
/// leaves a nearly empty last node.
///
/// The fewest pages come from filling each page as far as it goes (for a
/// sequence cut into consecutive groups, no cut does better); the bytes
/// are then spread by cutting again at an even share of them per page. The
/// page count cannot be estimated from the bytes alone: entries do not
/// split, so 100 entries of 122 bytes need four 4 KiB pages although their
/// bytes would fill three, and an estimate of three made the last page
/// hold one entry.
///
/// Entries too long to share a page (keys longer than about a third of
/// one) make groups that do not fit a page; [`encode`] lays such a group
/// over a run of pages. A leaf group is then that entry alone; a branch
/// group has at least two entries ([`Entry::MIN_PER_NODE`]) and at most
/// three when it is longer than a page, which [`MAX_KEY_LEN`] keeps within
/// [`MAX_NODE_BYTES`].
pub(crate) fn pack<E: Entry>(entries: &[E], page_size: usize) -> Vec<std::ops::Range<usize>> {
    let capacity = page_size - NODE_HEADER_LEN;
    let fewest = cut(entries, capacity, capacity);
    if fewest.len() <= 1 {
        return fewest;
    }
    let total: usize = fewest.iter().map(|g| Fill::of(&entries[g.clone()]).bytes()).sum();
    let even = cut(entries, capacity, total.div_ceil(fewest.len()));
    // An even share can cost a page where entries of very different sizes
    // meet a cut badly; the fewest pages then win.
    if even.len() <= fewest.len() { even } else { fewest }
}

/// The bytes of a node's entries (the page header aside), taken in one at
/// a time: fixed-width while every entry is a leaf entry with an inline
/// value of the first one's key and value lengths, slotted from the first
/// that is not.
#[derive(Clone, Copy)]
struct Fill {
    count: usize,
    /// The bytes as a slotted node.
    slotted: usize,
    /// The key and value lengths every entry so far shares.
    shape: Shape,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Empty,
    Fixed(usize, usize),
    Mixed,
}

impl Fill {
    const EMPTY: Self = Self {
        count: 0,
        slotted: 0,
        shape: Shape::Empty,
    };

    fn of<E: Entry>(entries: &[E]) -> Self {
        entries.iter().fold(Self::EMPTY, Self::with)
    }

    fn with<E: Entry>(self, e: &E) -> Self {
        let own = match e.inline_value() {
            Some(v) => Shape::Fixed(e.key().len(), v.len()),
            None => Shape::Mixed,
        };
        Self {
            count: self.count + 1,
            slotted: self.slotted + e.encoded_len(),
            shape: match self.shape {
                Shape::Empty => own,
                same if same == own => same,
                _ => Shape::Mixed,
            },
        }
    }

    fn bytes(&self) -> usize {
        match self.shape {
            Shape::Fixed(key, value) => FIXED_ENTRIES - NODE_HEADER_LEN + self.count * (key + value),
            Shape::Empty | Shape::Mixed => self.slotted,
        }
    }
}

/// Cuts `entries` into consecutive groups of at most `capacity` bytes, each
/// closed once it holds `target` bytes; a group holds at least
/// `E::MIN_PER_NODE` entries whatever their bytes, and a short last group
/// takes entries from the one before it (or joins it).
fn cut<E: Entry>(entries: &[E], capacity: usize, target: usize) -> Vec<std::ops::Range<usize>> {
    let mut groups: Vec<std::ops::Range<usize>> = Vec::new();
    let mut start = 0;
    let mut fill = Fill::EMPTY;
    for (i, e) in entries.iter().enumerate() {
        let mut next = fill.with(e);
        if i - start >= E::MIN_PER_NODE && (next.bytes() > capacity || fill.bytes() >= target) {
            groups.push(start..i);
            start = i;
            next = Fill::EMPTY.with(e);
        }
        fill = next;
    }
    if start < entries.len() {
        groups.push(start..entries.len());
    }
    if let [.., before, last] = &mut groups[..]
        && last.len() < E::MIN_PER_NODE
    {
        let short = E::MIN_PER_NODE - last.len();
        if before.len() >= E::MIN_PER_NODE + short {
            // The group before has entries to spare (and fits a page, as a
            // group of more than the minimum does): its last move over.
            before.end -= short;
            last.start -= short;
        } else {
            before.end = last.end;
            groups.pop();
        }
    }
    groups
}

/// Encodes one node at `level` (0 = leaf) holding `entries` (which fit, per
/// [`pack`]).
/// A node longer than a page (see [`pack`]) spans as many pages as it
/// needs.
pub(crate) fn encode<E: Entry>(page_size: usize, level: u8, entries: &[E]) -> (Vec<u8>, usize) {
    let kind = if level == 0 { PageKind::Leaf } else { PageKind::Branch };
    let fill = Fill::of(entries);
    let bytes = NODE_HEADER_LEN + fill.bytes();
    assert!(bytes <= MAX_NODE_BYTES.max(page_size), "a node of {bytes} bytes");
    let pages = bytes.div_ceil(page_size).max(1);
    let mut buf = crate::page::new_run(page_size, pages, kind, entries.len() as u16);
    buf[LEVEL_OFFSET] = level;
    if let Shape::Fixed(key, value) = fill.shape {
        buf[FIXED_KEY_OFFSET..FIXED_KEY_OFFSET + 2].copy_from_slice(&(key as u16 + 1).to_le_bytes());
        buf[FIXED_VALUE_OFFSET..FIXED_ENTRIES].copy_from_slice(&(value as u16).to_le_bytes());
        // The keys, then the values.
        let fixed = Fixed::new(key as u16, value as u16, entries.len());
        for (i, e) in entries.iter().enumerate() {
            let (k, v) = (fixed.key_at(i), fixed.value_at(i));
            buf[k..k + key].copy_from_slice(e.key());
            buf[v..v + value].copy_from_slice(e.inline_value().unwrap_or_default());
        }
        return (buf, fixed.entries_end(entries.len()));
    }
    let mut at = NODE_HEADER_LEN + entries.len() * OFFSET_LEN;
    for (i, e) in entries.iter().enumerate() {
        let slot = NODE_HEADER_LEN + i * OFFSET_LEN;
        buf[slot..slot + 2].copy_from_slice(&(at as u16).to_le_bytes());
        let len = e.encoded_len() - OFFSET_LEN;
        e.encode(&mut buf[at..at + len]);
        at += len;
    }
    (buf, at)
}

/// Reads a node page's verified view, or reports a non-node page.
pub(crate) fn expect_node(page: &Page, id: PageId) -> Result<Node<'_>, StorageError> {
    if crate::page::page_kind(page) == PageKind::FreeList {
        return Err(StorageError::corrupted(format!(
            "page {id} is a free-list page inside a tree"
        )));
    }
    Ok(Node::new(page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_sort_between_their_neighbours() {
        for (last, next, want) in [
            (&b"abc"[..], &b"abd"[..], &b"abd"[..]),
            (b"abc", b"b", b"b"),
            (b"ab", b"abc", b"abc"),
            (b"", b"a", b"a"),
            (b"apple-pie", b"banana-split", b"b"),
            (b"a\xff\xff", b"b\x00", b"b"),
        ] {
            let sep = &next[..separator_len(last, next)];
            assert_eq!(sep, want, "between {last:?} and {next:?}");
            assert!(last < sep && sep <= next, "{sep:?} is not between {last:?} and {next:?}");
        }
    }

    /// Leaf entries of `keys`, each with the inline `value`.
    fn inline_entries<'a, K: AsRef<[u8]>>(keys: &'a [K], value: &'a [u8]) -> Vec<LeafEntry<'a>> {
        keys.iter()
            .map(|k| LeafEntry {
                key: k.as_ref(),
                value: LeafValue::Inline(value),
            })
            .collect()
    }

    #[test]
    fn leaf_round_trip_and_search() {
        let keys: Vec<Vec<u8>> = (0u32..50).map(|i| (i * 2).to_be_bytes().to_vec()).collect();
        let entries = inline_entries(&keys, b"value");
        let groups = pack(&entries, 4096);
        assert_eq!(groups.len(), 1);
        // One key length and one value length: fixed-width, no offsets or
        // entry headers.
        let (page, used) = encode(4096, 0, &entries);
        assert_eq!(used, FIXED_ENTRIES + 50 * (4 + 5));
        assert_eq!(u16_at(&page, FIXED_KEY_OFFSET), 4 + 1);
        // One longer value: slotted.
        let mut mixed = entries.clone();
        mixed[3].value = LeafValue::Inline(b"values");
        let (slotted, slotted_used) = encode(4096, 0, &mixed);
        assert_eq!(slotted_used, NODE_HEADER_LEN + 50 * (2 + 4 + 4 + 5) + 1);
        assert_eq!(u16_at(&slotted, FIXED_KEY_OFFSET), 0);
        for (page, entries) in [(&page, &entries), (&slotted, &mixed)] {
            validate(page).unwrap();
            let node = Node::new(page);
            assert_eq!(node.count(), 50);
            for (i, e) in entries.iter().enumerate() {
                assert_eq!(node.key(i), e.key);
                assert_eq!(node.value(i), e.value);
                let (key, ValueAt::Inline(value)) = node.leaf_entry(i) else {
                    panic!("an inline value")
                };
                assert_eq!((&page[key], LeafValue::Inline(&page[value])), (e.key, e.value));
            }
            let cmp = crate::btree::cmp::bytewise;
            assert_eq!(node.search(&10u32.to_be_bytes(), cmp), Ok(5));
            assert_eq!(node.search(&11u32.to_be_bytes(), cmp), Err(6));
        }
    }

    #[test]
    fn search_agrees_with_byte_order_for_short_keys_and_zero_bytes() {
        // Keys of 0 to 11 bytes over a small alphabet with zeros, so that a
        // key and a longer one padded with zeros share a masked word, in a
        // branch (separators are short) and in a leaf; the last entries
        // sit at the page's end, where no whole word can be read.
        let alphabet = [0u8, 1, 0x80, 0xff];
        let mut keys: Vec<Vec<u8>> = vec![Vec::new()];
        for len in 1..12usize {
            for (i, &a) in alphabet.iter().enumerate() {
                let mut key = vec![0; len];
                key[len - 1] = a;
                key[(len - 1) / 2] = alphabet[(i + 1) % alphabet.len()];
                keys.push(key.clone());
                key[0] = a;
                keys.push(key);
            }
        }
        keys.sort();
        keys.dedup();
        let mut probes = keys.clone();
        probes.extend(keys.iter().map(|k| [k.as_slice(), &[0]].concat()));
        probes.extend(keys.iter().map(|k| [k.as_slice(), &[0x7f]].concat()));
        let branch: Vec<BranchEntry> = keys
            .iter()
            .map(|k| BranchEntry {
                key: k.clone(),
                child: 9,
                fill: None,
            })
            .collect();
        let leaf = inline_entries(&keys, b"");
        // The keys of one length (5 bytes): a fixed-width leaf.
        let fixed_keys: Vec<Vec<u8>> = keys.iter().filter(|k| k.len() == 5).cloned().collect();
        let fixed = inline_entries(&fixed_keys, b"vv");
        // Pages exactly as long as their entries: the last keys end at the
        // page's end.
        let (_, branch_len) = encode(4096, 1, &branch);
        let (_, leaf_len) = encode(4096, 0, &leaf);
        let (_, fixed_len) = encode(4096, 0, &fixed);
        let (branch_page, _) = encode(branch_len, 1, &branch);
        let (leaf_page, _) = encode(leaf_len, 0, &leaf);
        let (fixed_page, _) = encode(fixed_len, 0, &fixed);
        assert_ne!(u16_at(&fixed_page, FIXED_KEY_OFFSET), 0, "a fixed-width leaf");
        for (page, keys) in [(&branch_page, &keys), (&leaf_page, &keys), (&fixed_page, &fixed_keys)] {
            validate(page).unwrap();
            let node = Node::new(page);
            for cmp in [crate::btree::cmp::bytewise as Comparator, |a: &[u8], b: &[u8]| a.cmp(b)] {
                for probe in &probes {
                    let want = keys.binary_search(probe);
                    assert_eq!(node.search(probe, cmp), want, "{probe:?}");
                }
            }
        }
    }

    #[test]
    fn packing_spreads_bytes_evenly() {
        let value = [7u8; 101];
        let keys: Vec<[u8; 16]> = (0u128..100).map(|i| i.to_be_bytes()).collect();
        // Values of 99 and 101 bytes in turn: slotted leaves.
        let entries: Vec<LeafEntry> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| LeafEntry {
                key: k,
                value: LeafValue::Inline(&value[..99 + 2 * (i % 2)]),
            })
            .collect();
        let groups = pack(&entries, 4096);
        // 100 entries of 122 bytes on average: their 12 200 bytes would
        // fill three pages of 4072 usable bytes, but a page holds 33
        // entries (4027 bytes), so four pages, of 25 entries each.
        assert_eq!(groups, [0..25, 25..50, 50..75, 75..100]);
        // All values of 100 bytes: fixed-width leaves of 116-byte entries,
        // 35 to a page at most (4062 bytes of 4072), so three pages, evened
        // out.
        let fixed = inline_entries(&keys, &value[..100]);
        assert_eq!(pack(&fixed, 4096), [0..34, 34..68, 68..100]);
    }

    /// `pack`'s groups cover `entries` in order, each fits a page, there
    /// are as few as a fill of each page makes, and each encodes to a node
    /// that validates and reads back its entries.
    fn check_packing(entries: &[LeafEntry]) -> Result<(), proptest::test_runner::TestCaseError> {
        let capacity = 4096 - NODE_HEADER_LEN;
        let groups = pack(entries, 4096);
        let mut next = 0;
        for g in &groups {
            proptest::prop_assert_eq!(g.start, next);
            proptest::prop_assert!(!g.is_empty());
            let group = &entries[g.clone()];
            let bytes = Fill::of(group).bytes();
            proptest::prop_assert!(bytes <= capacity, "{} bytes in {:?}", bytes, g);
            let (page, used) = encode(4096, 0, group);
            proptest::prop_assert_eq!(used, NODE_HEADER_LEN + bytes);
            proptest::prop_assert!(validate(&page).is_ok());
            let node = Node::new(&page);
            proptest::prop_assert_eq!(node.count(), group.len());
            for (i, e) in group.iter().enumerate() {
                proptest::prop_assert_eq!(node.key(i), e.key);
                proptest::prop_assert_eq!(node.value(i), e.value);
            }
            next = g.end;
        }
        proptest::prop_assert_eq!(next, entries.len());
        proptest::prop_assert_eq!(groups.len(), cut(entries, capacity, capacity).len());
        Ok(())
    }

    proptest::proptest! {
        #[test]
        fn packing_fits_every_page_and_uses_the_fewest(
            lens in proptest::collection::vec((1usize..300, 0usize..=MAX_INLINE_VALUE), 1..400),
        ) {
            let keys: Vec<Vec<u8>> = lens.iter().map(|&(k, _)| vec![1; k]).collect();
            let value = [2u8; MAX_INLINE_VALUE];
            let entries: Vec<LeafEntry> = keys
                .iter()
                .zip(&lens)
                .map(|(key, &(_, v))| LeafEntry { key, value: LeafValue::Inline(&value[..v]) })
                .collect();
            check_packing(&entries)?;
        }

        #[test]
        fn packing_fixed_width_runs_fits_and_reads_back(
            runs in proptest::collection::vec((1usize..300, 0usize..=MAX_INLINE_VALUE, 1usize..120), 1..5),
        ) {
            // Runs of entries of one key and value length each: the groups
            // within a run are fixed-width leaves, those across runs slotted.
            let value = [2u8; MAX_INLINE_VALUE];
            let mut keys: Vec<Vec<u8>> = Vec::new();
            let mut values: Vec<&[u8]> = Vec::new();
            for &(k, v, n) in &runs {
                for i in 0..n {
                    let mut key = vec![(keys.len() % 251) as u8; k];
                    key[0] = (i % 7) as u8;
                    keys.push(key);
                    values.push(&value[..v]);
                }
            }
            let entries: Vec<LeafEntry> = keys
                .iter()
                .zip(&values)
                .map(|(key, v)| LeafEntry { key, value: LeafValue::Inline(v) })
                .collect();
            check_packing(&entries)?;
        }
    }

    /// The page header's entry count (`page::store`).
    const COUNT_OFFSET_IN_TESTS: usize = 10;

    #[test]
    fn validation_rejects_out_of_bounds_offsets() {
        let entries = [LeafEntry {
            key: b"k",
            value: LeafValue::Inline(b"v"),
        }];
        let (mut page, _) = encode(4096, 0, &entries);
        // A fixed-width leaf of 1-byte keys and values: more entries than
        // its page holds, then values longer than a leaf's.
        assert_eq!(u16_at(&page, FIXED_KEY_OFFSET), 2);
        validate(&page).unwrap();
        page[COUNT_OFFSET_IN_TESTS..COUNT_OFFSET_IN_TESTS + 2].copy_from_slice(&3000u16.to_le_bytes());
        assert!(validate(&page).is_err());
        page[COUNT_OFFSET_IN_TESTS..COUNT_OFFSET_IN_TESTS + 2].copy_from_slice(&1u16.to_le_bytes());
        page[FIXED_VALUE_OFFSET..FIXED_ENTRIES].copy_from_slice(&2000u16.to_le_bytes());
        assert!(validate(&page).is_err());
        // A branch laid out as a fixed-width leaf.
        let (mut branch, _) = encode(
            4096,
            1,
            &[
                BranchEntry {
                    key: b"a".to_vec(),
                    child: 5,
                    fill: None,
                },
                BranchEntry {
                    key: b"b".to_vec(),
                    child: 6,
                    fill: None,
                },
            ],
        );
        validate(&branch).unwrap();
        branch[FIXED_KEY_OFFSET] = 2;
        assert!(validate(&branch).is_err());
        // A slotted leaf whose offset points past its page.
        let (mut page, _) = encode(
            4096,
            0,
            &[
                entries[0],
                LeafEntry {
                    key: b"kk",
                    value: LeafValue::Inline(b"v"),
                },
            ],
        );
        page[NODE_HEADER_LEN..NODE_HEADER_LEN + 2].copy_from_slice(&4095u16.to_le_bytes());
        assert!(validate(&page).is_err());
    }
}
