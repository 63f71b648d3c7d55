//! With a cache of zero bytes every page read is
//! inserted (cold or not) and evicted at once, and every page freed by a
//! flush or evicted goes to `PageCache::recycle`, whose spares the next
//! reads overwrite in place (`read_page_uncached`, `seal_into_page`). Long
//! tree values share their page (`ValueBytes::InPage`): a guard held while
//! its page's memory became a spare and was read into would show another
//! page's bytes. Scans (stepped, `insert_cold`) and point reads from two
//! threads hold guards while a writer overwrites every key and
//! checkpoints; every held value is checked after the churn.
//!
//! Not covered elsewhere: the cache's unit test `a_zero_byte_cache_holds_nothing`
//! has no reader holding pages, and no integration test runs a zero-byte
//! cache beside flushes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sluicedb::{Builder, ReadableDatabase, ReadableTable, TableDefinition};

const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");
const KEYS: u64 = 20_000;

/// 40 bytes naming the key and the round that wrote it.
fn value(k: u64, round: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(40);
    for _ in 0..4 {
        v.extend_from_slice(&k.to_le_bytes());
    }
    v.extend_from_slice(&round.to_le_bytes());
    v
}

fn check(k: u64, v: &[u8], what: &str) {
    assert_eq!(v.len(), 40, "{what}: key {k}");
    let round = u64::from_le_bytes(v[32..40].try_into().unwrap());
    assert_eq!(v, &value(k, round)[..], "{what}: key {k}");
}

fn write_round(db: &sluicedb::Database, round: u64) {
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for k in 0..KEYS {
            t.insert(k, value(k, round).as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
}

#[test]
fn values_sharing_pages_survive_a_zero_byte_cache_recycling_beside_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        Builder::new()
            .set_cache_size(0)
            .set_memtable_size(256 << 10)
            .create(dir.path().join("db"))
            .unwrap(),
    );
    write_round(&db, 0);
    db.checkpoint().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
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
                    let mut count = 0;
                    for e in t.range::<u64>(..).unwrap() {
                        let (k, v) = e.unwrap();
                        check(k.value(), v.value(), "scan");
                        if (k.value() + n + r).is_multiple_of(97) {
                            held.push((k.value(), v));
                        }
                        count += 1;
                    }
                    assert_eq!(count, KEYS);
                    for k in (n % 13..KEYS).step_by(331) {
                        let v = t.get(k).unwrap().unwrap();
                        check(k, v.value(), "get");
                        held.push((k, v));
                    }
                    for (k, v) in &held {
                        check(*k, v.value(), "held guard");
                    }
                    if held.len() > 3000 {
                        held.drain(..1500);
                    }
                }
                held
            })
        })
        .collect();
    let start = Instant::now();
    let mut round = 1;
    while start.elapsed() < Duration::from_secs(12) && !readers.iter().any(|r| r.is_finished()) {
        write_round(&db, round);
        db.checkpoint().unwrap();
        round += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let held: Vec<_> = readers.into_iter().flat_map(|r| r.join().expect("a reader")).collect();
    eprintln!("rounds {round}, held {}, cache {:?}", held.len(), db.cache_stats());
    // More rounds after the readers stopped: the held pages' ids are freed
    // and rewritten, spares reused.
    for extra in 0..3 {
        write_round(&db, round + extra);
        db.checkpoint().unwrap();
    }
    let read = db.begin_read().unwrap();
    for e in read.open_table(T).unwrap().iter().unwrap() {
        let (k, v) = e.unwrap();
        check(k.value(), v.value(), "scan after the churn");
    }
    for (k, v) in &held {
        check(*k, v.value(), "guard after the churn");
    }
}
