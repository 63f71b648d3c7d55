//! Values larger than a page live in overflow runs: up to the 128 MiB limit,
//! with a clear error above it, and their pages are reused once freed.

mod common;

use common::check;
use sluicedb::StorageError;
use sluicedb::btree::{MAX_KEY_LEN, MAX_VALUE_LEN, TreeStore, TreeStoreOptions, bytewise};
use sluicedb::io::FileBackend;

#[test]
fn a_64_mib_value_round_trips_through_a_file_and_its_pages_are_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.sluice");
    let file = || {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .unwrap()
    };
    let big: Vec<u8> = (0..64usize << 20).map(|i| (i % 253) as u8).collect();
    {
        let store = TreeStore::create(FileBackend::new(file()), 7, TreeStoreOptions::default()).unwrap();
        let mut w = store.writer().unwrap();
        w.insert(b"blobs", bytewise, b"big", &big).unwrap();
        w.insert(b"blobs", bytewise, b"small", b"x").unwrap();
        w.commit(0).unwrap();
        check(&store);
    }
    let len_with_value = std::fs::metadata(&path).unwrap().len();
    assert!(len_with_value > 64 << 20);
    let store = TreeStore::open(FileBackend::new(file()), TreeStoreOptions::default()).unwrap();
    let snap = store.snapshot();
    let info = snap.tree(b"blobs").unwrap().unwrap();
    assert!(snap.get(&info, bytewise, b"big").unwrap().unwrap().as_bytes() == &big[..]);
    drop(snap);

    let mut w = store.writer().unwrap();
    assert!(w.remove(b"blobs", bytewise, b"big").unwrap().is_some());
    w.commit(0).unwrap();
    // Copy-on-write moves the few live pages down into the freed run (the
    // allocator prefers low pages) as they are rewritten; once the tail is
    // free, a durable commit gives it back to the file system.
    for i in 0..3u8 {
        let mut w = store.writer().unwrap();
        w.insert(b"blobs", bytewise, &[i], b"small").unwrap();
        w.commit(0).unwrap();
    }
    check(&store);
    let len_after = std::fs::metadata(&path).unwrap().len();
    assert!(
        len_after < 1 << 20,
        "file still {len_after} bytes after the value was removed"
    );
}

#[test]
fn oversized_keys_and_values_are_refused_with_their_sizes() {
    let store = TreeStore::create(sluicedb::io::MemoryBackend::new(), 1, TreeStoreOptions::default()).unwrap();
    let mut w = store.writer().unwrap();
    let key = vec![1u8; MAX_KEY_LEN + 1];
    match w.insert(b"t", bytewise, &key, b"v") {
        Err(StorageError::KeyTooLarge(n)) => assert_eq!(n, MAX_KEY_LEN + 1),
        other => panic!("expected KeyTooLarge, got {other:?}"),
    }
    let value = vec![0u8; MAX_VALUE_LEN + 1];
    match w.insert(b"t", bytewise, b"k", &value) {
        Err(StorageError::ValueTooLarge(n)) => assert_eq!(n, MAX_VALUE_LEN + 1),
        other => panic!("expected ValueTooLarge, got {other:?}"),
    }
    // Nothing was written: the tree still works.
    w.insert(b"t", bytewise, &vec![2u8; MAX_KEY_LEN], b"fits").unwrap();
    w.commit(0).unwrap();
    check(&store);
}
