//! Review: data fidelity of `sluice dump` then `sluice load`, and of
//! `sluice backup`, the paths a user takes to move or restore a database.
//! Whatever a database holds must come back exactly (every table, every key
//! and value byte for byte, key order, `len()`, the table's recorded types),
//! or the tool must refuse with one line (exit 1 or 2) and write nothing.
//!
//! Each scenario builds a database with the library, runs the binary as a
//! subprocess, and compares the copy with the source twice: through the
//! byte-level engine API (names, raw metadata, entries in order, counts)
//! and through the typed API (what a program reading the copy sees).

mod cli_support;

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cli_support::{files, ok, serial, sluice};
use sluicedb::{
    Database, Durability, Key, MultimapTableDefinition, ReadOnlyDatabase, ReadableDatabase, ReadableMultimapTable,
    ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle, Value,
};

/// Runs and expects a clean refusal: exit 1 or 2, exactly one line on
/// stderr, naming `needle`. Returns that line.
fn refused(args: &[&str], needle: &str) -> String {
    let out = sluice(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        matches!(out.status.code(), Some(1 | 2)),
        "sluice {args:?} should refuse, exited {:?}: {stderr}",
        out.status.code()
    );
    assert_eq!(stderr.lines().count(), 1, "sluice {args:?}: not one line: {stderr:?}");
    assert!(
        stderr.contains(needle),
        "sluice {args:?}: {stderr:?} does not name {needle:?}"
    );
    stderr
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Entries: `(key, value)` bytes, in order.
type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// A table as the engine holds it: raw metadata, then `(len, entries in
/// engine order)` if this process knows its key order.
type RawTable = (Vec<u8>, Option<(u64, Rows)>);

/// Every table of the database at `path` (reserved ones too), read
/// read-only through the byte-level engine API.
fn raw(path: &Path) -> BTreeMap<Vec<u8>, RawTable> {
    let _serial = serial();
    let db = ReadOnlyDatabase::open(path).unwrap();
    raw_of(db.engine())
}

fn raw_of(engine: &sluicedb::engine::Engine) -> BTreeMap<Vec<u8>, RawTable> {
    let read = engine.begin_read().unwrap();
    let mut out = BTreeMap::new();
    for (name, meta) in read.list_tables().unwrap() {
        let rows = read.table_order(&name).unwrap().flatten().map(|order| {
            let handle = read.open_table(&name, order).unwrap().unwrap();
            let rows: Rows = read
                .range(&handle, Bound::Unbounded, Bound::Unbounded)
                .unwrap()
                .map(|e| {
                    let (k, v) = e.unwrap();
                    (k.to_vec(), v.as_bytes().to_vec())
                })
                .collect();
            (read.len(&handle).unwrap(), rows)
        });
        out.insert(name, (meta, rows));
    }
    out
}

/// Asserts that two raw images are equal, naming the first difference.
fn assert_same_raw(what: &str, src: &BTreeMap<Vec<u8>, RawTable>, copy: &BTreeMap<Vec<u8>, RawTable>) {
    let names = |m: &BTreeMap<Vec<u8>, RawTable>| {
        m.keys()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(src), names(copy), "{what}: the table names differ");
    for (name, (meta, rows)) in src {
        let (cmeta, crows) = &copy[name];
        let n = String::from_utf8_lossy(name);
        assert_eq!(
            String::from_utf8_lossy(meta),
            String::from_utf8_lossy(cmeta),
            "{what}: table {n:?}'s metadata differs"
        );
        match (rows, crows) {
            (Some((len, rows)), Some((clen, crows))) => {
                assert_eq!(len, clen, "{what}: table {n:?}'s len() differs");
                assert_eq!(
                    rows.len(),
                    crows.len(),
                    "{what}: table {n:?} holds another number of entries"
                );
                for (i, (a, b)) in rows.iter().zip(crows).enumerate() {
                    assert_eq!(a, b, "{what}: table {n:?}'s entry {i} differs");
                }
            }
            (None, None) => {}
            _ => panic!("{what}: table {n:?}'s order is known on one side only"),
        }
    }
}

/// A table through the typed API: `len()` and its entries' encodings in
/// iteration order.
fn typed<K: Key + 'static, V: Value + 'static>(db: &impl ReadableDatabase, def: TableDefinition<K, V>) -> (u64, Rows) {
    let read = db.begin_read().unwrap();
    let table = read.open_table(def).unwrap();
    let rows = table
        .iter()
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            let (k, v) = (k.value(), v.value());
            (K::as_bytes(&k).as_ref().to_vec(), V::as_bytes(&v).as_ref().to_vec())
        })
        .collect();
    (table.len().unwrap(), rows)
}

common::keys::u64_key!(
    /// A `u64` key ordered from the largest down: a custom order the
    /// `sluice` process cannot know.
    Desc,
    "review::Desc",
    u64::from_be_bytes,
    u64::to_be_bytes,
    |a, b| b.cmp(a)
);

// ---------------------------------------------------------------------
// The type families.

const U8: TableDefinition<u8, u16> = TableDefinition::new("u8");
const U32: TableDefinition<u32, u64> = TableDefinition::new("u32");
const U128: TableDefinition<u128, usize> = TableDefinition::new("u128");
const I8: TableDefinition<i8, i16> = TableDefinition::new("i8");
const I32: TableDefinition<i32, i64> = TableDefinition::new("i32");
const I128: TableDefinition<i128, isize> = TableDefinition::new("i128");
const FLOATS: TableDefinition<u32, (f32, f64)> = TableDefinition::new("floats");
const BOOLS: TableDefinition<bool, char> = TableDefinition::new("bools");
const CHARS: TableDefinition<char, ()> = TableDefinition::new("chars");
const STRS: TableDefinition<&str, &str> = TableDefinition::new("strs");
const STRINGS: TableDefinition<String, Vec<u8>> = TableDefinition::new("strings");
const BYTES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bytes");
const ARRAYS: TableDefinition<[u8; 4], [u8; 3]> = TableDefinition::new("arrays");
const OPTIONS: TableDefinition<Option<u64>, Option<&str>> = TableDefinition::new("options");
const TUPLES: TableDefinition<(u32, &str), (u8, &[u8], bool)> = TableDefinition::new("tuples");
const UNIT: TableDefinition<(), ()> = TableDefinition::new("unit");
const ITABLE: TableDefinition<i64, Option<f64>> = TableDefinition::new("i64-opt-f64");

fn make_types(path: &Path) {
    let _serial = serial();
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(U8).unwrap();
        for k in [0u8, 1, 127, 128, 254, 255] {
            t.insert(k, u16::from(k) * 257).unwrap();
        }
        let mut t = txn.open_table(U32).unwrap();
        for k in [0u32, 1, 255, 256, 65_535, u32::MAX] {
            t.insert(k, u64::MAX - u64::from(k)).unwrap();
        }
        let mut t = txn.open_table(U128).unwrap();
        for k in [0u128, 1, u128::from(u64::MAX) + 1, u128::MAX] {
            t.insert(k, k as usize).unwrap();
        }
        let mut t = txn.open_table(I8).unwrap();
        for k in [i8::MIN, -1, 0, 1, i8::MAX] {
            t.insert(k, i16::from(k) * -200).unwrap();
        }
        let mut t = txn.open_table(I32).unwrap();
        for k in [i32::MIN, -65_536, -1, 0, 1, i32::MAX] {
            t.insert(k, i64::from(k) * 3).unwrap();
        }
        let mut t = txn.open_table(I128).unwrap();
        for k in [i128::MIN, -1, 0, i128::MAX] {
            t.insert(k, k as isize).unwrap();
        }
        let mut t = txn.open_table(FLOATS).unwrap();
        let nan32 = f32::from_bits(0x7fc0_1234);
        let nan64 = f64::from_bits(0xfff8_0000_dead_beef);
        for (i, v) in [
            (0.0f32, -0.0f64),
            (-0.0, 0.0),
            (nan32, nan64),
            (f32::INFINITY, f64::NEG_INFINITY),
            (f32::MIN_POSITIVE, f64::MAX),
            (f32::from_bits(1), f64::from_bits(1)),
        ]
        .into_iter()
        .enumerate()
        {
            t.insert(i as u32, v).unwrap();
        }
        let mut t = txn.open_table(BOOLS).unwrap();
        t.insert(false, '\0').unwrap();
        t.insert(true, '\u{10FFFF}').unwrap();
        let mut t = txn.open_table(CHARS).unwrap();
        for c in ['\0', 'a', 'é', '\u{FFFD}', '🦀', '\u{10FFFF}'] {
            t.insert(c, ()).unwrap();
        }
        let mut t = txn.open_table(STRS).unwrap();
        for (k, v) in [
            ("", ""),
            ("\0", "nul"),
            ("a\0b", "\0\0"),
            ("日本語", "🦀 crab"),
            ("line\nbreak", "tab\there"),
            ("\r\n", " "),
            ("{\"k\":\"00\",\"v\":\"00\"}", "end 1 1"),
            ("\u{7f}", "\u{2028}"),
        ] {
            t.insert(k, v).unwrap();
        }
        let mut t = txn.open_table(STRINGS).unwrap();
        t.insert("owned".to_string(), vec![0xff; 7]).unwrap();
        t.insert(String::new(), Vec::new()).unwrap();
        let mut t = txn.open_table(BYTES).unwrap();
        let long_key: Vec<u8> = (0..20 << 10).map(|i| (i * 7 + 3) as u8).collect();
        let long_value: Vec<u8> = (0..20_000).map(|i| (i % 251) as u8).collect();
        let big_value: Vec<u8> = (0..1 << 20).map(|i| (i * 13 % 256) as u8).collect();
        t.insert(&[][..], &[][..]).unwrap();
        t.insert(&[0xffu8; 9][..], &[0xffu8; 3][..]).unwrap();
        t.insert(&[0u8][..], &[0u8, 0][..]).unwrap();
        t.insert(&[0u8, 0][..], &[][..]).unwrap();
        t.insert(&long_key[..], &long_value[..]).unwrap();
        t.insert(&b"big"[..], &big_value[..]).unwrap();
        let mut t = txn.open_table(ARRAYS).unwrap();
        t.insert([0xff; 4], [0; 3]).unwrap();
        t.insert([0; 4], [0xff; 3]).unwrap();
        let mut t = txn.open_table(OPTIONS).unwrap();
        t.insert(None, Some("")).unwrap();
        t.insert(Some(0), None).unwrap();
        t.insert(Some(u64::MAX), Some("x")).unwrap();
        let mut t = txn.open_table(TUPLES).unwrap();
        t.insert((1, "a"), (7, &[0xffu8][..], true)).unwrap();
        t.insert((1, ""), (0, &[][..], false)).unwrap();
        t.insert((0, "zzz"), (255, &[0u8; 30][..], true)).unwrap();
        txn.open_table(UNIT).unwrap().insert((), ()).unwrap();
        let mut t = txn.open_table(ITABLE).unwrap();
        t.insert(i64::MIN, Some(f64::NAN)).unwrap();
        t.insert(0, None).unwrap();
        t.insert(i64::MAX, Some(-0.0)).unwrap();
    }
    txn.commit().unwrap();
    // Some commits only in the WAL, and a removal.
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(Durability::None).unwrap();
    {
        let mut t = txn.open_table(U32).unwrap();
        t.remove(256).unwrap();
        t.insert(1 << 20, 5).unwrap();
    }
    txn.commit().unwrap();
    db.close_without_checkpoint();
}

/// Every type family, typed: the source and `copy` agree entry by entry.
fn assert_same_types(what: &str, src: &Path, copy: &Path) {
    let _serial = serial();
    let a = ReadOnlyDatabase::open(src).unwrap();
    let b = ReadOnlyDatabase::open(copy).unwrap();
    macro_rules! same {
        ($($def:expr),*) => {$(
            assert_eq!(typed(&a, $def), typed(&b, $def), "{what}: table {} differs (typed)", $def);
        )*};
    }
    same!(
        U8, U32, U128, I8, I32, I128, FLOATS, BOOLS, CHARS, STRS, STRINGS, BYTES, ARRAYS, OPTIONS, TUPLES, UNIT, ITABLE
    );
    // The float payloads, to the bit.
    let read = b.begin_read().unwrap();
    let nan = read.open_table(FLOATS).unwrap().get(2).unwrap().unwrap().value();
    assert_eq!(
        (nan.0.to_bits(), nan.1.to_bits()),
        (0x7fc0_1234, 0xfff8_0000_dead_beef),
        "{what}"
    );
    let zero = read.open_table(FLOATS).unwrap().get(0).unwrap().unwrap().value();
    assert!(zero.1.is_sign_negative(), "{what}: -0.0 lost its sign");
}

#[test]
fn every_type_family_round_trips_through_both_formats_and_backup() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.db");
    make_types(&src);
    let before = raw(&src);
    assert_eq!(before.len(), 17);
    for format in ["jsonl", "hex"] {
        let dump = dir.path().join(format!("dump.{format}"));
        let copy = dir.path().join(format!("copy-{format}.db"));
        ok(&["dump", s(&src), "--format", format, "-o", s(&dump)]);
        let loaded = ok(&["load", s(&copy), "-i", s(&dump)]);
        let entries: u64 = before.values().map(|(_, r)| r.as_ref().unwrap().0).sum();
        assert!(
            loaded.contains(&format!("loaded 17 tables, {entries} entries")),
            "{loaded}"
        );
        assert_same_raw(&format!("{format} dump/load"), &before, &raw(&copy));
        assert_same_types(&format!("{format} dump/load"), &src, &copy);
    }
    let backup = dir.path().join("backup.db");
    ok(&["backup", s(&src), s(&backup)]);
    assert_same_raw("backup", &before, &raw(&backup));
    assert_same_types("backup", &src, &backup);
    // The copies are sound and need nothing replayed.
    for copy in ["copy-jsonl.db", "copy-hex.db", "backup.db"] {
        let p = dir.path().join(copy);
        assert!(ok(&["check", s(&p)]).starts_with("sound"), "{copy}");
    }
}

// ---------------------------------------------------------------------
// Table names.

/// (An empty name is refused by `TableDefinition::new`.)
const AWKWARD_NAMES: &[&str] = &[
    " ",
    "with space",
    " leading",
    "trailing ",
    "new\nline",
    "\r\n",
    "tab\there",
    "nul\0inside",
    "日本語 🦀",
    "\u{2028}\u{feff}",
    "quote\"back\\slash",
    "table 00 00",
    "end 1 2",
    "end 0 0",
    "sluice-dump 1 hex",
    "{\"sluice_dump\":1,\"format\":\"jsonl\"}",
    "{\"k\":\"00\",\"v\":\"00\"}",
    "{\"end\":true,\"entries\":0,\"tables\":0}",
    "0x",
    "\u{7f}",
];

fn make_names(path: &Path) {
    let _serial = serial();
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    for (i, name) in AWKWARD_NAMES.iter().enumerate() {
        let mut t = txn.open_table(TableDefinition::<&str, u64>::new(name)).unwrap();
        // Every third table stays empty.
        for j in 0..(i as u64 % 3) * 2 {
            t.insert(*name, j).unwrap();
            t.insert(format!("{name}{j}").as_str(), j).unwrap();
        }
    }
    txn.commit().unwrap();
}

fn user_tables(path: &Path) -> Vec<String> {
    let _serial = serial();
    let db = ReadOnlyDatabase::open(path).unwrap();
    let read = db.begin_read().unwrap();
    let mut names: Vec<String> = read.list_tables().unwrap().map(|h| h.name().to_string()).collect();
    names.sort();
    names
}

#[test]
fn tables_whose_names_need_escaping_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.db");
    make_names(&src);
    let before = raw(&src);
    let mut expected: Vec<String> = AWKWARD_NAMES.iter().map(|n| n.to_string()).collect();
    expected.sort();
    assert_eq!(user_tables(&src), expected);
    for format in ["jsonl", "hex"] {
        let dump = dir.path().join(format!("dump.{format}"));
        let copy = dir.path().join(format!("copy-{format}.db"));
        ok(&["dump", s(&src), "--format", format, "-o", s(&dump)]);
        ok(&["load", s(&copy), "-i", s(&dump)]);
        assert_same_raw(&format!("{format} dump/load"), &before, &raw(&copy));
        assert_eq!(user_tables(&copy), expected, "{format}");
        // `--table` picks each one alone, whatever its name.
        for name in AWKWARD_NAMES.iter().filter(|n| !n.contains('\0')) {
            let one = ok(&["dump", s(&src), "--format", format, "--table", name]);
            let table_lines = one
                .lines()
                .filter(|l| l.starts_with("table ") || l.contains("\"meta\":"))
                .count();
            assert_eq!(table_lines, 1, "{format} --table {name:?}: {one}");
        }
    }
    let backup = dir.path().join("backup.db");
    ok(&["backup", s(&src), s(&backup)]);
    assert_same_raw("backup", &before, &raw(&backup));
}

// ---------------------------------------------------------------------
// Empty tables and empty databases.

#[test]
fn empty_tables_and_an_empty_database_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.db");
    {
        let _serial = serial();
        let db = Database::create(&src).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(U8).unwrap();
        txn.open_table(BYTES).unwrap();
        txn.open_table(TUPLES).unwrap();
        // Emptied by removals.
        let mut t = txn.open_table(STRS).unwrap();
        t.insert("gone", "soon").unwrap();
        t.remove("gone").unwrap();
        drop(t);
        txn.commit().unwrap();
        let txn = db.begin_write().unwrap();
        let mut t = txn.open_table(OPTIONS).unwrap();
        t.insert(Some(1), None).unwrap();
        drop(t);
        txn.commit().unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(OPTIONS).unwrap().remove(Some(1)).unwrap();
        txn.commit().unwrap();
    }
    let before = raw(&src);
    assert_eq!(before.len(), 5);
    assert!(before.values().all(|(_, r)| r.as_ref().unwrap().0 == 0));
    for format in ["jsonl", "hex"] {
        let dump = dir.path().join(format!("dump.{format}"));
        let copy = dir.path().join(format!("copy-{format}.db"));
        ok(&["dump", s(&src), "--format", format, "-o", s(&dump)]);
        ok(&["load", s(&copy), "-i", s(&dump)]);
        assert_same_raw(&format!("{format} dump/load"), &before, &raw(&copy));
        // A program opens each with its types (the metadata came back).
        let _serial = serial();
        let db = ReadOnlyDatabase::open(&copy).unwrap();
        let read = db.begin_read().unwrap();
        assert_eq!(read.open_table(TUPLES).unwrap().len().unwrap(), 0);
        assert_eq!(read.open_table(OPTIONS).unwrap().len().unwrap(), 0);
        assert_eq!(read.list_tables().unwrap().count(), 5);
    }
    let backup = dir.path().join("backup.db");
    ok(&["backup", s(&src), s(&backup)]);
    assert_same_raw("backup", &before, &raw(&backup));

    // A database without tables: the dump says so, and loads into one.
    let none = dir.path().join("none.db");
    drop(Database::create(&none).unwrap());
    for format in ["jsonl", "hex"] {
        let dump = dir.path().join(format!("none.{format}"));
        ok(&["dump", s(&none), "--format", format, "-o", s(&dump)]);
        assert_eq!(std::fs::read_to_string(&dump).unwrap().lines().count(), 2, "{format}");
        let copy = dir.path().join(format!("none-{format}.db"));
        assert!(ok(&["load", s(&copy), "-i", s(&dump)]).contains("loaded 0 tables, 0 entries"));
        assert!(raw(&copy).is_empty());
    }
    let backup = dir.path().join("none-backup.db");
    ok(&["backup", s(&none), s(&backup)]);
    assert!(raw(&backup).is_empty());
}

// ---------------------------------------------------------------------
// Custom key orders.

const DESC: TableDefinition<Desc, &str> = TableDefinition::new("desc");
/// Bytewise elements, but a variable-width one before the last: a custom
/// (element-wise) order.
const PAIRS: TableDefinition<(&str, u8), u64> = TableDefinition::new("pairs");

#[test]
fn custom_order_tables_are_refused_whole_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let src = dir.path().join("src.db");
    {
        let _serial = serial();
        let db = Database::create(&src).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(DESC).unwrap();
            for k in [3u64, 1, 2, 256] {
                t.insert(k, "v").unwrap();
            }
            let mut t = txn.open_table(PAIRS).unwrap();
            t.insert(("ab", 1), 1).unwrap();
            t.insert(("a", 2), 2).unwrap();
            txn.open_table(U8).unwrap().insert(1, 1).unwrap();
        }
        txn.commit().unwrap();
    }
    // `dump`, in both formats, to a file or to stdout: one line naming a
    // custom-order table, and no output.
    for format in ["jsonl", "hex"] {
        let out = work.join(format!("dump.{format}"));
        let line = refused(
            &["dump", s(&src), "--format", format, "-o", s(&out)],
            "custom key order",
        );
        assert!(line.contains("desc") || line.contains("pairs"), "{line}");
        assert!(!out.exists(), "a refused dump wrote {}", out.display());
        let run = sluice(&["dump", s(&src), "--format", format]);
        assert!(
            run.stdout.is_empty(),
            "a refused dump printed {} bytes",
            run.stdout.len()
        );
        for table in ["desc", "pairs"] {
            let line = refused(
                &["dump", s(&src), "--format", format, "--table", table],
                "custom key order",
            );
            assert!(line.contains(table), "{line}");
        }
    }
    // The other table still dumps alone, and round-trips.
    ok(&["dump", s(&src), "--table", "u8", "-o", s(&work.join("u8.jsonl"))]);
    ok(&["load", s(&work.join("u8.db")), "-i", s(&work.join("u8.jsonl"))]);
    assert_eq!(raw(&work.join("u8.db"))[&b"u8".to_vec()], raw(&src)[&b"u8".to_vec()]);
    // A dump naming a custom-order table (hand-made, or from a newer tool)
    // is refused and loads nothing.
    let meta: Vec<u8> = raw(&src)[&b"desc".to_vec()].0.clone();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let text = format!(
        "sluice-dump 1 hex\ntable {} {}\n {} {}\nend 1 1\n",
        hex(b"desc"),
        hex(&meta),
        hex(&3u64.to_be_bytes()),
        hex(b"v")
    );
    std::fs::write(work.join("desc.hex"), text).unwrap();
    refused(
        &["load", s(&work.join("desc.db")), "-i", s(&work.join("desc.hex"))],
        "custom key order",
    );
    assert!(!work.join("desc.db").exists(), "a refused load made a database");
}

fn make_custom(src: &Path) {
    let _serial = serial();
    let db = Database::create(src).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(DESC).unwrap();
        for k in [3u64, 1, 2, 256] {
            t.insert(k, "v").unwrap();
        }
        txn.open_table(U8).unwrap().insert(1, 1).unwrap();
    }
    txn.commit().unwrap();
}

/// `sluice backup` of a database with a custom-order table cannot know the
/// order: it refuses, naming the table, and makes no copy (this part
/// passes). But the refusal is not "before writing anything", as
/// src/backup.rs's module docs promise ("otherwise the backup refuses
/// before writing anything"): `backup_with_progress` creates
/// `<dest>.backup-partial` and its `-wal` directory (src/backup.rs:180-194)
/// before `backup_to_backends` settles the orders (src/backup.rs:229-246),
/// and the error returns with both left behind.
#[test]
fn a_backup_refused_for_a_custom_order_leaves_no_files_beside_dest() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.db");
    make_custom(&src);
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let dest = work.join("backup.db");
    let line = refused(&["backup", s(&src), s(&dest)], "custom key order");
    assert!(line.contains("desc"), "{line}");
    assert!(!dest.exists(), "a refused backup made {}", dest.display());
    let left: Vec<PathBuf> = files(&work).into_keys().collect();
    // Failed before the fix (fifty-fifth session): `backup.db.backup-partial`
    // (an empty file) and `backup.db.backup-partial-wal/` stayed after the
    // refusal; the orders are now settled before any file is made.
    assert!(
        left.is_empty(),
        "a refused backup (custom order) left files beside its destination: {left:?}"
    );
}

/// The same refusal, seen from the source: `sluice backup` opens it
/// writable (`open_verified`, src/bin/sluice/main.rs:991, then `open` at :451,
/// which records a new log in the data file) before the library finds the order
/// it cannot know, so a refused backup still changes the source's bytes.
/// `backup` refuses a bad destination before the open for exactly this
/// reason (design/operations.md, "check_backup_destination").
#[test]
fn a_backup_refused_for_a_custom_order_leaves_the_source_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let src_dir = dir.path().join("src");
    std::fs::create_dir(&src_dir).unwrap();
    let src = src_dir.join("src.db");
    make_custom(&src);
    let before = files(&src_dir);
    refused(
        &["backup", s(&src), s(&dir.path().join("backup.db"))],
        "custom key order",
    );
    let after = files(&src_dir);
    let changed: std::collections::BTreeSet<&PathBuf> = before
        .keys()
        .chain(after.keys())
        .filter(|p| before.get(*p) != after.get(*p))
        .collect();
    // Failed before the fix (fifty-fifth session): the data file differed
    // after the refused backup (`sluice backup` opened it writable before
    // the library found the order unknown; it now checks read-only first).
    assert!(
        changed.is_empty(),
        "a refused backup changed the source's files: {changed:?}"
    );
}

// ---------------------------------------------------------------------
// Multimap tables.

const TAGS: MultimapTableDefinition<&str, u64> = MultimapTableDefinition::new("tags");
const BLOBSETS: MultimapTableDefinition<&[u8], &[u8]> = MultimapTableDefinition::new("blob sets");
const DESCSET: MultimapTableDefinition<Desc, u8> = MultimapTableDefinition::new("desc set");

/// A multimap table's keys, each with its values in order.
type MultiRows = Vec<(Vec<u8>, Vec<Vec<u8>>)>;

fn multimap_rows<K: Key + 'static, V: Key + 'static>(
    db: &impl ReadableDatabase,
    def: MultimapTableDefinition<K, V>,
) -> (u64, MultiRows) {
    let read = db.begin_read().unwrap();
    let table = read.open_multimap_table(def).unwrap();
    let rows = table
        .iter()
        .unwrap()
        .map(|e| {
            let (k, values) = e.unwrap();
            let k = k.value();
            let values = values
                .map(|v| {
                    let v = v.unwrap();
                    let v = v.value();
                    V::as_bytes(&v).as_ref().to_vec()
                })
                .collect();
            (K::as_bytes(&k).as_ref().to_vec(), values)
        })
        .collect();
    (table.len().unwrap(), rows)
}

#[test]
fn multimap_tables_are_refused_by_dump_and_copied_exactly_by_backup() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.db");
    {
        let _serial = serial();
        let db = Database::create(&src).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_multimap_table(TAGS).unwrap();
            for i in 0..500u64 {
                t.insert("many", i * 7919 % 1000).unwrap();
            }
            t.insert("", 0).unwrap();
            t.insert("one", u64::MAX).unwrap();
            let mut t = txn.open_multimap_table(BLOBSETS).unwrap();
            for v in [&[][..], &[0xff; 3][..], &[0u8][..], &[0u8; 5000][..]] {
                t.insert(&[][..], v).unwrap();
                t.insert(&[0xffu8, 0][..], v).unwrap();
            }
            txn.open_table(STRS).unwrap().insert("plain", "table").unwrap();
        }
        txn.commit().unwrap();
    }
    let before = raw(&src);
    for format in ["jsonl", "hex"] {
        let out = dir.path().join(format!("dump.{format}"));
        refused(&["dump", s(&src), "--format", format, "-o", s(&out)], "multimap");
        assert!(!out.exists(), "a refused dump wrote its output");
    }
    let backup = dir.path().join("backup.db");
    let report = ok(&["backup", s(&src), s(&backup)]);
    assert!(report.contains("3 tables"), "{report}");
    assert_same_raw("backup", &before, &raw(&backup));
    {
        let _serial = serial();
        let a = ReadOnlyDatabase::open(&src).unwrap();
        let b = ReadOnlyDatabase::open(&backup).unwrap();
        assert_eq!(multimap_rows(&a, TAGS), multimap_rows(&b, TAGS));
        assert_eq!(multimap_rows(&b, TAGS).0, 502);
        assert_eq!(multimap_rows(&a, BLOBSETS), multimap_rows(&b, BLOBSETS));
        let read = b.begin_read().unwrap();
        assert_eq!(read.list_multimap_tables().unwrap().count(), 2);
        assert_eq!(read.list_tables().unwrap().count(), 1);
    }
    // A multimap table of a custom-order key type: a clear refusal.
    {
        let _serial = serial();
        let db = Database::open(&src).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_multimap_table(DESCSET).unwrap().insert(5, 1).unwrap();
        txn.commit().unwrap();
    }
    let dest = dir.path().join("backup2.db");
    refused(&["backup", s(&src), s(&dest)], "desc set");
    assert!(!dest.exists());
}

// ---------------------------------------------------------------------
// Persistent savepoints.

const ACCOUNTS: TableDefinition<&str, u64> = TableDefinition::new("accounts");

fn make_with_savepoint(path: &Path) -> u64 {
    let _serial = serial();
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(ACCOUNTS).unwrap().insert("alice", 10).unwrap();
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    let id = txn.persistent_savepoint().unwrap();
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(ACCOUNTS).unwrap();
        t.insert("alice", 99).unwrap();
        t.insert("bob", 5).unwrap();
    }
    txn.commit().unwrap();
    id
}

/// What a program sees of the database at `path`: its user tables'
/// entries, and its persistent savepoints.
fn user_view(path: &Path) -> (Vec<String>, Rows, Vec<u64>) {
    let _serial = serial();
    let db = Database::open(path).unwrap();
    let rows = typed(&db, ACCOUNTS).1;
    let txn = db.begin_write().unwrap();
    let savepoints: Vec<u64> = txn.list_persistent_savepoints().unwrap().collect();
    txn.abort().unwrap();
    let read = db.begin_read().unwrap();
    let names = read.list_tables().unwrap().map(|h| h.name().to_string()).collect();
    (names, rows, savepoints)
}

/// Findings (documented here): `backup` copies the user tables as of one
/// sequence and no savepoint (design/operations.md, src/backup.rs:233).
/// `dump` reads every table the engine lists, the reserved savepoint
/// registry `\xffsluice.savepoints` among them (it is byte-ordered, so not
/// refused), and `load` recreates it: the copy then lists a persistent
/// savepoint whose pinned commit does not exist in it. Restoring it is
/// `Corrupted`, and `compact` (the library's and `sluice compact`) refuses
/// the copy with "a persistent savepoint exists" until a program deletes
/// it. The record also names the source's table ids. Root cause:
/// `dump::dump` (src/bin/sluice/dump.rs:109) lists tables with the engine's
/// `ReadTxn::list_tables`, which includes reserved names; backup skips them
/// with `savepoint::is_reserved` (src/backup.rs:235), dump does not, and
/// `load` (dump.rs `check_dump`/`load_order`) accepts a reserved name.
#[test]
fn persistent_savepoints_are_not_carried_into_a_copy_half_way() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.db");
    let id = make_with_savepoint(&src);
    let (names, rows, savepoints) = user_view(&src);
    assert_eq!(savepoints, vec![id]);
    assert_eq!(names, vec!["accounts".to_string()]);

    // backup: the data, no savepoint (documented).
    let backup = dir.path().join("backup.db");
    ok(&["backup", s(&src), s(&backup)]);
    assert_eq!(user_view(&backup), (names.clone(), rows.clone(), Vec::new()));

    for format in ["jsonl", "hex"] {
        let dump = dir.path().join(format!("dump.{format}"));
        let copy = dir.path().join(format!("copy-{format}.db"));
        ok(&["dump", s(&src), "--format", format, "-o", s(&dump)]);
        ok(&["load", s(&copy), "-i", s(&dump)]);
        let (cnames, crows, csavepoints) = user_view(&copy);
        assert_eq!((&cnames, &crows), (&names, &rows), "{format}: user data");
        // As a backup, a dump carries no savepoint (it carried the
        // registry once, and the copy listed a savepoint it could not
        // restore: below).
        assert!(
            csavepoints.is_empty(),
            "{format} dump/load: the copy lists savepoints {csavepoints:?}"
        );
        // Whatever the copy lists as a savepoint must be restorable to
        // what the source's savepoint holds ("alice" -> 10 only).
        let _serial = serial();
        let db = Database::open(&copy).unwrap();
        for sp in &csavepoints {
            let mut txn = db.begin_write().unwrap();
            let savepoint = txn.get_persistent_savepoint(*sp).unwrap();
            // Failed before the fix (fifty-fifth session): the copy listed
            // the source's savepoint, and restoring it was
            // `Corrupted("persistent savepoint 1 has no pinned commit")`.
            txn.restore_savepoint(&savepoint).unwrap_or_else(|e| {
                panic!(
                    "{format} dump/load: the copy lists persistent savepoint {sp} (dump carried the \
                     reserved registry table) but restoring it fails: {e}"
                )
            });
            txn.commit().unwrap();
            let read = db.begin_read().unwrap();
            let t = read.open_table(ACCOUNTS).unwrap();
            assert_eq!(t.get("alice").unwrap().unwrap().value(), 10);
            assert!(t.get("bob").unwrap().is_none());
        }
    }
}

// ---------------------------------------------------------------------
// Idempotence.

#[test]
fn dump_load_is_idempotent_across_formats_pipes_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.db");
    make_types(&src);
    let first = ok(&["dump", s(&src)]);
    let first_hex = ok(&["dump", s(&src), "--format", "hex"]);
    // jsonl -> load -> hex -> load -> jsonl: the same bytes.
    let a = dir.path().join("a.db");
    let b = dir.path().join("b.db");
    std::fs::write(dir.path().join("first.jsonl"), &first).unwrap();
    ok(&["load", s(&a), "-i", s(&dir.path().join("first.jsonl"))]);
    let hex = ok(&["dump", s(&a), "--format", "hex"]);
    assert!(
        hex == first_hex,
        "the hex dump of a jsonl-loaded copy differs from the source's"
    );
    std::fs::write(dir.path().join("a.hex"), &hex).unwrap();
    ok(&["load", s(&b), "-i", s(&dir.path().join("a.hex"))]);
    assert!(ok(&["dump", s(&b)]) == first, "jsonl -> hex -> jsonl changed the dump");
    // Through a pipe, as the help shows: dump | load.
    let piped = dir.path().join("piped.db");
    {
        let _serial = serial();
        let mut dump = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["dump", s(&src)])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let load = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["load", s(&piped)])
            .stdin(dump.stdout.take().unwrap())
            .output()
            .unwrap();
        assert!(dump.wait().unwrap().success());
        assert!(load.status.success(), "{}", String::from_utf8_lossy(&load.stderr));
    }
    assert!(ok(&["dump", s(&piped)]) == first, "dump | load changed the dump");
    assert!(!dir.path().join("piped.db.load-spool").exists());
    // Loading the same dump again changes nothing: no entry doubled.
    ok(&["load", s(&a), "-i", s(&dir.path().join("first.jsonl"))]);
    assert!(
        ok(&["dump", s(&a)]) == first,
        "a second load of the same dump changed the copy"
    );
    assert_same_raw("reloaded", &raw(&src), &raw(&a));
    // A backup dumps as its source does.
    let backup = dir.path().join("backup.db");
    ok(&["backup", s(&b), s(&backup)]);
    assert!(
        ok(&["dump", s(&backup)]) == first,
        "a backup of a loaded copy dumps otherwise"
    );
}

/// A dump naming one of sluicedb's own tables (the savepoints' registry, as
/// dumps once carried it) is refused whole: nothing is created.
#[test]
fn a_dump_naming_a_reserved_table_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("reserved.hex");
    let name: String = b"\xffsluice.savepoints".iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&dump, format!("sluice-dump 1 hex\ntable {name} 00\n 01 02\nend 1 1\n")).unwrap();
    let copy = dir.path().join("copy.db");
    refused(&["load", s(&copy), "-i", s(&dump)], "sluicedb's own");
    assert!(!copy.exists(), "a refused load created {copy:?}");
}
