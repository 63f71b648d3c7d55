//! Bad input to the `sluice` tool, the online backup and read-only opens
//! (an adversarial review's, fifty-fourth session: it found a read-only
//! open and recovery aborting on a WAL segment stretched to 1 TiB, and
//! `load` writing entries of the wrong width, a table given two sets of
//! types, and half of a dump with an oversized key) (BRIEF, "reliability contract"; design/operations.md):
//! bad input gets one clear line and exit 1 (or 2 for damage), never a
//! panic, an abort or a signal, and never loses acknowledged data; `load`
//! refuses a damaged dump whole ("the first pass writes nothing, so a
//! truncated or damaged dump is refused whole, not half loaded",
//! src/bin/sluice/dump.rs) and writes nothing `put` would refuse.

mod cli_support;

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cli_support::{run as sluice, serial};
use sluicedb::{Database, ReadOnlyDatabase, ReadableDatabase, ReadableTableMetadata, TableDefinition};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");
const S: TableDefinition<&str, &str> = TableDefinition::new("s");

/// Asserts the run ended by itself (no signal: an abort is SIGABRT), with
/// a documented status (0, 1 or 2), no panic, and one line on failure.
fn clean_exit(args: &[&str], out: &Output) -> i32 {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr
        .lines()
        .find(|l| l.contains("panicked") || l.contains("memory allocation"))
        .unwrap_or_else(|| stderr.lines().next().unwrap_or(""));
    let code = out.status.code();
    assert!(
        matches!(code, Some(0..=2)),
        "sluice {args:?}: status {:?} (a signal or undocumented code): {first}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "sluice {args:?} panicked: {first}");
    if code != Some(0) {
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "sluice {args:?}: not one line: {stderr}"
        );
    }
    code.unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn wal_dir(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap().to_os_string();
    name.push("-wal");
    db.with_file_name(name)
}

/// The WAL segments of `db`, sorted by name (so by first sequence).
fn segments(db: &Path) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(wal_dir(db))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    all.sort();
    all
}

/// A checkpointed database with `t` (3000 u64 entries, spanning pages) and
/// `s` (500 strings), then `tail` commits left in the WAL (each committed
/// durably and acknowledged, the handle closed without a checkpoint).
fn make(path: &Path, tail: u64) {
    let _serial = serial();
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for i in 0..3000 {
            t.insert(i, i * 7).unwrap();
        }
        let mut s = txn.open_table(S).unwrap();
        for i in 0..500 {
            let v = "v".repeat(i % 300);
            s.insert(format!("k{i:05}").as_str(), v.as_str()).unwrap();
        }
    }
    txn.commit().unwrap();
    db.close().unwrap();
    // One open per commit, as separate processes would: each open starts
    // a segment of its own.
    for i in 0..tail {
        let db = Database::open(path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(T).unwrap().insert(10_000 + i, i).unwrap();
        txn.commit().unwrap();
        db.close_without_checkpoint();
    }
}

/// Every subcommand that takes a database, with arguments that would work
/// on the sound database at `db` (`bk` names a backup destination).
fn commands(db: &str, bk: &str) -> Vec<Vec<String>> {
    let all: [&[&str]; 14] = [
        &["stat", db],
        &["stat", db, "--json"],
        &["tables", db],
        &["check", db],
        &["dump", db],
        &["scan", db, "t"],
        &["scan", db, "s", "--from", "k00100", "--limit", "3"],
        &["get", db, "t", "5"],
        &["wal", db],
        &["del", db, "t", "5"],
        &["put", db, "t", "5", "9"],
        &["compact", db],
        &["checkpoint", db],
        &["backup", db, bk],
    ];
    all.iter().map(|a| a.iter().map(|s| s.to_string()).collect()).collect()
}

/// Runs every command on a fresh copy of `image` (and of the WAL directory
/// `wal`, if any), each one checked by [`clean_exit`]. The statuses.
fn sweep(dir: &Path, image: &[u8], wal: Option<&Path>) -> Vec<i32> {
    let db = dir.join("sweep");
    let bk = dir.join("sweep-backup");
    let mut codes = Vec::new();
    for args in commands(db.to_str().unwrap(), bk.to_str().unwrap()) {
        // The commands that read the WAL their own ways (read-only replay,
        // `wal::scan`, writable replay): enough for a damaged log.
        if wal.is_some() && !["stat", "wal", "put", "checkpoint"].contains(&args[0].as_str()) {
            continue;
        }
        let _ = std::fs::remove_file(&bk);
        let _ = std::fs::remove_dir_all(wal_dir(&bk));
        let _ = std::fs::remove_dir_all(wal_dir(&db));
        std::fs::write(&db, image).unwrap();
        if let Some(wal) = wal {
            std::fs::create_dir(wal_dir(&db)).unwrap();
            for e in std::fs::read_dir(wal).unwrap() {
                let e = e.unwrap();
                std::fs::copy(e.path(), wal_dir(&db).join(e.file_name())).unwrap();
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = sluice(&args);
        codes.push(clean_exit(&args, &out));
    }
    codes
}

/// Truncations of the data file at many lengths, and bytes flipped at
/// several offsets of every page: every subcommand ends with a documented
/// status and one line, never a panic or a signal.
#[test]
fn cli_on_truncated_and_damaged_data_files_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    make(&db, 0);
    let image = std::fs::read(&db).unwrap();
    assert!(
        sweep(dir.path(), &image, None).iter().all(|&c| c == 0),
        "the sound file works"
    );
    let n = image.len();
    for len in [1, 100, 4096, 8193, n / 2, n - 1] {
        let codes = sweep(dir.path(), &image[..len], None);
        assert!(codes.iter().all(|&c| c != 0), "truncated to {len}: {codes:?}");
    }
    // Every page, at one of four offsets (header fields, slots, contents).
    for page in 0..n / 4096 {
        let offset = [0, 16, 40, 2000][page % 4];
        let mut img = image.clone();
        for b in &mut img[page * 4096 + offset..page * 4096 + offset + 4] {
            *b ^= 0xA5;
        }
        sweep(dir.path(), &img, None);
    }
}

/// A WAL whose segments are damaged, truncated, missing, replaced by a
/// directory or joined by junk: every subcommand ends cleanly.
#[test]
fn cli_on_damaged_wal_segments_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    make(&db, 4);
    let image = std::fs::read(&db).unwrap();
    let segs = segments(&db);
    assert!(segs.len() >= 2, "{segs:?}");
    let wal = dir.path().join("wal-copy");
    let fresh = |wal: &Path| {
        let _ = std::fs::remove_dir_all(wal);
        std::fs::create_dir(wal).unwrap();
        for s in &segs {
            std::fs::copy(s, wal.join(s.file_name().unwrap())).unwrap();
        }
    };
    for seg in [&segs[0], &segs[segs.len() - 1]] {
        let name = seg.file_name().unwrap();
        let orig = std::fs::read(seg).unwrap();
        for offset in (0..120).step_by(20) {
            fresh(&wal);
            let mut b = orig.clone();
            b[offset] ^= 0x5A;
            std::fs::write(wal.join(name), b).unwrap();
            sweep(dir.path(), &image, Some(&wal));
        }
        for len in [0, 100] {
            fresh(&wal);
            std::fs::write(wal.join(name), &orig[..len]).unwrap();
            sweep(dir.path(), &image, Some(&wal));
        }
    }
    fresh(&wal);
    std::fs::remove_file(wal.join(segs[1].file_name().unwrap())).unwrap();
    sweep(dir.path(), &image, Some(&wal));
    fresh(&wal);
    std::fs::write(wal.join("00000000000000000099.wal"), b"junk junk junk junk").unwrap();
    sweep(dir.path(), &image, Some(&wal));
}

/// The database file and its WAL under one name, the original's WAL made
/// 1 TiB long by a sparse zero tail after its last record (as a segment
/// preallocated and never filled is: design/wal.md, "Spare segments";
/// `SegmentBytes` in src/wal/reader.rs loads segments lazily for that
/// reason). `damage` also flips a byte of the last record.
fn with_huge_last_segment(dir: &Path, damage: bool) -> PathBuf {
    let db = dir.join("db");
    make(&db, 3);
    let last = segments(&db).pop().unwrap();
    if damage {
        let mut bytes = std::fs::read(&last).unwrap();
        bytes[100] ^= 0xEE;
        std::fs::write(&last, bytes).unwrap();
    }
    OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    db
}

/// A sound WAL whose last segment has a 1 TiB sparse zero tail: `sluice
/// wal` reads it (lazily) and reports a clean log, but every read-only
/// open (`stat`, `tables`, `check`, `get`, `scan`, `dump`, and
/// `ReadOnlyDatabase::open`) aborts the process: "memory allocation of
/// 1099511627776 bytes failed" (SIGABRT). Root cause: `read_only::copy_log`
/// (src/read_only.rs) copies every segment whole into memory with
/// `vec![0u8; len]`, trusting the file's length.
#[test]
fn read_only_open_of_a_wal_with_a_huge_sparse_tail_does_not_abort() {
    let dir = tempfile::tempdir().unwrap();
    let db = with_huge_last_segment(dir.path(), false);
    let p = db.to_str().unwrap();
    let out = sluice(&["wal", p, "--summary"]);
    assert_eq!(clean_exit(&["wal"], &out), 0);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("the log ends cleanly"),
        "{out:?}"
    );
    for args in [
        vec!["stat", p],
        vec!["tables", p],
        vec!["check", p],
        vec!["get", p, "t", "10002"],
    ] {
        let out = sluice(&args);
        assert_eq!(clean_exit(&args, &out), 0, "{args:?}: the log is sound: {out:?}");
    }
}

/// Run in a child process by the test below (an abort must not take the
/// test harness down): opens the database named by
/// `SLUICEDB_REVIEW_HUGE_WAL` writable and prints the outcome.
#[test]
#[ignore = "a child process of a_damaged_record_in_a_huge_wal_segment_is_an_error_not_an_abort"]
fn child_open_huge_wal() {
    let Ok(path) = std::env::var("SLUICEDB_REVIEW_HUGE_WAL") else {
        return;
    };
    let opened = std::panic::catch_unwind(|| Database::open(&path).map(drop).map_err(|e| e.to_string()));
    println!("open: {opened:?}");
}

/// The same 1 TiB segment with a byte of its last record flipped. Recovery
/// then searches the rest of the segment for later records, and
/// `SegmentBytes::search` (src/wal/reader.rs) loads the whole segment
/// (`load_to(self.len)`): both `sluice wal` and a writable
/// `Database::open` abort with "memory allocation of 1099511627776 bytes
/// failed" instead of reporting a torn tail or an error.
#[test]
fn a_damaged_record_in_a_huge_wal_segment_is_an_error_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let db = with_huge_last_segment(dir.path(), true);
    let p = db.to_str().unwrap();
    let out = {
        let _serial = serial();
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_open_huge_wal",
                "--ignored",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("SLUICEDB_REVIEW_HUGE_WAL", &db)
            .output()
            .unwrap()
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let why = stderr.lines().find(|l| l.contains("memory allocation")).unwrap_or("");
    assert!(
        out.status.success() && stdout.contains("open: Ok("),
        "Database::open with a damaged record in a 1 TiB segment: {:?} {why}",
        out.status
    );
    let out = sluice(&["wal", p, "--summary"]);
    clean_exit(&["wal", p, "--summary"], &out);
}

const U64_META: &str = "u64\0u64\0b\0w8,8";
const STR_META: &str = "&str\0&str\0b\0w-,-";

/// A table's entries: `(key, value)` bytes.
type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// A hex-format dump of `tables` (name, metadata, entries), with a correct
/// end line.
fn dump_text(tables: &[(&str, &str, Rows)]) -> String {
    let mut out = String::from("sluice-dump 1 hex\n");
    let mut entries = 0;
    for (name, meta, rows) in tables {
        out.push_str(&format!("table {} {}\n", hex(name.as_bytes()), hex(meta.as_bytes())));
        for (k, v) in rows {
            out.push_str(&format!(" {} {}\n", hex(k), hex(v)));
            entries += 1;
        }
    }
    out.push_str(&format!("end {} {entries}\n", tables.len()));
    out
}

/// What the database at `path` holds, read with the byte-level engine API
/// (read-only): table name -> entries.
fn contents(path: &Path) -> Vec<(String, Rows)> {
    let _serial = serial();
    let db = ReadOnlyDatabase::open(path).unwrap();
    let read = db.engine().begin_read().unwrap();
    let mut all = Vec::new();
    for (name, _) in read.list_tables().unwrap() {
        let order = read.table_order(&name).unwrap().flatten().unwrap();
        let handle = read.open_table(&name, order).unwrap().unwrap();
        let rows = read
            .range(&handle, std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.to_vec(), v.as_bytes().to_vec())
            })
            .collect();
        all.push((String::from_utf8_lossy(&name).into_owned(), rows));
    }
    all
}

/// Loads `dump` into a new database; expects a one-line refusal (exit 1)
/// and nothing loaded: no database, or one without entries.
fn load_refused(dir: &Path, dump: &str, what: &str) {
    let input = dir.join(format!("{what}.dump"));
    std::fs::write(&input, dump).unwrap();
    let db = dir.join(format!("{what}.db"));
    let args = ["load", db.to_str().unwrap(), "-i", input.to_str().unwrap()];
    let out = sluice(&args);
    let code = clean_exit(&args, &out);
    let loaded = if db.exists() { contents(&db) } else { Vec::new() };
    assert!(
        code == 1 && loaded.iter().all(|(_, rows)| rows.is_empty()),
        "{what}: load exited {code} ({}), and the database holds {loaded:?}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// `sluice put --hex` refuses a 1-byte key for a `u64` table ("8 bytes
/// wide", tests/cli_errors.rs) because a program would read it as another
/// value; `load` writes the same bytes from a dump without a word. A typed
/// reader then sees key `1 << 56` (`u64::from_bytes` zero-pads) and a
/// value it never wrote, and `check` calls the file sound. Root cause:
/// `dump::check_dump`/`load` (src/bin/sluice/dump.rs) never compare entry
/// lengths with the table's recorded widths (`TableMeta::widths`).
#[test]
fn load_refuses_entries_of_the_wrong_width_for_the_recorded_types() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dump_text(&[(
        "t",
        U64_META,
        vec![
            (3u64.to_be_bytes().to_vec(), 4u64.to_be_bytes().to_vec()),
            (vec![1], vec![2]),
        ],
    )]);
    load_refused(dir.path(), &dump, "wrong-width");
}

/// A dump naming table `t` twice, first as `u64 -> u64` then as
/// `&str -> &str`: `load` refuses a table that exists in the database with
/// other types, but not one the dump itself gives two sets of types. It
/// loads both into one table recorded as `u64 -> u64` and exits 0, a
/// string key among its integers. Root cause: `dump::check_dump` keeps
/// each table line and never compares repeated names' metadata, and the
/// engine's `WriteTxn::open_table` does not compare it either.
#[test]
fn load_refuses_a_dump_that_gives_one_table_two_sets_of_types() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dump_text(&[
        (
            "t",
            U64_META,
            vec![(3u64.to_be_bytes().to_vec(), 4u64.to_be_bytes().to_vec())],
        ),
        ("t", STR_META, vec![(b"a".to_vec(), b"1".to_vec())]),
    ]);
    load_refused(dir.path(), &dump, "two-types");
}

/// A dump whose second table holds a key over the 20 KiB key limit: the
/// first pass (`check_dump`) accepts it, the second commits the first
/// table, then fails on the key ("key of 20481 bytes exceeds the maximum
/// key size", exit 1), and the closing drop checkpoints the half: table
/// `a` is loaded. dump.rs promises "a truncated or damaged dump is refused
/// whole, not half loaded". Root cause: `dump::load` commits batches of
/// earlier tables before every line has been found loadable (`check_dump`
/// checks no item limits).
#[test]
fn load_of_a_dump_with_an_oversized_key_loads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dump_text(&[
        ("a", STR_META, vec![(b"k".to_vec(), b"v".to_vec())]),
        ("b", STR_META, vec![(vec![b'A'; (20 << 10) + 1], b"v".to_vec())]),
    ]);
    load_refused(dir.path(), &dump, "oversized-key");
}

/// Bad arguments and paths: a WAL segment or WAL directory given as the
/// database, output onto the input, unwritable or missing destinations,
/// bad numbers, a dump that is the database. One line, exit 1, nothing
/// changed.
#[test]
fn bad_paths_and_arguments_get_one_line_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    make(&db, 2);
    let seg = segments(&db).pop().unwrap();
    let p = db.to_str().unwrap();
    let before_db = std::fs::read(&db).unwrap();
    let before_seg = std::fs::read(&seg).unwrap();
    let wal = wal_dir(&db);
    let missing = dir.path().join("no").join("such").join("dir").join("x");
    let dump = dir.path().join("d.dump");
    std::fs::write(&dump, dump_text(&[("t", U64_META, vec![])])).unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["stat", seg.to_str().unwrap()],
        vec!["compact", seg.to_str().unwrap()],
        vec!["wal", seg.to_str().unwrap()],
        vec!["stat", wal.to_str().unwrap()],
        vec!["load", seg.to_str().unwrap(), "-i", dump.to_str().unwrap()],
        vec!["load", p, "-i", p],
        vec!["load", p, "-i", missing.to_str().unwrap()],
        vec!["dump", p, "-o", p],
        vec!["dump", p, "-o", seg.to_str().unwrap()],
        vec!["dump", p, "-o", missing.to_str().unwrap()],
        vec!["scan", p, "t", "--limit", "-1"],
        vec!["scan", p, "t", "--limit", "99999999999999999999999"],
        vec!["get", p, "t", "-1"],
        vec!["get", p, "t", "18446744073709551616"],
        vec!["put", p, "t", "1", "18446744073709551616"],
        vec!["get", p, "t", ""],
    ];
    for args in &cases {
        let out = sluice(args);
        assert_eq!(clean_exit(args, &out), 1, "{args:?}: {out:?}");
    }
    assert_eq!(std::fs::read(&db).unwrap(), before_db, "the database changed");
    assert_eq!(std::fs::read(&seg).unwrap(), before_seg, "the WAL segment changed");
    assert!(!missing.exists());
    // For `check` a file that is no database is a finding (exit 2).
    let args = ["check", seg.to_str().unwrap()];
    assert_eq!(clean_exit(&args, &sluice(&args)), 2);
    // `backup` refuses a destination that exists or whose directory does
    // not before it opens the database: no byte changes, even of a
    // database closed cleanly, whose writable open records a new log in
    // the data file (it did, before the check came first).
    let clean = dir.path().join("clean");
    make(&clean, 0);
    let before_clean = std::fs::read(&clean).unwrap();
    for source in [p, clean.to_str().unwrap()] {
        for args in [
            vec!["backup", source, source],
            vec!["backup", source, seg.to_str().unwrap()],
            vec!["backup", source, wal.to_str().unwrap()],
            vec!["backup", source, missing.to_str().unwrap()],
        ] {
            let out = sluice(&args);
            assert_eq!(clean_exit(&args, &out), 1, "{args:?}: {out:?}");
        }
    }
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before_db,
        "a refused backup changed the database"
    );
    assert_eq!(
        std::fs::read(&clean).unwrap(),
        before_clean,
        "a refused backup changed the cleanly closed database"
    );
    // An unwritable destination is found only by the copy, after the open:
    // compared by content only.
    let args = ["backup", p, "/proc/sluice-review-backup"];
    assert_eq!(clean_exit(&args, &sluice(&args)), 1);
    assert_eq!(std::fs::read(&seg).unwrap(), before_seg, "the WAL segment changed");
    // The commits left in the WAL are all still there.
    let out = sluice(&["get", p, "t", "10001"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
}

/// A read-only open of a database whose WAL ends in a torn record (the
/// last segment cut inside its last record) shows every earlier commit and
/// changes no byte; a writable handle in the same process is refused while
/// the read-only one lives, and a read-only open while a writable one
/// lives is refused too.
#[test]
fn read_only_open_of_a_torn_wal_tail() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    make(&db, 3);
    let last = segments(&db).pop().unwrap();
    let bytes = std::fs::read(&last).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    std::fs::write(&last, &bytes[..end - 3]).unwrap();
    let before = std::fs::read(&last).unwrap();
    let _serial = serial();
    {
        let ro = ReadOnlyDatabase::open(&db).unwrap();
        let read = ro.begin_read().unwrap();
        let t = read.open_table(T).unwrap();
        assert_eq!(t.get(10_000).unwrap().unwrap().value(), 0);
        assert_eq!(t.get(10_001).unwrap().unwrap().value(), 1);
        assert!(t.get(10_002).unwrap().is_none(), "the torn record is not replayed");
        assert_eq!(t.len().unwrap(), 3002);
        assert!(Database::open(&db).is_err(), "a writable open beside a read-only one");
    }
    assert_eq!(
        std::fs::read(&last).unwrap(),
        before,
        "a read-only open changed the WAL"
    );
    let rw = Database::open(&db).unwrap();
    assert!(ReadOnlyDatabase::open(&db).is_err());
    let read = rw.begin_read().unwrap();
    assert_eq!(read.open_table(T).unwrap().len().unwrap(), 3002);
}

/// Backups to a destination that exists (the source, its WAL directory, a
/// WAL segment), that is unwritable, or whose directory is missing are
/// refused with an error, the source untouched and still writable; a
/// backup taken while another thread commits opens as one whole commit
/// and checks clean.
#[test]
fn backup_api_bad_destinations_and_a_backup_beside_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    make(&path, 0);
    let _serial = serial();
    let db = Database::open(&path).unwrap();
    let seg = segments(&path).pop();
    let mut bad = vec![
        path.clone(),
        wal_dir(&path),
        dir.path().join("missing").join("b"),
        PathBuf::from("/proc/sluice-review-backup"),
    ];
    bad.extend(seg);
    for dest in &bad {
        assert!(db.backup(dest).is_err(), "backup to {dest:?} succeeded");
    }
    // A writer commits `n` to `a` and `n` to `b` in one transaction each;
    // the backup must hold the same n in both.
    const A: TableDefinition<u64, u64> = TableDefinition::new("a");
    const B: TableDefinition<u64, u64> = TableDefinition::new("b");
    let dest = dir.path().join("backup");
    let report = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            for n in 0..200u64 {
                let txn = db.begin_write().unwrap();
                txn.open_table(A).unwrap().insert(0, n).unwrap();
                txn.open_table(B).unwrap().insert(0, n).unwrap();
                txn.commit().unwrap();
            }
        });
        // Start once the first commit is in.
        while db.begin_read().unwrap().open_table(A).is_err() {
            std::thread::yield_now();
        }
        let report = db.backup(&dest).unwrap();
        writer.join().unwrap();
        report
    });
    let copy = Database::open(&dest).unwrap();
    let read = copy.begin_read().unwrap();
    let a = read.open_table(A).unwrap().get(0).unwrap().unwrap().value();
    let b = read.open_table(B).unwrap().get(0).unwrap().unwrap().value();
    assert_eq!(a, b, "the backup (sequence {}) mixes two commits", report.sequence);
    assert_eq!(read.open_table(T).unwrap().len().unwrap(), 3000);
    drop(read);
    let mut copy = copy;
    assert!(copy.check_integrity().unwrap());
    let read = db.begin_read().unwrap();
    assert_eq!(read.open_table(A).unwrap().get(0).unwrap().unwrap().value(), 199);
}
