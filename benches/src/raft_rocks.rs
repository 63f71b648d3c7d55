//! An openraft 0.10 log store and key-value state machine on RocksDB, written
//! the same way as `sluicedb-raft`'s stores, for the replicated-writes
//! benchmark (`src/bin/raft.rs`). It lives here, not in `raft/`, so RocksDB's
//! C++ stays out of every build but the benchmark's.
//!
//! One RocksDB database per node holds both the log and the state machine,
//! in four column families, as sluicedb-raft keeps both in one database:
//!
//! | column family | key → value |
//! | --- | --- |
//! | `raft_log` | index (`u64` big-endian, so byte order is index order) → entry (JSON) |
//! | `raft_log_meta` | `vote`, `committed`, `last_purged` → JSON |
//! | `kv` | key → value (UTF-8) |
//! | `raft_sm_meta` | `applied`, `membership`, `snapshot_meta`, `snapshot_data` |
//!
//! Durability follows openraft's RocksDB example and matches sluicedb-raft
//! call for call:
//!
//! * `append` ([`AppendSync::Background`], the benchmark's `rocksdb`) writes
//!   the entries as one `WriteBatch` with the WAL on but not synced, so they
//!   are readable when it returns, and hands the callback to a flusher
//!   thread that syncs the WAL (`flush_wal(true)`, the sync a
//!   `WriteOptions::set_sync(true)` write would do) and then calls it: the
//!   sync is off the caller's path, as sluicedb-raft's `PendingCommit` is.
//!   With openraft 0.10 several appends can be in flight; the flusher
//!   drains every callback queued, syncs once and calls them all, the group
//!   commit sluicedb does.
//!   [`AppendSync::Inline`] (`rocksdb-sync`) writes the batch with
//!   `set_sync(true)` and calls the callback before returning, as openraft's
//!   own RocksDB example store does: the append without pipelining.
//! * `save_vote`, `truncate_after`, a built or installed snapshot: a `WriteBatch`
//!   written with `set_sync(true)`, durable before the call returns.
//! * `apply` first waits until a flush that began after the last
//!   `save_committed` has succeeded (asking the flusher for one if none
//!   has), as sluicedb-raft's state machine waits for its committed id: so
//!   reads never go back in time after a power cut.
//! * `save_committed`, `purge`, `apply`'s own write: a `WriteBatch` without
//!   sync, durable with the next sync (the same argument as design/raft.md: a lost one is
//!   harmless, and RocksDB's WAL also keeps a prefix).

use std::collections::HashMap;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use futures_util::{Stream, StreamExt};
use openraft::storage::{EntryResponder, IOFlushed, RaftLogStorage, RaftStateMachine};
use openraft::type_config::TypeConfigExt;
use openraft::{EntryPayload, LogState, OptionalSend, RaftLogReader, RaftSnapshotBuilder};
use rocksdb::{ColumnFamily, DB, Direction, IteratorMode, WriteBatch, WriteOptions};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sluicedb_raft::{
    Entry, LogId, Membership, Request, Response, Snapshot, SnapshotData, SnapshotMeta, TypeConfig, Vote,
};

const CF_LOG: &str = "raft_log";
const CF_LOG_META: &str = "raft_log_meta";
const CF_KV: &str = "kv";
const CF_SM_META: &str = "raft_sm_meta";

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";
const APPLIED: &str = "applied";
const MEMBERSHIP: &str = "membership";
const SNAPSHOT_META: &str = "snapshot_meta";
const SNAPSHOT_DATA: &str = "snapshot_data";

/// The settings of every node's RocksDB, for the report.
pub const SETTINGS: &str = "one DB per node, column families raft_log / raft_log_meta / kv / raft_sm_meta; \
     append: one WriteBatch (WAL on, unsynced) then flush_wal(true) on a flusher thread before the callback \
     (rocksdb-sync: the WriteBatch with set_sync(true) inside append, callback after it); \
     vote, truncate, snapshots: WriteBatch with set_sync(true); apply: once a flush after the committed id's write is done; \
     set_enable_pipelined_write(true); \
     64 MiB write buffer; no compression; bloom filter 10 bits/key; LRU block cache 64 MiB; increase_parallelism(cores)";

/// How `append` makes its batch durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendSync {
    /// Written unsynced (readable at once), synced by the flusher thread,
    /// which then calls the callback: the pipelined append.
    Background,
    /// Written with `set_sync(true)` inside `append`, the callback called
    /// right after: the append openraft 0.9's own RocksDB store does
    /// (`flush_wal(true)` before returning).
    Inline,
}

/// Opens (creating if missing) a node's RocksDB at `path`; returns its log
/// store and state machine.
pub fn open(path: &Path, append_sync: AppendSync) -> Result<(RocksLogStore, RocksStateMachine), rocksdb::Error> {
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    // As the engine comparison (compare/engines.rs) configures RocksDB for
    // durable writers: pipelined WAL write and memtable insert, the BRIEF's
    // 64 MiB write buffer, background threads = cores, no compression, a
    // bloom filter and a block cache.
    opts.set_enable_pipelined_write(true);
    opts.set_write_buffer_size(64 << 20);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as i32;
    opts.increase_parallelism(cores);
    opts.set_compression_type(rocksdb::DBCompressionType::None);
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_bloom_filter(10.0, false);
    table.set_block_cache(&rocksdb::Cache::new_lru_cache(64 << 20));
    opts.set_block_based_table_factory(&table);
    let db = Arc::new(DB::open_cf(&opts, path, [CF_LOG, CF_LOG_META, CF_KV, CF_SM_META])?);
    let flusher = Arc::new(Flusher::start(db.clone()));
    let committed = Arc::new(AtomicU64::new(0));
    let log_store = RocksLogStore {
        db: db.clone(),
        flusher: flusher.clone(),
        append_sync,
        committed: committed.clone(),
    };
    Ok((log_store, RocksStateMachine { db, flusher, committed }))
}

fn any<E: Into<Box<dyn std::error::Error + Send + Sync>>>(e: E) -> io::Error {
    io::Error::other(e)
}

fn cf<'a>(db: &'a DB, name: &str) -> Result<&'a ColumnFamily, io::Error> {
    db.cf_handle(name)
        .ok_or_else(|| io::Error::other(format!("column family {name} is missing")))
}

fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, io::Error> {
    serde_json::from_slice(bytes).map_err(|e| io::Error::other(format!("decoding {what}: {e}")))
}

fn encode<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>, io::Error> {
    serde_json::to_vec(value).map_err(|e| io::Error::other(format!("encoding {what}: {e}")))
}

fn get<T: DeserializeOwned>(db: &DB, family: &str, key: &str) -> Result<Option<T>, io::Error> {
    match db.get_pinned_cf(cf(db, family)?, key).map_err(any)? {
        Some(bytes) => Ok(Some(decode(key, &bytes)?)),
        None => Ok(None),
    }
}

fn write(db: &DB, batch: WriteBatch, sync: bool) -> Result<(), io::Error> {
    let mut options = WriteOptions::default();
    options.set_sync(sync);
    db.write_opt(batch, &options).map_err(any)
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn index_of(key: &[u8]) -> Result<u64, io::Error> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| io::Error::other(format!("log key of {} bytes, not 8", key.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

// --- the log store ----------------------------------------------------------

/// The thread that syncs the WAL behind appends and calls their callbacks.
///
/// Invariant: callbacks are called in append order, each after a
/// `flush_wal(true)` that began after its entries were written. The channel
/// is FIFO and the one thread drains what is queued, syncs once, then calls
/// those callbacks in order (the group commit sluicedb's sync thread does).
struct Flusher {
    /// `None` only while dropping (closing the channel ends the thread).
    tx: Mutex<Option<mpsc::Sender<IOFlushed<TypeConfig>>>>,
    thread: Option<thread::JoinHandle<()>>,
    progress: Arc<FlushProgress>,
}

/// The thread's flushes, numbered from 1: a write made before flush `n`
/// began is durable once `finished >= n`.
#[derive(Default)]
struct FlushProgress {
    begun: AtomicU64,
    /// The newest flush that succeeded.
    finished: AtomicU64,
}

impl Flusher {
    fn start(db: Arc<DB>) -> Self {
        let (tx, rx) = mpsc::channel::<IOFlushed<TypeConfig>>();
        let progress = Arc::new(FlushProgress::default());
        let counts = progress.clone();
        let thread = thread::Builder::new()
            .name("rocks-raft-flush".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut ready = vec![first];
                    ready.extend(rx.try_iter());
                    let flush = counts.begun.fetch_add(1, Ordering::SeqCst) + 1;
                    let result = db.flush_wal(true).map_err(|e| e.to_string());
                    if result.is_ok() {
                        counts.finished.store(flush, Ordering::SeqCst);
                    }
                    for callback in ready {
                        callback.io_completed(result.clone().map_err(io::Error::other));
                    }
                }
            })
            .ok();
        Self {
            tx: Mutex::new(Some(tx)),
            thread,
            progress,
        }
    }

    /// The number of the first flush to begin from now on: it covers
    /// every write made before this call.
    fn next_flush(&self) -> u64 {
        self.progress.begun.load(Ordering::SeqCst) + 1
    }

    /// Waits until flush `ticket` (or a later one) has succeeded, asking
    /// the thread for one if it has not.
    async fn wait_for(&self, db: &DB, ticket: u64) -> Result<(), io::Error> {
        if self.progress.finished.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        let (tx, rx) = TypeConfig::oneshot();
        self.submit(db, IOFlushed::signal(tx));
        rx.await.map_err(any)?
    }

    /// Queues `callback` for the next sync; if the thread is gone, syncs here.
    fn submit(&self, db: &DB, callback: IOFlushed<TypeConfig>) {
        let sender = match self.tx.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let undelivered = match sender {
            Some(tx) if self.thread.is_some() => tx.send(callback).err().map(|mpsc::SendError(c)| c),
            _ => Some(callback),
        };
        if let Some(callback) = undelivered {
            callback.io_completed(db.flush_wal(true).map_err(io::Error::other));
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The Raft log and vote on RocksDB. Clones share the database and flusher.
#[derive(Clone)]
pub struct RocksLogStore {
    db: Arc<DB>,
    flusher: Arc<Flusher>,
    append_sync: AppendSync,
    /// The flush that makes the newest saved committed id durable, for
    /// the state machine (`Flusher::next_flush`).
    committed: Arc<AtomicU64>,
}

impl RocksLogStore {
    fn read_entries(&self, range: (Bound<u64>, Bound<u64>)) -> Result<Vec<Entry>, io::Error> {
        let start = match range.0 {
            Bound::Included(i) => i,
            Bound::Excluded(i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let key = index_key(start);
        let mut entries = Vec::new();
        let iter = self
            .db
            .iterator_cf(cf(&self.db, CF_LOG)?, IteratorMode::From(&key, Direction::Forward));
        for item in iter {
            let (key, bytes) = item.map_err(any)?;
            let index = index_of(&key)?;
            if !range.contains(&index) {
                break;
            }
            let entry: Entry = decode("log entry", &bytes)?;
            if entry.log_id.index != index {
                return Err(io::Error::other(format!(
                    "log entry stored at index {index} has log id {}",
                    entry.log_id
                )));
            }
            entries.push(entry);
        }
        Ok(entries)
    }

    fn log_state(&self) -> Result<LogState<TypeConfig>, io::Error> {
        let last_purged: Option<LogId> = get(&self.db, CF_LOG_META, LAST_PURGED)?.flatten();
        let last = match self.db.iterator_cf(cf(&self.db, CF_LOG)?, IteratorMode::End).next() {
            Some(item) => {
                let (_, bytes) = item.map_err(any)?;
                let entry: Entry = decode("log entry", &bytes)?;
                Some(entry.log_id)
            }
            None => None,
        };
        Ok(LogState {
            last_log_id: last.or(last_purged),
            last_purged_log_id: last_purged,
        })
    }

    fn put_meta<T: Serialize>(&self, key: &str, value: &T, sync: bool) -> Result<(), io::Error> {
        let mut batch = WriteBatch::default();
        batch.put_cf(cf(&self.db, CF_LOG_META)?, key, encode(key, value)?);
        write(&self.db, batch, sync)
    }

    /// Writes `entries` as one batch (synced if `sync`); returns whether
    /// there were any.
    fn append_entries<I: IntoIterator<Item = Entry>>(&self, entries: I, sync: bool) -> Result<bool, io::Error> {
        let log = cf(&self.db, CF_LOG)?;
        let mut batch = WriteBatch::default();
        for entry in entries {
            batch.put_cf(log, index_key(entry.log_id.index), encode("log entry", &entry)?);
        }
        if batch.is_empty() {
            return Ok(false);
        }
        write(&self.db, batch, sync)?;
        Ok(true)
    }

    /// Removes `[from, to)` from the log, with `last_purged` in the same batch
    /// when given.
    fn remove_entries(&self, from: u64, to: u64, last_purged: Option<&LogId>, sync: bool) -> Result<(), io::Error> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(cf(&self.db, CF_LOG)?, index_key(from), index_key(to));
        if let Some(id) = last_purged {
            batch.put_cf(cf(&self.db, CF_LOG_META)?, LAST_PURGED, encode(LAST_PURGED, &Some(id))?);
        }
        write(&self.db, batch, sync)
    }
}

impl RaftLogReader<TypeConfig> for RocksLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let range = (range.start_bound().cloned(), range.end_bound().cloned());
        self.read_entries(range)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        get(&self.db, CF_LOG_META, VOTE)
    }
}

impl RaftLogStorage<TypeConfig> for RocksLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        self.log_state()
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.put_meta(VOTE, vote, true)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        self.put_meta(COMMITTED, &committed, false)?;
        self.committed.store(self.flusher.next_flush(), Ordering::SeqCst);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        let committed: Option<Option<LogId>> = get(&self.db, CF_LOG_META, COMMITTED)?;
        Ok(committed.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let inline = self.append_sync == AppendSync::Inline;
        match self.append_entries(entries, inline) {
            Ok(true) if !inline => {
                self.flusher.submit(&self.db, callback);
                Ok(())
            }
            Ok(_) => {
                callback.io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.io_completed(Err(io::Error::other(e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map_or(0, |id| id.index.saturating_add(1));
        self.remove_entries(from, u64::MAX, None, true)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        self.remove_entries(0, log_id.index.saturating_add(1), Some(&log_id), false)
    }
}

// --- the state machine ------------------------------------------------------

/// The replicated key-value state machine on RocksDB. Cloning is cheap.
#[derive(Clone)]
pub struct RocksStateMachine {
    db: Arc<DB>,
    flusher: Arc<Flusher>,
    /// The log store's `committed`: the flush an apply waits for.
    committed: Arc<AtomicU64>,
}

/// Builds snapshots from a RocksDB snapshot of the state machine.
pub struct RocksSnapshotBuilder {
    db: Arc<DB>,
}

/// Stores `data` as the current snapshot, with `meta`, in `batch`.
fn store_snapshot(db: &DB, batch: &mut WriteBatch, meta: &SnapshotMeta, data: &[u8]) -> Result<(), io::Error> {
    let sm_meta = cf(db, CF_SM_META)?;
    batch.put_cf(sm_meta, SNAPSHOT_META, encode(SNAPSHOT_META, meta)?);
    batch.put_cf(sm_meta, SNAPSHOT_DATA, data);
    Ok(())
}

impl RocksStateMachine {
    /// Reads `key` from the applied state.
    pub fn get(&self, key: &str) -> Result<Option<String>, io::Error> {
        match self.db.get_pinned_cf(cf(&self.db, CF_KV)?, key).map_err(any)? {
            Some(v) => Ok(Some(String::from_utf8(v.to_vec()).map_err(any)?)),
            None => Ok(None),
        }
    }

    fn applied_state(&self) -> Result<(Option<LogId>, Membership), io::Error> {
        let applied = get(&self.db, CF_SM_META, APPLIED)?.flatten();
        let membership = get(&self.db, CF_SM_META, MEMBERSHIP)?.unwrap_or_default();
        Ok((applied, membership))
    }

    /// Applies `entries` as one unsynced batch: the key-value changes, the
    /// last applied log id and the last membership together.
    #[allow(clippy::type_complexity)]
    fn apply_batch(
        &self,
        entries: Vec<EntryResponder<TypeConfig>>,
    ) -> Result<Vec<(Response, Option<openraft::storage::ApplyResponder<TypeConfig>>)>, io::Error> {
        let kv = cf(&self.db, CF_KV)?;
        let mut batch = WriteBatch::default();
        // Values this batch has set (Some) or removed (None), so a key written
        // twice in one batch reports the first write as its previous value.
        let mut pending: HashMap<String, Option<String>> = HashMap::new();
        let mut responses = Vec::new();
        let mut last_applied = None;
        let mut membership = None;
        for (entry, responder) in entries {
            last_applied = Some(entry.log_id);
            let previous = match entry.payload {
                EntryPayload::Blank => None,
                EntryPayload::Normal(Request::Set { key, value }) => {
                    let previous = self.current(&pending, &key)?;
                    batch.put_cf(kv, &key, &value);
                    pending.insert(key, Some(value));
                    previous
                }
                EntryPayload::Normal(Request::Delete { key }) => {
                    let previous = self.current(&pending, &key)?;
                    batch.delete_cf(kv, &key);
                    pending.insert(key, None);
                    previous
                }
                EntryPayload::Membership(m) => {
                    membership = Some(Membership::new(Some(entry.log_id), m));
                    None
                }
            };
            responses.push((Response { previous }, responder));
        }
        if last_applied.is_none() {
            return Ok(responses);
        }
        let sm_meta = cf(&self.db, CF_SM_META)?;
        batch.put_cf(sm_meta, APPLIED, encode(APPLIED, &last_applied)?);
        if let Some(membership) = &membership {
            batch.put_cf(sm_meta, MEMBERSHIP, encode(MEMBERSHIP, membership)?);
        }
        write(&self.db, batch, false)?;
        Ok(responses)
    }

    fn current(&self, pending: &HashMap<String, Option<String>>, key: &str) -> Result<Option<String>, io::Error> {
        match pending.get(key) {
            Some(value) => Ok(value.clone()),
            None => self.get(key),
        }
    }

    fn install(&self, meta: &SnapshotMeta, data: &[u8]) -> Result<(), io::Error> {
        let pairs: Vec<(String, String)> = decode("snapshot data", data)?;
        let kv = cf(&self.db, CF_KV)?;
        let mut batch = WriteBatch::default();
        for item in self.db.iterator_cf(kv, IteratorMode::Start) {
            let (key, _) = item.map_err(any)?;
            batch.delete_cf(kv, key);
        }
        for (key, value) in &pairs {
            batch.put_cf(kv, key, value);
        }
        let sm_meta = cf(&self.db, CF_SM_META)?;
        batch.put_cf(sm_meta, APPLIED, encode(APPLIED, &meta.last_log_id)?);
        batch.put_cf(sm_meta, MEMBERSHIP, encode(MEMBERSHIP, &meta.last_membership)?);
        store_snapshot(&self.db, &mut batch, meta, data)?;
        write(&self.db, batch, true)
    }

    fn current_snapshot(&self) -> Result<Option<Snapshot>, io::Error> {
        let Some(meta) = get::<SnapshotMeta>(&self.db, CF_SM_META, SNAPSHOT_META)? else {
            return Ok(None);
        };
        let data = self
            .db
            .get_cf(cf(&self.db, CF_SM_META)?, SNAPSHOT_DATA)
            .map_err(any)?
            .unwrap_or_default();
        Ok(Some(Snapshot { meta, snapshot: data }))
    }
}

impl RocksSnapshotBuilder {
    /// Reads the key-value pairs, applied id and membership from one RocksDB
    /// snapshot, stores the result as current (synced) and returns it.
    fn build(&self) -> Result<Snapshot, io::Error> {
        let (applied, membership, data) = {
            let view = self.db.snapshot();
            let sm_meta = cf(&self.db, CF_SM_META)?;
            let applied: Option<LogId> = match view.get_cf(sm_meta, APPLIED).map_err(any)? {
                Some(v) => decode(APPLIED, &v)?,
                None => None,
            };
            let membership: Membership = match view.get_cf(sm_meta, MEMBERSHIP).map_err(any)? {
                Some(v) => decode(MEMBERSHIP, &v)?,
                None => Membership::default(),
            };
            let mut pairs = Vec::new();
            for item in view.iterator_cf(cf(&self.db, CF_KV)?, IteratorMode::Start) {
                let (key, value) = item.map_err(any)?;
                let key = String::from_utf8(key.to_vec()).map_err(any)?;
                let value = String::from_utf8(value.to_vec()).map_err(any)?;
                pairs.push((key, value));
            }
            (applied, membership, encode("snapshot data", &pairs)?)
        };
        let stored: Option<SnapshotMeta> = get(&self.db, CF_SM_META, SNAPSHOT_META)?;
        let meta = SnapshotMeta {
            last_log_id: applied,
            last_membership: membership,
        };
        let mut batch = WriteBatch::default();
        // Invariant: the stored snapshot never moves backwards (a newer one
        // may have been installed during the build).
        if stored.is_none_or(|s| s.last_log_id <= meta.last_log_id) {
            store_snapshot(&self.db, &mut batch, &meta, &data)?;
        }
        // Synced: openraft purges the log behind a built snapshot.
        write(&self.db, batch, true)?;
        Ok(Snapshot { meta, snapshot: data })
    }
}

impl RaftSnapshotBuilder<TypeConfig> for RocksSnapshotBuilder {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        self.build()
    }
}

impl RaftStateMachine<TypeConfig> for RocksStateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = RocksSnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, Membership), io::Error> {
        RocksStateMachine::applied_state(self)
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let mut batch = Vec::new();
        while let Some(item) = entries.next().await {
            batch.push(item?);
        }
        if batch.is_empty() {
            return Ok(());
        }
        // As sluicedb-raft's state machine: nothing is applied (and read)
        // before the committed id saved ahead of it is durable, and with it
        // the batch's entries; usually a flush behind the appends has
        // already covered it.
        let ticket = self.committed.load(Ordering::SeqCst);
        self.flusher.wait_for(&self.db, ticket).await?;
        for (response, responder) in self.apply_batch(batch)? {
            if let Some(responder) = responder {
                responder.send(response);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        RocksSnapshotBuilder { db: self.db.clone() }
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: SnapshotData) -> Result<(), io::Error> {
        self.install(meta, &snapshot)
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        self.current_snapshot()
    }
}
