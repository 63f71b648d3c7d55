//! A deterministic model of a multimap table with keys of 63, 64
//! and 65 bytes and values of lengths around the 1 KiB chunk limit (and
//! above it), through inserts, removes, remove_all, commits, aborts,
//! checkpoints and reopens; every check compares get, len, the untyped
//! len, and iteration from both ends interleaved.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::Rng;
use common::keys::{CaseInsensitive, str_key};
use sluicedb::{Database, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTableMetadata};

const T: MultimapTableDefinition<&[u8], &[u8]> = MultimapTableDefinition::new("chunks");

type Model = BTreeMap<Vec<u8>, BTreeSet<Vec<u8>>>;

fn key_of(rng: &mut Rng) -> Vec<u8> {
    let len = [63usize, 64, 65, 200][rng.below(4) as usize];
    let id = rng.below(3) as u8;
    let mut k = vec![b'k'; len];
    k[len - 1] = b'0' + id;
    k
}

fn value_of(rng: &mut Rng) -> Vec<u8> {
    let len = match rng.below(6) {
        0 => rng.below(4) as usize,
        1 => 1016 + rng.below(16) as usize, // around REST_BYTES - 4
        2 => 500 + rng.below(30) as usize,
        3 => 1024 + rng.below(1100) as usize, // larger than a chunk
        _ => 8 + rng.below(40) as usize,
    };
    let tag = rng.below(40) as u8;
    let mut v = vec![b'a' + (tag % 26); len];
    if let Some(first) = v.first_mut() {
        *first = tag;
    }
    v
}

fn check_table(t: &impl ReadableMultimapTable<&'static [u8], &'static [u8]>, model: &Model, rng: &mut Rng, what: &str) {
    let pairs: u64 = model.values().map(|s| s.len() as u64).sum();
    assert_eq!(t.len().unwrap(), pairs, "len {what}");
    for (k, vs) in model {
        let got: Vec<Vec<u8>> = t
            .get(k.as_slice())
            .unwrap()
            .map(|v| v.unwrap().value().to_vec())
            .collect();
        let want: Vec<Vec<u8>> = vs.iter().cloned().collect();
        assert_eq!(got, want, "get {what}");
        // values from both ends
        let mut it = t.get(k.as_slice()).unwrap();
        let (mut front, mut back) = (Vec::new(), Vec::new());
        loop {
            let item = if rng.chance(50) {
                it.next().map(|v| (true, v))
            } else {
                it.next_back().map(|v| (false, v))
            };
            match item {
                Some((true, v)) => front.push(v.unwrap().value().to_vec()),
                Some((false, v)) => back.push(v.unwrap().value().to_vec()),
                None => break,
            }
        }
        back.reverse();
        front.extend(back);
        assert_eq!(front, want, "get from both ends {what}");
    }
    // iteration of keys from both ends, interleaved
    let want: Vec<(Vec<u8>, Vec<Vec<u8>>)> = model
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
        .collect();
    let mut it = t.iter().unwrap();
    let (mut front, mut back) = (Vec::new(), Vec::new());
    loop {
        let forward = rng.chance(50);
        let item = if forward { it.next() } else { it.next_back() };
        let Some(item) = item else { break };
        let (k, vs) = item.unwrap();
        let mut vals: Vec<Vec<u8>> = Vec::new();
        let mut vs = vs;
        // consume the values from both ends too
        let mut tail = Vec::new();
        loop {
            let v = if rng.chance(50) {
                vs.next().map(|v| (true, v))
            } else {
                vs.next_back().map(|v| (false, v))
            };
            match v {
                Some((true, v)) => vals.push(v.unwrap().value().to_vec()),
                Some((false, v)) => tail.push(v.unwrap().value().to_vec()),
                None => break,
            }
        }
        tail.reverse();
        vals.extend(tail);
        let entry = (k.value().to_vec(), vals);
        if forward { front.push(entry) } else { back.push(entry) }
    }
    back.reverse();
    front.extend(back);
    assert_eq!(front, want, "iter from both ends {what}");
}

fn run(seed: u64, steps: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut db = Database::create(&path).unwrap();
    let mut rng = Rng(seed);
    let mut committed = Model::new();
    for step in 0..steps {
        let mut working = committed.clone();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_multimap_table(T).unwrap();
            for _ in 0..rng.below(40) + 1 {
                let k = key_of(&mut rng);
                match rng.below(10) {
                    0..=5 => {
                        let v = value_of(&mut rng);
                        let had = working.get(&k).is_some_and(|s| s.contains(&v));
                        assert_eq!(t.insert(k.as_slice(), v.as_slice()).unwrap(), had, "insert step {step}");
                        working.entry(k).or_default().insert(v);
                    }
                    6..=8 => {
                        // remove an existing value mostly
                        let v = match working.get(&k).filter(|s| !s.is_empty()) {
                            Some(s) if rng.chance(80) => {
                                s.iter().nth(rng.below(s.len() as u64) as usize).unwrap().clone()
                            }
                            _ => value_of(&mut rng),
                        };
                        let had = working.get_mut(&k).is_some_and(|s| s.remove(&v));
                        assert_eq!(t.remove(k.as_slice(), v.as_slice()).unwrap(), had, "remove step {step}");
                    }
                    _ => {
                        let want: Vec<Vec<u8>> =
                            working.remove(&k).map(|s| s.into_iter().collect()).unwrap_or_default();
                        let got: Vec<Vec<u8>> = t
                            .remove_all(k.as_slice())
                            .unwrap()
                            .map(|v| v.unwrap().value().to_vec())
                            .collect();
                        assert_eq!(got, want, "remove_all step {step}");
                    }
                }
            }
            working.retain(|_, s| !s.is_empty());
            check_table(&t, &working, &mut rng, &format!("in txn step {step}"));
        }
        if rng.chance(25) {
            txn.abort().unwrap();
        } else {
            txn.commit().unwrap();
            committed = working;
        }
        match rng.below(8) {
            0 => db.checkpoint().unwrap(),
            1 => {
                drop(db);
                db = Database::open(&path).unwrap();
            }
            _ => {}
        }
        let read = db.begin_read().unwrap();
        match read.open_multimap_table(T) {
            Ok(t) => {
                check_table(&t, &committed, &mut rng, &format!("read step {step}"));
                let untyped = read.open_untyped_multimap_table("chunks").unwrap();
                let pairs: u64 = committed.values().map(|s| s.len() as u64).sum();
                assert_eq!(untyped.len().unwrap(), pairs, "untyped len step {step}");
                assert_eq!(
                    untyped.stats().unwrap().stored_bytes(),
                    t.stats().unwrap().stored_bytes()
                );
            }
            Err(e) => assert!(committed.is_empty(), "{e}"),
        }
    }
    assert!(db.check_integrity().unwrap());
}

#[test]
fn chunk_model_seed_1() {
    run(0x9e37_79b9_7f4a_7c15, 60);
}

#[test]
fn chunk_model_seed_2() {
    run(0x1234_5678_9abc_def1, 60);
}

// Values of a custom order where different bytes compare equal, under a
// long and a short key: insert and remove return redb's set answers.
const CI: MultimapTableDefinition<&str, CaseInsensitive> = MultimapTableDefinition::new("ci");

#[test]
fn case_insensitive_values_long_and_short_keys() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let long = "L".repeat(80);
    let short = "s";
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_multimap_table(CI).unwrap();
        for key in [long.as_str(), short] {
            for (v, had) in [
                ("b", false),
                ("B", true),
                ("a", false),
                ("C", false),
                ("c", true),
                ("A", true),
            ] {
                assert_eq!(t.insert(key, v).unwrap(), had, "insert {v} under {}", key.len());
            }
            assert_eq!(t.get(key).unwrap().len(), 3);
            assert!(t.remove(key, "B").unwrap());
            assert!(!t.remove(key, "b").unwrap());
            assert_eq!(t.get(key).unwrap().len(), 2);
        }
        assert_eq!(t.len().unwrap(), 4);
    }
    txn.commit().unwrap();
}

/// Which spelling of equal values is kept must not depend on whether the
/// key is under or over 64 bytes (short keys: one engine put that replaces
/// the stored key bytes; long keys: the chunk keeps the first spelling).
#[test]
fn case_insensitive_value_spelling_independent_of_key_length() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let long = "L".repeat(80);
    let short = "s";
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_multimap_table(CI).unwrap();
        for key in [long.as_str(), short] {
            for v in ["b", "B", "a", "C", "c", "A"] {
                t.insert(key, v).unwrap();
            }
        }
        let l: Vec<String> = t
            .get(long.as_str())
            .unwrap()
            .map(|v| v.unwrap().value().to_string())
            .collect();
        let s: Vec<String> = t.get(short).unwrap().map(|v| v.unwrap().value().to_string()).collect();
        assert_eq!(l, s, "the spelling kept must not depend on the key's length");
    }
    txn.commit().unwrap();
}

str_key!(
    /// Strings compared without case.
    CiKey,
    "tests::CiKey",
    |a, b| a.to_ascii_lowercase().cmp(&b.to_ascii_lowercase())
);
const CK: MultimapTableDefinition<CiKey, u64> = MultimapTableDefinition::new("ck");

/// Long keys spelled in two cases are one key: values gathered from both
/// spellings, across chunk splits; remove_all through the other spelling.
#[test]
fn case_insensitive_long_keys_share_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path).unwrap();
    let upper = "K".repeat(100);
    let lower = "k".repeat(100);
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_multimap_table(CK).unwrap();
        for v in 0..600u64 {
            let key = if v % 2 == 0 { upper.as_str() } else { lower.as_str() };
            assert!(!t.insert(key, v * 7 % 600).unwrap());
        }
        for v in 0..600u64 {
            assert!(t.insert(upper.as_str(), v).unwrap());
        }
        assert_eq!(t.len().unwrap(), 600);
        assert_eq!(t.get(lower.as_str()).unwrap().len(), 600);
        let mut it = t.iter().unwrap();
        let (_k, vs) = it.next().unwrap().unwrap();
        assert_eq!(vs.len(), 600);
        assert!(it.next().is_none());
    }
    txn.commit().unwrap();
    drop(db);
    let db = Database::open(&path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_multimap_table(CK).unwrap();
        assert_eq!(t.len().unwrap(), 600);
        assert_eq!(t.remove_all(lower.as_str()).unwrap().len(), 600);
        assert_eq!(t.len().unwrap(), 0);
        assert!(t.iter().unwrap().next().is_none());
    }
    txn.commit().unwrap();
}

/// KeyTooLarge for a value that would join a chunk: nothing changes.
#[test]
fn pair_size_limit_under_long_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let key = vec![b'k'; 100];
    let max = sluicedb::btree::MAX_KEY_LEN;
    let fits = vec![b'v'; max - 5 - key.len()];
    let too_big = vec![b'w'; max - 5 - key.len() + 1];
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_multimap_table(T).unwrap();
        t.insert(key.as_slice(), b"a".as_slice()).unwrap();
        t.insert(key.as_slice(), b"b".as_slice()).unwrap();
        assert!(!t.insert(key.as_slice(), fits.as_slice()).unwrap());
        let err = t.insert(key.as_slice(), too_big.as_slice()).unwrap_err();
        assert!(matches!(err, sluicedb::StorageError::KeyTooLarge(_)), "{err:?}");
        assert_eq!(t.len().unwrap(), 3);
        let got: Vec<Vec<u8>> = t
            .get(key.as_slice())
            .unwrap()
            .map(|v| v.unwrap().value().to_vec())
            .collect();
        assert_eq!(got, vec![b"a".to_vec(), b"b".to_vec(), fits.clone()]);
        // remove the first: the big one may become a chunk's first value
        assert!(t.remove(key.as_slice(), b"a".as_slice()).unwrap());
        assert!(t.remove(key.as_slice(), b"b".as_slice()).unwrap());
        assert_eq!(t.len().unwrap(), 1);
    }
    txn.commit().unwrap();
}
