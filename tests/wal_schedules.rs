//! The journal's durable watermark under a schedule explorer.
//!
//! With the test-only `shuttle` feature the real journal (not a model of it)
//! runs on shuttle's locks, atomics and threads, and shuttle picks every
//! thread switch, at random and by PCT (which finds a bug of small depth
//! with a known probability). Shuttle's timed waits never time out, so a
//! lost wake-up shows up as a deadlock, which shuttle reports.
//!
//! Not exhaustive: shuttle has no partial-order reduction, and depth-first
//! search does not finish even for one committer and one record (over three
//! million schedules, since every lock and atomic access is a switch point).
//! The exhaustive small model is the publication rule's
//! (`engine::publication`); here, 20 000 schedules per strategy and scenario.
//! Both mutations tried while writing this (publishing the queue's last
//! sequence instead of the written one; waiting without re-checking the
//! watermark under the waiters' lock) fail within the first schedules.
//!
//! What each schedule must satisfy, checked against the power-failure image
//! taken the moment a committer is told its record is durable:
//! - the image holds that record and every one before it, intact (the
//!   watermark only covers records written before the sync that published it);
//! - the watermark never moves backwards nor past the last appended record;
//! - a failed or panicking sync wakes every waiter (with the error, or by
//!   degrading to synchronous mode) and never acknowledges a lost record;
//! - with a tiny queue byte cap (`max_queue_bytes`), appends that wait for
//!   room interleave with the sync thread's writes: they are always woken
//!   (by the write, a failure, or degradation; shuttle reports a lost
//!   wake-up as a deadlock), the queue never holds more than the cap or one
//!   record, and committers that never wait for durability (only the cap
//!   makes the sync thread write for them) lose nothing at a clean close.
//!
//! Run: `cargo test --features shuttle --test wal_schedules` (`.ci/run` does).
#![cfg(feature = "shuttle")]

use std::collections::BTreeMap;
use std::future::poll_fn;
use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

use shuttle::sync::{Mutex, MutexGuard, PoisonError};
use sluicedb::io::{CrashLogDir, TearMode};
use sluicedb::wal::{self, Journal, JournalOptions};

const DB: u128 = 99;

/// How a committer waits for its record.
#[derive(Clone, Copy, Debug)]
enum Wait {
    /// `wait_for_sync`: parks on the journal's condition variable.
    Blocking,
    /// `poll_durable` driven by a future executor: a registered waker.
    Future,
    /// Never waits (`Durability::None`): only the queue's byte cap, or the
    /// final drain, makes the sync thread write its records.
    Never,
}

#[derive(Clone, Copy, Debug)]
struct Scenario {
    committers: usize,
    records_each: usize,
    /// Tiny segments make every group roll to a new segment.
    segment_size: u64,
    /// A checkpointer thread truncates the log through the watermark.
    truncate: bool,
    fault: Fault,
    /// `JournalOptions::max_queue_bytes`.
    max_queue_bytes: usize,
    /// Even committers never wait for durability (odd ones poll futures).
    unwaited: bool,
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    None,
    /// Directory operation `n` fails with an I/O error.
    Error(u64),
    /// Directory operation `n` panics (a bug in the sync thread).
    Panic(u64),
}

/// What one committer learned: the record it was told is durable, with the
/// image a power failure at that moment would leave and the checkpoint the
/// data file would hold then.
struct Ack {
    seq: u64,
    payload: Vec<u8>,
    image: CrashLogDir,
    checkpoint: u64,
}

/// Locks, ignoring poison: shuttle runs its threads as coroutines on one OS
/// thread, so a guard dropped by another thread while the sync thread
/// unwinds from an injected panic counts as poisoned.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn payload(committer: usize, i: usize) -> Vec<u8> {
    format!("committer {committer} record {i}").into_bytes()
}

/// Every record a restart on `image` replays after `checkpoint`.
fn recover(image: CrashLogDir, checkpoint: u64) -> BTreeMap<u64, Vec<u8>> {
    let mut records = BTreeMap::new();
    wal::scan(&image, DB, (0, 0), checkpoint, |seq, p| {
        records.insert(seq, p.to_vec());
        Ok(())
    })
    .expect("a crash image always reads back");
    records
}

/// One execution of `scenario`; shuttle calls it once per schedule.
fn run(scenario: Scenario) {
    let dir = CrashLogDir::new();
    match scenario.fault {
        Fault::None => {}
        Fault::Error(op) => dir.fail_op(op, ErrorKind::Other),
        Fault::Panic(op) => dir.panic_at_op(op),
    }
    let options = JournalOptions {
        segment_size: scenario.segment_size,
        // Only waiters trigger syncs: the interval reads the real clock,
        // which would make schedules irreproducible.
        sync_interval: Duration::from_secs(3600),
        max_queue_bytes: scenario.max_queue_bytes,
        ..JournalOptions::default()
    };
    let (journal, _) = Journal::open(dir.clone(), DB, 0, options, |_, _| Ok(())).unwrap();
    let journal = Arc::new(journal);
    let acks = Arc::new(Mutex::new(Vec::<Ack>::new()));
    // The checkpoint sequence: a checkpointer holds it while it truncates,
    // so a crash image and the checkpoint it goes with are read together.
    let checkpoint = Arc::new(Mutex::new(0u64));
    let mut threads = Vec::new();
    for committer in 0..scenario.committers {
        let (journal, acks, dir, checkpoint) = (journal.clone(), acks.clone(), dir.clone(), checkpoint.clone());
        let wait = match (committer % 2 == 0, scenario.unwaited) {
            (true, false) => Wait::Blocking,
            (true, true) => Wait::Never,
            (false, _) => Wait::Future,
        };
        threads.push(shuttle::thread::spawn(move || {
            for i in 0..scenario.records_each {
                let payload = payload(committer, i);
                let Ok(seq) = journal.append(&payload) else {
                    assert!(journal.failure().is_some(), "an append error without a latched failure");
                    return;
                };
                let queued = journal.metrics().queue_bytes;
                let bound = scenario.max_queue_bytes.max(RECORD_HEADER + payload.len()) as u64;
                assert!(queued <= bound, "{queued} bytes queued, over the cap's bound {bound}");
                let before = journal.durable_seq();
                let durable = match wait {
                    Wait::Blocking => journal.wait_for_sync(seq),
                    Wait::Future => shuttle::future::block_on(poll_fn(|cx| journal.poll_durable(seq, cx))),
                    Wait::Never => continue,
                };
                let after = journal.durable_seq();
                assert!(after >= before, "the watermark moved back: {before} -> {after}");
                assert!(after <= journal.last_seq(), "the watermark passed the last record");
                if durable.is_err() {
                    assert!(journal.failure().is_some(), "an error without a latched failure");
                    return;
                }
                assert!(journal.is_durable(seq));
                let (image, checkpoint) = {
                    let checkpoint = lock(&checkpoint);
                    (dir.crash(TearMode::DropAll), *checkpoint)
                };
                lock(&acks).push(Ack {
                    seq,
                    payload,
                    image,
                    checkpoint,
                });
            }
        }));
    }
    if scenario.truncate {
        let (journal, checkpoint) = (journal.clone(), checkpoint.clone());
        threads.push(shuttle::thread::spawn(move || {
            for _ in 0..scenario.committers {
                // The engine checkpoints at most what is durable, makes the
                // data file durable, and only then truncates the log.
                let mut checkpoint = lock(&checkpoint);
                *checkpoint = journal.durable_seq();
                let _ = journal.truncate_through(*checkpoint);
                drop(checkpoint);
                shuttle::thread::yield_now();
            }
        }));
    }
    for thread in threads {
        thread.join().unwrap();
    }
    let failed = journal.failure().is_some();
    let degraded = journal.is_degraded();
    let appended = journal.last_seq();
    let Ok(journal) = Arc::try_unwrap(journal) else {
        panic!("every thread joined, so the journal has one owner");
    };
    drop(journal);

    let acks = std::mem::take(&mut *lock(&acks));
    if matches!(scenario.fault, Fault::None) || degraded {
        assert!(!failed, "no I/O error was injected");
        let waiting = if scenario.unwaited {
            scenario.committers / 2
        } else {
            scenario.committers
        };
        assert_eq!(
            acks.len(),
            waiting * scenario.records_each,
            "every wait succeeds without an I/O error"
        );
        // A clean close drains the queue: every appended record, waited
        // for or not, is in the log.
        let total = (scenario.committers * scenario.records_each) as u64;
        assert_eq!(appended, total, "every append succeeds without an I/O error");
        let checkpoint = *lock(&checkpoint);
        let records = recover(dir.crash(TearMode::DropAll), checkpoint);
        assert!(
            records.keys().copied().eq(checkpoint + 1..=total),
            "a record appended before the close was lost"
        );
    }
    for ack in acks {
        let records = recover(ack.image, ack.checkpoint);
        // Everything from the checkpoint up to the acknowledged record comes
        // back, the acknowledged record intact (at or below the checkpoint,
        // the data file holds it).
        assert!(
            (ack.checkpoint + 1..=ack.seq).all(|s| records.contains_key(&s)),
            "a record at or before {} was acknowledged durable but a power failure then loses it",
            ack.seq
        );
        if ack.seq > ack.checkpoint {
            assert_eq!(records.get(&ack.seq), Some(&ack.payload), "record {} changed", ack.seq);
        }
    }
}

fn scenario(committers: usize, records_each: usize) -> Scenario {
    Scenario {
        committers,
        records_each,
        segment_size: 64 << 20,
        truncate: false,
        fault: Fault::None,
        max_queue_bytes: JournalOptions::default().max_queue_bytes,
        unwaited: false,
    }
}

/// Bytes of a record's header (sequence, length, checksum).
const RECORD_HEADER: usize = 20;

/// A queue byte cap that holds one of this test's records but not two:
/// every second append waits for the sync thread's write.
const TINY_CAP: usize = 48;

/// Schedules per scenario and exploration strategy: a schedule costs tens
/// of microseconds, so these run in seconds.
const SCHEDULES: usize = 20_000;

/// Random schedules, then PCT at depth 2 and 3 (a bug that needs `d` ordered
/// thread switches is found by one PCT run with probability at least
/// 1/(threads * steps^(d-1))).
fn explore(scenario: Scenario, schedules: usize) {
    shuttle::check_random(move || run(scenario), schedules);
    shuttle::check_pct(move || run(scenario), schedules, 2);
    shuttle::check_pct(move || run(scenario), schedules, 3);
}

#[test]
fn acknowledged_records_survive_a_power_failure() {
    explore(scenario(2, 1), SCHEDULES);
    explore(scenario(3, 2), SCHEDULES);
    explore(scenario(4, 1), SCHEDULES);
}

#[test]
fn rolling_segments_and_truncation_keep_acknowledged_records() {
    let rolling = Scenario {
        segment_size: 64,
        truncate: true,
        ..scenario(3, 2)
    };
    explore(rolling, SCHEDULES);
}

#[test]
fn a_failed_write_or_sync_wakes_every_waiter_and_acknowledges_nothing_lost() {
    // Operation 1 creates the first segment; the next ones write and sync
    // groups (and, with tiny segments, create more): fail each in turn.
    for op in 1..=8 {
        for segment_size in [64, 64 << 20] {
            let failing = Scenario {
                segment_size,
                fault: Fault::Error(op),
                ..scenario(3, 2)
            };
            explore(failing, SCHEDULES / 20);
        }
    }
}

#[test]
fn a_panicking_sync_thread_degrades_without_hanging_or_losing_records() {
    // Operation 1 writes the first segment's header, 2 syncs it: a panic
    // there leaves a half-created segment that the degraded committers must
    // replace.
    for op in 1..=6 {
        let panicking = Scenario {
            fault: Fault::Panic(op),
            ..scenario(3, 2)
        };
        explore(panicking, SCHEDULES / 20);
    }
}

#[test]
fn appends_blocked_by_a_tiny_queue_cap_are_always_woken() {
    // Records are 20 + 20 bytes: one fits under the cap, two do not.
    assert!(RECORD_HEADER + payload(0, 0).len() <= TINY_CAP);
    assert!(2 * (RECORD_HEADER + payload(0, 0).len()) > TINY_CAP);
    for unwaited in [true, false] {
        let capped = Scenario {
            max_queue_bytes: TINY_CAP,
            unwaited,
            ..scenario(3, 2)
        };
        explore(capped, SCHEDULES);
    }
    // With rolling segments and truncation too.
    let rolling = Scenario {
        segment_size: 64,
        truncate: true,
        max_queue_bytes: TINY_CAP,
        unwaited: true,
        ..scenario(2, 3)
    };
    explore(rolling, SCHEDULES / 2);
}

#[test]
fn a_failure_or_panic_wakes_appenders_blocked_by_the_queue_cap() {
    for op in 1..=6 {
        for fault in [Fault::Error(op), Fault::Panic(op)] {
            let failing = Scenario {
                fault,
                max_queue_bytes: TINY_CAP,
                unwaited: true,
                ..scenario(3, 2)
            };
            explore(failing, SCHEDULES / 20);
        }
    }
}
