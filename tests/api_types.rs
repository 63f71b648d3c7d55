//! Every built-in key and value type round-trips through a table, and keys
//! come back in their natural order.

use std::fmt::Debug;

use sluicedb::{Database, Key, ReadableDatabase, ReadableTable, TableDefinition, Value};

/// Inserts `keys` (given in their natural order) in reverse, reads them
/// back in key order after a checkpoint.
fn check<K>(name: &str, keys: Vec<K::SelfType<'static>>)
where
    K: Key + 'static,
    for<'a> K::SelfType<'a>: PartialEq + Debug + Clone,
{
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let def: TableDefinition<K, u32> = TableDefinition::new(name);
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(def).unwrap();
        for (i, k) in keys.iter().enumerate().rev() {
            t.insert(k.clone(), i as u32).unwrap();
        }
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    let read = db.begin_read().unwrap();
    let t = read.open_table(def).unwrap();
    let got: Vec<u32> = t.iter().unwrap().map(|e| e.unwrap().1.value()).collect();
    assert_eq!(
        got,
        (0..keys.len() as u32).collect::<Vec<_>>(),
        "{name}: keys out of order"
    );
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(t.get(k.clone()).unwrap().unwrap().value(), i as u32, "{name}: {k:?}");
    }
}

#[test]
fn integers_and_scalars() {
    check::<u8>("u8", vec![0, 1, 200, 255]);
    check::<u16>("u16", vec![0, 255, 256, 65535]);
    check::<u32>("u32", vec![0, 1, 1 << 20, u32::MAX]);
    check::<u64>("u64", vec![0, 255, 256, 1 << 40, u64::MAX]);
    check::<u128>("u128", vec![0, 1, u128::MAX]);
    check::<i8>("i8", vec![i8::MIN, -1, 0, 1, i8::MAX]);
    check::<i16>("i16", vec![i16::MIN, -256, -1, 0, 300]);
    check::<i32>("i32", vec![i32::MIN, -1, 0, i32::MAX]);
    check::<i64>("i64", vec![i64::MIN, -70_000, -1, 0, 1, i64::MAX]);
    check::<i128>("i128", vec![i128::MIN, 0, i128::MAX]);
    check::<bool>("bool", vec![false, true]);
    check::<char>("char", vec!['A', 'a', 'é', '中']);
    check::<()>("unit", vec![()]);
}

#[test]
fn strings_and_bytes() {
    check::<&str>("str", vec!["", "a", "ab", "b"]);
    check::<String>("string", vec![String::new(), "x".into(), "xy".into()]);
    check::<&[u8]>("bytes", vec![b"", b"\x00", b"\x00\x01", b"\xff"]);
    check::<&[u8; 3]>("byte array", vec![b"aaa", b"aab", b"baa"]);
}

#[test]
fn composites() {
    check::<Option<u32>>("option", vec![None, Some(0), Some(7)]);
    check::<Vec<u16>>("vec", vec![vec![], vec![1], vec![1, 0], vec![2]]);
    check::<[i8; 2]>("array", vec![[-1, 5], [0, -3], [0, 2]]);
    check::<(u32, &str)>("pair", vec![(1, "z"), (2, ""), (2, "a")]);
    // A variable-width element first: ordered by its own compare.
    check::<(&str, u8)>("str first", vec![("a", 9), ("ab", 0), ("b", 1)]);
    check::<(u8, i16, bool)>("triple", vec![(0, -5, true), (0, 3, false), (1, -9, false)]);
}

#[test]
fn values_of_every_shape() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    type Record = (Option<&'static str>, Vec<u64>, [bool; 2]);
    const V: TableDefinition<u8, Record> = TableDefinition::new("values");
    let txn = db.begin_write().unwrap();
    txn.open_table(V)
        .unwrap()
        .insert(1, (Some("hello"), vec![1, 2, 3], [true, false]))
        .unwrap();
    txn.commit().unwrap();
    let read = db.begin_read().unwrap();
    let table = read.open_table(V).unwrap();
    let value = table.get(1).unwrap().unwrap();
    assert_eq!(value.value(), (Some("hello"), vec![1, 2, 3], [true, false]));
    assert_eq!(<Record as Value>::fixed_width(), None);
}
