use std::io;

use std::sync::Arc;

use parking_lot::{Mutex, RwLock, RwLockReadGuard};

use super::StorageBackend;
use super::fault::FaultPlan;
use super::memory::{read_slice, write_slice};

/// What happens, at a simulated crash, to each write and resize that no
/// `sync_data` covered yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TearMode {
    /// Every unsynced operation is lost.
    DropAll,
    /// Every unsynced operation survives.
    KeepAll,
    /// Each unsynced operation independently survives, is lost, or (for a
    /// write) survives as a prefix, decided by a generator seeded with this.
    Random(u64),
}

/// A [`StorageBackend`] that simulates power loss, after LevelDB's fault
/// injection test: it keeps the image that was made durable by `sync_data`
/// apart from the operations since, and at a crash replays those operations as
/// a [`TearMode`] decides.
///
/// It also injects failures: an error at a chosen operation
/// ([`fail_op`](Self::fail_op)), and a power cut after a chosen number of
/// operations ([`cut_power_after`](Self::cut_power_after)), after which every
/// call fails as if the machine were gone.
///
/// Operations are numbered from 0 in call order; `write`, `set_len` and
/// `sync_data` count, reads do not.
///
/// A backend runs on a [`PowerLine`] (its own unless given one): several
/// files on one line can be imaged at one instant.
#[derive(Debug, Default)]
pub struct CrashBackend {
    state: Mutex<State>,
    power: PowerLine,
}

/// The power supply of crash-simulating files. Every write, resize and
/// sync of a file on the line, and every creation, removal and rename in a
/// [`CrashLogDir`](super::CrashLogDir) on it, runs while the line is up;
/// [`at_one_instant`](Self::at_one_instant) holds it still, so the images
/// taken inside are of one moment of a running engine, as a real power
/// cut leaves them. (Imaged one after the other, a data file could hold a
/// flush whose WAL records the directory's image, taken a moment earlier,
/// did not: a state no crash can leave.) Cloning shares the line.
#[derive(Clone, Debug, Default)]
pub struct PowerLine(Arc<RwLock<()>>);

impl PowerLine {
    /// A line of its own.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` while no operation of any file on the line runs.
    pub fn at_one_instant<T>(&self, f: impl FnOnce() -> T) -> T {
        let _still = self.0.write();
        f()
    }

    /// Held by each operation for as long as it runs.
    pub(crate) fn up(&self) -> RwLockReadGuard<'_, ()> {
        self.0.read()
    }
}

#[derive(Debug, Default)]
struct State {
    current: Vec<u8>,
    durable: Vec<u8>,
    unsynced: Vec<Unsynced>,
    plan: FaultPlan,
}

#[derive(Debug)]
enum Unsynced {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

impl CrashBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// A backend whose durable and current image is `bytes`.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self::from_bytes_on(bytes, PowerLine::new())
    }

    /// [`from_bytes`](Self::from_bytes), on `power`.
    pub fn from_bytes_on(bytes: Vec<u8>, power: PowerLine) -> Self {
        let backend = Self::on(power);
        {
            let mut state = backend.state.lock();
            state.durable = bytes.clone();
            state.current = bytes;
        }
        backend
    }

    /// An empty backend on `power`.
    pub fn on(power: PowerLine) -> Self {
        Self {
            state: Mutex::default(),
            power,
        }
    }

    /// Makes operation number `op` fail with an error of `kind` (use
    /// [`io::ErrorKind::StorageFull`] for ENOSPC). The operation has no effect.
    pub fn fail_op(&self, op: u64, kind: io::ErrorKind) {
        self.state.lock().plan.fail_op(op, kind);
    }

    /// Makes operation number `op` panic, as a bug in the caller's I/O path
    /// would.
    pub fn panic_at_op(&self, op: u64) {
        self.state.lock().plan.panic_at_op(op);
    }

    /// Cuts the power once `ops` operations have run: operation number `ops`
    /// and everything after it fails without effect.
    pub fn cut_power_after(&self, ops: u64) {
        self.state.lock().plan.cut_power_after(ops);
    }

    /// How many counted operations have been attempted so far.
    pub fn ops(&self) -> u64 {
        self.state.lock().plan.ops()
    }

    /// The bytes a restart would find if the power failed now.
    pub fn crash_image(&self, mode: TearMode) -> Vec<u8> {
        let state = self.state.lock();
        let mut image = state.durable.clone();
        let mut rng = SplitMix64(match mode {
            TearMode::Random(seed) => seed,
            _ => 0,
        });
        for op in &state.unsynced {
            // 0 = lost, 1 = kept, 2 = torn.
            let fate = match mode {
                TearMode::DropAll => 0,
                TearMode::KeepAll => 1,
                TearMode::Random(_) => rng.next() % 3,
            };
            match (op, fate) {
                (_, 0) => {}
                (Unsynced::SetLen(len), _) => image.resize(*len as usize, 0),
                (Unsynced::Write { offset, data }, 1) => {
                    // Cannot fail: offsets were valid when first written.
                    let _ = write_slice(&mut image, *offset, data);
                }
                (Unsynced::Write { offset, data }, _) => {
                    let keep = (rng.next() % (data.len() as u64 + 1)) as usize;
                    let _ = write_slice(&mut image, *offset, &data[..keep]);
                }
            }
        }
        image
    }

    /// The current (unsynced included) contents.
    pub fn current_image(&self) -> Vec<u8> {
        self.state.lock().current.clone()
    }

    /// The contents made durable by the last successful `sync_data`.
    pub fn durable_image(&self) -> Vec<u8> {
        self.state.lock().durable.clone()
    }
}

impl StorageBackend for CrashBackend {
    fn len(&self) -> io::Result<u64> {
        Ok(self.state.lock().current.len() as u64)
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        read_slice(&self.state.lock().current, offset, buf)
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let _up = self.power.up();
        let mut state = self.state.lock();
        state.plan.begin_op()?;
        write_slice(&mut state.current, offset, data)?;
        state.unsynced.push(Unsynced::Write {
            offset,
            data: data.to_vec(),
        });
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let _up = self.power.up();
        let mut state = self.state.lock();
        state.plan.begin_op()?;
        state.current.resize(len as usize, 0);
        state.unsynced.push(Unsynced::SetLen(len));
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let _up = self.power.up();
        let mut state = self.state.lock();
        state.plan.begin_op()?;
        state.durable = state.current.clone();
        state.unsynced.clear();
        Ok(())
    }
}

/// A tiny deterministic generator (SplitMix64), so crash images are
/// reproducible from a seed without a dependency.
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsynced_writes_follow_the_tear_mode() {
        let b = CrashBackend::new();
        b.write(0, b"durable").unwrap();
        b.sync_data().unwrap();
        b.write(0, b"VOLATILE").unwrap();
        assert_eq!(b.crash_image(TearMode::DropAll), b"durable");
        assert_eq!(b.crash_image(TearMode::KeepAll), b"VOLATILE");
        for seed in 0..32 {
            let image = b.crash_image(TearMode::Random(seed));
            // Lost, kept, or a prefix of the write over the durable bytes.
            let ok = (0..=8).any(|k| {
                let mut expect = b"durable".to_vec();
                write_slice(&mut expect, 0, &b"VOLATILE"[..k]).unwrap();
                image == expect
            });
            assert!(ok, "seed {seed}: unexpected image {image:?}");
        }
    }

    #[test]
    fn power_cut_fails_every_later_operation() {
        let b = CrashBackend::new();
        b.cut_power_after(1);
        b.write(0, b"a").unwrap();
        assert!(b.sync_data().is_err());
        assert!(b.write(0, b"b").is_err());
        assert_eq!(b.current_image(), b"a");
        assert_eq!(b.crash_image(TearMode::DropAll), b"");
    }
}
