//! Dropping a database calls its backend's `close` exactly once, whichever
//! of the shutdown's writes, syncs or length changes fails, and the drop
//! never panics (redb's `close_called_exactly_once_on_shutdown_io_error`,
//! with shutdown work to do: a `Durability::None` commit that only the
//! drop's checkpoint writes into a backend without a WAL directory).

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use sluicedb::backends::InMemoryBackend;
use sluicedb::{Builder, Durability, StorageBackend, TableDefinition};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");

#[derive(Debug, Default)]
struct Counters {
    /// Writes, syncs and length changes so far.
    ops: AtomicU64,
    /// The op that brings this to zero fails (`i64::MAX`: none does).
    countdown: AtomicI64,
    closes: AtomicU64,
}

#[derive(Debug)]
struct FaultBackend {
    inner: InMemoryBackend,
    counters: Arc<Counters>,
}

impl FaultBackend {
    fn fault(&self) -> io::Result<()> {
        self.counters.ops.fetch_add(1, Ordering::SeqCst);
        if self.counters.countdown.fetch_sub(1, Ordering::SeqCst) == 1 {
            return Err(io::Error::other("injected shutdown failure"));
        }
        Ok(())
    }
}

impl StorageBackend for FaultBackend {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.fault()?;
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.fault()?;
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.fault()?;
        self.inner.write(offset, data)
    }

    fn close(&self) -> io::Result<()> {
        self.counters.closes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Drops a database with a non-durable commit pending after the backend's
/// `fail_at`th shutdown op fails (`None`: none fails); the shutdown's ops and
/// the `close` calls.
fn shut_down(fail_at: Option<u64>) -> (u64, u64) {
    let counters = Arc::new(Counters {
        countdown: AtomicI64::new(i64::MAX),
        ..Counters::default()
    });
    let backend = FaultBackend {
        inner: InMemoryBackend::new(),
        counters: counters.clone(),
    };
    let db = Builder::new().create_with_backend(backend).unwrap();
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(Durability::None).unwrap();
    txn.open_table(T).unwrap().insert(0, 0).unwrap();
    txn.commit().unwrap();
    counters.ops.store(0, Ordering::SeqCst);
    if let Some(at) = fail_at {
        counters
            .countdown
            .store(i64::try_from(at).unwrap() + 1, Ordering::SeqCst);
    }
    catch_unwind(AssertUnwindSafe(|| drop(db))).unwrap_or_else(|_| panic!("fail_at={fail_at:?}: the drop panicked"));
    (
        counters.ops.load(Ordering::SeqCst),
        counters.closes.load(Ordering::SeqCst),
    )
}

#[test]
fn close_is_called_exactly_once_whichever_shutdown_op_fails() {
    let (ops, closes) = shut_down(None);
    assert!(ops >= 2, "the drop's checkpoint writes and syncs: {ops} ops");
    assert_eq!(closes, 1);
    for fail_at in 0..ops {
        let (_, closes) = shut_down(Some(fail_at));
        assert_eq!(closes, 1, "fail_at={fail_at}");
    }
}
