//! [`Kdpc`]: a `KDPC` inside each processor's value, targeted at that
//! processor when it comes online. Its routine is the driver's real read
//! path: it receives the address of the processor's whole value (queued as
//! the DPC's first system argument), so it needs no lookup.
//!
//! Why the value's address travels with `KeInsertQueueDpc` and not as the
//! `DeferredContext` of `KeInitializeDpc`: at `KeInitializeDpc` (the `init`
//! hook) the only pointer to the value comes from the `&mut MaybeUninit` the
//! table lends for initialisation, and Rust's aliasing rules retire that
//! pointer as soon as the table reads and writes the value through its own
//! shared references (Miri rejects it under Stacked and Tree Borrows). When
//! the DPC is queued (the `online` hook) the engine hands over a shared
//! reference to the whole value that stays valid until the table is freed,
//! after `KeFlushQueuedDpcs`; its address is what the routine gets.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr::{self, NonNull};

use procnotify_core::monitor::{PerProcessor, TargetedDpc};
use procnotify_core::{Identity, NtStatus, ProcNumber};
use wdk::nt_success;
use wdk_sys::ntddk::{KeInitializeDpc, KeInsertQueueDpc, KeSetImportanceDpc, KeSetTargetProcessorDpcEx};
use wdk_sys::{_KDPC_IMPORTANCE::MediumHighImportance, KDPC, PKDPC, PROCESSOR_NUMBER, PVOID};

use crate::kernel::WindowsKernel;

/// A processor's `KDPC`. `repr(transparent)` all the way down (`UnsafeCell`
/// is too): a pointer to it is a pointer to the `KDPC`.
/// `I` is the driver's identity: the routine logs through
/// `WindowsKernel<I>`.
#[repr(transparent)]
pub struct Kdpc<I: Identity> {
    dpc: UnsafeCell<KDPC>,
    _identity: PhantomData<fn() -> I>,
}

// SAFETY: after `KeInitializeDpc` the KDPC is only touched through the kernel
// (`KeSetTargetProcessorDpcEx` from the serialised callback, `KeInsertQueueDpc`
// which synchronises internally, and the DPC dispatcher). Rust code never
// reads or writes its fields.
unsafe impl<I: Identity> Sync for Kdpc<I> {}
// SAFETY: a KDPC is plain kernel data with no thread affinity once it is not
// queued; the table drops it at unload, after `KeFlushQueuedDpcs`.
unsafe impl<I: Identity> Send for Kdpc<I> {}

impl<I: Identity> Kdpc<I> {
    /// The `PKDPC` the `Ke*Dpc*` routines take.
    pub fn as_ptr(&self) -> PKDPC {
        self.dpc.get()
    }
}

// SAFETY: the routine (`dpc_routine`) reads its value only through
// `PerProcessor::from_context` with the pointer `queue` derived from `value`
// (passed as SystemArgument1; a DPC already queued keeps the arguments it was
// first queued with, which are the same); the kernel runs a queued DPC once,
// and `WindowsKernel::flush_deferred` is `KeFlushQueuedDpcs`, which waits for
// every queued DPC; `init` writes `place` and never fails.
unsafe impl<I: Identity> TargetedDpc for Kdpc<I> {
    type Os = WindowsKernel<I>;

    fn init<'a>(_os: &WindowsKernel<I>, place: &'a mut MaybeUninit<Self>) -> Result<&'a mut Self, NtStatus> {
        let this = place.write(Self { dpc: UnsafeCell::new(KDPC::default()), _identity: PhantomData });
        let dpc = this.as_ptr();
        // SAFETY: `dpc` is the KDPC just written, in non-paged pool (the
        // table's slot), never moved. `dpc_routine` has the KDEFERRED_ROUTINE
        // signature; its value comes as SystemArgument1 (see the module
        // documentation), so it needs no DeferredContext.
        unsafe { KeInitializeDpc(dpc, Some(dpc_routine::<I>), ptr::null_mut()) };
        // MediumHighImportance: a DPC queued to another processor at the
        // default MediumImportance does not interrupt it; it waits for that
        // processor's next clock tick or idle pass. MediumHigh does.
        // SAFETY: initialised just above and not queued yet.
        unsafe { KeSetImportanceDpc(dpc, MediumHighImportance) };
        Ok(this)
    }

    unsafe fn queue(value: &PerProcessor<Self>, _os: &WindowsKernel<I>, target: ProcNumber) -> Result<bool, NtStatus> {
        let dpc = value.dpc().as_ptr();
        // The whole value's address, from the engine's shared reference (the
        // caller keeps the value alive until KeFlushQueuedDpcs).
        let context = ptr::from_ref(value).cast_mut().cast::<c_void>();
        let mut number = PROCESSOR_NUMBER { Group: target.group, Number: target.number, ..PROCESSOR_NUMBER::default() };
        // SAFETY: `dpc` was initialised by KeInitializeDpc and lives until the
        // table is dropped, after KeFlushQueuedDpcs. Called only from the
        // serialised callback, when the processor comes online.
        let status = unsafe { KeSetTargetProcessorDpcEx(dpc, &raw mut number) };
        if !nt_success(status) {
            return Err(NtStatus(status));
        }
        // SAFETY: as above; `context` is the routine's SystemArgument1.
        let queued = unsafe { KeInsertQueueDpc(dpc, context, ptr::null_mut()) };
        Ok(queued != 0)
    }
}

/// `KDEFERRED_ROUTINE`: runs at DISPATCH_LEVEL on the processor the DPC was
/// targeted at. Finds that processor's value from `SystemArgument1` (no
/// lookup), bumps its visit counter and logs the visit.
///
/// # Safety
///
/// Only the kernel calls it, for a KDPC initialised by [`Kdpc::init`] and
/// queued by [`Kdpc::queue`], with the value's address as `argument1`: the
/// value lives until unload, which flushes DPCs first.
unsafe extern "C" fn dpc_routine<I: Identity>(
    _dpc: *mut KDPC,
    _deferred_context: PVOID,
    argument1: PVOID,
    _argument2: PVOID,
) {
    let Some(context) = NonNull::new(argument1.cast::<PerProcessor<Kdpc<I>>>()) else { return };
    // SAFETY: the pointer `Kdpc::queue` derived from the engine's reference
    // to a live `PerProcessor<Kdpc<I>>` (see the function's contract).
    let value = unsafe { PerProcessor::from_context(context) };
    value.visit(&WindowsKernel::<I>::new());
}
