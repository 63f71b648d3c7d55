//! The memtable's seek index under the public API: enough single-key
//! commits for the background thread to build (and, after runs it cannot
//! serve, rebuild) the index while writes and reads go on, in the patterns
//! that stress it: random keys, ascending runs past the last indexed key,
//! two streams appended in turn, and one hot key rewritten many times; in a
//! byte-ordered table and in one of a user-defined order. Ranges from both
//! ends, point reads and an old snapshot are checked against a model as
//! the memtable grows.

mod common;

use std::collections::BTreeMap;

use common::keys::Reversed;
use common::mix;
use sluicedb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

const NUMBERS: TableDefinition<u64, u64> = TableDefinition::new("numbers");
const WORDS: TableDefinition<Reversed, u64> = TableDefinition::new("words");

fn word(n: u64) -> String {
    format!("w{n:012}")
}

/// The `i`th key written: random, then ascending runs, then two
/// interleaved ascending streams, then one hot key, in turn.
fn key_of(i: u64) -> u64 {
    match (i / 2000) % 4 {
        0 => mix(i) % 1_000_000_000,
        1 => 2_000_000_000 + i,
        2 if i.is_multiple_of(2) => 3_000_000_000 + i,
        2 => 4_000_000_000 + i,
        _ => 5_000_000_000,
    }
}

fn check(db: &Database, numbers: &BTreeMap<u64, u64>, words: &BTreeMap<String, u64>, round: u64) {
    let read = db.begin_read().unwrap();
    let table = read.open_table(NUMBERS).unwrap();
    for probe in 0..40 {
        let from = key_of(mix(round * 1000 + probe) % (round * 2000 + 1));
        let forward: Vec<(u64, u64)> = table
            .range(from..)
            .unwrap()
            .take(12)
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.value(), v.value())
            })
            .collect();
        let want: Vec<(u64, u64)> = numbers.range(from..).take(12).map(|(k, v)| (*k, *v)).collect();
        assert_eq!(forward, want, "forward from {from}, round {round}");
        let backward: Vec<u64> = table
            .range(..=from)
            .unwrap()
            .rev()
            .take(12)
            .map(|e| e.unwrap().0.value())
            .collect();
        let want: Vec<u64> = numbers.range(..=from).rev().take(12).map(|(k, _)| *k).collect();
        assert_eq!(backward, want, "backward from {from}, round {round}");
        assert_eq!(table.get(from).unwrap().map(|v| v.value()), numbers.get(&from).copied());
    }
    let table = read.open_table(WORDS).unwrap();
    for probe in 0..40 {
        let from = word(key_of(mix(round * 1000 + probe + 500) % (round * 2000 + 1)));
        // Reversed order: the range from a word goes to smaller words.
        let forward: Vec<String> = table
            .range(from.as_str()..)
            .unwrap()
            .take(12)
            .map(|e| e.unwrap().0.value().to_string())
            .collect();
        let want: Vec<String> = words
            .range(..=from.clone())
            .rev()
            .take(12)
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(forward, want, "words from {from}, round {round}");
        assert_eq!(
            table.get(from.as_str()).unwrap().map(|v| v.value()),
            words.get(&from).copied()
        );
    }
}

#[test]
fn ranges_and_reads_match_a_model_while_the_seek_index_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let (mut numbers, mut words) = (BTreeMap::new(), BTreeMap::new());
    let mut snapshot = None;
    let rounds = 12u64;
    for i in 0..rounds * 2000 {
        let key = key_of(i);
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(Durability::None).unwrap();
        txn.open_table(NUMBERS).unwrap().insert(key, i).unwrap();
        txn.open_table(WORDS).unwrap().insert(word(key).as_str(), i).unwrap();
        txn.commit().unwrap();
        numbers.insert(key, i);
        words.insert(word(key), i);
        if i == 7000 {
            // A reader pinned here (the hot key rewritten 1000 times so
            // far) must keep seeing exactly this, however many versions
            // and index builds come after it.
            snapshot = Some((db.begin_read().unwrap(), numbers.clone()));
        }
        if (i + 1).is_multiple_of(2000) {
            check(&db, &numbers, &words, (i + 1) / 2000);
        }
    }
    let (read, then) = snapshot.unwrap();
    let table = read.open_table(NUMBERS).unwrap();
    let seen: Vec<(u64, u64)> = table
        .iter()
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.value(), v.value())
        })
        .collect();
    assert_eq!(seen, then.into_iter().collect::<Vec<_>>());
    let read = db.begin_read().unwrap();
    let all: Vec<u64> = read
        .open_table(NUMBERS)
        .unwrap()
        .iter()
        .unwrap()
        .map(|e| e.unwrap().0.value())
        .collect();
    assert_eq!(all, numbers.keys().copied().collect::<Vec<_>>());
    let all: Vec<String> = read
        .open_table(WORDS)
        .unwrap()
        .iter()
        .unwrap()
        .map(|e| e.unwrap().0.value().to_string())
        .collect();
    assert_eq!(all, words.keys().rev().cloned().collect::<Vec<_>>());
}
