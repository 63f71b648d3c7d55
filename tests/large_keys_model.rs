//! Nodes longer than a page (keys up to 20 KiB), written by the
//! twenty-third session's review of them: adversarial key-length sequences
//! in byte and custom order, compaction with fragmented free space and with
//! only single free pages below its target (a relocation that would grow
//! the file is abandoned: it grew the file before), an old reader while its
//! long nodes' pages are reused, concurrent readers with tiny caches,
//! multimap pairs at the limit, tree commits and compactions under power
//! cuts, bogus extra-pages fields, and deferred recovery of long
//! custom-order keys.

mod common;

use std::collections::BTreeMap;

use common::Rng;
use common::keys::{CrashDisk, Reversed, long_key as key, text};
use sluicedb::io::TearMode;
use sluicedb::{
    Builder, Database, Durability, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTable,
    ReadableTableMetadata, TableDefinition,
};

const MAX: usize = 20 << 10;
const BYTES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bytes");
const REV: TableDefinition<Reversed, &[u8]> = TableDefinition::new("rev");
const MM: MultimapTableDefinition<&[u8], &[u8]> = MultimapTableDefinition::new("mm");

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn builder() -> Builder {
    let mut b = Database::builder();
    b.set_memtable_size(256 << 10).set_checkpoint_on_drop(false);
    b
}

fn check(db: &Database, bytes: &Model, rev: &Model, what: &str) {
    let r = db.begin_read().unwrap();
    let t = r.open_table(BYTES).unwrap();
    let got: Model = t
        .iter()
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.value().to_vec(), v.value().to_vec())
        })
        .collect();
    assert_eq!(got.len(), bytes.len(), "{what}: bytes len");
    assert!(&got == bytes, "{what}: bytes contents");
    assert_eq!(t.len().unwrap(), bytes.len() as u64, "{what}: len()");
    assert_eq!(t.iter().unwrap().rev().count(), bytes.len(), "{what}: rev");
    let t = r.open_table(REV).unwrap();
    let got: Vec<Vec<u8>> = t
        .iter()
        .unwrap()
        .map(|e| e.unwrap().0.value().as_bytes().to_vec())
        .collect();
    let want: Vec<Vec<u8>> = rev.keys().rev().cloned().collect();
    assert!(got == want, "{what}: rev keys ({} vs {})", got.len(), want.len());
    for (k, v) in rev.iter().step_by(5) {
        assert_eq!(t.get(text(k)).unwrap().unwrap().value(), &v[..], "{what}: rev get");
    }
}

/// Adversarial key-length sequences in a custom order (whole keys in the
/// branches): alternating tiny and maximal keys, runs of maximal keys,
/// Compacts `times` times, then reopens, checking integrity and contents
/// after each.
fn compact_and_reopen(mut db: Database, path: &std::path::Path, bytes: &Model, rev: &Model, times: usize) {
    for n in 0..times {
        db.compact().unwrap();
        assert!(db.check_integrity().unwrap(), "compaction {n}");
        check(&db, bytes, rev, &format!("compaction {n}"));
    }
    drop(db);
    let mut db = builder().open(path).unwrap();
    assert!(db.check_integrity().unwrap());
    check(&db, bytes, rev, "reopened");
}

/// runs of keys just over a third of a page.
#[test]
fn adversarial_length_sequences_custom_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut db = builder().create(&path).unwrap();
    let (mut bytes, mut rev) = (Model::new(), Model::new());
    let patterns: [&dyn Fn(u64) -> usize; 5] = [
        &|i| if i % 2 == 0 { 1 } else { MAX },
        &|_| MAX,
        &|i| 1360 + (i % 7) as usize,
        &|i| if i % 3 == 0 { MAX } else { 5 },
        &|i| [MAX, MAX - 1, 30, MAX, 4000, 2, MAX][(i % 7) as usize],
    ];
    let mut id = 0u64;
    for (p, pat) in patterns.iter().enumerate() {
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(BYTES).unwrap();
            let mut r = txn.open_table(REV).unwrap();
            for i in 0..60u64 {
                id += 1;
                // ids interleave between patterns: ordering mixes lengths.
                let k = key(pat(i), id * 7919 % 100_003);
                let v = vec![p as u8; (i % 3) as usize * 600];
                t.insert(k.as_slice(), v.as_slice()).unwrap();
                r.insert(text(&k), v.as_slice()).unwrap();
                bytes.insert(k.clone(), v.clone());
                rev.insert(k, v);
            }
        }
        txn.commit().unwrap();
        db.checkpoint().unwrap();
        assert!(db.check_integrity().unwrap(), "pattern {p}: integrity");
        check(&db, &bytes, &rev, &format!("pattern {p}"));
    }
    // Remove in an adversarial order (every other), flush, then compact.
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(BYTES).unwrap();
        let mut r = txn.open_table(REV).unwrap();
        let gone: Vec<Vec<u8>> = bytes.keys().step_by(2).cloned().collect();
        for k in gone {
            t.remove(k.as_slice()).unwrap();
            r.remove(text(&k)).unwrap();
            bytes.remove(&k);
            rev.remove(&k);
        }
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    assert!(db.check_integrity().unwrap());
    check(&db, &bytes, &rev, "after removals");
    compact_and_reopen(db, &path, &bytes, &rev, 2);
}

/// Compaction with many long keys and a fragmented file: short keys fill
/// the gaps so few runs are free; the file must stay readable and clean.
#[test]
fn compaction_with_fragmented_free_space() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = builder().create(&path).unwrap();
    let (mut bytes, mut rev) = (Model::new(), Model::new());
    let mut rng = Rng(42);
    for round in 0..8u64 {
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(BYTES).unwrap();
            let mut r = txn.open_table(REV).unwrap();
            for i in 0..50u64 {
                let len = if rng.below(2) == 0 {
                    4500 + rng.below(16000) as usize
                } else {
                    10 + rng.below(200) as usize
                };
                let k = key(len, round * 1000 + i);
                let v = vec![i as u8; 20];
                t.insert(k.as_slice(), v.as_slice()).unwrap();
                r.insert(text(&k), v.as_slice()).unwrap();
                bytes.insert(k.clone(), v.clone());
                rev.insert(k, v);
            }
        }
        txn.commit().unwrap();
        db.checkpoint().unwrap();
        // Remove some random long ones each round: frees runs among live pages.
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(BYTES).unwrap();
            let mut r = txn.open_table(REV).unwrap();
            let gone: Vec<Vec<u8>> = bytes.keys().filter(|_| rng.below(4) == 0).cloned().collect();
            for k in gone {
                t.remove(k.as_slice()).unwrap();
                r.remove(text(&k)).unwrap();
                bytes.remove(&k);
                rev.remove(&k);
            }
        }
        txn.commit().unwrap();
        db.checkpoint().unwrap();
    }
    check(&db, &bytes, &rev, "before compaction");
    compact_and_reopen(db, &path, &bytes, &rev, 3);
}

/// A reader holds the old tree (with long nodes) while writers free and
/// reuse its pages many times; the reader's view must stay intact, and
/// a tiny cache forces re-reads.
#[test]
fn old_reader_survives_reuse_of_long_node_pages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut b = builder();
    b.set_cache_size(64 << 10);
    let db = b.create(&path).unwrap();
    let (mut bytes, mut rev) = (Model::new(), Model::new());
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(BYTES).unwrap();
        let mut r = txn.open_table(REV).unwrap();
        for i in 0..60u64 {
            let k = key(
                if i % 2 == 0 {
                    MAX - i as usize
                } else {
                    3000 + i as usize * 50
                },
                i,
            );
            let v = vec![i as u8; 100];
            t.insert(k.as_slice(), v.as_slice()).unwrap();
            r.insert(text(&k), v.as_slice()).unwrap();
            bytes.insert(k.clone(), v.clone());
            rev.insert(k, v);
        }
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    let old = db.begin_read().unwrap();
    let (old_bytes, old_rev) = (bytes.clone(), rev.clone());
    for round in 0..6u64 {
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(BYTES).unwrap();
            let mut r = txn.open_table(REV).unwrap();
            let all: Vec<Vec<u8>> = bytes.keys().cloned().collect();
            for k in all.iter().step_by(2) {
                t.remove(k.as_slice()).unwrap();
                r.remove(text(k)).unwrap();
                bytes.remove(k);
                rev.remove(k);
            }
            for i in 0..30u64 {
                let k = key(
                    if i % 3 == 0 {
                        8
                    } else {
                        5000 + (i as usize * 311 % 15000)
                    },
                    1000 * (round + 1) + i,
                );
                let v = vec![round as u8; 30];
                t.insert(k.as_slice(), v.as_slice()).unwrap();
                r.insert(text(&k), v.as_slice()).unwrap();
                bytes.insert(k.clone(), v.clone());
                rev.insert(k, v);
            }
        }
        txn.commit().unwrap();
        db.checkpoint().unwrap();
        // The old reader.
        let t = old.open_table(BYTES).unwrap();
        let got: Model = t
            .iter()
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.value().to_vec(), v.value().to_vec())
            })
            .collect();
        assert!(got == old_bytes, "round {round}: old reader's bytes changed");
        let t = old.open_table(REV).unwrap();
        let n = t.iter().unwrap().rev().inspect(|e| assert!(e.is_ok())).count();
        assert_eq!(n, old_rev.len(), "round {round}: old reader's rev");
        check(&db, &bytes, &rev, &format!("round {round}"));
    }
    drop(old);
}

/// Multimap tables with long keys and values (pairs up to the limit).
#[test]
fn multimap_long_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut db = builder().create(&path).unwrap();
    let mut model: BTreeMap<Vec<u8>, std::collections::BTreeSet<Vec<u8>>> = BTreeMap::new();
    let mut rng = Rng(7);
    for round in 0..6u64 {
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_multimap_table(MM).unwrap();
            for _ in 0..40 {
                let klen = [3usize, 5000, 10_000][rng.below(3) as usize];
                let k = key(klen, rng.below(6));
                let vlen = (MAX - 5 - klen).min([1usize, 3000, 20_000][rng.below(3) as usize]);
                let v = key(vlen, rng.below(20));
                if rng.below(4) == 0 {
                    let was = t.remove(k.as_slice(), v.as_slice()).unwrap();
                    let m = model.get_mut(&k).map(|s| s.remove(&v)).unwrap_or(false);
                    assert_eq!(was, m, "remove");
                } else {
                    t.insert(k.as_slice(), v.as_slice()).unwrap();
                    model.entry(k).or_default().insert(v);
                }
            }
        }
        txn.commit().unwrap();
        if round % 2 == 1 {
            db.checkpoint().unwrap();
            assert!(db.check_integrity().unwrap());
        }
    }
    model.retain(|_, s| !s.is_empty());
    let verify = |db: &Database, what: &str| {
        let r = db.begin_read().unwrap();
        let t = r.open_multimap_table(MM).unwrap();
        let mut got: BTreeMap<Vec<u8>, std::collections::BTreeSet<Vec<u8>>> = BTreeMap::new();
        for e in t.iter().unwrap() {
            let (k, vs) = e.unwrap();
            for v in vs {
                got.entry(k.value().to_vec())
                    .or_default()
                    .insert(v.unwrap().value().to_vec());
            }
        }
        assert!(got == model, "{what}: multimap differs");
    };
    verify(&db, "live");
    db.checkpoint().unwrap();
    db.compact().unwrap();
    assert!(db.check_integrity().unwrap());
    verify(&db, "compacted");
    drop(db);
    let db = builder().open(&path).unwrap();
    verify(&db, "reopened");
}

/// Tree commits (tiny tree-commit size) of long keys, plus crash images of
/// each data-file operation of a tree commit.
#[test]
fn tree_commits_of_long_keys_and_power_cuts() {
    let mk = || {
        let mut b = builder();
        b.set_tree_commit_size(16 << 10);
        b
    };
    let commit = |db: &Database, bytes: &mut Model, rev: &mut Model, round: u64| {
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(Durability::Immediate).unwrap();
        {
            let mut t = txn.open_table(BYTES).unwrap();
            let mut r = txn.open_table(REV).unwrap();
            for i in 0..12u64 {
                let k = key(2000 + ((round * 12 + i) * 1777 % 18_000) as usize, round * 100 + i);
                let v = vec![i as u8; 40];
                t.insert(k.as_slice(), v.as_slice()).unwrap();
                r.insert(text(&k), v.as_slice()).unwrap();
                bytes.insert(k.clone(), v.clone());
                rev.insert(k, v);
            }
            if round > 0 {
                let gone: Vec<Vec<u8>> = bytes.keys().step_by(3).cloned().collect();
                for k in gone {
                    t.remove(k.as_slice()).unwrap();
                    r.remove(text(&k)).unwrap();
                    bytes.remove(&k);
                    rev.remove(&k);
                }
            }
        }
        txn.commit().unwrap();
    };
    let span = {
        let disk = CrashDisk::new();
        let db = disk.open(&mk());
        let (mut bytes, mut rev) = (Model::new(), Model::new());
        for round in 0..3 {
            commit(&db, &mut bytes, &mut rev, round);
        }
        let before = disk.data.ops();
        commit(&db, &mut bytes, &mut rev, 3);
        disk.data.ops() - before
    };
    assert!(span > 0, "the tree commit wrote nothing to the data file");
    for n in (0..=span).step_by((span as usize / 12).max(1)) {
        let disk = CrashDisk::new();
        let db = disk.open(&mk());
        let (mut bytes, mut rev) = (Model::new(), Model::new());
        for round in 0..3 {
            commit(&db, &mut bytes, &mut rev, round);
        }
        let (b0, r0) = (bytes.clone(), rev.clone());
        disk.data.cut_power_after(disk.data.ops() + n);
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            commit(&db, &mut bytes, &mut rev, 3);
        }))
        .is_ok();
        drop(db);
        let mode = [TearMode::DropAll, TearMode::Random(n), TearMode::KeepAll][(n % 3) as usize];
        let crashed = disk.crashed(mode);
        let mut db = crashed.open(&mk());
        assert!(db.check_integrity().unwrap(), "cut after {n}, {mode:?}: integrity");
        let r = db.begin_read().unwrap();
        let n_now = r.open_table(BYTES).unwrap().len().unwrap();
        drop(r);
        if done {
            check(&db, &bytes, &rev, &format!("cut after {n}"));
        } else if n_now == b0.len() as u64 {
            check(&db, &b0, &r0, &format!("cut after {n} (old)"));
        } else {
            check(&db, &bytes, &rev, &format!("cut after {n} (new)"));
        }
        db.checkpoint().unwrap();
        assert!(db.check_integrity().unwrap());
    }
}

/// Crafted files: a bogus extra-pages field on nodes (a long node's, a
/// one-page node's, the last page's) must read as an error, never a panic.
#[test]
fn bogus_extra_pages_fields_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let mut b = Database::builder();
        b.set_checkpoint_on_drop(true);
        let db = b.create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(BYTES).unwrap();
            for i in 0..40u64 {
                let k = key(if i % 2 == 0 { 9000 } else { 20 }, i);
                t.insert(k.as_slice(), &b"v"[..]).unwrap();
            }
        }
        txn.commit().unwrap();
    }
    let image = std::fs::read(&path).unwrap();
    let ps = 4096;
    let pages = image.len() / ps;
    let mut long = Vec::new();
    let mut short = Vec::new();
    for p in 1..pages {
        let pg = &image[p * ps..(p + 1) * ps];
        let extra = u16::from_le_bytes([pg[12], pg[13]]);
        if pg[8] == 1 || pg[8] == 2 {
            if extra > 0 {
                long.push(p);
            } else if pg[10] != 0 || pg[11] != 0 {
                short.push(p);
            }
        }
    }
    assert!(!long.is_empty(), "no long nodes found");
    let mut cases: Vec<(usize, u16)> = Vec::new();
    for &p in long.iter().take(3) {
        cases.extend([(p, 0u16), (p, 1), (p, 15), (p, 16), (p, 0xFFFF)]);
    }
    for &p in short.iter().take(3) {
        cases.extend([(p, 1u16), (p, 15), (p, 0xFFFF)]);
    }
    cases.push((pages - 1, 15));
    for (p, extra) in cases {
        let mut img = image.clone();
        img[p * ps + 12..p * ps + 14].copy_from_slice(&extra.to_le_bytes());
        let path2 = dir.path().join(format!("c{p}_{extra}"));
        std::fs::write(&path2, &img).unwrap();
        let res = std::panic::catch_unwind(|| {
            let mut b = Database::builder();
            b.set_checkpoint_on_drop(false);
            let Ok(mut db) = b.open(&path2) else { return };
            let _ = db.check_integrity();
            if let Ok(r) = db.begin_read()
                && let Ok(t) = r.open_table(BYTES)
                && let Ok(it) = t.iter()
            {
                for e in it {
                    if e.is_err() {
                        break;
                    }
                }
            }
        });
        assert!(res.is_ok(), "page {p} extra {extra}: panicked");
    }
}

/// Readers on other threads read long nodes while flushes rewrite and free
/// them, through caches smaller than, about as large as, and larger than a
/// run. Every snapshot sees one version of every key.
#[test]
fn concurrent_readers_and_flushes_with_small_caches() {
    for cache in [0usize, 4096, 3 * 4096, 64 << 10] {
        let dir = tempfile::tempdir().unwrap();
        let mut b = builder();
        b.set_cache_size(cache);
        let db = std::sync::Arc::new(b.create(dir.path().join("db")).unwrap());
        let keys: Vec<Vec<u8>> = (0..30u64)
            .map(|i| key([MAX, 6000, 9000, 100, 15000][(i % 5) as usize] - i as usize, i))
            .collect();
        let write = |v: u64| {
            let txn = db.begin_write().unwrap();
            {
                let mut t = txn.open_table(BYTES).unwrap();
                let mut r = txn.open_table(REV).unwrap();
                for k in &keys {
                    let val = v.to_le_bytes().repeat(1 + (v as usize % 40));
                    t.insert(k.as_slice(), val.as_slice()).unwrap();
                    r.insert(text(k), val.as_slice()).unwrap();
                }
            }
            txn.commit().unwrap();
        };
        write(0);
        db.checkpoint().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let db = db.clone();
                let stop = stop.clone();
                let keys = keys.clone();
                std::thread::spawn(move || {
                    let mut reads = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let r = db.begin_read().unwrap();
                        let t = r.open_table(BYTES).unwrap();
                        let vals: Vec<Vec<u8>> = t.iter().unwrap().map(|e| e.unwrap().1.value().to_vec()).collect();
                        assert_eq!(vals.len(), keys.len(), "cache {cache}: entries");
                        assert!(
                            vals.iter().all(|v| v == &vals[0]),
                            "cache {cache}: mixed versions in a snapshot"
                        );
                        let t = r.open_table(REV).unwrap();
                        for k in keys.iter().step_by(3) {
                            let v = t.get(text(k)).unwrap().expect("key present").value().to_vec();
                            assert_eq!(v, vals[0], "cache {cache}: rev get differs from the snapshot");
                        }
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        for v in 1..25u64 {
            write(v);
            db.checkpoint().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in readers {
            r.join().expect("reader panicked");
        }
        let mut db = std::sync::Arc::into_inner(db).unwrap();
        assert!(db.check_integrity().unwrap(), "cache {cache}: integrity");
    }
}

/// Compaction where the free pages below the target are single pages (no
/// run for a long node): many one-leaf tables, then long keys at the end
/// Fills `db` as compaction finds it hardest: `tables` one-entry tables,
/// then `keys` long keys (`MAX` minus `step` bytes per key) in both
/// tables, then every other small table deleted, leaving single free pages
/// below the long nodes. Returns the long keys' models.
fn fragment(db: &Database, tables: u64, keys: u64, step: usize) -> (Model, Model) {
    let small = |i: u64| format!("small{i:04}");
    let txn = db.begin_write().unwrap();
    for i in 0..tables {
        let name = small(i);
        let def: TableDefinition<u64, u64> = TableDefinition::new(&name);
        txn.open_table(def).unwrap().insert(i, i).unwrap();
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    let (mut bytes, mut rev) = (Model::new(), Model::new());
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(BYTES).unwrap();
        let mut r = txn.open_table(REV).unwrap();
        for i in 0..keys {
            let k = key(MAX - i as usize * step, i);
            t.insert(k.as_slice(), &b"x"[..]).unwrap();
            r.insert(text(&k), &b"x"[..]).unwrap();
            bytes.insert(k.clone(), b"x".to_vec());
            rev.insert(k, b"x".to_vec());
        }
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    let txn = db.begin_write().unwrap();
    for i in (0..tables).step_by(2) {
        let name = small(i);
        let def: TableDefinition<u64, u64> = TableDefinition::new(&name);
        txn.delete_table(def).unwrap();
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    (bytes, rev)
}

/// of the file, then every other small table deleted.
#[test]
fn compaction_with_only_single_free_pages_below_never_grows_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut db = builder().create(&path).unwrap();
    let (bytes, rev) = fragment(&db, 300, 60, 100);
    let small = |i: u64| format!("small{i:04}");
    let before = std::fs::metadata(&path).unwrap().len();
    let mut lens = vec![before];
    for n in 0..6 {
        let res = db.compact();
        assert!(res.is_ok(), "compaction {n}: {res:?}");
        lens.push(std::fs::metadata(&path).unwrap().len());
        eprintln!("compaction {n}: {res:?}, file {} bytes", lens[n + 1]);
        assert!(db.check_integrity().unwrap(), "compaction {n}: integrity");
        check(&db, &bytes, &rev, &format!("compaction {n}"));
    }
    for n in 0..6 {
        assert!(
            lens[n + 1] <= lens[n],
            "compaction {n} grew the file from {} to {} bytes ({} pages more); all lengths: {lens:?}",
            lens[n],
            lens[n + 1],
            (lens[n + 1] - lens[n]) / 4096
        );
    }
    let r = db.begin_read().unwrap();
    for i in 0..300u64 {
        let name = small(i);
        let def: TableDefinition<u64, u64> = TableDefinition::new(&name);
        let got = r.open_table(def).ok().map(|t| t.get(i).unwrap().unwrap().value());
        assert_eq!(got, (i % 2 == 1).then_some(i), "table {i}");
    }
    drop(r);
    drop(db);
    let mut db = builder().open(&path).unwrap();
    assert!(db.check_integrity().unwrap());
    check(&db, &bytes, &rev, "reopened");
}

/// Long keys of a custom-order table recovered from the WAL before the
/// table's order is known (deferred, staged in the data file), then
/// absorbed at the first flush after the table is opened.
#[test]
fn deferred_recovery_of_long_custom_order_keys() {
    let disk = CrashDisk::new();
    let db = disk.open(&builder());
    let mut rev = Model::new();
    let bytes = Model::new();
    for round in 0..3u64 {
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(Durability::Immediate).unwrap();
        {
            let mut r = txn.open_table(REV).unwrap();
            for i in 0..15u64 {
                let k = key(MAX - (i as usize * 997 % 15000), round * 100 + i);
                let v = vec![i as u8; [5usize, 2000][(i % 2) as usize]];
                r.insert(text(&k), v.as_slice()).unwrap();
                rev.insert(k, v);
            }
            if round == 2 {
                let gone: Vec<Vec<u8>> = rev.keys().step_by(4).cloned().collect();
                for k in gone {
                    r.remove(text(&k)).unwrap();
                    rev.remove(&k);
                }
            }
        }
        txn.commit().unwrap();
    }
    drop(db);
    for mode in [TearMode::DropAll, TearMode::KeepAll] {
        let crashed = disk.crashed(mode);
        {
            // Reopen, flush without opening the table (stays deferred).
            let db = crashed.open(&builder());
            db.checkpoint().unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(BYTES).unwrap();
            txn.commit().unwrap();
            db.checkpoint().unwrap();
        }
        let crashed = crashed.crashed(TearMode::KeepAll);
        let mut db = crashed.open(&builder());
        check(&db, &bytes, &rev, &format!("{mode:?}: deferred then opened"));
        db.checkpoint().unwrap();
        assert!(db.check_integrity().unwrap());
        check(&db, &bytes, &rev, &format!("{mode:?}: absorbed"));
    }
}

/// Power cuts during a compaction that has to place long nodes with no
/// free run below its target (the fallback that writes them elsewhere).
#[test]
fn power_cuts_during_compaction_of_long_nodes() {
    let setup = |disk: &CrashDisk| -> (Database, Model, Model) {
        let db = disk.open(&builder());
        let (bytes, rev) = fragment(&db, 120, 30, 300);
        (db, bytes, rev)
    };
    let span = {
        let disk = CrashDisk::new();
        let (mut db, _, _) = setup(&disk);
        let before = disk.data.ops();
        db.compact().unwrap();
        disk.data.ops() - before
    };
    assert!(span > 0);
    for n in (0..=span).step_by((span as usize / 20).max(1)) {
        let disk = CrashDisk::new();
        let (mut db, bytes, rev) = setup(&disk);
        disk.data.cut_power_after(disk.data.ops() + n);
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| db.compact()));
        drop(db);
        let mode = [TearMode::DropAll, TearMode::Random(n), TearMode::KeepAll][(n % 3) as usize];
        let crashed = disk.crashed(mode);
        let mut db = crashed.open(&builder());
        assert!(
            db.check_integrity().unwrap(),
            "cut after {n} of {span}, {mode:?}: integrity"
        );
        check(&db, &bytes, &rev, &format!("cut after {n}, {mode:?}"));
        db.compact().unwrap();
        assert!(db.check_integrity().unwrap());
        check(&db, &bytes, &rev, &format!("cut after {n}, {mode:?}, compacted again"));
    }
}
