//! A `next-segment.spare` left in the log directory, in
//! states no existing test plants (`tests/wal_spare_segments.rs` plants only
//! one 0xA5-filled spare on disk): empty, a torn header, random bytes, a
//! whole valid segment of this same database holding records past the log's
//! end, a segment of another database. None may be read, replayed or refused;
//! each is deleted by the open. And a leftover spare whose unlink fails:
//! found by review, it refused the open of a healthy log; recovery never
//! reads the spare, so the open goes on and the log goes without spares.

use std::io::ErrorKind;

use sluicedb::io::{CrashLogDir, LogDir, TearMode};
use sluicedb::wal::{Journal, JournalOptions, SyncBy};

const DB: u128 = 11;
const SPARE: &str = "next-segment.spare";

fn small() -> JournalOptions {
    JournalOptions {
        segment_size: 4096,
        first_segment_size: 1024,
        ..JournalOptions::default()
    }
}

fn open(dir: &CrashLogDir, db: u128) -> sluicedb::Result<(Journal, Vec<u64>)> {
    let mut seqs = Vec::new();
    let (journal, recovery) = Journal::open(dir.clone(), db, 0, small(), |seq, _| {
        seqs.push(seq);
        Ok(())
    })?;
    assert!(recovery.stop.is_none(), "{:?}", recovery.stop);
    Ok((journal, seqs))
}

fn append_durably(journal: &Journal, n: u64) -> u64 {
    let mut last = 0;
    for i in 0..n {
        last = journal
            .append_with(format!("record {i:05} {}", "x".repeat(50)).as_bytes(), SyncBy::Caller)
            .unwrap();
        journal.wait_for_sync(last).unwrap();
    }
    last
}

/// The bytes of the one segment of a log of database `db` holding records
/// `1..=records`.
fn segment_of(db: u128, records: u64) -> Vec<u8> {
    let log = log_of(db, records);
    let name = log.list().unwrap().into_iter().find(|n| n.ends_with(".wal")).unwrap();
    log.file_bytes(&name).unwrap()
}

/// A log of `n` durable records, as a power cut leaves it.
fn log_of(db: u128, n: u64) -> CrashLogDir {
    let dir = CrashLogDir::new().with_spares(true);
    let (journal, _) = open(&dir, db).unwrap();
    assert_eq!(append_durably(&journal, n), n);
    let image = dir.crash(TearMode::DropAll);
    drop(journal);
    image
}

#[test]
fn leftover_spares_in_any_state_are_never_read_and_are_deleted() {
    // Whole segments, to plant as spares: this database's, with records
    // 1..=40 (the log below holds 1..=5), and another database's.
    let ours = segment_of(DB, 40);
    let foreign = segment_of(DB + 1, 3);
    let mut random = vec![0u8; 5000];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for b in &mut random {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let plants: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("torn header", ours[..30].to_vec()),
        ("random", random),
        ("a segment of this database past the log's end", ours.clone()),
        ("a segment of another database", foreign),
    ];
    for (what, bytes) in plants {
        let dir = log_of(DB, 5);
        dir.put_file(SPARE, bytes);
        let (journal, seqs) = open(&dir, DB).unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
        assert_eq!(seqs, (1..=5).collect::<Vec<_>>(), "{what}");
        assert!(
            !dir.list().unwrap().contains(&SPARE.to_string()),
            "{what}: the open deletes it"
        );
        // The log carries on, through rolls into fresh spares, and reopens.
        let mut last = 5;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while journal.metrics().segments_from_spares < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: no spare used: {:?}",
                journal.metrics()
            );
            last = journal.append_with(b"after", SyncBy::Caller).unwrap();
            journal.wait_for_sync(last).unwrap();
            if last % 40 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
        let image = dir.crash(TearMode::DropAll);
        drop(journal);
        let (_, seqs) = open(&image, DB).unwrap();
        assert_eq!(seqs, (1..=last).collect::<Vec<_>>(), "{what}");
    }
}

/// A leftover spare is a file nobody needs. A failed unlink of one (EACCES,
/// EBUSY, EIO) should cost no more than a failed unlink of an old segment,
/// which the journal counts and leaves (design/wal.md: "housekeeping left
/// undone, not a log failure"); the open instead fails, so the database
/// cannot be opened at all while the unlink fails.
#[test]
fn a_leftover_spare_that_cannot_be_deleted_does_not_refuse_the_open() {
    let dir = log_of(DB, 5);
    dir.put_file(SPARE, vec![0u8; 4096]);
    dir.fail_removes(Some(ErrorKind::PermissionDenied));
    let opened = open(&dir, DB);
    match opened {
        Ok((_, seqs)) => assert_eq!(seqs, (1..=5).collect::<Vec<_>>()),
        Err(e) => panic!("the open of a healthy log failed over a leftover spare: {e}"),
    }
}
