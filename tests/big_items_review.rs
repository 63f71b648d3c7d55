//! Adversarial review of big items: values too large for a leaf (overflow
//! runs) and keys longer than a page (nodes spanning a run of pages),
//! across the engine's life. Values change size class between versions
//! (inline and overflow, at `MAX_INLINE_VALUE`, around the page size and
//! its multiples) through memtable flushes, checkpoints, `compact`, clean
//! reopens, WAL replays, savepoints, tree commits and power cuts, checked
//! byte-exact against a model with `check_integrity` clean, and the file
//! stays bounded under steady overwrites.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::keys::{CrashDisk, long_key};
use sluicedb::io::TearMode;
use sluicedb::{
    Builder, Database, Durability, MultimapTableDefinition, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition,
};

const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");
const LONG: TableDefinition<&[u8], &[u8]> = TableDefinition::new("long");
const MM: MultimapTableDefinition<u64, &[u8]> = MultimapTableDefinition::new("mm");

type Model = BTreeMap<u64, Vec<u8>>;
type LongModel = BTreeMap<Vec<u8>, Vec<u8>>;

/// Lengths on both sides of every size-class boundary: the inline copy
/// of a `ValueBytes` (24), `MAX_INLINE_VALUE` (1024), a 4 KiB page minus a
/// node header, a page, two pages, and a long run.
const LENS: [usize; 20] = [
    0, 1, 24, 25, 1023, 1024, 1025, 4071, 4072, 4073, 4095, 4096, 4097, 8191, 8192, 8193, 12_289, 20_000, 65_536,
    70_001,
];

/// Deterministic bytes of a version of a value: every byte depends on the
/// key, the round and the position, so a stale or shifted run shows.
fn val(key: u64, round: u64, len: usize) -> Vec<u8> {
    let seed = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ round.wrapping_mul(0xD1B5_4A32_D192_ED03);
    (0..len as u64)
        .map(|i| (common::mix(seed ^ (i / 8)) >> ((i % 8) * 8)) as u8)
        .collect()
}

fn builder() -> Builder {
    let mut b = Database::builder();
    b.set_memtable_size(48 << 10).set_checkpoint_on_drop(false);
    b
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// Every read path against the model: `len`, `get`, forward and backward
/// full scans, and a bounded range both ways.
fn check_table(db: &Database, model: &Model, what: &str) {
    let r = db.begin_read().unwrap();
    let t = r.open_table(T).unwrap();
    assert_eq!(t.len().unwrap(), model.len() as u64, "{what}: len");
    for (k, v) in model {
        let got = t.get(k).unwrap().map(|g| g.value().to_vec());
        assert!(
            got.as_deref() == Some(&v[..]),
            "{what}: get({k}) wrong (len {:?} want {})",
            got.map(|g| g.len()),
            v.len()
        );
    }
    let fwd: Vec<(u64, Vec<u8>)> = t
        .iter()
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.value(), v.value().to_vec())
        })
        .collect();
    let want: Vec<(u64, Vec<u8>)> = model.clone().into_iter().collect();
    assert!(fwd == want, "{what}: forward scan differs");
    let back: Vec<(u64, Vec<u8>)> = t
        .iter()
        .unwrap()
        .rev()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.value(), v.value().to_vec())
        })
        .collect();
    assert!(
        back.into_iter().eq(want.into_iter().rev()),
        "{what}: backward scan differs"
    );
    let inner: Vec<u64> = t.range(3u64..12).unwrap().rev().map(|e| e.unwrap().0.value()).collect();
    let want_inner: Vec<u64> = model.range(3u64..12).rev().map(|(k, _)| *k).collect();
    assert_eq!(inner, want_inner, "{what}: bounded reverse range");
}

fn check_long(db: &Database, model: &LongModel, what: &str) {
    let r = db.begin_read().unwrap();
    let t = r.open_table(LONG).unwrap();
    assert_eq!(t.len().unwrap(), model.len() as u64, "{what}: long len");
    let fwd: Vec<(Vec<u8>, Vec<u8>)> = t
        .iter()
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.value().to_vec(), v.value().to_vec())
        })
        .collect();
    let want: Vec<(Vec<u8>, Vec<u8>)> = model.clone().into_iter().collect();
    assert!(fwd == want, "{what}: long-key forward scan differs");
    let back = t.iter().unwrap().rev().map(|e| e.unwrap().0.value().to_vec());
    assert!(
        back.eq(model.keys().rev().cloned()),
        "{what}: long-key backward scan differs"
    );
    for (k, v) in model.iter().step_by(3) {
        assert!(
            t.get(k.as_slice()).unwrap().unwrap().value() == &v[..],
            "{what}: long get"
        );
    }
}

/// One round of rewrites: key `k` gets a length that moves on through
/// `LENS` each round (so each key crosses every boundary both ways); some
/// keys are removed; long keys (up to the 20 KiB key limit) get values
/// of every class too.
fn rewrite_round(db: &Database, model: &mut Model, long: &mut LongModel, round: u64, keys: u64) {
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        let mut l = txn.open_table(LONG).unwrap();
        for k in 0..keys {
            if (k + round) % 7 == 6 {
                let old = t.remove(k).unwrap().map(|g| g.value().to_vec());
                assert_eq!(old, model.remove(&k), "remove's old value, key {k} round {round}");
                continue;
            }
            let len = LENS[((k * 3 + round) % LENS.len() as u64) as usize];
            let v = val(k, round, len);
            let old = t.insert(k, v.as_slice()).unwrap().map(|g| g.value().to_vec());
            assert_eq!(old, model.insert(k, v), "insert's old value, key {k} round {round}");
        }
        for i in 0..6u64 {
            let key = long_key([4000, 4100, 9000, 20 << 10][(i % 4) as usize], i);
            if (i + round) % 5 == 4 {
                let old = l.remove(key.as_slice()).unwrap().map(|g| g.value().to_vec());
                assert_eq!(old, long.remove(&key), "long remove's old value, key {i} round {round}");
                continue;
            }
            let len = LENS[((i * 5 + round * 3) % LENS.len() as u64) as usize];
            let v = val(1000 + i, round, len);
            l.insert(key.as_slice(), v.as_slice()).unwrap();
            long.insert(key, v);
        }
    }
    txn.commit().unwrap();
}

/// Each key's value changes size class every round (inline, overflow,
/// across page multiples), with flushes, checkpoints, WAL replays after
/// reopen, clean reopens and compactions in between: every read path
/// returns exactly the model and the integrity check stays clean.
#[test]
fn size_class_changes_survive_flushes_checkpoints_reopens_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut db = builder().create(&path).unwrap();
    let (mut model, mut long) = (Model::new(), LongModel::new());
    for round in 0..22u64 {
        rewrite_round(&db, &mut model, &mut long, round, 20);
        let what = format!("round {round}");
        check_table(&db, &model, &what);
        match round % 5 {
            1 => db.checkpoint().unwrap(),
            2 => {
                // Reopen without a checkpoint: the WAL replays big values.
                drop(db);
                db = builder().open(&path).unwrap();
            }
            3 => {
                db.checkpoint().unwrap();
                assert!(db.check_integrity().unwrap(), "{what}: integrity");
                db.compact().unwrap();
                assert!(db.check_integrity().unwrap(), "{what}: integrity after compact");
            }
            4 => {
                db.close().unwrap();
                db = builder().open(&path).unwrap();
            }
            _ => {}
        }
        check_table(&db, &model, &format!("{what}, after maintenance"));
        check_long(&db, &long, &format!("{what}, after maintenance"));
    }
    db.checkpoint().unwrap();
    assert!(db.check_integrity().unwrap());
}

/// Steady overwrites of the same keys, alternating overflow values and
/// inline ones, with a checkpoint each round: the file settles (freed
/// overflow runs are reused), and once everything is removed `compact`
/// gives the space back.
#[test]
fn steady_big_overwrites_settle_and_compact_gives_space_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut db = builder().create(&path).unwrap();
    let mut lens = Vec::new();
    for round in 0..36u64 {
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(T).unwrap();
            for k in 0..16u64 {
                let len = if (round + k).is_multiple_of(3) {
                    900
                } else {
                    9000 + (round as usize % 4) * 2048
                };
                t.insert(k, val(k, round, len).as_slice()).unwrap();
            }
        }
        txn.commit().unwrap();
        db.checkpoint().unwrap();
        lens.push(file_len(&path));
    }
    let warm = lens[8];
    let last = *lens.last().unwrap();
    assert!(
        last <= warm + warm / 2,
        "file grew under steady overwrites: {warm} after warm-up, {last} at the end ({lens:?})"
    );
    assert!(db.check_integrity().unwrap());
    let txn = db.begin_write().unwrap();
    txn.open_table(T).unwrap().retain(|_, _| false).unwrap();
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    db.compact().unwrap();
    let compacted = file_len(&path);
    assert!(
        compacted < 200 << 10,
        "compact left {compacted} bytes with nothing stored (was {last})"
    );
    assert!(db.check_integrity().unwrap());
}

/// A read snapshot, guards and ranges taken while big values are in the
/// tree keep returning those exact bytes while later commits overwrite
/// and remove every value, flushes and checkpoints free their overflow
/// runs and new values are written: freed runs are not reused under a
/// live snapshot. Guards (which do not hold the snapshot) stay whole
/// across a compaction.
#[test]
fn snapshots_guards_and_ranges_keep_old_big_values_across_rewrites_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut db = builder().create(&path).unwrap();
    let (mut model, mut long) = (Model::new(), LongModel::new());
    rewrite_round(&db, &mut model, &mut long, 0, 24);
    db.checkpoint().unwrap();
    let old = model.clone();
    let old_long = long.clone();
    let r = db.begin_read().unwrap();
    let t = r.open_table(T).unwrap();
    let guards: Vec<(u64, _)> = old.keys().map(|&k| (k, t.get(k).unwrap().unwrap())).collect();
    let mut held = t.range::<u64>(..).unwrap();
    let first = held.next().unwrap().unwrap();
    for round in 1..10u64 {
        rewrite_round(&db, &mut model, &mut long, round, 24);
        if round % 2 == 0 {
            db.checkpoint().unwrap();
        }
    }
    assert_eq!(
        first.1.value(),
        &old[&first.0.value()][..],
        "first entry of the held range"
    );
    let rest: Vec<(u64, Vec<u8>)> = held
        .map(|e| e.unwrap())
        .map(|(k, v)| (k.value(), v.value().to_vec()))
        .collect();
    let want: Vec<(u64, Vec<u8>)> = old.clone().into_iter().skip(1).collect();
    assert!(rest == want, "a range held across rewrites returned other bytes");
    for (k, g) in &guards {
        assert!(g.value() == &old[k][..], "guard of key {k} changed");
    }
    for (k, v) in &old {
        assert!(t.get(k).unwrap().unwrap().value() == &v[..], "old snapshot get({k})");
    }
    let back: Vec<u64> = t.iter().unwrap().rev().map(|e| e.unwrap().0.value()).collect();
    assert!(
        back.into_iter().eq(old.keys().rev().copied()),
        "old snapshot backward scan"
    );
    let lt = r.open_table(LONG).unwrap();
    for (k, v) in &old_long {
        assert!(
            lt.get(k.as_slice()).unwrap().unwrap().value() == &v[..],
            "old snapshot long get"
        );
    }
    drop((t, lt, r));
    check_table(&db, &model, "latest after the old snapshot");
    // Guards of every size class outlive their transaction and a compaction.
    db.checkpoint().unwrap();
    let r = db.begin_read().unwrap();
    let t = r.open_table(T).unwrap();
    let guards: Vec<(u64, _)> = model.keys().map(|&k| (k, t.get(k).unwrap().unwrap())).collect();
    drop((t, r));
    let snapshot = model.clone();
    for round in 10..13u64 {
        rewrite_round(&db, &mut model, &mut long, round, 24);
    }
    db.checkpoint().unwrap();
    db.compact().unwrap();
    rewrite_round(&db, &mut model, &mut long, 13, 24);
    db.checkpoint().unwrap();
    for (k, g) in &guards {
        assert!(
            g.value() == &snapshot[k][..],
            "guard of key {k} changed across compaction"
        );
    }
    assert!(db.check_integrity().unwrap());
    check_table(&db, &model, "after compaction");
    check_long(&db, &long, "after compaction");
}

/// Ephemeral and persistent savepoints taken over big values restore
/// them byte-exact after rounds that changed every value's size class,
/// with checkpoints between (the savepoint's overflow runs must not be
/// reused), a persistent one also after a clean reopen; afterwards
/// integrity is clean and, the savepoint deleted, compaction works.
#[test]
fn savepoints_restore_big_values_across_size_class_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut db = builder().create(&path).unwrap();
    let (mut model, mut long) = (Model::new(), LongModel::new());
    rewrite_round(&db, &mut model, &mut long, 0, 20);
    db.checkpoint().unwrap();
    let (saved, saved_long) = (model.clone(), long.clone());
    let txn = db.begin_write().unwrap();
    let ephemeral = txn.ephemeral_savepoint().unwrap();
    txn.commit().unwrap();
    for round in 1..7u64 {
        rewrite_round(&db, &mut model, &mut long, round, 20);
        if round % 2 == 1 {
            db.checkpoint().unwrap();
        }
    }
    let mut txn = db.begin_write().unwrap();
    txn.restore_savepoint(&ephemeral).unwrap();
    txn.commit().unwrap();
    drop(ephemeral);
    model = saved.clone();
    long = saved_long.clone();
    check_table(&db, &model, "ephemeral restore");
    check_long(&db, &long, "ephemeral restore");
    db.checkpoint().unwrap();
    assert!(db.check_integrity().unwrap(), "integrity after the ephemeral restore");

    // A persistent one, over a different version, across a clean reopen.
    rewrite_round(&db, &mut model, &mut long, 7, 20);
    let (saved, saved_long) = (model.clone(), long.clone());
    let txn = db.begin_write().unwrap();
    let id = txn.persistent_savepoint().unwrap();
    txn.commit().unwrap();
    for round in 8..13u64 {
        rewrite_round(&db, &mut model, &mut long, round, 20);
        db.checkpoint().unwrap();
    }
    db.close().unwrap();
    let mut db = builder().open(&path).unwrap();
    check_table(&db, &model, "before the persistent restore");
    let mut txn = db.begin_write().unwrap();
    let sp = txn.get_persistent_savepoint(id).unwrap();
    txn.restore_savepoint(&sp).unwrap();
    txn.commit().unwrap();
    drop(sp);
    check_table(&db, &saved, "persistent restore");
    check_long(&db, &saved_long, "persistent restore");
    db.checkpoint().unwrap();
    assert!(db.check_integrity().unwrap(), "integrity after the persistent restore");
    let txn = db.begin_write().unwrap();
    assert!(txn.delete_persistent_savepoint(id).unwrap());
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    db.compact().unwrap();
    assert!(db.check_integrity().unwrap(), "integrity after compacting");
    check_table(&db, &saved, "after compacting");
    check_long(&db, &saved_long, "after compacting");
}

/// Power cuts at many points of a checkpoint that frees the overflow runs
/// of the previous durable checkpoint and writes new runs (values changing
/// size class), in every tear mode: the crash image reopens with integrity
/// clean and every acknowledged value byte-exact.
#[test]
fn power_cuts_during_checkpoints_of_changing_big_values() {
    let mut b = Database::builder();
    b.set_memtable_size(1 << 20).set_checkpoint_on_drop(false);
    let prepare = |disk: &CrashDisk, model: &mut Model, long: &mut LongModel, rounds: u64| {
        let db = disk.open(&b);
        for round in 0..rounds {
            rewrite_round(&db, model, long, round, 14);
            db.checkpoint().unwrap();
        }
        rewrite_round(&db, model, long, rounds, 14);
        db
    };
    for rounds in [1u64, 2] {
        let span = {
            let disk = CrashDisk::new();
            let db = prepare(&disk, &mut Model::new(), &mut LongModel::new(), rounds);
            let before = disk.data.ops();
            db.checkpoint().unwrap();
            disk.data.ops() - before
        };
        let step = (span / 9).max(1);
        for n in (0..=span).step_by(step as usize) {
            let disk = CrashDisk::new();
            let (mut model, mut long) = (Model::new(), LongModel::new());
            let db = prepare(&disk, &mut model, &mut long, rounds);
            disk.data.cut_power_after(disk.data.ops() + n);
            let _ = db.checkpoint();
            drop(db);
            let mode = [TearMode::DropAll, TearMode::Random(n + rounds), TearMode::KeepAll][(n % 3) as usize];
            let what = format!("rounds {rounds}, cut after {n} of {span}, {mode:?}");
            let mut db = disk.crashed(mode).open(&b);
            assert!(db.check_integrity().unwrap(), "{what}: integrity");
            check_table(&db, &model, &what);
            check_long(&db, &long, &what);
            db.checkpoint().unwrap();
            assert!(db.check_integrity().unwrap(), "{what}: integrity after a checkpoint");
            check_table(&db, &model, &format!("{what}, checkpointed"));
        }
    }
}

/// Power cuts of the data file while the apply thread flushes big values
/// (small memtables): every commit acknowledged before the cut (durable,
/// so in the WAL) comes back byte-exact; a commit that failed may or may
/// not be there, but whole.
#[test]
fn power_cuts_during_background_flushes_of_big_values() {
    let mut b = Database::builder();
    b.set_memtable_size(24 << 10).set_checkpoint_on_drop(false);
    let mut cut_hit = 0;
    for n in [0u64, 3, 8, 17, 30, 55] {
        let disk = CrashDisk::new();
        let db = disk.open(&b);
        let (mut model, mut long) = (Model::new(), LongModel::new());
        rewrite_round(&db, &mut model, &mut long, 0, 10);
        db.checkpoint().unwrap();
        disk.data.cut_power_after(disk.data.ops() + n);
        let mut maybe: Option<Model> = None;
        for round in 1..12u64 {
            let mut next = model.clone();
            let ok = (|| {
                let mut txn = db.begin_write().ok()?;
                txn.set_durability(Durability::Immediate).ok()?;
                {
                    let mut t = txn.open_table(T).ok()?;
                    for k in 0..10u64 {
                        let len = LENS[((k * 7 + round) % LENS.len() as u64) as usize];
                        let v = val(k, round, len);
                        t.insert(k, v.as_slice()).ok()?;
                        next.insert(k, v);
                    }
                }
                txn.commit().ok()
            })();
            if ok.is_none() {
                cut_hit += 1;
                maybe = Some(next);
                break;
            }
            model = next;
        }
        drop(db);
        for mode in [TearMode::DropAll, TearMode::Random(n), TearMode::KeepAll] {
            let what = format!("cut after {n}, {mode:?}");
            let mut db = disk.crashed(mode).open(&b);
            assert!(db.check_integrity().unwrap(), "{what}: integrity");
            let r = db.begin_read().unwrap();
            let t = r.open_table(T).unwrap();
            let got: Model = t
                .iter()
                .unwrap()
                .map(|e| e.unwrap())
                .map(|(k, v)| (k.value(), v.value().to_vec()))
                .collect();
            assert!(
                got == model || maybe.as_ref() == Some(&got),
                "{what}: recovered state is neither the acknowledged one nor the failed commit's"
            );
        }
    }
    assert!(
        cut_hit > 0,
        "no power cut landed inside a flush: the test proves nothing"
    );
}

/// Big transactions that go straight into the tree (tree commits) and
/// rewrite big values across size classes, read their own writes, and
/// survive a crash right after `commit` returned and a clean reopen.
#[test]
fn tree_commits_of_big_values_read_back_and_survive_crashes() {
    let mut b = Database::builder();
    b.set_memtable_size(64 << 10)
        .set_tree_commit_size(16 << 10)
        .set_checkpoint_on_drop(false);
    let disk = CrashDisk::new();
    let db = disk.open(&b);
    let mut model = Model::new();
    for round in 0..8u64 {
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(Durability::Immediate).unwrap();
        {
            let mut t = txn.open_table(T).unwrap();
            for k in 0..12u64 {
                if (k + round) % 5 == 4 {
                    assert_eq!(t.remove(k).unwrap().map(|g| g.value().to_vec()), model.remove(&k));
                    continue;
                }
                let v = val(k, round, LENS[((k * 11 + round * 3) % LENS.len() as u64) as usize]);
                t.insert(k, v.as_slice()).unwrap();
                // Own writes, before and after others.
                assert!(t.get(k).unwrap().unwrap().value() == &v[..], "own write of key {k}");
                model.insert(k, v);
            }
            let mine: Model = t
                .iter()
                .unwrap()
                .map(|e| e.unwrap())
                .map(|(k, v)| (k.value(), v.value().to_vec()))
                .collect();
            assert!(mine == model, "round {round}: the transaction's own view");
        }
        txn.commit().unwrap();
        check_table(&db, &model, &format!("tree commit {round}"));
        for mode in [TearMode::DropAll, TearMode::Random(round)] {
            let what = format!("crash after tree commit {round}, {mode:?}");
            let mut crashed = disk.crashed(mode).open(&b);
            assert!(crashed.check_integrity().unwrap(), "{what}: integrity");
            check_table(&crashed, &model, &what);
        }
    }
    db.close().unwrap();
    let mut db = disk.open(&b);
    assert!(db.check_integrity().unwrap());
    check_table(&db, &model, "reopened");
}

/// The redb-shaped mutations on big values, in the memtable and in the
/// tree: `insert` and `remove` return the old big value, `pop_first`,
/// `pop_last`, `extract_if` and `retain` hand over and drop whole values,
/// and `insert_reserve` writes a value longer than a page.
#[test]
fn redb_mutations_hand_over_big_values_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut db = builder().create(&path).unwrap();
    for flushed in [false, true] {
        let mut model = Model::new();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(T).unwrap();
            t.retain(|_, _| false).unwrap();
            for k in 0..LENS.len() as u64 {
                let v = val(k, 1, LENS[k as usize]);
                t.insert(k, v.as_slice()).unwrap();
                model.insert(k, v);
            }
        }
        txn.commit().unwrap();
        if flushed {
            db.checkpoint().unwrap();
        }
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(T).unwrap();
            let (k, v) = t.pop_first().unwrap().unwrap();
            assert!(v.value() == &model.remove(&k.value()).unwrap()[..], "pop_first");
            drop((k, v));
            let (k, v) = t.pop_last().unwrap().unwrap();
            assert!(
                v.value() == &model.remove(&k.value()).unwrap()[..],
                "pop_last (70001 bytes)"
            );
            drop((k, v));
            // Extract values of one class, keep the rest.
            let extracted: Vec<(u64, Vec<u8>)> = t
                .extract_if(|_, v| v.len() > 4096)
                .unwrap()
                .map(|e| e.unwrap())
                .map(|(k, v)| (k.value(), v.value().to_vec()))
                .collect();
            let want: Vec<(u64, Vec<u8>)> = model
                .iter()
                .filter(|(_, v)| v.len() > 4096)
                .map(|(k, v)| (*k, v.clone()))
                .collect();
            assert!(extracted == want, "extract_if handed over other bytes");
            model.retain(|_, v| v.len() <= 4096);
            t.retain(|k, v| {
                assert!(v == &model[&k][..], "retain saw other bytes for key {k}");
                v.len() != 1024
            })
            .unwrap();
            model.retain(|_, v| v.len() != 1024);
            // Overwrite across classes: the old value is returned whole.
            for (k, v) in model.iter_mut() {
                let new = val(*k, 2, 13_000 - v.len());
                let old = t.insert(*k, new.as_slice()).unwrap().unwrap();
                assert!(old.value() == &v[..], "insert's old value of key {k}");
                *v = new;
            }
            let k = *model.keys().next().unwrap();
            let old = t.remove(k).unwrap().unwrap();
            assert!(old.value() == &model.remove(&k).unwrap()[..], "remove's old value");
            drop(old);
            for (k, len) in [(100u64, 5000usize), (101, 1025), (102, 4096 * 3)] {
                let v = val(k, 3, len);
                t.insert_reserve(k, len).unwrap().as_mut().copy_from_slice(&v);
                model.insert(k, v);
            }
        }
        txn.commit().unwrap();
        check_table(&db, &model, &format!("after the mutations (flushed {flushed})"));
        db.checkpoint().unwrap();
        check_table(
            &db,
            &model,
            &format!("after the mutations, checkpointed (flushed {flushed})"),
        );
        assert!(db.check_integrity().unwrap());
    }
    drop(db);
    let db = builder().open(&path).unwrap();
    let r = db.begin_read().unwrap();
    assert!(r.open_table(T).unwrap().get(102u64).unwrap().unwrap().value() == &val(102, 3, 4096 * 3)[..]);
}

/// Multimap values longer than a page (the pair limit is about the key
/// limit): inserted, removed and listed both ways through the memtable, a
/// checkpoint and a reopen; integrity clean.
#[test]
fn multimap_values_longer_than_a_page() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut db = builder().create(&path).unwrap();
    let mut model: BTreeMap<u64, std::collections::BTreeSet<Vec<u8>>> = BTreeMap::new();
    let lens = [10usize, 1024, 1025, 4095, 4096, 4097, 9000, 16_000, 20_000];
    for round in 0..6u64 {
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_multimap_table(MM).unwrap();
            for k in 0..5u64 {
                for (i, &len) in lens.iter().enumerate() {
                    let v = val(k * 100 + i as u64, round % 2, len);
                    if (k + i as u64 + round).is_multiple_of(3) {
                        let was = t.remove(k, v.as_slice()).unwrap();
                        assert_eq!(was, model.entry(k).or_default().remove(&v), "multimap remove");
                    } else {
                        let was = t.insert(k, v.as_slice()).unwrap();
                        assert_eq!(was, !model.entry(k).or_default().insert(v), "multimap insert");
                    }
                }
            }
        }
        txn.commit().unwrap();
        if round % 2 == 1 {
            db.checkpoint().unwrap();
        }
        if round == 4 {
            drop(db);
            db = builder().open(&path).unwrap();
        }
        let r = db.begin_read().unwrap();
        let t = r.open_multimap_table(MM).unwrap();
        for (k, set) in &model {
            let got: Vec<Vec<u8>> = t.get(k).unwrap().map(|v| v.unwrap().value().to_vec()).collect();
            assert!(got.iter().eq(set.iter()), "round {round}: values of key {k}");
            let back: Vec<Vec<u8>> = t.get(k).unwrap().rev().map(|v| v.unwrap().value().to_vec()).collect();
            assert!(
                back.iter().eq(set.iter().rev()),
                "round {round}: values of key {k} backwards"
            );
        }
        let total: usize = model.values().map(|s| s.len()).sum();
        assert_eq!(t.len().unwrap(), total as u64, "round {round}: multimap len");
    }
    db.checkpoint().unwrap();
    assert!(db.check_integrity().unwrap());
}

/// A value of exactly `MAX_VALUE_LEN` (128 MiB) is accepted, reads back
/// whole after a checkpoint, and its removal gives its pages back to
/// `compact`; one byte more is refused.
#[test]
fn a_value_of_exactly_the_limit_round_trips_and_is_reclaimed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut db = builder().create(&path).unwrap();
    let len = sluicedb::btree::MAX_VALUE_LEN;
    let big: Vec<u8> = (0..len).map(|i| (i % 251) as u8 ^ (i >> 20) as u8).collect();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        t.insert(1u64, big.as_slice()).unwrap();
        assert!(
            t.insert(2u64, vec![0u8; len + 1].as_slice()).is_err(),
            "one byte over the limit"
        );
        t.insert(3u64, b"small".as_slice()).unwrap();
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    {
        let r = db.begin_read().unwrap();
        let t = r.open_table(T).unwrap();
        assert!(t.get(1u64).unwrap().unwrap().value() == &big[..], "the 128 MiB value");
        assert!(t.get(2u64).unwrap().is_none());
        assert_eq!(t.len().unwrap(), 2);
    }
    assert!(file_len(&path) > len as u64);
    let txn = db.begin_write().unwrap();
    assert!(txn.open_table(T).unwrap().remove(1u64).unwrap().is_some());
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    db.compact().unwrap();
    let after = file_len(&path);
    assert!(
        after < 1 << 20,
        "file still {after} bytes after the 128 MiB value was removed"
    );
    assert!(db.check_integrity().unwrap());
}

/// Crash images of one instant after every acknowledged commit while tiny
/// memtables keep the apply thread publishing flushes of big values
/// (non-durable tree commits that free overflow runs the durable commit
/// still reaches) between checkpoints: each image reopens with integrity
/// clean and exactly the acknowledged values.
#[test]
fn crash_images_between_flushes_and_checkpoints_of_big_rewrites() {
    let mut b = Database::builder();
    b.set_memtable_size(16 << 10).set_checkpoint_on_drop(false);
    let disk = CrashDisk::new();
    let db = disk.open(&b);
    let (mut model, mut long) = (Model::new(), LongModel::new());
    for round in 0..14u64 {
        rewrite_round(&db, &mut model, &mut long, round, 12);
        if round % 4 == 3 {
            db.checkpoint().unwrap();
        }
        for mode in [TearMode::DropAll, TearMode::KeepAll, TearMode::Random(round * 31 + 7)] {
            let what = format!("image after round {round}, {mode:?}");
            let mut crashed = disk.crashed(mode).open(&b);
            assert!(crashed.check_integrity().unwrap(), "{what}: integrity");
            check_table(&crashed, &model, &what);
            check_long(&crashed, &long, &what);
        }
    }
}

/// A persistent savepoint over big values, then rounds that change every
/// value's size class with checkpoints between, then a power cut: the
/// reopened image restores the savepoint byte-exact, integrity clean,
/// and the restored values survive later rewrites and a reopen.
#[test]
fn persistent_savepoint_of_big_values_survives_a_power_cut() {
    let mut b = Database::builder();
    b.set_memtable_size(32 << 10).set_checkpoint_on_drop(false);
    for mode in [TearMode::DropAll, TearMode::Random(5), TearMode::KeepAll] {
        let disk = CrashDisk::new();
        let db = disk.open(&b);
        let (mut model, mut long) = (Model::new(), LongModel::new());
        rewrite_round(&db, &mut model, &mut long, 0, 16);
        db.checkpoint().unwrap();
        rewrite_round(&db, &mut model, &mut long, 1, 16);
        let (saved, saved_long) = (model.clone(), long.clone());
        let txn = db.begin_write().unwrap();
        let id = txn.persistent_savepoint().unwrap();
        txn.commit().unwrap();
        for round in 2..8u64 {
            rewrite_round(&db, &mut model, &mut long, round, 16);
            if round % 2 == 0 {
                db.checkpoint().unwrap();
            }
        }
        let crashed = disk.crashed(mode);
        drop(db);
        let mut db = crashed.open(&b);
        let what = format!("{mode:?}");
        assert!(db.check_integrity().unwrap(), "{what}: integrity after the cut");
        check_table(&db, &model, &format!("{what}: latest after the cut"));
        let mut txn = db.begin_write().unwrap();
        let sp = txn.get_persistent_savepoint(id).unwrap();
        txn.restore_savepoint(&sp).unwrap();
        txn.commit().unwrap();
        drop(sp);
        check_table(&db, &saved, &format!("{what}: restored"));
        check_long(&db, &saved_long, &format!("{what}: restored"));
        db.checkpoint().unwrap();
        assert!(db.check_integrity().unwrap(), "{what}: integrity after the restore");
        let (mut model, mut long) = (saved, saved_long);
        for round in 8..11u64 {
            rewrite_round(&db, &mut model, &mut long, round, 16);
        }
        db.close().unwrap();
        let mut db = crashed.open(&b);
        assert!(db.check_integrity().unwrap(), "{what}: integrity after the reopen");
        check_table(&db, &model, &format!("{what}: rewritten after the restore, reopened"));
        check_long(&db, &long, &format!("{what}: rewritten after the restore, reopened"));
    }
}
