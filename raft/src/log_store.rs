//! [`LogStore`]: openraft's `RaftLogStorage` and `RaftLogReader` on sluicedb.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread;

use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::type_config::alias::{LogIdOf, VoteOf};
use openraft::{LogState, OptionalSend, RaftLogReader, RaftTypeConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sluicedb::{Database, Durability, PendingCommit, ReadableDatabase, WriteTransaction};

use crate::entry_cache::{self, EntryCache};
use crate::{COMMITTED, CommittedMark, LAST_PURGED, LOG, LOG_META, VOTE, any, decode, encode};

/// One append waiting for its commit to become durable.
type Flush<C> = (PendingCommit, IOFlushed<C>);

/// The Raft log and vote over a sluicedb [`Database`].
///
/// Entries live in the `raft_log` table keyed by index (big-endian, so byte
/// order is index order); the vote, the committed log id and the last purged
/// log id live in `raft_log_meta`. The newest entries are also kept typed
/// in memory (`entry_cache`), so replication and the state machine read
/// what was just appended without a read transaction or decoding. Cloning
/// is cheap: clones share the database, the cache and the flusher thread,
/// and serve as the log reader.
pub struct LogStore<C: RaftTypeConfig> {
    db: Arc<Database>,
    flusher: Arc<Flusher<C>>,
    /// The newest entries, for the reads that follow their append.
    cache: Arc<Mutex<EntryCache<C::Entry>>>,
    /// Where `save_committed` leaves its commit for the state machine.
    committed: CommittedMark,
}

impl<C: RaftTypeConfig> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            flusher: self.flusher.clone(),
            cache: self.cache.clone(),
            committed: self.committed.clone(),
        }
    }
}

/// The thread that waits for appended commits to become durable and calls
/// their flush callbacks.
///
/// Invariant: callbacks are called in append order. The channel is FIFO and
/// the one thread waits for each commit before taking the next; sluicedb's
/// durable sequence only grows, so a later commit is never durable before an
/// earlier one anyway.
struct Flusher<C: RaftTypeConfig> {
    /// `None` only while dropping (closing the channel ends the thread).
    tx: Mutex<Option<mpsc::Sender<Flush<C>>>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl<C: RaftTypeConfig> Flusher<C> {
    fn start() -> Self {
        let (tx, rx) = mpsc::channel::<Flush<C>>();
        let thread = thread::Builder::new()
            .name("sluicedb-raft-flush".into())
            .spawn(move || {
                for (pending, callback) in rx {
                    let result = pending.wait().map_err(io::Error::other);
                    callback.io_completed(result);
                }
            })
            .ok();
        Self {
            tx: Mutex::new(Some(tx)),
            thread,
        }
    }

    /// Queues `callback` for when `pending` is durable. If the thread could
    /// not be started (or has gone), waits here instead: the callback is
    /// never lost.
    fn submit(&self, pending: PendingCommit, callback: IOFlushed<C>) {
        let sender = match self.tx.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let undelivered = match sender {
            Some(tx) if self.thread.is_some() => match tx.send((pending, callback)) {
                Ok(()) => None,
                Err(mpsc::SendError(flush)) => Some(flush),
            },
            _ => Some((pending, callback)),
        };
        if let Some((pending, callback)) = undelivered {
            callback.io_completed(pending.wait().map_err(io::Error::other));
        }
    }
}

impl<C: RaftTypeConfig> Drop for Flusher<C> {
    fn drop(&mut self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Some(thread) = self.thread.take() {
            // The thread ends once it has drained the queue; a panic in a
            // callback has already been reported by the panic hook.
            let _ = thread.join();
        }
    }
}

impl<C: RaftTypeConfig> LogStore<C> {
    pub(crate) fn new(db: Arc<Database>, committed: CommittedMark) -> Self {
        Self {
            db,
            flusher: Arc::new(Flusher::start()),
            cache: Arc::new(Mutex::new(EntryCache::new(entry_cache::CAPACITY))),
            committed,
        }
    }

    /// The database under this store.
    pub fn database(&self) -> &Arc<Database> {
        &self.db
    }

    /// A write transaction whose commit is visible at once. Every commit here
    /// says how long it waits for durability itself (see design/raft.md).
    fn begin(&self) -> Result<WriteTransaction, io::Error> {
        let mut txn = self.db.begin_write().map_err(any)?;
        txn.set_durability(Durability::None).map_err(any)?;
        Ok(txn)
    }

    fn read_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, io::Error> {
        let txn = self.db.begin_read().map_err(any)?;
        let table = txn.open_table(LOG_META).map_err(any)?;
        match table.get(key).map_err(any)? {
            Some(value) => Ok(Some(decode(key, value.value())?)),
            None => Ok(None),
        }
    }

    /// Writes one metadata value and commits; returns the pending commit.
    fn write_meta<T: Serialize>(&self, key: &str, value: &T) -> Result<PendingCommit, io::Error> {
        let bytes = encode(key, value)?;
        let txn = self.begin()?;
        {
            let mut table = txn.open_table(LOG_META).map_err(any)?;
            table.insert(key, bytes.as_slice()).map_err(any)?;
        }
        txn.commit_pipelined().map_err(any)
    }
}

impl<C> LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Clone + Serialize + DeserializeOwned,
{
    fn read_entries(&self, range: (Bound<u64>, Bound<u64>)) -> Result<Vec<C::Entry>, io::Error> {
        let txn = self.db.begin_read().map_err(any)?;
        let table = txn.open_table(LOG).map_err(any)?;
        let mut entries = Vec::new();
        for item in table.range(range).map_err(any)? {
            let (index, bytes) = item.map_err(any)?;
            let entry: C::Entry = decode("log entry", bytes.value())?;
            // The key and the entry's own id must agree, or the log is damaged.
            if entry.index() != index.value() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "log entry stored at index {} has log id {}",
                        index.value(),
                        entry.log_id()
                    ),
                ));
            }
            entries.push(entry);
        }
        Ok(entries)
    }

    fn log_state(&self) -> Result<LogState<C>, io::Error> {
        let txn = self.db.begin_read().map_err(any)?;
        let meta = txn.open_table(LOG_META).map_err(any)?;
        let last_purged: Option<LogIdOf<C>> = match meta.get(LAST_PURGED).map_err(any)? {
            Some(value) => decode(LAST_PURGED, value.value())?,
            None => None,
        };
        let log = txn.open_table(LOG).map_err(any)?;
        let last = match log.range::<u64>(..).map_err(any)?.next_back() {
            Some(item) => {
                let (_, bytes) = item.map_err(any)?;
                let entry: C::Entry = decode("log entry", bytes.value())?;
                Some(entry.log_id())
            }
            None => None,
        };
        Ok(LogState {
            last_log_id: last.or_else(|| last_purged.clone()),
            last_purged_log_id: last_purged,
        })
    }

    /// The entry cache; a panic while it was held left it consistent or
    /// empty, so a poisoned lock is taken as is.
    fn cache(&self) -> MutexGuard<'_, EntryCache<C::Entry>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `entries` in one transaction and commits it pipelined: the
    /// entries are readable when this returns, durable when the commit is.
    /// They enter the entry cache once the commit is visible.
    fn append_entries<I: IntoIterator<Item = C::Entry>>(&self, entries: I) -> Result<Option<PendingCommit>, io::Error> {
        let txn = self.begin()?;
        let mut appended = Vec::new();
        {
            let mut table = txn.open_table(LOG).map_err(any)?;
            for entry in entries {
                let bytes = encode("log entry", &entry)?;
                table.insert(entry.index(), bytes.as_slice()).map_err(any)?;
                appended.push(entry);
            }
        }
        let Some(first) = appended.first().map(|entry| entry.index()) else {
            txn.abort().map_err(any)?;
            return Ok(None);
        };
        let pending = txn.commit_pipelined().map_err(any)?;
        self.cache().append(first, appended);
        Ok(Some(pending))
    }

    /// Removes the entries in `range` in one transaction, setting
    /// `last_purged` in the same commit when given.
    fn remove_entries(
        &self,
        range: (Bound<u64>, Bound<u64>),
        last_purged: Option<&LogIdOf<C>>,
    ) -> Result<PendingCommit, io::Error> {
        let purged = last_purged.map(|id| encode(LAST_PURGED, &Some(id))).transpose()?;
        // The entries leave the cache before the table; if the removal
        // fails, the cache forgets everything rather than guess.
        {
            let mut cache = self.cache();
            match range {
                (Bound::Excluded(last), Bound::Unbounded) => cache.truncate_from(last.saturating_add(1)),
                (Bound::Unbounded, Bound::Included(through)) => cache.purge_through(through),
                _ => cache.clear(),
            }
        }
        let removed = self.commit_removal(range, purged);
        if removed.is_err() {
            self.cache().clear();
        }
        removed
    }

    fn commit_removal(
        &self,
        range: (Bound<u64>, Bound<u64>),
        purged: Option<Vec<u8>>,
    ) -> Result<PendingCommit, io::Error> {
        let txn = self.begin()?;
        {
            let mut table = txn.open_table(LOG).map_err(any)?;
            table.retain_in(range, |_, _| false).map_err(any)?;
        }
        if let Some(purged) = purged {
            let mut meta = txn.open_table(LOG_META).map_err(any)?;
            meta.insert(LAST_PURGED, purged.as_slice()).map_err(any)?;
        }
        txn.commit_pipelined().map_err(any)
    }
}

fn bounds<RB: RangeBounds<u64>>(range: &RB) -> (Bound<u64>, Bound<u64>) {
    (range.start_bound().cloned(), range.end_bound().cloned())
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Clone + Serialize + DeserializeOwned,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, io::Error> {
        let (start, end) = bounds(&range);
        if let Some(entries) = self.cache().get(start, end) {
            return Ok(entries);
        }
        self.read_entries((start, end))
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<C>>, io::Error> {
        self.read_meta(VOTE)
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Clone + Serialize + DeserializeOwned,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, io::Error> {
        self.log_state()
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    /// Durable before it returns: the commit is awaited.
    async fn save_vote(&mut self, vote: &VoteOf<C>) -> Result<(), io::Error> {
        self.write_meta(VOTE, vote)?.await.map_err(any)
    }

    /// Not awaited here: openraft's core goes on at once. The state
    /// machine waits for it before it applies what it commits (see
    /// `StateMachine::apply` and design/raft.md).
    async fn save_committed(&mut self, committed: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        self.committed.set(self.write_meta(COMMITTED, &committed)?);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<C>>, io::Error> {
        let committed: Option<Option<LogIdOf<C>>> = self.read_meta(COMMITTED)?;
        Ok(committed.flatten())
    }

    /// Commits pipelined and returns: the flusher thread calls `callback`
    /// once the commit is durable. openraft 0.10 does not wait for the
    /// callback before its next append, so several appends can be in
    /// flight, and sluicedb's group commit syncs them together.
    async fn append<I>(&mut self, entries: I, callback: IOFlushed<C>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        match self.append_entries(entries) {
            Ok(Some(pending)) => {
                self.flusher.submit(pending, callback);
                Ok(())
            }
            Ok(None) => {
                callback.io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.io_completed(Err(io::Error::new(e.kind(), e.to_string())));
                Err(e)
            }
        }
    }

    /// Removes `(last_log_id.index, ..)` (the whole log for `None`) in one
    /// transaction and waits for it to be durable, so a restart never shows
    /// entries this node has discarded.
    async fn truncate_after(&mut self, last_log_id: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        let from = match last_log_id {
            Some(id) => Bound::Excluded(id.index),
            None => Bound::Unbounded,
        };
        self.remove_entries((from, Bound::Unbounded), None)?.await.map_err(any)
    }

    /// Removes `[.., log_id.index]` and records `log_id` as last purged, in
    /// one transaction. Not awaited: a purge lost in a crash leaves applied
    /// entries in the log, which is harmless, and the two stay consistent.
    async fn purge(&mut self, log_id: LogIdOf<C>) -> Result<(), io::Error> {
        self.remove_entries((Bound::Unbounded, Bound::Included(log_id.index)), Some(&log_id))
            .map(drop)
    }
}
