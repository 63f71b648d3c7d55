//! Power cuts at arbitrary points of a running engine (appends, syncs,
//! flushes, checkpoints, WAL segment deletion, all racing the committer):
//! after reopen the state is a prefix of the commit order holding every
//! commit acknowledged as durable, no transaction is partly visible, and the
//! integrity check passes.

mod common;

use std::ops::Bound;

use common::engine::{Disk, small_options};
use sluicedb::btree::bytewise;
use sluicedb::engine::{Durability, Engine};
use sluicedb::io::TearMode;

/// Checkpoints every few dozen commits, so cuts land in them too.
fn options() -> sluicedb::engine::EngineOptions {
    sluicedb::engine::EngineOptions {
        checkpoint_wal_bytes: 12 << 10,
        ..small_options()
    }
}

fn k(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

/// Commit `i` writes keys `i` and `i + SHADOW`, both or neither.
const SHADOW: u64 = 1 << 40;

fn value(i: u64) -> Vec<u8> {
    format!("commit {i} {}", "v".repeat((i % 7 * 40) as usize)).into_bytes()
}

/// Commits until `cut_at` commits are done or the engine fails; returns the
/// highest commit acknowledged durable.
fn commit_until_cut(db: &Engine, disk: &Disk, cut_at: u64) -> u64 {
    let mut acked = 0;
    let mut pending = Vec::new();
    for i in 1.. {
        if i == cut_at {
            disk.cut_power();
        }
        let Ok(mut w) = db.begin_write() else { break };
        let Ok(t) = w.open_table(b"log", b"bytes", bytewise) else {
            break;
        };
        if w.insert(t, &k(i), &value(i)).is_err() || w.insert(t, &k(i + SHADOW), b"shadow").is_err() {
            break;
        }
        match i % 3 {
            0 => {
                if w.commit().is_err() {
                    break;
                }
                acked = i;
            }
            1 => {
                w.set_durability(Durability::None);
                if w.commit().is_err() {
                    break;
                }
            }
            _ => match w.commit_pipelined() {
                Ok(p) => pending.push((i, p)),
                Err(_) => break,
            },
        }
        // Collect pipelined commits that became durable meanwhile.
        pending.retain(|(i, p)| {
            if p.is_durable() {
                acked = acked.max(*i);
                false
            } else {
                true
            }
        });
    }
    acked
}

#[test]
fn power_cuts_anywhere_recover_a_durable_prefix() {
    let (mut checked, mut flushes, mut checkpoints) = (0, 0, 0);
    for round in 0..30u64 {
        let disk = Disk::new();
        let db = disk.open(options());
        let acked = commit_until_cut(&db, &disk, 20 + round * 13);
        let stats = db.stats();
        flushes += stats.flushes;
        checkpoints += stats.checkpoints;
        drop(db);
        for mode in [TearMode::DropAll, TearMode::Random(round), TearMode::KeepAll] {
            let crashed = disk.crashed(mode);
            let db = crashed.open(options());
            db.check_integrity().unwrap();
            let txn = db.begin_read().unwrap();
            let Some(t) = txn.open_table(b"log", bytewise).unwrap() else {
                assert_eq!(acked, 0, "round {round}: the table vanished with acknowledged commits");
                continue;
            };
            let keys: Vec<u64> = txn
                .range(&t, Bound::Unbounded, Bound::Excluded(&k(SHADOW)))
                .unwrap()
                .map(|e| {
                    let (key, v) = e.unwrap();
                    let i = u64::from_be_bytes(key.as_bytes().try_into().unwrap());
                    assert_eq!(v.as_bytes(), value(i), "round {round}: commit {i} damaged");
                    i
                })
                .collect();
            let last = keys.len() as u64;
            assert_eq!(
                keys,
                (1..=last).collect::<Vec<_>>(),
                "round {round} {mode:?}: not a prefix"
            );
            assert!(
                last >= acked,
                "round {round} {mode:?}: acknowledged commit {acked} lost (recovered {last}); {stats:?}"
            );
            let shadows = txn
                .range(&t, Bound::Included(&k(SHADOW)), Bound::Unbounded)
                .unwrap()
                .count() as u64;
            assert_eq!(shadows, last, "round {round}: a transaction is partly visible");
            checked += 1;
        }
    }
    assert!(checked >= 60, "only {checked} crash images had data");
    assert!(
        flushes >= 30 && checkpoints >= 10,
        "cuts rarely raced the tree: {flushes} flushes, {checkpoints} checkpoints"
    );
}
