//! `sluice tables` names a multimap table's kind, `sluice check` passes on
//! a database holding one, and the commands that read entries refuse it by
//! name (its engine keys are encoded pairs: read as keys they would print
//! garbage, and since its metadata says its types are byte-ordered the
//! engine knows its order).

mod cli_support;

use cli_support::{fails, ok as sluice};
use sluicedb::{Database, MultimapTableDefinition, TableDefinition};

const TAGS: MultimapTableDefinition<&str, u64> = MultimapTableDefinition::new("tags");
const PLAIN: TableDefinition<&str, u64> = TableDefinition::new("plain");

#[test]
fn tables_shows_the_multimap_kind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut tags = txn.open_multimap_table(TAGS).unwrap();
            for v in [1, 2, 3] {
                tags.insert("rust", v).unwrap();
            }
            txn.open_table(PLAIN).unwrap().insert("x", 1).unwrap();
        }
        txn.commit().unwrap();
    }
    let path = path.to_str().unwrap();
    let tables = sluice(&["tables", path]);
    let line = |name: &str| {
        tables
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in {tables}"))
            .to_string()
    };
    assert!(line("tags").contains("multimap"), "{tables}");
    assert!(!line("plain").contains("multimap"), "{tables}");
    sluice(&["check", path]);
    for args in [&["scan", path, "tags"][..], &["get", path, "tags", "rust"]] {
        let stderr = fails(args, 1);
        assert!(stderr.contains("is a multimap table"), "sluice {args:?}: {stderr}");
    }
}
