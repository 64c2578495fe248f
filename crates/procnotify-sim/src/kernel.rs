//! The simulated kernel: `KeRegisterProcessorChangeCallback`,
//! `KeDeregisterProcessorChangeCallback`, `KeStartDynamicProcessor`, DPCs and
//! the current-processor query, in the order `processor-change-semantics.md`
//! describes.

use std::boxed::Box;
use std::cell::Cell;
use std::collections::{BTreeSet, VecDeque};
use std::ffi::c_void;
use std::fmt;
use std::string::String;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};

// parking_lot rather than std's locks: compiled from source, its atomics are
// instrumented under ThreadSanitizer, so TSan sees the simulator's locking.
use parking_lot::{Condvar, Mutex, MutexGuard};
use std::vec::Vec;

use procnotify_core::{ADD_EXISTING, GROUP_SIZE, Level, MAX_PROCESSORS, NotifyState as Kind, NtStatus, ProcNumber};

use crate::alloc::SimAllocator;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock()
}

/// `KE_PROCESSOR_CHANGE_NOTIFY_CONTEXT` as the simulator delivers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotifyContext {
    /// 0 `AddStart`, 1 `AddComplete`, 2 `AddFailure`; anything for fault injection.
    pub state: u32,
    /// System-wide index.
    pub nt_number: u32,
    /// Failure reason for `AddFailure`.
    pub status: NtStatus,
    /// Group and number.
    pub proc_number: ProcNumber,
}

/// `PROCESSOR_CALLBACK_FUNCTION`: context, change context, operation status.
pub type RawCallback = fn(context: *mut c_void, change: &NotifyContext, operation_status: &mut NtStatus);

/// A registration handle (`PVOID` on Windows).
#[derive(Debug, PartialEq, Eq)]
pub struct Handle(u64);

impl Handle {
    /// The registration's number in the trace.
    #[must_use]
    pub fn id(&self) -> u64 {
        self.0
    }
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

/// Why a hot-add produced no notifications at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The platform cannot add processors.
    NotSupported,
    /// The processor count is at the maximum.
    AtMaximum,
    /// The kernel failed to prepare the processor's own structures.
    PrepareFailed,
}

/// What a hot-add did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HotAdd {
    /// The processor at this index is running; `AddComplete` was delivered.
    Added(u32),
    /// `AddFailure` was delivered for this index with this status.
    Failed {
        /// The index the add tried (the next add reuses it).
        index: u32,
        /// The failing status: a veto or the HAL's start failure.
        status: NtStatus,
    },
    /// No notifications were delivered.
    Refused(Refusal),
}

/// One thing the kernel did, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelEvent {
    /// A registration was linked into `\Callback\ProcessorAdd`.
    RegisterBegin {
        /// Registration number.
        registration: u64,
        /// Whether `KE_PROCESSOR_CHANGE_ADD_EXISTING` was given.
        add_existing: bool,
    },
    /// A failed registration was unlinked before its `AddFailure`s.
    Unlinked {
        /// Registration number.
        registration: u64,
    },
    /// The register call returned to the driver.
    RegisterReturned {
        /// Registration number.
        registration: u64,
        /// Whether it returned a handle (else NULL).
        handle: bool,
    },
    /// A callback is about to run.
    Callback {
        /// Registration number.
        registration: u64,
        /// The notification delivered.
        change: NotifyContext,
        /// Whether the register call had returned the handle yet.
        handle_returned: bool,
    },
    /// A callback returned a failing `*OperationStatus` (a veto).
    Vetoed {
        /// Registration number.
        registration: u64,
        /// The status it left.
        status: NtStatus,
    },
    /// A hot-add began at this index.
    HotAddBegin {
        /// The new processor's index.
        index: u32,
    },
    /// A hot-add was refused before any notification.
    HotAddRefused {
        /// Why.
        refusal: Refusal,
    },
    /// The HAL started the processor: it runs code from now on.
    ProcessorStarted {
        /// Its index.
        index: u32,
    },
    /// The HAL failed to start the processor.
    ProcessorStartFailed {
        /// Its index.
        index: u32,
        /// The failure.
        status: NtStatus,
    },
    /// `KeDeregisterProcessorChangeCallback` returned.
    Deregistered {
        /// Registration number.
        registration: u64,
    },
}

/// One line of the simulation's trace: the kernel's actions and the
/// driver's log lines, interleaved as they happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimEvent {
    /// Something the kernel did.
    Kernel(KernelEvent),
    /// A line the driver logged.
    Log(Level, String),
    /// A line the test or session wrote into the trace (what it did next).
    Note(String),
}

struct StateName(u32);

impl fmt::Display for StateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Kind::try_from(self.0) {
            Ok(Kind::AddStart) => f.write_str("AddStart"),
            Ok(Kind::AddComplete) => f.write_str("AddComplete"),
            Ok(Kind::AddFailure) => f.write_str("AddFailure"),
            Err(_) => write!(f, "State={}", self.0),
        }
    }
}

impl fmt::Display for SimEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Log(_, line) | Self::Note(line) => f.write_str(line),
            Self::Kernel(event) => match event {
                KernelEvent::RegisterBegin { registration, add_existing } => write!(
                    f,
                    "kernel: KeRegisterProcessorChangeCallback(flags={}) takes KiDynamicProcessorLock, links registration #{registration}; handle not returned yet",
                    if *add_existing { "KE_PROCESSOR_CHANGE_ADD_EXISTING" } else { "0" }
                ),
                KernelEvent::Unlinked { registration } => {
                    write!(
                        f,
                        "kernel: AddStart failed: registration #{registration} unlinked, delivering AddFailure to the processors that succeeded"
                    )
                }
                KernelEvent::RegisterReturned { registration, handle } => write!(
                    f,
                    "kernel: KeRegisterProcessorChangeCallback returns {} (registration #{registration})",
                    if *handle { "the handle" } else { "NULL" }
                ),
                KernelEvent::Callback { registration, change, handle_returned } => write!(
                    f,
                    "kernel:   -> callback #{registration} {} NtNumber={} group={} number={} Status={}{}",
                    StateName(change.state),
                    change.nt_number,
                    change.proc_number.group,
                    change.proc_number.number,
                    change.status,
                    if *handle_returned { "" } else { " (handle not yet returned)" }
                ),
                KernelEvent::Vetoed { registration, status } => {
                    write!(f, "kernel:   <- callback #{registration} vetoed: OperationStatus={status}")
                }
                KernelEvent::HotAddBegin { index } => {
                    write!(f, "kernel: KeStartDynamicProcessor: new processor index={index}")
                }
                KernelEvent::HotAddRefused { refusal } => {
                    write!(f, "kernel: KeStartDynamicProcessor refused ({refusal:?}): no notifications")
                }
                KernelEvent::ProcessorStarted { index } => {
                    write!(f, "kernel: HAL started processor {index}: it runs code now, before AddComplete")
                }
                KernelEvent::ProcessorStartFailed { index, status } => {
                    write!(f, "kernel: HAL failed to start processor {index}: {status}")
                }
                KernelEvent::Deregistered { registration } => write!(
                    f,
                    "kernel: KeDeregisterProcessorChangeCallback(#{registration}) returns: no callback runs any more"
                ),
            },
        }
    }
}

/// Another driver's callback, for veto injection.
pub type OtherCallback = Box<dyn Fn(&NotifyContext) -> NtStatus + Send + Sync>;

enum Target {
    /// A raw callback with its context, like the real API. The kernel checks
    /// the context is still a live pool allocation before every call.
    Raw { callback: RawCallback, context: usize },
    /// Another driver's callback.
    Other(OtherCallback),
}

struct Registration {
    id: u64,
    target: Target,
    /// Callbacks running now, and the condition deregistration waits on.
    in_flight: Mutex<u32>,
    idle: Condvar,
    handle_returned: AtomicBool,
}

/// A one-shot gate that holds the next callback inside the kernel until
/// released, to test that deregistration waits for it.
#[derive(Default)]
pub struct Gate {
    state: Mutex<(bool, bool)>, // (entered, released)
    changed: Condvar,
}

impl Gate {
    /// Blocks until a callback is held at the gate.
    pub fn wait_entered(&self) {
        let mut state = lock(&self.state);
        while !state.0 {
            self.changed.wait(&mut state);
        }
    }

    /// Lets the held callback run.
    pub fn release(&self) {
        lock(&self.state).1 = true;
        self.changed.notify_all();
    }

    fn hold(&self) {
        let mut state = lock(&self.state);
        state.0 = true;
        self.changed.notify_all();
        while !state.1 {
            self.changed.wait(&mut state);
        }
    }
}

/// Kernel faults planned and not yet consumed ([`SimKernel::pending_faults`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PendingFaults {
    /// Registrations still to fail ([`SimKernel::fail_next_register`]).
    pub register: u32,
    /// Hot-adds still to fail in preparation ([`SimKernel::fail_next_prepare`]).
    pub prepare: u32,
    /// Processor starts still to fail ([`SimKernel::fail_next_start`]).
    pub start: usize,
    /// Payload initialisations still to fail ([`SimKernel::fail_payload_init`]).
    pub payload: usize,
    /// Payload initialisations attempted so far (the ordinal of the last one).
    pub payload_attempts: u64,
}

#[derive(Default)]
struct Faults {
    register_failures: u32,
    prepare_failures: u32,
    start_failures: VecDeque<NtStatus>,
    payload_attempts: u64,
    payload_failures: BTreeSet<u64>,
}

/// A deferred procedure call queued to a processor.
struct Dpc {
    processor: u32,
    routine: fn(*const c_void),
    context: usize,
}

#[derive(Default)]
struct DpcQueue {
    queue: Mutex<(VecDeque<Dpc>, u64, bool)>, // (queued, not yet finished, shutdown)
    changed: Condvar,
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

/// Code the simulator runs when the HAL has started a processor, before
/// `AddComplete` (e.g. to wake a test's reader thread for that processor).
pub type StartHook = Arc<dyn Fn(u32) + Send + Sync>;

impl Drop for Inner {
    fn drop(&mut self) {
        lock(&self.dpcs.queue).2 = true;
        self.dpcs.changed.notify_all();
        // Joined, not detached: the worker's last use of the shared pool
        // happens-before everything after this (and ThreadSanitizer sees it).
        if let Some(worker) = self.dpc_worker.get_mut().take() {
            let _ = worker.join();
        }
    }
}

std::thread_local! {
    /// The simulated processor the calling thread runs on.
    static CURRENT: Cell<u32> = const { Cell::new(0) };
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

    /// Runs `f` as code on simulated processor `index` (the calling thread's
    /// current-processor number is `index` while `f` runs).
    pub fn run_on<R>(index: u32, f: impl FnOnce() -> R) -> R {
        let previous = CURRENT.with(|current| current.replace(index));
        let result = f();
        CURRENT.with(|current| current.set(previous));
        result
    }

    /// The calling thread's simulated processor (`KeGetCurrentProcessorNumberEx`).
    #[must_use]
    pub fn current_processor() -> u32 {
        CURRENT.with(Cell::get)
    }

    /// Everything that happened so far.
    #[must_use]
    pub fn events(&self) -> Vec<SimEvent> {
        lock(&self.inner.events).clone()
    }

    /// Only the kernel's events.
    #[must_use]
    pub fn kernel_events(&self) -> Vec<KernelEvent> {
        lock(&self.inner.events)
            .iter()
            .filter_map(|event| match event {
                SimEvent::Kernel(event) => Some(event.clone()),
                SimEvent::Log(..) | SimEvent::Note(_) => None,
            })
            .collect()
    }

    /// Only the driver's log lines.
    #[must_use]
    pub fn log_lines(&self) -> Vec<String> {
        lock(&self.inner.events)
            .iter()
            .filter_map(|event| match event {
                SimEvent::Log(_, line) => Some(line.clone()),
                SimEvent::Kernel(_) | SimEvent::Note(_) => None,
            })
            .collect()
    }

    /// Takes the events so far, leaving none: for a caller that prints the
    /// trace as it goes (or only counts it) and must not keep it in memory.
    pub fn take_events(&self) -> Vec<SimEvent> {
        std::mem::take(&mut *lock(&self.inner.events))
    }

    /// Forgets the events so far.
    pub fn clear_events(&self) {
        lock(&self.inner.events).clear();
    }

    fn push(&self, event: SimEvent) {
        lock(&self.inner.events).push(event);
    }

    /// Writes a line of the caller's own into the trace.
    pub fn note(&self, line: impl Into<String>) {
        self.push(SimEvent::Note(line.into()));
    }

    pub(crate) fn log(&self, level: Level, line: String) {
        self.push(SimEvent::Log(level, line));
    }

    // ---- fault injection

    /// The next registration fails inside the kernel before anything is
    /// linked (the register routine returns NULL; no callback runs).
    pub fn fail_next_register(&self) {
        lock(&self.inner.faults).register_failures += 1;
    }

    /// The next hot-add fails while the kernel prepares the processor (no
    /// notifications).
    pub fn fail_next_prepare(&self) {
        lock(&self.inner.faults).prepare_failures += 1;
    }

    /// The next hot-add whose `AddStart`s all succeed fails in the HAL with
    /// `status`.
    pub fn fail_next_start(&self, status: NtStatus) {
        lock(&self.inner.faults).start_failures.push_back(status);
    }

    /// Runs `hook(index)` each time the HAL starts a processor, before its
    /// `AddComplete` is delivered.
    pub fn on_processor_start(&self, hook: StartHook) {
        *lock(&self.inner.start_hook) = Some(hook);
    }

    /// Forgets every planned kernel fault not yet consumed (the pool's own
    /// plan is cleared with [`SimAllocator::clear_faults`]).
    pub fn clear_faults(&self) {
        let mut faults = lock(&self.inner.faults);
        faults.register_failures = 0;
        faults.prepare_failures = 0;
        faults.start_failures.clear();
        faults.payload_failures.clear();
    }

    /// The kernel faults planned and not yet consumed, and how many payload
    /// initialisations were attempted so far: lets a caller tell whether a
    /// fault it planned fired.
    #[must_use]
    pub fn pending_faults(&self) -> PendingFaults {
        let faults = lock(&self.inner.faults);
        PendingFaults {
            register: faults.register_failures,
            prepare: faults.prepare_failures,
            start: faults.start_failures.len(),
            payload: faults.payload_failures.len(),
            payload_attempts: faults.payload_attempts,
        }
    }

    /// The `ordinal`-th slot payload initialisation (1-based, counted over the
    /// kernel's life) fails.
    pub fn fail_payload_init(&self, ordinal: u64) {
        lock(&self.inner.faults).payload_failures.insert(ordinal);
    }

    pub(crate) fn payload_init_should_fail(&self) -> bool {
        let mut faults = lock(&self.inner.faults);
        faults.payload_attempts += 1;
        let attempt = faults.payload_attempts;
        faults.payload_failures.remove(&attempt)
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

    /// Holds the next callback inside the kernel until the gate is released.
    #[must_use]
    pub fn hold_next_callback(&self) -> Arc<Gate> {
        let gate = Arc::new(Gate::default());
        *lock(&self.inner.gate) = Some(Arc::clone(&gate));
        gate
    }

    /// Deregistrations currently waiting for a callback to return.
    #[must_use]
    pub fn deregistrations_waiting(&self) -> u32 {
        self.inner.deregistrations_waiting.load(Ordering::Acquire)
    }

    /// Use-after-free and double-free findings of the pool and the kernel.
    #[must_use]
    pub fn violations(&self) -> Vec<String> {
        self.inner.pool.violations()
    }

    // ---- registration

    /// `KeRegisterProcessorChangeCallback`, in the note's observed order.
    pub fn register(&self, callback: RawCallback, context: *mut c_void, flags: u32) -> Option<Handle> {
        let target = Target::Raw { callback, context: context as usize };
        self.register_target(target, flags)
    }

    /// Registers another driver's callback, for veto injection. Without
    /// `ADD_EXISTING`, as such drivers usually do.
    pub fn register_other_driver(&self, callback: OtherCallback) -> Handle {
        self.register_target(Target::Other(callback), 0).expect("registration without ADD_EXISTING cannot fail")
    }

    fn register_target(&self, target: Target, flags: u32) -> Option<Handle> {
        // 1. Take KiDynamicProcessorLock.
        let count = lock(&self.inner.dynamic);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut faults = lock(&self.inner.faults);
            if faults.register_failures > 0 {
                faults.register_failures -= 1;
                drop(faults);
                self.push(SimEvent::Kernel(KernelEvent::RegisterReturned { registration: id, handle: false }));
                return None;
            }
        }
        let registration = Arc::new(Registration {
            id,
            target,
            in_flight: Mutex::new(0),
            idle: Condvar::new(),
            handle_returned: AtomicBool::new(false),
        });
        // 2. Link it: registered from here on, handle not yet returned.
        lock(&self.inner.registrations).push(Arc::clone(&registration));
        let add_existing = flags & ADD_EXISTING != 0;
        self.push(SimEvent::Kernel(KernelEvent::RegisterBegin { registration: id, add_existing }));
        if add_existing {
            // 4. AddStart for every existing processor in index order; stop at
            //    the first failure.
            let mut failed = None;
            for index in 0..*count {
                let result = self.invoke(&registration, Kind::AddStart, index, NtStatus::SUCCESS, false);
                if result.is_failure() {
                    failed = Some((index, result));
                    break;
                }
            }
            match failed {
                // 5. AddComplete for every processor.
                None => {
                    for index in 0..*count {
                        self.invoke(&registration, Kind::AddComplete, index, NtStatus::SUCCESS, false);
                    }
                }
                // 6. Unlink, then AddFailure for 0 .. k-1 (not k), return NULL.
                Some((failed_at, status)) => {
                    self.unlink(id);
                    self.push(SimEvent::Kernel(KernelEvent::Unlinked { registration: id }));
                    for index in 0..failed_at {
                        self.invoke(&registration, Kind::AddFailure, index, status, false);
                    }
                    self.push(SimEvent::Kernel(KernelEvent::RegisterReturned { registration: id, handle: false }));
                    return None;
                }
            }
        }
        registration.handle_returned.store(true, Ordering::Release);
        self.push(SimEvent::Kernel(KernelEvent::RegisterReturned { registration: id, handle: true }));
        drop(count);
        Some(Handle(id))
    }

    fn unlink(&self, id: u64) -> Option<Arc<Registration>> {
        let mut list = lock(&self.inner.registrations);
        let position = list.iter().position(|registration| registration.id == id)?;
        Some(list.remove(position))
    }

    /// `KeDeregisterProcessorChangeCallback`: unlink, then wait for any
    /// callback of this registration still running to return.
    #[allow(clippy::needless_pass_by_value)] // the handle is spent, as on Windows
    pub fn deregister(&self, handle: Handle) {
        let Some(registration) = self.unlink(handle.0) else {
            self.inner.pool.record_violation(std::format!("deregistration of unknown handle #{}", handle.0));
            return;
        };
        self.inner.deregistrations_waiting.fetch_add(1, Ordering::AcqRel);
        let mut in_flight = lock(&registration.in_flight);
        while *in_flight > 0 {
            registration.idle.wait(&mut in_flight);
        }
        drop(in_flight);
        self.inner.deregistrations_waiting.fetch_sub(1, Ordering::AcqRel);
        self.push(SimEvent::Kernel(KernelEvent::Deregistered { registration: handle.0 }));
    }

    /// Calls one registration. `linked_only`: skip it if it has been unlinked
    /// (the hot-add path); registration's own failure path calls it unlinked.
    fn invoke(
        &self,
        registration: &Registration,
        kind: Kind,
        index: u32,
        status: NtStatus,
        linked_only: bool,
    ) -> NtStatus {
        let change =
            NotifyContext { state: kind.raw(), nt_number: index, status, proc_number: ProcNumber::dense(index) };
        self.invoke_raw(registration, change, linked_only)
    }

    fn invoke_raw(&self, registration: &Registration, change: NotifyContext, linked_only: bool) -> NtStatus {
        {
            // Checking the link and entering happen under the list lock, so a
            // deregistration that unlinked first never sees this call start.
            let list = lock(&self.inner.registrations);
            if linked_only && !list.iter().any(|linked| linked.id == registration.id) {
                return NtStatus::SUCCESS;
            }
            *lock(&registration.in_flight) += 1;
        }
        if let Some(gate) = lock(&self.inner.gate).take() {
            gate.hold();
        }
        self.push(SimEvent::Kernel(KernelEvent::Callback {
            registration: registration.id,
            change,
            handle_returned: registration.handle_returned.load(Ordering::Acquire),
        }));
        let mut operation_status = NtStatus::SUCCESS;
        match &registration.target {
            Target::Raw { callback, context } => {
                if self.inner.pool.is_live(*context) {
                    callback(*context as *mut c_void, &change, &mut operation_status);
                } else {
                    self.inner.pool.record_violation(std::format!(
                        "callback #{} called with freed context {context:#x}",
                        registration.id
                    ));
                }
            }
            Target::Other(callback) => operation_status = callback(&change),
        }
        if operation_status.is_failure() {
            self.push(SimEvent::Kernel(KernelEvent::Vetoed {
                registration: registration.id,
                status: operation_status,
            }));
        }
        let mut in_flight = lock(&registration.in_flight);
        *in_flight -= 1;
        if *in_flight == 0 {
            registration.idle.notify_all();
        }
        operation_status
    }

    /// Delivers an arbitrary notification to every registration, as a buggy
    /// or future kernel might. Returns each callback's `*OperationStatus`.
    pub fn inject(&self, change: NotifyContext) -> Vec<NtStatus> {
        let _serialised = lock(&self.inner.dynamic);
        let registrations = lock(&self.inner.registrations).clone();
        registrations.iter().map(|registration| self.invoke_raw(registration, change, true)).collect()
    }

    // ---- hot-add

    /// `KeStartDynamicProcessor`: adds the next processor, in the note's order.
    pub fn hot_add(&self) -> HotAdd {
        let mut count = lock(&self.inner.dynamic);
        // 1. Refused without notifications.
        let refusal = if !self.inner.config.dynamic_partitioning {
            Some(Refusal::NotSupported)
        } else if *count >= self.inner.config.max {
            Some(Refusal::AtMaximum)
        } else {
            let mut faults = lock(&self.inner.faults);
            // 3. The kernel prepares the processor's own structures.
            (faults.prepare_failures > 0).then(|| {
                faults.prepare_failures -= 1;
                Refusal::PrepareFailed
            })
        };
        if let Some(refusal) = refusal {
            self.push(SimEvent::Kernel(KernelEvent::HotAddRefused { refusal }));
            return HotAdd::Refused(refusal);
        }
        // 2. The new index is the current count.
        let index = *count;
        self.push(SimEvent::Kernel(KernelEvent::HotAddBegin { index }));
        // 4. AddStart to every registered callback, in order, until one fails.
        let registrations = lock(&self.inner.registrations).clone();
        let mut failure = None;
        for registration in &registrations {
            let result = self.invoke(registration, Kind::AddStart, index, NtStatus::SUCCESS, true);
            if result.is_failure() {
                failure = Some(result);
                break;
            }
        }
        // 5. The HAL starts the processor; from now on it runs code.
        if failure.is_none() {
            let start_failure = lock(&self.inner.faults).start_failures.pop_front();
            if let Some(status) = start_failure {
                self.push(SimEvent::Kernel(KernelEvent::ProcessorStartFailed { index, status }));
                failure = Some(status);
            } else {
                if let Some(flag) = self.inner.running.get(index as usize) {
                    flag.store(true, Ordering::Release);
                }
                *count += 1;
                self.inner.count.store(*count, Ordering::Release);
                self.push(SimEvent::Kernel(KernelEvent::ProcessorStarted { index }));
                let hook = lock(&self.inner.start_hook).clone();
                if let Some(hook) = hook {
                    hook(index);
                }
            }
        }
        // 6. Exactly one final notification, to every registered callback.
        let registrations = lock(&self.inner.registrations).clone();
        let (kind, status) = match failure {
            None => (Kind::AddComplete, NtStatus::SUCCESS),
            Some(status) => (Kind::AddFailure, status),
        };
        for registration in &registrations {
            self.invoke(registration, kind, index, status, true);
        }
        match failure {
            None => HotAdd::Added(index),
            Some(status) => HotAdd::Failed { index, status },
        }
    }

    // ---- DPCs

    /// Queues `routine(context)` to run on `processor` (`KeInsertQueueDpc` on
    /// a targeted DPC). A worker thread runs it with the current processor
    /// set to `processor`.
    pub fn queue_dpc(&self, processor: u32, routine: fn(*const c_void), context: *const c_void) {
        self.start_dpc_worker();
        let mut queue = lock(&self.inner.dpcs.queue);
        queue.0.push_back(Dpc { processor, routine, context: context as usize });
        queue.1 += 1;
        self.inner.dpcs.changed.notify_all();
    }

    /// `KeFlushQueuedDpcs`: waits until every queued DPC has run.
    pub fn flush_dpcs(&self) {
        let mut queue = lock(&self.inner.dpcs.queue);
        while queue.1 > 0 {
            self.inner.dpcs.changed.wait(&mut queue);
        }
    }

    fn start_dpc_worker(&self) {
        let mut worker = lock(&self.inner.dpc_worker);
        if worker.is_some() {
            return;
        }
        let dpcs = Arc::clone(&self.inner.dpcs);
        let pool = self.inner.pool.clone();
        *worker = Some(
            std::thread::Builder::new()
                .name("sim-dpc".into())
                .spawn(move || dpc_worker(&dpcs, &pool))
                .expect("spawn the simulated DPC worker"),
        );
    }

    /// The index Windows would give group `group`, number `number`
    /// (`KeGetProcessorIndexFromNumber`), if it exists.
    #[must_use]
    pub fn index_from_number(&self, proc_number: ProcNumber) -> Option<u32> {
        let index = u32::from(proc_number.group) * GROUP_SIZE + u32::from(proc_number.number);
        (u32::from(proc_number.number) < GROUP_SIZE && index < self.inner.config.max).then_some(index)
    }
}

fn dpc_worker(dpcs: &DpcQueue, pool: &SimAllocator) {
    loop {
        let dpc = {
            let mut queue = lock(&dpcs.queue);
            loop {
                if let Some(dpc) = queue.0.pop_front() {
                    break dpc;
                }
                if queue.2 {
                    return;
                }
                dpcs.changed.wait(&mut queue);
            }
        };
        if pool.contains(dpc.context) {
            SimKernel::run_on(dpc.processor, || (dpc.routine)(dpc.context as *const c_void));
        } else {
            pool.record_violation(std::format!("DPC for processor {} ran after its context was freed", dpc.processor));
        }
        let mut queue = lock(&dpcs.queue);
        queue.1 -= 1;
        dpcs.changed.notify_all();
    }
}
