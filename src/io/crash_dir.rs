//! A fault-injecting [`LogDir`]: every file is a [`CrashBackend`], and one
//! plan, counted across all files, injects errors, panics and a power cut.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

use parking_lot::Mutex;

use super::fault::FaultPlan;
use super::{CrashBackend, LogDir, PowerLine, StorageBackend, TearMode};

/// A directory of crash-simulating log files. Cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct CrashLogDir {
    files: Arc<Mutex<BTreeMap<String, Arc<CrashBackend>>>>,
    plan: Arc<Mutex<FaultPlan>>,
    /// While set, every `remove` fails with this kind and has no effect.
    remove_error: Arc<Mutex<Option<io::ErrorKind>>>,
    /// What [`LogDir::spare_segments`] answers (see [`Self::with_spares`]).
    spares: bool,
    /// The line its files and its creations, removals and renames run on.
    power: PowerLine,
}

impl CrashLogDir {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty directory on `power` (see [`PowerLine`]).
    pub fn on(power: PowerLine) -> Self {
        Self {
            power,
            ..Self::default()
        }
    }

    /// This directory, answering `spares` to [`LogDir::spare_segments`].
    /// Off by default: a journal with spares writes them from a thread of
    /// its own, so the numbered operations a test counts would no longer
    /// follow one thread's order. Kept by [`crash`](Self::crash)'s image.
    pub fn with_spares(mut self, spares: bool) -> Self {
        self.spares = spares;
        self
    }

    /// Makes directory-wide operation `op` fail with `kind` (for ENOSPC use
    /// [`io::ErrorKind::StorageFull`]).
    pub fn fail_op(&self, op: u64, kind: io::ErrorKind) {
        self.plan.lock().fail_op(op, kind);
    }

    /// While `kind` is `Some`, every `remove` fails with it and leaves the
    /// file in place (a failed unlink: EACCES, EBUSY, EIO); `None` heals.
    /// Independent of the numbered operations, so tests need not predict
    /// when background threads delete.
    pub fn fail_removes(&self, kind: Option<io::ErrorKind>) {
        *self.remove_error.lock() = kind;
    }

    /// Makes operation `op` panic (a bug in the thread doing the I/O).
    pub fn panic_at_op(&self, op: u64) {
        self.plan.lock().panic_at_op(op);
    }

    /// Cuts the power once `ops` operations have run.
    pub fn cut_power_after(&self, ops: u64) {
        self.plan.lock().cut_power_after(ops);
    }

    /// Operations attempted so far.
    pub fn ops(&self) -> u64 {
        self.plan.lock().ops()
    }

    /// The directory a restart would find if the power failed now: file
    /// creations and removals are durable (they synced the directory), file
    /// contents follow `mode`. Each file gets its own tear decisions. The
    /// image runs on a line of its own.
    pub fn crash(&self, mode: TearMode) -> CrashLogDir {
        self.crash_onto(mode, PowerLine::new())
    }

    /// [`crash`](Self::crash), the image on `power`. Of one instant only
    /// inside [`PowerLine::at_one_instant`] of this directory's line.
    pub fn crash_onto(&self, mode: TearMode, power: PowerLine) -> CrashLogDir {
        let files = self
            .files
            .lock()
            .iter()
            .enumerate()
            .map(|(i, (name, file))| {
                let mode = match mode {
                    TearMode::Random(seed) => TearMode::Random(seed.wrapping_mul(31).wrapping_add(i as u64)),
                    other => other,
                };
                let image = CrashBackend::from_bytes_on(file.crash_image(mode), power.clone());
                (name.clone(), Arc::new(image))
            })
            .collect();
        CrashLogDir {
            files: Arc::new(Mutex::new(files)),
            plan: Arc::default(),
            remove_error: Arc::default(),
            spares: self.spares,
            power,
        }
    }

    /// The line this directory runs on.
    pub fn power_line(&self) -> &PowerLine {
        &self.power
    }

    /// A file's current bytes (for tests that damage or inspect segments).
    pub fn file_bytes(&self, name: &str) -> Option<Vec<u8>> {
        self.files.lock().get(name).map(|f| f.current_image())
    }

    /// Replaces a file's contents, durably (for tests that plant damage).
    pub fn put_file(&self, name: &str, bytes: Vec<u8>) {
        self.files
            .lock()
            .insert(name.to_string(), Arc::new(CrashBackend::from_bytes_on(bytes, self.power.clone())));
    }
}

/// One file of a [`CrashLogDir`], subject to the directory's plan.
struct CrashLogFile {
    file: Arc<CrashBackend>,
    plan: Arc<Mutex<FaultPlan>>,
}

impl StorageBackend for CrashLogFile {
    fn len(&self) -> io::Result<u64> {
        self.file.len()
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read(offset, buf)
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.plan.lock().begin_op()?;
        self.file.write(offset, data)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.plan.lock().begin_op()?;
        self.file.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.plan.lock().begin_op()?;
        self.file.sync_data()
    }
}

impl LogDir for CrashLogDir {
    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.files.lock().keys().cloned().collect())
    }

    fn create(&self, name: &str) -> io::Result<Box<dyn StorageBackend>> {
        let _up = self.power.up();
        self.plan.lock().begin_op()?;
        let mut files = self.files.lock();
        if files.contains_key(name) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{name} exists")));
        }
        let file = Arc::new(CrashBackend::on(self.power.clone()));
        files.insert(name.to_string(), file.clone());
        Ok(Box::new(CrashLogFile {
            file,
            plan: self.plan.clone(),
        }))
    }

    fn open(&self, name: &str) -> io::Result<Box<dyn StorageBackend>> {
        let file = self
            .files
            .lock()
            .get(name)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no log file {name}")))?;
        Ok(Box::new(CrashLogFile {
            file,
            plan: self.plan.clone(),
        }))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        if let Some(kind) = *self.remove_error.lock() {
            return Err(io::Error::new(kind, format!("injected failure removing {name}")));
        }
        let _up = self.power.up();
        self.plan.lock().begin_op()?;
        self.files
            .lock()
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no log file {name}")))
    }

    fn spare_segments(&self) -> bool {
        self.spares
    }

    /// Durable when it returns, as `create` and `remove` are.
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let _up = self.power.up();
        self.plan.lock().begin_op()?;
        let mut files = self.files.lock();
        let file = files
            .remove(from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no log file {from}")))?;
        files.insert(to.to_string(), file);
        Ok(())
    }
}
