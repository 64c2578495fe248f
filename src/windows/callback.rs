//! The two routines Windows calls into the engine: the processor change
//! callback (a trampoline into [`Context::on_notification`]) and the DPC
//! routine (the read path on a processor, [`Context::visit_current`]), plus
//! [`KdpcPayload`], the per-slot `KDPC`.
//!
//! ABI: the issue asks for `extern "system"` routines. wdk-sys (bindgen on
//! `*-pc-windows-msvc`) types `PPROCESSOR_CALLBACK_FUNCTION` and
//! `PKDEFERRED_ROUTINE` as `Option<unsafe extern "C" fn(..)>`, because on x64
//! and arm64 `__stdcall` is ignored and there is one calling convention. So
//! the routines are `extern "C"`: the same ABI as `"system"` on every target
//! a driver builds for, and the only spelling that type-checks against the
//! generated pointer types.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ptr::NonNull;

use wdk_sys::ntddk::{KeInitializeDpc, KeSetImportanceDpc};
use wdk_sys::{
    _KDPC_IMPORTANCE::MediumHighImportance, KDPC, KE_PROCESSOR_CHANGE_NOTIFY_STATE::KeProcessorAddStartNotify, PKDPC,
    PKE_PROCESSOR_CHANGE_NOTIFY_CONTEXT, PNTSTATUS, PVOID,
};

use super::os::WindowsKernel;
use crate::driver::Context;
use crate::os::{Level, NtStatus, Os, ProcNumber, RawNotification, SlotPayload};

/// A slot's `KDPC`, initialised in place at the slot's first `AddStart` with
/// [`dpc_routine`] and the driver context as `DeferredContext`. It lives in
/// the slot (non-paged pool) and never moves. `repr(transparent)` all the way
/// down (`UnsafeCell` is too): a pointer to it is a pointer to the `KDPC`.
#[repr(transparent)]
pub struct KdpcPayload {
    dpc: UnsafeCell<KDPC>,
}

impl KdpcPayload {
    /// The `PKDPC` the `Ke*Dpc*` routines take.
    pub fn as_ptr(&self) -> PKDPC {
        self.dpc.get()
    }
}

// SAFETY: after `KeInitializeDpc` the KDPC is only touched through the kernel
// (`KeSetTargetProcessorDpcEx` from the serialised callback, `KeInsertQueueDpc`
// which synchronises internally, and the DPC dispatcher). Rust code never
// reads or writes its fields.
unsafe impl Sync for KdpcPayload {}

impl SlotPayload for KdpcPayload {
    unsafe fn init(place: NonNull<Self>, context: *const c_void, _index: u32) -> Result<(), NtStatus> {
        // SAFETY: the engine hands over aligned, writable storage for `Self`.
        unsafe { place.write(Self { dpc: UnsafeCell::new(KDPC::default()) }) };
        let dpc = place.as_ptr().cast::<KDPC>();
        // SAFETY: `dpc` is the KDPC just written (see the `repr` above), in
        // non-paged pool, never moved; the context outlives every DPC (unload
        // deregisters and flushes DPCs before freeing). `dpc_routine` has the
        // KDEFERRED_ROUTINE signature.
        unsafe { KeInitializeDpc(dpc, Some(dpc_routine), context.cast_mut()) };
        // MediumHighImportance: a DPC queued to another processor at the
        // default MediumImportance waits for that processor's next clock tick
        // or idle pass; MediumHigh interrupts it so the visit runs promptly.
        // SAFETY: `dpc` was initialised just above and is not queued yet.
        unsafe { KeSetImportanceDpc(dpc, MediumHighImportance) };
        Ok(())
    }
}

/// `PROCESSOR_CALLBACK_FUNCTION`: converts `KE_PROCESSOR_CHANGE_NOTIFY_CONTEXT`
/// into the engine's [`RawNotification`] and writes `*OperationStatus` only to
/// veto an `AddStart`. It finds the engine through `CallbackContext`, never
/// through the registration handle: during `KE_PROCESSOR_CHANGE_ADD_EXISTING`
/// the handle has not been returned yet.
///
/// Runs at PASSIVE_LEVEL or APC_LEVEL (the kernel holds a fast mutex).
///
/// # Safety
///
/// Only the kernel calls it, as registered in `WindowsKernel::register`:
/// `callback_context` is the live `Context<WindowsKernel>`, `change_context`
/// is readable and `operation_status` writable for the call.
pub unsafe extern "C" fn processor_change(
    callback_context: PVOID,
    change_context: PKE_PROCESSOR_CHANGE_NOTIFY_CONTEXT,
    operation_status: PNTSTATUS,
) {
    if callback_context.is_null() || change_context.is_null() {
        return;
    }
    // SAFETY: the kernel passes a valid notify context for this call.
    let change = unsafe { change_context.read() };
    // SAFETY: `callback_context` is the `Context<WindowsKernel>` given to
    // `KeRegisterProcessorChangeCallback`; it is freed only after
    // `KeDeregisterProcessorChangeCallback` returned (or the register call
    // returned NULL), so it is live for every callback.
    let context = unsafe { &*callback_context.cast_const().cast::<Context<WindowsKernel>>() };
    let notification = RawNotification {
        // A negative (unknown) state maps to an unknown value; the engine logs it.
        state: u32::try_from(change.State).unwrap_or(u32::MAX),
        index: change.NtNumber,
        status: NtStatus(change.Status),
        proc_number: ProcNumber { group: change.ProcNumber.Group, number: change.ProcNumber.Number },
    };
    let veto = context.on_notification(notification);
    if let Some(status) = veto
        && change.State == KeProcessorAddStartNotify
        && !operation_status.is_null()
    {
        // SAFETY: the kernel passes a writable NTSTATUS, preset to
        // STATUS_SUCCESS, for the duration of the call.
        unsafe { operation_status.write(status.0) };
    }
}

/// `KDEFERRED_ROUTINE`: runs at DISPATCH_LEVEL on the processor the DPC was
/// targeted at, finds that processor's slot through the lock-free read path
/// and bumps its visit counter, then logs what it found.
///
/// # Safety
///
/// Only the kernel calls it, for a KDPC set up by [`KdpcPayload::init`]:
/// `deferred_context` is the live `Context<WindowsKernel>`.
pub unsafe extern "C" fn dpc_routine(
    _dpc: *mut KDPC,
    deferred_context: PVOID,
    _system_argument1: PVOID,
    _system_argument2: PVOID,
) {
    if deferred_context.is_null() {
        return;
    }
    // SAFETY: `deferred_context` is the `Context<WindowsKernel>` given to
    // KeInitializeDpc; unload frees it only after KeFlushQueuedDpcs returned.
    let context = unsafe { &*deferred_context.cast_const().cast::<Context<WindowsKernel>>() };
    context.visit_current();
    let index = context.os().current_processor();
    let visits = context.table().get(index).map_or(0, |slot| slot.snapshot().visits);
    context.os().log(Level::Trace, format_args!("procnotify: visit index={index} visits={visits}"));
}
