//! Defect (twenty-second session's review): `Engine::compact` published
//! whatever tree the store committed last, under the current state's `seq`
//! and `tree_seq`. A tree commit (`tree_commit::commit`) commits its tree in
//! step 2, releases the writer, and publishes only in step 4, after its WAL
//! record is synced: a compaction in between published commit N's data
//! under sequence N-1, so a new reader at N-1 saw N, and an older reader's
//! ranges moved to that state (invariant 13) and saw N too. Compaction now
//! waits until the state shows the store's newest commit and publishes its
//! relocation before it lets the tree writer go (`format.md`, Compaction).

mod common;

use std::collections::BTreeMap;
use std::io;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use sluicedb::btree::bytewise;
use sluicedb::engine::{Durability, Engine, EngineOptions};
use sluicedb::io::{LogDir, MemLogDir, MemoryBackend, StorageBackend};

/// Blocks the first WAL `sync_data` after a write, once armed, until released.
#[derive(Default)]
struct Gate {
    armed: AtomicBool,
    dirty: AtomicBool,
    state: Mutex<(bool, bool)>, // (entered, released)
    cv: Condvar,
}

struct GatedFile {
    file: Box<dyn StorageBackend>,
    gate: Arc<Gate>,
}

impl StorageBackend for GatedFile {
    fn len(&self) -> io::Result<u64> {
        self.file.len()
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read(offset, buf)
    }
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        if self.gate.armed.load(Ordering::SeqCst) {
            self.gate.dirty.store(true, Ordering::SeqCst);
        }
        self.file.write(offset, data)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        if self.gate.armed.load(Ordering::SeqCst) && self.gate.dirty.load(Ordering::SeqCst) {
            let mut s = self.gate.state.lock();
            s.0 = true;
            self.gate.cv.notify_all();
            while !s.1 {
                self.gate.cv.wait(&mut s);
            }
        }
        self.file.sync_data()
    }
}

#[derive(Clone)]
struct GatedDir {
    dir: MemLogDir,
    gate: Arc<Gate>,
}

impl LogDir for GatedDir {
    fn list(&self) -> io::Result<Vec<String>> {
        self.dir.list()
    }
    fn create(&self, name: &str) -> io::Result<Box<dyn StorageBackend>> {
        Ok(Box::new(GatedFile {
            file: self.dir.create(name)?,
            gate: self.gate.clone(),
        }))
    }
    fn open(&self, name: &str) -> io::Result<Box<dyn StorageBackend>> {
        Ok(Box::new(GatedFile {
            file: self.dir.open(name)?,
            gate: self.gate.clone(),
        }))
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.dir.remove(name)
    }
}

fn key(i: u64) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

fn scan(db_read: &sluicedb::engine::ReadTxn, t: &sluicedb::engine::ReadTable) -> Vec<(Vec<u8>, Vec<u8>)> {
    db_read
        .range(t, Bound::Unbounded, Bound::Unbounded)
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

#[test]
fn compaction_waits_for_a_tree_commit_to_be_published() {
    let gate = Arc::new(Gate::default());
    let dir = GatedDir {
        dir: MemLogDir::new(),
        gate: gate.clone(),
    };
    let options = EngineOptions {
        tree_commit_bytes: 4 << 10,
        memtable_bytes: 16 << 20,
        resolver: common::engine::resolver,
        ..EngineOptions::default()
    };
    let db = Arc::new(Engine::open(Arc::new(MemoryBackend::new()), dir, options).unwrap());

    // The snapshot: 20 keys, checkpointed.
    let mut model = BTreeMap::new();
    {
        let mut txn = db.begin_write().unwrap();
        let t = txn.open_table(b"t", b"bytes", bytewise).unwrap();
        for i in 0..20 {
            txn.insert(t, &key(i), b"old").unwrap();
            model.insert(key(i), b"old".to_vec());
        }
        txn.commit().unwrap();
    }
    db.checkpoint().unwrap();
    db.sync().unwrap();
    let reader = db.begin_read().unwrap();
    let table = reader.open_table(b"t", bytewise).unwrap().unwrap();
    let expected: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(scan(&reader, &table), expected);
    let trees_before = db.stats().tree_commits;

    // A commit big enough to go through the tree; its WAL sync (step 3) is
    // held, so it has committed its tree but not published it.
    gate.armed.store(true, Ordering::SeqCst);
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut txn = db.begin_write().unwrap();
            txn.set_durability(Durability::Immediate);
            let t = txn.open_table(b"t", b"bytes", bytewise).unwrap();
            for i in 0..300 {
                txn.insert(t, &key(i), &[b'n'; 40]).unwrap();
            }
            txn.commit().unwrap();
        })
    };
    {
        let mut s = gate.state.lock();
        while !s.0 {
            gate.cv.wait_for(&mut s, Duration::from_secs(30));
        }
    }
    // The tree commit's writer is done (its WAL record is written after it).
    std::thread::sleep(Duration::from_millis(50));

    let compaction = {
        let db = db.clone();
        std::thread::spawn(move || db.compact().unwrap())
    };
    // Whatever the compaction does meanwhile, nobody sees the unpublished
    // commit: not a new reader, not the old reader's ranges.
    std::thread::sleep(Duration::from_millis(100));
    let fresh = db.begin_read().unwrap();
    let fresh_table = fresh.open_table(b"t", bytewise).unwrap().unwrap();
    let rows = scan(&fresh, &fresh_table);
    assert!(
        rows == expected,
        "a reader at sequence {} sees {} rows, the tree commit's among them, before it is published",
        fresh.sequence(),
        rows.len()
    );
    let rows = scan(&reader, &table);
    assert!(
        rows == expected,
        "the old reader's range (moved to a newer state: {}) shows {} rows: an unpublished tree commit",
        table.ranges_moved(),
        rows.len()
    );
    assert!(
        !compaction.is_finished(),
        "the compaction published before the tree commit did"
    );

    {
        let mut s = gate.state.lock();
        s.1 = true;
        gate.cv.notify_all();
    }
    gate.armed.store(false, Ordering::SeqCst);
    writer.join().unwrap();
    compaction.join().unwrap();
    assert_eq!(
        db.stats().tree_commits,
        trees_before + 1,
        "the big commit did not go through the tree"
    );

    // Once both are done: the old reader still sees its snapshot, a new one
    // the tree commit.
    assert!(scan(&reader, &table) == expected, "the old reader's snapshot changed");
    let after = db.begin_read().unwrap();
    let after_table = after.open_table(b"t", bytewise).unwrap().unwrap();
    assert_eq!(scan(&after, &after_table).len(), 300);
    db.check_integrity().unwrap();
}

/// Commits that change no entry (a compaction's trim, a checkpoint of a
/// durable tree) publish no state: a compaction must not wait for them. The
/// first version of the fix waited until the state showed the store's
/// newest commit, and a second compaction after the first's trim commit
/// waited forever.
#[test]
fn compactions_one_after_another_finish() {
    let db = Arc::new(
        Engine::open(
            Arc::new(MemoryBackend::new()),
            MemLogDir::new(),
            EngineOptions {
                resolver: common::engine::resolver,
                ..EngineOptions::default()
            },
        )
        .unwrap(),
    );
    let mut txn = db.begin_write().unwrap();
    let t = txn.open_table(b"t", b"bytes", bytewise).unwrap();
    for i in 0..2000 {
        txn.insert(t, &key(i), &[b'v'; 100]).unwrap();
    }
    txn.commit().unwrap();
    let (done, finished) = std::sync::mpsc::channel();
    {
        let db = db.clone();
        std::thread::spawn(move || {
            for _ in 0..3 {
                db.compact().unwrap();
                db.checkpoint().unwrap();
            }
            done.send(()).unwrap();
        });
    }
    finished
        .recv_timeout(Duration::from_secs(60))
        .expect("three compactions in a row did not finish in a minute");
    let reader = db.begin_read().unwrap();
    let table = reader.open_table(b"t", bytewise).unwrap().unwrap();
    assert_eq!(scan(&reader, &table).len(), 2000);
}
