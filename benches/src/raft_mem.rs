//! An openraft 0.10 log store and key-value state machine held entirely in
//! memory, for the replicated-writes benchmark (`src/bin/raft.rs`): the
//! ceiling, with storage costing nothing.
//!
//! No durability; the upper bound any store could reach on this host with
//! openraft 0.10. Nothing is written to disk, a restart loses everything, and
//! `append` reports its entries flushed before it returns. It is not a
//! store to use, only the measure of what openraft, the in-process router
//! and the benchmark cost by themselves.
//!
//! [`open_synced`] is the same store with one addition, the least a durable
//! log needs: `append` encodes its entries (JSON, as the other stores do) and
//! queues them with the callback; one thread per node writes what is queued
//! to an append-only file, `fdatasync`s it once and calls those callbacks
//! (group commit). Nothing else touches the disk (no index, no state machine
//! on disk, no recovery), so it is the ceiling of a durable store on this
//! host: what openraft, the router and one sync per group cost.
//!
//! Otherwise its semantics are `raft_rocks`'s (and so sluicedb-raft's): the
//! log is a `BTreeMap` from index to the typed [`Entry`] (no encoding), the
//! vote, committed id and last purged id are plain fields, the state machine
//! is a `BTreeMap<String, String>` with its applied id and membership, and a
//! snapshot is the key-value pairs serialized as `raft_rocks` does (JSON of
//! the ordered `(key, value)` list), kept in memory as the current snapshot.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::File;
use std::io;
use std::io::Write;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread;

use futures_util::{Stream, StreamExt};
use openraft::storage::{EntryResponder, IOFlushed, RaftLogStorage, RaftStateMachine};
use openraft::{EntryPayload, LogState, OptionalSend, RaftLogReader, RaftSnapshotBuilder};
use sluicedb_raft::{
    Entry, LogId, Membership, Request, Response, Snapshot, SnapshotData, SnapshotMeta, TypeConfig, Vote,
};

/// The settings of every node's in-memory store, for the report.
pub const SETTINGS: &str = "one in-memory store per node (log: BTreeMap of typed entries behind a Mutex; \
     kv: BTreeMap<String, String>); append calls the flush callback before returning; \
     no durability: the ceiling of openraft 0.10 on this host";

/// The settings of [`open_synced`]'s stores, for the report.
pub const SYNCED_SETTINGS: &str = "the in-memory store, but append also queues its entries (JSON) for a syncer \
     thread per node, which writes the queue to an append-only file, fdatasyncs once and calls the queued \
     callbacks: the least a durable log does (the ceiling of a durable store on this host)";

/// A fresh node's in-memory log store and state machine.
pub fn open() -> (MemLogStore, MemStateMachine) {
    (MemLogStore::default(), MemStateMachine::default())
}

/// A fresh node's in-memory store whose appends are durable in `path`, an
/// append-only file (see the module docs).
pub fn open_synced(path: &Path) -> io::Result<(MemLogStore, MemStateMachine)> {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    let store = MemLogStore {
        syncer: Some(Arc::new(Syncer::start(file)?)),
        ..MemLogStore::default()
    };
    Ok((store, MemStateMachine::default()))
}

/// Appended entries with their callback, waiting for the syncer.
type Queued = (Vec<u8>, IOFlushed<TypeConfig>);

/// The thread that writes queued appends to the file, syncs once per group
/// and calls their callbacks, in append order.
struct Syncer {
    /// `None` only while dropping (closing the channel ends the thread).
    tx: Mutex<Option<mpsc::Sender<Queued>>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Syncer {
    fn start(mut file: File) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Queued>();
        let thread = thread::Builder::new().name("raft-mem-sync".into()).spawn(move || {
            while let Ok(first) = rx.recv() {
                let group: Vec<Queued> = std::iter::once(first).chain(rx.try_iter()).collect();
                let bytes: Vec<u8> = group.iter().flat_map(|(bytes, _)| bytes.iter().copied()).collect();
                let result = file.write_all(&bytes).and_then(|()| file.sync_data());
                for (_, callback) in group {
                    let result = result.as_ref().map_err(|e| io::Error::new(e.kind(), e.to_string()));
                    callback.io_completed(result.copied());
                }
            }
        })?;
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            thread: Some(thread),
        })
    }

    /// Queues `bytes` and `callback` for the next group; if the thread has
    /// gone, reports the failure at once.
    fn submit(&self, bytes: Vec<u8>, callback: IOFlushed<TypeConfig>) {
        let sent = lock(&self.tx).as_ref().map(|tx| tx.send((bytes, callback)));
        if let Some(Err(mpsc::SendError((_, callback)))) = sent {
            callback.io_completed(Err(io::Error::other("the syncer thread has stopped")));
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        lock(&self.tx).take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Locks `mutex`, taking the data of a poisoned one (every update below
/// leaves it consistent before anything can panic).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// --- the log store ----------------------------------------------------------

#[derive(Default)]
struct Log {
    entries: BTreeMap<u64, Entry>,
    vote: Option<Vote>,
    committed: Option<LogId>,
    last_purged: Option<LogId>,
}

/// The Raft log and vote in memory. Clones share the log.
#[derive(Clone, Default)]
pub struct MemLogStore {
    log: Arc<Mutex<Log>>,
    /// [`open_synced`]'s: appends are durable once it has synced them.
    syncer: Option<Arc<Syncer>>,
}

impl RaftLogReader<TypeConfig> for MemLogStore {
    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(lock(&self.log).vote)
    }

    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        // From the start bound on, while inside the range: unlike
        // `BTreeMap::range`, an empty or inverted range is no panic.
        let start = range.start_bound().cloned();
        let log = lock(&self.log);
        Ok(log
            .entries
            .range((start, Bound::Unbounded))
            .take_while(|(index, _)| range.contains(*index))
            .map(|(_, entry)| entry.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for MemLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let log = lock(&self.log);
        let last = log.entries.last_key_value().map(|(_, entry)| entry.log_id);
        Ok(LogState {
            last_log_id: last.or(log.last_purged),
            last_purged_log_id: log.last_purged,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        lock(&self.log).vote = Some(*vote);
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        lock(&self.log).committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(lock(&self.log).committed)
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut bytes = Vec::new();
        {
            let mut log = lock(&self.log);
            for entry in entries {
                if self.syncer.is_some() {
                    serde_json::to_writer(&mut bytes, &entry).map_err(io::Error::other)?;
                }
                log.entries.insert(entry.log_id.index, entry);
            }
        }
        match &self.syncer {
            Some(syncer) => syncer.submit(bytes, callback),
            // Nothing to make durable: "flushed" as soon as stored.
            None => callback.io_completed(Ok(())),
        }
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let mut log = lock(&self.log);
        match last_log_id.and_then(|id| id.index.checked_add(1)) {
            Some(first_removed) => drop(log.entries.split_off(&first_removed)),
            None if last_log_id.is_none() => log.entries.clear(),
            None => {}
        }
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let mut log = lock(&self.log);
        log.entries = match log_id.index.checked_add(1) {
            Some(first_kept) => log.entries.split_off(&first_kept),
            None => BTreeMap::new(),
        };
        log.last_purged = Some(log_id);
        Ok(())
    }
}

// --- the state machine ------------------------------------------------------

#[derive(Default)]
struct State {
    kv: BTreeMap<String, String>,
    applied: Option<LogId>,
    membership: Membership,
    /// The current snapshot: its meta and serialized data.
    snapshot: Option<(SnapshotMeta, Vec<u8>)>,
}

impl State {
    /// Makes `(meta, data)` the current snapshot unless it would move the
    /// current one backwards (a newer one may have been installed during a
    /// build).
    fn store_snapshot(&mut self, meta: &SnapshotMeta, data: &[u8]) {
        if self
            .snapshot
            .as_ref()
            .is_none_or(|(stored, _)| stored.last_log_id <= meta.last_log_id)
        {
            self.snapshot = Some((meta.clone(), data.to_vec()));
        }
    }
}

/// The replicated key-value state machine in memory. Clones share the state.
#[derive(Clone, Default)]
pub struct MemStateMachine {
    state: Arc<Mutex<State>>,
}

/// Builds snapshots of the state machine it was taken from.
pub struct MemSnapshotBuilder {
    state: Arc<Mutex<State>>,
}

impl MemStateMachine {
    /// Reads `key` from the applied state.
    pub fn get(&self, key: &str) -> Option<String> {
        lock(&self.state).kv.get(key).cloned()
    }

    fn install(&self, meta: &SnapshotMeta, data: &[u8]) -> Result<(), io::Error> {
        let pairs: Vec<(String, String)> =
            serde_json::from_slice(data).map_err(|e| io::Error::other(format!("decoding snapshot data: {e}")))?;
        let mut state = lock(&self.state);
        state.kv = pairs.into_iter().collect();
        state.applied = meta.last_log_id;
        state.membership = meta.last_membership.clone();
        // Installed snapshots replace the current one unconditionally, as
        // raft_rocks's install does.
        state.snapshot = Some((meta.clone(), data.to_vec()));
        Ok(())
    }
}

impl MemSnapshotBuilder {
    /// Copies the key-value pairs, applied id and membership at one instant,
    /// serializes them, stores the result as current and returns it.
    fn build(&self) -> Result<Snapshot, io::Error> {
        let (applied, membership, pairs) = {
            let state = lock(&self.state);
            let pairs: Vec<(String, String)> = state.kv.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            (state.applied, state.membership.clone(), pairs)
        };
        let data = serde_json::to_vec(&pairs).map_err(|e| io::Error::other(format!("encoding snapshot data: {e}")))?;
        let mut state = lock(&self.state);
        let meta = SnapshotMeta {
            last_log_id: applied,
            last_membership: membership,
        };
        state.store_snapshot(&meta, &data);
        Ok(Snapshot { meta, snapshot: data })
    }
}

impl RaftSnapshotBuilder<TypeConfig> for MemSnapshotBuilder {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        self.build()
    }
}

impl RaftStateMachine<TypeConfig> for MemStateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = MemSnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, Membership), io::Error> {
        let state = lock(&self.state);
        Ok((state.applied, state.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let mut batch = Vec::new();
        while let Some(item) = entries.next().await {
            batch.push(item?);
        }
        let mut responses = Vec::with_capacity(batch.len());
        {
            let mut state = lock(&self.state);
            for (entry, responder) in batch {
                state.applied = Some(entry.log_id);
                let previous = match entry.payload {
                    EntryPayload::Blank => None,
                    EntryPayload::Normal(Request::Set { key, value }) => state.kv.insert(key, value),
                    EntryPayload::Normal(Request::Delete { key }) => state.kv.remove(&key),
                    EntryPayload::Membership(m) => {
                        state.membership = Membership::new(Some(entry.log_id), m);
                        None
                    }
                };
                responses.push((Response { previous }, responder));
            }
        }
        for (response, responder) in responses {
            if let Some(responder) = responder {
                responder.send(response);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        MemSnapshotBuilder {
            state: self.state.clone(),
        }
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: SnapshotData) -> Result<(), io::Error> {
        self.install(meta, &snapshot)
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        Ok(lock(&self.state).snapshot.as_ref().map(|(meta, data)| Snapshot {
            meta: meta.clone(),
            snapshot: data.clone(),
        }))
    }
}
