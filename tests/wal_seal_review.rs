//! Adversarial review of the WAL's seals, the eager first segment of every
//! writable open and the two-step open (`Journal::recover`, then
//! `RecoveredLog::start`), commit 4149489. The promise: an open never
//! silently loses acknowledged commits, never refuses what a legitimate
//! sequence of operations plus power cuts can leave, and a refused or
//! aborted open changes nothing.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::Rng;
use common::engine::read_u64_model;
use sluicedb::btree::bytewise;
use sluicedb::engine::{Engine, EngineOptions};
use sluicedb::io::{CrashBackend, CrashDisk, LogDir, StorageBackend, TearMode};
use sluicedb::{Builder, Database, ReadableDatabase, ReadableTableMetadata, StorageError, TableDefinition};

type Model = BTreeMap<u64, Vec<u8>>;

const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");

/// Segments of 1 KiB: a commit of 2000 bytes rolls the log on its own,
/// smaller ones share a segment. No checkpoint but the ones asked for.
fn options() -> EngineOptions {
    EngineOptions {
        segment_bytes: 1 << 10,
        checkpoint_wal_bytes: 1 << 40,
        checkpoint_interval: Duration::from_secs(24 * 3600),
        memtable_bytes: 64 << 20,
        max_frozen_bytes: 256 << 20,
        ..common::engine::small_options()
    }
}

fn repairing() -> EngineOptions {
    EngineOptions {
        repair_wal: true,
        ..options()
    }
}

fn read_only() -> EngineOptions {
    EngineOptions {
        read_only: true,
        ..options()
    }
}

/// Key `k`'s value: every third one larger than a segment.
fn value(k: u64) -> Vec<u8> {
    let mut v = format!("value of {k} ").into_bytes();
    v.resize(if k.is_multiple_of(3) { 2000 } else { 300 }, b'v');
    v
}

/// One durable commit of key `k`.
fn try_put(db: &Engine, k: u64) -> Result<(), StorageError> {
    let mut w = db.begin_write()?;
    let t = w.open_table(b"t", b"bytes", bytewise)?;
    w.insert(t, &k.to_be_bytes(), &value(k))?;
    w.commit()
}

fn contents(db: &Engine) -> Model {
    read_u64_model(db, b"t", bytewise).map_or_else(Model::new, |(model, _)| model)
}

/// Keys 1..=n with their values.
fn first_keys(n: u64) -> Model {
    (1..=n).map(|k| (k, value(k))).collect()
}

/// Checks a recovered state: keys 1..=m with `acked <= m <= tried`.
/// Returns m.
fn check_prefix(found: &Model, acked: u64, tried: u64, what: &str) -> u64 {
    let m = found.len() as u64;
    assert!(
        m >= acked && m <= tried,
        "{what}: {m} keys recovered, {acked} acknowledged, {tried} tried"
    );
    assert!(*found == first_keys(m), "{what}: not the first {m} keys");
    m
}

/// `disk` with spare segments on.
fn spared(disk: CrashDisk) -> CrashDisk {
    CrashDisk {
        data: disk.data,
        wal: disk.wal.with_spares(true),
    }
}

fn open(disk: &CrashDisk, options: EngineOptions) -> Result<Engine, StorageError> {
    Engine::open(disk.data.clone(), disk.wal.clone(), options)
}

fn open_ok(disk: &CrashDisk, options: EngineOptions, what: &str) -> Engine {
    open(disk, options).unwrap_or_else(|e| panic!("{what}: the open was refused: {e}"))
}

fn segments(disk: &CrashDisk) -> Vec<String> {
    common::wal::segment_files(&disk.wal)
}

/// Every byte of `disk`: the data file's and each WAL file's.
fn bytes_of(disk: &CrashDisk) -> (Vec<u8>, BTreeMap<String, Vec<u8>>) {
    let wal = disk
        .wal
        .list()
        .unwrap()
        .into_iter()
        .map(|name| {
            let bytes = disk.wal.file_bytes(&name).unwrap();
            (name, bytes)
        })
        .collect();
    (disk.data.current_image(), wal)
}

/// What [`rolling_run`] left: the image, the keys acknowledged and tried,
/// and the WAL operations counted from the first commit.
struct Run {
    image: CrashDisk,
    acked: u64,
    tried: u64,
    span: u64,
}

/// Commits keys 1..=`keys` (rolling the log at most commits, spares on)
/// with the WAL's power cut after `cut` operations from the first commit,
/// stopping at the first failure; the image is taken with `mode`.
fn rolling_run(cut: Option<u64>, keys: u64, mode: TearMode) -> Run {
    let disk = spared(CrashDisk::new());
    let db = open_ok(&disk, options(), "the first open");
    let start = disk.wal.ops();
    if let Some(n) = cut {
        disk.wal.cut_power_after(start + n);
    }
    let (mut acked, mut tried) = (0, 0);
    for k in 1..=keys {
        tried = k;
        if try_put(&db, k).is_err() {
            break;
        }
        acked = k;
    }
    let span = disk.wal.ops() - start;
    let image = disk.crashed(mode);
    drop(db);
    Run {
        image,
        acked,
        tried,
        span,
    }
}

/// Opens `run`'s image, checks it, crashes right after the open and
/// opens again: the same keys both times.
fn check_run(run: &Run, what: &str) {
    let db = open_ok(&run.image, options(), what);
    let m = check_prefix(&contents(&db), run.acked, run.tried, what);
    let again = run.image.crashed(TearMode::DropAll);
    drop(db);
    let what = format!("{what}, then a crash right after the open");
    let db = open_ok(&again, options(), &what);
    check_prefix(&contents(&db), m, m, &what);
}

/// A power cut at every WAL operation of a run of commits that roll the
/// log (with spares), writes dropped or torn: every image opens with every
/// acknowledged commit, and so does a crash right after that open.
#[test]
fn a_power_cut_at_every_wal_operation_of_rolls_with_spares() {
    let span = rolling_run(None, 14, TearMode::DropAll).span;
    for n in 0..=span + 4 {
        for mode in [TearMode::DropAll, TearMode::Random(n)] {
            let run = rolling_run(Some(n), 14, mode);
            check_run(&run, &format!("cut after {n} of {span}, {mode:?}"));
        }
    }
}

/// A read-only open of every crash image of rolling commits (over a copy
/// of the WAL, as `ReadOnlyDatabase` reads it), then a writable open of
/// the image itself: neither refuses, and both see the same keys.
#[test]
fn a_read_only_open_beside_every_crashed_writer_with_rolls() {
    let span = rolling_run(None, 10, TearMode::DropAll).span;
    for n in 0..=span + 4 {
        let run = rolling_run(Some(n), 10, TearMode::Random(n));
        let what = format!("cut after {n} of {span}");
        let copy = run.image.copy();
        let db = open(&copy, read_only()).unwrap_or_else(|e| panic!("{what}: the read-only open was refused: {e}"));
        let seen = contents(&db);
        check_prefix(&seen, run.acked, run.tried, &what);
        drop(db);
        let db = open_ok(&run.image, options(), &what);
        assert!(contents(&db) == seen, "{what}: the writable open sees other keys");
    }
}

/// Crash images of rolling commits (every third WAL cut), each opened with
/// the power cut at every data-file and then every WAL operation of the
/// open and its first commit: every restart opens with every acknowledged
/// commit.
#[test]
fn a_power_cut_at_every_operation_of_the_open_after_a_crashed_roll() {
    let span = rolling_run(None, 9, TearMode::DropAll).span;
    for n in (0..=span).step_by(3) {
        let run = rolling_run(Some(n), 9, TearMode::Random(n));
        // The operations of an uncut open and commit.
        let (data_span, wal_span) = {
            let copy = run.image.copy();
            let (d, w) = (copy.data.ops(), copy.wal.ops());
            let db = open_ok(&copy, options(), "uncut");
            try_put(&db, run.tried + 1).unwrap();
            drop(db);
            (copy.data.ops() - d, copy.wal.ops() - w)
        };
        let cuts = (0..=data_span)
            .map(|c| (true, c))
            .chain((0..=wal_span).map(|c| (false, c)));
        for (on_data, c) in cuts {
            let what = format!(
                "image cut after {n} of {span}; its open cut after {c} {} operations",
                if on_data { "data-file" } else { "WAL" }
            );
            let image = run.image.copy();
            if on_data {
                image.data.cut_power_after(image.data.ops() + c);
            } else {
                image.wal.cut_power_after(image.wal.ops() + c);
            }
            let (mut acked, mut tried) = (run.acked, run.tried);
            let opened = open(&image, options());
            if let Ok(db) = &opened {
                let m = check_prefix(&contents(db), run.acked, run.tried, &what);
                (acked, tried) = (m, m + 1);
                if try_put(db, m + 1).is_ok() {
                    acked = m + 1;
                }
            }
            let restart = image.crashed(TearMode::Random(c));
            drop(opened);
            let db = open_ok(&restart, options(), &what);
            check_prefix(&contents(&db), acked, tried, &what);
        }
    }
}

/// Crash after crash with 1 KiB segments and spares: some opens are cut
/// by a power failure part way, some crash before any commit (leaving the
/// open's empty first segment), others commit a few keys (sometimes a
/// checkpoint between) and crash at a random moment. Every image opens
/// (probed on a copy) with every acknowledged commit.
#[test]
fn crash_open_crash_cycles_with_tiny_segments_and_empty_first_segments() {
    for seed in [1u64, 7, 42, 2026] {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut disk = spared(CrashDisk::new());
        let (mut acked, mut tried) = (0u64, 0u64);
        for round in 0..40u64 {
            let what = format!("seed {seed} round {round}");
            {
                let probe = disk.copy();
                let db = open_ok(&probe, options(), &what);
                acked = check_prefix(&contents(&db), acked, tried, &what);
                tried = acked;
            }
            match rng.below(4) {
                0 => {
                    // A power cut during the open.
                    let c = rng.below(12);
                    if rng.chance(50) {
                        disk.data.cut_power_after(disk.data.ops() + c);
                    } else {
                        disk.wal.cut_power_after(disk.wal.ops() + c);
                    }
                    let opened = open(&disk, options());
                    let next = disk.crashed(TearMode::Random(rng.next()));
                    drop(opened);
                    disk = next;
                }
                1 => {
                    // A crash before any commit.
                    let db = open_ok(&disk, options(), &what);
                    let next = disk.crashed(TearMode::Random(rng.next()));
                    drop(db);
                    disk = next;
                }
                _ => {
                    let db = open_ok(&disk, options(), &what);
                    let cut = rng.below(40);
                    disk.wal.cut_power_after(disk.wal.ops() + cut);
                    for _ in 0..rng.below(4) + 1 {
                        tried += 1;
                        if try_put(&db, tried).is_err() {
                            break;
                        }
                        acked = tried;
                        if rng.one_in(3) {
                            let _ = db.checkpoint();
                        }
                    }
                    let next = disk.crashed(TearMode::Random(rng.next()));
                    drop(db);
                    disk = next;
                }
            }
        }
    }
}

/// The image of a closed log whose newest segment an operator deleted:
/// commits 1..=9 each durable, the log rolled at most of them, the engine
/// dropped (a crash: nothing checkpointed). Returns it and the segment
/// deleted.
fn missing_newest_segment() -> (CrashDisk, String) {
    let disk = CrashDisk::new();
    let db = open_ok(&disk, options(), "the first open");
    for k in 1..=9 {
        try_put(&db, k).unwrap();
    }
    let image = disk.crashed(TearMode::DropAll);
    drop(db);
    let all = segments(&image);
    assert!(all.len() >= 4, "the log rolled: {all:?}");
    let newest = all.last().unwrap().clone();
    image.wal.remove(&newest).unwrap();
    (image, newest)
}

/// A log whose newest segment is gone is refused, naming it, with no byte
/// changed; the repair option accepts the loss, keeps every key before
/// the missing segment, and the database then works across plain reopens
/// and crashes.
#[test]
fn the_repair_option_accepts_a_missing_segment_and_the_database_works_after() {
    let (image, newest) = missing_newest_segment();
    let before = bytes_of(&image);
    let err = open(&image, options())
        .err()
        .expect("a log whose last segment is sealed is refused");
    assert!(
        err.to_string().contains(&newest),
        "the error names the missing segment: {err}"
    );
    assert!(bytes_of(&image) == before, "the refused open changed bytes");

    let db = open_ok(&image, repairing(), "the repairing open");
    let kept = check_prefix(&contents(&db), 0, 9, "the repairing open");
    assert!(kept < 9, "the missing segment's keys are gone");
    let crashed = image.crashed(TearMode::DropAll);
    try_put(&db, 100).unwrap();
    let after_commit = image.crashed(TearMode::DropAll);
    drop(db);

    let db = open_ok(&crashed, options(), "a plain open after a crash right after the repair");
    check_prefix(
        &contents(&db),
        kept,
        kept,
        "a plain open after a crash right after the repair",
    );
    drop(db);

    let db = open_ok(&after_commit, options(), "a plain open after the repair and a commit");
    let mut expected = first_keys(kept);
    expected.insert(100, value(100));
    assert!(contents(&db) == expected, "the commit after the repair");
    for k in 101..=106 {
        try_put(&db, k).unwrap();
        expected.insert(k, value(k));
    }
    db.checkpoint().unwrap();
    try_put(&db, 107).unwrap();
    expected.insert(107, value(107));
    let again = after_commit.crashed(TearMode::Random(3));
    drop(db);
    let db = open_ok(&again, options(), "a plain open after more commits and a crash");
    assert!(contents(&db) == expected, "every commit after the repair");
}

/// The repairing open of a log missing its newest segment, with the power
/// cut at every data-file and every WAL operation of it: each restart
/// opens with the repair option, with every key the repair keeps, and
/// once repaired, opens plainly.
#[test]
fn a_power_cut_at_every_operation_of_a_repair_of_a_missing_segment() {
    let (base, _) = missing_newest_segment();
    let kept = {
        let copy = base.copy();
        let db = open_ok(&copy, repairing(), "uncut");
        contents(&db).len() as u64
    };
    let (data_span, wal_span) = {
        let copy = base.copy();
        let (d, w) = (copy.data.ops(), copy.wal.ops());
        drop(open_ok(&copy, repairing(), "uncut"));
        (copy.data.ops() - d, copy.wal.ops() - w)
    };
    let cuts = (0..=data_span)
        .map(|c| (true, c))
        .chain((0..=wal_span).map(|c| (false, c)));
    for (on_data, c) in cuts {
        let what = format!(
            "repair cut after {c} {} operations",
            if on_data { "data-file" } else { "WAL" }
        );
        let image = base.copy();
        if on_data {
            image.data.cut_power_after(image.data.ops() + c);
        } else {
            image.wal.cut_power_after(image.wal.ops() + c);
        }
        let opened = open(&image, repairing());
        let restart = image.crashed(TearMode::Random(c));
        drop(opened);
        let db = open_ok(&restart, repairing(), &what);
        check_prefix(&contents(&db), kept, kept, &what);
        let again = restart.crashed(TearMode::DropAll);
        drop(db);
        let db = open_ok(&again, options(), &format!("{what}, repaired, then a plain open"));
        check_prefix(&contents(&db), kept, kept, &what);
    }
}

/// A database on the public API whose newest WAL segment is gone: a
/// repair callback that aborts changes no byte; the repair option with a
/// callback that accepts opens it, and it then works across plain
/// reopens.
#[test]
fn a_database_repair_callback_aborts_with_nothing_changed_then_accepts() {
    let disk = CrashDisk::new();
    let db = open_db(&disk);
    for k in 0..10u64 {
        commit_big(&db, k);
    }
    let image = disk.crashed(TearMode::DropAll);
    drop(db);
    let all = segments(&image);
    assert!(all.len() >= 2, "the log rolled: {all:?}");
    image.wal.remove(all.last().unwrap()).unwrap();
    let before = bytes_of(&image);

    let mut aborting = Builder::new();
    aborting
        .set_repair_wal(true)
        .set_repair_callback(|session| session.abort());
    let result = aborting.create_with_backends(image.data.clone(), image.wal.clone());
    assert!(result.is_err(), "the callback aborted the repair");
    drop(result);
    assert!(bytes_of(&image) == before, "the aborted repair changed bytes");

    let mut accepting = Builder::new();
    accepting.set_repair_wal(true).set_repair_callback(|_| {});
    let db = accepting
        .create_with_backends(image.data.clone(), image.wal.clone())
        .unwrap_or_else(|e| panic!("the accepted repair was refused: {e}"));
    let kept = db.begin_read().unwrap().open_table(T).unwrap().len().unwrap();
    assert!(kept < 10);
    let txn = db.begin_write().unwrap();
    txn.open_table(T).unwrap().insert(100, b"after".as_slice()).unwrap();
    txn.commit().unwrap();
    let crashed = image.crashed(TearMode::DropAll);
    drop(db);
    for (what, disk) in [("after a close", &image), ("after a crash", &crashed)] {
        let db = Builder::new()
            .create_with_backends(disk.data.clone(), disk.wal.clone())
            .unwrap_or_else(|e| panic!("a plain open {what} was refused: {e}"));
        let read = db.begin_read().unwrap();
        let table = read.open_table(T).unwrap();
        assert_eq!(table.len().unwrap(), kept + 1, "{what}");
        assert!(table.get(100).unwrap().is_some(), "{what}");
    }
}

/// Compaction between rolling commits, with the data file's power cut at
/// every operation of it: every image opens with every acknowledged commit.
#[test]
fn a_power_cut_at_every_data_file_operation_of_a_compaction() {
    let run = |cut: Option<u64>| -> (CrashDisk, u64, u64, u64) {
        let disk = spared(CrashDisk::new());
        let db = open_ok(&disk, options(), "the first open");
        for k in 1..=6 {
            try_put(&db, k).unwrap();
        }
        db.checkpoint().unwrap();
        for k in 7..=9 {
            try_put(&db, k).unwrap();
        }
        let start = disk.data.ops();
        if let Some(n) = cut {
            disk.data.cut_power_after(start + n);
        }
        let _ = db.compact();
        let (mut acked, mut tried) = (9, 9);
        for k in 10..=12 {
            tried = k;
            if try_put(&db, k).is_err() {
                break;
            }
            acked = k;
        }
        let span = disk.data.ops() - start;
        let image = disk.crashed(TearMode::Random(cut.unwrap_or(0)));
        drop(db);
        (image, acked, tried, span)
    };
    let (_, _, _, span) = run(None);
    for n in 0..=span {
        let (image, acked, tried, _) = run(Some(n));
        let what = format!("compaction cut after {n} of {span}");
        let db = open_ok(&image, options(), &what);
        check_prefix(&contents(&db), acked, tried, &what);
    }
}

/// A backup of a database whose log rolled (and holds commits after the
/// checkpoint) opens with every key, and so does the database after it.
#[test]
fn a_backup_of_a_database_with_a_rolled_log_opens() {
    let disk = CrashDisk::new();
    let db = open_db(&disk);
    for k in 0..8u64 {
        commit_big(&db, k);
        if k == 3 {
            db.checkpoint().unwrap();
        }
    }
    let copy = CrashDisk::new();
    db.backup_to_backends(copy.data.clone(), copy.wal.clone(), |_| {})
        .unwrap();
    let image = disk.crashed(TearMode::DropAll);
    drop(db);
    // As `backup` publishes it: the data file alone.
    let published = CrashDisk::new();
    published.data.write(0, &copy.data.durable_image()).unwrap();
    published.data.sync_data().unwrap();
    for (what, disk) in [("the backup", &published), ("the database after the backup", &image)] {
        let db = Builder::new()
            .create_with_backends(disk.data.clone(), disk.wal.clone())
            .unwrap_or_else(|e| panic!("{what} was refused: {e}"));
        assert_eq!(
            db.begin_read().unwrap().open_table(T).unwrap().len().unwrap(),
            8,
            "{what}"
        );
    }
}

/// A database on a WAL directory, closed, then opened with
/// `create_with_backend` (a volatile WAL, as redb's backends), written and
/// closed, then opened on its WAL directory again: every open succeeds with
/// every key.
#[test]
fn a_volatile_open_of_a_file_used_with_a_wal_and_back() {
    let disk = CrashDisk::new();
    let db = open_db(&disk);
    let txn = db.begin_write().unwrap();
    txn.open_table(T).unwrap().insert(1, b"one".as_slice()).unwrap();
    txn.commit().unwrap();
    db.close().unwrap();

    let db = Builder::new()
        .create_with_backend(common::Crashing(disk.data.clone()))
        .unwrap_or_else(|e| panic!("the volatile open was refused: {e}"));
    let txn = db.begin_write().unwrap();
    txn.open_table(T).unwrap().insert(2, b"two".as_slice()).unwrap();
    txn.commit().unwrap();
    db.close().unwrap();

    let db = Builder::new()
        .create_with_backends(disk.data.clone(), disk.wal.clone())
        .unwrap_or_else(|e| panic!("the open on the WAL directory again was refused: {e}"));
    assert_eq!(db.begin_read().unwrap().open_table(T).unwrap().len().unwrap(), 2);
}

/// A database on a WAL directory, closed cleanly, then opened again and
/// the process killed right after the open, before any commit (every
/// commit is in the data file). The data file alone (a volatile open,
/// `create_with_backend`, and a read-only open in a backend) is refused:
/// it cannot tell that the open it names committed nothing, and the log it
/// started may hold acknowledged commits (`design/wal.md`, "A missing
/// log"). With the WAL repair option the volatile open accepts that and
/// finds every commit; beside its own WAL directory the file opens plainly.
#[test]
fn a_data_file_alone_after_a_wal_open_killed_before_any_commit() {
    let disk = CrashDisk::new();
    let db = open_db(&disk);
    let txn = db.begin_write().unwrap();
    txn.open_table(T).unwrap().insert(1, b"one".as_slice()).unwrap();
    txn.commit().unwrap();
    db.close().unwrap();
    let db = open_db(&disk);
    let image = disk.crashed(TearMode::DropAll);
    drop(db);

    let data = Arc::new(CrashBackend::from_bytes(image.data.durable_image()));
    let ro = Builder::new().open_read_only_with_backend(common::Crashing(data.clone()));
    let Err(ro_error) = ro else {
        panic!("a read-only open of the data file without its WAL opened")
    };
    assert!(ro_error.to_string().contains("is missing"), "{ro_error}");
    let Err(rw_error) = Builder::new().create_with_backend(common::Crashing(data.clone())) else {
        panic!("a volatile open of the data file without its WAL opened")
    };
    assert!(rw_error.to_string().contains("is missing"), "{rw_error}");
    let db = Builder::new()
        .set_repair_wal(true)
        .create_with_backend(common::Crashing(data))
        .unwrap();
    assert_eq!(db.begin_read().unwrap().open_table(T).unwrap().len().unwrap(), 1);
    drop(db);
    let db = open_db(&image);
    assert_eq!(db.begin_read().unwrap().open_table(T).unwrap().len().unwrap(), 1);
}

/// `Database::drop` beside a rolled log (with spares), the power cut at
/// every WAL operation of the drop's checkpoint and retirement: every
/// image opens with every key.
#[test]
fn a_power_cut_at_every_wal_operation_of_a_database_drop_with_spares() {
    let run = |cut: Option<u64>| -> (CrashDisk, u64) {
        let disk = spared(CrashDisk::new());
        let db = open_db(&disk);
        for k in 0..8u64 {
            commit_big(&db, k);
        }
        let start = disk.wal.ops();
        if let Some(n) = cut {
            disk.wal.cut_power_after(start + n);
        }
        drop(db);
        let span = disk.wal.ops() - start;
        (disk.crashed(TearMode::Random(cut.unwrap_or(0))), span)
    };
    let (_, span) = run(None);
    for n in 0..=span + 2 {
        let (image, _) = run(Some(n));
        let what = format!("drop cut after {n} of {span}");
        let db = Builder::new()
            .create_with_backends(image.data.clone(), image.wal.clone())
            .unwrap_or_else(|e| panic!("{what}: refused: {e}"));
        assert_eq!(
            db.begin_read().unwrap().open_table(T).unwrap().len().unwrap(),
            8,
            "{what}"
        );
    }
}

/// Commits key `k` with a value of 300 KiB (a segment's worth: the log rolls).
fn commit_big(db: &Database, k: u64) {
    let txn = db.begin_write().unwrap();
    txn.open_table(T)
        .unwrap()
        .insert(k, vec![k as u8; 300 << 10].as_slice())
        .unwrap();
    txn.commit().unwrap();
}

/// The database on `disk`, opened with the default builder.
fn open_db(disk: &CrashDisk) -> Database {
    Builder::new()
        .create_with_backends(disk.data.clone(), disk.wal.clone())
        .unwrap()
}
