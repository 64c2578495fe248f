//! [`Context`]: everything the processor change callback uses — the OS, the
//! driver's hooks, the table, the recorded status and counters — and the
//! callback itself, [`Context::on_notification`].
//!
//! The callback classifies the raw notification, asks
//! [`lifecycle::transition`] what it does to the slot, runs the hook, moves
//! the slot, and logs one line. It is the table's only writer: it takes the
//! table's [`Writer`] for the duration, so a callback
//! that re-enters (which Windows never does) is refused and logged instead of
//! racing.

use core::fmt;

use crate::hooks::{Cpu, Hooks};
use crate::lifecycle::{self, Anomaly, Hook, Outcome, SlotState, Transition};
use crate::os::{Os, Sink};
use crate::sync::{AtomicU32, AtomicUsize, Ordering};
use crate::table::{Table, Writer};
use crate::values::{AllocError, Level, MAX_PROCESSORS, NotifyState, NtStatus, RawNotification};

/// Counters of what the callback has done.
#[derive(Debug, Default)]
struct Stats {
    notifications: AtomicU32,
    vetoes: AtomicU32,
    anomalies: AtomicU32,
}

/// A copy of the callback's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Notifications received.
    pub notifications: u32,
    /// `AddStart`s vetoed (by this driver).
    pub vetoes: u32,
    /// Notifications that were out of order, invalid or re-entrant.
    pub anomalies: u32,
}

/// What the callback changes in a context: kept in the table's index
/// allocation (the table's attached value), so that [`Context`] itself, like
/// [`Table`], holds only plain fields and a loop over `&Context` keeps the
/// table's index pointer in a register across [`Context::current`] calls
/// (see [`Table::get`]). No allocation of its own.
struct Shared {
    /// The first status this driver vetoed with (the classic sample's
    /// `CallbackStatus`): how load learns why registration failed.
    /// `Relaxed`: written by the callback and read by the thread that called
    /// the register routine after it returned; the callbacks ran on that
    /// thread, inside that call.
    recorded: AtomicU32,
    /// `Relaxed` counters: statistics, they publish nothing.
    stats: Stats,
    /// The thread running the callback now (`Os::current_thread`), 0 when
    /// none (or the OS cannot tell). Stored by the callback on entry and
    /// cleared on exit (also when a hook unwinds), read by an unload to
    /// refuse to wait for itself ([`Context::in_own_callback`]). `Relaxed`:
    /// only a read on the callback's own thread must see its value, and
    /// program order gives it that; a read on another thread sees 0, another
    /// thread or a stale one, never its own id.
    callback_thread: AtomicUsize,
}

/// Everything the processor change callback uses. The driver protocol keeps
/// it in one pool allocation, from before registration until after
/// deregistration.
///
/// It gives out no reference to its hooks: only the engine calls them, and
/// only with the values of its own table, which a context frees only after
/// flushing deferred work (its `Drop`). Hooks that queue work on their
/// values (procnotify's [`Monitor`](crate::monitor::Monitor)) rely on both.
///
/// Its own fields are plain data (what the callback changes is in the
/// table's allocation), so with an OS layer and hooks that hold no atomics
/// or cells either (procnotify's `WindowsKernel` and `Monitor` hold none),
/// `&Context` is read-only memory to the compiler, as `&Table` is (see
/// [`Table`]), and a loop calling [`Context::current`] keeps the index
/// pointer in a register:
///
/// ```
/// use core::mem::MaybeUninit;
/// use core::sync::atomic::AtomicU64;
/// use procnotify_core::{Context, Cpu, Hooks, NtStatus};
/// use procnotify_sim::kit::MiniOs;
///
/// struct Counting;
/// impl Hooks for Counting {
///     type Value = AtomicU64;
///     fn init<'a>(&self, _: Cpu, place: &'a mut MaybeUninit<AtomicU64>) -> Result<&'a mut AtomicU64, NtStatus> {
///         Ok(place.write(AtomicU64::new(0)))
///     }
/// }
///
/// // A constant may refer only to data without interior mutability.
/// const _: &MaybeUninit<Context<MiniOs, Counting>> = &MaybeUninit::uninit();
/// ```
pub struct Context<O: Os, H: Hooks> {
    os: O,
    hooks: H,
    /// Made by [`Context::new`] with the context's [`Shared`] attached.
    table: Table<H::Value, O::Allocator>,
}

/// Marks the current thread as running the callback until dropped.
struct InCallback<'a>(&'a AtomicUsize);

impl<'a> InCallback<'a> {
    fn enter(marker: &'a AtomicUsize, thread: usize) -> Self {
        // Relaxed: see `Shared::callback_thread`.
        marker.store(thread, Ordering::Relaxed);
        Self(marker)
    }
}

impl Drop for InCallback<'_> {
    fn drop(&mut self) {
        // Relaxed: see `Shared::callback_thread`.
        self.0.store(0, Ordering::Relaxed);
    }
}

impl<O: Os, H: Hooks> Context<O, H> {
    /// A context with an empty table sized for `os.max_processors()`
    /// (clamped to `1 ..= MAX_PROCESSORS`, with a warning if that changed it)
    /// whose first segment holds `os.active_processors()` slots, rounded up
    /// to a power of two.
    ///
    /// # Errors
    ///
    /// [`AllocError`] when the table's index cannot be allocated.
    pub fn new(os: O, hooks: H) -> Result<Self, AllocError> {
        let reported = os.max_processors();
        let capacity = reported.clamp(1, MAX_PROCESSORS);
        if capacity != reported {
            crate::trace::log(
                &os,
                Level::Warning,
                format_args!("maximum processor count {reported} clamped to {capacity}"),
            );
        }
        let shared = Shared {
            recorded: AtomicU32::new(NtStatus::SUCCESS.bits()),
            stats: Stats::default(),
            callback_thread: AtomicUsize::new(0),
        };
        let table = match Table::with_attached(capacity, os.active_processors(), os.allocator(), shared) {
            Ok(table) => table,
            Err(error) => {
                crate::trace::log(
                    &os,
                    Level::Error,
                    format_args!("load failed: no memory for the index of {capacity} processors"),
                );
                return Err(error);
            }
        };
        Ok(Self { os, hooks, table })
    }

    /// The callback's counters and marks.
    #[inline]
    fn shared(&self) -> &Shared {
        // SAFETY: `Context::new`, the only maker of a context, made its table
        // with a `Shared` attached.
        unsafe { self.table.attached::<Shared>() }
    }

    /// The OS interface.
    pub fn os(&self) -> &O {
        &self.os
    }

    /// The per-processor table. Readers only ever touch this.
    pub fn table(&self) -> &Table<H::Value, O::Allocator> {
        &self.table
    }

    /// The calling processor's value, if its slot exists. Wait-free; callable
    /// at any IRQL.
    #[cfg_attr(procnotify_no_panic, no_panic::no_panic)]
    pub fn current(&self) -> Option<&H::Value> {
        self.table.value(self.os.current_processor())
    }

    /// The callback's counters.
    pub fn stats(&self) -> StatsSnapshot {
        let stats = &self.shared().stats;
        // Relaxed throughout: statistics.
        StatsSnapshot {
            notifications: stats.notifications.load(Ordering::Relaxed),
            vetoes: stats.vetoes.load(Ordering::Relaxed),
            anomalies: stats.anomalies.load(Ordering::Relaxed),
        }
    }

    /// The first status this driver vetoed an `AddStart` with, if any.
    pub fn recorded_status(&self) -> Option<NtStatus> {
        // Relaxed: see `Shared::recorded`.
        let status = NtStatus::from_bits(self.shared().recorded.load(Ordering::Relaxed));
        status.is_failure().then_some(status)
    }

    /// Slots currently `Starting` or `Online`.
    pub fn present(&self) -> u32 {
        let live = self.table.slots().filter(|slot| slot.state() != SlotState::Vacant).count();
        u32::try_from(live).unwrap_or(u32::MAX)
    }

    /// Whether the calling thread is inside this context's callback (a hook
    /// is running on it). An unload there would wait for itself: the driver
    /// refuses it instead ([`crate::Driver`], [`crate::DriverCell::unload`]).
    /// Always `false` when the OS cannot tell threads apart
    /// ([`Os::current_thread`]).
    pub fn in_own_callback(&self) -> bool {
        // Relaxed: see `Shared::callback_thread`.
        self.os
            .current_thread()
            .is_some_and(|thread| self.shared().callback_thread.load(Ordering::Relaxed) == thread.get())
    }

    /// Logs one line through the OS, under the driver's name
    /// ([`crate::trace::log`]): `NAME: <args>`.
    pub fn log(&self, level: Level, args: fmt::Arguments<'_>) {
        crate::trace::log(&self.os, level, args);
    }

    /// Decides and applies one notification, holding the table's writer.
    fn apply(&self, writer: &mut Writer<'_, H::Value, O::Allocator>, n: RawNotification) -> Outcome {
        let state = match NotifyState::try_from(n.state) {
            Ok(state) => state,
            Err(unknown) => return Outcome::Ignored(Anomaly::UnknownState(unknown.0)),
        };
        if n.index >= self.table.capacity() {
            return match state {
                // A processor we could hold no state for must not come up.
                NotifyState::AddStart => Outcome::Vetoed(NtStatus::INVALID_PARAMETER),
                NotifyState::AddComplete | NotifyState::AddFailure => Outcome::Ignored(Anomaly::IndexOutOfRange),
            };
        }
        let transition = lifecycle::transition(self.table.get(n.index).map(crate::table::Slot::state), state);
        let Some(next) = transition.next else { return transition.outcome };
        let cpu = Cpu { index: n.index, number: n.proc_number };
        match self.run_hook(writer, transition, cpu, n.status) {
            Ok(()) => {
                if transition.hook == Hook::Starting {
                    // After the hook: the Release store publishes its writes.
                    writer.set_state(n.index, next);
                }
                transition.outcome
            }
            Err(status) => {
                let (next, outcome) = transition.failed(status);
                if let Some(next) = next {
                    writer.set_state(n.index, next);
                }
                outcome
            }
        }
    }

    /// Creates the value if the transition needs one, then runs its hook.
    /// Infallible hooks run after the state moved (`online` must see it).
    fn run_hook(
        &self,
        writer: &mut Writer<'_, H::Value, O::Allocator>,
        transition: Transition,
        cpu: Cpu,
        status: NtStatus,
    ) -> Result<(), NtStatus> {
        let hooks = &self.hooks;
        let slot = if transition.needs_value {
            writer.get_or_insert(cpu.index, cpu.number, |place| hooks.init(cpu, place))?
        } else {
            self.table.get(cpu.index).ok_or(NtStatus::UNSUCCESSFUL)?
        };
        let value = slot.value();
        if let Some(next) = transition.next
            && transition.hook != Hook::Starting
        {
            writer.set_state(cpu.index, next);
        }
        match transition.hook {
            Hook::None => Ok(()),
            Hook::Starting => hooks.starting(cpu, value),
            Hook::Online => {
                hooks.online(cpu, value);
                Ok(())
            }
            Hook::Failed => {
                hooks.failed(cpu, value, status);
                Ok(())
            }
        }
    }

    fn account(&self, n: RawNotification, outcome: Outcome) {
        let shared = self.shared();
        if let Outcome::Vetoed(status) = outcome {
            // Relaxed: a statistic.
            shared.stats.vetoes.fetch_add(1, Ordering::Relaxed);
            // Keep the first failure, as the classic sample does. Relaxed: see
            // `Shared::recorded`.
            let _ = shared.recorded.compare_exchange(
                NtStatus::SUCCESS.bits(),
                status.bits(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        } else if outcome.is_anomaly() {
            // Relaxed: a statistic.
            shared.stats.anomalies.fetch_add(1, Ordering::Relaxed);
        }
        self.log(outcome.level(), format_args!("{}", crate::trace::Notification { n, outcome }));
    }
}

impl<O: Os, H: Hooks> Sink for Context<O, H> {
    /// The processor change callback. Logs one trace line (see
    /// [`crate::trace::Notification`]).
    ///
    /// IRQL on Windows: Microsoft's reference says `PASSIVE_LEVEL`. What is
    /// known of the kernel: registration takes the dynamic-processor lock with
    /// `ExAcquireFastMutex` (`APC_LEVEL`); the hot-add path takes the same
    /// lock with the `Unsafe` variant (`ExAcquireFastMutexUnsafe`, which
    /// leaves the IRQL as it is). The rule: this is correct at `APC_LEVEL`
    /// (and so at `PASSIVE_LEVEL`).
    #[cfg_attr(procnotify_no_panic, no_panic::no_panic)]
    fn on_notification(&self, n: RawNotification) -> Option<NtStatus> {
        let shared = self.shared();
        // Relaxed: a statistic.
        shared.stats.notifications.fetch_add(1, Ordering::Relaxed);
        let outcome = match self.table.writer() {
            Some(mut writer) => {
                // Only an OS that can tell threads apart pays for the marker.
                let _marker =
                    self.os.current_thread().map(|thread| InCallback::enter(&shared.callback_thread, thread.get()));
                self.apply(&mut writer, n)
            }
            None if n.state == NotifyState::AddStart.raw() => Outcome::Vetoed(NtStatus::DEVICE_BUSY),
            None => Outcome::Ignored(Anomaly::Reentered),
        };
        self.account(n, outcome);
        outcome.veto()
    }
}

/// Dropping a context first waits for the deferred work its hooks queued
/// ([`Os::flush_deferred`]): a DPC still queued to a value would otherwise
/// run on freed memory. A context that is still registered must not be
/// dropped ([`Os::register`]'s contract); [`crate::Driver`] deregisters
/// first.
impl<O: Os, H: Hooks> Drop for Context<O, H> {
    fn drop(&mut self) {
        self.os.flush_deferred();
    }
}

impl<O: Os, H: Hooks> fmt::Debug for Context<O, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("capacity", &self.table.capacity())
            .field("present", &self.present())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
