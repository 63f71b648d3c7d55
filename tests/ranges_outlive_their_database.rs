//! A range iterator (and a multimap range) kept alive
//! across `Database` drop, while the file is reopened and rewritten by a
//! new `Database`. redb 4.6: "Read transactions that are still alive can
//! no longer access the file, so their reads return
//! StorageError::DatabaseClosed. Data they have already loaded into memory
//! ... may still be returned." Either an error or the old snapshot's data
//! is acceptable; other data is not.
//! (Written by the twenty-third session's review; it found nothing.)

use sluicedb::{Database, MultimapTableDefinition, ReadableDatabase, TableDefinition};

const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");
const M: MultimapTableDefinition<u64, u64> = MultimapTableDefinition::new("m");
const N: u64 = 20_000;

fn old_value(k: u64) -> Vec<u8> {
    vec![(k % 200) as u8; 64]
}

#[test]
fn a_range_alive_across_close_and_reopen_never_yields_other_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for k in 0..N {
            t.insert(k, old_value(k).as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();

    let read = db.begin_read().unwrap();
    let table = read.open_table(T).unwrap();
    let mut range = table.range(0..N).unwrap();
    let (k, v) = range.next().unwrap().unwrap();
    assert_eq!((k.value(), v.value().to_vec()), (0, old_value(0)));
    drop((k, v, table, read));
    drop(db);

    // Another open of the same file rewrites it.
    let db = Database::open(&path).unwrap();
    for round in 0..4u8 {
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(T).unwrap();
            for k in 0..N {
                t.insert(k, vec![0xEE ^ round; 64].as_slice()).unwrap();
            }
        }
        txn.commit().unwrap();
        db.checkpoint().unwrap();
    }
    let txn = db.begin_write().unwrap();
    txn.delete_table(T).unwrap();
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(TableDefinition::<u64, &[u8]>::new("x")).unwrap();
        for k in 0..N {
            t.insert(k + 1_000_000, vec![0x55; 64].as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();

    // The old range: an error, or the old snapshot's entries; never others.
    let mut expect_front = 1u64;
    let mut expect_back = N - 1;
    let mut bad = Vec::new();
    let mut errors = 0;
    for i in 0..2000 {
        let item = if i % 2 == 0 { range.next() } else { range.next_back() };
        match item {
            None => break,
            Some(Err(_)) => {
                errors += 1;
                break;
            }
            Some(Ok((k, v))) => {
                let want = if i % 2 == 0 { expect_front } else { expect_back };
                if k.value() != want || v.value() != old_value(want).as_slice() {
                    bad.push((want, k.value(), v.value().get(..4).map(<[u8]>::to_vec)));
                }
                if i % 2 == 0 {
                    expect_front += 1;
                } else {
                    expect_back -= 1;
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "the range kept alive across close yielded other data ({} wrong of {} read, errors {errors}); first: {:?}",
        bad.len(),
        expect_front - 1 + (N - 1 - expect_back),
        &bad[..bad.len().min(5)]
    );
}

#[test]
fn a_multimap_range_alive_across_close_and_reopen_never_yields_other_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_multimap_table(M).unwrap();
        for k in 0..2_000u64 {
            for v in 0..10u64 {
                t.insert(k, v).unwrap();
            }
        }
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    let read = db.begin_read().unwrap();
    let table = read.open_multimap_table(M).unwrap();
    let mut range = table.range(0..2_000u64).unwrap();
    assert_eq!(range.next().unwrap().unwrap().0.value(), 0);
    drop((table, read));
    drop(db);

    let db = Database::open(&path).unwrap();
    for round in 0..3u64 {
        let txn = db.begin_write().unwrap();
        txn.delete_multimap_table(M).unwrap();
        {
            let mut t = txn.open_multimap_table(M).unwrap();
            for k in 0..2_000u64 {
                for v in 0..10u64 {
                    t.insert(k, 1000 + v + round).unwrap();
                }
            }
        }
        txn.commit().unwrap();
        db.checkpoint().unwrap();
    }
    let mut bad = Vec::new();
    for (next_key, item) in (1..).zip(range) {
        let Ok((k, vs)) = item else { break };
        let vs: Vec<u64> = vs.map(|v| v.unwrap().value()).collect();
        if k.value() != next_key || vs != (0..10).collect::<Vec<_>>() {
            bad.push((next_key, k.value(), vs));
        }
    }
    assert!(
        bad.is_empty(),
        "{} wrong; first: {:?}",
        bad.len(),
        &bad[..bad.len().min(3)]
    );
}
