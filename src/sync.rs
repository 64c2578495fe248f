//! Atomics and cells for the lock-free table: `core`'s in every real build,
//! `loom`'s when built with `RUSTFLAGS="--cfg procnotify_loom"` so that the model checker
//! sees every access.

#[cfg(procnotify_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicU64};

#[cfg(not(procnotify_loom))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicU64};

pub(crate) use core::sync::atomic::Ordering;

/// An `UnsafeCell` whose accesses loom can track.
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(
    #[cfg(procnotify_loom)] loom::cell::UnsafeCell<T>,
    #[cfg(not(procnotify_loom))] core::cell::UnsafeCell<T>,
);

impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> Self {
        #[cfg(procnotify_loom)]
        return Self(loom::cell::UnsafeCell::new(value));
        #[cfg(not(procnotify_loom))]
        return Self(core::cell::UnsafeCell::new(value));
    }

    /// Pointer for a write; loom records a mutable access here.
    pub(crate) fn write_ptr(&self) -> *mut T {
        #[cfg(procnotify_loom)]
        return self.0.with_mut(|ptr| ptr);
        #[cfg(not(procnotify_loom))]
        return self.0.get();
    }

    /// Pointer for a read; loom records a shared access here.
    pub(crate) fn read_ptr(&self) -> *const T {
        #[cfg(procnotify_loom)]
        return self.0.with(|ptr| ptr);
        #[cfg(not(procnotify_loom))]
        return self.0.get().cast_const();
    }
}
