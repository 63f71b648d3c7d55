//! A user key type with its own `compare` is honoured everywhere: the
//! memtable, the tree, ranges, and recovery after a crash.

mod common;

use common::keys::str_key;
use sluicedb::{Database, Key, ReadableDatabase, ReadableTable, TableDefinition};

str_key!(
    /// Strings ordered by length, then reversed bytes: nothing like byte order.
    Odd,
    "test::Odd",
    |a, b| a.len().cmp(&b.len()).then_with(|| b.cmp(a))
);

const T: TableDefinition<Odd, u32> = TableDefinition::new("odd");

fn expected_order(words: &[&'static str]) -> Vec<String> {
    let mut sorted = words.to_vec();
    sorted.sort_by(|a, b| Odd::compare(a.as_bytes(), b.as_bytes()));
    sorted.into_iter().map(String::from).collect()
}

#[test]
fn custom_order_in_memtable_tree_ranges_and_recovery() {
    let words = ["pear", "fig", "apple", "kiwi", "banana", "date", "yam", "plum"];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let want = expected_order(&words);
    {
        let db = Database::builder().set_memtable_size(1 << 10).create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(T).unwrap();
            for (i, w) in words.iter().enumerate() {
                t.insert(*w, i as u32).unwrap();
            }
            // In the write set.
            let got: Vec<String> = t.iter().unwrap().map(|e| e.unwrap().0.value().to_string()).collect();
            assert_eq!(got, want);
        }
        txn.commit().unwrap();
        // In the memtable, then in the tree.
        for _ in 0..2 {
            let read = db.begin_read().unwrap();
            let t = read.open_table(T).unwrap();
            let got: Vec<String> = t.iter().unwrap().map(|e| e.unwrap().0.value().to_string()).collect();
            assert_eq!(got, want);
            let short: Vec<String> = t
                .range::<&str>(.."apple")
                .unwrap()
                .map(|e| e.unwrap().0.value().to_string())
                .collect();
            assert_eq!(short, want[..want.iter().position(|w| *w == "apple").unwrap()]);
            db.checkpoint().unwrap();
        }
        // A commit left only in the WAL, then the handle dropped without a
        // checkpoint: reopening defers it until the table is opened with its
        // type, which orders it.
        let txn = db.begin_write().unwrap();
        txn.open_table(T).unwrap().insert("zz", 99).unwrap();
        txn.commit().unwrap();
    }
    let db = Database::open(&path).unwrap();
    let read = db.begin_read().unwrap();
    let t = read.open_table(T).unwrap();
    let mut all = words.to_vec();
    all.push("zz");
    let got: Vec<String> = t.iter().unwrap().map(|e| e.unwrap().0.value().to_string()).collect();
    assert_eq!(got, expected_order(&all));
}

str_key!(
    /// ASCII strings ordered case-insensitively: keys equal under the order
    /// need not be equal bytes.
    NoCase,
    "test::NoCase",
    |a, b| a.to_ascii_lowercase().cmp(&b.to_ascii_lowercase())
);

const N: TableDefinition<NoCase, u32> = TableDefinition::new("nocase");

#[test]
fn keys_equal_under_a_custom_order_are_found_in_memtables_and_tree() {
    // The memtable's key filter hashes bytes; it must not hide "APPLE" when
    // "apple" is stored under an order that calls them equal.
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(N).unwrap().insert("apple", 1).unwrap();
    txn.commit().unwrap();
    for layer in ["memtable", "tree"] {
        let read = db.begin_read().unwrap();
        let got = read.open_table(N).unwrap().get("APPLE").unwrap().map(|v| v.value());
        assert_eq!(got, Some(1), "read through the {layer}");
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(N).unwrap();
            let old = t.insert("Apple", 2).unwrap().map(|v| v.value());
            assert_eq!(old, Some(1), "old value through the {layer}");
        }
        txn.abort().unwrap();
        db.checkpoint().unwrap();
    }
}
