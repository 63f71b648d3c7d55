//! The inserter thread: moves a big commit's pending run (`engine::pending`)
//! into the active memtable while the committer goes on.
//!
//! One job at a time: a committer hands a job over only once the previous
//! one is done ([`Inserter::wait_idle`] under the commit lock), so the
//! memtable still has a single writer and jobs finish in commit order.
//!
//! A job that fails (a user comparator panicking) is reported to whoever
//! waits next; the engine poisons itself then. Readers are unaffected
//! meanwhile: the pending run still answers for the whole commit.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::core::{insert_ops, panic_message};
use super::memtable::Memtable;
use super::pending::PendingRun;

/// What the committer hands over.
pub(crate) struct Job {
    pub(crate) mem: Arc<Memtable>,
    pub(crate) run: Arc<PendingRun>,
}

#[derive(Default)]
struct Slot {
    job: Option<Job>,
    /// A job taken and not finished yet.
    busy: bool,
    /// The sequence of the last job handed over (queued, running or done).
    submitted_seq: u64,
    /// Why a job failed; kept until the engine has poisoned itself.
    failed: Option<String>,
    shutdown: bool,
}

#[derive(Default)]
pub(crate) struct Inserter {
    slot: Mutex<Slot>,
    /// Wakes the thread for a job or for shutdown.
    work: Condvar,
    /// Signalled whenever a job finishes.
    idle: Condvar,
}

impl Inserter {
    /// Hands `job` over. REQUIRES: the commit lock, and [`wait_idle`]
    /// returned since the last hand-off.
    ///
    /// [`wait_idle`]: Self::wait_idle
    /// `Err` with the job when the thread has been told to stop (the
    /// engine's handle is gone and a transaction that outlived it commits):
    /// the caller inserts it itself. A job taken before that is done before
    /// the thread stops.
    pub(crate) fn submit(&self, job: Job) -> Result<(), Job> {
        let mut slot = self.slot.lock();
        if slot.shutdown {
            return Err(job);
        }
        debug_assert!(slot.job.is_none() && !slot.busy, "one job at a time");
        slot.submitted_seq = job.run.seq;
        slot.job = Some(job);
        self.work.notify_one();
        Ok(())
    }

    /// Waits until no job is queued or running; `Err` with the cause if one
    /// failed.
    pub(crate) fn wait_idle(&self) -> Result<(), String> {
        let mut slot = self.slot.lock();
        while slot.job.is_some() || slot.busy {
            self.idle.wait(&mut slot);
        }
        match &slot.failed {
            Some(cause) => Err(cause.clone()),
            None => Ok(()),
        }
    }

    /// Waits until commit `seq` is in the memtable, if it was handed over:
    /// until no job of `seq` or below is queued or running. Needs no lock:
    /// jobs finish in commit order, so a job queued or running with a later
    /// sequence means `seq`'s is done. `Err` with the cause if a job failed.
    pub(crate) fn wait_inserted(&self, seq: u64) -> Result<(), String> {
        let mut slot = self.slot.lock();
        while (slot.job.is_some() || slot.busy) && slot.submitted_seq <= seq {
            self.idle.wait(&mut slot);
        }
        match &slot.failed {
            Some(cause) => Err(cause.clone()),
            None => Ok(()),
        }
    }

    /// Asks the thread to stop once it has finished any job it holds.
    pub(crate) fn shutdown(&self) {
        self.slot.lock().shutdown = true;
        self.work.notify_one();
    }

    /// The thread's loop. `finished` is called after each job, with the
    /// cause if it failed, before anyone waiting for idleness hears of it.
    pub(crate) fn run(&self, finished: impl Fn(&Arc<PendingRun>, Option<&str>)) {
        loop {
            let job = {
                let mut slot = self.slot.lock();
                loop {
                    if let Some(job) = slot.job.take() {
                        slot.busy = true;
                        break job;
                    }
                    if slot.shutdown {
                        return;
                    }
                    self.work.wait(&mut slot);
                }
            };
            let failure = catch_unwind(AssertUnwindSafe(|| insert_ops(&job.mem, job.run.seq, job.run.runs())))
                .err()
                .map(|panic| {
                    format!(
                        "a key comparator panicked while commit {} was inserted into the memtable: {}",
                        job.run.seq,
                        panic_message(&*panic)
                    )
                });
            finished(&job.run, failure.as_deref());
            drop(job);
            let mut slot = self.slot.lock();
            slot.busy = false;
            if let Some(cause) = failure {
                slot.failed.get_or_insert(cause);
            }
            self.idle.notify_all();
        }
    }
}
