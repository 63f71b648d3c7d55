//! A full scan of a table larger than the page cache must not turn the
//! cache over. A scan reads each leaf once on its way through; queued for
//! eviction last, as any page, those leaves evicted everything point reads
//! had cached, and a second scan found none of the first one's either (at
//! 10M keys beside a 1 GiB cache, every scan read all 313K leaves from the
//! file). The leaves a cursor steps into are queued first instead
//! (`PageCache::insert_cold`): they turn over among themselves.

use sluicedb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");
/// About 600 leaves of 4 KiB, against a cache of 64 pages.
const KEYS: u64 = 20_000;
const CACHE_PAGES: usize = 64;

#[test]
fn a_full_scan_keeps_the_pages_point_reads_cached() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder()
        .set_cache_size(CACHE_PAGES * 4096)
        .create(dir.path().join("db"))
        .unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(T).unwrap();
        for k in 0..KEYS {
            table.insert(k, [k as u8; 100].as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
    // Everything in the tree: the reads below are page reads.
    db.checkpoint().unwrap();

    let reader = db.begin_read().unwrap();
    let table = reader.open_table(T).unwrap();
    // Twenty keys far apart: twenty leaves, read twice so that the second
    // time shows they are cached.
    let hot: Vec<u64> = (0..20).map(|i| i * (KEYS / 20)).collect();
    let read_hot = || {
        for &k in &hot {
            assert_eq!(table.get(k).unwrap().unwrap().value(), [k as u8; 100].as_slice());
        }
    };
    read_hot();
    let before = db.cache_stats();
    read_hot();
    assert_eq!(
        db.cache_stats().read_misses(),
        before.read_misses(),
        "the hot leaves are not cached"
    );

    let scan = || {
        let mut n = 0;
        for entry in table.iter().unwrap() {
            let (k, v) = entry.unwrap();
            assert_eq!(k.value(), n);
            assert_eq!(v.value(), [n as u8; 100].as_slice());
            n += 1;
        }
        assert_eq!(n, KEYS);
    };
    let before_scan = db.cache_stats();
    scan();
    let after_scan = db.cache_stats();
    assert!(
        after_scan.read_misses() - before_scan.read_misses() > 400,
        "the scan did not read past the cache ({} misses): the test no longer tests a table larger than it",
        after_scan.read_misses() - before_scan.read_misses()
    );
    assert!(
        after_scan.used_bytes() <= CACHE_PAGES * 4096,
        "the cache outgrew its size"
    );

    read_hot();
    assert_eq!(
        db.cache_stats().read_misses(),
        after_scan.read_misses(),
        "the scan evicted the leaves point reads had cached"
    );
    // A second scan finds what the cache held (the hot leaves at least).
    scan();
    let second = db.cache_stats();
    assert!(
        second.read_hits() - after_scan.read_hits() >= hot.len() as u64,
        "a second scan found none of the cached leaves"
    );
}
