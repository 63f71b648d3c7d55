//! The writer's recycled write set (`WriterScratch`) and the small-commit
//! path that inserts from it: random write transactions, one
//! after another on one engine, each ending in a commit (immediate, none,
//! pipelined), an abort, a drop (here or on another thread) or a refused
//! commit (too big), and each mixing creates, deletes, renames, inserts,
//! blind puts, removals, pops, point reads, lengths and ranges (some held
//! past the transaction's end and read only later, so a map a range still
//! shares is never recycled under it) over byte-ordered and custom-ordered
//! tables, with commits around the 64-write hand-off. Checked after every
//! transaction against a model: what a reader sees (tables, entries,
//! lengths), what the next transaction starts with (no touched name, no
//! restore, no persistent savepoint), and what a crash image of the disk
//! recovers after durable commits.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;

use common::Rng;
use common::engine::{Disk, small_options};
use common::two_orders::{dec, enc, entries_of, meta_or_random, order};
use sluicedb::StorageError;
use sluicedb::engine::{Durability, Engine, EngineOptions, MergedRange, TableRef, WriteTxn};
use sluicedb::io::TearMode;

type Entries = BTreeMap<u16, Vec<u8>>;
/// Name -> (metadata, entries).
type Model = BTreeMap<Vec<u8>, (Vec<u8>, Entries)>;

const NAMES: [&[u8]; 6] = [b"a", b"b", b"c", b"d", b"e", b"f"];

fn options() -> EngineOptions {
    EngineOptions {
        max_commit_bytes: 24 << 10,
        ..small_options()
    }
}

/// What a reader of `db` sees, checked against `model`.
fn check_db(db: &Engine, model: &Model, what: &str) {
    let read = db.begin_read().unwrap();
    let listed: Vec<(Vec<u8>, Vec<u8>)> = read.list_tables().unwrap();
    let expected: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(n, (m, _))| (n.clone(), m.clone())).collect();
    assert_eq!(listed, expected, "{what}: the tables a reader lists");
    for (name, (meta, entries)) in model {
        let t = read
            .open_table(name, order(meta))
            .unwrap()
            .expect("a listed table opens");
        let got = entries_of(meta, read.range(&t, Bound::Unbounded, Bound::Unbounded).unwrap());
        let want: Vec<(u16, Vec<u8>)> = entries.iter().map(|(k, v)| (*k, v.clone())).collect();
        assert_eq!(got, want, "{what}: table {:?}'s entries", String::from_utf8_lossy(name));
        assert_eq!(
            read.len(&t).unwrap(),
            entries.len() as u64,
            "{what}: table {:?}'s len()",
            String::from_utf8_lossy(name)
        );
    }
}

/// Entries that differ between two models (a lower bound on a commit's
/// writes: a rough count of commits past the hand-off).
fn w_ops(after: &Model, before: &Model) -> usize {
    after
        .iter()
        .map(|(name, (_, entries))| match before.get(name) {
            None => entries.len(),
            Some((_, old)) => entries.iter().filter(|(k, v)| old.get(k) != Some(v)).count(),
        })
        .sum()
}

/// A range taken in a transaction, read only later, and what it must yield.
struct Held {
    meta: Vec<u8>,
    range: MergedRange<'static>,
    expected: Vec<(u16, Vec<u8>)>,
    what: String,
}

enum End {
    Commit,
    CommitNone,
    Pipelined,
    Abort,
    Drop,
    DropElsewhere,
}

fn value(rng: &mut Rng, txn: usize) -> Vec<u8> {
    let len = rng.below(40) as usize;
    let mut v = format!("t{txn}-").into_bytes();
    v.extend((0..len).map(|i| (i as u8).wrapping_mul(7)));
    v
}

/// One random transaction on `model`'s copy `m`; returns whether it must be
/// refused at commit (a value too big for `max_commit_bytes`).
fn build(
    w: &mut WriteTxn,
    m: &mut Model,
    rng: &mut Rng,
    txn: usize,
    held: &mut Vec<Held>,
) -> Result<bool, StorageError> {
    let mut handles: BTreeMap<Vec<u8>, TableRef> = BTreeMap::new();
    let mut too_big = false;
    // Mostly small; now and then right around the hand-off (64 writes).
    let ops = match rng.below(10) {
        0 => 0,
        1..=6 => 1 + rng.below(6),
        _ => 10 + rng.below(20),
    };
    for step in 0..ops {
        let name = NAMES[rng.below(NAMES.len() as u64) as usize].to_vec();
        let what = format!("txn {txn} step {step} table {:?}", String::from_utf8_lossy(&name));
        match rng.below(100) {
            // Delete.
            0..=4 => {
                let existed = w.delete_table(&name)?;
                assert_eq!(existed, m.remove(&name).is_some(), "{what}: delete_table's answer");
                handles.remove(&name);
            }
            // Rename onto a free name.
            5..=9 => {
                let to = NAMES[rng.below(NAMES.len() as u64) as usize].to_vec();
                if to == name || m.contains_key(&to) {
                    continue;
                }
                let existed = w.rename_table(&name, &to)?;
                assert_eq!(existed, m.contains_key(&name), "{what}: rename_table's answer");
                if let Some(t) = m.remove(&name) {
                    m.insert(to.clone(), t);
                }
                handles.remove(&name);
                handles.remove(&to);
            }
            // A held range, read after the transaction.
            10..=14 => {
                let Some((meta, entries)) = m.get(&name) else { continue };
                let t = match handles.get(&name) {
                    Some(t) => *t,
                    None => w.open_table(&name, meta, order(meta))?,
                };
                handles.insert(name.clone(), t);
                held.push(Held {
                    meta: meta.clone(),
                    range: w.range(t, Bound::Unbounded, Bound::Unbounded)?,
                    expected: entries.iter().map(|(k, v)| (*k, v.clone())).collect(),
                    what: what.clone(),
                });
            }
            op => {
                let meta = meta_or_random(m.get(&name).map(|(meta, _)| meta.as_slice()), rng);
                let t = match handles.get(&name) {
                    Some(t) => *t,
                    None => w.open_table(&name, &meta, order(&meta))?,
                };
                handles.insert(name.clone(), t);
                let entries = &mut m
                    .entry(name.clone())
                    .or_insert_with(|| (meta.clone(), Entries::new()))
                    .1;
                let k = rng.below(150) as u16;
                let key = enc(&meta, k);
                match op {
                    16..=45 => {
                        let v = value(rng, txn);
                        let old = w.insert(t, &key, &v)?;
                        assert_eq!(
                            old.map(|o| o.to_vec()),
                            entries.insert(k, v),
                            "{what}: insert's old value"
                        );
                    }
                    46..=55 => {
                        let v = value(rng, txn);
                        w.put(t, &key, &v)?;
                        entries.insert(k, v);
                    }
                    56..=70 => {
                        let old = w.remove(t, &key)?;
                        assert_eq!(
                            old.map(|o| o.to_vec()),
                            entries.remove(&k),
                            "{what}: remove's old value"
                        );
                    }
                    71..=75 => {
                        let got = w.get(t, &key)?;
                        assert_eq!(got.map(|o| o.to_vec()), entries.get(&k).cloned(), "{what}: get");
                    }
                    76..=79 => {
                        assert_eq!(w.len(t)?, entries.len() as u64, "{what}: len");
                    }
                    80..=84 => {
                        let got = entries_of(&meta, w.range(t, Bound::Unbounded, Bound::Unbounded)?);
                        let want: Vec<(u16, Vec<u8>)> = entries.iter().map(|(k, v)| (*k, v.clone())).collect();
                        assert_eq!(got, want, "{what}: a range");
                    }
                    85..=89 => {
                        for _ in 0..1 + rng.below(4) {
                            let front = rng.chance(50);
                            let got = if front { w.pop_first(t)? } else { w.pop_last(t)? };
                            let want = if front { entries.pop_first() } else { entries.pop_last() };
                            assert_eq!(
                                got.map(|(k, v)| (dec(&meta, &k), v.to_vec())),
                                want,
                                "{what}: a pop (front {front})"
                            );
                        }
                    }
                    _ => {
                        // A run of writes that takes the commit near or
                        // past the hand-off: 62..=66 new or rewritten keys.
                        let n = 62 + rng.below(5) as u16;
                        let base = 200 + rng.below(100) as u16;
                        for k in base..base + n {
                            let v = value(rng, txn);
                            w.insert(t, &enc(&meta, k), &v)?;
                            entries.insert(k, v);
                        }
                    }
                }
            }
        }
    }
    // Last, now and then: a value too big for the commit, which must then
    // be refused (and leave nothing behind for the next transaction).
    if rng.chance(4) {
        let name = NAMES[rng.below(NAMES.len() as u64) as usize].to_vec();
        let meta = m
            .get(&name)
            .map(|(meta, _)| meta.clone())
            .unwrap_or_else(|| b"bytes".to_vec());
        let t = w.open_table(&name, &meta, order(&meta))?;
        w.insert(t, &enc(&meta, 7), &vec![1u8; 30 << 10])?;
        let entries = &mut m.entry(name).or_insert_with(|| (meta, Entries::new())).1;
        entries.insert(7, vec![1u8; 30 << 10]);
        too_big = true;
    }
    Ok(too_big)
}

#[test]
fn a_recycled_write_set_never_leaks_into_the_next_transaction() {
    for seed in [0x5eed_4949, 7, 1234567] {
        run(seed, options);
    }
}

/// The same, with every commit of 2 KiB or more written through the tree
/// (`engine::tree_commit`), which takes the commit's tables in name order.
#[test]
fn a_recycled_write_set_never_leaks_into_the_next_transaction_through_the_tree() {
    run(99, || EngineOptions {
        tree_commit_bytes: 2 << 10,
        ..options()
    });
}

fn run(seed: u64, options: fn() -> EngineOptions) {
    let disk = Disk::new();
    let db = disk.open(options());
    let mut model = Model::new();
    let mut rng = Rng(seed);
    let (mut refused, mut handoffs, mut held_read, mut replayed) = (0, 0, 0, 0);
    let tree_commits_before = db.stats().tree_commits;
    let mut held: Vec<Held> = Vec::new();
    let mut crash_checks = 0;
    for txn in 0..1500 {
        let mut w = db.begin_write().unwrap();
        assert!(
            w.touched_tables().is_empty(),
            "txn {txn}: starts with touched names {:?}",
            w.touched_tables()
        );
        assert!(
            !w.restored() && !w.persistent_modified(),
            "txn {txn}: starts restored or with a savepoint"
        );
        let mut m = model.clone();
        let too_big = build(&mut w, &mut m, &mut rng, txn, &mut held).unwrap();
        let end = match rng.below(20) {
            0..=1 => End::Abort,
            2..=3 => End::Drop,
            4 => End::DropElsewhere,
            5..=7 => End::CommitNone,
            8..=9 => End::Pipelined,
            _ => End::Commit,
        };
        let committed = match end {
            End::Abort => {
                w.abort();
                false
            }
            End::Drop => {
                drop(w);
                false
            }
            End::DropElsewhere => {
                std::thread::spawn(move || drop(w)).join().unwrap();
                false
            }
            End::Commit | End::CommitNone | End::Pipelined => {
                let result = match end {
                    End::Commit => w.commit(),
                    End::CommitNone => {
                        w.set_durability(Durability::None);
                        w.commit()
                    }
                    _ => w.commit_pipelined().and_then(|p| p.wait()),
                };
                match result {
                    Ok(()) => {
                        if db.stats().commits > 0 && w_ops(&m, &model) >= 64 {
                            handoffs += 1;
                        }
                        assert!(!too_big, "txn {txn}: a commit over max_commit_bytes succeeded");
                        true
                    }
                    Err(StorageError::ValueTooLarge(_)) if too_big => {
                        refused += 1;
                        false
                    }
                    Err(e) => panic!("txn {txn}: commit failed: {e}"),
                }
            }
        };
        if committed {
            model = m;
        }
        check_db(&db, &model, &format!("after txn {txn}"));
        // Ranges held from earlier transactions: read once, now.
        if rng.chance(30) {
            for h in held.drain(..) {
                held_read += 1;
                assert_eq!(
                    entries_of(&h.meta, h.range),
                    h.expected,
                    "{}: a range read after its transaction",
                    h.what
                );
            }
        }
        // Now and then a crash after a durable commit: the image recovers
        // the model (small commits' records are encoded from the write set).
        if committed && matches!(end, End::Commit) && rng.chance(8) {
            crash_checks += 1;
            let image = disk.crashed(TearMode::DropAll);
            let reopened = image.open(options());
            check_db(&reopened, &model, &format!("crash image after txn {txn}"));
            if reopened.stats().recovery.replayed_records > 0 {
                replayed += 1;
            }
            drop(reopened);
        }
    }
    for h in held.drain(..) {
        assert_eq!(
            entries_of(&h.meta, h.range),
            h.expected,
            "{}: a range read at the end",
            h.what
        );
    }
    let tree_commits = db.stats().tree_commits - tree_commits_before;
    eprintln!(
        "seed {seed}: {tree_commits} tree commits, {crash_checks} crash images ({replayed} replaying WAL records), {refused} refused commits, {handoffs} commits of 64+ changed entries, {held_read} held ranges"
    );
    assert!(
        crash_checks > 10 && replayed > 5 && refused > 5 && handoffs > 5,
        "seed {seed}: too little coverage"
    );
    db.sync().unwrap();
    drop(db);
    let db = disk.open(options());
    check_db(&db, &model, "reopened");
}
