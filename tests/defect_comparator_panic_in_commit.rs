//! Suspected defect: a user comparator that panics inside `apply_batch`
//! (after the commit's WAL record was appended) leaves the active memtable
//! partly applied; a later commit then publishes that partial transaction.
//!
//! Required: the commit fails (an error, or the panic reaches its caller),
//! the database is poisoned so that nothing of the partial commit is ever
//! shown, and reopening with a sane comparator recovers the whole commit.

mod common;

use common::bomb::{check_recovered, commit_with_bomb, disarm, images, k, keys_in, touchy, with_resolver};
use common::engine::{Disk, small_options};
use sluicedb::engine::EngineOptions;

fn options() -> EngineOptions {
    with_resolver(small_options())
}

#[test]
fn a_comparator_panicking_mid_commit_poisons_and_reopen_recovers_the_whole_commit() {
    let disk = Disk::new();
    let db = disk.open(options());
    // The doomed commit: keys 100..130, the bomb at 115: the keys before it
    // go into the memtable before its insert compares against it.
    let outcome = commit_with_bomb(&db, 100..130, 115);
    disarm();
    match &outcome {
        Ok(Ok(())) => panic!("the commit succeeded although its comparator panicked"),
        Ok(Err(e)) => eprintln!("the commit failed: {e}"),
        Err(_) => eprintln!("the commit panicked"),
    }

    // Every later operation fails: no later commit may publish the partly
    // applied memtable, and no reader may see it.
    let later = db.begin_write().and_then(|mut w| {
        let t = w.open_table(b"t", b"touchy", touchy)?;
        w.insert(t, &k(1000), b"later")?;
        w.commit()
    });
    let read = db.begin_read().map(|_| keys_in(&db, 100, 130));
    assert!(
        later.is_err() && read.is_err(),
        "the database carried on after a commit failed half applied: a later commit {}, \
         and a reader saw {:?} of the failed commit's 30 keys",
        if later.is_ok() { "succeeded" } else { "failed" },
        read.as_ref().map(Vec::len)
    );
    assert!(db.checkpoint().is_err());

    // Reopen: the commit's record is in the WAL, whole.
    drop(db);
    for (name, image) in images(&disk) {
        let db = image.open(options());
        assert!(
            keys_in(&db, 1000, 1001).is_empty(),
            "{name}: a refused commit is visible"
        );
        // Dropping the engine drained the journal: a plain reopen has it.
        check_recovered(&db, name, 100..130, name == "reopen");
    }
}
