//! An adversarial review of the storage contract openraft relies on, across
//! simulated power cuts (sluicedb's `CrashDisk`: unsynced writes lost, kept
//! or torn; WAL syncs held through `HeldSyncs`). It targets what
//! `storage_crash_safety.rs` leaves out: membership entries applied with
//! their data, an apply while the WAL cannot sync, a power cut in the middle
//! of installing a multi-chunk snapshot (through the WAL and through
//! sluicedb's tree-commit path), snapshots built while applies go on,
//! purging the whole log and past its end under every tear, and a
//! checkpoint taken while WAL syncs are held.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::Machine;
use futures_util::FutureExt;
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogStorage, RaftStateMachine};
use openraft::type_config::TypeConfigExt;
use openraft::type_config::alias::OneshotReceiverOf;
use openraft::{RaftLogReader, RaftSnapshotBuilder};
use sluicedb::io::TearMode;
use sluicedb::{Database, ReadableDatabase};
use sluicedb_raft::{Entry, LogId, LogStore, Membership, Request, Snapshot, StateMachine, TypeConfig, Vote};

type Flushed = OneshotReceiverOf<TypeConfig, Result<(), io::Error>>;

fn modes() -> Vec<TearMode> {
    let mut modes = vec![TearMode::DropAll, TearMode::KeepAll];
    modes.extend((0..8).map(TearMode::Random));
    modes
}

/// Runs a test body under a watchdog: a hang is a failure, not a stuck run.
async fn watchdog<F: Future<Output = ()>>(secs: u64, body: F) {
    if tokio::time::timeout(Duration::from_secs(secs), body).await.is_err() {
        // A panic would unwind into the stores' drop, which waits for the
        // held syncs: end the process instead.
        eprintln!("watchdog: the test hung for {secs} s");
        std::process::abort();
    }
}

fn log_id(term: u64, index: u64) -> LogId {
    openraft::testing::log_id::<TypeConfig>(term, 1, index)
}

fn ent(term: u64, index: u64) -> Entry {
    Entry::new_normal(
        log_id(term, index),
        Request::Set {
            key: format!("k{}", index % 7),
            value: format!("t{term}-i{index}"),
        },
    )
}

fn ents(term: u64, indexes: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
    indexes.map(|i| ent(term, i)).collect()
}

fn members(ids: &[u64]) -> openraft::Membership<u64, openraft::BasicNode> {
    let voters: BTreeSet<u64> = ids.iter().copied().collect();
    openraft::Membership::new_with_defaults(vec![voters], [])
}

async fn append(log: &mut LogStore<TypeConfig>, entries: Vec<Entry>) -> Flushed {
    let (tx, rx) = TypeConfig::oneshot();
    log.append(entries, IOFlushed::signal(tx)).await.expect("append");
    rx
}

async fn append_flushed(log: &mut LogStore<TypeConfig>, entries: Vec<Entry>) {
    append(log, entries)
        .await
        .await
        .expect("the callback is called")
        .expect("flushed");
}

fn fired(rx: &mut Flushed) -> bool {
    matches!(rx.now_or_never(), Some(Ok(Ok(()))))
}

async fn apply(sm: &mut StateMachine, entries: Vec<Entry>) -> Result<(), io::Error> {
    let stream = futures_util::stream::iter(entries.into_iter().map(|e| Ok((e, None))));
    sm.apply(stream).await
}

fn model_apply(kv: &mut BTreeMap<String, String>, entries: &[Entry]) {
    for e in entries {
        match &e.payload {
            openraft::EntryPayload::Normal(Request::Set { key, value }) => {
                kv.insert(key.clone(), value.clone());
            }
            openraft::EntryPayload::Normal(Request::Delete { key }) => {
                kv.remove(key);
            }
            _ => {}
        }
    }
}

/// Every key-value pair of the state machine.
fn all_kv(sm: &StateMachine) -> BTreeMap<String, String> {
    let txn = sm.database().begin_read().expect("a read");
    let table = txn.open_table(sluicedb_raft::KV).expect("kv opens");
    table
        .range::<&str>(..)
        .expect("a scan")
        .map(|item| {
            let (k, v) = item.expect("a pair");
            (k.value().to_string(), v.value().to_string())
        })
        .collect()
}

/// Checks the log is exactly `(last_purged, last]`, consecutive.
async fn check_log_shape(log: &mut LogStore<TypeConfig>, what: &str) -> Vec<Entry> {
    let state = log.get_log_state().await.expect("the log state reads");
    let entries = log.try_get_log_entries(..).await.expect("the log reads");
    if let (Some(purged), Some(first)) = (state.last_purged_log_id, entries.first()) {
        assert_eq!(
            first.log_id.index,
            purged.index + 1,
            "{what}: log does not start after purge"
        );
    }
    for w in entries.windows(2) {
        assert_eq!(w[1].log_id.index, w[0].log_id.index + 1, "{what}: a gap in the log");
    }
    match entries.last() {
        Some(e) => assert_eq!(state.last_log_id, Some(e.log_id), "{what}: last_log_id"),
        None => assert_eq!(state.last_log_id, state.last_purged_log_id, "{what}: empty log"),
    }
    entries
}

// ---------------------------------------------------------------- membership

/// A membership entry's effect (`applied_state().1`) moves in the same commit
/// as the applied id and the data: after any power cut the membership is the
/// last membership entry at or below the applied id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_moves_with_the_applied_id_across_power_cuts() {
    watchdog(60, async {
        let mut all: Vec<Entry> = Vec::new();
        all.push(Entry::new_membership(log_id(1, 1), members(&[1])));
        all.extend(ents(1, 2..=4));
        all.push(Entry::new_membership(log_id(1, 5), members(&[1, 2, 3])));
        all.extend(ents(1, 6..=7));
        all.push(Entry::new_membership(log_id(1, 8), members(&[1, 2])));
        all.extend(ents(1, 9..=9));
        let expected = |applied: u64| -> Membership {
            let last = all[..applied as usize]
                .iter()
                .rev()
                .find_map(|e| e.get_membership().map(|m| (e.log_id, m.clone())));
            match last {
                Some((id, m)) => Membership::new(Some(id), m),
                None => Membership::default(),
            }
        };
        for mode in modes() {
            let what = format!("{mode:?}");
            let machine = Machine::new();
            let (mut log, mut sm) = machine.stores();
            append_flushed(&mut log, all.clone()).await;
            for (from, to) in [(0usize, 4usize), (4, 7), (7, 9)] {
                log.save_committed(Some(all[to - 1].log_id)).await.expect("committed");
                apply(&mut sm, all[from..to].to_vec()).await.expect("apply");
            }
            // The last batch's commit (not awaited by apply) may stay unsynced.
            machine.wal.hold();
            let (applied, membership) = sm.applied_state().await.expect("applied");
            assert_eq!(applied, Some(log_id(1, 9)));
            assert_eq!(membership, expected(9), "{what}: membership before the crash");
            let after = machine.crash(mode, (log, sm));

            let (mut log, mut sm) = after.stores();
            let (applied, membership) = sm.applied_state().await.expect("applied");
            let n = applied.map_or(0, |a| a.index);
            assert!(n >= 4, "{what}: applied {applied:?} behind the durable batches");
            assert_eq!(membership, expected(n), "{what}: membership vs applied {applied:?}");
            let mut kv = BTreeMap::new();
            model_apply(&mut kv, &all[..n as usize]);
            assert_eq!(all_kv(&sm), kv, "{what}: kv vs applied {applied:?}");
            let committed = log.read_committed().await.expect("committed");
            assert!(
                applied <= committed,
                "{what}: applied {applied:?} > committed {committed:?}"
            );
            check_log_shape(&mut log, &what).await;
        }
    })
    .await;
}

// ---------------------------------------------------------------- apply under held syncs

/// `apply` makes nothing visible (and does not return) while the committed
/// id it follows cannot be made durable; after a power cut the applied id is
/// never ahead of the durable committed id or the durable log, and the data
/// matches the applied id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_shows_nothing_before_its_committed_id_is_durable() {
    watchdog(60, async {
        let all = ents(1, 1..=9);
        for mode in modes() {
            let what = format!("{mode:?}");
            let machine = Machine::new();
            let (mut log, mut sm) = machine.stores();
            append_flushed(&mut log, all[..6].to_vec()).await;
            log.save_committed(Some(log_id(1, 6))).await.expect("committed");
            apply(&mut sm, all[..6].to_vec()).await.expect("apply");
            // Make everything so far durable, then hold the WAL.
            sm.get_snapshot_builder().await.build_snapshot().await.expect("build");
            let before = all_kv(&sm);
            machine.wal.hold();
            let mut rx = append(&mut log, all[6..9].to_vec()).await;
            log.save_committed(Some(log_id(1, 9))).await.expect("committed");
            let mut worker = sm.clone();
            let batch = all[6..9].to_vec();
            let task = tokio::spawn(async move { apply(&mut worker, batch).await });
            tokio::time::sleep(Duration::from_millis(250)).await;
            // Checked after the crash: a failed assert with syncs held would
            // hang in the stores' drop.
            let returned_early = task.is_finished();
            let shown = all_kv(&sm);
            let acked_early = fired(&mut rx);
            let after = machine.crash(mode, (log, sm));
            let _ = task.await;
            assert!(!returned_early, "{what}: apply returned while no sync could run");
            assert_eq!(shown, before, "{what}: apply published data not yet durable");
            assert!(!acked_early, "{what}: append's callback fired with syncs held");

            let (mut log, mut sm) = after.stores();
            let entries = check_log_shape(&mut log, &what).await;
            let committed = log.read_committed().await.expect("committed");
            let (applied, _) = sm.applied_state().await.expect("applied");
            assert!(applied >= Some(log_id(1, 6)), "{what}: durable apply lost");
            assert!(
                applied <= committed,
                "{what}: applied {applied:?} > committed {committed:?}"
            );
            assert!(
                committed.map(|c| c.index) <= entries.last().map(|e| e.log_id.index),
                "{what}: committed {committed:?} past the log"
            );
            let mut kv = BTreeMap::new();
            model_apply(&mut kv, &all[..applied.map_or(0, |a| a.index) as usize]);
            assert_eq!(all_kv(&sm), kv, "{what}: kv vs applied {applied:?}");
        }
    })
    .await;
}

// ---------------------------------------------------------------- install mid-crash

/// A source snapshot over `n` keys of `value_len` bytes each (so several
/// 1 MiB chunks), and its key-value pairs.
async fn big_source(n: u64, value_len: usize) -> (Snapshot, BTreeMap<String, String>) {
    let machine = Machine::new();
    let (mut log, mut sm) = machine.stores();
    let all: Vec<Entry> = (1..=n)
        .map(|i| {
            Entry::new_normal(
                log_id(3, i),
                Request::Set {
                    key: format!("big{i:03}"),
                    value: format!("{i}:{}", "v".repeat(value_len)),
                },
            )
        })
        .collect();
    append_flushed(&mut log, all.clone()).await;
    log.save_committed(Some(log_id(3, n))).await.expect("committed");
    apply(&mut sm, all.clone()).await.expect("apply");
    let snapshot = sm.get_snapshot_builder().await.build_snapshot().await.expect("build");
    let mut kv = BTreeMap::new();
    model_apply(&mut kv, &all);
    (snapshot, kv)
}

/// What the state machine shows: applied id, membership, data, snapshot.
async fn sm_image(sm: &mut StateMachine) -> (Option<LogId>, Membership, BTreeMap<String, String>, Option<Snapshot>) {
    let (applied, membership) = sm.applied_state().await.expect("applied");
    let current = sm.get_current_snapshot().await.expect("the snapshot reads");
    (applied, membership, all_kv(sm), current)
}

/// Installs `source` with the WAL's syncs held and cuts the power while the
/// install is in flight; the state machine must come back wholly old or
/// wholly new (applied id, membership, data and current snapshot agreeing).
async fn install_cut(
    machine_for: fn() -> Machine,
    source: &Snapshot,
    source_kv: &BTreeMap<String, String>,
) -> (usize, usize) {
    let mut outcomes = (0, 0);
    for mode in [
        TearMode::DropAll,
        TearMode::KeepAll,
        TearMode::Random(1),
        TearMode::Random(2),
        TearMode::Random(3),
    ] {
        let what = format!("{mode:?}");
        let machine = machine_for();
        let (mut log, mut sm) = machine.stores();
        let old = ents(1, 1..=5);
        append_flushed(&mut log, old.clone()).await;
        log.save_committed(Some(log_id(1, 5))).await.expect("committed");
        apply(&mut sm, old.clone()).await.expect("apply");
        let old_snapshot = sm.get_snapshot_builder().await.build_snapshot().await.expect("build");
        let old_image = sm_image(&mut sm).await;
        assert_eq!(old_image.3.as_ref().map(|s| &s.meta), Some(&old_snapshot.meta));

        machine.wal.hold();
        let started = machine.wal.syncs_started();
        let mut installer = sm.clone();
        let (meta, data) = (source.meta.clone(), source.snapshot.clone());
        let task = tokio::spawn(async move { installer.install_snapshot(&meta, data).await });
        // Until the install is visible, or it waits for a sync.
        for _ in 0..400 {
            let (applied, _) = sm.applied_state().await.expect("applied");
            if applied == source.meta.last_log_id || machine.wal.syncs_started() > started + 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !task.is_finished(),
            "{what}: install returned while no WAL sync could run"
        );
        let after = machine.crash(mode, (log, sm));
        let _ = task.await;

        let (_log, mut sm) = after.stores();
        let got = sm_image(&mut sm).await;
        let new_image = (
            source.meta.last_log_id,
            source.meta.last_membership.clone(),
            source_kv.clone(),
            Some(source.clone()),
        );
        let is_old = got.0 == old_image.0
            && got.1 == old_image.1
            && got.2 == old_image.2
            && got.3.as_ref().map(|s| (&s.meta, &s.snapshot)) == old_image.3.as_ref().map(|s| (&s.meta, &s.snapshot));
        let is_new = got.0 == new_image.0
            && got.1 == new_image.1
            && got.2 == new_image.2
            && got.3.as_ref().map(|s| (&s.meta, &s.snapshot)) == new_image.3.as_ref().map(|s| (&s.meta, &s.snapshot));
        outcomes.0 += usize::from(is_old);
        outcomes.1 += usize::from(is_new);
        assert!(
            is_old || is_new,
            "{what}: a mixed state after a cut mid-install: applied {:?}, {} keys, snapshot {:?} ({} bytes)",
            got.0,
            got.2.len(),
            got.3.as_ref().map(|s| s.meta.clone()),
            got.3.as_ref().map_or(0, |s| s.snapshot.len())
        );
    }
    outcomes
}

/// A power cut while a 3-chunk snapshot is being installed (through the
/// WAL) leaves the old state or the new one, never a mix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_mid_install_of_a_multi_chunk_snapshot_leaves_old_or_new() {
    watchdog(90, async {
        let (source, kv) = big_source(25, 100 * 1024).await;
        assert!(source.snapshot.len() > 2 << 20, "the snapshot spans several chunks");
        let (old, new) = install_cut(Machine::new, &source, &kv).await;
        // The journal writes nothing past a held sync, so only the old
        // state is reachable here; the cuts at each WAL op below reach both.
        assert_eq!(old + new, 5, "every cut ends old or new");
    })
    .await;
}

/// The same through sluicedb's tree-commit path (a commit above the
/// builder's `set_tree_commit_size` skips the WAL): old or new, never a mix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_mid_install_through_the_tree_commit_path_leaves_old_or_new() {
    watchdog(90, async {
        let (source, kv) = big_source(25, 100 * 1024).await;
        let (old, new) = install_cut(|| Machine::with_tree_commit(1 << 20), &source, &kv).await;
        assert_eq!(old + new, 5, "every cut ends old or new");
    })
    .await;
}

// ---------------------------------------------------------------- build during applies

/// A snapshot built while applies go on is one consistent read: its data is
/// exactly the state at its `last_log_id` (checked by installing it on a
/// fresh node and reading it back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_built_during_applies_is_the_state_at_its_applied_id() {
    watchdog(60, async {
        let machine = Machine::new();
        let (mut log, sm) = machine.stores();
        let all: Vec<Entry> = (1..=240u64)
            .map(|i| {
                if i % 11 == 0 {
                    Entry::new_normal(
                        log_id(1, i),
                        Request::Delete {
                            key: format!("k{}", i % 7),
                        },
                    )
                } else {
                    ent(1, i)
                }
            })
            .collect();
        append_flushed(&mut log, all.clone()).await;
        log.save_committed(Some(log_id(1, 240))).await.expect("committed");
        let mut worker = sm.clone();
        let batches = all.clone();
        // The applier waits for a build every eight chunks, so that builds
        // fall among the applies however the two threads are scheduled.
        let builds = Arc::new(AtomicUsize::new(0));
        let seen = builds.clone();
        let applier = tokio::spawn(async move {
            for (i, chunk) in batches.chunks(3).enumerate() {
                while seen.load(Ordering::Acquire) < i / 8 {
                    tokio::task::yield_now().await;
                }
                apply(&mut worker, chunk.to_vec()).await.expect("apply");
                tokio::task::yield_now().await;
            }
        });
        let mut built = Vec::new();
        let mut builder_sm = sm.clone();
        while !applier.is_finished() && built.len() < 40 {
            let s = builder_sm
                .get_snapshot_builder()
                .await
                .build_snapshot()
                .await
                .expect("build");
            built.push(s);
            builds.fetch_add(1, Ordering::Release);
        }
        applier.await.expect("the applier");
        assert!(built.len() >= 2, "too few snapshots built during the applies");
        for s in &built {
            let n = s.meta.last_log_id.map_or(0, |id| id.index);
            let mut kv = BTreeMap::new();
            model_apply(&mut kv, &all[..n as usize]);
            let fresh = Machine::new();
            let (_l, mut target) = fresh.stores();
            target
                .install_snapshot(&s.meta, s.snapshot.clone())
                .await
                .expect("install");
            assert_eq!(
                all_kv(&target),
                kv,
                "snapshot at {:?} is not the state at it",
                s.meta.last_log_id
            );
        }
    })
    .await;
}

// ---------------------------------------------------------------- purge

/// Purging the whole log, then past its end with the WAL held, under every
/// tear: `last_purged` is one of the purges made (never before the durable
/// one), `last_log_id` is the last entry or else `last_purged`, the log is
/// contiguous after it, and the log goes on from `last_log_id + 1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purging_everything_and_past_the_end_keeps_the_log_state_across_tears() {
    watchdog(60, async {
        for mode in modes() {
            let what = format!("{mode:?}");
            let machine = Machine::new();
            let (mut log, sm) = machine.stores();
            append_flushed(&mut log, ents(1, 1..=10)).await;
            log.purge(log_id(1, 10)).await.expect("purge");
            let state = log.get_log_state().await.expect("state");
            assert_eq!(state.last_purged_log_id, Some(log_id(1, 10)));
            assert_eq!(
                state.last_log_id,
                Some(log_id(1, 10)),
                "{what}: after purging everything"
            );
            assert!(log.try_get_log_entries(..).await.expect("reads").is_empty());
            // A flushed append makes the purge durable.
            append_flushed(&mut log, ents(1, 11..=12)).await;
            log.purge(log_id(1, 12)).await.expect("purge");
            machine.wal.hold();
            log.purge(log_id(2, 40)).await.expect("purge past the end");
            let state = log.get_log_state().await.expect("state");
            assert_eq!(
                state.last_log_id,
                Some(log_id(2, 40)),
                "{what}: after purging past the end"
            );
            let after = machine.crash(mode, (log, sm));

            let (mut log, sm) = after.stores();
            let state = log.get_log_state().await.expect("state");
            let entries = check_log_shape(&mut log, &what).await;
            match state.last_purged_log_id.map(|p| p.index) {
                Some(10) => assert_eq!(entries.len(), 2, "{what}: flushed 11..=12 lost"),
                Some(12) | Some(40) => assert!(entries.is_empty(), "{what}: entries behind the purge"),
                other => panic!("{what}: last purged {other:?}"),
            }
            let last = state.last_log_id.expect("a last log id");
            let next = last.index + 1;
            append_flushed(&mut log, ents(2, next..=next)).await;
            let again = after.crash(TearMode::DropAll, (log, sm));
            let (mut log, _sm) = again.stores();
            let entries = check_log_shape(&mut log, &what).await;
            assert_eq!(
                entries.last().map(|e| e.log_id),
                Some(log_id(2, next)),
                "{what}: flushed append lost"
            );
        }
    })
    .await;
}

// ---------------------------------------------------------------- checkpoint with held syncs

/// A checkpoint taken while WAL syncs are held (the data file still syncs)
/// and then a power cut: the recovered state is still a prefix: the log
/// contiguous and holding every acknowledged entry, the vote as saved,
/// `last_purged` one of the purges, applied never ahead of committed, the
/// data matching the applied id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_while_wal_syncs_are_held_keeps_a_prefix() {
    watchdog(90, async {
        let all = ents(1, 1..=12);
        for mode in modes() {
            let what = format!("{mode:?}");
            let machine = Machine::new();
            let (mut log, mut sm) = machine.stores();
            let vote = Vote::new_committed(1, 1);
            log.save_vote(&vote).await.expect("vote");
            append_flushed(&mut log, all[..5].to_vec()).await;
            log.save_committed(Some(log_id(1, 5))).await.expect("committed");
            apply(&mut sm, all[..5].to_vec()).await.expect("apply");
            machine.wal.hold();
            let mut rx1 = append(&mut log, all[5..8].to_vec()).await;
            log.save_committed(Some(log_id(1, 7))).await.expect("committed");
            log.purge(log_id(1, 3)).await.expect("purge");
            let mut rx2 = append(&mut log, all[8..12].to_vec()).await;
            let db = log.database().clone();
            let checkpoint = tokio::task::spawn_blocking(move || db.checkpoint().is_ok());
            for _ in 0..50 {
                if checkpoint.is_finished() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let acked = if fired(&mut rx2) {
                12
            } else if fired(&mut rx1) {
                8
            } else {
                5
            };
            let after = machine.crash(mode, (log, sm));
            let _ = checkpoint.await;

            let (mut log, mut sm) = after.stores();
            assert_eq!(log.read_vote().await.expect("vote"), Some(vote), "{what}: vote");
            let entries = check_log_shape(&mut log, &what).await;
            let state = log.get_log_state().await.expect("state");
            assert!(
                matches!(state.last_purged_log_id.map(|p| p.index), None | Some(3)),
                "{what}: last purged {:?}",
                state.last_purged_log_id
            );
            assert!(
                state.last_log_id.map(|l| l.index) >= Some(acked),
                "{what}: acknowledged entries through {acked} lost (last {:?})",
                state.last_log_id
            );
            for e in &entries {
                assert_eq!(
                    format!("{e:?}"),
                    format!("{:?}", all[e.log_id.index as usize - 1]),
                    "{what}"
                );
            }
            let committed = log.read_committed().await.expect("committed");
            let (applied, _) = sm.applied_state().await.expect("applied");
            assert!(applied >= Some(log_id(1, 5)) || applied.is_none(), "{what}");
            assert!(
                applied <= committed,
                "{what}: applied {applied:?} > committed {committed:?}"
            );
            assert!(
                committed.map(|c| c.index) <= state.last_log_id.map(|l| l.index),
                "{what}: committed {committed:?} past the log {:?}",
                state.last_log_id
            );
            let mut kv = BTreeMap::new();
            model_apply(&mut kv, &all[..applied.map_or(0, |a| a.index) as usize]);
            assert_eq!(all_kv(&sm), kv, "{what}: kv vs applied {applied:?}");
        }
    })
    .await;
}

// ---------------------------------------------------------------- model with the state machine

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Appends, committed ids, applies, snapshot builds, purges behind them and
/// votes, over repeated power cuts with random tears (deterministic seeds).
/// After each cut: the vote is the last one saved, every append whose
/// callback fired is there, the log is contiguous from `last_purged + 1`,
/// nothing is purged past the durable snapshot, the applied id is at least
/// the last built snapshot's and at most the committed id, the committed id
/// is within the log, and the data is the applied entries' effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_cycles_with_applies_snapshots_and_purges_keep_every_acknowledgement() {
    watchdog(120, async {
        // (applies, purges, tails kept past the acknowledged ones)
        let mut seen = (0, 0, 0);
        for seed in 1..=3u64 {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
            let mut machine = Machine::new();
            let mut term = 1;
            // Entries by index as applied (never truncated: only appended).
            let mut applied_entries: Vec<Entry> = Vec::new();
            let mut vote: Option<Vote> = None;
            let mut snapshot_at: Option<LogId> = None;
            for round in 0..8 {
                let what = format!("seed {seed}, round {round}");
                let (mut log, mut sm) = machine.stores();
                let mut entries: BTreeMap<u64, Entry> = log
                    .try_get_log_entries(..)
                    .await
                    .expect("reads")
                    .into_iter()
                    .map(|e| (e.log_id.index, e))
                    .collect();
                let state = log.get_log_state().await.expect("state");
                let mut last = state.last_log_id.map_or(0, |l| l.index);
                let mut committed = log.read_committed().await.expect("committed");
                let mut applied = sm.applied_state().await.expect("applied").0;
                let mut acked_through = 0;
                let mut pending: Vec<(u64, Flushed)> = Vec::new();
                let held_from = 8 + rng.below(8);
                for step in 0..held_from + 4 {
                    let held = step >= held_from;
                    if step == held_from {
                        machine.wal.hold();
                    }
                    match rng.below(8) {
                        0..=2 => {
                            let n = 1 + rng.below(3);
                            let batch = ents(term, last + 1..=last + n);
                            for e in &batch {
                                entries.insert(e.log_id.index, e.clone());
                            }
                            last += n;
                            let rx = append(&mut log, batch).await;
                            if !held && rng.below(2) == 0 {
                                rx.await.expect("callback").expect("flushed");
                                acked_through = acked_through.max(last);
                            } else {
                                pending.push((last, rx));
                            }
                        }
                        3 => {
                            let from = committed.map_or(0, |c| c.index);
                            if last > from {
                                let at = from + 1 + rng.below(last - from);
                                let id = entries[&at].log_id;
                                log.save_committed(Some(id)).await.expect("committed");
                                committed = Some(id);
                            }
                        }
                        4 if !held => {
                            let from = applied.map_or(0, |a| a.index) + 1;
                            let to = committed.map_or(0, |c| c.index);
                            if to >= from {
                                let batch: Vec<Entry> = (from..=to).map(|i| entries[&i].clone()).collect();
                                applied_entries.truncate(from as usize - 1);
                                applied_entries.extend(batch.iter().cloned());
                                apply(&mut sm, batch).await.expect("apply");
                                applied = committed;
                                seen.0 += 1;
                            }
                        }
                        5 if !held => {
                            let s = sm.get_snapshot_builder().await.build_snapshot().await.expect("build");
                            assert_eq!(s.meta.last_log_id, applied, "{what}: built at the applied id");
                            snapshot_at = s.meta.last_log_id;
                            if let Some(at) = snapshot_at
                                && rng.below(2) == 0
                                && entries.contains_key(&at.index)
                            {
                                log.purge(at).await.expect("purge");
                                entries.retain(|i, _| *i > at.index);
                                seen.1 += 1;
                            }
                        }
                        6 if !held => {
                            term += 1;
                            let v = Vote::new(term, 1 + rng.below(3));
                            log.save_vote(&v).await.expect("vote");
                            vote = Some(v);
                        }
                        _ => {}
                    }
                }
                for (through, rx) in &mut pending {
                    if fired(rx) {
                        acked_through = acked_through.max(*through);
                    }
                }
                let mode = match rng.below(3) {
                    0 => TearMode::DropAll,
                    1 => TearMode::KeepAll,
                    _ => TearMode::Random(rng.next()),
                };
                let what = format!("{what}, {mode:?}");
                machine = machine.crash(mode, (log, sm));
                let (mut log, mut sm) = machine.stores();

                assert_eq!(log.read_vote().await.expect("vote"), vote, "{what}: vote");
                let got = check_log_shape(&mut log, &what).await;
                let state = log.get_log_state().await.expect("state");
                let got_last = state.last_log_id.map_or(0, |l| l.index);
                seen.2 += usize::from(got_last > acked_through);
                assert!(
                    got_last >= acked_through,
                    "{what}: acknowledged entries through {acked_through} lost (last {got_last})"
                );
                assert!(
                    state.last_purged_log_id <= snapshot_at,
                    "{what}: purged {:?} past the snapshot {snapshot_at:?}",
                    state.last_purged_log_id
                );
                let current = sm.get_current_snapshot().await.expect("snapshot");
                assert_eq!(
                    current.map(|s| s.meta.last_log_id).unwrap_or_default(),
                    snapshot_at,
                    "{what}"
                );
                let committed = log.read_committed().await.expect("committed");
                let (applied, _) = sm.applied_state().await.expect("applied");
                assert!(
                    applied >= snapshot_at,
                    "{what}: applied {applied:?} behind the snapshot"
                );
                assert!(
                    applied <= committed,
                    "{what}: applied {applied:?} > committed {committed:?}"
                );
                assert!(
                    committed.map_or(0, |c| c.index) <= got_last,
                    "{what}: committed {committed:?} past the log (last {got_last})"
                );
                for e in &got {
                    if let Some(a) = applied_entries.get(e.log_id.index as usize - 1)
                        && e.log_id.index <= applied.map_or(0, |a| a.index)
                    {
                        assert_eq!(e.log_id, a.log_id, "{what}: an applied entry changed in the log");
                    }
                }
                let n = applied.map_or(0, |a| a.index) as usize;
                applied_entries.truncate(n);
                let mut kv = BTreeMap::new();
                model_apply(&mut kv, &applied_entries);
                assert_eq!(all_kv(&sm), kv, "{what}: kv vs applied {applied:?}");
                term = term.max(got.iter().map(|e| e.log_id.leader_id.term).max().unwrap_or(0)) + 1;
                drop((log, sm));
            }
        }
        assert!(
            seen.0 > 5 && seen.1 > 2 && seen.2 > 2,
            "the model barely ran (applies, purges, kept tails): {seen:?}"
        );
    })
    .await;
}

// ---------------------------------------------------------------- build racing install

/// A snapshot build racing an install of a newer snapshot never makes the
/// stored snapshot go backwards: afterwards, and after a power cut,
/// `get_current_snapshot` is the installed one (or an identical rebuild of
/// it), matching the applied id and the data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_racing_an_install_never_moves_the_current_snapshot_back() {
    watchdog(60, async {
        let (source, source_kv) = big_source(20, 64).await;
        for round in 0..12u64 {
            let what = format!("round {round}");
            let machine = Machine::new();
            let (mut log, mut sm) = machine.stores();
            append_flushed(&mut log, ents(1, 1..=5)).await;
            log.save_committed(Some(log_id(1, 5))).await.expect("committed");
            apply(&mut sm, ents(1, 1..=5)).await.expect("apply");
            let mut builder = sm.get_snapshot_builder().await;
            let build = tokio::spawn(async move { builder.build_snapshot().await.expect("build") });
            if round % 3 == 1 {
                tokio::task::yield_now().await;
            }
            sm.install_snapshot(&source.meta, source.snapshot.clone())
                .await
                .expect("install");
            let built = build.await.expect("the build");
            assert!(
                built.meta.last_log_id == Some(log_id(1, 5)) || built.meta.last_log_id == source.meta.last_log_id,
                "{what}: built at {:?}",
                built.meta.last_log_id
            );
            for pass in ["before the cut", "after the cut"] {
                let current = sm.get_current_snapshot().await.expect("reads").expect("a snapshot");
                assert_eq!(current.meta, source.meta, "{what}, {pass}: current snapshot moved back");
                assert_eq!(
                    current.snapshot, source.snapshot,
                    "{what}, {pass}: current snapshot data"
                );
                let (applied, _) = sm.applied_state().await.expect("applied");
                assert_eq!(applied, source.meta.last_log_id, "{what}, {pass}: applied");
                assert_eq!(all_kv(&sm), source_kv, "{what}, {pass}: kv");
                if pass == "before the cut" {
                    let after = machine.crash(TearMode::Random(round), (log.clone(), sm));
                    let (l, s) = after.stores();
                    log = l;
                    sm = s;
                }
            }
        }
    })
    .await;
}

// ---------------------------------------------------------------- a vote in flight

/// A `save_vote` cut off by a power cut (its sync held) leaves the vote it
/// replaced or the new one, never an older one or damage, under every tear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vote_cut_off_in_flight_is_old_or_new_never_older() {
    watchdog(60, async {
        for mode in modes() {
            let what = format!("{mode:?}");
            let machine = Machine::new();
            let (mut log, sm) = machine.stores();
            log.save_vote(&Vote::new(1, 1)).await.expect("vote");
            append_flushed(&mut log, ents(1, 1..=4)).await;
            let current = Vote::new_committed(2, 2);
            log.save_vote(&current).await.expect("vote");
            machine.wal.hold();
            let mut saver = log.clone();
            let next = Vote::new(3, 3);
            let task = tokio::spawn(async move { saver.save_vote(&next).await });
            tokio::time::sleep(Duration::from_millis(100)).await;
            let returned_early = task.is_finished();
            let after = machine.crash(mode, (log, sm));
            let _ = task.await;
            assert!(!returned_early, "{what}: save_vote returned while no sync could run");
            let (mut log, _sm) = after.stores();
            let got = log.read_vote().await.expect("the vote reads");
            assert!(
                got == Some(current) || got == Some(next),
                "{what}: vote {got:?}, expected {current:?} or {next:?}"
            );
            check_log_shape(&mut log, &what).await;
        }
    })
    .await;
}

/// A power cut at each WAL operation of a multi-chunk install (syncs not
/// held, so the install's record is partly written when the power goes):
/// old or new state, never a mix; new whenever the install returned `Ok`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_power_cut_at_each_wal_op_of_an_install_leaves_old_or_new() {
    watchdog(120, async {
        let (source, source_kv) = big_source(25, 100 * 1024).await;
        let mut outcomes = (0, 0);
        let mut completed = false;
        let mut cut = 0;
        while !completed && cut < 60 {
            let what = format!("cut after {cut} WAL ops");
            let machine = Machine::new();
            let (mut log, mut sm) = machine.stores();
            let old = ents(1, 1..=5);
            append_flushed(&mut log, old.clone()).await;
            log.save_committed(Some(log_id(1, 5))).await.expect("committed");
            apply(&mut sm, old.clone()).await.expect("apply");
            sm.get_snapshot_builder().await.build_snapshot().await.expect("build");
            let old_image = sm_image(&mut sm).await;
            machine.disk.wal.cut_power_after(machine.disk.wal.ops() + cut);
            let installed = sm.install_snapshot(&source.meta, source.snapshot.clone()).await;
            completed = installed.is_ok();
            let after = machine.crash(TearMode::Random(cut), (log, sm));

            let (_log, mut sm) = after.stores();
            let got = sm_image(&mut sm).await;
            let snap = |i: &Option<Snapshot>| i.as_ref().map(|s| (s.meta.clone(), s.snapshot.clone()));
            let is_old = got.0 == old_image.0
                && got.1 == old_image.1
                && got.2 == old_image.2
                && snap(&got.3) == snap(&old_image.3);
            let is_new = got.0 == source.meta.last_log_id
                && got.1 == source.meta.last_membership
                && got.2 == source_kv
                && snap(&got.3) == Some((source.meta.clone(), source.snapshot.clone()));
            assert!(
                is_old || is_new,
                "{what}: a mixed state: applied {:?}, {} keys, snapshot {:?}",
                got.0,
                got.2.len(),
                got.3.as_ref().map(|s| s.meta.clone())
            );
            assert!(!completed || is_new, "{what}: the install returned Ok and was lost");
            outcomes.0 += usize::from(is_old);
            outcomes.1 += usize::from(is_new);
            cut += 1;
        }
        assert!(completed, "the install never completed within 60 WAL ops");
        assert!(outcomes.0 > 0 && outcomes.1 > 0, "outcomes (old, new): {outcomes:?}");
    })
    .await;
}

// ---------------------------------------------------------------- volatile WAL

/// A crash-simulating file behind sluicedb's redb-shaped backend trait, so
/// the WAL is volatile and "durable" means checkpointed.
#[derive(Debug)]
struct UserBackend(Arc<sluicedb::io::CrashBackend>);

impl sluicedb::StorageBackend for UserBackend {
    fn len(&self) -> Result<u64, io::Error> {
        sluicedb::io::StorageBackend::len(&*self.0)
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        sluicedb::io::StorageBackend::read(&*self.0, offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        sluicedb::io::StorageBackend::set_len(&*self.0, len)
    }
    fn sync_data(&self) -> Result<(), io::Error> {
        sluicedb::io::StorageBackend::sync_data(&*self.0)
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        sluicedb::io::StorageBackend::write(&*self.0, offset, data)
    }
}

/// On a volatile WAL, what the state machine reports durable survives a
/// power cut: a built snapshot (and the applies it covers), an installed
/// snapshot with its applied id and data, and the committed id an apply
/// waited for; applied never ahead of committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_volatile_wal_built_and_installed_snapshots_survive_a_power_cut() {
    watchdog(60, async {
        let (source, source_kv) = big_source(6, 32).await;
        for install in [false, true] {
            let what = format!("install {install}");
            let data = Arc::new(sluicedb::io::CrashBackend::new());
            let db = Database::builder()
                .create_with_backend(UserBackend(data.clone()))
                .expect("a database on one backend");
            let (mut log, mut sm) = sluicedb_raft::open_database(Arc::new(db)).expect("the stores open");
            let all = ents(1, 1..=8);
            append_flushed(&mut log, all.clone()).await;
            log.save_committed(Some(log_id(1, 6))).await.expect("committed");
            apply(&mut sm, all[..6].to_vec()).await.expect("apply");
            let expected = if install {
                log.truncate_after(None).await.expect("truncate");
                sm.install_snapshot(&source.meta, source.snapshot.clone())
                    .await
                    .expect("install");
                (source.meta.clone(), source_kv.clone())
            } else {
                let built = sm.get_snapshot_builder().await.build_snapshot().await.expect("build");
                let mut kv = BTreeMap::new();
                model_apply(&mut kv, &all[..6]);
                (built.meta, kv)
            };
            let image = data.crash_image(TearMode::DropAll);
            drop((log, sm));
            let db = Database::builder()
                .create_with_backend(UserBackend(Arc::new(sluicedb::io::CrashBackend::from_bytes(image))))
                .expect("the database reopens");
            let (mut log, mut sm) = sluicedb_raft::open_database(Arc::new(db)).expect("the stores reopen");
            let current = sm.get_current_snapshot().await.expect("reads");
            assert_eq!(
                current.map(|s| s.meta),
                Some(expected.0.clone()),
                "{what}: snapshot lost"
            );
            let (applied, membership) = sm.applied_state().await.expect("applied");
            assert_eq!(applied, expected.0.last_log_id, "{what}: applied");
            assert_eq!(membership, expected.0.last_membership, "{what}: membership");
            assert_eq!(all_kv(&sm), expected.1, "{what}: kv");
            if !install {
                let committed = log.read_committed().await.expect("committed");
                assert!(
                    applied <= committed,
                    "{what}: applied {applied:?} > committed {committed:?}"
                );
                check_log_shape(&mut log, &what).await;
            }
        }
    })
    .await;
}

/// Through the tree-commit path (the install skips the WAL and is written
/// into the tree and checkpointed), a power cut at points spread over the
/// install's data-file operations: the state machine is old or new, never a
/// mix, new whenever the install returned `Ok`; the log appended before it
/// (flushed or not) is contiguous and, when the install survived, whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_power_cut_inside_a_tree_committed_install_leaves_old_or_new() {
    watchdog(120, async {
        let (source, source_kv) = big_source(12, 100 * 1024).await;
        let setup = || async {
            let machine = Machine::with_tree_commit(256 << 10);
            let (mut log, mut sm) = machine.stores();
            append_flushed(&mut log, ents(1, 1..=5)).await;
            log.save_committed(Some(log_id(1, 5))).await.expect("committed");
            apply(&mut sm, ents(1, 1..=5)).await.expect("apply");
            sm.get_snapshot_builder().await.build_snapshot().await.expect("build");
            let old_image = sm_image(&mut sm).await;
            let unflushed = append(&mut log, ents(1, 6..=8)).await;
            (machine, log, sm, old_image, unflushed)
        };
        // How many data-file operations a whole install takes.
        let (machine, log, mut sm, _, _rx) = setup().await;
        let before = machine.disk.data.ops();
        sm.install_snapshot(&source.meta, source.snapshot.clone())
            .await
            .expect("install");
        let total = machine.disk.data.ops() - before;
        drop((log, sm));
        let mut cuts: Vec<u64> = (0..4).collect();
        cuts.extend((1..=12).map(|k| total * k / 12));
        let mut outcomes = (0, 0);
        for cut in cuts {
            let what = format!("cut after {cut} of {total} data-file ops");
            let (machine, log, mut sm, old_image, _rx) = setup().await;
            machine.disk.data.cut_power_after(machine.disk.data.ops() + cut);
            let installed = sm.install_snapshot(&source.meta, source.snapshot.clone()).await;
            let after = machine.crash(TearMode::Random(cut), (log, sm));

            let (mut log, mut sm) = after.stores();
            let got = sm_image(&mut sm).await;
            let snap = |i: &Option<Snapshot>| i.as_ref().map(|s| (s.meta.clone(), s.snapshot.clone()));
            let is_old = got.0 == old_image.0
                && got.1 == old_image.1
                && got.2 == old_image.2
                && snap(&got.3) == snap(&old_image.3);
            let is_new = got.0 == source.meta.last_log_id
                && got.1 == source.meta.last_membership
                && got.2 == source_kv
                && snap(&got.3) == Some((source.meta.clone(), source.snapshot.clone()));
            assert!(
                is_old || is_new,
                "{what}: a mixed state: applied {:?}, {} keys, snapshot {:?}",
                got.0,
                got.2.len(),
                got.3.as_ref().map(|s| s.meta.clone())
            );
            assert!(
                installed.is_err() || is_new,
                "{what}: the install returned Ok and was lost"
            );
            let entries = check_log_shape(&mut log, &what).await;
            assert!(entries.len() >= 5, "{what}: flushed entries lost");
            if is_new {
                assert_eq!(
                    entries.len(),
                    8,
                    "{what}: the install survived without the appends before it"
                );
            }
            outcomes.0 += usize::from(is_old);
            outcomes.1 += usize::from(is_new);
        }
        assert!(outcomes.0 > 0 && outcomes.1 > 0, "outcomes (old, new): {outcomes:?}");
    })
    .await;
}
