//! [`WindowsKernel`]: the wdk-sys implementation of [`Os`], and the processor
//! change callback trampoline.
//!
//! ABI: wdk-sys (bindgen on `*-pc-windows-msvc`) types
//! `PPROCESSOR_CALLBACK_FUNCTION` and `PKDEFERRED_ROUTINE` as
//! `Option<unsafe extern "C" fn(..)>`: on x64 and arm64 `__stdcall` is
//! ignored and there is one calling convention, so `extern "C"` is the same
//! ABI as `"system"` and the only spelling that type-checks against the
//! generated pointer types.

use core::ffi::c_void;
use core::fmt;
use core::marker::PhantomData;
use core::num::NonZeroUsize;
use core::ptr::{self, NonNull};

use procnotify_core::log::FixedBuf;
use procnotify_core::{Identity, Level, NtStatus, Os, ProcNumber, RawNotification, Sink};
use wdk_sys::ntddk::{
    DbgPrintEx, KeDeregisterProcessorChangeCallback, KeFlushQueuedDpcs, KeGetCurrentProcessorNumberEx,
    KeQueryActiveProcessorCountEx, KeQueryMaximumProcessorCountEx, KeRegisterProcessorChangeCallback,
    PsGetCurrentThreadId,
};
use wdk_sys::{
    _DPFLTR_TYPE::DPFLTR_IHVDRIVER_ID, ALL_PROCESSOR_GROUPS, DPFLTR_ERROR_LEVEL, DPFLTR_INFO_LEVEL, DPFLTR_TRACE_LEVEL,
    DPFLTR_WARNING_LEVEL, KE_PROCESSOR_CHANGE_ADD_EXISTING,
    KE_PROCESSOR_CHANGE_NOTIFY_STATE::KeProcessorAddStartNotify, PKE_PROCESSOR_CHANGE_NOTIFY_CONTEXT, PNTSTATUS, PVOID,
};

use crate::pool::NonPagedPool;

/// `DPFLTR_IHVDRIVER_ID` (77): the component whose mask is
/// `nt!Kd_IHVDRIVER_Mask`. A C enum, so bindgen makes it an `i32` constant.
#[allow(clippy::cast_sign_loss)] // 77
const COMPONENT: u32 = DPFLTR_IHVDRIVER_ID as u32;

/// Bytes of one formatted log line, NUL included. `DbgPrintEx` accepts 512;
/// the engine's longest line is about 130.
const LINE: usize = 200;

/// The handle `KeRegisterProcessorChangeCallback` returned.
pub struct Registration(NonNull<c_void>);

// SAFETY: an opaque kernel handle; `KeDeregisterProcessorChangeCallback` may
// be called on any thread at PASSIVE_LEVEL.
unsafe impl Send for Registration {}

/// `ALL_PROCESSOR_GROUPS` (0xFFFF) as the `USHORT` the Ke*Ex queries take.
fn all_groups() -> u16 {
    u16::try_from(ALL_PROCESSOR_GROUPS).unwrap_or(u16::MAX)
}

/// The Windows kernel as the engine sees it, for the driver whose
/// [`Identity`] is `I`: the engine's lines start with `I::NAME`, its memory
/// is allocated under `I::POOL_TAG`. A ZST: every method is a kernel call.
pub struct WindowsKernel<I: Identity> {
    _identity: PhantomData<fn() -> I>,
}

impl<I: Identity> WindowsKernel<I> {
    /// The kernel, for the driver `I`.
    #[must_use]
    pub const fn new() -> Self {
        Self { _identity: PhantomData }
    }
}

impl<I: Identity> Clone for WindowsKernel<I> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<I: Identity> Copy for WindowsKernel<I> {}

impl<I: Identity> Default for WindowsKernel<I> {
    fn default() -> Self {
        Self::new()
    }
}

impl<I: Identity> fmt::Debug for WindowsKernel<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowsKernel").field("name", &I::NAME).field("tag", &I::POOL_TAG).finish()
    }
}

// SAFETY: no callback runs after `KeDeregisterProcessorChangeCallback`
// returns, and a running one has returned by then. The second half is an
// inference, not a documented guarantee: deregistration takes the same
// dynamic-processor lock (`KiDynamicProcessorLock`) that the kernel holds
// around every notification (docs/processor-change-semantics.md §4;
// docs/windows.md gives the VM stress procedure that would expose it). The
// trampoline receives only the sink passed to `register`;
// `KeFlushQueuedDpcs` waits for every queued DPC. Every other method is a
// plain kernel call.
unsafe impl<I: Identity> Os for WindowsKernel<I> {
    type Identity = I;
    type Allocator = NonPagedPool<I>;
    type Registration = Registration;

    fn allocator(&self) -> NonPagedPool<I> {
        NonPagedPool::new()
    }

    fn max_processors(&self) -> u32 {
        // SAFETY: no preconditions; callable at any IRQL.
        unsafe { KeQueryMaximumProcessorCountEx(all_groups()) }
    }

    fn active_processors(&self) -> u32 {
        // SAFETY: no preconditions; callable at any IRQL.
        unsafe { KeQueryActiveProcessorCountEx(all_groups()) }
    }

    fn current_processor(&self) -> u32 {
        // SAFETY: the out-parameter is optional; NULL asks for the index only.
        unsafe { KeGetCurrentProcessorNumberEx(ptr::null_mut()) }
    }

    fn current_thread(&self) -> Option<NonZeroUsize> {
        // SAFETY: no preconditions; callable at any IRQL. A thread ID is
        // unique among the threads alive now (the engine only compares it).
        let id = unsafe { PsGetCurrentThreadId() };
        NonZeroUsize::new(id.addr())
    }

    fn log(&self, level: Level, args: fmt::Arguments<'_>) {
        let line = FixedBuf::<LINE>::format(args);
        let level = match level {
            Level::Error => DPFLTR_ERROR_LEVEL,
            Level::Warning => DPFLTR_WARNING_LEVEL,
            Level::Trace => DPFLTR_TRACE_LEVEL,
            Level::Info => DPFLTR_INFO_LEVEL,
        };
        // SAFETY: a constant format with one `%s`, matched by a NUL-terminated
        // string that outlives the call. Callable at IRQL <= DIRQL.
        unsafe { DbgPrintEx(COMPONENT, level, c"%s\n".as_ptr().cast(), line.as_c_str().as_ptr()) };
    }

    unsafe fn register<S: Sink>(&self, sink: NonNull<S>) -> Option<Registration> {
        // SAFETY: `processor_change::<S>` has the PROCESSOR_CALLBACK_FUNCTION
        // signature and reads its context as an `S`; the caller keeps `sink`
        // alive until deregistration (or until this returns NULL).
        // PASSIVE_LEVEL: called from DriverEntry.
        let handle = unsafe {
            KeRegisterProcessorChangeCallback(
                Some(processor_change::<S>),
                sink.as_ptr().cast::<c_void>(),
                KE_PROCESSOR_CHANGE_ADD_EXISTING,
            )
        };
        NonNull::new(handle).map(Registration)
    }

    fn deregister(&self, registration: Registration) {
        // SAFETY: a handle returned by KeRegisterProcessorChangeCallback,
        // deregistered once (it is consumed). PASSIVE_LEVEL: unload.
        unsafe { KeDeregisterProcessorChangeCallback(registration.0.as_ptr()) };
    }

    fn flush_deferred(&self) {
        // SAFETY: PASSIVE_LEVEL (unload); waits for every queued DPC.
        unsafe { KeFlushQueuedDpcs() };
    }
}

/// `PROCESSOR_CALLBACK_FUNCTION`: converts `KE_PROCESSOR_CHANGE_NOTIFY_CONTEXT`
/// into a [`RawNotification`], hands it to the sink, and writes
/// `*OperationStatus` only to veto an `AddStart`. It finds the sink through
/// `CallbackContext`, never through the registration handle: during
/// `KE_PROCESSOR_CHANGE_ADD_EXISTING` the handle has not been returned yet.
///
/// IRQL: Microsoft's reference says PASSIVE_LEVEL. What is known of the
/// kernel: registration takes the dynamic-processor lock with
/// `ExAcquireFastMutex` (APC_LEVEL), so the `ADD_EXISTING` calls run at
/// APC_LEVEL; the hot-add path takes the same lock with the `Unsafe` variant
/// (`ExAcquireFastMutexUnsafe`, which leaves the IRQL as it is). The rule
/// this code follows: everything it does is correct at APC_LEVEL (and so at
/// PASSIVE_LEVEL). docs/windows.md has the `!irql` check for both paths.
///
/// # Safety
///
/// Only the kernel calls it, as registered in [`WindowsKernel::register`]:
/// `callback_context` is the live `S`, `change_context` is readable and
/// `operation_status` writable for the call.
unsafe extern "C" fn processor_change<S: Sink>(
    callback_context: PVOID,
    change_context: PKE_PROCESSOR_CHANGE_NOTIFY_CONTEXT,
    operation_status: PNTSTATUS,
) {
    if callback_context.is_null() || change_context.is_null() {
        return;
    }
    // SAFETY: the kernel passes a valid notify context for this call.
    let change = unsafe { change_context.read() };
    // SAFETY: `callback_context` is the `S` given to
    // `KeRegisterProcessorChangeCallback`; it is freed only after
    // `KeDeregisterProcessorChangeCallback` returned (or the register call
    // returned NULL), so it is live for every callback.
    let sink = unsafe { &*callback_context.cast_const().cast::<S>() };
    let notification = RawNotification {
        // A negative (unknown) state maps to an unknown value; the engine logs it.
        state: u32::try_from(change.State).unwrap_or(u32::MAX),
        index: change.NtNumber,
        status: NtStatus(change.Status),
        proc_number: ProcNumber { group: change.ProcNumber.Group, number: change.ProcNumber.Number },
    };
    if let Some(status) = sink.on_notification(notification)
        && change.State == KeProcessorAddStartNotify
        && !operation_status.is_null()
    {
        // SAFETY: the kernel passes a writable NTSTATUS, preset to
        // STATUS_SUCCESS, for the duration of the call.
        unsafe { operation_status.write(status.0) };
    }
}
