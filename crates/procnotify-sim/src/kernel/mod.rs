//! The simulated kernel: `KeRegisterProcessorChangeCallback`,
//! `KeDeregisterProcessorChangeCallback`, `KeStartDynamicProcessor`, DPCs and
//! the current-processor query, in the order `processor-change-semantics.md`
//! describes.
//!
//! One module per concept: `events` (the trace), `registration`
//! (register, deregister, calling a callback), `hot_add`, `faults`
//! (fault planning) and `dpc` (DPCs and the current processor). This module
//! holds the machine itself: its boot parameters, the shared state, and the
//! queries on it.

mod dpc;
mod events;
mod faults;
mod hot_add;
mod registration;

use std::string::String;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};

// parking_lot's locks (std's under Miri): see `crate::locks`.
use crate::locks::{Mutex, MutexGuard};
use std::vec::Vec;

use procnotify_core::{GROUP_SIZE, MAX_PROCESSORS, ProcNumber};

pub use events::{KernelEvent, SimEvent};
pub use faults::PendingFaults;
pub use hot_add::{HotAdd, Refusal, StartHook};
pub use registration::{Gate, Handle, NotifyContext, OtherCallback, RawCallback};

use crate::alloc::SimAllocator;
use dpc::DpcQueue;
use faults::Faults;
use registration::Registration;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock()
}

/// Kernel boot parameters.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Processors present at boot (`KeNumberProcessors`).
    pub boot: u32,
    /// The partition's maximum (a `numproc` limit lowers it); at most 2048.
    pub max: u32,
    /// What `KeQueryMaximumProcessorCountEx` reports; normally `max`.
    pub reported_max: u32,
    /// Whether the platform supports dynamic processor add.
    pub dynamic_partitioning: bool,
}

impl Config {
    /// `boot` processors now, up to `max` by hot-add (clamped to 2048).
    #[must_use]
    pub fn new(boot: u32, max: u32) -> Self {
        let max = max.clamp(1, MAX_PROCESSORS);
        Self { boot: boot.clamp(1, max), max, reported_max: max, dynamic_partitioning: true }
    }
}

struct Inner {
    config: Config,
    /// `KiDynamicProcessorLock`, guarding `KeNumberProcessors`.
    dynamic: Mutex<u32>,
    /// Readable copy of the processor count for code that must not lock.
    count: AtomicU32,
    /// `\Callback\ProcessorAdd`: registrations in order.
    registrations: Mutex<Vec<Arc<Registration>>>,
    next_id: AtomicU64,
    running: Vec<AtomicBool>,
    events: Mutex<Vec<SimEvent>>,
    pool: SimAllocator,
    faults: Mutex<Faults>,
    payloads_live: AtomicI64,
    gate: Mutex<Option<Arc<Gate>>>,
    deregistrations_waiting: AtomicU32,
    dpcs: Arc<DpcQueue>,
    /// The DPC worker, started on the first DPC; joined when the kernel goes.
    dpc_worker: Mutex<Option<std::thread::JoinHandle<()>>>,
    start_hook: Mutex<Option<StartHook>>,
}

/// The simulated kernel. Clones share one machine.
#[derive(Clone)]
pub struct SimKernel {
    inner: Arc<Inner>,
}

impl SimKernel {
    /// Boots a machine.
    #[must_use]
    pub fn boot(config: Config) -> Self {
        let running = (0..config.max).map(|index| AtomicBool::new(index < config.boot)).collect();
        Self {
            inner: Arc::new(Inner {
                config,
                dynamic: Mutex::new(config.boot),
                count: AtomicU32::new(config.boot),
                registrations: Mutex::new(Vec::new()),
                next_id: AtomicU64::new(1),
                running,
                events: Mutex::new(Vec::new()),
                pool: SimAllocator::new(),
                faults: Mutex::new(Faults::default()),
                payloads_live: AtomicI64::new(0),
                gate: Mutex::new(None),
                deregistrations_waiting: AtomicU32::new(0),
                dpcs: Arc::new(DpcQueue::default()),
                dpc_worker: Mutex::new(None),
                start_hook: Mutex::new(None),
            }),
        }
    }

    /// The boot parameters.
    #[must_use]
    pub fn config(&self) -> Config {
        self.inner.config
    }

    /// The non-paged pool.
    #[must_use]
    pub fn pool(&self) -> &SimAllocator {
        &self.inner.pool
    }

    /// `KeNumberProcessors`.
    #[must_use]
    pub fn processor_count(&self) -> u32 {
        self.inner.count.load(Ordering::Acquire)
    }

    /// Whether processor `index` runs code (set when the HAL starts it,
    /// before `AddComplete`).
    #[must_use]
    pub fn is_running(&self, index: u32) -> bool {
        self.inner.running.get(index as usize).is_some_and(|flag| flag.load(Ordering::Acquire))
    }

    pub(crate) fn payload_created(&self) {
        self.inner.payloads_live.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn payload_dropped(&self) {
        self.inner.payloads_live.fetch_sub(1, Ordering::Relaxed);
    }

    /// Slot payloads initialised and not yet dropped.
    #[must_use]
    pub fn payloads_live(&self) -> i64 {
        self.inner.payloads_live.load(Ordering::Relaxed)
    }

    /// Use-after-free and double-free findings of the pool and the kernel.
    #[must_use]
    pub fn violations(&self) -> Vec<String> {
        self.inner.pool.violations()
    }

    /// The index Windows would give group `group`, number `number`
    /// (`KeGetProcessorIndexFromNumber`), if it exists.
    #[must_use]
    pub fn index_from_number(&self, proc_number: ProcNumber) -> Option<u32> {
        let index = u32::from(proc_number.group) * GROUP_SIZE + u32::from(proc_number.number);
        (u32::from(proc_number.number) < GROUP_SIZE && index < self.inner.config.max).then_some(index)
    }
}
