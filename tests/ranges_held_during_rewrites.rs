//! Ranges of a read snapshot (plain and multimap),
//! walked from both ends and cloned, while another thread commits rewrites
//! of the same keys (memtable inserts beside the walk, flushes and
//! checkpoints under it). Every walk must show the snapshot.
//! (Written by the twenty-third session's review; it found nothing.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sluicedb::{
    Database, Durability, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTable,
    TableDefinition,
};

const T: TableDefinition<u32, u64> = TableDefinition::new("t");
const M: MultimapTableDefinition<u32, u64> = MultimapTableDefinition::new("m");
const KEYS: u32 = 600;

#[test]
fn snapshot_ranges_hold_while_the_same_keys_are_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        Database::builder()
            .set_memtable_size(16 << 10)
            .create(dir.path().join("db"))
            .unwrap(),
    );
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        let mut m = txn.open_multimap_table(M).unwrap();
        for k in 0..KEYS {
            t.insert(k, 0u64).unwrap();
            m.insert(k, 0u64).unwrap();
        }
    }
    txn.commit().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut round = 1u64;
            while !stop.load(Ordering::Relaxed) {
                let mut txn = db.begin_write().unwrap();
                txn.set_durability(Durability::None).unwrap();
                {
                    let mut t = txn.open_table(T).unwrap();
                    let mut m = txn.open_multimap_table(M).unwrap();
                    for k in (0..KEYS).filter(|k| !(k + round as u32).is_multiple_of(3)) {
                        if round.is_multiple_of(5) {
                            t.remove(k).unwrap();
                        } else {
                            t.insert(k, round).unwrap();
                        }
                        m.insert(k, round).unwrap();
                        m.remove(k, round - 1).unwrap();
                    }
                }
                txn.commit().unwrap();
                if round.is_multiple_of(7) {
                    db.checkpoint().unwrap();
                }
                round += 1;
            }
            round
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(6);
    let mut checks = 0u64;
    while std::time::Instant::now() < deadline {
        let read = db.begin_read().unwrap();
        let t = read.open_table(T).unwrap();
        let m = read.open_multimap_table(M).unwrap();
        let want: Vec<(u32, u64)> = t
            .iter()
            .unwrap()
            .map(|e| e.map(|(k, v)| (k.value(), v.value())).unwrap())
            .collect();
        let mwant: Vec<(u32, Vec<u64>)> = m
            .iter()
            .unwrap()
            .map(|e| {
                let (k, vs) = e.unwrap();
                (k.value(), vs.map(|v| v.unwrap().value()).collect())
            })
            .collect();
        for pass in 0..6 {
            std::thread::yield_now();
            let mut back: Vec<(u32, u64)> = t
                .iter()
                .unwrap()
                .rev()
                .map(|e| e.map(|(k, v)| (k.value(), v.value())).unwrap())
                .collect();
            back.reverse();
            assert_eq!(back, want, "backward walk, pass {pass}");
            // Alternate ends, with a clone taken midway.
            let mut r = t.iter().unwrap();
            let (mut front, mut tail) = (Vec::new(), Vec::new());
            let mut i = 0;
            let mut clone_rest = None;
            loop {
                if i == 40 {
                    clone_rest = Some(r.clone());
                }
                let e = if i % 2 == 0 { r.next() } else { r.next_back() };
                let Some(e) = e else { break };
                let (k, v) = e.unwrap();
                if i % 2 == 0 {
                    front.push((k.value(), v.value()))
                } else {
                    tail.push((k.value(), v.value()))
                }
                i += 1;
            }
            tail.reverse();
            front.extend(tail);
            assert_eq!(front, want, "mixed walk, pass {pass}");
            if let Some(c) = clone_rest {
                let got: Vec<(u32, u64)> = c.map(|e| e.map(|(k, v)| (k.value(), v.value())).unwrap()).collect();
                assert_eq!(got[..], want[20..want.len() - 20], "clone, pass {pass}");
            }
            let mut mb: Vec<(u32, Vec<u64>)> = m
                .iter()
                .unwrap()
                .rev()
                .map(|e| {
                    let (k, vs) = e.unwrap();
                    (k.value(), vs.map(|v| v.unwrap().value()).collect())
                })
                .collect();
            mb.reverse();
            assert_eq!(mb, mwant, "multimap backward walk, pass {pass}");
            for k in [0u32, 1, KEYS / 2, KEYS - 1] {
                let g = t.get(k).unwrap().map(|g| g.value());
                assert_eq!(g, want.iter().find(|(kk, _)| *kk == k).map(|(_, v)| *v), "get {k}");
            }
            checks += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let rounds = writer.join().unwrap();
    assert!(rounds > 3, "writer ran {rounds} rounds");
    eprintln!("{checks} checks over {rounds} writer rounds");
}
