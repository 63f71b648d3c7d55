//! Process kill with two committers, shaped like a Raft node on one
//! database: a logger appends entries pipelined without waiting for
//! durability, an applier copies them into a key-value table with the
//! applied index in the same commit. The parent SIGKILLs the child, reopens,
//! and checks what a crash may not break: the log is a gap-free prefix, the
//! applied index never runs past it, every entry up to it is in the table
//! (one commit is all or nothing), and entries re-applied after the reopen
//! are readable at once.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use sluicedb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

const CHILD: &str = "SLUICE_TEST_ATOMIC_APPLY_CHILD";
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
const KV: TableDefinition<&str, &str> = TableDefinition::new("kv");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_sm_meta");

/// The key-value key of log entry `i`.
fn key(i: u64) -> String {
    format!("w{}-{}", i % 4, i)
}

/// Applies log entries `entries` in one commit, pipelined and not awaited:
/// their keys, and the applied index, as a Raft state machine does.
fn apply(db: &Database, entries: std::ops::RangeInclusive<u64>) {
    let upto = *entries.end();
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(Durability::None).unwrap();
    {
        let mut kv = txn.open_table(KV).unwrap();
        for i in entries {
            kv.insert(key(i).as_str(), key(i).as_str()).unwrap();
        }
        let mut meta = txn.open_table(META).unwrap();
        meta.insert("applied", upto.to_string().as_bytes()).unwrap();
    }
    drop(txn.commit_pipelined().unwrap());
}

fn child(path: &str) {
    let db = Arc::new(Database::create(path).unwrap());
    {
        let txn = db.begin_write().unwrap();
        txn.open_table(LOG).unwrap();
        txn.open_table(KV).unwrap();
        txn.open_table(META).unwrap();
        txn.commit().unwrap();
    }
    let start = {
        let read = db.begin_read().unwrap();
        let t = read.open_table(LOG).unwrap();
        t.last().unwrap().map_or(0, |(k, _)| k.value())
    };
    let db2 = db.clone();
    let logger = std::thread::spawn(move || {
        let mut pending = std::collections::VecDeque::new();
        for i in start + 1.. {
            let mut txn = db2.begin_write().unwrap();
            txn.set_durability(Durability::None).unwrap();
            let body = format!("entry-{i}-{}", "x".repeat(100));
            txn.open_table(LOG).unwrap().insert(i, body.as_bytes()).unwrap();
            pending.push_back(txn.commit_pipelined().unwrap());
            while pending.len() > 8 {
                pending.pop_front().unwrap().wait().unwrap();
            }
        }
    });
    let mut out = std::io::stdout().lock();
    let mut applied = {
        let read = db.begin_read().unwrap();
        let t = read.open_table(META).unwrap();
        t.get("applied")
            .unwrap()
            .map_or(0, |v| std::str::from_utf8(v.value()).unwrap().parse::<u64>().unwrap())
    };
    loop {
        let last = {
            let read = db.begin_read().unwrap();
            let t = read.open_table(LOG).unwrap();
            t.last().unwrap().map_or(0, |(k, _)| k.value())
        };
        if last <= applied {
            std::thread::yield_now();
            continue;
        }
        let upto = last.min(applied + 1 + (last % 7));
        apply(&db, applied + 1..=upto);
        applied = upto;
        writeln!(out, "{applied}").unwrap();
        out.flush().unwrap();
        if logger.is_finished() {
            break;
        }
    }
}

#[test]
fn kill_rounds() {
    if let Ok(path) = std::env::var(CHILD) {
        child(&path);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    // More rounds with SLUICE_TEST_KILL_ROUNDS=N (a soak).
    let rounds: usize = std::env::var("SLUICE_TEST_KILL_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20);
    let mut seed = 0x5EED_u64;
    for round in 0..rounds {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let kill_after = 1 + (seed >> 40) as usize % 400;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["kill_rounds", "--exact", "--nocapture"])
            .env(CHILD, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut n = 0;
        for line in lines.by_ref() {
            let Ok(_) = line else { break };
            n += 1;
            if n >= kill_after {
                break;
            }
        }
        child.kill().unwrap();
        let _ = child.wait();
        let db = Database::open(&path).unwrap();
        let read = db.begin_read().unwrap();
        let meta = read.open_table(META).unwrap();
        let applied = meta
            .get("applied")
            .unwrap()
            .map_or(0, |v| std::str::from_utf8(v.value()).unwrap().parse::<u64>().unwrap());
        let kv = read.open_table(KV).unwrap();
        let log = read.open_table(LOG).unwrap();
        let last = log.last().unwrap().map_or(0, |(k, _)| k.value());
        let count = log.len().unwrap();
        assert_eq!(count, last, "round {round}: log has a hole");
        assert!(last >= applied, "round {round}: applied {applied} beyond log {last}");
        for i in 1..=applied {
            let key = key(i);
            assert_eq!(
                kv.get(key.as_str()).unwrap().map(|v| v.value().to_string()),
                Some(key.clone()),
                "round {round}: applied {applied}, log {last}, lost {key}"
            );
        }
        assert_eq!(kv.len().unwrap(), applied, "round {round}");
        drop((kv, log, meta, read));
        // Re-apply the rest of the log as openraft does after a restart, in
        // chunks of 64, reading each key back at once.
        let mut at = applied;
        while at < last {
            let upto = last.min(at + 64);
            apply(&db, at + 1..=upto);
            let read = db.begin_read().unwrap();
            let kv = read.open_table(KV).unwrap();
            for i in at + 1..=upto {
                let key = key(i);
                assert!(
                    kv.get(key.as_str()).unwrap().is_some(),
                    "round {round}: re-applied {key} not visible"
                );
            }
            at = upto;
        }
    }
}
