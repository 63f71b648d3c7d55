//! Adversarial review: acknowledged data and visibility when commits of
//! different durabilities (`Immediate`, `None`, pipelined) mix, across
//! power cuts (`sluicedb::io::CrashDisk`: unsynced writes lost, kept or
//! torn). Every commit of the engine-level scenarios writes its number in
//! table `meta`, so a recovered state names the commit it claims to be the
//! prefix through, and is compared whole (every table, its entries and
//! existence) with the model of that prefix.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::Rng;
use common::engine::{Disk, small_options};
use sluicedb::btree::bytewise;
use sluicedb::engine::{Durability, Engine, EngineOptions, PendingCommit};
use sluicedb::io::TearMode;

/// Every table (name to entries) as one snapshot sees it.
type World = BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, Vec<u8>>>;

const META: &[u8] = b"meta";
const BYTES: &[u8] = b"bytes";

/// The whole database as a read sees it; each table's `len()` is checked
/// against its entries.
fn read_world(db: &Engine) -> World {
    let read = db.begin_read().unwrap();
    let mut world = World::new();
    for (name, _) in read.list_tables().unwrap() {
        let t = read.open_table(&name, bytewise).unwrap().expect("a listed table opens");
        let entries: BTreeMap<Vec<u8>, Vec<u8>> = read
            .range(&t, Bound::Unbounded, Bound::Unbounded)
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.to_vec(), v.as_bytes().to_vec())
            })
            .collect();
        assert_eq!(
            read.len(&t).unwrap(),
            entries.len() as u64,
            "table {:?}: len() disagrees with its entries",
            String::from_utf8_lossy(&name)
        );
        world.insert(name, entries);
    }
    world
}

/// The commit number a state claims (0: none).
fn commit_number(world: &World) -> u64 {
    world
        .get(META)
        .and_then(|m| m.get(&b"n"[..]))
        .map_or(0, |v| u64::from_be_bytes(v[..].try_into().unwrap()))
}

/// One commit of the churn workload: its number in `meta`, random puts and
/// removals over the live data tables, and now and then a table created,
/// deleted or renamed, applied to `model` as well.
fn churn_commit(
    db: &Engine,
    rng: &mut Rng,
    n: u64,
    model: &mut World,
    durability: Durability,
) -> Option<PendingCommit> {
    churn_commit_with(db, rng, n, model, durability, false)
}

fn churn_commit_with(
    db: &Engine,
    rng: &mut Rng,
    n: u64,
    model: &mut World,
    durability: Durability,
    pipelined: bool,
) -> Option<PendingCommit> {
    let mut w = db.begin_write().unwrap();
    let meta = w.open_table(META, BYTES, bytewise).unwrap();
    w.insert(meta, b"n", &n.to_be_bytes()).unwrap();
    model
        .entry(META.to_vec())
        .or_default()
        .insert(b"n".to_vec(), n.to_be_bytes().to_vec());
    // Table churn: create, delete or rename one of the `x*` tables.
    let xs: Vec<Vec<u8>> = model.keys().filter(|k| k.starts_with(b"x")).cloned().collect();
    match rng.below(6) {
        0 => {
            let name = format!("x{n}").into_bytes();
            let t = w.open_table(&name, BYTES, bytewise).unwrap();
            w.insert(t, b"born", &n.to_be_bytes()).unwrap();
            model
                .entry(name)
                .or_default()
                .insert(b"born".to_vec(), n.to_be_bytes().to_vec());
        }
        1 if !xs.is_empty() => {
            let victim = &xs[rng.below(xs.len() as u64) as usize];
            assert!(w.delete_table(victim).unwrap());
            model.remove(victim);
        }
        2 if !xs.is_empty() => {
            let from = xs[rng.below(xs.len() as u64) as usize].clone();
            let to = format!("x{n}r").into_bytes();
            assert!(w.rename_table(&from, &to).unwrap());
            let entries = model.remove(&from).unwrap();
            model.insert(to, entries);
        }
        _ => {}
    }
    // Data in two tables, touched together.
    for name in [&b"a"[..], &b"b"[..]] {
        let t = w.open_table(name, BYTES, bytewise).unwrap();
        let table = model.entry(name.to_vec()).or_default();
        for _ in 0..1 + rng.below(6) {
            let k = format!("k{:03}", rng.below(60)).into_bytes();
            if rng.chance(25) {
                w.remove(t, &k).unwrap();
                table.remove(&k);
            } else {
                let v = format!("{n} {}", "v".repeat(rng.below(40) as usize)).into_bytes();
                w.insert(t, &k, &v).unwrap();
                table.insert(k, v);
            }
        }
    }
    w.set_durability(durability);
    if pipelined {
        Some(w.commit_pipelined().unwrap())
    } else {
        w.commit().unwrap();
        None
    }
}

/// Reopens a crash image and checks it is a whole prefix of the commit
/// order (`states[n]` for the `n` it claims) holding every commit through
/// `acked`; returns the `n` recovered.
fn check_image(image: &Disk, options: EngineOptions, states: &[World], acked: u64, what: &str) -> u64 {
    let db =
        Engine::open(image.data.clone(), image.wal.clone(), options).unwrap_or_else(|e| panic!("{what}: open: {e}"));
    let world = read_world(&db);
    let n = commit_number(&world);
    assert!(
        n >= acked,
        "{what}: recovered commit {n}, but commit {acked} was acknowledged durable"
    );
    assert!(n < states.len() as u64, "{what}: recovered commit {n} was never made");
    assert!(
        world == states[n as usize],
        "{what}: recovered state claims commit {n} but is not the state after it\n got: {world:?}\nwant: {:?}",
        states[n as usize]
    );
    db.check_integrity()
        .unwrap_or_else(|e| panic!("{what}: integrity: {e}"));
    n
}

/// No timer syncs: only a durable commit, a sync or a checkpoint makes a
/// `None` commit durable, so each scenario decides what is durable.
fn no_timer_options() -> EngineOptions {
    EngineOptions {
        sync_interval: Duration::from_secs(3600),
        ..small_options()
    }
}

/// Prefix property across durabilities, with table create/delete/rename in
/// the commits and the apply thread flushing and checkpointing beside them:
/// runs of `None` commits, then an `Immediate` one; a power cut (every
/// unsynced write lost) right after the `Immediate` commit recovers exactly
/// the state after it (all earlier `None` commits included); a power cut at
/// any other point (unsynced writes lost, kept or torn at random) recovers
/// a whole prefix that holds every acknowledged commit.
#[test]
fn a_durable_commit_makes_every_earlier_no_sync_commit_durable() {
    let options = no_timer_options();
    let disk = Disk::new();
    let db = disk.open(options);
    let mut rng = Rng(0x5EED_0001);
    let mut model = World::new();
    let mut states = vec![World::new()];
    let mut acked = 0;
    let mut images = 0;
    for n in 1..=400u64 {
        let durable = rng.one_in(5);
        let durability = if durable {
            Durability::Immediate
        } else {
            Durability::None
        };
        churn_commit(&db, &mut rng, n, &mut model, durability);
        states.push(model.clone());
        if durable {
            acked = n;
            let image = disk.crashed(TearMode::DropAll);
            let got = check_image(
                &image,
                options,
                &states,
                acked,
                &format!("DropAll after Immediate commit {n}"),
            );
            assert_eq!(got, n, "the durable commit {n} and everything before it");
            images += 1;
        } else if rng.one_in(8) {
            let seed = rng.next();
            let image = disk.crashed(TearMode::Random(seed));
            check_image(
                &image,
                options,
                &states,
                acked,
                &format!("Random({seed:#x}) after None commit {n}"),
            );
            images += 1;
        }
    }
    assert!(images > 50, "{images} crash images");
    assert!(db.stats().flushes > 0, "the apply thread flushed beside the commits");
}

/// `PendingCommit::is_durable` means survives a power cut: pipelined
/// commits (of both durabilities) mixed with `None` and `Immediate`
/// commits and table churn; each time a pending commit reports durable, a
/// power cut then (every unsynced write lost, or torn at random) recovers
/// a prefix holding it. `Engine::sync` and waits make them durable as
/// well.
#[test]
fn a_pipelined_commit_reported_durable_survives_a_power_cut() {
    let options = no_timer_options();
    let disk = Disk::new();
    let db = disk.open(options);
    let mut rng = Rng(0x5EED_0002);
    let mut model = World::new();
    let mut states = vec![World::new()];
    let mut acked = 0u64;
    let mut pending: Vec<(u64, PendingCommit)> = Vec::new();
    let mut reported = 0;
    for n in 1..=300u64 {
        let durability = if rng.chance(50) {
            Durability::Immediate
        } else {
            Durability::None
        };
        match rng.below(4) {
            0 | 1 => {
                let p = churn_commit_with(&db, &mut rng, n, &mut model, durability, true).unwrap();
                pending.push((n, p));
            }
            2 => {
                churn_commit(&db, &mut rng, n, &mut model, durability);
                if durability == Durability::Immediate {
                    acked = n;
                }
            }
            _ => {
                churn_commit(&db, &mut rng, n, &mut model, Durability::None);
            }
        }
        states.push(model.clone());
        match rng.below(10) {
            0 => {
                db.sync().unwrap();
                acked = n;
            }
            1 if !pending.is_empty() => {
                let (m, p) = pending.remove(rng.below(pending.len() as u64) as usize);
                p.wait().unwrap();
                acked = acked.max(m);
            }
            _ => {}
        }
        // What the handles say now.
        pending.retain(|(m, p)| {
            if p.is_durable() {
                acked = acked.max(*m);
                reported += 1;
                false
            } else {
                true
            }
        });
        if rng.one_in(4) {
            let mode = if rng.chance(50) {
                TearMode::DropAll
            } else {
                TearMode::Random(rng.next())
            };
            let image = disk.crashed(mode);
            check_image(&image, options, &states, acked, &format!("{mode:?} after commit {n}"));
        }
    }
    assert!(
        reported > 10,
        "only {reported} pending commits reported durable on their own"
    );
}

/// Readers on other threads never see an `Immediate` commit (by `commit`
/// or pipelined) before it is durable: a writer mixes `Immediate`, `None`
/// and unwaited pipelined `Immediate` commits (small memtables: flushes
/// and checkpoints run beside); each commit records in `meta` the newest
/// `Immediate` commit up to it. A reader that sees `Immediate` commit `L`
/// cuts the power (every unsynced write lost) and the image must hold `L`.
#[test]
fn readers_never_see_an_immediate_commit_a_power_cut_then_loses() {
    let options = EngineOptions {
        sync_interval: Duration::from_millis(2),
        memtable_bytes: 4 << 10,
        ..small_options()
    };
    let disk = Disk::new();
    let db = Arc::new(disk.open(options));
    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(AtomicU64::new(0));
    let writer = {
        let (db, stop, made) = (db.clone(), stop.clone(), made.clone());
        std::thread::spawn(move || {
            let mut rng = Rng(0x5EED_0003);
            let mut last_immediate = 0u64;
            let mut pending = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Acquire) {
                n += 1;
                let kind = rng.below(3);
                if kind != 1 {
                    last_immediate = n;
                }
                let mut w = db.begin_write().unwrap();
                let meta = w.open_table(META, BYTES, bytewise).unwrap();
                w.insert(meta, b"n", &n.to_be_bytes()).unwrap();
                w.insert(meta, b"imm", &last_immediate.to_be_bytes()).unwrap();
                let t = w.open_table(b"a", BYTES, bytewise).unwrap();
                w.insert(t, format!("k{}", n % 97).as_bytes(), &[7u8; 60]).unwrap();
                match kind {
                    0 => w.commit().unwrap(),
                    1 => {
                        w.set_durability(Durability::None);
                        w.commit().unwrap();
                    }
                    _ => {
                        pending.push(w.commit_pipelined().unwrap());
                        if pending.len() > 64 {
                            pending.drain(..32).for_each(|p: PendingCommit| p.wait().unwrap());
                        }
                    }
                }
                made.store(n, Ordering::Release);
            }
            n
        })
    };
    let mut checks = 0;
    let mut seen_max = 0u64;
    while checks < 40 {
        let read = db.begin_read().unwrap();
        let Some(meta) = read.open_table(META, bytewise).unwrap() else {
            std::thread::yield_now();
            continue;
        };
        let imm = read
            .get(&meta, b"imm")
            .unwrap()
            .map_or(0, |v| u64::from_be_bytes(v.as_bytes().try_into().unwrap()));
        drop(read);
        if imm == 0 || imm <= seen_max {
            std::thread::yield_now();
            continue;
        }
        seen_max = imm;
        let image = disk.crashed(TearMode::DropAll);
        let again = Engine::open(image.data.clone(), image.wal.clone(), options).unwrap();
        let world = read_world(&again);
        let n = commit_number(&world);
        assert!(
            n >= imm,
            "a reader saw Immediate commit {imm}; a power cut right after recovered only through commit {n}"
        );
        checks += 1;
    }
    stop.store(true, Ordering::Release);
    let commits = writer.join().unwrap();
    assert!(commits > 40 && made.load(Ordering::Acquire) == commits);
}

/// `None` commits, then an `Immediate` commit whose only change is a table
/// delete, a table rename, or nothing at all: each must still make the
/// `None` commits before it durable (a power cut losing every unsynced
/// write recovers them all, and the delete or rename).
#[test]
fn metadata_only_and_empty_durable_commits_make_the_earlier_commits_durable() {
    for last in ["delete", "rename", "empty", "empty pipelined"] {
        let options = no_timer_options();
        let disk = Disk::new();
        let db = disk.open(options);
        let mut rng = Rng(0x5EED_0004);
        let mut model = World::new();
        // A durable base holding a table to delete or rename.
        let mut w = db.begin_write().unwrap();
        let t = w.open_table(b"x0", BYTES, bytewise).unwrap();
        w.insert(t, b"k", b"v").unwrap();
        w.commit().unwrap();
        model
            .entry(b"x0".to_vec())
            .or_default()
            .insert(b"k".to_vec(), b"v".to_vec());
        for n in 1..=5u64 {
            // Data only: keep x0 as it is.
            let mut w = db.begin_write().unwrap();
            let meta = w.open_table(META, BYTES, bytewise).unwrap();
            w.insert(meta, b"n", &n.to_be_bytes()).unwrap();
            model
                .entry(META.to_vec())
                .or_default()
                .insert(b"n".to_vec(), n.to_be_bytes().to_vec());
            let a = w.open_table(b"a", BYTES, bytewise).unwrap();
            let k = format!("k{}", rng.below(10)).into_bytes();
            w.insert(a, &k, &n.to_be_bytes()).unwrap();
            model
                .entry(b"a".to_vec())
                .or_default()
                .insert(k, n.to_be_bytes().to_vec());
            w.set_durability(Durability::None);
            w.commit().unwrap();
        }
        let mut w = db.begin_write().unwrap();
        match last {
            "delete" => {
                assert!(w.delete_table(b"x0").unwrap());
                model.remove(&b"x0"[..]);
            }
            "rename" => {
                assert!(w.rename_table(b"x0", b"y0").unwrap());
                let e = model.remove(&b"x0"[..]).unwrap();
                model.insert(b"y0".to_vec(), e);
            }
            _ => {}
        }
        if last == "empty pipelined" {
            let p = w.commit_pipelined().unwrap();
            p.wait().unwrap();
        } else {
            w.commit().unwrap();
        }
        let image = disk.crashed(TearMode::DropAll);
        drop(db);
        let again = image.open(options);
        let world = read_world(&again);
        assert!(
            world == model,
            "{last}: the durable commit after five None commits\n got: {world:?}\nwant: {model:?}"
        );
        again.check_integrity().unwrap();
    }
}

/// A big commit goes through the tree and is durable "whatever its
/// durability": pipelined with `Durability::None` after `None` commits,
/// its handle must report durable at once, and a power cut then keeps it
/// and every commit before it; the `None` commits after it follow the
/// usual rule (an `Immediate` commit after them keeps them).
#[test]
fn a_pipelined_tree_commit_after_no_sync_commits_is_durable_with_its_prefix() {
    let options = EngineOptions {
        tree_commit_bytes: 8 << 10,
        ..no_timer_options()
    };
    let disk = Disk::new();
    let db = disk.open(options);
    let mut rng = Rng(0x5EED_0005);
    let mut model = World::new();
    let mut states = vec![World::new()];
    let mut n = 0u64;
    for round in 0..4u64 {
        for _ in 0..5 {
            n += 1;
            churn_commit(&db, &mut rng, n, &mut model, Durability::None);
            states.push(model.clone());
        }
        n += 1;
        let mut w = db.begin_write().unwrap();
        let meta = w.open_table(META, BYTES, bytewise).unwrap();
        w.insert(meta, b"n", &n.to_be_bytes()).unwrap();
        model
            .entry(META.to_vec())
            .or_default()
            .insert(b"n".to_vec(), n.to_be_bytes().to_vec());
        let big = w.open_table(b"big", BYTES, bytewise).unwrap();
        for k in 0..100u64 {
            let key = format!("r{round} k{k:03}").into_bytes();
            w.insert(big, &key, &[b'b'; 120]).unwrap();
            model.entry(b"big".to_vec()).or_default().insert(key, vec![b'b'; 120]);
        }
        w.set_durability(Durability::None);
        let p = w.commit_pipelined().unwrap();
        states.push(model.clone());
        assert!(
            p.is_durable(),
            "round {round}: a tree commit is durable when it returns"
        );
        let image = disk.crashed(TearMode::DropAll);
        let got = check_image(
            &image,
            options,
            &states,
            n,
            &format!("round {round}: after the tree commit {n}"),
        );
        assert_eq!(got, n);
        // More None commits, then an Immediate one.
        for _ in 0..3 {
            n += 1;
            churn_commit(&db, &mut rng, n, &mut model, Durability::None);
            states.push(model.clone());
        }
        n += 1;
        churn_commit(&db, &mut rng, n, &mut model, Durability::Immediate);
        states.push(model.clone());
        let image = disk.crashed(TearMode::Random(rng.next()));
        check_image(
            &image,
            options,
            &states,
            n,
            &format!("round {round}: after Immediate commit {n}"),
        );
    }
}

/// The redb-shaped API on one backend (`Builder::create_with_backend`: the
/// WAL in memory, so durable means in a checkpoint of the backend). A
/// pipelined `Immediate` commit is documented as visible to readers "once
/// it is durable": a reader on another thread that sees it, then a power
/// cut, must find it in the image.
#[test]
fn volatile_wal_readers_never_see_a_pipelined_immediate_commit_before_it_is_durable() {
    use common::Crashing;
    use sluicedb::io::CrashBackend;
    use sluicedb::{Builder, ReadableDatabase, TableDefinition};
    const T: TableDefinition<u64, u64> = TableDefinition::new("t");

    let backend = Arc::new(CrashBackend::new());
    let db = Arc::new(Builder::new().create_with_backend(Crashing(backend.clone())).unwrap());
    // A durable base.
    let w = db.begin_write().unwrap();
    w.open_table(T).unwrap().insert(0, 0).unwrap();
    w.commit().unwrap();

    let w = db.begin_write().unwrap();
    w.open_table(T).unwrap().insert(1, 1).unwrap();
    let pending = w.commit_pipelined().unwrap();
    // Another thread reads until it sees key 1 (the power then fails) or
    // gives up; the memory WAL's sync (every 20 ms) comes well within it.
    let reader = {
        let (db, backend) = (db.clone(), backend.clone());
        std::thread::spawn(move || {
            for _ in 0..2000 {
                let read = db.begin_read().unwrap();
                if read.open_table(T).unwrap().get(1).unwrap().is_some() {
                    return Some(backend.crash_image(TearMode::DropAll));
                }
                drop(read);
                std::thread::sleep(Duration::from_millis(1));
            }
            None
        })
    };
    let Some(image) = reader.join().unwrap() else {
        // Not visible before durable: as documented. It still must become
        // durable and visible once waited for.
        pending.wait().unwrap();
        assert!(
            db.begin_read()
                .unwrap()
                .open_table(T)
                .unwrap()
                .get(1)
                .unwrap()
                .is_some()
        );
        return;
    };
    let durable_when_seen = pending.is_durable();
    let reopened = Builder::new()
        .create_with_backend(Crashing(Arc::new(CrashBackend::from_bytes(image))))
        .unwrap();
    let read = reopened.begin_read().unwrap();
    let kept = read.open_table(T).unwrap().get(1).unwrap().is_some();
    assert!(
        kept,
        "a reader saw pipelined Immediate commit (key 1) that a power cut right after lost \
         (is_durable() was {durable_when_seen} just after)"
    );
    pending.wait().unwrap();
}

/// The redb-shaped API on one backend (memory WAL): `None` commits, then
/// an `Immediate` commit (with data, or empty): a power cut right after
/// (every unsynced write lost) keeps every commit before it.
#[test]
fn volatile_wal_durable_commit_keeps_the_no_sync_commits_before_it() {
    use common::Crashing;
    use sluicedb::io::CrashBackend;
    use sluicedb::{Builder, ReadableDatabase, ReadableTable, TableDefinition};
    const T: TableDefinition<u64, u64> = TableDefinition::new("t");

    for empty_last in [false, true] {
        let backend = Arc::new(CrashBackend::new());
        let db = Builder::new().create_with_backend(Crashing(backend.clone())).unwrap();
        for k in 0..5u64 {
            let mut w = db.begin_write().unwrap();
            w.set_durability(sluicedb::Durability::None).unwrap();
            w.open_table(T).unwrap().insert(k, k).unwrap();
            w.commit().unwrap();
        }
        let w = db.begin_write().unwrap();
        if !empty_last {
            w.open_table(T).unwrap().insert(5, 5).unwrap();
        }
        w.commit().unwrap();
        let image = backend.crash_image(TearMode::DropAll);
        let reopened = Builder::new()
            .create_with_backend(Crashing(Arc::new(CrashBackend::from_bytes(image))))
            .unwrap();
        let read = reopened.begin_read().unwrap();
        let keys: Vec<u64> = read
            .open_table(T)
            .unwrap()
            .iter()
            .unwrap()
            .map(|e| e.unwrap().0.value())
            .collect();
        let want: Vec<u64> = (0..if empty_last { 5 } else { 6 }).collect();
        assert_eq!(keys, want, "empty last commit: {empty_last}");
    }
}

/// Concurrency: a writer thread mixes `None`, `Immediate` and pipelined
/// commits with table churn, a second thread checkpoints now and then,
/// small memtables keep the apply thread flushing; the main thread cuts
/// the power at arbitrary moments (unsynced writes lost, kept or torn at
/// random). Every image is a whole prefix holding every commit
/// acknowledged durable before the cut.
#[test]
fn power_cuts_beside_a_mixed_writer_and_checkpoints_recover_whole_prefixes() {
    let options = EngineOptions {
        memtable_bytes: 4 << 10,
        sync_interval: Duration::from_millis(3),
        ..small_options()
    };
    let disk = Disk::new();
    let db = Arc::new(disk.open(options));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let states = Arc::new(Mutex::new(vec![World::new()]));
    // The writer makes commits up to this number, then waits.
    let budget = Arc::new(AtomicU64::new(0));
    let writer = {
        let (db, stop, acked, states, budget) =
            (db.clone(), stop.clone(), acked.clone(), states.clone(), budget.clone());
        std::thread::spawn(move || {
            let mut rng = Rng(0x5EED_0007);
            let mut model = World::new();
            let mut pending: Vec<(u64, PendingCommit)> = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Acquire) {
                if n >= budget.load(Ordering::Acquire) {
                    std::thread::yield_now();
                    continue;
                }
                n += 1;
                let kind = rng.below(4);
                let durability = if kind == 0 {
                    Durability::Immediate
                } else {
                    Durability::None
                };
                // The state is recorded before the commit: a cut may land
                // anywhere once the record is appended.
                let mut next = model.clone();
                let p = {
                    let mut guard = states.lock().unwrap();
                    let p = churn_commit_with(&db, &mut rng, n, &mut next, durability, kind == 3);
                    guard.push(next.clone());
                    p
                };
                model = next;
                if kind == 0 {
                    acked.fetch_max(n, Ordering::AcqRel);
                }
                if let Some(p) = p {
                    pending.push((n, p));
                }
                pending.retain(|(m, p)| {
                    if p.is_durable() {
                        acked.fetch_max(*m, Ordering::AcqRel);
                        false
                    } else {
                        true
                    }
                });
            }
            n
        })
    };
    let checkpointer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Acquire) {
                i += 1;
                if i.is_multiple_of(3) {
                    db.sync().unwrap();
                } else {
                    db.checkpoint().unwrap();
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let mut rng = Rng(0x5EED_0008);
    let mut last = 0;
    for cut in 0..60u64 {
        // Let the writer get ahead, and cut while it still runs.
        budget.store((cut + 1) * 15 + 15, Ordering::Release);
        while states.lock().unwrap().len() < (cut as usize + 1) * 15 {
            std::thread::yield_now();
        }
        let acked_before = acked.load(Ordering::Acquire);
        let mode = if rng.chance(30) {
            TearMode::DropAll
        } else {
            TearMode::Random(rng.next())
        };
        let image = disk.crashed(mode);
        let states = states.lock().unwrap();
        last = check_image(&image, options, &states, acked_before, &format!("cut {cut} ({mode:?})"));
    }
    stop.store(true, Ordering::Release);
    let commits = writer.join().unwrap();
    checkpointer.join().unwrap();
    assert!(commits >= 900 && last > 0, "{commits} commits, last image at {last}");
}
