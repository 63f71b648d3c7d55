//! Adversarial review of the persistent-savepoint unpin (`engine::txn::unpin`:
//! a checkpoint, then the tree writer once nothing waits for publication,
//! a flush's commit made durable at `Inner::tree_held_seq`, then
//! `TreeWriter::unpin`), reached from `delete_persistent_savepoint` +
//! `commit` (`unpin_after_commit`), from a dropped transaction that made a
//! persistent savepoint (`WriteTxn`'s Drop, writer slot held), and from
//! `Database::compact` (`drop_orphan_pins`), which must then succeed.
//!
//! Scenarios:
//! - savepoints created, deleted (a `Durability::None` attempt first),
//!   created and dropped, created and deleted in one transaction, restored
//!   and deleted (aborted), while another thread commits into tiny
//!   memtables (flushes and tree commits all the time); a power cut image
//!   after every operation must reopen with exactly the acknowledged
//!   savepoints, each restoring exactly its state, the writer's
//!   acknowledged commits, a clean integrity check, `len()` equal to the
//!   entries, and a compaction that succeeds once the savepoints are gone;
//! - liveness: the same unpin paths beside a writer of pipelined and tree
//!   commits, under a watchdog (a deadlock fails, it does not hang);
//! - an I/O failure at every data-file operation of an unpin (after a
//!   committed delete, and in the drop of a transaction that made a
//!   savepoint): reported, and a reopen finds the savepoint gone and a
//!   database that compacts;
//! - a savepoint's transaction dropped (or committed) after its database
//!   handle; a delete committed with `commit_pipelined`, then compaction.
//!
//! Result on main (6104186 + dbdbb2f): every scenario passes (10 runs of
//! the file, three tests at once): no defect found in these paths.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use common::Rng;
use common::keys::CrashDisk;
use common::savepoints::{Db, table, txn_db};
use sluicedb::io::TearMode;
use sluicedb::{
    Builder, Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, SavepointError,
    SetDurabilityError,
};

const W: &str = "w";
const M: &str = "m";

fn builder() -> Builder {
    let mut b = Builder::new();
    b.set_memtable_size(2 << 10)
        .set_tree_commit_size(6 << 10)
        .set_max_frozen_bytes(32 << 10);
    b
}

fn wval(k: u64) -> u64 {
    k.wrapping_mul(0x9E37_79B9) ^ 0x5a5a
}

/// The background writer (at most `budget` commits: each crash image is
/// reopened and read whole, so the table stays small): commit `n` writes keys `[next, next + len)` of
/// table `w` (one commit in 16 is big enough for a tree commit), a third
/// of them `Durability::Immediate`; `acked` is one past the last key of the
/// newest acknowledged durable commit.
fn writer_loop(db: &Database, stop: &AtomicBool, budget: &AtomicU64, acked: &AtomicU64, pipelined: bool) {
    let mut next = 0u64;
    let mut n = 0u64;
    while !stop.load(Ordering::Acquire) {
        if n >= budget.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        let len = if n % 16 == 15 { 500 } else { 3 };
        let mut txn = db.begin_write().unwrap();
        let durable = n.is_multiple_of(3);
        if !durable {
            txn.set_durability(Durability::None).unwrap();
        }
        {
            let mut t = txn.open_table(table(W)).unwrap();
            for k in next..next + len {
                t.insert(k, wval(k)).unwrap();
            }
        }
        if pipelined && n % 2 == 1 {
            let pending = txn.commit_pipelined().unwrap();
            if durable {
                pending.wait().unwrap();
            }
        } else {
            txn.commit().unwrap();
        }
        next += len;
        if durable {
            acked.store(next, Ordering::Release);
        }
        n += 1;
    }
}

/// Creates a persistent savepoint, records what it holds (the
/// transaction's start state, read after the savepoint in the same
/// transaction), writes to table `m`, and commits.
fn create(db: &Database, stamp: u64) -> (u64, Db) {
    let txn = db.begin_write().unwrap();
    let id = txn.persistent_savepoint().unwrap();
    let state = txn_db(&txn);
    {
        let mut t = txn.open_table(table(M)).unwrap();
        t.insert(stamp, stamp).unwrap();
        t.remove(stamp.wrapping_sub(2)).unwrap();
    }
    txn.commit().unwrap();
    (id, state)
}

/// Deletes `id`: first refused under `Durability::None`, then with
/// `Immediate`, and durability cannot be lowered after.
fn delete(db: &Database, id: u64) {
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(Durability::None).unwrap();
    assert!(
        matches!(
            txn.delete_persistent_savepoint(id),
            Err(SavepointError::ImmediateDurabilityRequired)
        ),
        "delete under Durability::None"
    );
    txn.set_durability(Durability::Immediate).unwrap();
    assert!(txn.delete_persistent_savepoint(id).unwrap(), "savepoint {id} existed");
    assert!(matches!(
        txn.set_durability(Durability::None),
        Err(SetDurabilityError::PersistentSavepointModified)
    ));
    txn.commit().unwrap();
}

/// What restoring `id` gives (in a transaction that is aborted).
fn restored(db: &Database, id: u64) -> Db {
    let mut txn = db.begin_write().unwrap();
    let sp = txn.get_persistent_savepoint(id).unwrap();
    txn.restore_savepoint(&sp).unwrap();
    let out = txn_db(&txn);
    txn.abort().unwrap();
    out
}

fn listed(db: &Database) -> Vec<u64> {
    let txn = db.begin_write().unwrap();
    let ids = txn.list_persistent_savepoints().unwrap().collect();
    txn.abort().unwrap();
    ids
}

/// Table `w`: must be keys `0..n` with their values, `n >= acked`, and
/// `len()` equal to the entries.
fn check_w(db: &Database, acked: u64, what: &str) {
    let read = db.begin_read().unwrap();
    let Ok(t) = read.open_table(table(W)) else {
        assert_eq!(acked, 0, "{what}: table w missing with {acked} keys acknowledged");
        return;
    };
    let entries: Vec<(u64, u64)> = t
        .iter()
        .unwrap()
        .map(|e| e.unwrap())
        .map(|(k, v)| (k.value(), v.value()))
        .collect();
    assert_eq!(t.len().unwrap(), entries.len() as u64, "{what}: len() of w");
    for (i, &(k, v)) in entries.iter().enumerate() {
        assert_eq!(
            (k, v),
            (i as u64, wval(i as u64)),
            "{what}: w is not a prefix of the writes"
        );
    }
    assert!(
        entries.len() as u64 >= acked,
        "{what}: w holds {} keys, {acked} acknowledged durable",
        entries.len()
    );
}

/// A power cut image, reopened: the savepoints exactly `expected`, each
/// restoring its state, `w` holding the acknowledged writes, integrity
/// clean; then every savepoint deleted and a compaction that succeeds.
fn check_image(image: &CrashDisk, expected: &BTreeMap<u64, Db>, acked: u64, what: &str) {
    let mut db = image.open(&builder());
    assert!(db.check_integrity().unwrap(), "{what}: integrity check after the crash");
    let ids = listed(&db);
    assert_eq!(
        ids,
        expected.keys().copied().collect::<Vec<_>>(),
        "{what}: persistent savepoints after the crash"
    );
    for (&id, state) in expected {
        assert_eq!(&restored(&db, id), state, "{what}: savepoint {id} restores its state");
    }
    check_w(&db, acked, what);
    for &id in expected.keys() {
        let txn = db.begin_write().unwrap();
        assert!(txn.delete_persistent_savepoint(id).unwrap());
        txn.commit().unwrap();
    }
    match db.compact() {
        Ok(_) => {}
        Err(e) => panic!("{what}: compaction after every savepoint was deleted: {e:?}"),
    }
    assert!(
        db.check_integrity().unwrap(),
        "{what}: integrity check after compaction"
    );
    check_w(&db, acked, what);
}

fn run_crash_model(seed: u64, ops: usize) {
    let disk = CrashDisk::new();
    let db = Arc::new(disk.open(&builder()));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let budget = Arc::new(AtomicU64::new(0));
    let writer = {
        let (db, stop, budget, acked) = (db.clone(), stop.clone(), budget.clone(), acked.clone());
        std::thread::spawn(move || writer_loop(&db, &stop, &budget, &acked, false))
    };
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut expected: BTreeMap<u64, Db> = BTreeMap::new();
    let mut log = Vec::new();
    for step in 0..ops {
        // About two tree commits and a dozen flushes beside each operation.
        budget.fetch_add(32, Ordering::Release);
        let ids: Vec<u64> = expected.keys().copied().collect();
        let pick = |rng: &mut Rng| ids[rng.below(ids.len() as u64) as usize];
        match rng.below(6) {
            0 | 1 if expected.len() < 4 => {
                let (id, state) = create(&db, step as u64 + 10);
                log.push(format!("create {id}"));
                expected.insert(id, state);
            }
            2 if !ids.is_empty() => {
                let id = pick(&mut rng);
                log.push(format!("delete {id}"));
                delete(&db, id);
                expected.remove(&id);
            }
            3 => {
                // Made and dropped: its pin goes in the drop, writer slot held.
                let txn = db.begin_write().unwrap();
                let id = txn.persistent_savepoint().unwrap();
                txn.open_table(table(M)).unwrap().insert(999_999, 1).unwrap();
                log.push(format!("create {id} and drop"));
                drop(txn);
            }
            4 => {
                let txn = db.begin_write().unwrap();
                let id = txn.persistent_savepoint().unwrap();
                assert!(txn.delete_persistent_savepoint(id).unwrap());
                log.push(format!("create {id} and delete it in one commit"));
                txn.commit().unwrap();
            }
            _ if !ids.is_empty() => {
                let id = pick(&mut rng);
                let mut txn = db.begin_write().unwrap();
                let sp = txn.get_persistent_savepoint(id).unwrap();
                txn.restore_savepoint(&sp).unwrap();
                assert_eq!(&txn_db(&txn), &expected[&id], "live restore of {id}");
                assert!(txn.delete_persistent_savepoint(id).unwrap());
                log.push(format!("restore {id}, delete it, abort"));
                txn.abort().unwrap();
            }
            _ => continue,
        }
        let acked_now = acked.load(Ordering::Acquire);
        let mode = match step % 3 {
            0 => TearMode::DropAll,
            1 => TearMode::KeepAll,
            _ => TearMode::Random(rng.next()),
        };
        let image = disk.crashed(mode);
        let what = format!("seed {seed} step {step} ({mode:?}) after {log:?}");
        check_image(&image, &expected, acked_now, &what);
    }
    stop.store(true, Ordering::Release);
    writer.join().unwrap();
    let mut db = Arc::try_unwrap(db).unwrap_or_else(|_| panic!("the writer is gone"));
    assert_eq!(listed(&db), expected.keys().copied().collect::<Vec<_>>());
    for (&id, state) in &expected {
        assert_eq!(&restored(&db, id), state, "seed {seed}: live savepoint {id}");
    }
    for &id in expected.keys() {
        delete(&db, id);
    }
    db.compact().expect("compaction once every savepoint is deleted");
    assert!(db.check_integrity().unwrap());
    check_w(&db, acked.load(Ordering::Acquire), "live database at the end");
}

#[test]
fn savepoints_deleted_and_dropped_beside_flushes_survive_power_cuts() {
    for seed in 1..=4 {
        run_crash_model(seed, 16);
    }
}

/// Runs `f` on a thread; fails the test if it has not finished within
/// `limit` (a deadlock), instead of hanging.
fn with_watchdog(limit: Duration, what: &str, f: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        f();
        let _ = done.send(());
    });
    match finished.recv_timeout(limit) {
        Ok(()) => handle.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = handle.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: not finished after {limit:?} (deadlock?)"),
    }
}

/// Every unpin path beside a writer of pipelined, tree and `None` commits,
/// and beside another thread's checkpoints: all must finish.
#[test]
fn unpins_beside_pipelined_and_tree_commits_finish() {
    with_watchdog(Duration::from_secs(60), "unpins beside pipelined commits", || {
        let disk = CrashDisk::new();
        let db = Arc::new(disk.open(&builder()));
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let budget = Arc::new(AtomicU64::new(u64::MAX));
        let writer = {
            let (db, stop, budget, acked) = (db.clone(), stop.clone(), budget.clone(), acked.clone());
            std::thread::spawn(move || writer_loop(&db, &stop, &budget, &acked, true))
        };
        let checkpointer = {
            let (db, stop) = (db.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    db.checkpoint().unwrap();
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        let mut live = Vec::new();
        for round in 0..40u64 {
            // Dropped while holding the writer slot.
            {
                let txn = db.begin_write().unwrap();
                txn.persistent_savepoint().unwrap();
                txn.open_table(table(M)).unwrap().insert(round, round).unwrap();
            }
            // Committed, deleted later (unpin after commit).
            live.push(create(&db, round + 100).0);
            if live.len() > 2 {
                delete(&db, live.remove(0));
            }
        }
        for id in live.drain(..) {
            delete(&db, id);
        }
        stop.store(true, Ordering::Release);
        writer.join().unwrap();
        checkpointer.join().unwrap();
        let mut db = Arc::try_unwrap(db).unwrap_or_else(|_| panic!("threads gone"));
        db.compact().expect("compaction with no savepoint left");
        assert!(db.check_integrity().unwrap());
        check_w(&db, acked.load(Ordering::Acquire), "after the run");
    });
}

/// A database with some data, savepoint `id` committed with state `state`.
fn fault_setup() -> (CrashDisk, Database, u64, Db) {
    let disk = CrashDisk::new();
    let db = disk.open(&builder());
    for round in 0..4u64 {
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(table(W)).unwrap();
            for k in round * 50..round * 50 + 50 {
                t.insert(k, wval(k)).unwrap();
            }
        }
        txn.commit().unwrap();
    }
    let (id, state) = create(&db, 7);
    (disk, db, id, state)
}

/// Reports any error from `compact` after the fault; a reopened image must
/// hold `expect` savepoints (`None`: present or absent, whole if present),
/// be clean, and compact.
fn check_after_fault(disk: &CrashDisk, mut db: Database, id: u64, state: &Db, expect: Option<bool>, what: &str) {
    let compacted = db.compact();
    drop(db);
    for mode in [TearMode::DropAll, TearMode::KeepAll] {
        let image = disk.crashed(mode);
        let mut again = image.open(&builder());
        assert!(
            again.check_integrity().unwrap(),
            "{what} ({mode:?}): integrity after reopen"
        );
        let ids = listed(&again);
        let present = ids.contains(&id);
        if let Some(want) = expect {
            assert_eq!(
                present, want,
                "{what} ({mode:?}): savepoint {id} present (compact gave {compacted:?})"
            );
        }
        if present {
            assert_eq!(&restored(&again, id), state, "{what} ({mode:?}): savepoint {id} whole");
            let txn = again.begin_write().unwrap();
            txn.delete_persistent_savepoint(id).unwrap();
            txn.commit().unwrap();
        }
        check_w(&again, 200, what);
        if let Err(e) = again.compact() {
            panic!("{what} ({mode:?}): compaction after the reopen: {e:?}");
        }
    }
}

/// How many data-file operations `f` takes on a fresh setup.
fn ops_of(f: impl Fn(&Database, u64)) -> u64 {
    let (disk, db, id, _) = fault_setup();
    db.checkpoint().unwrap();
    let before = disk.data.ops();
    f(&db, id);
    disk.data.ops() - before
}

/// The data file fails at each operation of a committed delete's unpin:
/// the delete is acknowledged (its WAL record is durable), the failure
/// shows up (here: compaction reports it), and a reopen has no savepoint.
#[test]
fn an_io_failure_in_a_deletes_unpin_is_reported_and_the_savepoint_stays_deleted() {
    let deleting = |db: &Database, id: u64| {
        let txn = db.begin_write().unwrap();
        assert!(txn.delete_persistent_savepoint(id).unwrap());
        txn.open_table(table(M)).unwrap().insert(5, 5).unwrap();
        txn.commit().unwrap();
    };
    let total = ops_of(deleting);
    assert!(total > 0, "the unpin writes the data file");
    let mut fired_in_unpin = 0;
    for k in 0..total {
        let (disk, db, id, state) = fault_setup();
        db.checkpoint().unwrap();
        let at = disk.data.ops() + k;
        disk.data.fail_op(at, std::io::ErrorKind::Other);
        let txn = db.begin_write().unwrap();
        assert!(txn.delete_persistent_savepoint(id).unwrap());
        txn.open_table(table(M)).unwrap().insert(5, 5).unwrap();
        let committed = txn.commit();
        let fired = disk.data.ops() > at;
        let what = format!("fault at op {k} of {total} (fired {fired}, commit {committed:?})");
        if committed.is_ok() && fired {
            let mut db = db;
            let reported = db.compact();
            assert!(
                reported.is_err(),
                "{what}: the failure is reported, compact gave {reported:?}"
            );
            fired_in_unpin += 1;
            check_after_fault(&disk, db, id, &state, Some(false), &what);
        } else {
            check_after_fault(&disk, db, id, &state, committed.is_ok().then_some(false), &what);
        }
    }
    assert!(fired_in_unpin > 0, "no fault landed after an acknowledged delete");
}

/// The data file fails at each operation of the unpin a dropped
/// transaction runs for the savepoint it made: a reopen has no savepoint
/// (never committed) and compacts.
#[test]
fn an_io_failure_in_a_dropped_savepoints_unpin_leaves_no_savepoint() {
    let (disk, db, _, _) = fault_setup();
    db.checkpoint().unwrap();
    let txn = db.begin_write().unwrap();
    txn.persistent_savepoint().unwrap();
    let before = disk.data.ops();
    drop(txn);
    let total = disk.data.ops() - before;
    drop(db);
    assert!(total > 0, "the unpin writes the data file");
    for k in 0..total {
        let (disk, db, old, state) = fault_setup();
        db.checkpoint().unwrap();
        let txn = db.begin_write().unwrap();
        let id = txn.persistent_savepoint().unwrap();
        let at = disk.data.ops() + k;
        disk.data.fail_op(at, std::io::ErrorKind::Other);
        drop(txn);
        let what = format!("fault at op {k} of {total} of the drop's unpin");
        // A savepoint exists, so compaction would refuse for that: a
        // commit and a checkpoint (a flush) must meet the failure instead.
        let fired = disk.data.ops() > at;
        let reported = db.begin_write().map_err(|e| e.to_string()).and_then(|txn| {
            txn.open_table(table(M)).unwrap().insert(6, 6).unwrap();
            txn.commit().map_err(|e| e.to_string())?;
            db.checkpoint().map_err(|e| e.to_string())
        });
        assert!(
            !fired || reported.is_err(),
            "{what}: the failure is reported (a commit and checkpoint gave {reported:?})"
        );
        drop(db);
        // The dropped savepoint is never there; the committed one is.
        for mode in [TearMode::DropAll, TearMode::KeepAll] {
            let image = disk.crashed(mode);
            let mut again = image.open(&builder());
            assert!(again.check_integrity().unwrap(), "{what} ({mode:?}): integrity");
            assert_eq!(listed(&again), vec![old], "{what} ({mode:?}): savepoints");
            assert_eq!(
                &restored(&again, old),
                &state,
                "{what} ({mode:?}): savepoint {old} whole"
            );
            let txn = again.begin_write().unwrap();
            txn.delete_persistent_savepoint(old).unwrap();
            txn.commit().unwrap();
            if let Err(e) = again.compact() {
                panic!("{what} ({mode:?}): compaction after the reopen: {e:?}");
            }
        }
        assert_ne!(id, old);
    }
}

/// The database handle goes first (its drop checkpoints and retires the
/// WAL), then a transaction that made a persistent savepoint is dropped
/// (its unpin runs with the background threads gone): a reopen finds no
/// savepoint, a clean file, and compacts; the committed savepoint is whole.
#[test]
fn a_savepoints_transaction_dropped_after_its_database() {
    for commit_after in [false, true] {
        let (disk, db, old, state) = fault_setup();
        let txn = db.begin_write().unwrap();
        let id = txn.persistent_savepoint().unwrap();
        txn.open_table(table(M)).unwrap().insert(77, 77).unwrap();
        drop(db);
        if commit_after {
            // A live write transaction finishes first (as redb's).
            let _ = txn.commit();
        } else {
            drop(txn);
        }
        let what = format!(
            "transaction {} after the database",
            if commit_after { "committed" } else { "dropped" }
        );
        for mode in [TearMode::DropAll, TearMode::KeepAll] {
            let image = disk.crashed(mode);
            let mut again = image.open(&builder());
            assert!(again.check_integrity().unwrap(), "{what} ({mode:?}): integrity");
            let ids = listed(&again);
            assert!(ids.contains(&old), "{what} ({mode:?}): savepoint {old} kept");
            assert_eq!(
                &restored(&again, old),
                &state,
                "{what} ({mode:?}): savepoint {old} whole"
            );
            if !commit_after {
                assert_eq!(ids, vec![old], "{what} ({mode:?}): savepoints");
            }
            check_w(&again, 200, &what);
            for sp in ids {
                let txn = again.begin_write().unwrap();
                txn.delete_persistent_savepoint(sp).unwrap();
                txn.commit().unwrap();
            }
            if let Err(e) = again.compact() {
                panic!("{what} ({mode:?}): compaction after the reopen: {e:?} (new savepoint {id})");
            }
        }
    }
}

/// A delete committed with `commit_pipelined` leaves its pin to the next
/// open or compaction (`unpin_after_commit` runs only in `commit`): the
/// compaction drops it and succeeds, and a power cut after it finds no
/// savepoint.
#[test]
fn a_pipelined_delete_then_compaction() {
    let (disk, mut db, id, _) = fault_setup();
    let txn = db.begin_write().unwrap();
    assert!(txn.delete_persistent_savepoint(id).unwrap());
    txn.commit_pipelined().unwrap().wait().unwrap();
    assert_eq!(listed(&db), Vec::<u64>::new());
    if let Err(e) = db.compact() {
        panic!("compaction after a pipelined delete: {e:?}");
    }
    assert!(db.check_integrity().unwrap());
    for mode in [TearMode::DropAll, TearMode::KeepAll] {
        let mut again = disk.crashed(mode).open(&builder());
        assert!(again.check_integrity().unwrap(), "{mode:?}: integrity");
        assert_eq!(listed(&again), Vec::<u64>::new(), "{mode:?}: savepoints");
        check_w(&again, 200, "after a pipelined delete and compaction");
        if let Err(e) = again.compact() {
            panic!("{mode:?}: compaction after the reopen: {e:?}");
        }
    }
}
