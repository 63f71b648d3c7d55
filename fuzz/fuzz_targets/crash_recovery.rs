//! Crash recovery under arbitrary operation sequences.
//!
//! The input drives a database over a crash-simulating data file and WAL
//! directory: puts, removes, range removals, commits of every durability,
//! pipelined commits, aborts, checkpoints, clean reopens, power cuts in the
//! middle of whatever runs next, and crashes in which every unsynced write is
//! dropped, kept or torn (each on its own). After every reopen the state must
//! be one of the committed states, in commit order, no older than the last
//! commit acknowledged as durable, and the integrity check must pass.

#![no_main]

use std::collections::BTreeMap;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use sluicedb::io::{CrashBackend, CrashLogDir, TearMode};
use sluicedb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

const T: TableDefinition<u8, &[u8]> = TableDefinition::new("t");

type State = BTreeMap<u8, Vec<u8>>;

struct Disk {
    data: Arc<CrashBackend>,
    wal: CrashLogDir,
}

impl Disk {
    fn open(&self) -> Option<Database> {
        Database::builder()
            .set_memtable_size(2 << 10)
            .create_with_backends(self.data.clone(), self.wal.clone())
            .ok()
    }

    fn crashed(&self, mode: TearMode) -> Disk {
        Disk {
            data: Arc::new(CrashBackend::from_bytes(self.data.crash_image(mode))),
            wal: self.wal.crash(mode),
        }
    }
}

fn read_state(db: &Database) -> State {
    let txn = db.begin_read().expect("begin_read after reopen");
    let Ok(table) = txn.open_table(T) else { return State::new() };
    table.iter().expect("iter").map(|e| {
        let (k, v) = e.expect("entry");
        (k.value(), v.value().to_vec())
    }).collect()
}

fuzz_target!(|data: &[u8]| {
    let mut disk = Disk { data: Arc::new(CrashBackend::new()), wal: CrashLogDir::new() };
    let Some(mut db) = disk.open() else { return };
    // Every committed state in commit order; `durable` indexes the newest one
    // acknowledged as durable.
    let mut history: Vec<State> = vec![State::new()];
    let mut durable = 0usize;
    let mut working = State::new();
    let mut txn = None;
    let mut pending = Vec::new();
    let mut bytes = data.iter().copied();
    while let Some(op) = bytes.next() {
        let arg = bytes.next().unwrap_or(0);
        if txn.is_none() {
            match db.begin_write() {
                Ok(t) => txn = Some(t),
                Err(_) => {
                    // Poisoned: only a crash gets us further.
                    if op % 16 < 13 {
                        continue;
                    }
                }
            }
        }
        match op % 16 {
            0..=4 => {
                if let Some(t) = &txn {
                    let value = vec![arg; (op as usize >> 4) * 7];
                    if t.open_table(T).and_then(|mut tb| Ok(tb.insert(arg % 64, value.as_slice()).map(|_| ())?)).is_ok() {
                        working.insert(arg % 64, value);
                    }
                }
            }
            5 | 6 => {
                if let Some(t) = &txn {
                    if t.open_table(T).and_then(|mut tb| Ok(tb.remove(arg % 64).map(|_| ())?)).is_ok() {
                        working.remove(&(arg % 64));
                    }
                }
            }
            7 => {
                if let Some(t) = &txn {
                    let (lo, hi) = (arg % 64, (arg % 64).saturating_add(op >> 4));
                    if t.open_table(T).and_then(|mut tb| Ok(tb.retain_in(lo..hi, |_, _| false)?)).is_ok() {
                        working.retain(|k, _| !(lo..hi).contains(k));
                    }
                }
            }
            8..=10 => {
                let Some(mut t) = txn.take() else { continue };
                let kind = op % 16 - 8;
                if kind == 1 {
                    t.set_durability(Durability::None);
                }
                let result = if kind == 2 {
                    t.commit_pipelined().map(|p| pending.push((history.len(), p)))
                } else {
                    t.commit()
                };
                // Committed or not, a failed commit may have reached the log:
                // it is a possible state either way.
                history.push(working.clone());
                if result.is_ok() && kind == 0 {
                    durable = history.len() - 1;
                }
                if result.is_err() {
                    working = history[history.len() - 2].clone();
                }
            }
            11 => {
                if let Some(t) = txn.take() {
                    let _ = t.abort();
                }
                working = history.last().cloned().unwrap_or_default();
            }
            12 => {
                drop(txn.take());
                working = history.last().cloned().unwrap_or_default();
                if db.checkpoint().is_ok() {
                    durable = history.len() - 1;
                }
            }
            13 => {
                // A power cut a few operations from now, wherever they fall.
                disk.wal.cut_power_after(disk.wal.ops() + u64::from(arg % 8));
                disk.data.cut_power_after(disk.data.ops() + u64::from(arg >> 4));
            }
            _ => {
                drop(txn.take());
                for (index, p) in pending.drain(..) {
                    if p.is_durable() {
                        durable = durable.max(index);
                    }
                }
                let clean = op % 16 == 14 && disk.data.ops() < u64::MAX;
                drop(db);
                let mode = match arg % 3 {
                    0 => TearMode::DropAll,
                    1 => TearMode::KeepAll,
                    _ => TearMode::Random(u64::from(arg)),
                };
                // A clean reopen still goes through a crash image: whatever
                // the drop synced survives any tearing.
                disk = disk.crashed(mode);
                let _ = clean;
                db = disk.open().expect("reopen after a crash");
                db.check_integrity().expect("integrity after a crash");
                let state = read_state(&db);
                let found = history.iter().rposition(|s| *s == state).expect("recovered a state that was never committed");
                assert!(found >= durable, "lost an acknowledged commit: recovered state {found}, durable {durable}");
                history.truncate(found + 1);
                durable = found;
                working = state;
            }
        }
    }
});
