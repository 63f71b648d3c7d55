//! A flush rewrites the leaves its memtable touches. A reader that began
//! before it still reads the old leaves: they must stay in the page cache
//! for as long as such a reader lives (read back from the file under the
//! cache's locks, beside the flush's own inserts, they cut two threads'
//! point reads to a tenth for a quarter of a second after each flush), and
//! leave it once no reader reaches them (else the cache holds both
//! generations of every rewritten leaf).

use sluicedb::{Database, Durability, ReadableDatabase, TableDefinition};

const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");
const KEYS: u64 = 20_000;

fn write_all(db: &Database, fill: u8) {
    let value = [fill; 100];
    for batch in 0..KEYS / 1000 {
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(Durability::Immediate).unwrap();
        {
            let mut table = txn.open_table(T).unwrap();
            for k in batch * 1000..(batch + 1) * 1000 {
                table.insert(k, value.as_slice()).unwrap();
            }
        }
        txn.commit().unwrap();
    }
}

#[test]
fn a_reader_from_before_a_flush_reads_the_old_leaves_from_the_cache_until_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder()
        .set_cache_size(256 << 20)
        .create(dir.path().join("db"))
        .unwrap();
    write_all(&db, 1);
    db.checkpoint().unwrap();

    let reader = db.begin_read().unwrap();
    let table = reader.open_table(T).unwrap();
    let read_every_key = |fill: u8| {
        for k in 0..KEYS {
            assert_eq!(table.get(k).unwrap().unwrap().value(), [fill; 100].as_slice());
        }
    };
    read_every_key(1);
    let one_generation = db.cache_stats().used_bytes();

    // Every leaf rewritten while the reader lives.
    write_all(&db, 2);
    db.checkpoint().unwrap();
    let before = db.cache_stats();
    read_every_key(1);
    let after = db.cache_stats();
    assert_eq!(
        after.read_misses() - before.read_misses(),
        0,
        "the old leaves the reader still reads were dropped from the cache"
    );
    let both_generations = after.used_bytes();
    assert!(
        both_generations > one_generation + one_generation / 2,
        "the flush rewrote every leaf: {both_generations} bytes cached against {one_generation} before"
    );

    // Once the reader is gone, the next commit's reclaim drops them.
    drop(table);
    drop(reader);
    write_all(&db, 3);
    db.checkpoint().unwrap();
    let settled = db.cache_stats().used_bytes();
    assert!(
        settled < both_generations - one_generation / 2,
        "the old leaves stayed cached after their last reader: {settled} bytes against {both_generations}"
    );
    let reader = db.begin_read().unwrap();
    let table = reader.open_table(T).unwrap();
    for k in 0..KEYS {
        assert_eq!(table.get(k).unwrap().unwrap().value(), [3u8; 100].as_slice());
    }
}
