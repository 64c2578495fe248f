//! [`Os`]: the operating system as the engine needs it, and [`Sink`], what it
//! delivers notifications to. Two implementations exist: the Windows one
//! (`procnotify-wdk`, over wdk-sys) and the simulator's (`procnotify-sim`).

use core::fmt;
use core::num::NonZeroUsize;
use core::ptr::NonNull;

use crate::identity::Identity;
use crate::pool::PoolAllocator;
use crate::values::{Level, NtStatus, RawNotification};

/// What the OS's processor change callback delivers to.
pub trait Sink: Sync {
    /// Handles one notification. Returns the status to write to
    /// `*OperationStatus`: `Some` only to veto an `AddStart`; on `None` the
    /// OS layer leaves `*OperationStatus` untouched.
    fn on_notification(&self, notification: RawNotification) -> Option<NtStatus>;
}

/// The operating system as the engine sees it.
///
/// # Safety
///
/// The engine's memory safety rests on `register` / `deregister`: the OS
/// calls back only with the sink it was given, and after `deregister`
/// returns (or after `register` returned `None`) no callback for that
/// registration runs or will run. After `flush_deferred` returns, no deferred
/// work queued before it runs or will run.
pub unsafe trait Os: Send + Sync + Sized {
    /// Whose OS layer this is: the driver's [`Identity`]. Its name starts
    /// every line the engine logs ([`crate::trace::log`]), and the allocator
    /// allocates under its pool tag. No default: a driver names itself.
    type Identity: Identity;
    /// The allocator for the table and the driver context, allocating under
    /// `Self::Identity::POOL_TAG`.
    type Allocator: PoolAllocator + Send + Sync;
    /// What `register` returns and `deregister` takes.
    type Registration: Send;

    /// The allocator.
    fn allocator(&self) -> Self::Allocator;

    /// The most processors the partition can ever have, including those that
    /// may be hot-added (`KeQueryMaximumProcessorCountEx(ALL_PROCESSOR_GROUPS)`).
    fn max_processors(&self) -> u32;

    /// The processors active now
    /// (`KeQueryActiveProcessorCountEx(ALL_PROCESSOR_GROUPS)`). The engine
    /// sizes the table's first segment with it, so the processors present at
    /// load share one allocation. A hint only: any value is safe (the table
    /// clamps it); the default, 1, gives one allocation per doubling.
    fn active_processors(&self) -> u32 {
        1
    }

    /// The system-wide index of the calling processor
    /// (`KeGetCurrentProcessorNumberEx`). Callable at any IRQL.
    fn current_processor(&self) -> u32;

    /// An identity of the calling thread (`KeGetCurrentThread` on Windows),
    /// unique among the threads alive now, or `None` (the default) when the
    /// OS layer cannot tell. Only compared, never dereferenced: the engine
    /// uses it to refuse an unload from inside its own callback, which would
    /// otherwise wait for itself forever.
    fn current_thread(&self) -> Option<NonZeroUsize> {
        None
    }

    /// Writes one log line as given (the engine's lines already start with
    /// the driver's name: see [`crate::trace::log`]). Callable at any IRQL up
    /// to `DISPATCH_LEVEL`.
    fn log(&self, level: Level, args: fmt::Arguments<'_>);

    /// Registers the processor change callback with
    /// `KE_PROCESSOR_CHANGE_ADD_EXISTING`: every notification goes to
    /// `sink`, including those for existing processors delivered before this
    /// returns. `None` when registration failed.
    ///
    /// # Safety
    ///
    /// `sink` stays valid until `deregister` has returned for the
    /// registration, or until this returns `None`.
    unsafe fn register<S: Sink>(&self, sink: NonNull<S>) -> Option<Self::Registration>;

    /// Deregisters, waiting for any callback still running to return.
    fn deregister(&self, registration: Self::Registration);

    /// Waits until all deferred work (DPCs) queued so far has finished
    /// (`KeFlushQueuedDpcs`).
    fn flush_deferred(&self);
}
