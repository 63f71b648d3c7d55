//! The WAL queue's byte cap (`JournalOptions::max_queue_bytes`): appends
//! wait once the queued-but-unwritten bytes reach it and resume when the
//! sync thread has written them; a failure while they wait is returned to
//! them; a record larger than the cap still goes through; and a checkpoint
//! that wants the engine's commit lock while a committer waits in its append
//! (holding that lock) does not deadlock.
//!
//! A gated log directory holds the log's record writes back: every write
//! past a segment's header waits at the gate while it is closed. Nothing
//! here asserts on the clock: "blocked" is proven by what the gate sees (the
//! sync thread writes only when an appender, stalled, asked it to: the sync
//! interval is an hour and nobody waits for durability).

use std::io;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use sluicedb::StorageError;
use sluicedb::btree::bytewise;
use sluicedb::engine::{Durability, Engine, EngineOptions};
use sluicedb::io::{LogDir, MemLogDir, MemoryBackend, StorageBackend};
use sluicedb::wal::{Journal, JournalOptions};

const DB: u128 = 0xCA9;
/// Record header bytes (sequence, length, checksum) before each payload.
const HEADER: usize = 20;

#[derive(Default)]
struct GateState {
    closed: bool,
    /// Once opened with a failure, every held and later write fails.
    fail: bool,
    /// Writes waiting at the gate now.
    held: u64,
}

#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

impl Gate {
    fn close(&self) {
        self.state.lock().closed = true;
    }

    fn open(&self, fail: bool) {
        let mut s = self.state.lock();
        s.closed = false;
        s.fail |= fail;
        self.changed.notify_all();
    }

    /// Waits until a write is held at the gate.
    fn wait_held(&self) {
        let mut s = self.state.lock();
        while s.held == 0 {
            self.changed.wait(&mut s);
        }
    }

    fn pass(&self) -> io::Result<()> {
        let mut s = self.state.lock();
        if s.closed {
            s.held += 1;
            self.changed.notify_all();
            while s.closed {
                self.changed.wait(&mut s);
            }
            s.held -= 1;
        }
        if s.fail {
            return Err(io::Error::other("injected write failure at the gate"));
        }
        Ok(())
    }
}

/// A [`MemLogDir`] whose record writes wait at a [`Gate`].
#[derive(Clone, Default)]
struct GatedDir {
    inner: MemLogDir,
    gate: Arc<Gate>,
}

struct GatedFile {
    inner: Box<dyn StorageBackend>,
    gate: Arc<Gate>,
}

impl StorageBackend for GatedFile {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read(offset, buf)
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        // Offset 0 is a new segment's header: only records are held back.
        if offset > 0 {
            self.gate.pass()?;
        }
        self.inner.write(offset, data)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()
    }
}

impl LogDir for GatedDir {
    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }

    fn create(&self, name: &str) -> io::Result<Box<dyn StorageBackend>> {
        let inner = self.inner.create(name)?;
        Ok(Box::new(GatedFile {
            inner,
            gate: self.gate.clone(),
        }))
    }

    fn open(&self, name: &str) -> io::Result<Box<dyn StorageBackend>> {
        let inner = self.inner.open(name)?;
        Ok(Box::new(GatedFile {
            inner,
            gate: self.gate.clone(),
        }))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        self.inner.remove(name)
    }
}

/// Only backpressure makes the sync thread write: no interval syncs.
fn capped(max_queue_bytes: usize) -> JournalOptions {
    JournalOptions {
        sync_interval: Duration::from_secs(3600),
        max_queue_bytes,
        ..JournalOptions::default()
    }
}

fn payload(i: usize, len: usize) -> Vec<u8> {
    let mut p = format!("record {i} ").into_bytes();
    p.resize(len, b'.');
    p
}

/// Every record a reopen of `dir` replays.
fn recover(dir: &MemLogDir) -> Vec<(u64, Vec<u8>)> {
    let mut records = Vec::new();
    let (journal, _) = Journal::open(dir.clone(), DB, 0, JournalOptions::default(), |seq, p| {
        records.push((seq, p.to_vec()));
        Ok(())
    })
    .unwrap();
    drop(journal);
    records
}

/// Runs `f` on a thread and fails the test, rather than hanging it, if it
/// does not finish: a deadlock would otherwise look like a slow test.
fn finishes<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("{what} did not finish: deadlocked"))
}

#[test]
fn appends_block_at_the_cap_and_resume_when_the_writes_proceed() {
    const RECORD: usize = 100;
    const CAP: usize = 10 * RECORD;
    const RECORDS: usize = 40;
    let dir = GatedDir::default();
    dir.gate.close();
    let (journal, _) = Journal::open(dir.clone(), DB, 0, capped(CAP), |_, _| Ok(())).unwrap();
    let journal = Arc::new(journal);
    let appender = {
        let journal = journal.clone();
        thread::spawn(move || {
            for i in 0..RECORDS {
                journal.append(&payload(i, RECORD - HEADER)).unwrap();
            }
        })
    };
    // The sync thread writes only once the 11th append stalled and asked it
    // to; the write it took (the first ten records) is now held.
    dir.gate.wait_held();
    let held = journal.metrics();
    assert_eq!(journal.last_seq(), 10, "exactly the records that fit were admitted");
    assert_eq!(held.queue_bytes, CAP as u64, "{held:?}");
    // However long we look, nothing more fits while the write is held.
    for _ in 0..50 {
        thread::yield_now();
        let m = journal.metrics();
        assert_eq!(journal.last_seq(), 10);
        assert!(m.queue_bytes <= CAP as u64, "{m:?}");
    }
    dir.gate.open(false);
    let mut max_seen = 0;
    while !appender.is_finished() {
        max_seen = max_seen.max(journal.metrics().queue_bytes);
        thread::yield_now();
    }
    appender.join().unwrap();
    assert!(
        max_seen <= CAP as u64,
        "the queue held {max_seen} bytes, over the cap {CAP}"
    );
    let m = journal.metrics();
    assert!(m.queue_stalls >= 1, "{m:?}");
    eprintln!(
        "cap {CAP} B, {RECORDS} records of {RECORD} B: {} stalls, {} us stalled, max queue seen {max_seen} B",
        m.queue_stalls, m.queue_stall_micros
    );
    journal.sync().unwrap();
    drop(Arc::try_unwrap(journal).ok().expect("the appender joined"));
    let records = recover(&dir.inner);
    assert_eq!(records.len(), RECORDS);
    for (i, (seq, p)) in records.into_iter().enumerate() {
        assert_eq!((seq, p), (i as u64 + 1, payload(i, RECORD - HEADER)));
    }
}

#[test]
fn a_failure_while_blocked_returns_the_error_to_the_blocked_appender() {
    const RECORD: usize = 64;
    const CAP: usize = 4 * RECORD;
    let dir = GatedDir::default();
    dir.gate.close();
    let (journal, _) = Journal::open(dir.clone(), DB, 0, capped(CAP), |_, _| Ok(())).unwrap();
    let journal = Arc::new(journal);
    for i in 0..4 {
        journal.append(&payload(i, RECORD - HEADER)).unwrap();
    }
    let blocked = {
        let journal = journal.clone();
        thread::spawn(move || journal.append(&payload(4, RECORD - HEADER)))
    };
    // Held write => the fifth append stalled (it is what asked for it).
    dir.gate.wait_held();
    dir.gate.open(true);
    let err = finishes("the blocked append", move || blocked.join().unwrap()).expect_err("the write failed");
    // It was under way when the write failed: it gets the I/O error itself.
    assert!(matches!(err, StorageError::Io(_)), "{err}");
    assert!(err.to_string().contains("injected"), "{err}");
    let m = journal.metrics();
    assert_eq!(m.queue_stalls, 1, "{m:?}");
    assert!(journal.failure().is_some());
    assert_eq!(journal.last_seq(), 4, "the blocked record was never admitted");
    // And every later append fails at once, never waits.
    assert!(matches!(journal.append(b"later"), Err(StorageError::PreviousIo)));
}

#[test]
fn a_record_larger_than_the_cap_goes_through() {
    const CAP: usize = 256;
    let dir = GatedDir::default();
    let (journal, _) = Journal::open(dir.clone(), DB, 0, capped(CAP), |_, _| Ok(())).unwrap();
    let big = payload(1, 10 * CAP);
    // Nothing queued: the big record is admitted at once.
    let first = journal.append(&big).unwrap();
    assert_eq!(journal.metrics().queue_stalls, 0);
    assert_eq!(journal.metrics().queue_bytes, (10 * CAP + HEADER) as u64);
    // A small one now waits for the big one to be written...
    journal.append(b"small").unwrap();
    assert_eq!(journal.metrics().queue_stalls, 1);
    // ... and a big one behind a small one waits for the small one.
    let last = journal.append(&big).unwrap();
    assert_eq!(journal.metrics().queue_stalls, 2);
    journal.wait_for_sync(last).unwrap();
    drop(journal);
    let records = recover(&dir.inner);
    let lens: Vec<usize> = records.iter().map(|(_, p)| p.len()).collect();
    assert_eq!(lens, vec![10 * CAP, 5, 10 * CAP]);
    assert_eq!(records[0], (first, big));
}

#[test]
fn a_zero_cap_passes_one_record_at_a_time() {
    let dir = GatedDir::default();
    let (journal, _) = Journal::open(dir.clone(), DB, 0, capped(0), |_, _| Ok(())).unwrap();
    for i in 0..20 {
        journal.append(&payload(i, 30)).unwrap();
        assert!(journal.metrics().queue_bytes <= (30 + HEADER) as u64);
    }
    assert_eq!(journal.metrics().queue_stalls, 19);
    journal.sync().unwrap();
    drop(journal);
    assert_eq!(recover(&dir.inner).len(), 20);
}

/// The deadlock argument beside `Journal::append`'s wait, exercised: a
/// committer stalls in its append holding the engine's commit lock; a
/// checkpoint then wants that lock (to freeze the active memtable). The
/// sync thread needs neither lock, so once the disk moves everything
/// finishes.
#[test]
fn a_checkpoint_does_not_deadlock_against_a_committer_blocked_in_its_append() {
    const CAP: usize = 2048;
    const COMMITS: u64 = 200;
    let dir = GatedDir::default();
    dir.gate.close();
    let options = EngineOptions {
        max_wal_queue_bytes: CAP,
        sync_interval: Duration::from_secs(3600),
        ..EngineOptions::default()
    };
    let db = Arc::new(Engine::open(MemoryBackend::new(), dir.clone(), options).unwrap());
    let writer = {
        let db = db.clone();
        thread::spawn(move || -> Result<(), StorageError> {
            for i in 0..COMMITS {
                let mut w = db.begin_write()?;
                w.set_durability(Durability::None);
                let t = w.open_table(b"t", b"bytes", bytewise)?;
                w.insert(t, &i.to_be_bytes(), &[9u8; 100])?;
                w.commit()?;
            }
            Ok(())
        })
    };
    // Nothing waits for durability and memtables do not fill: the held
    // write is the one the stalled committer asked for. It holds the commit
    // lock until the gate opens.
    dir.gate.wait_held();
    let stalled = db.stats();
    assert!(stalled.wal_queue_bytes <= CAP as u64, "{stalled:?}");
    let checkpointer = {
        let db = db.clone();
        thread::spawn(move || db.checkpoint())
    };
    // Give the checkpoint time to queue on the commit lock (not asserted:
    // finishing is what matters, in either order).
    thread::sleep(Duration::from_millis(50));
    dir.gate.open(false);
    finishes("the writer", move || writer.join().unwrap()).unwrap();
    finishes("the checkpoint", move || checkpointer.join().unwrap()).unwrap();
    let stats = db.stats();
    assert!(stats.wal_queue_stalls >= 1, "{stats:?}");
    assert!(stats.checkpoints >= 1, "{stats:?}");
    eprintln!(
        "engine: cap {CAP} B, {COMMITS} commits: {} stalls, {} us stalled",
        stats.wal_queue_stalls, stats.wal_queue_stall_micros
    );
    let txn = db.begin_read().unwrap();
    let t = txn.open_table(b"t", bytewise).unwrap().unwrap();
    let all = txn.range(&t, std::ops::Bound::Unbounded, std::ops::Bound::Unbounded);
    assert_eq!(all.unwrap().count(), COMMITS as usize);
}
