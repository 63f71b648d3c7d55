//! `Engine::retire_log` in `Database`'s drop, racing a commit: a write
//! transaction that outlives its handle commits on another thread while the
//! drop syncs, checkpoints and empties the log. Whichever wins (the commit
//! appends before the retire looks, and the log is kept; or after it, and
//! a new segment starts), the reopened database holds the commit, for each
//! way of committing: durable, pipelined and waited, and `Durability::None`.

use std::sync::{Arc, Barrier};

use sluicedb::{Database, Durability, ReadableDatabase, TableDefinition};

const TABLE: TableDefinition<u64, u64> = TableDefinition::new("t");
const ROUNDS: u64 = 30;

#[test]
fn a_commit_racing_the_drop_survives_the_retired_log() {
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let db = Database::create(&path).unwrap();
        {
            let txn = db.begin_write().unwrap();
            txn.open_table(TABLE).unwrap().insert(0, 0).unwrap();
            txn.commit().unwrap();
        }
        let mut txn = db.begin_write().unwrap();
        let mode = round % 3;
        if mode == 2 {
            txn.set_durability(Durability::None).unwrap();
        }
        {
            let mut table = txn.open_table(TABLE).unwrap();
            for k in 1..=100 {
                table.insert(k, k * round).unwrap();
            }
        }
        let start = Arc::new(Barrier::new(2));
        let committer = {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                // A little work first, varied by round, so the commit lands
                // at different points of the drop.
                let mut spin = 0u64;
                for i in 0..(round * 3_000) {
                    spin = spin.wrapping_add(std::hint::black_box(i));
                }
                std::hint::black_box(spin);
                match mode {
                    0 => txn.commit().unwrap(),
                    1 => txn.commit_pipelined().unwrap().wait().unwrap(),
                    _ => txn.commit().unwrap(),
                }
            })
        };
        start.wait();
        drop(db);
        committer.join().unwrap();

        let db = Database::open(&path).unwrap();
        let read = db.begin_read().unwrap();
        let table = read.open_table(TABLE).unwrap();
        for k in 0..=100 {
            assert_eq!(
                table.get(k).unwrap().map(|v| v.value()),
                Some(if k == 0 { 0 } else { k * round }),
                "round {round} (mode {mode}): key {k} after the reopen"
            );
        }
        drop(table);
        drop(read);
        db.close().unwrap();
    }
}
