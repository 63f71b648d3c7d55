//! Recovers a WAL whose segment holds arbitrary bytes: the decoder must
//! return records or stop with a reason, never panic, hang or allocate what
//! a length field merely claims; every record it returns must be in
//! sequence; and a journal opened on it must accept appends.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sluicedb::io::CrashLogDir;
use sluicedb::wal::{Journal, JournalOptions};

fuzz_target!(|data: &[u8]| {
    let dir = CrashLogDir::new();
    dir.put_file("00000000000000000001.wal", data.to_vec());
    let mut last = 0;
    let opened = Journal::open(dir, 7, 0, JournalOptions::default(), |seq, _| {
        assert_eq!(seq, last + 1, "records out of sequence");
        last = seq;
        Ok(())
    });
    if let Ok((journal, recovery)) = opened {
        assert_eq!(recovery.last_seq, last);
        let seq = journal.append(b"after recovery").expect("append after recovery");
        assert_eq!(seq, last + 1);
        journal.wait_for_sync(seq).expect("sync after recovery");
    }
});
