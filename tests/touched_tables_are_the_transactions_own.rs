//! Checks the recycled name list (`engine::names::NameMap`) through the
//! engine's `touched_tables`: each transaction must report exactly the
//! names it resolved, created, deleted or renamed, never a name an earlier
//! transaction left in the recycled list. Names long enough that their
//! buffers are not kept (over 256 bytes, up to 20000), names that are
//! prefixes of one another, names that differ only by trailing NULs, names
//! resolved but missing, and transactions over 32 and more names (the map),
//! then small ones again. list_tables and the data are checked after every
//! commit and after a reopen.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use common::engine::{Disk, small_options};
use sluicedb::btree::bytewise;
use sluicedb::engine::{Durability, Engine};

type Model = BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, Vec<u8>>>;

fn check(db: &Engine, model: &Model, what: &str) {
    let read = db.begin_read().unwrap();
    let listed: Vec<Vec<u8>> = read.list_tables().unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        listed,
        model.keys().cloned().collect::<Vec<_>>(),
        "{what}: listed tables"
    );
    for (name, entries) in model {
        let t = read.open_table(name, bytewise).unwrap().expect("listed");
        assert_eq!(
            read.len(&t).unwrap(),
            entries.len() as u64,
            "{what}: len of a {}-byte name",
            name.len()
        );
        let got: Vec<(Vec<u8>, Vec<u8>)> = read
            .range(&t, Bound::Unbounded, Bound::Unbounded)
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.to_vec(), v.to_vec())
            })
            .collect();
        let want: Vec<(Vec<u8>, Vec<u8>)> = entries.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(got, want, "{what}: entries of a {}-byte name", name.len());
    }
}

fn name(i: usize) -> Vec<u8> {
    match i % 6 {
        0 => vec![b'n'; 1 + i / 6],
        1 => {
            let mut n = vec![b'L'; 300 + i];
            n.push(b'0' + (i % 10) as u8);
            n
        }
        2 => format!("p{}", i / 6).into_bytes(),
        3 => {
            let mut n = format!("p{}", i / 6).into_bytes();
            n.extend(std::iter::repeat_n(0u8, 1 + i / 6));
            n
        }
        4 => {
            let mut n = vec![b'X'; 20_000 - i];
            n.push(b'a' + (i % 26) as u8);
            n
        }
        _ => format!("q{i}").into_bytes(),
    }
}

#[test]
fn each_transaction_touches_only_its_own_names() {
    let disk = Disk::new();
    let db = disk.open(small_options());
    let mut model = Model::new();
    let mut names_used: Vec<Vec<u8>> = Vec::new();
    // Transaction sizes: around the list's 32, and small ones after.
    let sizes = [3usize, 40, 1, 32, 33, 0, 2, 60, 1, 31, 5];
    let mut next_name = 0usize;
    for (t, &size) in sizes.iter().enumerate() {
        let mut w = db.begin_write().unwrap();
        w.set_durability(if t % 3 == 0 {
            Durability::Immediate
        } else {
            Durability::None
        });
        assert!(
            w.touched_tables().is_empty(),
            "txn {t}: a new transaction touched {} names",
            w.touched_tables().len()
        );
        let mut m = model.clone();
        let mut touched: BTreeSet<Vec<u8>> = BTreeSet::new();
        for j in 0..size {
            match (t + j) % 5 {
                // A missing name, resolved: touched, not created.
                0 => {
                    let n = [b"missing-".as_slice(), &name(next_name)].concat();
                    next_name += 1;
                    assert_eq!(w.table_meta(&n).unwrap(), None);
                    touched.insert(n);
                }
                // Delete an existing table, if any.
                1 if !m.is_empty() => {
                    let n = m.keys().nth(j % m.len()).unwrap().clone();
                    assert!(w.delete_table(&n).unwrap());
                    m.remove(&n);
                    touched.insert(n);
                }
                // Rename an existing table to a new name.
                2 if !m.is_empty() => {
                    let from = m.keys().nth(j % m.len()).unwrap().clone();
                    let to = name(next_name);
                    next_name += 1;
                    if m.contains_key(&to) {
                        continue;
                    }
                    assert!(w.rename_table(&from, &to).unwrap());
                    let e = m.remove(&from).unwrap();
                    m.insert(to.clone(), e);
                    touched.insert(from);
                    touched.insert(to);
                }
                // Create or write a table.
                _ => {
                    let n = if j % 2 == 0 && !names_used.is_empty() {
                        names_used[(t * 7 + j) % names_used.len()].clone()
                    } else {
                        let n = name(next_name);
                        next_name += 1;
                        n
                    };
                    let tr = w.open_table(&n, b"bytes", bytewise).unwrap();
                    let key = format!("k{t}-{j}").into_bytes();
                    w.insert(tr, &key, &n[..n.len().min(40)]).unwrap();
                    m.entry(n.clone())
                        .or_default()
                        .insert(key, n[..n.len().min(40)].to_vec());
                    names_used.push(n.clone());
                    touched.insert(n);
                }
            }
        }
        let got: Vec<Vec<u8>> = w.touched_tables();
        let want: Vec<Vec<u8>> = touched.iter().cloned().collect();
        assert!(
            got == want,
            "txn {t}: touched {} names, expected {}",
            got.len(),
            want.len()
        );
        let listed: Vec<Vec<u8>> = w.list_tables().unwrap().into_iter().map(|(n, _)| n).collect();
        assert!(
            listed == m.keys().cloned().collect::<Vec<_>>(),
            "txn {t}: the writer's list"
        );
        if t == 6 {
            // An abort over names, then the model stays.
            w.abort();
        } else {
            w.commit().unwrap();
            model = m;
        }
        check(&db, &model, &format!("after txn {t}"));
    }
    let mut w = db.begin_write().unwrap();
    w.set_durability(Durability::Immediate);
    let tr = w.open_table(b"z", b"bytes", bytewise).unwrap();
    w.insert(tr, b"k", b"v").unwrap();
    assert_eq!(w.touched_tables(), vec![b"z".to_vec()]);
    w.commit().unwrap();
    model
        .entry(b"z".to_vec())
        .or_default()
        .insert(b"k".to_vec(), b"v".to_vec());
    drop(db);
    let db = disk.open(small_options());
    check(&db, &model, "after reopen");
}
