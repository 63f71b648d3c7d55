//! Power cuts inside a commit that goes straight into the tree
//! (`EngineOptions::tree_commit_bytes`): at every data-file operation of the
//! commit (its checkpoint of the commits before it, its own pages, syncs
//! and commit slot), with the WAL cut at the same moment or left running
//! until the engine stops. After reopen: a prefix of the commit order that
//! holds every acknowledged commit, the big commit whole or absent, the
//! integrity check clean, and the database writable (the journal continues
//! above the tree commit's sequence even when its WAL record was lost).

mod common;

use std::ops::Bound;

use common::engine::{Disk, small_options};
use sluicedb::btree::bytewise;
use sluicedb::engine::{Durability, Engine, EngineOptions};
use sluicedb::io::TearMode;

/// Commits of more than a few hundred bytes go through the tree.
fn options() -> EngineOptions {
    EngineOptions {
        tree_commit_bytes: 2 << 10,
        ..small_options()
    }
}

/// The commit that goes through the tree, and how many keys it writes.
const BIG: u64 = 6;
const BIG_KEYS: u64 = 400;

fn key(commit: u64, n: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&commit.to_be_bytes());
    k[8..].copy_from_slice(&n.to_be_bytes());
    k
}

fn value(commit: u64, n: u64) -> Vec<u8> {
    format!("commit {commit} key {n}").into_bytes()
}

/// Commit `i` writes keys `(i, 0..count)`; returns whether it was
/// acknowledged durable.
fn commit(db: &Engine, i: u64, count: u64, durability: Durability) -> bool {
    let Ok(mut w) = db.begin_write() else { return false };
    let Ok(t) = w.open_table(b"t", b"bytes", bytewise) else {
        return false;
    };
    for n in 0..count {
        if w.insert(t, &key(i, n), &value(i, n)).is_err() {
            return false;
        }
    }
    w.set_durability(durability);
    w.commit().is_ok() && durability == Durability::Immediate
}

fn keys_of(i: u64) -> u64 {
    if i == BIG { BIG_KEYS } else { 3 }
}

/// Where the power goes out, counted in operations from the moment the big
/// commit starts.
#[derive(Clone, Copy, Debug)]
enum Cut {
    /// After this many data-file operations; the WAL goes on until the
    /// engine stops on the failure.
    Data(u64),
    /// The same, with the WAL cut at once.
    DataAndWalNow(u64),
    /// After this many WAL operations; the data file goes on until the
    /// engine stops (it writes nothing after the tree commit's slot).
    Wal(u64),
}

/// Commits 1..=5 through the WAL (the odd ones unsynced), arms `cut`,
/// commits the big one and one more; returns the highest commit
/// acknowledged durable and the data file's and the WAL's operation counts
/// when the cut was armed.
fn run_until_cut(db: &Engine, disk: &Disk, cut: Option<Cut>) -> (u64, u64, u64) {
    let mut acked = 0;
    for i in 1..BIG {
        let durability = if i % 2 == 1 {
            Durability::None
        } else {
            Durability::Immediate
        };
        assert!(commit(db, i, keys_of(i), durability) || durability == Durability::None);
        if durability == Durability::Immediate {
            acked = i;
        }
    }
    let (data, wal) = (disk.data.ops(), disk.wal.ops());
    match cut {
        None => {}
        Some(Cut::Data(n)) => disk.data.cut_power_after(data + n),
        Some(Cut::DataAndWalNow(n)) => {
            disk.wal.cut_power_after(wal);
            disk.data.cut_power_after(data + n);
        }
        Some(Cut::Wal(n)) => disk.wal.cut_power_after(wal + n),
    }
    for i in BIG..=BIG + 1 {
        if !commit(db, i, keys_of(i), Durability::Immediate) {
            break;
        }
        acked = i;
    }
    (acked, data, wal)
}

/// Checks a reopened image: a prefix holding `acked`, each commit whole.
fn check_recovered(db: &Engine, acked: u64, what: &str) -> u64 {
    db.check_integrity().unwrap();
    let txn = db.begin_read().unwrap();
    let Some(t) = txn.open_table(b"t", bytewise).unwrap() else {
        assert_eq!(acked, 0, "{what}: the table vanished with acknowledged commits");
        return 0;
    };
    let mut per_commit = std::collections::BTreeMap::<u64, u64>::new();
    for entry in txn.range(&t, Bound::Unbounded, Bound::Unbounded).unwrap() {
        let (k, v) = entry.unwrap();
        let i = u64::from_be_bytes(k[..8].try_into().unwrap());
        let n = u64::from_be_bytes(k[8..].try_into().unwrap());
        assert_eq!(v.as_bytes(), value(i, n), "{what}: commit {i} damaged");
        *per_commit.entry(i).or_default() += 1;
    }
    let last = per_commit.len() as u64;
    assert_eq!(
        per_commit.keys().copied().collect::<Vec<_>>(),
        (1..=last).collect::<Vec<_>>(),
        "{what}: not a prefix of the commit order"
    );
    for (&i, &count) in &per_commit {
        assert_eq!(count, keys_of(i), "{what}: commit {i} is partly visible");
    }
    assert!(
        last >= acked,
        "{what}: acknowledged commit {acked} lost (recovered {last})"
    );
    assert_eq!(txn.len(&t).unwrap(), per_commit.values().sum::<u64>(), "{what}: len()");
    last
}

#[test]
fn power_cuts_inside_a_tree_commit_recover_a_durable_prefix() {
    // How many operations the big commit and the one after take, uncut:
    // the cuts below walk through all of them.
    let (data_span, wal_span) = {
        let disk = Disk::new();
        let db = disk.open(options());
        let (acked, data, wal) = run_until_cut(&db, &disk, None);
        assert_eq!(acked, BIG + 1);
        assert_eq!(db.stats().tree_commits, 1, "the big commit did not go through the tree");
        (disk.data.ops() - data, disk.wal.ops() - wal)
    };
    assert!(
        data_span >= 8 && wal_span >= 2,
        "the tree commit took only {data_span} data-file and {wal_span} WAL operations"
    );
    let cuts = (0..=data_span)
        .flat_map(|n| [Cut::Data(n), Cut::DataAndWalNow(n)])
        .chain((0..=wal_span).map(Cut::Wal));
    // Images that kept the big commit though it was not acknowledged: the
    // cut fell between its tree commit and its acknowledgement.
    let (mut kept_unacked, mut lost) = (0, 0);
    for cut in cuts {
        let disk = Disk::new();
        let db = disk.open(options());
        let (acked, _, _) = run_until_cut(&db, &disk, Some(cut));
        drop(db);
        for mode in [TearMode::DropAll, TearMode::Random(7), TearMode::KeepAll] {
            let what = format!("{cut:?}, {mode:?}");
            let crashed = disk.crashed(mode);
            let db = crashed.open(options());
            let last = check_recovered(&db, acked, &what);
            if last >= BIG && acked < BIG {
                kept_unacked += 1;
            }
            if last < BIG {
                lost += 1;
            }
            // Writable: the next commit gets a sequence above everything
            // recovered, and survives a clean reopen.
            assert!(
                commit(&db, last + 1, keys_of(last + 1), Durability::Immediate),
                "{what}: not writable"
            );
            drop(db);
            let db = crashed.open(options());
            assert_eq!(check_recovered(&db, last + 1, &what), last + 1, "{what}: after reopen");
        }
    }
    assert!(
        kept_unacked > 0 && lost > 0,
        "the cuts never split the tree commit: {kept_unacked} images kept it unacknowledged, {lost} lost it"
    );
}
