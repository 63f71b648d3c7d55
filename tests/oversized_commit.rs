//! A transaction too large for one WAL record fails alone, with a clear
//! error, and the database goes on (correctness issue, defect 8). On the
//! unmodified engine the journal's `ValueTooLarge` went through `poison_on`:
//! every later operation failed with "database poisoned". The real limit is
//! a 4 GiB record; `max_commit_bytes` lowers it so the test stays small.

mod common;

use common::engine::{Disk, small_options};
use common::{key, numeric};
use sluicedb::StorageError;
use sluicedb::engine::EngineOptions;
use sluicedb::io::TearMode;

#[test]
fn an_oversized_commit_fails_alone() {
    let disk = Disk::new();
    let options = EngineOptions {
        max_commit_bytes: 64 << 10,
        ..small_options()
    };
    let engine = disk.open(options);
    let put = |keys: std::ops::Range<u16>, len: usize| {
        let mut txn = engine.begin_write().unwrap();
        let t = txn.open_table(b"t", b"numeric", numeric).unwrap();
        for k in keys {
            txn.insert(t, &key(k), &vec![k as u8; len]).unwrap();
        }
        txn.commit()
    };
    put(0..10, 100).unwrap();
    // 200 values of 1 KiB: well over 64 KiB in one record.
    match put(100..300, 1024) {
        Err(StorageError::ValueTooLarge(n)) => assert!(n > 64 << 10),
        other => panic!("expected ValueTooLarge, got {other:?}"),
    }
    // Nothing of it is visible, and the database takes the next commit.
    put(10..20, 100).unwrap();
    let read = engine.begin_read().unwrap();
    let t = read.open_table(b"t", numeric).unwrap().unwrap();
    assert!(read.get(&t, &key(150)).unwrap().is_none());
    assert!(read.get(&t, &key(15)).unwrap().is_some());
    drop((read, engine));
    // After a crash: the two good commits, nothing of the refused one.
    let engine = disk.crashed(TearMode::DropAll).open(options);
    let read = engine.begin_read().unwrap();
    let t = read.open_table(b"t", numeric).unwrap().unwrap();
    assert!(read.get(&t, &key(150)).unwrap().is_none());
    assert!(read.get(&t, &key(19)).unwrap().is_some());
}
