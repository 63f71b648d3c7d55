//! Engine test helpers: crash-simulating storage and a numeric key order.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io;
use std::ops::Bound;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use sluicedb::btree::{Comparator, TreeStore, TreeStoreOptions, bytewise};
use sluicedb::engine::{Durability, Engine, EngineOptions, MergedRange};
use sluicedb::io::{CrashBackend, CrashDisk, StorageBackend, TearMode};

/// One small commit of the failure tests: key `i` (big-endian) with a
/// 100-byte value into table `t`, at the default durability.
pub fn commit_numbered(db: &Engine, i: u64) -> Result<(), sluicedb::StorageError> {
    let mut w = db.begin_write()?;
    let t = w.open_table(b"t", b"bytes", bytewise)?;
    w.insert(t, &i.to_be_bytes(), &[7u8; 100])?;
    w.commit()
}

/// The entries of table `t` ([`commit_numbered`]'s), 0 while it does not
/// exist.
pub fn count_numbered(db: &Engine) -> u64 {
    let txn = db.begin_read().unwrap();
    txn.open_table(b"t", bytewise).unwrap().map_or(0, |t| {
        txn.range(&t, Bound::Unbounded, Bound::Unbounded).unwrap().count() as u64
    })
}

/// Resolves the test tables' key orders from their metadata.
pub fn resolver(meta: &[u8]) -> Option<Comparator> {
    match meta {
        b"numeric" => Some(super::numeric),
        b"bytes" => Some(bytewise),
        _ => None,
    }
}

/// Small memtables and frequent checkpoints, so tests cross every stage.
pub fn small_options() -> EngineOptions {
    EngineOptions {
        memtable_bytes: 16 << 10,
        max_frozen_bytes: 256 << 10,
        segment_bytes: 8 << 10,
        checkpoint_wal_bytes: 64 << 10,
        // Flushes commit part way every few pages (`engine::flush_marker`),
        // so every crash and model test goes through those commits.
        flush_commit_bytes: 16 << 10,
        resolver,
        ..EngineOptions::default()
    }
}

/// A timer that checkpoints once commits have stopped for `interval`, and
/// no checkpoint by volume nor memtable frozen for its size within what a
/// test writes: every checkpoint is the timer's or asked for.
pub fn idle_timer_options(interval: std::time::Duration) -> EngineOptions {
    EngineOptions {
        checkpoint_interval: interval,
        checkpoint_wal_bytes: 64 << 20,
        memtable_bytes: 64 << 20,
        max_frozen_bytes: 256 << 20,
        ..small_options()
    }
}

/// Flushes in parts: a memtable that holds every commit until the
/// checkpoint, and a flush that commits every two pages (the crash tests
/// of `engine::flush_marker`).
pub fn flush_parts_options() -> EngineOptions {
    EngineOptions {
        memtable_bytes: 4 << 20,
        max_frozen_bytes: 16 << 20,
        checkpoint_wal_bytes: 64 << 20,
        flush_commit_bytes: 8 << 10,
        ..small_options()
    }
}

/// [`flush_parts_options`] with small memtables, for the open after a
/// crash: recovery must not end one inside the memtable the crashed flush
/// was writing (`flush_marker`, invariant 3).
pub fn flush_parts_reopen_options() -> EngineOptions {
    EngineOptions {
        memtable_bytes: 16 << 10,
        ..flush_parts_options()
    }
}

/// Keys [`flush_parts_fill`] loads.
pub const FLUSH_PARTS_KEYS: u64 = 2000;

/// The value of `key` at `version` in [`flush_parts_fill`]'s workload.
pub fn flush_parts_value(key: u64, version: u64) -> Vec<u8> {
    format!("key {key} version {version}").into_bytes()
}

/// A checkpointed tree of [`FLUSH_PARTS_KEYS`] keys in the table of `meta`
/// and `cmp`, then a memtable that overwrites a third of them, removes a
/// third and adds new ones (ten durable commits); returns the model. With
/// [`flush_parts_options`], its flush commits in parts.
pub fn flush_parts_fill(db: &Engine, meta: &[u8], cmp: Comparator) -> BTreeMap<u64, Vec<u8>> {
    let mut model = BTreeMap::new();
    for chunk in (0..FLUSH_PARTS_KEYS).collect::<Vec<_>>().chunks(200) {
        let ops: Vec<_> = chunk.iter().map(|&k| (k, Some(flush_parts_value(k, 0)))).collect();
        commit_u64(db, meta, cmp, &mut model, &ops);
    }
    db.checkpoint().unwrap();
    for round in 0..10u64 {
        let ops: Vec<_> = (0..FLUSH_PARTS_KEYS + 600)
            .filter(|k| k % 10 == round)
            .map(|k| match k % 3 {
                0 => (k, None),
                _ => (k, Some(flush_parts_value(k, round + 1))),
            })
            .collect();
        commit_u64(db, meta, cmp, &mut model, &ops);
    }
    model
}

/// Whether the data file of `disk` holds a flush marker (a flush that
/// committed in parts and has not finished: `engine::flush_marker`).
pub fn has_flush_marker(disk: &Disk) -> bool {
    let store = TreeStore::open(disk.data.clone(), TreeStoreOptions::default()).unwrap();
    store.snapshot().tree(b"sluice.flushing").unwrap().is_some()
}

/// A data file and WAL directory that crash together
/// ([`CrashDisk`]: images of one instant), with an engine opener.
#[derive(Clone)]
pub struct Disk(CrashDisk);

impl std::ops::Deref for Disk {
    type Target = CrashDisk;

    fn deref(&self) -> &CrashDisk {
        &self.0
    }
}

impl Disk {
    pub fn new() -> Self {
        Self(CrashDisk::new())
    }

    pub fn open(&self, options: EngineOptions) -> Engine {
        Engine::open(self.data.clone(), self.wal.clone(), options).unwrap()
    }

    /// What a restart finds if the power fails now.
    pub fn crashed(&self, mode: TearMode) -> Disk {
        Self(self.0.crashed(mode))
    }
}

/// What a crash may recover (BRIEF §1): a prefix of the commit order that
/// holds every commit acknowledged as durable. That is the state as of the
/// last commit known durable, or the state as of any later commit nobody
/// waited for: the WAL sync thread syncs those on its own timer, so a crash
/// can keep some of them and lose the ones after.
pub struct CrashOracle<S> {
    durable: S,
    /// The states after each unwaited commit since `durable`, in commit order.
    unwaited: Vec<S>,
}

impl<S: PartialEq> CrashOracle<S> {
    pub fn new(state: S) -> Self {
        Self {
            durable: state,
            unwaited: Vec::new(),
        }
    }

    /// Everything up to `state` is durable: a waited commit, a checkpoint, a
    /// clean close, a recovery.
    pub fn durable(&mut self, state: S) {
        self.durable = state;
        self.unwaited.clear();
    }

    /// A commit nobody waited for left `state`.
    pub fn unwaited(&mut self, state: S) {
        self.unwaited.push(state);
    }

    /// The state as of the last commit known durable.
    pub fn last_durable(&self) -> &S {
        &self.durable
    }

    /// Whether a crash may recover `state`.
    pub fn allows(&self, state: &S) -> bool {
        *state == self.durable || self.unwaited.contains(state)
    }
}

/// Puts (`(key, Some(value))`) and removals (`(key, None)`) of big-endian
/// `u64` keys in one durable commit to table `t` (metadata `meta`, order
/// `cmp`), applied to `model` as well.
pub fn commit_u64(
    db: &Engine,
    meta: &[u8],
    cmp: Comparator,
    model: &mut BTreeMap<u64, Vec<u8>>,
    ops: &[(u64, Option<Vec<u8>>)],
) {
    commit_u64_to(db, b"t", meta, cmp, ops, Durability::Immediate);
    apply_u64(model, ops);
}

/// Puts and removals of big-endian `u64` keys (as [`commit_u64`]) in one
/// commit of durability `durability` to table `name`, waited for.
pub fn commit_u64_to(
    db: &Engine,
    name: &[u8],
    meta: &[u8],
    cmp: Comparator,
    ops: &[(u64, Option<Vec<u8>>)],
    durability: Durability,
) {
    let mut w = db.begin_write().unwrap();
    let t = w.open_table(name, meta, cmp).unwrap();
    for (key, value) in ops {
        match value {
            Some(v) => w.insert(t, &key.to_be_bytes(), v).unwrap(),
            None => w.remove(t, &key.to_be_bytes()).unwrap(),
        };
    }
    w.set_durability(durability);
    w.commit().unwrap();
}

/// `ops` (as [`commit_u64`] takes them) applied to a model.
pub fn apply_u64(model: &mut BTreeMap<u64, Vec<u8>>, ops: &[(u64, Option<Vec<u8>>)]) {
    for (key, value) in ops {
        match value {
            Some(v) => model.insert(*key, v.clone()),
            None => model.remove(key),
        };
    }
}

/// A table's entries in its order (big-endian `u64` keys) and its `len()`.
pub type U64Listing = (Vec<(u64, Vec<u8>)>, u64);

/// Table `t`'s entries in its order (big-endian `u64` keys) and its
/// `len()`, read in one transaction.
pub fn read_u64(db: &Engine, cmp: Comparator) -> U64Listing {
    read_u64_from(db, b"t", cmp).expect("table")
}

/// Table `name`'s entries (big-endian `u64` keys), checked to come in the
/// order `cmp`, and its `len()`, read in one transaction; `None` if the
/// table does not exist.
pub fn read_u64_from(db: &Engine, name: &[u8], cmp: Comparator) -> Option<U64Listing> {
    let txn = db.begin_read().unwrap();
    let t = txn.open_table(name, cmp).unwrap()?;
    let mut listed: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for entry in txn.range(&t, Bound::Unbounded, Bound::Unbounded).unwrap() {
        let (k, v) = entry.unwrap();
        if let Some((previous, _)) = listed.last() {
            assert!(
                cmp(previous, &k).is_lt(),
                "table {:?}: keys out of order",
                String::from_utf8_lossy(name)
            );
        }
        listed.push((k.to_vec(), v.as_bytes().to_vec()));
    }
    let listed = listed
        .into_iter()
        .map(|(k, v)| (u64::from_be_bytes(k[..].try_into().unwrap()), v))
        .collect();
    Some((listed, txn.len(&t).unwrap()))
}

/// [`read_u64_from`] as a model (key to value).
pub fn read_u64_model(db: &Engine, name: &[u8], cmp: Comparator) -> Option<(BTreeMap<u64, Vec<u8>>, u64)> {
    read_u64_from(db, name, cmp).map(|(listed, len)| (listed.into_iter().collect(), len))
}

/// `n` random writes of keys below `keys`: a quarter removals, the rest
/// values naming `tag`, the key and `version`.
pub fn random_u64_ops(rng: &mut super::Rng, tag: &str, keys: u64, n: u64, version: u64) -> Vec<(u64, Option<Vec<u8>>)> {
    (0..n)
        .map(|_| {
            let k = rng.below(keys);
            if rng.chance(25) {
                (k, None)
            } else {
                (k, Some(tagged_value(tag, k, version)))
            }
        })
        .collect()
}

/// A value naming `tag`, key `k` and `version`, of a length that varies
/// with the key.
pub fn tagged_value(tag: &str, k: u64, version: u64) -> Vec<u8> {
    format!("{tag} key {k} version {version} {}", "p".repeat((k % 9 * 7) as usize)).into_bytes()
}

/// Reverse byte order: a key order the test resolver ([`resolver`]) does
/// not know, so recovery defers the records of a table created with it
/// until an open names the order.
pub fn reverse(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    b.cmp(a)
}

/// The metadata of [`reverse`]-ordered tables.
pub const REVERSE_META: &[u8] = b"rev";

/// Reopens a crash image's files, its failure named by `what`.
pub fn reopen(disk: &Disk, options: EngineOptions, what: &str) -> Engine {
    Engine::open(disk.data.clone(), disk.wal.clone(), options).unwrap_or_else(|e| panic!("{what}: open: {e}"))
}

/// A data file whose writes wait while they are held
/// ([`HeldWrites::hold`]): the apply thread's flush then stops at its first
/// page, and a test can commit beside frozen memtables that are not
/// flushed yet. Clones share the hold.
#[derive(Clone)]
pub struct HeldWrites<B> {
    file: B,
    held: Arc<(Mutex<bool>, Condvar)>,
}

impl<B> HeldWrites<B> {
    pub fn new(file: B) -> Self {
        Self {
            file,
            held: Arc::new((Mutex::new(false), Condvar::new())),
        }
    }

    /// Holds every write until the returned guard is released or dropped.
    /// Declared after the engine, the guard drops first when a test fails:
    /// an engine dropped with its writes held would wait for them forever
    /// and hide the failure behind a hang.
    pub fn hold(&self) -> Hold<B>
    where
        B: Clone,
    {
        self.set_held(true);
        Hold(self.clone())
    }

    fn set_held(&self, held: bool) {
        *self.held.0.lock() = held;
        self.held.1.notify_all();
    }
}

/// Writes held by [`HeldWrites::hold`], let go when this is dropped.
pub struct Hold<B>(HeldWrites<B>);

impl<B> Hold<B> {
    /// Lets the held writes go.
    pub fn release(self) {}
}

impl<B> Drop for Hold<B> {
    fn drop(&mut self) {
        self.0.set_held(false);
    }
}

impl<B: StorageBackend> StorageBackend for HeldWrites<B> {
    fn len(&self) -> io::Result<u64> {
        self.file.len()
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read(offset, buf)
    }
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let (held, released) = &*self.held;
        let mut held = held.lock();
        while *held {
            released.wait(&mut held);
        }
        drop(held);
        self.file.write(offset, data)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// Every entry of `range` as owned bytes, from its front (or, `backward`,
/// from its back).
pub fn range_entries(range: MergedRange<'_>, backward: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    let entries = range.map(|e| {
        let (k, v) = e.unwrap();
        (k.to_vec(), v.to_vec())
    });
    if backward {
        entries.rev().collect()
    } else {
        entries.collect()
    }
}

/// What a data file image holds, read by the tree store alone: its durable
/// checkpoint sequence, each data tree's count and the newest commit in it
/// (for values that begin with a commit number in ten digits), and whether
/// a flush marker is present. For failure messages about counts after a
/// crash (a durable commit claiming another sequence than its tree holds).
pub fn durable_tree_facts(data: Vec<u8>) -> String {
    let store = match TreeStore::open(CrashBackend::from_bytes(data), TreeStoreOptions::default()) {
        Ok(store) => store,
        Err(e) => return format!("the data file does not open alone: {e}"),
    };
    let snap = store.snapshot();
    let mut out = format!("checkpoint_seq {}", store.durable_checkpoint_seq());
    for (name, info) in snap.list_trees().unwrap_or_default() {
        if name.len() != 8 {
            continue;
        }
        let newest = snap
            .range(&info, bytewise, Bound::Unbounded, Bound::Unbounded)
            .map(|entries| {
                entries
                    .filter_map(|e| {
                        let e = e.ok()?;
                        let head = e.value().as_bytes().get(..10)?.to_vec();
                        String::from_utf8(head).ok()?.parse::<u64>().ok()
                    })
                    .max()
            })
            .unwrap_or(None);
        out += &format!(
            ", data tree {}: len {} newest commit in it {newest:?}",
            to_hex(&name),
            info.len()
        );
    }
    let marker = snap.tree(b"sluice.flushing").map(|t| t.is_some()).unwrap_or(false);
    out += &format!(", flush marker {marker}");
    out
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
