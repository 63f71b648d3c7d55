//! Adversarial review of the engine's internal catalog records (table
//! definitions and counts, custom key orders, the flush marker, the WAL log
//! tail) across savepoints, compaction, backup, table replacement and power
//! cuts. Every scenario compares what the database shows (contents, `len()`,
//! `list_tables()`, key order) with a `BTreeMap` model.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::keys::{CaseInsensitive, CrashDisk, Reversed};
use sluicedb::io::TearMode;
use sluicedb::{
    Builder, Database, Durability, MultimapTableDefinition, MultimapTableHandle, ReadableDatabase,
    ReadableMultimapTable, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle,
};

type Plain = BTreeMap<String, BTreeMap<u64, u64>>;
type Multi = BTreeMap<String, BTreeSet<(u64, u64)>>;

fn t(name: &str) -> TableDefinition<'_, u64, u64> {
    TableDefinition::new(name)
}

fn mm(name: &str) -> MultimapTableDefinition<'_, u64, u64> {
    MultimapTableDefinition::new(name)
}

const REV: TableDefinition<Reversed, u64> = TableDefinition::new("rev");
const REV_AS_CI: TableDefinition<CaseInsensitive, u64> = TableDefinition::new("rev");
const STR_A: TableDefinition<&str, u64> = TableDefinition::new("a");

/// What the model expects of the database: `u64 -> u64` tables, multimap
/// `u64 -> u64` tables, and names of other tables (checked by the test).
#[derive(Clone, Debug, Default)]
struct Model {
    plain: Plain,
    multi: Multi,
    /// Tables of other types (only their names are compared here).
    other: BTreeSet<String>,
}

/// Checks names, contents and `len()` of every table the model knows, in
/// one read transaction.
fn check(db: &Database, model: &Model, what: &str) {
    let read = db.begin_read().unwrap();
    let names: BTreeSet<String> = read.list_tables().unwrap().map(|h| h.name().to_string()).collect();
    let want: BTreeSet<String> = model.plain.keys().cloned().chain(model.other.iter().cloned()).collect();
    assert_eq!(names, want, "{what}: list_tables");
    let mnames: BTreeSet<String> = read
        .list_multimap_tables()
        .unwrap()
        .map(|h| h.name().to_string())
        .collect();
    let mwant: BTreeSet<String> = model.multi.keys().cloned().collect();
    assert_eq!(mnames, mwant, "{what}: list_multimap_tables");
    for (name, entries) in &model.plain {
        let table = read.open_table(t(name)).unwrap();
        let got: BTreeMap<u64, u64> = table
            .iter()
            .unwrap()
            .map(|e| e.unwrap())
            .map(|(k, v)| (k.value(), v.value()))
            .collect();
        assert_eq!(&got, entries, "{what}: contents of {name}");
        assert_eq!(table.len().unwrap(), entries.len() as u64, "{what}: len() of {name}");
    }
    for (name, pairs) in &model.multi {
        let table = read.open_multimap_table(mm(name)).unwrap();
        let mut got = BTreeSet::new();
        for e in table.iter().unwrap() {
            let (k, vs) = e.unwrap();
            for v in vs {
                got.insert((k.value(), v.unwrap().value()));
            }
        }
        assert_eq!(&got, pairs, "{what}: contents of multimap {name}");
        assert_eq!(
            table.len().unwrap(),
            pairs.len() as u64,
            "{what}: len() of multimap {name}"
        );
    }
}

/// The entries of a `Reversed` table in iteration order, checked against
/// its `len()`.
fn rev_entries(db: &Database) -> Vec<(String, u64)> {
    rev_entries_of(db, REV)
}

/// [`rev_entries`] of the table `definition`.
fn rev_entries_of(db: &Database, definition: TableDefinition<Reversed, u64>) -> Vec<(String, u64)> {
    let read = db.begin_read().unwrap();
    let table = read.open_table(definition).unwrap();
    let got: Vec<(String, u64)> = table
        .iter()
        .unwrap()
        .map(|e| e.unwrap())
        .map(|(k, v)| (k.value().to_string(), v.value()))
        .collect();
    assert_eq!(table.len().unwrap(), got.len() as u64, "len() of {}", definition.name());
    got
}

/// `Reversed` keys `k000..k{n}` in the order the table must show them.
fn rev_model(keys: impl IntoIterator<Item = u64>) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = keys.into_iter().map(|k| (format!("k{k:03}"), k)).collect();
    out.sort_by(|a, b| b.0.cmp(&a.0));
    out
}

fn put(db: &Database, model: &mut Model, name: &str, keys: impl IntoIterator<Item = u64>, add: u64) {
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(t(name)).unwrap();
        let m = model.plain.entry(name.to_string()).or_default();
        for k in keys {
            table.insert(k, k + add).unwrap();
            m.insert(k, k + add);
        }
    }
    txn.commit().unwrap();
}

fn remove(db: &Database, model: &mut Model, name: &str, keys: impl IntoIterator<Item = u64>) {
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(t(name)).unwrap();
        let m = model.plain.get_mut(name).unwrap();
        for k in keys {
            table.remove(k).unwrap();
            m.remove(&k);
        }
    }
    txn.commit().unwrap();
}

fn put_multi(db: &Database, model: &mut Model, name: &str, pairs: impl IntoIterator<Item = (u64, u64)>) {
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_multimap_table(mm(name)).unwrap();
        let m = model.multi.entry(name.to_string()).or_default();
        for (k, v) in pairs {
            table.insert(k, v).unwrap();
            m.insert((k, v));
        }
    }
    txn.commit().unwrap();
}

fn put_rev(db: &Database, keys: impl IntoIterator<Item = u64>) {
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(REV).unwrap();
        for k in keys {
            table.insert(format!("k{k:03}").as_str(), k).unwrap();
        }
    }
    txn.commit().unwrap();
}

fn small(path: &std::path::Path) -> Database {
    Database::builder().set_memtable_size(4096).create(path).unwrap()
}

/// A persistent savepoint restored after its table `a` was replaced by a
/// table of another type (`&str` keys), `b` renamed to `c`, a multimap
/// grown, a checkpoint and a reopen: the restore brings back `a` with its
/// `u64` contents and len(), `b` under its name, drops `c` and the `&str`
/// table, and all of it survives another reopen.
#[test]
fn persistent_savepoint_restores_a_table_replaced_by_another_type_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut model = Model::default();
    let saved;
    let id;
    {
        let db = small(&path);
        put(&db, &mut model, "a", 0..300, 1);
        remove(&db, &mut model, "a", (0..300).step_by(3));
        put(&db, &mut model, "b", 0..50, 7);
        put_multi(&db, &mut model, "m", (0..60).map(|i| (i % 7, i)));
        let txn = db.begin_write().unwrap();
        id = txn.persistent_savepoint().unwrap();
        txn.commit().unwrap();
        saved = model.clone();

        let txn = db.begin_write().unwrap();
        txn.delete_table(t("a")).unwrap();
        {
            let mut a = txn.open_table(STR_A).unwrap();
            for i in 0..100u64 {
                a.insert(format!("s{i}").as_str(), i).unwrap();
            }
        }
        txn.rename_table(t("b"), t("c")).unwrap();
        txn.commit().unwrap();
        put_multi(&db, &mut model, "m", (100..160).map(|i| (i % 5, i)));
        db.checkpoint().unwrap();
        put(&db, &mut model, "c", 500..520, 0);
    }
    let db = small(&path);
    let mut txn = db.begin_write().unwrap();
    let sp = txn.get_persistent_savepoint(id).unwrap();
    txn.restore_savepoint(&sp).unwrap();
    txn.commit().unwrap();
    check(&db, &saved, "after the restore");
    db.checkpoint().unwrap();
    check(&db, &saved, "after the restore's checkpoint");
    drop(db);
    let mut db = small(&path);
    check(&db, &saved, "after the restore and a reopen");
    assert!(db.check_integrity().unwrap());
}

/// An ephemeral savepoint of a custom-order (`Reversed`) table; the table is
/// then deleted and recreated under the same name with another custom
/// order (`CaseInsensitive`), flushed and checkpointed; the restore gives
/// back the `Reversed` table, in reverse order with its len(), and so does
/// a reopen after it.
#[test]
fn ephemeral_savepoint_restores_a_custom_order_table_replaced_by_another_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = small(&path);
    put_rev(&db, 0..200);
    let txn = db.begin_write().unwrap();
    let sp = txn.ephemeral_savepoint().unwrap();
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    txn.delete_table(REV).unwrap();
    {
        let mut ci = txn.open_table(REV_AS_CI).unwrap();
        for i in 0..150u64 {
            ci.insert(format!("Word{i}").as_str(), i).unwrap();
        }
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    let mut txn = db.begin_write().unwrap();
    txn.restore_savepoint(&sp).unwrap();
    txn.commit().unwrap();
    drop(sp);
    assert_eq!(rev_entries(&db), rev_model(0..200), "after the restore");
    db.checkpoint().unwrap();
    assert_eq!(rev_entries(&db), rev_model(0..200), "after a checkpoint");
    drop(db);
    let mut db = small(&path);
    assert_eq!(rev_entries(&db), rev_model(0..200), "after a reopen");
    assert!(db.check_integrity().unwrap());
}

fn crash_builder() -> Builder {
    let mut b = Builder::new();
    b.set_memtable_size(4096);
    b
}

/// A compaction beside table deletes, a rename, a custom-order table, a
/// multimap and a persistent savepoint created and deleted before it; then
/// durable commits and a power cut (every tear mode): the database opens
/// with every acknowledged commit, exact len()s, its table list, the
/// custom order, and passes the integrity check.
#[test]
fn compaction_then_power_cut_keeps_every_catalog_record() {
    let disk = CrashDisk::new();
    let mut model = Model::default();
    {
        let mut db = disk.open(&crash_builder());
        put(&db, &mut model, "a", 0..400, 1);
        put(&db, &mut model, "d", 0..300, 2);
        put(&db, &mut model, "e", 0..100, 3);
        put_multi(&db, &mut model, "m", (0..100).map(|i| (i % 9, i)));
        put_rev(&db, 0..120);
        model.other.insert("rev".into());
        let txn = db.begin_write().unwrap();
        let id = txn.persistent_savepoint().unwrap();
        txn.commit().unwrap();
        remove(&db, &mut model, "a", 100..350);
        let txn = db.begin_write().unwrap();
        txn.delete_table(t("d")).unwrap();
        txn.rename_table(t("e"), t("f")).unwrap();
        txn.delete_persistent_savepoint(id).unwrap();
        txn.commit().unwrap();
        model.plain.remove("d");
        let e = model.plain.remove("e").unwrap();
        model.plain.insert("f".into(), e);
        db.compact().unwrap();
        check(&db, &model, "after the compaction");
        put(&db, &mut model, "a", 1000..1050, 0);
        put(&db, &mut model, "f", 0..10, 100);
        put_multi(&db, &mut model, "m", [(1, 1000), (2, 2000)]);
        put_rev(&db, 500..510);
        std::mem::forget(db);
    }
    let rev_want = rev_model((0..120).chain(500..510));
    for mode in [
        TearMode::DropAll,
        TearMode::KeepAll,
        TearMode::Random(1),
        TearMode::Random(2),
        TearMode::Random(3),
    ] {
        let image = disk.crashed(mode);
        let mut db = image.open(&crash_builder());
        check(&db, &model, &format!("{mode:?}"));
        assert_eq!(rev_entries(&db), rev_want, "{mode:?}: rev");
        assert!(db.check_integrity().unwrap(), "{mode:?}: integrity");
    }
}

/// A backup of a database holding a custom-order table, a multimap, a table
/// with removals (so its count comes from more than inserts), a persistent
/// savepoint and writes still in the memtable: the copy opens on its own
/// (its own log), with every table, len() and order, takes writes and
/// reopens; the source keeps working and its savepoint still restores.
#[test]
fn backup_copy_opens_with_counts_orders_and_its_own_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let dest = dir.path().join("copy");
    let db = small(&path);
    let mut model = Model::default();
    put(&db, &mut model, "a", 0..500, 1);
    remove(&db, &mut model, "a", (0..500).step_by(2));
    put_multi(&db, &mut model, "m", (0..80).map(|i| (i % 4, i)));
    put_rev(&db, 0..90);
    model.other.insert("rev".into());
    let txn = db.begin_write().unwrap();
    let id = txn.persistent_savepoint().unwrap();
    txn.commit().unwrap();
    let saved = model.clone();
    db.checkpoint().unwrap();
    put(&db, &mut model, "a", 1000..1010, 0);
    let txn = db.begin_write().unwrap();
    txn.delete_table(t("a")).unwrap();
    txn.commit().unwrap();
    model.plain.remove("a");
    put(&db, &mut model, "b", 0..5, 0);

    db.backup(&dest).unwrap();
    {
        let copy = Database::open(&dest).unwrap();
        check(&copy, &model, "the copy");
        assert_eq!(rev_entries(&copy), rev_model(0..90), "the copy's rev");
        let txn = copy.begin_write().unwrap();
        assert_eq!(
            txn.list_persistent_savepoints().unwrap().count(),
            0,
            "savepoints are not copied"
        );
        txn.abort().unwrap();
        put(&copy, &mut model.clone(), "b", 10..20, 0);
    }
    {
        let mut copy = Database::open(&dest).unwrap();
        let mut m = model.clone();
        m.plain.get_mut("b").unwrap().extend((10..20).map(|k| (k, k)));
        check(&copy, &m, "the copy reopened after a write");
        assert!(copy.check_integrity().unwrap());
    }
    // The source goes on.
    put(&db, &mut model, "b", 5..8, 0);
    check(&db, &model, "the source after the backup");
    let mut txn = db.begin_write().unwrap();
    let sp = txn.get_persistent_savepoint(id).unwrap();
    txn.restore_savepoint(&sp).unwrap();
    txn.commit().unwrap();
    check(&db, &saved, "the source's savepoint restored after the backup");
    drop(db);
    let db = small(&path);
    check(&db, &saved, "the source reopened");
    assert_eq!(rev_entries(&db), rev_model(0..90));
}

/// A multimap table replaced by an ordinary table of the same name (and
/// back, for another name) in unflushed commits, then a power cut: each
/// name opens as the kind it last was, with its contents and len().
#[test]
fn multimap_and_table_swapping_a_name_survive_a_power_cut() {
    let disk = CrashDisk::new();
    let mut model = Model::default();
    {
        let db = disk.open(&crash_builder());
        put_multi(&db, &mut model, "x", (0..50).map(|i| (i % 3, i)));
        put(&db, &mut model, "y", 0..70, 5);
        db.checkpoint().unwrap();
        let txn = db.begin_write().unwrap();
        txn.delete_multimap_table(mm("x")).unwrap();
        txn.delete_table(t("y")).unwrap();
        txn.commit().unwrap();
        model.multi.remove("x");
        model.plain.remove("y");
        put(&db, &mut model, "x", 0..40, 9);
        put_multi(&db, &mut model, "y", (0..30).map(|i| (i % 2, i)));
        check(&db, &model, "before the cut");
        std::mem::forget(db);
    }
    for mode in [TearMode::DropAll, TearMode::KeepAll, TearMode::Random(7)] {
        let image = disk.crashed(mode);
        let mut db = image.open(&crash_builder());
        check(&db, &model, &format!("{mode:?}"));
        db.checkpoint().unwrap();
        check(&db, &model, &format!("{mode:?} after a checkpoint"));
        assert!(db.check_integrity().unwrap());
    }
}

/// A persistent savepoint restored in a durable commit after the saved
/// table was deleted and its name reused, then a power cut before any
/// checkpoint: the restored state, len()s included, survives, and the
/// savepoint still restores to the same state.
#[test]
fn a_restore_survives_a_power_cut_before_its_checkpoint() {
    let disk = CrashDisk::new();
    let mut model = Model::default();
    let saved;
    {
        let db = disk.open(&crash_builder());
        put(&db, &mut model, "a", 0..250, 1);
        remove(&db, &mut model, "a", 50..100);
        put_multi(&db, &mut model, "m", (0..40).map(|i| (i % 6, i)));
        let txn = db.begin_write().unwrap();
        txn.persistent_savepoint().unwrap();
        txn.commit().unwrap();
        saved = model.clone();
        let txn = db.begin_write().unwrap();
        txn.delete_table(t("a")).unwrap();
        txn.delete_multimap_table(mm("m")).unwrap();
        txn.commit().unwrap();
        put(&db, &mut model, "a", 900..905, 0);
        db.checkpoint().unwrap();
        put(&db, &mut model, "z", 0..20, 0);
        let mut txn = db.begin_write().unwrap();
        let ids: Vec<u64> = txn.list_persistent_savepoints().unwrap().collect();
        let sp = txn.get_persistent_savepoint(ids[0]).unwrap();
        txn.restore_savepoint(&sp).unwrap();
        txn.commit().unwrap();
        check(&db, &saved, "after the restore");
        std::mem::forget(db);
    }
    for mode in [TearMode::DropAll, TearMode::KeepAll, TearMode::Random(11)] {
        let image = disk.crashed(mode);
        let db = image.open(&crash_builder());
        check(&db, &saved, &format!("{mode:?}"));
        let mut txn = db.begin_write().unwrap();
        let ids: Vec<u64> = txn.list_persistent_savepoints().unwrap().collect();
        assert_eq!(ids.len(), 1, "{mode:?}: the savepoint is listed");
        let sp = txn.get_persistent_savepoint(ids[0]).unwrap();
        txn.restore_savepoint(&sp).unwrap();
        txn.commit().unwrap();
        check(&db, &saved, &format!("{mode:?}: restored again"));
    }
}

/// Non-durable commits (`Durability::None`) that delete and recreate a
/// table, then `sync()`, a compaction and a power cut: everything synced is
/// there with exact len()s.
#[test]
fn no_sync_recreations_synced_then_compacted_survive_a_power_cut() {
    let disk = CrashDisk::new();
    let mut model = Model::default();
    {
        let mut db = disk.open(&crash_builder());
        put(&db, &mut model, "a", 0..300, 1);
        for round in 0..4u64 {
            let mut txn = db.begin_write().unwrap();
            txn.set_durability(Durability::None).unwrap();
            txn.delete_table(t("a")).unwrap();
            {
                let mut a = txn.open_table(t("a")).unwrap();
                let m = model.plain.get_mut("a").unwrap();
                m.clear();
                for k in 0..(100 + round * 50) {
                    a.insert(k, k * round).unwrap();
                    m.insert(k, k * round);
                }
            }
            txn.commit().unwrap();
        }
        db.sync().unwrap();
        db.compact().unwrap();
        check(&db, &model, "after the compaction");
        std::mem::forget(db);
    }
    for mode in [TearMode::DropAll, TearMode::KeepAll, TearMode::Random(5)] {
        let image = disk.crashed(mode);
        let mut db = image.open(&crash_builder());
        check(&db, &model, &format!("{mode:?}"));
        assert!(db.check_integrity().unwrap());
    }
}

const REV2: TableDefinition<Reversed, u64> = TableDefinition::new("rev2");

/// One step of [`deferred_custom_order_table_renamed_while_deferred`], run
/// in a fresh process so no key order is known from an earlier step.
#[test]
fn deferred_child() {
    let Some(arg) = common::keys::child_arg() else { return };
    let (step, path) = arg.split_once(':').unwrap();
    let path = std::path::Path::new(path);
    match step {
        "1" => {
            let db = small(path);
            put_rev(&db, 0..100);
            db.checkpoint().unwrap();
            put_rev(&db, 100..150);
            let txn = db.begin_write().unwrap();
            {
                let mut table = txn.open_table(REV).unwrap();
                for k in (0..150u64).step_by(5) {
                    table.remove(format!("k{k:03}").as_str()).unwrap();
                }
            }
            txn.commit().unwrap();
            // A crash: no checkpoint, the newest records only in the WAL.
            std::mem::forget(db);
        }
        "2" => {
            let db = small(path);
            // `rev` is deferred: its order is unknown in this process.
            let txn = db.begin_write().unwrap();
            txn.persistent_savepoint().unwrap();
            txn.commit().unwrap();
            let txn = db.begin_write().unwrap();
            txn.rename_table("rev", "rev2").unwrap();
            txn.commit().unwrap();
            let mut model = Model::default();
            put(&db, &mut model, "other", 0..30, 0);
            db.checkpoint().unwrap();
            std::mem::forget(db);
        }
        "3" => {
            let db = small(path);
            let want = rev_model((0..150).filter(|k| k % 5 != 0));
            let read = db.begin_read().unwrap();
            let names: BTreeSet<String> = read.list_tables().unwrap().map(|h| h.name().to_string()).collect();
            assert_eq!(names, BTreeSet::from(["rev2".to_string(), "other".to_string()]));
            drop(read);
            assert_eq!(rev_entries_of(&db, REV2), want, "the renamed deferred table");
            let mut txn = db.begin_write().unwrap();
            let ids: Vec<u64> = txn.list_persistent_savepoints().unwrap().collect();
            let sp = txn.get_persistent_savepoint(ids[0]).unwrap();
            txn.restore_savepoint(&sp).unwrap();
            txn.commit().unwrap();
            assert_eq!(rev_entries(&db), want, "rev restored");
            let read = db.begin_read().unwrap();
            let names: BTreeSet<String> = read.list_tables().unwrap().map(|h| h.name().to_string()).collect();
            assert_eq!(names, BTreeSet::from(["rev".to_string()]), "tables after the restore");
            drop(read);
            db.checkpoint().unwrap();
            drop(db);
            let mut db = small(path);
            assert_eq!(rev_entries(&db), want, "rev restored, reopened");
            assert!(db.check_integrity().unwrap());
        }
        other => panic!("unknown step {other}"),
    }
}

/// A custom-order table whose newest records are only in the WAL at a
/// crash; a fresh process (order unknown, records deferred) takes a
/// persistent savepoint, renames the table without its type, checkpoints
/// and crashes; a third process opens the renamed table (contents, order,
/// len()), then restores the savepoint, which gives back the table under
/// its old name with the deferred records, across a reopen.
#[test]
fn deferred_custom_order_table_renamed_while_deferred() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    for step in ["1", "2", "3"] {
        common::keys::run_in_child_process("deferred_child", &format!("{step}:{}", path.display()));
    }
}
