//! [`Kdpc`]: a `KDPC` inside each processor's value, targeted at that
//! processor when it comes online. Its routine is the driver's real read
//! path: it receives the `KDPC`'s address, which is the value's address, so
//! it needs no lookup.

use core::cell::UnsafeCell;
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
/// is too): a pointer to it is a pointer to the `KDPC`, and, as the first
/// field of [`PerProcessor`], to the processor's value.
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

impl<I: Identity> TargetedDpc for Kdpc<I> {
    type Os = WindowsKernel<I>;

    fn init<'a>(_os: &WindowsKernel<I>, place: &'a mut MaybeUninit<Self>) -> Result<&'a mut Self, NtStatus> {
        let this = place.write(Self { dpc: UnsafeCell::new(KDPC::default()), _identity: PhantomData });
        let dpc = this.as_ptr();
        // SAFETY: `dpc` is the KDPC just written, in non-paged pool (the
        // table's slot), never moved. `dpc_routine` has the KDEFERRED_ROUTINE
        // signature; it needs no DeferredContext.
        unsafe { KeInitializeDpc(dpc, Some(dpc_routine::<I>), ptr::null_mut()) };
        // MediumHighImportance: a DPC queued to another processor at the
        // default MediumImportance does not interrupt it; it waits for that
        // processor's next clock tick or idle pass. MediumHigh does.
        // SAFETY: initialised just above and not queued yet.
        unsafe { KeSetImportanceDpc(dpc, MediumHighImportance) };
        Ok(this)
    }

    fn queue(&self, _os: &WindowsKernel<I>, target: ProcNumber) -> Result<bool, NtStatus> {
        let dpc = self.as_ptr();
        let mut number = PROCESSOR_NUMBER { Group: target.group, Number: target.number, ..PROCESSOR_NUMBER::default() };
        // SAFETY: `dpc` was initialised by KeInitializeDpc and lives until the
        // table is dropped, after KeFlushQueuedDpcs. Called only from the
        // serialised callback, when the processor comes online.
        let status = unsafe { KeSetTargetProcessorDpcEx(dpc, &raw mut number) };
        if !nt_success(status) {
            return Err(NtStatus(status));
        }
        // SAFETY: as above; the routine needs no system arguments.
        let queued = unsafe { KeInsertQueueDpc(dpc, ptr::null_mut(), ptr::null_mut()) };
        Ok(queued != 0)
    }
}

/// `KDEFERRED_ROUTINE`: runs at DISPATCH_LEVEL on the processor the DPC was
/// targeted at. Finds that processor's value from the `KDPC` address (no
/// lookup), bumps its visit counter and logs the visit.
///
/// # Safety
///
/// Only the kernel calls it, for a KDPC initialised by [`Kdpc::init`] inside
/// a table slot: the value lives until unload, which flushes DPCs first.
unsafe extern "C" fn dpc_routine<I: Identity>(dpc: *mut KDPC, _context: PVOID, _argument1: PVOID, _argument2: PVOID) {
    let Some(dpc) = NonNull::new(dpc.cast::<Kdpc<I>>()) else { return };
    // SAFETY: `dpc` is the `dpc` field of a live `PerProcessor<Kdpc>` (see the
    // function's contract and `Kdpc`'s `repr(transparent)`).
    let value = unsafe { PerProcessor::<Kdpc<I>>::from_dpc(dpc) };
    value.visit(&WindowsKernel::<I>::new());
}
