//! A commit slot whose checksum is valid but whose numbers cannot be real
//! (crafted, or written by a bug) must give a clear corruption error at open,
//! never a panic or a wrapped counter later: `checkpoint_seq = u64::MAX` used
//! to overflow the journal's `last + 1` (a panic in debug builds; in release
//! the next commit got sequence 0 and was never published).

use std::sync::Arc;

use sluicedb::btree::{TreeStore, TreeStoreOptions, bytewise};
use sluicedb::io::{CrashBackend, MemLogDir, MemoryBackend};
use sluicedb::{Builder, DatabaseError, ReadableDatabase, StorageError, TableDefinition};
use xxhash_rust::xxh3::xxh3_64_with_seed;

const SLOTS: [usize; 2] = [1024, 2048];
const T: TableDefinition<u64, u64> = TableDefinition::new("t");

/// A file with one durable commit in slot 1 (creation wrote slot 0).
fn image() -> Vec<u8> {
    let backend = Arc::new(CrashBackend::new());
    let store = TreeStore::create(backend.clone(), 7, TreeStoreOptions::default()).unwrap();
    let mut w = store.writer().unwrap();
    w.insert(b"tree", bytewise, b"key", b"value").unwrap();
    w.commit(3).unwrap();
    drop(store);
    backend.durable_image()
}

/// Sets u64 field `field` of the slot at `index` and reseals its checksum.
fn craft(image: &mut [u8], index: usize, field: usize, value: u64) {
    let at = SLOTS[index];
    image[at + field * 8..at + field * 8 + 8].copy_from_slice(&value.to_le_bytes());
    let sum = xxh3_64_with_seed(&image[at..at + 56], index as u64);
    image[at + 56..at + 64].copy_from_slice(&sum.to_le_bytes());
}

fn open_engine(image: Vec<u8>) -> Result<(), DatabaseError> {
    let db = Builder::new().create_with_backends(MemoryBackend::from_bytes(image), MemLogDir::new())?;
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(T).unwrap();
        table.insert(1, 2).unwrap();
    }
    txn.commit().unwrap();
    let read = db.begin_read().unwrap();
    assert_eq!(read.open_table(T).unwrap().get(1).unwrap().unwrap().value(), 2);
    Ok(())
}

fn expect_corrupted(result: Result<(), DatabaseError>, what: &str) -> String {
    match result {
        Err(DatabaseError::Storage(StorageError::Corrupted(msg))) => msg,
        Err(other) => panic!("{what}: expected a corruption error, got {other}"),
        Ok(()) => panic!("{what}: an impossible slot was accepted"),
    }
}

#[test]
fn checkpoint_seq_near_u64_max_is_corruption_not_a_panic() {
    let mut crafted = image();
    craft(&mut crafted, 1, 1, u64::MAX);
    let msg = expect_corrupted(open_engine(crafted), "checkpoint_seq = u64::MAX");
    assert!(msg.contains("checkpoint"), "{msg}");
}

#[test]
fn every_impossible_slot_number_is_a_clear_error() {
    let good = image();
    // (field, value, what the message names)
    let cases: &[(usize, u64, &str)] = &[
        (0, u64::MAX, "transaction"),
        (0, u64::MAX / 2 + 1, "transaction"),
        (1, u64::MAX / 2 + 1, "checkpoint"),
        (2, u64::MAX, "catalog"),
        (3, u64::MAX, "catalog"),
        (4, u64::MAX, "free"),
        (5, u64::MAX, "page count"),
        (5, 1 << 40, "page count"),
    ];
    for &(field, value, named) in cases {
        let mut crafted = good.clone();
        craft(&mut crafted, 1, field, value);
        let store = TreeStore::open(MemoryBackend::from_bytes(crafted.clone()), TreeStoreOptions::default());
        let msg = match store {
            Err(StorageError::Corrupted(msg)) => msg,
            Err(other) => panic!("field {field} = {value}: {other}"),
            Ok(_) => panic!("field {field} = {value} accepted"),
        };
        assert!(msg.contains(named), "field {field} = {value}: {msg}");
        expect_corrupted(open_engine(crafted), "engine");
    }
    // The untouched image still opens and takes commits.
    open_engine(good).unwrap();
}

/// Edge values and small ones: where overflow and off-by-one live.
fn number() -> impl proptest::strategy::Strategy<Value = u64> {
    use proptest::prelude::*;
    prop_oneof![
        0u64..8,
        Just(u64::MAX),
        Just(u64::MAX - 1),
        Just(u64::MAX / 2),
        Just(u64::MAX / 2 + 1),
        Just(u64::MAX / 4096 + 1),
        any::<u64>(),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]

    /// The class: any numbers in a checksum-valid slot either open as a
    /// database that then reads and commits without a panic (each commit Ok
    /// or an error), or give a corruption error at open.
    #[test]
    fn any_slot_numbers_open_cleanly_or_are_refused(
        slot in 0usize..2,
        fields in proptest::collection::vec(number(), 6),
    ) {
        let mut crafted = image();
        for (field, &value) in fields.iter().enumerate() {
            craft(&mut crafted, slot, field, value);
        }
        match TreeStore::open(MemoryBackend::from_bytes(crafted.clone()), TreeStoreOptions::default()) {
            Err(StorageError::Corrupted(_)) => {}
            Err(other) => panic!("not a corruption error: {other}"),
            Ok(store) => {
                let _ = store.check_integrity(&|_, _| Some(bytewise));
                let snapshot = store.snapshot();
                let _ = snapshot.list_trees();
                for round in 0..2u8 {
                    let Ok(mut w) = store.writer() else { break };
                    let _ = w.insert(b"tree", bytewise, &[round], b"v");
                    if w.commit(u64::from(round)).is_err() {
                        break;
                    }
                }
            }
        }
        match Builder::new().create_with_backends(MemoryBackend::from_bytes(crafted), MemLogDir::new()) {
            Err(DatabaseError::Storage(StorageError::Corrupted(_))) => {}
            Err(other) => panic!("engine: not a corruption error: {other}"),
            Ok(db) => {
                let txn = db.begin_write().unwrap();
                {
                    let mut table = txn.open_table(T).unwrap();
                    table.insert(5, 6).unwrap();
                }
                txn.commit().unwrap();
                let read = db.begin_read().unwrap();
                assert_eq!(read.open_table(T).unwrap().get(5).unwrap().unwrap().value(), 6);
            }
        }
    }
}
