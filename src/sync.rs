//! The synchronization primitives of the code that runs under a schedule
//! explorer (today: the WAL journal, whose durable watermark is the one
//! promise every commit rests on).
//!
//! Normally these are `parking_lot`'s locks and `std`'s atomics and threads.
//! With the test-only `shuttle` feature they are [shuttle]'s instead, so
//! `tests/wal_schedules.rs` can run the real journal under a scheduler that
//! picks every thread switch (at random, or by PCT) and reports
//! deadlocks and lost wake-ups. Shuttle's locks return guards by value and
//! can be poisoned; the wrappers below give them `parking_lot`'s shape (wait
//! through `&mut guard`, no poisoning), so the journal's code is the same
//! under both.
//!
//! [shuttle]: https://github.com/awslabs/shuttle

#[cfg(not(feature = "shuttle"))]
pub(crate) use parking_lot::{Condvar, Mutex};
#[cfg(not(feature = "shuttle"))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64};
#[cfg(not(feature = "shuttle"))]
pub(crate) use std::thread;

#[cfg(feature = "shuttle")]
pub(crate) use shuttle::sync::atomic::{AtomicBool, AtomicU64};
#[cfg(feature = "shuttle")]
pub(crate) use shuttle::thread;
#[cfg(feature = "shuttle")]
pub(crate) use shuttle_locks::{Condvar, Mutex};

#[cfg(feature = "shuttle")]
mod shuttle_locks {
    use std::ops::{Deref, DerefMut};
    use std::sync::PoisonError;
    use std::time::Instant;

    /// A shuttle mutex with `parking_lot`'s interface.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(shuttle::sync::Mutex<T>);

    /// Holds the lock. The inner guard is taken out only for the length of
    /// a condition-variable wait, which puts it back before returning.
    pub(crate) struct MutexGuard<'a, T>(Option<shuttle::sync::MutexGuard<'a, T>>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(shuttle::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(self.0.lock().unwrap_or_else(PoisonError::into_inner)))
        }

        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            match self.0.try_lock() {
                Ok(guard) => Some(MutexGuard(Some(guard))),
                Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(MutexGuard(Some(poisoned.into_inner()))),
                Err(std::sync::TryLockError::WouldBlock) => None,
            }
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.0.as_ref().expect("guard present outside a wait")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0.as_mut().expect("guard present outside a wait")
        }
    }

    /// A shuttle condition variable with `parking_lot`'s interface. Shuttle
    /// never lets a timed wait time out, so a timed wait is a plain wait:
    /// code that relies on a timeout to make progress deadlocks under the
    /// explorer, which is the point.
    #[derive(Debug, Default)]
    pub(crate) struct Condvar(shuttle::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Self(shuttle::sync::Condvar::new())
        }

        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let inner = guard.0.take().expect("guard present outside a wait");
            guard.0 = Some(self.0.wait(inner).unwrap_or_else(PoisonError::into_inner));
        }

        pub(crate) fn wait_until<T>(&self, guard: &mut MutexGuard<'_, T>, deadline: Instant) {
            let inner = guard.0.take().expect("guard present outside a wait");
            let timeout = deadline.saturating_duration_since(Instant::now());
            let (inner, _) = self
                .0
                .wait_timeout(inner, timeout)
                .unwrap_or_else(PoisonError::into_inner);
            guard.0 = Some(inner);
        }

        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }
}
