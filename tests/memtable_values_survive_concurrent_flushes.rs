//! Long memtable values (shared with the arena,
//! `Memtable::get_shared`, `MemSource::owner`) and range seeks that start
//! from the seek index (`SeekStart`, `lower_bound_from`), while a writer
//! commits, memtables freeze, flush and retire, and the seek index is
//! rebuilt and its replaced copies freed (`free_replaced_seek_indexes`)
//! beside the searches. Every value names its key, so a value read from
//! freed or reused memory, or a seek that started from a freed index,
//! shows up as wrong bytes or a wrong order. Guards are held across
//! flushes and past the database's drop, then checked after the freed
//! memory is scribbled over.
//!
//! Not covered elsewhere: memtable_values_outlive_their_memtable reads
//! from one thread with no writer; memtable_seek_index_model has no
//! concurrent readers and does not hold values across flushes.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::mix;
use sluicedb::{Builder, Durability, ReadableDatabase, TableDefinition};

const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");
const KEYS: u64 = 200_000;

/// 56 bytes: the key four times, then the version eight times, then the
/// key's complement twice.
fn value(k: u64, version: u8) -> Vec<u8> {
    let mut v = Vec::with_capacity(56);
    for _ in 0..4 {
        v.extend_from_slice(&k.to_le_bytes());
    }
    v.extend_from_slice(&[version; 8]);
    v.extend_from_slice(&(!k).to_le_bytes());
    v.extend_from_slice(&(!k).to_le_bytes());
    v
}

fn check(k: u64, v: &[u8], what: &str) {
    assert_eq!(v.len(), 56, "{what}: key {k}: length");
    let version = v[32];
    assert_eq!(v, &value(k, version)[..], "{what}: key {k}: bytes");
}

#[test]
fn shared_memtable_values_and_seeks_under_concurrent_flushes_and_index_rebuilds() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        Builder::new()
            .set_memtable_size(2 << 20)
            .set_cache_size(1 << 20)
            .create(dir.path().join("db"))
            .unwrap(),
    );
    {
        let txn = db.begin_write().unwrap();
        txn.open_table(T).unwrap().insert(0, value(0, 0).as_slice()).unwrap();
        txn.commit().unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let writer = {
        let (db, stop, commits) = (db.clone(), stop.clone(), commits.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut txn = db.begin_write().unwrap();
                txn.set_durability(Durability::None).unwrap();
                {
                    let mut t = txn.open_table(T).unwrap();
                    // Mostly random keys (the index goes stale), some
                    // ascending runs (walks past the last indexed key).
                    for j in 0..64u64 {
                        let k = if (i / 50) % 3 == 2 {
                            (i * 64 + j) % KEYS
                        } else {
                            mix(i * 64 + j) % KEYS
                        };
                        let old = t.insert(k, value(k, (i % 251) as u8).as_slice()).unwrap();
                        if let Some(old) = old {
                            check(k, old.value(), "insert's old value");
                        }
                    }
                }
                txn.commit().unwrap();
                commits.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        })
    };
    let readers: Vec<_> = (0..2u64)
        .map(|r| {
            let (db, stop) = (db.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut held = Vec::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let read = db.begin_read().unwrap();
                    let t = read.open_table(T).unwrap();
                    let from = mix(r << 40 | n) % KEYS;
                    let mut last = None;
                    let mut range = t.range(from..).unwrap();
                    for _ in 0..12 {
                        let Some(e) = range.next() else { break };
                        let (k, v) = e.unwrap();
                        let k = k.value();
                        assert!(
                            k >= from && last.is_none_or(|l| k > l),
                            "forward from {from}: {k} after {last:?}"
                        );
                        check(k, v.value(), "forward range");
                        last = Some(k);
                        if n.is_multiple_of(7) {
                            held.push((k, v));
                        }
                    }
                    // A clone mid-iteration, and the other end after the front.
                    let mut clone = range.clone();
                    if let Some(e) = clone.next_back() {
                        let (k, v) = e.unwrap();
                        check(k.value(), v.value(), "clone's back");
                    }
                    if let Some(e) = range.next_back() {
                        let (k, v) = e.unwrap();
                        check(k.value(), v.value(), "back after front");
                    }
                    let mut back = t.range(..from).unwrap().rev();
                    for _ in 0..4 {
                        let Some(e) = back.next() else { break };
                        let (k, v) = e.unwrap();
                        check(k.value(), v.value(), "backward range");
                    }
                    let k = mix(n ^ 0x55) % KEYS;
                    if let Some(v) = t.get(k).unwrap() {
                        check(k, v.value(), "get");
                        if n.is_multiple_of(5) {
                            held.push((k, v));
                        }
                    }
                    if held.len() > 4000 {
                        for (k, v) in held.drain(..2000) {
                            check(k, v.value(), "held guard");
                        }
                    }
                }
                held
            })
        })
        .collect();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(200));
        if writer.is_finished() || readers.iter().any(|r| r.is_finished()) {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("the writer");
    let held: Vec<_> = readers.into_iter().flat_map(|r| r.join().expect("a reader")).collect();
    let stats = db.stats();
    eprintln!(
        "commits {}, held {}, stats {stats:?}",
        commits.load(Ordering::Relaxed),
        held.len()
    );
    drop(db);
    let scribbles: Vec<Vec<u8>> = (0..64).map(|_| vec![0xAB; 1 << 20]).collect();
    for (k, v) in &held {
        check(*k, v.value(), "guard past the database");
    }
    drop(scribbles);
}
