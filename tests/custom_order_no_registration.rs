//! Opening a database never needs the key types of its tables, after a
//! clean close or after a crash (correctness issue, defect 5). On the
//! unmodified engine a fresh process could not open a database whose WAL
//! held records of a custom-order table ("database corrupted: cannot order
//! the keys of a table with metadata ...") unless it registered the key type
//! first. Each check runs in a child process, which has never used the type.

mod common;

use common::keys::{CaseInsensitive, CrashDisk, Reversed, child_arg, run_in_child_process};
use sluicedb::io::TearMode;
use sluicedb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

const T: TableDefinition<Reversed, u32> = TableDefinition::new("reversed");
const CI: TableDefinition<CaseInsensitive, u32> = TableDefinition::new("ci");

fn keys(db: &Database) -> Vec<String> {
    let read = db.begin_read().unwrap();
    let t = read.open_table(T).unwrap();
    t.iter().unwrap().map(|e| e.unwrap().0.value().to_string()).collect()
}

#[test]
fn after_a_clean_close_a_fresh_process_opens_without_registering() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(T).unwrap();
            for (i, k) in ["b", "d", "a", "c"].into_iter().enumerate() {
                t.insert(k, i as u32).unwrap();
            }
        }
        txn.commit().unwrap();
        // As a process exit leaves it: the commit only in the WAL.
        db.close_without_checkpoint();
    }
    run_in_child_process("fresh_process_reads", &format!("1|{}", path.display()));
    // Again, after the first child checkpointed the now-ordered records.
    run_in_child_process("fresh_process_reads", &format!("2|{}", path.display()));
}

/// The child of the test above: opens, checks, reads in the table's order,
/// adds a key and checkpoints (round 1), or finds that key (round 2).
#[test]
fn fresh_process_reads() {
    let Some(arg) = child_arg() else { return };
    let (round, path) = arg.split_once('|').unwrap();
    let mut db = Database::open(path).unwrap();
    let (deferred, want) = match round {
        "1" => (4, vec!["d", "c", "b", "a"]),
        _ => (0, vec!["z", "d", "c", "b", "a"]),
    };
    // Round 1: the WAL's four records wait for the table's type.
    assert_eq!(db.stats().recovery.deferred_records, deferred);
    assert!(db.check_integrity().unwrap());
    assert_eq!(keys(&db), want);
    if round == "1" {
        let txn = db.begin_write().unwrap();
        txn.open_table(T).unwrap().insert("z", 9).unwrap();
        txn.commit().unwrap();
        db.checkpoint().unwrap();
        assert_eq!(keys(&db), ["z", "d", "c", "b", "a"]);
        assert!(db.check_integrity().unwrap());
    }
}

#[test]
fn after_crashes_every_acknowledged_commit_is_there_in_order() {
    for seed in 0..12u64 {
        let disk = CrashDisk::new();
        let builder = Database::builder();
        let mut want: Vec<(String, u32)> = Vec::new();
        {
            let db = disk.open(&builder);
            for round in 0..6u32 {
                let txn = db.begin_write().unwrap();
                {
                    let mut t = txn.open_table(CI).unwrap();
                    let key = format!("Key{}", (round * 7 + seed as u32) % 5);
                    t.insert(key.as_str(), round).unwrap();
                    want.retain(|(k, _)| !k.eq_ignore_ascii_case(&key));
                    want.push((key, round));
                }
                txn.commit().unwrap();
                if round == 2 && seed % 2 == 0 {
                    db.checkpoint().unwrap();
                }
            }
        }
        // Crash, then reopen twice (once without touching the table).
        let disk = disk.crashed(TearMode::Random(seed));
        drop(disk.open(&builder));
        let disk = disk.crashed(TearMode::Random(seed + 100));
        let mut db = disk.open(&builder);
        assert!(db.check_integrity().unwrap());
        let read = db.begin_read().unwrap();
        let t = read.open_table(CI).unwrap();
        let got: Vec<(String, u32)> = t
            .iter()
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.value().to_string(), v.value())
            })
            .collect();
        want.sort_by_key(|(k, _)| k.to_ascii_lowercase());
        assert_eq!(got, want, "seed {seed}");
        for (k, v) in &want {
            assert_eq!(
                t.get(k.to_ascii_uppercase().as_str()).unwrap().map(|g| g.value()),
                Some(*v)
            );
        }
    }
}
