//! The metrics `stats()` reports: fsync latency quantiles bounded by the
//! slowest sync, WAL bytes on disk, flush and checkpoint counts with their
//! time, stalls with theirs, and the recovery report at open.

use std::time::Duration;

use sluicedb::{Database, Durability, TableDefinition};

const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");

#[test]
fn metrics_follow_the_work_done() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::builder()
        .set_memtable_size(32 << 10)
        .set_max_frozen_bytes(64 << 10)
        .create(&path)
        .unwrap();
    let fresh = db.stats();
    assert_eq!((fresh.fsync_p50_us, fresh.fsync_p99_us, fresh.fsync_max_us), (0, 0, 0));
    assert_eq!(fresh.flush_time, Duration::ZERO);
    let value = vec![7u8; 1000];
    for i in 0..400u64 {
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(if i % 4 == 0 {
            Durability::Immediate
        } else {
            Durability::None
        })
        .unwrap();
        txn.open_table(T).unwrap().insert(i, value.as_slice()).unwrap();
        txn.commit().unwrap();
    }
    db.checkpoint().unwrap();
    let s = db.stats();
    assert!(s.fsyncs > 0);
    assert!(s.fsync_max_us > 0, "{s:?}");
    assert!(
        s.fsync_p50_us <= s.fsync_p99_us && s.fsync_p99_us <= s.fsync_max_us,
        "{s:?}"
    );
    assert!(s.flushes > 0 && s.flush_time > Duration::ZERO, "{s:?}");
    assert!(s.checkpoints > 0 && s.checkpoint_time > Duration::ZERO, "{s:?}");
    assert_eq!(s.stalls > 0, s.stall_time > Duration::ZERO, "{s:?}");
    assert_eq!(s.slowdowns > 0, s.slowdown_time > Duration::ZERO, "{s:?}");
    assert!(s.wal_segments >= 1);
    assert!(s.wal_disk_bytes > 0 && s.wal_allocated_bytes > 0, "{s:?}");
    assert_eq!(s.wal_queue_depth, 0, "a checkpoint drains the queue");
    drop(db);
    let db = Database::open(&path).unwrap();
    assert_eq!(db.stats().recovery.replayed_records, 0, "everything was checkpointed");
}
