//! Replicated single-key writes on a three-node openraft cluster
//! (sluicedb-raft's in-process router), with each node's log and state
//! machine on sluicedb (`sluicedb_raft`), on RocksDB (`raft_rocks`, written
//! the same way) or in memory (`raft_mem`), in the same process and run.
//! Stores: `memory` keeps everything in memory and reports each append
//! flushed at once (no durability: the ceiling any store could reach on this
//! host with openraft 0.10); `memory-fsync` is that store plus the least a
//! durable log does, one write and `fdatasync` of an append-only file per
//! group of appends (the ceiling of a durable store on this host); `sluicedb`; `rocksdb` syncs appends on a flusher
//! thread (pipelined, as sluicedb-raft does); `rocksdb-sync` syncs each
//! append's `WriteBatch` inside `append`, as openraft's own RocksDB example
//! store does.
//!
//! Two phases per store: one client writing one key at a time (latency),
//! then `--clients` concurrent clients (throughput; openraft batches their
//! entries into appends). Each write is one `client_write` of one key,
//! acknowledged once a majority has the entry durably and the leader has
//! applied it. Reports writes/s and p50/p99 latency per phase, and the ratio.
//!
//! Run: `cargo run --release -p sluicedb-bench --bin raft [-- --quick]`
//! (options: `--writes N` for the concurrent phase, `--serial-writes N`,
//! `--clients N`, `--rounds N`, `--store memory|memory-fsync|sluicedb|rocksdb|rocksdb-sync|all`, `--snapshot-every N` (0: never); TMPDIR chooses the disk, default the current
//! directory's).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::{BasicNode, Config, Raft, SnapshotPolicy};
use sluicedb_bench::raft_mem;
use sluicedb_bench::raft_rocks::{self, AppendSync};
use sluicedb_bench::{bench_dir, key, value};
use sluicedb_raft::router::{Router, client_write};
use sluicedb_raft::{Request, TypeConfig};

type Error = Box<dyn std::error::Error + Send + Sync>;

const TIMEOUT: Option<Duration> = Some(Duration::from_secs(30));

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Store {
    Memory,
    MemoryFsync,
    Sluicedb,
    Rocksdb,
    RocksdbSync,
}

const ALL: [Store; 5] = [
    Store::Memory,
    Store::MemoryFsync,
    Store::RocksdbSync,
    Store::Rocksdb,
    Store::Sluicedb,
];

impl Store {
    fn name(self) -> &'static str {
        match self {
            Store::Memory => "memory",
            Store::MemoryFsync => "memory-fsync",
            Store::Sluicedb => "sluicedb",
            Store::Rocksdb => "rocksdb",
            Store::RocksdbSync => "rocksdb-sync",
        }
    }
}

struct Args {
    serial_writes: u64,
    writes: u64,
    clients: u64,
    rounds: u64,
    stores: Vec<Store>,
    snapshot_every: u64,
}

fn args() -> Result<Args, Error> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let quick = argv.iter().any(|a| a == "--quick");
    let mut args = if quick {
        Args {
            serial_writes: 100,
            writes: 2_000,
            clients: 32,
            rounds: 1,
            stores: ALL.to_vec(),
            snapshot_every: 5_000,
        }
    } else {
        Args {
            serial_writes: 500,
            writes: 10_000,
            clients: 32,
            rounds: 3,
            stores: ALL.to_vec(),
            snapshot_every: 5_000,
        }
    };
    let mut i = 0;
    while i < argv.len() {
        let slot = match argv[i].as_str() {
            "--quick" => {
                i += 1;
                continue;
            }
            "--store" => {
                args.stores = match argv.get(i + 1).map(String::as_str) {
                    Some("memory") => vec![Store::Memory],
                    Some("memory-fsync") => vec![Store::MemoryFsync],
                    Some("sluicedb") => vec![Store::Sluicedb],
                    Some("rocksdb") => vec![Store::Rocksdb],
                    Some("rocksdb-sync") => vec![Store::RocksdbSync],
                    Some("all") => ALL.to_vec(),
                    _ => {
                        return Err(
                            "--store takes memory, memory-fsync, sluicedb, rocksdb, rocksdb-sync or all".into(),
                        );
                    }
                };
                i += 2;
                continue;
            }
            "--serial-writes" => &mut args.serial_writes,
            "--writes" => &mut args.writes,
            "--clients" => &mut args.clients,
            "--rounds" => &mut args.rounds,
            "--snapshot-every" => &mut args.snapshot_every,
            other => return Err(format!("unknown argument {other}").into()),
        };
        *slot = argv
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{} needs a number", argv[i]))?;
        i += 2;
    }
    if args.clients == 0 || args.writes == 0 || args.serial_writes == 0 {
        return Err("counts must be positive".into());
    }
    Ok(args)
}

fn config(snapshot_every: u64) -> Result<Arc<Config>, Error> {
    let config = Config {
        cluster_name: "raft_bench".into(),
        heartbeat_interval: 50,
        election_timeout_min: 1_000,
        election_timeout_max: 2_000,
        // openraft's default policy is a snapshot every 5000 entries, so
        // long runs build (and purge behind) snapshots too; 0 turns them off.
        snapshot_policy: match snapshot_every {
            0 => SnapshotPolicy::Never,
            n => SnapshotPolicy::LogsSinceLast(n),
        },
        ..Default::default()
    };
    Ok(Arc::new(sluicedb_raft::configure(config).validate()?))
}

/// A running three-node cluster on one store type (openraft 0.10's `Raft`
/// names its state machine type, so the cluster does too).
struct Cluster<SM: RaftStateMachine<TypeConfig>> {
    router: Router<SM>,
    rafts: BTreeMap<u64, Raft<TypeConfig, SM>>,
    _dir: tempfile::TempDir,
}

impl<SM: RaftStateMachine<TypeConfig>> Cluster<SM> {
    /// Starts nodes 1..=3 on the stores `open(id, dir)` returns.
    async fn start<LS, F>(snapshot_every: u64, mut open: F) -> Result<Self, Error>
    where
        LS: RaftLogStorage<TypeConfig>,
        F: FnMut(u64, &Path) -> Result<(LS, SM), Error>,
    {
        let dir = bench_dir();
        let config = config(snapshot_every)?;
        let router = Router::new();
        let mut rafts = BTreeMap::new();
        for id in 1..=3u64 {
            let (log_store, state_machine) = open(id, dir.path())?;
            let raft = Raft::new(id, config.clone(), router.clone(), log_store, state_machine).await?;
            router.add(id, raft.clone());
            rafts.insert(id, raft);
        }
        let members: BTreeMap<u64, BasicNode> = (1..=3).map(|id| (id, BasicNode::default())).collect();
        rafts[&1].initialize(members).await?;
        let cluster = Self {
            router,
            rafts,
            _dir: dir,
        };
        cluster.leader().await?;
        Ok(cluster)
    }

    async fn leader(&self) -> Result<Raft<TypeConfig, SM>, Error> {
        let metrics = self.rafts[&1]
            .wait(TIMEOUT)
            .metrics(|m| m.current_leader.is_some(), "a leader")
            .await?;
        let id = metrics.current_leader.ok_or("no leader")?;
        Ok(self.rafts.get(&id).ok_or("leader is not a member")?.clone())
    }

    /// Shuts every node down, then removes the cluster's files once the
    /// stores have closed (their last handles drop as openraft's tasks end,
    /// a little after `shutdown` returns; RocksDB writes files until then).
    async fn stop(self) -> Result<(), Error> {
        for (id, raft) in self.rafts {
            self.router.remove(id);
            raft.shutdown().await?;
        }
        let path = self._dir.path().to_path_buf();
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if std::fs::remove_dir_all(&path).is_ok() {
                break;
            }
        }
        Ok(())
    }
}

fn request(i: u64) -> Request {
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    Request::Set {
        key: hex(&key(i)),
        // 100 characters: the data set's value length.
        value: hex(&value(i)[..50]),
    }
}

/// Writes keys `from..from + n` from `clients` concurrent clients (each
/// waits for its write before the next); returns the elapsed time and every
/// write's latency.
async fn run<SM: RaftStateMachine<TypeConfig>>(
    leader: &Raft<TypeConfig, SM>,
    from: u64,
    n: u64,
    clients: u64,
) -> Result<(Duration, Vec<Duration>), Error> {
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let raft = leader.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = c;
                while i < n {
                    let t = Instant::now();
                    client_write(&raft, request(from + i)).await?;
                    latencies.push(t.elapsed());
                    i += clients;
                }
                Ok::<_, Error>(latencies)
            })
        })
        .collect();
    let mut all = Vec::with_capacity(n as usize);
    for task in tasks {
        all.extend(task.await??);
    }
    Ok((start.elapsed(), all))
}

#[derive(Clone, Copy, Debug)]
struct Row {
    writes_per_sec: f64,
    p50: Duration,
    p99: Duration,
}

fn row(elapsed: Duration, mut latencies: Vec<Duration>) -> Row {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    Row {
        writes_per_sec: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// One store's two phases on a fresh cluster.
async fn bench(store: Store, args: &Args) -> Result<(Row, Row), Error> {
    let every = args.snapshot_every;
    match store {
        Store::Memory => bench_on(Cluster::start(every, |_, _| Ok(raft_mem::open())).await?, args).await,
        Store::MemoryFsync => {
            let open = |id, dir: &Path| Ok(raft_mem::open_synced(&dir.join(format!("node-{id}.log")))?);
            bench_on(Cluster::start(every, open).await?, args).await
        }
        Store::Sluicedb => {
            let open = |id, dir: &Path| Ok(sluicedb_raft::open(dir.join(format!("node-{id}.sluice")))?);
            bench_on(Cluster::start(every, open).await?, args).await
        }
        Store::Rocksdb | Store::RocksdbSync => {
            let sync = if store == Store::Rocksdb {
                AppendSync::Background
            } else {
                AppendSync::Inline
            };
            let open = |id, dir: &Path| Ok(raft_rocks::open(&dir.join(format!("node-{id}.rocks")), sync)?);
            bench_on(Cluster::start(every, open).await?, args).await
        }
    }
}

async fn bench_on<SM: RaftStateMachine<TypeConfig>>(cluster: Cluster<SM>, args: &Args) -> Result<(Row, Row), Error> {
    let leader = cluster.leader().await?;
    // Warm-up: the first writes pay for the leader's blank entry and the
    // followers' first appends.
    run(&leader, 1 << 40, 50, 1).await?;
    let (elapsed, latencies) = run(&leader, 0, args.serial_writes, 1).await?;
    let serial = row(elapsed, latencies);
    let (elapsed, latencies) = run(&leader, args.serial_writes, args.writes, args.clients).await?;
    let concurrent = row(elapsed, latencies);
    // Every node converges on one more write: the run really replicated.
    // Its index comes from its response (the leader's metrics may lag).
    let last = Some(client_write(&leader, request(1 << 41)).await?.log_id.index);
    for raft in cluster.rafts.values() {
        raft.wait(TIMEOUT)
            .applied_index_at_least(last, "followers catch up")
            .await?;
    }
    drop(leader);
    cluster.stop().await?;
    Ok((serial, concurrent))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// The median of `values` (the upper one of an even count).
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// One table per phase: every round's row, then each store's medians, then
/// the ratio of the medians (a round-to-round swing of the machine moves
/// both stores' rounds, not the median ratio much).
fn print(phase: &str, results: &[(u64, Store, Row)]) {
    println!("\n{phase}");
    println!("| store | round | writes/s | p50 | p99 |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (round, store, r) in results {
        println!(
            "| {} | {round} | {:.0} | {} | {} |",
            store.name(),
            r.writes_per_sec,
            ms(r.p50),
            ms(r.p99)
        );
    }
    let medians = |s: Store| {
        let rows: Vec<&Row> = results.iter().filter(|(_, x, _)| *x == s).map(|(_, _, r)| r).collect();
        let of = |f: fn(&Row) -> f64| median(rows.iter().map(|r| f(r)).collect());
        Some((
            of(|r| r.writes_per_sec)?,
            of(|r| r.p50.as_secs_f64() * 1e3)?,
            of(|r| r.p99.as_secs_f64() * 1e3)?,
        ))
    };
    for store in ALL {
        if let Some((w, p50, p99)) = medians(store) {
            println!("| {} | median | {w:.0} | {p50:.2} ms | {p99:.2} ms |", store.name());
        }
    }
    for other in [Store::Memory, Store::MemoryFsync, Store::Rocksdb, Store::RocksdbSync] {
        if let (Some(s), Some(r)) = (medians(Store::Sluicedb), medians(other)) {
            println!("sluicedb / {} median writes/s: {:.2}x", other.name(), s.0 / r.0);
        }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Error> {
    let args = args()?;
    println!(
        "three-node openraft 0.10.0-alpha.37 cluster, in-process router; {} serial writes (1 client), then {} writes from {} clients; {} round(s); 32-char keys, 100-char values",
        args.serial_writes, args.writes, args.clients, args.rounds
    );
    println!(
        "sluicedb: sluicedb_raft::open defaults (one Database per node, commit_pipelined + flusher thread, entry cache of the newest 4096 entries)"
    );
    println!("rocksdb: {}", raft_rocks::SETTINGS);
    println!("memory: {}", raft_mem::SETTINGS);
    println!("memory-fsync: {}", raft_mem::SYNCED_SETTINGS);
    let mut serial = Vec::new();
    let mut concurrent = Vec::new();
    for round in 0..args.rounds {
        // Alternate the order so neither store always runs on a warmer disk.
        let mut order = args.stores.clone();
        if round % 2 == 1 {
            order.reverse();
        }
        for store in order {
            let (s, c) = bench(store, &args).await?;
            eprintln!(
                "round {round} {}: serial {:.0} writes/s, concurrent {:.0} writes/s",
                store.name(),
                s.writes_per_sec,
                c.writes_per_sec
            );
            serial.push((round, store, s));
            concurrent.push((round, store, c));
        }
    }
    print("one client (serial writes):", &serial);
    print(&format!("{} concurrent clients:", args.clients), &concurrent);
    Ok(())
}
