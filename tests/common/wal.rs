//! Journal helpers.

use sluicedb::io::{CrashLogDir, LogDir};
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

/// The WAL segment files in `dir`, in sequence order (their names sort so).
#[allow(dead_code)] // Not every test binary that includes `common` uses it.
pub fn segment_files(dir: &CrashLogDir) -> Vec<String> {
    let mut names: Vec<String> = dir
        .list()
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".wal"))
        .collect();
    names.sort();
    names
}
