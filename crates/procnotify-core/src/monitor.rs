//! procnotify's own per-processor value and hooks: counters of what each
//! processor went through, and a DPC (deferred procedure call) queued to
//! each processor when it comes online, whose routine bumps that
//! processor's visit counter — proof that code on the new processor can
//! reach its own state.
//!
//! Generic over [`TargetedDpc`] so that the Windows driver (a `KDPC`) and the
//! simulator (a simulated DPC) run the very same hooks and print the very
//! same lines. Another driver would write its own [`Hooks`]; this is one
//! worked example of them.

use core::mem::MaybeUninit;
use core::ptr::{self, NonNull};

use crate::driver::{Driver, DriverCell};
use crate::hooks::{Cpu, Hooks};
use crate::identity::{Identity, Name, PoolTag};
use crate::os::Os;
use crate::sync::{AtomicU32, AtomicU64, Ordering};
use crate::trace;
use crate::values::{Level, NtStatus, ProcNumber};

/// procnotify's own [`Identity`]: its log lines start with `procnotify:` and
/// its pool allocations carry the tag `PNfy` (`!poolused 2 PNfy`). Defined
/// here, beside procnotify's own per-processor value, and only here: the
/// driver (`src/entry.rs`) and the simulator name it; the engine never does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Procnotify;

impl Identity for Procnotify {
    const NAME: Name = crate::name!("procnotify");
    const POOL_TAG: PoolTag = crate::pool_tag!(b"PNfy");
}

/// A DPC that lives inside a [`PerProcessor`] and can be targeted at one
/// processor: a `KDPC` on Windows, a simulated one in the simulator.
///
/// Only [`Monitor`] queues one ([`TargetedDpc::queue`] is `unsafe`), and it
/// passes the DPC the address of the *whole* value (derived from the
/// `&PerProcessor` the engine handed to the `online` hook), so the routine
/// finds its value through [`PerProcessor::from_context`] without a lookup
/// and without computing a container's address from a field's.
///
/// # Safety
///
/// An implementation promises that:
///
/// - the routine of a DPC queued by `queue(value, ..)` runs at most once
///   per successful queueing, calls [`PerProcessor::from_context`] with the
///   pointer `queue` derived from `value` (and dereferences nothing else of
///   the value's memory), and may then call [`PerProcessor::visit`];
/// - after [`Os::flush_deferred`] of `Self::Os` returns, no routine queued
///   before it runs or will run (the DPCs go where that flush waits);
/// - `init` leaves `place` initialised when it returns `Ok` (the engine
///   checks it returned `place`'s own reference) and uninitialised when it
///   returns `Err`.
pub unsafe trait TargetedDpc: Send + Sync + Sized {
    /// The OS the DPC belongs to.
    type Os: Os;

    /// Initialises the DPC in place (`KeInitializeDpc`) and returns the
    /// reference `place.write(..)` gave. Harmless on its own: a DPC that is
    /// never queued needs nothing else.
    ///
    /// # Errors
    ///
    /// A failing status vetoes the processor's `AddStart`; `place` is then
    /// left uninitialised.
    fn init<'a>(os: &Self::Os, place: &'a mut MaybeUninit<Self>) -> Result<&'a mut Self, NtStatus>;

    /// Targets `value`'s DPC at `target` and queues it, with a pointer to
    /// the whole `value` as the context its routine receives. `Ok(false)`
    /// when it was already queued.
    ///
    /// # Errors
    ///
    /// The status of targeting it (`KeSetTargetProcessorDpcEx`).
    ///
    /// # Safety
    ///
    /// `value` stays at its address, alive, until `os.flush_deferred()` has
    /// returned after this call: the routine reads it.
    unsafe fn queue(value: &PerProcessor<Self>, os: &Self::Os, target: ProcNumber) -> Result<bool, NtStatus>;
}

/// What a processor went through, as [`PerProcessor::counters`] reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Accepted `AddStart`s (the `starting` hook ran).
    pub starts: u32,
    /// `AddComplete`s that brought it online.
    pub completes: u32,
    /// `AddFailure`s that reverted a `Starting` slot.
    pub failures: u32,
    /// Times its DPC ran on it.
    pub visits: u64,
}

/// procnotify's per-processor value. `repr(C)` with the DPC first, so a
/// debugger shows the `KDPC` at the value's address (nothing relies on it:
/// the DPC's routine gets the value's own address, see [`TargetedDpc`]).
///
/// The counters are written by the serialised hooks (and `visits` by the DPC
/// on the processor itself) and read by anyone: `Relaxed` throughout, they
/// are statistics and publish nothing. (A reader that saw the slot
/// `Starting` or `Online` nevertheless sees the `starting` hook's count: the
/// slot state's Release/Acquire orders it, as the loom models check.)
#[repr(C)]
pub struct PerProcessor<D> {
    dpc: D,
    index: u32,
    starts: AtomicU32,
    completes: AtomicU32,
    failures: AtomicU32,
    visits: AtomicU64,
}

impl<D> PerProcessor<D> {
    /// The processor's DPC.
    pub fn dpc(&self) -> &D {
        &self.dpc
    }

    /// The processor's system-wide index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// A copy of the counters.
    pub fn counters(&self) -> Counters {
        Counters {
            starts: self.starts.load(Ordering::Relaxed),
            completes: self.completes.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            visits: self.visits.load(Ordering::Relaxed),
        }
    }

    /// The DPC's work: bumps the visit counter and logs
    /// `procnotify: visit index=.. visits=..`. Returns the new count.
    /// Wait-free; runs at `DISPATCH_LEVEL`.
    #[cfg_attr(procnotify_no_panic, no_panic::no_panic)]
    pub fn visit<O: Os>(&self, os: &O) -> u64 {
        let visits = self.visits.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        trace::log(os, Level::Trace, format_args!("{}", trace::Visit { index: self.index, visits }));
        visits
    }

    /// The value a DPC's routine was queued for: the read path of the
    /// routine, which receives the value's address as its context and so
    /// needs no lookup.
    ///
    /// # Safety
    ///
    /// `context` is the pointer a [`TargetedDpc::queue`] derived from a
    /// `&PerProcessor<D>` (its provenance covers the whole value), and the
    /// value is still alive for `'a` (`queue`'s contract keeps it so until
    /// the OS flushed its DPCs, which unload does before freeing the table).
    #[inline]
    pub unsafe fn from_context<'a>(context: NonNull<Self>) -> &'a Self {
        // SAFETY: a live, initialised value (the caller's contract), only
        // ever shared once initialised.
        unsafe { context.as_ref() }
    }
}

/// procnotify's [`Hooks`]: a [`PerProcessor`] for each processor, a DPC to it
/// when it comes online.
///
/// Its `online` hook queues a DPC that reads the value later, so the value
/// must outlive the DPC: true of the values of the engine's table, which a
/// [`Context`](crate::Context) frees only after flushing DPCs, and which
/// nobody but the engine hands to the hooks. Hence the ways to get one:
/// [`Monitor::load`] and [`Monitor::load_into`], safe, hand it straight to
/// the engine; [`Monitor::new`] is `unsafe` for anything else.
pub struct Monitor<D: TargetedDpc> {
    os: D::Os,
}

impl<D: TargetedDpc> Monitor<D> {
    /// Hooks that queue DPCs through `os`.
    ///
    /// # Safety
    ///
    /// Every value the hooks' `online` is called with must stay at its
    /// address, alive, until `Os::flush_deferred` returned after that call
    /// (its DPC reads it). Handing the hooks to the engine
    /// ([`Driver::load`], [`DriverCell::load`], [`Context::new`](crate::Context::new))
    /// and calling none of them yourself meets this: the engine calls them
    /// only with the values of its table, flushes DPCs before freeing them,
    /// and gives out no reference to the hooks.
    pub unsafe fn new(os: D::Os) -> Self {
        Self { os }
    }

    /// Loads procnotify's driver: these hooks over `os`
    /// ([`Driver::load`]).
    ///
    /// # Errors
    ///
    /// The status the load failed with.
    pub fn load(os: D::Os) -> Result<Driver<D::Os, Self>, NtStatus>
    where
        D::Os: Clone,
    {
        // SAFETY: handed straight to the engine (see `new`).
        let hooks = unsafe { Self::new(os.clone()) };
        Driver::load(os, hooks)
    }

    /// Loads procnotify's driver into `cell` ([`DriverCell::load`]).
    pub fn load_into(cell: &DriverCell<D::Os, Self>, os: D::Os) -> NtStatus
    where
        D::Os: Clone,
    {
        // SAFETY: handed straight to the engine (see `new`).
        let hooks = unsafe { Self::new(os.clone()) };
        cell.load(os, hooks)
    }

    /// The OS the hooks use.
    pub fn os(&self) -> &D::Os {
        &self.os
    }
}

impl<D: TargetedDpc> Hooks for Monitor<D> {
    type Value = PerProcessor<D>;

    fn init<'a>(
        &self,
        cpu: Cpu,
        place: &'a mut MaybeUninit<PerProcessor<D>>,
    ) -> Result<&'a mut PerProcessor<D>, NtStatus> {
        let base = place.as_mut_ptr();
        // SAFETY: a field of the (uninitialised) value `place` points to; no
        // reference to uninitialised memory is created, only a raw pointer.
        let dpc = unsafe { &raw mut (*base).dpc };
        // SAFETY: `dpc` is aligned and valid for writes, and `MaybeUninit<D>`
        // has `D`'s layout; nothing else refers to it.
        let slot = unsafe { &mut *dpc.cast::<MaybeUninit<D>>() };
        let written = D::init(&self.os, slot)?;
        if !ptr::eq(written, dpc) {
            return Err(NtStatus::UNSUCCESSFUL);
        }
        // SAFETY: as for `dpc`: a field of the value being initialised.
        let index = unsafe { &raw mut (*base).index };
        // SAFETY: aligned, writable, not yet initialised.
        unsafe { index.write(cpu.index) };
        for counter in [
            // SAFETY: as above, each a field of the value being initialised.
            unsafe { &raw mut (*base).starts },
            // SAFETY: as above.
            unsafe { &raw mut (*base).completes },
            // SAFETY: as above.
            unsafe { &raw mut (*base).failures },
        ] {
            // SAFETY: aligned, writable, not yet initialised.
            unsafe { counter.write(AtomicU32::new(0)) };
        }
        // SAFETY: as above.
        let visits = unsafe { &raw mut (*base).visits };
        // SAFETY: aligned, writable, not yet initialised.
        unsafe { visits.write(AtomicU64::new(0)) };
        // SAFETY: every field was written above.
        Ok(unsafe { place.assume_init_mut() })
    }

    fn starting(&self, _cpu: Cpu, value: &PerProcessor<D>) -> Result<(), NtStatus> {
        value.starts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn online(&self, cpu: Cpu, value: &PerProcessor<D>) {
        value.completes.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the engine calls this hook, and only with a value of its
        // table (the contract of `Monitor::new`), which stays in place until
        // the context flushed DPCs, before it frees the table.
        match unsafe { D::queue(value, &self.os, cpu.number) } {
            Ok(queued) => trace::log(
                &self.os,
                Level::Trace,
                format_args!("{}", trace::DpcQueued { index: cpu.index, number: cpu.number, queued }),
            ),
            Err(status) => trace::log(
                &self.os,
                Level::Error,
                format_args!(
                    "dpc index={} group={} number={} target status={status}",
                    cpu.index, cpu.number.group, cpu.number.number
                ),
            ),
        }
    }

    fn failed(&self, _cpu: Cpu, value: &PerProcessor<D>, _status: NtStatus) {
        value.failures.fetch_add(1, Ordering::Relaxed);
    }
}
