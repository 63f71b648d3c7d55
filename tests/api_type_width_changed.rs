//! A key or value type that keeps its name but changes its fixed width
//! cannot open a table created with the old width: its stored bytes would
//! not decode (redb's `TypeDefinitionChanged`, same message). Checked for
//! write and read transactions, keys and values, ordinary and multimap
//! tables, and after the database reopens (the widths are stored with the
//! table's metadata). A type that keeps its width still opens.

use sluicedb::{
    Database, Error, Key, MultimapTableDefinition, ReadableDatabase, ReadableTable, TableDefinition, TableError,
    TypeName, Value,
};

/// `N` bytes under one type name whatever `N` is: a definition changed in
/// place, as when a struct gains a field.
#[derive(Debug)]
struct Fixed<const N: usize>;

impl<const N: usize> Value for Fixed<N> {
    type SelfType<'a> = [u8; N];
    type AsBytes<'a> = [u8; N];

    fn fixed_width() -> Option<usize> {
        Some(N)
    }

    fn from_bytes<'a>(data: &'a [u8]) -> [u8; N]
    where
        Self: 'a,
    {
        data.try_into().unwrap()
    }

    fn as_bytes<'a, 'b: 'a>(value: &'a [u8; N]) -> [u8; N]
    where
        Self: 'b,
    {
        *value
    }

    fn type_name() -> TypeName {
        TypeName::new("test::Fixed")
    }
}

impl<const N: usize> Key for Fixed<N> {
    fn compare(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
        a.cmp(b)
    }
}

const NARROW_VALUES: TableDefinition<u64, Fixed<4>> = TableDefinition::new("values");
const WIDE_VALUES: TableDefinition<u64, Fixed<8>> = TableDefinition::new("values");
const NARROW_KEYS: TableDefinition<Fixed<2>, u64> = TableDefinition::new("keys");
const WIDE_KEYS: TableDefinition<Fixed<3>, u64> = TableDefinition::new("keys");
const NARROW_MULTIMAP: MultimapTableDefinition<u64, Fixed<4>> = MultimapTableDefinition::new("multimap");
const WIDE_MULTIMAP: MultimapTableDefinition<u64, Fixed<8>> = MultimapTableDefinition::new("multimap");

fn assert_changed(err: TableError, width: usize) {
    let message = err.to_string();
    assert_eq!(
        message,
        format!(
            "Current definition of test::Fixed does not match stored definition (width=Some({width}), alignment=1)"
        )
    );
    match err {
        TableError::TypeDefinitionChanged {
            name,
            alignment,
            width: stored,
        } => {
            assert_eq!((name.name(), alignment, stored), ("test::Fixed", 1, Some(width)));
        }
        other => panic!("expected a changed type definition, got {other:?}"),
    }
}

#[test]
fn a_type_whose_width_changed_is_refused_before_and_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(NARROW_VALUES).unwrap().insert(1, [7; 4]).unwrap();
    txn.open_table(NARROW_KEYS).unwrap().insert([1, 2], 5).unwrap();
    txn.open_multimap_table(NARROW_MULTIMAP)
        .unwrap()
        .insert(1, [9; 4])
        .unwrap();
    txn.commit().unwrap();

    let mut db = Some(db);
    for _ in 0..2 {
        let db = match db.take() {
            Some(db) => db,
            None => Database::open(&path).unwrap(),
        };
        let txn = db.begin_write().unwrap();
        assert_changed(txn.open_table(WIDE_VALUES).err().unwrap(), 4);
        assert_changed(txn.open_table(WIDE_KEYS).err().unwrap(), 2);
        assert_changed(txn.open_multimap_table(WIDE_MULTIMAP).err().unwrap(), 4);
        // The old definitions still open, and the data is intact.
        assert_eq!(
            txn.open_table(NARROW_VALUES).unwrap().get(1).unwrap().unwrap().value(),
            [7; 4]
        );
        assert_eq!(
            txn.open_table(NARROW_KEYS)
                .unwrap()
                .get([1, 2])
                .unwrap()
                .unwrap()
                .value(),
            5
        );
        drop(txn);

        let read = db.begin_read().unwrap();
        assert_changed(read.open_table(WIDE_VALUES).err().unwrap(), 4);
        assert_changed(read.open_table(WIDE_KEYS).err().unwrap(), 2);
        assert_changed(read.open_multimap_table(WIDE_MULTIMAP).err().unwrap(), 4);
        let err: Error = read.open_table(WIDE_VALUES).err().unwrap().into();
        assert!(
            matches!(err, Error::TypeDefinitionChanged { width: Some(4), .. }),
            "{err}"
        );
        assert_eq!(
            read.open_table(NARROW_VALUES).unwrap().get(1).unwrap().unwrap().value(),
            [7; 4]
        );
        drop(read);
        drop(db);
    }
}
