//! [`SimOs`]: the simulator as a [`procnotify_core::Os`], and [`SimDpc`],
//! its [`TargetedDpc`]: the same jobs as the Windows layer's trampoline and
//! `KDPC`.

use core::ffi::c_void;
use core::fmt;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::num::NonZeroUsize;
use core::ptr::NonNull;
use std::string::ToString;

use procnotify_core::monitor::{Monitor, PerProcessor, Procnotify, TargetedDpc};
use procnotify_core::{ADD_EXISTING, Driver, Identity, Level, NtStatus, Os, ProcNumber, RawNotification, Sink};

use crate::alloc::SimAllocator;
use crate::kernel::{Handle, NotifyContext, SimKernel};

/// The simulator as an [`Os`], for the driver whose [`Identity`] is `I`:
/// the engine's lines carry `I::NAME` and every allocation is made under
/// `I::POOL_TAG` (the pool records it: [`SimAllocator::tags`]). procnotify's
/// own identity is the default.
pub struct SimOs<I: Identity = Procnotify> {
    kernel: SimKernel,
    _identity: PhantomData<fn() -> I>,
}

impl<I: Identity> Clone for SimOs<I> {
    fn clone(&self) -> Self {
        Self::with_identity(&self.kernel)
    }
}

impl SimOs {
    /// procnotify's OS interface of `kernel`.
    #[must_use]
    pub fn new(kernel: &SimKernel) -> Self {
        Self::with_identity(kernel)
    }
}

impl<I: Identity> SimOs<I> {
    /// The OS interface of `kernel` for the driver named by `I`:
    /// `SimOs::<MyDriver>::with_identity(&kernel)`.
    #[must_use]
    pub fn with_identity(kernel: &SimKernel) -> Self {
        Self { kernel: kernel.clone(), _identity: PhantomData }
    }

    /// The kernel behind it.
    #[must_use]
    pub fn kernel(&self) -> &SimKernel {
        &self.kernel
    }
}

/// procnotify's own hooks over the simulator: exactly what the Windows
/// driver runs, with [`SimDpc`] in place of a `KDPC`.
pub type SimMonitor = Monitor<SimDpc>;

/// procnotify's driver loaded in the simulator.
pub type SimDriver = Driver<SimOs, SimMonitor>;

impl SimOs {
    /// Loads procnotify's own driver (its [`Monitor`] hooks) into `kernel`.
    ///
    /// # Errors
    ///
    /// The status the load failed with.
    pub fn load_monitor(kernel: &SimKernel) -> Result<SimDriver, NtStatus> {
        Monitor::load(Self::new(kernel))
    }
}

/// The simulator's `PROCESSOR_CALLBACK_FUNCTION` for a sink of type `S`.
fn trampoline<S: Sink>(context: *mut c_void, change: &NotifyContext, operation_status: &mut NtStatus) {
    // SAFETY: `context` is the `S` passed to `register`; the simulated kernel
    // checks it is inside a live allocation before calling.
    let sink = unsafe { &*context.cast_const().cast::<S>() };
    let notification = RawNotification {
        state: change.state,
        index: change.nt_number,
        status: change.status,
        proc_number: change.proc_number,
    };
    if let Some(veto) = sink.on_notification(notification) {
        *operation_status = veto;
    }
}

// SAFETY: `deregister` unlinks and waits for running callbacks; `register`
// calls back only with the given sink; `flush_dpcs` waits for queued DPCs.
unsafe impl<I: Identity> Os for SimOs<I> {
    type Identity = I;
    type Allocator = SimAllocator;
    type Registration = Handle;

    fn allocator(&self) -> SimAllocator {
        self.kernel.pool().tagged(I::POOL_TAG)
    }

    fn max_processors(&self) -> u32 {
        self.kernel.config().reported_max
    }

    fn active_processors(&self) -> u32 {
        self.kernel.processor_count()
    }

    fn current_processor(&self) -> u32 {
        SimKernel::current_processor()
    }

    fn current_thread(&self) -> Option<NonZeroUsize> {
        Some(SimKernel::current_thread())
    }

    fn log(&self, level: Level, args: fmt::Arguments<'_>) {
        self.kernel.log(level, args.to_string());
    }

    unsafe fn register<S: Sink>(&self, sink: NonNull<S>) -> Option<Handle> {
        self.kernel.register(trampoline::<S>, sink.as_ptr().cast(), ADD_EXISTING)
    }

    fn deregister(&self, registration: Handle) {
        self.kernel.deregister(registration);
    }

    fn flush_deferred(&self) {
        self.kernel.flush_dpcs();
    }
}

/// The simulator's per-processor DPC: what the Windows layer's `KDPC` is
/// there. It remembers nothing but the kernel to queue itself on; its routine
/// receives the whole value's address as its context (no lookup), as on
/// Windows, where the value's address travels as the DPC's first system
/// argument.
pub struct SimDpc<I: Identity = Procnotify> {
    os: SimOs<I>,
}

// SAFETY: the routine `queue` queues runs once per queueing (the simulated
// kernel's DPC queue), reads its value only through `PerProcessor::
// from_context` with the pointer `queue` took from `value`, and runs on the
// worker that `SimOs::flush_deferred` (`SimKernel::flush_dpcs`) waits for;
// `init` writes `place` or returns `Err` without touching it.
unsafe impl<I: Identity> TargetedDpc for SimDpc<I> {
    type Os = SimOs<I>;

    fn init<'a>(os: &SimOs<I>, place: &'a mut MaybeUninit<Self>) -> Result<&'a mut Self, NtStatus> {
        if os.kernel.payload_init_should_fail() {
            return Err(NtStatus::INSUFFICIENT_RESOURCES);
        }
        os.kernel.payload_created();
        Ok(place.write(Self { os: os.clone() }))
    }

    unsafe fn queue(value: &PerProcessor<Self>, os: &SimOs<I>, target: ProcNumber) -> Result<bool, NtStatus> {
        // Target by group and number, as KeSetTargetProcessorDpcEx does.
        let processor = os.kernel.index_from_number(target).ok_or(NtStatus::INVALID_PARAMETER)?;
        // The whole value's address, from the reference the engine gave the
        // hook: its provenance covers the value (not only the DPC field),
        // and the caller keeps it alive until the flush.
        let context = NonNull::from(value).cast::<c_void>();
        os.kernel.queue_dpc(processor, dpc_routine::<I>, context);
        Ok(true)
    }
}

impl<I: Identity> Drop for SimDpc<I> {
    fn drop(&mut self) {
        self.os.kernel.payload_dropped();
    }
}

/// The simulator's DPC routine: the read path on the target processor,
/// reached from its context alone, as on Windows.
fn dpc_routine<I: Identity>(context: NonNull<c_void>) {
    // SAFETY: `context` is the pointer `SimDpc::queue` took from a
    // `&PerProcessor<SimDpc<I>>`, which its caller keeps alive until the
    // flush; the simulated kernel pinned its allocation for this call.
    let value = unsafe { PerProcessor::<SimDpc<I>>::from_context(context.cast()) };
    value.visit(&value.dpc().os);
}
