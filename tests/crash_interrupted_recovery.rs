//! A recovery that is itself interrupted. A power cut inside a flush
//! that commits in parts leaves a tree holding part of a memtable and the
//! flush marker (`engine::flush_marker`); the open after it writes to the
//! data file (a new log id, then the first flush and checkpoint over the
//! marker) and to the WAL. Here the power is cut again at every data-file
//! (and WAL) operation of that second run, which commits more, and the
//! database is opened a third time: every acknowledged commit must be
//! there, `len()` exact, the integrity check clean.

mod common;

use std::collections::BTreeMap;

use common::engine::{
    Disk, FLUSH_PARTS_KEYS, flush_parts_fill, flush_parts_options, flush_parts_reopen_options, flush_parts_value,
    has_flush_marker, read_u64,
};
use sluicedb::btree::{Comparator, bytewise};
use sluicedb::engine::{Durability, Engine};
use sluicedb::io::TearMode;

type Model = BTreeMap<u64, Vec<u8>>;

const META: &[u8] = b"bytes";
const CMP: Comparator = bytewise;
/// Contents, count and integrity; `Err` describes the first difference.
fn verify(db: &Engine, allowed: &[&Model]) -> Result<(), String> {
    db.check_integrity().map_err(|e| format!("integrity: {e}"))?;
    let (listed, len) = read_u64(db, CMP);
    let found: Model = listed.into_iter().collect();
    let Some(model) = allowed.iter().find(|m| ***m == found) else {
        let m = allowed[0];
        let missing = m.keys().find(|k| !found.contains_key(k));
        let extra = found.keys().find(|k| !m.contains_key(k));
        let differs = m.iter().find(|(k, v)| found.get(k).is_some_and(|f| f != *v));
        return Err(format!(
            "contents are no acknowledged state: {} entries vs {}; missing {missing:?}, extra {extra:?}, differs {:?}",
            found.len(),
            m.len(),
            differs.map(|(k, _)| k)
        ));
    };
    if len != model.len() as u64 {
        return Err(format!("len() {len}, entries {}", model.len()));
    }
    Ok(())
}

/// A copy of `disk` as it is now (its images are all durable).
fn copy(disk: &Disk) -> Disk {
    disk.crashed(TearMode::KeepAll)
}

/// The second run: open (recovery over the marker), durable commits of new
/// versions, a checkpoint. Returns the models a crash may leave: the last
/// acknowledged one, and the one with the commit in flight when the power
/// went.
fn second_run(disk: &Disk, model: &Model) -> (Model, Model) {
    let mut acked = model.clone();
    let Ok(db) = Engine::open(disk.data.clone(), disk.wal.clone(), flush_parts_reopen_options()) else {
        return (acked.clone(), acked);
    };
    for round in 0..6u64 {
        let mut next = acked.clone();
        let ops: Vec<_> = (0..FLUSH_PARTS_KEYS + 900)
            .filter(|k| k % 6 == round)
            .map(|k| match k % 4 {
                0 => (k, None),
                _ => (k, Some(flush_parts_value(k, 100 + round))),
            })
            .collect();
        let ok = (|| {
            let mut w = db.begin_write().ok()?;
            let t = w.open_table(b"t", META, CMP).ok()?;
            for (key, v) in &ops {
                match v {
                    Some(v) => {
                        w.insert(t, &key.to_be_bytes(), v).ok()?;
                        next.insert(*key, v.clone());
                    }
                    None => {
                        w.remove(t, &key.to_be_bytes()).ok()?;
                        next.remove(key);
                    }
                }
            }
            w.set_durability(Durability::Immediate);
            w.commit().ok()
        })();
        if ok.is_none() {
            return (acked, next);
        }
        acked = next;
        if round == 2 && db.checkpoint().is_err() {
            return (acked.clone(), acked);
        }
    }
    if db.checkpoint().is_err() {
        return (acked.clone(), acked);
    }
    (acked.clone(), acked)
}

/// Images of power cuts inside a flush with part commits that hold the
/// marker, with the model every one of them must recover.
fn marker_images() -> Vec<(Disk, Model, String)> {
    let span = {
        let disk = Disk::new();
        let db = disk.open(flush_parts_options());
        flush_parts_fill(&db, META, CMP);
        let data = disk.data.ops();
        db.checkpoint().unwrap();
        disk.data.ops() - data
    };
    let mut images = Vec::new();
    for n in (0..=span).step_by(7) {
        let disk = Disk::new();
        let db = disk.open(flush_parts_options());
        let model = flush_parts_fill(&db, META, CMP);
        disk.data.cut_power_after(disk.data.ops() + n);
        let _ = db.checkpoint();
        drop(db);
        let mode = [TearMode::DropAll, TearMode::Random(n), TearMode::KeepAll][(n % 3) as usize];
        let crashed = disk.crashed(mode);
        if has_flush_marker(&crashed) {
            images.push((crashed, model, format!("first cut after {n} data ops ({mode:?})")));
        }
    }
    assert!(!images.is_empty(), "no cut left a marker");
    // A few, spread over the flush.
    let step = (images.len() / 4).max(1);
    images.into_iter().step_by(step).collect()
}

fn interrupted_recoveries(cut_wal: bool) {
    let mut failures = Vec::new();
    for (image, model, first) in marker_images() {
        // How many operations the uncut second run makes.
        let span = {
            let d = copy(&image);
            let (data, wal) = (d.data.ops(), d.wal.ops());
            let (acked, _) = second_run(&d, &model);
            let db = Engine::open(d.data.clone(), d.wal.clone(), flush_parts_reopen_options()).unwrap();
            if let Err(e) = verify(&db, &[&acked]) {
                failures.push(format!("{first}, uncut second run: {e}"));
            }
            if cut_wal {
                d.wal.ops() - wal
            } else {
                d.data.ops() - data
            }
        };
        let step = (span / 40).max(1);
        for m in (0..=span).step_by(step as usize) {
            let d = copy(&image);
            if cut_wal {
                d.wal.cut_power_after(d.wal.ops() + m);
            } else {
                d.data.cut_power_after(d.data.ops() + m);
            }
            let (acked, in_flight) = second_run(&d, &model);
            for mode in [TearMode::DropAll, TearMode::Random(m), TearMode::KeepAll] {
                let what = format!(
                    "{first}; second cut after {m} {} ops ({mode:?})",
                    if cut_wal { "WAL" } else { "data" }
                );
                let third = d.crashed(mode);
                let db = match Engine::open(third.data.clone(), third.wal.clone(), flush_parts_reopen_options()) {
                    Ok(db) => db,
                    Err(e) => {
                        failures.push(format!("{what}: third open failed: {e}"));
                        continue;
                    }
                };
                if let Err(e) = verify(&db, &[&acked, &in_flight]) {
                    failures.push(format!("{what}: {e}"));
                    continue;
                }
                if let Err(e) = db.checkpoint() {
                    failures.push(format!("{what}: checkpoint after the third open: {e}"));
                    continue;
                }
                drop(db);
                let db = Engine::open(third.data.clone(), third.wal.clone(), flush_parts_reopen_options()).unwrap();
                if let Err(e) = verify(&db, &[&acked, &in_flight]) {
                    failures.push(format!("{what}, after a checkpoint and a clean reopen: {e}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures[..failures.len().min(8)].join("\n")
    );
}

#[test]
fn power_cuts_in_the_data_file_during_recovery_from_a_partial_flush() {
    interrupted_recoveries(false);
}

#[test]
fn power_cuts_in_the_wal_during_recovery_from_a_partial_flush() {
    interrupted_recoveries(true);
}
