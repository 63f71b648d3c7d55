//! Bit rot in the middle of the log is corruption, not a torn tail: opening
//! must fail with an error naming the segment, the offset and the sequences,
//! and never silently drop the acknowledged records behind the damage.

mod common;

use common::Rng;
use sluicedb::StorageError;
use sluicedb::io::{CrashLogDir, TearMode};
use sluicedb::wal::{Journal, JournalOptions, Recovery};

const DB: u128 = 42;

fn small() -> JournalOptions {
    JournalOptions {
        segment_size: 1024,
        ..JournalOptions::default()
    }
}

/// A log of `n` acknowledged records in 1 KiB segments.
fn log_of(n: u64) -> (CrashLogDir, Vec<String>) {
    let dir = CrashLogDir::new();
    let (journal, _) = Journal::open(dir.clone(), DB, 0, small(), |_, _| Ok(())).unwrap();
    for i in 0..n {
        let seq = journal.append(format!("payload {i:04}").as_bytes()).unwrap();
        journal.wait_for_sync(seq).unwrap();
    }
    let segments = journal.segments();
    drop(journal);
    (dir.crash(TearMode::DropAll), segments)
}

#[test]
fn a_flipped_bit_in_a_middle_segment_is_an_error_not_silent_loss() {
    let (dir, segments) = log_of(200);
    assert!(segments.len() > 4, "{segments:?}");
    let middle = &segments[segments.len() / 2];
    let mut bytes = dir.file_bytes(middle).unwrap();
    // Inside the second record's payload: 48-byte header, then records of
    // 20 + 12 bytes.
    bytes[48 + 32 + 25] ^= 0x10;
    dir.put_file(middle, bytes);

    let mut replayed = 0;
    let result = Journal::open(dir.clone(), DB, 0, small(), |_, _| {
        replayed += 1;
        Ok(())
    });
    let err = result.err().expect("opening a log with mid-log damage must fail");
    assert!(matches!(err, StorageError::Corrupted(_)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(middle.as_str()), "names the segment: {msg}");
    // The files are left as they were, for inspection or an explicit repair.
    for name in &segments {
        assert!(dir.file_bytes(name).is_some(), "{name} was deleted");
    }
}

fn open_with(dir: &CrashLogDir, repair: bool) -> sluicedb::Result<(Journal, Recovery, Vec<u64>)> {
    let mut seqs = Vec::new();
    let options = JournalOptions { repair, ..small() };
    let (journal, recovery) = Journal::open(dir.clone(), DB, 0, options, |seq, _| {
        seqs.push(seq);
        Ok(())
    })?;
    Ok((journal, recovery, seqs))
}

#[test]
fn the_error_names_segment_offset_and_sequences() {
    let (dir, segments) = log_of(200);
    let middle = &segments[segments.len() / 2];
    let first = middle.trim_end_matches(".wal").parse::<u64>().unwrap();
    let mut bytes = dir.file_bytes(middle).unwrap();
    bytes[48 + 32 + 25] ^= 0x10; // record first + 1
    dir.put_file(middle, bytes);
    let msg = open_with(&dir, false).err().unwrap().to_string();
    assert!(msg.contains(&format!("offset {}", 48 + 32)), "{msg}");
    assert!(msg.contains(&format!("after record {first}")), "{msg}");
    assert!(msg.contains(&format!("valid record {}", first + 2)), "{msg}");
    assert!(msg.contains("repair"), "names the way out: {msg}");
}

#[test]
fn repair_keeps_the_prefix_reports_the_loss_and_sticks() {
    let (dir, segments) = log_of(200);
    let middle = &segments[segments.len() / 2];
    let first = middle.trim_end_matches(".wal").parse::<u64>().unwrap();
    let mut bytes = dir.file_bytes(middle).unwrap();
    bytes[48 + 32 + 25] ^= 0x10;
    dir.put_file(middle, bytes);

    let (journal, recovery, seqs) = open_with(&dir, true).unwrap();
    assert_eq!(seqs, (1..=first).collect::<Vec<_>>(), "the prefix before the damage");
    assert!(recovery.repaired && !recovery.torn_tail, "{recovery:?}");
    assert_eq!(recovery.last_seq, first);
    assert_eq!(recovery.later_record.as_ref().map(|l| l.seq), Some(first + 2));
    assert_eq!(recovery.discarded_records, 200 - first - 1, "every valid record behind");
    assert!(recovery.discarded_bytes > 0);
    assert_eq!(recovery.discarded.len(), segments.len() - segments.len() / 2 - 1);
    let seq = journal.append(b"after repair").unwrap();
    assert_eq!(seq, first + 1);
    journal.wait_for_sync(seq).unwrap();
    drop(journal);

    // The repair is durable: a plain open finds a clean log.
    let (_, recovery, seqs) = open_with(&dir.crash(TearMode::DropAll), false).unwrap();
    assert_eq!(seqs, (1..=first + 1).collect::<Vec<_>>());
    assert!(recovery.stop.is_none() && !recovery.repaired, "{recovery:?}");
}

#[test]
fn damage_in_the_last_segment_followed_by_valid_records_is_an_error() {
    let (dir, segments) = log_of(200);
    let last = segments.last().unwrap();
    let mut bytes = dir.file_bytes(last).unwrap();
    assert!(bytes.len() > 48 + 3 * 32, "several records in the last segment");
    bytes[48 + 3] ^= 0x01; // the first record's sequence number
    dir.put_file(last, bytes);
    assert!(matches!(open_with(&dir, false), Err(StorageError::Corrupted(_))));
}

#[test]
fn a_torn_last_write_opens_silently_with_the_prefix() {
    let (dir, segments) = log_of(200);
    let last = segments.last().unwrap();
    let bytes = dir.file_bytes(last).unwrap();
    // Cut in the middle of the last record, then the preallocated zeros.
    let mut torn = bytes[..bytes.len() - 7].to_vec();
    torn.resize(1024, 0);
    dir.put_file(last, torn);
    let (journal, recovery, seqs) = open_with(&dir, false).unwrap();
    assert_eq!(seqs, (1..=199).collect::<Vec<_>>());
    assert!(recovery.torn_tail && !recovery.repaired, "{recovery:?}");
    assert_eq!(recovery.discarded_records, 0);
    assert_eq!(recovery.discarded_bytes, 32 - 7, "the torn record's bytes");
    assert_eq!(journal.append(b"next").unwrap(), 200);
}

/// Where each record lies: `(segment, offset, length)`, in sequence order,
/// read from the files by the documented format.
fn record_spans(dir: &CrashLogDir, segments: &[String]) -> Vec<(String, usize, usize)> {
    let mut spans = Vec::new();
    for name in segments {
        let bytes = dir.file_bytes(name).unwrap();
        let mut pos = 48;
        // A record's sequence number is never 0; a seal's is u64::MAX
        // and ends the segment.
        while pos + 20 <= bytes.len() && bytes[pos..pos + 8] != [0; 8] && bytes[pos..pos + 8] != [0xff; 8] {
            let len = 20 + u32::from_le_bytes(bytes[pos + 8..pos + 12].try_into().unwrap()) as usize;
            spans.push((name.clone(), pos, len));
            pos += len;
        }
    }
    spans
}

/// The class: over random logs, any cut of the last write (with or without
/// a zero tail after it) opens with exactly the records before the cut, and
/// any flipped byte in a record or segment header that has a valid record
/// after it is refused, and repaired to exactly the records before it.
#[test]
fn random_logs_with_random_damage_tell_torn_tails_from_corruption() {
    let (mut refused, mut opened, mut torn_cuts) = (0, 0, 0);
    for seed in 1..=150u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let options = JournalOptions {
            segment_size: 256 + rng.below(2048),
            ..JournalOptions::default()
        };
        let live = CrashLogDir::new();
        let (journal, _) = Journal::open(live.clone(), DB, 0, options, |_, _| Ok(())).unwrap();
        let n = 1 + rng.below(60);
        for _ in 0..n {
            let payload: Vec<u8> = (0..rng.below(200)).map(|_| rng.next() as u8).collect();
            let seq = journal.append(&payload).unwrap();
            journal.wait_for_sync(seq).unwrap();
        }
        let segments = journal.segments();
        drop(journal);
        let pristine = live.crash(TearMode::DropAll);
        let spans = record_spans(&pristine, &segments);
        assert_eq!(spans.len() as u64, n, "seed {seed}");
        let open = |dir: &CrashLogDir, repair| {
            let mut seqs = Vec::new();
            let options = JournalOptions { repair, ..options };
            Journal::open(dir.clone(), DB, 0, options, |seq, _| {
                seqs.push(seq);
                Ok(())
            })
            .map(|(journal, recovery)| (journal, recovery, seqs))
        };

        // A torn tail: the last segment cut at any byte, maybe zero-filled.
        let last = segments.last().unwrap();
        let bytes = pristine.file_bytes(last).unwrap();
        for _ in 0..4 {
            let cut = rng.below(bytes.len() as u64 + 1) as usize;
            let mut torn = bytes[..cut].to_vec();
            if rng.below(2) == 0 {
                torn.resize(cut + rng.below(600) as usize, 0);
            }
            let dir = pristine.crash(TearMode::DropAll);
            dir.put_file(last, torn);
            let whole = spans
                .iter()
                .filter(|(name, at, len)| name != last || at + len <= cut)
                .count() as u64;
            let (journal, recovery, seqs) =
                open(&dir, false).unwrap_or_else(|e| panic!("seed {seed} cut {cut}: a torn tail must open: {e}"));
            assert_eq!(seqs, (1..=whole).collect::<Vec<_>>(), "seed {seed} cut {cut}");
            assert!(!recovery.repaired, "seed {seed} cut {cut}");
            torn_cuts += u64::from(recovery.torn_tail);
            assert_eq!(journal.append(b"x").unwrap(), whole + 1, "seed {seed} cut {cut}");
        }

        // Bit rot: one byte of one record (or of a segment header) flipped.
        for _ in 0..4 {
            let dir = pristine.crash(TearMode::DropAll);
            let (name, at, damaged) = if rng.below(5) == 0 {
                let s = rng.below(segments.len() as u64) as usize;
                let first_here = spans.iter().position(|(n, _, _)| *n == segments[s]);
                let damaged = first_here.unwrap_or(spans.len());
                (segments[s].clone(), rng.below(48) as usize, damaged)
            } else {
                let r = rng.below(n) as usize;
                let (name, at, len) = &spans[r];
                (name.clone(), at + rng.below(*len as u64) as usize, r)
            };
            let mut bytes = dir.file_bytes(&name).unwrap();
            bytes[at] ^= 1 << rng.below(8);
            dir.put_file(&name, bytes);
            let before = damaged as u64;
            // Valid records (or a later segment's header) after the damage?
            let name_index = segments.iter().position(|s| *s == name).unwrap();
            let later = (damaged + 1 < spans.len()) || name_index + 1 < segments.len() || {
                // A damaged header with its own records behind it.
                at < 48 && damaged < spans.len()
            };
            match open(&dir, false) {
                Err(e) => {
                    assert!(later, "seed {seed}: damage at the very end must open: {e}");
                    assert!(matches!(e, StorageError::Corrupted(_)), "seed {seed}: {e}");
                    let (_, recovery, seqs) = open(&dir, true).unwrap();
                    assert_eq!(seqs, (1..=before).collect::<Vec<_>>(), "seed {seed}: repaired prefix");
                    assert!(recovery.repaired, "seed {seed}");
                    let (_, recovery, seqs) = open(&dir, false).expect("a repair sticks");
                    assert_eq!(seqs.len() as u64, before, "seed {seed}");
                    assert!(!recovery.repaired, "seed {seed}");
                    refused += 1;
                }
                Ok((_, recovery, seqs)) => {
                    assert!(
                        !later,
                        "seed {seed}: damage at {name}:{at} with valid records after it opened"
                    );
                    assert_eq!(seqs, (1..=before).collect::<Vec<_>>(), "seed {seed}");
                    assert!(recovery.torn_tail, "seed {seed}");
                    opened += 1;
                }
            }
        }
    }
    // Both outcomes, and real tears, were exercised.
    assert!(
        refused > 300 && opened > 20 && torn_cuts > 300,
        "{refused} {opened} {torn_cuts}"
    );
}
