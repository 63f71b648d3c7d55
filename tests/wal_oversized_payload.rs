//! A record too large for the WAL's length field fails that one append with
//! a clear error and leaves the journal fully usable: not failed, no
//! sequence number consumed, later records durable and recovered.

use sluicedb::StorageError;
use sluicedb::io::CrashLogDir;
use sluicedb::wal::{Journal, JournalOptions};

const DB: u128 = 11;

#[test]
fn an_oversized_payload_fails_alone_and_the_journal_carries_on() {
    assert_eq!(
        Journal::MAX_PAYLOAD,
        u32::MAX as usize,
        "the record length field is a u32"
    );
    let dir = CrashLogDir::new();
    let (journal, _) = Journal::open(dir.clone(), DB, 0, JournalOptions::default(), |_, _| Ok(())).unwrap();
    let first = journal.append(b"before").unwrap();
    journal.wait_for_sync(first).unwrap();

    // Zeroed allocations are mapped lazily: the append must refuse it by its
    // length, without reading (or copying) the 4 GiB.
    let huge = vec![0u8; Journal::MAX_PAYLOAD + 1];
    let err = journal.append(&huge).expect_err("an oversized record is refused");
    drop(huge);
    assert!(
        matches!(err, StorageError::ValueTooLarge(n) if n == Journal::MAX_PAYLOAD + 1),
        "{err}"
    );
    assert!(
        journal.failure().is_none(),
        "refusing a record must not fail the journal"
    );
    assert_eq!(journal.last_seq(), first, "no sequence number consumed");

    let next = journal.append(b"after").unwrap();
    assert_eq!(next, first + 1, "the sequence continues without a hole");
    journal.wait_for_sync(next).unwrap();
    drop(journal);

    let mut replayed = Vec::new();
    let (_, recovery) = Journal::open(dir, DB, 0, JournalOptions::default(), |seq, p| {
        replayed.push((seq, p.to_vec()));
        Ok(())
    })
    .unwrap();
    assert_eq!(replayed, vec![(1, b"before".to_vec()), (2, b"after".to_vec())]);
    assert_eq!(recovery.last_seq, 2);
}
