//! The `sluice` binary, run as a subprocess, on databases the library
//! makes: typed get/put/del/scan, tables, stat, check, compact, checkpoint,
//! backup, wal, and dump/load round trips in both formats.

mod cli_support;

use std::path::Path;

use cli_support::{fails, ok, serial};
use sluicedb::{Database, Durability, ReadableDatabase, TableDefinition};

const SCORES: TableDefinition<&str, u64> = TableDefinition::new("scores");
const TEMPS: TableDefinition<i64, i32> = TableDefinition::new("temps");
const BLOBS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("blobs");
const CUSTOM: TableDefinition<(&str, u32), u64> = TableDefinition::new("custom");

fn make(path: &Path, with_custom: bool) {
    let _serial = serial();
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut s = txn.open_table(SCORES).unwrap();
        for (name, score) in [("ada", 30), ("alan", 25), ("grace", 41), ("edsger", 7)] {
            s.insert(name, score).unwrap();
        }
        let mut t = txn.open_table(TEMPS).unwrap();
        for d in -5i64..5 {
            t.insert(d * 1000, (d * 3) as i32).unwrap();
        }
        let mut b = txn.open_table(BLOBS).unwrap();
        b.insert(&[0u8, 255][..], &[1u8, 2, 3][..]).unwrap();
        b.insert(&[][..], &[][..]).unwrap();
        if with_custom {
            txn.open_table(CUSTOM).unwrap().insert(("x", 1), 1).unwrap();
        }
    }
    txn.commit().unwrap();
    // Leave some commits only in the WAL, so commands see replayed state.
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(Durability::None).unwrap();
    txn.open_table(SCORES).unwrap().insert("barbara", 52).unwrap();
    txn.commit().unwrap();
    db.close_without_checkpoint();
}

#[test]
fn typed_point_and_range_commands() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let p = db.to_str().unwrap();
    make(&db, false);
    assert_eq!(ok(&["get", p, "scores", "grace"]), "41\n");
    assert_eq!(ok(&["get", p, "temps", "-3000"]), "-9\n");
    assert_eq!(ok(&["get", p, "blobs", "00ff"]), "010203\n");
    assert_eq!(ok(&["get", p, "scores", "--hex", "616461"]), "000000000000001e\n");
    // Signed keys scan in numeric order (sign bit flipped on disk).
    assert_eq!(
        ok(&["scan", p, "temps", "--from", "-2000", "--to", "2000"]),
        "-2000\t-6\n-1000\t-3\n0\t0\n1000\t3\n"
    );
    assert_eq!(ok(&["scan", p, "scores", "--limit", "2"]), "ada\t30\nalan\t25\n");
    ok(&["put", p, "scores", "linus", "3"]);
    ok(&["del", p, "scores", "ada"]);
    assert_eq!(
        ok(&["scan", p, "scores"]),
        "alan\t25\nbarbara\t52\nedsger\t7\ngrace\t41\nlinus\t3\n"
    );
    assert!(fails(&["get", p, "scores", "ada"], 1).contains("not found"));
    assert!(fails(&["put", p, "temps", "1.5", "0"], 1).contains("bad key"));
    assert!(fails(&["put", p, "temps", "1", "99999999999"], 1).contains("bad value"));
    ok(&["put", p, "notes", "--create", "hello", "world"]);
    assert_eq!(ok(&["get", p, "notes", "hello"]), "world\n");
    // The library reads what the CLI wrote, through the typed API.
    let _serial = serial();
    let db = Database::open(&db).unwrap();
    let read = db.begin_read().unwrap();
    assert_eq!(
        read.open_table(SCORES).unwrap().get("linus").unwrap().unwrap().value(),
        3
    );
}

#[test]
fn tables_stat_check_compact_checkpoint_wal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let p = db.to_str().unwrap();
    make(&db, true);
    let tables = ok(&["tables", p]);
    assert!(
        tables
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["scores", "&str", "u64", "bytes", "5"]),
        "{tables}"
    );
    assert!(
        tables
            .lines()
            .any(|l| l.starts_with("custom") && l.contains("custom") && l.ends_with('?')),
        "{tables}"
    );
    let stat: serde_json::Value = serde_json::from_str(&ok(&["stat", p, "--json"])).unwrap();
    assert_eq!(stat["tables"], 4);
    assert!(stat["recovery"]["replayed_records"].as_u64().unwrap() >= 2);
    assert!(ok(&["stat", p]).contains("tables:          4"));
    let wal = ok(&["wal", p]);
    assert!(wal.contains("bind scores="), "{wal}");
    assert!(wal.contains("tables: scores(+1 -0)"), "{wal}");
    assert!(wal.contains("the log ends cleanly"), "{wal}");
    assert!(ok(&["check", p]).starts_with("sound"));
    ok(&["checkpoint", p]);
    let wal = ok(&["wal", p, "--summary"]);
    assert!(wal.contains("0 records after the checkpoint"), "{wal}");
    assert!(ok(&["compact", p]).starts_with("compacted"));
    assert!(ok(&["check", p]).starts_with("sound"));
    // Custom-order tables cannot be ordered by the CLI: a clear refusal.
    let err = fails(&["scan", p, "custom"], 1);
    assert!(err.contains("custom key order"), "{err}");
    let err = fails(&["dump", p], 1);
    assert!(err.contains("custom key order"), "{err}");
    // ... but other tables dump.
    assert!(ok(&["dump", p, "--table", "scores"]).contains("\"table\":\"scores\""));
}

#[test]
fn dump_load_dump_is_byte_identical_in_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make(&src, false);
    // Enough entries for several load batches.
    {
        let _serial = serial();
        let db = Database::open(&src).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(BLOBS).unwrap();
            for i in 0u32..3000 {
                t.insert(&i.to_be_bytes()[..], &vec![i as u8; 2000][..]).unwrap();
            }
        }
        txn.commit().unwrap();
    }
    for format in ["jsonl", "hex"] {
        let first = dir.path().join(format!("first.{format}"));
        let copy = dir.path().join(format!("copy-{format}"));
        ok(&[
            "dump",
            src.to_str().unwrap(),
            "--format",
            format,
            "-o",
            first.to_str().unwrap(),
        ]);
        let loaded = ok(&["load", copy.to_str().unwrap(), "-i", first.to_str().unwrap()]);
        assert!(loaded.contains("3 tables, 3017 entries"), "{loaded}");
        let again = ok(&["dump", copy.to_str().unwrap(), "--format", format]);
        assert_eq!(
            again.as_bytes(),
            std::fs::read(&first).unwrap(),
            "{format} dump changed on reload"
        );
        // Checkpointed by load: nothing to replay.
        let stat: serde_json::Value = serde_json::from_str(&ok(&["stat", copy.to_str().unwrap(), "--json"])).unwrap();
        assert_eq!(stat["recovery"]["replayed_records"], 0);
    }
    // A truncated dump is refused, with the reason.
    let text = std::fs::read_to_string(dir.path().join("first.hex")).unwrap();
    let cut: String = text.lines().take(10).map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.path().join("cut.hex"), cut).unwrap();
    let err = fails(
        &[
            "load",
            dir.path().join("cut-db").to_str().unwrap(),
            "-i",
            dir.path().join("cut.hex").to_str().unwrap(),
        ],
        1,
    );
    assert!(err.contains("truncated"), "{err}");
    // ... and loads nothing: not even a database is made (a load that
    // committed the tables before the cut was found by the twenty-third
    // session's review). So is a dump with a bad line after whole tables,
    // into an existing database, and from standard input.
    assert!(!dir.path().join("cut-db").exists(), "a refused load made a database");
    let mut lines: Vec<&str> = text.lines().collect();
    let bad = lines.len() - 3;
    lines[bad] = " zz zz";
    let damaged: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.path().join("bad.hex"), &damaged).unwrap();
    let target = dir.path().join("copy-hex");
    let before = ok(&["dump", target.to_str().unwrap(), "--format", "hex"]);
    let err = fails(
        &[
            "load",
            target.to_str().unwrap(),
            "-i",
            dir.path().join("bad.hex").to_str().unwrap(),
        ],
        1,
    );
    assert!(err.contains(&format!("dump line {}", bad + 1)), "{err}");
    let after = ok(&["dump", target.to_str().unwrap(), "--format", "hex"]);
    assert_eq!(before, after, "a refused load changed the database");
    let piped = {
        let _serial = serial();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["load", dir.path().join("piped-db").to_str().unwrap()])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(damaged.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    assert_eq!(piped.status.code(), Some(1));
    assert!(
        !dir.path().join("piped-db").exists(),
        "a refused load from stdin made a database"
    );
    assert!(
        !dir.path().join("piped-db.load-spool").exists(),
        "the spooled dump stayed"
    );
    std::fs::write(dir.path().join("junk"), "hello\n").unwrap();
    let err = fails(
        &[
            "load",
            dir.path().join("junk-db").to_str().unwrap(),
            "-i",
            dir.path().join("junk").to_str().unwrap(),
        ],
        1,
    );
    assert!(err.contains("not a sluice dump"), "{err}");
}

#[test]
fn backup_command_copies_a_consistent_database() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let dest = dir.path().join("dest");
    make(&src, false);
    let out = ok(&["backup", src.to_str().unwrap(), dest.to_str().unwrap()]);
    assert!(out.contains("3 tables, 17 entries"), "{out}");
    assert_eq!(
        ok(&["dump", src.to_str().unwrap()]),
        ok(&["dump", dest.to_str().unwrap()])
    );
    let err = fails(&["backup", src.to_str().unwrap(), dest.to_str().unwrap()], 1);
    assert!(err.contains("exists"), "{err}");
}
