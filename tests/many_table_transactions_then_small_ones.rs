//! Checks the write set's name list (`engine::names::NameMap`): write
//! transactions that open, create, delete and rename more than 32 tables
//! (the list moves to a map), exactly 32 and 33, followed by small ones that
//! reuse the recycled list; names that are prefixes of one another and that
//! differ only by trailing NULs. Checked after every transaction against a
//! model (list_tables, every table's entries and len), that a fresh
//! transaction is clean (an ephemeral savepoint needs one: a name left over
//! from the recycled list would make it dirty), and after a reopen.

use std::collections::BTreeMap;

use sluicedb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle,
};

type Model = BTreeMap<String, BTreeMap<u64, u64>>;

fn def(name: &str) -> TableDefinition<'_, u64, u64> {
    TableDefinition::new(name)
}

fn check(db: &Database, model: &Model, what: &str) {
    let read = db.begin_read().unwrap();
    let listed: Vec<String> = read.list_tables().unwrap().map(|h| h.name().to_string()).collect();
    let expected: Vec<String> = model.keys().cloned().collect();
    assert_eq!(listed, expected, "{what}: listed tables");
    for (name, entries) in model {
        let t = read.open_table(def(name)).unwrap();
        assert_eq!(t.len().unwrap(), entries.len() as u64, "{what}: {name:?} len()");
        let got: Vec<(u64, u64)> = t
            .iter()
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.value(), v.value())
            })
            .collect();
        let want: Vec<(u64, u64)> = entries.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(got, want, "{what}: {name:?} entries");
    }
    // A fresh write transaction touched nothing: it can take a savepoint,
    // and lists what a reader lists.
    let w = db.begin_write().unwrap();
    w.ephemeral_savepoint()
        .unwrap_or_else(|e| panic!("{what}: a fresh transaction is dirty: {e}"));
    let listed: Vec<String> = w.list_tables().unwrap().map(|h| h.name().to_string()).collect();
    assert_eq!(listed, expected, "{what}: tables a fresh writer lists");
    w.abort().unwrap();
}

/// Names that are prefixes of one another, and that differ in trailing NULs.
fn names(n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(match i % 4 {
            0 => "p".repeat(1 + i / 4),
            1 => format!("t{}", i / 4),
            2 => format!("t{}0", i / 4),
            _ => format!("p{}", "\0".repeat(i / 4)),
        });
    }
    out
}

#[test]
fn many_tables_then_few_reuse_the_name_list() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::builder().set_memtable_size(32 << 10).create(&path).unwrap();
    let mut model = Model::new();
    let all = names(48);

    // 1. 48 tables in one transaction (the list moves to the map at 33).
    let mut w = db.begin_write().unwrap();
    w.set_durability(Durability::None).unwrap();
    for (i, name) in all.iter().enumerate() {
        let mut t = w.open_table(def(name)).unwrap();
        for k in 0..(i as u64 % 7) {
            t.insert(k, k * 100 + i as u64).unwrap();
            model.entry(name.clone()).or_default().insert(k, k * 100 + i as u64);
        }
        model.entry(name.clone()).or_default();
    }
    let listed: Vec<String> = w.list_tables().unwrap().map(|h| h.name().to_string()).collect();
    assert_eq!(
        listed,
        model.keys().cloned().collect::<Vec<_>>(),
        "the writer lists its 48 new tables"
    );
    w.commit().unwrap();
    check(&db, &model, "after 48 creates");

    // 2. A small transaction after it: one table, one write.
    let mut w = db.begin_write().unwrap();
    w.set_durability(Durability::None).unwrap();
    w.open_table(def(&all[1])).unwrap().insert(99, 1).unwrap();
    model.get_mut(&all[1]).unwrap().insert(99, 1);
    w.commit().unwrap();
    check(&db, &model, "small after many");

    // 3. Exactly 32 names touched (deletes), then exactly 33 (renames and
    // opens), each followed by a small transaction.
    for (round, touched) in [(0usize, 32usize), (1, 33), (2, 31), (3, 40)] {
        let mut w = db.begin_write().unwrap();
        w.set_durability(Durability::None).unwrap();
        let names: Vec<String> = model.keys().cloned().collect();
        let mut m = model.clone();
        let mut count = 0;
        let mut i = 0;
        while count < touched {
            let name = &names[i % names.len()];
            i += 1;
            if !m.contains_key(name) {
                continue;
            }
            match (i + round) % 3 {
                0 => {
                    // A rename to a new name: two names touched.
                    let to = format!("{name}~r{round}");
                    if m.contains_key(&to) || count + 2 > touched {
                        let mut t = w.open_table(def(name)).unwrap();
                        t.insert(1000 + round as u64, 7).unwrap();
                        m.get_mut(name).unwrap().insert(1000 + round as u64, 7);
                        count += 1;
                        continue;
                    }
                    w.rename_table(def(name), def(&to)).unwrap();
                    let entries = m.remove(name).unwrap();
                    m.insert(to, entries);
                    count += 2;
                }
                1 => {
                    assert!(w.delete_table(def(name)).unwrap(), "round {round}: delete {name:?}");
                    m.remove(name);
                    count += 1;
                }
                _ => {
                    let mut t = w.open_table(def(name)).unwrap();
                    t.insert(2000 + round as u64, 8).unwrap();
                    m.get_mut(name).unwrap().insert(2000 + round as u64, 8);
                    count += 1;
                }
            }
            if i > 10 * names.len() {
                break;
            }
        }
        // Reads in the writer after the changes.
        let listed: Vec<String> = w.list_tables().unwrap().map(|h| h.name().to_string()).collect();
        assert_eq!(
            listed,
            m.keys().cloned().collect::<Vec<_>>(),
            "round {round}: the writer lists"
        );
        for (name, entries) in &m {
            let t = w.open_table(def(name)).unwrap();
            assert_eq!(
                t.len().unwrap(),
                entries.len() as u64,
                "round {round}: writer {name:?} len()"
            );
        }
        w.commit().unwrap();
        model = m;
        check(&db, &model, &format!("round {round} ({touched} names)"));

        // An aborted transaction over many names, then a small one.
        let w = db.begin_write().unwrap();
        for (j, name) in all.iter().enumerate() {
            if j % 2 == 0 {
                let _ = w.delete_table(def(name)).unwrap();
            } else {
                let _ = w.open_table(def(&format!("{name}~aborted"))).unwrap();
            }
        }
        w.abort().unwrap();
        check(&db, &model, &format!("round {round}: after an abort over many names"));

        let mut w = db.begin_write().unwrap();
        w.set_durability(Durability::None).unwrap();
        let first = model.keys().next().unwrap().clone();
        w.open_table(def(&first))
            .unwrap()
            .insert(3000 + round as u64, 9)
            .unwrap();
        model.get_mut(&first).unwrap().insert(3000 + round as u64, 9);
        // A name deleted in the aborted transaction: still there.
        w.commit().unwrap();
        check(&db, &model, &format!("round {round}: small after"));
    }

    // 4. A durable commit, then reopen.
    let mut w = db.begin_write().unwrap();
    w.set_durability(Durability::Immediate).unwrap();
    w.open_table(def("last")).unwrap().insert(1, 1).unwrap();
    model.entry("last".into()).or_default().insert(1, 1);
    w.commit().unwrap();
    drop(db);
    let db = Database::open(&path).unwrap();
    check(&db, &model, "after reopen");
}
