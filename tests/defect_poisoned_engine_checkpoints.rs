//! Found while testing the comparator-panic fix (still open on main): a
//! poisoned engine's apply thread keeps running its timed checkpoints. After
//! a comparator panicked halfway through a commit's memtable insert (the
//! engine is poisoned, every operation refused), the next timed step freezes
//! the partly applied active memtable, flushes it (its `max_seq` already
//! counts the failed commit) and checkpoints at that sequence, so the WAL
//! record that would replay the commit whole is skipped or deleted. Reopen
//! then shows the partial transaction forever.
//!
//! Required: once poisoned, nothing more is made durable from memory; the
//! reopened database holds the failed commit whole or not at all.

mod common;

use std::time::Duration;

use common::bomb::{commit_with_bomb, disarm, keys_in, with_resolver};
use common::engine::{Disk, small_options};
use sluicedb::engine::EngineOptions;

/// Frequent time-based checkpoints, so the apply thread gets every chance to
/// flush and checkpoint the partial memtable after the failure.
fn options() -> EngineOptions {
    with_resolver(EngineOptions {
        checkpoint_interval: Duration::from_millis(20),
        ..small_options()
    })
}

#[test]
fn a_poisoned_engine_never_checkpoints_a_partly_applied_commit() {
    let disk = Disk::new();
    let db = disk.open(options());
    // The doomed commit: keys 100..130, the bomb at 115: the keys before it
    // go into the memtable before its insert compares against it.
    let outcome = commit_with_bomb(&db, 100..130, 115);
    disarm();
    assert!(!matches!(outcome, Ok(Ok(()))), "the commit succeeded");
    assert!(db.begin_read().is_err(), "the engine is not poisoned");

    // Give the apply thread a few timed steps (this waits, it asserts no
    // speed: a correct engine takes no checkpoint at all here).
    let before = db.stats().checkpoints;
    for _ in 0..100 {
        if db.stats().checkpoints > before {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let after = db.stats().checkpoints;
    drop(db);

    let db = disk.open(options());
    db.check_integrity().unwrap();
    assert_eq!(keys_in(&db, 0, 50).len(), 50);
    let doomed = keys_in(&db, 100, 130);
    assert!(
        doomed.is_empty() || doomed == (100..130).collect::<Vec<_>>(),
        "the failed commit is partly visible after reopen ({} checkpoints after the poison): {doomed:?}",
        after - before
    );
}
