//! The engine state snapshot, and reads through its layers.
//!
//! A [`State`] is immutable: `{visible sequence, active memtable, frozen
//! memtables, tree snapshot}` behind one `Arc`. Publication, freezing and
//! flushing each build a new one and swap it in under the engine's state
//! lock, so a reader takes a consistent snapshot with one `Arc` clone and
//! never waits for a writer. A read at sequence `S` looks through the
//! memtables newest first (each answering with the newest version at or below
//! `S`), then the tree; the tree never holds anything above the sequence of
//! the state it came with (flushes only take published memtables).

use std::ops::Bound;
use std::sync::Arc;

use std::collections::HashMap;

use super::id_hash::IdMap;
use super::batch::TableDef;
use super::deferred::{DeferredTable, Overlay, overlay_get, overlay_source};
use super::memtable::{Lookup, Memtable};
use super::merge::{Direction, MemOwner, MemSource, Source, TreeSource};
use super::pending::PendingRun;
use super::tree_filter::{FilterGate, TreeFilter};
use super::filter::key_hash;
use super::flush_marker::CountAhead;
use super::key_bytes::KeyBytes;
use crate::btree::{Comparator, PinnedNode, Snapshot, TreeInfo, ValueBytes, bytewise, is_bytewise};
use crate::error::{Result, StorageError};

/// The tree holding the name -> table map.
pub(crate) const TABLES_TREE: &[u8] = b"sluice.tables";

/// A table's data lives in the tree named by its id.
pub(crate) fn data_tree_name(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// The table id of a data tree's name, if `name` is one.
pub(crate) fn data_tree_id(name: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(name.try_into().ok()?))
}

/// Encodes a table definition as the tables tree stores it.
pub(crate) fn encode_def(def: &TableDef) -> Vec<u8> {
    let mut out = def.id.to_le_bytes().to_vec();
    out.extend_from_slice(&def.meta);
    out
}

pub(crate) fn decode_def(bytes: &[u8]) -> Result<TableDef> {
    let (id, meta) = bytes
        .split_first_chunk::<8>()
        .ok_or_else(|| StorageError::corrupted("table entry too short"))?;
    Ok(TableDef {
        id: u64::from_le_bytes(*id),
        meta: meta.into(),
    })
}

/// What one tree commit says about tables, remembered: each table name's
/// definition in the tables tree, and each table's tree with its pinned
/// root. Every transaction's `open_table` asks for both (descents of the
/// catalog and of the tables tree, and the pinned root's lock: about 40% of
/// an `open_table`, which a single-write commit pays each time), and they
/// change only when a flush, tree commit or compaction publishes a new
/// tree. One memo serves every state of an engine; it holds the answers of
/// one commit, the newest asked about, and answers a state of another
/// commit by reading its tree (a commit never changes, and a newer one
/// replaces the answers), so a state never gets another commit's answer.
///
/// Relies on: `Snapshot::txn` names one published commit of this engine's
/// tree store and only grows (`TreeWriter::publish` numbers each commit one
/// above the last; a reopen makes a new engine and a new memo). A pinned
/// savepoint's snapshot reads through a memo of its own. The memo keeps the
/// newest commit's pinned roots alive until a newer commit's state asks.
#[derive(Default)]
pub(crate) struct TableMemo(parking_lot::Mutex<MemoOfCommit>);

#[derive(Default)]
struct MemoOfCommit {
    /// The tree commit (`Snapshot::txn`) the answers are for.
    txn: u64,
    defs: HashMap<Box<[u8]>, Option<TableDef>>,
    trees: IdMap<TreeOfTable>,
}

/// A table's tree in a commit (none before its first flush) and its root,
/// pinned (none for an empty tree).
type TreeOfTable = (Option<TreeInfo>, Option<Arc<PinnedNode>>);

impl TableMemo {
    /// `read`'s answer for `tree`'s commit under `key` of `pick`'s map,
    /// remembered. The key is copied only to remember a new
    /// answer: a table's name is looked up by every `open_table`.
    fn get<K, Q, V, S>(
        &self,
        tree: &Snapshot,
        key: &Q,
        pick: impl Fn(&mut MemoOfCommit) -> &mut HashMap<K, V, S>,
        read: impl FnOnce() -> Result<V>,
    ) -> Result<V>
    where
        K: std::hash::Hash + Eq + std::borrow::Borrow<Q> + From<Q::Owned>,
        Q: std::hash::Hash + Eq + ToOwned + ?Sized,
        V: Clone,
        S: std::hash::BuildHasher,
    {
        let txn = tree.txn();
        {
            let mut memo = self.0.lock();
            if memo.txn == txn {
                if let Some(known) = pick(&mut memo).get(key) {
                    return Ok(known.clone());
                }
            } else if memo.txn < txn {
                *memo = MemoOfCommit {
                    txn,
                    ..MemoOfCommit::default()
                };
            }
        }
        // Read outside the lock (a page may come from the disk); whoever
        // reads the same commit reads the same answer.
        let answer = read()?;
        let mut memo = self.0.lock();
        if memo.txn == txn {
            pick(&mut memo).insert(K::from(key.to_owned()), answer.clone());
        }
        Ok(answer)
    }
}

/// Recovered records of tables whose key order is not known yet, by table
/// id (see `engine::deferred`). Empty unless a crash left such records.
pub(crate) type DeferredTables = Arc<HashMap<u64, Arc<DeferredTable>>>;

#[derive(Clone)]
pub(crate) struct State {
    /// The highest sequence visible to readers of this state.
    pub(crate) seq: u64,
    /// The newest commit, while the inserter thread moves it into the
    /// active memtable (`engine::pending`): asked before the memtables.
    pub(crate) pending: Option<Arc<PendingRun>>,
    pub(crate) active: Arc<Memtable>,
    /// Frozen memtables waiting for flush, newest first.
    /// Shared, not copied, by the states that follow until the next freeze
    /// or flush: a state is made for every commit published.
    pub(crate) frozen: Arc<[Arc<Memtable>]>,
    /// Older than every memtable, newer than the tree.
    pub(crate) deferred: DeferredTables,
    pub(crate) tree: Snapshot,
    /// No entry of `tree` has a sequence above this: the last sequence of
    /// every memtable written to it (in whole or in part), of every tree
    /// commit, and of the WAL at open. A reader at this sequence or above
    /// reads the same data through this state as through any earlier one,
    /// which is what lets a read table's ranges follow flushes
    /// (`ReadTable`'s range view).
    pub(crate) tree_seq: u64,
    /// The tree filter current when this state was made: it answers only
    /// for the tree commits it covers (`engine::tree_filter`).
    pub(crate) tree_filter: Option<Arc<TreeFilter>>,
    /// While a flush is part way through a memtable, or after recovery
    /// found that one was: by how much each table's tree count is ahead of
    /// its count at the checkpoint, which the memtables count again
    /// (`engine::flush_marker`).
    pub(crate) count_ahead: Option<CountAhead>,
    /// What `tree`'s commit says about tables, remembered ([`TableMemo`]).
    pub(crate) tables: Arc<TableMemo>,
    /// The views the writer asked of this state ([`ViewMemo`]).
    pub(crate) views: ViewMemo,
}

/// The table views a state made for the writer ([`State::writer_view`]),
/// with the key order each was made for. A state outlives many commits (a
/// commit that changes nothing but the sequence publishes it in place:
/// `Inner::publish_seq`), and every one of them opens its table, which
/// made the same view again, in an allocation of its own. A state made from
/// this one starts with none: its layers may differ, and a view is only
/// valid for the state that made it.
#[derive(Default)]
pub(crate) struct ViewMemo(parking_lot::Mutex<Vec<(Comparator, Arc<TableView>)>>);

impl Clone for ViewMemo {
    /// An empty memo (see the type's docs).
    fn clone(&self) -> Self {
        Self::default()
    }
}

/// Views a memo keeps: a writer has a table or two open.
const MEMO_VIEWS: usize = 8;

/// A table resolved in a state: enough to read it without further lookups.
#[derive(Clone)]
pub(crate) struct TableView {
    pub(crate) def: TableDef,
    pub(crate) cmp: Comparator,
    /// The table's tree in the state's tree snapshot, if flushed yet.
    pub(crate) tree: Option<TreeInfo>,
    /// That tree's root, pinned with the inner nodes below it in the
    /// snapshot's commit (absent for an empty tree): every point lookup
    /// starts there, so the view keeps it rather than ask the page cache.
    pub(crate) root: Option<Arc<PinnedNode>>,
    /// Recovered records not yet absorbed into the tree, in `cmp`'s order.
    pub(crate) overlay: Option<Overlay>,
    /// Added to the tree's entry count: how the overlay changes it, less
    /// what a partly flushed memtable already put in the tree.
    pub(crate) count_adjust: i64,
}

impl State {
    pub(crate) fn memtables(&self) -> impl Iterator<Item = &Arc<Memtable>> {
        std::iter::once(&self.active).chain(self.frozen.iter())
    }

    /// An owner for each memtable's long values, in
    /// [`memtables`](Self::memtables) order, for [`sources`](Self::sources)
    /// of this state to share among the ranges of one reader (see
    /// [`MemOwner`]). Owners of another state's memtables would be given to
    /// the wrong sources: `MemSource::new` checks, in debug builds.
    pub(crate) fn mem_owners(&self) -> Vec<MemOwner> {
        self.memtables().map(MemOwner::of).collect()
    }

    /// The in-memory layers a range of this state merges above the tree:
    /// the pending run and the memtables that hold anything (`sources`).
    pub(crate) fn memory_layers(&self) -> usize {
        usize::from(self.pending.is_some()) + self.memtables().filter(|m| !m.is_empty()).count()
    }

    pub(crate) fn frozen_bytes(&self) -> usize {
        self.frozen.iter().map(|m| m.bytes()).sum()
    }

    /// Bytes of the frozen memtables queued behind the oldest one, which the
    /// apply thread flushes first (and is flushing, if it is busy).
    pub(crate) fn queued_bytes(&self) -> usize {
        let queued = self.frozen.len().saturating_sub(1);
        self.frozen[..queued].iter().map(|m| m.bytes()).sum()
    }

    /// The table bound to `name` at `seq`.
    pub(crate) fn lookup_table(&self, name: &[u8], seq: u64) -> Result<Option<TableDef>> {
        for mem in self.memtables() {
            if let Some(binding) = mem.binding(name, seq) {
                return Ok(binding);
            }
        }
        self.tables.get(
            &self.tree,
            name,
            |memo| &mut memo.defs,
            || {
                let Some(tables) = self.tree.tree(TABLES_TREE)? else {
                    return Ok(None);
                };
                self.tree
                    .get(&tables, bytewise, name)?
                    .map(|v| decode_def(v.as_bytes()))
                    .transpose()
            },
        )
    }

    /// [`view`](Self::view), shared: made once per state for the writer
    /// ([`ViewMemo`]). Only the writer asks, so the memo's lock is not
    /// contended.
    pub(crate) fn writer_view(&self, def: TableDef, cmp: Comparator) -> Result<Arc<TableView>> {
        let same = |(order, view): &&(Comparator, Arc<TableView>)| std::ptr::fn_addr_eq(*order, cmp) && view.def == def;
        if let Some((_, view)) = self.views.0.lock().iter().find(same) {
            return Ok(view.clone());
        }
        let view = Arc::new(self.view(def, cmp)?);
        let mut memo = self.views.0.lock();
        if memo.len() < MEMO_VIEWS {
            memo.push((cmp, view.clone()));
        }
        Ok(view)
    }

    pub(crate) fn view(&self, def: TableDef, cmp: Comparator) -> Result<TableView> {
        let (tree, root) = self.tables.get(
            &self.tree,
            &def.id,
            |memo| &mut memo.trees,
            || {
                let tree = self.tree.tree(&data_tree_name(def.id))?;
                let root = match &tree {
                    Some(info) => self.tree.pinned_root(info)?,
                    None => None,
                };
                Ok((tree, root))
            },
        )?;
        let (overlay, overlay_count) = match self.deferred.get(&def.id) {
            None => (None, 0),
            Some(deferred) => {
                let in_tree = |key: &[u8]| -> Result<bool> {
                    Ok(match (&tree, &root) {
                        (Some(info), Some(root)) => self.tree.get_pinned(info, root, cmp, key)?.is_some(),
                        _ => false,
                    })
                };
                (Some(deferred.overlay(cmp)), deferred.count_change(cmp, in_tree)?)
            }
        };
        let ahead = self
            .count_ahead
            .as_ref()
            .and_then(|ahead| ahead.get(&def.id).copied())
            .unwrap_or(0);
        Ok(TableView {
            def,
            cmp,
            tree,
            root,
            overlay,
            count_adjust: overlay_count - ahead,
        })
    }

    /// The tables the tree alone knows (as of the last flush), by name.
    pub(crate) fn tree_tables(&self) -> Result<Vec<(Vec<u8>, TableDef)>> {
        let Some(info) = self.tree.tree(TABLES_TREE)? else {
            return Ok(Vec::new());
        };
        self.tree
            .range(&info, bytewise, Bound::Unbounded, Bound::Unbounded)?
            .map(|entry| {
                let entry = entry?;
                Ok((entry.key().to_vec(), decode_def(entry.value().as_bytes())?))
            })
            .collect()
    }

    /// Every table at `seq`, by name.
    pub(crate) fn list_tables(&self, seq: u64) -> Result<Vec<(Vec<u8>, TableDef)>> {
        let mut tables: std::collections::BTreeMap<_, _> = self.tree_tables()?.into_iter().collect();
        // Oldest memtable first, each in sequence order, so later bindings win.
        for mem in self.memtables().collect::<Vec<_>>().into_iter().rev() {
            for (_, name, def) in mem.bindings(seq) {
                match def {
                    Some(def) => tables.insert(name, def),
                    None => tables.remove(&name),
                };
            }
        }
        Ok(tables.into_iter().collect())
    }

    /// The value of `key` in `table` at `seq`.
    pub(crate) fn get(&self, table: &TableView, key: &[u8], seq: u64) -> Result<Option<ValueBytes>> {
        self.lookup(table, key, seq, None)
    }

    /// [`get`](Self::get) for a write of a key that is likely new (`insert`'s
    /// old value): asks the tree filter before descending the tree. Reads
    /// do not: their keys are usually present, and for a present key the
    /// probe is one more cache miss that saves nothing.
    /// Whether it asks is `gate`'s to say, from the filter's answers so
    /// far (see [`FilterGate`]).
    pub(crate) fn get_for_insert(
        &self,
        table: &TableView,
        key: &[u8],
        seq: u64,
        gate: &FilterGate,
    ) -> Result<Option<ValueBytes>> {
        self.lookup(table, key, seq, Some(gate))
    }

    fn lookup(&self, table: &TableView, key: &[u8], seq: u64, gate: Option<&FilterGate>) -> Result<Option<ValueBytes>> {
        // The memtables' point index slots, the tree filter's block and the
        // cache slot of the tree's page below its pinned nodes are each a
        // likely miss, taken one after the other below. Asked for together
        // first, they overlap, with the walk through the pinned nodes
        // (cached) as well (byte-ordered keys only: other orders search
        // the skip list and skip the filter).
        let hash = is_bytewise(table.cmp).then(|| key_hash(table.def.id, key));
        let filtered = gate.is_some_and(|gate| gate.ask());
        if let Some(hash) = hash {
            self.prefetch_lookup(hash, filtered);
        }
        // An insert's key the tree filter proves new skips the walk (the
        // no-sync row's single-key commits of new keys were 6% slower
        // walking it for nothing).
        let path = match (&table.tree, &table.root) {
            (Some(_), Some(_)) if filtered && self.tree_filter_proves_absent(hash, gate) => None,
            // Its error waits until the tree is needed: a key a memtable
            // holds is read as before even if a page below is damaged.
            (Some(info), Some(root)) => Some(self.tree.walk_pinned(info, root, table.cmp, key)),
            // Not flushed yet, or flushed empty (no root page).
            _ => None,
        };
        if let Some(found) = self.lookup_in_memory(table, key, seq, hash) {
            return Ok(found);
        }
        match path {
            Some(path) => self.tree.finish_pinned(path?, table.cmp, key),
            None => Ok(None),
        }
    }

    /// Starts loading what a lookup of the key hashed `hash` reads first:
    /// the memtables' point index slots and (`filtered`) the tree filter's
    /// block.
    fn prefetch_lookup(&self, hash: u64, filtered: bool) {
        for mem in self.memtables() {
            mem.prefetch_get(hash);
        }
        if filtered && let Some(filter) = &self.tree_filter {
            filter.prefetch(hash);
        }
    }

    /// What the layers above the tree hold for `key` at `seq` (`hash`: its
    /// [`key_hash`], for byte-ordered keys): `None` if none has it, else
    /// its value or `Some(None)` for a tombstone. A value found in the
    /// pending run is copied out; one found in a memtable shares its arena's
    /// bytes and holds the memtable ([`Memtable::get_shared`]), as a
    /// range's values do.
    fn lookup_in_memory(&self, table: &TableView, key: &[u8], seq: u64, hash: Option<u64>) -> Option<Option<ValueBytes>> {
        if let Some(Lookup::Found(value)) = self.pending.as_ref().map(|run| run.get(table.def.id, key, seq)) {
            return Some(value.map(ValueBytes::copy_of));
        }
        for mem in self.memtables() {
            if let Some(found) = mem.get_shared(table.def.id, table.cmp, key, seq, hash) {
                return Some(found);
            }
        }
        table.overlay.as_ref().and_then(|o| overlay_get(o, table.cmp, key))
    }

    /// How many of `keys` (each once) have an entry in `table` at `seq`:
    /// a [`get`](Self::get) of each, for a group of keys at a time, every
    /// step of the lookup taken for the whole group before the next, so
    /// that the group's cache misses (index slots and filter blocks, then
    /// leaves' cache slots, then leaves) overlap instead of following one
    /// another. For the keys blind puts wrote (`WriteTxn::put`); the tree
    /// filter is asked as `gate` says (see [`FilterGate`]).
    pub(crate) fn count_present(&self, table: &TableView, keys: &[KeyBytes], seq: u64, gate: &FilterGate) -> Result<u64> {
        const GROUP: usize = crate::btree::SEARCH_GROUP;
        let mut present = 0;
        let tree = match (&table.tree, &table.root) {
            (Some(info), Some(root)) => Some((info, root)),
            _ => None,
        };
        if !is_bytewise(table.cmp) {
            for key in keys {
                present += u64::from(self.get(table, key, seq)?.is_some());
            }
            return Ok(present);
        }
        let mut in_tree = Vec::with_capacity(GROUP);
        for group in keys.chunks(GROUP) {
            let mut hashes = [0; GROUP];
            let filtered = gate.ask();
            for (hash, key) in hashes.iter_mut().zip(group) {
                *hash = key_hash(table.def.id, key);
                self.prefetch_lookup(*hash, filtered);
            }
            for (key, &hash) in group.iter().zip(&hashes) {
                let key = &key[..];
                if let Some(found) = self.lookup_in_memory(table, key, seq, Some(hash)) {
                    present += u64::from(found.is_some());
                } else if tree.is_some() && !(filtered && self.tree_filter_proves_absent(Some(hash), Some(gate))) {
                    in_tree.push(key);
                }
            }
            if let Some((info, root)) = tree
                && !in_tree.is_empty()
            {
                present += self.tree.count_found(info, root, &in_tree)?;
            }
            in_tree.clear();
        }
        Ok(present)
    }

    /// `false` only if the state's tree cannot hold the key whose
    /// [`key_hash`] is `hash` (`None`: a key of another order, which the
    /// filter does not cover).
    /// Whether the tree filter proves the key hashed `hash` absent from
    /// the tree; its answer, if it gave one, goes to `gate`.
    fn tree_filter_proves_absent(&self, hash: Option<u64>, gate: Option<&FilterGate>) -> bool {
        let (Some(filter), Some(hash)) = (&self.tree_filter, hash) else {
            return false;
        };
        let absent = !filter.may_contain(self.tree.txn(), hash);
        if let Some(gate) = gate {
            gate.answered(absent);
        }
        absent
    }

    /// The number of entries in `table` at `seq`, without counting: the
    /// tree's count, adjusted (`TableView::count_adjust`), moved by every
    /// memtable's recorded count changes at or below `seq`.
    pub(crate) fn len(&self, table: &TableView, seq: u64) -> Result<u64> {
        let tree = table.tree.as_ref().map_or(0, |info| info.len() as i64);
        let memtables: i64 = self.memtables().map(|m| m.count_change(table.def.id, seq)).sum();
        let total = tree + table.count_adjust + memtables;
        u64::try_from(total)
            .map_err(|_| StorageError::corrupted(format!("table {} would hold {total} entries", table.def.id)))
    }

    /// The pending run's, the memtables' and the tree's sources of a range,
    /// highest priority first.
    pub(crate) fn sources<'a>(
        &self,
        table: &TableView,
        seq: u64,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        direction: Direction,
        owners: &[MemOwner],
    ) -> Result<Vec<Source<'a>>> {
        // `owners`: this state's `mem_owners`, or none (each source makes its own).
        debug_assert!(owners.is_empty() || owners.len() == self.memtables().count());
        // Room for every layer (the pending run, the memtables, an overlay,
        // the tree) allocated at once: a first push into an empty vector
        // took its general growth path (`grow_one`, about 270 instructions
        // of a short range's 13K).
        let layers = usize::from(self.pending.is_some()) + 1 + self.frozen.len() + 2;
        let mut sources: Vec<Source<'a>> = Vec::with_capacity(layers);
        if let Some(run) = &self.pending {
            sources.extend(run.source(table.def.id, seq, lower, upper, direction));
        }
        for (i, mem) in self.memtables().enumerate() {
            if mem.is_empty() {
                continue;
            }
            sources.push(Source::Memtable(MemSource::new(
                mem.clone(),
                owners.get(i).cloned(),
                table.def.id,
                table.cmp,
                seq,
                lower,
                upper,
                direction,
            )));
        }
        if let Some(overlay) = &table.overlay {
            sources.push(overlay_source(overlay.clone(), table.cmp, lower, upper, direction));
        }
        if let Some(info) = &table.tree {
            let range = match &table.root {
                Some(root) => self.tree.range_pinned(info, root.clone(), table.cmp, lower, upper)?,
                None => self.tree.range(info, table.cmp, lower, upper)?,
            };
            sources.push(Source::Tree(TreeSource::new(range, direction)));
        }
        Ok(sources)
    }
}
