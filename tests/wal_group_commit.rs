//! Many threads append and wait for durability; the sync thread groups them.
//! Then a simulated power cut: every acknowledged record survives, and the
//! recovered log is a gap-free prefix.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use sluicedb::io::{CrashLogDir, TearMode};
use sluicedb::wal::{Journal, JournalOptions};

const DB: u128 = 0xD00D;

fn payload(thread: u64, i: u64) -> Vec<u8> {
    format!("thread {thread} record {i}").into_bytes()
}

/// Recovers `dir` and returns every replayed record.
fn recover(dir: CrashLogDir) -> BTreeMap<u64, Vec<u8>> {
    let mut records = BTreeMap::new();
    let (journal, _) = Journal::open(dir, DB, 0, JournalOptions::default(), |seq, p| {
        records.insert(seq, p.to_vec());
        Ok(())
    })
    .unwrap();
    drop(journal);
    records
}

#[test]
fn concurrent_waiters_share_fsyncs() {
    let dir = CrashLogDir::new();
    let (journal, _) = Journal::open(dir.clone(), DB, 0, JournalOptions::default(), |_, _| Ok(())).unwrap();
    let journal = Arc::new(journal);
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let journal = journal.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    let seq = journal.append(&payload(t, i)).unwrap();
                    journal.wait_for_sync(seq).unwrap();
                    assert!(journal.is_durable(seq));
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let m = journal.metrics();
    assert_eq!(m.records, 1600);
    assert_eq!(m.synced_records, 1600);
    assert!(m.fsyncs < 1600, "no grouping: {m:?}");
    assert!(m.max_group > 1);
    assert_eq!(m.sync_latency.iter().sum::<u64>(), m.fsyncs);
    assert_eq!(journal.durable_seq(), 1600);
    drop(journal);
    // Everything was synced: even a crash that drops all unsynced bytes keeps it.
    let records = recover(dir.crash(TearMode::DropAll));
    assert_eq!(records.len(), 1600);
    assert_eq!(
        records.keys().copied().collect::<Vec<_>>(),
        (1..=1600).collect::<Vec<_>>()
    );
}

#[test]
fn a_power_cut_keeps_every_acknowledged_record_and_no_record_after_a_hole() {
    let mut total_acked = 0;
    for round in 0..40u64 {
        let dir = CrashLogDir::new();
        // Small segments so cuts also land in segment creation.
        let options = JournalOptions {
            segment_size: 4096,
            ..JournalOptions::default()
        };
        let (journal, _) = Journal::open(dir.clone(), DB, 0, options, |_, _| Ok(())).unwrap();
        let journal = Arc::new(journal);
        dir.cut_power_after(5 + round * 7);
        let acked = Arc::new(Mutex::new(BTreeMap::new()));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let (journal, acked) = (journal.clone(), acked.clone());
                std::thread::spawn(move || {
                    for i in 0.. {
                        let p = payload(t, i);
                        let Ok(seq) = journal.append(&p) else { return };
                        if journal.wait_for_sync(seq).is_err() {
                            return;
                        }
                        acked.lock().insert(seq, p);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert!(journal.failure().is_some());
        drop(journal);

        let records = recover(dir.crash(TearMode::Random(round)));
        let seqs: Vec<u64> = records.keys().copied().collect();
        assert_eq!(
            seqs,
            (1..=seqs.len() as u64).collect::<Vec<_>>(),
            "round {round}: not a gap-free prefix"
        );
        for (seq, p) in acked.lock().iter() {
            assert_eq!(
                records.get(seq),
                Some(p),
                "round {round}: acknowledged record {seq} lost"
            );
        }
        for p in records.values() {
            assert!(p.starts_with(b"thread "), "round {round}: a record came back damaged");
        }
        total_acked += acked.lock().len();
    }
    assert!(
        total_acked > 200,
        "the cuts came too early to test anything ({total_acked} acked)"
    );
}
