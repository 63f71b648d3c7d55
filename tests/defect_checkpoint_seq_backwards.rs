//! A durable commit's `checkpoint_seq` never goes backwards: the tree writer
//! refuses a commit below the store's durable `checkpoint_seq` (and leaves
//! the durable state as it was), and exposes that value under its lock.

mod common;

use common::{TREE, key, numeric, read_all};
use sluicedb::StorageError;
use sluicedb::btree::{TreeStore, TreeStoreOptions};
use sluicedb::io::MemoryBackend;
use std::sync::Arc;

#[test]
fn a_commit_below_the_durable_checkpoint_seq_is_refused() {
    let backend = Arc::new(MemoryBackend::new());
    let store = TreeStore::create(backend.clone(), 1, TreeStoreOptions::default()).unwrap();
    let mut w = store.writer().unwrap();
    assert_eq!(w.durable_checkpoint_seq(), 0);
    w.insert(TREE, numeric, &key(1), b"one").unwrap();
    w.commit(10).unwrap();

    let mut w = store.writer().unwrap();
    assert_eq!(w.durable_checkpoint_seq(), 10);
    w.insert(TREE, numeric, &key(2), b"two").unwrap();
    let err = w.commit(9).unwrap_err();
    assert!(
        matches!(&err, StorageError::Internal(msg) if msg.contains("checkpoint_seq 9") && msg.contains("10")),
        "{err}"
    );
    assert_eq!(store.durable_checkpoint_seq(), 10);
    assert_eq!(read_all(&store.snapshot()).len(), 1, "the refused commit was published");

    // An equal value is allowed (a checkpoint with nothing new to flush).
    let mut w = store.writer().unwrap();
    w.insert(TREE, numeric, &key(2), b"two").unwrap();
    w.commit(10).unwrap();
    let w = store.writer().unwrap();
    w.commit(11).unwrap();
    assert_eq!(store.durable_checkpoint_seq(), 11);
    assert_eq!(read_all(&store.snapshot()).len(), 2);

    // The refusal holds across a reopen too.
    drop(store);
    let store = TreeStore::open(
        MemoryBackend::from_bytes(backend.to_bytes()),
        TreeStoreOptions::default(),
    )
    .unwrap();
    let w = store.writer().unwrap();
    assert_eq!(w.durable_checkpoint_seq(), 11);
    assert!(matches!(w.commit(3), Err(StorageError::Internal(_))));
    assert_eq!(store.durable_checkpoint_seq(), 11);
}
