//! The notification state machine: the only writer of slot lifecycle.
//!
//! It turns one [`RawNotification`] (state, index, group/number, status) into
//! a slot transition and an [`Outcome`]:
//!
//! ```text
//!            AddStart (slot allocated + initialised)        AddComplete
//!   Vacant ───────────────────────────────────────▶ Starting ────────────▶ Online
//!      ▲                                               │
//!      └───────────────── AddFailure ──────────────────┘
//! ```
//!
//! Every other input has a defined outcome that changes nothing (or, for an
//! `AddComplete` nobody announced, adopts the running processor); the caller
//! logs each outcome. Only an `AddStart` is ever vetoed. It knows nothing of
//! Windows types. Callers serialise calls (Windows runs the callback under
//! `KiDynamicProcessorLock`; [`crate::driver::Context`] also guards it).

use core::ffi::c_void;
use core::fmt;

use crate::os::{Level, NtStatus, PoolAllocator, RawNotification, SlotPayload};
use crate::table::{Slot, SlotState, Table};

/// `KE_PROCESSOR_CHANGE_NOTIFY_STATE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `KeProcessorAddStartNotify` (0).
    AddStart,
    /// `KeProcessorAddCompleteNotify` (1).
    AddComplete,
    /// `KeProcessorAddFailureNotify` (2).
    AddFailure,
}

impl Kind {
    /// `KeProcessorAddStartNotify`.
    pub const ADD_START: u32 = 0;
    /// `KeProcessorAddCompleteNotify`.
    pub const ADD_COMPLETE: u32 = 1;
    /// `KeProcessorAddFailureNotify`.
    pub const ADD_FAILURE: u32 = 2;

    /// The kind for a raw `State` value, `None` if it is unknown.
    #[must_use]
    pub const fn from_raw(state: u32) -> Option<Self> {
        match state {
            Self::ADD_START => Some(Self::AddStart),
            Self::ADD_COMPLETE => Some(Self::AddComplete),
            Self::ADD_FAILURE => Some(Self::AddFailure),
            _ => None,
        }
    }

    /// The raw `State` value.
    #[must_use]
    pub const fn raw(self) -> u32 {
        match self {
            Self::AddStart => Self::ADD_START,
            Self::AddComplete => Self::ADD_COMPLETE,
            Self::AddFailure => Self::ADD_FAILURE,
        }
    }

    /// The name used in trace lines.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::AddStart => "add-start",
            Self::AddComplete => "add-complete",
            Self::AddFailure => "add-failure",
        }
    }
}

/// A notification that changed nothing, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Anomaly {
    /// `State` is not one of the three known values.
    UnknownState(u32),
    /// `NtNumber` is at or past the table's capacity.
    IndexOutOfRange,
    /// `AddStart`, `AddComplete` or `AddFailure` for a processor already online.
    AlreadyOnline,
    /// `AddFailure` for an index that was not starting: one this driver vetoed,
    /// or whose `AddStart` it never saw (another driver vetoed first). Expected.
    NotStarting,
    /// `AddComplete` for an index never started, and adopting it failed.
    AdoptFailed(NtStatus),
    /// A notification arrived while another was being handled.
    Reentered,
}

/// What one notification did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// `AddStart`: slot allocated, initialised, now `Starting`.
    Started,
    /// `AddStart` for a slot already `Starting` (its previous add never
    /// finished): re-initialised location, still `Starting`.
    Restarted,
    /// `AddComplete`: `Starting` → `Online`.
    Online,
    /// `AddComplete` for an index whose `AddStart` was never seen: the
    /// processor is running, so its slot was created and brought online.
    Adopted,
    /// `AddFailure`: `Starting` → `Vacant`; the next add may reuse the index.
    Reverted,
    /// `AddStart` refused with this status; the slot stays (or returns to)
    /// `Vacant`.
    Vetoed(NtStatus),
    /// Nothing changed.
    Ignored(Anomaly),
}

impl Outcome {
    /// The status to write to `*OperationStatus`: only for a vetoed `AddStart`.
    #[must_use]
    pub const fn veto(self) -> Option<NtStatus> {
        match self {
            Self::Vetoed(status) => Some(status),
            _ => None,
        }
    }

    /// Whether the processor's slot just became `Online`.
    #[must_use]
    pub const fn brought_online(self) -> bool {
        matches!(self, Self::Online | Self::Adopted)
    }

    /// How loudly to log it.
    #[must_use]
    pub const fn level(self) -> Level {
        match self {
            Self::Started | Self::Restarted | Self::Online | Self::Reverted => Level::Trace,
            Self::Ignored(Anomaly::NotStarting) => Level::Trace,
            Self::Adopted | Self::Ignored(_) => Level::Warning,
            Self::Vetoed(_) => Level::Error,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Started => f.write_str("started"),
            Self::Restarted => f.write_str("restarted"),
            Self::Online => f.write_str("online"),
            Self::Adopted => f.write_str("adopted"),
            Self::Reverted => f.write_str("reverted"),
            Self::Vetoed(status) => write!(f, "vetoed({status})"),
            Self::Ignored(Anomaly::UnknownState(state)) => write!(f, "ignored(unknown-state={state})"),
            Self::Ignored(Anomaly::IndexOutOfRange) => f.write_str("ignored(index-out-of-range)"),
            Self::Ignored(Anomaly::AlreadyOnline) => f.write_str("ignored(already-online)"),
            Self::Ignored(Anomaly::NotStarting) => f.write_str("ignored(not-starting)"),
            Self::Ignored(Anomaly::AdoptFailed(status)) => write!(f, "ignored(adopt-failed={status})"),
            Self::Ignored(Anomaly::Reentered) => f.write_str("ignored(reentered)"),
        }
    }
}

/// The event name for a raw `State` value in trace lines.
pub(crate) struct EventName(pub(crate) u32);

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Kind::from_raw(self.0) {
            Some(kind) => f.write_str(kind.name()),
            None => write!(f, "unknown-state-{}", self.0),
        }
    }
}

/// Applies one notification to `table`.
///
/// # Safety
///
/// Calls are serialised (one writer at a time), and `context` is the live
/// driver context that owns `table` (handed to [`SlotPayload::init`]).
pub unsafe fn apply<P: SlotPayload, A: PoolAllocator>(
    table: &Table<P, A>,
    notification: RawNotification,
    context: *const c_void,
) -> Outcome {
    let Some(kind) = Kind::from_raw(notification.state) else {
        return Outcome::Ignored(Anomaly::UnknownState(notification.state));
    };
    let index = notification.index;
    if index >= table.capacity() {
        return match kind {
            // A processor we could hold no state for must not come up.
            Kind::AddStart => Outcome::Vetoed(NtStatus::INVALID_PARAMETER),
            Kind::AddComplete | Kind::AddFailure => Outcome::Ignored(Anomaly::IndexOutOfRange),
        };
    }
    match kind {
        // SAFETY: forwarded from the caller.
        Kind::AddStart => unsafe { add_start(table, notification, context) },
        // SAFETY: forwarded from the caller.
        Kind::AddComplete => unsafe { add_complete(table, notification, context) },
        Kind::AddFailure => add_failure(table, index),
    }
}

/// Allocates (if needed) and fully initialises the slot, then publishes it as
/// `Starting`. Anything that fails vetoes the add and leaves the slot `Vacant`.
///
/// # Safety
///
/// As [`apply`].
unsafe fn add_start<P: SlotPayload, A: PoolAllocator>(
    table: &Table<P, A>,
    notification: RawNotification,
    context: *const c_void,
) -> Outcome {
    let slot = match table.ensure(notification.index) {
        Ok(slot) => slot,
        Err(error) => return Outcome::Vetoed(error.into()),
    };
    slot.count_start();
    let previous = slot.state();
    if previous == SlotState::Online {
        // Processors are never removed: an online index cannot start again.
        // Vetoing would not stop a processor that is already running.
        return Outcome::Ignored(Anomaly::AlreadyOnline);
    }
    // SAFETY: forwarded from the caller (single writer, live context).
    if let Err(status) = unsafe { prepare(slot, notification, context) } {
        slot.set_state(SlotState::Vacant);
        return Outcome::Vetoed(status);
    }
    slot.set_state(SlotState::Starting);
    if previous == SlotState::Starting { Outcome::Restarted } else { Outcome::Started }
}

/// Writes everything a reader on the processor needs, before publication.
///
/// # Safety
///
/// As [`apply`].
unsafe fn prepare<P: SlotPayload>(
    slot: &Slot<P>,
    notification: RawNotification,
    context: *const c_void,
) -> Result<(), NtStatus> {
    slot.set_location(notification.proc_number);
    // SAFETY: forwarded from the caller.
    unsafe { slot.init_payload(context) }
}

/// `Starting` → `Online`; an unannounced processor is adopted.
///
/// # Safety
///
/// As [`apply`].
unsafe fn add_complete<P: SlotPayload, A: PoolAllocator>(
    table: &Table<P, A>,
    notification: RawNotification,
    context: *const c_void,
) -> Outcome {
    let slot = match table.ensure(notification.index) {
        Ok(slot) => slot,
        Err(error) => return Outcome::Ignored(Anomaly::AdoptFailed(error.into())),
    };
    slot.count_complete();
    match slot.state() {
        SlotState::Online => Outcome::Ignored(Anomaly::AlreadyOnline),
        SlotState::Starting => {
            slot.set_state(SlotState::Online);
            Outcome::Online
        }
        SlotState::Vacant => {
            // SAFETY: forwarded from the caller.
            match unsafe { prepare(slot, notification, context) } {
                Ok(()) => {
                    slot.set_state(SlotState::Online);
                    Outcome::Adopted
                }
                Err(status) => Outcome::Ignored(Anomaly::AdoptFailed(status)),
            }
        }
    }
}

/// `Starting` → `Vacant`. Never allocates.
fn add_failure<P, A: PoolAllocator>(table: &Table<P, A>, index: u32) -> Outcome {
    let Some(slot) = table.get(index) else {
        return Outcome::Ignored(Anomaly::NotStarting);
    };
    slot.count_failure();
    match slot.state() {
        SlotState::Starting => {
            slot.set_state(SlotState::Vacant);
            Outcome::Reverted
        }
        SlotState::Vacant => Outcome::Ignored(Anomaly::NotStarting),
        SlotState::Online => Outcome::Ignored(Anomaly::AlreadyOnline),
    }
}
