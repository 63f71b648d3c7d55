//! What operators do to a database's files by mistake, and what an open
//! does then (review). A database is its data file plus `<path>-wal/`. The
//! contract: an open either refuses with an error that names the problem
//! (changing no byte of either), or opens with every acknowledged commit;
//! it never opens silently without commits that were acknowledged.
//!
//! The crash images here hold commits only in the WAL: the database is
//! left with `Database::close_without_checkpoint` (or an `Engine` dropped,
//! which does not checkpoint), as a process that crashed leaves it.

use std::collections::BTreeMap;
use std::fs;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sluicedb::btree::{Comparator, bytewise};
use sluicedb::engine::{Engine, EngineOptions};
use sluicedb::io::{FileBackend, FsLogDir};
use sluicedb::{Builder, Database, DatabaseError, ReadOnlyDatabase, ReadableDatabase, TableDefinition};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");

/// `<path>-wal`, where a database at `path` keeps its WAL.
fn wal_of(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap().to_os_string();
    name.push("-wal");
    path.with_file_name(name)
}

/// Every file under `dir` (recursively) with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let name = path.strip_prefix(root).unwrap().display().to_string();
            if meta.is_dir() {
                walk(root, &path, out);
            } else if meta.is_file() {
                out.insert(name, fs::read(&path).unwrap());
            } else {
                out.insert(name, b"<link>".to_vec());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Copies every regular file of `from` into a new directory `to`.
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn commit(db: &Database, keys: std::ops::Range<u64>) {
    for i in keys {
        let txn = db.begin_write().unwrap();
        txn.open_table(T).unwrap().insert(i, i * 10).unwrap();
        txn.commit().unwrap();
    }
}

/// The keys of table `t`, or the first error met reading them.
fn keys(db: &impl ReadableDatabase) -> Result<Vec<u64>, String> {
    let read = db.begin_read().map_err(|e| e.to_string())?;
    let table = match read.open_table(T) {
        Ok(t) => t,
        Err(sluicedb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    let mut out = Vec::new();
    for entry in table.range(0..).map_err(|e| e.to_string())? {
        out.push(entry.map_err(|e| e.to_string())?.0.value());
    }
    Ok(out)
}

/// A crash image at `dir/db`: keys 0..5 checkpointed into the data file,
/// keys 5..10 acknowledged (durable) and only in the WAL.
fn crash_image(dir: &Path) -> PathBuf {
    let path = dir.join("db");
    let db = Database::create(&path).unwrap();
    commit(&db, 0..5);
    db.checkpoint().unwrap();
    commit(&db, 5..10);
    db.close_without_checkpoint();
    let segments = fs::read_dir(wal_of(&path)).unwrap().count();
    assert!(segments > 0, "the crash image keeps its WAL");
    path
}

/// The contract for an open of `path` after a mishap: refused with an
/// error (every byte under `dir` as `before`), or open with `expected`.
fn assert_refused_or_whole(
    what: &str,
    result: Result<Database, DatabaseError>,
    dir: &Path,
    before: &BTreeMap<String, Vec<u8>>,
    expected: &[u64],
) {
    match result {
        Err(e) => {
            assert!(!e.to_string().is_empty(), "{what}: an error that says something");
            assert!(snapshot(dir) == *before, "{what}: the refused open ({e}) changed bytes");
        }
        Ok(db) => {
            let found = keys(&db);
            assert_eq!(
                found.as_deref(),
                Ok(expected),
                "{what}: the open succeeded but lost acknowledged commits"
            );
        }
    }
}

/// The WAL directory deleted after a crash (its commits acknowledged and
/// only there): the open refuses, or finds them; it must not start a fresh
/// log and open without them.
#[test]
fn a_deleted_wal_directory_after_a_crash_is_not_opened_silently() {
    let dir = tempfile::tempdir().unwrap();
    let path = crash_image(dir.path());
    fs::remove_dir_all(wal_of(&path)).unwrap();
    let before = snapshot(dir.path());
    let expected: Vec<u64> = (0..10).collect();
    assert_refused_or_whole(
        "WAL directory deleted",
        Database::open(&path),
        dir.path(),
        &before,
        &expected,
    );
}

/// The record of the segment after the checkpoint (`engine/log_tail.rs`):
/// a WAL directory deleted after a crash is refused, naming what is
/// missing; the repair option opens the checkpointed state, after which
/// opens without it work again; a cleanly closed database opens from its
/// data file alone.
#[test]
fn a_deleted_wal_directory_is_refused_by_name_and_the_repair_option_accepts_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    let path = crash_image(dir.path());
    fs::remove_dir_all(wal_of(&path)).unwrap();
    let Err(err) = Database::open(&path) else {
        panic!("a deleted WAL directory is refused")
    };
    assert!(err.to_string().contains("is missing"), "{err}");
    let db = Database::builder().set_repair_wal(true).open(&path).unwrap();
    assert_eq!(
        keys(&db),
        Ok((0..5).collect()),
        "the checkpoint, without the lost commits"
    );
    commit(&db, 5..7);
    db.close_without_checkpoint();
    let db = Database::open(&path).unwrap();
    assert_eq!(keys(&db), Ok((0..7).collect()), "the commits after the repair");
    drop(db);
    let _ = fs::remove_dir_all(wal_of(&path));
    let db = Database::open(&path).unwrap();
    assert_eq!(keys(&db), Ok((0..7).collect()), "a closed database is its data file");
}

/// The WAL directory emptied (its segments deleted, the directory kept)
/// after a crash: refused, or every commit.
#[test]
fn an_emptied_wal_directory_after_a_crash_is_not_opened_silently() {
    let dir = tempfile::tempdir().unwrap();
    let path = crash_image(dir.path());
    for entry in fs::read_dir(wal_of(&path)).unwrap() {
        fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let before = snapshot(dir.path());
    let expected: Vec<u64> = (0..10).collect();
    assert_refused_or_whole(
        "WAL directory emptied",
        Database::open(&path),
        dir.path(),
        &before,
        &expected,
    );
}

/// The WAL directory moved aside (renamed) after a crash, a read-only look
/// at the database, then a writable open: neither shows a state without
/// the acknowledged commits as if it were the database.
#[test]
fn a_read_only_open_without_the_wal_directory_is_not_silent() {
    let dir = tempfile::tempdir().unwrap();
    let path = crash_image(dir.path());
    fs::rename(wal_of(&path), dir.path().join("moved-aside")).unwrap();
    match ReadOnlyDatabase::open(&path) {
        Err(e) => assert!(!e.to_string().is_empty()),
        Ok(db) => assert_eq!(
            keys(&db),
            Ok((0..10).collect()),
            "a read-only open without the WAL directory lost acknowledged commits"
        ),
    }
}

/// Something other than a directory at `<path>-wal` (a regular file) is a
/// clear error for a writable open, and nothing changes.
#[test]
fn a_wal_path_that_is_a_file_refuses_a_writable_open_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = crash_image(dir.path());
    fs::rename(wal_of(&path), dir.path().join("moved-aside")).unwrap();
    fs::write(wal_of(&path), b"not a directory").unwrap();
    let before = snapshot(dir.path());
    for how in ["open", "create"] {
        let result = if how == "open" {
            Database::open(&path)
        } else {
            Database::create(&path)
        };
        let err = result
            .err()
            .unwrap_or_else(|| panic!("{how}: a file at the WAL path must be refused"));
        assert!(!err.to_string().is_empty());
        assert!(snapshot(dir.path()) == before, "{how}: the refused open changed bytes");
    }
    // Put back, the database opens whole.
    fs::remove_file(wal_of(&path)).unwrap();
    fs::rename(dir.path().join("moved-aside"), wal_of(&path)).unwrap();
    let db = Database::open(&path).unwrap();
    assert_eq!(keys(&db), Ok((0..10).collect()));
}

/// A WAL directory without permissions (mode 000). Tests run as root,
/// which reads it anyway: then the open must simply replay it; for other
/// users the open must refuse with the permission error. Either way no
/// open without the commits.
#[test]
fn an_unreadable_wal_directory_refuses_or_replays() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = crash_image(dir.path());
    let wal = wal_of(&path);
    fs::set_permissions(&wal, fs::Permissions::from_mode(0o000)).unwrap();
    let result = Database::open(&path);
    let outcome = match result {
        Err(e) => Err(e.to_string()),
        Ok(db) => keys(&db),
    };
    fs::set_permissions(&wal, fs::Permissions::from_mode(0o755)).unwrap();
    match outcome {
        Err(e) => assert!(e.to_lowercase().contains("permission"), "{e}"),
        Ok(found) => assert_eq!(found, (0..10).collect::<Vec<_>>(), "opened without the WAL's commits"),
    }
}

/// The database opened through a symbolic link to its data file after a
/// crash: the WAL lives beside the real file, and the open must find it
/// (or refuse), never open the link's own, empty, WAL directory.
#[test]
fn an_open_through_a_symlink_after_a_crash_finds_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = crash_image(dir.path());
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let before = snapshot(dir.path());
    let expected: Vec<u64> = (0..10).collect();
    assert_refused_or_whole(
        "open through a symlink",
        Database::open(&link),
        dir.path(),
        &before,
        &expected,
    );
}

/// A data file and the WAL directory of another database paired (the
/// directories swapped by mistake): the open is refused, naming the
/// mismatch, and changes no byte of either.
#[test]
fn a_wal_of_another_database_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = crash_image(&dir.path().join("a").tap_create());
    let b = crash_image(&dir.path().join("b").tap_create());
    fs::rename(wal_of(&a), dir.path().join("a-wal-aside")).unwrap();
    copy_dir(&wal_of(&b), &wal_of(&a));
    let data_before = fs::read(&a).unwrap();
    let wal_before = snapshot(&wal_of(&a));
    let Err(err) = Database::open(&a) else {
        panic!("another database's WAL must be refused")
    };
    assert!(err.to_string().contains("another database"), "{err}");
    assert!(snapshot(&wal_of(&a)) == wal_before, "the refused open changed the WAL");
    assert!(
        fs::read(&a).unwrap() == data_before,
        "the refused open ({err}) changed the data file"
    );
}

/// The same pairing, then the operator puts the database's own WAL back:
/// the open must find every acknowledged commit. (A refused open that
/// recorded a new log in the data file makes the database's own log look
/// like another copy's.)
#[test]
fn the_own_wal_put_back_after_a_refused_pairing_opens_every_commit() {
    let dir = tempfile::tempdir().unwrap();
    let a = crash_image(&dir.path().join("a").tap_create());
    let b = crash_image(&dir.path().join("b").tap_create());
    fs::rename(wal_of(&a), dir.path().join("a-wal-aside")).unwrap();
    copy_dir(&wal_of(&b), &wal_of(&a));
    assert!(Database::open(&a).is_err(), "another database's WAL is refused");
    fs::remove_dir_all(wal_of(&a)).unwrap();
    fs::rename(dir.path().join("a-wal-aside"), wal_of(&a)).unwrap();
    match Database::open(&a) {
        Ok(db) => assert_eq!(keys(&db), Ok((0..10).collect())),
        Err(e) => panic!("the database's own WAL, put back, is refused: {e}"),
    }
}

/// The data file newer than the WAL: a WAL directory restored from an
/// older copy (of the same database) after the database went on writing
/// and crashed. Refused, or every commit.
#[test]
fn an_older_wal_beside_a_newer_data_file_is_not_opened_silently() {
    let dir = tempfile::tempdir().unwrap();
    let path = crash_image(dir.path());
    let old_wal = dir.path().join("old-wal");
    copy_dir(&wal_of(&path), &old_wal);
    let db = Database::open(&path).unwrap();
    assert_eq!(keys(&db), Ok((0..10).collect()));
    commit(&db, 10..20);
    db.close_without_checkpoint();
    fs::remove_dir_all(wal_of(&path)).unwrap();
    fs::rename(&old_wal, wal_of(&path)).unwrap();
    let before = snapshot(dir.path());
    let expected: Vec<u64> = (0..20).collect();
    assert_refused_or_whole("older WAL copy", Database::open(&path), dir.path(), &before, &expected);
}

/// The data file truncated to 0 bytes beside a WAL with commits: `open`
/// refuses, and `create` (which makes a new database of an empty file)
/// must not replace the database and then open without its commits.
#[test]
fn a_data_file_truncated_to_zero_beside_its_wal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = crash_image(dir.path());
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    let wal_before = snapshot(&wal_of(&path));
    let Err(err) = Database::open(&path) else {
        panic!("an empty data file is refused by open")
    };
    assert!(!err.to_string().is_empty());
    assert!(snapshot(&wal_of(&path)) == wal_before);
    match Database::create(&path) {
        Ok(db) => panic!(
            "create made a new database beside a WAL of commits, holding {:?}",
            keys(&db)
        ),
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert!(
                snapshot(&wal_of(&path)) == wal_before,
                "the refused create changed the WAL"
            );
            let len = fs::metadata(&path).unwrap().len();
            assert_eq!(
                len, 0,
                "the refused create ({e}) wrote a new database into the emptied data file"
            );
        }
    }
}

/// The data file truncated at page boundaries (a copy cut short): every
/// open is refused, or reads fail with an error, or every key is there;
/// never a panic, never a silent subset.
#[test]
fn a_data_file_truncated_to_a_page_boundary_never_opens_as_a_subset() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    {
        let db = Database::create(&source).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(T).unwrap();
            for i in 0..20_000u64 {
                t.insert(i, i * 10).unwrap();
            }
        }
        txn.commit().unwrap();
        db.close().unwrap();
    }
    let full = fs::read(&source).unwrap();
    let pages = full.len() / 4096;
    assert!(pages > 8, "a file of several pages: {} bytes", full.len());
    let expected: Vec<u64> = (0..20_000).collect();
    for cut in [1, 2, 3, pages / 2, pages - 1] {
        let case = dir.path().join(format!("cut-{cut}"));
        fs::write(&case, &full[..cut * 4096]).unwrap();
        match Database::open(&case) {
            Err(e) => assert!(!e.to_string().is_empty()),
            Ok(db) => match keys(&db) {
                Err(e) => assert!(!e.is_empty()),
                Ok(found) => assert!(
                    found == expected,
                    "cut to {cut} pages: opened with {} of {} keys, no error",
                    found.len(),
                    expected.len()
                ),
            },
        }
    }
}

/// The data file replaced by an older copy (same log) while the WAL went
/// on past a checkpoint that deleted the segments the copy would need:
/// the open refuses (records missing) and changes nothing in the WAL.
#[test]
fn an_older_data_file_beside_a_truncated_newer_wal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let old = dir.path().join("old");
    {
        let db = open_engine(&path).unwrap();
        for i in 0..50 {
            commit_numbered(&db, i);
        }
        db.checkpoint().unwrap();
        fs::copy(&path, &old).unwrap();
        for i in 50..200 {
            commit_numbered(&db, i);
        }
        db.checkpoint().unwrap();
        for i in 200..250 {
            commit_numbered(&db, i);
        }
    }
    assert_eq!(
        count_numbered(&open_engine(&path).unwrap()),
        250,
        "the crash image itself is whole"
    );
    fs::copy(&old, &path).unwrap();
    let before = snapshot(&wal_of(&path));
    match open_engine(&path) {
        Ok(db) => assert_eq!(count_numbered(&db), 250, "an older data file opened without commits"),
        Err(e) => {
            assert!(e.contains("missing"), "{e}");
            assert!(snapshot(&wal_of(&path)) == before, "the refused open changed the WAL");
        }
    }
}

/// The newest WAL segment deleted after a crash: its commits were
/// acknowledged; the open refuses or finds them.
#[test]
fn a_deleted_newest_segment_is_not_opened_silently() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = open_engine(&path).unwrap();
        for i in 0..200 {
            commit_numbered(&db, i);
        }
    }
    let segments = segment_names(&path);
    assert!(segments.len() >= 3, "small segments roll: {segments:?}");
    fs::remove_file(wal_of(&path).join(segments.last().unwrap())).unwrap();
    match open_engine(&path) {
        Ok(db) => assert_eq!(
            count_numbered(&db),
            200,
            "opened without the deleted newest segment's acknowledged commits"
        ),
        Err(e) => assert!(!e.is_empty()),
    }
}

/// A WAL segment deleted from the middle of the log: the open refuses
/// (records after the gap prove the missing ones were acknowledged), and
/// with the segment put back every commit opens.
#[test]
fn a_deleted_middle_segment_is_refused_and_recoverable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = open_engine(&path).unwrap();
        for i in 0..200 {
            commit_numbered(&db, i);
        }
    }
    let segments = segment_names(&path);
    assert!(segments.len() >= 3, "small segments roll: {segments:?}");
    let middle = &segments[segments.len() / 2];
    let aside = dir.path().join("aside");
    fs::rename(wal_of(&path).join(middle), &aside).unwrap();
    let wal_before = snapshot(&wal_of(&path));
    let err = open_engine(&path).err().expect("a gap in the log is refused");
    assert!(!err.is_empty());
    assert!(
        snapshot(&wal_of(&path)) == wal_before,
        "the refused open changed the WAL"
    );
    fs::rename(&aside, wal_of(&path).join(middle)).unwrap();
    assert_eq!(count_numbered(&open_engine(&path).unwrap()), 200);
}

/// The same database opened twice in one process, by its path and through
/// a symlink, writable and read-only either way round: refused with
/// `DatabaseAlreadyOpen`, and the first handle keeps working.
#[test]
fn a_second_open_in_one_process_is_refused_every_way() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let link = dir.path().join("link");
    let db = Database::create(&path).unwrap();
    commit(&db, 0..3);
    std::os::unix::fs::symlink(&path, &link).unwrap();
    for (what, result) in [
        ("open", Database::open(&path).map(drop)),
        ("create", Database::create(&path).map(drop)),
        ("open via link", Database::open(&link).map(drop)),
        ("read-only", ReadOnlyDatabase::open(&path).map(drop)),
        ("read-only via link", ReadOnlyDatabase::open(&link).map(drop)),
    ] {
        assert!(
            matches!(result, Err(DatabaseError::DatabaseAlreadyOpen)),
            "{what} while a writer holds it: {result:?}"
        );
    }
    commit(&db, 3..5);
    assert_eq!(keys(&db), Ok((0..5).collect()));
    drop(db);
    let reader = ReadOnlyDatabase::open(&path).unwrap();
    let writer = Database::open(&link);
    assert!(
        matches!(writer, Err(DatabaseError::DatabaseAlreadyOpen)),
        "a writer via a link while a reader holds it: {writer:?}"
    );
    assert_eq!(keys(&reader), Ok((0..5).collect()));
}

/// A directory where the data file should be: every way to open gives an
/// error, and no WAL directory appears beside it.
#[test]
fn a_data_file_that_is_a_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    fs::create_dir(&path).unwrap();
    assert!(Database::create(&path).is_err(), "create on a directory");
    assert!(Database::open(&path).is_err(), "open on a directory");
    assert!(ReadOnlyDatabase::open(&path).is_err(), "read-only open on a directory");
    assert!(
        !wal_of(&path).exists(),
        "a WAL directory appeared beside a refused path"
    );
}

/// `Database::create` on an existing database opens it (redb's semantics):
/// a cleanly closed one keeps its data, and a crash image replays its WAL.
#[test]
fn create_on_an_existing_database_keeps_every_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = crash_image(dir.path());
    let db = Database::create(&path).unwrap();
    assert_eq!(keys(&db), Ok((0..10).collect()), "create on a crash image");
    commit(&db, 10..12);
    db.close().unwrap();
    let db = Database::create(&path).unwrap();
    assert_eq!(keys(&db), Ok((0..12).collect()), "create on a closed database");
}

/// Builder options unlike the ones the file was written with (no cache, a
/// one-byte memtable, a tiny frozen budget) open a crash image with every
/// commit, write, crash again, and reopen whole with the defaults.
#[test]
fn builder_options_unlike_the_files_open_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = crash_image(dir.path());
    let mut builder = Builder::new();
    builder.set_cache_size(0).set_memtable_size(1).set_max_frozen_bytes(1);
    let db = builder.open(&path).unwrap();
    assert_eq!(keys(&db), Ok((0..10).collect()));
    commit(&db, 10..40);
    db.close_without_checkpoint();
    let db = Database::open(&path).unwrap();
    assert_eq!(keys(&db), Ok((0..40).collect()));
}

// Engine-level helpers: small WAL segments need `EngineOptions`, which
// `Builder` does not expose. The files are the ones `Database::open(path)`
// uses: the data file at `path`, the WAL in `<path>-wal`.

fn resolver(meta: &[u8]) -> Option<Comparator> {
    (meta == b"bytes").then_some(bytewise as Comparator)
}

fn engine_options() -> EngineOptions {
    EngineOptions {
        segment_bytes: 8 << 10,
        checkpoint_wal_bytes: 1 << 30,
        checkpoint_interval: Duration::from_secs(3600),
        resolver,
        ..EngineOptions::default()
    }
}

fn open_engine(path: &Path) -> Result<Engine, String> {
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| e.to_string())?;
    let wal = FsLogDir::open(wal_of(path)).map_err(|e| e.to_string())?;
    Engine::open(FileBackend::new(file), wal, engine_options()).map_err(|e| e.to_string())
}

fn commit_numbered(db: &Engine, i: u64) {
    let mut w = db.begin_write().unwrap();
    let t = w.open_table(b"t", b"bytes", bytewise).unwrap();
    w.insert(t, &i.to_be_bytes(), &[7u8; 100]).unwrap();
    w.commit().unwrap();
}

fn count_numbered(db: &Engine) -> u64 {
    let txn = db.begin_read().unwrap();
    txn.open_table(b"t", bytewise).unwrap().map_or(0, |t| {
        txn.range(&t, Bound::Unbounded, Bound::Unbounded).unwrap().count() as u64
    })
}

/// The WAL segments of the database at `path`, oldest first.
fn segment_names(path: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(wal_of(path))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".wal"))
        .collect();
    names.sort();
    names
}

/// Creates a directory and returns its path.
trait TapCreate {
    fn tap_create(self) -> PathBuf;
}

impl TapCreate for PathBuf {
    fn tap_create(self) -> PathBuf {
        fs::create_dir_all(&self).unwrap();
        self
    }
}
