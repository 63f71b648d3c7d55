//! WAL group-commit benchmark: appends per second and fsyncs per commit with
//! 1, 4 and 16 threads that each wait for durability, against the physical
//! limit measured in the same run: a raw `write` + `fdatasync` loop.
//!
//! Run: `cargo run --release -p sluicedb-bench --bin wal [-- --seconds N]`.
//! Files go to a temporary directory on the current directory's file system
//! (set TMPDIR to choose another disk).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluicedb::io::FsLogDir;
use sluicedb::wal::{Journal, JournalOptions};
use sluicedb_bench::{bench_dir, raw_fsync_limit, seconds_arg};

/// A 16-byte key and 100-byte value with a little framing: one commit.
const PAYLOAD: usize = 128;

struct Row {
    threads: usize,
    commits_per_sec: f64,
    fsyncs_per_commit: f64,
    avg_group: f64,
    max_group: u64,
}

fn journal_run(dir: &std::path::Path, threads: usize, duration: Duration) -> Row {
    let log = FsLogDir::open(dir.join(format!("wal-{threads}"))).unwrap();
    let (journal, _) = Journal::open(log, 1, 0, JournalOptions::default(), |_, _| Ok(())).unwrap();
    let journal = Arc::new(journal);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let journal = journal.clone();
            std::thread::spawn(move || {
                let payload = [9u8; PAYLOAD];
                let mut n = 0u64;
                while start.elapsed() < duration {
                    let seq = journal.append(&payload).unwrap();
                    journal.wait_for_sync(seq).unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let commits: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let secs = start.elapsed().as_secs_f64();
    let m = journal.metrics();
    Row {
        threads,
        commits_per_sec: commits as f64 / secs,
        fsyncs_per_commit: m.fsyncs as f64 / commits as f64,
        avg_group: m.average_group(),
        max_group: m.max_group,
    }
}

fn main() {
    let duration = Duration::from_secs_f64(seconds_arg());
    let dir = bench_dir();
    // Interleave: limit, then each thread count, twice.
    let mut raw = Vec::new();
    let mut rows: Vec<Row> = Vec::new();
    for _ in 0..2 {
        raw.push(raw_fsync_limit(dir.path(), PAYLOAD, duration));
        for threads in [1, 4, 16] {
            rows.push(journal_run(dir.path(), threads, duration));
        }
    }
    let limit = raw.iter().sum::<f64>() / raw.len() as f64;
    println!("raw write+fdatasync loop (1 thread): {limit:.0} commits/s (runs: {raw:.0?})");
    println!("| threads | durable commits/s | x raw fsync limit | fsyncs/commit | avg group | max group |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {:.0} | {:.2} | {:.3} | {:.1} | {} |",
            r.threads,
            r.commits_per_sec,
            r.commits_per_sec / limit,
            r.fsyncs_per_commit,
            r.avg_group,
            r.max_group
        );
    }
}
