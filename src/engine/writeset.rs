//! A write transaction's private changes: per-table ordered writes, and the
//! net changes to the name -> table map.

use std::cmp::Ordering;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use super::batch::{Batch, DataOp, TableDef, new_table_id};
use super::key_bytes::KeyBytes;
use super::merge::{Direction, Item, Source};
use crate::btree::{Comparator, ValueBytes, compare, is_bytewise, prefix_word};

/// A key ordered by its table's comparator.
pub(crate) struct OrdKey {
    /// For a byte-ordered table, the key's [`prefix_word`] (zero for other
    /// orders): unequal words decide, so most comparisons of a write-set
    /// search read no key buffer (measured: a one-transaction load of 1M
    /// random keys spent a fifth of its time dereferencing keys in the
    /// map's nodes).
    prefix: u64,
    pub(crate) key: KeyBytes,
    pub(crate) cmp: Comparator,
}

impl OrdKey {
    pub(crate) fn new(key: &[u8], cmp: Comparator) -> Self {
        let prefix = if is_bytewise(cmp) { prefix_word(key) } else { 0 };
        Self {
            prefix,
            key: KeyBytes::new(key),
            cmp,
        }
    }
}

impl Ord for OrdKey {
    fn cmp(&self, other: &Self) -> Ordering {
        // Unequal prefix words decide byte order; for other orders both are
        // zero, so the comparator decides (byte order inlined: `compare`).
        self.prefix
            .cmp(&other.prefix)
            .then_with(|| compare(self.cmp, &self.key, &other.key))
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

/// Where a table in the transaction came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// It existed before the transaction, with this id.
    Existing(u64),
    /// Created by the transaction; the `n`th, which fixes its id at commit.
    New(u64),
}

pub(crate) struct TxnTable {
    pub(crate) origin: Origin,
    pub(crate) meta: Vec<u8>,
    /// The key order, once a typed `open_table` gave it. A table the
    /// transaction only named (metadata lookup, rename, delete) has none,
    /// and nothing reads or writes its keys until it has one: no other order
    /// is ever assumed for it.
    pub(crate) cmp: Option<Comparator>,
    pub(crate) writes: BTreeMap<OrdKey, Option<Vec<u8>>>,
    /// How the transaction changed the table's entry count.
    pub(crate) count_change: i64,
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

/// A lower and an upper bound on keys, owned.
pub(crate) type OwnedBounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// Index of a table within the write set.
pub(crate) type TableSlot = usize;

#[derive(Default)]
pub(crate) struct WriteSet {
    pub(crate) tables: Vec<TxnTable>,
    /// Names whose binding this transaction resolved or changed: to a table
    /// slot, or unbound.
    names: BTreeMap<Vec<u8>, Option<TableSlot>>,
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
}

impl WriteSet {
    /// Every name the transaction resolved, created, deleted or renamed.
    pub(crate) fn touched_names(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.names.keys()
    }

    /// Every name the transaction resolved or changed, with its binding.
    pub(crate) fn bindings(&self) -> impl Iterator<Item = (&Vec<u8>, &Option<TableSlot>)> {
        self.names.iter().filter(|(name, _)| self.changed.contains(*name))
    }

    /// The transaction's own binding of `name`, if it has one.
    pub(crate) fn binding(&self, name: &[u8]) -> Option<Option<TableSlot>> {
        self.names.get(name).copied()
    }

    /// Records an existing table as seen by this transaction, its key order
    /// not known yet.
    pub(crate) fn adopt(&mut self, name: &[u8], def: &TableDef) -> TableSlot {
        self.tables.push(TxnTable {
            origin: Origin::Existing(def.id),
            meta: def.meta.clone(),
            cmp: None,
            writes: BTreeMap::new(),
            count_change: 0,
            popped_front: None,
            popped_back: None,
        });
        let slot = self.tables.len() - 1;
        self.names.insert(name.to_vec(), Some(slot));
        slot
    }

    /// Records that `name` is bound to no table at the transaction's start
    /// (not a change: `bindings` leaves it out).
    pub(crate) fn note_missing(&mut self, name: &[u8]) {
        self.names.entry(name.to_vec()).or_insert(None);
    }

    /// Tables created so far.
    pub(crate) fn created(&self) -> u64 {
        self.created
    }

    pub(crate) fn create(&mut self, name: &[u8], meta: &[u8], cmp: Comparator) -> TableSlot {
        self.tables.push(TxnTable {
            origin: Origin::New(self.created),
            meta: meta.to_vec(),
            cmp: Some(cmp),
            writes: BTreeMap::new(),
            count_change: 0,
            popped_front: None,
            popped_back: None,
        });
        self.created += 1;
        let slot = self.tables.len() - 1;
        self.names.insert(name.to_vec(), Some(slot));
        self.changed.insert(name.to_vec());
        slot
    }

    pub(crate) fn delete(&mut self, name: &[u8], slot: TableSlot) {
        if let Origin::Existing(id) = self.tables[slot].origin {
            self.dropped.push(id);
        }
        self.tables[slot].writes.clear();
        self.tables[slot].count_change = 0;
        self.tables[slot].popped_front = None;
        self.tables[slot].popped_back = None;
        self.names.insert(name.to_vec(), None);
        self.changed.insert(name.to_vec());
    }

    pub(crate) fn rename(&mut self, from: &[u8], to: &[u8], slot: TableSlot) {
        self.names.insert(from.to_vec(), None);
        self.names.insert(to.to_vec(), Some(slot));
        self.changed.insert(from.to_vec());
        self.changed.insert(to.to_vec());
    }

    /// Writes `key` (a tombstone for `None`) and returns the value the write
    /// replaces: the transaction's own, or, where it has none, what `below`
    /// reads in the layers beneath (its snapshot). A tombstone over nothing
    /// is not written: there is nothing for it to hide. One search of the
    /// write set for both (measured: looking the key up and then putting it
    /// took two, and the lookup copied the key; a one-transaction load
    /// spent 38% of its time in that lookup).
    pub(crate) fn write(
        &mut self,
        slot: TableSlot,
        key: &[u8],
        value: Option<&[u8]>,
        below: impl FnOnce() -> crate::error::Result<Option<ValueBytes>>,
    ) -> crate::error::Result<Option<ValueBytes>> {
        let table = &mut self.tables[slot];
        let cmp = table.order();
        let new = value.map(<[u8]>::to_vec);
        let old = match table.writes.entry(OrdKey::new(key, cmp)) {
            Entry::Occupied(mut entry) => {
                if new.is_none() && entry.get().is_none() {
                    return Ok(None);
                }
                if is_bytewise(cmp) {
                    std::mem::replace(entry.get_mut(), new).map(ValueBytes::owned)
                } else {
                    // `insert` would keep the old key's bytes; under a
                    // custom order equal keys may differ, and the newest
                    // write's bytes are the key's from now on (as in the
                    // memtable and the tree).
                    let (_, old) = entry.remove_entry();
                    table.writes.insert(OrdKey::new(key, cmp), new);
                    old.map(ValueBytes::owned)
                }
            }
            Entry::Vacant(entry) => {
                let old = below()?;
                if new.is_none() && old.is_none() {
                    return Ok(None);
                }
                entry.insert(new);
                old
            }
        };
        table.count_change += i64::from(value.is_some()) - i64::from(old.is_some());
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

    /// How the transaction changed a table's entry count.
    pub(crate) fn count_change(&self, slot: TableSlot) -> i64 {
        self.tables[slot].count_change
    }

    /// The transaction's own entry for `key`: `None` if it has none,
    /// `Some(None)` if it deleted the key.
    pub(crate) fn get(&self, slot: TableSlot, key: &[u8]) -> Option<Option<ValueBytes>> {
        let table = &self.tables[slot];
        table
            .writes
            .get(&OrdKey::new(key, table.order()))
            .map(|v| v.as_ref().map(|v| ValueBytes::owned(v.clone())))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.tables.iter().all(|t| t.writes.is_empty())
    }

    /// The transaction's writes to one table between two bounds.
    pub(crate) fn source<'a>(
        &'a self,
        slot: TableSlot,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        direction: Direction,
    ) -> Source<'a> {
        let table = &self.tables[slot];
        let cmp = table.order();
        let wrap = |b: Bound<&[u8]>| match b {
            Bound::Included(k) => Bound::Included(OrdKey::new(k, cmp)),
            Bound::Excluded(k) => Bound::Excluded(OrdKey::new(k, cmp)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let (lower, upper) = (wrap(lower), wrap(upper));
        // An inverted range would make BTreeMap panic; it is simply empty.
        if let (Bound::Included(l) | Bound::Excluded(l), Bound::Included(u) | Bound::Excluded(u)) = (&lower, &upper) {
            let order = l.cmp(u);
            let both_inclusive = matches!((&lower, &upper), (Bound::Included(_), Bound::Included(_)));
            if order.is_gt() || (order.is_eq() && !both_inclusive) {
                return Box::new(std::iter::empty());
            }
        }
        let item = |(k, v): (&OrdKey, &Option<Vec<u8>>)| -> crate::error::Result<Item> {
            Ok((ValueBytes::owned(k.key.to_vec()), v.as_ref().map(|v| ValueBytes::owned(v.clone()))))
        };
        let range = table.writes.range((lower, upper));
        match direction {
            Direction::Forward => Box::new(range.map(item)),
            Direction::Backward => Box::new(range.rev().map(item)),
        }
    }

    /// The id each table gets when committed as `seq`.
    pub(crate) fn table_id(&self, slot: TableSlot, seq: u64) -> u64 {
        match self.tables[slot].origin {
            Origin::Existing(id) => id,
            Origin::New(n) => new_table_id(seq, n),
        }
    }

    /// The transaction as one WAL batch, committed with sequence `seq`.
    /// The commit's batch, moving the writes out (the transaction is being
    /// committed: no copy of each key and value, and no second copy of a
    /// big transaction in memory).
    pub(crate) fn take_batch(&mut self, seq: u64) -> Batch {
        let bindings = self
            .changed
            .iter()
            .map(|name| {
                let def = self.names.get(name).copied().flatten().map(|slot| TableDef {
                    id: self.table_id(slot, seq),
                    meta: self.tables[slot].meta.clone(),
                });
                (name.clone(), def)
            })
            .collect();
        let live: BTreeSet<TableSlot> = self.names.values().filter_map(|s| *s).collect();
        let mut ops = Vec::new();
        let mut counts = Vec::new();
        for slot in live {
            let id = self.table_id(slot, seq);
            if self.tables[slot].count_change != 0 {
                counts.push((id, self.tables[slot].count_change));
            }
            let writes = std::mem::take(&mut self.tables[slot].writes);
            ops.reserve(writes.len());
            for (key, value) in writes {
                ops.push(DataOp {
                    table: id,
                    key: key.key,
                    value,
                });
            }
        }
        Batch {
            bindings,
            dropped: self.dropped.clone(),
            ops,
            counts,
        }
    }

    /// The key order of every table with a known one, by the id it has
    /// when committed as `seq`.
    pub(crate) fn comparators(&self, seq: u64) -> Vec<(u64, Comparator)> {
        self.tables
            .iter()
            .enumerate()
            .filter_map(|(slot, t)| Some((self.table_id(slot, seq), t.cmp?)))
            .collect()
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
