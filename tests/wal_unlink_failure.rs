//! A failed unlink of an old WAL segment is not a failure of the log: the
//! segment stays, the failure is counted, later checkpoints retry, commits
//! continue, and a reopen skips the leftover and recovers everything.

mod common;

use std::io::ErrorKind;

use common::engine::{Disk, commit_numbered, count_numbered, small_options};
use sluicedb::io::{CrashLogDir, LogDir, TearMode};
use sluicedb::wal::{Journal, JournalOptions};

const DB: u128 = 5;

fn small() -> JournalOptions {
    JournalOptions {
        segment_size: 1024,
        ..JournalOptions::default()
    }
}

fn append_durably(journal: &Journal, from: u64, to: u64) {
    for i in from..=to {
        let seq = journal.append(format!("payload {i:04}").as_bytes()).unwrap();
        assert_eq!(seq, i);
        journal.wait_for_sync(seq).unwrap();
    }
}

fn replay(dir: &CrashLogDir, after: u64) -> Vec<u64> {
    let mut seqs = Vec::new();
    let (journal, recovery) = Journal::open(dir.clone(), DB, after, small(), |seq, _| {
        seqs.push(seq);
        Ok(())
    })
    .unwrap();
    assert!(recovery.stop.is_none(), "{:?}", recovery.stop);
    drop(journal);
    seqs
}

#[test]
fn a_failed_segment_delete_is_counted_retried_and_harmless() {
    let dir = CrashLogDir::new();
    let (journal, _) = Journal::open(dir.clone(), DB, 0, small(), |_, _| Ok(())).unwrap();
    append_durably(&journal, 1, 200);
    let before = journal.segments();

    dir.fail_removes(Some(ErrorKind::PermissionDenied));
    let deleted = journal
        .truncate_through(120)
        .expect("a failed unlink is not an error of the log");
    assert_eq!(deleted, 0);
    assert!(journal.failure().is_none(), "the journal must not be failed");
    assert_eq!(journal.segments(), before, "the undeleted segments stay listed");
    assert_eq!(
        journal.metrics().segment_delete_failures,
        1,
        "one failure, then it stops"
    );

    // Commits carry on.
    append_durably(&journal, 201, 220);
    // A crash now: the leftovers hold only records at or below the
    // checkpoint; recovery skips them and replays everything after.
    assert_eq!(
        replay(&dir.crash(TearMode::DropAll), 120),
        (121..=220).collect::<Vec<_>>()
    );

    // The next checkpoint retries and succeeds.
    dir.fail_removes(None);
    let deleted = journal.truncate_through(150).unwrap();
    assert!(deleted > 0);
    assert_eq!(journal.metrics().segments_deleted, deleted as u64);
    append_durably(&journal, 221, 230);
    drop(journal);
    assert_eq!(replay(&dir, 150), (151..=230).collect::<Vec<_>>());
}

#[test]
fn a_damaged_leftover_segment_below_the_checkpoint_is_skipped() {
    let dir = CrashLogDir::new();
    let (journal, _) = Journal::open(dir.clone(), DB, 0, small(), |_, _| Ok(())).unwrap();
    append_durably(&journal, 1, 200);
    let first = journal.segments()[0].clone();
    drop(journal);
    // The oldest segment lies wholly at or below checkpoint 150 (its delete
    // failed); whatever happens to its bytes, nothing reads them.
    let mut bytes = dir.file_bytes(&first).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    dir.put_file(&first, bytes);
    assert_eq!(replay(&dir, 150), (151..=200).collect::<Vec<_>>());
}

#[test]
fn the_database_keeps_committing_when_segment_deletes_fail() {
    let disk = Disk::new();
    let db = disk.open(small_options());
    disk.wal.fail_removes(Some(ErrorKind::Other));
    for i in 0..600 {
        commit_numbered(&db, i).unwrap_or_else(|e| panic!("commit {i} failed: {e}"));
        if i % 100 == 99 {
            db.checkpoint()
                .unwrap_or_else(|e| panic!("checkpoint after {i} failed: {e}"));
        }
    }
    assert_eq!(count_numbered(&db), 600);
    assert!(
        disk.wal.list().unwrap().len() > 3,
        "the deletes did fail: segments piled up"
    );
    drop(db);
    let db = disk.crashed(TearMode::DropAll).open(small_options());
    assert_eq!(count_numbered(&db), 600, "reopen holds every commit");
    commit_numbered(&db, 600).unwrap();
}

/// The class: whatever unlinks fail, and whenever the power goes, a reopen
/// at the last checkpoint replays exactly the records after it, and the
/// journal never fails. Random appends, checkpoints and delete outages.
#[test]
fn random_delete_outages_never_fail_the_journal_or_lose_a_record() {
    for seed in 0..60u64 {
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let dir = CrashLogDir::new();
        let (journal, _) = Journal::open(dir.clone(), DB, 0, small(), |_, _| Ok(())).unwrap();
        let (mut last, mut checkpoint) = (0, 0);
        for _ in 0..30 {
            match next() % 4 {
                0 => dir.fail_removes((next() % 2 == 0).then_some(ErrorKind::Other)),
                1 => {
                    checkpoint = checkpoint.max(next() % (last + 1));
                    journal.truncate_through(checkpoint).unwrap();
                }
                _ => {
                    let n = next() % 20 + 1;
                    append_durably(&journal, last + 1, last + n);
                    last += n;
                }
            }
            assert!(journal.failure().is_none(), "seed {seed}");
        }
        assert_eq!(
            replay(&dir.crash(TearMode::DropAll), checkpoint),
            (checkpoint + 1..=last).collect::<Vec<_>>(),
            "seed {seed}"
        );
    }
}
