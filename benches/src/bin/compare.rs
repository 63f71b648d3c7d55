//! The head-to-head benchmark: sluicedb, RocksDB, redb and LMDB on the same
//! workloads, in one process, interleaved (each workload runs on every
//! engine before the next workload starts).
//!
//! ```text
//! cargo run --release -p sluicedb-bench --bin compare -- [--quick] [--scale N]
//!     [--only W1,W2] [--engines sluicedb,rocksdb,redb,lmdb,rocksdb-lz4] [--seconds S] [--out DIR]
//! ```
//! Workloads (for `--only`), in the order they run: load, reads, scans,
//! full-scan, flushed-reads, read-while-write, commits, pipelined, no-sync,
//! overwrite, remove, blind-overwrite, and the
//! one-transaction rows (`one-txn` for all of them): ascending-load,
//! bulk-load, commits-after-load, len, tombstone-scans, pop-first, retain,
//! extract-if; reopen; and rss (each engine's peak resident memory, in a
//! child process of its own: `compare --rss-child ENGINE --scale N`). The
//! commits rows come with a row each of the background threads' CPU share.
//! `bench.sh` at the repository root installs what is missing and runs it;
//! `--help` lists the workloads and engines, and a bad argument exits 2
//! with a message.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluicedb_bench::compare::engines::{self, Engine, Shared, disk_bytes};
use sluicedb_bench::compare::report::{self, Report};
use sluicedb_bench::compare::resources::{self, CpuShare, Threads};
use sluicedb_bench::compare::workloads::{self as w, Measurement, Plan, Row};
use sluicedb_bench::{bench_dir, raw_fsync_limit};

struct Args {
    quick: bool,
    scale: Option<u64>,
    only: Option<Vec<String>>,
    engines: Vec<String>,
    seconds: Option<f64>,
    out: PathBuf,
    /// Run the peak-RSS scenario for this engine and print its peak.
    rss_child: Option<String>,
}

/// The cache every engine gets (sluicedb's page cache, RocksDB's block
/// cache, redb's cache), in every row and child process.
const CACHE_BYTES: usize = 1 << 30;

/// The line a peak-RSS child prints its result on.
const RSS_LINE: &str = "peak-rss-bytes ";

/// The engines `--engines` may name.
const ENGINES: [&str; 5] = ["sluicedb", "rocksdb", "redb", "lmdb", "rocksdb-lz4"];

/// The workloads `--only` may name, but for the one-transaction rows.
const WORKLOADS: [&str; 14] = [
    "load",
    "reads",
    "scans",
    "full-scan",
    "flushed-reads",
    "read-while-write",
    "commits",
    "pipelined",
    "no-sync",
    "overwrite",
    "remove",
    "blind-overwrite",
    "reopen",
    "rss",
];

/// The one-transaction rows `--only` may name (`one-txn`: all of them).
const ONE_TXN_WORKLOADS: [&str; 9] = [
    "one-txn",
    "ascending-load",
    "bulk-load",
    "commits-after-load",
    "len",
    "tombstone-scans",
    "pop-first",
    "retain",
    "extract-if",
];

const USAGE: &str =
    "usage: compare [--quick] [--scale N] [--only W1,W2,...] [--engines E1,E2,...] [--seconds S] [--out DIR]";

/// The command line, or a message saying what is wrong with it.
fn parse() -> Result<Args, String> {
    let mut args = Args {
        quick: false,
        scale: None,
        only: None,
        engines: ENGINES.iter().map(|e| e.to_string()).collect(),
        seconds: None,
        out: PathBuf::from("bench-results"),
        rss_child: None,
    };
    let list = |value: String, known: &[&str], what: &str| -> Result<Vec<String>, String> {
        let items: Vec<String> = value.split(',').map(String::from).collect();
        match items.iter().find(|i| !known.contains(&i.as_str())) {
            Some(unknown) => Err(format!("unknown {what} {unknown:?}; known: {}", known.join(", "))),
            None => Ok(items),
        }
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--help" | "-h" => {
                println!(
                    "{USAGE}\nworkloads: {}, {}\nengines: {}",
                    WORKLOADS.join(", "),
                    ONE_TXN_WORKLOADS.join(", "),
                    ENGINES.join(", ")
                );
                std::process::exit(0);
            }
            "--quick" => args.quick = true,
            "--scale" => {
                let n = value()?;
                args.scale = Some(n.parse().map_err(|_| format!("--scale takes a key count, not {n:?}"))?);
            }
            "--only" => {
                args.only = Some(list(
                    value()?,
                    &[&WORKLOADS[..], &ONE_TXN_WORKLOADS[..]].concat(),
                    "workload",
                )?)
            }
            "--engines" => args.engines = list(value()?, &ENGINES, "engine")?,
            "--seconds" => {
                let s = value()?;
                args.seconds = Some(
                    s.parse::<f64>()
                        .ok()
                        .filter(|s| s.is_finite() && *s > 0.0)
                        .ok_or_else(|| format!("--seconds takes a positive number, not {s:?}"))?,
                );
            }
            "--out" => args.out = PathBuf::from(value()?),
            "--rss-child" => args.rss_child = Some(value()?),
            "--crash-child" => {
                let (engine, dir, keys) = (value()?, value()?, value()?);
                let keys = keys
                    .parse()
                    .map_err(|_| format!("--crash-child takes a key count, not {keys:?}"))?;
                crash_child(&engine, &PathBuf::from(dir), keys);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

/// Writes `keys` keys durably, then dies without any shutdown: a crash with
/// a full WAL for the parent to reopen.
fn crash_child(engine: &str, dir: &std::path::Path, keys: u64) -> ! {
    let db = engines::open(
        engine,
        dir,
        Shared {
            cache_bytes: CACHE_BYTES,
        },
    );
    let batch: Vec<_> = (0..keys).map(w::kv).collect();
    for chunk in batch.chunks(1000) {
        db.write(chunk, true);
    }
    std::process::abort();
}

/// The peak-RSS child: runs `rss_scenario` on a fresh instance of `engine`,
/// alone in this process, closes it, and prints the process's peak RSS.
fn rss_child(engine: &str, plan: Plan) -> ! {
    let dir = bench_dir();
    let db = engines::open(
        engine,
        dir.path(),
        Shared {
            cache_bytes: CACHE_BYTES,
        },
    );
    w::rss_scenario(engine, &db, plan);
    drop(db);
    println!("{RSS_LINE}{}", resources::peak_rss_bytes());
    drop(dir);
    std::process::exit(0);
}

/// Runs the peak-RSS child for `engine` at `keys` keys; its peak in bytes.
fn peak_rss(engine: &str, keys: u64) -> f64 {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--rss-child", engine, "--scale", &keys.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap();
    assert!(output.status.success(), "the {engine} peak-RSS child failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(RSS_LINE)?.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("the {engine} peak-RSS child printed no peak"))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<u64>().unwrap_or(0) >> 20)
        })
        .unwrap_or(0);
    format!("{cpu}, {cores} cores, {mem} GiB")
}

struct Run {
    args: Args,
    plan: Plan,
    engines: Vec<(String, Arc<dyn Engine>, tempfile::TempDir)>,
    rows: Vec<Row>,
    fsync_limit: Option<f64>,
    scratch: tempfile::TempDir,
}

impl Run {
    fn wanted(&self, workload: &str) -> bool {
        self.args
            .only
            .as_ref()
            .is_none_or(|only| only.iter().any(|o| o == workload))
    }

    /// Engines that take part in timed workloads (the compressed RocksDB
    /// variant only loads, for the space row).
    fn timed_engines(&self) -> Vec<(String, Arc<dyn Engine>)> {
        self.engines
            .iter()
            .filter(|(n, _, _)| n != "rocksdb-lz4")
            .map(|(n, e, _)| (n.clone(), e.clone()))
            .collect()
    }

    fn row(
        &mut self,
        workload: &str,
        description: &str,
        unit: &str,
        results: Vec<Measurement>,
        limit: Option<(String, f64)>,
    ) {
        let row = Row {
            workload: workload.into(),
            description: description.into(),
            unit: unit.into(),
            results,
            limit,
        };
        println!(
            "{}",
            report::table(std::slice::from_ref(&row))
                .lines()
                .nth(2)
                .unwrap_or_default()
        );
        self.rows.push(row);
    }

    fn timed(
        &mut self,
        workload: &str,
        description: &str,
        limit: Option<(String, f64)>,
        f: impl Fn(&str, &Arc<dyn Engine>) -> Measurement,
    ) {
        if !self.wanted(workload) {
            return;
        }
        let results = self
            .timed_engines()
            .iter()
            .map(|(n, e)| {
                settle(n, self.plan);
                f(n, e)
            })
            .collect();
        self.row(workload, description, "ops/s", results, limit);
    }

    /// `timed`, and a second row: the share of the process's CPU time that
    /// went to threads other than the row's own (the engine's background
    /// threads), per engine.
    fn timed_with_cpu(
        &mut self,
        workload: &str,
        description: &str,
        limit: Option<(String, f64)>,
        f: impl Fn(&str, &Arc<dyn Engine>) -> Measurement,
    ) {
        if !self.wanted(workload) {
            return;
        }
        let mut results = Vec::new();
        let mut shares = Vec::new();
        let mut details = Vec::new();
        for (n, e) in self.timed_engines() {
            settle(&n, self.plan);
            let before = Threads::snapshot();
            results.push(f(&n, &e));
            let share = CpuShare::between(&before, &Threads::snapshot(), &n);
            details.push(format!("  {n}: {}", share.detail()));
            shares.push(Measurement {
                engine: n,
                value: share.percent(),
                p50_us: None,
                p99_us: None,
            });
        }
        self.row(workload, description, "ops/s", results, limit);
        self.row(
            workload,
            &format!("background threads' share of CPU time, during: {description}"),
            "%",
            shares,
            None,
        );
        details.iter().for_each(|d| println!("{d}"));
    }

    /// Two rows: the blocks every engine's files occupy, and the sum of
    /// their lengths (see `disk_bytes`).
    fn space(&mut self, description: &str) {
        let sizes: Vec<(String, (u64, u64))> = self
            .engines
            .iter()
            .map(|(n, _, dir)| (n.clone(), disk_bytes(dir.path())))
            .collect();
        let rows = |pick: fn((u64, u64)) -> u64| -> Vec<Measurement> {
            sizes
                .iter()
                .map(|(n, size)| Measurement {
                    engine: n.clone(),
                    value: pick(*size) as f64,
                    p50_us: None,
                    p99_us: None,
                })
                .collect()
        };
        self.row(
            "space",
            &format!("{description} (allocated)"),
            "bytes",
            rows(|s| s.0),
            None,
        );
        self.row(
            "space",
            &format!("{description} (apparent)"),
            "bytes",
            rows(|s| s.1),
            None,
        );
    }

    fn fsync_limit(&mut self) -> (String, f64) {
        let plan = self.plan;
        let dir = self.scratch.path().to_path_buf();
        let limit = *self
            .fsync_limit
            .get_or_insert_with(|| raw_fsync_limit(&dir, 150, plan.timed));
        ("raw write+fdatasync".into(), limit)
    }
}

/// The many-readers rows' description: more reader threads than cores, as
/// a server with a thread per request has.
fn many_readers(memtable: &str) -> String {
    format!("random reads, {} threads ({memtable})", w::MANY_READERS)
}

/// Waits, before `engine`'s timed run, until the background work earlier
/// runs left (any engine's) has finished (`resources::settle`): a minute at
/// most at 10M keys, half that at 1M and below. Says so when it waited
/// long or in vain.
fn settle(engine: &str, plan: Plan) {
    let max = Duration::from_secs(30).max(Duration::from_secs(6 * plan.keys / 1_000_000));
    let (waited, quiet) = resources::settle(max);
    if !quiet {
        println!("  (background threads still busy after {waited:.1?}; {engine} measured anyway)");
    } else if waited > Duration::from_secs(1) {
        println!("  (waited {waited:.1?} for background work to finish before {engine})");
    }
}

/// The rows of one-transaction work, on fresh instances: a whole data set
/// loaded in one transaction (ascending, then random keys), the durable
/// commits right after it, `len()`, range reads over fresh tombstones, and a
/// `pop_first` loop, `retain` and `extract_if`, each in one transaction.
///
/// The load, the commits after it and the first `len()` run on one engine
/// back to back (that is what they measure: whether a big transaction
/// stalls what follows), so those rows are per engine rather than
/// interleaved. Every step waits for a quiet process before each engine
/// and ends with an untimed flush (checkpoint), so no engine's background
/// work runs into the next engine's timing.
fn one_txn_rows(run: &mut Run, engine_names: &[String], shared: Shared) {
    if !ONE_TXN_WORKLOADS.iter().any(|n| run.wanted(n)) {
        return;
    }
    let wanted = |run: &Run, n: &str| run.wanted(n) || run.wanted("one-txn");
    let plan = run.plan;
    let keys = plan.keys;
    let names: Vec<&String> = engine_names.iter().filter(|n| *n != "rocksdb-lz4").collect();
    let data: Vec<_> = (0..keys).map(w::kv).collect();

    if wanted(run, "ascending-load") {
        let mut ascending = data.clone();
        ascending.sort_unstable_by_key(|a| a.0);
        let results = names
            .iter()
            .map(|n| {
                let dir = bench_dir();
                let e = engines::open(n, dir.path(), shared);
                settle(n, plan);
                let m = w::one_txn_load(n, e.as_ref(), &ascending);
                e.flush();
                m
            })
            .collect();
        run.row(
            "ascending-load",
            "one-transaction load, ascending keys",
            "ops/s",
            results,
            None,
        );
    }

    // Random keys: load, commits, len() on each engine back to back.
    let commits = 1000;
    let (mut loads, mut after, mut len_hot, mut len_flushed) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut loaded = Vec::new();
    for n in &names {
        let dir = bench_dir();
        let e = engines::open(n, dir.path(), shared);
        // Not between the load and the commits after it: those measure
        // what the load leaves behind.
        settle(n, plan);
        loads.push(w::one_txn_load(n, e.as_ref(), &data));
        after.push(w::commits_counted(n, e.as_ref(), commits, 6 << 40));
        len_hot.push(w::len_ms(n, e.as_ref(), keys + commits));
        e.flush();
        len_flushed.push(w::len_ms(n, e.as_ref(), keys + commits));
        loaded.push((n.to_string(), e, dir));
    }
    drop(data);
    if wanted(run, "bulk-load") {
        run.row(
            "bulk-load",
            "one-transaction load, random keys (rocksdb: 1000-key batches, last synced)",
            "ops/s",
            loads,
            None,
        );
    }
    if wanted(run, "commits-after-load") {
        run.row(
            "commits-after-load",
            &format!("{commits} single-key durable commits right after a one-transaction load"),
            "ops/s",
            after,
            None,
        );
    }
    if wanted(run, "len") {
        run.row(
            "len",
            "len() after the load (write buffer as the load left it; rocksdb: iterator count)",
            "ms",
            len_hot,
            None,
        );
        run.row(
            "len",
            "len() after a flush/checkpoint (rocksdb: iterator count)",
            "ms",
            len_flushed,
            None,
        );
    }

    // Every step below runs on every engine, each once the process is
    // quiet, then an untimed flush. The flush alone did not keep one
    // engine's background work out of the next one's timing: RocksDB's
    // flush starts compactions that ran on into sluicedb's `pop_first`,
    // the first engine of the next step (sixtieth session: 733.6K pops/s
    // with the four engines open, 1.25M with sluicedb and redb only).
    let step = |run: &mut Run, workload: &str, description: &str, f: &dyn Fn(&str, &Arc<dyn Engine>) -> Measurement| {
        let results: Vec<Measurement> = loaded
            .iter()
            .map(|(n, e, _)| {
                settle(n, plan);
                let m = f(n, e);
                e.flush();
                m
            })
            .collect();
        if wanted(run, workload) {
            run.row(workload, description, "ops/s", results, None);
        }
    };
    let mut len = keys + commits;
    // Removals in durable batches, then range reads at once: the tombstones
    // sit in the write buffer (sluicedb's memtable, RocksDB's memtable).
    step(
        run,
        "tombstone-scans",
        "range scans (seek + 10 next) right after durable removals of 10% of keys (no flush between)",
        &|n, e| {
            w::removals(n, e, plan);
            w::scans(n, e, plan)
        },
    );
    len -= (keys / 10).max(1);
    let pops = (len / 10) as usize;
    step(
        run,
        "pop-first",
        "pop_first loop over 10% of keys, one transaction",
        &|n, e| w::pop_first(n, e.as_ref(), pops),
    );
    len -= pops as u64;
    step(
        run,
        "retain",
        "retain keeping 90%, one transaction (entries visited/s)",
        &|n, e| w::retain(n, e.as_ref(), len),
    );
    let len_after_retain = loaded.first().map_or(0, |(_, e, _)| e.exact_len());
    step(
        run,
        "extract-if",
        "extract_if taking 10%, one transaction (entries visited/s)",
        &|n, e| w::extract_if(n, e.as_ref(), len_after_retain),
    );
}

fn main() {
    let args = parse().unwrap_or_else(|message| {
        eprintln!("compare: {message}\n{USAGE}");
        std::process::exit(2);
    });
    let keys = args.scale.unwrap_or(if args.quick { 20_000 } else { 1_000_000 });
    let seconds = args.seconds.unwrap_or(if args.quick { 0.25 } else { 3.0 });
    let plan = Plan {
        keys,
        timed: Duration::from_secs_f64(seconds),
        batch: 1000,
    };
    if let Some(engine) = &args.rss_child {
        rss_child(engine, plan);
    }
    let shared = Shared {
        cache_bytes: CACHE_BYTES,
    };
    let engine_names = args.engines.clone();
    let mut run = Run {
        engines: engine_names
            .iter()
            .map(|n| {
                let dir = bench_dir();
                (n.clone(), engines::open(n, dir.path(), shared), dir)
            })
            .collect(),
        args,
        plan,
        rows: Vec::new(),
        fsync_limit: None,
        scratch: bench_dir(),
    };
    let started = Instant::now();
    println!(
        "{keys} keys, {seconds} s per timed row, engines: {}",
        engine_names.join(", ")
    );

    // Every later workload reads the loaded data, so the load always runs.
    let progress = indicatif::ProgressBar::new(keys * run.engines.len() as u64);
    progress.set_style(indicatif::ProgressStyle::with_template("load {bar:40} {pos}/{len} keys {eta}").unwrap());
    let loads: Vec<Measurement> = run
        .engines
        .iter()
        .map(|(n, e, _)| {
            settle(n, plan);
            w::load(n, e.as_ref(), plan, &progress)
        })
        .collect();
    progress.finish_and_clear();
    let loads = loads.into_iter().filter(|m| m.engine != "rocksdb-lz4").collect();
    run.row("load", "batch durable writes (1000 keys/commit)", "ops/s", loads, None);
    run.space("space after load");

    let map_limit = run
        .wanted("reads")
        .then(|| ("BTreeMap".to_string(), w::btreemap_reads(plan)));
    // The "memtable populated" rows each rewrite recent keys first (untimed,
    // `w::repopulate`): the loads of the other engines take long enough
    // for sluicedb's periodic checkpoint to have emptied its memtable.
    run.timed(
        "reads",
        "random reads, 1 thread (memtable populated)",
        map_limit.clone(),
        |n, e| {
            w::repopulate(n, e.as_ref(), plan);
            w::reads(n, e, plan, 1)
        },
    );
    run.timed("reads", "random reads, 2 threads (memtable populated)", None, |n, e| {
        w::repopulate(n, e.as_ref(), plan);
        w::reads(n, e, plan, 2)
    });
    run.timed("reads", &many_readers("memtable populated"), None, |n, e| {
        w::repopulate(n, e.as_ref(), plan);
        w::reads(n, e, plan, w::MANY_READERS)
    });
    run.timed(
        "scans",
        "range scans (seek + 10 next, memtable populated)",
        None,
        |n, e| {
            w::repopulate(n, e.as_ref(), plan);
            w::scans(n, e, plan)
        },
    );
    run.timed("full-scan", "full scan (entries/s)", None, |n, e| {
        w::full_scan(n, e, plan)
    });
    if run.wanted("flushed-reads") {
        for (_, e) in run.timed_engines() {
            e.flush();
        }
    }
    run.timed(
        "flushed-reads",
        "random reads, 1 thread (memtable flushed)",
        map_limit,
        |n, e| w::reads(n, e, plan, 1),
    );
    run.timed(
        "flushed-reads",
        "random reads, 2 threads (memtable flushed)",
        None,
        |n, e| w::reads(n, e, plan, 2),
    );
    run.timed("flushed-reads", &many_readers("memtable flushed"), None, |n, e| {
        w::reads(n, e, plan, w::MANY_READERS)
    });
    run.timed(
        "flushed-reads",
        "range scans (seek + 10 next, memtable flushed)",
        None,
        |n, e| w::scans(n, e, plan),
    );

    // Before the timed write rows, which add to each engine as many keys
    // as it writes in their time (sluicedb's pipelined and no-sync rows
    // about 3M, redb's about 0.1M): run after them, this row read a
    // database three to four times larger on sluicedb than on redb, with
    // that backlog still flushing (1.41M reads/s on its own, 0.66M after
    // those rows, thirty-seventh session). Here every engine reads the
    // data the read rows above read.
    run.timed(
        "read-while-write",
        "random reads while 1 thread commits durably",
        None,
        |n, e| w::reads_while_writing(n, e, plan, 5 << 40),
    );
    let limit = run.wanted("commits").then(|| run.fsync_limit());
    run.timed_with_cpu(
        "commits",
        "single-key durable commits, 1 thread",
        limit.clone(),
        |n, e| w::commits(n, e, plan, 1, true, 1 << 40),
    );
    run.timed_with_cpu("commits", "single-key durable commits, 4 threads", limit, |n, e| {
        w::commits(n, e, plan, 4, true, 2 << 40)
    });
    let limit = run.wanted("pipelined").then(|| run.fsync_limit());
    run.timed(
        "pipelined",
        "single-key pipelined commits, 1 thread (peers: durable)",
        limit,
        |n, e| w::pipelined(n, e, plan, 3 << 40),
    );
    run.timed("no-sync", "single-key no-sync writes, 1 thread", None, |n, e| {
        w::commits(n, e, plan, 1, false, 4 << 40)
    });
    // Space rows compare engines on the same data, so they run on fresh
    // instances: the timed rows above add different numbers of keys to each.
    if run.wanted("overwrite") || run.wanted("remove") || run.wanted("blind-overwrite") {
        let fresh: Vec<(String, Arc<dyn Engine>, tempfile::TempDir)> = engine_names
            .iter()
            .map(|n| {
                let dir = bench_dir();
                (n.clone(), engines::open(n, dir.path(), shared), dir)
            })
            .collect();
        let progress = indicatif::ProgressBar::new(keys * fresh.len() as u64);
        progress.set_style(indicatif::ProgressStyle::with_template("reload {bar:40} {pos}/{len} keys {eta}").unwrap());
        for (n, e, _) in &fresh {
            w::load(n, e.as_ref(), plan, &progress);
        }
        progress.finish_and_clear();
        run.engines = fresh;
        // The compressed RocksDB only takes part in the space rows.
        let compressed: Vec<Arc<dyn Engine>> = run
            .engines
            .iter()
            .filter(|(n, _, _)| n == "rocksdb-lz4")
            .map(|(_, e, _)| e.clone())
            .collect();
        type Workload = fn(&str, &Arc<dyn Engine>, Plan) -> Measurement;
        // The blind overwrites come last, so the rows and space figures
        // before them are those of the runs that had no such row.
        let steps: [(&str, &str, Option<&str>, Workload); 3] = [
            (
                "overwrite",
                "batch durable overwrites of 10% of keys",
                Some("space after overwrite"),
                w::overwrite,
            ),
            (
                "remove",
                "batch durable removals of 10% of keys",
                Some("space after removal"),
                w::removals,
            ),
            (
                "blind-overwrite",
                "batch durable overwrites of another 10% through a blind write (sluicedb `put`; redb has none: `insert`)",
                None,
                w::overwrite_blind,
            ),
        ];
        for (workload, description, space, step) in steps {
            // Untimed notes around each engine's row: whether a flush or a
            // checkpoint ran during it moves its number (fifty-fourth
            // session: one binary gave 423-638K overwrites/s at 10M keys).
            run.timed(workload, description, None, |n, e| {
                w::log_write_buffer(n, e.as_ref(), &format!("before {workload}"));
                let measured = step(n, e, plan);
                w::log_write_buffer(n, e.as_ref(), &format!("after {workload}"));
                measured
            });
            compressed.iter().for_each(|e| drop(step("rocksdb-lz4", e, plan)));
            if let Some(space) = space {
                run.space(space);
            }
        }
        // What each engine's users can give back: its own compaction, once.
        drop(compressed);
        let mut without = Vec::new();
        for (name, engine, _) in &mut run.engines {
            let engine = Arc::get_mut(engine).unwrap_or_else(|| panic!("{name} is still shared"));
            if !engine.compact() {
                without.push(name.clone());
            }
        }
        let note = if without.is_empty() {
            String::new()
        } else {
            format!(" ({}: no compaction in place)", without.join(", "))
        };
        run.space(&format!("space after compact(){note}"));
    }
    one_txn_rows(&mut run, &engine_names, shared);
    if run.wanted("reopen") {
        let crash_keys = keys.min(200_000);
        let mut results = Vec::new();
        for (name, _) in run.timed_engines() {
            let dir = bench_dir();
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--crash-child",
                    &name,
                    &dir.path().display().to_string(),
                    &crash_keys.to_string(),
                ])
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(!status.success(), "the crash child was meant to abort");
            let start = Instant::now();
            let reopened = engines::open(&name, dir.path(), shared);
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            assert!(
                reopened.reader().get(&sluicedb_bench::key(crash_keys - 1)),
                "{name} lost acknowledged data"
            );
            results.push(Measurement {
                engine: name,
                value: ms,
                p50_us: None,
                p99_us: None,
            });
        }
        run.row(
            "reopen",
            &format!("reopen after a crash with {crash_keys} keys in the WAL"),
            "ms",
            results,
            None,
        );
    }

    if run.wanted("rss") {
        let results = run
            .timed_engines()
            .into_iter()
            .map(|(name, _)| Measurement {
                value: peak_rss(&name, keys),
                engine: name,
                p50_us: None,
                p99_us: None,
            })
            .collect();
        run.row(
            "rss",
            &format!(
                "peak RSS, each engine alone in a child process: one-transaction load of {keys} keys, durable batch overwrites and removals of 10%, {keys} random reads"
            ),
            "bytes",
            results,
            None,
        );
    }

    let command: Vec<String> = std::env::args().collect();
    let report = Report {
        machine: machine(),
        build: format!(
            "release; RUSTFLAGS -C target-cpu=native (.cargo/config.toml); rocksdb crate 0.25 (RocksDB C++), redb 4, heed {} (LMDB C)",
            engines::HEED
        ),
        command: format!(
            "cargo run --release -p sluicedb-bench --bin compare -- {}",
            command[1..].join(" ")
        ),
        keys,
        seconds_per_timed_row: seconds,
        settings: engines::settings(shared)
            .into_iter()
            .map(|(e, s)| (e.to_string(), s))
            .collect(),
        rows: run.rows,
    };
    println!(
        "\n{}\n{}",
        report::table(&report.rows),
        report::latency_table(&report.rows)
    );
    std::fs::create_dir_all(&run.args.out).unwrap();
    std::fs::write(
        run.args.out.join("results.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    std::fs::write(run.args.out.join("report.md"), report::markdown(&report)).unwrap();
    if let Err(e) = report::chart(&report.rows, &run.args.out.join("chart.svg")) {
        eprintln!("chart: {e}");
    }
    println!(
        "results in {} ({:.0} s)",
        run.args.out.display(),
        started.elapsed().as_secs_f64()
    );
}
