//! The size limits of keys and values, and the errors a redb user expects:
//! a key over sluicedb's key limit is `KeyTooLarge`; a value over the value
//! limit, or a key too large for any item, is `ValueTooLarge`, as redb
//! reports both (its `value_too_large` test). A refused write changes
//! nothing.

use sluicedb::{Database, ReadableTableMetadata, StorageError, TableDefinition};

const T: TableDefinition<&[u8], &[u8]> = TableDefinition::new("t");
/// The largest key, 20 KiB (`design/format.md`, "Nodes").
const MAX_KEY_LEN: usize = 20 << 10;

#[test]
fn oversized_keys_and_values_are_refused_with_redbs_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(T).unwrap();
        let small = [7u8; 16];
        let long_key = vec![1u8; MAX_KEY_LEN + 1];
        assert!(matches!(
            table.insert(long_key.as_slice(), &small[..]),
            Err(StorageError::KeyTooLarge(n)) if n == MAX_KEY_LEN + 1
        ));
        let huge = vec![0u8; (128 << 20) + 1];
        assert!(
            matches!(table.insert(&small[..], huge.as_slice()), Err(StorageError::ValueTooLarge(n)) if n == huge.len())
        );
        assert!(
            matches!(table.insert(huge.as_slice(), &small[..]), Err(StorageError::ValueTooLarge(n)) if n == huge.len())
        );
        assert!(table.is_empty().unwrap());
        let longest = vec![2u8; MAX_KEY_LEN];
        table.insert(longest.as_slice(), &small[..]).unwrap();
        assert_eq!(table.len().unwrap(), 1);
    }
    txn.commit().unwrap();
}
