//! Records appended with `SyncBy::Caller` (a durable commit that waits for
//! its own record next) do not wake the sync thread. What must still hold,
//! under the crash model (unsynced writes are lost):
//! - the caller's wait makes its record durable;
//! - a record appended after it with `SyncBy::Interval` still wakes the sync
//!   thread, which syncs both without anyone waiting (liveness);
//! - a caller record nobody waits for is synced at shutdown.

mod common;

use std::time::{Duration, Instant};

use sluicedb::io::{CrashLogDir, TearMode};
use sluicedb::wal::{Journal, JournalOptions, SyncBy};

const DB: u128 = 11;

fn replayed(dir: CrashLogDir) -> Vec<u64> {
    common::wal::replayed(dir, DB)
}

/// Waits until `seq` is durable without asking for a sync: liveness, not
/// timing (the deadline only turns a hang into a failure).
fn until_durable(journal: &Journal, seq: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !journal.is_durable(seq) {
        assert!(Instant::now() < deadline, "record {seq} was never synced");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_caller_record_is_durable_once_its_caller_has_waited() {
    let dir = CrashLogDir::new();
    let (journal, _) = Journal::open(dir.clone(), DB, 0, JournalOptions::default(), |_, _| Ok(())).unwrap();
    let seq = journal.append_with(b"waited for", SyncBy::Caller).unwrap();
    journal.wait_for_sync(seq).unwrap();
    assert!(journal.is_durable(seq));
    // A crash right after the wait keeps it.
    let crashed = dir.crash(TearMode::DropAll);
    drop(journal);
    assert_eq!(replayed(crashed), vec![seq]);
}

#[test]
fn an_interval_record_behind_an_unwaited_caller_record_still_wakes_the_sync_thread() {
    let dir = CrashLogDir::new();
    let options = JournalOptions {
        sync_interval: Duration::from_millis(5),
        ..JournalOptions::default()
    };
    let (journal, _) = Journal::open(dir.clone(), DB, 0, options, |_, _| Ok(())).unwrap();
    let first = journal.append_with(b"its caller never waits", SyncBy::Caller).unwrap();
    let second = journal.append(b"nobody waits").unwrap();
    until_durable(&journal, second);
    assert!(journal.is_durable(first), "the sync covers every record before it");
    let crashed = dir.crash(TearMode::DropAll);
    drop(journal);
    assert_eq!(replayed(crashed), vec![first, second]);
}

#[test]
fn a_caller_record_nobody_waits_for_is_synced_at_shutdown() {
    let dir = CrashLogDir::new();
    // An interval longer than the test: only the shutdown can sync it.
    let options = JournalOptions {
        sync_interval: Duration::from_secs(3600),
        ..JournalOptions::default()
    };
    let (journal, _) = Journal::open(dir.clone(), DB, 0, options, |_, _| Ok(())).unwrap();
    let seq = journal.append_with(b"abandoned", SyncBy::Caller).unwrap();
    drop(journal);
    assert_eq!(replayed(dir.crash(TearMode::DropAll)), vec![seq]);
}
