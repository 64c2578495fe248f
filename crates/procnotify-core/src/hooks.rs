//! [`Hooks`]: what a driver plugs into the engine, in the shape of Linux's
//! `cpuhp_setup_state`: its per-processor type and what to do at each step
//! of a processor's arrival.

use core::mem::MaybeUninit;

use crate::values::{NtStatus, ProcNumber};

/// The processor a hook runs for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cpu {
    /// System-wide index (`NtNumber`).
    pub index: u32,
    /// Group and group-relative number (`ProcNumber`).
    pub number: ProcNumber,
}

/// A driver's per-processor type and its bring-up hooks.
///
/// The engine calls the hooks from the processor change callback, one at a
/// time (never concurrently with each other), at `PASSIVE_LEVEL` or
/// `APC_LEVEL` on Windows. They must not block on anything that needs normal
/// kernel APCs and must not panic (a panic is a bugcheck).
///
/// For each index, [`Hooks::init`] runs at most once per table: the value
/// then stays in place, readable by lock-free readers, until the driver
/// unloads (processors are never removed on Windows, and a failed add reuses
/// its index).
///
/// **Do not unload the driver from inside a hook.** Unloading deregisters
/// the callback, which waits for the running callback to return: the hook
/// would wait for itself forever. The engine refuses instead when the OS
/// layer can tell threads apart ([`Os::current_thread`](crate::Os::current_thread):
/// Windows and the simulator can): [`DriverCell::unload`](crate::DriverCell::unload)
/// returns `false` and the driver stays loaded, and dropping a
/// [`Driver`](crate::Driver) there leaks it, still registered; both log an
/// error. An OS layer that cannot tell deadlocks.
///
/// ```
/// use core::mem::MaybeUninit;
/// use core::sync::atomic::{AtomicU64, Ordering};
/// use procnotify_core::{Cpu, Hooks, NtStatus};
///
/// /// Per-processor packet counters.
/// struct Counters;
///
/// impl Hooks for Counters {
///     type Value = AtomicU64;
///     fn init<'a>(&self, _cpu: Cpu, place: &'a mut MaybeUninit<AtomicU64>) -> Result<&'a mut AtomicU64, NtStatus> {
///         Ok(place.write(AtomicU64::new(0)))
///     }
/// }
/// ```
pub trait Hooks: Sync + Sized {
    /// What each processor gets. Readers share it at any IRQL, so it must be
    /// `Sync`; it is dropped on the unloading thread, so it must be `Send`.
    /// Keep it to non-paged, fixed-size data (atomics, a `KDPC`, ...).
    type Value: Send + Sync;

    /// First `AddStart` (or an adopted `AddComplete`) for `cpu`: initialise
    /// the value in place and return the reference `place.write(..)` gave
    /// (returning anything else is refused with `STATUS_UNSUCCESSFUL`). The
    /// value's address never changes afterwards, so it may hold a `KDPC`.
    ///
    /// **What `place` holds when `init` fails.** The engine owns the value
    /// only once `init` returned `Ok` with `place`'s own reference; in every
    /// other case (`Err`, another reference, a panic on a host) it treats
    /// `place` as uninitialised: it never drops what is there, and the next
    /// `init` for the index writes over it. So write `place` last: decide
    /// everything that can fail first. A hook that did write a value and must
    /// then fail drops it itself (`place.assume_init_drop()`) before
    /// returning `Err`; one that does not leaks it (a leak, never undefined
    /// behaviour: nothing reads or drops a value the engine does not own).
    ///
    /// # Errors
    ///
    /// A failing status vetoes the `AddStart`; the index stays without a value
    /// and a later `AddStart` calls `init` again.
    fn init<'a>(&self, cpu: Cpu, place: &'a mut MaybeUninit<Self::Value>) -> Result<&'a mut Self::Value, NtStatus>;

    /// Every accepted `AddStart`, after `init` for the first: the processor
    /// is about to start and may run code that reads the value before
    /// `AddComplete`. Runs before the slot is marked `Starting`.
    ///
    /// # Errors
    ///
    /// A failing status vetoes the `AddStart`; the slot stays `Vacant`.
    fn starting(&self, cpu: Cpu, value: &Self::Value) -> Result<(), NtStatus> {
        let _ = (cpu, value);
        Ok(())
    }

    /// `AddComplete`: the processor is running. Runs after the slot is marked
    /// `Online`, so work it schedules on the processor sees that state.
    fn online(&self, cpu: Cpu, value: &Self::Value) {
        let _ = (cpu, value);
    }

    /// `AddFailure` for a processor that was `Starting`: it never ran.
    /// `status` is the reason the kernel gave. Runs after the slot is marked
    /// `Vacant`. The value stays (see the type's documentation).
    fn failed(&self, cpu: Cpu, value: &Self::Value, status: NtStatus) {
        let _ = (cpu, value, status);
    }
}
