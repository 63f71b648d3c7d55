//! Crash safety through Raft: a child process runs a three-node cluster (in
//! one process, on three sluicedb databases) and writes through the leader.
//! It prints each follower append that was acknowledged (openraft 0.10 answers
//! an AppendEntries only after the follower's flush callback fired: its
//! engine responds on `Condition::IOFlushed`, though the follower's core
//! no longer waits for the callback before its next append) and each
//! client write that committed. The parent SIGKILLs the child in the middle of
//! the writes, then reopens every database: each node's log has no hole and
//! reaches every index that node acknowledged as flushed; restarted, the
//! cluster converges and holds every committed write.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use std::future::Future;

use common::TIMEOUT;
use openraft::error::{RPCError, ReplicationClosed, StreamingError};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse};
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::type_config::alias::{SnapshotOf, VoteOf};
use openraft::{BasicNode, RaftLogReader};
use sluicedb_raft::router::{Connection, Node, Router, client_write};
use sluicedb_raft::{Request, SnapshotData, TypeConfig};

/// The log and applied state of a node, for a failure's message.
fn describe(node: &Node) -> String {
    use sluicedb::{ReadableDatabase, TableDefinition};
    const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
    const SM_META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_sm_meta");
    let read = node.state_machine.database().begin_read().expect("a read");
    let meta = read.open_table(SM_META).expect("sm meta");
    let applied = meta
        .get("applied")
        .expect("read")
        .map(|v| String::from_utf8_lossy(v.value()).into_owned());
    let log = read.open_table(LOG).expect("log");
    let tail: Vec<String> = log
        .range::<u64>(..)
        .expect("range")
        .rev()
        .take(12)
        .map(|e| {
            let (k, v) = e.expect("entry");
            format!("{}: {}", k.value(), String::from_utf8_lossy(v.value()))
        })
        .collect();
    format!("applied {applied:?}, log tail (newest first): {tail:#?}")
}

const CHILD: &str = "SLUICEDB_RAFT_KILL_CHILD";

type Rpc<T> = Result<T, RPCError<TypeConfig>>;

fn db_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("node-{id}.sluice"))
}

/// The router, printing each successful append to `target`.
#[derive(Clone)]
struct Observed(Router);

struct ObservedConnection {
    target: u64,
    inner: Connection,
}

impl RaftNetworkFactory<TypeConfig> for Observed {
    type Network = ObservedConnection;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> ObservedConnection {
        ObservedConnection {
            target,
            inner: self.0.new_client(target, node).await,
        }
    }
}

impl RaftNetworkV2<TypeConfig> for ObservedConnection {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Rpc<AppendEntriesResponse<TypeConfig>> {
        let last = rpc.entries.last().map(|e| e.log_id.index);
        let response = self.inner.append_entries(rpc, option).await;
        if let (Some(last), Ok(AppendEntriesResponse::Success)) = (last, &response) {
            println!("ack {} {last}", self.target);
        }
        response
    }

    async fn vote(&mut self, rpc: VoteRequest<TypeConfig>, option: RPCOption) -> Rpc<VoteResponse<TypeConfig>> {
        self.inner.vote(rpc, option).await
    }

    async fn pre_vote(&mut self, rpc: VoteRequest<TypeConfig>, option: RPCOption) -> Rpc<VoteResponse<TypeConfig>> {
        self.inner.pre_vote(rpc, option).await
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<TypeConfig>,
        snapshot: SnapshotOf<TypeConfig, SnapshotData>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        self.inner.full_snapshot(vote, snapshot, cancel, option).await
    }
}

async fn leader(nodes: &BTreeMap<u64, Node>) -> u64 {
    let metrics = nodes[&1]
        .raft
        .wait(TIMEOUT)
        .metrics(|m| m.current_leader.is_some(), "a leader")
        .await
        .expect("a leader is elected");
    metrics.current_leader.expect("a leader")
}

/// The child: a cluster that writes until it is killed.
async fn child(dir: PathBuf) {
    let router = Router::new();
    let network = Observed(router.clone());
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        let (log, sm) = sluicedb_raft::open(db_path(&dir, id)).expect("database opens");
        let raft = openraft::Raft::new(id, common::config(), network.clone(), log, sm.clone())
            .await
            .expect("raft starts");
        router.add(id, raft.clone());
        nodes.insert(
            id,
            Node {
                id,
                raft,
                state_machine: sm,
            },
        );
    }
    let members: BTreeMap<u64, BasicNode> = (1..=3).map(|id| (id, BasicNode::default())).collect();
    nodes[&1].raft.initialize(members).await.expect("initialize");
    let leader = leader(&nodes).await;
    // Several writers at once, so appends overlap with syncs.
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let raft = nodes[&leader].raft.clone();
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let key = format!("w{w}-{i}");
                let request = Request::Set {
                    key: key.clone(),
                    value: key.clone(),
                };
                client_write(&raft, request).await.expect("write commits");
                println!("write {key}");
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer runs until killed");
    }
}

#[test]
fn kill_child_entry() {
    let Some(dir) = std::env::var_os(CHILD) else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(child(PathBuf::from(dir)));
}

#[test]
fn sigkill_during_writes_keeps_every_flushed_entry_and_converges() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["kill_child_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the child starts");
    let mut acked: BTreeMap<u64, u64> = BTreeMap::new();
    let mut written = Vec::new();
    let record = |line: &str, acked: &mut BTreeMap<u64, u64>, written: &mut Vec<String>| {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            ["ack", node, index] => {
                if let (Ok(node), Ok(index)) = (node.parse(), index.parse()) {
                    let max = acked.entry(node).or_insert(0);
                    *max = (*max).max(index);
                }
            }
            ["write", key] => written.push(key.to_string()),
            _ => {}
        }
    };
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    for line in lines.by_ref() {
        let Ok(line) = line else { break };
        record(&line, &mut acked, &mut written);
        if written.len() >= 300 {
            break;
        }
    }
    child.kill().expect("SIGKILL"); // SIGKILL on Unix
    // What the child printed before it died is still in the pipe. A line cut
    // by the kill fails to parse and is ignored.
    for line in lines.map_while(Result::ok) {
        record(&line, &mut acked, &mut written);
    }
    child.wait().expect("the child is reaped");
    eprintln!(
        "killed after {} committed writes; follower acknowledgements: {acked:?}",
        written.len()
    );
    assert!(written.len() >= 300, "the child died early: {} writes", written.len());
    assert!(acked.len() >= 2, "both followers acknowledged appends: {acked:?}");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        // Every node's log, reopened: no hole, and every acknowledged index.
        let mut stores = BTreeMap::new();
        let mut before = BTreeMap::new();
        for id in 1..=3 {
            let (mut log, sm) = sluicedb_raft::open(db_path(dir.path(), id)).expect("the database reopens");
            let state = log.get_log_state().await.expect("log state");
            let last = state.last_log_id.map_or(0, |l| l.index);
            let first = state.last_purged_log_id.map_or(0, |l| l.index + 1);
            let entries = log.try_get_log_entries(first..=last).await.expect("entries");
            let indexes: Vec<u64> = entries.iter().map(|e| e.log_id.index).collect();
            assert_eq!(
                indexes,
                (first..=last).collect::<Vec<_>>(),
                "node {id}'s log has a hole"
            );
            if let Some(&max) = acked.get(&id) {
                assert!(
                    last >= max,
                    "node {id} acknowledged index {max} as flushed, but its log ends at {last}"
                );
            }
            // What this node held before the restart, for a failure's message.
            let (applied, _) = sm.clone().applied_state().await.expect("applied state");
            let committed = log.read_committed().await.expect("committed");
            let missing: Vec<&String> = written
                .iter()
                .filter(|key| sm.get(key).expect("read").is_none())
                .collect();
            before.insert(
                id,
                format!(
                    "log ends at {last}, committed {committed:?}, applied {applied:?}, writes not applied: {missing:?}"
                ),
            );
            stores.insert(id, (log, sm));
        }

        // Restarted, the cluster converges and holds every committed write.
        let router = Router::new();
        let mut nodes = BTreeMap::new();
        for (id, (log, sm)) in stores {
            nodes.insert(
                id,
                router.start_with(id, common::config(), log, sm).await.expect("restart"),
            );
        }
        let leader = leader(&nodes).await;
        // The index of this write, from its own response: the leader's
        // metrics may not show it applied yet when `client_write` returns
        // (reading them here once made the nodes look caught up at an
        // older index, and the test blamed the store).
        let target = client_write(
            &nodes[&leader].raft,
            Request::Set {
                key: "after".into(),
                value: "restart".into(),
            },
        )
        .await
        .expect("a write after the restart commits")
        .log_id
        .index;
        for node in nodes.values() {
            node.raft
                .wait(TIMEOUT)
                .applied_index_at_least(Some(target), "every node catches up")
                .await
                .expect("the node converges");
            for key in &written {
                if node.state_machine.get(key).expect("read").as_ref() != Some(key) {
                    panic!(
                        "node {} lost committed write {key}; before the restart: {before:#?}; now: {}",
                        node.id,
                        describe(node)
                    );
                }
            }
        }
        for (_, node) in nodes {
            router.stop(node).await.expect("stop");
        }
    });
}
