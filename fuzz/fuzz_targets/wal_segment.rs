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
//!
//! Both run with the log ids a database's journal has (`JournalOptions`
//! `log_id`, `previous_log_id`): in 1 the bytes' segment header may name
//! another log, which open and repair may refuse (a foreign log is never
//! replayed, nor repaired away); in 2 the log is written under one id and
//! reopened under it, or under a newer id that keeps it as the previous.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sluicedb::StorageError;
use sluicedb::io::{CrashLogDir, TearMode};
use sluicedb::wal::{Journal, JournalOptions};

const DB: u128 = 7;
/// The log ids of the raw segment's journal (a header the fuzzer writes
/// may name either, or another).
const LOG: u32 = 0x5EED_0001;
const PREVIOUS_LOG: u32 = 0x5EED_0000;

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

/// Whether a refusal is of a segment of another log.
fn foreign(e: &StorageError) -> bool {
    matches!(e, StorageError::Corrupted(msg) if msg.contains("belongs to another copy"))
}

fn raw_segment(data: &[u8]) {
    let dir = CrashLogDir::new();
    dir.put_file("00000000000000000001.wal", data.to_vec());
    // With ids (a database's journal) for an odd length, else none (every
    // segment accepted, as for a legacy file): the length, unlike any one
    // byte, leaves a valid segment's header free to name any log.
    let ids = !data.len().is_multiple_of(2);
    let options = JournalOptions {
        log_id: if ids { LOG } else { 0 },
        previous_log_id: if ids { PREVIOUS_LOG } else { 0 },
        ..JournalOptions::default()
    };
    let (journal, records) = match open(&dir, options) {
        Ok(opened) => opened,
        Err(e) if ids && foreign(&e) => return,
        Err(StorageError::Corrupted(_)) => {
            let repair = JournalOptions { repair: true, ..options };
            match open(&dir, repair) {
                Ok(opened) => opened,
                Err(e) if ids && foreign(&e) => return,
                Err(e) => panic!("repair did not open what open refused: {e}"),
            }
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
    // Written under log 1 + (size % 3) (0: none); reopened under the same
    // id, or (odd `bit`) under a newer one that keeps it as the previous,
    // as the next writable open of its database would.
    let log_id = u32::from(*size % 3);
    let options = JournalOptions {
        segment_size: 128 + u64::from(*size) * 8,
        log_id,
        ..JournalOptions::default()
    };
    let reopen = if bit & 0x80 != 0 && log_id != 0 {
        JournalOptions {
            log_id: log_id + 10,
            previous_log_id: log_id,
            ..options
        }
    } else {
        options
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
        // A segment the log rolled away from ends in a seal (sequence
        // u64::MAX, never a record's): its records end there.
        while pos + 20 <= bytes.len() && record < payloads.len() && bytes[pos..pos + 8] != [0xff; 8] {
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
    match open(&dir, reopen) {
        Ok((_, records)) => {
            assert!(!later, "damage at {name}:{at} with valid records after it was not refused");
            expect_prefix(&records);
        }
        Err(StorageError::Corrupted(msg)) => {
            assert!(later, "damage at the very end refused: {msg}");
            let repair = JournalOptions { repair: true, ..reopen };
            let (_, records) = open(&dir, repair).expect("repair opens");
            expect_prefix(&records);
            let (_, records) = open(&dir, reopen).expect("a repaired log opens plainly");
            expect_prefix(&records);
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
}
