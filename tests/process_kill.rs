//! Process kill: a child commits and prints each commit once it is
//! acknowledged durable; the parent kills it with SIGKILL at a random
//! moment, reopens, and finds every acknowledged commit (and a gap-free
//! prefix). Rounds with plain durable commits and with pipelined ones.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use sluicedb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

const CHILD: &str = "SLUICE_TEST_KILL_CHILD";
const T: TableDefinition<u64, u64> = TableDefinition::new("log");

fn child(path: &str, pipelined: bool) {
    let db = Database::builder().set_memtable_size(64 << 10).create(path).unwrap();
    let start = {
        let read = db.begin_read().unwrap();
        read.open_table(T)
            .map_or(0, |t| t.last().unwrap().map_or(0, |(k, _)| k.value()))
    };
    let mut out = std::io::stdout().lock();
    let mut pending = std::collections::VecDeque::new();
    for i in start + 1.. {
        let txn = db.begin_write().unwrap();
        txn.open_table(T).unwrap().insert(i, i * 7).unwrap();
        if pipelined {
            pending.push_back((i, txn.commit_pipelined().unwrap()));
            while pending.front().is_some_and(|(_, p)| p.is_durable()) || pending.len() > 32 {
                let (i, p) = pending.pop_front().unwrap();
                p.wait().unwrap();
                writeln!(out, "{i}").unwrap();
            }
        } else {
            txn.commit().unwrap();
            writeln!(out, "{i}").unwrap();
        }
        out.flush().unwrap();
    }
}

fn round(path: &std::path::Path, pipelined: bool, kill_after: usize) -> u64 {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["kill_rounds", "--exact", "--nocapture"])
        .env(CHILD, format!("{}|{}", path.display(), pipelined))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked = 0;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let Ok(line) = line else { break };
        if let Ok(i) = line.trim().parse::<u64>() {
            acked = i;
        }
        if acked as usize >= kill_after {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    acked
}

#[test]
fn kill_rounds() {
    if let Ok(spec) = std::env::var(CHILD) {
        let (path, pipelined) = spec.split_once('|').unwrap();
        child(path, pipelined == "true");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 0x5EED_u64;
    let mut rounds = 0;
    for pipelined in [false, true] {
        let path = dir.path().join(format!("db-{pipelined}"));
        let mut acked_total = 0;
        for _ in 0..15 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let kill_after = acked_total + 1 + (seed >> 40) as usize % 300;
            let acked = round(&path, pipelined, kill_after);
            let db = Database::open(&path).unwrap();
            let read = db.begin_read().unwrap();
            let table = read.open_table(T).unwrap();
            let keys: Vec<u64> = table.iter().unwrap().map(|e| e.unwrap().0.value()).collect();
            assert_eq!(
                keys,
                (1..=keys.len() as u64).collect::<Vec<_>>(),
                "not a gap-free prefix"
            );
            assert!(
                keys.len() as u64 >= acked,
                "acknowledged commit {acked} lost ({} recovered)",
                keys.len()
            );
            for (k, v) in table.iter().unwrap().map(|e| e.unwrap()) {
                assert_eq!(v.value(), k.value() * 7);
            }
            acked_total = keys.len();
            rounds += 1;
        }
    }
    assert_eq!(rounds, 30);
}
