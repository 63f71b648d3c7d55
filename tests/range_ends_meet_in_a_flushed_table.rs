//! A range over a table the tree alone holds (flushed, nothing in a
//! memtable) passes the tree's entries straight through while it is read
//! from one end; once the other end is read too, the two must still meet
//! without yielding an entry twice or skipping one, whichever end went
//! first and however they alternate.

use sluicedb::{Database, ReadableDatabase, TableDefinition};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");
const N: u64 = 300;

fn flushed_table() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for k in 0..N {
            t.insert(k, k * 10).unwrap();
        }
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    (dir, db)
}

/// Reads `range` following `ends` (true: the front), then drains it from
/// the front, and checks every entry came exactly once, in order from
/// each end.
fn check(db: &Database, lower: u64, upper: u64, ends: &[bool]) {
    let txn = db.begin_read().unwrap();
    let t = txn.open_table(T).unwrap();
    let mut range = t.range(lower..upper).unwrap();
    let mut front = Vec::new();
    let mut back = Vec::new();
    for &from_front in ends {
        let entry = if from_front { range.next() } else { range.next_back() };
        let Some(entry) = entry else { break };
        let (k, v) = entry.unwrap();
        assert_eq!(v.value(), k.value() * 10);
        if from_front {
            front.push(k.value());
        } else {
            back.push(k.value());
        }
    }
    front.extend(range.map(|entry| entry.unwrap().0.value()));
    back.reverse();
    front.extend(back);
    let expected: Vec<u64> = (lower..upper.min(N)).collect();
    if front != expected {
        let pattern: String = ends.iter().map(|&f| if f { 'F' } else { 'B' }).collect();
        panic!("over {lower}..{upper}, read {pattern} then the front: got {front:?}");
    }
}

#[test]
fn the_ends_of_a_range_over_the_tree_alone_meet_exactly() {
    let (_dir, db) = flushed_table();
    for (lower, upper) in [(0, N), (17, 40), (100, 101), (250, N + 5)] {
        let len = (upper.min(N) - lower) as usize;
        for split in [0, 1, 5, len / 2, len.saturating_sub(1), len, len + 3] {
            // Front first, then the back.
            let mut ends = vec![true; split];
            ends.extend(vec![false; len + 2]);
            check(&db, lower, upper, &ends);
            // Back first, then the front.
            let mut ends = vec![false; split];
            ends.extend(vec![true; len + 2]);
            check(&db, lower, upper, &ends);
        }
        // Alternating, from either end first.
        check(&db, lower, upper, &(0..len + 2).map(|i| i % 2 == 0).collect::<Vec<_>>());
        check(&db, lower, upper, &(0..len + 2).map(|i| i % 2 == 1).collect::<Vec<_>>());
        // A few from the front, one from the back, the rest from the front.
        let mut ends = vec![true; 3];
        ends.push(false);
        check(&db, lower, upper, &ends);
    }
}
