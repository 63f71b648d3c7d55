//! Engine commit benchmark: single-key durable commits from 1 and 4
//! threads, and pipelined commits from 1 thread, against a raw `write` +
//! `fdatasync` loop measured in the same run (the physical limit of one
//! durable commit without grouping).
//!
//! Run: `cargo run --release -p sluicedb-bench --bin commit [-- --seconds N]`.

use std::fs::OpenOptions;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluicedb::btree::bytewise;
use sluicedb::engine::{Engine, EngineOptions};
use sluicedb::io::{FileBackend, FsLogDir};
use sluicedb_bench::{bench_dir, key, raw_fsync_limit, seconds_arg, value};

fn open(dir: &std::path::Path, name: &str) -> Engine {
    let path = dir.join(name);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    let wal = FsLogDir::open(dir.join(format!("{name}-wal"))).unwrap();
    Engine::open(FileBackend::new(file), wal, EngineOptions::default()).unwrap()
}

/// Commits per second from `threads` threads, each committing one key at a time.
fn durable_commits(db: &Arc<Engine>, threads: u64, duration: Duration, pipelined: bool) -> (f64, f64) {
    let start = Instant::now();
    let before = db.stats();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                let mut last = None;
                while start.elapsed() < duration {
                    let i = t << 40 | n;
                    let mut w = db.begin_write().unwrap();
                    let table = w.open_table(b"bench", b"bytes", bytewise).unwrap();
                    w.insert(table, &key(i), &value(i)).unwrap();
                    if pipelined {
                        last = Some(w.commit_pipelined().unwrap());
                    } else {
                        w.commit().unwrap();
                    }
                    n += 1;
                }
                if let Some(p) = last {
                    p.wait().unwrap();
                }
                n
            })
        })
        .collect();
    let commits: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let secs = start.elapsed().as_secs_f64();
    let after = db.stats();
    let fsyncs = (after.fsyncs - before.fsyncs) as f64;
    (commits as f64 / secs, fsyncs / commits as f64)
}

fn main() {
    let duration = Duration::from_secs_f64(seconds_arg());
    let dir = bench_dir();
    println!(
        "| round | raw write+fdatasync/s | 1-thread durable commits/s | x limit | 4-thread durable commits/s | x limit | fsyncs/commit (4t) | 1-thread pipelined commits/s | x limit |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for round in 1..=2 {
        let limit = raw_fsync_limit(dir.path(), 150, duration);
        let db = Arc::new(open(dir.path(), &format!("one-{round}")));
        let (one, _) = durable_commits(&db, 1, duration, false);
        drop(db);
        let db = Arc::new(open(dir.path(), &format!("four-{round}")));
        let (four, four_fsyncs) = durable_commits(&db, 4, duration, false);
        drop(db);
        let db = Arc::new(open(dir.path(), &format!("pipe-{round}")));
        let (piped, _) = durable_commits(&db, 1, duration, true);
        drop(db);
        println!(
            "| {round} | {limit:.0} | {one:.0} | {:.2} | {four:.0} | {:.2} | {four_fsyncs:.3} | {piped:.0} | {:.1} |",
            one / limit,
            four / limit,
            piped / limit
        );
    }
}
