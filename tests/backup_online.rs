//! Online backup and explicit close.
//!
//! - Under concurrent writes, the copy holds exactly one commit prefix:
//!   every commit up to the snapshot's sequence and none after (checked by
//!   commits that each write to three tables at once).
//! - A power cut at any point of the copy leaves a copy that is refused, or
//!   opens with a consistent subset of the snapshot (never a wrong entry);
//!   a backup that returned `Ok` opens with exactly the snapshot. At the
//!   file level the copy appears at `dest` only once complete (the rename).
//! - Custom key orders are copied when known and refused clearly when not.
//! - `close` makes `Durability::None` commits durable and checkpointed, and
//!   reports a failure a drop would swallow.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sluicedb::io::{CrashBackend, CrashLogDir, MemLogDir, MemoryBackend, TearMode};
use sluicedb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

const A: TableDefinition<u64, &str> = TableDefinition::new("a");
const B: TableDefinition<u64, u64> = TableDefinition::new("b");
const COUNT: TableDefinition<&str, u64> = TableDefinition::new("count");
const CUSTOM: TableDefinition<(&str, u32), u64> = TableDefinition::new("custom");

fn commit(db: &Database, n: u64, durability: Durability) {
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(durability).unwrap();
    {
        txn.open_table(A)
            .unwrap()
            .insert(n, format!("value {n}").as_str())
            .unwrap();
        txn.open_table(B).unwrap().insert(n, n * 3).unwrap();
        txn.open_table(COUNT).unwrap().insert("n", n).unwrap();
    }
    txn.commit().unwrap();
}

/// Every table as `name -> (key bytes -> value bytes)`, through the engine.
fn contents(db: &Database) -> BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, Vec<u8>>> {
    let read = db.engine().begin_read().unwrap();
    let mut all = BTreeMap::new();
    for (name, _) in read.list_tables().unwrap() {
        let order = read.table_order(&name).unwrap().unwrap().unwrap();
        let table = read.open_table(&name, order).unwrap().unwrap();
        let entries = read
            .range(&table, std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.into_vec(), v.as_bytes().to_vec())
            })
            .collect();
        all.insert(name, entries);
    }
    all
}

/// The commit count a copy holds, checking that it is one whole prefix:
/// keys 1..=n in both data tables and the counter at n.
fn prefix_of(db: &Database) -> u64 {
    let read = db.begin_read().unwrap();
    let Ok(count) = read.open_table(COUNT) else { return 0 };
    let n = count.get("n").unwrap().map_or(0, |v| v.value());
    let a = read.open_table(A).unwrap();
    let b = read.open_table(B).unwrap();
    assert_eq!(a.len().unwrap(), n, "table a is not the prefix of {n} commits");
    assert_eq!(b.len().unwrap(), n, "table b is not the prefix of {n} commits");
    for (i, entry) in a.iter().unwrap().enumerate() {
        let (k, v) = entry.unwrap();
        assert_eq!(k.value(), i as u64 + 1);
        assert_eq!(v.value(), format!("value {}", i + 1));
    }
    for (i, entry) in b.iter().unwrap().enumerate() {
        let (k, v) = entry.unwrap();
        assert_eq!((k.value(), v.value()), (i as u64 + 1, (i as u64 + 1) * 3));
    }
    n
}

#[test]
fn backup_under_concurrent_writes_holds_exactly_one_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        Database::builder()
            .set_memtable_size(64 << 10)
            .create(dir.path().join("src.db"))
            .unwrap(),
    );
    for n in 1..=2000 {
        commit(&db, n, Durability::None);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 2000;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                commit(
                    &db,
                    n,
                    if n % 2 == 0 {
                        Durability::None
                    } else {
                        Durability::Immediate
                    },
                );
            }
            n
        })
    };
    let mut copies = Vec::new();
    for round in 0..3 {
        let dest = dir.path().join(format!("copy-{round}.db"));
        let report = db.backup(&dest).unwrap();
        copies.push((dest, report));
    }
    stop.store(true, Ordering::Relaxed);
    let last = writer.join().unwrap();
    for (dest, report) in copies {
        assert!(!dir.path().join(format!("{}.backup-partial", dest.display())).exists());
        let copy = Database::open(&dest).unwrap();
        let n = prefix_of(&copy);
        assert!(
            (2000..=last).contains(&n),
            "copy holds {n} commits, outside 2000..={last}"
        );
        assert_eq!(report.tables, 3);
        assert_eq!(report.entries, 2 * n + 1);
        // Checkpointed and compact: nothing to replay, and the integrity
        // check passes.
        assert_eq!(copy.stats().recovery.replayed_records, 0);
        let mut copy = copy;
        assert!(copy.check_integrity().unwrap());
    }
}

#[test]
fn backup_refuses_an_existing_destination() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("src.db")).unwrap();
    commit(&db, 1, Durability::Immediate);
    let dest = dir.path().join("taken.db");
    std::fs::write(&dest, b"precious").unwrap();
    let err = db.backup(&dest).unwrap_err();
    assert!(err.to_string().contains("exists"), "{err}");
    assert_eq!(std::fs::read(&dest).unwrap(), b"precious");
}

#[test]
fn custom_orders_are_copied_when_known_and_refused_when_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("src.db");
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(CUSTOM).unwrap();
            for (i, name) in ["b", "a", "ab", ""].iter().enumerate() {
                t.insert((*name, i as u32), i as u64).unwrap();
            }
        }
        txn.commit().unwrap();
        db.close().unwrap();
    }
    let db = Database::open(&path).unwrap();
    let err = db.backup(dir.path().join("refused.db")).unwrap_err();
    assert!(err.to_string().contains("custom key order"), "{err}");
    assert!(!dir.path().join("refused.db").exists());
    // Opening the table through its type teaches this process its order.
    drop(db.begin_read().unwrap().open_table(CUSTOM).unwrap());
    db.backup(dir.path().join("copy.db")).unwrap();
    let copy = Database::open(dir.path().join("copy.db")).unwrap();
    let read = copy.begin_read().unwrap();
    let keys: Vec<(String, u32)> = read
        .open_table(CUSTOM)
        .unwrap()
        .iter()
        .unwrap()
        .map(|e| {
            let (k, _) = e.unwrap();
            let (s, n) = k.value();
            (s.to_string(), n)
        })
        .collect();
    let want: Vec<(String, u32)> = vec![("".into(), 3), ("a".into(), 1), ("ab".into(), 2), ("b".into(), 0)];
    assert_eq!(keys, want);
}

/// Power cuts during the copy, at every few operations of the copy's data
/// file and of its WAL, with torn unsynced writes.
#[test]
fn a_crash_during_the_copy_never_leaves_a_wrong_entry() {
    let source = Database::builder()
        .create_with_backends(MemoryBackend::new(), MemLogDir::new())
        .unwrap();
    for n in 1..=300 {
        commit(&source, n, Durability::None);
    }
    let snapshot = contents(&source);

    // A clean run: how many operations a copy takes, and that it is exact.
    let (data, wal) = (Arc::new(CrashBackend::new()), CrashLogDir::new());
    source.backup_to_backends(data.clone(), wal.clone(), |_| {}).unwrap();
    let (data_ops, wal_ops) = (data.ops(), wal.ops());
    let copy = Database::builder()
        .create_with_backends(CrashBackend::from_bytes(data.durable_image()), CrashLogDir::new())
        .unwrap();
    assert_eq!(contents(&copy), snapshot, "the data file alone holds the copy");

    let (mut opened, mut whole_copies) = (0, 0);
    let cuts = (0..data_ops)
        .map(|k| (Some(k), None))
        .chain((0..wal_ops).map(|k| (None, Some(k))));
    for (i, (data_cut, wal_cut)) in cuts.enumerate() {
        let (data, wal) = (Arc::new(CrashBackend::new()), CrashLogDir::new());
        if let Some(k) = data_cut {
            data.cut_power_after(k);
        }
        if let Some(k) = wal_cut {
            wal.cut_power_after(k);
        }
        let result = source.backup_to_backends(data.clone(), wal.clone(), |_| {});
        let mode = TearMode::Random(i as u64);
        if result.is_ok() {
            // How many syncs the copy's WAL sees depends on the timing of
            // its sync thread, so a run can take fewer operations than the
            // clean one did: then the cut never came. A cut among the copy's
            // last operations, the deletes of its emptied WAL after its
            // final checkpoint, fails nothing the copy promises: then the
            // data file alone must hold the whole copy. Anything else that
            // finished through a cut would be a lie.
            let attempted = if data_cut.is_some() { data.ops() } else { wal.ops() };
            let cut = data_cut.or(wal_cut).unwrap();
            if attempted > cut {
                let copy = Database::builder()
                    .create_with_backends(CrashBackend::from_bytes(data.crash_image(mode)), CrashLogDir::new())
                    .unwrap_or_else(|e| {
                        panic!("a copy cut at {data_cut:?}/{wal_cut:?} reported Ok but does not open: {e}")
                    });
                assert_eq!(
                    contents(&copy),
                    snapshot,
                    "a copy cut at {data_cut:?}/{wal_cut:?} reported Ok after {attempted} operations"
                );
            }
            continue;
        }
        let restarted =
            Database::builder().create_with_backends(CrashBackend::from_bytes(data.crash_image(mode)), wal.crash(mode));
        let Ok(mut copy) = restarted else { continue };
        opened += 1;
        let found = contents(&copy);
        if found == snapshot {
            whole_copies += 1;
        }
        for (name, entries) in found {
            let whole = snapshot.get(&name).expect("a table the snapshot lacks");
            for (k, v) in entries {
                assert_eq!(whole.get(&k), Some(&v), "a wrong entry in {name:?} after a cut");
            }
        }
        assert!(copy.check_integrity().unwrap());
    }
    eprintln!("data ops {data_ops}, wal ops {wal_ops}, opened {opened}, whole {whole_copies}");
    assert!(
        opened > whole_copies,
        "no cut left a partial copy: the test checks nothing"
    );
}

/// At the file level, a copy interrupted before its rename leaves `dest`
/// absent: only the `.backup-partial` files, which the next backup replaces.
#[test]
fn an_interrupted_backup_leaves_no_destination_and_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("src.db")).unwrap();
    for n in 1..=50 {
        commit(&db, n, Durability::None);
    }
    let dest = dir.path().join("copy.db");
    // What a crash mid-copy leaves: a partial data file and WAL directory.
    std::fs::write(dir.path().join("copy.db.backup-partial"), b"half a copy").unwrap();
    std::fs::create_dir(dir.path().join("copy.db.backup-partial-wal")).unwrap();
    assert!(Database::open(&dest).is_err(), "no database at dest before the rename");
    db.backup(&dest).unwrap();
    assert!(!dir.path().join("copy.db.backup-partial").exists());
    assert!(!dir.path().join("copy.db.backup-partial-wal").exists());
    assert_eq!(prefix_of(&Database::open(&dest).unwrap()), 50);
}

#[test]
fn close_makes_unsynced_commits_durable_and_checkpointed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path).unwrap();
    for n in 1..=100 {
        commit(&db, n, Durability::None);
    }
    db.close().unwrap();
    let db = Database::open(&path).unwrap();
    assert_eq!(db.stats().recovery.replayed_records, 0, "close checkpointed everything");
    assert_eq!(prefix_of(&db), 100);
}

#[test]
fn close_reports_a_failure_that_drop_would_swallow() {
    let wal = CrashLogDir::new();
    let db = Database::builder()
        .create_with_backends(CrashBackend::new(), wal.clone())
        .unwrap();
    commit(&db, 1, Durability::Immediate);
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(Durability::None).unwrap();
    txn.open_table(A).unwrap().insert(2, "lost").unwrap();
    // The WAL device fails before the unsynced commit reaches it.
    wal.fail_op(wal.ops(), std::io::ErrorKind::Other);
    wal.cut_power_after(wal.ops());
    txn.commit().unwrap();
    assert!(db.close().is_err(), "close must report the failed sync");
}
