//! `ExtractIf` after a failed read, as redb's: the read's error comes back
//! once as `Io`; every later call, from either end, returns `PreviousIo`
//! instead of ending as if the table were exhausted; `close` and the
//! transaction's commit report `PreviousIo` (the data file latched the
//! failure); and reopening finds every entry.

mod common;

use std::sync::atomic::Ordering;

use common::failing::FailingBackend;
use sluicedb::{Builder, CommitError, ReadableDatabase, ReadableTableMetadata, StorageError, TableDefinition};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");
const ENTRIES: u64 = 10_000;

#[test]
fn a_failed_read_mid_extraction_latches_the_iterator_and_the_database() {
    let backend = FailingBackend::new();
    // No page cache: iteration reads every leaf through the backend.
    let db = Builder::new()
        .set_cache_size(0)
        .create_with_backend(backend.clone())
        .unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(T).unwrap();
        for i in 0..ENTRIES {
            table.insert(i, i).unwrap();
        }
    }
    txn.commit().unwrap();

    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(T).unwrap();
        // Selecting nothing, it removes nothing: the failed read is the
        // range's own, which would otherwise end the range quietly.
        let mut extract = table.extract_if(|_, _| false).unwrap();
        backend.fail_reads.store(true, Ordering::SeqCst);
        let first = match extract.next() {
            Some(Err(e)) => e,
            Some(Ok(_)) => panic!("an entry selected by a predicate that selects none"),
            None => panic!("the iterator reported exhaustion after a failed read"),
        };
        assert!(
            matches!(&first, StorageError::Io(e) if e.to_string().contains("injected read failure")),
            "{first}"
        );
        assert!(matches!(extract.next(), Some(Err(StorageError::PreviousIo))));
        assert!(matches!(extract.next_back(), Some(Err(StorageError::PreviousIo))));
        let closed = extract.close();
        assert!(matches!(closed, Err(StorageError::PreviousIo)), "{closed:?}");
    }
    assert!(matches!(
        txn.commit(),
        Err(CommitError::Storage(StorageError::PreviousIo))
    ));
    drop(db);

    let db = Builder::new().create_with_backend(backend.image()).unwrap();
    let read = db.begin_read().unwrap();
    assert_eq!(read.open_table(T).unwrap().len().unwrap(), ENTRIES);
}
