//! Concurrency: writers move money between accounts with durable and
//! pipelined commits while readers take snapshots; every snapshot sums to the
//! same total, while memtables freeze and flush underneath.

mod common;

use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::engine::{Disk, small_options};
use sluicedb::btree::bytewise;
use sluicedb::engine::{Durability, Engine};

const ACCOUNTS: u64 = 40;
const START: u64 = 1000;

fn balance(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().unwrap())
}

fn transfer(db: &Engine, from: u64, to: u64, amount: u64, mode: u64) {
    let mut w = db.begin_write().unwrap();
    let t = w.open_table(b"accounts", b"bytes", bytewise).unwrap();
    let a = balance(w.get(t, &from.to_be_bytes()).unwrap().unwrap().as_bytes());
    let b = balance(w.get(t, &to.to_be_bytes()).unwrap().unwrap().as_bytes());
    let amount = amount.min(a);
    w.insert(t, &from.to_be_bytes(), &(a - amount).to_le_bytes()).unwrap();
    w.insert(t, &to.to_be_bytes(), &(b + amount).to_le_bytes()).unwrap();
    match mode % 3 {
        0 => w.commit().unwrap(),
        1 => {
            w.set_durability(Durability::None);
            w.commit().unwrap();
        }
        _ => w.commit_pipelined().unwrap().wait().unwrap(),
    }
}

#[test]
fn every_snapshot_sees_the_same_total() {
    let disk = Disk::new();
    let db = Arc::new(disk.open(small_options()));
    let mut w = db.begin_write().unwrap();
    let t = w.open_table(b"accounts", b"bytes", bytewise).unwrap();
    for id in 0..ACCOUNTS {
        w.insert(t, &id.to_be_bytes(), &START.to_le_bytes()).unwrap();
    }
    w.commit().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (db, stop) = (db.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut snapshots = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let txn = db.begin_read().unwrap();
                    let t = txn.open_table(b"accounts", bytewise).unwrap().unwrap();
                    let total: u64 = txn
                        .range(&t, Bound::Unbounded, Bound::Unbounded)
                        .unwrap()
                        .map(|e| balance(e.unwrap().1.as_bytes()))
                        .sum();
                    assert_eq!(
                        total,
                        ACCOUNTS * START,
                        "snapshot at {} is inconsistent",
                        txn.sequence()
                    );
                    snapshots += 1;
                }
                snapshots
            })
        })
        .collect();
    let writers: Vec<_> = (0..3u64)
        .map(|n| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut x = n * 7919 + 1;
                for i in 0..400 {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let (from, to) = ((x >> 33) % ACCOUNTS, (x >> 17) % ACCOUNTS);
                    if from != to {
                        transfer(&db, from, to, (x >> 50) % 200, i + n);
                    }
                }
            })
        })
        .collect();
    writers.into_iter().for_each(|w| w.join().unwrap());
    stop.store(true, Ordering::Relaxed);
    let snapshots: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(snapshots > 10, "readers took only {snapshots} snapshots");
    let stats = db.stats();
    assert!(stats.flushes > 0, "no flush happened under the readers: {stats:?}");
    db.check_integrity().unwrap();
}
