//! Atomics and cells for the lock-free code: `core`'s in every real build,
//! `loom`'s when built with `RUSTFLAGS="--cfg procnotify_loom"` so that the
//! model checker sees every access.
//!
//! [`UnsafeCell`] only hands out its pointer inside a closure, so under loom
//! every access to the contents happens inside loom's tracked window (a
//! pointer that escaped the closure would be invisible to its race detector).

#[cfg(procnotify_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize};

#[cfg(not(procnotify_loom))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize};

pub(crate) use core::sync::atomic::Ordering;

/// An `UnsafeCell` whose accesses loom can track.
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(
    #[cfg(procnotify_loom)] loom::cell::UnsafeCell<T>,
    #[cfg(not(procnotify_loom))] core::cell::UnsafeCell<T>,
);

impl<T> UnsafeCell<T> {
    /// `const` in real builds, for a `static` [`DriverCell`](crate::DriverCell).
    #[cfg(not(procnotify_loom))]
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    /// Loom's cells are created inside a model, never in a `static`.
    #[cfg(procnotify_loom)]
    pub(crate) fn new(value: T) -> Self {
        Self(loom::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a pointer for shared (read) access; loom records a
    /// read for the duration of `f`.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        #[cfg(procnotify_loom)]
        return self.0.with(f);
        #[cfg(not(procnotify_loom))]
        return f(self.0.get().cast_const());
    }

    /// Runs `f` with a pointer for exclusive (write) access; loom records a
    /// write for the duration of `f`.
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        #[cfg(procnotify_loom)]
        return self.0.with_mut(f);
        #[cfg(not(procnotify_loom))]
        return f(self.0.get());
    }
}
