//! The WAL's spare thread and its roll under the shuttle schedule
//! explorer. `tests/wal_schedules.rs` never turns spares on
//! (`CrashLogDir::new()` answers `false` to `spare_segments`, and its
//! committers append with `SyncBy::Interval`, which never asks for one), so
//! the hand-over of a spare between the two threads is explored nowhere.
//!
//! The only schedule exploration of the spare hand-over, with acknowledged
//! records checked against a power-cut image at every acknowledgement. The
//! review that wrote it suspected (and did not reach in about 200 000
//! random and PCT schedules, depths 3-6) the interleaving below, which the
//! journal now rules out by construction: a roll that takes the spare
//! clears any request still standing, and `make_spare` never deletes a file
//! by the spare's name (`design/wal.md`, invariant 8).
//!
//! The interleaving: a stale request (`Spare::wanted`, left by a roll that found
//! no spare ready while one was being made) lets the spare thread start the
//! next spare between a roll's `ready.take()` and its `rename`: `make_spare`
//! finds `next-segment.spare` still there, deletes it (the file the roll
//! holds) and creates a new one, which the roll then renames into the
//! segment's name, while it writes the header and the records into the
//! deleted file. Acknowledged records are then in no file.
//!
//! Run: `cargo test --features shuttle --test wal_spare_schedules`.
#![cfg(feature = "shuttle")]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use shuttle::sync::Mutex;
use sluicedb::io::{CrashLogDir, LogDir, StorageBackend, TearMode};
use sluicedb::wal::{self, Journal, JournalOptions, SyncBy};

const DB: u128 = 99;

/// A crash-simulating directory whose every I/O call is a point where
/// shuttle may switch threads, as the OS may preempt a thread at any
/// system call (`CrashLogDir`'s own locks are `parking_lot`'s, invisible to
/// shuttle, so without this a roll's take-rename-header steps run as one).
#[derive(Clone)]
struct Yielding(CrashLogDir);

struct YieldingFile(Box<dyn StorageBackend>);

fn switch() {
    shuttle::thread::yield_now();
}

impl StorageBackend for YieldingFile {
    fn len(&self) -> std::io::Result<u64> {
        self.0.len()
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.0.read(offset, buf)
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        switch();
        self.0.write(offset, data)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        switch();
        self.0.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        switch();
        self.0.sync_data()
    }
    fn preallocate(&self, len: u64) -> std::io::Result<()> {
        switch();
        self.0.preallocate(len)
    }
}

impl LogDir for Yielding {
    fn list(&self) -> std::io::Result<Vec<String>> {
        self.0.list()
    }
    fn create(&self, name: &str) -> std::io::Result<Box<dyn StorageBackend>> {
        switch();
        Ok(Box::new(YieldingFile(self.0.create(name)?)))
    }
    fn open(&self, name: &str) -> std::io::Result<Box<dyn StorageBackend>> {
        Ok(Box::new(YieldingFile(self.0.open(name)?)))
    }
    fn remove(&self, name: &str) -> std::io::Result<()> {
        switch();
        self.0.remove(name)
    }
    fn spare_segments(&self) -> bool {
        true
    }
    fn rename(&self, from: &str, to: &str) -> std::io::Result<()> {
        switch();
        self.0.rename(from, to)
    }
}

fn recover(image: &CrashLogDir) -> BTreeMap<u64, Vec<u8>> {
    let mut records = BTreeMap::new();
    wal::scan(image, DB, (0, 0), 0, |seq, p| {
        records.insert(seq, p.to_vec());
        Ok(())
    })
    .expect("a crash image always reads back");
    records
}

fn payload(i: usize) -> Vec<u8> {
    format!("record {i:04}").into_bytes()
}

/// One committer, durable appends (`SyncBy::Caller`, as a durable commit),
/// segments of two records each: every second append rolls, and from the
/// second roll on each roll asks for a spare.
fn run(records: usize) {
    run_with(records, 112)
}

/// As [`run`], with segments of `segment_size` bytes (80: one record each,
/// so every append rolls).
fn run_with(records: usize, segment_size: u64) {
    let dir = CrashLogDir::new().with_spares(true);
    let options = JournalOptions {
        segment_size,
        first_segment_size: segment_size,
        sync_interval: Duration::from_secs(3600),
        ..JournalOptions::default()
    };
    let (journal, _) = Journal::open(Yielding(dir.clone()), DB, 0, options, |_, _| Ok(())).unwrap();
    let journal = Arc::new(journal);
    let acks = Arc::new(Mutex::new(Vec::<(u64, CrashLogDir)>::new()));
    let committer = {
        let (journal, acks, dir) = (journal.clone(), acks.clone(), dir.clone());
        shuttle::thread::spawn(move || {
            for i in 0..records {
                let Ok(seq) = journal.append_with(&payload(i), SyncBy::Caller) else {
                    return;
                };
                if journal.wait_for_sync(seq).is_err() {
                    return;
                }
                acks.lock().unwrap().push((seq, dir.crash(TearMode::DropAll)));
            }
        })
    };
    committer.join().unwrap();
    let failure = journal.failure();
    let Ok(journal) = Arc::try_unwrap(journal) else {
        panic!("one owner left");
    };
    drop(journal);
    assert!(
        failure.is_none(),
        "no fault was injected, yet the journal failed: {failure:?}"
    );
    for (seq, image) in acks.lock().unwrap().iter() {
        let back = recover(image);
        assert!(
            (1..=*seq).all(|s| back.contains_key(&s)),
            "record {seq} was acknowledged durable, but a power cut then recovers only {:?}",
            back.keys().collect::<Vec<_>>()
        );
    }
    let back = recover(&dir.crash(TearMode::DropAll));
    assert!(
        back.keys().copied().eq(1..=records as u64),
        "after a clean close the log holds {:?}",
        back.keys().collect::<Vec<_>>()
    );
}

#[test]
fn a_spare_handed_to_a_roll_is_never_replaced_under_it_random() {
    shuttle::check_random(|| run(12), 10_000);
}

#[test]
fn a_spare_handed_to_a_roll_is_never_replaced_under_it_pct() {
    shuttle::check_pct(|| run(12), 10_000, 3);
}

#[test]
fn every_append_rolls_pct_deep() {
    for depth in [4, 5] {
        shuttle::check_pct(|| run_with(12, 80), 5_000, depth);
    }
}
