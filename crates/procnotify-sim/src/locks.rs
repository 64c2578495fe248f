//! The simulator's locks: parking_lot's in every build but Miri's.
//!
//! parking_lot because it is compiled from source: under ThreadSanitizer its
//! atomics are instrumented, so TSan sees the simulator's locking (std's
//! `Mutex`/`Condvar` park inside the precompiled std, `.ci/sanitizers.sh`).
//!
//! Under Miri, std's `Mutex` and `Condvar` behind the same interface (no
//! poisoning, `Condvar::wait(&mut guard)`): parking_lot_core's word lock
//! (the lock of a parking bucket) turns its state word back into a pointer
//! in every unlock (`WordLock::unlock` → `queue_head`, an integer-to-pointer
//! cast), which `-Zmiri-strict-provenance` refuses as soon as a thread
//! parks. With std's locks the simulator, and so every test that runs the
//! engine on it, runs under Miri with strict provenance (`.ci/miri.sh`).

#[cfg(not(miri))]
pub(crate) use parking_lot::{Condvar, Mutex, MutexGuard};

#[cfg(miri)]
pub(crate) use std_locks::{Condvar, Mutex, MutexGuard};

#[cfg(miri)]
mod std_locks {
    use std::ops::{Deref, DerefMut};
    use std::sync::PoisonError;

    /// `std::sync::Mutex`, without poisoning (a test hook that panics while
    /// the simulator holds a lock must not poison the machine), as
    /// parking_lot's.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(std::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self(std::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(self.0.lock().unwrap_or_else(PoisonError::into_inner)))
        }

        pub(crate) fn get_mut(&mut self) -> &mut T {
            self.0.get_mut().unwrap_or_else(PoisonError::into_inner)
        }
    }

    /// A held lock. The inner guard is `None` only while [`Condvar::wait`]
    /// has handed it to std's `Condvar`.
    pub(crate) struct MutexGuard<'a, T>(Option<std::sync::MutexGuard<'a, T>>);

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;

        fn deref(&self) -> &T {
            self.0.as_deref().expect("the lock is held")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0.as_deref_mut().expect("the lock is held")
        }
    }

    /// `std::sync::Condvar` with parking_lot's `wait(&mut guard)`.
    #[derive(Debug, Default)]
    pub(crate) struct Condvar(std::sync::Condvar);

    impl Condvar {
        pub(crate) const fn new() -> Self {
            Self(std::sync::Condvar::new())
        }

        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            if let Some(held) = guard.0.take() {
                guard.0 = Some(self.0.wait(held).unwrap_or_else(PoisonError::into_inner));
            }
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }
}
