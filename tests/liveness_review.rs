//! Liveness and resource bounds under concurrency through the redb-shaped
//! API (an adversarial review): a thread holding a read transaction (and a
//! live range) that then writes past the frozen-memtable budget,
//! checkpoints, syncs, takes persistent savepoints or makes tree commits;
//! a `PendingCommit` waited on (or polled as a `Future`) while its thread
//! holds the next write transaction, and after the database is dropped or
//! closed; `close` beside threads mid-range and mid-wait; every writer
//! thread of many making progress; readers beside a writer that holds its
//! transaction; memory (memtables, cache) bounded while a long read pins an
//! old state, and released when it ends.
//!
//! Every scenario runs under a watchdog: a hang fails the test instead of
//! stalling CI. No speed is asserted.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use sluicedb::{Builder, Database, Durability, PendingCommit, ReadableDatabase, StorageError, TableDefinition};

const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");
const WATCHDOG: Duration = Duration::from_secs(30);

/// Runs `f` on its own thread; fails if it panics or has not returned
/// within [`WATCHDOG`] (a deadlock or livelock). A hung thread is left
/// behind: the failure ends the test.
fn watchdog<F: FnOnce() + Send + 'static>(name: &str, f: F) {
    let (tx, rx) = mpsc::channel();
    let handle = thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            f();
            let _ = tx.send(());
        })
        .unwrap();
    match rx.recv_timeout(WATCHDOG) {
        Ok(()) => handle.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = handle.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{name}: no progress within {WATCHDOG:?} (deadlock or livelock)")
        }
    }
}

fn value(k: u64, round: u64, len: usize) -> Vec<u8> {
    let mut v = vec![(k ^ round) as u8; len];
    v[..8].copy_from_slice(&round.to_le_bytes());
    v
}

/// Small memtables and a small frozen budget: a few commits freeze a
/// memtable and a few more reach backpressure.
fn tight() -> Builder {
    let mut b = Database::builder();
    b.set_memtable_size(32 << 10).set_max_frozen_bytes(64 << 10);
    b
}

fn write(db: &Database, round: u64, keys: std::ops::Range<u64>, len: usize, durability: Durability) {
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(durability).unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for k in keys {
            t.insert(k, value(k, round, len).as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
}

/// Rounds stored for keys `0..n` as a reader of `db` sees them.
fn rounds(db: &Database) -> BTreeMap<u64, u64> {
    let read = db.begin_read().unwrap();
    let t = read.open_table(T).unwrap();
    t.range::<u64>(..)
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.value(), u64::from_le_bytes(v.value()[..8].try_into().unwrap()))
        })
        .collect()
}

/// A thread that holds a read transaction and a half-consumed range over
/// the first memtables, then itself commits far past the frozen budget
/// (every commit freezes memtables that the held snapshot does not pin, but
/// the first ones it does): each `begin_write` must get through
/// backpressure, and the held range must go on yielding its own snapshot.
#[test]
fn a_reader_thread_writes_past_the_frozen_budget() {
    watchdog("reader writes past budget", || {
        let dir = tempfile::tempdir().unwrap();
        let db = tight().create(dir.path().join("db")).unwrap();
        for r in 0..4 {
            write(&db, r, 0..64, 400, Durability::None);
        }
        let read = db.begin_read().unwrap();
        let table = read.open_table(T).unwrap();
        let mut range = table.range::<u64>(..).unwrap();
        for _ in 0..10 {
            range.next().unwrap().unwrap();
        }
        for r in 4..400 {
            let d = if r % 3 == 0 {
                Durability::Immediate
            } else {
                Durability::None
            };
            write(&db, r, (r * 7 % 64)..(r * 7 % 64 + 32), 400, d);
        }
        // The held range still sees round 3 for every key after the tenth.
        let rest: Vec<_> = range.map(|e| e.unwrap()).collect();
        assert_eq!(rest.len(), 54);
        for (k, v) in &rest {
            assert_eq!(v.value(), value(k.value(), 3, 400).as_slice());
        }
        drop(table);
        drop(read);
        let stats = db.stats();
        assert!(stats.flushes > 0, "no flush ran: {stats:?}");
        db.close().unwrap();
    });
}

/// On one thread that holds a read transaction and a live range: `sync`,
/// `checkpoint`, a write transaction taking a persistent savepoint (which
/// checkpoints), its commit, deleting it, and a tree commit (a transaction
/// big enough to skip the WAL, which checkpoints first) all return; the
/// held snapshot is unchanged.
#[test]
fn a_reader_thread_checkpoints_takes_savepoints_and_makes_tree_commits() {
    watchdog("reader checkpoints", || {
        let dir = tempfile::tempdir().unwrap();
        let mut b = tight();
        b.set_tree_commit_size(256 << 10);
        let db = b.create(dir.path().join("db")).unwrap();
        for r in 0..6 {
            write(&db, r, 0..64, 300, Durability::None);
        }
        let read = db.begin_read().unwrap();
        let table = read.open_table(T).unwrap();
        let mut range = table.range::<u64>(..).unwrap();
        range.next().unwrap().unwrap();

        db.sync().unwrap();
        db.checkpoint().unwrap();
        write(&db, 6, 0..8, 300, Durability::Immediate);
        let txn = db.begin_write().unwrap();
        let id = txn.persistent_savepoint().unwrap();
        txn.commit().unwrap();
        write(&db, 7, 0..16, 300, Durability::None);
        db.checkpoint().unwrap();
        // A tree commit: ~1 MiB in one transaction.
        write(&db, 8, 0..1024, 1000, Durability::Immediate);
        assert!(db.stats().tree_commits > 0, "no tree commit: {:?}", db.stats());
        db.checkpoint().unwrap();
        let txn = db.begin_write().unwrap();
        assert!(txn.delete_persistent_savepoint(id).unwrap());
        txn.commit().unwrap();
        db.checkpoint().unwrap();

        let rest: Vec<_> = range.map(|e| e.unwrap()).collect();
        assert_eq!(rest.len(), 63);
        for (k, v) in &rest {
            assert_eq!(v.value(), value(k.value(), 5, 300).as_slice());
        }
        drop(table);
        drop(read);
        assert_eq!(rounds(&db).values().filter(|&&r| r == 8).count(), 1024);
        db.close().unwrap();
    });
}

/// A `PendingCommit` (Immediate) waited on by the thread that already holds
/// the next write transaction (and a read transaction): `commit_pipelined`
/// returns once the next writer may start, so the wait must not need the
/// writer slot. Also after many pipelined commits past the frozen budget.
#[test]
fn a_pending_commit_waited_while_holding_the_next_write_transaction() {
    watchdog("pending wait holding writer", || {
        let dir = tempfile::tempdir().unwrap();
        let db = tight().create(dir.path().join("db")).unwrap();
        let mut pending: Vec<PendingCommit> = Vec::new();
        for r in 0..200u64 {
            let txn = db.begin_write().unwrap();
            txn.open_table(T)
                .unwrap()
                .insert(r % 50, value(r, r, 500).as_slice())
                .unwrap();
            pending.push(txn.commit_pipelined().unwrap());
            if r % 20 == 19 {
                let read = db.begin_read().unwrap();
                let next = db.begin_write().unwrap();
                next.open_table(T)
                    .unwrap()
                    .insert(1000 + r, value(r, r, 16).as_slice())
                    .unwrap();
                for p in pending.drain(..) {
                    let seq = p.sequence();
                    p.wait().unwrap_or_else(|e| panic!("wait of {seq}: {e}"));
                }
                let p = next.commit_pipelined().unwrap();
                drop(read);
                pending.push(p);
            }
        }
        for p in pending {
            p.wait().unwrap();
        }
        assert_eq!(rounds(&db).len(), 60);
        db.close().unwrap();
    });
}

/// A waker counting its wakes and signalling a channel.
struct Signal(parking_lot::Mutex<Option<mpsc::Sender<()>>>);

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        if let Some(tx) = self.0.lock().as_ref() {
            let _ = tx.send(());
        }
    }
}

/// Polls `p` as a future until ready, parking only on its waker (a lost
/// wakeup hangs, and the watchdog catches it).
fn block_on(mut p: PendingCommit) -> Result<(), StorageError> {
    let (tx, rx) = mpsc::channel();
    let waker = Waker::from(Arc::new(Signal(parking_lot::Mutex::new(Some(tx)))));
    let mut cx = Context::from_waker(&waker);
    loop {
        match Pin::new(&mut p).poll(&mut cx) {
            Poll::Ready(r) => return r,
            Poll::Pending => rx.recv().expect("waker dropped without waking"),
        }
    }
}

/// Pipelined commits whose `PendingCommit`s are awaited only after the
/// database handle is dropped (and, second round, closed): each `wait` and
/// each `.await`-style poll (parking on the waker alone, so a lost wakeup
/// hangs) resolves; those that resolve Ok are there at the next open.
#[test]
fn pending_commits_awaited_after_the_database_is_gone() {
    watchdog("pending after drop", || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        for close in [false, true] {
            let mut b = tight();
            b.set_sync_interval(Duration::from_secs(5));
            let db = b.create(&path).unwrap();
            let mut waits = Vec::new();
            let mut polls = Vec::new();
            for r in 0..40u64 {
                let mut txn = db.begin_write().unwrap();
                if r % 4 == 3 {
                    txn.set_durability(Durability::None).unwrap();
                }
                txn.open_table(T)
                    .unwrap()
                    .insert(r, value(r, r, 200).as_slice())
                    .unwrap();
                let p = txn.commit_pipelined().unwrap();
                if r % 2 == 0 {
                    waits.push((r, p))
                } else {
                    polls.push((r, p))
                }
            }
            if close {
                db.close().unwrap();
            } else {
                drop(db);
            }
            let mut ok = Vec::new();
            for (r, p) in waits {
                if p.wait().is_ok() {
                    ok.push(r);
                }
            }
            let poller = thread::spawn(move || {
                polls
                    .into_iter()
                    .filter_map(|(r, p)| block_on(p).is_ok().then_some(r))
                    .collect::<Vec<_>>()
            });
            ok.extend(poller.join().unwrap());
            let db = Database::open(&path).unwrap();
            let seen = rounds(&db);
            for r in ok {
                assert_eq!(seen.get(&r), Some(&r), "acknowledged commit {r} lost (close: {close})");
            }
            drop(db);
            std::fs::remove_file(&path).unwrap();
        }
    });
}

/// `close` on the owner's thread while one thread is mid-range over a read
/// transaction, another polls a pipelined commit's future, a third waits on
/// a plain `PendingCommit`, and a write transaction is alive on a fourth
/// (close is then refused, and the writer commits after the handle is
/// gone): nobody hangs or panics, every read returns its snapshot's data or
/// an error, and every acknowledged commit is there at the next open.
#[test]
fn close_beside_ranges_pending_waits_and_a_live_writer() {
    watchdog("close beside everyone", || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        for live_writer in [false, true] {
            let db = tight().create(&path).unwrap();
            for r in 0..8 {
                write(&db, r, 0..200, 200, Durability::None);
            }
            let start = Arc::new(Barrier::new(4 + usize::from(live_writer)));
            let read = db.begin_read().unwrap();
            let reader = {
                let start = start.clone();
                thread::spawn(move || {
                    let table = read.open_table(T).unwrap();
                    let range = table.range::<u64>(..).unwrap();
                    start.wait();
                    let mut n = 0;
                    for e in range {
                        match e {
                            Ok((k, v)) => {
                                assert_eq!(v.value(), value(k.value(), 7, 200).as_slice());
                                n += 1;
                            }
                            Err(_) => break,
                        }
                        thread::yield_now();
                    }
                    n
                })
            };
            let spawn_pending = |durability: Durability, poll: bool, r: u64| {
                let mut txn = db.begin_write().unwrap();
                txn.set_durability(durability).unwrap();
                txn.open_table(T)
                    .unwrap()
                    .insert(1000 + r, value(r, r, 200).as_slice())
                    .unwrap();
                let p = txn.commit_pipelined().unwrap();
                let start = start.clone();
                thread::spawn(move || {
                    start.wait();
                    let ok = if poll { block_on(p).is_ok() } else { p.wait().is_ok() };
                    ok.then_some(1000 + r)
                })
            };
            let waiters = [
                spawn_pending(Durability::Immediate, true, 1),
                spawn_pending(Durability::None, false, 2),
            ];
            let writer = live_writer.then(|| {
                let txn = db.begin_write().unwrap();
                let start = start.clone();
                thread::spawn(move || {
                    start.wait();
                    txn.open_table(T)
                        .unwrap()
                        .insert(2000, value(2000, 1, 16).as_slice())
                        .unwrap();
                    thread::sleep(Duration::from_millis(50));
                    txn.commit().is_ok().then_some(2000u64)
                })
            });
            start.wait();
            let closed = db.close();
            if live_writer {
                // Refused while the writer is being built, or Ok if it
                // already committed.
                assert!(closed.is_ok() || matches!(closed, Err(sluicedb::DatabaseError::TransactionInProgress)));
            } else {
                closed.unwrap();
            }
            reader.join().unwrap();
            let mut ok: Vec<u64> = waiters.into_iter().filter_map(|w| w.join().unwrap()).collect();
            if let Some(w) = writer {
                ok.extend(w.join().unwrap());
            }
            let db = Database::open(&path).unwrap();
            let seen = rounds(&db);
            assert_eq!(seen.range(0..200).filter(|(_, r)| **r == 7).count(), 200);
            for k in ok {
                assert!(
                    seen.contains_key(&k),
                    "acknowledged key {k} lost (live writer: {live_writer})"
                );
            }
            drop(db);
            std::fs::remove_file(&path).unwrap();
        }
    });
}

/// Six threads loop `begin_write` + small commits (mostly
/// `Durability::None`, so a thread that just released the writer slot
/// comes straight back for it) and stop only once *every* thread has made
/// `GOAL` commits: a thread starved of the writer slot keeps the others
/// looping until the watchdog fires.
#[test]
fn every_writer_thread_makes_progress() {
    watchdog("writer starvation", || {
        const THREADS: usize = 6;
        const GOAL: u64 = 40;
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(tight().create(dir.path().join("db")).unwrap());
        let counts: Arc<Vec<AtomicU64>> = Arc::new((0..THREADS).map(|_| AtomicU64::new(0)).collect());
        let threads: Vec<_> = (0..THREADS)
            .map(|i| {
                let (db, counts) = (db.clone(), counts.clone());
                thread::spawn(move || {
                    let mut n = 0u64;
                    while counts.iter().any(|c| c.load(Ordering::Relaxed) < GOAL) {
                        let mut txn = db.begin_write().unwrap();
                        let d = if n % 16 == 15 {
                            Durability::Immediate
                        } else {
                            Durability::None
                        };
                        txn.set_durability(d).unwrap();
                        let k = (i as u64) << 32 | n;
                        txn.open_table(T)
                            .unwrap()
                            .insert(k, value(k, n, 64).as_slice())
                            .unwrap();
                        txn.commit().unwrap();
                        n += 1;
                        counts[i].store(n, Ordering::Relaxed);
                    }
                    n
                })
            })
            .collect();
        let made: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let total: u64 = made.iter().sum();
        assert_eq!(rounds(&db).len() as u64, total, "{made:?}");
    });
}

/// A writer thread that holds its transaction (with writes in it) for a
/// long while does not block readers: `begin_read`, reads, ranges, `stats`,
/// `sync` and `checkpoint` on another thread all return while it holds it,
/// and see none of its writes.
#[test]
fn a_slow_writer_blocks_no_reader() {
    watchdog("slow writer", || {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(tight().create(dir.path().join("db")).unwrap());
        for r in 0..6 {
            write(&db, r, 0..64, 500, Durability::None);
        }
        let holding = Arc::new(AtomicBool::new(true));
        let (ready_tx, ready_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let writer = {
            let (db, holding) = (db.clone(), holding.clone());
            thread::spawn(move || {
                let txn = db.begin_write().unwrap();
                {
                    let mut t = txn.open_table(T).unwrap();
                    for k in 0..64 {
                        t.insert(k, value(k, 99, 500).as_slice()).unwrap();
                    }
                }
                ready_tx.send(()).unwrap();
                // Holds the transaction until the readers are done.
                done_rx.recv().unwrap();
                holding.store(false, Ordering::SeqCst);
                txn.commit().unwrap();
            })
        };
        ready_rx.recv().unwrap();
        for _ in 0..50 {
            let seen = rounds(&db);
            assert_eq!(seen.len(), 64);
            assert!(seen.values().all(|&r| r == 5), "an uncommitted write is visible");
            let _ = db.stats();
            db.sync().unwrap();
        }
        db.checkpoint().unwrap();
        assert!(holding.load(Ordering::SeqCst));
        done_tx.send(()).unwrap();
        writer.join().unwrap();
        assert!(rounds(&db).values().all(|&r| r == 99));
    });
}

/// Several writer threads commit far past the frozen budget while a reader
/// thread holds one read transaction (and a live range) over the first
/// state for the whole run: writers stall at most until a flush makes room
/// (a flushed memtable still pinned by the reader must not count against
/// the budget forever), the memtables the engine reports stay within the
/// budget, the page cache within its size, and once the reader ends a
/// compaction is allowed (no token left behind) and brings the file back
/// near the data's size.
#[test]
fn a_long_reader_bounds_memory_to_what_it_pins() {
    watchdog("long reader memory", || {
        const WRITERS: u64 = 3;
        const ROUNDS: u64 = 150;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut b = tight();
        b.set_cache_size(1 << 20);
        let mut db = b.create(&path).unwrap();
        write(&db, 0, 0..256, 300, Durability::Immediate);
        let read = db.begin_read().unwrap();
        let table = read.open_table(T).unwrap();
        let mut range = table.range::<u64>(..).unwrap();
        range.next().unwrap().unwrap();

        let db_arc = Arc::new(db);
        let max_memtables = Arc::new(AtomicU64::new(0));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (db, max_memtables) = (db_arc.clone(), max_memtables.clone());
                thread::spawn(move || {
                    for r in 1..=ROUNDS {
                        let lo = (w * 97 + r * 31) % 256;
                        write(&db, r, lo..(lo + 16).min(256), 1000, Durability::None);
                        let s = db.stats();
                        max_memtables.fetch_max(s.memtable_bytes + s.frozen_bytes, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let stats = db_arc.stats();
        // Budget: the active memtable's limit plus the frozen budget (as
        // scaled with the memtable size) plus one commit's worth of slack,
        // doubled for the accounting's own granularity.
        let scale = stats.memtable_limit.max(32 << 10) / (32 << 10);
        let bound = 2 * (stats.memtable_limit + (64 << 10) * scale + (64 << 10));
        let seen = max_memtables.load(Ordering::Relaxed);
        assert!(
            seen <= bound,
            "memtables reached {seen} bytes (bound {bound}): {stats:?}"
        );
        let cached = db_arc.cache_stats().used_bytes();
        assert!(cached <= 2 << 20, "page cache holds {cached} bytes (size 1 MiB)");

        // The held range still yields the first state.
        for e in range.by_ref() {
            let (k, v) = e.unwrap();
            assert_eq!(v.value(), value(k.value(), 0, 300).as_slice());
        }
        drop(range);
        drop(table);
        drop(read);
        db = Arc::try_unwrap(db_arc).unwrap_or_else(|_| panic!("a handle is left"));
        db.checkpoint().unwrap();
        db.compact().expect("compaction refused after every transaction ended");
        let len = std::fs::metadata(&path).unwrap().len();
        // 256 keys of 1000 bytes: far below 4 MiB even with whole pages
        // per value and the tree's overhead.
        assert!(len < 4 << 20, "file of {len} bytes after compaction");
        let seen = rounds(&db);
        assert_eq!(seen.len(), 256);
        db.close().unwrap();
    });
}

/// An ephemeral savepoint (which pins the snapshot its transaction started
/// from, memtables included) kept alive while another thread commits far
/// past the frozen budget: the writes make progress, and restoring it
/// afterwards brings back exactly its state.
#[test]
fn an_ephemeral_savepoint_held_across_backpressure() {
    watchdog("savepoint across backpressure", || {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(tight().create(dir.path().join("db")).unwrap());
        for r in 0..5 {
            write(&db, r, 0..64, 400, Durability::None);
        }
        let txn = db.begin_write().unwrap();
        let savepoint = txn.ephemeral_savepoint().unwrap();
        txn.commit().unwrap();
        let writer = {
            let db = db.clone();
            thread::spawn(move || {
                for r in 5..300 {
                    write(&db, r, (r % 64)..(r % 64 + 32).min(64), 800, Durability::None);
                }
            })
        };
        writer.join().unwrap();
        assert!(db.stats().flushes > 0);
        let mut txn = db.begin_write().unwrap();
        txn.restore_savepoint(&savepoint).unwrap();
        txn.commit().unwrap();
        drop(savepoint);
        let seen = rounds(&db);
        assert_eq!(seen.len(), 64);
        assert!(seen.values().all(|&r| r == 4), "{seen:?}");
        let mut db = Arc::try_unwrap(db).unwrap_or_else(|_| panic!("a handle is left"));
        db.compact()
            .expect("compaction refused after the savepoint was dropped");
        db.close().unwrap();
    });
}

/// With a read transaction (or a live range of it) held on the calling
/// thread, `compact` and `check_integrity` are refused at once
/// (TransactionInProgress), never waiting for the reader that the caller
/// itself holds; both succeed once it ends.
#[test]
fn compact_with_a_read_on_the_same_thread_is_refused_not_hung() {
    watchdog("compact with own read", || {
        let dir = tempfile::tempdir().unwrap();
        let mut db = tight().create(dir.path().join("db")).unwrap();
        for r in 0..5 {
            write(&db, r, 0..64, 400, Durability::None);
        }
        let read = db.begin_read().unwrap();
        let range = read.open_table(T).unwrap().range::<u64>(..).unwrap();
        drop(read);
        assert!(matches!(
            db.compact(),
            Err(sluicedb::CompactionError::TransactionInProgress)
        ));
        assert!(matches!(
            db.check_integrity(),
            Err(sluicedb::DatabaseError::TransactionInProgress)
        ));
        assert_eq!(range.count(), 64);
        db.compact().unwrap();
        assert!(db.check_integrity().unwrap());
        db.close().unwrap();
    });
}

/// With `Durability::None` commits only and a sync interval of an hour, a
/// thread holding a read transaction writes far past the frozen budget:
/// backpressure must be released by the flushes, not by a WAL sync that
/// only the interval (an hour away) would bring.
#[test]
fn backpressure_does_not_wait_for_the_sync_interval() {
    watchdog("backpressure vs sync interval", || {
        let dir = tempfile::tempdir().unwrap();
        let mut b = tight();
        b.set_sync_interval(Duration::from_secs(3600));
        let db = b.create(dir.path().join("db")).unwrap();
        write(&db, 0, 0..64, 400, Durability::None);
        let read = db.begin_read().unwrap();
        let table = read.open_table(T).unwrap();
        for r in 1..400 {
            write(&db, r, (r % 64)..(r % 64 + 32).min(64), 600, Durability::None);
        }
        let stats = db.stats();
        assert!(stats.stalls + stats.slowdowns > 0, "no backpressure reached: {stats:?}");
        assert_eq!(table.range::<u64>(..).unwrap().count(), 64);
        drop(table);
        drop(read);
        db.close().unwrap();
    });
}

/// On a single backend (volatile WAL: waiting for a durable commit takes a
/// checkpoint), a thread holding a read transaction and then the next write
/// transaction waits on the previous `PendingCommit`, calls `sync`, and
/// takes a persistent savepoint inside the write transaction: each
/// returns, and everything acknowledged is readable afterwards.
#[test]
fn single_backend_waits_and_syncs_while_holding_the_writer() {
    watchdog("single backend holding writer", || {
        let db = tight()
            .create_with_backend(sluicedb::backends::InMemoryBackend::new())
            .unwrap();
        for r in 0..6 {
            write(&db, r, 0..64, 400, Durability::None);
        }
        let read = db.begin_read().unwrap();
        let table = read.open_table(T).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(T)
            .unwrap()
            .insert(100, value(100, 1, 64).as_slice())
            .unwrap();
        let p = txn.commit_pipelined().unwrap();
        let next = db.begin_write().unwrap();
        p.wait().unwrap();
        db.sync().unwrap();
        db.checkpoint().unwrap();
        // Before any table is opened, as redb requires.
        let id = next.persistent_savepoint().unwrap();
        next.open_table(T)
            .unwrap()
            .insert(101, value(101, 1, 64).as_slice())
            .unwrap();
        next.commit().unwrap();
        let txn = db.begin_write().unwrap();
        assert!(txn.delete_persistent_savepoint(id).unwrap());
        txn.commit().unwrap();
        assert_eq!(table.range::<u64>(..).unwrap().count(), 64);
        drop(table);
        drop(read);
        let seen = rounds(&db);
        assert_eq!(seen.len(), 66);
        db.close().unwrap();
    });
}

/// A `Durability::None` commit's future, polled (and pending) before the
/// handle is closed or dropped on another thread, is woken and resolves:
/// no wakeup is lost when the engine shuts down.
#[test]
fn a_pending_future_polled_before_close_is_woken() {
    watchdog("future across close", || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        for close in [false, true] {
            let mut b = tight();
            b.set_sync_interval(Duration::from_secs(3600));
            let db = b.create(&path).unwrap();
            let mut pendings = Vec::new();
            for r in 0..20u64 {
                let mut txn = db.begin_write().unwrap();
                txn.set_durability(Durability::None).unwrap();
                txn.open_table(T)
                    .unwrap()
                    .insert(r, value(r, r, 300).as_slice())
                    .unwrap();
                pendings.push(txn.commit_pipelined().unwrap());
            }
            let (polled_tx, polled_rx) = mpsc::channel();
            let poller = thread::spawn(move || {
                let (tx, rx) = mpsc::channel();
                let waker = Waker::from(Arc::new(Signal(parking_lot::Mutex::new(Some(tx)))));
                let mut cx = Context::from_waker(&waker);
                let mut results = Vec::new();
                let mut first = true;
                for mut p in pendings {
                    loop {
                        let polled = Pin::new(&mut p).poll(&mut cx);
                        if first {
                            first = false;
                            polled_tx.send(()).unwrap();
                        }
                        match polled {
                            Poll::Ready(r) => {
                                results.push(r.is_ok());
                                break;
                            }
                            Poll::Pending => rx.recv().unwrap(),
                        }
                    }
                }
                results
            });
            polled_rx.recv().unwrap();
            if close {
                db.close().unwrap();
            } else {
                drop(db);
            }
            let results = poller.join().unwrap();
            assert_eq!(results.len(), 20);
            let db = Database::open(&path).unwrap();
            let seen = rounds(&db);
            for (r, ok) in results.iter().enumerate() {
                if *ok {
                    assert_eq!(seen.get(&(r as u64)), Some(&(r as u64)));
                }
            }
            drop(db);
            std::fs::remove_file(&path).unwrap();
        }
    });
}
