//! Raft safety of the sluicedb log store and state machine across
//! simulated power cuts (an adversarial review's, fifty-fourth session; it
//! found nothing) (sluicedb's `CrashBackend` data file
//! and `CrashLogDir` WAL, syncs held back through `HeldSyncs`, unsynced
//! writes dropped, kept or torn by `TearMode`).
//!
//! What a restart may find: a prefix of the commit order holding every
//! commit acknowledged durable (`save_vote` and `truncate_after` returned,
//! an append's flush callback fired, a snapshot built or installed).

mod common;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;

use common::Machine;
use futures_util::FutureExt;
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogStorage, RaftStateMachine};
use openraft::type_config::TypeConfigExt;
use openraft::type_config::alias::OneshotReceiverOf;
use openraft::{RaftLogReader, RaftSnapshotBuilder};
use sluicedb::io::TearMode;
use sluicedb_raft::{Entry, LogId, LogStore, Request, SnapshotMeta, StateMachine, TypeConfig, Vote};

type Flushed = OneshotReceiverOf<TypeConfig, Result<(), io::Error>>;

/// All tear modes tried per scenario.
fn modes() -> Vec<TearMode> {
    let mut modes = vec![TearMode::DropAll, TearMode::KeepAll];
    modes.extend((0..12).map(TearMode::Random));
    modes
}

fn log_id(term: u64, index: u64) -> LogId {
    openraft::testing::log_id::<TypeConfig>(term, 1, index)
}

fn ent(term: u64, index: u64) -> Entry {
    Entry::new_normal(
        log_id(term, index),
        Request::Set {
            key: format!("k{}", index % 7),
            value: format!("t{term}-i{index}-{}", "x".repeat((index % 5 * 40) as usize)),
        },
    )
}

fn ents(term: u64, indexes: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
    indexes.map(|i| ent(term, i)).collect()
}

fn show<T: Debug>(v: &T) -> String {
    format!("{v:?}")
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

/// Whether an append's callback has reported it flushed.
fn fired(rx: &mut Flushed) -> bool {
    matches!(rx.now_or_never(), Some(Ok(Ok(()))))
}

async fn all_entries(log: &mut LogStore<TypeConfig>) -> Vec<Entry> {
    log.try_get_log_entries(..).await.expect("the log reads")
}

async fn apply(sm: &mut StateMachine, entries: Vec<Entry>) {
    let stream = futures_util::stream::iter(entries.into_iter().map(|e| Ok((e, None))));
    sm.apply(stream).await.expect("apply");
}

/// The key-value pairs `entries` leave, applied to `kv`.
fn model_apply(kv: &mut BTreeMap<String, String>, entries: &[Entry]) {
    for e in entries {
        if let openraft::EntryPayload::Normal(Request::Set { key, value }) = &e.payload {
            kv.insert(key.clone(), value.clone());
        }
    }
}

async fn read_kv(sm: &StateMachine) -> BTreeMap<String, String> {
    (0..7)
        .filter_map(|k| {
            let key = format!("k{k}");
            sm.get(&key).expect("a read").map(|v| (key, v))
        })
        .collect()
}

/// Checks the log is exactly `(last_purged, last]`, consecutive, each entry
/// stored at its own index.
async fn check_log_shape(log: &mut LogStore<TypeConfig>, what: &str) -> Vec<Entry> {
    let state = log.get_log_state().await.expect("the log state reads");
    let entries = all_entries(log).await;
    let first = state.last_purged_log_id.map_or(0, |id| id.index + 1);
    let first = if state.last_purged_log_id.is_none() && !entries.is_empty() {
        entries[0].log_id.index
    } else {
        first
    };
    for (k, e) in entries.iter().enumerate() {
        assert_eq!(
            e.log_id.index,
            first + k as u64,
            "{what}: a gap or a resurrected entry; log state {state:?}, indexes {:?}",
            entries.iter().map(|e| e.log_id.index).collect::<Vec<_>>()
        );
    }
    match entries.last() {
        Some(e) => assert_eq!(state.last_log_id, Some(e.log_id), "{what}: last_log_id"),
        None => assert_eq!(state.last_log_id, state.last_purged_log_id, "{what}: empty log"),
    }
    entries
}

// ---------------------------------------------------------------- votes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_vote_survives_a_crash_with_any_tear_of_the_unsynced_tail() {
    for mode in modes() {
        let machine = Machine::new();
        let (mut log, sm) = machine.stores();
        log.save_vote(&Vote::new(1, 1)).await.expect("vote");
        append_flushed(&mut log, ents(1, 1..=3)).await;
        log.save_vote(&Vote::new(2, 2)).await.expect("vote");
        let vote = Vote::new_committed(2, 2);
        log.save_vote(&vote).await.expect("vote");
        // Unsynced work behind the vote.
        machine.wal.hold();
        let _unflushed = append(&mut log, ents(2, 4..=6)).await;
        log.save_committed(Some(log_id(1, 3))).await.expect("committed");
        let after = machine.crash(mode, (log, sm));

        let (mut log, _sm) = after.stores();
        assert_eq!(
            log.read_vote().await.expect("the vote reads"),
            Some(vote),
            "{mode:?}: save_vote returned, so the vote must survive"
        );
        check_log_shape(&mut log, &format!("{mode:?}")).await;
    }
}

// ---------------------------------------------------------------- appends

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushed_entries_survive_and_unflushed_ones_leave_no_gap_or_half_entry() {
    let mut tails_kept = 0;
    for mode in modes() {
        let machine = Machine::new();
        let (mut log, sm) = machine.stores();
        append_flushed(&mut log, ents(1, 1..=5)).await;
        log.database().checkpoint().expect("checkpoint");
        append_flushed(&mut log, ents(1, 6..=8)).await;
        machine.wal.hold();
        let mut pending = Vec::new();
        for range in [9..=9, 10..=11, 12..=14] {
            pending.push(append(&mut log, ents(1, range)).await);
        }
        let after = machine.crash(mode, (log, sm));

        let (mut log, _sm) = after.stores();
        let entries = check_log_shape(&mut log, &format!("{mode:?}")).await;
        assert!(
            entries.len() >= 8,
            "{mode:?}: flushed entries lost: {} left",
            entries.len()
        );
        assert!(entries.len() <= 14, "{mode:?}: entries from nowhere");
        tails_kept += usize::from(entries.len() > 8);
        for e in &entries {
            assert_eq!(show(e), show(&ent(1, e.log_id.index)), "{mode:?}: a damaged entry");
        }
    }
    // The scenario reaches unsynced tails at all: some crash kept some.
    assert!(
        tails_kept > 0,
        "no crash kept an unflushed entry: the tails were never on disk"
    );
}

// ---------------------------------------------------------------- truncation

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncation_then_new_entries_never_mix_with_the_truncated_ones() {
    for checkpoint in [false, true] {
        for mode in modes() {
            let what = format!("{mode:?}, checkpoint {checkpoint}");
            let machine = Machine::new();
            let (mut log, sm) = machine.stores();
            append_flushed(&mut log, ents(1, 1..=10)).await;
            if checkpoint {
                // The old entries in the data file, the truncation in the WAL.
                log.database().checkpoint().expect("checkpoint");
            }
            log.truncate_after(Some(log_id(1, 5))).await.expect("truncate");
            append_flushed(&mut log, ents(2, 6..=6)).await;
            machine.wal.hold();
            let _unflushed = append(&mut log, ents(2, 7..=8)).await;
            let after = machine.crash(mode, (log, sm));

            let (mut log, _sm) = after.stores();
            let entries = check_log_shape(&mut log, &what).await;
            assert!(entries.len() >= 6, "{what}: flushed entry 6 (term 2) lost");
            assert!(
                entries.len() <= 8,
                "{what}: truncated entries came back: {}",
                entries.len()
            );
            for e in &entries {
                let term = if e.log_id.index <= 5 { 1 } else { 2 };
                assert_eq!(show(e), show(&ent(term, e.log_id.index)), "{what}: wrong entry");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_log_truncation_survives_a_crash() {
    for mode in modes() {
        let machine = Machine::new();
        let (mut log, sm) = machine.stores();
        append_flushed(&mut log, ents(1, 1..=6)).await;
        log.database().checkpoint().expect("checkpoint");
        log.truncate_after(None).await.expect("truncate");
        machine.wal.hold();
        let _unflushed = append(&mut log, ents(2, 1..=2)).await;
        let after = machine.crash(mode, (log, sm));

        let (mut log, _sm) = after.stores();
        let entries = check_log_shape(&mut log, &format!("{mode:?}")).await;
        assert!(entries.len() <= 2, "{mode:?}: truncated entries came back");
        for e in &entries {
            assert_eq!(show(e), show(&ent(2, e.log_id.index)), "{mode:?}: wrong entry");
        }
    }
}

// ---------------------------------------------------------------- purge

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_then_crash_leaves_a_consistent_log_state() {
    for mode in modes() {
        let what = format!("{mode:?}");
        let machine = Machine::new();
        let (mut log, sm) = machine.stores();
        append_flushed(&mut log, ents(1, 1..=20)).await;
        log.database().checkpoint().expect("checkpoint");
        log.purge(log_id(1, 10)).await.expect("purge");
        // A flushed append behind it makes the first purge durable.
        append_flushed(&mut log, ents(1, 21..=22)).await;
        log.purge(log_id(1, 15)).await.expect("purge");
        machine.wal.hold();
        let _unflushed = append(&mut log, ents(1, 23..=23)).await;
        log.purge(log_id(1, 18)).await.expect("purge");
        let after = machine.crash(mode, (log, sm));

        let (mut log, _sm) = after.stores();
        let state = log.get_log_state().await.expect("log state");
        let purged = state.last_purged_log_id.map(|id| id.index);
        assert!(
            matches!(purged, Some(10 | 15 | 18)),
            "{what}: last purged {purged:?} (10 was durable)"
        );
        let entries = check_log_shape(&mut log, &what).await;
        assert!(
            entries.first().map(|e| e.log_id.index) == purged.map(|p| p + 1),
            "{what}: first entry {:?} after purge {purged:?}",
            entries.first().map(|e| e.log_id)
        );
        assert!(
            entries.last().map(|e| e.log_id.index) >= Some(22),
            "{what}: flushed 22 lost"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_past_the_log_end_reads_back_as_the_last_log_id() {
    let machine = Machine::new();
    let (mut log, sm) = machine.stores();
    append_flushed(&mut log, ents(1, 1..=5)).await;
    // openraft purges up to an installed snapshot, which may lie past the log.
    log.purge(log_id(2, 30)).await.expect("purge");
    append_flushed(&mut log, ents(2, 31..=31)).await;
    let after = machine.crash(TearMode::DropAll, (log, sm));
    let (mut log, _sm) = after.stores();
    let state = log.get_log_state().await.expect("log state");
    assert_eq!(state.last_purged_log_id, Some(log_id(2, 30)));
    assert_eq!(state.last_log_id, Some(log_id(2, 31)));
    let entries = check_log_shape(&mut log, "purge past end").await;
    assert_eq!(entries.len(), 1);
}

// ---------------------------------------------------------------- committed and apply

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_never_passes_the_durable_committed_id_or_the_log() {
    for mode in modes() {
        let what = format!("{mode:?}");
        let machine = Machine::new();
        let (mut log, mut sm) = machine.stores();
        let all = ents(1, 1..=12);
        append_flushed(&mut log, all[..6].to_vec()).await;
        log.save_committed(Some(log_id(1, 3))).await.expect("committed");
        apply(&mut sm, all[..3].to_vec()).await;
        log.save_committed(Some(log_id(1, 6))).await.expect("committed");
        apply(&mut sm, all[3..6].to_vec()).await;
        machine.wal.hold();
        let _unflushed = append(&mut log, all[6..12].to_vec()).await;
        log.save_committed(Some(log_id(1, 9))).await.expect("committed");
        let after = machine.crash(mode, (log, sm));

        let (mut log, mut sm) = after.stores();
        let committed = log.read_committed().await.expect("committed reads");
        let (applied, _) = sm.applied_state().await.expect("applied reads");
        let entries = check_log_shape(&mut log, &what).await;
        assert!(
            applied <= committed,
            "{what}: applied {applied:?} ahead of committed {committed:?}"
        );
        assert!(
            committed.map(|c| c.index) <= entries.last().map(|e| e.log_id.index),
            "{what}: committed {committed:?} past the log"
        );
        let n = applied.map_or(0, |a| a.index) as usize;
        let mut kv = BTreeMap::new();
        model_apply(&mut kv, &all[..n]);
        assert_eq!(read_kv(&sm).await, kv, "{what}: kv does not match applied {applied:?}");
    }
}

// ---------------------------------------------------------------- snapshots

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_built_snapshot_survives_with_the_state_it_covers() {
    for mode in modes() {
        let what = format!("{mode:?}");
        let machine = Machine::new();
        let (mut log, mut sm) = machine.stores();
        let all = ents(1, 1..=14);
        append_flushed(&mut log, all[..10].to_vec()).await;
        log.save_committed(Some(log_id(1, 10))).await.expect("committed");
        apply(&mut sm, all[..10].to_vec()).await;
        let built = sm.get_snapshot_builder().await.build_snapshot().await.expect("build");
        assert_eq!(built.meta.last_log_id, Some(log_id(1, 10)));
        log.purge(log_id(1, 8)).await.expect("purge");
        append_flushed(&mut log, all[10..12].to_vec()).await;
        log.save_committed(Some(log_id(1, 12))).await.expect("committed");
        apply(&mut sm, all[10..12].to_vec()).await;
        machine.wal.hold();
        let _unflushed = append(&mut log, all[12..14].to_vec()).await;
        let after = machine.crash(mode, (log, sm));

        let (mut log, mut sm) = after.stores();
        let snapshot = sm.get_current_snapshot().await.expect("reads").expect("a snapshot");
        assert_eq!(snapshot.meta, built.meta, "{what}: snapshot meta");
        assert_eq!(snapshot.snapshot, built.snapshot, "{what}: snapshot data");
        let (applied, _) = sm.applied_state().await.expect("applied");
        assert!(
            applied >= Some(log_id(1, 10)),
            "{what}: applied {applied:?} behind the snapshot"
        );
        let n = applied.map_or(0, |a| a.index) as usize;
        let mut kv = BTreeMap::new();
        model_apply(&mut kv, &all[..n]);
        assert_eq!(read_kv(&sm).await, kv, "{what}: kv vs applied {applied:?}");
        check_log_shape(&mut log, &what).await;
    }
}

/// A snapshot of `n` entries, built on a machine of its own.
async fn source_snapshot(n: u64) -> (sluicedb_raft::Snapshot, BTreeMap<String, String>) {
    let machine = Machine::new();
    let (mut log, mut sm) = machine.stores();
    let all = ents(3, 1..=n);
    append_flushed(&mut log, all.clone()).await;
    log.save_committed(Some(log_id(3, n))).await.expect("committed");
    apply(&mut sm, all.clone()).await;
    let snapshot = sm.get_snapshot_builder().await.build_snapshot().await.expect("build");
    let mut kv = BTreeMap::new();
    model_apply(&mut kv, &all);
    (snapshot, kv)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installed_snapshot_survives_and_entries_apply_after_it() {
    let (source, source_kv) = source_snapshot(50).await;
    for mode in modes() {
        let what = format!("{mode:?}");
        let machine = Machine::new();
        let (mut log, mut sm) = machine.stores();
        let old = ents(1, 1..=10);
        append_flushed(&mut log, old.clone()).await;
        log.save_committed(Some(log_id(1, 5))).await.expect("committed");
        apply(&mut sm, old[..5].to_vec()).await;
        log.database().checkpoint().expect("checkpoint");
        // As openraft installs a conflicting snapshot: truncate, install, purge.
        log.truncate_after(Some(log_id(1, 5))).await.expect("truncate");
        let meta: SnapshotMeta = source.meta.clone();
        sm.install_snapshot(&meta, source.snapshot.clone())
            .await
            .expect("install");
        log.purge(log_id(3, 50)).await.expect("purge");
        machine.wal.hold();
        let _unflushed = append(&mut log, ents(3, 51..=52)).await;
        let after = machine.crash(mode, (log, sm));

        let (mut log, mut sm) = after.stores();
        let (applied, membership) = sm.applied_state().await.expect("applied");
        assert_eq!(applied, meta.last_log_id, "{what}: applied after install");
        assert_eq!(membership, meta.last_membership, "{what}: membership");
        assert_eq!(read_kv(&sm).await, source_kv, "{what}: kv after install");
        let current = sm.get_current_snapshot().await.expect("reads").expect("a snapshot");
        assert_eq!(current.meta, meta, "{what}: current snapshot");
        let entries = check_log_shape(&mut log, &what).await;
        for e in &entries {
            assert!(
                e.log_id.index <= 5 || e.log_id.leader_id.term == 3,
                "{what}: truncated entry {} back",
                e.log_id
            );
        }

        // Life goes on after the snapshot.
        let state = log.get_log_state().await.expect("log state");
        if state.last_log_id < Some(log_id(3, 50)) {
            log.purge(log_id(3, 50)).await.expect("purge");
        }
        let next = ents(3, 51..=53);
        log.truncate_after(Some(log_id(3, 50))).await.expect("truncate");
        append_flushed(&mut log, next.clone()).await;
        log.save_committed(Some(log_id(3, 53))).await.expect("committed");
        apply(&mut sm, next.clone()).await;
        let mut kv = source_kv.clone();
        model_apply(&mut kv, &next);
        assert_eq!(read_kv(&sm).await, kv, "{what}: kv after applying past the snapshot");
        let again = after.crash(TearMode::DropAll, (log, sm));
        let (mut log, mut sm) = again.stores();
        let (applied, _) = sm.applied_state().await.expect("applied");
        assert!(
            applied >= Some(log_id(3, 50)),
            "{what}: applied went behind the snapshot"
        );
        let n = applied.map_or(50, |a| a.index);
        let mut kv = source_kv.clone();
        model_apply(&mut kv, &next[..(n - 50) as usize]);
        assert_eq!(
            read_kv(&sm).await,
            kv,
            "{what}: kv vs applied {applied:?} after second crash"
        );
        check_log_shape(&mut log, &what).await;
    }
}

// ---------------------------------------------------------------- model

/// What the log store's reads show.
#[derive(Clone, Debug, PartialEq)]
struct Image {
    vote: Option<Vote>,
    committed: Option<LogId>,
    last_purged: Option<LogId>,
    last_log: Option<LogId>,
    entries: Vec<String>,
}

#[derive(Clone, Default)]
struct Model {
    vote: Option<Vote>,
    committed: Option<LogId>,
    last_purged: Option<LogId>,
    log: BTreeMap<u64, Entry>,
}

impl Model {
    fn image(&self) -> Image {
        Image {
            vote: self.vote,
            committed: self.committed,
            last_purged: self.last_purged,
            last_log: self.log.values().next_back().map(|e| e.log_id).or(self.last_purged),
            entries: self.log.values().map(show).collect(),
        }
    }
    fn last_index(&self) -> u64 {
        self.log
            .keys()
            .next_back()
            .copied()
            .or(self.last_purged.map(|p| p.index))
            .unwrap_or(0)
    }
    fn first_index(&self) -> u64 {
        self.last_purged.map_or(1, |p| p.index + 1)
    }
}

async fn read_image(log: &mut LogStore<TypeConfig>) -> Image {
    let state = log.get_log_state().await.expect("log state");
    Image {
        vote: log.read_vote().await.expect("vote"),
        committed: log.read_committed().await.expect("committed"),
        last_purged: state.last_purged_log_id,
        last_log: state.last_log_id,
        entries: all_entries(log).await.iter().map(show).collect(),
    }
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_crashes_with_mixed_operations_keep_a_durable_prefix() {
    for seed in 1..=4u64 {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let mut machine = Machine::new();
        let mut model = Model::default();
        let mut term = 1;
        for round in 0..6 {
            let what = format!("seed {seed}, round {round}");
            let (mut log, sm) = machine.stores();
            assert_eq!(read_image(&mut log).await, model.image(), "{what}: reopen");
            // The states after each commit, and how far they are known durable.
            let mut states = vec![model.image()];
            let mut durable = 0;
            let mut pending: Vec<(usize, Flushed)> = Vec::new();
            let held_from = 10 + rng.below(8);
            for step in 0..(held_from + 4) {
                let held = step >= held_from;
                if step == held_from {
                    machine.wal.hold();
                }
                let op = rng.below(10);
                match op {
                    0..=4 => {
                        let from = model.last_index() + 1;
                        let n = 1 + rng.below(3);
                        let batch = ents(term, from..=from + n - 1);
                        for e in &batch {
                            model.log.insert(e.log_id.index, e.clone());
                        }
                        let rx = append(&mut log, batch).await;
                        states.push(model.image());
                        if !held && rng.below(2) == 0 {
                            rx.await.expect("callback").expect("flushed");
                            durable = states.len() - 1;
                        } else {
                            pending.push((states.len() - 1, rx));
                        }
                    }
                    5 if !held => {
                        // Truncate within the unpurged, uncommitted tail; a
                        // new term follows.
                        let floor = model.first_index().max(model.committed.map_or(0, |c| c.index + 1));
                        let last = model.last_index();
                        if last >= floor {
                            let since = floor + rng.below(last - floor + 1);
                            let kept = model.log.get(&(since - 1)).map(|e| e.log_id).or(model.last_purged);
                            log.truncate_after(kept).await.expect("truncate");
                            model.log.retain(|i, _| *i < since);
                            term += 1;
                            states.push(model.image());
                            durable = states.len() - 1;
                        }
                    }
                    6 => {
                        let upto = model.committed.map_or(0, |c| c.index);
                        if upto >= model.first_index() && model.log.contains_key(&upto) {
                            let id = model.log[&upto].log_id;
                            log.purge(id).await.expect("purge");
                            model.log.retain(|i, _| *i > upto);
                            model.last_purged = Some(id);
                            states.push(model.image());
                        }
                    }
                    7 => {
                        let last = model.last_index();
                        let from = model.committed.map_or(0, |c| c.index).max(model.first_index());
                        if last >= from && last > 0 {
                            let at = from + rng.below(last - from + 1);
                            if let Some(e) = model.log.get(&at) {
                                let id = e.log_id;
                                log.save_committed(Some(id)).await.expect("committed");
                                model.committed = Some(id);
                                states.push(model.image());
                            }
                        }
                    }
                    8 if !held => {
                        let vote = Vote::new(term + 1, 1 + rng.below(3));
                        term += 1;
                        log.save_vote(&vote).await.expect("vote");
                        model.vote = Some(vote);
                        states.push(model.image());
                        durable = states.len() - 1;
                    }
                    9 if !held => {
                        log.database().checkpoint().expect("checkpoint");
                    }
                    _ => {}
                }
            }
            for (state, rx) in &mut pending {
                if fired(rx) {
                    durable = durable.max(*state);
                }
            }
            let mode = match rng.below(4) {
                0 => TearMode::DropAll,
                1 => TearMode::KeepAll,
                _ => TearMode::Random(rng.next()),
            };
            machine = machine.crash(mode, (log, sm));
            let (mut log, sm) = machine.stores();
            let got = read_image(&mut log).await;
            let allowed = &states[durable..];
            assert!(
                allowed.contains(&got),
                "{what}, {mode:?}: recovered a state no durable prefix explains\n got {got:#?}\n last durable {:#?}\n newest {:#?}",
                states[durable],
                states.last()
            );
            // Carry the recovered state on as the model.
            model.vote = got.vote;
            model.committed = got.committed;
            model.last_purged = got.last_purged;
            model.log = all_entries(&mut log)
                .await
                .into_iter()
                .map(|e| (e.log_id.index, e))
                .collect();
            term = term.max(model.log.values().map(|e| e.log_id.leader_id.term).max().unwrap_or(0)) + 1;
            if let Some(v) = model.vote {
                term = term.max(v.leader_id.term + 1);
            }
            drop((log, sm));
            // Let the next round's open replay from this recovered disk.
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_drop_without_close_keeps_everything_acknowledged() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("node.sluice");
    let vote = Vote::new_committed(4, 1);
    {
        let (mut log, mut sm) = sluicedb_raft::open(&path).expect("open");
        log.save_vote(&vote).await.expect("vote");
        append_flushed(&mut log, ents(4, 1..=5)).await;
        log.save_committed(Some(log_id(4, 5))).await.expect("committed");
        apply(&mut sm, ents(4, 1..=5)).await;
        log.purge(log_id(4, 2)).await.expect("purge");
    }
    let (mut log, mut sm) = sluicedb_raft::open(&path).expect("reopen");
    assert_eq!(log.read_vote().await.expect("vote"), Some(vote));
    let entries = check_log_shape(&mut log, "clean drop").await;
    assert_eq!(entries.len(), 3);
    let (applied, _) = sm.applied_state().await.expect("applied");
    assert_eq!(applied, Some(log_id(4, 5)));
}

// ---------------------------------------------------------------- no early acknowledgement

/// Whether `fut` is still pending after the runtime had a while to run it
/// (a slow machine can only make it look more pending, never less).
async fn stays_pending<F: std::future::Future>(fut: F) -> bool {
    tokio::time::timeout(std::time::Duration::from_millis(200), fut)
        .await
        .is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_reported_durable_while_the_wal_cannot_sync() {
    let (source, _) = source_snapshot(5).await;
    let machine = Machine::new();
    let (mut log, mut sm) = machine.stores();
    append_flushed(&mut log, ents(1, 1..=6)).await;
    log.save_committed(Some(log_id(1, 4))).await.expect("committed");
    apply(&mut sm, ents(1, 1..=4)).await;
    machine.wal.hold();

    let mut rx = append(&mut log, ents(1, 7..=7)).await;
    assert!(
        stays_pending(&mut rx).await,
        "append's callback fired while no sync could run"
    );
    let mut l = log.clone();
    assert!(
        stays_pending(async move { l.save_vote(&Vote::new(9, 1)).await }).await,
        "save_vote returned while no sync could run"
    );
    let mut l = log.clone();
    assert!(
        stays_pending(async move { l.truncate_after(Some(log_id(1, 6))).await }).await,
        "truncate_after returned while no sync could run"
    );
    let mut b = sm.get_snapshot_builder().await;
    assert!(
        stays_pending(async move { b.build_snapshot().await }).await,
        "build_snapshot returned while no sync could run"
    );
    let mut s = sm.clone();
    let meta = source.meta.clone();
    let data = source.snapshot.clone();
    assert!(
        stays_pending(async move { s.install_snapshot(&meta, data).await }).await,
        "install_snapshot returned while no sync could run"
    );
    let after = machine.crash(TearMode::DropAll, (log, sm));
    let (mut log, _sm) = after.stores();
    assert_eq!(log.read_vote().await.expect("vote"), None);
    check_log_shape(&mut log, "held").await;
}

// ---------------------------------------------------------------- crash inside a checkpoint

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_power_cut_at_every_step_of_a_checkpoint_keeps_truncation_and_purge() {
    let mut completed = false;
    let mut cut = 0;
    while !completed && cut < 400 {
        let what = format!("cut after {cut} data-file ops");
        let machine = Machine::new();
        let (mut log, sm) = machine.stores();
        append_flushed(&mut log, ents(1, 1..=10)).await;
        log.database().checkpoint().expect("checkpoint");
        log.truncate_after(Some(log_id(1, 5))).await.expect("truncate");
        append_flushed(&mut log, ents(2, 6..=7)).await;
        log.purge(log_id(1, 3)).await.expect("purge");
        append_flushed(&mut log, ents(2, 8..=8)).await;
        machine.disk.data.cut_power_after(machine.disk.data.ops() + cut);
        completed = log.database().checkpoint().is_ok();
        let after = machine.crash(TearMode::Random(cut), (log, sm));

        let (mut log, _sm) = after.stores();
        let state = log.get_log_state().await.expect("log state");
        assert_eq!(
            state.last_purged_log_id,
            Some(log_id(1, 3)),
            "{what}: purge (durable) lost"
        );
        let entries = check_log_shape(&mut log, &what).await;
        let expected: Vec<String> = (4..=8).map(|i| show(&ent(if i <= 5 { 1 } else { 2 }, i))).collect();
        assert_eq!(entries.iter().map(show).collect::<Vec<_>>(), expected, "{what}: log");
        cut += 1;
    }
    assert!(completed, "a checkpoint never completed");
}
