//! Commits after (and racing with) the Database handle's drop: small,
//! inserter-sized and tree commits, on files and on a single backend, crash
//! images after them, pipelined commits, and a range alive across the drop
//! (written by the twenty-third session's review of the fix; it found
//! nothing here).

mod common;

use std::sync::{Arc, Barrier, mpsc};
use std::time::Duration;

use common::keys::CrashDisk;
use sluicedb::io::TearMode;
use sluicedb::{Builder, Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");

fn write(txn: &WriteTransaction, base: u64, keys: u64, len: usize) {
    let mut t = txn.open_table(T).unwrap();
    for k in base..base + keys {
        t.insert(k, vec![k as u8; len].as_slice()).unwrap();
    }
}

fn count(db: &Database) -> (u64, bool) {
    let r = db.begin_read().unwrap();
    let Ok(t) = r.open_table(T) else { return (0, true) };
    let mut n = 0;
    let mut ok = true;
    for e in t.iter().unwrap() {
        let (k, v) = e.unwrap();
        let k = k.value();
        ok &= v.value().iter().all(|&b| b == k as u8);
        n += 1;
    }
    (n, ok)
}

/// (keys, value length, tree-commit size): small, inserter-sized, tree commit.
const SHAPES: [(u64, usize, usize); 3] = [(3, 10, 64 << 20), (600, 10, 64 << 20), (40, 16 << 10, 64 << 10)];

fn builder(shape: usize, checkpoint_on_drop: bool) -> Builder {
    let mut b = Database::builder();
    b.set_tree_commit_size(SHAPES[shape].2)
        .set_checkpoint_on_drop(checkpoint_on_drop);
    b
}

/// The commit races the handle's drop on another thread; it must return
/// within 30 s, and if it returned Ok, it is there at the next open, with
/// every earlier commit, integrity clean.
#[test]
fn commit_racing_the_drop() {
    for iter in 0..24u64 {
        let shape = (iter % 3) as usize;
        let (keys, len, _) = SHAPES[shape];
        let cod = iter % 2 == 0;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let db = builder(shape, cod).create(&path).unwrap();
        // Earlier commits: some in the tree, some in the memtable.
        let txn = db.begin_write().unwrap();
        write(&txn, 10_000, 500, 10);
        txn.commit().unwrap();
        db.checkpoint().unwrap();
        let txn = db.begin_write().unwrap();
        write(&txn, 20_000, 50, 10);
        txn.commit().unwrap();
        let txn = db.begin_write().unwrap();
        write(&txn, 0, keys, len);
        let reader = db.begin_read().unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let (tx, rx) = mpsc::channel();
        let b2 = barrier.clone();
        std::thread::spawn(move || {
            b2.wait();
            if iter % 4 < 2 {
                std::thread::sleep(Duration::from_micros(iter * 37 % 500));
            }
            let _ = tx.send(txn.commit());
        });
        barrier.wait();
        if iter % 4 >= 2 {
            std::thread::sleep(Duration::from_micros(iter * 53 % 500));
        }
        drop(db);
        let res = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("iter {iter}: commit hung"));
        // A reader that outlived the handle: errors are fine, panics are not.
        if let Ok(t) = reader.open_table(T)
            && let Ok(it) = t.iter()
        {
            for e in it {
                if e.is_err() {
                    break;
                }
            }
        }
        drop(reader);
        let mut db = Database::open(&path).unwrap();
        assert!(db.check_integrity().unwrap(), "iter {iter}: integrity");
        let (n, ok) = count(&db);
        assert!(ok, "iter {iter}: wrong values");
        let want = 550 + if res.is_ok() { keys } else { 0 };
        assert!(
            n == want || (res.is_err() && n == 550 + keys),
            "iter {iter} shape {shape} cod {cod}: {n} entries, want {want} (commit {res:?})"
        );
        assert!(
            res.is_ok(),
            "iter {iter} shape {shape} cod {cod}: commit failed: {res:?}"
        );
    }
}

/// Commits after the drop on a crash disk: an Immediate commit that
/// returned Ok survives every crash image.
#[test]
fn crash_images_after_a_commit_after_the_drop() {
    for (shape, &(keys, len, _)) in SHAPES.iter().enumerate() {
        for cod in [false, true] {
            for mode in [TearMode::DropAll, TearMode::KeepAll, TearMode::Random(shape as u64 + 3)] {
                let disk = CrashDisk::new();
                let db = disk.open(&builder(shape, cod));
                let txn = db.begin_write().unwrap();
                write(&txn, 10_000, 200, 10);
                txn.commit().unwrap();
                let mut txn = db.begin_write().unwrap();
                txn.set_durability(Durability::Immediate).unwrap();
                write(&txn, 0, keys, len);
                drop(db);
                txn.commit().unwrap();
                let crashed = disk.crashed(mode);
                let mut db = crashed.open(&builder(shape, cod));
                assert!(
                    db.check_integrity().unwrap(),
                    "shape {shape} cod {cod} {mode:?}: integrity"
                );
                let (n, ok) = count(&db);
                assert!(ok);
                // The first commit: durable if Immediate is the default or the
                // drop checkpointed; the second must be there.
                assert!(
                    n == 200 + keys || n == keys,
                    "shape {shape} cod {cod} {mode:?}: {n} entries"
                );
                let r = db.begin_read().unwrap();
                let t = r.open_table(T).unwrap();
                for k in 0..keys {
                    assert!(
                        t.get(k).unwrap().is_some(),
                        "shape {shape} cod {cod} {mode:?}: key {k} lost"
                    );
                }
            }
        }
    }
}

/// A pipelined commit after the drop: its PendingCommit must resolve.
#[test]
fn pipelined_commit_after_the_drop_resolves() {
    for (shape, &(keys, len, _)) in SHAPES.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let db = builder(shape, false).create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        write(&txn, 0, keys, len);
        drop(db);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let r = txn.commit_pipelined().map(|p| p.wait());
            let _ = tx.send(format!("{r:?}"));
        });
        let r = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("shape {shape}: hung"));
        assert!(r.contains("Ok(Ok"), "shape {shape}: {r}");
        let db = Database::open(&path).unwrap();
        assert_eq!(count(&db).0, keys, "shape {shape}");
    }
}

/// On a single backend (volatile WAL, durable commits made durable by a
/// checkpoint), a commit racing the handle's drop: if Ok, it is in the file.
#[test]
fn commit_racing_the_drop_on_a_single_backend() {
    use sluicedb::backends::FileBackend;
    use std::fs::OpenOptions;
    for iter in 0..18u64 {
        let shape = (iter % 3) as usize;
        let (keys, len, _) = SHAPES[shape];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let file = || {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .unwrap()
        };
        let db = builder(shape, iter % 2 == 0)
            .create_with_backend(FileBackend::new(file()).unwrap())
            .unwrap();
        let txn = db.begin_write().unwrap();
        write(&txn, 10_000, 300, 10);
        txn.commit().unwrap();
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(Durability::Immediate).unwrap();
        write(&txn, 0, keys, len);
        let barrier = Arc::new(Barrier::new(2));
        let (tx, rx) = mpsc::channel();
        let b2 = barrier.clone();
        std::thread::spawn(move || {
            b2.wait();
            std::thread::sleep(Duration::from_micros(iter * 41 % 400));
            let _ = tx.send(txn.commit());
        });
        barrier.wait();
        std::thread::sleep(Duration::from_micros(iter * 29 % 400));
        drop(db);
        let res = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("iter {iter}: hung"));
        assert!(res.is_ok(), "iter {iter}: {res:?}");
        let mut db = builder(shape, false)
            .create_with_backend(FileBackend::new(file()).unwrap())
            .unwrap();
        assert!(db.check_integrity().unwrap(), "iter {iter}: integrity");
        let (n, ok) = count(&db);
        assert!(ok);
        assert_eq!(n, 300 + keys, "iter {iter} shape {shape}: entries");
    }
}

/// A range (and a read transaction) alive across the drop while a write
/// transaction that outlived the handle commits a big rewrite of the same
/// table (tree commit: pages freed and reused): the range yields the old
/// snapshot's data or errors, never other data.
#[test]
fn a_range_alive_across_the_drop_and_a_post_drop_rewrite() {
    for cod in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut b = Database::builder();
        b.set_tree_commit_size(64 << 10).set_checkpoint_on_drop(cod);
        let db = b.create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        write(&txn, 0, 20_000, 40);
        txn.commit().unwrap();
        db.checkpoint().unwrap();
        let read = db.begin_read().unwrap();
        let table = read.open_table(T).unwrap();
        let mut range = table.range(0..20_000).unwrap();
        let (k, v) = range.next().unwrap().unwrap();
        assert_eq!(k.value(), 0);
        assert_eq!(v.value(), vec![0u8; 40].as_slice());
        drop((k, v));
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(T).unwrap();
            for k in 0..20_000u64 {
                t.insert(k, vec![0xEE; 40].as_slice()).unwrap();
            }
        }
        drop(db);
        txn.commit().unwrap();
        let mut seen = 1;
        for e in range.by_ref() {
            match e {
                Ok((k, v)) => {
                    let k = k.value();
                    assert_eq!(k, seen, "cod {cod}: key order");
                    assert!(
                        v.value().iter().all(|&b| b == k as u8),
                        "cod {cod}: key {k} shows other data: {:?}",
                        &v.value()[..4]
                    );
                    seen += 1;
                }
                Err(_) => break,
            }
        }
        drop((range, table, read));
        let db = Database::open(&path).unwrap();
        let r = db.begin_read().unwrap();
        let t = r.open_table(T).unwrap();
        assert_eq!(
            t.get(7).unwrap().unwrap().value(),
            vec![0xEE; 40].as_slice(),
            "cod {cod}: the rewrite"
        );
    }
}
