//! Spare segments (`LogDir::spare_segments`, journal invariant 8): a busy log
//! whose committers wait for their records rolls into segments written as
//! zeros ahead of time, off the commit path. A power cut at any step of
//! making or using a spare loses no synced record, a spare that cannot be
//! made costs the log nothing, a log nobody waits for makes none, a spare
//! left behind is never read and is deleted by the next open, and a closed
//! database keeps none.

use std::io;
use std::time::{Duration, Instant};

use sluicedb::io::{CrashLogDir, LogDir, StorageBackend, TearMode};
use sluicedb::wal::{Journal, JournalOptions, SyncBy};
use sluicedb::{Database, ReadableDatabase, ReadableTableMetadata, TableDefinition};

const DB: u128 = 7;
const SPARE: &str = "next-segment.spare";

/// Segments of 1 KiB, then 2 KiB, then 4 KiB: a few records fill one.
fn small() -> JournalOptions {
    JournalOptions {
        segment_size: 4096,
        first_segment_size: 1024,
        ..JournalOptions::default()
    }
}

/// Opens the journal in `dir`, returning the sequence numbers it replayed.
fn open(dir: impl LogDir) -> (Journal, Vec<u64>) {
    let mut seqs = Vec::new();
    let (journal, _) = Journal::open(dir, DB, 0, small(), |seq, _| {
        seqs.push(seq);
        Ok(())
    })
    .unwrap();
    (journal, seqs)
}

fn record(i: u64) -> Vec<u8> {
    format!("record {i:06} {}", "s".repeat(60)).into_bytes()
}

/// Appends a record its caller waits for next, as a durable commit does.
fn append_awaited(journal: &Journal, i: u64) -> u64 {
    let seq = journal.append_with(&record(i), SyncBy::Caller).unwrap();
    journal.wait_for_sync(seq).unwrap();
    seq
}

/// Appends durably until `n` segments have been made from spares, pausing
/// after each roll so the spare thread can finish the next spare; returns
/// the last sequence number appended.
fn roll_into_spares(journal: &Journal, n: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = 0;
    let mut segments = journal.metrics().segments_created;
    while journal.metrics().segments_from_spares < n {
        assert!(Instant::now() < deadline, "no spare was used: {:?}", journal.metrics());
        last = append_awaited(journal, last + 1);
        let created = journal.metrics().segments_created;
        if created != segments {
            segments = created;
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    last
}

#[test]
fn a_busy_log_rolls_into_spares_and_recovers_every_record() {
    let dir = CrashLogDir::new().with_spares(true);
    let (journal, _) = open(dir.clone());
    let last = roll_into_spares(&journal, 3);
    let metrics = journal.metrics();
    assert_eq!(metrics.spare_failures, 0, "{metrics:?}");
    // A crash now: what was synced stays, the spare is ignored, then deleted.
    let crashed = dir.crash(TearMode::DropAll);
    drop(journal);
    assert!(
        !dir.list().unwrap().contains(&SPARE.to_string()),
        "a closed log keeps no spare"
    );
    let (journal, seqs) = open(crashed.clone());
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>());
    assert!(
        !crashed.list().unwrap().contains(&SPARE.to_string()),
        "the open deletes a spare a crash left"
    );
    assert_eq!(journal.append(b"after the crash").unwrap(), last + 1);
}

/// The spare is made of zeros, so a segment made from one ends where its
/// records end: nothing of an earlier spare or segment shows through.
#[test]
fn a_segment_made_from_a_spare_reads_as_zeros_past_its_records() {
    let dir = CrashLogDir::new().with_spares(true);
    let (journal, _) = open(dir.clone());
    roll_into_spares(&journal, 1);
    let active = journal.segments().last().unwrap().clone();
    let bytes = dir.file_bytes(&active).unwrap();
    assert_eq!(bytes.len(), 4096, "a spare has the size its roll asked for");
    let end = bytes.iter().rposition(|&b| b != 0).unwrap();
    assert!(end < 1024, "records fill the start of the segment only (end {end})");
}

#[test]
fn a_power_cut_at_any_step_loses_no_synced_record() {
    for cut in 1..60 {
        for mode in [TearMode::DropAll, TearMode::Random(cut)] {
            let dir = CrashLogDir::new().with_spares(true);
            let (journal, _) = open(dir.clone());
            let warm = roll_into_spares(&journal, 1);
            // Keep appending until the power goes, `cut` operations on:
            // rolls, spares being written, renames and header syncs fall
            // at every point of that sequence across the cuts.
            dir.cut_power_after(dir.ops() + cut);
            let mut acknowledged = warm;
            for i in warm + 1..warm + 400 {
                let Ok(seq) = journal.append_with(&record(i), SyncBy::Caller) else {
                    break;
                };
                if journal.wait_for_sync(seq).is_err() {
                    break;
                }
                acknowledged = seq;
            }
            let crashed = dir.crash(mode);
            drop(journal);
            let (journal, seqs) = open(crashed);
            assert!(
                seqs.len() as u64 >= acknowledged,
                "cut {cut} {mode:?}: {} records back, {acknowledged} acknowledged",
                seqs.len()
            );
            assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "cut {cut}");
            let seq = journal.append(b"after").unwrap();
            journal.wait_for_sync(seq).unwrap();
        }
    }
}

/// Records nobody waits for (`Durability::None`, pipelined commits) are
/// synced in the background, where a faster sync gains nothing: such a log
/// rolls into holes and writes no spare. A waited-for record turns spares
/// back on from the next roll.
#[test]
fn a_log_nobody_waits_for_makes_no_spares() {
    let dir = CrashLogDir::new().with_spares(true);
    let (journal, _) = open(dir.clone());
    let mut last = 0;
    while journal.metrics().segments_created < 8 {
        last = journal.append(&record(last + 1)).unwrap();
        journal.sync().unwrap();
        // Time for a spare thread that was asked to make one.
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(journal.metrics().segments_from_spares, 0);
    assert!(!dir.list().unwrap().contains(&SPARE.to_string()));
    roll_into_spares(&journal, 1);
}

/// A directory whose spares cannot be made: the disk is full for them.
#[derive(Clone)]
struct NoRoomForSpares(CrashLogDir);

impl LogDir for NoRoomForSpares {
    fn list(&self) -> io::Result<Vec<String>> {
        self.0.list()
    }
    fn create(&self, name: &str) -> io::Result<Box<dyn StorageBackend>> {
        if name == SPARE {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "no room for a spare"));
        }
        self.0.create(name)
    }
    fn open(&self, name: &str) -> io::Result<Box<dyn StorageBackend>> {
        self.0.open(name)
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.0.remove(name)
    }
    fn spare_segments(&self) -> bool {
        true
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.0.rename(from, to)
    }
}

#[test]
fn a_spare_that_cannot_be_made_costs_the_log_nothing() {
    let dir = CrashLogDir::new();
    let (journal, _) = open(NoRoomForSpares(dir.clone()));
    let mut last = 0;
    while journal.metrics().spare_failures == 0 || journal.metrics().segments_created < 6 {
        last = append_awaited(&journal, last + 1);
        assert!(last < 10_000, "no spare was attempted: {:?}", journal.metrics());
    }
    let metrics = journal.metrics();
    assert_eq!(metrics.segments_from_spares, 0);
    assert!(
        metrics
            .last_spare_error
            .as_deref()
            .is_some_and(|e| e.contains("no room")),
        "{metrics:?}"
    );
    drop(journal);
    let (_, seqs) = open(dir);
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>());
}

const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");

fn has_spare(wal: &std::path::Path) -> bool {
    wal.join(SPARE).exists()
}

/// On disk: a database that writes megabytes of log keeps a spare beside
/// its segments while open and none once closed; a spare left behind (as
/// by a crash) is not read by a read-only open and is deleted by the next
/// writable one.
#[test]
fn a_database_on_disk_keeps_a_spare_only_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let wal = dir.path().join("db-wal");
    let db = Database::create(&path).unwrap();
    // Past the 1 and 2 MiB segments: the roll into the 2 MiB one asks for a
    // spare for the next.
    let value = vec![3u8; 64 << 10];
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut i = 0u64;
    while !has_spare(&wal) {
        assert!(Instant::now() < deadline, "no spare appeared in {}", wal.display());
        let txn = db.begin_write().unwrap();
        txn.open_table(T).unwrap().insert(i, value.as_slice()).unwrap();
        txn.commit().unwrap();
        i += 1;
    }
    // An operator sees the spares in the database's counters.
    let deadline = Instant::now() + Duration::from_secs(30);
    while db.stats().wal_segments_from_spares == 0 {
        assert!(Instant::now() < deadline, "no roll took the spare: {:?}", db.stats());
        let txn = db.begin_write().unwrap();
        txn.open_table(T).unwrap().insert(i, value.as_slice()).unwrap();
        txn.commit().unwrap();
        i += 1;
    }
    let stats = db.stats();
    assert_eq!((stats.wal_spare_failures, stats.wal_last_spare_error), (0, None));
    drop(db);
    assert!(!has_spare(&wal), "a closed database keeps no spare");

    // A spare a crash left, half written: ignored, then deleted.
    std::fs::write(wal.join(SPARE), vec![0xA5u8; 12345]).unwrap();
    let read_only = Database::builder().open_read_only(&path).unwrap();
    let rtxn = read_only.begin_read().unwrap();
    assert_eq!(rtxn.open_table(T).unwrap().len().unwrap(), i);
    drop(rtxn);
    drop(read_only);
    assert!(has_spare(&wal), "a read-only open changes nothing on disk");
    let db = Database::open(&path).unwrap();
    assert!(!has_spare(&wal), "a writable open deletes a leftover spare");
    let rtxn = db.begin_read().unwrap();
    assert_eq!(rtxn.open_table(T).unwrap().len().unwrap(), i);
}
