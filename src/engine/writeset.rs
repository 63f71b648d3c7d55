//! A write transaction's private changes: per-table ordered writes, and the
//! net changes to the name -> table map.

use std::cmp::Ordering;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;

use super::batch::{Batch, DataOp, Frame, OpValue, TableDef, encode_parts_into, frame_len, new_table_id, op_len};
use super::memtable::entry_charge;
use super::key_bytes::KeyBytes;
use super::merge::{Direction, Item, Source};
use super::names::NameMap;
use crate::btree::{Comparator, Op, ValueBytes, compare, is_bytewise, prefix_word};

/// A key ordered by its table's comparator.
#[derive(Clone)]
pub(crate) struct OrdKey {
    /// For a byte-ordered table, the key's [`prefix_word`]
    /// (`KeyBytes::head_word`, inside the key's slot) decides first when
    /// the words differ, so most comparisons of a write-set search read no
    /// key buffer (measured: a one-transaction load of 1M random keys spent
    /// a fifth of its time dereferencing keys in the map's nodes).
    pub(crate) key: KeyBytes,
    pub(crate) cmp: Comparator,
}

impl OrdKey {
    pub(crate) fn new(key: &[u8], cmp: Comparator) -> Self {
        Self {
            key: KeyBytes::new(key),
            cmp,
        }
    }
}

/// A byte-ordered table's writes not yet sorted into its ordered map, in
/// arrival order, each key once, none also in the map. A write finds its
/// key here with one hash probe (or, past the hashed entries, a comparison
/// with the last one; see below), and a new key is appended: a
/// one-transaction load of 1M random keys spent two fifths of its time
/// searching and growing the ordered map (`BTreeMap::entry`), a cache miss
/// per node level per write. The first ordered read of the table (a range,
/// a pop) or the commit sorts them in (`WriteSet::settle_table`). Tables under
/// other orders keep every write in the map: equal keys may differ in
/// bytes there, so hashing the bytes cannot find them.
///
/// The entries after the last one with a slot (the *run*) are unhashed:
/// either in strictly ascending key order, found by a comparison with the
/// run's last key and a binary search, or (in a tail without slots, at most
/// [`UNHASHED_TAIL`] of them) in any order, found by a scan. A key above
/// the run's last joins the run unhashed, so an ascending load never
/// hashes its keys: a one-transaction load of 1M ascending keys spent a
/// third of its inserts probing and placing slots of a 16 MB table, a cache
/// miss each, for keys that a comparison with the previous one shows are
/// new. Any other key first places the run's entries, then its own.
#[derive(Default)]
struct Tail {
    entries: Vec<TailEntry>,
    /// Open addressing over the entries before the run, by key hash, probed
    /// linearly, at most half full: 0 for an empty slot, else the entry's
    /// position plus one in the low [`POSITION_BITS`] bits under the top
    /// bits of the key's hash (so most probes of another key read no key).
    slots: Vec<u32>,
    /// Where the run starts: entries below it have slots, entries from it
    /// on have none.
    hashed: usize,
    /// The run is short and in any order (the tail has no slots); else it
    /// is in strictly ascending key order.
    unordered: bool,
    /// The entries' keys and values, packed (see [`OpValue`]); a value
    /// rewritten in the tail leaves its old bytes behind until the commit.
    chunks: Vec<Vec<u8>>,
}

/// The word [`Tail::take_sorted`] sorts entry `at` by: the leading bits of
/// `key`'s [`prefix_word`] above `at` in the bits `position` masks. The
/// leading bits of two keys' words order the keys wherever they differ
/// (cutting low bits off an order-preserving word keeps it so).
fn sort_word(key: &[u8], at: usize, position: u64) -> u64 {
    (prefix_word(key) & !position) | at as u64
}

/// A tail entry: 24 bytes, its key and value in the tail's chunks. A
/// 16-byte key and a 100-byte value took 48 bytes of entry, 16 of hash map
/// (and its growth) and 4 of chain beside the 100 bytes of value; now 24
/// beside the 116 bytes of key and value, and 4 or 8 of slots.
#[derive(Clone, Copy)]
struct TailEntry {
    key: Packed,
    /// `len == REMOVED` for a removal.
    value: Packed,
}

impl TailEntry {
    fn value(&self) -> Option<Packed> {
        (self.value.len != REMOVED).then_some(self.value)
    }
}

const REMOVED: u32 = u32::MAX;

/// Where a tail's key or value lies: `chunks[chunk][start..start + len]`.
#[derive(Clone, Copy)]
struct Packed {
    chunk: u32,
    start: u32,
    len: u32,
}

/// Bytes of the first chunk of packed keys and values; each later chunk
/// doubles, up to [`CHUNK`], and a longer value gets a chunk of its own. A
/// one-write transaction (most of them) then allocates a few hundred bytes,
/// not the MiB that glibc had to carve from and give back to its heap every
/// time; and within glibc's per-thread cache (chunks up to 1 KiB), where a
/// 4 KiB first chunk took ~370 instructions to allocate (callgrind).
const FIRST_CHUNK: usize = 512;
const CHUNK: usize = 1 << 20;

/// The bytes `at` names in `chunks`.
fn packed_bytes(chunks: &[Vec<u8>], at: Packed) -> &[u8] {
    &chunks[at.chunk as usize][at.start as usize..][..at.len as usize]
}

/// A tail this short is settled by inserting into the map (see
/// [`Tail::drain_small`]).
const SMALL_TAIL: usize = 32;

/// Entries out of order a tail without slots holds before it hashes them
/// (see [`Tail::push`]).
const UNHASHED_TAIL: usize = 8;

/// Bits of a slot holding an entry's position plus one: a tail holds fewer
/// than 2^26 entries (more writes to one table go to the ordered map).
const POSITION_BITS: u32 = 26;
const POSITION_MASK: u32 = (1 << POSITION_BITS) - 1;

impl Tail {
    fn hash(key: &[u8]) -> u64 {
        xxhash_rust::xxh3::xxh3_64(key)
    }

    /// The slot `hash` probes first, and the tag its slots carry.
    fn home(&self, hash: u64) -> (usize, u32) {
        let mask = self.slots.len() - 1;
        ((hash as usize) & mask, ((hash >> 58) as u32) << POSITION_BITS)
    }

    fn key(&self, at: usize) -> &[u8] {
        packed_bytes(&self.chunks, self.entries[at].key)
    }

    fn value(&self, at: usize) -> Option<&[u8]> {
        self.entries[at].value().map(|v| packed_bytes(&self.chunks, v))
    }

    /// The entry holding `key` (hashed `hash`).
    fn find(&self, hash: u64, key: &[u8]) -> Option<usize> {
        if !self.slots.is_empty() {
            let (mut pos, tag) = self.home(hash);
            loop {
                let slot = self.slots[pos];
                if slot == 0 {
                    break;
                }
                if slot & !POSITION_MASK == tag {
                    let at = (slot & POSITION_MASK) as usize - 1;
                    if self.key(at) == key {
                        return Some(at);
                    }
                }
                pos = (pos + 1) & (self.slots.len() - 1);
            }
        }
        self.find_in_run(key)
    }

    /// The entry of the run (see [`Tail`]) holding `key`.
    fn find_in_run(&self, key: &[u8]) -> Option<usize> {
        let run = self.hashed..self.entries.len();
        if self.unordered {
            return run.into_iter().find(|&at| self.key(at) == key);
        }
        let last = run.end.checked_sub(1).filter(|&last| last >= run.start)?;
        match key.cmp(self.key(last)) {
            Ordering::Greater => None,
            Ordering::Equal => Some(last),
            Ordering::Less => self.entries[run.start..last]
                .binary_search_by(|e| packed_bytes(&self.chunks, e.key).cmp(key))
                .ok()
                .map(|at| run.start + at),
        }
    }

    /// Takes a free slot for entry `at` (hashed `hash`).
    fn place(&mut self, hash: u64, at: usize) {
        let (mut pos, tag) = self.home(hash);
        while self.slots[pos] != 0 {
            pos = (pos + 1) & (self.slots.len() - 1);
        }
        self.slots[pos] = tag | (at as u32 + 1);
    }

    /// Appends `key`, which the tail does not hold: to the run if it sorts
    /// after the run's last key, or if the tail has no slots and the run
    /// is shorter than [`UNHASHED_TAIL`] (a one-write transaction, most of
    /// them, allocates no slots); else the run's entries and then `key`'s
    /// get slots, and the run starts again empty.
    fn push(&mut self, hash: u64, key: &[u8], value: Option<&[u8]>) {
        let len = self.entries.len();
        let ascending = !self.unordered && (self.hashed == len || key > self.key(len - 1));
        let hash_all = !ascending && (!self.slots.is_empty() || len - self.hashed >= UNHASHED_TAIL);
        if hash_all {
            self.hash_run(len + 1);
        }
        let key = self.pack(key);
        let value = self.pack_value(value);
        self.entries.push(TailEntry { key, value });
        if hash_all {
            self.place(hash, len);
            self.hashed = len + 1;
        } else if !ascending {
            self.unordered = true;
        }
    }

    /// Gives every entry of the run a slot, with room for `entries` in all
    /// (growing the slots to keep them at most half full places every
    /// entry again).
    fn hash_run(&mut self, entries: usize) {
        let from = if entries * 2 > self.slots.len() {
            self.slots = vec![0; (entries * 2).next_power_of_two().max(64)];
            0
        } else {
            self.hashed
        };
        for at in from..self.entries.len() {
            self.place(Self::hash(self.key(at)), at);
        }
        self.hashed = self.entries.len();
        self.unordered = false;
    }

    fn set_value(&mut self, at: usize, value: Option<&[u8]>) {
        self.entries[at].value = self.pack_value(value);
    }

    fn pack_value(&mut self, value: Option<&[u8]>) -> Packed {
        value.map_or(
            Packed {
                chunk: 0,
                start: 0,
                len: REMOVED,
            },
            |v| self.pack(v),
        )
    }

    /// Copies `bytes` into the last chunk, or a new one if they do not fit.
    fn pack(&mut self, bytes: &[u8]) -> Packed {
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.capacity() - c.len() >= bytes.len());
        if !fits {
            let next = self.chunks.last().map_or(FIRST_CHUNK, |c| (c.capacity() * 2).min(CHUNK));
            self.chunks.push(Vec::with_capacity(next.max(bytes.len())));
        }
        let chunk = self.chunks.len() - 1;
        let buf = &mut self.chunks[chunk];
        let start = buf.len();
        buf.extend_from_slice(bytes);
        // Values are at most `MAX_VALUE_LEN` (128 MiB) and chunks hold
        // `CHUNK` bytes or one value: offsets and lengths fit a `u32`.
        Packed {
            chunk: chunk as u32,
            start: start as u32,
            len: bytes.len() as u32,
        }
    }

    fn has_room(&self) -> bool {
        self.entries.len() < POSITION_MASK as usize
    }

    /// The least and the greatest key, if the tail is one ascending run
    /// (no entry hashed, none out of order), as a pop loop's tombstones
    /// are: a read between two bounds needs the tail settled into the map
    /// only if a key of it lies between them ([`WriteSet::source`]).
    fn span(&self) -> Option<(&[u8], &[u8])> {
        let last = self.entries.len().checked_sub(1)?;
        (self.hashed == 0 && !self.unordered).then(|| (self.key(0), self.key(last)))
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, their keys and values copied out, leaving the tail
    /// empty with its buffers (slots, first chunk) kept for reuse. For a
    /// tail of at most [`SMALL_TAIL`] entries: sorting and sharing chunks
    /// costs several allocations, a map insert each costs none of them.
    fn drain_small(&mut self) -> Vec<(KeyBytes, Option<OpValue>)> {
        let drained = (0..self.entries.len())
            .map(|at| (KeyBytes::new(self.key(at)), self.value(at).map(|v| OpValue::Owned(v.to_vec()))))
            .collect();
        self.entries.clear();
        self.slots.fill(0);
        (self.hashed, self.unordered) = (0, false);
        self.chunks.truncate(1);
        if let Some(chunk) = self.chunks.first_mut() {
            chunk.clear();
        }
        drained
    }

    /// The entries in key order, leaving the tail empty. Sorts one word
    /// per entry, a key's leading bits over its position (see
    /// [`sort_word`]), the keys read only where those bits tie, and leaves
    /// the entries where they are: the sorted words say where each one
    /// lies. The slots go first, so the words take their place in memory.
    ///
    /// Measured on a one-transaction load of 1M random keys, against
    /// earlier ways: sorting the entries themselves moved each about
    /// log2(n) times (a fifth of the commit); moving them into order in
    /// place, along the permutation's cycles, chased one cache miss after
    /// another; and sorting (prefix word, position) pairs, then collecting
    /// their positions, held 20 bytes an entry at once, 12 MB above the
    /// slots at the commit's peak.
    fn take_sorted(&mut self) -> SortedTail {
        self.slots = Vec::new();
        (self.hashed, self.unordered) = (0, false);
        let entries = std::mem::take(&mut self.entries);
        let chunks = std::mem::take(&mut self.chunks);
        let key = |e: &TailEntry| packed_bytes(&chunks, e.key);
        // Written in order already (one write, an ascending load): nothing
        // to sort, and no sort buffers.
        if entries.is_sorted_by(|a, b| key(a) < key(b)) {
            return SortedTail {
                entries,
                chunks,
                order: None,
            };
        }
        let position_bits = usize::BITS - (entries.len() - 1).leading_zeros();
        let position = (1u64 << position_bits) - 1;
        let mut words: Vec<u64> = entries
            .iter()
            .enumerate()
            .map(|(at, e)| sort_word(key(e), at, position))
            .collect();
        words.sort_unstable_by(|&a, &b| {
            (a | position)
                .cmp(&(b | position))
                .then_with(|| key(&entries[(a & position) as usize]).cmp(key(&entries[(b & position) as usize])))
        });
        SortedTail {
            entries,
            chunks,
            order: Some(Order { words, position }),
        }
    }
}

/// A tail's entries in key order, their keys and values still in its
/// chunks.
pub(crate) struct SortedTail {
    entries: Vec<TailEntry>,
    chunks: Vec<Vec<u8>>,
    /// Where the entries lie in key order; `None` when they are in it.
    order: Option<Order>,
}

/// The sorted words of [`Tail::take_sorted`]: each word's bits under
/// `position` are an entry's place in the entries.
struct Order {
    words: Vec<u64>,
    position: u64,
}

impl Order {
    /// The entry `i`-th in key order.
    fn nth(order: Option<&Self>, entries: &[TailEntry], i: usize) -> TailEntry {
        match order {
            Some(order) => entries[(order.words[i] & order.position) as usize],
            None => entries[i],
        }
    }
}

impl SortedTail {
    fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entries, borrowed in order.
    fn iter(&self) -> impl ExactSizeIterator<Item = Op<'_>> {
        (0..self.len()).map(|i| {
            let e = Order::nth(self.order.as_ref(), &self.entries, i);
            let value = e.value().map(|at| packed_bytes(&self.chunks, at));
            (packed_bytes(&self.chunks, e.key), value)
        })
    }

    /// The entries as owned ops, their values sharing the chunks. Converted
    /// as the caller consumes them: a second vector of all the entries
    /// would hold a big transaction twice.
    fn into_ops(self) -> impl ExactSizeIterator<Item = (KeyBytes, Option<OpValue>)> {
        let Self { entries, chunks, order } = self;
        let chunks: Vec<std::sync::Arc<Vec<u8>>> = chunks.into_iter().map(std::sync::Arc::new).collect();
        (0..entries.len()).map(move |i| {
            let e = Order::nth(order.as_ref(), &entries, i);
            let key = KeyBytes::new(&chunks[e.key.chunk as usize][e.key.start as usize..][..e.key.len as usize]);
            let value = e.value().map(|at| OpValue::Shared {
                chunk: chunks[at.chunk as usize].clone(),
                start: at.start,
                len: at.len,
            });
            (key, value)
        })
    }
}

impl Ord for OrdKey {
    fn cmp(&self, other: &Self) -> Ordering {
        // Unequal prefix words decide byte order; otherwise the comparator
        // decides (byte order inlined: `compare`).
        if is_bytewise(self.cmp) {
            let order = self.key.head_word().cmp(&other.key.head_word());
            if order.is_ne() {
                return order;
            }
        }
        compare(self.cmp, &self.key, &other.key)
    }
}

impl PartialOrd for OrdKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for OrdKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for OrdKey {}

/// One table's writes at commit, in its key order.
pub(crate) enum TableWrites {
    Tail(SortedTail),
    Map(BTreeMap<OrdKey, Option<OpValue>>),
}

impl TableWrites {
    /// The writes, borrowed in order: a value, or `None` for a removal.
    /// (No allocation per table on the commit path, where every commit
    /// measures, encodes and inserts its writes; one branch per write.)
    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = Op<'_>> + '_ {
        match self {
            Self::Tail(tail) => EitherWrites::Tail(tail.iter()),
            Self::Map(map) => EitherWrites::Map(map.iter().map(|(key, value)| (&key.key[..], value.as_deref()))),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Tail(tail) => tail.len(),
            Self::Map(map) => map.len(),
        }
    }

    fn into_ops(self, table: u64, ops: &mut Vec<DataOp>) {
        ops.reserve(self.len());
        match self {
            Self::Tail(tail) => ops.extend(tail.into_ops().map(|(key, value)| DataOp { table, key, value })),
            Self::Map(map) => ops.extend(map.into_iter().map(|(key, value)| DataOp {
                table,
                key: key.key,
                value,
            })),
        }
    }
}

/// The writes of a tail or of a map, as [`TableWrites::iter`] yields them.
enum EitherWrites<T, M> {
    Tail(T),
    Map(M),
}

impl<'a, T, M> Iterator for EitherWrites<T, M>
where
    T: Iterator<Item = Op<'a>>,
    M: Iterator<Item = Op<'a>>,
{
    type Item = Op<'a>;

    fn next(&mut self) -> Option<Op<'a>> {
        match self {
            Self::Tail(tail) => tail.next(),
            Self::Map(map) => map.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Self::Tail(tail) => tail.size_hint(),
            Self::Map(map) => map.size_hint(),
        }
    }
}

impl<'a, T, M> ExactSizeIterator for EitherWrites<T, M>
where
    T: ExactSizeIterator<Item = Op<'a>>,
    M: ExactSizeIterator<Item = Op<'a>>,
{
}

/// A transaction's changes as it commits: a [`Batch`] whose writes are
/// still where the write set kept them, per table.
pub(crate) struct Commit {
    pub(crate) bindings: Vec<(Vec<u8>, Option<TableDef>)>,
    pub(crate) dropped: Vec<u64>,
    pub(crate) counts: Vec<(u64, i64)>,
    /// Each written table's id, key order and writes.
    pub(crate) tables: Vec<(u64, Comparator, TableWrites)>,
}

impl Commit {
    /// The length of the WAL record [`into_batch`](Self::into_batch)
    /// encodes to, without building it.
    pub(crate) fn encoded_len(&self) -> usize {
        let ops: usize = self
            .tables
            .iter()
            .flat_map(|(_, _, writes)| writes.iter())
            .map(|(key, value)| op_len(key.len(), value.map(<[u8]>::len)))
            .sum();
        frame_len(&self.bindings, &self.dropped, &self.counts) + ops
    }

    /// The writes that put a value.
    pub(crate) fn puts(&self) -> u64 {
        let puts = self.tables.iter().flat_map(|(_, _, writes)| writes.iter());
        puts.filter(|(_, value)| value.is_some()).count() as u64
    }

    /// The writes, counted.
    pub(crate) fn op_count(&self) -> usize {
        self.tables.iter().map(|(_, _, writes)| writes.len()).sum()
    }

    /// The bytes the writes charge a memtable (`entry_charge` each).
    pub(crate) fn charge(&self) -> usize {
        let writes = self.tables.iter().flat_map(|(_, _, writes)| writes.iter());
        writes.map(|(key, value)| entry_charge(key, value)).sum()
    }

    /// Appends the WAL record's payload ([`encoded_len`](Self::encoded_len)
    /// bytes, `len`) to `out` (the WAL queue's buffer), encoded from where
    /// the writes are: the same bytes as [`into_batch`](Self::into_batch)'s
    /// batch encodes to.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>, len: usize) {
        let ops = self.tables.iter().flat_map(|(id, _, writes)| {
            let id = *id;
            writes.iter().map(move |(key, value)| (id, key, value))
        });
        encode_parts_into(out, len, &self.bindings, &self.dropped, self.op_count(), ops, &self.counts);
    }

    /// The changes but the writes, and each written table's id, key order
    /// and writes.
    pub(crate) fn into_parts(self) -> (Frame, Vec<(u64, Comparator, TableWrites)>) {
        let frame = Frame {
            bindings: self.bindings,
            dropped: self.dropped,
            counts: self.counts,
        };
        (frame, self.tables)
    }

    /// The changes as one WAL batch.
    pub(crate) fn into_batch(self) -> Batch {
        let mut ops = Vec::new();
        for (id, _, writes) in self.tables {
            writes.into_ops(id, &mut ops);
        }
        Batch {
            bindings: self.bindings,
            dropped: self.dropped,
            ops,
            counts: self.counts,
        }
    }
}

/// Where a table in the transaction came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// It existed before the transaction, with this id.
    Existing(u64),
    /// Created by the transaction; the `n`th, which fixes its id at commit.
    New(u64),
}

/// A table's sorted writes: a value, or a tombstone (`None`).
pub(crate) type Writes = BTreeMap<OrdKey, Option<OpValue>>;

pub(crate) struct TxnTable {
    pub(crate) origin: Origin,
    pub(crate) meta: std::sync::Arc<[u8]>,
    /// The key order, once a typed `open_table` gave it. A table the
    /// transaction only named (metadata lookup, rename, delete) has none,
    /// and nothing reads or writes its keys until it has one: no other order
    /// is ever assumed for it.
    pub(crate) cmp: Option<Comparator>,
    /// Shared with the ranges read from it (`WriteSet::shared`): a range
    /// holds the map as it was, and the next write copies it only if a
    /// range still does (one copy, not one per write: the copy is the
    /// table's own from then on).
    pub(crate) writes: Arc<Writes>,
    /// Writes not sorted into `writes` yet (byte-ordered tables only).
    tail: Tail,
    /// How the transaction changed the table's entry count, counting each
    /// key in `unread` as new.
    pub(crate) count_change: i64,
    /// Keys blind puts wrote ([`Below::Unread`]) without reading what the
    /// snapshot holds there: `count_change` counts them as new until
    /// [`WriteSet::resolve_unread`] learns which the snapshot has. Each at
    /// most once (a later write of the key finds it in the write set).
    unread: Vec<KeyBytes>,
    /// Set by `pop_first`: no key at or below this one has a visible entry
    /// in the transaction (until a put at or below it). A loop of pops then
    /// starts each search past the tombstones the earlier pops left, instead
    /// of walking them all again (which made the loop quadratic).
    popped_front: Option<Vec<u8>>,
    /// The same for `pop_last`: nothing visible at or above this key.
    popped_back: Option<Vec<u8>>,
}

impl TxnTable {
    /// The key order. REQUIRES: the table was opened with its type (every
    /// `TableRef` comes from such an open).
    fn order(&self) -> Comparator {
        self.cmp
            .expect("a table's keys are only touched after a typed open_table fixed its order")
    }

    /// A value written at `key` is visible again, so the pops' bounds must
    /// not pass it.
    fn unpop(&mut self, key: &[u8]) {
        let cmp = self.order();
        if self.popped_front.as_ref().is_some_and(|k| compare(cmp, key, k).is_le()) {
            self.popped_front = None;
        }
        if self.popped_back.as_ref().is_some_and(|k| compare(cmp, key, k).is_ge()) {
            self.popped_back = None;
        }
    }
}

/// What lies beneath a key the transaction has not written, as
/// [`WriteSet::write`] asks for it.
pub(crate) enum Below {
    /// The snapshot's value (`None`: it has no entry).
    Read(Option<ValueBytes>),
    /// Not read: a blind put (`WriteTxn::put`), which returns nothing. The
    /// key is counted as new and noted for [`WriteSet::resolve_unread`].
    Unread,
}

/// Where [`WriteSet::write`] puts a key the transaction has not written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// A byte-ordered table's tail (found by hash, sorted in later): for
    /// writes that no ordered read follows at once.
    Tail,
    /// The ordered map, where the next ordered read needs it: for a loop of
    /// ordered reads and writes (a pop loop: each pop reads the table in
    /// order, then removes what it found), one search instead of a tail
    /// entry settled at the next read.
    Map,
}

/// A lower and an upper bound on keys, owned.
pub(crate) type OwnedBounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// Index of a table within the write set.
pub(crate) type TableSlot = usize;

#[derive(Default)]
pub(crate) struct WriteSet {
    pub(crate) tables: Vec<TxnTable>,
    /// Names whose binding this transaction resolved or changed: to a table
    /// slot, or unbound.
    names: NameMap,
    /// Names whose binding changed (created, deleted, renamed).
    changed: BTreeSet<Vec<u8>>,
    /// Pre-existing tables deleted (their data is dropped at commit).
    dropped: Vec<u64>,
    created: u64,
    /// Set by a savepoint restore: the transaction may not create savepoints
    /// any more (see `crate::savepoint`).
    pub(crate) restored: bool,
    /// Set when the transaction created or deleted a persistent savepoint:
    /// its durability may then not be lowered (as redb's).
    pub(crate) persistent_modified: bool,
    /// One per persistent savepoint created here: released with the
    /// transaction (its commit makes the savepoint a stored one).
    pub(crate) pins: Vec<super::txn::SavepointPin>,
    /// Buffers left by the writer's earlier transactions (boxed: a write
    /// set moves from the writer's scratch into each transaction and back,
    /// and its size is copied at every move).
    spare: Option<Box<Spare>>,
}

/// Tables a recycled write set keeps room for in its list.
const SPARE_TABLES: usize = 16;

/// Entries and bytes of the largest tail whose buffers a write set keeps
/// for its next transaction: a bulk load's are freed.
const SPARE_TAIL_ENTRIES: usize = 1024;
const SPARE_TAIL_BYTES: usize = 64 << 10;

/// A write set's spare buffers, each taken by the next table that needs
/// one (see [`WriteSet::recycle`]).
#[derive(Default)]
struct Spare {
    /// An empty tail with its entry list and first chunk.
    tail: Tail,
    /// An empty map, in an `Arc` no one else holds.
    map: Option<Arc<Writes>>,
    /// Empty lists for a commit's tables and count changes
    /// ([`WriteSet::take_commit`]).
    commit: Vec<(u64, Comparator, TableWrites)>,
    counts: Vec<(u64, i64)>,
}

impl Spare {
    /// Keeps `tail`'s buffers, emptied, if there is no spare yet and they
    /// are small; else drops them.
    fn keep_tail(&mut self, mut tail: Tail) {
        let first_chunk = tail.chunks.first().map_or(0, Vec::capacity);
        let small = tail.entries.capacity() <= SPARE_TAIL_ENTRIES && first_chunk <= SPARE_TAIL_BYTES;
        if self.tail.chunks.is_empty() && first_chunk > 0 && small {
            tail.entries.clear();
            tail.chunks.truncate(1);
            tail.chunks[0].clear();
            self.tail = Tail {
                entries: tail.entries,
                chunks: tail.chunks,
                ..Tail::default()
            };
        }
    }
}

impl WriteSet {
    /// Every name the transaction resolved, created, deleted or renamed.
    pub(crate) fn touched_names(&self) -> impl Iterator<Item = &[u8]> {
        self.names.iter().map(|(name, _)| name)
    }

    /// Every name the transaction resolved or changed, with its binding.
    pub(crate) fn bindings(&self) -> impl Iterator<Item = (&[u8], Option<TableSlot>)> {
        self.names.iter().filter(|(name, _)| self.changed.contains(*name))
    }

    /// The transaction's own binding of `name`, if it has one.
    pub(crate) fn binding(&self, name: &[u8]) -> Option<Option<TableSlot>> {
        self.names.get(name)
    }

    /// Records an existing table as seen by this transaction, its key order
    /// not known yet.
    pub(crate) fn adopt(&mut self, name: &[u8], def: &TableDef) -> TableSlot {
        let slot = self.add_table(Origin::Existing(def.id), def.meta.clone(), None);
        self.names.insert(name, Some(slot));
        slot
    }

    /// A new entry of the table list, with no writes, on the spare buffers
    /// an earlier transaction left (see [`recycle`](Self::recycle)).
    fn add_table(&mut self, origin: Origin, meta: Arc<[u8]>, cmp: Option<Comparator>) -> TableSlot {
        let spare = self.spare.get_or_insert_default();
        self.tables.push(TxnTable {
            origin,
            meta,
            cmp,
            writes: spare.map.take().unwrap_or_default(),
            tail: std::mem::take(&mut spare.tail),
            count_change: 0,
            unread: Vec::new(),
            popped_front: None,
            popped_back: None,
        });
        self.tables.len() - 1
    }

    /// Empties the write set for the writer's next transaction, keeping
    /// the buffers a small one needs (the table list, one table's tail and
    /// map): a transaction of a write or two then allocates few of them
    /// (every allocation and free was ~130 instructions, and a one-write
    /// commit made 24). The rest, and anything big, is freed. Savepoint
    /// pins are released, as at the transaction's end.
    pub(crate) fn recycle(&mut self) {
        let spare = self.spare.get_or_insert_default();
        for mut table in self.tables.drain(..) {
            spare.keep_tail(std::mem::take(&mut table.tail));
            if spare.map.is_none()
                && let Some(map) = Arc::get_mut(&mut table.writes)
            {
                map.clear();
                spare.map = Some(table.writes);
            }
        }
        if self.tables.capacity() > SPARE_TABLES {
            self.tables = Vec::new();
        }
        self.names.clear();
        self.changed.clear();
        self.dropped.clear();
        self.created = 0;
        self.restored = false;
        self.persistent_modified = false;
        self.pins.clear();
    }

    /// Takes back a commit's writes once they are in the memtable: the
    /// buffers of the first table's tail, the table list and the count list
    /// become spares (see [`recycle`](Self::recycle)).
    pub(crate) fn recycle_commit(&mut self, mut tables: Vec<(u64, Comparator, TableWrites)>, mut counts: Vec<(u64, i64)>) {
        let spare = self.spare.get_or_insert_default();
        for (_, _, writes) in tables.drain(..) {
            if let TableWrites::Tail(sorted) = writes {
                spare.keep_tail(Tail {
                    entries: sorted.entries,
                    chunks: sorted.chunks,
                    ..Tail::default()
                });
            }
        }
        if tables.capacity() <= SPARE_TABLES {
            spare.commit = tables;
        }
        if counts.capacity() <= SPARE_TABLES {
            counts.clear();
            spare.counts = counts;
        }
    }

    /// Records that `name` is bound to no table at the transaction's start
    /// (not a change: `bindings` leaves it out).
    pub(crate) fn note_missing(&mut self, name: &[u8]) {
        self.names.insert_if_absent(name, None);
    }

    /// Tables created so far.
    pub(crate) fn created(&self) -> u64 {
        self.created
    }

    pub(crate) fn create(&mut self, name: &[u8], meta: &[u8], cmp: Comparator) -> TableSlot {
        let slot = self.add_table(Origin::New(self.created), meta.into(), Some(cmp));
        self.created += 1;
        self.names.insert(name, Some(slot));
        self.changed.insert(name.to_vec());
        slot
    }

    pub(crate) fn delete(&mut self, name: &[u8], slot: TableSlot) {
        if let Origin::Existing(id) = self.tables[slot].origin {
            self.dropped.push(id);
        }
        self.tables[slot].writes = Arc::default();
        self.tables[slot].tail = Tail::default();
        self.tables[slot].count_change = 0;
        self.tables[slot].unread.clear();
        self.tables[slot].popped_front = None;
        self.tables[slot].popped_back = None;
        self.names.insert(name, None);
        self.changed.insert(name.to_vec());
    }

    pub(crate) fn rename(&mut self, from: &[u8], to: &[u8], slot: TableSlot) {
        self.names.insert(from, None);
        self.names.insert(to, Some(slot));
        self.changed.insert(from.to_vec());
        self.changed.insert(to.to_vec());
    }

    /// Writes `key` (a tombstone for `None`) and returns the value the write
    /// replaces: the transaction's own, or, where it has none, what `below`
    /// reads in the layers beneath (its snapshot; nothing for
    /// [`Below::Unread`]). A tombstone over nothing is not written: there
    /// is nothing for it to hide. One search of the
    /// write set for both (measured: looking the key up and then putting it
    /// took two, and the lookup copied the key; a one-transaction load
    /// spent 38% of its time in that lookup). A key the transaction has not
    /// written goes where `place` says.
    pub(crate) fn write(
        &mut self,
        slot: TableSlot,
        key: &[u8],
        value: Option<&[u8]>,
        place: Place,
        below: impl FnOnce() -> crate::error::Result<Below>,
    ) -> crate::error::Result<Option<ValueBytes>> {
        let table = &mut self.tables[slot];
        let cmp = table.order();
        // Whether `key` joins the write set unread (see `TxnTable::unread`).
        let mut unread = false;
        let below = || -> crate::error::Result<Option<ValueBytes>> {
            Ok(match below()? {
                Below::Read(old) => old,
                Below::Unread => {
                    unread = true;
                    None
                }
            })
        };
        let old = if place == Place::Tail && is_bytewise(cmp) && table.tail.has_room() {
            let hash = Tail::hash(key);
            if let Some(at) = table.tail.find(hash, key) {
                let own = table.tail.value(at);
                if value.is_none() && own.is_none() {
                    return Ok(None);
                }
                let old = own.map(ValueBytes::copy_of);
                table.tail.set_value(at, value);
                old
            } else if let Some(own) = own_write_mut(&mut table.writes, &OrdKey::new(key, cmp)) {
                if value.is_none() && own.is_none() {
                    return Ok(None);
                }
                let new = value.map(|v| OpValue::Owned(v.to_vec()));
                std::mem::replace(own, new).map(|old| ValueBytes::copy_of(&old))
            } else {
                let old = below()?;
                if value.is_none() && old.is_none() && !unread {
                    return Ok(None);
                }
                table.tail.push(hash, key, value);
                old
            }
        } else {
            if !table.tail.is_empty() {
                Self::settle_table(table);
            }
            let new = value.map(|v| OpValue::Owned(v.to_vec()));
            let writes = Arc::make_mut(&mut table.writes);
            match writes.entry(OrdKey::new(key, cmp)) {
                Entry::Occupied(mut entry) => {
                    if new.is_none() && entry.get().is_none() {
                        return Ok(None);
                    }
                    let old = if is_bytewise(cmp) {
                        std::mem::replace(entry.get_mut(), new)
                    } else {
                        // `insert` would keep the old key's bytes; under a
                        // custom order equal keys may differ, and the newest
                        // write's bytes are the key's from now on (as in the
                        // memtable and the tree).
                        let (_, old) = entry.remove_entry();
                        writes.insert(OrdKey::new(key, cmp), new);
                        old
                    };
                    old.map(|old| ValueBytes::copy_of(&old))
                }
                Entry::Vacant(entry) => {
                    let old = below()?;
                    if new.is_none() && old.is_none() && !unread {
                        return Ok(None);
                    }
                    entry.insert(new);
                    old
                }
            }
        };
        table.count_change += i64::from(value.is_some()) - i64::from(old.is_some());
        if unread {
            table.unread.push(KeyBytes::new(key));
        }
        if value.is_some() {
            table.unpop(key);
        }
        Ok(old)
    }

    /// Records that a pop from the front (or back) removed `key`, the first
    /// (or last) visible key: nothing at or beyond it is visible any more.
    pub(crate) fn note_popped(&mut self, slot: TableSlot, key: Vec<u8>, front: bool) {
        let table = &mut self.tables[slot];
        if front {
            table.popped_front = Some(key);
        } else {
            table.popped_back = Some(key);
        }
    }

    /// The bounds within which a table can still have visible entries, as
    /// far as the transaction's pops tell; `None` if it has none at all.
    pub(crate) fn unpopped(&self, slot: TableSlot) -> Option<OwnedBounds> {
        let table = &self.tables[slot];
        if let (Some(front), Some(back)) = (&table.popped_front, &table.popped_back)
            && table.order()(front, back).is_ge()
        {
            return None;
        }
        let bound = |k: &Option<Vec<u8>>| k.clone().map_or(Bound::Unbounded, Bound::Excluded);
        Some((bound(&table.popped_front), bound(&table.popped_back)))
    }

    /// How the transaction changed a table's entry count. REQUIRES: no
    /// unread keys ([`resolve_unread`](Self::resolve_unread) first).
    pub(crate) fn count_change(&self, slot: TableSlot) -> i64 {
        debug_assert!(self.tables[slot].unread.is_empty(), "a count with unread keys in it");
        self.tables[slot].count_change
    }

    /// The keys of a table that blind puts wrote unread (see
    /// [`Below::Unread`]), for [`resolve_unread`](Self::resolve_unread).
    pub(crate) fn unread(&self, slot: TableSlot) -> &[KeyBytes] {
        &self.tables[slot].unread
    }

    /// Settles the count of a table's unread keys: `present` of them have
    /// an entry in the snapshot, which their puts replaced rather than
    /// added to.
    pub(crate) fn resolve_unread(&mut self, slot: TableSlot, present: u64) {
        let table = &mut self.tables[slot];
        debug_assert!(present <= table.unread.len() as u64);
        table.count_change -= present as i64;
        table.unread.clear();
    }

    /// The slots of the tables with unread keys.
    pub(crate) fn slots_with_unread(&self) -> impl Iterator<Item = TableSlot> + '_ {
        self.tables.iter().enumerate().filter(|(_, t)| !t.unread.is_empty()).map(|(slot, _)| slot)
    }

    /// The transaction's own entry for `key`: `None` if it has none,
    /// `Some(None)` if it deleted the key.
    pub(crate) fn get(&self, slot: TableSlot, key: &[u8]) -> Option<Option<ValueBytes>> {
        let table = &self.tables[slot];
        let in_tail = if table.tail.is_empty() {
            None
        } else {
            table.tail.find(Tail::hash(key), key)
        };
        Some(match in_tail {
            Some(at) => table.tail.value(at).map(ValueBytes::copy_of),
            None => table
                .writes
                .get(&OrdKey::new(key, table.order()))?
                .as_ref()
                .map(|v| ValueBytes::copy_of(v)),
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.tables.iter().all(|t| t.writes.is_empty() && t.tail.is_empty())
    }

    /// Sorts a table's [`Tail`] into its ordered map.
    fn settle_table(table: &mut TxnTable) {
        let cmp = table.order();
        if table.tail.len() <= SMALL_TAIL {
            // A few writes between ordered reads (a pop loop's tombstones):
            // straight into the map, the tail's buffers kept for the next.
            let writes = Arc::make_mut(&mut table.writes);
            for (key, value) in table.tail.drain_small() {
                writes.insert(OrdKey { key, cmp }, value);
            }
            return;
        }
        let sorted = table.tail.take_sorted().into_ops();
        let sorted = sorted.map(|(key, value)| (OrdKey { key, cmp }, value));
        if table.writes.is_empty() {
            // Built from sorted input in one pass.
            table.writes = Arc::new(sorted.collect());
        } else {
            Arc::make_mut(&mut table.writes).extend(sorted);
        }
    }

    /// A table's sorted writes as they are now, shared with a range that
    /// reads them in place ([`SharedSource`]; see [`TxnTable::writes`]).
    pub(crate) fn shared(&mut self, slot: TableSlot) -> Arc<Writes> {
        let table = &mut self.tables[slot];
        if !table.tail.is_empty() {
            Self::settle_table(table);
        }
        table.writes.clone()
    }

    /// The transaction's writes to one table between two bounds.
    pub(crate) fn source<'a>(
        &'a mut self,
        slot: TableSlot,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        direction: Direction,
    ) -> Source<'a> {
        let table = &mut self.tables[slot];
        // A tail whose keys all lie outside the bounds stays where it is:
        // a pop loop's tombstones (all behind the next pop's bound) were
        // otherwise moved into the map one pop at a time, a search of it
        // each (`settle_table`).
        let beside = is_bytewise(table.order()) && table.tail.span().is_some_and(|span| outside(span, lower, upper));
        if !table.tail.is_empty() && !beside {
            Self::settle_table(table);
        }
        let table = &self.tables[slot];
        let cmp = table.order();
        let (lower, upper) = (ord_bound(lower, cmp), ord_bound(upper, cmp));
        if inverted(&lower, &upper) {
            return Source::boxed(std::iter::empty());
        }
        let item = |entry| Ok(item(entry));
        let range = table.writes.range((lower, upper));
        match direction {
            Direction::Forward => Source::boxed(range.map(item)),
            Direction::Backward => Source::boxed(range.rev().map(item)),
        }
    }

    /// The id each table gets when committed as `seq`.
    pub(crate) fn table_id(&self, slot: TableSlot, seq: u64) -> u64 {
        match self.tables[slot].origin {
            Origin::Existing(id) => id,
            Origin::New(n) => new_table_id(seq, n),
        }
    }

    /// The transaction's changes, committed with sequence `seq`, moving the
    /// writes out (the transaction is being committed: no copy of each key
    /// and value, and no second copy of a big transaction in memory). Each
    /// table's writes stay in their sorted tail or map, so a commit through
    /// the tree reads them where they are.
    pub(crate) fn take_commit(&mut self, seq: u64) -> Commit {
        let bindings = self
            .changed
            .iter()
            .map(|name| {
                let def = self.names.get(name).flatten().map(|slot| TableDef {
                    id: self.table_id(slot, seq),
                    meta: self.tables[slot].meta.clone(),
                });
                (name.clone(), def)
            })
            .collect();
        // The tables bound to a name, in the names' order (each table has at
        // most one: creating, adopting and renaming bind a table's one name,
        // and the name it had, if any, is unbound). A record groups each
        // table's writes, in any order of tables.
        let (mut tables, mut counts) = match self.spare.as_mut() {
            Some(spare) => (std::mem::take(&mut spare.commit), std::mem::take(&mut spare.counts)),
            None => Default::default(),
        };
        for slot in self.names.iter().filter_map(|(_, binding)| binding) {
            let id = self.table_id(slot, seq);
            debug_assert!(self.tables[slot].unread.is_empty(), "a commit with unread keys");
            if self.tables[slot].count_change != 0 {
                counts.push((id, self.tables[slot].count_change));
            }
            let table = &mut self.tables[slot];
            let writes = if table.writes.is_empty() {
                if table.tail.is_empty() {
                    continue;
                }
                // Only a tail: sorted, it is the table's writes.
                TableWrites::Tail(table.tail.take_sorted())
            } else {
                if !table.tail.is_empty() {
                    Self::settle_table(table);
                }
                TableWrites::Map(Arc::unwrap_or_clone(std::mem::take(&mut table.writes)))
            };
            tables.push((id, table.order(), writes));
        }
        Commit {
            bindings,
            dropped: self.dropped.clone(),
            counts,
            tables,
        }
    }

    /// The key order of the table whose id is `id` when committed as `seq`,
    /// if it has a known one. (A transaction touches few tables: a search
    /// of the list, not a map built per commit.)
    pub(crate) fn order_of(&self, id: u64, seq: u64) -> Option<Comparator> {
        let slot = (0..self.tables.len()).find(|&slot| self.table_id(slot, seq) == id)?;
        self.tables[slot].cmp
    }

    /// The key order of each table this transaction created, by its id.
    pub(crate) fn new_table_orders(&self, seq: u64) -> impl Iterator<Item = (u64, Comparator)> + '_ {
        self.tables
            .iter()
            .enumerate()
            .filter(|(_, t)| matches!(t.origin, Origin::New(_)))
            .filter_map(move |(slot, t)| Some((self.table_id(slot, seq), t.cmp?)))
    }
}

/// The write of `key` in `writes`, to change in place: the map is copied
/// first if a range still shares it (see [`TxnTable::writes`]), and only if
/// it holds the key (a write that goes to the tail leaves it shared).
fn own_write_mut<'a>(writes: &'a mut Arc<Writes>, key: &OrdKey) -> Option<&'a mut Option<OpValue>> {
    if !writes.contains_key(key) {
        return None;
    }
    Arc::make_mut(writes).get_mut(key)
}

/// Whether keys from `least` to `greatest` (byte order) all lie below
/// `lower` or all above `upper`.
fn outside((least, greatest): (&[u8], &[u8]), lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> bool {
    let below = match lower {
        Bound::Included(bound) => greatest < bound,
        Bound::Excluded(bound) => greatest <= bound,
        Bound::Unbounded => false,
    };
    let above = match upper {
        Bound::Included(bound) => least > bound,
        Bound::Excluded(bound) => least >= bound,
        Bound::Unbounded => false,
    };
    below || above
}

fn ord_bound(bound: Bound<&[u8]>, cmp: Comparator) -> Bound<OrdKey> {
    bound.map(|k| OrdKey::new(k, cmp))
}

/// A write as a range yields it (copied out of the map).
fn item((key, value): (&OrdKey, &Option<OpValue>)) -> Item {
    (ValueBytes::copy_of(&key.key), value.as_ref().map(|v| ValueBytes::copy_of(v)))
}

/// Whether a map range between two bounds is empty by its bounds alone (an
/// inverted range, or one excluding its only key): `BTreeMap::range` panics
/// on those.
fn inverted(lower: &Bound<OrdKey>, upper: &Bound<OrdKey>) -> bool {
    let (Bound::Included(l) | Bound::Excluded(l), Bound::Included(u) | Bound::Excluded(u)) = (lower, upper) else {
        return false;
    };
    let order = l.cmp(u);
    let both_inclusive = matches!((lower, upper), (Bound::Included(_), Bound::Included(_)));
    order.is_gt() || (order.is_eq() && !both_inclusive)
}

/// A range's walk over one table's writes, shared with the transaction
/// ([`WriteSet::shared`]) instead of copied: each step seeks past the key
/// it gave last, so it borrows nothing and copies only what it yields. (A
/// copy of every write within the bounds made `range(k..).next()` in a
/// transaction of 100K writes take 10 ms.)
pub(crate) struct SharedSource {
    writes: Arc<Writes>,
    lower: Bound<OrdKey>,
    upper: Bound<OrdKey>,
    direction: Direction,
}

impl SharedSource {
    pub(crate) fn new(
        writes: Arc<Writes>,
        cmp: Comparator,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        direction: Direction,
    ) -> Self {
        Self {
            writes,
            lower: ord_bound(lower, cmp),
            upper: ord_bound(upper, cmp),
            direction,
        }
    }
}

impl Iterator for SharedSource {
    type Item = crate::error::Result<Item>;

    fn next(&mut self) -> Option<Self::Item> {
        if inverted(&self.lower, &self.upper) {
            return None;
        }
        let mut range = self.writes.range::<OrdKey, _>((self.lower.as_ref(), self.upper.as_ref()));
        let (key, value) = match self.direction {
            Direction::Forward => range.next(),
            Direction::Backward => range.next_back(),
        }?;
        let past = Bound::Excluded(key.clone());
        let item = item((key, value));
        match self.direction {
            Direction::Forward => self.lower = past,
            Direction::Backward => self.upper = past,
        }
        Some(Ok(item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btree::bytewise;

    /// Keys placed under one hash (7) are each found, past one another's
    /// slots, and beside them the keys that ascending writes left unhashed.
    #[test]
    fn the_tail_finds_keys_that_share_a_hash() {
        let mut tail = Tail::default();
        // Past the unhashed entries, so the keys below get slots.
        let fillers: Vec<Vec<u8>> = (0..UNHASHED_TAIL).map(|i| format!("f{i}").into_bytes()).collect();
        for key in &fillers {
            tail.push(Tail::hash(key), key, None);
        }
        assert!(tail.slots.is_empty(), "ascending keys are not hashed");
        let base = UNHASHED_TAIL;
        // Each colliding key sorts below the key written before it, so it
        // is placed (under the hash given here) and not appended to the
        // run; the "x" keys after them start a run again.
        let writes: [(&[u8], u64); 7] = [(b"ccc", 7), (b"x1", 0), (b"bb", 7), (b"x2", 0), (b"a", 7), (b"x3", 0), (b"d", 8)];
        for (key, hash) in writes {
            let hash = if hash == 0 { Tail::hash(key) } else { hash };
            tail.push(hash, key, Some(key));
        }
        assert!(!tail.slots.is_empty());
        assert_eq!(tail.hashed, base + writes.len(), "every entry has a slot");
        for (key, at) in [(&b"ccc"[..], 0), (b"bb", 2), (b"a", 4)] {
            assert_eq!(tail.find(7, key), Some(base + at));
        }
        assert_eq!(tail.find(8, b"d"), Some(base + 6));
        assert_eq!(tail.find(7, b"e"), None, "a key never written");
        assert_eq!(tail.find(8, b"bb"), Some(base + 2), "a probe from a later slot");
        // Past the cluster: an empty slot ends the probe.
        assert_eq!(tail.find(60, b"a"), None);
        for (at, key) in fillers.iter().enumerate() {
            assert_eq!(tail.find(Tail::hash(key), key), Some(at), "placed when the slots were made");
        }
        for (key, at) in [(&b"x1"[..], 1), (b"x2", 3), (b"x3", 5)] {
            assert_eq!(tail.find(Tail::hash(key), key), Some(base + at), "placed when the run was");
        }
        let sorted: Vec<Vec<u8>> = tail.take_sorted().iter().map(|(k, _)| k.to_vec()).collect();
        let mut expected: Vec<Vec<u8>> = writes.iter().map(|(k, _)| k.to_vec()).collect();
        expected.extend(fillers);
        expected.sort();
        assert_eq!(sorted, expected);
        assert!(tail.is_empty() && tail.find(7, b"a").is_none());
    }

    /// Keys written in ascending order stay unhashed, each found by a
    /// comparison with the last or a binary search; the first key out of
    /// order gives them all slots, and the run starts again after it.
    #[test]
    fn an_ascending_run_is_searched_until_a_key_breaks_its_order() {
        let mut tail = Tail::default();
        let ascending: Vec<Vec<u8>> = (0..300u32).map(|i| (i * 2).to_be_bytes().to_vec()).collect();
        for (n, key) in ascending.iter().enumerate() {
            assert_eq!(tail.find(Tail::hash(key), key), None);
            tail.push(Tail::hash(key), key, Some(key));
            for (at, written) in ascending[..=n].iter().enumerate().step_by(7).chain([(n, key)]) {
                assert_eq!(tail.find(Tail::hash(written), written), Some(at));
            }
            // Keys between and before the written ones are absent.
            let between = (2 * n as u32).wrapping_sub(1).to_be_bytes();
            assert_eq!(tail.find(Tail::hash(&between), &between), None);
        }
        assert!(tail.slots.is_empty() && tail.hashed == 0 && !tail.unordered);
        // An odd key sorts below the last: every entry gets a slot.
        let odd = 101u32.to_be_bytes();
        tail.push(Tail::hash(&odd), &odd, None);
        assert_eq!(tail.hashed, 301);
        // And the next keys above it form a new run.
        let above = [1_001u32.to_be_bytes(), 1_003u32.to_be_bytes()];
        for key in &above {
            tail.push(Tail::hash(key), key, None);
        }
        assert_eq!(tail.hashed, 301);
        let all: Vec<&[u8]> = ascending.iter().map(Vec::as_slice).chain([&odd[..]]).chain(above.iter().map(|k| &k[..])).collect();
        for (at, key) in all.iter().enumerate() {
            assert_eq!(tail.find(Tail::hash(key), key), Some(at));
        }
        let sorted: Vec<Vec<u8>> = tail.take_sorted().iter().map(|(k, _)| k.to_vec()).collect();
        let mut expected: Vec<Vec<u8>> = all.iter().map(|k| k.to_vec()).collect();
        expected.sort();
        assert_eq!(sorted, expected);
    }

    /// Keys whose sort words tie (a shared head, a short key and its
    /// zero-padded twin, words equal above the position bits) are ordered
    /// by their bytes, and every value moves with its key.
    #[test]
    fn a_tail_sorts_keys_whose_leading_bits_tie() {
        let mut keys: Vec<Vec<u8>> = vec![b"a".to_vec(), b"a\0".to_vec(), b"a\0\0\0\0\0\0\0\0".to_vec(), Vec::new()];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..600u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Heads equal in all but their last bits, which the position
            // bits (10 for these 604 keys) replace.
            let mut key = (0x6b65_795f_0000_0000u64 | (x & 0x3ff)).to_be_bytes().to_vec();
            key.extend_from_slice(&i.to_le_bytes()[..1 + i as usize % 3]);
            keys.push(key);
        }
        keys.sort();
        keys.dedup();
        let mut shuffled = keys.clone();
        shuffled.reverse();
        shuffled.rotate_left(101);
        let mut tail = Tail::default();
        for key in &shuffled {
            let value = [key.as_slice(), b"!"].concat();
            tail.push(Tail::hash(key), key, Some(&value));
        }
        let sorted = tail.take_sorted();
        let taken: Vec<(Vec<u8>, Vec<u8>)> = sorted.iter().map(|(k, v)| (k.to_vec(), v.unwrap().to_vec())).collect();
        let expected: Vec<(Vec<u8>, Vec<u8>)> = keys.iter().map(|k| (k.clone(), [k.as_slice(), b"!"].concat())).collect();
        assert_eq!(taken, expected);
    }

    /// A short tail has no slots and is scanned; the entry that makes it
    /// long enough places every entry, and one already in order is taken
    /// as it is.
    #[test]
    fn a_short_tail_is_scanned_until_it_is_hashed() {
        let mut tail = Tail::default();
        let keys: Vec<Vec<u8>> = (0..2 * UNHASHED_TAIL as u8).rev().map(|i| vec![i]).collect();
        for (n, key) in keys.iter().enumerate() {
            assert_eq!(tail.find(Tail::hash(key), key), None);
            tail.push(Tail::hash(key), key, Some(key));
            assert_eq!(tail.slots.is_empty(), n < UNHASHED_TAIL, "after {} entries", n + 1);
            for (at, key) in keys[..=n].iter().enumerate() {
                assert_eq!(tail.find(Tail::hash(key), key), Some(at));
            }
        }
        let sorted: Vec<Vec<u8>> = tail.take_sorted().iter().map(|(k, _)| k.to_vec()).collect();
        let mut expected = keys.clone();
        expected.sort();
        assert_eq!(sorted, expected);
        for key in &expected {
            tail.push(Tail::hash(key), key, None);
        }
        let in_order: Vec<Vec<u8>> = tail.take_sorted().iter().map(|(k, _)| k.to_vec()).collect();
        assert_eq!(in_order, expected);
    }

    /// A commit's writes, every table's in turn, copied out.
    fn owned_writes(commit: &Commit) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let writes = commit.tables.iter().flat_map(|(_, _, writes)| writes.iter());
        writes.map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec))).collect()
    }

    /// A writer's transactions one after another on one write set, recycled
    /// between them as `WriteTxn` does (the commit's buffers back into the
    /// spares, then the rest): each commit holds its own transaction's
    /// writes and nothing of an earlier one's, whether the earlier one
    /// committed, was dropped, or grew its tail past what is kept.
    #[test]
    fn a_recycled_write_set_commits_only_its_own_writes() {
        let mut writes = WriteSet::default();
        let mut rng = 7u64;
        for txn in 0..200u64 {
            writes.recycle();
            let slot = writes.adopt(b"t", &TableDef { id: 9, meta: Arc::from(&b""[..]) });
            writes.tables[slot].cmp = Some(bytewise);
            // Mostly a write or two; now and then past the kept sizes.
            let n = if txn % 50 == 49 { 2 * SPARE_TAIL_ENTRIES as u64 } else { 1 + txn % 3 };
            let mut model = BTreeMap::new();
            for i in 0..n {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let key = (rng >> 40).to_be_bytes().to_vec();
                let value = (i % 4 != 3).then(|| vec![txn as u8; (rng % 70) as usize]);
                // A removal finds a value below (else there is nothing to
                // remove, and the write set keeps no tombstone).
                let below = value.is_none().then(|| ValueBytes::owned(vec![1]));
                writes
                    .write(slot, &key, value.as_deref(), Place::Tail, || Ok(Below::Read(below)))
                    .unwrap();
                model.insert(key, value);
            }
            if txn % 7 == 6 {
                continue; // dropped without a commit
            }
            let commit = writes.take_commit(txn);
            let got = owned_writes(&commit);
            assert_eq!(got, model.into_iter().collect::<Vec<_>>(), "transaction {txn}");
            writes.recycle_commit(commit.tables, commit.counts);
        }
    }

    /// Writes, point reads, ordered reads (which sort the tail in) and the
    /// commit's batch, interleaved at random on a byte-ordered table and
    /// checked against a `BTreeMap` model of the same rules (the key space
    /// is small, so keys are rewritten, removed and rewritten again, in the
    /// tail and in the ordered map both).
    #[test]
    fn interleaved_writes_and_reads_match_a_model() {
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        // Small key spaces settle a few writes at a time (into the map);
        // large ones settle long tails (sorted, then merged into the map).
        // One write set serves every round, recycled as the writer's
        // transactions recycle theirs: each round must see it as new.
        let mut writes = WriteSet::default();
        for round in 0..24 {
            let (keys, ranges): (u64, u64) = if round % 2 == 0 { (64, 1) } else { (4096, 50) };
            writes.recycle();
            let slot = writes.create(b"t", b"", bytewise);
            assert_eq!((slot, writes.bindings().count()), (0, 1), "round {round}");
            // What the layers below the transaction hold.
            let below: BTreeMap<Vec<u8>, Vec<u8>> = (0..keys)
                .filter(|i| i % 3 == 0)
                .map(|i| (i.to_be_bytes()[6..].to_vec(), vec![1; (i % 5) as usize]))
                .collect();
            let mut model: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
            for step in 0..2000 {
                let key = (next() % keys).to_be_bytes()[6..].to_vec();
                let op = next() % (10 * ranges);
                match op {
                    _ if op < 6 * ranges => {
                        let value = (next() % 4 != 0).then(|| vec![step as u8; (next() % 40) as usize]);
                        // A put of a value is blind one time in three: it
                        // reads nothing below and returns nothing (but its
                        // own writes', which it has at hand).
                        let blind = value.is_some() && next() % 3 == 0;
                        let below_value = || {
                            Ok(if blind {
                                Below::Unread
                            } else {
                                Below::Read(below.get(&key).map(|v| ValueBytes::owned(v.clone())))
                            })
                        };
                        let place = if next() % 4 == 0 { Place::Map } else { Place::Tail };
                        let got = writes.write(slot, &key, value.as_deref(), place, below_value).unwrap();
                        let expected = match model.get(&key) {
                            Some(own) => {
                                let old = own.clone();
                                if !(value.is_none() && old.is_none()) {
                                    model.insert(key.clone(), value);
                                }
                                old
                            }
                            None => {
                                let old = below.get(&key).cloned();
                                if !(value.is_none() && old.is_none()) {
                                    model.insert(key.clone(), value);
                                }
                                if blind { None } else { old }
                            }
                        };
                        let got = got.map(|v| v.as_bytes().to_vec());
                        assert_eq!(got, expected, "round {round} step {step}");
                    }
                    _ if op < 10 * ranges - 1 => {
                        let got = writes.get(slot, &key).map(|v| v.map(|v| v.as_bytes().to_vec()));
                        assert_eq!(got, model.get(&key).cloned(), "round {round} step {step}");
                    }
                    _ => {
                        let got: Vec<(Vec<u8>, Option<Vec<u8>>)> = writes
                            .source(slot, Bound::Unbounded, Bound::Unbounded, Direction::Forward)
                            .map(|item| {
                                let (k, v) = item.unwrap();
                                (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec()))
                            })
                            .collect();
                        let expected: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                        assert_eq!(got, expected, "round {round} step {step}");
                    }
                }
            }
            // The count, once the unread keys are looked up below: the
            // entries of `below` overlaid with the transaction's, less those
            // of `below`.
            let present = writes.unread(slot).iter().filter(|k| below.contains_key(&k[..])).count();
            writes.resolve_unread(slot, present as u64);
            let after = below
                .keys()
                .filter(|k| !model.contains_key(*k))
                .count()
                + model.values().filter(|v| v.is_some()).count();
            assert_eq!(writes.count_change(slot), after as i64 - below.len() as i64, "round {round}");
            // The commit as a tree commit reads it, then as its WAL batch.
            let commit = writes.take_commit(1);
            let expected: Vec<_> = model.into_iter().collect();
            assert_eq!(owned_writes(&commit), expected, "round {round}");
            // This round's count change alone (a recycled count list holds
            // none of an earlier round's).
            let change = after as i64 - below.len() as i64;
            let counts: Vec<i64> = commit.counts.iter().map(|&(_, c)| c).collect();
            assert_eq!(counts, if change == 0 { vec![] } else { vec![change] }, "round {round}");
            if round % 3 == 2 {
                // Applied in place: the buffers go back to the write set.
                writes.recycle_commit(commit.tables, commit.counts);
                continue;
            }
            let len = commit.encoded_len();
            // A small commit's record is encoded from the write set (after
            // whatever the WAL queue holds), a big one's from its batch:
            // the same bytes.
            let mut queue = b"queued".to_vec();
            commit.encode_into(&mut queue, len);
            let record = queue.split_off(b"queued".len());
            assert_eq!(queue, b"queued", "round {round}");
            let charge: usize = expected.iter().map(|(k, v)| entry_charge(k, v.as_deref())).sum();
            assert_eq!((commit.op_count(), commit.charge()), (expected.len(), charge), "round {round}");
            let batch = commit.into_batch();
            assert_eq!(batch.encoded_len(), len, "round {round}");
            assert_eq!(batch.encode(), record, "round {round}");
            let got: Vec<(Vec<u8>, Option<Vec<u8>>)> =
                batch.ops.into_iter().map(|op| (op.key.to_vec(), op.value.map(|v| v.to_vec()))).collect();
            assert_eq!(got, expected, "round {round}");
        }
    }



    fn rng(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    /// Random tails of every small size and around powers of two, keys short,
    /// zero-padded twins, shared heads: take_sorted's iter and into_ops both
    /// give byte order with every value beside its key.
    #[test]
    fn take_sorted_matches_a_model_at_every_small_size() {
        let mut x = 0x1234_5678_9abc_def1u64;
        let sizes: Vec<usize> = (0..70).chain([127, 128, 129, 255, 256, 257, 1023, 1024, 1025, 4097]).collect();
        for round in 0..4 {
            for &n in &sizes {
                let mut keys = std::collections::BTreeSet::new();
                let mut tries = 0;
                while keys.len() < n && tries < 50 * n + 50 {
                    tries += 1;
                    let len = (rng(&mut x) % [12, 9, 12, 40][round]) as usize;
                    let alphabet = [2u64, 3, 256, 256][round];
                    let mut key: Vec<u8> = (0..len).map(|_| (rng(&mut x) % alphabet) as u8).collect();
                    if round == 3 {
                        key.splice(0..0, [0xab; 7]);
                    }
                    keys.insert(key);
                }
                let keys: Vec<Vec<u8>> = keys.into_iter().collect();
                let mut shuffled = keys.clone();
                for i in (1..shuffled.len()).rev() {
                    let j = (rng(&mut x) % (i as u64 + 1)) as usize;
                    shuffled.swap(i, j);
                }
                let mut tail = Tail::default();
                for (i, key) in shuffled.iter().enumerate() {
                    let value = [key.as_slice(), b"="].concat();
                    tail.push(Tail::hash(key), key, (!i.is_multiple_of(5)).then_some(&value[..]));
                }
                let n = keys.len();
                let at: std::collections::HashMap<&Vec<u8>, usize> = shuffled.iter().enumerate().map(|(i, k)| (k, i)).collect();
                let expected: Vec<(Vec<u8>, Option<Vec<u8>>)> = keys
                    .iter()
                    .map(|k| {
                        let i = at[k];
                        (k.clone(), (!i.is_multiple_of(5)).then(|| [k.as_slice(), b"="].concat()))
                    })
                    .collect();
                let sorted = tail.take_sorted();
                let via_iter: Vec<(Vec<u8>, Option<Vec<u8>>)> = sorted.iter().map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec))).collect();
                assert_eq!(via_iter, expected, "iter, n {n} round {round}");
                let ops = sorted.into_ops();
                assert_eq!(ops.len(), n);
                let via_ops: Vec<(Vec<u8>, Option<Vec<u8>>)> = ops.map(|(k, v)| (k.to_vec(), v.map(|v| v.to_vec()))).collect();
                assert_eq!(via_ops, expected, "into_ops, n {n} round {round}");
            }
        }
    }
}
