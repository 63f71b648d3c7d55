//! [`StateMachine`]: openraft's `RaftStateMachine` and `RaftSnapshotBuilder`
//! for a key-value store on sluicedb.

use std::io;
use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use openraft::storage::{ApplyResponder, EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use sluicedb::{Database, Durability, PendingCommit, ReadableDatabase, ReadableTable, WriteTransaction};

use crate::{
    APPLIED, CommittedMark, KV, LogId, MEMBERSHIP, Membership, Request, Response, SM_META, SNAPSHOT, SNAPSHOT_CHUNK,
    SNAPSHOT_META, Snapshot, SnapshotData, SnapshotMeta, TypeConfig, any, decode, encode, snapshot,
};

/// The replicated key-value state machine: the user's `kv` table, with the
/// last applied log id and membership in `raft_sm_meta`, written in the same
/// commit as the entries that moved them. Cloning is cheap.
#[derive(Clone)]
pub struct StateMachine {
    db: Arc<Database>,
    /// The log store's newest `save_committed`, waited for before applying.
    committed: CommittedMark,
}

/// Builds a snapshot from a read snapshot of the state machine, without
/// blocking writers.
pub struct SnapshotBuilder {
    db: Arc<Database>,
}

fn begin(db: &Database) -> Result<WriteTransaction, io::Error> {
    let mut txn = db.begin_write().map_err(any)?;
    txn.set_durability(Durability::None).map_err(any)?;
    Ok(txn)
}

/// Reads the applied state from any snapshot-consistent view.
fn applied_state_in(db: &Database) -> Result<(Option<LogId>, Membership), io::Error> {
    let txn = db.begin_read().map_err(any)?;
    let meta = txn.open_table(SM_META).map_err(any)?;
    let applied = match meta.get(APPLIED).map_err(any)? {
        Some(v) => decode(APPLIED, v.value())?,
        None => None,
    };
    let membership = match meta.get(MEMBERSHIP).map_err(any)? {
        Some(v) => decode(MEMBERSHIP, v.value())?,
        None => Membership::default(),
    };
    Ok((applied, membership))
}

/// Stores `data` as the current snapshot, with `meta`, in `txn`: the old
/// snapshot's chunks go in the same commit.
fn store_snapshot(txn: &WriteTransaction, meta: &SnapshotMeta, data: &[u8]) -> Result<(), io::Error> {
    let meta_bytes = encode(SNAPSHOT_META, meta)?;
    let mut chunks = txn.open_table(SNAPSHOT).map_err(any)?;
    chunks.retain(|_, _| false).map_err(any)?;
    for (i, chunk) in data.chunks(SNAPSHOT_CHUNK).enumerate() {
        chunks.insert(i as u64, chunk).map_err(any)?;
    }
    let mut sm_meta = txn.open_table(SM_META).map_err(any)?;
    sm_meta.insert(SNAPSHOT_META, meta_bytes.as_slice()).map_err(any)?;
    Ok(())
}

impl StateMachine {
    pub(crate) fn new(db: Arc<Database>, committed: CommittedMark) -> Self {
        Self { db, committed }
    }

    /// The database under this state machine.
    pub fn database(&self) -> &Arc<Database> {
        &self.db
    }

    /// Reads `key` from the applied state (what this node has applied, which
    /// may trail the leader).
    pub fn get(&self, key: &str) -> Result<Option<String>, sluicedb::Error> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(KV)?;
        Ok(table.get(key)?.map(|v| v.value().to_string()))
    }

    /// Applies `entries` in one transaction: the key-value changes, the last
    /// applied log id and the last membership go in one commit, so a crash
    /// keeps all of a batch or none of it. Returns each entry's response
    /// with its responder (`None` where no client waits), to be sent once
    /// the commit is visible.
    #[allow(clippy::type_complexity)]
    fn apply_batch(
        &self,
        entries: Vec<EntryResponder<TypeConfig>>,
    ) -> Result<
        (
            Vec<(Response, Option<ApplyResponder<TypeConfig>>)>,
            Option<PendingCommit>,
        ),
        io::Error,
    > {
        if entries.is_empty() {
            return Ok((Vec::new(), None));
        }
        let txn = begin(&self.db)?;
        let mut responses = Vec::with_capacity(entries.len());
        let mut last_applied = None;
        let mut membership = None;
        {
            let mut kv = txn.open_table(KV).map_err(any)?;
            for (entry, responder) in entries {
                last_applied = Some(entry.log_id);
                let previous = match entry.payload {
                    EntryPayload::Blank => None,
                    EntryPayload::Normal(Request::Set { key, value }) => kv
                        .insert(key.as_str(), value.as_str())
                        .map_err(any)?
                        .map(|v| v.value().to_string()),
                    EntryPayload::Normal(Request::Delete { key }) => {
                        kv.remove(key.as_str()).map_err(any)?.map(|v| v.value().to_string())
                    }
                    EntryPayload::Membership(m) => {
                        membership = Some(Membership::new(last_applied, m));
                        None
                    }
                };
                responses.push((Response { previous }, responder));
            }
        }
        {
            let mut meta = txn.open_table(SM_META).map_err(any)?;
            let applied = encode(APPLIED, &last_applied)?;
            meta.insert(APPLIED, applied.as_slice()).map_err(any)?;
            if let Some(membership) = &membership {
                let bytes = encode(MEMBERSHIP, membership)?;
                meta.insert(MEMBERSHIP, bytes.as_slice()).map_err(any)?;
            }
        }
        Ok((responses, Some(txn.commit_pipelined().map_err(any)?)))
    }

    fn install(&self, meta: &SnapshotMeta, data: &[u8]) -> Result<PendingCommit, io::Error> {
        let pairs = snapshot::decode(data)?;
        let applied = encode(APPLIED, &meta.last_log_id)?;
        let membership = encode(MEMBERSHIP, &meta.last_membership)?;
        let txn = begin(&self.db)?;
        {
            let mut kv = txn.open_table(KV).map_err(any)?;
            kv.retain(|_, _| false).map_err(any)?;
            for (key, value) in pairs {
                kv.insert(key, value).map_err(any)?;
            }
        }
        {
            let mut sm_meta = txn.open_table(SM_META).map_err(any)?;
            sm_meta.insert(APPLIED, applied.as_slice()).map_err(any)?;
            sm_meta.insert(MEMBERSHIP, membership.as_slice()).map_err(any)?;
        }
        store_snapshot(&txn, meta, data)?;
        txn.commit_pipelined().map_err(any)
    }

    fn current_snapshot(&self) -> Result<Option<Snapshot>, io::Error> {
        let txn = self.db.begin_read().map_err(any)?;
        let sm_meta = txn.open_table(SM_META).map_err(any)?;
        let Some(meta) = sm_meta.get(SNAPSHOT_META).map_err(any)? else {
            return Ok(None);
        };
        let meta: SnapshotMeta = decode(SNAPSHOT_META, meta.value())?;
        let chunks = txn.open_table(SNAPSHOT).map_err(any)?;
        let mut data = Vec::new();
        for item in chunks.range::<u64>(..).map_err(any)? {
            let (_, chunk) = item.map_err(any)?;
            data.extend_from_slice(chunk.value());
        }
        Ok(Some(Snapshot { meta, snapshot: data }))
    }
}

impl SnapshotBuilder {
    /// Streams the key-value table of one read snapshot into snapshot bytes:
    /// the data, the applied log id and the membership all come from the
    /// same read transaction, so they agree whatever is applied meanwhile.
    ///
    /// Returns the snapshot and the pending commit that stores it as current;
    /// the caller waits for it before handing the snapshot out.
    fn build(&self) -> Result<(Snapshot, PendingCommit), io::Error> {
        let read = self.db.begin_read().map_err(any)?;
        let (applied, membership) = {
            let meta = read.open_table(SM_META).map_err(any)?;
            let applied: Option<LogId> = match meta.get(APPLIED).map_err(any)? {
                Some(v) => decode(APPLIED, v.value())?,
                None => None,
            };
            let membership: Membership = match meta.get(MEMBERSHIP).map_err(any)? {
                Some(v) => decode(MEMBERSHIP, v.value())?,
                None => Membership::default(),
            };
            (applied, membership)
        };
        let mut encoder = snapshot::Encoder::new();
        {
            let kv = read.open_table(KV).map_err(any)?;
            for item in kv.range::<&str>(..).map_err(any)? {
                let (key, value) = item.map_err(any)?;
                encoder.push(key.value(), value.value())?;
            }
        }
        drop(read);
        let data = encoder.finish();

        // `Durability::None` and pipelined like every other commit here, not
        // `Immediate`: sluicedb publishes commits in order and an Immediate
        // one only once durable, so an Immediate commit here would hide the
        // log appends committed behind it until its sync ends, and openraft
        // 0.10 reads an append's entries right after `append` returns.
        let txn = begin(&self.db)?;
        let stored: Option<SnapshotMeta> = {
            let meta = txn.open_table(SM_META).map_err(any)?;
            match meta.get(SNAPSHOT_META).map_err(any)? {
                Some(v) => Some(decode(SNAPSHOT_META, v.value())?),
                None => None,
            }
        };
        // openraft 0.10's snapshot meta has no snapshot id (0.9's was built
        // from a counter kept here, which is gone with it).
        let meta = SnapshotMeta {
            last_log_id: applied,
            last_membership: membership,
        };
        // Invariant: the stored snapshot never moves backwards. A snapshot
        // installed from the leader while this one was being built may be
        // newer; it stays current.
        if stored.is_none_or(|s| s.last_log_id <= meta.last_log_id) {
            store_snapshot(&txn, &meta, &data)?;
        }
        let pending = txn.commit_pipelined().map_err(any)?;
        Ok((Snapshot { meta, snapshot: data }, pending))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotData;

    /// Durable before the snapshot is handed out (the commit is awaited):
    /// openraft purges the log behind a built snapshot.
    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let (snapshot, pending) = self.build()?;
        pending.await.map_err(any)?;
        Ok(snapshot)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, Membership), io::Error> {
        applied_state_in(&self.db)
    }

    /// One transaction for the entries openraft has ready, committed
    /// pipelined and not awaited: a batch lost in a crash is re-applied from
    /// the log, which holds it until a durable snapshot covers it (see
    /// design/raft.md). The responses go out once the commit is visible.
    ///
    /// First it waits until this node's newest saved `committed` id is
    /// durable, and with it (one WAL, synced in order) the log entries
    /// before it, the batch's among them. openraft applies an entry the
    /// cluster has committed before this node's own copy is flushed, and a
    /// batch applied then would be read (`get`, the client's response) and
    /// lost in a crash, with nothing durable to re-apply it from: the
    /// node's reads would go back in time. After the wait, a restart
    /// re-applies at least every batch that was ever visible.
    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        // Drain what the stream has ready into one batch; the stream ends
        // once openraft's batch is through.
        let mut batch = Vec::new();
        while let Some(item) = entries.next().await {
            batch.push(item?);
        }
        if batch.is_empty() {
            return Ok(());
        }
        // openraft saves the committed id before it asks for the apply.
        // Taken by an earlier batch, it was durable then.
        if let Some(committed) = self.committed.take() {
            committed.await.map_err(any)?;
        }
        let (responses, _pending) = self.apply_batch(batch)?;
        for (response, responder) in responses {
            if let Some(responder) = responder {
                responder.send(response);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder { db: self.db.clone() }
    }

    /// One transaction replaces the key-value table, the applied state and
    /// the stored snapshot; awaited, so the snapshot is durable on return.
    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: SnapshotData) -> Result<(), io::Error> {
        self.install(meta, &snapshot)?.await.map_err(any)
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        self.current_snapshot()
    }
}
