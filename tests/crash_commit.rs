//! Crash at every write and sync of a sequence of commits: the reopened file
//! holds exactly the last commit whose slot was synced, and passes its
//! integrity check, whatever happened to the unsynced writes.

mod common;

use std::io;
use std::sync::Arc;

use common::{Model, TREE, check, key, numeric, read_all, value};
use parking_lot::Mutex;
use sluicedb::btree::{TreeStore, TreeStoreOptions};
use sluicedb::io::{CrashBackend, StorageBackend, TearMode};

/// Records which counted operation wrote a commit slot.
struct Recording {
    inner: Arc<CrashBackend>,
    ops: Mutex<Vec<bool>>,
}

impl StorageBackend for Recording {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read(offset, buf)
    }
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        // Slots live at 1024 and 2048 in page 0 and are 64 bytes long.
        self.ops.lock().push(offset < 4096 && data.len() == 64);
        self.inner.write(offset, data)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.ops.lock().push(false);
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.ops.lock().push(false);
        self.inner.sync_data()
    }
}

/// Puts (`Some`) and deletes (`None`) of one commit.
type Changes = Vec<(u16, Option<Vec<u8>>)>;

/// One step of the workload: a change, then a durable or non-durable commit.
fn steps() -> Vec<(Changes, bool)> {
    let big = |k: u16| if k.is_multiple_of(50) { 5000 } else { 100 };
    vec![
        ((0..300).map(|k| (k, Some(value(k.into(), big(k))))).collect(), true),
        (
            (0..100)
                .step_by(2)
                .map(|k| (k, None))
                .chain((200..250).map(|k| (k, Some(value(9, 20)))))
                .collect(),
            false,
        ),
        ((300..600).map(|k| (k, Some(value(k.into(), big(k))))).collect(), true),
        ((0..400).map(|k| (k, None)).collect(), true),
        ((1000..1010).map(|k| (k, Some(value(k.into(), 3000)))).collect(), true),
    ]
}

/// Runs the workload until the backend fails. Returns the model of each
/// step's commit and the index of the last commit that returned `Ok`.
fn run(backend: Arc<Recording>) -> (Vec<Model>, Option<usize>) {
    let mut models = Vec::new();
    let mut model = Model::new();
    let mut acked = None;
    let Ok(store) = TreeStore::create(backend, 1, TreeStoreOptions::default()) else {
        return (models, acked);
    };
    for (i, (changes, durable)) in steps().into_iter().enumerate() {
        for (k, v) in &changes {
            match v {
                Some(v) => model.insert(*k, v.clone()),
                None => model.remove(k),
            };
        }
        models.push(model.clone());
        let Ok(mut writer) = store.writer() else {
            break;
        };
        let keys: Vec<[u8; 2]> = changes.iter().map(|(k, _)| key(*k)).collect();
        let ops: Vec<(&[u8], Option<&[u8]>)> = keys
            .iter()
            .zip(&changes)
            .map(|(k, (_, v))| (&k[..], v.as_deref()))
            .collect();
        if writer.apply(TREE, numeric, &ops).is_err() {
            break;
        }
        let result = if durable {
            writer.commit(0).map(|_| ())
        } else {
            writer.non_durable_commit().map(|_| ())
        };
        if result.is_err() {
            break;
        }
        if durable {
            acked = Some(i);
        }
    }
    (models, acked)
}

#[test]
fn crash_at_every_operation_recovers_the_last_synced_commit() {
    let clean = Arc::new(Recording {
        inner: Arc::new(CrashBackend::new()),
        ops: Mutex::new(Vec::new()),
    });
    let (models, acked) = run(clean.clone());
    assert_eq!(acked, Some(4));
    let log = clean.ops.lock().clone();
    // The op index of each durable commit's slot write, in commit order;
    // creation writes no 64-byte slot (it writes page 0 whole).
    let slot_writes: Vec<usize> = log.iter().enumerate().filter(|(_, s)| **s).map(|(i, _)| i).collect();
    let durable_steps: Vec<usize> = steps()
        .iter()
        .enumerate()
        .filter(|(_, s)| s.1)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(slot_writes.len(), durable_steps.len());

    let mut checked = 0;
    for cut in 0..=log.len() as u64 {
        let crash = Arc::new(CrashBackend::new());
        crash.cut_power_after(cut);
        let backend = Arc::new(Recording {
            inner: crash.clone(),
            ops: Mutex::new(Vec::new()),
        });
        run(backend);
        // Which commit may the crash leave? `sure` = the last one whose slot
        // sync completed; `maybe` = one whose slot write completed unsynced.
        let mut sure = None;
        let mut maybe = None;
        for (&op, &step) in slot_writes.iter().zip(&durable_steps) {
            if cut > op as u64 + 1 {
                sure = Some(step);
            } else if cut == op as u64 + 1 {
                maybe = Some(step);
            }
        }
        for (m, mode) in [
            TearMode::DropAll,
            TearMode::KeepAll,
            TearMode::Random(cut),
            TearMode::Random(cut + 1000),
        ]
        .into_iter()
        .enumerate()
        {
            let image = crash.crash_image(mode);
            if image.is_empty() {
                assert!(sure.is_none(), "cut {cut}: a synced commit vanished");
                continue;
            }
            let store = match TreeStore::open(CrashBackend::from_bytes(image), TreeStoreOptions::default()) {
                Ok(store) => store,
                // Creation itself was cut short: nothing was ever acknowledged.
                Err(_) if cut <= 3 => continue,
                Err(e) => panic!("cut {cut} mode {m}: reopen failed: {e}"),
            };
            check(&store);
            let state = read_all(&store.snapshot());
            let want_sure = sure.map_or_else(Model::new, |s| models[s].clone());
            let ok = state == want_sure || (mode != TearMode::DropAll && maybe.is_some_and(|s| state == models[s]));
            assert!(
                ok,
                "cut {cut} mode {mode:?}: recovered {} keys, expected commit {sure:?} (or {maybe:?})",
                state.len()
            );
            checked += 1;
        }
    }
    assert!(checked > 4 * 50, "only {checked} crash images checked");
}
