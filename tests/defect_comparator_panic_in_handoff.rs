//! The same defect as `defect_comparator_panic_in_commit.rs`, for a commit
//! big enough to be inserted by the inserter thread (`engine::pending`):
//! there the panic happens on another thread, while the commit waits for the
//! insert (after its WAL record may already be durable).
//!
//! Required: the database is poisoned as soon as the insert fails, so every
//! later operation fails and nothing of the partly inserted memtable is
//! ever flushed or shown; if the commit was acknowledged it is durable, and
//! reopening with a sane comparator recovers it whole.

mod common;

use common::bomb::{check_recovered, commit_with_bomb, disarm, images, with_resolver};
use common::engine::{Disk, small_options};
use sluicedb::engine::EngineOptions;

fn options() -> EngineOptions {
    with_resolver(small_options())
}

#[test]
fn a_comparator_panicking_in_the_inserter_poisons_and_reopen_recovers_the_whole_commit() {
    let disk = Disk::new();
    let db = disk.open(options());
    // The doomed commit: keys 100..300, the bomb at 200: the keys before it
    // go into the memtable before its insert compares against it.
    let outcome = commit_with_bomb(&db, 100..300, 200);
    // The inserter meets the bomb on its own thread; wait until it has
    // (the engine then refuses new writers), at most a few seconds.
    let mut later = Ok(());
    for _ in 0..500 {
        later = db.begin_write().map(drop);
        if later.is_err() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    disarm();
    let acknowledged = matches!(outcome, Ok(Ok(())));
    assert!(later.is_err(), "the database carried on after the inserter failed");
    assert!(db.begin_read().is_err(), "a reader got in after the inserter failed");
    assert!(db.checkpoint().is_err());

    drop(db);
    for (name, image) in images(&disk) {
        let db = image.open(options());
        // Acknowledged, it is durable; a plain reopen has it anyway.
        check_recovered(&db, name, 100..300, acknowledged || name == "reopen");
    }
}
