//! The default `ReadableTable::lower_bound` / `upper_bound`, for a table type
//! of the user's own (here a wrapper that forwards `get`, `range`, `first`
//! and `last`): it builds the cursor from two typed ranges, and positions it
//! exactly as sluicedb's own tables do, for every bound kind.

use std::borrow::Borrow;
use std::ops::{Bound, RangeBounds};

use sluicedb::{
    AccessGuard, Database, ReadOnlyTable, ReadableDatabase, ReadableTable, ReadableTableMetadata, StorageError,
    TableDefinition, TableStats,
};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");

/// A table type outside sluicedb: only the required methods.
struct Forwarding(ReadOnlyTable<u64, u64>);

impl ReadableTableMetadata for Forwarding {
    fn stats(&self) -> Result<TableStats, StorageError> {
        self.0.stats()
    }

    fn len(&self) -> Result<u64, StorageError> {
        self.0.len()
    }
}

impl ReadableTable<u64, u64> for Forwarding {
    fn get<'a>(
        &self,
        key: impl Borrow<<u64 as sluicedb::Value>::SelfType<'a>>,
    ) -> Result<Option<AccessGuard<'_, u64>>, StorageError> {
        self.0.get(key)
    }

    fn range<'a, KR>(&self, range: impl RangeBounds<KR> + 'a) -> Result<sluicedb::Range<'_, u64, u64>, StorageError>
    where
        KR: Borrow<<u64 as sluicedb::Value>::SelfType<'a>> + 'a,
    {
        self.0.range(range)
    }

    fn first(&self) -> Result<Option<(AccessGuard<'_, u64>, AccessGuard<'_, u64>)>, StorageError> {
        self.0.first()
    }

    fn last(&self) -> Result<Option<(AccessGuard<'_, u64>, AccessGuard<'_, u64>)>, StorageError> {
        self.0.last()
    }
}

/// The keys a cursor yields forward and backward from its gap.
fn around(mut cursor: sluicedb::Cursor<'_, u64, u64>) -> (Vec<u64>, Vec<u64>) {
    let mut ahead = Vec::new();
    while let Some((k, _)) = cursor.next().unwrap() {
        ahead.push(k.value());
    }
    for _ in 0..ahead.len() {
        cursor.prev().unwrap();
    }
    let mut behind = Vec::new();
    while let Some((k, _)) = cursor.prev().unwrap() {
        behind.push(k.value());
    }
    (ahead, behind)
}

#[test]
fn default_bounds_match_sluicedbs_own() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for k in (0..40).step_by(3) {
            t.insert(k, k).unwrap();
        }
    }
    txn.commit().unwrap();
    let read = db.begin_read().unwrap();
    let own = read.open_table(T).unwrap();
    let forwarding = Forwarding(read.open_table(T).unwrap());
    let mut checked = 0;
    for x in [0u64, 1, 3, 20, 21, 39, 40] {
        for bound in [Bound::Included(x), Bound::Excluded(x), Bound::Unbounded] {
            let expected = around(own.lower_bound(bound).unwrap());
            assert_eq!(
                around(forwarding.lower_bound(bound).unwrap()),
                expected,
                "lower_bound({bound:?})"
            );
            let expected = around(own.upper_bound(bound).unwrap());
            assert_eq!(
                around(forwarding.upper_bound(bound).unwrap()),
                expected,
                "upper_bound({bound:?})"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 21);
    // A spot check of the positions themselves.
    let (ahead, behind) = around(forwarding.lower_bound(Bound::Included(21)).unwrap());
    assert_eq!(ahead, vec![21, 24, 27, 30, 33, 36, 39]);
    assert_eq!(behind, vec![18, 15, 12, 9, 6, 3, 0]);
}
