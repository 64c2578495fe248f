//! A simulator of the Windows kernel's processor-change machinery, faithful
//! to `processor-change-semantics.md`, and [`SimOs`], the [`Os`]
//! implementation that runs the real engine against it.
//!
//! - [`SimKernel`]: registration with and without `ADD_EXISTING` in the
//!   observed order (the handle is returned only after the existing-processor
//!   callbacks), hot-add with index reuse after a failed add, the 2048 limit,
//!   deregistration that waits for a running callback, DPCs, and fault
//!   injection (the k-th allocation fails, another driver vetoes, the HAL
//!   fails to start a processor, payload initialisation fails).
//! - [`SimAllocator`]: the non-paged pool, accounting every allocation so
//!   leaks, double frees and uses after free are found.
//! - [`SimOs`] and [`SimDpc`]: the simulator's side of the [`Os`] interface,
//!   mirroring the Windows layer (a trampoline, a DPC payload per slot).

mod alloc;
mod kernel;
pub mod script;
pub mod session;

use core::ffi::c_void;
use core::fmt;
use core::ptr::NonNull;
use std::string::ToString;

pub use alloc::{AllocStats, POISON, SimAllocator};
pub use kernel::{
    Config, Gate, Handle, HotAdd, KernelEvent, NotifyContext, OtherCallback, RawCallback, Refusal, SimEvent, SimKernel,
    StartHook,
};

use crate::driver::Context;
use crate::os::{ADD_EXISTING, Level, NtStatus, Os, RawNotification, SlotPayload};
use crate::table::Slot;

/// The simulator's per-slot payload: what the Windows layer's `KDPC` is
/// there — the routine's context, captured at initialisation.
pub struct SimDpc {
    context: *const c_void,
    index: u32,
    kernel: SimKernel,
}

// SAFETY: `context` is only used as the DPC's argument, exactly as a KDPC's
// DeferredContext; the pointee (`Context<SimOs>`) is `Sync`.
unsafe impl Send for SimDpc {}
// SAFETY: as above; the fields are never mutated after initialisation.
unsafe impl Sync for SimDpc {}

impl SimDpc {
    /// The slot index this payload was initialised for.
    #[must_use]
    pub fn index(&self) -> u32 {
        self.index
    }
}

impl SlotPayload for SimDpc {
    unsafe fn init(place: NonNull<Self>, context: *const c_void, index: u32) -> Result<(), NtStatus> {
        // SAFETY: the caller guarantees `context` is the live `Context<SimOs>`.
        let kernel = unsafe { &*context.cast::<Context<SimOs>>() }.os().kernel.clone();
        if kernel.payload_init_should_fail() {
            return Err(NtStatus::INSUFFICIENT_RESOURCES);
        }
        kernel.payload_created();
        // SAFETY: the caller hands us aligned, writable, uninitialised storage.
        unsafe { place.as_ptr().write(Self { context, index, kernel }) };
        Ok(())
    }
}

impl Drop for SimDpc {
    fn drop(&mut self) {
        self.kernel.payload_dropped();
    }
}

/// The simulator as an [`Os`].
#[derive(Clone)]
pub struct SimOs {
    kernel: SimKernel,
}

impl SimOs {
    /// The OS interface of `kernel`.
    #[must_use]
    pub fn new(kernel: &SimKernel) -> Self {
        Self { kernel: kernel.clone() }
    }

    /// The kernel behind it.
    #[must_use]
    pub fn kernel(&self) -> &SimKernel {
        &self.kernel
    }
}

/// The simulator's `PROCESSOR_CALLBACK_FUNCTION`: the same job as the
/// Windows trampoline.
fn trampoline(context: *mut c_void, change: &NotifyContext, operation_status: &mut NtStatus) {
    // SAFETY: `context` is the `Context<SimOs>` passed to `register`; the
    // simulated kernel checks it is a live allocation before calling.
    let context = unsafe { &*context.cast_const().cast::<Context<SimOs>>() };
    let notification = RawNotification {
        state: change.state,
        index: change.nt_number,
        status: change.status,
        proc_number: change.proc_number,
    };
    if let Some(veto) = context.on_notification(notification) {
        *operation_status = veto;
    }
}

/// The simulator's DPC routine: the read path on the target processor.
fn dpc_routine(context: *const c_void) {
    // SAFETY: the context outlives every queued DPC (unload flushes them), and
    // the simulated kernel checks it is still live before calling.
    let context = unsafe { &*context.cast::<Context<SimOs>>() };
    context.visit_current();
}

// SAFETY: `deregister` unlinks and waits for running callbacks; `register`
// calls back only with the given context.
unsafe impl Os for SimOs {
    type Payload = SimDpc;
    type Allocator = SimAllocator;
    type Registration = Handle;

    fn allocator(&self) -> SimAllocator {
        self.kernel.pool().clone()
    }

    fn max_processors(&self) -> u32 {
        self.kernel.config().reported_max
    }

    fn current_processor(&self) -> u32 {
        SimKernel::current_processor()
    }

    fn log(&self, level: Level, args: fmt::Arguments<'_>) {
        self.kernel.log(level, args.to_string());
    }

    unsafe fn register(&self, context: NonNull<Context<Self>>) -> Option<Handle> {
        self.kernel.register(trampoline, context.as_ptr().cast(), ADD_EXISTING)
    }

    fn deregister(&self, registration: Handle) {
        self.kernel.deregister(registration);
    }

    fn kick(&self, slot: &Slot<SimDpc>) {
        // Target by group and number, as KeSetTargetProcessorDpcEx does.
        let (Some(payload), Some(processor)) = (slot.payload(), self.kernel.index_from_number(slot.proc_number()))
        else {
            self.log(Level::Error, format_args!("procnotify: cannot target a DPC at slot {}", slot.index()));
            return;
        };
        self.kernel.queue_dpc(processor, dpc_routine, payload.context);
    }

    fn flush_deferred(&self) {
        self.kernel.flush_dpcs();
    }
}
