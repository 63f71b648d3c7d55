//! Concurrent use of the public API (an adversarial review's, fifty-fourth
//! session: it found that a `'static` range of a `ReadOnlyTable` did not
//! keep its snapshot live, so `compact` ran beside it): many threads
//! sharing one `Database` through an `Arc` (writer, snapshot readers,
//! `ReadOnlyTable`s outliving their transaction, online backups,
//! persistent savepoints, checkpoints), the last handle dropped under live
//! readers, compaction and close beside a writer on another thread, many
//! concurrent `begin_write` callers, panicking readers and writers, and
//! `Durability::None` commits from many threads before a clean close.
//! Every scenario runs under a watchdog that turns a deadlock into a failure.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::Duration;

use sluicedb::{
    CompactionError, Database, DatabaseError, Durability, ReadOnlyTable, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, TableDefinition, TableHandle,
};

const DATA: TableDefinition<u64, &[u8]> = TableDefinition::new("data");
const MIRROR: TableDefinition<u64, u64> = TableDefinition::new("mirror");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const CHURN: TableDefinition<u64, &[u8]> = TableDefinition::new("churn");
const CHURN_OLD: TableDefinition<u64, &[u8]> = TableDefinition::new("churn_old");
const CHURN_KEYS: u64 = 300;

const WATCHDOG: Duration = Duration::from_secs(60);

/// Runs `f` on its own thread; fails if it panics or has not returned
/// within the watchdog's limit (a deadlock).
fn watchdog<F: FnOnce() + Send + 'static>(name: &str, f: F) {
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(()) => handle.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(e) = handle.join() {
                std::panic::resume_unwind(e);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{name}: no progress within {WATCHDOG:?} (deadlock?)"),
    }
}

/// The value of key `k` as written by the commit that set the count to `n`.
fn value(k: u64, n: u64) -> Vec<u8> {
    let mut v = k.to_le_bytes().to_vec();
    v.extend_from_slice(&n.to_le_bytes());
    v.resize(48 + (k % 7) as usize * 16, (k % 251) as u8);
    v
}

/// A consistent state: META n = count, seq; DATA holds keys 1..=n with
/// `value(k, w)` for some writer count `w >= k` (the count when key k was
/// last written), and MIRROR[k] = w for the same `w`. Returns (n, seq).
/// Any partial transaction breaks one of these: each commit rewrites the
/// last key and the mirror and count together.
fn check_state(
    meta: &impl ReadableTable<&'static str, u64>,
    data: &impl ReadableTable<u64, &'static [u8]>,
    mirror: &impl ReadableTable<u64, u64>,
) -> Result<(u64, u64), String> {
    let n = meta.get("n").map_err(|e| e.to_string())?.map_or(0, |v| v.value());
    let seq = meta.get("seq").map_err(|e| e.to_string())?.map_or(0, |v| v.value());
    let sum = meta.get("sum").map_err(|e| e.to_string())?.map_or(0, |v| v.value());
    let mut count = 0;
    let mut total = 0u64;
    let mut mirror_iter = mirror.iter().map_err(|e| e.to_string())?;
    for entry in data.iter().map_err(|e| e.to_string())? {
        let (k, v) = entry.map_err(|e| e.to_string())?;
        let k = k.value();
        count += 1;
        if k != count {
            return Err(format!("key {k} where {count} expected (n = {n})"));
        }
        let (mk, mv) = mirror_iter
            .next()
            .ok_or(format!("mirror lacks key {k}"))?
            .map_err(|e| e.to_string())?;
        let (mk, w) = (mk.value(), mv.value());
        if mk != k || v.value() != value(k, w).as_slice() {
            return Err(format!("key {k} (mirror {mk} -> {w}) holds a value of another commit"));
        }
        total = total.wrapping_add(w);
    }
    if mirror_iter.next().is_some() {
        return Err("mirror has more keys than data".into());
    }
    if count != n {
        return Err(format!("count {n} but {count} keys"));
    }
    if total != sum {
        return Err(format!("sum {sum} but the mirror adds up to {total}"));
    }
    Ok((n, seq))
}

fn check_db(db: &Database) -> Result<(u64, u64), String> {
    let read = db.begin_read().map_err(|e| e.to_string())?;
    let meta = match read.open_table(META) {
        Ok(t) => t,
        Err(sluicedb::TableError::TableDoesNotExist(_)) => return Ok((0, 0)),
        Err(e) => return Err(e.to_string()),
    };
    let data = read.open_table(DATA).map_err(|e| e.to_string())?;
    let mirror = read.open_table(MIRROR).map_err(|e| e.to_string())?;
    check_state(&meta, &data, &mirror)
}

/// One commit of the model: count n -> n + 1, rewriting key n + 1 and (when
/// there is one) key `n / 2 + 1`; seq + 1. Returns the new seq.
fn model_commit(db: &Database, durability: Durability) -> u64 {
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(durability).unwrap();
    let seq;
    {
        let mut meta = txn.open_table(META).unwrap();
        let mut data = txn.open_table(DATA).unwrap();
        let mut mirror = txn.open_table(MIRROR).unwrap();
        let n = meta.get("n").unwrap().map_or(0, |v| v.value());
        seq = meta.get("seq").unwrap().map_or(0, |v| v.value()) + 1;
        let mut sum = meta.get("sum").unwrap().map_or(0, |v| v.value());
        let w = n + 1;
        for k in [w, n / 2 + 1] {
            let old = mirror.insert(k, w).unwrap().map(|g| g.value());
            sum = sum.wrapping_add(w).wrapping_sub(old.unwrap_or(0));
            data.insert(k, value(k, w).as_slice()).unwrap();
        }
        meta.insert("n", w).unwrap();
        meta.insert("seq", seq).unwrap();
        meta.insert("sum", sum).unwrap();
    }
    txn.commit().unwrap();
    seq
}

/// A table churned whole: keys 0..CHURN_KEYS, all of one generation.
fn check_churn(t: &impl ReadableTable<u64, &'static [u8]>) -> Result<u64, String> {
    let mut generation = None;
    let mut count = 0;
    for entry in t.iter().map_err(|e| e.to_string())? {
        let (k, v) = entry.map_err(|e| e.to_string())?;
        let (k, v) = (k.value(), v.value());
        if k != count {
            return Err(format!("churn key {k} where {count} expected"));
        }
        let g = u64::from_le_bytes(v[8..16].try_into().unwrap());
        if *generation.get_or_insert(g) != g || v != value(k, g).as_slice() {
            return Err(format!("churn key {k}: generation {g} beside {generation:?}"));
        }
        count += 1;
    }
    if count != CHURN_KEYS || t.len().map_err(|e| e.to_string())? != CHURN_KEYS {
        return Err(format!("churn table has {count} keys"));
    }
    Ok(generation.unwrap())
}

/// Deletes, renames or rewrites the churned tables (generation `g`).
fn churn(db: &Database, g: u64) {
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(if g.is_multiple_of(2) {
        Durability::None
    } else {
        Durability::Immediate
    })
    .unwrap();
    match g % 3 {
        0 => {
            txn.delete_table(CHURN).unwrap();
        }
        1 => {
            txn.delete_table(CHURN_OLD).unwrap();
            if txn.delete_table(CHURN_OLD).unwrap() {
                panic!("deleted twice");
            }
            let exists = txn.list_tables().unwrap().any(|h| h.name() == "churn");
            if exists {
                txn.rename_table(CHURN, CHURN_OLD).unwrap();
            }
        }
        _ => {}
    }
    {
        let mut t = txn.open_table(CHURN).unwrap();
        for k in 0..CHURN_KEYS {
            t.insert(k, value(k, g).as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
}

fn small_db(path: &Path) -> Database {
    let mut b = Database::builder();
    b.set_memtable_size(16 << 10).set_cache_size(256 << 10);
    b.create(path).unwrap()
}

enum Sp {
    Persistent(u64),
    Ephemeral(sluicedb::Savepoint),
}

/// A snapshot (and tables kept past their transaction) taken now.
struct Held {
    seq_floor: u64,
    first: (u64, u64),
    meta: ReadOnlyTable<&'static str, u64>,
    data: ReadOnlyTable<u64, &'static [u8]>,
    mirror: ReadOnlyTable<u64, u64>,
    churn: Vec<(u64, ReadOnlyTable<u64, &'static [u8]>)>,
}

/// The writer commits (mixed durability) while readers hold snapshots and
/// `ReadOnlyTable`s across many commits, a thread backs up repeatedly, a
/// thread creates / restores / deletes persistent savepoints, and a thread
/// checkpoints. Every snapshot is a consistent state no older than the last
/// commit acknowledged before it began, and stays the same while held;
/// every backup opens consistent with integrity clean.
#[test]
fn writer_readers_backups_savepoints_checkpoints_together() {
    watchdog("stress", || {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(small_db(&dir.path().join("db")));
        // The highest seq acknowledged by a returned commit.
        let acked = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        // Work done: reader rounds, backups, savepoint operations, checkpoints.
        let done: Arc<[AtomicU64; 4]> = Arc::new(Default::default());
        let mut threads = Vec::new();

        // Writer: goes on until every other thread has done enough.
        let writer = {
            let (db, acked, stop, done) = (db.clone(), acked.clone(), stop.clone(), done.clone());
            thread::spawn(move || {
                let enough = [400, 15, 40, 100];
                let mut i = 0u64;
                while i < 300 || (i < 20_000 && (0..4).any(|j| done[j].load(Ordering::SeqCst) < enough[j])) {
                    let d = if i.is_multiple_of(3) {
                        Durability::Immediate
                    } else {
                        Durability::None
                    };
                    let seq = model_commit(&db, d);
                    acked.fetch_max(seq, Ordering::SeqCst);
                    if i % 4 == 3 {
                        churn(&db, i);
                    }
                    i += 1;
                }
                stop.store(true, Ordering::SeqCst);
                (i, std::array::from_fn::<u64, 4, _>(|j| done[j].load(Ordering::SeqCst)))
            })
        };
        // Readers: hold up to four snapshots (tables kept past the
        // transaction) across commits, rechecking each.
        for r in 0..2u64 {
            let (db, acked, stop, done) = (db.clone(), acked.clone(), stop.clone(), done.clone());
            threads.push(thread::spawn(move || {
                let mut held: Vec<Held> = Vec::new();
                let mut round = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    round += 1;
                    let seq_floor = acked.load(Ordering::SeqCst);
                    let read = db.begin_read().unwrap();
                    let read_again = db.begin_read().unwrap();
                    let Ok(meta) = read.open_table(META) else { continue };
                    let data = read.open_table(DATA).unwrap();
                    let mirror = read.open_table(MIRROR).unwrap();
                    if (round + r).is_multiple_of(2) {
                        drop(read); // the tables outlive their transaction
                    } else {
                        // redb: refused while its tables live; handed back.
                        match read.close() {
                            Err(sluicedb::TransactionError::ReadTransactionStillInUse(read)) => drop(read),
                            other => panic!("close with live tables: {other:?}"),
                        }
                    }
                    let first = check_state(&meta, &data, &mirror).unwrap_or_else(|e| panic!("snapshot: {e}"));
                    assert!(
                        first.1 >= seq_floor,
                        "snapshot seq {} older than acked {seq_floor}",
                        first.1
                    );
                    let mut churned = Vec::new();
                    for def in [CHURN, CHURN_OLD] {
                        if let Ok(t) = read_again.open_table(def) {
                            let g = check_churn(&t).unwrap_or_else(|e| panic!("{def}: {e}"));
                            churned.push((g, t));
                        }
                    }
                    drop(read_again);
                    held.push(Held {
                        seq_floor,
                        first,
                        meta,
                        data,
                        mirror,
                        churn: churned,
                    });
                    if held.len() > 4 {
                        held.remove((round % 4) as usize);
                    }
                    for h in &held {
                        let again = check_state(&h.meta, &h.data, &h.mirror)
                            .unwrap_or_else(|e| panic!("held snapshot (floor {}): {e}", h.seq_floor));
                        assert_eq!(again, h.first, "a held snapshot changed");
                        for (g, t) in &h.churn {
                            let again = check_churn(t).unwrap_or_else(|e| panic!("held churn table: {e}"));
                            assert_eq!(again, *g, "a held churn table changed");
                        }
                    }
                    done[0].fetch_add(1, Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(1));
                }
            }));
        }
        // Backups.
        {
            let (db, acked, stop, done) = (db.clone(), acked.clone(), stop.clone(), done.clone());
            let dir = dir.path().to_path_buf();
            threads.push(thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let floor = acked.load(Ordering::SeqCst);
                    let dest = dir.join(format!("backup-{i}"));
                    db.backup(&dest).unwrap_or_else(|e| panic!("backup {i}: {e}"));
                    let mut copy = Database::open(&dest).unwrap_or_else(|e| panic!("open backup {i}: {e}"));
                    assert!(
                        copy.check_integrity()
                            .unwrap_or_else(|e| panic!("backup {i} integrity: {e}"))
                    );
                    let (_, seq) = check_db(&copy).unwrap_or_else(|e| panic!("backup {i}: {e}"));
                    assert!(seq >= floor, "backup {i} at seq {seq}, older than acked {floor}");
                    {
                        let read = copy.begin_read().unwrap();
                        for def in [CHURN, CHURN_OLD] {
                            if let Ok(t) = read.open_table(def) {
                                check_churn(&t).unwrap_or_else(|e| panic!("backup {i}, {def}: {e}"));
                            }
                        }
                    }
                    copy.close().unwrap();
                    std::fs::remove_file(&dest).unwrap();
                    let _ = std::fs::remove_dir_all(dir.join(format!("backup-{i}-wal")));
                    done[1].fetch_add(1, Ordering::SeqCst);
                }
                assert!(i > 0);
            }));
        }
        // Savepoints: create, later restore (bumping seq in the restoring
        // transaction) or delete.
        {
            let (db, acked, stop, done) = (db.clone(), acked.clone(), stop.clone(), done.clone());
            threads.push(thread::spawn(move || {
                // A stack, newest last: restoring the newest never
                // invalidates an older one.
                let mut stack: Vec<Sp> = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let mut txn = db.begin_write().unwrap();
                    let op = if stack.is_empty() || (i % 4 < 2 && stack.len() < 4) {
                        0
                    } else {
                        1 + i % 2
                    };
                    match op {
                        0 => {
                            if i % 8 < 4 {
                                let id = txn.persistent_savepoint().unwrap();
                                txn.commit().unwrap();
                                stack.push(Sp::Persistent(id));
                            } else {
                                stack.push(Sp::Ephemeral(txn.ephemeral_savepoint().unwrap()));
                                // Sometimes committed, sometimes aborted.
                                if i.is_multiple_of(3) {
                                    txn.commit().unwrap();
                                } else {
                                    drop(txn);
                                }
                            }
                        }
                        1 => {
                            // Delete the oldest.
                            match stack.remove(0) {
                                Sp::Persistent(id) => {
                                    assert!(txn.delete_persistent_savepoint(id).unwrap(), "savepoint {id} vanished");
                                }
                                Sp::Ephemeral(sp) => drop(sp),
                            }
                            txn.commit().unwrap();
                        }
                        _ => {
                            // Restore the newest, bumping seq in the same
                            // transaction (the restored state's seq is older).
                            let top = stack.pop().unwrap();
                            match &top {
                                Sp::Persistent(id) => {
                                    let sp = txn.get_persistent_savepoint(*id).unwrap();
                                    txn.restore_savepoint(&sp).unwrap();
                                }
                                Sp::Ephemeral(sp) => txn.restore_savepoint(sp).unwrap(),
                            }
                            let seq = {
                                let mut meta = txn.open_table(META).unwrap();
                                let seq = acked.load(Ordering::SeqCst) + 1_000_000;
                                meta.insert("seq", seq).unwrap();
                                seq
                            };
                            if let Sp::Persistent(id) = top {
                                assert!(txn.delete_persistent_savepoint(id).unwrap());
                            }
                            txn.commit().unwrap();
                            acked.fetch_max(seq, Ordering::SeqCst);
                        }
                    }
                    done[2].fetch_add(1, Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(2));
                }
                let txn = db.begin_write().unwrap();
                for sp in stack {
                    if let Sp::Persistent(id) = sp {
                        assert!(txn.delete_persistent_savepoint(id).unwrap());
                    }
                }
                txn.commit().unwrap();
            }));
        }
        // Checkpoints.
        {
            let (db, stop, done) = (db.clone(), stop.clone(), done.clone());
            threads.push(thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    db.checkpoint().unwrap();
                    done[3].fetch_add(1, Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(3));
                }
            }));
        }
        let (commits, work) = writer.join().unwrap();
        for t in threads {
            t.join().unwrap();
        }
        eprintln!("stress: {commits} commits; reader rounds, backups, savepoint ops, checkpoints: {work:?}");
        let mut db = Arc::try_unwrap(db).unwrap();
        check_db(&db).unwrap();
        assert!(db.check_integrity().unwrap());
        db.close().unwrap();
        let mut db = Database::open(dir.path().join("db")).unwrap();
        assert!(db.check_integrity().unwrap());
        check_db(&db).unwrap();
    });
}

fn fill(db: &Database, keys: u64) {
    let txn = db.begin_write().unwrap();
    {
        let mut data = txn.open_table(DATA).unwrap();
        let mut mirror = txn.open_table(MIRROR).unwrap();
        let mut meta = txn.open_table(META).unwrap();
        let mut sum = 0u64;
        for k in 1..=keys {
            data.insert(k, value(k, k).as_slice()).unwrap();
            mirror.insert(k, k).unwrap();
            sum = sum.wrapping_add(k);
        }
        meta.insert("n", keys).unwrap();
        meta.insert("seq", 1).unwrap();
        meta.insert("sum", sum).unwrap();
    }
    txn.commit().unwrap();
}

/// The last `Arc<Database>` is dropped while other threads hold read
/// transactions, tables, ranges and guards. They must not crash or hang:
/// each read either works (the snapshot's data) or fails with an error.
#[test]
fn last_database_handle_dropped_under_live_readers() {
    watchdog("drop under readers", || {
        for round in 0..3u64 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("db");
            let db = Arc::new(small_db(&path));
            fill(&db, 2_000);
            if round == 1 {
                db.checkpoint().unwrap();
            }
            model_commit(&db, Durability::None);
            let expected = check_db(&db).unwrap();
            let start = Arc::new(Barrier::new(5));
            let dropped = Arc::new(Barrier::new(5));
            let mut threads = Vec::new();
            for r in 0..4u64 {
                let (db, start, dropped) = (db.clone(), start.clone(), dropped.clone());
                threads.push(thread::spawn(move || {
                    let read = db.begin_read().unwrap();
                    let data = read.open_table(DATA).unwrap();
                    let meta = read.open_table(META).unwrap();
                    let mirror = read.open_table(MIRROR).unwrap();
                    let mut range = data.range(1..).unwrap();
                    let first = range.next().unwrap().unwrap();
                    let guard = mirror.get(1000).unwrap().unwrap();
                    drop(db);
                    if r % 2 == 0 {
                        drop(read);
                    }
                    start.wait();
                    dropped.wait();
                    // Use everything after the last handle is gone.
                    assert_eq!(first.0.value(), 1);
                    assert_eq!(first.1.value(), value(1, 1).as_slice());
                    assert_eq!(guard.value(), 1000);
                    let mut seen = 1u64;
                    for e in range {
                        match e {
                            Ok((k, v)) => {
                                seen += 1;
                                assert_eq!(k.value(), seen);
                                let w = mirror.get(seen).ok().flatten().map(|g| g.value());
                                if let Some(w) = w {
                                    assert_eq!(v.value(), value(seen, w).as_slice());
                                }
                            }
                            Err(_) => break,
                        }
                    }
                    match check_state(&meta, &data, &mirror) {
                        Ok(s) => assert_eq!(s, expected),
                        Err(e) => {
                            // An error is fine; other data is not.
                            assert!(!e.contains("holds a value") && !e.contains("where"), "after drop: {e}");
                        }
                    }
                }));
            }
            start.wait();
            let db = Arc::try_unwrap(db).unwrap_or_else(|_| panic!("readers still hold the database"));
            drop(db);
            dropped.wait();
            for t in threads {
                t.join().unwrap();
            }
            let mut db = Database::open(&path).unwrap();
            assert!(db.check_integrity().unwrap());
            assert_eq!(check_db(&db).unwrap(), expected);
        }
    });
}

/// A write transaction is built on another thread while the owner calls
/// `compact`, `check_integrity` and `close`: each is refused with
/// TransactionInProgress (no deadlock), and the transaction still commits.
#[test]
fn compact_and_close_beside_a_writer_on_another_thread() {
    watchdog("compact beside writer", || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut db = small_db(&path);
        fill(&db, 500);
        let txn = db.begin_write().unwrap();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let writer = thread::spawn(move || {
            {
                let mut t = txn.open_table(MIRROR).unwrap();
                t.insert(9_999, 1).unwrap();
            }
            go_rx.recv().unwrap();
            txn.commit().unwrap();
        });
        assert!(matches!(db.compact(), Err(CompactionError::TransactionInProgress)));
        assert!(matches!(
            db.check_integrity(),
            Err(DatabaseError::TransactionInProgress)
        ));
        assert!(matches!(
            db.try_begin_write(),
            Err(sluicedb::TransactionError::WouldBlock)
        ));
        // A reader on another thread also refuses compaction.
        let read = db.begin_read().unwrap();
        let reader = thread::spawn(move || read.open_table(DATA).unwrap().len().unwrap());
        go_tx.send(()).unwrap();
        writer.join().unwrap();
        assert_eq!(reader.join().unwrap(), 500);
        db.compact().unwrap();
        // close refused while a writer lives on another thread.
        let txn = db.begin_write().unwrap();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let writer = thread::spawn(move || {
            go_rx.recv().unwrap();
            {
                txn.open_table(MIRROR).unwrap().insert(10_000, 2).unwrap();
            }
            txn.commit()
        });
        assert!(matches!(db.close(), Err(DatabaseError::TransactionInProgress)));
        go_tx.send(()).unwrap();
        let committed = writer.join().unwrap();
        let db = Database::open(&path).unwrap();
        let read = db.begin_read().unwrap();
        let t = read.open_table(MIRROR).unwrap();
        assert_eq!(t.get(9_999).unwrap().unwrap().value(), 1);
        // A commit after the handle was dropped either landed or reported
        // an error.
        match committed {
            Ok(()) => assert_eq!(t.get(10_000).unwrap().map(|g| g.value()), Some(2)),
            Err(_) => assert!(t.get(10_000).unwrap().is_none()),
        }
    });
}

/// Many threads call `begin_write` at once (mixed durability): no deadlock,
/// every commit lands, the counter is exact.
#[test]
fn begin_write_from_many_threads() {
    watchdog("many writers", || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let db = Arc::new(small_db(&path));
        const THREADS: u64 = 8;
        const EACH: u64 = 40;
        let barrier = Arc::new(Barrier::new(THREADS as usize));
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (db, barrier) = (db.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    for i in 0..EACH {
                        let d = if (t + i) % 2 == 0 {
                            Durability::None
                        } else {
                            Durability::Immediate
                        };
                        if i % 5 == 4 {
                            // An abort in between.
                            let txn = db.begin_write().unwrap();
                            txn.open_table(MIRROR).unwrap().insert(u64::MAX, 0).unwrap();
                            txn.abort().unwrap();
                        }
                        model_commit(&db, d);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let (n, seq) = check_db(&db).unwrap();
        assert_eq!((n, seq), (THREADS * EACH, THREADS * EACH));
        drop(db);
        let db = Database::open(&path).unwrap();
        assert_eq!(check_db(&db).unwrap(), (THREADS * EACH, THREADS * EACH));
        let read = db.begin_read().unwrap();
        assert!(read.open_table(MIRROR).unwrap().get(u64::MAX).unwrap().is_none());
    });
}

/// A reader thread panics mid-iteration holding a range and guards; a writer
/// thread panics with an open transaction holding a table. Afterwards the
/// next `begin_write` works, nothing of the panicked writer is committed,
/// and compaction (which needs no live transaction) is allowed.
#[test]
fn panicking_reader_and_writer_threads() {
    watchdog("panics", || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let db = Arc::new(small_db(&path));
        fill(&db, 1_000);
        let expected = check_db(&db).unwrap();
        let reader = {
            let db = db.clone();
            thread::spawn(move || {
                let read = db.begin_read().unwrap();
                let data = read.open_table(DATA).unwrap();
                let _guard = data.get(5).unwrap().unwrap();
                for (i, e) in data.iter().unwrap().enumerate() {
                    let _kv = e.unwrap();
                    if i == 300 {
                        panic!("reader panics on purpose");
                    }
                }
            })
        };
        assert!(reader.join().is_err());
        let writer = {
            let db = db.clone();
            thread::spawn(move || {
                let txn = db.begin_write().unwrap();
                let mut t = txn.open_table(DATA).unwrap();
                for k in 1..=1_000u64 {
                    t.insert(k, b"torn".as_slice()).unwrap();
                }
                let _held = t.get(3).unwrap();
                panic!("writer panics on purpose");
            })
        };
        assert!(writer.join().is_err());
        assert_eq!(check_db(&db).unwrap(), expected);
        // The next writer is not blocked.
        let txn = db
            .try_begin_write()
            .unwrap_or_else(|e| panic!("after a panicked writer: {e}"));
        drop(txn);
        model_commit(&db, Durability::Immediate);
        let mut db = Arc::try_unwrap(db).unwrap();
        db.compact()
            .unwrap_or_else(|e| panic!("compact after panicked threads: {e}"));
        assert!(db.check_integrity().unwrap());
        db.close().unwrap();
        let db = Database::open(&path).unwrap();
        assert_eq!(check_db(&db).unwrap(), (expected.0 + 1, expected.1 + 1));
    });
}

/// `Durability::None` commits from many threads, then a clean `close`: every
/// one is present at the next open, and the WAL replays nothing needed.
#[test]
fn durability_none_from_many_threads_then_close() {
    watchdog("none then close", || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let db = Arc::new(small_db(&path));
        const THREADS: u64 = 4;
        const EACH: u64 = 100;
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let db = db.clone();
                thread::spawn(move || {
                    for i in 0..EACH {
                        let mut txn = db.begin_write().unwrap();
                        txn.set_durability(Durability::None).unwrap();
                        {
                            let mut m = txn.open_table(MIRROR).unwrap();
                            m.insert(t * 1_000_000 + i, i).unwrap();
                        }
                        txn.commit().unwrap();
                        if i % 25 == 0 {
                            let _ = db.begin_read().unwrap().open_table(MIRROR).unwrap().len().unwrap();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let db = Arc::try_unwrap(db).unwrap();
        db.close().unwrap();
        // The data file alone holds every commit after close.
        let _ = std::fs::remove_dir_all(dir.path().join("db-wal"));
        let mut db = Database::open(&path).unwrap();
        assert!(db.check_integrity().unwrap());
        let read = db.begin_read().unwrap();
        let m = read.open_table(MIRROR).unwrap();
        assert_eq!(m.len().unwrap(), THREADS * EACH);
        for t in 0..THREADS {
            for i in 0..EACH {
                assert_eq!(m.get(t * 1_000_000 + i).unwrap().map(|g| g.value()), Some(i));
            }
        }
    });
}

thread_local! {
    /// Set on a thread whose next key comparison panics (user code).
    static PANIC_IN_COMPARE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

common::keys::u64_key!(
    /// A u64 key in descending order whose `compare` panics on a thread that
    /// asked for it: user code panicking inside the engine.
    Desc,
    "review::Desc",
    u64::from_le_bytes,
    u64::to_le_bytes,
    |a, b| {
    if PANIC_IN_COMPARE.with(|p| p.get()) {
        panic!("Key::compare panics on purpose");
    }
    let a = u64::from_le_bytes(a.try_into().unwrap());
    let b = u64::from_le_bytes(b.try_into().unwrap());
    b.cmp(&a)
}
);

const DESC: TableDefinition<Desc, u64> = TableDefinition::new("desc");

/// Every DESC key k holds `w` and MIRROR[k] too, for each of the keys a
/// transaction wrote; returns the distinct generations seen (one, or none,
/// unless a transaction is visible in part).
fn desc_generations(db: &Database) -> Vec<u64> {
    let read = db.begin_read().unwrap();
    let desc = read.open_table(DESC).unwrap();
    let mirror = read.open_table(MIRROR).unwrap();
    let mut gens: Vec<u64> = Vec::new();
    for k in 0..400u64 {
        for g in [
            desc.get(k).unwrap().map(|g| g.value()),
            mirror.get(k).unwrap().map(|g| g.value()),
        ] {
            let g = g.unwrap_or(0);
            if !gens.contains(&g) {
                gens.push(g);
            }
        }
    }
    gens
}

fn write_desc(db: &Database, g: u64, panic_before_commit: bool) {
    let txn = db.begin_write().unwrap();
    {
        let mut desc = txn.open_table(DESC).unwrap();
        let mut mirror = txn.open_table(MIRROR).unwrap();
        for k in 0..400u64 {
            desc.insert(k, g).unwrap();
            mirror.insert(k, g).unwrap();
        }
    }
    if panic_before_commit {
        PANIC_IN_COMPARE.with(|p| p.set(true));
    }
    let result = txn.commit();
    PANIC_IN_COMPARE.with(|p| p.set(false));
    result.unwrap();
}

/// User code (`Key::compare`) panics inside the engine: in a reader's
/// lookup on one thread, and in a commit on another. Other threads must go
/// on (no deadlock); what a reader sees is whole transactions only; the
/// next `begin_write` works; the database reopens consistent.
#[test]
fn key_compare_panicking_inside_reads_and_commits() {
    watchdog("compare panics", || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let db = Arc::new(small_db(&path));
        write_desc(&db, 1, false);
        db.checkpoint().unwrap();
        write_desc(&db, 2, false);
        assert_eq!(desc_generations(&db), vec![2]);
        // A reader's lookup panics.
        let reader = {
            let db = db.clone();
            thread::spawn(move || {
                let read = db.begin_read().unwrap();
                let t = read.open_table(DESC).unwrap();
                PANIC_IN_COMPARE.with(|p| p.set(true));
                let _ = t.get(17);
                let _ = t.range(3..9).map(|r| r.count());
            })
        };
        assert!(reader.join().is_err(), "the reader's compare did not panic");
        assert_eq!(desc_generations(&db), vec![2]);
        write_desc(&db, 3, false);
        db.checkpoint().unwrap();
        assert_eq!(desc_generations(&db), vec![3]);
        // A commit panics (if the commit compares keys at all).
        let writer = {
            let db = db.clone();
            thread::spawn(move || write_desc(&db, 4, true))
        };
        let panicked = writer.join().is_err();
        let gens = desc_generations(&db);
        assert_eq!(
            gens.len(),
            1,
            "a panicked commit is visible in part: generations {gens:?}"
        );
        let txn = db
            .try_begin_write()
            .unwrap_or_else(|e| panic!("after a panicked commit: {e}"));
        drop(txn);
        // An insert panics inside the engine, with a table and a guard open.
        let writer = {
            let db = db.clone();
            thread::spawn(move || {
                let txn = db.begin_write().unwrap();
                let mut desc = txn.open_table(DESC).unwrap();
                for k in 0..200u64 {
                    desc.insert(k, 99).unwrap();
                }
                let _guard = txn.open_table(MIRROR).unwrap();
                PANIC_IN_COMPARE.with(|p| p.set(true));
                desc.insert(1_000, 99).unwrap();
            })
        };
        assert!(writer.join().is_err(), "the insert's compare did not panic");
        assert_eq!(desc_generations(&db).len(), 1);
        let txn = db
            .try_begin_write()
            .unwrap_or_else(|e| panic!("after a panicked insert: {e}"));
        drop(txn);
        write_desc(&db, 5, false);
        db.checkpoint().unwrap();
        assert_eq!(desc_generations(&db), vec![5], "commit panicked: {panicked}");
        let mut db = Arc::try_unwrap(db).unwrap();
        assert!(db.check_integrity().unwrap());
        db.close().unwrap();
        let db = Database::open(&path).unwrap();
        let read = db.begin_read().unwrap();
        read.open_table(DESC).unwrap();
        drop(read);
        assert_eq!(desc_generations(&db), vec![5]);
        eprintln!("compare panics: commit panicked: {panicked}");
    });
}

/// Readers keep iterating (tables, ranges, fresh `get`s, tables opened from
/// a held transaction) while the last handle is dropped at varied moments,
/// with a write transaction on yet another thread committing around the
/// drop. Each read yields its snapshot's data or an error; nothing hangs.
#[test]
fn readers_iterating_while_the_handle_drops() {
    watchdog("drop during reads", || {
        for round in 0..12u64 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("db");
            let db = small_db(&path);
            fill(&db, 1_500);
            if round % 2 == 0 {
                db.checkpoint().unwrap();
            }
            let old_read = db.begin_read().unwrap();
            let old = check_db(&db).unwrap();
            for _ in 0..3 {
                model_commit(&db, Durability::None);
            }
            let new = check_db(&db).unwrap();
            let new_read = db.begin_read().unwrap();
            let txn = db.begin_write().unwrap();
            let go = Arc::new(Barrier::new(5));
            let mut threads = Vec::new();
            for (r, (read, expected)) in [(old_read, old), (new_read, new)].into_iter().enumerate() {
                for mode in 0..2u64 {
                    let go = go.clone();
                    // Each thread gets its own transaction or tables.
                    let (meta, data, mirror) = (
                        read.open_table(META).unwrap(),
                        read.open_table(DATA).unwrap(),
                        read.open_table(MIRROR).unwrap(),
                    );
                    threads.push(thread::spawn(move || {
                        go.wait();
                        for pass in 0..30u64 {
                            let k = 1 + (pass * 97 + mode * 13) % 1_500;
                            if let (Ok(Some(w)), Ok(Some(v))) = (mirror.get(k), data.get(k)) {
                                assert_eq!(v.value(), value(k, w.value()).as_slice(), "reader {r}: key {k}");
                            }
                            match check_state(&meta, &data, &mirror) {
                                Ok(s) => assert_eq!(s, expected, "reader {r} saw another state"),
                                Err(e) => {
                                    assert!(!e.contains("holds a value") && !e.contains("where"), "reader {r}: {e}");
                                    assert!(e.contains("closed"), "reader {r}: unclear error after the drop: {e}");
                                }
                            }
                        }
                    }));
                }
                drop(read);
            }
            let writer = thread::spawn(move || {
                {
                    let mut t = txn.open_table(CHURN_OLD).unwrap();
                    for k in 0..300u64 {
                        t.insert(1_000_000 + k, value(k, 7).as_slice()).unwrap();
                    }
                }
                txn.commit()
            });
            go.wait();
            thread::sleep(Duration::from_micros(round * 400));
            drop(db);
            for t in threads {
                t.join().unwrap();
            }
            let committed = writer.join().unwrap();
            let mut db = Database::open(&path).unwrap();
            assert!(db.check_integrity().unwrap());
            // The model's tables are as the last commit left them.
            assert_eq!(check_db(&db).unwrap(), new);
            let read = db.begin_read().unwrap();
            let extra = match read.open_table(CHURN_OLD) {
                Ok(t) => t.range(1_000_000..).unwrap().count(),
                Err(sluicedb::TableError::TableDoesNotExist(_)) => 0,
                Err(e) => panic!("{e}"),
            };
            match committed {
                Ok(()) => assert_eq!(extra, 300, "round {round}: an acknowledged commit is lost"),
                Err(e) => assert_eq!(extra, 0, "round {round}: a failed commit ({e}) is there"),
            }
        }
    });
}

/// Rewrites most of the model's data and deletes the rest, so compaction
/// moves pages.
fn rewrite_most(db: &Database) {
    let txn = db.begin_write().unwrap();
    {
        let mut d = txn.open_table(DATA).unwrap();
        let mut m = txn.open_table(MIRROR).unwrap();
        d.retain(|k, _| k % 5 == 0).unwrap();
        m.retain(|k, _| k % 5 == 0).unwrap();
        for k in (5..=3_000).step_by(5) {
            d.insert(k, vec![0xAB; 700].as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
}

/// `ReadOnlyTable::range` and `ReadOnlyTable::get` hand out `'static`
/// iterators and guards that outlive the table and the transaction, held on
/// another thread. What they read must stay unchanged, and compaction on the
/// owner's thread must be refused with TransactionInProgress while a range
/// lives (redb's `Range` holds its transaction's guard), or really compact.
/// The control (variant 2: nothing held) and variant 3 (only a guard, which
/// in redb holds just its page) compact at once.
#[test]
fn static_ranges_and_guards_on_another_thread_beside_compact() {
    watchdog("static handles beside compact", || {
        for variant in [2, 3, 0, 1u64] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("db");
            let mut db = small_db(&path);
            fill(&db, 3_000);
            db.checkpoint().unwrap();
            let expected = check_db(&db).unwrap();
            let read = db.begin_read().unwrap();
            let data = read.open_table(DATA).unwrap();
            let mirror = read.open_table(MIRROR).unwrap();
            let mut range = data.range(1..).unwrap();
            let mut mirror_range = mirror.range(1..).unwrap();
            let guard = data.get(2_999).unwrap().unwrap();
            for _ in 0..10 {
                range.next().unwrap().unwrap();
                mirror_range.next().unwrap().unwrap();
            }
            drop((data, mirror, read));
            if variant == 2 {
                // The control: nothing held.
                drop((range, mirror_range, guard));
                rewrite_most(&db);
                let first = db.compact();
                let len_before = std::fs::metadata(&path).unwrap().len();
                let again = db.compact().unwrap();
                let len_after = std::fs::metadata(&path).unwrap().len();
                assert!(
                    first.is_ok() && !again,
                    "control: compact {first:?}, again {again} ({len_before} -> {len_after} bytes)"
                );
                continue;
            }
            if variant == 3 {
                // Only the 'static guard held (redb's holds only its page).
                drop((range, mirror_range));
                rewrite_most(&db);
                let compacted = db.compact();
                assert_eq!(guard.value(), value(2_999, 2_999).as_slice(), "a held guard changed");
                let again = db.compact().unwrap();
                assert!(
                    compacted.is_ok() && !again,
                    "guard only: compact {compacted:?}, again {again}"
                );
                continue;
            }
            let (held_tx, held_rx) = mpsc::channel();
            let (go_tx, go_rx) = mpsc::channel::<()>();
            let reader = thread::spawn(move || {
                held_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                assert_eq!(guard.value(), value(2_999, 2_999).as_slice(), "a held guard changed");
                let mut k = 10u64;
                for (e, m) in range.zip(mirror_range) {
                    let ((dk, dv), (mk, mv)) = (e.unwrap(), m.unwrap());
                    k += 1;
                    assert_eq!((dk.value(), mk.value()), (k, k), "a held range skipped or repeated");
                    assert_eq!(
                        dv.value(),
                        value(k, mv.value()).as_slice(),
                        "a held range read other data"
                    );
                }
                assert_eq!(k, 3_000, "a held range ended early");
            });
            held_rx.recv().unwrap();
            rewrite_most(&db);
            let compacted = db.compact();
            if variant == 1 {
                // A second round of changes after the compaction, reusing
                // the freed end.
                let txn = db.begin_write().unwrap();
                {
                    let mut d = txn.open_table(DATA).unwrap();
                    for k in 10_000..12_000u64 {
                        d.insert(k, vec![0xCD; 300].as_slice()).unwrap();
                    }
                }
                txn.commit().unwrap();
                db.checkpoint().unwrap();
            }
            go_tx.send(()).unwrap();
            let outcome = reader.join();
            if let Err(e) = outcome {
                std::panic::resume_unwind(e);
            }
            // Now that nothing is held, compaction is allowed and does its work.
            let len_before = std::fs::metadata(&path).unwrap().len();
            let again = db.compact().unwrap();
            let len_after = std::fs::metadata(&path).unwrap().len();
            // As redb (whose `Range` holds its transaction's guard): refused
            // while the handles live, or it did compact then.
            assert!(
                matches!(compacted, Err(CompactionError::TransactionInProgress)) || !again,
                "variant {variant}: compact beside a live 'static Range (ReadOnlyTable::range) returned {compacted:?} \
                 without compacting (a later compact shrank the file {len_before} -> {len_after})"
            );
            let _ = expected;
        }
    });
}
