//! Load and unload, written once, generic over [`Os`].
//!
//! - **Load**: create every piece of state the callback touches (the
//!   [`Context`] and its empty table), *then* register with
//!   `KE_PROCESSOR_CHANGE_ADD_EXISTING`. On a NULL registration, return the
//!   status the callback recorded in the context (else `STATUS_UNSUCCESSFUL`)
//!   and free everything.
//! - **Unload**: deregister (after which no callback runs), flush deferred
//!   work (after which no DPC runs), *then* free the table and the context.
//!
//! The registration handle is never stored where the callback can see it: the
//! callback runs for existing processors before the handle is returned.

use core::alloc::Layout;
use core::ffi::c_void;
use core::fmt;
use core::ptr::NonNull;

use crate::notify::{self, Anomaly, EventName, Outcome};
use crate::os::{Level, MAX_PROCESSORS, NtStatus, Os, PoolAllocator, RawNotification};
use crate::sync::{AtomicBool, AtomicU32, Ordering};
use crate::table::{SlotState, Table};

/// Counters of what the callback and the read path have done.
#[derive(Debug, Default)]
pub struct Stats {
    /// Notifications received.
    pub notifications: AtomicU32,
    /// `AddStart`s vetoed.
    pub vetoes: AtomicU32,
    /// Notifications that changed nothing or were out of order.
    pub anomalies: AtomicU32,
    /// Deferred visits that found no slot for their processor.
    pub missed_visits: AtomicU32,
}

/// A copy of [`Stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct StatsSnapshot {
    pub notifications: u32,
    pub vetoes: u32,
    pub anomalies: u32,
    pub missed_visits: u32,
}

impl Stats {
    fn snapshot(&self) -> StatsSnapshot {
        // Relaxed throughout: statistics.
        StatsSnapshot {
            notifications: self.notifications.load(Ordering::Relaxed),
            vetoes: self.vetoes.load(Ordering::Relaxed),
            anomalies: self.anomalies.load(Ordering::Relaxed),
            missed_visits: self.missed_visits.load(Ordering::Relaxed),
        }
    }
}

/// Everything the processor change callback and the DPCs use. It lives in one
/// pool allocation whose address is the callback context, from before
/// registration until after deregistration.
pub struct Context<O: Os> {
    os: O,
    table: Table<O::Payload, O::Allocator>,
    /// The first status the callback vetoed with (the classic sample's
    /// `CallbackStatus`): how load learns why registration failed.
    /// Stored with a Relaxed CAS: read by the same thread after the register
    /// call returns.
    recorded: AtomicU32,
    /// Set while a notification is being handled. Windows serialises the
    /// callback; this makes a violation of that a logged no-op instead of two
    /// writers. Acquire on entry / Release on exit also orders successive
    /// callbacks' writes.
    busy: AtomicBool,
    stats: Stats,
}

impl<O: Os> Context<O> {
    fn new(os: O, capacity: u32) -> Self {
        let allocator = os.allocator();
        Self {
            os,
            table: Table::new(capacity, allocator),
            recorded: AtomicU32::new(NtStatus::SUCCESS.bits()),
            busy: AtomicBool::new(false),
            stats: Stats::default(),
        }
    }

    /// The OS interface.
    pub fn os(&self) -> &O {
        &self.os
    }

    /// The per-processor table. Readers only ever touch this.
    pub fn table(&self) -> &Table<O::Payload, O::Allocator> {
        &self.table
    }

    /// The callback and read-path counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// The status recorded by the last vetoed `AddStart`, if any.
    pub fn recorded_status(&self) -> Option<NtStatus> {
        let status = NtStatus::from_bits(self.recorded.load(Ordering::Relaxed));
        status.is_failure().then_some(status)
    }

    fn log(&self, level: Level, args: fmt::Arguments<'_>) {
        self.os.log(level, args);
    }

    /// Handles one notification from the OS. Returns the status to write to
    /// `*OperationStatus`: `Some` only to veto an `AddStart`; on `None` the
    /// caller leaves `*OperationStatus` untouched.
    ///
    /// Runs at `PASSIVE_LEVEL` or `APC_LEVEL` (Windows holds a fast mutex).
    /// Logs one trace line: `procnotify: <event> index=<n> group=<g>
    /// number=<k> status=0x<...> outcome=<...>`.
    #[cfg_attr(procnotify_no_panic, no_panic::no_panic)]
    pub fn on_notification(&self, notification: RawNotification) -> Option<NtStatus> {
        self.stats.notifications.fetch_add(1, Ordering::Relaxed);
        // Acquire: the previous callback's Release store below happens-before
        // everything this one does.
        let outcome = if self.busy.swap(true, Ordering::Acquire) {
            match notify::Kind::from_raw(notification.state) {
                Some(notify::Kind::AddStart) => Outcome::Vetoed(NtStatus::DEVICE_BUSY),
                _ => Outcome::Ignored(Anomaly::Reentered),
            }
        } else {
            let context: *const Self = self;
            // SAFETY: `busy` makes this the only writer, and `self` is the
            // live context that owns the table.
            let outcome = unsafe { notify::apply(&self.table, notification, context.cast::<c_void>()) };
            if outcome.brought_online()
                && let Some(slot) = self.table.get(notification.index)
            {
                self.os.kick(slot);
            }
            // Release: publish this callback's writes to the next one.
            self.busy.store(false, Ordering::Release);
            outcome
        };
        self.account(notification, outcome);
        outcome.veto()
    }

    fn account(&self, notification: RawNotification, outcome: Outcome) {
        match outcome {
            Outcome::Vetoed(status) => {
                self.stats.vetoes.fetch_add(1, Ordering::Relaxed);
                // Relaxed: read after the register call returns, on the same
                // thread. Keep the first failure, as the classic sample does.
                let _ = self.recorded.compare_exchange(
                    NtStatus::SUCCESS.bits(),
                    status.bits(),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            Outcome::Ignored(Anomaly::NotStarting) => {}
            Outcome::Ignored(_) | Outcome::Adopted | Outcome::Restarted => {
                self.stats.anomalies.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Started | Outcome::Online | Outcome::Reverted => {}
        }
        self.log(
            outcome.level(),
            format_args!(
                "procnotify: {} index={} group={} number={} status={} outcome={}",
                EventName(notification.state),
                notification.index,
                notification.proc_number.group,
                notification.proc_number.number,
                notification.status,
                outcome,
            ),
        );
    }

    /// The read path run on a processor by deferred work (the Windows DPC):
    /// find the calling processor's own slot and bump its visit counter.
    /// Wait-free; callable at `DISPATCH_LEVEL`.
    #[cfg_attr(procnotify_no_panic, no_panic::no_panic)]
    pub fn visit_current(&self) {
        match self.table.get(self.os.current_processor()) {
            Some(slot) => slot.visit(),
            None => {
                self.stats.missed_visits.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Slots currently `Starting` or `Online`.
    pub fn present(&self) -> u32 {
        let live = self.table.slots().filter(|slot| slot.state() != SlotState::Vacant).count();
        u32::try_from(live).unwrap_or(u32::MAX)
    }
}

/// A loaded driver: a registered callback and the context it uses. Dropping
/// it unloads.
pub struct Driver<O: Os> {
    context: NonNull<Context<O>>,
    registration: Option<O::Registration>,
}

// SAFETY: the context is `Sync` data shared with the OS; the handle is `Send`.
unsafe impl<O: Os> Send for Driver<O> {}
// SAFETY: `&Driver` only hands out `&Context`, which is `Sync` (atomics, `O: Sync`).
unsafe impl<O: Os> Sync for Driver<O> {}

impl<O: Os> Driver<O> {
    /// Creates the context, then registers the callback.
    ///
    /// # Errors
    ///
    /// The status the callback recorded when registration failed
    /// (`STATUS_UNSUCCESSFUL` if it recorded none), or
    /// `STATUS_INSUFFICIENT_RESOURCES` when the context cannot be allocated.
    /// Nothing stays allocated on error.
    pub fn load(os: O) -> Result<Self, NtStatus> {
        let reported = os.max_processors();
        let capacity = reported.clamp(1, MAX_PROCESSORS);
        if capacity != reported {
            os.log(
                Level::Warning,
                format_args!("procnotify: maximum processor count {reported} clamped to {capacity}"),
            );
        }
        let allocator = os.allocator();
        let layout = Layout::new::<Context<O>>();
        let Ok(memory) = allocator.allocate(layout) else {
            os.log(Level::Error, format_args!("procnotify: load failed: no memory for the context"));
            return Err(NtStatus::INSUFFICIENT_RESOURCES);
        };
        let context = memory.cast::<Context<O>>();
        // SAFETY: fresh, aligned, writable memory of the context's layout.
        unsafe { context.as_ptr().write(Context::new(os, capacity)) };
        // From here on, dropping `driver` frees the context.
        let mut driver = Self { context, registration: None };
        // SAFETY: initialised just above; freed only when `driver` is dropped,
        // and `ctx` is not used after that.
        let ctx = unsafe { context.as_ref() };
        ctx.log(Level::Info, format_args!("procnotify: load: capacity={capacity} registering"));
        // SAFETY: the context stays at this address until `Drop`, which
        // deregisters first; on `None` it is freed only after the call
        // returned, when no callback can run any more.
        match unsafe { ctx.os.register(context) } {
            Some(registration) => {
                ctx.log(Level::Info, format_args!("procnotify: load: registered, {} present", ctx.present()));
                driver.registration = Some(registration);
                Ok(driver)
            }
            None => {
                let status = ctx.recorded_status().unwrap_or(NtStatus::UNSUCCESSFUL);
                let present = ctx.present();
                if present != 0 {
                    // The OS owes every started processor an AddFailure.
                    ctx.log(
                        Level::Error,
                        format_args!("procnotify: load: {present} slots still present after failed registration"),
                    );
                }
                ctx.log(Level::Error, format_args!("procnotify: load failed: status={status}"));
                drop(driver);
                Err(status)
            }
        }
    }

    /// The context the callback uses.
    pub fn context(&self) -> &Context<O> {
        // SAFETY: `context` is initialised in `load` and freed only in `Drop`.
        unsafe { self.context.as_ref() }
    }

    /// Deregisters, flushes deferred work, frees. Same as dropping.
    pub fn unload(self) {
        drop(self);
    }
}

impl<O: Os> Drop for Driver<O> {
    fn drop(&mut self) {
        let registration = self.registration.take();
        let ctx = self.context();
        if let Some(registration) = registration {
            ctx.log(Level::Info, format_args!("procnotify: unload: deregistering"));
            // After this returns no callback runs, so nothing new is kicked.
            ctx.os.deregister(registration);
        }
        // After this returns no DPC runs: nothing uses the context any more.
        ctx.os.flush_deferred();
        ctx.log(Level::Info, format_args!("procnotify: freeing {} slots and the context", ctx.table.allocated_slots()));
        let allocator = ctx.os.allocator();
        let raw = self.context.as_ptr();
        // SAFETY: deregistered and flushed above (or never registered), so no
        // callback or DPC can use the context; `Drop` runs once.
        unsafe { raw.drop_in_place() };
        // SAFETY: allocated in `load` with this layout by the same allocator kind.
        unsafe { allocator.deallocate(self.context.cast(), Layout::new::<Context<O>>()) };
    }
}

/// Holds at most one [`Driver`] in a `static`, for `DriverEntry` and the
/// unload routine to share. Load and unload are serialised by the caller (the
/// I/O manager); the state word turns a violation into an error, not a race.
pub struct DriverCell<O: Os> {
    /// `EMPTY`, `BUSY` or `LOADED`. Acquire/Release so the driver written while
    /// `BUSY` is complete when another thread sees `LOADED`.
    state: core::sync::atomic::AtomicU8,
    driver: core::cell::UnsafeCell<Option<Driver<O>>>,
}

const EMPTY: u8 = 0;
const BUSY: u8 = 1;
const LOADED: u8 = 2;

// SAFETY: `driver` is only touched by the thread that moved `state` to `BUSY`.
unsafe impl<O: Os> Sync for DriverCell<O> {}

impl<O: Os> Default for DriverCell<O> {
    fn default() -> Self {
        Self::new()
    }
}

impl<O: Os> DriverCell<O> {
    /// An empty cell.
    pub const fn new() -> Self {
        Self { state: core::sync::atomic::AtomicU8::new(EMPTY), driver: core::cell::UnsafeCell::new(None) }
    }

    /// Loads the driver into the cell. Returns `STATUS_SUCCESS` or the failure
    /// [`Driver::load`] reported, with the cell left empty;
    /// `STATUS_DEVICE_BUSY` if the cell is not empty.
    pub fn load(&self, os: O) -> NtStatus {
        if self.state.compare_exchange(EMPTY, BUSY, Ordering::Acquire, Ordering::Relaxed).is_err() {
            os.log(Level::Error, format_args!("procnotify: load while already loaded"));
            return NtStatus::DEVICE_BUSY;
        }
        let (status, next) = match Driver::load(os) {
            Ok(driver) => {
                // SAFETY: this thread owns `driver` while the state is BUSY.
                unsafe { *self.driver.get() = Some(driver) };
                (NtStatus::SUCCESS, LOADED)
            }
            Err(status) => (status, EMPTY),
        };
        // Release: publishes the stored driver with the state.
        self.state.store(next, Ordering::Release);
        status
    }

    /// Unloads the driver if one is loaded; a no-op otherwise (e.g. after a
    /// failed load). Returns whether a driver was unloaded.
    pub fn unload(&self) -> bool {
        if self.state.compare_exchange(LOADED, BUSY, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return false;
        }
        // SAFETY: this thread owns `driver` while the state is BUSY.
        let driver = unsafe { (*self.driver.get()).take() };
        drop(driver);
        self.state.store(EMPTY, Ordering::Release);
        true
    }

    /// Runs `f` on the loaded driver's context, if any (for inspection).
    pub fn with_context<R>(&self, f: impl FnOnce(&Context<O>) -> R) -> Option<R> {
        if self.state.load(Ordering::Acquire) != LOADED {
            return None;
        }
        // SAFETY: LOADED means the driver is stored and only `unload` (which
        // the caller serialises against inspection) takes it out.
        let driver = unsafe { &*self.driver.get() };
        driver.as_ref().map(|driver| f(driver.context()))
    }
}

#[cfg(all(test, procnotify_loom))]
#[allow(clippy::std_instead_of_alloc)] // the model runs on the host
mod loom_tests {
    //! Model-checked with `RUSTFLAGS="--cfg procnotify_loom" cargo test --lib --release loom`
    //! The models are small enough to explore exhaustively (no preemption
    //! bound).
    //!
    //! A loom-aware fake OS: `register` delivers the existing-processor
    //! notifications synchronously, as Windows does; a "kernel" thread
    //! delivers hot-add notifications under a registration lock that
    //! `deregister` takes (so deregistration waits for a running callback, as
    //! `KeDeregisterProcessorChangeCallback` does); `kick` queues a DPC that a
    //! "DPC" thread runs under a DPC lock that `flush_deferred` takes (so no
    //! DPC runs after the flush, as `KeFlushQueuedDpcs` guarantees).
    use super::*;
    use crate::os::ProcNumber;
    use crate::table::Slot;
    use crate::table::loom_tests::{Heap, Marker};
    use core::cell::Cell;
    use core::ptr::NonNull;
    use loom::sync::atomic::AtomicBool as LoomBool;
    use loom::sync::{Arc, Mutex};
    use loom::thread;

    loom::thread_local! {
        /// The simulated processor a model thread runs on.
        static CPU: Cell<u32> = Cell::new(0);
    }

    fn on_cpu<R>(cpu: u32, f: impl FnOnce() -> R) -> R {
        CPU.with(|current| current.set(cpu));
        f()
    }

    /// Runs a model: exhaustive (no preemption bound) unless
    /// `LOOM_MAX_PREEMPTIONS` sets one; each model takes about a second.
    fn model(f: impl Fn() + Sync + Send + 'static) {
        loom::model::Builder::new().check(f);
    }

    /// What the fake kernel shares between its threads.
    #[derive(Default)]
    struct Kernel {
        /// The registered context's address (`\Callback\ProcessorAdd`).
        registration: Mutex<Option<usize>>,
        /// (context address while DPCs may run, the processor of a queued DPC).
        dpc: Mutex<(Option<usize>, Option<u32>)>,
        /// Set when the OS object (part of the context) is dropped: the context
        /// is being freed.
        freed: LoomBool,
    }

    struct LoomOs {
        kernel: Arc<Kernel>,
        boot: u32,
    }

    impl Drop for LoomOs {
        fn drop(&mut self) {
            self.kernel.freed.store(true, Ordering::SeqCst);
        }
    }

    fn change(state: u32, index: u32) -> RawNotification {
        RawNotification { state, index, status: NtStatus::SUCCESS, proc_number: ProcNumber::dense(index) }
    }

    // SAFETY: `register` calls back only with the given context; `deregister`
    // and `flush_deferred` wait for running callbacks and DPCs (their locks).
    unsafe impl Os for LoomOs {
        type Payload = Marker;
        type Allocator = Heap;
        type Registration = ();

        fn allocator(&self) -> Heap {
            Heap
        }
        fn max_processors(&self) -> u32 {
            4
        }
        fn current_processor(&self) -> u32 {
            CPU.with(Cell::get)
        }
        fn log(&self, _: Level, _: fmt::Arguments<'_>) {}

        unsafe fn register(&self, context: NonNull<Context<Self>>) -> Option<()> {
            let address = context.as_ptr() as usize;
            let mut registration = self.kernel.registration.lock().unwrap();
            *registration = Some(address);
            self.kernel.dpc.lock().unwrap().0 = Some(address);
            // SAFETY: the caller keeps the context alive while registered.
            let context = unsafe { context.as_ref() };
            for state in [0, 1] {
                for index in 0..self.boot {
                    assert_eq!(context.on_notification(change(state, index)), None);
                }
            }
            Some(())
        }

        fn deregister(&self, (): ()) {
            // Waits for a callback holding the lock, then unlinks.
            *self.kernel.registration.lock().unwrap() = None;
        }

        fn kick(&self, slot: &Slot<Marker>) {
            self.kernel.dpc.lock().unwrap().1 = Some(slot.index());
        }

        fn flush_deferred(&self) {
            // Waits for a running DPC; none runs afterwards.
            *self.kernel.dpc.lock().unwrap() = (None, None);
        }
    }

    impl Kernel {
        /// A hot-add of `index` as the kernel delivers it: AddStart then
        /// AddComplete to the registered callback, if any.
        fn hot_add(&self, index: u32) {
            let registration = self.registration.lock().unwrap();
            if let Some(address) = *registration {
                assert!(!self.freed.load(Ordering::SeqCst), "callback into a freed context");
                // SAFETY: registered, and deregistration waits for this lock.
                let context = unsafe { &*(address as *const Context<LoomOs>) };
                assert_eq!(context.on_notification(change(0, index)), None);
                assert_eq!(context.on_notification(change(1, index)), None);
            }
        }

        /// The DPC processor: runs a queued DPC, if any.
        fn run_dpc(&self) {
            let mut dpc = self.dpc.lock().unwrap();
            if let (Some(address), Some(cpu)) = (dpc.0, dpc.1.take()) {
                assert!(!self.freed.load(Ordering::SeqCst), "DPC on a freed context");
                // SAFETY: flush_deferred clears `dpc.0` under this lock before
                // the context is freed.
                let context = unsafe { &*(address as *const Context<LoomOs>) };
                on_cpu(cpu, || context.visit_current());
            }
        }
    }

    fn rank(state: SlotState) -> u8 {
        state as u8
    }

    /// Slot state transitions as readers see them: while the callback adds
    /// processor 1 (segment allocation, payload, Starting, Online), a reader
    /// sees the slot absent or whole, its state only moving forward, and the
    /// payload and location of any non-vacant state; the read path on
    /// processor 1 either misses or counts its visit. Three threads.
    #[test]
    fn slot_transitions_as_readers_see_them() {
        model(|| {
            let kernel = Arc::new(Kernel::default());
            let driver = Arc::new(Driver::load(LoomOs { kernel: Arc::clone(&kernel), boot: 1 }).unwrap());
            let writer = {
                let kernel = Arc::clone(&kernel);
                thread::spawn(move || kernel.hot_add(1))
            };
            let reader = {
                let driver = Arc::clone(&driver);
                thread::spawn(move || {
                    let table = driver.context().table();
                    let mut last = SlotState::Vacant;
                    for _ in 0..2 {
                        if let Some(slot) = table.get(1) {
                            assert_eq!(slot.index(), 1);
                            let state = slot.state();
                            assert!(rank(state) >= rank(last), "{last:?} -> {state:?}");
                            if state != SlotState::Vacant {
                                assert_eq!(slot.payload().map(|marker| marker.0), Some(1));
                                assert_eq!(slot.proc_number(), ProcNumber::dense(1));
                            }
                            last = state;
                        }
                    }
                })
            };
            let context = driver.context();
            on_cpu(1, || context.visit_current());
            writer.join().unwrap();
            reader.join().unwrap();
            let slot = context.table().get(1).unwrap();
            assert_eq!(slot.state(), SlotState::Online);
            assert_eq!(slot.snapshot().visits + u64::from(context.stats().missed_visits), 1);
            Arc::try_unwrap(driver).ok().unwrap().unload();
            assert!(kernel.freed.load(Ordering::SeqCst));
        });
    }

    /// Unload after deregistration: a hot-add callback and a DPC race with
    /// unload. Neither may run on the freed context: deregistration waits for
    /// the callback, the flush for the DPC, and only then is the context
    /// freed. Three threads.
    #[test]
    fn unload_after_deregistration() {
        model(|| {
            let kernel = Arc::new(Kernel::default());
            let driver = Driver::load(LoomOs { kernel: Arc::clone(&kernel), boot: 1 }).unwrap();
            let callback = {
                let kernel = Arc::clone(&kernel);
                thread::spawn(move || kernel.hot_add(1))
            };
            let dpc = {
                let kernel = Arc::clone(&kernel);
                thread::spawn(move || {
                    kernel.run_dpc();
                    kernel.run_dpc();
                })
            };
            driver.unload();
            assert!(kernel.freed.load(Ordering::SeqCst));
            callback.join().unwrap();
            dpc.join().unwrap();
        });
    }
}
