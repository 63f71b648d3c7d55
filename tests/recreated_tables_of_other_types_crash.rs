//! A custom-order table (ordinary and multimap)
//! deleted, renamed and re-created with other types within the WAL (no
//! checkpoint), then a crash: recovery defers custom-order records until
//! the typed open, and must give each table its own records, in its own
//! order.
//! (Written by the twenty-third session's review; it found nothing.)

mod common;

use common::keys::{CrashDisk, Reversed};
use sluicedb::io::TearMode;
use sluicedb::{
    Builder, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTable, ReadableTableMetadata,
    TableDefinition,
};

const MM_OLD: MultimapTableDefinition<Reversed, u64> = MultimapTableDefinition::new("m");
const MM_NEW: MultimapTableDefinition<u64, Reversed> = MultimapTableDefinition::new("m");
const MM_MOVED: MultimapTableDefinition<Reversed, u64> = MultimapTableDefinition::new("moved");
const T_OLD: TableDefinition<Reversed, u64> = TableDefinition::new("t");
const T_NEW: TableDefinition<u64, Reversed> = TableDefinition::new("t");
const T_MOVED: TableDefinition<Reversed, u64> = TableDefinition::new("t-moved");

#[test]
fn recreated_and_renamed_custom_order_tables_recover_their_own_records() {
    for (checkpoint_between, mode) in [
        (false, TearMode::DropAll),
        (false, TearMode::KeepAll),
        (true, TearMode::DropAll),
    ] {
        let mut builder = Builder::new();
        builder.set_memtable_size(1 << 20);
        let disk = CrashDisk::new();
        let db = disk.open(&builder);
        let txn = db.begin_write().unwrap();
        {
            let mut m = txn.open_multimap_table(MM_OLD).unwrap();
            let mut t = txn.open_table(T_OLD).unwrap();
            for (i, k) in ["a", "b", "c", "zz"].iter().enumerate() {
                m.insert(*k, i as u64).unwrap();
                m.insert(*k, 100 + i as u64).unwrap();
                t.insert(*k, i as u64).unwrap();
            }
        }
        txn.commit().unwrap();
        if checkpoint_between {
            db.checkpoint().unwrap();
        }
        // Move the old ones away, make new ones under the old names.
        let txn = db.begin_write().unwrap();
        txn.rename_multimap_table(MM_OLD, MM_MOVED).unwrap();
        txn.rename_table(T_OLD, T_MOVED).unwrap();
        {
            let mut m = txn.open_multimap_table(MM_NEW).unwrap();
            let mut t = txn.open_table(T_NEW).unwrap();
            for k in [5u64, 1, 9] {
                m.insert(k, "x").unwrap();
                m.insert(k, "y").unwrap();
                t.insert(k, "v").unwrap();
            }
        }
        {
            let mut moved = txn.open_multimap_table(MM_MOVED).unwrap();
            moved.remove("b", 1).unwrap();
            moved.insert("d", 7).unwrap();
            let mut tm = txn.open_table(T_MOVED).unwrap();
            tm.remove("c").unwrap();
            tm.insert("d", 7).unwrap();
        }
        txn.commit().unwrap();

        let crashed = disk.crashed(mode);
        drop(db);
        let db = crashed.open(&builder);
        let read = db.begin_read().unwrap();
        let ctx = format!("checkpoint_between={checkpoint_between} mode={mode:?}");
        // Open the new ones first: their order must not leak into the moved.
        let m = read.open_multimap_table(MM_NEW).unwrap();
        let got: Vec<(u64, Vec<String>)> = m
            .iter()
            .unwrap()
            .map(|e| {
                let (k, vs) = e.unwrap();
                (k.value(), vs.map(|v| v.unwrap().value().to_string()).collect())
            })
            .collect();
        let yx = vec!["y".to_string(), "x".to_string()];
        assert_eq!(got, vec![(1, yx.clone()), (5, yx.clone()), (9, yx)], "{ctx}");
        assert_eq!(m.len().unwrap(), 6, "{ctx}");
        let t = read.open_table(T_NEW).unwrap();
        let got: Vec<u64> = t.iter().unwrap().map(|e| e.unwrap().0.value()).collect();
        assert_eq!(got, vec![1, 5, 9], "{ctx}");
        assert_eq!(t.len().unwrap(), 3, "{ctx}");

        let moved = read.open_multimap_table(MM_MOVED).unwrap();
        let got: Vec<(String, Vec<u64>)> = moved
            .iter()
            .unwrap()
            .map(|e| {
                let (k, vs) = e.unwrap();
                (k.value().to_string(), vs.map(|v| v.unwrap().value()).collect())
            })
            .collect();
        let want: Vec<(String, Vec<u64>)> = vec![
            ("zz".into(), vec![3, 103]),
            ("d".into(), vec![7]),
            ("c".into(), vec![2, 102]),
            ("b".into(), vec![101]),
            ("a".into(), vec![0, 100]),
        ];
        assert_eq!(got, want, "{ctx}");
        assert_eq!(moved.len().unwrap(), 8, "{ctx}");
        let tm = read.open_table(T_MOVED).unwrap();
        let got: Vec<(String, u64)> = tm
            .iter()
            .unwrap()
            .map(|e| e.map(|(k, v)| (k.value().to_string(), v.value())).unwrap())
            .collect();
        let want: Vec<(String, u64)> = vec![("zz".into(), 3), ("d".into(), 7), ("b".into(), 1), ("a".into(), 0)];
        assert_eq!(got, want, "{ctx}");
        assert_eq!(tm.len().unwrap(), 4, "{ctx}");
        drop((m, t, moved, tm, read));
        let mut db = db;
        assert!(db.check_integrity().unwrap(), "{ctx}");
    }
}
