//! Checks the in-place WAL encoding (`Journal::append_encoded`,
//! `encode_record_with`) and the recycled count list
//! (`WriteSet::recycle_commit`): commits of varied shapes (empty, one write,
//! 63/64/65 writes around the hand-off, a few hundred, big values, commits
//! over many tables changing their counts, followed by one-table commits),
//! most `Durability::Immediate`, some `None` with a durable one after. The
//! database is dropped without a checkpoint and reopened twice: every
//! acknowledged commit must be replayed from the WAL, with every table's
//! entries and len() as the model says.

use std::collections::BTreeMap;

use sluicedb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

type Model = BTreeMap<String, BTreeMap<u64, Vec<u8>>>;

fn def(name: &str) -> TableDefinition<'_, u64, &'static [u8]> {
    TableDefinition::new(name)
}

fn check(db: &Database, model: &Model, what: &str) {
    let read = db.begin_read().unwrap();
    let listed: Vec<String> = read
        .list_tables()
        .unwrap()
        .map(|h| sluicedb::TableHandle::name(&h).to_string())
        .collect();
    assert_eq!(listed, model.keys().cloned().collect::<Vec<_>>(), "{what}: tables");
    for (name, entries) in model {
        let t = read.open_table(def(name)).unwrap();
        assert_eq!(t.len().unwrap(), entries.len() as u64, "{what}: {name} len()");
        let got: Vec<(u64, Vec<u8>)> = t
            .iter()
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.value(), v.value().to_vec())
            })
            .collect();
        let want: Vec<(u64, Vec<u8>)> = entries.iter().map(|(k, v)| (*k, v.clone())).collect();
        assert!(
            got == want,
            "{what}: {name} entries differ ({} got, {} expected)",
            got.len(),
            want.len()
        );
    }
}

fn val(commit: usize, k: u64, len: usize) -> Vec<u8> {
    let mut v = format!("c{commit}k{k}:").into_bytes();
    v.extend((0..len).map(|i| (i as u64 * 31 + k + commit as u64) as u8));
    v
}

#[test]
fn every_acknowledged_commit_of_any_size_is_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let open = |create: bool| {
        let mut b = Database::builder();
        b.set_checkpoint_on_drop(false).set_memtable_size(64 << 20);
        if create {
            b.create(&path).unwrap()
        } else {
            b.open(&path).unwrap()
        }
    };
    let db = open(true);
    let mut model = Model::new();
    // (tables touched, writes per table, value length, durability)
    let shapes: Vec<(usize, u64, usize, Durability)> = vec![
        (1, 0, 0, Durability::Immediate),
        (1, 1, 0, Durability::Immediate),
        (1, 1, 10, Durability::None),
        (1, 63, 10, Durability::Immediate),
        (1, 64, 10, Durability::Immediate),
        (1, 65, 10, Durability::None),
        (1, 65, 10, Durability::Immediate),
        (9, 7, 3, Durability::Immediate),
        (1, 1, 3, Durability::Immediate),
        (20, 4, 30, Durability::None),
        (1, 2, 3, Durability::None),
        (3, 300, 100, Durability::Immediate),
        (1, 3, 64 << 10, Durability::Immediate),
        (2, 1, 200 << 10, Durability::Immediate),
        (12, 64, 5, Durability::Immediate),
        (1, 1, 1, Durability::Immediate),
    ];
    let mut commit = 0;
    for round in 0..6 {
        for &(tables, writes, len, durability) in &shapes {
            commit += 1;
            let mut w = db.begin_write().unwrap();
            w.set_durability(durability).unwrap();
            let mut m = model.clone();
            for t in 0..tables {
                let name = format!("t{}", (t + round + commit) % 25);
                let mut table = w.open_table(def(&name)).unwrap();
                let entries = m.entry(name.clone()).or_default();
                for i in 0..writes {
                    let k = (i * 7 + commit as u64 * 13) % 500;
                    if (i + commit as u64).is_multiple_of(5) {
                        let old = table.remove(k).unwrap().map(|g| g.value().to_vec());
                        assert_eq!(old, entries.remove(&k), "commit {commit}: remove");
                    } else {
                        let v = val(commit, k, len);
                        let old = table.insert(k, v.as_slice()).unwrap().map(|g| g.value().to_vec());
                        assert_eq!(old, entries.insert(k, v), "commit {commit}: insert");
                    }
                }
                assert_eq!(
                    table.len().unwrap(),
                    entries.len() as u64,
                    "commit {commit}: writer len()"
                );
            }
            w.commit().unwrap();
            model = m;
        }
        // A durable commit last, so every `None` commit before it is durable.
        let mut w = db.begin_write().unwrap();
        w.set_durability(Durability::Immediate).unwrap();
        w.open_table(def("marker"))
            .unwrap()
            .insert(round as u64, b"m".as_slice())
            .unwrap();
        model
            .entry("marker".into())
            .or_default()
            .insert(round as u64, b"m".to_vec());
        w.commit().unwrap();
        check(&db, &model, &format!("round {round}, before reopen"));
    }
    drop(db);
    let db = open(false);
    check(&db, &model, "after the first reopen");
    // More commits on the replayed database, then a second reopen.
    let mut w = db.begin_write().unwrap();
    w.set_durability(Durability::Immediate).unwrap();
    for t in 0..40 {
        let name = format!("t{}", t % 25);
        let mut table = w.open_table(def(&name)).unwrap();
        table.insert(10_000 + t, b"after".as_slice()).unwrap();
        model.entry(name).or_default().insert(10_000 + t, b"after".to_vec());
    }
    w.commit().unwrap();
    drop(db);
    let db = open(false);
    check(&db, &model, "after the second reopen");
}
