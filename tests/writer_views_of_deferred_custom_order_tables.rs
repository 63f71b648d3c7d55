//! Checks the writer's memoized table views (`State::writer_view`) where
//! a view carries more than the tree: a custom-ordered table whose last
//! commits were left in the WAL, so the reopen defers them (an overlay and
//! a count adjustment in the view) until a flush absorbs them. Many small
//! `Durability::None` commits then reuse the state in place (the memo
//! answers every transaction's open), with small memtables, a checkpoint
//! part way, savepoints restored in some transactions, and the table
//! deleted and re-created under its name. Every write transaction checks
//! len() and the full ordered scan before it writes; readers check too.

mod common;

use std::collections::BTreeMap;

use common::keys::str_key;
use sluicedb::{Database, Durability, Key, ReadableDatabase, ReadableTable, TableDefinition};

str_key!(
    /// Strings ordered by length, then reversed bytes.
    Odd,
    "review::Odd",
    |a, b| a.len().cmp(&b.len()).then_with(|| b.cmp(a))
);

const T: TableDefinition<Odd, u32> = TableDefinition::new("odd");
const OTHER: TableDefinition<u64, u64> = TableDefinition::new("odd2");

type Model = BTreeMap<String, u32>;

fn ordered(model: &Model) -> Vec<(String, u32)> {
    let mut v: Vec<(String, u32)> = model.iter().map(|(k, v)| (k.clone(), *v)).collect();
    v.sort_by(|a, b| Odd::compare(a.0.as_bytes(), b.0.as_bytes()));
    v
}

fn word(n: u64) -> String {
    // Lengths vary, so the order is nothing like byte order.
    format!("{}{}", "w".repeat((n % 5) as usize), n)
}

fn check_table<T: ReadableTable<Odd, u32>>(t: &T, model: &Model, what: &str) {
    assert_eq!(t.len().unwrap(), model.len() as u64, "{what}: len()");
    let got: Vec<(String, u32)> = t
        .iter()
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.value().to_string(), v.value())
        })
        .collect();
    assert_eq!(got, ordered(model), "{what}: ordered scan");
}

#[test]
fn deferred_custom_order_records_through_memoized_views() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut model = Model::new();
    {
        let db = Database::builder()
            .set_checkpoint_on_drop(false)
            .set_memtable_size(1 << 20)
            .create(&path)
            .unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(T).unwrap();
            for n in 0..200 {
                t.insert(word(n).as_str(), n as u32).unwrap();
                model.insert(word(n), n as u32);
            }
        }
        txn.commit().unwrap();
        db.checkpoint().unwrap();
        // Left in the WAL only: removals of flushed keys, overwrites, new keys.
        for round in 0..5u64 {
            let txn = db.begin_write().unwrap();
            {
                let mut t = txn.open_table(T).unwrap();
                for n in (round * 30)..(round * 30 + 12) {
                    assert_eq!(
                        t.remove(word(n).as_str()).unwrap().map(|g| g.value()),
                        model.remove(&word(n))
                    );
                }
                for n in (round * 7 + 150)..(round * 7 + 160) {
                    let v = 1000 + n as u32 + round as u32;
                    assert_eq!(
                        t.insert(word(n).as_str(), v).unwrap().map(|g| g.value()),
                        model.insert(word(n), v)
                    );
                }
                for n in 0..6 {
                    let k = 500 + round * 10 + n;
                    t.insert(word(k).as_str(), k as u32).unwrap();
                    model.insert(word(k), k as u32);
                }
            }
            txn.commit().unwrap();
        }
    }

    let db = Database::builder().set_memtable_size(8 << 10).open(&path).unwrap();
    let deferred = db.engine().stats().recovery.deferred_records;
    assert!(
        deferred >= 5,
        "the WAL's commits were deferred at the reopen ({deferred} records)"
    );
    let mut next = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        next ^= next << 13;
        next ^= next >> 7;
        next ^= next << 17;
        next
    };
    for txn_no in 0..400u64 {
        let what = format!("txn {txn_no}");
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(if txn_no % 23 == 0 {
            Durability::Immediate
        } else {
            Durability::None
        })
        .unwrap();
        let mut m = model.clone();
        match txn_no % 50 {
            // Deleted and re-created under the same name (and a table whose
            // name the old one's is a prefix of, touched beside it).
            17 => {
                assert!(txn.delete_table(T).unwrap(), "{what}: the table exists");
                m.clear();
                txn.open_table(OTHER).unwrap().insert(txn_no, txn_no).unwrap();
                let mut t = txn.open_table(T).unwrap();
                check_table(&t, &m, &format!("{what}, re-created"));
                for n in 0..20 {
                    t.insert(word(n * 3).as_str(), n as u32).unwrap();
                    m.insert(word(n * 3), n as u32);
                }
                check_table(&t, &m, &format!("{what}, re-created and written"));
            }
            // A savepoint restored: the writes before it are undone.
            31 => {
                let sp = txn.ephemeral_savepoint().unwrap();
                {
                    let mut t = txn.open_table(T).unwrap();
                    check_table(&t, &m, &format!("{what}, before the savepoint's writes"));
                    for n in 0..30 {
                        t.insert(word(9000 + n).as_str(), 1).unwrap();
                    }
                    t.remove(word(rand() % 700).as_str()).unwrap();
                }
                txn.restore_savepoint(&sp).unwrap();
                let mut t = txn.open_table(T).unwrap();
                check_table(&t, &m, &format!("{what}, restored"));
                let k = word(rand() % 700);
                t.insert(k.as_str(), 7).unwrap();
                m.insert(k, 7);
                check_table(&t, &m, &format!("{what}, restored and written"));
            }
            _ => {
                let mut t = txn.open_table(T).unwrap();
                check_table(&t, &m, &format!("{what}, at the start"));
                for _ in 0..(1 + rand() % 4) {
                    let k = word(rand() % 700);
                    if rand() % 3 == 0 {
                        assert_eq!(
                            t.remove(k.as_str()).unwrap().map(|g| g.value()),
                            m.remove(&k),
                            "{what}: remove"
                        );
                    } else {
                        let v = (rand() % 10_000) as u32;
                        assert_eq!(
                            t.insert(k.as_str(), v).unwrap().map(|g| g.value()),
                            m.insert(k, v),
                            "{what}: insert"
                        );
                    }
                }
                check_table(&t, &m, &format!("{what}, written"));
            }
        }
        if txn_no % 41 == 40 {
            txn.abort().unwrap();
        } else {
            txn.commit().unwrap();
            model = m;
        }
        if txn_no % 9 == 0 {
            let read = db.begin_read().unwrap();
            check_table(&read.open_table(T).unwrap(), &model, &format!("{what}: a reader after"));
        }
        if txn_no == 120 || txn_no == 260 {
            db.checkpoint().unwrap();
        }
    }
    drop(db);
    let db = Database::open(&path).unwrap();
    let read = db.begin_read().unwrap();
    check_table(&read.open_table(T).unwrap(), &model, "after the last reopen");
}
