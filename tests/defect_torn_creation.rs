//! A power cut while a database is being created must not leave a file that
//! nothing can open: nothing was acknowledged, so the reopened file is a new,
//! empty database. A damaged header of a database that holds data, a
//! zero-filled file and random bytes still give clear errors, and are never
//! re-initialised.

mod common;

use std::sync::Arc;

use common::{TREE, check, key, numeric};
use sluicedb::btree::{TreeStore, TreeStoreOptions, bytewise};
use sluicedb::io::{CrashBackend, MemLogDir, MemoryBackend, TearMode};
use sluicedb::{Builder, Database, DatabaseError, ReadableDatabase, StorageError, TableDefinition};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");

/// Counted I/O operations of a whole creation.
fn creation_ops() -> u64 {
    let backend = Arc::new(CrashBackend::new());
    TreeStore::create(backend.clone(), 1, TreeStoreOptions::default()).unwrap();
    backend.ops()
}

/// Every image a power cut during creation can leave behind.
fn crash_images() -> Vec<(String, Vec<u8>)> {
    let mut images = Vec::new();
    for cut in 0..=creation_ops() {
        let modes = [TearMode::DropAll, TearMode::KeepAll]
            .into_iter()
            .chain((0..60).map(TearMode::Random));
        for mode in modes {
            let backend = Arc::new(CrashBackend::new());
            backend.cut_power_after(cut);
            let _ = TreeStore::create(backend.clone(), 0xC0FFEE, TreeStoreOptions::default());
            images.push((format!("cut after {cut} ops, {mode:?}"), backend.crash_image(mode)));
        }
    }
    images
}

/// Opens the image as the engine does, checks it, writes to it, and reopens.
fn opens_as_a_working_database(name: &str, image: Vec<u8>) {
    // The tree store's own open recognises an unfinished creation. (An
    // empty file is a new file: the engine creates a database in it, and
    // opening it as an existing database is refused.)
    if image.is_empty() {
        assert!(TreeStore::open(MemoryBackend::new(), TreeStoreOptions::default()).is_err());
        let store = TreeStore::create(MemoryBackend::new(), 1, TreeStoreOptions::default()).unwrap();
        check(&store);
    } else {
        reopens(name, &image);
    }

    // And so does the engine (its `create` and `open` share this path).
    let db = Builder::new()
        .create_with_backends(MemoryBackend::from_bytes(image), MemLogDir::new())
        .unwrap_or_else(|e| panic!("{name}: engine open failed: {e}"));
    let txn = db.begin_write().unwrap();
    txn.open_table(T).unwrap().insert(1, 2).unwrap();
    txn.commit().unwrap();
    assert_eq!(
        db.begin_read()
            .unwrap()
            .open_table(T)
            .unwrap()
            .get(1)
            .unwrap()
            .unwrap()
            .value(),
        2
    );
}

/// Opens a non-empty image with the tree store, writes, and reopens.
fn reopens(name: &str, image: &[u8]) {
    let backend = Arc::new(MemoryBackend::from_bytes(image.to_vec()));
    let store = TreeStore::open(backend.clone(), TreeStoreOptions::default())
        .unwrap_or_else(|e| panic!("{name}: open failed: {e}"));
    check(&store);
    assert!(store.snapshot().list_trees().unwrap().is_empty(), "{name}: not empty");
    let mut w = store.writer().unwrap();
    w.insert(TREE, numeric, &key(1), b"one").unwrap();
    w.commit(0).unwrap();
    drop(store);
    let store = TreeStore::open(
        MemoryBackend::from_bytes(backend.to_bytes()),
        TreeStoreOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{name}: reopen failed: {e}"));
    check(&store);
    let info = store.snapshot().tree(TREE).unwrap().unwrap();
    assert_eq!(
        store
            .snapshot()
            .get(&info, numeric, &key(1))
            .unwrap()
            .unwrap()
            .as_bytes(),
        b"one"
    );
}

#[test]
fn a_power_cut_at_any_step_of_creation_leaves_a_file_that_opens() {
    let images = crash_images();
    assert!(images.len() > 100);
    for (name, image) in images {
        opens_as_a_working_database(&name, image);
    }
}

#[test]
fn database_open_and_create_accept_a_torn_creation_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    // The case: the first page torn (a prefix of it written).
    let images: Vec<Vec<u8>> = crash_images()
        .into_iter()
        .map(|(_, image)| image)
        .filter(|image| !image.is_empty() && image.len() < 4096)
        .take(5)
        .collect();
    assert!(!images.is_empty());
    for (i, image) in images.into_iter().enumerate() {
        for create in [false, true] {
            let path = dir.path().join(format!("torn-{i}-{create}.sluice"));
            std::fs::write(&path, &image).unwrap();
            let db = if create {
                Database::create(&path)
            } else {
                Database::open(&path)
            }
            .unwrap_or_else(|e| panic!("image {i} (create: {create}): {e}"));
            let txn = db.begin_write().unwrap();
            txn.open_table(T).unwrap().insert(3, 4).unwrap();
            txn.commit().unwrap();
            drop(db);
            let db = Database::open(&path).unwrap();
            assert_eq!(
                db.begin_read()
                    .unwrap()
                    .open_table(T)
                    .unwrap()
                    .get(3)
                    .unwrap()
                    .unwrap()
                    .value(),
                4
            );
        }
    }
}

/// A database holding one durable commit of data.
fn real_database() -> Vec<u8> {
    let backend = Arc::new(CrashBackend::new());
    let store = TreeStore::create(backend.clone(), 5, TreeStoreOptions::default()).unwrap();
    let mut w = store.writer().unwrap();
    for k in 0..50u16 {
        w.insert(TREE, numeric, &key(k), b"value").unwrap();
    }
    w.commit(0).unwrap();
    drop(store);
    backend.durable_image()
}

/// Opening `image` fails with a corruption error and writes nothing.
fn refused(what: &str, image: Vec<u8>) {
    let backend = Arc::new(MemoryBackend::from_bytes(image.clone()));
    match TreeStore::open(backend.clone(), TreeStoreOptions::default()) {
        Err(StorageError::Corrupted(_)) => {}
        Err(e) => panic!("{what}: not a corruption error: {e}"),
        Ok(_) => panic!("{what}: opened (re-initialised?)"),
    }
    assert_eq!(backend.to_bytes(), image, "{what}: the file was changed");
    let backend = Arc::new(MemoryBackend::from_bytes(image.clone()));
    match Builder::new().create_with_backends(backend.clone(), MemLogDir::new()) {
        Err(DatabaseError::Storage(StorageError::Corrupted(_))) => {}
        Err(e) => panic!("{what}: engine: not a corruption error: {e}"),
        Ok(_) => panic!("{what}: engine opened it (re-initialised?)"),
    }
    assert_eq!(backend.to_bytes(), image, "{what}: the engine changed the file");
}

#[test]
fn damaged_or_foreign_files_are_never_reinitialised() {
    for len in [9, 40, 4096, 8192] {
        refused(&format!("{len} zero bytes"), vec![0; len]);
    }
    let mut rng = 0x1234_5678_u64;
    let mut random = |len: usize| {
        (0..len)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng as u8
            })
            .collect::<Vec<u8>>()
    };
    refused("4096 random bytes", random(4096));
    refused("100 random bytes", random(100));

    let real = real_database();
    assert!(real.len() > 4096);
    for magic in [&[0u8; 8][..], b"SLUICE\0\0", b"S\0\0\0\0\0\0\0", b"SLUICEDA"] {
        let mut damaged = real.clone();
        damaged[..8].copy_from_slice(magic);
        refused(&format!("real database with magic {magic:?}"), damaged.clone());
        // Even cut down to its header page (as if truncated), a file whose
        // commit slots show commits is not an unfinished creation.
        refused(
            &format!("truncated real database with magic {magic:?}"),
            damaged[..4096].to_vec(),
        );
    }
    // A real database cut down to a few bytes keeps a prefix of its magic.
    for len in [1, 7, 8, 100] {
        refused(&format!("real database cut to {len} bytes"), real[..len].to_vec());
    }
}

#[test]
fn an_unfinished_creation_keeps_its_database_id_once_its_header_was_synced() {
    // Every step but the magic was made durable: the header names the id.
    let backend = Arc::new(CrashBackend::new());
    let full = TreeStore::create(backend.clone(), 0xABCD, TreeStoreOptions::default()).unwrap();
    drop(full);
    let mut image = backend.durable_image();
    image[..8].copy_from_slice(b"SLU\0\0\0\0\0");
    let store = TreeStore::open(MemoryBackend::from_bytes(image), TreeStoreOptions::default()).unwrap();
    assert_eq!(store.db_id(), 0xABCD);
    let _ = bytewise;
}
