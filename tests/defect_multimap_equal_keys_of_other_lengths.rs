//! Defect (found by the twenty-sixth session's review of multimap chunks):
//! under a custom key order, keys that compare equal may differ in length,
//! one under `CHUNKED_KEY_LEN` (64 bytes) and one at or above it. The
//! layout was chosen by the spelling's length, so an insert through the
//! short spelling missed a value held in the long one's chunk (stored
//! twice), a remove missed it, and a chunk split under a longer stored
//! spelling failed half-written (values lost, the commit accepted). Fixed:
//! only byte-ordered key types use chunks (`multimap::chunks::chunked`),
//! and every part of a chunk write is checked before the first is made.

mod common;

use common::keys::str_key;
use sluicedb::{Database, MultimapTableDefinition, ReadableMultimapTable, ReadableTableMetadata};

str_key!(
    /// Strings compared without their trailing spaces: "ab" and "ab  " are
    /// one key (a total order).
    TrimEnd,
    "tests::TrimEnd",
    |a, b| a.trim_ascii_end().cmp(b.trim_ascii_end())
);

const T: MultimapTableDefinition<TrimEnd, u64> = MultimapTableDefinition::new("trim");

fn spellings() -> (String, String) {
    let short = "x".repeat(60); // 60 bytes: one engine key per value
    let long = format!("{short}    "); // 64 bytes: chunked, equal to `short`
    (short, long)
}

#[test]
fn insert_through_short_spelling_sees_value_held_in_long_keys_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let (short, long) = spellings();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_multimap_table(T).unwrap();
        assert!(!t.insert(long.as_str(), 1).unwrap());
        assert!(!t.insert(long.as_str(), 2).unwrap()); // joins the chunk of (long, 1)
        // The same key and the same value: already there.
        assert!(
            t.insert(short.as_str(), 2).unwrap(),
            "insert of an existing pair must return true"
        );
        let values: Vec<u64> = t.get(short.as_str()).unwrap().map(|v| v.unwrap().value()).collect();
        assert_eq!(values, vec![1, 2], "a set holds each value once");
        assert_eq!(t.len().unwrap(), 2);
    }
    txn.commit().unwrap();
}

#[test]
fn remove_through_short_spelling_of_value_held_in_a_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let (short, long) = spellings();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_multimap_table(T).unwrap();
        assert!(!t.insert(short.as_str(), 1).unwrap());
        assert!(!t.insert(long.as_str(), 2).unwrap()); // joins the chunk of (short, 1)
        assert!(
            t.remove(short.as_str(), 2).unwrap(),
            "the pair is there: remove must return true"
        );
        let values: Vec<u64> = t.get(long.as_str()).unwrap().map(|v| v.unwrap().value()).collect();
        assert_eq!(values, vec![1]);
        assert_eq!(t.len().unwrap(), 1);
    }
    txn.commit().unwrap();
}

/// Control: the same sequence with both spellings at or above 64 bytes
/// behaves as a set (so the failures above are about the length threshold).
#[test]
fn control_both_spellings_long() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let a = "x".repeat(64);
    let b = format!("{a}  ");
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_multimap_table(T).unwrap();
        assert!(!t.insert(b.as_str(), 1).unwrap());
        assert!(!t.insert(b.as_str(), 2).unwrap());
        assert!(t.insert(a.as_str(), 2).unwrap());
        assert!(t.remove(a.as_str(), 2).unwrap());
        assert_eq!(t.len().unwrap(), 1);
    }
    txn.commit().unwrap();
}

const B: MultimapTableDefinition<TrimEnd, &[u8]> = MultimapTableDefinition::new("trim_bytes");

/// A chunk keeps the key bytes it was stored with; here they are much
/// longer than the (equal) spelling the insert is given. The insert checks
/// only `pair(given key, value)` against the key limit, then a split writes
/// `pair(stored key, value)`, which is over it: the insert fails half way,
/// after the chunk was rewritten with only its first half. The values of
/// the second half are gone, and `len()` no longer matches.
#[test]
fn failed_split_under_longer_stored_spelling_loses_values() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let given = "x".repeat(64);
    let stored = format!("{given}{}", " ".repeat(15_000));
    let mut big = vec![b'c', b'z'];
    big.resize(6000, b'z'); // sorts between "c" and "d"
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_multimap_table(B).unwrap();
        for v in [b"a", b"b", b"c", b"d", b"e"] {
            assert!(!t.insert(stored.as_str(), v.as_slice()).unwrap());
        }
        assert_eq!(t.len().unwrap(), 5);
        let result = t.insert(given.as_str(), big.as_slice());
        // Whatever the answer (an error is fine), the five values stay.
        let values: Vec<Vec<u8>> = t
            .get(given.as_str())
            .unwrap()
            .map(|v| v.unwrap().value().to_vec())
            .collect();
        let small: Vec<&[u8]> = values.iter().map(Vec::as_slice).filter(|v| v.len() == 1).collect();
        assert_eq!(
            small,
            vec![&b"a"[..], b"b", b"c", b"d", b"e"],
            "values lost after insert returned {result:?}"
        );
        assert_eq!(t.len().unwrap(), values.len() as u64, "len() disagrees with get()");
    }
    txn.commit().unwrap();
}

/// The same failed insert does not poison the transaction: its commit
/// succeeds and the lost values are gone for good.
#[test]
fn failed_split_commits_the_loss() {
    use sluicedb::ReadableDatabase;
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let given = "x".repeat(64);
    let stored = format!("{given}{}", " ".repeat(15_000));
    let mut big = vec![b'c', b'z'];
    big.resize(6000, b'z');
    let txn = db.begin_write().unwrap();
    let expected;
    {
        let mut t = txn.open_multimap_table(B).unwrap();
        for v in [b"a", b"b", b"c", b"d", b"e"] {
            t.insert(stored.as_str(), v.as_slice()).unwrap();
        }
        // Refused or stored, the insert must not lose the values there.
        let stored_big = t.insert(given.as_str(), big.as_slice()).is_ok();
        expected = 5 + usize::from(stored_big);
    }
    txn.commit().expect("the commit is accepted");
    let read = db.begin_read().unwrap();
    let t = read.open_multimap_table(B).unwrap();
    let n = t.get(given.as_str()).unwrap().count();
    assert_eq!(
        n,
        expected,
        "committed values after the insert (len() says {})",
        t.len().unwrap()
    );
    assert_eq!(t.len().unwrap(), expected as u64);
}
