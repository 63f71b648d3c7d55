//! A read table's ranges move to a newer state once a flush has put what
//! its snapshot's memtables held into the tree, and only while the tree
//! holds nothing newer than the snapshot (`ReadTable::range_sources`). Every
//! range, before and after such a move, shows exactly the snapshot.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use common::engine::{Disk, HeldWrites, range_entries, small_options};
use sluicedb::btree::bytewise;
use sluicedb::engine::{Durability, Engine, EngineOptions, ReadTable, ReadTxn};
use sluicedb::io::{MemLogDir, MemoryBackend};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Keys of the random test: enough that a flush rewrites many leaves, in
/// several part commits.
const KEYS: u64 = 3000;

fn key(i: u64) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

/// One commit of `writes` (`None`: remove), applied to `model` too.
fn commit(db: &Engine, model: &mut Model, writes: &[(u64, Option<u64>)]) {
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(Durability::None);
    let t = txn.open_table(b"t", b"bytes", bytewise).unwrap();
    for &(k, v) in writes {
        match v {
            Some(v) => {
                let value = format!("value{v:0>60}").into_bytes();
                txn.insert(t, &key(k), &value).unwrap();
                model.insert(key(k), value);
            }
            None => {
                txn.remove(t, &key(k)).unwrap();
                model.remove(&key(k));
            }
        }
    }
    txn.commit().unwrap();
}

/// A reader and the data its snapshot must show.
struct Reader {
    txn: ReadTxn,
    table: ReadTable,
    model: Model,
}

impl Reader {
    /// A reader that begins once no commit waits for the inserter thread
    /// (`engine::pending`): a reader that began while one did may move its
    /// ranges as soon as the memtable holds it, with no flush at all.
    fn begin_settled(db: &Engine, model: &Model) -> Self {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let reader = Self::begin(db, model);
            if !reader.table.ranges_read_a_pending_run() {
                return reader;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the inserter never took in the commit"
            );
            std::thread::yield_now();
        }
    }

    fn begin(db: &Engine, model: &Model) -> Self {
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(b"t", bytewise).unwrap().expect("the table exists");
        Self {
            txn,
            table,
            model: model.clone(),
        }
    }

    /// Compares the whole table forward, and `[lo, hi)` backward, with the
    /// model.
    fn check(&self, lo: u64, hi: u64) {
        let read = |lower: Bound<&[u8]>, upper: Bound<&[u8]>, backward: bool| {
            range_entries(self.txn.range(&self.table, lower, upper).unwrap(), backward)
        };
        let all: Vec<_> = self.model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(
            read(Bound::Unbounded, Bound::Unbounded, false),
            all,
            "a full range left the snapshot"
        );
        let (lo, hi) = (key(lo), key(hi));
        let part: Vec<_> = self
            .model
            .range(lo.clone()..hi.clone())
            .rev()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(
            read(Bound::Included(&lo[..]), Bound::Excluded(&hi[..]), true),
            part,
            "a backward range left the snapshot"
        );
    }
}

/// An engine with `options` and keys `0..keys` committed, and its model.
fn loaded(options: EngineOptions, keys: u64) -> (Engine, Model) {
    let db = Disk::new().open(options);
    let mut model = Model::new();
    commit(&db, &mut model, &(0..keys).map(|i| (i, Some(i))).collect::<Vec<_>>());
    (db, model)
}

/// Memtables large enough that nothing is flushed but by `checkpoint`.
fn options() -> EngineOptions {
    EngineOptions {
        memtable_bytes: 16 << 20,
        ..small_options()
    }
}

#[test]
fn ranges_move_to_the_tree_that_holds_their_snapshot_and_no_further() {
    let (db, mut model) = loaded(options(), 500);
    let reader = Reader::begin_settled(&db, &model);
    reader.check(100, 200);
    assert!(!reader.table.ranges_moved(), "nothing was flushed yet");

    // The flush puts exactly the snapshot's memtable into the tree.
    db.checkpoint().unwrap();
    reader.check(100, 200);
    assert!(
        reader.table.ranges_moved(),
        "the ranges still read the flushed memtable"
    );

    // A table opened after the flush, in the same snapshot, moves too.
    let late = Reader {
        txn: reader.txn.clone(),
        table: reader.txn.open_table(b"t", bytewise).unwrap().unwrap(),
        model: reader.model.clone(),
    };
    late.check(300, 400);
    assert!(
        late.table.ranges_moved(),
        "a table opened after the flush read the flushed memtable"
    );

    // Newer commits, in the memtable and then in the tree, stay unseen.
    let newer: Vec<_> = (0..500)
        .step_by(3)
        .map(|i| (i, if i % 2 == 0 { None } else { Some(i + 1000) }))
        .chain((500..600).map(|i| (i, Some(i))))
        .collect();
    commit(&db, &mut model, &newer);
    reader.check(0, 600);
    db.checkpoint().unwrap();
    reader.check(0, 600);
    assert!(reader.table.ranges_moved());

    // A reader of the newer commits sees them, before and after a flush.
    let later = Reader::begin(&db, &model);
    later.check(0, 600);
    assert_ne!(later.model, reader.model, "the test wrote nothing new");
    commit(&db, &mut model, &[(1, None), (700, Some(7))]);
    db.checkpoint().unwrap();
    later.check(0, 800);
    reader.check(0, 800);
}

#[test]
fn ranges_stay_on_the_snapshot_when_the_tree_moves_past_it() {
    let (db, model) = loaded(options(), 300);
    let reader = Reader::begin(&db, &model);
    // Overwrites, removals and new keys after the snapshot, then a flush
    // that puts them in the tree along with the snapshot's own.
    let mut newer = model.clone();
    commit(
        &db,
        &mut newer,
        &(0..400)
            .map(|i| (i, if i % 5 == 0 { None } else { Some(i * 7) }))
            .collect::<Vec<_>>(),
    );
    db.checkpoint().unwrap();
    reader.check(50, 250);
    assert!(
        !reader.table.ranges_moved(),
        "the ranges moved to a tree holding commits newer than their snapshot"
    );
}

/// Many readers, each held across a random number of commits, with small
/// memtables frozen and flushed (in parts) by the background thread as the
/// commits come: whatever state each range reads, it shows its snapshot.
#[test]
fn ranges_of_long_readers_show_their_snapshot_through_flushes() {
    let db = Disk::new().open(small_options());
    let mut model = Model::new();
    let mut readers: Vec<Reader> = Vec::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut moved = 0;
    for round in 0..300 {
        let writes: Vec<_> = (0..next() % 40 + 1)
            .map(|_| {
                let k = next() % KEYS;
                (k, (next() % 4 != 0).then_some(round * 1000 + k))
            })
            .collect();
        commit(&db, &mut model, &writes);
        if round % 37 == 0 {
            db.checkpoint().unwrap();
        }
        if next() % 5 == 0 {
            readers.push(Reader::begin(&db, &model));
        }
        if readers.len() > 6 || (!readers.is_empty() && next() % 9 == 0) {
            let gone = readers.remove((next() % readers.len() as u64) as usize);
            moved += usize::from(gone.table.ranges_moved());
        }
        for reader in &readers {
            let lo = next() % KEYS;
            reader.check(lo, lo + next() % 100);
        }
    }
    assert!(moved > 0, "no reader's ranges ever moved: the test covers nothing new");
}

/// A commit large enough to go straight into the tree (`tree_commit`) moves
/// the tree past every older snapshot, without a flush.
#[test]
fn ranges_stay_on_the_snapshot_past_a_tree_commit() {
    let (db, model) = loaded(
        EngineOptions {
            tree_commit_bytes: 4 << 10,
            ..options()
        },
        20,
    );
    let reader = Reader::begin(&db, &model);
    let mut newer = model.clone();
    let big: Vec<_> = (0..300)
        .map(|i| (i, if i % 4 == 0 { None } else { Some(i + 5) }))
        .collect();
    commit(&db, &mut newer, &big);
    assert_eq!(db.stats().tree_commits, 1, "the big commit went through the memtable");
    reader.check(0, 300);
    assert!(!reader.table.ranges_moved());
}

/// A table deleted, then recreated under its name, after the snapshot: a
/// reader whose ranges moved to a state holding the deletion (in a
/// memtable not yet flushed) still reads the table as its snapshot had it.
/// The snapshot's memtable is frozen by the load (far more than 16 KiB)
/// and its flush held until the deletion and the recreation are committed:
/// left to race, the flush sometimes finished before the reader began
/// (nothing to move) or before the count below was read (a wait for a
/// flush that never came). Holding the data file's writes holds that flush
/// only because the table was created and checkpointed before: a memtable
/// that creates a table is flushed without part commits, and its pages may
/// all stay gathered in memory until the checkpoint, so its flush finished
/// through the held file about one run in twenty.
#[test]
fn ranges_keep_a_table_deleted_after_the_snapshot() {
    let data = HeldWrites::new(Arc::new(MemoryBackend::new()));
    let db = Engine::open(data.clone(), MemLogDir::new(), small_options()).unwrap();
    let mut model = Model::new();
    commit(&db, &mut model, &[(0, Some(0))]);
    db.checkpoint().unwrap();
    let held = data.hold();
    // A plain memtable: its flush makes part commits (`engine::flush_marker`),
    // whose writes wait for the hold.
    commit(&db, &mut model, &(0..2000).map(|i| (i, Some(i))).collect::<Vec<_>>());
    let reader = Reader::begin(&db, &model);
    let flushes = db.stats().flushes;
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(Durability::None);
    assert!(txn.delete_table(b"t").unwrap());
    txn.commit().unwrap();
    let mut recreated = Model::new();
    commit(&db, &mut recreated, &[(5, Some(50)), (5000, Some(5))]);
    assert_eq!(db.stats().flushes, flushes, "a flush wrote through the held data file");
    held.release();
    // The flush of the snapshot's memtable, in the background.
    let started = std::time::Instant::now();
    while db.stats().flushes == flushes {
        assert!(
            started.elapsed().as_secs() < 30,
            "the frozen memtable was never flushed"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    reader.check(0, 2000);
    assert!(
        reader.table.ranges_moved(),
        "the ranges did not move to the state holding the deletion"
    );
    Reader::begin(&db, &recreated).check(0, 6000);
    db.checkpoint().unwrap();
    reader.check(0, 2000);
    Reader::begin(&db, &recreated).check(0, 6000);
}

/// A reader that begins while the inserter thread still moves a big commit
/// into the memtable reads that commit from its pending run; once the run
/// is all in the memtable, the reader's ranges move to the state without
/// it (one source fewer), and show the same snapshot before and after.
#[test]
fn ranges_leave_a_pending_run_once_the_memtable_holds_it() {
    // A memtable and a WAL that hold every commit (no flush, no
    // checkpoint): only the pending run moves.
    let options = EngineOptions {
        resolver: small_options().resolver,
        checkpoint_wal_bytes: u64::MAX,
        checkpoint_interval: std::time::Duration::from_secs(3600),
        ..EngineOptions::default()
    };
    let db = Engine::open(Arc::new(MemoryBackend::new()), MemLogDir::new(), options).unwrap();
    // Commits big enough that their insert outlasts the reader's start.
    let keys = 20 * KEYS;
    let mut model = Model::new();
    let mut caught = 0;
    for round in 0..4u64 {
        // A big commit (well above the hand-off threshold) over every key.
        let writes: Vec<(u64, Option<u64>)> = (0..keys).map(|k| (k, Some(round * keys + k))).collect();
        commit(&db, &mut model, &writes);
        let reader = Reader::begin(&db, &model);
        if !reader.table.ranges_read_a_pending_run() {
            continue;
        }
        caught += 1;
        reader.check(0, keys);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while reader.table.ranges_read_a_pending_run() {
            assert!(
                std::time::Instant::now() < deadline,
                "the ranges never left the pending run"
            );
            std::thread::yield_now();
            reader.check(keys / 2, keys / 2 + 10);
        }
        assert!(reader.table.ranges_moved());
        reader.check(0, keys);
    }
    assert!(caught > 0, "no reader began while a pending run was in the state");
}
