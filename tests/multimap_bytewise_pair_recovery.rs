//! WAL records of `p` multimap tables (byte-ordered key and value types)
//! recovered without a typed open: untyped len, savepoint restore, then the
//! typed view compared with a model.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::Rng;
use common::keys::CrashDisk;
use sluicedb::io::TearMode;
use sluicedb::{
    Builder, Database, MultimapTableDefinition, MultimapTableHandle, ReadableDatabase, ReadableMultimapTable,
    ReadableTableMetadata,
};

const NUM: MultimapTableDefinition<u64, u64> = MultimapTableDefinition::new("num");
const STR: MultimapTableDefinition<&str, &str> = MultimapTableDefinition::new("str");

type Model = (BTreeMap<u64, BTreeSet<u64>>, BTreeMap<String, BTreeSet<String>>);

fn long_key(i: u64) -> String {
    format!("{}{i:03}", "k".repeat(70))
}

fn read(db: &Database) -> Model {
    let r = db.begin_read().unwrap();
    let mut m = Model::default();
    if let Ok(t) = r.open_multimap_table(NUM) {
        for e in t.iter().unwrap() {
            let (k, vs) = e.unwrap();
            m.0.insert(k.value(), vs.map(|v| v.unwrap().value()).collect());
        }
        let pairs: usize = m.0.values().map(|s| s.len()).sum();
        assert_eq!(t.len().unwrap(), pairs as u64, "typed len of num");
    }
    if let Ok(t) = r.open_multimap_table(STR) {
        for e in t.iter().unwrap() {
            let (k, vs) = e.unwrap();
            m.1.insert(
                k.value().to_string(),
                vs.map(|v| v.unwrap().value().to_string()).collect(),
            );
        }
        let pairs: usize = m.1.values().map(|s| s.len()).sum();
        assert_eq!(t.len().unwrap(), pairs as u64, "typed len of str");
    }
    m
}

fn pairs(m: &Model) -> (u64, u64) {
    (
        m.0.values().map(|s| s.len() as u64).sum(),
        m.1.values().map(|s| s.len() as u64).sum(),
    )
}

fn untyped_lens(db: &Database) -> (u64, u64) {
    let r = db.begin_read().unwrap();
    let mut out = (0, 0);
    for h in r.list_multimap_tables().unwrap() {
        let t = r.open_untyped_multimap_table(h.clone()).unwrap();
        match h.name() {
            "num" => out.0 = t.len().unwrap(),
            "str" => out.1 = t.len().unwrap(),
            _ => {}
        }
    }
    out
}

fn commits(db: &Database, rng: &mut Rng, model: &mut Model, n: usize) {
    for _ in 0..n {
        let txn = db.begin_write().unwrap();
        {
            let mut num = txn.open_multimap_table(NUM).unwrap();
            let mut st = txn.open_multimap_table(STR).unwrap();
            for _ in 0..1 + rng.below(12) {
                let k = rng.below(6);
                let v = rng.below(40);
                match rng.below(10) {
                    0..=5 => {
                        num.insert(k, v * 1_000_003).unwrap();
                        model.0.entry(k).or_default().insert(v * 1_000_003);
                        let (ks, vs) = (long_key(k), format!("v{v}"));
                        st.insert(ks.as_str(), vs.as_str()).unwrap();
                        model.1.entry(ks).or_default().insert(vs);
                    }
                    6..=8 => {
                        num.remove(k, v * 1_000_003).unwrap();
                        if let Some(s) = model.0.get_mut(&k) {
                            s.remove(&(v * 1_000_003));
                        }
                        let (ks, vs) = (long_key(k), format!("v{v}"));
                        st.remove(ks.as_str(), vs.as_str()).unwrap();
                        if let Some(s) = model.1.get_mut(&ks) {
                            s.remove(&vs);
                        }
                    }
                    _ => {
                        num.remove_all(k).unwrap();
                        model.0.remove(&k);
                        let ks = long_key(k);
                        st.remove_all(ks.as_str()).unwrap();
                        model.1.remove(&ks);
                    }
                }
            }
        }
        txn.commit().unwrap();
        model.0.retain(|_, s| !s.is_empty());
        model.1.retain(|_, s| !s.is_empty());
    }
}

fn run(seed: u64, restore: bool) {
    let builder = Builder::new();
    let disk = CrashDisk::new();
    let db = disk.open(&builder);
    let mut rng = Rng(seed);
    let mut model = Model::default();
    commits(&db, &mut rng, &mut model, 5);
    db.checkpoint().unwrap();
    commits(&db, &mut rng, &mut model, 10);
    let txn = db.begin_write().unwrap();
    let sp = txn.persistent_savepoint().unwrap();
    txn.commit().unwrap();
    let saved = model.clone();
    commits(&db, &mut rng, &mut model, 10);
    let crashed = disk.crashed(TearMode::DropAll);
    drop(db);
    let mut db = crashed.open(&builder);
    assert_eq!(
        untyped_lens(&db),
        pairs(&model),
        "seed {seed}: untyped lens after recovery"
    );
    assert!(db.check_integrity().unwrap());
    if restore {
        let mut txn = db.begin_write().unwrap();
        let sp = txn.get_persistent_savepoint(sp).unwrap();
        txn.restore_savepoint(&sp).unwrap();
        txn.commit().unwrap();
        assert_eq!(
            untyped_lens(&db),
            pairs(&saved),
            "seed {seed}: untyped lens after restore"
        );
        assert_eq!(read(&db), saved, "seed {seed}: restored");
    } else {
        assert_eq!(read(&db), model, "seed {seed}: recovered");
    }
    assert!(db.check_integrity().unwrap());
    drop(db);
}

#[test]
fn recovered_p_tables_match_the_model() {
    for seed in 1..40 {
        run(seed * 7919, false);
    }
}

#[test]
fn restored_p_tables_match_the_model() {
    for seed in 1..40 {
        run(seed * 104729, true);
    }
}
