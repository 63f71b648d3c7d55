//! Long values read from a memtable (by a range or a `get`) share the memtable's memory
//! instead of being copied (`ValueBytes::shared`). Each must stay intact
//! for as long as its guard lives: after the range, the table and the
//! transaction are gone, after the memtable is flushed into the tree and
//! replaced, and after the database itself is dropped. (That a long value
//! holds its memtable is proved directly by the unit test
//! `long_memtable_values_hold_their_memtable_and_short_ones_are_copies`:
//! freed memory may still read back intact here.)

use sluicedb::{Database, ReadableDatabase, TableDefinition};

const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");
// Enough for arena chunks of a MiB, which the allocator maps and unmaps on
// their own: a value outliving its chunk would fault, not read stale bytes.
const N: u64 = 20_000;

fn value(k: u64, round: u8) -> Vec<u8> {
    (0..100).map(|i| (k as u8).wrapping_mul(31) ^ i ^ round).collect()
}

fn write_round(db: &Database, round: u8) {
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for k in 0..N {
            t.insert(k, value(k, round).as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
}

/// Flushes the memtable round 0 left, writes over every key and flushes
/// again (the memtable is then in no state), drops the database, and takes
/// and overwrites memory freed meanwhile; the caller keeps what this returns
/// until it has checked its values.
fn retire_and_scribble(db: Database) -> Vec<Vec<u8>> {
    db.checkpoint().unwrap();
    write_round(&db, 1);
    db.checkpoint().unwrap();
    drop(db);
    (0..64).map(|_| vec![0xAB; 1 << 20]).collect()
}

#[test]
fn memtable_values_outlive_their_range_its_flush_and_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    write_round(&db, 0);

    let read = db.begin_read().unwrap();
    let table = read.open_table(T).unwrap();
    // Both ends, so both directions' sources hand values out.
    let mut guards = Vec::new();
    let mut range = table.range(0..N).unwrap();
    for _ in 0..N / 4 {
        guards.push(range.next().unwrap().unwrap());
        guards.push(range.next_back().unwrap().unwrap());
    }
    drop(range);
    drop((table, read));

    let scribbles = retire_and_scribble(db);
    assert_eq!(guards.len() as u64, N / 2);
    for (k, v) in &guards {
        assert_eq!(v.value(), value(k.value(), 0).as_slice(), "key {}", k.value());
    }
    drop(scribbles);
}

#[test]
fn memtable_values_from_gets_outlive_their_flush_and_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    write_round(&db, 0);

    let read = db.begin_read().unwrap();
    let table = read.open_table(T).unwrap();
    let gets: Vec<_> = (0..N).map(|k| (k, table.get(k).unwrap().unwrap())).collect();
    drop((table, read));

    let scribbles = retire_and_scribble(db);
    assert_eq!(gets.len() as u64, N);
    for (k, v) in &gets {
        assert_eq!(v.value(), value(*k, 0).as_slice(), "key {k}");
    }
    drop(scribbles);
}
