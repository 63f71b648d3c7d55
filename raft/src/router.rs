//! An in-process Raft network: several nodes in one process send each
//! other's RPCs by calling the target's [`Raft`] handle directly. For
//! examples, tests and benchmarks; a deployment puts a real transport here.
//!
//! Removing a node from the [`Router`] makes it unreachable, which is how the
//! example and tests "kill" a node.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::{BasicNode, Config, Raft};

use crate::{LogStore, StateMachine, TypeConfig};

type NodeId = u64;
type Rpc<T, E = openraft::error::Infallible> = Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

/// The nodes reachable in this process, by id. Cloning shares the table.
#[derive(Clone, Default)]
pub struct Router {
    nodes: Arc<Mutex<BTreeMap<NodeId, Raft<TypeConfig>>>>,
}

impl Router {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `raft` reachable as node `id` (replacing any previous one).
    pub fn add(&self, id: NodeId, raft: Raft<TypeConfig>) {
        self.table().insert(id, raft);
    }

    /// Makes node `id` unreachable; returns its handle.
    pub fn remove(&self, id: NodeId) -> Option<Raft<TypeConfig>> {
        self.table().remove(&id)
    }

    /// Node `id`'s handle, if reachable.
    pub fn get(&self, id: NodeId) -> Option<Raft<TypeConfig>> {
        self.table().get(&id).cloned()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, Raft<TypeConfig>>> {
        // A panic while holding the lock cannot leave the map half-changed:
        // every critical section is one map operation.
        match self.nodes.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// A connection from one node to `target`.
pub struct Connection {
    target: NodeId,
    router: Router,
}

#[derive(Debug)]
struct Down(NodeId);

impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "node {} is not reachable", self.0)
    }
}

impl std::error::Error for Down {}

impl Connection {
    fn target(&self) -> Result<Raft<TypeConfig>, Unreachable> {
        self.router
            .get(self.target)
            .ok_or_else(|| Unreachable::new(&Down(self.target)))
    }
}

impl RaftNetworkFactory<TypeConfig> for Router {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Connection {
        Connection {
            target,
            router: self.clone(),
        }
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<AppendEntriesResponse<NodeId>> {
        let raft = self.target()?;
        raft.append_entries(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        let raft = self.target()?;
        raft.install_snapshot(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, _option: RPCOption) -> Rpc<VoteResponse<NodeId>> {
        let raft = self.target()?;
        raft.vote(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

/// One node of an in-process cluster: its Raft handle and its state machine
/// (for local reads).
pub struct Node {
    /// The node's id.
    pub id: NodeId,
    /// The node's Raft handle.
    pub raft: Raft<TypeConfig>,
    /// The node's state machine, to read what it has applied.
    pub state_machine: StateMachine,
}

/// Why a node could not start.
pub type StartError = Box<dyn std::error::Error + Send + Sync>;

impl Router {
    /// Opens (or creates) node `id`'s database at `path`, starts its Raft
    /// and makes it reachable.
    pub async fn start(&self, id: NodeId, path: &Path, config: Arc<Config>) -> Result<Node, StartError> {
        let (log_store, state_machine) = crate::open(path)?;
        self.start_with(id, config, log_store, state_machine).await
    }

    /// Starts node `id` on stores already open, and makes it reachable.
    pub async fn start_with(
        &self,
        id: NodeId,
        config: Arc<Config>,
        log_store: LogStore<TypeConfig>,
        state_machine: StateMachine,
    ) -> Result<Node, StartError> {
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
