//! Recovers a WAL from fuzzed bytes, two ways.
//!
//! 1. The bytes as one segment: the decoder must return records, stop with a
//!    reason, or refuse with `Corrupted` (damage followed by a valid record),
//!    never panic, hang or allocate what a length field merely claims; every
//!    record it returns must be in sequence; a journal opened on it (with
//!    repair, if refused) must accept appends.
//! 2. A real multi-segment log built from the bytes, with one byte flipped
//!    where they say: open must refuse exactly when a valid record (or a
//!    later segment) follows the damage, and then repair to exactly the
//!    records before it; otherwise it must replay exactly those records.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sluicedb::StorageError;
use sluicedb::io::{CrashLogDir, TearMode};
use sluicedb::wal::{Journal, JournalOptions};

const DB: u128 = 7;

fuzz_target!(|data: &[u8]| {
    raw_segment(data);
    damaged_log(data);
});

fn open(dir: &CrashLogDir, options: JournalOptions) -> Result<(Journal, Vec<Vec<u8>>), StorageError> {
    let mut records = Vec::new();
    let (journal, recovery) = Journal::open(dir.clone(), DB, 0, options, |seq, payload| {
        assert_eq!(seq, records.len() as u64 + 1, "records out of sequence");
        records.push(payload.to_vec());
        Ok(())
    })?;
    assert_eq!(recovery.last_seq, records.len() as u64);
    assert_eq!(recovery.replayed, records.len() as u64);
    Ok((journal, records))
}

fn raw_segment(data: &[u8]) {
    let dir = CrashLogDir::new();
    dir.put_file("00000000000000000001.wal", data.to_vec());
    let (journal, records) = match open(&dir, JournalOptions::default()) {
        Ok(opened) => opened,
        Err(StorageError::Corrupted(_)) => {
            let repair = JournalOptions {
                repair: true,
                ..JournalOptions::default()
            };
            open(&dir, repair).expect("repair opens what open refused")
        }
        Err(e) => panic!("unexpected error: {e}"),
    };
    let last = records.len() as u64;
    let seq = journal.append(b"after recovery").expect("append after recovery");
    assert_eq!(seq, last + 1);
    journal.wait_for_sync(seq).expect("sync after recovery");
}

fn damaged_log(data: &[u8]) {
    let [size, shape, lo, hi, bit, body @ ..] = data else {
        return;
    };
    let options = JournalOptions {
        segment_size: 128 + u64::from(*size) * 8,
        ..JournalOptions::default()
    };
    // Records are chunks of the body; a sync every few makes groups.
    let chunk = 1 + usize::from(shape % 48);
    let group = 1 + usize::from(shape / 48);
    let payloads: Vec<&[u8]> = body.chunks(chunk).take(64).collect();
    if payloads.is_empty() {
        return;
    }
    let live = CrashLogDir::new();
    let (journal, _) = open(&live, options).expect("an empty log opens");
    for batch in payloads.chunks(group) {
        let mut last = 0;
        for p in batch {
            last = journal.append(p).expect("append");
        }
        journal.wait_for_sync(last).expect("sync");
    }
    let segments = journal.segments();
    drop(journal);
    let dir = live.crash(TearMode::DropAll);

    // Every byte of the log, as (segment, offset), and which record each
    // belongs to (headers: the first record of their segment).
    let mut places = Vec::new();
    let mut record = 0usize;
    for name in &segments {
        let bytes = dir.file_bytes(name).expect("segment");
        let first_here = record;
        for at in 0..48.min(bytes.len()) {
            places.push((name.clone(), at, first_here));
        }
        let mut pos = 48;
        while pos + 20 <= bytes.len() && record < payloads.len() {
            let len = 20 + payloads[record].len();
            for at in pos..pos + len {
                places.push((name.clone(), at, record));
            }
            pos += len;
            record += 1;
        }
    }
    assert_eq!(record, payloads.len(), "every record was written");
    let (name, at, damaged) = places[(usize::from(*lo) | usize::from(*hi) << 8) % places.len()].clone();
    let mut bytes = dir.file_bytes(&name).expect("segment");
    bytes[at] ^= 1 << (bit % 8);
    dir.put_file(&name, bytes);

    let is_last_segment = name == *segments.last().expect("a segment");
    let later = damaged + 1 < payloads.len() || !is_last_segment || (at < 48 && damaged < payloads.len());
    let expect_prefix = |records: &[Vec<u8>]| {
        assert_eq!(records.len(), damaged, "exactly the records before the damage");
        for (got, want) in records.iter().zip(&payloads) {
            assert_eq!(got, want, "a record came back changed");
        }
    };
    match open(&dir, options) {
        Ok((_, records)) => {
            assert!(!later, "damage at {name}:{at} with valid records after it was not refused");
            expect_prefix(&records);
        }
        Err(StorageError::Corrupted(msg)) => {
            assert!(later, "damage at the very end refused: {msg}");
            let repair = JournalOptions { repair: true, ..options };
            let (_, records) = open(&dir, repair).expect("repair opens");
            expect_prefix(&records);
            let (_, records) = open(&dir, options).expect("a repaired log opens plainly");
            expect_prefix(&records);
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
}
