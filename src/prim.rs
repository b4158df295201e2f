//! The synchronization primitives of the library's concurrent protocols (listener removal, handle
//! release, the synchronizer's inbox): parking_lot and std normally, loom's under `--cfg loom`, so
//! `scripts/loom.sh` model-checks the real code rather than a copy of it.
//!
//! The API is parking_lot's (a guard from `lock()`, `Condvar::wait(&mut guard)`) in both builds.

#[cfg(not(loom))]
pub(crate) use parking_lot::{Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::{atomic, Arc};
#[cfg(not(loom))]
pub(crate) use std::thread;

#[cfg(loom)]
pub(crate) use loom::sync::{atomic, Arc};
#[cfg(loom)]
pub(crate) use loom::thread;
#[cfg(loom)]
pub(crate) use loom_impl::{Condvar, Mutex, MutexGuard};

#[cfg(loom)]
mod loom_impl {
    use std::ops::{Deref, DerefMut};

    /// loom's mutex with parking_lot's API (no poisoning).
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    /// A held lock; `Option` so that `Condvar::wait` can hand the inner guard to loom and back.
    pub(crate) struct MutexGuard<'a, T>(Option<loom::sync::MutexGuard<'a, T>>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(self.0.lock().unwrap()))
        }
        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock().ok().map(|g| MutexGuard(Some(g)))
        }
        pub(crate) fn into_inner(self) -> T {
            self.0.into_inner().unwrap()
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.0.as_ref().expect("guard present")
        }
    }
    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0.as_mut().expect("guard present")
        }
    }

    /// loom's condition variable with parking_lot's API. A timed wait is an untimed one that may
    /// also report a timeout: loom explores wake-ups, not time.
    #[derive(Debug, Default)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    /// Whether a timed wait ended by timeout (parking_lot's `WaitTimeoutResult`).
    pub(crate) struct WaitTimeoutResult(bool);
    impl WaitTimeoutResult {
        pub(crate) fn timed_out(&self) -> bool {
            self.0
        }
    }

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar(loom::sync::Condvar::new())
        }
        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let inner = guard.0.take().expect("guard present");
            guard.0 = Some(self.0.wait(inner).unwrap());
        }
        pub(crate) fn wait_for<T>(&self, guard: &mut MutexGuard<'_, T>, _timeout: std::time::Duration) -> WaitTimeoutResult {
            self.wait(guard);
            WaitTimeoutResult(false)
        }
        pub(crate) fn notify_one(&self) -> bool {
            self.0.notify_one();
            true
        }
        pub(crate) fn notify_all(&self) -> usize {
            self.0.notify_all();
            0
        }
    }
}

#[cfg(all(test, loom))]
mod tests {
    use super::*;

    /// The wrapper's wait hands the lock back: a value set under the lock is seen after a wake-up.
    #[test]
    fn loom_condvar_handoff() {
        loom::model(|| {
            let pair = Arc::new((Mutex::new(false), Condvar::new()));
            let other = pair.clone();
            let t = thread::spawn(move || {
                *other.0.lock() = true;
                other.1.notify_all();
            });
            let mut ready = pair.0.lock();
            while !*ready {
                pair.1.wait(&mut ready);
            }
            drop(ready);
            t.join().unwrap();
        });
    }
}
