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
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::hooks::{Cpu, Hooks};
use crate::identity::{Identity, Name, PoolTag};
use crate::os::Os;
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
/// processor. Its routine must call [`PerProcessor::from_dpc`] with the
/// DPC's own address and then [`PerProcessor::visit`].
pub trait TargetedDpc: Send + Sync + Sized {
    /// The OS the DPC belongs to.
    type Os: Os;

    /// Initialises the DPC in place (`KeInitializeDpc`) and returns the
    /// reference `place.write(..)` gave. The DPC never moves afterwards.
    ///
    /// # Errors
    ///
    /// A failing status vetoes the processor's `AddStart`.
    fn init<'a>(os: &Self::Os, place: &'a mut MaybeUninit<Self>) -> Result<&'a mut Self, NtStatus>;

    /// Targets the DPC at `target` and queues it. `Ok(false)` when it was
    /// already queued.
    ///
    /// # Errors
    ///
    /// The status of targeting it (`KeSetTargetProcessorDpcEx`).
    fn queue(&self, os: &Self::Os, target: ProcNumber) -> Result<bool, NtStatus>;
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

/// procnotify's per-processor value. `repr(C)` with the DPC first, so the
/// DPC's address is the value's address ([`PerProcessor::from_dpc`]).
///
/// The counters are written by the serialised hooks (and `visits` by the DPC
/// on the processor itself) and read by anyone: `Relaxed` throughout, they
/// are statistics and publish nothing.
#[repr(C)]
pub struct PerProcessor<D> {
    dpc: D,
    index: u32,
    starts: AtomicU32,
    completes: AtomicU32,
    failures: AtomicU32,
    visits: AtomicU64,
}

const _: () = assert!(core::mem::offset_of!(PerProcessor<u64>, dpc) == 0);

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

    /// The value whose DPC is at `dpc`: the read path of a DPC routine, which
    /// receives its DPC's address and so needs no lookup.
    ///
    /// # Safety
    ///
    /// `dpc` is the address of the `dpc` field of a live `PerProcessor<D>`
    /// that outlives `'a` (for the Windows layer: the `PKDPC` the kernel
    /// passes to the routine of a DPC initialised by [`TargetedDpc::init`]
    /// inside a table slot; unload flushes DPCs before freeing the table).
    pub unsafe fn from_dpc<'a>(dpc: NonNull<D>) -> &'a Self {
        // SAFETY: `dpc` is the first field of a `repr(C)` `PerProcessor<D>`
        // (offset 0, checked above), so the addresses coincide; liveness is
        // the caller's promise.
        unsafe { dpc.cast::<Self>().as_ref() }
    }
}

/// procnotify's [`Hooks`]: a [`PerProcessor`] for each processor, a DPC to it
/// when it comes online.
pub struct Monitor<D: TargetedDpc> {
    os: D::Os,
}

impl<D: TargetedDpc> Monitor<D> {
    /// Hooks that queue DPCs through `os`.
    pub fn new(os: D::Os) -> Self {
        Self { os }
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
        match value.dpc.queue(&self.os, cpu.number) {
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
