//! Bad input to the `sluice` binary gets one clear line on stderr and a
//! non-zero exit, never a panic: a missing path, a directory, a foreign or
//! empty file (left untouched: no WAL directory appears beside it), a
//! database another handle holds, a missing table, an unknown format, bad
//! hex; `check` exits 2 on damage; every subcommand's `--help` has examples.

mod cli_support;

use std::path::Path;

use cli_support::{files, serial, sluice};
use sluicedb::{Database, TableDefinition};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");

/// Expects exit `code` and a one-line message containing `needle`.
fn refuses(args: &[&str], code: i32, needle: &str) {
    let out = sluice(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "sluice {args:?}: {stderr}");
    assert!(stderr.contains(needle), "sluice {args:?}: {stderr:?} lacks {needle:?}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "not one line: {stderr}");
}

fn make(path: &Path) {
    let _serial = serial();
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(T).unwrap().insert(1, 2).unwrap();
    txn.commit().unwrap();
    db.close().unwrap();
}

/// A database whose table `t` spans pages: 5000 entries, checkpointed.
fn make_pages(path: &Path) {
    let _serial = serial();
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for i in 0..5000 {
            t.insert(i, i).unwrap();
        }
    }
    txn.commit().unwrap();
    db.close().unwrap();
}

#[test]
fn missing_directory_foreign_and_empty_paths() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    for cmd in ["stat", "tables", "check", "compact", "checkpoint", "wal"] {
        refuses(&[cmd, missing.to_str().unwrap()], 1, "no such file");
    }
    refuses(&["get", missing.to_str().unwrap(), "t", "1"], 1, "no such file");
    refuses(&["stat", dir.path().to_str().unwrap()], 1, "is a directory");
    let foreign = dir.path().join("foreign.txt");
    std::fs::write(&foreign, "not a database, just some text\n".repeat(500)).unwrap();
    let before = std::fs::read(&foreign).unwrap();
    for cmd in ["stat", "tables", "wal", "compact"] {
        refuses(&[cmd, foreign.to_str().unwrap()], 1, "not a sluicedb database");
    }
    // For `check` a foreign file is a finding.
    refuses(&["check", foreign.to_str().unwrap()], 2, "not a sluicedb database");
    refuses(&["dump", foreign.to_str().unwrap()], 1, "not a sluicedb database");
    assert_eq!(std::fs::read(&foreign).unwrap(), before, "a foreign file was changed");
    assert!(!dir.path().join("foreign.txt-wal").exists(), "a WAL directory appeared");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    refuses(&["stat", empty.to_str().unwrap()], 1, "empty");
}

#[test]
fn a_database_held_by_another_handle_is_named_as_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    make(&path);
    let held = {
        let _serial = serial();
        Database::open(&path).unwrap()
    };
    let p = path.to_str().unwrap();
    for args in [
        vec!["stat", p],
        vec!["get", p, "t", "1"],
        vec!["dump", p],
        vec!["compact", p],
    ] {
        refuses(&args, 1, "DatabaseAlreadyOpen");
    }
    // `wal` only reads, and says the log may be changing.
    let out = sluice(&["wal", p]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("another process has the database open"));
    let _serial = serial();
    drop(held);
}

#[test]
fn bad_tables_formats_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    make(&path);
    let p = path.to_str().unwrap();
    refuses(&["get", p, "nosuch", "1"], 1, "no table named \"nosuch\"");
    refuses(&["put", p, "nosuch", "1", "2"], 1, "--create");
    refuses(&["dump", p, "--table", "nosuch"], 1, "no table named");
    refuses(&["dump", p, "--format", "xml"], 1, "unknown dump format \"xml\"");
    refuses(&["get", p, "t", "abc"], 1, "bad key");
    refuses(&["get", p, "t", "--hex", "zz"], 1, "not hex");
    refuses(&["scan", p, "t", "--from", "9", "--to", "1"], 1, "--from is after --to");
    refuses(&["backup", p, p], 1, "exists");
}

#[test]
fn check_exits_2_on_damage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    make_pages(&path);
    let out = sluice(&["check", path.to_str().unwrap()]);
    assert!(out.status.success());
    // Flip bytes in the middle of a page past the header.
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    assert!(len > 3 * 4096, "the table spans pages");
    for b in &mut bytes[len - 4096 + 100..len - 4096 + 140] {
        *b ^= 0x5A;
    }
    std::fs::write(&path, bytes).unwrap();
    refuses(&["check", path.to_str().unwrap()], 2, "check found damage");
}

#[test]
fn every_subcommand_has_help_with_examples() {
    for cmd in [
        "stat",
        "tables",
        "get",
        "put",
        "del",
        "scan",
        "check",
        "dump",
        "load",
        "compact",
        "checkpoint",
        "backup",
        "wal",
    ] {
        let out = sluice(&[cmd, "--help"]);
        assert!(out.status.success(), "{cmd} --help");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Examples:"),
            "{cmd} --help lacks examples"
        );
    }
    // A usage error is status 1, as every error but `check`'s findings.
    refuses(&["frobnicate"], 1, "frobnicate");
    let out = sluice(&[]);
    assert!(!out.status.success());
}

/// Found by the twenty-third session's review: a mistyped flag exited 2,
/// which is `check`'s "damage found", with clap's several lines; `dump -o`
/// onto the database truncated it; `put --hex` wrote a one-byte key into a
/// `u64` table.
#[test]
fn usage_errors_overwrites_and_wrong_widths_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    make(&db);
    let path = db.to_str().unwrap();
    refuses(&["check", path, "--bogus"], 1, "--bogus");
    refuses(&["check"], 1, "sluice --help");
    let before = std::fs::read(&db).unwrap();
    refuses(&["dump", path, "-o", path], 1, "would overwrite the database");
    let wal_file = dir.path().join("db-wal").join("dump.txt");
    std::fs::create_dir_all(dir.path().join("db-wal")).unwrap();
    refuses(
        &["dump", path, "-o", wal_file.to_str().unwrap()],
        1,
        "would overwrite the database",
    );
    assert_eq!(std::fs::read(&db).unwrap(), before, "the database changed");
    refuses(&["put", path, "t", "01", "02", "--hex"], 1, "8 bytes wide");
    let out = sluice(&["put", path, "t", "0000000000000007", "0000000000000009", "--hex"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = sluice(&["get", path, "t", "7"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains('9'), "{out:?}");
}

/// Commits `key -> value` to the database at `path` and closes it without
/// a checkpoint, as a process that exits would: the commit is in the WAL.
fn commit_left_in_the_wal(path: &Path, key: u64, value: u64) {
    let _serial = serial();
    let handle = Database::open(path).unwrap();
    let txn = handle.begin_write().unwrap();
    txn.open_table(T).unwrap().insert(key, value).unwrap();
    txn.commit().unwrap();
    handle.close_without_checkpoint();
}

/// The commands that only read open the database read-only: not one byte
/// of the data file or the WAL changes, for a closed database and for one
/// whose process left commits in the WAL (a writable open recorded a new
/// log in the data file and replayed the WAL into it: found by the
/// twenty-third session's review).
#[test]
fn inspecting_commands_change_no_byte() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    make(&db);
    commit_left_in_the_wal(&db, 3, 4);
    let path = db.to_str().unwrap();
    let dump = dir.path().join("out").join("dump.txt");
    std::fs::create_dir(dir.path().join("out")).unwrap();
    let before = files(dir.path());
    for args in [
        vec!["stat", path],
        vec!["stat", path, "--json"],
        vec!["tables", path],
        vec!["get", path, "t", "3"],
        vec!["scan", path, "t"],
        vec!["check", path],
        vec!["dump", path, "-o", dump.to_str().unwrap()],
    ] {
        let out = sluice(&args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut after = files(dir.path());
        after.remove(&dump);
        assert!(after == before, "{args:?} changed the database's files");
    }
    let out = sluice(&["get", path, "t", "3"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains('4'),
        "the WAL's commit is shown: {out:?}"
    );
}

/// The commands that write look for damage read-only before a writable
/// open (which records a new log in the data file and replays the WAL into
/// it): `compact`, `checkpoint`, `backup` and `load` into the database
/// check the whole file, `put` and `del` their key's path, and each
/// refuses with exit 2 without changing a byte (found by the
/// twenty-third session's review: they opened the file writable first).
#[test]
fn writing_commands_refuse_a_damaged_database_and_write_nothing() {
    use sluicedb::{ReadOnlyDatabase, ReadableDatabase};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    make_pages(&db);
    // A commit left in the WAL, for the writable open to replay.
    commit_left_in_the_wal(&db, 9000, 1);
    // Bytes flipped in a page halfway into the file: a leaf.
    let mut bytes = std::fs::read(&db).unwrap();
    let middle = bytes.len() / 4096 / 2 * 4096;
    for b in &mut bytes[middle + 100..middle + 140] {
        *b ^= 0x5A;
    }
    std::fs::write(&db, bytes).unwrap();
    // Which keys the damaged page holds, and which it does not.
    let (damaged, sound) = {
        let _serial = serial();
        let ro = ReadOnlyDatabase::open(&db).unwrap();
        let read = ro.begin_read().unwrap();
        let t = read.open_table(T).unwrap();
        let damaged = (0..5000)
            .find(|&i| t.get(i).is_err())
            .expect("a key on the damaged page");
        let sound = (0..5000).find(|&i| t.get(i).is_ok()).expect("a key elsewhere");
        (damaged, sound)
    };
    let path = db.to_str().unwrap();
    let dump = dir.path().join("small.dump");
    {
        let small = dir.path().join("small");
        make(&small);
        let out = sluice(&["dump", small.to_str().unwrap(), "-o", dump.to_str().unwrap()]);
        assert!(out.status.success(), "{out:?}");
    }
    let copy = dir.path().join("copy");
    let before = files(dir.path());
    let (damaged, sound) = (damaged.to_string(), sound.to_string());
    for args in [
        vec!["compact", path],
        vec!["checkpoint", path],
        vec!["backup", path, copy.to_str().unwrap()],
        vec!["load", path, "-i", dump.to_str().unwrap()],
        vec!["put", path, "t", &damaged, "7"],
        vec!["del", path, "t", &damaged],
    ] {
        refuses(&args, 2, "refusing to");
        assert!(files(dir.path()) == before, "{args:?} changed a file");
    }
    assert!(!copy.exists(), "a backup of a damaged database was made");
    // A key whose path is sound can still be written.
    let out = sluice(&["put", path, "t", &sound, "7"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = sluice(&["get", path, "t", &sound]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "7");
}
