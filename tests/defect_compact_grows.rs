//! Compaction at the page level (`TreeWriter::relocate_all`, then the two
//! durable commits `Engine::compact` runs) never grows the file, and brings a
//! freshly loaded or heavily rewritten file near its live size.
//!
//! It used to copy every live page, each copy allocated before any original
//! was freed, so a file with fewer free pages than live ones grew: a bulk
//! load of 578 pages became 1,157.

mod common;

use common::value;
use sluicedb::btree::{TreeStore, TreeStoreOptions, bytewise};
use sluicedb::io::MemoryBackend;
use std::sync::Arc;

const TREE: &[u8] = b"bulk";

fn put_all(store: &TreeStore, keys: std::ops::Range<u64>, round: u64, durable: bool) {
    let encoded: Vec<([u8; 8], Vec<u8>)> = keys.map(|k| (k.to_be_bytes(), value(k ^ (round << 32), 100))).collect();
    let ops: Vec<(&[u8], Option<&[u8]>)> = encoded.iter().map(|(k, v)| (&k[..], Some(&v[..]))).collect();
    let mut w = store.writer().unwrap();
    w.apply(TREE, bytewise, &ops).unwrap();
    if durable {
        w.commit(0).unwrap();
    } else {
        w.non_durable_commit().unwrap();
    }
}

/// What `Engine::compact` does to the tree store: relocate and commit, then
/// (with no snapshot left on the old tree) one more durable commit to trim.
fn compact(store: &TreeStore) {
    let mut w = store.writer().unwrap();
    w.relocate_all().unwrap();
    w.commit(0).unwrap();
    store.writer().unwrap().commit(0).unwrap();
}

fn new_store() -> (Arc<MemoryBackend>, TreeStore) {
    let backend = Arc::new(MemoryBackend::new());
    let store = TreeStore::create(backend.clone(), 1, TreeStoreOptions::default()).unwrap();
    (backend, store)
}

/// The durable image reopens, checks clean, and has the same file size.
fn reopen(backend: &MemoryBackend, pages: u64, n: u64, round: u64) {
    let store = TreeStore::open(
        MemoryBackend::from_bytes(backend.to_bytes()),
        TreeStoreOptions::default(),
    )
    .unwrap();
    assert_eq!(check(&store).file_pages, pages);
    assert_content(&store, n, round);
}

/// The live size: every page a commit reaches, the header, and the free list.
fn live_pages(report: &sluicedb::btree::Report) -> u64 {
    report.reachable_pages + 2
}

fn check(store: &TreeStore) -> sluicedb::btree::Report {
    store.check_integrity(&|_, _| Some(bytewise)).unwrap()
}

fn assert_content(store: &TreeStore, n: u64, round: u64) {
    let snap = store.snapshot();
    let info = snap.tree(TREE).unwrap().unwrap();
    assert_eq!(info.len(), n);
    for k in (0..n).step_by(97) {
        let got = snap.get(&info, bytewise, &k.to_be_bytes()).unwrap().unwrap();
        assert_eq!(got.as_bytes(), value(k ^ (round << 32), 100).as_slice());
    }
}

#[test]
fn compacting_a_fresh_bulk_load_does_not_grow_the_file() {
    let (backend, store) = new_store();
    put_all(&store, 0..20_000, 0, true);
    let (before, _) = store.page_counts();
    compact(&store);
    let (after, _) = store.page_counts();
    assert!(
        after <= before,
        "compaction grew the file from {before} to {after} pages"
    );
    let report = check(&store);
    assert!(after <= live_pages(&report) + 2, "{after} pages, live {report:?}");
    assert_content(&store, 20_000, 0);
    reopen(&backend, after, 20_000, 0);
}

#[test]
fn compacting_a_partly_rewritten_file_fills_its_holes() {
    // Fewer free pages than live ones, spread through the file: the case
    // where copying everything ran out of free pages and grew the file.
    let (backend, store) = new_store();
    put_all(&store, 0..20_000, 0, true);
    put_all(&store, 5_000..9_000, 0, false);
    put_all(&store, 12_000..15_000, 0, true);
    put_all(&store, 17_000..18_000, 0, true);
    let (before, free) = store.page_counts();
    let live = live_pages(&check(&store));
    assert!(
        (free as u64) < live,
        "the scenario needs fewer free pages ({free}) than live ones ({live})"
    );
    compact(&store);
    let (after, _) = store.page_counts();
    assert!(
        after <= before,
        "compaction grew the file from {before} to {after} pages"
    );
    assert!(
        after < before,
        "compaction left {before} pages as they were (live {live})"
    );
    assert!(
        after <= live + live / 20 + 8,
        "{after} pages after compaction; live {live}, before {before}"
    );
    assert_content(&store, 20_000, 0);
    reopen(&backend, after, 20_000, 0);
}

#[test]
fn compacting_a_rewritten_file_brings_it_near_its_live_size() {
    let (backend, store) = new_store();
    put_all(&store, 0..20_000, 0, true);
    // Rewrites: every page is copied each round; a snapshot held across a
    // few rounds keeps their pages, so the file ends up several times its
    // live size with free pages everywhere.
    let pinned = store.snapshot();
    for round in 1..=6 {
        put_all(&store, 0..20_000, round, round % 2 == 0);
    }
    drop(pinned);
    put_all(&store, 0..20_000, 7, true);
    // The tail of the key space is deleted: its pages are free, mid-file.
    let mut w = store.writer().unwrap();
    let keys: Vec<[u8; 8]> = (15_000..20_000u64).map(u64::to_be_bytes).collect();
    let ops: Vec<(&[u8], Option<&[u8]>)> = keys.iter().map(|k| (&k[..], None)).collect();
    w.apply(TREE, bytewise, &ops).unwrap();
    w.commit(0).unwrap();

    let (before, _) = store.page_counts();
    let live = live_pages(&check(&store));
    compact(&store);
    let (after, _) = store.page_counts();
    let report = check(&store);
    assert!(
        after <= before,
        "compaction grew the file from {before} to {after} pages"
    );
    // Live pages, the header, the free list, and the copies of branches
    // above moved pages (whose originals stay until a later commit).
    let near = live + live / 20 + 8;
    assert!(
        after <= near,
        "{after} pages after compaction; live {live} (now {}), limit {near}, before {before}",
        report.reachable_pages
    );
    assert_content(&store, 15_000, 7);
    reopen(&backend, after, 15_000, 7);
}
