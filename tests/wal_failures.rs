//! Failures of the journal: an fsync error poisons it (every waiter wakes with
//! the I/O error, which names its cause; later appends fail with
//! `PreviousIo`); ENOSPC on a write does the same; a panic in the sync thread
//! degrades it to synchronous mode without hanging anyone or losing data.

mod common;

use std::io::ErrorKind;
use std::sync::Arc;

use sluicedb::StorageError;
use sluicedb::io::{CrashLogDir, TearMode};
use sluicedb::wal::{Journal, JournalOptions};

const DB: u128 = 7;

fn replayed(dir: CrashLogDir) -> Vec<u64> {
    common::wal::replayed(dir, DB)
}

/// Appends from `threads` threads until the journal refuses; returns the
/// error each thread ended with.
fn hammer(journal: &Arc<Journal>, threads: u64) -> Vec<StorageError> {
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let journal = journal.clone();
            std::thread::spawn(move || {
                loop {
                    let seq = match journal.append(b"record") {
                        Ok(seq) => seq,
                        Err(e) => return e,
                    };
                    if let Err(e) = journal.wait_for_sync(seq) {
                        return e;
                    }
                }
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn an_fsync_error_wakes_every_waiter_with_it_and_fails_later_appends() {
    let dir = CrashLogDir::new();
    // Operation 0 creates the segment, 1 writes its header... fail a sync a
    // little way in.
    dir.fail_op(9, ErrorKind::Other);
    let (journal, _) = Journal::open(dir.clone(), DB, 0, JournalOptions::default(), |_, _| Ok(())).unwrap();
    let journal = Arc::new(journal);
    let errors = hammer(&journal, 4);
    assert_eq!(errors.len(), 4, "every thread returned");
    // A thread waiting for a record the failed sync lost gets the I/O error;
    // one that appended after the failure, `PreviousIo`. Every record of the
    // failed group has a waiter, so at least one thread saw the cause.
    for e in &errors {
        match e {
            StorageError::Io(io) => assert!(io.to_string().contains("injected failure at operation 9"), "{io}"),
            StorageError::PreviousIo => {}
            other => panic!("expected Io or PreviousIo, got {other}"),
        }
    }
    assert!(errors.iter().any(|e| matches!(e, StorageError::Io(_))), "{errors:?}");
    let cause = journal.failure().expect("latched");
    assert!(cause.is_io(), "{cause:?}");
    assert!(cause.to_string().contains("injected failure at operation 9"), "{cause}");
    let later = journal.append(b"after").unwrap_err();
    assert!(matches!(later, StorageError::PreviousIo), "{later}");
    let durable = journal.durable_seq();
    drop(journal);
    // Reopening recovers at least everything acknowledged, as a prefix.
    let seqs = replayed(dir.crash(TearMode::DropAll));
    assert!(seqs.len() as u64 >= durable);
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
}

#[test]
fn enospc_on_a_write_poisons_the_journal() {
    let dir = CrashLogDir::new();
    dir.fail_op(4, ErrorKind::StorageFull);
    let (journal, _) = Journal::open(dir.clone(), DB, 0, JournalOptions::default(), |_, _| Ok(())).unwrap();
    let journal = Arc::new(journal);
    hammer(&journal, 2);
    let cause = journal.failure().unwrap();
    assert!(cause.to_string().contains("injected failure at operation 4"), "{cause}");
    assert!(matches!(journal.append(b"x"), Err(StorageError::PreviousIo)));
}

#[test]
fn a_sync_thread_panic_degrades_to_synchronous_commits_without_loss() {
    let dir = CrashLogDir::new();
    dir.panic_at_op(6);
    let (journal, _) = Journal::open(dir.clone(), DB, 0, JournalOptions::default(), |_, _| Ok(())).unwrap();
    let journal = Arc::new(journal);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let journal = journal.clone();
            std::thread::spawn(move || {
                (0..100)
                    .map(|_| {
                        let seq = journal.append(b"record").unwrap();
                        journal.wait_for_sync(seq).unwrap();
                        seq
                    })
                    .max()
                    .unwrap()
            })
        })
        .collect();
    let max_acked = handles.into_iter().map(|h| h.join().unwrap()).max().unwrap();
    assert!(journal.is_degraded());
    assert!(journal.metrics().degraded);
    assert!(journal.failure().is_none(), "a panic is not an I/O error");
    // A record nobody waits for is synced by its own committer now.
    let seq = journal.append(b"unwaited").unwrap();
    assert!(journal.is_durable(seq));
    drop(journal);
    let seqs = replayed(dir.crash(TearMode::DropAll));
    assert_eq!(max_acked, 400);
    assert_eq!(seqs, (1..=401).collect::<Vec<_>>(), "every record survives a crash");
}

#[test]
fn dropping_the_journal_drains_unwaited_records() {
    let dir = CrashLogDir::new();
    let options = JournalOptions {
        sync_interval: std::time::Duration::from_secs(3600),
        ..JournalOptions::default()
    };
    let (journal, _) = Journal::open(dir.clone(), DB, 0, options, |_, _| Ok(())).unwrap();
    for _ in 0..50 {
        journal.append(b"no one waits").unwrap();
    }
    assert_eq!(journal.durable_seq(), 0, "the hour-long interval has not passed");
    drop(journal);
    assert_eq!(replayed(dir.crash(TearMode::DropAll)), (1..=50).collect::<Vec<_>>());
}

#[test]
fn unwaited_records_become_durable_within_the_interval() {
    let dir = CrashLogDir::new();
    let options = JournalOptions {
        sync_interval: std::time::Duration::from_millis(5),
        ..JournalOptions::default()
    };
    let (journal, _) = Journal::open(dir, DB, 0, options, |_, _| Ok(())).unwrap();
    let seq = journal.append(b"no one waits").unwrap();
    // Liveness, not timing: the sync thread gets to it without a waiter.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !journal.is_durable(seq) {
        assert!(std::time::Instant::now() < deadline, "never synced");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}
