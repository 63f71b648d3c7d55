//! A commit that goes straight into the tree (`Builder::set_tree_commit_size`)
//! to a table of a custom key order whose earlier writes were recovered from
//! the WAL before any process knew that order (`engine::deferred`): the
//! recovered writes go into the tree first, the big commit on top of them,
//! in the table's own order; a reader's older snapshot and the count stay
//! right, and all of it survives a reopen.

mod common;

use common::keys::Reversed;
use sluicedb::{Builder, Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

const T: TableDefinition<Reversed, u32> = TableDefinition::new("reversed");

fn builder() -> Builder {
    let mut builder = Database::builder();
    builder.set_tree_commit_size(4 << 10).set_checkpoint_on_drop(false);
    builder
}

fn contents(db: &Database) -> Vec<(String, u32)> {
    let read = db.begin_read().unwrap();
    let table = read.open_table(T).unwrap();
    let entries: Vec<(String, u32)> = table
        .iter()
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.value().to_string(), v.value())
        })
        .collect();
    assert_eq!(
        table.len().unwrap(),
        entries.len() as u64,
        "len() disagrees with the entries"
    );
    for (k, v) in &entries {
        assert_eq!(table.get(k.as_str()).unwrap().map(|g| g.value()), Some(*v), "get({k})");
    }
    entries
}

#[test]
fn a_tree_commit_lands_on_top_of_recovered_writes_in_the_tables_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = builder().create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(T).unwrap();
            for (i, k) in ["a", "c", "e", "g"].into_iter().enumerate() {
                t.insert(k, i as u32).unwrap();
            }
        }
        txn.commit().unwrap();
        assert_eq!(db.stats().tree_commits, 0, "a small commit went through the tree");
        // Dropped without a checkpoint: the writes live in the WAL only.
    }
    let mut db = builder().open(&path).unwrap();
    assert!(db.stats().recovery.deferred_records > 0, "nothing was deferred");
    // The rest of the recovered log goes into the tree; the table's records
    // stay deferred (no one has opened it with its type yet), so the tree
    // commit below is the first to learn its order.
    db.checkpoint().unwrap();
    let before = db.begin_read().unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for i in 0..300u32 {
            t.insert(format!("k{i:03}").as_str(), i).unwrap();
        }
        // Over a recovered write, and a recovered write removed.
        t.insert("c", 1000).unwrap();
        t.remove("e").unwrap();
    }
    txn.commit().unwrap();
    assert_eq!(db.stats().tree_commits, 1, "the big commit did not go through the tree");

    let mut want: Vec<(String, u32)> = (0..300u32).map(|i| (format!("k{i:03}"), i)).collect();
    want.extend([("a".to_string(), 0), ("c".to_string(), 1000), ("g".to_string(), 3)]);
    want.sort_by(|a, b| b.0.cmp(&a.0));
    assert_eq!(contents(&db), want);
    // The snapshot taken before the big commit still sees only the old data.
    {
        let table = before.open_table(T).unwrap();
        let old: Vec<String> = table
            .iter()
            .unwrap()
            .map(|e| e.unwrap().0.value().to_string())
            .collect();
        assert_eq!(old, ["g", "e", "c", "a"]);
    }
    drop(before);
    assert!(db.check_integrity().unwrap());
    drop(db);

    let mut db = builder().open(&path).unwrap();
    assert_eq!(
        db.stats().recovery.deferred_records,
        0,
        "recovered writes were left in the WAL"
    );
    assert_eq!(contents(&db), want);
    assert!(db.check_integrity().unwrap());
}
