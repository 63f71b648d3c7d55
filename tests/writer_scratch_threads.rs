//! The writer's scratch under threads: writers on several threads
//! take the writer slot with `begin_write` or `try_begin_write`, and each
//! transaction's write set comes from the writer's scratch, whoever left it
//! there (a commit, an abort, a transaction dropped or committed on another
//! thread). Every transaction writes the same keys to two tables (opened in
//! either order, so the commit's name order and slot order differ half the
//! time), small commits inline and, now and then, big ones through the
//! inserter. Readers meanwhile check that each commit is seen whole, and at
//! the end exactly the committed transactions are in both tables.

mod common;

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::Rng;
use common::engine::small_options;
use sluicedb::btree::bytewise;
use sluicedb::engine::{Durability, Engine, WriteTxn};
use sluicedb::io::{CrashBackend, CrashLogDir};

const THREADS: u64 = 3;
const TXNS: u64 = 300;

/// Keys of transaction `txn` of thread `thread`: a few, or past the hand-off.
fn keys(thread: u64, txn: u64) -> Vec<[u8; 12]> {
    let n = match txn % 10 {
        9 => 70,
        4 => 63,
        5 => 64,
        _ => 1 + txn % 3,
    };
    (0..n)
        .map(|j| {
            let mut k = [0u8; 12];
            k[..2].copy_from_slice(&(thread as u16).to_be_bytes());
            k[2..10].copy_from_slice(&txn.to_be_bytes());
            k[10..].copy_from_slice(&(j as u16).to_be_bytes());
            k
        })
        .collect()
}

fn entries(db: &Engine, name: &[u8]) -> (Vec<Vec<u8>>, u64) {
    let read = db.begin_read().unwrap();
    let Some(t) = read.open_table(name, bytewise).unwrap() else {
        return (Vec::new(), 0);
    };
    let keys = read
        .range(&t, Bound::Unbounded, Bound::Unbounded)
        .unwrap()
        .map(|e| e.unwrap().0.to_vec())
        .collect();
    (keys, read.len(&t).unwrap())
}

fn build(db: &Engine, rng: &mut Rng, thread: u64, txn: u64) -> Box<WriteTxn> {
    let mut w = loop {
        if rng.chance(50) {
            break db.begin_write().unwrap();
        }
        if let Some(w) = db.try_begin_write().unwrap() {
            break w;
        }
        std::thread::yield_now();
    };
    assert!(
        w.touched_tables().is_empty(),
        "thread {thread} txn {txn}: a fresh transaction touched {:?}",
        w.touched_tables()
    );
    let names: [&[u8]; 2] = if rng.chance(50) { [b"x", b"y"] } else { [b"y", b"x"] };
    let tables = names.map(|name| w.open_table(name, b"bytes", bytewise).unwrap());
    for key in keys(thread, txn) {
        for t in tables {
            if rng.chance(50) {
                w.put(t, &key, &txn.to_le_bytes()).unwrap();
            } else {
                assert!(w.insert(t, &key, &txn.to_le_bytes()).unwrap().is_none());
            }
        }
    }
    w
}

#[test]
fn writers_on_several_threads_share_the_scratch_safely() {
    let db = Arc::new(Engine::open(Arc::new(CrashBackend::new()), CrashLogDir::new(), small_options()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // One snapshot for both tables.
                let read = db.begin_read().unwrap();
                let (Some(x), Some(y)) = (
                    read.open_table(b"x", bytewise).unwrap(),
                    read.open_table(b"y", bytewise).unwrap(),
                ) else {
                    continue;
                };
                let keys = |t| -> Vec<Vec<u8>> {
                    read.range(t, Bound::Unbounded, Bound::Unbounded)
                        .unwrap()
                        .map(|e| e.unwrap().0.to_vec())
                        .collect()
                };
                let (kx, ky) = (keys(&x), keys(&y));
                assert_eq!(kx, ky, "a reader saw a commit in one table and not the other");
                assert_eq!(
                    read.len(&x).unwrap(),
                    kx.len() as u64,
                    "x's len() disagrees with its entries"
                );
                assert_eq!(
                    read.len(&y).unwrap(),
                    ky.len() as u64,
                    "y's len() disagrees with its entries"
                );
                reads += 1;
            }
            reads
        })
    };
    let writers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(0x9e37_79b9 + thread);
                let mut committed = BTreeSet::new();
                for txn in 0..TXNS {
                    let mut w = build(&db, &mut rng, thread, txn);
                    match rng.below(10) {
                        0 => w.abort(),
                        1 => drop(w),
                        // Ended on another thread.
                        2 => std::thread::spawn(move || drop(w)).join().unwrap(),
                        3 => {
                            std::thread::spawn(move || w.commit().unwrap()).join().unwrap();
                            committed.insert(txn);
                        }
                        4 => {
                            w.set_durability(Durability::None);
                            w.commit().unwrap();
                            committed.insert(txn);
                        }
                        5 => {
                            w.commit_pipelined().unwrap();
                            committed.insert(txn);
                        }
                        _ => {
                            w.commit().unwrap();
                            committed.insert(txn);
                        }
                    }
                }
                (thread, committed)
            })
        })
        .collect();
    let mut expected = BTreeSet::new();
    for writer in writers {
        let (thread, committed) = writer.join().unwrap();
        for txn in committed {
            expected.extend(keys(thread, txn).into_iter().map(|k| k.to_vec()));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().unwrap();
    db.sync().unwrap();
    let expected: Vec<Vec<u8>> = expected.into_iter().collect();
    for name in [&b"x"[..], b"y"] {
        let (keys, len) = entries(&db, name);
        assert!(
            keys == expected,
            "table {:?}: {} keys, expected {}",
            name,
            keys.len(),
            expected.len()
        );
        assert_eq!(len, expected.len() as u64, "table {name:?}'s len()");
    }
    eprintln!("{reads} consistent reads");
}
