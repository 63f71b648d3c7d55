//! Adversarial review of `Database::backup` and `sluice backup` on real
//! files: a backup process SIGKILLed at deterministic pseudo-random moments
//! (the library in a re-executed child of this test binary, and the `sluice`
//! binary), a backup taken while threads commit with every durability and
//! checkpoint, the copy's log being its own, and destinations that collide
//! with the source's own files.
//!
//! The child mode: `backup_child` (ignored) runs only with
//! `SLUICE_BACKUP_KILL_CHILD=<mode>|<src>|<dest>` set.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sluicedb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

const A: TableDefinition<u64, &[u8]> = TableDefinition::new("a");
const B: TableDefinition<u64, u64> = TableDefinition::new("b");
const COUNT: TableDefinition<&str, u64> = TableDefinition::new("count");

const CHILD: &str = "SLUICE_BACKUP_KILL_CHILD";

/// Serializes this file's tests: a child forked by one test briefly holds
/// every open file of the others (until its exec), `flock`s included.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Kills a hung test after `secs`.
fn watchdog(secs: u64, what: &'static str) -> Arc<AtomicBool> {
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    std::thread::spawn(move || {
        let start = Instant::now();
        while !flag.load(Ordering::Relaxed) {
            if start.elapsed() > Duration::from_secs(secs) {
                eprintln!("watchdog: {what} hung for {secs} s");
                std::process::abort();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    done
}

fn lcg(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    *seed >> 33
}

fn value_of(k: u64) -> Vec<u8> {
    format!("{k:012}").into_bytes().repeat(50)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// One commit of the prefix scheme: reads the counter `n` inside the write
/// transaction (writers are serialized) and writes `n + 1` to all three
/// tables. Returns the commit's number once acknowledged.
fn commit_next(db: &Database, durability: Durability, pipelined: bool) -> u64 {
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(durability).unwrap();
    let n;
    {
        let mut count = txn.open_table(COUNT).unwrap();
        n = count.get("n").unwrap().map_or(0, |v| v.value()) + 1;
        count.insert("n", n).unwrap();
        txn.open_table(A).unwrap().insert(n, value_of(n).as_slice()).unwrap();
        txn.open_table(B).unwrap().insert(n, n * 3).unwrap();
    }
    if pipelined {
        txn.commit_pipelined().unwrap().wait().unwrap();
    } else {
        txn.commit().unwrap();
    }
    n
}

/// A source of `txns` durable transactions of `per` keys each: the prefix
/// of `txns * per` commits.
fn fill(path: &Path, txns: u64, per: u64) -> u64 {
    let db = Database::create(path).unwrap();
    let mut n = 0;
    for _ in 0..txns {
        let txn = db.begin_write().unwrap();
        {
            let mut a = txn.open_table(A).unwrap();
            let mut b = txn.open_table(B).unwrap();
            for _ in 0..per {
                n += 1;
                a.insert(n, value_of(n).as_slice()).unwrap();
                b.insert(n, n * 3).unwrap();
            }
            txn.open_table(COUNT).unwrap().insert("n", n).unwrap();
        }
        txn.commit().unwrap();
    }
    db.close().unwrap();
    n
}

/// The commit count a database holds, asserting it is one whole prefix:
/// keys 1..=n with their values in both data tables, the counter at n.
fn prefix_of(db: &Database, what: &str) -> u64 {
    let read = db.begin_read().unwrap();
    let Ok(count) = read.open_table(COUNT) else { return 0 };
    let n = count.get("n").unwrap().map_or(0, |v| v.value());
    let a = read.open_table(A).unwrap();
    let b = read.open_table(B).unwrap();
    assert_eq!(a.len().unwrap(), n, "{what}: table a is not the prefix of {n} commits");
    assert_eq!(b.len().unwrap(), n, "{what}: table b is not the prefix of {n} commits");
    for (i, entry) in a.iter().unwrap().enumerate() {
        let (k, v) = entry.unwrap();
        let i = i as u64 + 1;
        assert_eq!(k.value(), i, "{what}: key of a");
        assert_eq!(v.value(), value_of(i).as_slice(), "{what}: value of a at {i}");
    }
    for (i, entry) in b.iter().unwrap().enumerate() {
        let (k, v) = entry.unwrap();
        let i = i as u64 + 1;
        assert_eq!((k.value(), v.value()), (i, i * 3), "{what}: entry of b");
    }
    n
}

/// Opens `path`, checks it holds a whole prefix and passes the integrity
/// check; returns the prefix.
fn open_checked(path: &Path, what: &str) -> u64 {
    let mut db = Database::open(path).unwrap_or_else(|e| panic!("{what}: {} does not open: {e}", path.display()));
    let n = prefix_of(&db, what);
    assert!(db.check_integrity().unwrap(), "{what}: integrity check failed");
    db.close().unwrap();
    n
}

/// The child: opens the source, backs it up; in `busy` mode a thread
/// commits meanwhile and prints each durable commit.
#[test]
#[ignore = "the child process of the kill tests (needs SLUICE_BACKUP_KILL_CHILD)"]
fn backup_child() {
    let Ok(spec) = std::env::var(CHILD) else { return };
    let mut parts = spec.splitn(3, '|');
    let (mode, src, dest) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    // Ends libtest's "test backup_child ... " line: ours start on their own.
    println!();
    let db = Arc::new(Database::open(src).unwrap());
    if mode == "busy" {
        let acked = Arc::new(AtomicU64::new(0));
        {
            let (db, acked) = (db.clone(), acked.clone());
            std::thread::spawn(move || {
                for i in 0u64.. {
                    let (durability, pipelined) = match i % 3 {
                        0 => (Durability::Immediate, false),
                        1 => (Durability::None, false),
                        _ => (Durability::Immediate, true),
                    };
                    let n = commit_next(&db, durability, pipelined);
                    acked.fetch_max(n, Ordering::SeqCst);
                    if durability == Durability::Immediate {
                        println!("durable {n}");
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_millis(30));
        println!("start {}", acked.load(Ordering::SeqCst));
    } else {
        println!("start 0");
    }
    let report = db.backup_with_progress(dest, |n| println!("progress {n}")).unwrap();
    println!("done {}", report.entries);
    std::process::exit(0);
}

/// What the parent read from a killed child.
#[derive(Default, Debug)]
struct Seen {
    started: u64,
    durable: u64,
    done: bool,
}

fn scan(line: &str, seen: &mut Seen) {
    let mut words = line.split_whitespace();
    match (words.next(), words.next().and_then(|w| w.parse::<u64>().ok())) {
        (Some("start"), Some(n)) => seen.started = n,
        (Some("durable"), Some(n)) => seen.durable = seen.durable.max(n),
        (Some("done"), _) => seen.done = true,
        _ => {}
    }
}

fn spawn_child(mode: &str, src: &Path, dest: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "backup_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, format!("{mode}|{}|{}", src.display(), dest.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Runs the library child, killing it `delay` after it said "start" (never,
/// for `None`). Returns what it printed.
fn run_child(mode: &str, src: &Path, dest: &Path, delay: Option<Duration>) -> (Seen, Duration) {
    let mut child = spawn_child(mode, src, dest);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut seen = Seen::default();
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        scan(&line, &mut seen);
        if line.starts_with("start") {
            break;
        }
    }
    let started = Instant::now();
    if let Some(delay) = delay {
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
    }
    let mut rest = String::new();
    let _ = out.read_to_string(&mut rest);
    let status = child.wait().unwrap();
    let took = started.elapsed();
    for line in rest.lines() {
        scan(line, &mut seen);
    }
    if delay.is_none() {
        assert!(
            status.success() && seen.done,
            "the unkilled child failed: {status:?} {seen:?}"
        );
    }
    (seen, took)
}

/// After a kill: `dest` is absent or a complete copy holding `expected`
/// commits (or, `busy`, at least those acknowledged before the backup
/// started); the source opens with every acknowledged commit; a second
/// backup to the same `dest` refuses (present) or succeeds (absent) and
/// leaves no partial files. Returns whether the copy was present.
fn verify_after_kill(src: &Path, dest: &Path, at_least: u64, exact: bool, seen: &Seen, what: &str) -> bool {
    let source = open_checked(src, &format!("{what}: source"));
    assert!(
        source >= seen.durable && source >= at_least,
        "{what}: the source lost acknowledged commits: holds {source}, acked {} / {at_least}",
        seen.durable
    );
    let present = std::fs::symlink_metadata(dest).is_ok();
    if seen.done {
        assert!(
            present,
            "{what}: the child reported success but {} is absent",
            dest.display()
        );
    }
    if present {
        let n = open_checked(dest, &format!("{what}: copy left by the kill"));
        if exact {
            assert_eq!(n, at_least, "{what}: the copy is not the whole snapshot");
        } else {
            assert!(
                (at_least..=source).contains(&n),
                "{what}: the copy holds {n} commits, outside {at_least}..={source}"
            );
        }
        let db = Database::open(src).unwrap();
        let again = db.backup(dest);
        assert!(again.is_err(), "{what}: a backup over a present copy: {again:?}");
        drop(db);
        std::fs::remove_file(dest).unwrap();
        std::fs::remove_dir_all(with_suffix(dest, "-wal")).unwrap();
    } else {
        assert!(
            !with_suffix(dest, "-wal").exists(),
            "{what}: no copy, but its WAL directory exists"
        );
    }
    // The next backup to the same destination handles what the kill left.
    let db = Database::open(src).unwrap();
    let report = db
        .backup(dest)
        .unwrap_or_else(|e| panic!("{what}: the retry after the kill failed: {e}"));
    drop(db);
    for leftover in [".backup-partial", ".backup-partial-wal"] {
        assert!(
            !with_suffix(dest, leftover).exists(),
            "{what}: {leftover} left after a successful retry"
        );
    }
    let n = open_checked(dest, &format!("{what}: retried copy"));
    assert_eq!(report.entries, 2 * n + 1, "{what}: report of the retry");
    std::fs::remove_file(dest).unwrap();
    std::fs::remove_dir_all(with_suffix(dest, "-wal")).unwrap();
    present
}

/// SIGKILL of a library backup at pseudo-random moments: the destination
/// is absent or a complete copy of exactly the source's commits, the source
/// is intact, and a later backup to the same destination refuses or cleans
/// up.
#[test]
fn a_killed_library_backup_leaves_no_half_copy() {
    let _serial = serial();
    let dog = watchdog(120, "a_killed_library_backup_leaves_no_half_copy");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.db");
    let dest = dir.path().join("copy.db");
    let n = fill(&src, 8, 1000);
    // Calibration: an unkilled run.
    let (_, full) = run_child("quiet", &src, &dest, None);
    assert_eq!(open_checked(&dest, "unkilled copy"), n);
    std::fs::remove_file(&dest).unwrap();
    std::fs::remove_dir_all(with_suffix(&dest, "-wal")).unwrap();
    let span = full.as_micros().max(1000) as u64 * 11 / 10;
    let mut seed = 0xB4C0_u64;
    let (mut absent, mut present) = (0, 0);
    for round in 0..10 {
        let delay = Duration::from_micros(lcg(&mut seed) % span);
        let (seen, _) = run_child("quiet", &src, &dest, Some(delay));
        let what = format!("round {round} (kill after {delay:?} of {full:?})");
        if verify_after_kill(&src, &dest, n, true, &seen, &what) {
            present += 1;
        } else {
            absent += 1;
        }
    }
    eprintln!("library kills: {absent} left no copy, {present} a complete one");
    assert!(absent > 0, "no kill landed inside the backup: the test checked nothing");
    dog.store(true, Ordering::Relaxed);
}

/// SIGKILL of a library backup while a thread of the same process commits
/// (durable, no-sync, pipelined): a copy that exists holds one whole prefix
/// with every commit acknowledged before the backup started, and the source
/// keeps every durable commit.
#[test]
fn a_killed_backup_beside_a_writer_leaves_a_prefix_or_nothing() {
    let _serial = serial();
    let dog = watchdog(120, "a_killed_backup_beside_a_writer_leaves_a_prefix_or_nothing");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.db");
    let dest = dir.path().join("copy.db");
    fill(&src, 6, 1000);
    let (seen, full) = run_child("busy", &src, &dest, None);
    verify_after_kill(&src, &dest, seen.started, false, &seen, "unkilled busy run");
    let span = full.as_micros().max(1000) as u64 * 11 / 10;
    let mut seed = 0xB05E_u64;
    let mut absent = 0;
    for round in 0..6 {
        let delay = Duration::from_micros(lcg(&mut seed) % span);
        let (seen, _) = run_child("busy", &src, &dest, Some(delay));
        let what = format!("busy round {round} (kill after {delay:?} of {full:?}, {seen:?})");
        if !verify_after_kill(&src, &dest, seen.started, false, &seen, &what) {
            absent += 1;
        }
    }
    assert!(absent > 0, "no kill landed inside the backup: the test checked nothing");
    dog.store(true, Ordering::Relaxed);
}

/// SIGKILL of `sluice backup` at pseudo-random moments: the same
/// guarantees as the library's.
#[test]
fn a_killed_cli_backup_leaves_no_half_copy() {
    let _serial = serial();
    let dog = watchdog(120, "a_killed_cli_backup_leaves_no_half_copy");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.db");
    let dest = dir.path().join("copy.db");
    let n = fill(&src, 8, 1000);
    let sluice = env!("CARGO_BIN_EXE_sluice");
    let start = Instant::now();
    let out = Command::new(sluice)
        .arg("backup")
        .arg(&src)
        .arg(&dest)
        .output()
        .unwrap();
    let full = start.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(open_checked(&dest, "unkilled CLI copy"), n);
    std::fs::remove_file(&dest).unwrap();
    std::fs::remove_dir_all(with_suffix(&dest, "-wal")).unwrap();
    let span = full.as_micros().max(1000) as u64 * 11 / 10;
    let mut seed = 0xC11_u64;
    let mut absent = 0;
    for round in 0..8 {
        let delay = Duration::from_micros(lcg(&mut seed) % span);
        let mut child = Command::new(sluice)
            .arg("backup")
            .arg(&src)
            .arg(&dest)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let mut stdout = String::new();
        child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
        let status = child.wait().unwrap();
        let seen = Seen {
            done: status.success() && stdout.contains("backed up"),
            ..Seen::default()
        };
        let what = format!("CLI round {round} (kill after {delay:?} of {full:?})");
        if !verify_after_kill(&src, &dest, n, true, &seen, &what) {
            absent += 1;
        }
    }
    assert!(absent > 0, "no kill landed inside the backup: the test checked nothing");
    dog.store(true, Ordering::Relaxed);
}

/// Backups taken while three threads commit (durable, no-sync, pipelined)
/// and a fourth checkpoints: each copy is one whole prefix (every table at
/// one commit) holding every commit acknowledged before it started, opens
/// from its data file alone and passes the integrity check.
#[test]
fn backups_beside_every_kind_of_writer_and_checkpoints_hold_one_prefix() {
    let _serial = serial();
    let dog = watchdog(
        90,
        "backups_beside_every_kind_of_writer_and_checkpoints_hold_one_prefix",
    );
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        Database::builder()
            .set_memtable_size(64 << 10)
            .create(dir.path().join("src.db"))
            .unwrap(),
    );
    for _ in 0..300 {
        commit_next(&db, Durability::None, false);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(300));
    let mut threads = Vec::new();
    for (durability, pipelined) in [
        (Durability::Immediate, false),
        (Durability::None, false),
        (Durability::Immediate, true),
    ] {
        let (db, stop, acked) = (db.clone(), stop.clone(), acked.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let n = commit_next(&db, durability, pipelined);
                acked.fetch_max(n, Ordering::SeqCst);
            }
        }));
    }
    {
        let (db, stop) = (db.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                db.checkpoint().unwrap();
                std::thread::sleep(Duration::from_millis(3));
            }
        }));
    }
    let mut copies = Vec::new();
    for round in 0..4 {
        std::thread::sleep(Duration::from_millis(50));
        let dest = dir.path().join(format!("copy-{round}.db"));
        let before = acked.load(Ordering::SeqCst);
        let report = db.backup(&dest).unwrap();
        let after = acked.load(Ordering::SeqCst);
        copies.push((dest, report, before, after));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    for (dest, report, before, after) in copies {
        let copy = Database::open(&dest).unwrap();
        assert_eq!(
            copy.stats().recovery.replayed_records,
            0,
            "the copy needs its (deleted) WAL"
        );
        let n = prefix_of(&copy, "online copy");
        drop(copy);
        assert!(
            n >= before,
            "copy {} holds {n} commits, but {before} were acknowledged before the backup started",
            dest.display()
        );
        // `after` may lag the last commit published; only a bound check.
        assert!(n <= after + 3, "copy holds {n} commits, more than {after} + in flight");
        assert_eq!(report.entries, 2 * n + 1, "report of {}", dest.display());
        assert_eq!(open_checked(&dest, "online copy"), n);
    }
    dog.store(true, Ordering::Relaxed);
}

/// The copy's log is its own: writes to the copy and to the source, each
/// left in its WAL (no checkpoint), never reach the other; and a copy
/// restored over the source's data file, beside the source's log, is
/// refused or opens with exactly the copy's contents (the source's later
/// commits are not replayed onto it).
#[test]
fn a_copy_has_its_own_log_and_a_restore_never_replays_the_sources() {
    let _serial = serial();
    let dog = watchdog(60, "a_copy_has_its_own_log_and_a_restore_never_replays_the_sources");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.db");
    let dest = dir.path().join("copy.db");
    let n = fill(&src, 2, 100);
    let db = Database::open(&src).unwrap();
    db.backup(&dest).unwrap();
    let copy = Database::open(&dest).unwrap();
    for _ in 0..5 {
        commit_next(&db, Durability::Immediate, false);
    }
    for _ in 0..2 {
        commit_next(&copy, Durability::Immediate, false);
    }
    db.close_without_checkpoint();
    copy.close_without_checkpoint();
    assert_eq!(open_checked(&src, "source"), n + 5);
    assert_eq!(open_checked(&dest, "copy"), n + 2);

    // Restore: the source writes past a checkpoint (left in its WAL), then
    // its data file is replaced by the copy's.
    let restore = dir.path().join("restore.db");
    let db = Database::open(&src).unwrap();
    db.backup(&restore).unwrap();
    for _ in 0..4 {
        commit_next(&db, Durability::Immediate, false);
    }
    db.close_without_checkpoint();
    std::fs::copy(&restore, &src).unwrap();
    match Database::open(&src) {
        Err(e) => eprintln!("restore beside the old log refused: {e}"),
        Ok(db) => {
            let got = prefix_of(&db, "restored copy");
            assert_eq!(got, n + 5, "the restored copy replayed the source's later log");
        }
    }
    dog.store(true, Ordering::Relaxed);
}

fn small_source(path: &Path) -> (Database, u64) {
    let n = fill(path, 1, 50);
    (Database::open(path).unwrap(), n)
}

/// A backup into the source's own WAL directory, under a name the log
/// treats as its own (its spare segment, a segment), is refused, or else
/// both the copy and the source survive the source's close and reopen.
#[test]
fn a_backup_inside_the_sources_wal_directory_is_refused_or_harmless() {
    let _serial = serial();
    let dog = watchdog(60, "a_backup_inside_the_sources_wal_directory_is_refused_or_harmless");
    let mut failures = Vec::new();
    for name in ["copy.db", "next-segment.spare", "00000000000001000000.wal"] {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.db");
        let (db, n) = small_source(&src);
        commit_next(&db, Durability::Immediate, false);
        let dest = with_suffix(&src, "-wal").join(name);
        let result = db.backup(&dest);
        if result.is_ok() {
            // The source goes on: more commits, a close, a reopen.
            for _ in 0..3 {
                commit_next(&db, Durability::Immediate, false);
            }
            drop(db);
            if !dest.exists() {
                failures.push(format!("{name}: the backup (Ok) vanished when the source closed"));
                continue;
            }
            match Database::open(&src) {
                Ok(db) => {
                    let got = prefix_of(&db, "source");
                    if got != n + 4 {
                        failures.push(format!("{name}: the source reopened with {got} of {} commits", n + 4));
                    }
                    db.close().unwrap();
                }
                Err(e) => failures.push(format!("{name}: the source no longer opens: {e}")),
            }
            if !dest.exists() {
                failures.push(format!("{name}: the backup (Ok) vanished once the source reopened"));
            } else {
                match Database::open(&dest) {
                    Ok(copy) => {
                        let got = prefix_of(&copy, "copy");
                        if got != n + 1 {
                            failures.push(format!("{name}: the copy holds {got} of {} commits", n + 1));
                        }
                    }
                    Err(e) => failures.push(format!("{name}: the backup (Ok) no longer opens: {e}")),
                }
            }
        } else {
            drop(db);
            assert_eq!(open_checked(&src, "source after a refusal"), n + 1);
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    dog.store(true, Ordering::Relaxed);
}

/// A source that lives inside `<dest>.backup-partial-wal/` (a directory the
/// backup takes for a failed backup's WAL) is not deleted by a backup to
/// `dest`: the backup is refused or the source stays on disk and opens.
#[test]
fn a_backup_never_deletes_the_source_it_copies() {
    let _serial = serial();
    let dog = watchdog(60, "a_backup_never_deletes_the_source_it_copies");
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("nightly.db");
    let home = with_suffix(&dest, ".backup-partial-wal");
    std::fs::create_dir(&home).unwrap();
    let src = home.join("src.db");
    let (db, n) = small_source(&src);
    let result = db.backup(&dest);
    drop(db);
    assert!(
        src.exists(),
        "backup to {} returned {result:?} and deleted the source {}",
        dest.display(),
        src.display()
    );
    assert_eq!(open_checked(&src, "source"), n);
    dog.store(true, Ordering::Relaxed);
}

/// The same through `sluice backup`: a source inside
/// `<dest>.backup-partial-wal/` stays on disk and opens after the command,
/// which refuses before it opens the source (a writable open records a new
/// log in the data file).
#[test]
fn sluice_backup_never_deletes_the_source_it_copies() {
    let _serial = serial();
    let dog = watchdog(60, "sluice_backup_never_deletes_the_source_it_copies");
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("nightly.db");
    let home = with_suffix(&dest, ".backup-partial-wal");
    std::fs::create_dir(&home).unwrap();
    let src = home.join("src.db");
    let n = fill(&src, 1, 50);
    let before = std::fs::read(&src).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("backup")
        .arg(&src)
        .arg(&dest)
        .output()
        .unwrap();
    assert!(
        src.exists(),
        "sluice backup {} {} (status {}, stdout {:?}) deleted the source",
        src.display(),
        dest.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout).trim()
    );
    assert!(!out.status.success(), "the overlapping backup was not refused");
    assert!(
        std::fs::read(&src).unwrap() == before,
        "the refused backup wrote to the source: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    assert_eq!(open_checked(&src, "source"), n);
    dog.store(true, Ordering::Relaxed);
}

/// Destinations that are the source or collide with it are refused, and
/// the source, and what was at the destination, are kept: the source
/// itself (plain, through `..`, through a symbolic link, a hard link), the
/// source's WAL directory, an existing directory, a destination whose
/// `-wal` exists, a source named like the destination's partial file (and
/// its WAL like the partial WAL); the same through `sluice backup`.
#[test]
fn destinations_that_collide_with_the_source_are_refused() {
    let _serial = serial();
    let dog = watchdog(60, "destinations_that_collide_with_the_source_are_refused");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.db");
    let (db, n) = small_source(&src);
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::os::unix::fs::symlink(&src, dir.path().join("link.db")).unwrap();
    std::fs::hard_link(&src, dir.path().join("hard.db")).unwrap();
    std::fs::create_dir(dir.path().join("adir")).unwrap();
    std::fs::create_dir(dir.path().join("w.db-wal")).unwrap();
    let dests = [
        src.clone(),
        dir.path().join("sub/../src.db"),
        dir.path().join("link.db"),
        dir.path().join("hard.db"),
        with_suffix(&src, "-wal"),
        dir.path().join("adir"),
        dir.path().join("w.db"),
        dir.path().join("missing/copy.db"),
    ];
    for dest in &dests {
        let result = db.backup(dest);
        assert!(result.is_err(), "backup to {} accepted: {result:?}", dest.display());
    }
    assert!(!dir.path().join("w.db").exists());
    drop(db);
    assert_eq!(open_checked(&src, "source after refusals"), n);
    for dest in &dests {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("backup")
            .arg(&src)
            .arg(dest)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "sluice backup to {} accepted", dest.display());
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert_eq!(open_checked(&src, "source after CLI refusals"), n);

    // A source named like the destination's partial file.
    let odd = dir.path().join("x.db.backup-partial");
    let (db, m) = small_source(&odd);
    commit_next(&db, Durability::Immediate, false);
    let result = db.backup(dir.path().join("x.db"));
    drop(db);
    assert!(odd.exists(), "the source {} was deleted ({result:?})", odd.display());
    let got = open_checked(&odd, "source named like a partial file");
    assert_eq!(got, m + 1, "backup returned {result:?}");
    if result.is_ok() {
        assert_eq!(open_checked(&dir.path().join("x.db"), "its copy"), m + 1);
    }
    dog.store(true, Ordering::Relaxed);
}
