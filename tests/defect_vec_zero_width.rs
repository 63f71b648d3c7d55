//! A `Vec` of zero-width elements (`()`, `[(); N]`, `((), ())`) must keep its
//! length: as a value it reads back whole, and as a key each length is its
//! own entry, ordered by length (redb stores the count).

use sluicedb::{Database, Key, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, Value};

const VALUES: TableDefinition<u64, Vec<()>> = TableDefinition::new("values");
const KEYS: TableDefinition<Vec<()>, u64> = TableDefinition::new("keys");

#[test]
fn vec_of_units_keeps_its_length() {
    assert_eq!(<Vec<()>>::from_bytes(&<Vec<()>>::as_bytes(&vec![(), (), ()])).len(), 3);
    assert_eq!(
        <Vec<[(); 2]>>::from_bytes(&<Vec<[(); 2]>>::as_bytes(&vec![[(); 2]; 4])).len(),
        4
    );

    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut values = txn.open_table(VALUES).unwrap();
        values.insert(1, vec![(), (), ()]).unwrap();
        let mut keys = txn.open_table(KEYS).unwrap();
        for n in [2usize, 0, 3, 1] {
            keys.insert(vec![(); n], n as u64).unwrap();
        }
    }
    txn.commit().unwrap();

    let read = db.begin_read().unwrap();
    let values = read.open_table(VALUES).unwrap();
    assert_eq!(values.get(1).unwrap().unwrap().value().len(), 3);
    let keys = read.open_table(KEYS).unwrap();
    assert_eq!(keys.len().unwrap(), 4, "every length is its own key");
    let order: Vec<(usize, u64)> = keys
        .iter()
        .unwrap()
        .map(|e| e.map(|(k, v)| (k.value().len(), v.value())).unwrap())
        .collect();
    assert_eq!(order, [(0, 0), (1, 1), (2, 2), (3, 3)]);
    assert_eq!(
        <Vec<()>>::compare(&<Vec<()>>::as_bytes(&vec![()]), &<Vec<()>>::as_bytes(&vec![(), ()])),
        std::cmp::Ordering::Less
    );
}
