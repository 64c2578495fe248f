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
