//! The one narrow interface between the portable engine and an operating
//! system: register / deregister the processor change callback, processor
//! queries, tagged non-paged allocation, deferred work on a processor, and
//! logging.
//!
//! Two implementations exist: the Windows layer (`crate::windows`, wdk-sys)
//! and the simulator (`crate::sim`). Nothing else in the crate knows which one
//! it runs on.

use core::alloc::Layout;
use core::ffi::c_void;
use core::fmt;
use core::ptr::NonNull;

use crate::driver::Context;
use crate::table::Slot;

/// The most logical processors Windows supports in one partition.
pub const MAX_PROCESSORS: u32 = 2048;

/// Logical processors per processor group on Windows.
pub const GROUP_SIZE: u32 = 64;

/// `KE_PROCESSOR_CHANGE_ADD_EXISTING`: also notify for processors that are
/// already present when the callback is registered.
pub const ADD_EXISTING: u32 = 0x1;

/// An `NTSTATUS` value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct NtStatus(pub i32);

impl NtStatus {
    /// `STATUS_SUCCESS`.
    pub const SUCCESS: Self = Self(0);
    /// `STATUS_UNSUCCESSFUL`.
    pub const UNSUCCESSFUL: Self = Self::from_bits(0xC000_0001);
    /// `STATUS_INVALID_PARAMETER`.
    pub const INVALID_PARAMETER: Self = Self::from_bits(0xC000_000D);
    /// `STATUS_INSUFFICIENT_RESOURCES`.
    pub const INSUFFICIENT_RESOURCES: Self = Self::from_bits(0xC000_009A);
    /// `STATUS_DEVICE_BUSY`.
    pub const DEVICE_BUSY: Self = Self::from_bits(0x8000_0011);
    /// `STATUS_NOT_SUPPORTED`.
    pub const NOT_SUPPORTED: Self = Self::from_bits(0xC000_00BB);

    /// The status whose bit pattern is `bits` (NTSTATUS values are usually
    /// written as unsigned hexadecimal).
    #[must_use]
    #[allow(clippy::cast_possible_wrap)] // reinterpreting the bits is the point
    pub const fn from_bits(bits: u32) -> Self {
        Self(bits as i32)
    }

    /// The bit pattern, as WinDbg and `DbgPrintEx("%08x")` show it.
    #[must_use]
    #[allow(clippy::cast_sign_loss)] // reinterpreting the bits is the point
    pub const fn bits(self) -> u32 {
        self.0 as u32
    }

    /// `NT_SUCCESS(status)`: success and informational values.
    #[must_use]
    pub const fn is_success(self) -> bool {
        self.0 >= 0
    }

    /// The opposite of [`NtStatus::is_success`]: warnings and errors.
    #[must_use]
    pub const fn is_failure(self) -> bool {
        self.0 < 0
    }
}

impl fmt::Debug for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08X}", self.bits())
    }
}

impl fmt::Display for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A processor as Windows names it: group and group-relative number
/// (`PROCESSOR_NUMBER`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ProcNumber {
    /// `PROCESSOR_NUMBER::Group`.
    pub group: u16,
    /// `PROCESSOR_NUMBER::Number`, relative to the group.
    pub number: u8,
}

impl ProcNumber {
    /// The group-relative form of system-wide index `index` when groups are
    /// filled in order with [`GROUP_SIZE`] processors each, as the simulator
    /// lays them out. On Windows the OS supplies `ProcNumber` itself.
    #[must_use]
    pub const fn dense(index: u32) -> Self {
        // `index / 64` fits u16 for every u32; `index % 64` fits u8.
        #[allow(clippy::cast_possible_truncation)]
        Self { group: (index / GROUP_SIZE) as u16, number: (index % GROUP_SIZE) as u8 }
    }
}

/// Severity of a log line; maps onto the `DPFLTR_*_LEVEL` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Something is wrong: an allocation failed, a notification was invalid.
    Error,
    /// Unusual but handled: a notification out of order.
    Warning,
    /// One line per notification: the trace WinDbg shows.
    Trace,
    /// Load / unload milestones.
    Info,
}

/// Allocation failed. The callback turns this into
/// `STATUS_INSUFFICIENT_RESOURCES`; nothing aborts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocError;

impl From<AllocError> for NtStatus {
    fn from(_: AllocError) -> Self {
        Self::INSUFFICIENT_RESOURCES
    }
}

/// Raw, fallible, tagged allocation of memory that may be touched at any IRQL
/// (non-paged pool on Windows). The engine never uses a global allocator, so
/// every allocation failure is a value.
///
/// # Safety
///
/// Implementations must return memory that is valid for `layout`, zeroed,
/// suitably aligned, and not handed out again until it is deallocated.
pub unsafe trait PoolAllocator {
    /// Allocates zeroed memory for `layout`.
    ///
    /// # Errors
    ///
    /// [`AllocError`] when the memory cannot be had.
    fn allocate(&self, layout: Layout) -> Result<NonNull<u8>, AllocError>;

    /// Returns memory to the pool.
    ///
    /// # Safety
    ///
    /// `ptr` came from `allocate` on this allocator with this `layout` and has
    /// not been deallocated since.
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout);
}

/// Per-processor data the OS layer keeps in each slot (the Windows layer: a
/// `KDPC`). It is initialised in place at the first `AddStart` for an index
/// and dropped only when the table is dropped at unload.
pub trait SlotPayload: Sync + Sized {
    /// Initialises the payload at `place`, which never moves afterwards.
    /// `context` is the driver context's address, valid until unload.
    ///
    /// # Errors
    ///
    /// A failing status vetoes the processor add.
    ///
    /// # Safety
    ///
    /// `place` is valid for writes and aligned; `context` points to the live
    /// [`Context`] that owns the table holding `place`.
    unsafe fn init(place: NonNull<Self>, context: *const c_void, index: u32) -> Result<(), NtStatus>;
}

/// A notification as the OS delivered it, before validation: the fields of
/// `KE_PROCESSOR_CHANGE_NOTIFY_CONTEXT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawNotification {
    /// `State`: 0 `AddStart`, 1 `AddComplete`, 2 `AddFailure`, anything else
    /// is unknown.
    pub state: u32,
    /// `NtNumber`: the system-wide processor index.
    pub index: u32,
    /// `Status`: the failure reason for `AddFailure`.
    pub status: NtStatus,
    /// `ProcNumber`.
    pub proc_number: ProcNumber,
}

/// The operating system as the engine sees it.
///
/// # Safety
///
/// Implementations must honour the contract documented on each method; the
/// engine's memory safety depends on `register` / `deregister` in particular:
/// after `deregister` returns, no callback for that registration runs or will
/// run.
pub unsafe trait Os: Send + Sync + Sized + 'static {
    /// Per-slot data of this OS layer.
    type Payload: SlotPayload;
    /// The allocator the table uses.
    type Allocator: PoolAllocator + Send + Sync;
    /// What `register` returns and `deregister` takes.
    type Registration: Send;

    /// The allocator for the table and the driver context.
    fn allocator(&self) -> Self::Allocator;

    /// The most processors the partition can ever have, including those that
    /// may be hot-added (`KeQueryMaximumProcessorCountEx(ALL_PROCESSOR_GROUPS)`).
    fn max_processors(&self) -> u32;

    /// The system-wide index of the calling processor
    /// (`KeGetCurrentProcessorNumberEx`). Callable at any IRQL.
    fn current_processor(&self) -> u32;

    /// Writes one log line. Callable at any IRQL up to `DISPATCH_LEVEL`.
    fn log(&self, level: Level, args: fmt::Arguments<'_>);

    /// Registers the processor change callback with
    /// `KE_PROCESSOR_CHANGE_ADD_EXISTING`. The OS calls
    /// [`Context::on_notification`] on `context` for every notification,
    /// including the existing-processor notifications delivered before this
    /// returns. `None` when registration failed.
    ///
    /// # Safety
    ///
    /// `context` stays valid until `deregister` has returned for the
    /// registration, or until this returns `None`.
    unsafe fn register(&self, context: NonNull<Context<Self>>) -> Option<Self::Registration>;

    /// Deregisters, waiting for any callback still running to return.
    fn deregister(&self, registration: Self::Registration);

    /// Asks `slot`'s processor to run [`Context::visit_current`] through the
    /// read path (the Windows layer queues the slot's DPC to that processor).
    fn kick(&self, slot: &Slot<Self::Payload>);

    /// Waits until every deferred call queued by [`Os::kick`] has finished
    /// (`KeFlushQueuedDpcs`).
    fn flush_deferred(&self);
}
