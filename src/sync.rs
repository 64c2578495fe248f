//! Atomics and cells for the lock-free table: `core`'s in every real build,
//! `loom`'s when built with `RUSTFLAGS="--cfg loom"` so that the model checker
//! sees every access.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicU64};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicU64};

pub(crate) use core::sync::atomic::Ordering;

/// An `UnsafeCell` whose accesses loom can track.
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(#[cfg(loom)] loom::cell::UnsafeCell<T>, #[cfg(not(loom))] core::cell::UnsafeCell<T>);

impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> Self {
        #[cfg(loom)]
        return Self(loom::cell::UnsafeCell::new(value));
        #[cfg(not(loom))]
        return Self(core::cell::UnsafeCell::new(value));
    }

    /// Pointer for a write; loom records a mutable access here.
    pub(crate) fn write_ptr(&self) -> *mut T {
        #[cfg(loom)]
        return self.0.with_mut(|ptr| ptr);
        #[cfg(not(loom))]
        return self.0.get();
    }

    /// Pointer for a read; loom records a shared access here.
    pub(crate) fn read_ptr(&self) -> *const T {
        #[cfg(loom)]
        return self.0.with(|ptr| ptr);
        #[cfg(not(loom))]
        return self.0.get().cast_const();
    }
}
