//! The engine: recovery, the writer slot, the commit pipeline's shared
//! state, publication, and the statistics.
//!
//! # Thread safety and locks
//! - `writer` (+ `writer_free`): the single writer slot. Held by a
//!   `WriteTxn` from `begin_write` until its record is appended and its
//!   writes are in the active memtable (AppendWAL), then released, so the next
//!   writer builds while this one waits for its sync.
//! - `state`: the current [`State`]. Read-locked for one `Arc` clone;
//!   write-locked only to swap in a new state (publish, freeze, flush).
//! - `publication`: which committed sequences may be shown to readers.
//! - `comparators`: each table id's key order.
//!
//! Lock order: `publication` before `state`. No lock is held across I/O
//! except the writer slot (the WAL append does none) and the tree writer's.
//!
//! # Publication rule
//! Sequences are published strictly in commit order, and a sequence committed
//! with `Durability::Immediate` is published only once it is durable:
//! `published = (oldest non-durable Immediate commit) - 1`, or the last
//! committed sequence if there is none. `Durability::None` commits are thus
//! visible as soon as every earlier commit is.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use super::apply::ApplyControl;
use super::batch::{Batch, DataOp, TableDef};
use super::memtable::Memtable;
use super::publication::Publication;
use super::state::{State, TABLES_TREE, decode_def};
use crate::btree::{Comparator, TreeStore, TreeStoreOptions, bytewise};
use crate::error::{Result, StorageError};
use crate::io::{LogDir, StorageBackend};
use crate::wal::{Journal, JournalOptions, Recovery};

/// Finds the key order of a table from its stored metadata (the layer above
/// encodes its key type there). Tables opened in this process register their
/// comparator directly; this is asked for the others, during recovery.
pub type Resolver = fn(&[u8]) -> Option<Comparator>;

/// Engine tuning.
#[derive(Clone, Copy, Debug)]
pub struct EngineOptions {
    /// Bytes of page cache for the tree.
    pub cache_bytes: usize,
    /// The active memtable is frozen once it holds this many bytes.
    pub memtable_bytes: usize,
    /// Frozen memtables may hold this many bytes before writers are slowed
    /// (past three quarters) and then blocked (past all of it).
    pub max_frozen_bytes: usize,
    /// The loss window of `Durability::None` commits.
    pub sync_interval: Duration,
    /// WAL segment size.
    pub segment_bytes: u64,
    /// A checkpoint is taken once this many WAL bytes were written since the
    /// last one: it bounds the log replayed at reopen.
    pub checkpoint_wal_bytes: u64,
    /// ... or once this much time has passed with unflushed commits.
    pub checkpoint_interval: Duration,
    /// Key order of tables not opened since the process started.
    pub resolver: Resolver,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            cache_bytes: 1 << 30,
            memtable_bytes: 64 << 20,
            max_frozen_bytes: 256 << 20,
            sync_interval: Duration::from_millis(20),
            segment_bytes: 64 << 20,
            checkpoint_wal_bytes: 64 << 20,
            checkpoint_interval: Duration::from_secs(30),
            resolver: |_| None,
        }
    }
}

/// Durability of one commit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledged once appended to the WAL and visible at once (after every
    /// earlier commit); made durable by the sync thread within the sync
    /// interval. A crash may lose it (and every later commit), never part of it.
    None,
    /// Acknowledged once its WAL record is synced; visible from then on.
    #[default]
    Immediate,
}

/// Engine counters. See [`Stats`](crate::engine::Stats) for their meaning.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) commits: AtomicU64,
    pub(crate) checkpoints: AtomicU64,
    pub(crate) flushes: AtomicU64,
    pub(crate) stalls: AtomicU64,
    pub(crate) slowdowns: AtomicU64,
    /// The highest sequence flushed into the tree.
    pub(crate) flushed_seq: AtomicU64,
    /// WAL bytes written as of the last checkpoint.
    pub(crate) wal_bytes_at_checkpoint: AtomicU64,
}

pub(crate) struct Inner {
    pub(crate) options: EngineOptions,
    pub(crate) trees: TreeStore,
    pub(crate) journal: Journal,
    pub(crate) state: RwLock<Arc<State>>,
    writer: Mutex<bool>,
    writer_free: Condvar,
    pub(crate) publication: Mutex<Publication>,
    /// Once `durable_seq` reaches this, publication can advance.
    publish_hint: AtomicU64,
    comparators: RwLock<HashMap<u64, Comparator>>,
    poisoned: AtomicBool,
    poison: Mutex<Option<String>>,
    pub(crate) apply: ApplyControl,
    pub(crate) counters: Counters,
}

/// The engine under a database: owns the tree store, the journal and the
/// background apply thread.
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
    apply_thread: Option<JoinHandle<()>>,
}

impl Engine {
    /// Opens (or, if `data` is empty, creates) a database: the tree at its
    /// last checkpoint, then the WAL replayed into the memtable.
    pub fn open(data: impl StorageBackend, wal: impl LogDir, options: EngineOptions) -> Result<Self> {
        let tree_options = TreeStoreOptions {
            cache_bytes: options.cache_bytes,
        };
        let trees = if data.is_empty()? {
            TreeStore::create(data, new_db_id(), tree_options)?
        } else {
            TreeStore::open(data, tree_options)?
        };
        let checkpoint = trees.durable_checkpoint_seq();
        let snapshot = trees.snapshot();
        // Table definitions known to the tree, for resolving key orders.
        let mut metas: HashMap<u64, Vec<u8>> = HashMap::new();
        if let Some(info) = snapshot.tree(TABLES_TREE)? {
            for entry in snapshot.range(&info, bytewise, std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)? {
                let def = decode_def(entry?.value().as_bytes())?;
                metas.insert(def.id, def.meta);
            }
        }
        let mut comparators = HashMap::new();
        let mut active = Arc::new(Memtable::new(options.memtable_bytes));
        let mut frozen: Vec<Arc<Memtable>> = Vec::new();
        let journal_options = JournalOptions {
            segment_size: options.segment_bytes,
            sync_interval: options.sync_interval,
            ..JournalOptions::default()
        };
        let (journal, _recovery): (Journal, Recovery) =
            Journal::open(wal, trees.db_id(), checkpoint, journal_options, |seq, payload| {
                let batch = Batch::decode(payload)?;
                for def in batch.bindings.iter().filter_map(|(_, d)| d.as_ref()) {
                    metas.insert(def.id, def.meta.clone());
                }
                for op in &batch.ops {
                    if let std::collections::hash_map::Entry::Vacant(slot) = comparators.entry(op.table) {
                        let meta = metas.get(&op.table).ok_or_else(|| {
                            StorageError::corrupted(format!("WAL record {seq} writes to unknown table {}", op.table))
                        })?;
                        slot.insert((options.resolver)(meta).ok_or_else(|| unresolved(meta))?);
                    }
                }
                apply_batch(&active, seq, &batch, &|id| comparators.get(&id).copied());
                if active.bytes() >= options.memtable_bytes {
                    frozen.insert(
                        0,
                        std::mem::replace(&mut active, Arc::new(Memtable::new(options.memtable_bytes))),
                    );
                }
                Ok(())
            })?;
        let last = journal.last_seq().max(checkpoint);
        let state = State {
            seq: last,
            active,
            frozen,
            tree: snapshot,
        };
        let inner = Arc::new(Inner {
            options,
            trees,
            journal,
            state: RwLock::new(Arc::new(state)),
            writer: Mutex::new(false),
            writer_free: Condvar::new(),
            publication: Mutex::new(Publication::new(last)),
            publish_hint: AtomicU64::new(u64::MAX),
            comparators: RwLock::new(comparators),
            poisoned: AtomicBool::new(false),
            poison: Mutex::new(None),
            apply: ApplyControl::default(),
            counters: Counters::default(),
        });
        inner.counters.flushed_seq.store(checkpoint, Ordering::Relaxed);
        inner
            .counters
            .wal_bytes_at_checkpoint
            .store(inner.journal.metrics().bytes, Ordering::Relaxed);
        let thread_inner = inner.clone();
        let apply_thread = std::thread::Builder::new()
            .name("sluicedb-apply".into())
            .spawn(move || super::apply::run(thread_inner))
            .map_err(StorageError::Io)?;
        Ok(Self {
            inner,
            apply_thread: Some(apply_thread),
        })
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.inner.apply.shutdown();
        if let Some(thread) = self.apply_thread.take() {
            let _ = thread.join();
        }
    }
}

fn unresolved(meta: &[u8]) -> StorageError {
    StorageError::corrupted(format!(
        "cannot order the keys of a table with metadata {:?}: its key type is not known to this process",
        String::from_utf8_lossy(meta)
    ))
}

/// A database id: random enough that two databases never share one.
fn new_db_id() -> u128 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let local = 0u8;
    let seed = format!(
        "{nanos}:{}:{:p}:{:?}",
        std::process::id(),
        &local,
        std::thread::current().id()
    );
    xxhash_rust::xxh3::xxh3_128(seed.as_bytes())
}

/// Batches with at least this many writes are inserted into the memtable by
/// two threads at once (the skip list takes concurrent inserts). A skip-list
/// insert into a full memtable is a chain of cache misses, the largest cost
/// of a big commit; on a machine with a spare core, halving that wall time is
/// worth one thread spawn (tens of microseconds against milliseconds).
const PARALLEL_INSERT_OPS: usize = 512;

/// Inserts a committed batch into a memtable at `seq`; returns once every
/// write is in.
/// REQUIRES: every table the batch writes has a comparator in `cmp_of`.
pub(crate) fn apply_batch(
    mem: &Memtable,
    seq: u64,
    batch: &Batch,
    cmp_of: &(dyn Fn(u64) -> Option<Comparator> + Sync),
) {
    for (name, def) in &batch.bindings {
        mem.bind(seq, name, def.clone());
    }
    for &id in &batch.dropped {
        mem.drop_table(seq, id);
    }
    let insert = |ops: &[DataOp]| {
        // Ops come grouped by table: look each comparator up once.
        let mut last: Option<(u64, Comparator)> = None;
        for op in ops {
            let cmp = match last {
                Some((table, cmp)) if table == op.table => cmp,
                _ => {
                    let cmp = cmp_of(op.table).unwrap_or(bytewise);
                    last = Some((op.table, cmp));
                    cmp
                }
            };
            mem.insert(op.table, cmp, &op.key, seq, op.value.as_deref());
        }
    };
    if batch.ops.len() >= PARALLEL_INSERT_OPS && spare_core() {
        let (first, second) = batch.ops.split_at(batch.ops.len() / 2);
        std::thread::scope(|scope| {
            scope.spawn(|| insert(second));
            insert(first);
        });
    } else {
        insert(&batch.ops);
    }
    mem.note_seq(seq);
}

/// Whether this machine has more than one core to run on.
fn spare_core() -> bool {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from)) > 1
}

impl Inner {
    pub(crate) fn check_poison(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(StorageError::Poisoned(self.poison.lock().clone().unwrap_or_default()));
        }
        if let Some(cause) = self.journal.failure().or_else(|| self.trees.failure()) {
            self.poison_with(cause.clone());
            return Err(StorageError::Poisoned(cause));
        }
        Ok(())
    }

    /// Latches the first cause; wakes anyone blocked on the engine.
    pub(crate) fn poison_with(&self, cause: String) {
        {
            let mut poison = self.poison.lock();
            if poison.is_none() {
                *poison = Some(cause);
            }
        }
        self.poisoned.store(true, Ordering::Release);
        self.writer_free.notify_all();
        self.apply.wake_all();
    }

    /// Wraps any error from below as poison (the database stops).
    pub(crate) fn poison_on<T>(&self, result: Result<T>) -> Result<T> {
        result.map_err(|e| {
            let cause = match &e {
                StorageError::Poisoned(cause) | StorageError::PreviousIo(cause) => cause.clone(),
                other => other.to_string(),
            };
            self.poison_with(cause.clone());
            StorageError::Poisoned(cause)
        })
    }

    pub(crate) fn current_state(&self) -> Arc<State> {
        self.state.read().clone()
    }

    pub(crate) fn update_state(&self, f: impl FnOnce(&State) -> State) {
        let mut state = self.state.write();
        *state = Arc::new(f(&state));
    }

    /// Takes the writer slot, waiting for the current writer; applies
    /// backpressure when frozen memtables exceed their budget.
    pub(crate) fn acquire_writer(&self) -> Result<()> {
        {
            let mut busy = self.writer.lock();
            while *busy {
                self.check_poison()?;
                self.writer_free.wait(&mut busy);
            }
            *busy = true;
        }
        if let Err(e) = self.backpressure() {
            self.release_writer();
            return Err(e);
        }
        Ok(())
    }

    /// Takes the writer slot only if it is free.
    pub(crate) fn try_acquire_writer(&self) -> bool {
        let mut busy = self.writer.lock();
        !std::mem::replace(&mut *busy, true)
    }

    pub(crate) fn release_writer(&self) {
        *self.writer.lock() = false;
        self.writer_free.notify_one();
    }

    fn backpressure(&self) -> Result<()> {
        let limit = self.options.max_frozen_bytes;
        let frozen = self.current_state().frozen_bytes();
        if frozen > limit {
            self.counters.stalls.fetch_add(1, Ordering::Relaxed);
            while self.current_state().frozen_bytes() > limit {
                self.check_poison()?;
                self.apply.wait_for_flush(Duration::from_millis(100));
            }
        } else if frozen > limit / 4 * 3 {
            self.counters.slowdowns.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    pub(crate) fn comparator(&self, id: u64) -> Option<Comparator> {
        self.comparators.read().get(&id).copied()
    }

    pub(crate) fn register(&self, id: u64, cmp: Comparator) {
        self.comparators.write().insert(id, cmp);
    }

    /// The comparator of a table, registering `cmp` if it is the first.
    pub(crate) fn comparator_for(&self, def: &TableDef, cmp: Comparator) -> Comparator {
        if let Some(known) = self.comparator(def.id) {
            return known;
        }
        self.register(def.id, cmp);
        cmp
    }

    /// Records a committed sequence. REQUIRES: the writer slot.
    pub(crate) fn committed(&self, seq: u64, durability: Durability) {
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        self.publication.lock().commit(seq, durability);
    }

    /// Advances publication as far as the rule allows.
    pub(crate) fn refresh_publication(&self) {
        let durable = self.journal.durable_seq();
        let mut p = self.publication.lock();
        let advanced = p.advance(durable);
        self.publish_hint.store(p.next_blocker(), Ordering::Release);
        if let Some(target) = advanced {
            self.update_state(|s| State {
                seq: target,
                active: s.active.clone(),
                frozen: s.frozen.clone(),
                tree: s.tree.clone(),
            });
        }
    }

    /// The state readers should see now.
    pub(crate) fn read_state(&self) -> Arc<State> {
        if self.journal.durable_seq() >= self.publish_hint.load(Ordering::Acquire) {
            self.refresh_publication();
        }
        self.current_state()
    }

    /// Freezes the active memtable. REQUIRES: the writer slot (or no writer
    /// can run), so no commit is inserting into it.
    pub(crate) fn freeze(&self) {
        self.update_state(|s| {
            let mut frozen = Vec::with_capacity(s.frozen.len() + 1);
            frozen.push(s.active.clone());
            frozen.extend(s.frozen.iter().cloned());
            State {
                seq: s.seq,
                active: Arc::new(Memtable::new(self.options.memtable_bytes)),
                frozen,
                tree: s.tree.clone(),
            }
        });
        self.apply.wake();
    }
}
