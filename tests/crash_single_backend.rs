//! A database in one redb-shaped backend (`Builder::create_with_backend`:
//! the WAL in memory, durability from the backend alone) under the crash
//! model: the power is cut after every backend operation of a run of
//! commits of both durabilities, and each image a crash can leave (unsynced
//! operations lost, kept, or torn at random) must open to a prefix of the
//! commit order holding every durable commit that returned.
//!
//! Every `Durability::Immediate` commit there goes through the tree and is
//! published once the backend holds it (`design/pipeline.md`, "Tree
//! commits"); a `Durability::None` one reaches the backend with the next
//! durable commit, or not at all.

mod common;

use std::sync::Arc;

use common::Crashing;
use sluicedb::io::{CrashBackend, TearMode};
use sluicedb::{Builder, Database, Durability, ReadableDatabase, ReadableTableMetadata, TableDefinition};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");

fn open(backend: &Arc<CrashBackend>) -> Result<Database, sluicedb::DatabaseError> {
    Builder::new().create_with_backend(Crashing(backend.clone()))
}

/// Commit `i` writes keys `10 * i .. 10 * i + 10`; every third is
/// `Durability::None`.
const COMMITS: u64 = 8;

fn durability(i: u64) -> Durability {
    if i % 3 == 1 {
        Durability::None
    } else {
        Durability::Immediate
    }
}

/// Runs the commits until one fails; the durable ones that returned.
fn run(db: &Database) -> Vec<u64> {
    let mut acknowledged = Vec::new();
    for i in 0..COMMITS {
        let Ok(mut txn) = db.begin_write() else { break };
        txn.set_durability(durability(i)).unwrap();
        let written = txn.open_table(T).and_then(|mut t| {
            for k in 10 * i..10 * i + 10 {
                t.insert(k, i)?;
            }
            Ok(())
        });
        if written.is_err() || txn.commit().is_err() {
            break;
        }
        if durability(i) == Durability::Immediate {
            acknowledged.push(i);
        }
    }
    acknowledged
}

/// The commits `image` holds, checked to be whole and a prefix.
fn recovered(image: Vec<u8>, case: &str) -> u64 {
    let db = open(&Arc::new(CrashBackend::from_bytes(image)))
        .unwrap_or_else(|e| panic!("{case}: the image does not open: {e}"));
    let read = db.begin_read().unwrap();
    let Ok(table) = read.open_table(T) else {
        return 0;
    };
    let len = table.len().unwrap();
    assert_eq!(len % 10, 0, "{case}: a commit survived in part ({len} keys)");
    let commits = len / 10;
    for k in 0..len {
        let value = table.get(k).unwrap().map(|v| v.value());
        assert_eq!(value, Some(k / 10), "{case}: not a prefix of the commits (key {k})");
    }
    commits
}

#[test]
fn a_power_cut_anywhere_keeps_every_acknowledged_durable_commit() {
    let total_ops = {
        let backend = Arc::new(CrashBackend::new());
        let db = open(&backend).unwrap();
        let durable = (0..COMMITS).filter(|&i| durability(i) == Durability::Immediate).count();
        assert_eq!(run(&db).len(), durable, "without a cut every commit succeeds");
        backend.ops()
    };
    let mut survived_partly = 0;
    for cut in 0..=total_ops {
        let backend = Arc::new(CrashBackend::new());
        backend.cut_power_after(cut);
        let acknowledged = match open(&backend) {
            Ok(db) => {
                let acknowledged = run(&db);
                std::mem::forget(db); // the machine is gone: no drop, no close
                acknowledged
            }
            Err(_) => Vec::new(),
        };
        let modes = [TearMode::DropAll, TearMode::KeepAll]
            .into_iter()
            .chain((0..8).map(TearMode::Random));
        for mode in modes {
            let case = format!("power cut after {cut} of {total_ops} ops, {mode:?}");
            let image = backend.crash_image(mode);
            if image.is_empty() {
                assert!(acknowledged.is_empty(), "{case}: nothing on disk after durable commits");
                continue;
            }
            let commits = recovered(image, &case);
            if let Some(&last) = acknowledged.last() {
                assert!(
                    commits > last,
                    "{case}: durable commit {last} returned, {commits} commits recovered"
                );
            }
            if commits > 0 && commits < COMMITS {
                survived_partly += 1;
            }
        }
    }
    // The cuts fell between commits, not only before or after all of them.
    assert!(survived_partly > 0);
}
