//! A loom-aware fake of the kernel the engine runs on, [`LoomOs`]:
//!
//! - `register` delivers the existing processors' notifications
//!   synchronously, as Windows does; a "kernel" thread delivers a hot-add's
//!   notifications under the registration lock, which `deregister` takes (so
//!   deregistration waits for a running callback, as
//!   `KeDeregisterProcessorChangeCallback` does);
//! - DPCs (queued by [`ProbeHooks::online`] or by procnotify's `Monitor`
//!   through [`LoomDpc`]) carry the address of the whole value, as
//!   `PerProcessor::from_context` expects; a "DPC" thread runs queued DPCs
//!   under the DPC lock, which `flush_deferred` takes and empties (so no DPC
//!   runs after the flush, as `KeFlushQueuedDpcs` guarantees);
//! - dropping the OS the context owns marks the context freed: a callback
//!   or DPC that finds it freed fails the model.

use core::cell::Cell;
use core::fmt;
use core::mem::MaybeUninit;
use core::num::NonZeroUsize;
use core::ptr::NonNull;
use std::sync::atomic::{AtomicU32 as StdAtomicU32, Ordering as StdOrdering};
use std::vec::Vec;

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, Mutex};

use super::{Heap, Probe};
use crate::hooks::{Cpu, Hooks};
use crate::monitor::{PerProcessor, TargetedDpc};
use crate::os::{Os, Sink};
use crate::values::{Level, NotifyState, NtStatus, ProcNumber, RawNotification};

loom::thread_local! {
    /// The simulated processor a model thread runs on.
    static CPU: Cell<u32> = Cell::new(0);
    /// A byte whose address identifies the model thread (`current_thread`).
    static THREAD: u8 = 0;
}

pub(crate) fn on_cpu<R>(cpu: u32, f: impl FnOnce() -> R) -> R {
    CPU.with(|current| current.set(cpu));
    f()
}

/// Calls a registered sink, erased to its address.
type Deliver = unsafe fn(NonNull<()>, RawNotification) -> Option<NtStatus>;

/// # Safety
///
/// `sink` points to a live `S`.
unsafe fn deliver<S: Sink>(sink: NonNull<()>, n: RawNotification) -> Option<NtStatus> {
    // SAFETY: the caller's contract.
    unsafe { sink.cast::<S>().as_ref() }.on_notification(n)
}

/// A registered sink.
#[derive(Clone, Copy)]
struct Registered {
    sink: NonNull<()>,
    deliver: Deliver,
}

// SAFETY: the sink is `Sync` (`Sink: Sync`) and stays alive while
// registered (`Os::register`'s contract); the kernel calls it from its own
// threads as Windows does.
unsafe impl Send for Registered {}

/// A queued DPC: `routine(context, os)` on processor `cpu`.
struct Dpc {
    routine: unsafe fn(NonNull<()>, &LoomOs),
    context: NonNull<()>,
    cpu: u32,
}

// SAFETY: whoever queued it keeps `context` alive until the flush (the
// `TargetedDpc::queue` contract); it is only read, by the DPC thread.
unsafe impl Send for Dpc {}

/// What the fake kernel shares between its threads.
#[derive(Default)]
pub(crate) struct Kernel {
    /// The registered sink (`\Callback\ProcessorAdd`).
    registration: Mutex<Option<Registered>>,
    /// Queued DPCs.
    dpcs: Mutex<Vec<Dpc>>,
    /// Set when the context is being freed (its OS is dropped).
    pub(crate) freed: AtomicBool,
    /// How often `LoomDpc::init` ran (each index must be initialised once).
    pub(crate) dpc_inits: StdAtomicU32,
    /// Error lines logged. Like `dpc_inits`, a `std` atomic: bookkeeping
    /// for the model's assertions, invisible to loom (no interleavings of
    /// its own).
    pub(crate) errors: StdAtomicU32,
}

impl Kernel {
    /// Delivers `states` for `index`, in order, to the registered callback
    /// under the registration lock, as the kernel delivers one hot-add.
    /// `AddFailure` carries `STATUS_UNSUCCESSFUL`. Whether a callback was
    /// registered.
    pub(crate) fn deliver(&self, index: u32, states: &[NotifyState]) -> bool {
        let registration = self.registration.lock().expect("registration lock");
        let Some(Registered { sink, deliver }) = *registration else { return false };
        assert!(!self.freed.load(Ordering::SeqCst), "callback into a freed context");
        for &state in states {
            let mut n = RawNotification::dense(state, index);
            if state == NotifyState::AddFailure {
                n.status = NtStatus::UNSUCCESSFUL;
            }
            // SAFETY: registered, and deregistration waits for this lock.
            assert_eq!(unsafe { deliver(sink, n) }, None, "{state:?} vetoed");
        }
        true
    }

    /// A hot-add of `index`: `AddStart` then `AddComplete`.
    pub(crate) fn hot_add(&self, index: u32) -> bool {
        self.deliver(index, &[NotifyState::AddStart, NotifyState::AddComplete])
    }

    /// The DPC processor: runs the oldest queued DPC, if any, with `os` as
    /// the routine's OS. The processor it ran on, if it ran one.
    pub(crate) fn run_dpc(&self, os: &LoomOs) -> Option<u32> {
        let mut dpcs = self.dpcs.lock().expect("DPC lock");
        if dpcs.is_empty() {
            return None;
        }
        let dpc = dpcs.remove(0);
        assert!(!self.freed.load(Ordering::SeqCst), "DPC on a freed context");
        // SAFETY: `flush_deferred` empties the queue under this lock before
        // the context is freed; the routine was queued with this context.
        on_cpu(dpc.cpu, || unsafe { (dpc.routine)(dpc.context, os) });
        Some(dpc.cpu)
    }

    fn queue(&self, dpc: Dpc) {
        self.dpcs.lock().expect("DPC lock").push(dpc);
    }
}

/// The fake OS. Only the one the context owns marks the context freed when
/// dropped ([`LoomOs::clone`] gives a copy that does not).
pub(crate) struct LoomOs {
    pub(crate) kernel: Arc<Kernel>,
    /// Processors present at registration, replayed by `register`.
    boot: u32,
    /// What `active_processors` reports (the table's first segment).
    active: u32,
    /// Whether `current_thread` tells threads apart.
    threads: bool,
    owner: bool,
}

impl LoomOs {
    /// An OS with `boot` processors present, reporting one active processor
    /// and no thread identity.
    pub(crate) fn new(kernel: &Arc<Kernel>, boot: u32) -> Self {
        Self { kernel: Arc::clone(kernel), boot, active: 1, threads: false, owner: true }
    }

    /// A copy for a model thread (the DPC processor's routines): dropping
    /// it marks nothing.
    pub(crate) fn observer(kernel: &Arc<Kernel>) -> Self {
        Self { kernel: Arc::clone(kernel), boot: 0, active: 1, threads: false, owner: false }
    }

    /// Reports `active` processors, as the production layout does (the
    /// table's first segment holds them).
    pub(crate) fn active(mut self, active: u32) -> Self {
        self.active = active;
        self
    }

    /// Tells threads apart (`current_thread`), as Windows does.
    pub(crate) fn with_threads(mut self) -> Self {
        self.threads = true;
        self
    }
}

impl Clone for LoomOs {
    fn clone(&self) -> Self {
        Self {
            kernel: Arc::clone(&self.kernel),
            boot: self.boot,
            active: self.active,
            threads: self.threads,
            owner: false,
        }
    }
}

impl Drop for LoomOs {
    fn drop(&mut self) {
        if self.owner {
            self.kernel.freed.store(true, Ordering::SeqCst);
        }
    }
}

// SAFETY: `register` calls back only with the given sink; `deregister` and
// `flush_deferred` wait for running callbacks and DPCs (their locks) and no
// callback or DPC runs after them.
unsafe impl Os for LoomOs {
    type Identity = crate::monitor::Procnotify;
    type Allocator = Heap;
    type Registration = ();

    fn allocator(&self) -> Heap {
        Heap
    }
    fn max_processors(&self) -> u32 {
        4
    }
    fn active_processors(&self) -> u32 {
        self.active
    }
    fn current_processor(&self) -> u32 {
        CPU.with(Cell::get)
    }
    fn current_thread(&self) -> Option<NonZeroUsize> {
        if !self.threads {
            return None;
        }
        THREAD.with(|byte| NonZeroUsize::new(core::ptr::from_ref(byte).addr()))
    }
    fn log(&self, level: Level, _: fmt::Arguments<'_>) {
        if level == Level::Error {
            self.kernel.errors.fetch_add(1, StdOrdering::Relaxed);
        }
    }

    unsafe fn register<S: Sink>(&self, sink: NonNull<S>) -> Option<()> {
        let sink = sink.cast::<()>();
        let mut registration = self.kernel.registration.lock().expect("registration lock");
        *registration = Some(Registered { sink, deliver: deliver::<S> });
        for state in [NotifyState::AddStart, NotifyState::AddComplete] {
            for index in 0..self.boot {
                // SAFETY: the caller keeps the sink alive while registered.
                assert_eq!(unsafe { deliver::<S>(sink, RawNotification::dense(state, index)) }, None);
            }
        }
        Some(())
    }

    fn deregister(&self, (): ()) {
        // Waits for a callback holding the lock; none runs afterwards.
        *self.kernel.registration.lock().expect("registration lock") = None;
    }

    fn flush_deferred(&self) {
        // Waits for a running DPC; none runs afterwards.
        self.kernel.dpcs.lock().expect("DPC lock").clear();
    }
}

/// Hooks that write through loom-tracked cells: `init` the tag, `starting`
/// the armed flag; `online` queues a DPC that visits the probe.
pub(crate) struct ProbeHooks {
    pub(crate) kernel: Arc<Kernel>,
}

/// The DPC routine of [`ProbeHooks`].
///
/// # Safety
///
/// `context` points to a live `Probe`.
unsafe fn visit_probe(context: NonNull<()>, _: &LoomOs) {
    // SAFETY: the caller's contract.
    unsafe { context.cast::<Probe>().as_ref() }.visit();
}

impl Hooks for ProbeHooks {
    type Value = Probe;

    fn init<'a>(&self, cpu: Cpu, place: &'a mut MaybeUninit<Probe>) -> Result<&'a mut Probe, NtStatus> {
        Ok(Probe::init(place, cpu.index))
    }

    fn starting(&self, _: Cpu, value: &Probe) -> Result<(), NtStatus> {
        value.arm();
        Ok(())
    }

    fn online(&self, cpu: Cpu, value: &Probe) {
        self.kernel.queue(Dpc { routine: visit_probe, context: NonNull::from(value).cast(), cpu: cpu.index });
    }
}

/// procnotify's `Monitor` over this kernel: a DPC whose `init` writes a
/// loom-tracked tag (so a reader or routine that reads it unordered with
/// `init` fails the model) and whose `queue` hands the fake kernel the
/// address of the whole `PerProcessor`, as the Windows layer does.
pub(crate) struct LoomDpc {
    /// [`LoomDpc::TAG`], written once by `init` (through the cell, so that
    /// loom records the write).
    tag: loom::cell::UnsafeCell<u32>,
}

// SAFETY: `tag` is written only by `init`, before the value is linked, and
// only read afterwards (loom checks exactly this).
unsafe impl Sync for LoomDpc {}

impl LoomDpc {
    /// What `init` writes.
    pub(crate) const TAG: u32 = 0xD9C;

    pub(crate) fn tag(&self) -> u32 {
        // SAFETY: only read once published (loom checks the ordering).
        self.tag.with(|tag| unsafe { *tag })
    }
}

/// The DPC routine of [`LoomDpc`]: what the Windows layer's routine does
/// (`PerProcessor::from_context`, then `visit`), plus checks that it sees
/// what `init` and the hooks wrote before the DPC was queued.
///
/// # Safety
///
/// `context` is the pointer `LoomDpc::queue` derived from a live value.
unsafe fn monitor_dpc(context: NonNull<()>, os: &LoomOs) {
    // SAFETY: the caller's contract (`TargetedDpc::queue` keeps it alive
    // until the flush, which waits for this routine).
    let value = unsafe { PerProcessor::<LoomDpc>::from_context(context.cast()) };
    assert_eq!(value.dpc().tag(), LoomDpc::TAG, "the routine does not see `init`'s write");
    let counters = value.counters();
    // The `online` hook counted the completion before it queued the DPC, and
    // the queue's lock orders that count before this read.
    assert!(
        counters.starts >= 1 && counters.completes >= 1,
        "the routine does not see the hooks' counts: {counters:?}"
    );
    assert_eq!(os.current_processor(), value.index(), "the DPC ran on another processor");
    value.visit(os);
}

// SAFETY: a queued routine runs at most once (the kernel removes it from the
// queue), reads the value only through `from_context` with the pointer
// `queue` derived from the whole value, and `flush_deferred` empties the
// queue under the lock the DPC thread runs routines under. `init` writes
// `place` and returns its reference.
unsafe impl TargetedDpc for LoomDpc {
    type Os = LoomOs;

    fn init<'a>(os: &LoomOs, place: &'a mut MaybeUninit<Self>) -> Result<&'a mut Self, NtStatus> {
        os.kernel.dpc_inits.fetch_add(1, StdOrdering::Relaxed);
        let dpc = place.write(Self { tag: loom::cell::UnsafeCell::new(0) });
        // SAFETY: not shared yet (the slot is unlinked).
        dpc.tag.with_mut(|tag| unsafe { *tag = Self::TAG });
        Ok(dpc)
    }

    unsafe fn queue(value: &PerProcessor<Self>, os: &LoomOs, target: ProcNumber) -> Result<bool, NtStatus> {
        let cpu = u32::from(target.group) * crate::values::GROUP_SIZE + u32::from(target.number);
        os.kernel.queue(Dpc { routine: monitor_dpc, context: NonNull::from(value).cast(), cpu });
        Ok(true)
    }
}
