//! Journal helpers.

use sluicedb::io::CrashLogDir;
use sluicedb::wal::{Journal, JournalOptions};

/// The sequence numbers a reopen of the log in `dir` (journal of database
/// `db`) replays, in order.
pub fn replayed(dir: CrashLogDir, db: u128) -> Vec<u64> {
    let mut seqs = Vec::new();
    let (journal, _) = Journal::open(dir, db, 0, JournalOptions::default(), |seq, _| {
        seqs.push(seq);
        Ok(())
    })
    .unwrap();
    drop(journal);
    seqs
}
