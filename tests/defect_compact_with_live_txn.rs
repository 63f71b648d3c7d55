//! `Database::compact` while a transaction is live: it must refuse with
//! `CompactionError::TransactionInProgress` (as redb does), not wait for the
//! writer slot its own thread holds. Each call runs on a helper thread with a
//! hang guard, so a regression fails the test instead of hanging CI.

use std::sync::mpsc;
use std::time::Duration;

use sluicedb::{CompactionError, Database, ReadableDatabase, TableDefinition};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");

/// Generous: a hang guard, not a timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// Runs `f` on a helper thread; panics if it does not finish in time.
fn guarded<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(HANG_GUARD) {
        Ok(r) => r,
        Err(_) => panic!("{what}: no answer within {HANG_GUARD:?} (deadlock?)"),
    }
}

fn filled(dir: &tempfile::TempDir) -> Database {
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for i in 0..100 {
            t.insert(i, i).unwrap();
        }
    }
    txn.commit().unwrap();
    db
}

#[test]
fn compact_refuses_while_this_thread_holds_a_write_transaction() {
    let outcome = guarded("compact with a live writer", || {
        let dir = tempfile::tempdir().unwrap();
        let mut db = filled(&dir);
        let txn = db.begin_write().unwrap();
        txn.open_table(T).unwrap().insert(1000, 1).unwrap();
        let refused = matches!(db.compact(), Err(CompactionError::TransactionInProgress));
        // The transaction is intact and commits; afterwards compaction runs.
        txn.commit().unwrap();
        let after = db.compact().map(|_| ()).map_err(|e| e.to_string());
        let read = db.begin_read().unwrap();
        let value = read.open_table(T).unwrap().get(1000).unwrap().map(|g| g.value());
        (refused, after, value)
    });
    assert_eq!(outcome, (true, Ok(()), Some(1)));
}

#[test]
fn compact_runs_once_transactions_end() {
    let outcome = guarded("compact after abort", || {
        let dir = tempfile::tempdir().unwrap();
        let mut db = filled(&dir);
        let txn = db.begin_write().unwrap();
        txn.abort().unwrap();
        let dropped = db.begin_write().unwrap();
        drop(dropped);
        db.compact().map(|_| ()).map_err(|e| e.to_string())
    });
    assert_eq!(outcome, Ok(()));
}

#[test]
fn compact_refuses_while_a_read_transaction_or_its_table_lives() {
    let outcome = guarded("compact with a live reader", || {
        let dir = tempfile::tempdir().unwrap();
        let mut db = filled(&dir);
        let read = db.begin_read().unwrap();
        let with_txn = matches!(db.compact(), Err(CompactionError::TransactionInProgress));
        // A table keeps its transaction's snapshot alive (redb: it holds the
        // transaction's guard), so it still counts once the handle is gone.
        let table = read.open_table(T).unwrap();
        drop(read);
        let with_table = matches!(db.compact(), Err(CompactionError::TransactionInProgress));
        let still_readable = table.get(5).unwrap().map(|g| g.value());
        drop(table);
        let after = db.compact().map(|_| ()).map_err(|e| e.to_string());
        (with_txn, with_table, still_readable, after)
    });
    assert_eq!(outcome, (true, true, Some(5), Ok(())));
}

/// The class: any mix of live write transactions, read transactions and
/// read-only tables that outlive their transaction. Against a model that
/// counts what is live, `compact` refuses exactly when something is.
mod class {
    use super::*;
    use proptest::prelude::*;
    use sluicedb::{ReadOnlyTable, ReadTransaction, WriteTransaction};

    #[derive(Clone, Debug)]
    enum Op {
        BeginRead,
        /// Opens a table from the read transaction at this index (mod len).
        OpenTable(usize),
        DropRead(usize),
        DropTable(usize),
        /// Begins the writer if none is live (a second would wait for it).
        BeginWrite,
        Commit,
        Abort,
        DropWrite,
        Compact,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::BeginRead),
            any::<usize>().prop_map(Op::OpenTable),
            any::<usize>().prop_map(Op::DropRead),
            any::<usize>().prop_map(Op::DropTable),
            Just(Op::BeginWrite),
            Just(Op::Commit),
            Just(Op::Abort),
            Just(Op::DropWrite),
            Just(Op::Compact),
            Just(Op::Compact),
        ]
    }

    /// Runs the ops; returns a description of the first disagreement.
    fn run(ops: Vec<Op>) -> Result<(), String> {
        let dir = tempfile::tempdir().unwrap();
        let mut db = filled(&dir);
        let mut reads: Vec<ReadTransaction> = Vec::new();
        let mut tables: Vec<ReadOnlyTable<u64, u64>> = Vec::new();
        let mut write: Option<WriteTransaction> = None;
        for (step, op) in ops.into_iter().enumerate() {
            match op {
                Op::BeginRead => reads.push(db.begin_read().unwrap()),
                Op::OpenTable(i) if !reads.is_empty() => {
                    tables.push(reads[i % reads.len()].open_table(T).unwrap());
                }
                Op::DropRead(i) if !reads.is_empty() => drop(reads.remove(i % reads.len())),
                Op::DropTable(i) if !tables.is_empty() => drop(tables.remove(i % tables.len())),
                Op::BeginWrite if write.is_none() => write = Some(db.begin_write().unwrap()),
                Op::Commit => {
                    if let Some(w) = write.take() {
                        w.commit().unwrap();
                    }
                }
                Op::Abort => {
                    if let Some(w) = write.take() {
                        w.abort().unwrap();
                    }
                }
                Op::DropWrite => drop(write.take()),
                Op::Compact => {
                    let live = !reads.is_empty() || !tables.is_empty() || write.is_some();
                    match (live, db.compact()) {
                        (true, Err(CompactionError::TransactionInProgress)) | (false, Ok(_)) => {}
                        (live, got) => return Err(format!("step {step}: live={live}, compact gave {got:?}")),
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        #[test]
        fn compact_refuses_exactly_while_something_is_live(ops in proptest::collection::vec(op(), 1..24)) {
            let outcome = guarded("compact model", move || run(ops));
            prop_assert_eq!(outcome, Ok(()));
        }
    }
}
