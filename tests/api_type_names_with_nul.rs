//! Type names may hold any character, NUL included (redb stores them
//! length-prefixed). sluicedb's table metadata separates fields with NUL,
//! so a NUL inside a name is escaped (`TableMeta::encode`): found by review,
//! two different pairs of names (key "a\0b" / value "c" and key "a" / value
//! "b\0c") encoded to the same bytes, and `open_table`'s bytes-equal fast
//! path opened a table through the other pair; and a table whose type names
//! held a NUL could not be reopened with its own types.

use sluicedb::{Database, Key, ReadableTable, TableDefinition, TableError, TypeName, Value};

/// A variable-width byte string under the type name `NAME`.
#[derive(Debug)]
struct Named<const NAME: u8>;

impl<const NAME: u8> Value for Named<NAME> {
    type SelfType<'a> = &'a [u8];
    type AsBytes<'a> = &'a [u8];

    fn fixed_width() -> Option<usize> {
        None
    }

    fn from_bytes<'a>(data: &'a [u8]) -> &'a [u8]
    where
        Self: 'a,
    {
        data
    }

    fn as_bytes<'a, 'b: 'a>(value: &'a &'b [u8]) -> &'a [u8]
    where
        Self: 'b,
    {
        value
    }

    fn type_name() -> TypeName {
        TypeName::new(match NAME {
            0 => "a\0b",
            1 => "c",
            2 => "a",
            _ => "b\0c",
        })
    }
}

impl<const NAME: u8> Key for Named<NAME> {
    fn compare(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
        a.cmp(b)
    }
}

/// Key type "a\0b", value type "c".
const CREATED: TableDefinition<Named<0>, Named<1>> = TableDefinition::new("t");
/// Key type "a", value type "b\0c": other types, the same encoded bytes.
const OTHER: TableDefinition<Named<2>, Named<3>> = TableDefinition::new("t");

#[test]
fn other_types_whose_names_encode_alike_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(CREATED).unwrap().insert(&b"k"[..], &b"v"[..]).unwrap();
    txn.commit().unwrap();

    let txn = db.begin_write().unwrap();
    match txn.open_table(OTHER) {
        Err(TableError::TableTypeMismatch { .. }) => {}
        Err(other) => panic!("expected TableTypeMismatch, got {other:?}"),
        Ok(_) => panic!("a table created with key \"a\\0b\" / value \"c\" opened as key \"a\" / value \"b\\0c\""),
    }
    drop(txn);
    // Its own types open it, in this process and after a reopen.
    let read = |db: &Database| {
        let txn = db.begin_write().unwrap();
        let value = txn
            .open_table(CREATED)
            .unwrap()
            .get(&b"k"[..])
            .unwrap()
            .map(|v| v.value().to_vec());
        assert_eq!(value.as_deref(), Some(&b"v"[..]));
    };
    read(&db);
    drop(db);
    read(&Database::open(dir.path().join("db")).unwrap());
}
