//! Savepoints: ephemeral (a pinned read snapshot) and persistent (a pinned
//! durable commit of the data file: `TreeWriter::pin_durable`). See
//! `design/savepoints.md`.
//!
//! Both kinds capture the committed state as of their transaction's start,
//! sequence `S`. Restoring one, in a transaction that has touched no table,
//! makes every user table equal to its state at `S` by writing only the
//! differences into the transaction's write set: the restore commits as one
//! ordinary WAL record, so recovery needs nothing new.
//!
//! Reserved names: every name this module stores starts with the byte 0xFF,
//! which no UTF-8 string (so no `TableDefinition` name) contains. The typed
//! API hides them from `list_tables`.
//! - `REGISTRY` (byte order) holds, per persistent savepoint, `b'p' ++ id`
//!   (big-endian) → its record (sequence, and its tables with their ids and
//!   metadata); `b'n' ++ 0` → the highest persistent id handed out; and per
//!   restore of savepoint `X` while another ephemeral savepoint lives,
//!   `b'r' ++ X` → `N`: every savepoint with an id strictly between `X` and
//!   `N` is invalid (they were created after `X`, and a restore of `X` put
//!   the database on another timeline). Without such a savepoint the record
//!   is not written: the restore deletes the newer persistent savepoints,
//!   and no id it would cover is ever handed out again in this process.
//! - A persistent savepoint's contents are the durable commit its tree pin
//!   (same id) keeps: the engine checkpoints the transaction's start state
//!   and pins that commit (`WriteTxn::pin_start_tree`). Records of version
//!   1, written before pins, name copies instead: `hidden_name(id, name)`
//!   holds the contents of table `name` at the savepoint's sequence; they
//!   are still restored and deleted.
//!
//! Invariants:
//! - Savepoint ids only grow, across restarts too: a new id is above every id
//!   this process gave out and above every id (and range end) the registry
//!   stores (`floor`). So a range recorded by a restore never covers a
//!   savepoint created after that restore.
//! - A persistent savepoint's record and a restore's invalidation range are
//!   written in the transaction's write set: they exist exactly when that
//!   transaction commits, and survive a crash exactly as its commit does.
//!   Its tree pin is durable before the commit, so it outlives it: a pin
//!   with no record (a transaction that aborted, crashed, or deleted its
//!   savepoint without a durable commit) keeps pages and nothing else, and
//!   is dropped at the next open ([`drop_orphan_pins`]).
//! - Creating a savepoint requires a clean transaction (no user table
//!   resolved, created, deleted or renamed; no restore), so `S` is also what
//!   the transaction itself sees.

use std::collections::BTreeSet;
use std::ops::Bound;

use crate::btree::Comparator;
use crate::engine::{Durability, Engine, MergedRange, ReadTxn, SavepointPin, TableRef, WriteTxn};
use crate::error::{CompactionError, SavepointError, StorageError};
use crate::transaction::LiveToken;
use crate::types::TableMeta;

/// The first byte of every reserved name.
const RESERVED: u8 = 0xFF;
const REGISTRY: &[u8] = b"\xffsluice.savepoints";
const HIDDEN_PREFIX: &[u8] = b"\xffsluice.savepoint.";
/// A record whose contents are copies in hidden tables (written before pins).
const RECORD_COPIED: u8 = 1;
/// A record whose contents are the tree pin of the same id.
const RECORD_PINNED: u8 = 2;

/// Whether `name` is reserved for savepoints (never a user table's).
pub(crate) fn is_reserved(name: &[u8]) -> bool {
    name.first() == Some(&RESERVED)
}

/// Whether the engine-level table `name` is one of sluicedb's own (the
/// persistent savepoints' registry and copies, named from a `0xFF` byte,
/// which no user table name begins with): not user data. A backup does not
/// copy them, and `sluice dump` leaves them out (a copy listing a savepoint
/// whose pinned commit it lacks could not restore it).
///
/// ```
/// assert!(sluicedb::is_reserved_table_name(b"\xffsluice.savepoints"));
/// assert!(!sluicedb::is_reserved_table_name(b"users"));
/// ```
pub fn is_reserved_table_name(name: &[u8]) -> bool {
    is_reserved(name)
}

/// The table holding table `name`'s contents for persistent savepoint `id`.
fn hidden_name(id: u64, name: &[u8]) -> Vec<u8> {
    let mut out = HIDDEN_PREFIX.to_vec();
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(name);
    out
}

fn key(tag: u8, id: u64) -> [u8; 9] {
    let mut k = [tag; 9];
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

/// A snapshot of the database that a write transaction can restore.
///
/// Made by [`WriteTransaction::ephemeral_savepoint`](crate::WriteTransaction::ephemeral_savepoint)
/// (valid while this handle lives, in this process) or
/// [`WriteTransaction::get_persistent_savepoint`](crate::WriteTransaction::get_persistent_savepoint).
pub struct Savepoint {
    id: u64,
    /// The engine instance it belongs to (`WriteTxn::engine_instance`).
    engine: u64,
    kind: Kind,
}

enum Kind {
    /// Pins the state at the savepoint's sequence, as a read transaction
    /// does, and counts as a live transaction (compaction waits for it).
    Ephemeral {
        snapshot: ReadTxn,
        _live: LiveToken,
        _pin: SavepointPin,
    },
    /// Its contents are its tree pin (or, for an old record, copies in the
    /// database's reserved tables).
    Persistent,
}

impl std::fmt::Debug for Savepoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            Kind::Ephemeral { .. } => "ephemeral",
            Kind::Persistent => "persistent",
        };
        write!(f, "Savepoint({}, {kind})", self.id)
    }
}

/// One table of a persistent savepoint, as its record lists it.
#[derive(Clone, Debug, PartialEq)]
struct SavedTable {
    name: Vec<u8>,
    id: u64,
    meta: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq)]
struct Record {
    seq: u64,
    tables: Vec<SavedTable>,
    /// Its contents are its tree pin (else copies in hidden tables).
    pinned: bool,
}

impl Record {
    fn encode(&self) -> Vec<u8> {
        let mut out = vec![if self.pinned { RECORD_PINNED } else { RECORD_COPIED }];
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&(self.tables.len() as u64).to_le_bytes());
        for t in &self.tables {
            out.extend_from_slice(&t.id.to_le_bytes());
            for part in [&t.name, &t.meta] {
                out.extend_from_slice(&(part.len() as u64).to_le_bytes());
                out.extend_from_slice(part);
            }
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, StorageError> {
        let bad = || StorageError::Corrupted("malformed persistent savepoint record".into());
        let mut rest = bytes;
        let mut take = |n: usize| -> Result<&[u8], StorageError> {
            if rest.len() < n {
                return Err(bad());
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        let pinned = match take(1)? {
            [RECORD_COPIED] => false,
            [RECORD_PINNED] => true,
            _ => return Err(bad()),
        };
        // `take(8)` gives exactly eight bytes.
        let read_u64 = |b: &[u8]| -> u64 { u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) };
        let seq = read_u64(take(8)?);
        let count = read_u64(take(8)?);
        let mut tables = Vec::new();
        for _ in 0..count {
            let id = read_u64(take(8)?);
            let name_len = usize::try_from(read_u64(take(8)?)).map_err(|_| bad())?;
            let name = take(name_len)?.to_vec();
            let meta_len = usize::try_from(read_u64(take(8)?)).map_err(|_| bad())?;
            let meta = take(meta_len)?.to_vec();
            tables.push(SavedTable { name, id, meta });
        }
        if !rest.is_empty() {
            return Err(bad());
        }
        Ok(Record { seq, tables, pinned })
    }
}

/// What the registry stores, as the transaction sees it.
#[derive(Default)]
struct Registry {
    /// The highest persistent savepoint id ever handed out (kept when that
    /// savepoint is deleted, so its id is never handed out again).
    highest: u64,
    persistent: Vec<u64>,
    /// `(X, N)`: ids strictly between are invalid.
    invalid: Vec<(u64, u64)>,
}

impl Registry {
    /// Every id the registry mentions is at or below this.
    fn floor(&self) -> u64 {
        let persistent = self.persistent.iter().copied().max().unwrap_or(0);
        let ranges = self.invalid.iter().map(|&(_, n)| n).max().unwrap_or(0);
        persistent.max(ranges).max(self.highest)
    }

    fn is_invalidated(&self, id: u64) -> bool {
        self.invalid.iter().any(|&(x, n)| x < id && id < n)
    }
}

fn registry_meta() -> Vec<u8> {
    TableMeta::of::<&[u8], &[u8]>().encode()
}

/// The registry table, opened (and created if `create`).
fn registry(txn: &mut WriteTxn, create: bool) -> Result<Option<TableRef>, StorageError> {
    if !create && txn.table_identity(REGISTRY)?.is_none() {
        return Ok(None);
    }
    Ok(Some(txn.open_table(
        REGISTRY,
        &registry_meta(),
        crate::btree::bytewise,
    )?))
}

fn read_registry(txn: &mut WriteTxn) -> Result<Registry, StorageError> {
    let mut out = Registry::default();
    let Some(table) = registry(txn, false)? else {
        return Ok(out);
    };
    for entry in txn.range(table, Bound::Unbounded, Bound::Unbounded)? {
        let (k, v) = entry?;
        let id = k
            .get(1..9)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .filter(|_| k.len() == 9)
            .ok_or_else(|| StorageError::Corrupted("malformed savepoint registry key".into()))?;
        match k[0] {
            b'p' => out.persistent.push(id),
            b'n' => {
                out.highest = v
                    .as_bytes()
                    .try_into()
                    .map(u64::from_le_bytes)
                    .map_err(|_| StorageError::Corrupted("malformed savepoint id floor".into()))?;
            }
            b'r' => {
                let n = v
                    .as_bytes()
                    .try_into()
                    .map(u64::from_le_bytes)
                    .map_err(|_| StorageError::Corrupted("malformed savepoint range".into()))?;
                out.invalid.push((id, n));
            }
            _ => return Err(StorageError::Corrupted("unknown savepoint registry entry".into())),
        }
    }
    Ok(out)
}

fn read_record(txn: &mut WriteTxn, id: u64) -> Result<Option<Record>, StorageError> {
    let Some(table) = registry(txn, false)? else {
        return Ok(None);
    };
    txn.get(table, &key(b'p', id))?
        .map(|v| Record::decode(v.as_bytes()))
        .transpose()
}

/// Whether the transaction may no longer create savepoints: it touched a
/// user table or restored a savepoint. Reserved tables do not count, so one
/// transaction may create and delete several persistent savepoints.
fn is_dirty(txn: &WriteTxn) -> bool {
    txn.restored() || txn.touched_tables().iter().any(|n| !is_reserved(n))
}

fn unknown_order(name: &[u8]) -> StorageError {
    StorageError::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!(
            "table {:?} has a custom key order that this process does not know: \
             open it through its typed definition first",
            String::from_utf8_lossy(name)
        ),
    ))
}

/// The user tables of a snapshot: `(name, id, meta, order)`.
/// With `restoring`, an order may come from the table bound now (see
/// [`order_or_current`]); without, nothing user-visible is resolved (that
/// would make the transaction dirty).
fn snapshot_tables(
    txn: &mut WriteTxn,
    snapshot: &ReadTxn,
    restoring: bool,
) -> Result<Vec<(SavedTable, Comparator)>, StorageError> {
    let mut out = Vec::new();
    for (name, _) in snapshot.list_tables()? {
        if is_reserved(&name) {
            continue;
        }
        let Some((id, meta)) = snapshot.table_def(&name)? else {
            continue;
        };
        let known = snapshot.table_order(&name)?.flatten();
        let table = SavedTable { name, id, meta };
        let cmp = match known.or_else(|| txn.order_of(table.id, &table.meta)) {
            Some(cmp) => cmp,
            None if restoring => order_or_current(txn, &table, None)?,
            None => return Err(unknown_order(&table.name)),
        };
        out.push((table, cmp));
    }
    Ok(out)
}

/// `known`, or else the order of the table now bound to the same name with
/// the same metadata (the same key type, so the same order): after a
/// reopen, a custom order is known once the user opened the table, which
/// may be a newer table than the saved one.
fn order_or_current(
    txn: &mut WriteTxn,
    table: &SavedTable,
    known: Option<Comparator>,
) -> Result<Comparator, StorageError> {
    if let Some(cmp) = known.or_else(|| txn.order_of(table.id, &table.meta)) {
        return Ok(cmp);
    }
    if let Some((_, meta)) = txn.table_identity(&table.name)?
        && same_types(&meta, &table.meta)
        && let Some(Some(cmp)) = txn.table_order(&table.name)?
    {
        return Ok(cmp);
    }
    Err(unknown_order(&table.name))
}

/// Whether two tables' metadata name the same types, so the same order:
/// the same bytes, or typed metadata one [`TableMeta::admits`] of the other.
/// (A multimap table's order letter differs between tables of the same
/// types created before and after sluicedb recorded `bytewise_pair`.)
fn same_types(a: &[u8], b: &[u8]) -> bool {
    a == b
        || matches!(
            (TableMeta::decode(a), TableMeta::decode(b)),
            (Some(a), Some(b)) if a.admits(&b) == Ok(true)
        )
}

/// A savepoint of the transaction's start state, alive while the handle is.
pub(crate) fn ephemeral(txn: &mut WriteTxn, live: LiveToken) -> Result<Savepoint, SavepointError> {
    if is_dirty(txn) {
        return Err(SavepointError::InvalidSavepoint);
    }
    let floor = read_registry(txn)?.floor();
    Ok(Savepoint {
        id: txn.next_savepoint_id(floor),
        engine: txn.engine_instance(),
        kind: Kind::Ephemeral {
            snapshot: txn.start_snapshot(),
            _live: live,
            _pin: txn.pin_ephemeral(),
        },
    })
}

/// Pins the transaction's start state (checkpointed, then its durable
/// commit kept: `WriteTxn::pin_start_tree`) and records it; the savepoint
/// exists once the transaction commits.
pub(crate) fn persistent(txn: &mut WriteTxn) -> Result<u64, SavepointError> {
    if txn.durability() != Durability::Immediate {
        return Err(SavepointError::ImmediateDurabilityRequired);
    }
    if is_dirty(txn) {
        return Err(SavepointError::InvalidSavepoint);
    }
    let floor = read_registry(txn)?.floor();
    let snapshot = txn.start_snapshot();
    let mut tables = Vec::new();
    for (name, _) in snapshot.list_tables()? {
        if let Some((id, meta)) = snapshot.table_def(&name)?.filter(|_| !is_reserved(&name)) {
            tables.push(SavedTable { name, id, meta });
        }
    }
    let id = txn.next_savepoint_id(floor);
    txn.pin_start_tree(id)?;
    let record = Record {
        seq: snapshot.sequence(),
        tables,
        pinned: true,
    };
    let Some(reg) = registry(txn, true)? else {
        return Err(StorageError::Internal("the savepoint registry was not created".into()).into());
    };
    txn.insert(reg, &key(b'p', id), &record.encode())?;
    // Ids never go backwards across restarts, even once this one is deleted.
    txn.insert(reg, &key(b'n', 0), &id.to_le_bytes())?;
    txn.pin_pending_persistent();
    txn.mark_persistent_modified();
    Ok(id)
}

/// Drops the tree pins no persistent savepoint records (their savepoint
/// was never committed, or was deleted without a durable commit): at open,
/// and before a compaction, which cannot move pinned pages.
pub(crate) fn drop_orphan_pins(engine: &Engine) -> Result<(), StorageError> {
    let pins = engine.tree_pin_ids()?;
    if pins.is_empty() {
        return Ok(());
    }
    let read = engine.begin_read()?;
    let mut recorded = BTreeSet::new();
    if let Some(table) = read.open_table(REGISTRY, crate::btree::bytewise)? {
        let (lower, upper) = ([b'p'], [b'q']);
        for entry in read.range(&table, Bound::Included(&lower), Bound::Excluded(&upper))? {
            let (k, _) = entry?;
            if let Some(id) = k.get(1..9).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes) {
                recorded.insert(id);
            }
        }
    }
    drop(read);
    for id in pins.into_iter().filter(|id| !recorded.contains(id)) {
        engine.drop_tree_pin(id)?;
    }
    Ok(())
}

/// Refuses compaction while a savepoint exists, as redb does: a persistent
/// one (stored, or created in a transaction still open), then an ephemeral
/// one.
pub(crate) fn check_compaction(engine: &Engine) -> Result<(), CompactionError> {
    let (ephemeral, pending) = engine.savepoint_pins();
    if pending > 0 || any_stored(&engine.begin_read()?)? {
        return Err(CompactionError::PersistentSavepointExists);
    }
    if ephemeral > 0 {
        return Err(CompactionError::EphemeralSavepointExists);
    }
    Ok(())
}

/// Whether a committed persistent savepoint exists in `read`'s snapshot.
fn any_stored(read: &ReadTxn) -> Result<bool, StorageError> {
    let Some(table) = read.open_table(REGISTRY, crate::btree::bytewise)? else {
        return Ok(false);
    };
    let lower = [b'p'];
    let upper = [b'q'];
    let mut range = read.range(&table, Bound::Included(&lower), Bound::Excluded(&upper))?;
    Ok(range.next().transpose()?.is_some())
}

pub(crate) fn get_persistent(txn: &mut WriteTxn, id: u64) -> Result<Savepoint, SavepointError> {
    if read_record(txn, id)?.is_none() {
        return Err(SavepointError::InvalidSavepoint);
    }
    Ok(Savepoint {
        id,
        engine: txn.engine_instance(),
        kind: Kind::Persistent,
    })
}

pub(crate) fn delete_persistent(txn: &mut WriteTxn, id: u64) -> Result<bool, SavepointError> {
    if txn.durability() != Durability::Immediate {
        return Err(SavepointError::ImmediateDurabilityRequired);
    }
    let existed = delete_record(txn, id)?;
    if existed {
        txn.mark_persistent_modified();
    }
    Ok(existed)
}

/// Removes persistent savepoint `id` and its tables; whether it existed.
fn delete_record(txn: &mut WriteTxn, id: u64) -> Result<bool, StorageError> {
    // Parsed before anything is removed: a damaged record changes nothing.
    let Some(record) = read_record(txn, id)? else {
        return Ok(false);
    };
    let Some(reg) = registry(txn, false)? else {
        return Ok(false);
    };
    txn.remove(reg, &key(b'p', id))?;
    if record.pinned {
        txn.unpin_after_commit(id);
    } else {
        for table in &record.tables {
            txn.delete_table(&hidden_name(id, &table.name))?;
        }
    }
    Ok(true)
}

pub(crate) fn list_persistent(txn: &mut WriteTxn) -> Result<Vec<u64>, StorageError> {
    Ok(read_registry(txn)?.persistent)
}

/// Where a restore reads a table's contents at the savepoint.
enum Source<'a> {
    Snapshot(&'a ReadTxn),
    Hidden(u64),
}

/// Makes every user table equal to its state at the savepoint: tables
/// created since are deleted, tables deleted (or replaced, or renamed)
/// since are recreated from the savepoint's contents, and tables that are
/// still the same table get only the differences. Invalidates the
/// savepoints created after this one.
pub(crate) fn restore(txn: &mut WriteTxn, savepoint: &Savepoint) -> Result<(), SavepointError> {
    if savepoint.engine != txn.engine_instance() {
        return Err(SavepointError::InvalidSavepoint);
    }
    let registry_now = read_registry(txn)?;
    if registry_now.is_invalidated(savepoint.id) {
        return Err(SavepointError::InvalidSavepoint);
    }
    let pinned;
    let (source, targets) = match &savepoint.kind {
        Kind::Ephemeral { snapshot, .. } => {
            if !txn.same_engine(snapshot) {
                return Err(SavepointError::InvalidSavepoint);
            }
            (Source::Snapshot(snapshot), snapshot_tables(txn, snapshot, true)?)
        }
        Kind::Persistent => {
            let Some(record) = read_record(txn, savepoint.id)? else {
                return Err(SavepointError::InvalidSavepoint);
            };
            if record.pinned {
                let Some(pin) = txn.tree_pin(savepoint.id)? else {
                    return Err(StorageError::Corrupted(format!(
                        "persistent savepoint {} has no pinned commit",
                        savepoint.id
                    ))
                    .into());
                };
                pinned = txn.pinned_snapshot(&pin)?;
                let targets = snapshot_tables(txn, &pinned, true)?;
                (Source::Snapshot(&pinned), targets)
            } else {
                copied_targets(txn, savepoint.id, record)?
            }
        }
    };
    let newer: Vec<u64> = registry_now
        .persistent
        .iter()
        .copied()
        .filter(|&p| p > savepoint.id)
        .collect();
    if txn.durability() != Durability::Immediate && !newer.is_empty() {
        return Err(SavepointError::ImmediateDurabilityRequired);
    }
    txn.mark_restored();
    if !newer.is_empty() {
        // The newer persistent savepoints are deleted below.
        txn.mark_persistent_modified();
    }

    let wanted: BTreeSet<&[u8]> = targets.iter().map(|(t, _)| &t.name[..]).collect();
    for (name, _) in txn.list_tables()? {
        if !is_reserved(&name) && !wanted.contains(&name[..]) {
            txn.delete_table(&name)?;
        }
    }
    for (table, cmp) in &targets {
        let source_range = match &source {
            Source::Snapshot(snapshot) => {
                let Some(t) = snapshot.open_table(&table.name, *cmp)? else {
                    return Err(StorageError::Internal("a savepoint's table vanished from its snapshot".into()).into());
                };
                snapshot.range(&t, Bound::Unbounded, Bound::Unbounded)?
            }
            Source::Hidden(id) => {
                let hidden = txn.open_table(&hidden_name(*id, &table.name), &table.meta, *cmp)?;
                txn.range(hidden, Bound::Unbounded, Bound::Unbounded)?
            }
        };
        let same = txn.table_identity(&table.name)? == Some((Some(table.id), table.meta.clone()));
        if !same && txn.table_identity(&table.name)?.is_some() {
            txn.delete_table(&table.name)?;
        }
        let handle = txn.open_table(&table.name, &table.meta, *cmp)?;
        make_equal(txn, handle, *cmp, source_range)?;
    }

    for id in newer {
        delete_record(txn, id)?;
    }
    // Every id handed out so far and above the restored one is invalid from
    // this commit on. The newer persistent savepoints are gone (above), and
    // ids handed out from now on are above `end`, so only a live ephemeral
    // savepoint other than this one can hold such an id: with none, the
    // record would guard nothing, and is not written (a restore then leaves
    // no trace in the file, as in redb).
    let others = txn.live_ephemeral_savepoints() - u64::from(matches!(savepoint.kind, Kind::Ephemeral { .. }));
    if others == 0 {
        return Ok(());
    }
    // `end` itself is burned, never handed out.
    let end = txn.next_savepoint_id(registry_now.floor());
    let Some(reg) = registry(txn, true)? else {
        return Err(StorageError::Internal("the savepoint registry was not created".into()).into());
    };
    txn.insert(reg, &key(b'r', savepoint.id), &end.to_le_bytes())?;
    Ok(())
}

/// An old (copied) record's tables, each with its order, read from its
/// hidden tables.
fn copied_targets<'a>(
    txn: &mut WriteTxn,
    id: u64,
    record: Record,
) -> Result<(Source<'a>, Vec<(SavedTable, Comparator)>), StorageError> {
    let mut targets = Vec::new();
    for table in record.tables {
        let hidden = hidden_name(id, &table.name);
        let known = txn.table_order(&hidden)?.flatten();
        let cmp = order_or_current(txn, &table, known)?;
        targets.push((table, cmp));
    }
    Ok((Source::Hidden(id), targets))
}

/// Writes into `table` only what makes it equal `target`: a merge of the
/// two ordered scans (a removal for a key only in the table, an insert for
/// a key missing or different).
fn make_equal(
    txn: &mut WriteTxn,
    table: TableRef,
    cmp: Comparator,
    mut target: MergedRange<'static>,
) -> Result<(), StorageError> {
    // The range owns what it read of the write set, so writing while it is
    // iterated does not change what it yields.
    let mut current = txn.range(table, Bound::Unbounded, Bound::Unbounded)?;
    let mut have = current.next().transpose()?;
    let mut want = target.next().transpose()?;
    loop {
        let order = match (&have, &want) {
            (None, None) => return Ok(()),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((h, _)), Some((w, _))) => cmp(h, w),
        };
        match order {
            std::cmp::Ordering::Less => {
                if let Some((k, _)) = &have {
                    txn.remove(table, k)?;
                }
                have = current.next().transpose()?;
            }
            std::cmp::Ordering::Greater => {
                if let Some((k, v)) = &want {
                    txn.insert(table, k, v.as_bytes())?;
                }
                want = target.next().transpose()?;
            }
            std::cmp::Ordering::Equal => {
                if let (Some((hk, hv)), Some((wk, wv))) = (&have, &want)
                    && (hk != wk || hv.as_bytes() != wv.as_bytes())
                {
                    txn.insert(table, wk, wv.as_bytes())?;
                }
                have = current.next().transpose()?;
                want = target.next().transpose()?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_reject_garbage() {
        for pinned in [false, true] {
            record_round_trips(pinned);
        }
    }

    fn record_round_trips(pinned: bool) {
        let record = Record {
            seq: 42,
            tables: vec![
                SavedTable {
                    name: b"a".to_vec(),
                    id: 7,
                    meta: b"meta".to_vec(),
                },
                SavedTable {
                    name: Vec::new(),
                    id: u64::MAX,
                    meta: Vec::new(),
                },
            ],
            pinned,
        };
        let bytes = record.encode();
        let mut unknown = bytes.clone();
        unknown[0] = 3;
        assert!(Record::decode(&unknown).is_err());
        assert_eq!(Record::decode(&bytes).unwrap(), record);
        for cut in 0..bytes.len() {
            assert!(Record::decode(&bytes[..cut]).is_err());
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(Record::decode(&long).is_err());
        let mut huge = bytes;
        huge[9..17].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(Record::decode(&huge).is_err());
    }

    #[test]
    fn reserved_names_are_not_utf8() {
        let registry = REGISTRY.to_vec();
        assert!(String::from_utf8(registry).is_err());
        assert!(is_reserved(&hidden_name(1, b"t")));
        assert!(!is_reserved(b"t"));
    }
}
