//! An in-process Raft network: several nodes in one process send each
//! other's RPCs by calling the target's [`Raft`] handle directly. For
//! examples, tests and benchmarks; a deployment puts a real transport here.
//!
//! Removing a node from the [`Router`] makes it unreachable, which is how the
//! example and tests "kill" a node.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use openraft::error::{
    ClientWriteError, ForwardReason, ForwardToLeader, RPCError, RaftError, ReplicationClosed, StreamingError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, ClientWriteResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::storage::RaftStateMachine;
use openraft::type_config::TypeConfigExt;
use openraft::type_config::alias::{SnapshotOf, VoteOf};
use openraft::{BasicNode, Config, Raft};

use crate::{LogStore, Request, StateMachine, TypeConfig};

type NodeId = u64;
type Rpc<T> = Result<T, RPCError<TypeConfig>>;

/// The nodes reachable in this process, by id, each a [`Raft`] over state
/// machine `SM` (openraft 0.10's `Raft` names its state machine type, for
/// the snapshot data it hands around). Cloning shares the table.
pub struct Router<SM: RaftStateMachine<TypeConfig> = StateMachine> {
    nodes: Arc<Mutex<BTreeMap<NodeId, Raft<TypeConfig, SM>>>>,
}

impl<SM: RaftStateMachine<TypeConfig>> Clone for Router<SM> {
    fn clone(&self) -> Self {
        Self {
            nodes: self.nodes.clone(),
        }
    }
}

impl<SM: RaftStateMachine<TypeConfig>> Default for Router<SM> {
    fn default() -> Self {
        Self { nodes: Arc::default() }
    }
}

impl<SM: RaftStateMachine<TypeConfig>> Router<SM> {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `raft` reachable as node `id` (replacing any previous one).
    pub fn add(&self, id: NodeId, raft: Raft<TypeConfig, SM>) {
        self.table().insert(id, raft);
    }

    /// Makes node `id` unreachable; returns its handle.
    pub fn remove(&self, id: NodeId) -> Option<Raft<TypeConfig, SM>> {
        self.table().remove(&id)
    }

    /// Node `id`'s handle, if reachable.
    pub fn get(&self, id: NodeId) -> Option<Raft<TypeConfig, SM>> {
        self.table().get(&id).cloned()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, Raft<TypeConfig, SM>>> {
        // A panic while holding the lock cannot leave the map half-changed:
        // every critical section is one map operation.
        match self.nodes.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// A connection from one node to `target`.
pub struct Connection<SM: RaftStateMachine<TypeConfig> = StateMachine> {
    target: NodeId,
    router: Router<SM>,
}

#[derive(Debug)]
struct Down(NodeId);

impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "node {} is not reachable", self.0)
    }
}

impl std::error::Error for Down {}

impl<SM: RaftStateMachine<TypeConfig>> Connection<SM> {
    fn target(&self) -> Result<Raft<TypeConfig, SM>, Unreachable<TypeConfig>> {
        self.router
            .get(self.target)
            .ok_or_else(|| Unreachable::new(&Down(self.target)))
    }
}

/// A target that answers with a fatal error is shutting down: unreachable.
fn down<E: std::error::Error + 'static>(e: E) -> Unreachable<TypeConfig> {
    Unreachable::new(&e)
}

impl<SM: RaftStateMachine<TypeConfig>> RaftNetworkFactory<TypeConfig> for Router<SM> {
    type Network = Connection<SM>;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Connection<SM> {
        Connection {
            target,
            router: self.clone(),
        }
    }
}

impl<SM: RaftStateMachine<TypeConfig>> RaftNetworkV2<TypeConfig> for Connection<SM> {
    type SnapshotData = SM::SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<AppendEntriesResponse<TypeConfig>> {
        let raft = self.target()?;
        raft.append_entries(rpc).await.map_err(|e| down(e).into())
    }

    async fn vote(&mut self, rpc: VoteRequest<TypeConfig>, _option: RPCOption) -> Rpc<VoteResponse<TypeConfig>> {
        let raft = self.target()?;
        raft.vote(rpc).await.map_err(|e| down(e).into())
    }

    async fn pre_vote(&mut self, rpc: VoteRequest<TypeConfig>, _option: RPCOption) -> Rpc<VoteResponse<TypeConfig>> {
        let raft = self.target()?;
        raft.pre_vote(rpc).await.map_err(|e| down(e).into())
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<TypeConfig>,
        snapshot: SnapshotOf<TypeConfig, SM::SnapshotData>,
        _cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let raft = self.target()?;
        raft.install_full_snapshot(vote, snapshot)
            .await
            .map_err(|e| down(e).into())
    }
}

/// How long [`client_write`] retries a leader whose lease is not valid.
const LEASE_WAIT: Duration = Duration::from_secs(10);

/// `raft.client_write(request)`, retried while `raft` is a leader without a
/// valid lease.
///
/// openraft 0.10 refuses a write (`ForwardToLeader` with
/// [`ForwardReason::LeaseExpired`]) at a leader that has not heard from a
/// quorum within its lease: right after it is elected, before the first
/// heartbeat round is acknowledged, and when it has lost touch with the
/// quorum. The entry was never appended, so retrying cannot duplicate it.
/// Any other error, or a lease still invalid after 10 seconds, is returned.
pub async fn client_write<SM: RaftStateMachine<TypeConfig>>(
    raft: &Raft<TypeConfig, SM>,
    request: Request,
) -> Result<ClientWriteResponse<TypeConfig>, RaftError<TypeConfig, ClientWriteError<TypeConfig>>> {
    let deadline = TypeConfig::now() + LEASE_WAIT;
    loop {
        match raft.client_write(request.clone()).await {
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(ForwardToLeader {
                reason: ForwardReason::LeaseExpired,
                ..
            }))) if TypeConfig::now() < deadline => TypeConfig::sleep(Duration::from_millis(10)).await,
            result => return result,
        }
    }
}

/// One node of an in-process cluster: its Raft handle and its state machine
/// (for local reads).
pub struct Node {
    /// The node's id.
    pub id: NodeId,
    /// The node's Raft handle.
    pub raft: Raft<TypeConfig, StateMachine>,
    /// The node's state machine, to read what it has applied.
    pub state_machine: StateMachine,
}

/// A config that lets a restarted leader lead again in its old term is
/// refused: see [`configure`](crate::configure).
fn refuse_unconfigured(config: &Config) -> Result<(), StartError> {
    if crate::is_configured(config) {
        Ok(())
    } else {
        Err("the config must come through sluicedb_raft::configure (enable_leader_restore = false)".into())
    }
}

/// Why a node could not start.
pub type StartError = Box<dyn std::error::Error + Send + Sync>;

impl Router<StateMachine> {
    /// Opens (or creates) node `id`'s database at `path`, starts its Raft
    /// and makes it reachable.
    ///
    /// Fails, before opening anything, if `config` did not come through
    /// [`configure`](crate::configure).
    pub async fn start(&self, id: NodeId, path: &Path, config: Arc<Config>) -> Result<Node, StartError> {
        refuse_unconfigured(&config)?;
        let (log_store, state_machine) = crate::open(path)?;
        self.start_with(id, config, log_store, state_machine).await
    }

    /// Starts node `id` on stores already open, and makes it reachable.
    ///
    /// Fails if `config` did not come through [`configure`](crate::configure):
    /// on these stores a restarted leader must campaign again.
    pub async fn start_with(
        &self,
        id: NodeId,
        config: Arc<Config>,
        log_store: LogStore<TypeConfig>,
        state_machine: StateMachine,
    ) -> Result<Node, StartError> {
        refuse_unconfigured(&config)?;
        let raft = Raft::new(id, config, self.clone(), log_store, state_machine.clone()).await?;
        self.add(id, raft.clone());
        Ok(Node {
            id,
            raft,
            state_machine,
        })
    }

    /// Stops `node`: unreachable at once, then its Raft shuts down and its
    /// database closes when the last handle drops.
    pub async fn stop(&self, node: Node) -> Result<(), StartError> {
        self.remove(node.id);
        node.raft.shutdown().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_config_that_restores_leaders_is_refused_before_anything_opens() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("node.sluice");
        let default = Arc::new(Config::default());
        let refused = Router::new().start(1, &path, default).await;
        assert!(refused.is_err_and(|e| e.to_string().contains("configure")));
        assert!(!path.exists(), "no database was created");

        let configured = Arc::new(crate::configure(Config::default()).validate().expect("valid"));
        let node = Router::new().start(1, &path, configured).await.expect("starts");
        node.raft.shutdown().await.expect("stops");
    }
}
