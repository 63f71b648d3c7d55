//! Adversarial review: I/O errors (EIO, ENOSPC, short writes, failed
//! fsyncs) in background work and at reopen.
//!
//! Storage here models the fsync-failure semantics of Linux ("fsyncgate"):
//! a failed `sync_data` loses every write since the last successful sync for
//! good (reads still see them, as from the page cache, but no later sync
//! makes them durable). An engine that retries a failed sync as if the data
//! were safe then loses acknowledged commits on reopen.
//!
//! Contract checked in every scenario: no panic, no hang (watchdog), a clear
//! error; afterwards either the engine keeps working or refuses
//! consistently; every commit acknowledged durable is present after
//! reopening the durable image on healthy storage, no commit is partly
//! present, `check_integrity` passes and `len()` matches the entries.

mod common;

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use sluicedb::btree::bytewise;
use sluicedb::engine::{Engine, EngineOptions};
use sluicedb::io::{LogDir, StorageBackend};
use sluicedb::{Builder, Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");
/// Keys per commit.
const PER: u64 = 8;

// ---------------------------------------------------------------- storage

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Data,
    Wal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
    SetLen,
    Sync,
    Create,
    Remove,
    Rename,
}

/// Which operation fails: the `nth` (from 0, counted once armed) operation
/// of `target` whose kind is in `kinds`; once, or from then on (`sticky`);
/// a failed write may land half of its bytes first (`short`).
#[derive(Clone, Debug)]
struct Rule {
    target: Target,
    kinds: Vec<Kind>,
    nth: u64,
    err: io::ErrorKind,
    sticky: bool,
    short: bool,
}

#[derive(Default, Debug)]
struct PlanInner {
    armed: bool,
    counted: u64,
    rule: Option<Rule>,
    fired: u64,
}

/// A fault plan shared by a data file and a WAL directory.
#[derive(Clone, Default, Debug)]
struct Plan(Arc<Mutex<PlanInner>>);

impl Plan {
    fn arm(&self, rule: Rule) {
        let mut p = self.0.lock();
        p.armed = true;
        p.counted = 0;
        p.rule = Some(rule);
    }

    fn fired(&self) -> u64 {
        self.0.lock().fired
    }

    fn counted(&self) -> u64 {
        self.0.lock().counted
    }

    /// `Some((error, short))` if this operation fails.
    fn check(&self, target: Target, kind: Kind) -> Option<(io::Error, bool)> {
        let mut p = self.0.lock();
        if !p.armed {
            return None;
        }
        let rule = p.rule.clone()?;
        if rule.target != target || !rule.kinds.contains(&kind) {
            return None;
        }
        let n = p.counted;
        p.counted += 1;
        let fail = if rule.sticky { n >= rule.nth } else { n == rule.nth };
        if fail {
            p.fired += 1;
            Some((
                io::Error::new(
                    rule.err,
                    format!("review: injected {kind:?} failure on {target:?} op {n}"),
                ),
                rule.short,
            ))
        } else {
            None
        }
    }
}

#[derive(Debug)]
enum Op {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

#[derive(Default, Debug)]
struct FileState {
    current: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<Op>,
}

fn put(buf: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let end = offset as usize + data.len();
    if buf.len() < end {
        buf.resize(end, 0);
    }
    buf[offset as usize..end].copy_from_slice(data);
}

impl FileState {
    fn write(&mut self, offset: u64, data: &[u8]) {
        put(&mut self.current, offset, data);
        self.pending.push(Op::Write(offset, data.to_vec()));
    }

    fn set_len(&mut self, len: u64) {
        self.current.resize(len as usize, 0);
        self.pending.push(Op::SetLen(len));
    }

    fn sync_ok(&mut self) {
        for op in self.pending.drain(..) {
            match op {
                Op::Write(o, d) => put(&mut self.durable, o, &d),
                Op::SetLen(l) => self.durable.resize(l as usize, 0),
            }
        }
    }

    /// fsyncgate: the writes since the last good sync never become durable.
    fn sync_failed(&mut self) {
        self.pending.clear();
    }
}

/// One file (data file or WAL segment) under a plan.
#[derive(Clone, Debug)]
struct GateFile {
    state: Arc<Mutex<FileState>>,
    plan: Plan,
    target: Target,
}

impl GateFile {
    /// Only what was synced (`keep_all` false), or every write made, synced
    /// or not (`keep_all`: all unsynced writes happened to reach the disk).
    fn image(&self, keep_all: bool) -> Self {
        let durable = if keep_all {
            self.state.lock().current.clone()
        } else {
            self.state.lock().durable.clone()
        };
        Self {
            state: Arc::new(Mutex::new(FileState {
                current: durable.clone(),
                durable,
                pending: Vec::new(),
            })),
            plan: Plan::default(),
            target: self.target,
        }
    }
}

impl StorageBackend for GateFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.state.lock().current.len() as u64)
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if let Some((e, _)) = self.plan.check(self.target, Kind::Read) {
            return Err(e);
        }
        let s = self.state.lock();
        let end = offset as usize + buf.len();
        let src = s
            .current
            .get(offset as usize..end)
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        if let Some((e, short)) = self.plan.check(self.target, Kind::Write) {
            if short && data.len() > 1 {
                self.state.lock().write(offset, &data[..data.len() / 2]);
            }
            return Err(e);
        }
        self.state.lock().write(offset, data);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        if let Some((e, _)) = self.plan.check(self.target, Kind::SetLen) {
            return Err(e);
        }
        self.state.lock().set_len(len);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut s = self.state.lock();
        if let Some((e, _)) = self.plan.check(self.target, Kind::Sync) {
            s.sync_failed();
            return Err(e);
        }
        s.sync_ok();
        Ok(())
    }
}

/// A WAL directory of [`GateFile`]s; creations, removals and renames are
/// durable when they succeed.
#[derive(Clone, Debug)]
struct GateDir {
    files: Arc<Mutex<BTreeMap<String, GateFile>>>,
    plan: Plan,
    /// What `spare_segments` answers.
    spares: bool,
}

impl GateDir {
    fn new(plan: Plan) -> Self {
        Self {
            files: Arc::default(),
            plan,
            spares: false,
        }
    }

    fn image(&self, keep_all: bool) -> Self {
        let files = self
            .files
            .lock()
            .iter()
            .map(|(n, f)| (n.clone(), f.image(keep_all)))
            .collect();
        Self {
            files: Arc::new(Mutex::new(files)),
            plan: Plan::default(),
            spares: self.spares,
        }
    }
}

impl LogDir for GateDir {
    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.files.lock().keys().cloned().collect())
    }

    fn create(&self, name: &str) -> io::Result<Box<dyn StorageBackend>> {
        if let Some((e, _)) = self.plan.check(Target::Wal, Kind::Create) {
            return Err(e);
        }
        let mut files = self.files.lock();
        if files.contains_key(name) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, name.to_string()));
        }
        let f = GateFile {
            state: Arc::default(),
            plan: self.plan.clone(),
            target: Target::Wal,
        };
        files.insert(name.to_string(), f.clone());
        Ok(Box::new(f))
    }

    fn open(&self, name: &str) -> io::Result<Box<dyn StorageBackend>> {
        let f = self
            .files
            .lock()
            .get(name)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, name.to_string()))?;
        Ok(Box::new(GateFile {
            plan: self.plan.clone(),
            ..f
        }))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        if let Some((e, _)) = self.plan.check(Target::Wal, Kind::Remove) {
            return Err(e);
        }
        self.files
            .lock()
            .remove(name)
            .map(drop)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, name.to_string()))
    }

    fn spare_segments(&self) -> bool {
        self.spares
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        if let Some((e, _)) = self.plan.check(Target::Wal, Kind::Rename) {
            return Err(e);
        }
        let mut files = self.files.lock();
        let f = files
            .remove(from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, from.to_string()))?;
        files.insert(to.to_string(), f);
        Ok(())
    }
}

/// A data file and WAL directory on one plan.
#[derive(Clone, Debug)]
struct Disk {
    data: GateFile,
    wal: GateDir,
    plan: Plan,
}

impl Disk {
    fn new() -> Self {
        let plan = Plan::default();
        Self {
            data: GateFile {
                state: Arc::default(),
                plan: plan.clone(),
                target: Target::Data,
            },
            wal: GateDir::new(plan.clone()),
            plan,
        }
    }

    /// What a restart on healthy storage finds: only what was synced.
    fn image(&self) -> Disk {
        self.image_of(false, false)
    }

    /// Both restarts worth checking: only the synced writes survived, or
    /// every write made (including those a failed sync covered, and the
    /// landed half of a failed write).
    /// Each write lands or not independently, so the two files' mixes too.
    fn images(&self) -> [(&'static str, Disk); 4] {
        [
            ("synced only", self.image_of(false, false)),
            ("all writes kept", self.image_of(true, true)),
            ("data file's unsynced writes kept", self.image_of(true, false)),
            ("WAL's unsynced writes kept", self.image_of(false, true)),
        ]
    }

    fn image_of(&self, keep_data: bool, keep_wal: bool) -> Disk {
        let plan = Plan::default();
        let mut data = self.data.image(keep_data);
        data.plan = plan.clone();
        let mut wal = self.wal.image(keep_wal);
        wal.plan = plan.clone();
        let files: Vec<String> = wal.files.lock().keys().cloned().collect();
        for name in files {
            wal.files.lock().get_mut(&name).unwrap().plan = plan.clone();
        }
        Disk { data, wal, plan }
    }
}

// ---------------------------------------------------------------- helpers

/// Runs `f` on a thread; a hang becomes a failure.
fn within<R: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => {
            let _ = handle.join();
            v
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("HANG: {what} did not finish in {secs}s"),
        Err(_) => match handle.join() {
            Err(p) => std::panic::resume_unwind(p),
            Ok(()) => unreachable!(),
        },
    }
}

fn value(i: u64) -> Vec<u8> {
    format!("commit {i:06} {}", "v".repeat(80)).into_bytes()
}

fn builder() -> Builder {
    let mut b = Builder::new();
    b.set_memtable_size(16 << 10).set_tree_commit_size(8 << 10);
    b
}

/// Commit `i`: keys `i*PER..(i+1)*PER` with values naming `i`, and removal
/// of commit `i - 3`'s first key (so flushes carry removals too).
fn commit(db: &Database, i: u64) -> Result<(), String> {
    let txn = db.begin_write().map_err(|e| format!("begin_write: {e}"))?;
    {
        let mut t = txn.open_table(T).map_err(|e| format!("open_table: {e}"))?;
        let v = value(i);
        for k in i * PER..(i + 1) * PER {
            t.insert(k, v.as_slice()).map_err(|e| format!("insert: {e}"))?;
        }
        if i >= 3 {
            t.remove((i - 3) * PER).map_err(|e| format!("remove: {e}"))?;
        }
    }
    txn.commit().map_err(|e| format!("commit: {e}"))
}

/// Which commits a reader sees: commit -> keys of it present; and `len()`.
fn observe(db: &Database) -> Result<(BTreeMap<u64, u64>, u64, u64), String> {
    let rt = db.begin_read().map_err(|e| format!("begin_read: {e}"))?;
    let t = match rt.open_table(T) {
        Ok(t) => t,
        Err(sluicedb::TableError::TableDoesNotExist(_)) => return Ok((BTreeMap::new(), 0, 0)),
        Err(e) => return Err(format!("open_table: {e}")),
    };
    let mut seen: BTreeMap<u64, u64> = BTreeMap::new();
    let mut entries = 0;
    for e in t.iter().map_err(|e| format!("iter: {e}"))? {
        let (k, v) = e.map_err(|e| format!("next: {e}"))?;
        let k = k.value();
        let i = k / PER;
        assert_eq!(v.value(), value(i).as_slice(), "key {k} has a foreign value");
        *seen.entry(i).or_default() += 1;
        entries += 1;
    }
    let len = t.len().map_err(|e| format!("len: {e}"))?;
    Ok((seen, entries, len))
}

/// Checks one observation against the run: every acked commit whole (its
/// first key may be removed by commit `i+3` if that one is present), no
/// unattempted commit, no partial commit, `len()` = entries.
fn check_observed(label: &str, obs: &(BTreeMap<u64, u64>, u64, u64), acked: &[u64], attempted: u64) {
    let (seen, entries, len) = obs;
    assert_eq!(entries, len, "{label}: len() {len} but {entries} entries iterated");
    for (&i, &n) in seen {
        assert!(i < attempted, "{label}: commit {i} was never attempted but is present");
        // Commit i+3 removes commit i's first key.
        let want = if seen.contains_key(&(i + 3)) { PER - 1 } else { PER };
        assert_eq!(
            n,
            want,
            "{label}: commit {i} or {} partly present: {n} of commit {i}'s keys",
            i + 3
        );
    }
    for &i in acked {
        assert!(
            seen.contains_key(&i),
            "{label}: acknowledged durable commit {i} is lost (present: {} commits, last {:?})",
            seen.len(),
            seen.keys().last()
        );
    }
}

/// Reopens the durable image on healthy storage and checks it.
fn check_reopen(label: &str, disk: &Disk, acked: &[u64], attempted: u64) {
    for (mode, image) in disk.images() {
        check_reopen_image(&format!("{label} [{mode}]"), image, acked, attempted);
    }
}

fn check_reopen_image(label: &str, image: Disk, acked: &[u64], attempted: u64) {
    let mut db = builder()
        .create_with_backends(image.data.clone(), image.wal.clone())
        .unwrap_or_else(|e| panic!("{label}: reopen on healthy storage failed: {e}"));
    match db.check_integrity() {
        Ok(true) => {}
        other => panic!("{label}: integrity after reopen: {other:?}"),
    }
    let obs = observe(&db).unwrap_or_else(|e| panic!("{label}: read after reopen: {e}"));
    check_observed(&format!("{label} (reopened)"), &obs, acked, attempted);
    commit(&db, 100_000).unwrap_or_else(|e| panic!("{label}: commit after reopen: {e}"));
    db.close()
        .unwrap_or_else(|e| panic!("{label}: close after reopen: {e}"));
}

/// What one faulty run did.
#[derive(Default, Debug)]
struct Run {
    acked: Vec<u64>,
    attempted: u64,
    errors: Vec<String>,
    /// The first refusal (`PreviousIo` / poisoned): `attempted` then, and
    /// the message.
    refused: Option<(u64, String)>,
}

impl Run {
    fn err(&mut self, msg: String) {
        let refusal = msg.contains("an earlier I/O error") || msg.contains("poisoned");
        if refusal && self.refused.is_none() {
            self.refused = Some((self.attempted, msg.clone()));
        }
        self.errors.push(msg);
    }
}

/// Commits `from..to`, recording what was acknowledged; checks that reads
/// (when allowed) show every acked commit and a right `len()`.
fn drive(db: &Database, run: &mut Run, from: u64, to: u64, label: &str) {
    for i in from..to {
        run.attempted = i + 1;
        match commit(db, i) {
            Ok(()) => run.acked.push(i),
            Err(e) => run.err(format!("commit {i}: {e}")),
        }
        if i % 4 == 0 {
            match observe(db) {
                Ok(obs) => check_observed(&format!("{label} live read after {i}"), &obs, &run.acked, run.attempted),
                Err(e) => run.err(format!("read after {i}: {e}")),
            }
        }
    }
}

/// Once an operation reports the engine poisoned (`PreviousIo` / poisoned),
/// no later commit may succeed: the refusal is consistent.
fn check_consistent(label: &str, run: &Run) {
    if let Some((at, why)) = &run.refused {
        let later: Vec<_> = run.acked.iter().filter(|&&i| i >= *at).collect();
        assert!(
            later.is_empty(),
            "{label}: engine refused ({why}) but later commits {later:?} succeeded"
        );
    }
}

// ---------------------------------------------------------------- tests

/// Background flush / checkpoint / tree commits: data-file operation k
/// (write, set_len or sync; syncs with fsyncgate loss) fails once, then the
/// run goes on committing, checkpointing and closes. Every acked commit
/// survives the reopen, reads while running are right, and refusals are
/// consistent.
fn data_file_sweep(kinds: &[Kind], err: io::ErrorKind, short: bool, sticky: bool, stride: u64, label: &str) {
    // Healthy run: count the armed operations.
    let total = {
        let disk = Disk::new();
        let d = disk.clone();
        within(60, "healthy", move || {
            let db = builder().create_with_backends(d.data.clone(), d.wal.clone()).unwrap();
            d.plan.arm(Rule {
                target: Target::Data,
                kinds: vec![Kind::Write, Kind::SetLen, Kind::Sync],
                nth: u64::MAX,
                err: io::ErrorKind::Other,
                sticky: false,
                short: false,
            });
            let mut run = Run::default();
            drive(&db, &mut run, 0, 60, "healthy");
            db.checkpoint().unwrap();
            drive(&db, &mut run, 60, 90, "healthy");
            db.close().unwrap();
            assert_eq!(run.acked.len(), 90, "healthy run: {:?}", run.errors);
        });
        disk.plan.counted()
    };
    let mut k = 0;
    while k < total {
        let label = format!("{label}: fail data op {k} of {total}");
        let disk = Disk::new();
        let d = disk.clone();
        let rule = Rule {
            target: Target::Data,
            kinds: kinds.to_vec(),
            nth: k,
            err,
            sticky,
            short,
        };
        let l = label.clone();
        let run = within(20, &label, move || {
            let db = builder().create_with_backends(d.data.clone(), d.wal.clone()).unwrap();
            d.plan.arm(rule);
            let mut run = Run::default();
            drive(&db, &mut run, 0, 60, &l);
            if let Err(e) = db.checkpoint() {
                run.err(format!("checkpoint: {e}"));
            }
            drive(&db, &mut run, 60, 90, &l);
            if let Err(e) = db.close() {
                run.err(format!("close: {e}"));
            }
            run
        });
        if disk.plan.fired() > 0 {
            assert!(
                !run.errors.is_empty(),
                "{label}: an injected failure was never reported to anyone"
            );
        }
        check_consistent(&label, &run);
        if std::env::var("REVIEW_TRACE").is_ok() {
            eprintln!(
                "{label}: fired {} acked {} errors {:?}",
                disk.plan.fired(),
                run.acked.len(),
                run.errors.iter().take(3).collect::<Vec<_>>()
            );
        }
        check_reopen(&label, &disk, &run.acked, run.attempted);
        k += stride;
    }
}

/// A failed data-file fsync in background work (flush, tree commit,
/// checkpoint) loses the writes it covered; nothing acked may depend on them.
#[test]
fn data_file_fsync_failure_once_then_more_commits() {
    data_file_sweep(&[Kind::Sync], io::ErrorKind::Other, false, false, 1, "sync once");
}

/// EIO on a data-file write / set_len, once, in the middle of flush passes.
#[test]
fn data_file_write_eio_once_then_more_commits() {
    data_file_sweep(
        &[Kind::Write, Kind::SetLen],
        io::ErrorKind::Other,
        true,
        false,
        3,
        "write eio once (short)",
    );
}

/// ENOSPC on every data-file write from op k on (the disk stays full).
#[test]
fn data_file_enospc_from_then_on() {
    data_file_sweep(
        &[Kind::Write, Kind::SetLen],
        io::ErrorKind::StorageFull,
        false,
        true,
        4,
        "enospc sticky",
    );
}

/// A failed checkpoint sync, then a clean close: close must not report
/// success by re-syncing as if the lost pages were safe, and everything
/// acked survives.
#[test]
fn failed_checkpoint_sync_then_close() {
    within(20, "checkpoint sync then close", || {
        for nth in 0..3 {
            let label = format!("checkpoint sync {nth} fails");
            let disk = Disk::new();
            let db = builder()
                .create_with_backends(disk.data.clone(), disk.wal.clone())
                .unwrap();
            let mut run = Run::default();
            drive(&db, &mut run, 0, 40, &label);
            assert_eq!(run.acked.len(), 40);
            disk.plan.arm(Rule {
                target: Target::Data,
                kinds: vec![Kind::Sync],
                nth,
                err: io::ErrorKind::Other,
                sticky: false,
                short: false,
            });
            let cp = db.checkpoint();
            let fired = disk.plan.fired() > 0;
            if fired {
                assert!(cp.is_err(), "{label}: checkpoint returned Ok although its sync failed");
            }
            // Later calls: each either works or refuses; commits after a
            // refusal must not succeed.
            drive(&db, &mut run, 40, 50, &label);
            let second = db.checkpoint();
            if fired && second.is_ok() {
                // A retried checkpoint may only succeed if it rewrote what the
                // failed sync lost; the reopen below checks that.
                run.err("second checkpoint ok".into());
            }
            let closed = db.close();
            if fired && closed.is_ok() {
                run.err("close ok".into());
            }
            check_consistent(&label, &run);
            check_reopen(&label, &disk, &run.acked, run.attempted);
        }
    });
}

/// ENOSPC during `compact()` (writes fail from op k on): compact returns an
/// error, later calls are consistent, nothing acked is lost.
#[test]
fn enospc_during_compact() {
    // How many data-file writes a compaction does here.
    let setup = |disk: &Disk| -> (Database, Run) {
        let db = builder()
            .create_with_backends(disk.data.clone(), disk.wal.clone())
            .unwrap();
        let mut run = Run::default();
        drive(&db, &mut run, 0, 80, "setup");
        // Remove most, so compaction has pages to move.
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(T).unwrap();
            for i in 0..60 {
                for k in i * PER..(i + 1) * PER {
                    t.remove(k).unwrap();
                }
            }
        }
        txn.commit().unwrap();
        db.checkpoint().unwrap();
        (db, run)
    };
    let total = {
        let disk = Disk::new();
        let (mut db, _) = setup(&disk);
        disk.plan.arm(Rule {
            target: Target::Data,
            kinds: vec![Kind::Write, Kind::SetLen, Kind::Sync],
            nth: u64::MAX,
            err: io::ErrorKind::StorageFull,
            sticky: true,
            short: false,
        });
        assert!(db.compact().is_ok());
        disk.plan.counted()
    };
    assert!(total > 2, "compaction did no I/O ({total})");
    for k in (0..total).step_by(((total / 25).max(1)) as usize) {
        let label = format!("compact enospc from data op {k} of {total}");
        let disk = Disk::new();
        let d = disk.clone();
        let l = label.clone();
        let run = within(20, &label, move || {
            let (mut db, mut run) = setup(&d);
            // The removals are acked too: remember them as a commit the
            // observer cannot see, so only commits 60.. are checked.
            run.acked.retain(|&i| i >= 60);
            d.plan.arm(Rule {
                target: Target::Data,
                kinds: vec![Kind::Write, Kind::SetLen, Kind::Sync],
                nth: k,
                err: io::ErrorKind::StorageFull,
                sticky: true,
                short: false,
            });
            // Whether the fault fired inside `compact`: its count of data-file
            // operations varies by one or two from run to run (found flaky: the
            // calibration's last operation fell in the `close` after it).
            let compacted = db.compact();
            let fired_inside = d.plan.fired() > 0;
            match compacted {
                Ok(_) if fired_inside => run.err("compact ok".into()),
                Ok(_) => {}
                Err(e) => run.err(format!("compact: {e}")),
            }
            drive(&db, &mut run, 80, 90, &l);
            if let Err(e) = db.close() {
                run.err(format!("close: {e}"));
            }
            run
        });
        assert!(
            !run.errors.iter().any(|e| e == "compact ok"),
            "{label}: compact returned Ok although one of its writes failed: {:?}",
            run.errors
        );
        check_consistent(&label, &run);
        if std::env::var("REVIEW_TRACE").is_ok() {
            eprintln!(
                "{label}: fired {} acked {} errors {:?}",
                disk.plan.fired(),
                run.acked.len(),
                run.errors.iter().take(3).collect::<Vec<_>>()
            );
        }
        check_reopen_after_removals(&label, &disk, &run.acked, run.attempted);
    }
}

/// As `check_reopen`, for the compaction runs (commits 0..60 were removed).
fn check_reopen_after_removals(label: &str, disk: &Disk, acked: &[u64], attempted: u64) {
    for (mode, image) in disk.images() {
        check_removals_image(&format!("{label} [{mode}]"), image, acked, attempted);
    }
}

fn check_removals_image(label: &str, image: Disk, acked: &[u64], attempted: u64) {
    let mut db = builder()
        .create_with_backends(image.data.clone(), image.wal.clone())
        .unwrap_or_else(|e| panic!("{label}: reopen on healthy storage failed: {e}"));
    match db.check_integrity() {
        Ok(true) => {}
        other => panic!("{label}: integrity after reopen: {other:?}"),
    }
    let (seen, entries, len) = observe(&db).unwrap_or_else(|e| panic!("{label}: read after reopen: {e}"));
    assert_eq!(entries, len, "{label}: len() {len} but {entries} entries");
    assert!(
        seen.keys().all(|&i| i >= 60),
        "{label}: removed commits came back: {seen:?}"
    );
    for &i in acked {
        assert!(seen.contains_key(&i), "{label}: acked commit {i} lost");
    }
    assert!(
        seen.keys().all(|&i| i < attempted),
        "{label}: unattempted commit present"
    );
    db.close()
        .unwrap_or_else(|e| panic!("{label}: close after reopen: {e}"));
}

// ------------------------------------------------ WAL rotation / retirement

fn engine_options() -> EngineOptions {
    EngineOptions {
        memtable_bytes: 16 << 10,
        max_frozen_bytes: 256 << 10,
        segment_bytes: 4 << 10,
        checkpoint_wal_bytes: 4 << 10,
        flush_commit_bytes: 8 << 10,
        // Idle checkpoints: the apply thread checkpoints on its own in the
        // pauses the runs make.
        checkpoint_interval: Duration::from_millis(2),
        ..EngineOptions::default()
    }
}

fn engine_commit(db: &Engine, i: u64) -> Result<(), String> {
    let mut w = db.begin_write().map_err(|e| format!("begin_write: {e}"))?;
    let t = w
        .open_table(b"t", b"bytes", bytewise)
        .map_err(|e| format!("open_table: {e}"))?;
    for k in i * PER..(i + 1) * PER {
        w.insert(t, &k.to_be_bytes(), &value(i))
            .map_err(|e| format!("insert: {e}"))?;
    }
    w.commit().map_err(|e| format!("commit: {e}"))
}

/// Commits present (commit -> keys) and len().
fn engine_observe(db: &Engine) -> Result<(BTreeMap<u64, u64>, u64, u64), String> {
    let txn = db.begin_read().map_err(|e| format!("begin_read: {e}"))?;
    let Some(t) = txn.open_table(b"t", bytewise).map_err(|e| format!("open_table: {e}"))? else {
        return Ok((BTreeMap::new(), 0, 0));
    };
    let mut seen: BTreeMap<u64, u64> = BTreeMap::new();
    let mut entries = 0;
    for e in txn
        .range(&t, std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
        .map_err(|e| format!("range: {e}"))?
    {
        let (k, v) = e.map_err(|e| format!("next: {e}"))?;
        let k = u64::from_be_bytes(k[..].try_into().unwrap());
        assert_eq!(v.as_bytes(), value(k / PER).as_slice());
        *seen.entry(k / PER).or_default() += 1;
        entries += 1;
    }
    let len = txn.len(&t).map_err(|e| format!("len: {e}"))?;
    Ok((seen, entries, len))
}

fn engine_check(label: &str, obs: &(BTreeMap<u64, u64>, u64, u64), acked: &[u64], attempted: u64) {
    let (seen, entries, len) = obs;
    assert_eq!(entries, len, "{label}: len() {len} but {entries} entries");
    for (&i, &n) in seen {
        assert!(i < attempted, "{label}: unattempted commit {i} present");
        assert_eq!(n, PER, "{label}: commit {i} partly present");
    }
    for &i in acked {
        assert!(
            seen.contains_key(&i),
            "{label}: acked commit {i} lost ({} present)",
            seen.len()
        );
    }
}

/// One WAL-fault run on the engine: commits with checkpoints (which retire
/// segments) and small segments (which roll often), the `nth` WAL operation
/// of `kinds` failing; then the durable image is reopened healthy.
fn wal_run(kinds: &[Kind], nth: u64, err: io::ErrorKind, sticky: bool, label: &str) -> (u64, u64) {
    engine_run(Target::Wal, kinds, nth, err, sticky, label)
}

fn engine_run(target: Target, kinds: &[Kind], nth: u64, err: io::ErrorKind, sticky: bool, label: &str) -> (u64, u64) {
    engine_run_on(Disk::new(), target, kinds, nth, err, sticky, label)
}

/// As [`wal_run`], with the fault in `target`, on `disk`.
fn engine_run_on(
    disk: Disk,
    target: Target,
    kinds: &[Kind],
    nth: u64,
    err: io::ErrorKind,
    sticky: bool,
    label: &str,
) -> (u64, u64) {
    let d = disk.clone();
    let rule = Rule {
        target,
        kinds: kinds.to_vec(),
        nth,
        err,
        sticky,
        short: true,
    };
    let l = label.to_string();
    let run = within(20, label, move || {
        let db = Engine::open(d.data.clone(), d.wal.clone(), engine_options()).unwrap();
        d.plan.arm(rule);
        let mut run = Run::default();
        for i in 0..70 {
            run.attempted = i + 1;
            match engine_commit(&db, i) {
                Ok(()) => run.acked.push(i),
                Err(e) => run.err(format!("commit {i}: {e}")),
            }
            if i % 5 == 2 {
                std::thread::sleep(Duration::from_millis(8));
            }
            if i % 25 == 24
                && let Err(e) = db.checkpoint()
            {
                run.err(format!("checkpoint after {i}: {e}"));
            }
            if i % 5 == 0 {
                match engine_observe(&db) {
                    Ok(obs) => engine_check(&format!("{l} live after {i}"), &obs, &run.acked, run.attempted),
                    Err(e) => run.err(format!("read after {i}: {e}")),
                }
            }
        }
        if let Err(e) = db.checkpoint() {
            run.err(format!("final checkpoint: {e}"));
        }
        if let Err(e) = db.retire_log() {
            run.err(format!("retire_log: {e}"));
        }
        if run.refused.is_some() {
            // The cause of a background failure stays reachable.
            let failure = db.stats().failure;
            assert!(
                failure.as_deref().is_some_and(|f| f.contains("review: injected")),
                "{l}: refused, but stats().failure does not name the cause: {failure:?}"
            );
        }
        drop(db);
        run
    });
    let fired = disk.plan.fired();
    check_consistent(label, &run);
    if std::env::var("REVIEW_TRACE").is_ok() {
        eprintln!(
            "{label}: fired {fired} acked {} errors {:?}",
            run.acked.len(),
            run.errors.iter().take(3).collect::<Vec<_>>()
        );
    }
    for (mode, image) in disk.images() {
        let label = format!("{label} [{mode}]");
        let db = Engine::open(image.data.clone(), image.wal.clone(), engine_options())
            .unwrap_or_else(|e| panic!("{label}: reopen failed: {e} (run errors {:?})", run.errors));
        let obs = engine_observe(&db).unwrap_or_else(|e| panic!("{label}: read after reopen: {e}"));
        engine_check(&format!("{label} (reopened)"), &obs, &run.acked, run.attempted);
        db.check_integrity()
            .unwrap_or_else(|e| panic!("{label}: integrity: {e}"));
        engine_commit(&db, 100_000).unwrap_or_else(|e| panic!("{label}: commit after reopen: {e}"));
    }
    (fired, disk.plan.counted())
}

/// WAL faults at every point: segment creation (rotation), header writes and
/// syncs, record writes, removal of retired segments. One failure each.
#[test]
fn wal_rotation_and_retirement_faults_once() {
    let all = [
        Kind::Write,
        Kind::SetLen,
        Kind::Sync,
        Kind::Create,
        Kind::Remove,
        Kind::Rename,
    ];
    let (_, total) = wal_run(&all, u64::MAX, io::ErrorKind::Other, false, "wal healthy");
    assert!(total > 20, "too few WAL operations: {total}");
    let stride = (total / 40).max(1);
    let mut k = 0;
    while k < total {
        wal_run(
            &all,
            k,
            io::ErrorKind::Other,
            false,
            &format!("wal op {k} of {total} fails once"),
        );
        k += stride;
    }
}

/// Segment creation fails with ENOSPC from some rotation on, for good.
#[test]
fn wal_segment_create_enospc_sticky() {
    for nth in 0..4 {
        let (fired, _) = wal_run(
            &[Kind::Create],
            nth,
            io::ErrorKind::StorageFull,
            true,
            &format!("wal create {nth} enospc"),
        );
        assert!(fired > 0 || nth > 0, "no segment was created at all");
    }
}

/// Removal of retired segments keeps failing: commits go on, reopen skips
/// the leftovers.
#[test]
fn wal_segment_remove_fails_always() {
    let (fired, _) = wal_run(
        &[Kind::Remove],
        0,
        io::ErrorKind::Other,
        true,
        "wal remove always fails",
    );
    assert!(fired > 0, "no segment was ever retired");
}

// ---------------------------------------------------------------- reopen

/// Failures during reopen (recovery replays the WAL, may checkpoint and
/// delete segments): the open fails cleanly or succeeds correctly, and a
/// later open on healthy storage still has every acked commit.
#[test]
fn faults_during_reopen() {
    // A database whose WAL holds commits not yet in the tree.
    let base = Disk::new();
    let mut acked = Vec::new();
    {
        let db = Engine::open(base.data.clone(), base.wal.clone(), engine_options()).unwrap();
        for i in 0..50 {
            engine_commit(&db, i).unwrap();
            acked.push(i);
        }
        // No checkpoint at drop? The engine checkpoints on drop only
        // through `Database`; the engine's drop leaves the WAL.
        drop(db);
    }
    let base = base.image();
    for target in [Target::Data, Target::Wal] {
        // Count the operations of a healthy reopen.
        let probe = base.image();
        probe.plan.arm(Rule {
            target,
            kinds: vec![
                Kind::Write,
                Kind::SetLen,
                Kind::Sync,
                Kind::Create,
                Kind::Remove,
                Kind::Rename,
            ],
            nth: u64::MAX,
            err: io::ErrorKind::Other,
            sticky: false,
            short: false,
        });
        let p = probe.clone();
        within(20, "healthy reopen", move || {
            let db = Engine::open(p.data.clone(), p.wal.clone(), engine_options()).unwrap();
            db.checkpoint().unwrap();
            drop(db);
        });
        let total = probe.plan.counted();
        if std::env::var("REVIEW_TRACE").is_ok() {
            eprintln!("reopen {target:?}: {total} operations");
        }
        for k in 0..total.min(60) {
            for sticky in [false, true] {
                let label = format!("reopen, {target:?} op {k} of {total} fails (sticky {sticky})");
                let disk = base.image();
                disk.plan.arm(Rule {
                    target,
                    kinds: vec![
                        Kind::Write,
                        Kind::SetLen,
                        Kind::Sync,
                        Kind::Create,
                        Kind::Remove,
                        Kind::Rename,
                    ],
                    nth: k,
                    err: io::ErrorKind::Other,
                    sticky,
                    short: true,
                });
                let d = disk.clone();
                let l = label.clone();
                let acked2 = acked.clone();
                let extra = within(20, &label, move || {
                    let mut extra = Vec::new();
                    if let Ok(db) = Engine::open(d.data.clone(), d.wal.clone(), engine_options()) {
                        if let Ok(obs) = engine_observe(&db) {
                            engine_check(&format!("{l} (opened)"), &obs, &acked2, 50);
                        }
                        if engine_commit(&db, 60).is_ok() {
                            extra.push(60);
                        }
                        let _ = db.checkpoint();
                        if engine_commit(&db, 61).is_ok() {
                            extra.push(61);
                        }
                    }
                    extra
                });
                let mut want = acked.clone();
                want.extend(&extra);
                if std::env::var("REVIEW_TRACE").is_ok() {
                    eprintln!("{label}: fired {} extra {extra:?}", disk.plan.fired());
                }
                for (mode, image) in disk.images() {
                    let label = format!("{label} [{mode}]");
                    let db = Engine::open(image.data.clone(), image.wal.clone(), engine_options())
                        .unwrap_or_else(|e| panic!("{label}: healthy reopen failed: {e}"));
                    let obs = engine_observe(&db).unwrap();
                    engine_check(&format!("{label} (healthy reopen)"), &obs, &want, 62);
                    db.check_integrity()
                        .unwrap_or_else(|e| panic!("{label}: integrity: {e}"));
                }
            }
        }
    }
}

// ---------------------------------------------------------------- backup

/// A backup into a destination whose operation k fails: the backup returns
/// an error (or, if Ok, the copy's durable image holds everything), and the
/// source database is unaffected: not poisoned, commits and reads go on.
#[test]
fn backup_destination_faults_leave_the_source_working() {
    let src = Disk::new();
    let db = builder()
        .create_with_backends(src.data.clone(), src.wal.clone())
        .unwrap();
    let db = Arc::new(db);
    let mut run = Run::default();
    drive(&db, &mut run, 0, 40, "backup source");
    let probe = Disk::new();
    probe.plan.arm(Rule {
        target: Target::Data,
        kinds: vec![Kind::Write, Kind::SetLen, Kind::Sync],
        nth: u64::MAX,
        err: io::ErrorKind::Other,
        sticky: false,
        short: false,
    });
    let report = db
        .backup_to_backends(probe.data.clone(), probe.wal.clone(), |_| {})
        .unwrap();
    let total = probe.plan.counted();
    assert!(total > 0);
    let _ = report;
    let next = Arc::new(AtomicU64::new(40));
    for k in 0..total {
        for (kinds, err) in [
            (vec![Kind::Sync], io::ErrorKind::Other),
            (vec![Kind::Write, Kind::SetLen], io::ErrorKind::StorageFull),
        ] {
            let label = format!("backup, dest {kinds:?} op {k} fails ({err:?})");
            let dest = Disk::new();
            dest.plan.arm(Rule {
                target: Target::Data,
                kinds,
                nth: k,
                err,
                sticky: true,
                short: true,
            });
            let (db2, d2) = (db.clone(), dest.clone());
            let out = within(20, &label, move || {
                db2.backup_to_backends(d2.data.clone(), d2.wal.clone(), |_| {})
                    .map_err(|e| e.to_string())
            });
            let fired = dest.plan.fired() > 0;
            if fired {
                assert!(
                    out.is_err(),
                    "{label}: backup returned Ok although a destination op failed"
                );
            }
            if out.is_ok() {
                let image = dest.image();
                let copy = builder()
                    .create_with_backends(image.data.clone(), image.wal.clone())
                    .unwrap_or_else(|e| panic!("{label}: backup copy does not open: {e}"));
                let obs = observe(&copy).unwrap();
                check_observed(&label, &obs, &run.acked, run.attempted);
            }
            // The source keeps working.
            let i = next.fetch_add(1, Ordering::SeqCst);
            run.attempted = i + 1;
            commit(&db, i).unwrap_or_else(|e| panic!("{label}: source commit failed after the backup: {e}"));
            run.acked.push(i);
            let obs = observe(&db).unwrap_or_else(|e| panic!("{label}: source read failed: {e}"));
            check_observed(&label, &obs, &run.acked, run.attempted);
        }
    }
    db.checkpoint().unwrap();
    let db = Arc::into_inner(db).unwrap();
    db.close().unwrap();
    check_reopen("backup source", &src, &run.acked, run.attempted);
}

/// Background checkpoints by WAL volume (the apply thread's), part commits
/// of flushes: data-file operation k fails (fsync once with its writes
/// lost, a short write once, or ENOSPC from then on).
#[test]
fn engine_background_checkpoint_data_faults() {
    let kinds = [Kind::Write, Kind::SetLen, Kind::Sync];
    let (_, total) = engine_run(
        Target::Data,
        &kinds,
        u64::MAX,
        io::ErrorKind::Other,
        false,
        "data healthy",
    );
    assert!(total > 20, "too few data-file operations: {total}");
    let (_, syncs) = engine_run(
        Target::Data,
        &[Kind::Sync],
        u64::MAX,
        io::ErrorKind::Other,
        false,
        "syncs",
    );
    for k in (0..syncs).step_by(2) {
        engine_run(
            Target::Data,
            &[Kind::Sync],
            k,
            io::ErrorKind::Other,
            false,
            &format!("data sync {k} of {syncs} fails once"),
        );
    }
    let stride = (total / 12).max(1);
    let mut k = 0;
    while k < total {
        engine_run(
            Target::Data,
            &kinds,
            k,
            io::ErrorKind::Other,
            false,
            &format!("data op {k} of {total} fails once (short)"),
        );
        engine_run(
            Target::Data,
            &kinds,
            k,
            io::ErrorKind::StorageFull,
            true,
            &format!("data op {k} of {total} enospc on"),
        );
        k += stride;
    }
}

/// `Durability::None` commits whose background WAL sync fails: `sync()`
/// reports the failure, every later commit is refused, no hang; and the
/// reopened state still holds every commit acknowledged durable.
#[test]
fn background_wal_sync_failure_under_no_sync_commits() {
    within(20, "no-sync commits", || {
        for nth in 0..3 {
            let label = format!("background WAL sync {nth} fails");
            let disk = Disk::new();
            let mut b = builder();
            b.set_sync_interval(Duration::from_millis(2));
            let db = b.create_with_backends(disk.data.clone(), disk.wal.clone()).unwrap();
            let mut run = Run::default();
            drive(&db, &mut run, 0, 10, &label);
            assert_eq!(run.acked.len(), 10);
            disk.plan.arm(Rule {
                target: Target::Wal,
                kinds: vec![Kind::Sync],
                nth,
                err: io::ErrorKind::Other,
                sticky: false,
                short: false,
            });
            let mut none_acked = Vec::new();
            for i in 10..40 {
                let mut txn = match db.begin_write() {
                    Ok(t) => t,
                    Err(e) => {
                        run.err(format!("begin_write {i}: {e}"));
                        continue;
                    }
                };
                txn.set_durability(sluicedb::Durability::None).unwrap();
                {
                    let mut t = txn.open_table(T).unwrap();
                    for k in i * PER..(i + 1) * PER {
                        t.insert(k, value(i).as_slice()).unwrap();
                    }
                    t.remove((i - 3) * PER).unwrap();
                }
                run.attempted = i + 1;
                match txn.commit() {
                    Ok(()) => none_acked.push(i),
                    Err(e) => run.err(format!("commit {i}: {e}")),
                }
                std::thread::sleep(Duration::from_millis(3));
            }
            let synced = db.sync();
            let fired = disk.plan.fired() > 0;
            assert!(fired, "{label}: the sync never failed");
            assert!(
                synced.is_err(),
                "{label}: sync() returned Ok after a background WAL sync failed"
            );
            // Every later commit is refused.
            let later = commit(&db, 50);
            assert!(later.is_err(), "{label}: a commit after the failure succeeded");
            check_consistent(&label, &run);
            drop(db);
            check_reopen(&label, &disk, &run.acked, 40);
        }
    });
}

/// Pipelined commits in flight when the WAL sync fails: every
/// `PendingCommit::wait` returns (no hang); those that returned Ok survive.
#[test]
fn pipelined_commits_meet_a_wal_sync_failure() {
    within(20, "pipelined", || {
        for nth in 0..4 {
            let label = format!("pipelined, WAL sync {nth} fails");
            let disk = Disk::new();
            let db = builder()
                .create_with_backends(disk.data.clone(), disk.wal.clone())
                .unwrap();
            let mut run = Run::default();
            disk.plan.arm(Rule {
                target: Target::Wal,
                kinds: vec![Kind::Sync, Kind::Write],
                nth,
                err: io::ErrorKind::Other,
                sticky: false,
                short: true,
            });
            let mut pending = Vec::new();
            for i in 0..60 {
                run.attempted = i + 1;
                let txn = match db.begin_write() {
                    Ok(t) => t,
                    Err(e) => {
                        run.err(format!("begin_write {i}: {e}"));
                        continue;
                    }
                };
                {
                    let mut t = txn.open_table(T).unwrap();
                    for k in i * PER..(i + 1) * PER {
                        t.insert(k, value(i).as_slice()).unwrap();
                    }
                    if i >= 3 {
                        t.remove((i - 3) * PER).unwrap();
                    }
                }
                match txn.commit_pipelined() {
                    Ok(p) => pending.push((i, p)),
                    Err(e) => run.err(format!("commit {i}: {e}")),
                }
                // A sync every ten commits, so that the log is written and
                // synced at least six times whatever the sync thread groups:
                // the armed fault always comes within the run (the open
                // writes and syncs the log's first segment before it).
                if i % 10 == 9
                    && let Err(e) = db.sync()
                {
                    run.err(format!("sync after {i}: {e}"));
                }
            }
            for (i, p) in pending {
                match p.wait() {
                    Ok(()) => run.acked.push(i),
                    Err(e) => run.err(format!("wait {i}: {e}")),
                }
            }
            assert!(disk.plan.fired() > 0, "{label}: nothing failed");
            assert!(!run.errors.is_empty(), "{label}: the failure reached nobody");
            // Durable prefix: an acked commit after a failed one would mean
            // the log has a hole.
            let first_failed = (0..60).find(|i| !run.acked.contains(i)).unwrap_or(60);
            let holes: Vec<_> = run.acked.iter().filter(|&&i| i > first_failed).collect();
            assert!(
                holes.is_empty(),
                "{label}: commit {first_failed} failed but later ones {holes:?} were acked"
            );
            drop(db);
            check_reopen(&label, &disk, &run.acked, 60);
        }
    });
}

/// Reads of the source's data file fail (EIO) for a while during
/// `backup`: the backup fails cleanly; afterwards the source either keeps
/// working or refuses consistently, and nothing acked is lost.
#[test]
fn backup_meets_source_read_errors() {
    for nth in [0u64, 1, 2, 5, 10, 20] {
        let label = format!("backup, source read {nth} fails");
        let disk = Disk::new();
        let d = disk.clone();
        let l = label.clone();
        let run = within(20, &label, move || {
            let mut b = builder();
            b.set_cache_size(0);
            let db = b.create_with_backends(d.data.clone(), d.wal.clone()).unwrap();
            let mut run = Run::default();
            drive(&db, &mut run, 0, 60, &l);
            db.checkpoint().unwrap();
            d.plan.arm(Rule {
                target: Target::Data,
                kinds: vec![Kind::Read],
                nth,
                err: io::ErrorKind::Other,
                sticky: false,
                short: false,
            });
            let dest = Disk::new();
            let out = db.backup_to_backends(dest.data.clone(), dest.wal.clone(), |_| {});
            let fired = d.plan.fired() > 0;
            if fired {
                assert!(out.is_err(), "{l}: backup returned Ok although a read failed");
            }
            if let Err(e) = out {
                run.err(format!("backup: {e}"));
            }
            drive(&db, &mut run, 60, 80, &l);
            if let Err(e) = db.checkpoint() {
                run.err(format!("checkpoint: {e}"));
            }
            if let Err(e) = db.close() {
                run.err(format!("close: {e}"));
            }
            run
        });
        check_consistent(&label, &run);
        if std::env::var("REVIEW_TRACE").is_ok() {
            eprintln!(
                "{label}: fired {} acked {} errors {:?}",
                disk.plan.fired(),
                run.acked.len(),
                run.errors.iter().take(3).collect::<Vec<_>>()
            );
        }
        check_reopen(&label, &disk, &run.acked, run.attempted);
    }
}

/// The journal with spare segments (written ahead by a thread of its own,
/// renamed into place at a roll): a failed spare creation, write, sync or
/// rename never loses an acked commit. (The spare thread runs beside the
/// committer, so which operation is the k-th may vary between runs; the
/// properties checked hold for every order.)
#[test]
fn wal_spare_segment_faults() {
    let all = [
        Kind::Write,
        Kind::SetLen,
        Kind::Sync,
        Kind::Create,
        Kind::Remove,
        Kind::Rename,
    ];
    let spare_disk = || {
        let mut d = Disk::new();
        d.wal.spares = true;
        d
    };
    let (_, total) = engine_run_on(
        spare_disk(),
        Target::Wal,
        &all,
        u64::MAX,
        io::ErrorKind::Other,
        false,
        "spares healthy",
    );
    let stride = (total / 30).max(1);
    let mut k = 0;
    while k < total {
        engine_run_on(
            spare_disk(),
            Target::Wal,
            &all,
            k,
            io::ErrorKind::Other,
            false,
            &format!("spares: wal op {k} of {total} fails once"),
        );
        k += stride;
    }
    for nth in 0..3 {
        engine_run_on(
            spare_disk(),
            Target::Wal,
            &[Kind::Rename],
            nth,
            io::ErrorKind::Other,
            false,
            &format!("spares: rename {nth} fails"),
        );
        engine_run_on(
            spare_disk(),
            Target::Wal,
            &[Kind::Create],
            nth,
            io::ErrorKind::StorageFull,
            true,
            &format!("spares: create {nth} on enospc"),
        );
    }
}

/// Four writers held back by backpressure (small frozen-memtable budget)
/// while the background flush / checkpoint meets ENOSPC for good: every
/// writer gets an error (no hang), none succeeds after a refusal it saw,
/// and every acked commit survives.
#[test]
fn writers_in_backpressure_when_background_work_fails() {
    for nth in [0u64, 3, 10, 25] {
        let label = format!("backpressure, data op {nth} on enospc");
        let disk = Disk::new();
        let d = disk.clone();
        let l = label.clone();
        let acked = within(20, &label, move || {
            let options = EngineOptions {
                memtable_bytes: 8 << 10,
                max_frozen_bytes: 16 << 10,
                checkpoint_wal_bytes: 8 << 10,
                ..engine_options()
            };
            let db = Arc::new(Engine::open(d.data.clone(), d.wal.clone(), options).unwrap());
            d.plan.arm(Rule {
                target: Target::Data,
                kinds: vec![Kind::Write, Kind::SetLen, Kind::Sync],
                nth,
                err: io::ErrorKind::StorageFull,
                sticky: true,
                short: false,
            });
            let next = Arc::new(AtomicU64::new(0));
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    let db = db.clone();
                    let next = next.clone();
                    let l = l.clone();
                    std::thread::spawn(move || {
                        let mut acked = Vec::new();
                        let mut refused = false;
                        loop {
                            let i = next.fetch_add(1, Ordering::SeqCst);
                            if i >= 400 {
                                break;
                            }
                            match engine_commit(&db, i) {
                                Ok(()) => {
                                    assert!(!refused, "{l}: commit {i} succeeded after this writer was refused");
                                    acked.push(i);
                                }
                                Err(e) => {
                                    if e.contains("an earlier I/O error") || e.contains("poisoned") {
                                        refused = true;
                                    }
                                }
                            }
                        }
                        acked
                    })
                })
                .collect();
            let mut acked: Vec<u64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
            acked.sort_unstable();
            assert!(
                acked.len() < 400,
                "{l}: every commit succeeded although the data file was full"
            );
            drop(db);
            acked
        });
        for (mode, image) in disk.images() {
            let label = format!("{label} [{mode}]");
            let db = Engine::open(image.data.clone(), image.wal.clone(), engine_options())
                .unwrap_or_else(|e| panic!("{label}: reopen failed: {e}"));
            let obs = engine_observe(&db).unwrap();
            engine_check(&format!("{label} (reopened)"), &obs, &acked, 400);
            db.check_integrity()
                .unwrap_or_else(|e| panic!("{label}: integrity: {e}"));
        }
    }
}
