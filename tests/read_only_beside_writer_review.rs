//! Review: `ReadOnlyDatabase` opened beside a writer of the same database
//! (another process, or the writing handle's leftovers). The writer's
//! commits carry a counter in a meta table, and every row encodes the
//! commit that wrote it, so each snapshot the read-only open shows can be
//! checked for being one whole commit, at or after the last one the writer
//! acknowledged durable before the open began. Acceptable: such a snapshot,
//! or a clear error (`DatabaseAlreadyOpen`, `DatabaseClosed`); never wrong
//! data, a panic, or a hang.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use sluicedb::{
    Database, DatabaseError, Durability, ReadOnlyDatabase, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    StorageError, TableDefinition,
};

const CHILD: &str = "SLUICE_REVIEW_RO_BESIDE_WRITER";
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const ROWS: TableDefinition<u64, u64> = TableDefinition::new("rows");
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// Rows every commit rewrites.
const R: u64 = 150;

fn row_value(commit: u64, k: u64) -> u64 {
    commit * 1_000_000 + k
}

fn log_value(commit: u64) -> Vec<u8> {
    vec![(commit % 251) as u8; 40 + (commit % 90) as usize]
}

/// Writes commit `c`: the counter, every row, one log entry.
fn write_commit(txn: &sluicedb::WriteTransaction, c: u64) {
    txn.open_table(META).unwrap().insert("counter", c).unwrap();
    let mut rows = txn.open_table(ROWS).unwrap();
    for k in 0..R {
        rows.insert(k, row_value(c, k)).unwrap();
    }
    drop(rows);
    txn.open_table(LOG).unwrap().insert(c, log_value(c).as_slice()).unwrap();
}

/// Checks that the snapshot is one whole commit and returns its counter.
fn verify(db: &impl ReadableDatabase) -> Result<u64, String> {
    let read = db.begin_read().map_err(|e| format!("begin_read: {e:?}"))?;
    let meta = match read.open_table(META) {
        Ok(t) => t,
        Err(sluicedb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(format!("open meta: {e:?}")),
    };
    let c = meta
        .get("counter")
        .map_err(|e| format!("meta get: {e:?}"))?
        .map(|g| g.value())
        .ok_or("no counter")?;
    let rows = read.open_table(ROWS).map_err(|e| format!("open rows: {e:?}"))?;
    let len = rows.len().map_err(|e| format!("rows len: {e:?}"))?;
    let mut n = 0;
    for e in rows.iter().map_err(|e| format!("rows iter: {e:?}"))? {
        let (k, v) = e.map_err(|e| format!("rows next: {e:?}"))?;
        if v.value() != row_value(c, k.value()) {
            return Err(format!(
                "torn snapshot: counter {c} but row {} = {} (from commit {})",
                k.value(),
                v.value(),
                v.value() / 1_000_000
            ));
        }
        n += 1;
    }
    if n != R || len != R {
        return Err(format!("counter {c}: rows iterated {n}, len() {len}, expected {R}"));
    }
    let log = read.open_table(LOG).map_err(|e| format!("open log: {e:?}"))?;
    let log_len = log.len().map_err(|e| format!("log len: {e:?}"))?;
    let mut expect = 1;
    for e in log.iter().map_err(|e| format!("log iter: {e:?}"))? {
        let (k, v) = e.map_err(|e| format!("log next: {e:?}"))?;
        if k.value() != expect || v.value() != log_value(expect).as_slice() {
            return Err(format!(
                "counter {c}: log entry {} wrong (expected key {expect})",
                k.value()
            ));
        }
        expect += 1;
    }
    if expect - 1 != c || log_len != c {
        return Err(format!(
            "counter {c}: log holds {} entries, len() {log_len}",
            expect - 1
        ));
    }
    Ok(c)
}

/// Kills and reaps the child on every exit path.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(test: &str, mode: &str, path: &Path) -> (Reap, mpsc::Receiver<String>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, format!("{mode}|{}", path.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Reap(child), rx)
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

fn small() -> sluicedb::Builder {
    let mut b = Database::builder();
    b.set_memtable_size(16 << 10)
        .set_sync_interval(Duration::from_millis(2))
        .set_cache_size(64 << 10);
    b
}

/// Child of the first test: writes commits (durable and not) with frequent
/// checkpoints and compactions until its stdin closes, printing `acked c`
/// for each durable commit once acknowledged; then closes the database.
fn writer_child(path: &str) {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            stop.store(true, Ordering::SeqCst);
        });
    }
    let mut db = small().create(path).unwrap();
    let mut c = verify(&db).expect("the writer's own open");
    let deadline = Instant::now() + Duration::from_secs(25);
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        c += 1;
        let mut txn = db.begin_write().unwrap();
        let durable = !c.is_multiple_of(3);
        if !durable {
            txn.set_durability(Durability::None).unwrap();
        }
        write_commit(&txn, c);
        txn.commit().unwrap();
        if durable {
            say(&format!("acked {c}"));
        }
        if c.is_multiple_of(17) {
            db.checkpoint().unwrap();
        }
        if c.is_multiple_of(45) {
            db.compact().unwrap();
        }
    }
    db.close().unwrap();
    say(&format!("closed {c}"));
}

fn parse(line: &str, word: &str) -> Option<u64> {
    // The harness may print its own text before ours on a line.
    let at = line.find(word)?;
    line[at + word.len()..].trim().parse().ok()
}

/// A read-only open while another process writes (durable and no-sync
/// commits, flushes, checkpoints retiring segments, compactions) is either
/// refused with `DatabaseAlreadyOpen` or shows one whole commit at or after
/// the last acknowledged one; after the writer closes, the open shows the
/// final commit.
#[test]
fn read_only_open_beside_a_writing_process() {
    if let Ok(spec) = std::env::var(CHILD) {
        let (mode, path) = spec.split_once('|').unwrap();
        match mode {
            "writer" => writer_child(path),
            "outlive" => outliving_txn_child(path, Durability::Immediate, false),
            "outlive-none" => outliving_txn_child(path, Durability::None, false),
            "outlive-tree" => outliving_txn_child(path, Durability::Immediate, true),
            _ => unreachable!(),
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let (mut child, lines) = spawn("read_only_open_beside_a_writing_process", "writer", &path);
    let acked = Arc::new(AtomicU64::new(0));
    let closed = Arc::new(AtomicU64::new(u64::MAX));
    let drain = {
        let (acked, closed) = (acked.clone(), closed.clone());
        std::thread::spawn(move || {
            for line in lines {
                if let Some(c) = parse(&line, "acked ") {
                    acked.store(c, Ordering::SeqCst);
                } else if let Some(c) = parse(&line, "closed ") {
                    closed.store(c, Ordering::SeqCst);
                }
            }
        })
    };
    let start = Instant::now();
    while acked.load(Ordering::SeqCst) < 5 {
        assert!(start.elapsed() < Duration::from_secs(20), "the writer never committed");
        std::thread::sleep(Duration::from_millis(5));
    }
    let (mut refused, mut opened) = (0, 0);
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let before = acked.load(Ordering::SeqCst);
        match ReadOnlyDatabase::open(&path) {
            Err(DatabaseError::DatabaseAlreadyOpen) => refused += 1,
            Err(e) => panic!("read-only open beside a writer failed with {e:?}, not DatabaseAlreadyOpen"),
            Ok(db) => {
                opened += 1;
                let c = verify(&db).unwrap_or_else(|e| panic!("read-only open beside a writer: {e}"));
                assert!(
                    c >= before,
                    "commit {before} was acknowledged before the open; it shows {c}"
                );
            }
        }
    }
    assert_eq!(
        opened, 0,
        "read-only opens succeeded while another process held the database"
    );
    assert!(refused > 0);
    drop(child.0.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the writer child hangs on close");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(child.0.wait().unwrap().success());
    drain.join().unwrap();
    let last = closed.load(Ordering::SeqCst);
    assert_ne!(last, u64::MAX, "the writer never closed");
    let db = ReadOnlyDatabase::open(&path).unwrap();
    assert_eq!(verify(&db).unwrap(), last, "the closed database's last commit");
}

/// Read-only opens after a writing process is killed (SIGKILL) at random
/// moments (mid-commit, mid-flush, mid-checkpoint, mid-compaction) show one
/// whole commit at or after the last acknowledged one; the writer then
/// resumes from the same commit.
#[test]
fn read_only_open_after_a_killed_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut seed = 0x9E37_79B9_u64;
    let mut last = 0;
    for round in 0..6 {
        let (child, lines) = spawn("read_only_open_beside_a_writing_process", "writer", &path);
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let kill_after = Duration::from_millis(150 + (seed >> 40) % 600);
        let start = Instant::now();
        let mut acked = 0;
        while start.elapsed() < kill_after {
            match lines.recv_timeout(Duration::from_millis(5)) {
                Ok(line) => acked = parse(&line, "acked ").unwrap_or(acked),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => panic!("round {round}: the writer died"),
            }
        }
        drop(child); // SIGKILL, reaped
        while let Ok(line) = lines.try_recv() {
            acked = parse(&line, "acked ").unwrap_or(acked);
        }
        let ro = ReadOnlyDatabase::open(&path).unwrap_or_else(|e| panic!("round {round}: read-only open: {e:?}"));
        let c = verify(&ro).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(
            c >= acked,
            "round {round}: acknowledged {acked}, read-only open shows {c}"
        );
        drop(ro);
        let db = Database::open(&path).unwrap();
        let w = verify(&db).unwrap_or_else(|e| panic!("round {round}, writable open: {e}"));
        assert_eq!(w, c, "round {round}: the read-only and the writable open disagree");
        db.close().unwrap();
        last = c;
    }
    assert!(last > 0, "the writer never committed before a kill");
}

/// Child of the outliving-transaction tests: 40 commits, then a read
/// transaction (keeping the engine alive) and a write transaction are
/// begun, the `Database` is dropped, and the write transaction commits
/// commit 41 (big: several memtables' worth of log entries, or a tree
/// commit). It prints `acked 41` once that commit returns (the lock is free
/// by then), keeps the read transaction for two seconds, and exits.
fn outliving_txn_child(path: &str, durability: Durability, tree: bool) {
    let mut b = small();
    if tree {
        b.set_tree_commit_size(64 << 10);
    }
    let db = b.create(path).unwrap();
    for c in 1..=40 {
        let txn = db.begin_write().unwrap();
        write_commit(&txn, c);
        txn.commit().unwrap();
        if c.is_multiple_of(13) {
            db.checkpoint().unwrap();
        }
    }
    let read = db.begin_read().unwrap();
    let mut txn = db.begin_write().unwrap();
    drop(db);
    txn.set_durability(durability).unwrap();
    write_commit(&txn, 41);
    {
        // Extra bulk in a table of its own: several memtables' worth.
        let mut bulk = txn.open_table(TableDefinition::<u64, &[u8]>::new("bulk")).unwrap();
        for k in 0..3000u64 {
            bulk.insert(k, [7u8; 100].as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
    say("acked 41");
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        // The snapshot is closed for reads; it only keeps the engine alive.
        let _ = read
            .open_table(META)
            .map(|t| t.get("counter").map(|g| g.map(|g| g.value())));
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(read);
    say("done");
}

fn outliving_round(test: &str, mode: &str, must_see_41: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let (mut child, lines) = spawn(test, mode, &path);
    // The harness prints its own lines too.
    let deadline = Instant::now() + Duration::from_secs(25);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .expect("the child never acknowledged commit 41");
        if let Some(c) = parse(&line, "acked ") {
            assert_eq!(c, 41);
            break;
        }
    }
    let mut kept: Option<ReadOnlyDatabase> = None;
    let mut seen = Vec::new();
    let until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < until {
        match ReadOnlyDatabase::open(&path) {
            Err(DatabaseError::DatabaseAlreadyOpen) => seen.push(u64::MAX),
            Err(e) => panic!("read-only open after the writer released its lock failed: {e:?}"),
            Ok(db) => {
                let c = verify(&db).unwrap_or_else(|e| panic!("fresh read-only open: {e}"));
                seen.push(c);
                if must_see_41 {
                    assert_eq!(c, 41, "commit 41 was acknowledged durable before this open");
                } else {
                    assert!(c == 40 || c == 41, "snapshot at {c}");
                }
                if kept.is_none() {
                    kept = Some(db);
                }
            }
        }
        if let Some(db) = &kept {
            let c = verify(db).unwrap_or_else(|e| panic!("long-lived read-only handle: {e}"));
            assert!(c == 40 || c == 41, "long-lived handle at {c}");
        }
        std::thread::sleep(Duration::from_millis(15));
    }
    drop(kept);
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the child hangs");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(child.0.wait().unwrap().success(), "the child failed");
    let db = ReadOnlyDatabase::open(&path).unwrap();
    let c = verify(&db).unwrap();
    if must_see_41 {
        assert_eq!(c, 41);
    } else {
        assert!(c == 40 || c == 41);
    }
    assert!(
        seen.iter().any(|&c| c != u64::MAX),
        "no open succeeded after the lock was released"
    );
}

/// A write transaction that outlives its `Database` commits durably after
/// the drop; once it returns (the file lock released), read-only opens and
/// a long-lived read-only handle see whole commits including it, while the
/// old engine (kept by a read transaction) may still flush and checkpoint.
#[test]
fn read_only_beside_an_outliving_durable_commit() {
    outliving_round("read_only_open_beside_a_writing_process", "outlive", true);
}

/// As above, with the outliving commit `Durability::None` (not
/// acknowledged durable: either snapshot is fine, nothing torn).
#[test]
fn read_only_beside_an_outliving_no_sync_commit() {
    outliving_round("read_only_open_beside_a_writing_process", "outlive-none", false);
}

/// As above, with the outliving commit big enough to be a tree commit
/// (written straight into the tree and checkpointed).
#[test]
fn read_only_beside_an_outliving_tree_commit() {
    outliving_round("read_only_open_beside_a_writing_process", "outlive-tree", true);
}

/// A range (and table) of a read-only handle that outlives the handle, while
/// a writer opens the released file and rewrites it (checkpoints reusing the
/// pages, a compaction truncating it), yields only the old snapshot's data
/// or an error: never other data, never a panic.
#[test]
fn a_read_only_range_outliving_its_handle_beside_a_rewriting_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    const N: u64 = 20_000;
    {
        let db = small().create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(ROWS).unwrap();
            for k in 0..N {
                t.insert(k, row_value(1, k)).unwrap();
            }
        }
        txn.commit().unwrap();
        db.close().unwrap();
    }
    let ro = sluicedb::Builder::new()
        .set_cache_size(0)
        .open_read_only(&path)
        .unwrap();
    let read = ro.begin_read().unwrap();
    let table = read.open_table(ROWS).unwrap();
    let mut range = table.range(0..N).unwrap();
    let mut back = table.range(0..N).unwrap();
    let (k, v) = range.next().unwrap().unwrap();
    assert_eq!((k.value(), v.value()), (0, row_value(1, 0)));
    drop((k, v));
    drop(ro);
    // The handle is gone: the lock is free, and a writer rewrites the file.
    let mut db = small()
        .open(&path)
        .expect("the read-only handle's drop released the lock");
    for round in 2..6u64 {
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(ROWS).unwrap();
            for k in 0..N {
                if round == 5 && k >= N / 10 {
                    t.remove(k).unwrap();
                } else {
                    t.insert(k, row_value(round, k)).unwrap();
                }
            }
        }
        txn.commit().unwrap();
        db.checkpoint().unwrap();
    }
    db.compact().unwrap();
    let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut bad = Vec::new();
        let mut errors = 0;
        for e in range.by_ref().chain(back.by_ref().rev()) {
            match e {
                Err(_) => errors += 1,
                Ok((k, v)) => {
                    if v.value() != row_value(1, k.value()) {
                        bad.push((k.value(), v.value()));
                    }
                }
            }
        }
        (bad, errors)
    }));
    let (bad, _errors) = got.expect("reading a range that outlived its read-only handle panicked");
    assert!(
        bad.is_empty(),
        "{} entries of other data, e.g. {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    match table.len() {
        Err(StorageError::DatabaseClosed) => {}
        other => panic!("len() of a table of a dropped read-only handle: {other:?}"),
    }
    drop((table, read));
    db.close().unwrap();
}
