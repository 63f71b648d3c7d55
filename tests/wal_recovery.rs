//! Segments and recovery: rolling at the size limit, deleting segments after
//! a checkpoint, torn and zero-filled tails, a segment of another database,
//! and sequence numbers that continue across any number of reopens.

use sluicedb::io::{CrashLogDir, LogDir, TearMode};
use sluicedb::wal::{Journal, JournalOptions, Recovery, StopReason};

const DB: u128 = 42;

fn small() -> JournalOptions {
    JournalOptions {
        segment_size: 1024,
        ..JournalOptions::default()
    }
}

fn open(dir: &CrashLogDir, after: u64) -> (Journal, Recovery, Vec<(u64, Vec<u8>)>) {
    open_with(dir, after, small())
}

fn open_with(dir: &CrashLogDir, after: u64, options: JournalOptions) -> (Journal, Recovery, Vec<(u64, Vec<u8>)>) {
    let mut records = Vec::new();
    let (journal, recovery) = Journal::open(dir.clone(), DB, after, options, |seq, p| {
        records.push((seq, p.to_vec()));
        Ok(())
    })
    .unwrap();
    (journal, recovery, records)
}

fn append_durably(journal: &Journal, n: u64) {
    for i in 0..n {
        let seq = journal.append(format!("payload {i:04}").as_bytes()).unwrap();
        journal.wait_for_sync(seq).unwrap();
    }
}

#[test]
fn segments_roll_are_deleted_after_checkpoints_and_sequences_continue() {
    let dir = CrashLogDir::new();
    let (journal, _, _) = open(&dir, 0);
    append_durably(&journal, 200);
    let segments = journal.segments();
    assert!(segments.len() > 5, "1 KiB segments should roll: {segments:?}");
    // A checkpoint at 120 lets every segment wholly at or below it go.
    let deleted = journal.truncate_through(120).unwrap();
    assert!(deleted > 0);
    assert_eq!(journal.metrics().segments_deleted, deleted as u64);
    drop(journal);

    let (journal, recovery, records) = open(&dir, 120);
    assert_eq!(
        records.first().map(|r| r.0),
        Some(121),
        "replay starts right after the checkpoint"
    );
    assert_eq!(records.last().map(|r| r.0), Some(200));
    assert_eq!(recovery.last_seq, 200);
    assert!(recovery.stop.is_none());
    assert_eq!(journal.append(b"next").unwrap(), 201);
    drop(journal);

    // The whole log is gone once the checkpoint covers it: still continues.
    let (journal, _, _) = open(&dir, 201);
    journal.truncate_through(201).unwrap();
    assert_eq!(journal.segments().len(), 1, "only the newest segment stays");
    assert_eq!(journal.append(b"after everything").unwrap(), 202);
}

#[test]
fn a_torn_tail_is_cut_off_and_appends_go_to_a_fresh_segment_across_reopens() {
    for seed in 0..20 {
        let dir = CrashLogDir::new();
        let (journal, _, _) = open_with(&dir, 0, JournalOptions::default());
        append_durably(&journal, 10);
        // The next write lands, its sync fails: a group of records sits
        // unsynced in the file when the power goes, and tears.
        dir.cut_power_after(dir.ops() + 1);
        let mut batch = Vec::new();
        for i in 0..3 {
            batch.push(
                journal
                    .append(format!("unsynced group record {i} {}", "x".repeat(100)).as_bytes())
                    .unwrap(),
            );
        }
        assert!(journal.wait_for_sync(batch[2]).is_err());
        let mut dir = dir.crash(TearMode::Random(seed));
        drop(journal);

        let mut expected_next = None;
        for reopen in 0..4 {
            let (journal, _, records) = open(&dir, 0);
            let seqs: Vec<u64> = records.iter().map(|r| r.0).collect();
            assert!(seqs.len() >= 10, "seed {seed} reopen {reopen}: lost synced records");
            assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
            if let Some(next) = expected_next {
                assert_eq!(
                    seqs.len() as u64 + 1,
                    next,
                    "seed {seed} reopen {reopen}: sequence did not continue"
                );
            }
            let seq = journal.append(format!("after reopen {reopen}").as_bytes()).unwrap();
            journal.wait_for_sync(seq).unwrap();
            expected_next = Some(seq + 1);
            dir = dir.crash(TearMode::DropAll);
            drop(journal);
        }
    }
}

#[test]
fn a_zero_tail_ends_a_segment_and_garbage_stops_recovery_with_a_reason() {
    let dir = CrashLogDir::new();
    let (journal, _, _) = open(&dir, 0);
    append_durably(&journal, 3);
    let name = journal.segments()[0].clone();
    drop(journal);
    let mut bytes = dir.file_bytes(&name).unwrap();
    let good_len = bytes.len();

    // Zeros after the last record: preallocated space never written (or
    // unsynced writes a crash turned to zeros). The segment ends there.
    bytes.extend_from_slice(&[0u8; 100]);
    dir.put_file(&name, bytes.clone());
    let (journal, recovery, records) = open(&dir, 0);
    assert_eq!(records.len(), 3);
    assert!(recovery.stop.is_none(), "a zero tail is the end: {:?}", recovery.stop);
    assert_eq!(journal.append(b"x").unwrap(), 4);
    drop(journal);

    // Anything but zeros there is a damaged tail, reported where it starts.
    let mut garbage = bytes[..good_len].to_vec();
    garbage.extend_from_slice(&[0u8; 40]);
    garbage.extend_from_slice(&[7u8; 60]);
    let fresh = CrashLogDir::new();
    fresh.put_file(&name, garbage);
    let (_, recovery, records) = open(&fresh, 0);
    assert_eq!(records.len(), 3);
    let stop = recovery.stop.expect("stopped at the damaged tail");
    assert_eq!(stop.offset, good_len as u64);
    assert_eq!(stop.reason, StopReason::Corrupt);

    // A record whose middle byte was flipped stops replay before it, and no
    // record behind it is returned.
    let mut damaged = bytes[..good_len].to_vec();
    damaged[good_len - 5] ^= 0x40;
    let fresh = CrashLogDir::new();
    fresh.put_file(&name, damaged);
    let (_, recovery, records) = open(&fresh, 0);
    assert_eq!(records.len(), 2);
    assert_eq!(recovery.stop.unwrap().reason, StopReason::Corrupt);
}

#[test]
fn a_preallocated_segment_file_reopens_with_every_record() {
    // Real files are preallocated to the segment size: the tail of every
    // segment is zeros, and reopening (with rolls) must read through them.
    let tmp = tempfile::tempdir().unwrap();
    let options = JournalOptions {
        segment_size: 1024,
        ..JournalOptions::default()
    };
    let open_fs = |after| {
        let mut records = Vec::new();
        let dir = sluicedb::io::FsLogDir::open(tmp.path().join("wal")).unwrap();
        let (journal, recovery) = Journal::open(dir, DB, after, options, |seq, p| {
            records.push((seq, p.to_vec()));
            Ok(())
        })
        .unwrap();
        (journal, recovery, records)
    };
    let (journal, _, _) = open_fs(0);
    append_durably(&journal, 100);
    let segments = journal.segments();
    assert!(segments.len() > 2, "1 KiB segments roll: {segments:?}");
    drop(journal);
    let first = tmp.path().join("wal").join(&segments[0]);
    assert_eq!(std::fs::metadata(&first).unwrap().len(), 1024, "preallocated");
    for reopen in 0..3u64 {
        let (journal, recovery, records) = open_fs(0);
        assert!(recovery.stop.is_none(), "{:?}", recovery.stop);
        assert_eq!(records.len() as u64, 100 + reopen);
        assert!(records.iter().enumerate().all(|(i, (seq, _))| *seq == i as u64 + 1));
        let seq = journal.append(b"one more").unwrap();
        journal.wait_for_sync(seq).unwrap();
    }
}

#[test]
fn a_segment_of_another_database_is_refused() {
    let dir = CrashLogDir::new();
    let (journal, _, _) = open(&dir, 0);
    append_durably(&journal, 2);
    drop(journal);
    let err = Journal::open(dir.clone(), DB + 1, 0, small(), |_, _| Ok(()))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("belongs to another database"), "{err}");
    // Foreign files that are not segments are left alone.
    dir.put_file("notes.txt", b"not a segment".to_vec());
    assert!(Journal::open(dir.clone(), DB, 0, small(), |_, _| Ok(())).is_ok());
    assert!(dir.list().unwrap().contains(&"notes.txt".to_string()));
}

#[test]
fn a_gap_after_the_checkpoint_is_an_error_not_silent_loss() {
    let dir = CrashLogDir::new();
    let (journal, _, _) = open(&dir, 0);
    append_durably(&journal, 100);
    let first = journal.segments()[0].clone();
    drop(journal);
    dir.remove(&first).unwrap();
    let err = Journal::open(dir, DB, 0, small(), |_, _| Ok(()))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("missing"), "{err}");
}

#[test]
fn a_segment_larger_than_the_readers_first_load_replays_whole() {
    // The reader loads a segment from the front, 1 MiB first and doubling:
    // records straddling those boundaries must come back intact.
    let dir = CrashLogDir::new();
    // One full-size segment from the start (new journals start small).
    let options = JournalOptions {
        first_segment_size: 64 << 20,
        ..JournalOptions::default()
    };
    let (journal, _, _) = open_with(&dir, 0, options);
    let payload = |i: u64| vec![(i % 251) as u8; 1000 + (i % 7) as usize];
    let mut last = 0;
    for i in 0..3500u64 {
        last = journal.append(&payload(i)).unwrap();
    }
    journal.wait_for_sync(last).unwrap();
    assert_eq!(journal.segments().len(), 1, "one segment past several megabytes");
    drop(journal);
    let (_, recovery, records) = open_with(&dir.crash(TearMode::DropAll), 0, JournalOptions::default());
    assert!(recovery.stop.is_none(), "{:?}", recovery.stop);
    assert_eq!(records.len(), 3500);
    assert!(
        records
            .iter()
            .enumerate()
            .all(|(i, (seq, p))| *seq == i as u64 + 1 && *p == payload(i as u64))
    );
}
