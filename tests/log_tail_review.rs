//! Adversarial review of the data file's record of the WAL segment after
//! the checkpoint (`engine/log_tail.rs`, `sluice.log_tail`): crash images a
//! legitimate run leaves must open (never "WAL segment ... is missing" nor
//! "another copy"), and every acknowledged commit must survive them.

mod common;

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use common::engine::{Disk, HeldWrites, commit_u64, read_u64_model};
use sluicedb::btree::{TreeStore, TreeStoreOptions, bytewise};
use sluicedb::engine::{Engine, EngineOptions};
use sluicedb::io::{CrashDisk, CrashLogDir, LogDir, StorageBackend, TearMode};

type Model = BTreeMap<u64, Vec<u8>>;

/// The segment header's length (`design/wal.md`): a write at or past it is
/// a record's.
const HEADER: u64 = 48;

/// Every commit (2000 bytes) is larger than a segment (1 KiB), so each one
/// rolls the log into a segment of its own; no checkpoint and no flush but
/// the ones a test asks for.
fn options() -> EngineOptions {
    EngineOptions {
        segment_bytes: 1 << 10,
        checkpoint_wal_bytes: 1 << 40,
        checkpoint_interval: Duration::from_secs(24 * 3600),
        memtable_bytes: 64 << 20,
        max_frozen_bytes: 256 << 20,
        ..common::engine::small_options()
    }
}

fn value(k: u64) -> Vec<u8> {
    let mut v = format!("value of {k} ").into_bytes();
    v.resize(2000, b'v');
    v
}

fn put(db: &Engine, model: &mut Model, k: u64) {
    commit_u64(db, b"bytes", bytewise, model, &[(k, Some(value(k)))]);
}

fn contents(db: &Engine) -> Model {
    read_u64_model(db, b"t", bytewise).map_or_else(Model::new, |(model, _)| model)
}

/// The first sequence of the segment the durable data file of `disk`
/// names (`sluice.log_tail`), if it names one.
fn named_segment(disk: &CrashDisk) -> Option<u64> {
    let store = TreeStore::open(disk.data.clone(), TreeStoreOptions::default()).unwrap();
    let snapshot = store.snapshot();
    let info = snapshot.tree(b"sluice.log_tail").unwrap()?;
    let value = snapshot.get(&info, bytewise, b"segment").unwrap()?;
    Some(u64::from_le_bytes(value.as_bytes()[4..12].try_into().unwrap()))
}

/// The durable checkpoint of the data file of `disk`.
fn checkpoint_of(disk: &CrashDisk) -> u64 {
    TreeStore::open(disk.data.clone(), TreeStoreOptions::default())
        .unwrap()
        .durable_checkpoint_seq()
}

fn segments(disk: &CrashDisk) -> Vec<String> {
    common::wal::segment_files(&disk.wal)
}

/// Opens a crash image; the error, if refused, in the panic.
fn open_image(disk: &CrashDisk, what: &str) -> Engine {
    Engine::open(disk.data.clone(), disk.wal.clone(), options())
        .unwrap_or_else(|e| panic!("{what}: the open was refused: {e}"))
}

/// A gate on the WAL's record writes: armed, a write past a segment's
/// header waits until it is let go, and says it has come. A seal (the
/// record numbered u64::MAX that a roll writes into the segment it leaves,
/// `design/wal.md`) passes: it comes before the next segment's records.
#[derive(Default)]
struct Gate {
    state: Mutex<(bool, bool)>,
    changed: Condvar,
}

impl Gate {
    fn arm(&self) {
        self.state.lock().0 = true;
    }

    fn release(&self) {
        self.state.lock().0 = false;
        self.changed.notify_all();
    }

    fn wait_reached(&self) {
        let mut state = self.state.lock();
        while !state.1 {
            self.changed.wait(&mut state);
        }
    }

    fn pass(&self, offset: u64, bytes: &[u8]) {
        if offset < HEADER || bytes.starts_with(&[0xff; 8]) {
            return;
        }
        let mut state = self.state.lock();
        if state.0 {
            state.1 = true;
            self.changed.notify_all();
            while state.0 {
                self.changed.wait(&mut state);
            }
        }
    }
}

struct GatedFile {
    file: Box<dyn StorageBackend>,
    gate: Arc<Gate>,
}

impl StorageBackend for GatedFile {
    fn len(&self) -> io::Result<u64> {
        self.file.len()
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read(offset, buf)
    }
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.gate.pass(offset, data);
        self.file.write(offset, data)
    }
    fn write_parts(&self, offset: u64, parts: &[&[u8]]) -> io::Result<()> {
        self.gate.pass(offset, parts.first().copied().unwrap_or_default());
        self.file.write_parts(offset, parts)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn preallocate(&self, len: u64) -> io::Result<()> {
        self.file.preallocate(len)
    }
}

/// A crash-simulating WAL directory whose record writes can be held
/// ([`Gate`]).
#[derive(Clone)]
struct GatedDir {
    dir: CrashLogDir,
    gate: Arc<Gate>,
}

impl LogDir for GatedDir {
    fn list(&self) -> io::Result<Vec<String>> {
        self.dir.list()
    }
    fn create(&self, name: &str) -> io::Result<Box<dyn StorageBackend>> {
        let file = self.dir.create(name)?;
        Ok(Box::new(GatedFile {
            file,
            gate: self.gate.clone(),
        }))
    }
    fn open(&self, name: &str) -> io::Result<Box<dyn StorageBackend>> {
        let file = self.dir.open(name)?;
        Ok(Box::new(GatedFile {
            file,
            gate: self.gate.clone(),
        }))
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.dir.remove(name)
    }
    fn truncate(&self, name: &str, len: u64) -> io::Result<()> {
        self.dir.truncate(name, len)
    }
    fn spare_segments(&self) -> bool {
        self.dir.spare_segments()
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.dir.rename(from, to)
    }
}

/// The crash image of a checkpoint that ran beside a commit: three durable
/// commits (each in a segment of its own) are frozen and flushed by a
/// checkpoint while a fourth commit rolls the log into segment 4 and its
/// record is being written (not yet synced). The checkpoint (at 3) names
/// segment 4, which holds (or will hold) record 4. The power fails then:
/// segment 4 survives with its synced header and no record. Returns the
/// image and the model of the acknowledged commits as of the image.
fn checkpoint_beside_a_roll() -> (CrashDisk, Model) {
    let disk = Disk::new();
    let data = HeldWrites::new(disk.data.clone());
    let gate = Arc::new(Gate::default());
    let wal = GatedDir {
        dir: disk.wal.clone(),
        gate: gate.clone(),
    };
    // No page cache: the flush writes its pages (and stops at the hold)
    // before the checkpoint looks for the segment after it.
    let cacheless = EngineOptions {
        cache_bytes: 0,
        ..options()
    };
    let db = Engine::open(data.clone(), wal, cacheless).unwrap();
    let mut model = Model::new();
    for k in 1..=3 {
        put(&db, &mut model, k);
    }
    let acknowledged = model.clone();
    let image = std::thread::scope(|scope| {
        let held = data.hold();
        let checkpoint = scope.spawn(|| db.checkpoint());
        // The checkpoint froze commits 1..3; its flush waits for the data
        // file's writes.
        while db.stats().frozen_memtables == 0 {
            std::thread::yield_now();
        }
        gate.arm();
        let fourth = scope.spawn(|| {
            let mut model = Model::new();
            put(&db, &mut model, 4);
        });
        gate.wait_reached();
        held.release();
        checkpoint.join().unwrap().unwrap();
        let image = CrashDisk::crashed(&disk, TearMode::DropAll);
        gate.release();
        fourth.join().unwrap();
        image
    });
    drop(db);
    (image, acknowledged)
}

/// The image [`checkpoint_beside_a_roll`] leaves is what it says: a data
/// file at checkpoint 3 naming a segment, and segment 4 beside it holding
/// no record; it opens, with commits 1..3, and so does a crash after that
/// open (coverage of the open's re-recording when recovery discards the
/// named segment).
#[test]
fn a_checkpoint_naming_a_segment_whose_records_a_crash_lost_opens() {
    let (image, model) = checkpoint_beside_a_roll();
    assert_eq!(
        named_segment(&image),
        Some(4),
        "the segment the checkpoint at {} names; segments {:?}",
        checkpoint_of(&image),
        segments(&image)
    );
    assert_eq!(segments(&image), vec!["00000000000000000004.wal".to_string()]);
    let db = open_image(&image, "the first open");
    assert_eq!(contents(&db), model);
    let again = image.crashed(TearMode::DropAll);
    drop(db);
    let db = open_image(&again, "the open after a crash after the first open");
    assert_eq!(contents(&db), model);
}

/// The same image, and a power cut in the open that recovers it before
/// the open's first commit to the data file (the new log id, the segments
/// that survive recovery): a crash during recovery, which the crash model
/// allows. Recovery must not have deleted segment 4 (every record of it
/// lost) while the data file still names it, and the next open must not
/// refuse: nothing acknowledged was ever in segment 4.
#[test]
fn a_power_cut_in_the_open_after_recovery_discarded_the_named_segment_is_not_refused() {
    let (image, model) = checkpoint_beside_a_roll();
    assert_eq!(
        named_segment(&image),
        Some(4),
        "the segment the checkpoint at {} names; segments {:?}",
        checkpoint_of(&image),
        segments(&image)
    );
    // The power fails before the open's first write to the data file.
    image.data.cut_power_after(image.data.ops());
    let crashed_open = Engine::open(image.data.clone(), image.wal.clone(), options());
    assert!(crashed_open.is_err(), "the open wrote to a data file without power");
    drop(crashed_open);
    assert!(
        !segments(&image).is_empty(),
        "recovery deleted segment 4 while the data file named it"
    );
    let restart = image.crashed(TearMode::DropAll);
    let db = open_image(&restart, "the open after a power cut in the recovering open");
    assert_eq!(contents(&db), model);
}

/// The same image, with the power cut at every data-file operation of the
/// recovering open (between its new log id's commit and the re-recorded
/// segment's, and after): every restart opens with commits 1..3.
#[test]
fn a_power_cut_at_every_data_file_operation_of_the_recovering_open_is_not_refused() {
    cut_the_recovering_open_everywhere(false);
}

/// The same with the WAL's power cut at every operation of the recovering
/// open (its deletion of the segment the crash emptied, the segment it
/// starts, before and after the data file names it), writes torn.
#[test]
fn a_power_cut_at_every_wal_operation_of_the_recovering_open_is_not_refused() {
    cut_the_recovering_open_everywhere(true);
}

/// Cuts the power (of the WAL if `in_wal`, else of the data file) after
/// every operation of an open of [`checkpoint_beside_a_roll`]'s image:
/// every restart opens with commits 1..3.
fn cut_the_recovering_open_everywhere(in_wal: bool) {
    let ops = |image: &CrashDisk| if in_wal { image.wal.ops() } else { image.data.ops() };
    let span = {
        let (image, _) = checkpoint_beside_a_roll();
        let start = ops(&image);
        drop(open_image(&image, "the uncut open"));
        ops(&image) - start
    };
    assert!(span > 0, "the open wrote nothing");
    let mut refused = Vec::new();
    for n in 0..=span {
        for tear in [TearMode::DropAll, TearMode::Random(n)] {
            let (image, model) = checkpoint_beside_a_roll();
            if in_wal {
                image.wal.cut_power_after(image.wal.ops() + n);
            } else {
                image.data.cut_power_after(image.data.ops() + n);
            }
            drop(Engine::open(image.data.clone(), image.wal.clone(), options()));
            let restart = image.crashed(tear);
            match Engine::open(restart.data.clone(), restart.wal.clone(), options()) {
                Ok(db) => assert_eq!(contents(&db), model, "cut after {n} of {span} ({tear:?})"),
                Err(e) => refused.push(format!("cut after {n} of {span} ({tear:?}): {e}")),
            }
        }
    }
    assert!(refused.is_empty(), "refused restarts:\n{}", refused.join("\n"));
}

/// Segments roll at every commit and checkpoints come between them; a
/// power cut at every data-file operation of a checkpoint (its tail's
/// commit, then the truncation that follows) leaves an image that opens
/// with every acknowledged commit.
#[test]
fn a_power_cut_at_every_data_file_operation_of_a_checkpoint_with_rolling_segments() {
    let run = |cut: Option<u64>| -> (Disk, Model, u64) {
        let disk = Disk::new();
        let db = disk.open(options());
        let mut model = Model::new();
        for k in 1..=5 {
            put(&db, &mut model, k);
        }
        db.checkpoint().unwrap();
        for k in 6..=9 {
            put(&db, &mut model, k);
        }
        let start = disk.data.ops();
        if let Some(n) = cut {
            disk.data.cut_power_after(start + n);
        }
        let _ = db.checkpoint();
        let span = disk.data.ops() - start;
        drop(db);
        (disk, model, span)
    };
    every_cut(run, |_| TearMode::DropAll);
}

/// The same with the WAL's power cut at every operation after the
/// checkpoint's data-file commit (its truncation), with torn writes.
#[test]
fn a_power_cut_at_every_wal_operation_of_a_checkpoints_truncation() {
    let run = |cut: Option<u64>| -> (Disk, Model, u64) {
        let disk = Disk::new();
        let db = disk.open(options());
        let mut model = Model::new();
        for k in 1..=6 {
            put(&db, &mut model, k);
        }
        let start = disk.wal.ops();
        if let Some(n) = cut {
            disk.wal.cut_power_after(start + n);
        }
        let _ = db.checkpoint();
        let span = disk.wal.ops() - start;
        drop(db);
        (disk, model, span)
    };
    every_cut(run, TearMode::Random);
}

/// Runs `run` uncut to count its operations (`run` returns the disk, the
/// acknowledged model and the operations counted), then cut after each
/// of them: every restart, with the writes torn as `tear` says, opens with
/// every acknowledged commit.
fn every_cut(run: impl Fn(Option<u64>) -> (Disk, Model, u64), tear: impl Fn(u64) -> TearMode) {
    let (_, _, span) = run(None);
    for n in 0..=span {
        let (disk, model, _) = run(Some(n));
        let restart = disk.crashed(tear(n));
        let db = open_image(&restart, &format!("cut after {n} of {span}"));
        assert_eq!(contents(&db), model, "cut after {n} of {span}");
    }
}

/// A close (sync, checkpoint, the tail's removal, the log's retirement)
/// with rolling segments, cut at every data-file and then every WAL
/// operation: every image opens with every acknowledged commit, and a
/// crash right after that open too.
#[test]
fn a_power_cut_at_every_operation_of_a_close_with_rolling_segments() {
    let run = |cut: Option<(bool, u64)>| -> (Disk, Model, u64, u64) {
        let disk = Disk::new();
        let db = disk.open(options());
        let mut model = Model::new();
        for k in 1..=4 {
            put(&db, &mut model, k);
        }
        db.checkpoint().unwrap();
        for k in 5..=7 {
            put(&db, &mut model, k);
        }
        let (data_start, wal_start) = (disk.data.ops(), disk.wal.ops());
        match cut {
            Some((true, n)) => disk.data.cut_power_after(data_start + n),
            Some((false, n)) => disk.wal.cut_power_after(wal_start + n),
            None => {}
        }
        let _ = db.sync().and_then(|()| db.checkpoint()).and_then(|()| db.retire_log());
        let spans = (disk.data.ops() - data_start, disk.wal.ops() - wal_start);
        drop(db);
        (disk, model, spans.0, spans.1)
    };
    let (_, _, data_span, wal_span) = run(None);
    let cuts = (0..=data_span)
        .map(|n| (true, n))
        .chain((0..=wal_span).map(|n| (false, n)));
    for (on_data, n) in cuts {
        let (disk, model, _, _) = run(Some((on_data, n)));
        let what = format!("{} cut after {n}", if on_data { "data file" } else { "WAL" });
        let restart = disk.crashed(TearMode::Random(n));
        let db = open_image(&restart, &what);
        assert_eq!(contents(&db), model, "{what}");
        let again = restart.crashed(TearMode::DropAll);
        drop(db);
        let db = open_image(&again, &format!("{what}, then a crash after the reopen"));
        assert_eq!(contents(&db), model, "{what}, then a crash after the reopen");
    }
}

/// Crash after crash with rolling segments: each round reopens the last
/// image, commits (each in a new segment), checkpoints part of the way,
/// and crashes with torn writes; every open accepts its image, and holds
/// every commit acknowledged before its crash.
#[test]
fn crash_after_crash_with_rolling_segments_and_checkpoints() {
    let mut disk = CrashDisk::new();
    let mut model = Model::new();
    let mut k = 0;
    for round in 0..12u64 {
        let db = open_image(&disk, &format!("round {round}"));
        assert_eq!(contents(&db), model, "round {round}");
        for _ in 0..(round % 4 + 1) {
            k += 1;
            put(&db, &mut model, k);
            if k % 3 == 0 {
                db.checkpoint().unwrap();
            }
        }
        let next = disk.crashed(TearMode::Random(round));
        drop(db);
        disk = next;
    }
    let db = open_image(&disk, "the last round");
    assert_eq!(contents(&db), model);
}

/// A read-only open of the image [`checkpoint_beside_a_roll`] leaves, over
/// a copy of its WAL as `ReadOnlyDatabase` reads it (`read_only::copy_log`),
/// then a writable open of the image itself: neither refuses.
#[test]
fn a_read_only_open_of_a_checkpoint_beside_a_roll_then_a_writable_one() {
    let (image, model) = checkpoint_beside_a_roll();
    let read_only = EngineOptions {
        read_only: true,
        ..options()
    };
    let copy = image.crashed(TearMode::KeepAll);
    let db = Engine::open(image.data.clone(), copy.wal.clone(), read_only)
        .unwrap_or_else(|e| panic!("the read-only open was refused: {e}"));
    assert_eq!(contents(&db), model);
    drop(db);
    let db = open_image(&image, "the writable open after a read-only one");
    assert_eq!(contents(&db), model);
}
