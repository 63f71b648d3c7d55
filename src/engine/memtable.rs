//! The memtable: an MVCC skip list of committed writes not yet in the tree.
//!
//! Entries are keyed by `(table id, key, sequence)`, ordered by table, then
//! by the table's comparator, then by sequence *descending*, so a key's
//! versions sit together, newest first. A read at snapshot `S` takes, per key,
//! the first version with sequence `<= S`. Deletions are tombstones (`None`).
//! Table creations, renames and deletions are kept beside the data as
//! versioned name bindings.
//!
//! # Thread safety
//! Inserted on behalf of one commit at a time: by the committer under the
//! commit lock (`engine::core::insert_runs`), or for a big commit by the
//! inserter thread, which the next commit and any freezer wait for
//! (`engine::pending`: until it is done, readers find the commit in the
//! state's pending run). Read concurrently by any number of readers,
//! lock-free (`engine::skiplist`: one writer, and a commit's keys arrive
//! sorted, which its splice turns into short searches). The binding list has
//! its own short lock.

use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use super::id_hash::IdMap;
use super::batch::TableDef;
use super::filter::{KeyFilter, key_hash};
use super::skiplist::{ArenaBytes, GROUP, Point, SeekKey, SkipList, Writer};
use super::key_bytes::KeyBytes;
use crate::hugepage::Pages;
use crate::btree::{Comparator, ValueBytes, byte_order, is_bytewise};

/// A skip-list key. Every key of one table carries that table's key order
/// (as a tag, see [`KeyOrder`]). Probes for range scans may instead sit
/// before or after every key of a table (`edge`), since no key can be
/// fabricated for an arbitrary order.
pub(crate) struct MemKey {
    pub(crate) table: u64,
    /// For a byte-ordered table, the key's first eight bytes as a
    /// big-endian word (`KeyBytes::head_word`, kept inside the key's
    /// slot) come first: two keys whose words differ are ordered by them,
    /// so most comparisons of a skip-list walk settle on two integers
    /// (measured: the key comparison was half of a memtable point read).
    /// Other orders compare in full. The key's tag is its table's
    /// [`KeyOrder`].
    pub(crate) key: KeyBytes,
    /// The sequence in the low [`SEQ_BITS`], the [`Edge`] above them: one
    /// word, not two (an edge beside the words took eight bytes of every
    /// skip-list node with its padding).
    seq_edge: u64,
}

/// A key order as the memtable's keys carry it: a tag of two bytes inside
/// the key's [`KeyBytes`], 0 for byte order and otherwise one more than the
/// comparator's place in a process-wide list ([`ORDERS`]), which only
/// grows. The comparator itself took a word of every skip-list node, an
/// eighth of a node of a 16-byte key (measured: 1.6 MB of a 1M-key
/// benchmark's peak RSS, in a memtable of 200K entries).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyOrder(u16);

/// Comparators other than byte order, in the order they were first seen:
/// [`ORDERS_CHUNK`]-long chunks made as needed, so that a tag is read with
/// two loads and the list costs a few KiB until it is used.
static ORDERS: [OnceLock<Box<[OnceLock<Comparator>]>>; ORDERS_CHUNKS] = [const { OnceLock::new() }; ORDERS_CHUNKS];
const ORDERS_CHUNK: usize = 256;
const ORDERS_CHUNKS: usize = 256;

impl KeyOrder {
    const BYTEWISE: Self = Self(0);

    /// `cmp`'s tag, given one the first time its address is seen. Finds
    /// it among those seen before (a program has a handful), so a probe
    /// made per lookup costs a few comparisons of addresses. A function
    /// can have several addresses (one per codegen unit that takes it):
    /// each gets a tag, and keys of one table may carry any of them, since
    /// a key is compared with its own tag's function.
    pub(crate) fn of(cmp: Comparator) -> Self {
        if is_bytewise(cmp) {
            return Self::BYTEWISE;
        }
        for at in 0..ORDERS_CHUNK * ORDERS_CHUNKS - 1 {
            let slot = &ORDERS[at / ORDERS_CHUNK].get_or_init(|| (0..ORDERS_CHUNK).map(|_| OnceLock::new()).collect())[at % ORDERS_CHUNK];
            // Taken in turn: the first empty slot is this comparator's,
            // unless another thread filled it first.
            let seen = *slot.get_or_init(|| cmp);
            if std::ptr::fn_addr_eq(seen, cmp) {
                return Self(at as u16 + 1);
            }
        }
        // 65,535 distinct functions ordering the keys of written tables in
        // one process: a program generating key types without bound.
        panic!("sluicedb: more than 65,535 distinct key orders in one process")
    }

    /// The comparator this tag stands for.
    fn comparator(self) -> Comparator {
        match self.0 {
            0 => crate::btree::bytewise,
            tag => {
                let at = usize::from(tag - 1);
                let chunk = ORDERS[at / ORDERS_CHUNK].get().expect("a tag is given after its chunk is made");
                *chunk[at % ORDERS_CHUNK].get().expect("a tag is given after its slot is filled")
            }
        }
    }

    fn is_bytewise(self) -> bool {
        self == Self::BYTEWISE
    }
}

/// Bits of [`MemKey::seq_edge`] holding the sequence. Sequences count
/// commits from 1: a process would need 2^62 of them to reach the edge bits;
/// a probe's "every version" (`u64::MAX`) is clamped to the largest.
const SEQ_BITS: u32 = 62;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;

// Six words: the table, four of the key (with its order), the sequence.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<MemKey>() == 48);

/// Where a probe sits within its table; stored entries are always `Key`.
/// The discriminants are the bits above [`SEQ_BITS`], in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Edge {
    Start = 0,
    Key = 1,
    End = 2,
}

impl MemKey {
    pub(crate) fn probe(table: u64, cmp: Comparator, key: &[u8], seq: u64) -> Self {
        Self::ordered(table, KeyOrder::of(cmp), key, seq)
    }

    /// [`probe`](Self::probe) with the order's tag at hand.
    pub(crate) fn ordered(table: u64, order: KeyOrder, key: &[u8], seq: u64) -> Self {
        Self {
            table,
            key: KeyBytes::tagged(key, order.0),
            seq_edge: (Edge::Key as u64) << SEQ_BITS | seq.min(SEQ_MASK),
        }
    }

    /// Whether this is a version of `key` in `table` (by bytes).
    fn is_version_of(&self, table: u64, key: &[u8]) -> bool {
        self.table == table && self.edge_of() == Edge::Key && *self.key == *key
    }

    /// Whether two stored keys (not edges) are versions of one key, in
    /// their table's order (a custom order may call different bytes
    /// equal). Byte-ordered keys whose first words differ, the common case
    /// of neighbours in the list, are told apart without a full comparison.
    #[inline]
    pub(crate) fn same_key_as(&self, other: &Self) -> bool {
        if self.table != other.table {
            return false;
        }
        match self.order() {
            KeyOrder::BYTEWISE => self.same_bytes_as(other),
            order => order.comparator()(&self.key, &other.key).is_eq(),
        }
    }

    /// Whether the two keys are the same table's and the same bytes (the
    /// first words compared first, as most neighbours differ there). The
    /// same key in byte order; in another order, a sufficient condition.
    #[inline]
    fn same_bytes_as(&self, other: &Self) -> bool {
        self.table == other.table && self.key.head_word() == other.key.head_word() && *self.key == *other.key
    }

    pub(crate) fn edge(table: u64, cmp: Comparator, edge: Edge) -> Self {
        Self {
            table,
            key: KeyBytes::tagged(&[], KeyOrder::of(cmp).0),
            seq_edge: (edge as u64) << SEQ_BITS,
        }
    }

    fn order(&self) -> KeyOrder {
        KeyOrder(self.key.tag())
    }

    /// The comparator of this key's table.
    pub(crate) fn comparator(&self) -> Comparator {
        self.order().comparator()
    }

    /// The commit that wrote this version (a probe's: the newest it sees).
    pub(crate) fn seq(&self) -> u64 {
        self.seq_edge & SEQ_MASK
    }

    fn edge_of(&self) -> Edge {
        match self.seq_edge >> SEQ_BITS {
            0 => Edge::Start,
            1 => Edge::Key,
            _ => Edge::End,
        }
    }
}

impl Ord for MemKey {
    /// Most comparisons of a walk settle on two words: the tables, then
    /// (for two keys of a byte-ordered table) their first eight bytes. That
    /// path stays small enough to inline into the walks; the rest is
    /// [`MemKey::cmp_rest`], out of line (measured with cachegrind: one
    /// function for both paths spilled registers on every call, +10%
    /// instructions in a commit-and-read probe).
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        if self.table != other.table {
            return self.table.cmp(&other.table);
        }
        const KEY: u64 = Edge::Key as u64;
        if (self.seq_edge >> SEQ_BITS, other.seq_edge >> SEQ_BITS) == (KEY, KEY) && self.order().is_bytewise() {
            // Unequal words decide byte order: a shorter key's zero padding
            // sorts before any byte, as its end does.
            let order = self.key.head_word().cmp(&other.key.head_word());
            if order.is_ne() {
                return order;
            }
        }
        self.cmp_rest(other)
    }
}

impl MemKey {
    /// [`Ord::cmp`] of two keys of one table, in full.
    #[inline(never)]
    fn cmp_rest(&self, other: &Self) -> Ordering {
        match (self.edge_of(), other.edge_of()) {
            (Edge::Key, Edge::Key) => {
                let order = match self.order() {
                    KeyOrder::BYTEWISE => byte_order(&self.key, &other.key),
                    order => order.comparator()(&self.key, &other.key),
                };
                // Same edge bits: the words order as the sequences.
                order.then_with(|| other.seq_edge.cmp(&self.seq_edge))
            }
            (a, b) => a.cmp(&b),
        }
    }
}

impl SeekKey for MemKey {
    /// The table, then the key's first eight bytes (byte order only: zero
    /// for other orders, whose keys the index then compares in full); a
    /// table's start and end probes sit at either end of its words.
    fn summary(&self) -> (u64, u64) {
        let word = match self.edge_of() {
            Edge::Start => 0,
            Edge::Key if self.order().is_bytewise() => self.key.head_word(),
            Edge::Key => 0,
            Edge::End => u64::MAX,
        };
        (self.table, word)
    }

    /// A key longer than `KeyBytes`' inline bytes owns a box.
    fn owns_memory(&self) -> bool {
        self.key.is_boxed()
    }

    /// A key's versions: the same table and key bytes, whatever the
    /// sequence. Bytes, not the table's order: the index is built on a
    /// thread of its own, which must not call a user's comparator after
    /// the commit that linked the nodes has returned (redb's tests count
    /// the calls). Keys an order calls equal with other bytes are then
    /// indexed apart, which only costs an entry.
    fn same_point(&self, next: &Self) -> bool {
        self.same_bytes_as(next)
    }
}

impl PartialOrd for MemKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for MemKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for MemKey {}

/// A name bound to a table (or unbound, `None`) by the commit `seq`:
/// `(seq, name, table)`.
pub(crate) type Binding = (u64, Vec<u8>, Option<TableDef>);

/// A value or a tombstone, its bytes in the skip list's arena
/// ([`ArenaBytes`]; read with `Entry::bytes`).
pub(crate) type MemValue = Option<ArenaBytes>;

// One word in every skip-list node: a tombstone is the null pointer.
const _: () = assert!(std::mem::size_of::<MemValue>() == std::mem::size_of::<usize>());

/// The largest key filter a memtable gets (that of a 2 GiB memtable), so a
/// huge configured size cannot allocate an absurd filter.
const MAX_FILTER_BYTES: usize = 32 << 20;

/// The point index gets a slot per this many bytes of capacity (8 bytes
/// each: 1/16 of the capacity), within these bounds. A full 64 MiB memtable
/// of 24-byte keys and 150-byte values holds about 280K entries; its index
/// takes up to 393K (three quarters of 512K slots), and entries past that
/// are found by searching the skip list.
const INDEX_BYTES_PER_SLOT: usize = 128;
const MIN_INDEX_SLOTS: usize = 64;
const MAX_INDEX_SLOTS: usize = 1 << 21;

/// Bytes an entry is charged for: its key and value plus skip-list overhead.
const ENTRY_OVERHEAD: usize = 64;

pub(crate) struct Memtable {
    map: SkipList<MemKey, MemValue>,
    /// Made when the point index is about to fill, and given every key
    /// inserted from then on: with it, a point lookup of an absent key
    /// skips the walk even once the index is full. Every key inserted
    /// before it is in the index, whose miss already answers for those;
    /// until the index fills (a memtable of the default size and the
    /// benchmark's entries never does), there is no filter to fill or
    /// probe: its 1/64 of the capacity in memory, and a cache miss per
    /// insert and per lookup, saved.
    filter: OnceLock<KeyFilter>,
    /// Bytes the filter gets when it is made.
    filter_bytes: usize,
    /// Name bindings in sequence order: `(seq, name, table or unbound)`.
    bindings: Mutex<Vec<Binding>>,
    /// Table ids whose data a transaction in this memtable dropped, by seq.
    dropped: Mutex<Vec<(u64, u64)>>,
    /// Per table, how its entry count changed, as running sums in sequence
    /// order: `(seq, change of every commit up to seq)`.
    counts: Mutex<IdMap<Vec<(u64, i64)>>>,
    bytes: AtomicUsize,
    max_seq: AtomicU64,
}

/// What a memtable (or a pending run) says about one key at a snapshot.
pub(crate) enum Lookup<'a> {
    /// No version at or below the snapshot.
    Absent,
    /// The newest version: a value or a tombstone.
    Found(Option<&'a [u8]>),
}

impl Memtable {
    /// A memtable meant to be frozen at about `capacity` bytes. Its key
    /// filter, if the point index fills, takes 1/64 of that, up to
    /// [`MAX_FILTER_BYTES`]: at least 10 bits per entry, since an entry is
    /// charged at least 80 bytes (more entries only raise the filter's
    /// false-positive rate). Its point index is on base pages, each backed
    /// at its first use ([`with_index_pages`](Self::with_index_pages)).
    pub(crate) fn new(capacity: usize) -> Self {
        Self::with_index_pages(capacity, Pages::Lazy)
    }

    /// [`new`](Self::new), the point index backed as `pages` says if it
    /// spans a huge page (a memtable of 32 MiB or more): huge pages for a
    /// database whose lookups range over a large memtable, base pages
    /// backed at once for a memtable that will fill (`Inner::freeze`).
    pub(crate) fn with_index_pages(capacity: usize, pages: Pages) -> Self {
        let slots = (capacity / INDEX_BYTES_PER_SLOT).clamp(MIN_INDEX_SLOTS, MAX_INDEX_SLOTS);
        Self {
            map: SkipList::with_point_index(slots, pages),
            filter: OnceLock::new(),
            filter_bytes: (capacity / 64).min(MAX_FILTER_BYTES),
            bindings: Mutex::new(Vec::new()),
            dropped: Mutex::new(Vec::new()),
            counts: Mutex::new(IdMap::default()),
            bytes: AtomicUsize::new(0),
            max_seq: AtomicU64::new(0),
        }
    }

    /// The right to insert, held for a commit's writes (see the module's
    /// thread safety). Inserts in key order cost the least.
    pub(crate) fn inserter(&self) -> Inserter<'_> {
        Inserter {
            mem: self,
            writer: self.map.writer(),
        }
    }

    /// Starts a build of the skip list's seek index on a thread of its own
    /// when one is due (`SkipList::claim_seek_build`: a search has asked
    /// for the index since the last build, and the list has a few thousand
    /// entries, then each doubling, or each eighth more once a search has
    /// found the index stale): range reads then seek through a sorted array
    /// instead of the list's upper levels. Called after each commit's
    /// inserts and at the start of each range read of this memtable. The
    /// writer never waits for it; if no thread can be started, seeks walk
    /// the list as before.
    pub(crate) fn maintain(self: &Arc<Self>) {
        if self.map.claim_seek_build() {
            let mem = self.clone();
            let _ = std::thread::Builder::new()
                .name("sluicedb-seek".into())
                .spawn(move || mem.map.build_seek_index());
        }
    }

    /// One insert, charged and noted (see [`Memtable::inserter`] for many).
    #[cfg(test)]
    pub(crate) fn insert(&self, table: u64, cmp: Comparator, key: &[u8], seq: u64, value: Option<&[u8]>) {
        self.charge(entry_charge(key, value));
        self.inserter().insert_sorted(table, cmp, seq, std::iter::once((key, value)));
        self.note_seq(seq);
    }

    /// Adds bytes to what the memtable is charged for (its entries are
    /// charged by the committer, in one sum per commit, before they are
    /// inserted: see `engine::pending`).
    pub(crate) fn charge(&self, bytes: usize) {
        self.bytes.fetch_add(bytes, AtomicOrdering::Relaxed);
    }

    pub(crate) fn bind(&self, seq: u64, name: &[u8], def: Option<TableDef>) {
        self.bytes
            .fetch_add(name.len() + ENTRY_OVERHEAD, AtomicOrdering::Relaxed);
        self.bindings.lock().push((seq, name.to_vec(), def));
        self.max_seq.fetch_max(seq, AtomicOrdering::Release);
    }

    pub(crate) fn drop_table(&self, seq: u64, table: u64) {
        self.dropped.lock().push((seq, table));
        self.max_seq.fetch_max(seq, AtomicOrdering::Release);
    }

    /// Records how commit `seq` changed `table`'s entry count.
    /// REQUIRES: sequences increasing, as for `insert`.
    pub(crate) fn add_count(&self, seq: u64, table: u64, change: i64) {
        let mut counts = self.counts.lock();
        let sums = counts.entry(table).or_default();
        let total = sums.last().map_or(0, |&(_, sum)| sum) + change;
        sums.push((seq, total));
        self.bytes
            .fetch_add(std::mem::size_of::<(u64, i64)>(), AtomicOrdering::Relaxed);
    }

    /// How the commits at or below `seq` in this memtable changed `table`'s
    /// entry count.
    pub(crate) fn count_change(&self, table: u64, seq: u64) -> i64 {
        let counts = self.counts.lock();
        let Some(sums) = counts.get(&table) else { return 0 };
        match sums.partition_point(|&(s, _)| s <= seq) {
            0 => 0,
            n => sums[n - 1].1,
        }
    }

    /// Records a sequence as in this memtable (its commit's writes are in,
    /// or pending: see `engine::pending`).
    pub(crate) fn note_seq(&self, seq: u64) {
        self.max_seq.fetch_max(seq, AtomicOrdering::Release);
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(AtomicOrdering::Relaxed)
    }

    pub(crate) fn max_seq(&self) -> u64 {
        self.max_seq.load(AtomicOrdering::Acquire)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.max_seq() == 0
    }

    /// Starts loading what a [`get`](Self::get) of a byte-ordered key with
    /// this [`key_hash`] reads first (the point index's slot, and the key
    /// filter's block once there is one), so that its misses overlap the
    /// caller's other work.
    pub(crate) fn prefetch_get(&self, hash: u64) {
        if self.is_empty() {
            return;
        }
        self.map.prefetch_point(hash);
        if let Some(filter) = self.filter.get() {
            filter.prefetch(hash);
        }
    }

    /// The newest version of `key` at or below `seq` (the engine calls
    /// [`get_hashed`](Self::get_hashed) with the hash it already has).
    #[cfg(test)]
    pub(crate) fn get(&self, table: u64, cmp: Comparator, key: &[u8], seq: u64) -> Lookup<'_> {
        self.get_hashed(table, cmp, key, seq, is_bytewise(cmp).then(|| key_hash(table, key)))
    }

    /// [`get_hashed`](Self::get_hashed), a value found handed out as it
    /// lies in the arena, holding this memtable for as long as it lives (a
    /// short one is copied inline, as always). A copy of a long one was an
    /// allocation and a read of every byte, which an `insert` whose old
    /// value is never looked at paid for nothing (3% of an overwrite
    /// round's reads). `None`: no version at or below `seq`.
    pub(crate) fn get_shared(
        self: &Arc<Self>,
        table: u64,
        cmp: Comparator,
        key: &[u8],
        seq: u64,
        hash: Option<u64>,
    ) -> Option<Option<ValueBytes>> {
        let Lookup::Found(value) = self.get_hashed(table, cmp, key, seq, hash) else {
            return None;
        };
        let owner = || -> Arc<dyn Send + Sync> { self.clone() };
        #[expect(unsafe_code, reason = "a value shared with the arena that holds it")]
        // SAFETY: a memtable's arena bytes stay valid and unchanged while the
        // memtable lives, and the owner holds the memtable.
        Some(value.map(|bytes| unsafe { ValueBytes::shared(owner, bytes) }))
    }

    /// The newest version of `key` at or below `seq`, with the key's
    /// [`key_hash`] computed by the caller, who probes several memtables
    /// and the tree filter with it: `Some` exactly for a byte-ordered `cmp`.
    pub(crate) fn get_hashed(&self, table: u64, cmp: Comparator, key: &[u8], seq: u64, hash: Option<u64>) -> Lookup<'_> {
        debug_assert_eq!(hash.is_some(), is_bytewise(cmp), "a hash exactly for byte-ordered keys");
        // An empty memtable (the fresh one after a flush) costs one load,
        // not a filter probe and a skip-list walk.
        if self.is_empty() {
            return Lookup::Absent;
        }
        if let Some(hash) = hash {
            match self.map.point(hash, |k| k.is_version_of(table, key)) {
                Point::Newest(entry) if entry.key().seq() <= seq => return Lookup::Found(entry.bytes()),
                Point::Absent => return Lookup::Absent,
                // Not in the full index: every key left out of it is in the
                // filter (made before the index filled, `Inserter`).
                Point::Unindexed if self.filter.get().is_some_and(|f| !f.may_contain(hash)) => return Lookup::Absent,
                // Newer than the snapshot (search for the version it sees),
                // or the index cannot tell.
                Point::Newest(_) | Point::Unindexed | Point::Unknown => {}
            }
        }
        let probe = MemKey::probe(table, cmp, key, seq);
        match self.map.lower_bound(Bound::Included(&probe)) {
            Some(entry) if entry.key().table == table && cmp(&entry.key().key, key).is_eq() => {
                Lookup::Found(entry.bytes())
            }
            _ => Lookup::Absent,
        }
    }

    /// The newest binding of `name` at or below `seq`: `None` if this
    /// memtable says nothing, `Some(None)` if the name is unbound.
    pub(crate) fn binding(&self, name: &[u8], seq: u64) -> Option<Option<TableDef>> {
        self.bindings
            .lock()
            .iter()
            .rev()
            .find(|(s, n, _)| *s <= seq && n == name)
            .map(|(_, _, def)| def.clone())
    }

    /// Every binding at or below `seq`, oldest first.
    pub(crate) fn bindings(&self, seq: u64) -> Vec<Binding> {
        self.bindings
            .lock()
            .iter()
            .filter(|(s, _, _)| *s <= seq)
            .cloned()
            .collect()
    }

    /// Tables dropped at or below `seq`.
    pub(crate) fn dropped(&self, seq: u64) -> Vec<u64> {
        self.dropped
            .lock()
            .iter()
            .filter(|(s, _)| *s <= seq)
            .map(|(_, t)| *t)
            .collect()
    }

    /// The skip list, for range scans and flushes.
    pub(crate) fn map(&self) -> &SkipList<MemKey, MemValue> {
        &self.map
    }
}

/// Inserts into one memtable (see [`Memtable::inserter`]).
pub(crate) struct Inserter<'a> {
    mem: &'a Memtable,
    writer: Writer<'a, MemKey, MemValue>,
}

impl Inserter<'_> {
    /// Inserts one commit's versions of `table`'s keys, in ascending key
    /// order, [`GROUP`] at a time: each group's filter bits and index slots
    /// are prefetched as it is gathered, and its skip-list searches run
    /// interleaved ([`Writer::insert_group`]). The caller charges the bytes
    /// ([`Memtable::charge`], [`entry_charge`]) and notes the sequence.
    /// REQUIRES: no key is inserted twice at one sequence.
    pub(crate) fn insert_sorted<'k>(
        &mut self,
        table: u64,
        cmp: Comparator,
        seq: u64,
        ops: impl Iterator<Item = (&'k [u8], Option<&'k [u8]>)>,
    ) {
        let indexed = is_bytewise(cmp);
        let order = KeyOrder::of(cmp);
        let mut ops = ops.peekable();
        // The list's own buffer, sized to the commit when it is smaller than
        // a group: a group's 2.3 KB is past glibc's per-thread cache, and
        // a single write's commit allocated one entry for every commit.
        let mut group = self.writer.group_buffer(ops.size_hint().0);
        let mut hashes = [0u64; GROUP];
        while ops.peek().is_some() {
            // A group adds at most GROUP keys to the index: the filter is
            // made while the index still has room for all of them, so no
            // key is ever left out of both.
            let filter = match self.mem.filter.get() {
                None if indexed && self.writer.index_room() < GROUP => {
                    Some(self.mem.filter.get_or_init(|| KeyFilter::with_bytes(self.mem.filter_bytes)))
                }
                filter => filter.filter(|_| indexed),
            };
            for (key, value) in ops.by_ref().take(GROUP) {
                let hash = key_hash(table, key);
                if indexed {
                    self.writer.prefetch_index(hash);
                }
                if let Some(filter) = filter {
                    filter.prefetch(hash);
                }
                hashes[group.len()] = hash;
                // Point lookups in other orders search the list (keys equal
                // to the comparator may differ in their bytes, and their
                // hash): only byte-ordered keys are indexed.
                let value = value.map(|value| self.writer.store(value));
                group.push((MemKey::ordered(table, order, key, seq), value, indexed.then_some(hash)));
            }
            if let Some(filter) = filter {
                for &hash in &hashes[..group.len()] {
                    filter.insert(hash);
                }
            }
            self.writer
                .insert_group(&mut group, |a, b| b.is_version_of(a.table, &a.key));
        }
        self.writer.keep_group_buffer(group);
    }
}

/// Bytes a memtable entry is charged for: its key and value plus overhead.
pub(crate) fn entry_charge(key: &[u8], value: Option<&[u8]>) -> usize {
    key.len() + value.map_or(0, <[u8]>::len) + ENTRY_OVERHEAD
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btree::bytewise;

    #[test]
    fn a_long_value_found_holds_its_memtable_and_a_short_one_is_a_copy() {
        let mem = Arc::new(Memtable::new(1 << 20));
        let long = [7u8; 100];
        mem.insert(1, bytewise, b"a", 1, Some(b"short"));
        mem.insert(1, bytewise, b"b", 2, Some(&long));
        mem.insert(1, bytewise, b"c", 3, None);
        let get = |key: &[u8]| mem.get_shared(1, bytewise, key, 10, Some(key_hash(1, key)));
        let (short, long_value) = (get(b"a").unwrap().unwrap(), get(b"b").unwrap().unwrap());
        assert!(get(b"c").unwrap().is_none(), "a tombstone");
        assert!(get(b"d").is_none(), "absent");
        let weak = Arc::downgrade(&mem);
        drop(mem);
        assert_eq!(&long_value[..], &long[..]);
        assert!(weak.upgrade().is_some(), "a long value keeps its memtable");
        drop(long_value);
        assert!(weak.upgrade().is_none(), "a short value is a copy");
        assert_eq!(&short[..], b"short");
    }

    #[test]
    fn reads_see_the_newest_version_at_their_snapshot() {
        let m = Memtable::new(1 << 20);
        m.insert(1, bytewise, b"k", 5, Some(b"five"));
        m.insert(1, bytewise, b"k", 9, None);
        m.insert(1, bytewise, b"k", 12, Some(b"twelve"));
        m.insert(2, bytewise, b"k", 7, Some(b"other table"));
        let at = |seq| match m.get(1, bytewise, b"k", seq) {
            Lookup::Absent => "absent".to_string(),
            Lookup::Found(None) => "deleted".to_string(),
            Lookup::Found(Some(v)) => String::from_utf8(v.to_vec()).unwrap(),
        };
        assert_eq!(at(4), "absent");
        assert_eq!(at(5), "five");
        assert_eq!(at(8), "five");
        assert_eq!(at(9), "deleted");
        assert_eq!(at(100), "twelve");
        assert_eq!(m.max_seq(), 12);
    }

    /// The reverse of byte order: a user-defined order.
    fn reversed(a: &[u8], b: &[u8]) -> Ordering {
        b.cmp(a)
    }

    /// Keys around the eight-byte word: empty, short, zero bytes that look
    /// like padding, equal words with different tails.
    fn edge_keys() -> Vec<Vec<u8>> {
        let alphabet = [0u8, 1, 0x80, 0xff];
        let mut keys: Vec<Vec<u8>> = vec![Vec::new()];
        for len in [1usize, 2, 7, 8, 9, 12] {
            for &a in &alphabet {
                for &b in &alphabet {
                    let mut key = vec![a; len];
                    key[len - 1] = b;
                    keys.push(key);
                }
            }
        }
        keys
    }

    /// Byte order is tag 0; another comparator gets a tag the first time
    /// its address is seen, the same one after, from any thread, and a tag
    /// compares as its comparator does. (A function may have more than
    /// one address, one per codegen unit that takes it: each gets a tag,
    /// all standing for the same order.)
    #[test]
    fn key_orders_get_tags_that_compare_as_their_comparators() {
        fn by_length(a: &[u8], b: &[u8]) -> Ordering {
            a.len().cmp(&b.len()).then_with(|| a.cmp(b))
        }
        let pairs: [(&[u8], &[u8]); 4] = [(b"a", b"b"), (b"zz", b"aaa"), (b"", b"x"), (b"k", b"k")];
        let compares_as = |order: KeyOrder, cmp: Comparator| pairs.iter().all(|&(a, b)| order.comparator()(a, b) == cmp(a, b) && order.comparator()(b, a) == cmp(b, a));
        assert!(KeyOrder::of(bytewise).is_bytewise());
        let orders: Vec<(Comparator, KeyOrder)> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..4)
                .map(|i| {
                    scope.spawn(move || {
                        let cmps: [Comparator; 2] = if i % 2 == 0 { [reversed, by_length] } else { [by_length, reversed] };
                        cmps.map(|cmp| {
                            let order = KeyOrder::of(cmp);
                            assert!(order == KeyOrder::of(cmp), "one address, one tag");
                            (cmp, order)
                        })
                    })
                })
                .collect();
            threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
        });
        for (cmp, order) in orders {
            assert!(!order.is_bytewise() && compares_as(order, cmp));
        }
        let (short, long) = (MemKey::probe(1, by_length, b"zz", 1), MemKey::probe(1, by_length, b"aaa", 1));
        assert_eq!(short.cmp(&long), Ordering::Less);
        assert!(pairs.iter().all(|&(a, b)| short.comparator()(a, b) == by_length(a, b)));
        let (a, b) = (MemKey::probe(1, reversed, b"a", 1), MemKey::probe(1, reversed, b"b", 1));
        assert_eq!(a.cmp(&b), Ordering::Greater);
    }

    #[test]
    fn key_order_is_table_then_bytes_then_newest_first() {
        let keys = edge_keys();
        for cmp in [bytewise as Comparator, reversed] {
            let mem_keys: Vec<(u64, &[u8], u64)> = keys
                .iter()
                .flat_map(|k| [(1, k.as_slice(), 3), (1, k.as_slice(), 9), (2, k.as_slice(), 3)])
                .collect();
            for &(ta, ka, sa) in &mem_keys {
                for &(tb, kb, sb) in &mem_keys {
                    let got = MemKey::probe(ta, cmp, ka, sa).cmp(&MemKey::probe(tb, cmp, kb, sb));
                    let want = ta.cmp(&tb).then(cmp(ka, kb)).then(sb.cmp(&sa));
                    assert_eq!(got, want, "{ta}/{ka:?}/{sa} vs {tb}/{kb:?}/{sb}");
                }
            }
        }
    }

    #[test]
    fn huge_capacities_get_a_bounded_filter_and_long_keys_live_outside_the_node() {
        let m = Memtable::new(usize::MAX);
        let long = vec![7u8; 200];
        m.insert(1, bytewise, &long, 3, Some(b"v"));
        m.insert(1, bytewise, b"short", 4, Some(b"w"));
        assert!(matches!(m.get(1, bytewise, &long, 10), Lookup::Found(Some(_))));
        assert!(matches!(m.get(1, bytewise, b"short", 10), Lookup::Found(Some(_))));
        assert!(matches!(m.get(1, bytewise, b"absent", 10), Lookup::Absent));
    }

    #[test]
    fn lookups_agree_with_a_model_once_the_point_index_fills() {
        // A memtable whose point index (64 slots, 48 used) fills early: keys
        // past it are found by searching. Versions, tombstones, several
        // tables, and snapshots in between.
        let m = Memtable::new(MIN_INDEX_SLOTS * INDEX_BYTES_PER_SLOT);
        // (table, key, seq, value or tombstone), as inserted.
        type Version = (u64, Vec<u8>, u64, Option<Vec<u8>>);
        let mut model: Vec<Version> = Vec::new();
        let mut seq = 0;
        for round in 0..4u64 {
            for i in 0..60u64 {
                seq += 1;
                let (table, key) = (1 + i % 2, (i * 7 % 60).to_be_bytes().to_vec());
                let value = (round % 3 != 2).then(|| format!("{round}/{i}").into_bytes());
                m.insert(table, bytewise, &key, seq, value.as_deref());
                model.push((table, key, seq, value));
            }
        }
        for at in (0..=seq).step_by(7).chain([seq, u64::MAX]) {
            for table in 1..=3 {
                for i in 0..70u64 {
                    let key = i.to_be_bytes();
                    let expected = model
                        .iter()
                        .filter(|(t, k, s, _)| *t == table && k.as_slice() == key && *s <= at)
                        .max_by_key(|(.., s, _)| *s)
                        .map(|(.., v)| v.clone());
                    let got = match m.get(table, bytewise, &key, at) {
                        Lookup::Absent => None,
                        Lookup::Found(v) => Some(v.map(|v| v.to_vec())),
                    };
                    assert_eq!(got, expected, "table {table} key {i} at {at}");
                }
            }
        }
        assert!(m.filter.get().is_some(), "the index filled: keys left out of it are in the filter");
    }

    #[test]
    fn a_commit_whose_group_fills_the_index_is_found_key_by_key() {
        // Three keys, then one commit of 100: its groups of GROUP start at
        // 45, 37, .., 5 slots of room, so one group fills the index part
        // way through.
        let m = Memtable::new(MIN_INDEX_SLOTS * INDEX_BYTES_PER_SLOT);
        for i in 0..3u64 {
            m.insert(1, bytewise, &(1000 + i).to_be_bytes(), 1, Some(b"early"));
        }
        let keys: Vec<[u8; 8]> = (0..100u64).map(|i| (i * 3).to_be_bytes()).collect();
        m.charge(keys.len() * 80);
        m.inserter()
            .insert_sorted(1, bytewise, 2, keys.iter().map(|k| (&k[..], Some(&b"v"[..]))));
        m.note_seq(2);
        for i in 0..300u64 {
            let found = matches!(m.get(1, bytewise, &i.to_be_bytes(), 2), Lookup::Found(Some(b"v")));
            assert_eq!(found, i % 3 == 0, "key {i}");
        }
    }

    #[test]
    fn a_memtable_whose_index_keeps_every_key_makes_no_filter() {
        let m = Memtable::new(MIN_INDEX_SLOTS * INDEX_BYTES_PER_SLOT);
        // 48 slots usable; the filter comes once fewer than GROUP are left.
        for i in 0..(48 - GROUP) as u64 {
            m.insert(1, bytewise, &i.to_be_bytes(), i + 1, Some(b"v"));
            // Newer versions of an indexed key take no slot.
            m.insert(1, bytewise, &i.to_be_bytes(), i + 100, Some(b"w"));
        }
        assert!(m.filter.get().is_none());
        assert!(matches!(m.get(1, bytewise, b"absent", u64::MAX), Lookup::Absent));
        m.insert(1, bytewise, b"one more", 500, Some(b"v"));
        assert!(m.filter.get().is_none(), "room for a group was left before it");
        m.insert(1, bytewise, b"two more", 501, Some(b"v"));
        assert!(m.filter.get().is_some(), "made while the index could still take a whole group");
    }

    #[test]
    fn seeks_through_the_index_match_a_model_across_tables_orders_and_edges() {
        fn mix(i: u64) -> u64 {
            let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        let cmps: [Comparator; 3] = [bytewise, reversed, bytewise];
        let alphabet = [0u8, 1, 0x80, 0xff];
        let key_of = |r: u64| -> Vec<u8> {
            let len = [0usize, 1, 3, 7, 8, 9, 12][(r % 7) as usize];
            let mut k: Vec<u8> = (0..len).map(|i| alphabet[((r >> (8 + 2 * i)) & 3) as usize]).collect();
            if r.is_multiple_of(5) && k.len() >= 8 {
                k[..8].copy_from_slice(&[0xff; 8]);
            }
            k
        };
        let m = Arc::new(Memtable::new(1 << 24));
        let mut model: Vec<(u64, Vec<u8>, u64)> = Vec::new();
        for i in 0..3000u64 {
            let r = mix(i);
            let table = 1 + r % 3;
            let cmp = cmps[(table - 1) as usize];
            let key = key_of(r >> 3);
            let seq = 1 + i;
            m.insert(table, cmp, &key, seq, Some(b"v"));
            model.push((table, key, seq));
            if r.is_multiple_of(13) {
                m.map().build_seek_index();
            }
        }
        let order = |a: &(u64, Vec<u8>, u64), b: &(u64, Vec<u8>, u64)| {
            a.0.cmp(&b.0).then_with(|| cmps[(a.0 - 1) as usize](&a.1, &b.1)).then(b.2.cmp(&a.2))
        };
        model.sort_by(order);
        let got: Vec<(u64, Vec<u8>, u64)> = m.map().iter().map(|e| (e.key().table, e.key().key.to_vec(), e.key().seq())).collect();
        assert_eq!(got, model);
        for p in 0..3000u64 {
            let r = mix(p + 1_000_000);
            let table = 1 + r % 4;
            let cmp = cmps[((table - 1) % 3) as usize];
            let key = key_of(r >> 3);
            let seq = [0, 1500, u64::MAX][(r >> 40) as usize % 3];
            let probe = match (r >> 50) % 4 {
                0 => MemKey::edge(table, cmp, Edge::Start),
                1 => MemKey::edge(table, cmp, Edge::End),
                _ => MemKey::probe(table, cmp, &key, seq),
            };
            for inclusive in [true, false] {
                let b = if inclusive { Bound::Included(&probe) } else { Bound::Excluded(&probe) };
                let lb = m.map().lower_bound(b).map(|e| (e.key().table, e.key().key.to_vec(), e.key().seq()));
                let want = model
                    .iter()
                    .find(|k| {
                        let o = MemKey::probe(k.0, cmps[(k.0 - 1) as usize], &k.1, k.2).cmp(&probe);
                        o == Ordering::Greater || (inclusive && o == Ordering::Equal)
                    })
                    .cloned();
                assert_eq!(lb, want, "lower {inclusive} probe {p}");
                let ub = m.map().upper_bound(b).map(|e| (e.key().table, e.key().key.to_vec(), e.key().seq()));
                let want = model
                    .iter()
                    .rev()
                    .find(|k| {
                        let o = MemKey::probe(k.0, cmps[(k.0 - 1) as usize], &k.1, k.2).cmp(&probe);
                        o == Ordering::Less || (inclusive && o == Ordering::Equal)
                    })
                    .cloned();
                assert_eq!(ub, want, "upper {inclusive} probe {p}");
            }
        }
    }

    #[test]
    fn the_seek_summary_never_contradicts_the_key_order() {
        let keys = edge_keys();
        let mut all = Vec::new();
        for table in [1u64, 2, u64::MAX] {
            for cmp in [bytewise as Comparator, reversed] {
                let t = if is_bytewise(cmp) { table } else { table.wrapping_add(10) };
                all.push(MemKey::edge(t, cmp, Edge::Start));
                all.push(MemKey::edge(t, cmp, Edge::End));
                for k in &keys {
                    for seq in [0, 5, u64::MAX] {
                        all.push(MemKey::probe(t, cmp, k, seq));
                    }
                }
            }
        }
        for a in &all {
            for b in &all {
                if a < b {
                    assert!(a.summary() <= b.summary());
                }
            }
        }
    }

    #[test]
    fn a_point_read_in_a_custom_order_table_stays_short_past_the_index() {
        static CALLS: AtomicU64 = AtomicU64::new(0);
        fn counted(a: &[u8], b: &[u8]) -> Ordering {
            CALLS.fetch_add(1, AtomicOrdering::Relaxed);
            a.cmp(b)
        }
        let n = 12_000u64;
        let m = Memtable::new(1 << 26);
        for i in 0..n {
            m.insert(1, counted, &i.to_be_bytes(), i + 1, Some(b"v"));
            // As `Memtable::maintain` does after each commit, inline, with
            // the index asked for as a range read's seek would.
            m.map().want_seek_index();
            if m.map().claim_seek_build() {
                m.map().build_seek_index();
            }
        }
        CALLS.store(0, AtomicOrdering::Relaxed);
        assert!(matches!(m.get(1, counted, &(n - 1).to_be_bytes(), u64::MAX), Lookup::Found(Some(_))));
        let calls = CALLS.load(AtomicOrdering::Relaxed);
        assert!(calls < 200, "a point read of the newest key called the comparator {calls} times");
    }



    fn rev(a: &[u8], b: &[u8]) -> Ordering {
        b.cmp(a)
    }
    fn by_len(a: &[u8], b: &[u8]) -> Ordering {
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    }

    /// Keys of lengths around the inline limit (27..=33) and long ones, in
    /// byte-ordered and custom-ordered tables, several versions each, with
    /// seek indexes built between inserts: full scans, lower bounds and
    /// point gets agree with a model.
    #[test]
    fn keys_around_the_inline_limit_order_in_every_table_order() {
        let m = Memtable::new(64 << 20);
        let tables: [(u64, Comparator); 3] = [(1, bytewise), (2, rev), (3, by_len)];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // (table, order, key, seq, value), as inserted.
        type Version = (u64, Comparator, Vec<u8>, u64, Vec<u8>);
        let mut model: Vec<Version> = Vec::new();
        let mut seq: u64 = 0;
        for round in 0..6 {
            for &(table, cmp) in &tables {
                let mut keys = std::collections::BTreeSet::new();
                for _ in 0..900 {
                    let len = [0usize, 1, 7, 8, 9, 27, 28, 29, 30, 31, 32, 33, 64][(next() % 13) as usize];
                    let head = next() % 3;
                    let mut key: Vec<u8> = (0..len).map(|i| if i < 8 { head as u8 } else { (next() % 4) as u8 }).collect();
                    if len > 0 && next() % 4 == 0 {
                        *key.last_mut().unwrap() = 0;
                    }
                    keys.insert(key);
                }
                let mut keys: Vec<Vec<u8>> = keys.into_iter().collect();
                keys.sort_by(|a, b| cmp(a, b));
                seq += 1;
                let mut ins = m.inserter();
                let values: Vec<Vec<u8>> = keys.iter().map(|k| [k.as_slice(), &seq.to_le_bytes()].concat()).collect();
                ins.insert_sorted(table, cmp, seq, keys.iter().zip(&values).map(|(k, v)| (&k[..], Some(&v[..]))));
                drop(ins);
                m.note_seq(seq);
                for (k, v) in keys.into_iter().zip(values) {
                    model.push((table, cmp, k, seq, v));
                }
            }
            if round % 2 == 1 {
                m.map().build_seek_index();
            }
        }
        // Model order: table, key by its table's order, newest first.
        model.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| (a.1)(&a.2, &b.2)).then_with(|| b.3.cmp(&a.3)));
        let scanned: Vec<(u64, Vec<u8>, u64)> = m.map().iter().map(|e| (e.key().table, e.key().key.to_vec(), e.key().seq())).collect();
        let expected: Vec<(u64, Vec<u8>, u64)> = model.iter().map(|e| (e.0, e.2.clone(), e.3)).collect();
        assert_eq!(scanned.len(), expected.len());
        assert!(scanned == expected, "full scan order");
        for e in model.iter().step_by(7) {
            let (table, cmp, key) = (e.0, e.1, &e.2);
            let newest = model.iter().filter(|m| m.0 == table && cmp(&m.2, key).is_eq()).map(|m| (m.3, m.4.clone())).max().unwrap();
            match m.get(table, cmp, key, u64::MAX >> 2) {
                Lookup::Found(Some(v)) => assert_eq!(v, &newest.1[..], "get {table} {key:?}"),
                _ => panic!("get {table} {key:?} missing"),
            }
            let probe = MemKey::probe(table, cmp, key, u64::MAX >> 2);
            let lb = m.map().lower_bound(Bound::Included(&probe)).map(|e| (e.key().table, e.key().key.to_vec(), e.key().seq()));
            assert_eq!(lb, Some((table, key.clone(), newest.0)), "lower bound {table} {key:?}");
            assert_eq!(m.map().lower_bound(Bound::Included(&probe)).unwrap().key().comparator() as usize, cmp as usize);
        }
    }
}
