//! A data file and a WAL directory that lose power together.

use std::sync::Arc;

use super::{CrashBackend, CrashLogDir, PowerLine, TearMode};

/// A crash-simulating data file and WAL directory on one [`PowerLine`]:
/// what a restart finds ([`crashed`](Self::crashed)) is the two files'
/// state at one instant, even while an engine on them keeps writing from
/// several threads.
///
/// ```
/// use sluicedb::engine::{Engine, EngineOptions};
/// use sluicedb::io::{CrashDisk, TearMode};
///
/// let disk = CrashDisk::new();
/// let db = Engine::open(disk.data.clone(), disk.wal.clone(), EngineOptions::default())?;
/// let restart = disk.crashed(TearMode::DropAll);
/// drop(db);
/// let again = Engine::open(restart.data.clone(), restart.wal.clone(), EngineOptions::default())?;
/// # drop(again);
/// # Ok::<(), sluicedb::StorageError>(())
/// ```
#[derive(Clone, Debug)]
pub struct CrashDisk {
    /// The data file.
    pub data: Arc<CrashBackend>,
    /// The WAL's directory.
    pub wal: CrashLogDir,
}

impl Default for CrashDisk {
    fn default() -> Self {
        Self::new()
    }
}

impl CrashDisk {
    /// An empty disk.
    pub fn new() -> Self {
        let power = PowerLine::new();
        Self {
            data: Arc::new(CrashBackend::on(power.clone())),
            wal: CrashLogDir::on(power),
        }
    }

    /// What a restart finds if the power fails now: both files' images of
    /// one instant, each write no sync covered dealt with as `mode` says.
    pub fn crashed(&self, mode: TearMode) -> CrashDisk {
        let power = PowerLine::new();
        self.wal.power_line().at_one_instant(|| CrashDisk {
            data: Arc::new(CrashBackend::from_bytes_on(self.data.crash_image(mode), power.clone())),
            wal: self.wal.crash_onto(mode, power),
        })
    }

    /// A copy of everything written so far, synced or not.
    pub fn copy(&self) -> CrashDisk {
        self.crashed(TearMode::KeepAll)
    }

    /// Cuts the power now: every later write, resize or sync of either file,
    /// and every creation, removal or rename of a WAL segment, fails
    /// without effect.
    pub fn cut_power(&self) {
        self.wal.power_line().at_one_instant(|| {
            self.wal.cut_power_after(self.wal.ops());
            self.data.cut_power_after(self.data.ops());
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::io::{LogDir, StorageBackend};

    fn last_number(bytes: &[u8]) -> u64 {
        bytes
            .get(bytes.len().saturating_sub(8)..)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    }

    /// A writer that syncs each number to the log before it writes it to the
    /// data file (as the engine syncs records before a flush): no image may
    /// show the data file ahead of the log. Imaged one file after the
    /// other, the images of a running writer did.
    #[test]
    fn images_are_of_one_instant_while_a_writer_runs() {
        let disk = CrashDisk::new();
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let log = disk.wal.create("log").unwrap();
                for n in 1u64.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    log.write((n - 1) * 8, &n.to_le_bytes()).unwrap();
                    log.sync_data().unwrap();
                    disk.data.write(0, &n.to_le_bytes()).unwrap();
                    disk.data.sync_data().unwrap();
                }
            });
            while disk.data.durable_image().is_empty() {
                std::thread::yield_now();
            }
            let mut newest = 0;
            let mut ahead = Vec::new();
            for _ in 0..2000 {
                let image = disk.crashed(TearMode::DropAll);
                let data = last_number(&image.data.durable_image());
                let log = image.wal.file_bytes("log").map_or(0, |b| last_number(&b));
                if data > log {
                    ahead.push((data, log));
                }
                newest = newest.max(data);
            }
            stop.store(true, Ordering::Relaxed);
            assert!(ahead.is_empty(), "the data file ahead of the log (data, log): {ahead:?}");
            assert!(newest > 1, "the writer stopped");
        });
    }

    #[test]
    fn a_power_cut_stops_both_files() {
        let disk = CrashDisk::new();
        let log = disk.wal.create("log").unwrap();
        disk.cut_power();
        assert!(log.write(0, b"x").is_err());
        assert!(disk.data.write(0, b"x").is_err());
        assert!(disk.wal.create("other").is_err());
    }
}
