//! The slot lifecycle as a pure function: what one notification does to one
//! processor's slot.
//!
//! ```text
//!            AddStart (value initialised, `starting` hook ok)     AddComplete
//!   Vacant ────────────────────────────────────────────────▶ Starting ──────────▶ Online
//!      ▲                                                         │
//!      └──────────────────────── AddFailure ─────────────────────┘
//! ```
//!
//! [`transition`] maps (the slot's state, the notification) to the next
//! state, the hook to run and the [`Outcome`]; [`Transition::failed`] says
//! what happens when the hook (or the allocation before it) fails. Nothing
//! here touches memory: the engine applies it to the table, and the
//! simulator's check model calls the same function to predict outcomes
//! instead of restating the rules. Every other input has a defined outcome
//! that changes nothing (or, for an `AddComplete` nobody announced, adopts
//! the running processor). Only an `AddStart` is ever vetoed.

use core::fmt;

use crate::values::{Level, NotifyState, NtStatus};

/// Where a slot is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SlotState {
    /// Its last add failed (or it was vetoed): the processor is not running.
    Vacant = 0,
    /// `AddStart` was accepted: the slot's value is initialised and the
    /// processor may already run code that reads it.
    Starting = 1,
    /// `AddComplete` arrived: the processor is running.
    Online = 2,
}

impl SlotState {
    /// The state stored as `bits` (unknown bits read as `Vacant`; only the
    /// three values are ever stored).
    #[must_use]
    pub const fn from_bits(bits: u8) -> Self {
        match bits {
            1 => Self::Starting,
            2 => Self::Online,
            _ => Self::Vacant,
        }
    }

    /// The name WinDbg's visualiser and the simulator print.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Vacant => "vacant",
            Self::Starting => "starting",
            Self::Online => "online",
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
    /// `AddStart`: slot initialised, now `Starting`.
    Started,
    /// `AddStart` for a slot already `Starting` (its previous add never
    /// finished): still `Starting`, the `starting` hook ran again.
    Restarted,
    /// `AddComplete`: `Starting` → `Online`.
    Online,
    /// `AddComplete` for an index whose `AddStart` was never seen: the
    /// processor is running, so its slot was initialised and brought online.
    Adopted,
    /// `AddFailure`: `Starting` → `Vacant`; the next add may reuse the index.
    Reverted,
    /// `AddStart` refused with this status; the slot is `Vacant` (or absent).
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

    /// Whether the outcome is unusual enough to count as an anomaly (an
    /// `AddFailure` for an index never started is expected, not one).
    #[must_use]
    pub const fn is_anomaly(self) -> bool {
        matches!(self, Self::Adopted | Self::Restarted)
            || matches!(self, Self::Ignored(a) if !matches!(a, Anomaly::NotStarting))
    }

    /// How loudly to log it.
    #[must_use]
    pub const fn level(self) -> Level {
        match self {
            Self::Vetoed(_) => Level::Error,
            _ if self.is_anomaly() => Level::Warning,
            _ => Level::Trace,
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

/// Which of the user's hooks a transition runs (see [`crate::Hooks`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hook {
    /// None.
    None,
    /// `Hooks::starting`: fallible; a failure vetoes the `AddStart`.
    Starting,
    /// `Hooks::online`.
    Online,
    /// `Hooks::failed`, with the notification's status.
    Failed,
}

/// What a notification does to one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Transition {
    /// The state the slot moves to, `None` to leave it (and its absence) as is.
    pub next: Option<SlotState>,
    /// Whether the slot's value must exist first (created and `Hooks::init`
    /// run), because the slot has none yet.
    pub needs_value: bool,
    /// The hook to run on the value before moving to `next`.
    pub hook: Hook,
    /// The outcome when the hook (and creating the value) succeeded.
    pub outcome: Outcome,
    /// The notification's state, to resolve failures.
    state: NotifyState,
}

impl Transition {
    /// A transition that changes nothing.
    const fn ignore(state: NotifyState, anomaly: Anomaly) -> Self {
        Self { next: None, needs_value: false, hook: Hook::None, outcome: Outcome::Ignored(anomaly), state }
    }

    const fn to(state: NotifyState, next: SlotState, needs_value: bool, hook: Hook, outcome: Outcome) -> Self {
        Self { next: Some(next), needs_value, hook, outcome, state }
    }

    /// The next state and outcome when creating the value, `Hooks::init` or
    /// the `starting` hook failed with `status`: an `AddStart` is vetoed and
    /// its slot (if it has one) is left `Vacant`; an adoption is abandoned.
    #[must_use]
    pub const fn failed(self, status: NtStatus) -> (Option<SlotState>, Outcome) {
        match self.state {
            NotifyState::AddStart => (Some(SlotState::Vacant), Outcome::Vetoed(status)),
            NotifyState::AddComplete | NotifyState::AddFailure => {
                (None, Outcome::Ignored(Anomaly::AdoptFailed(status)))
            }
        }
    }
}

/// What notification `state` does to a slot in `current` (`None`: the slot
/// has no value yet: no `AddStart` or adoption for this index ever succeeded).
///
/// ```
/// use procnotify_core::lifecycle::{transition, Hook, Outcome, SlotState};
/// use procnotify_core::NotifyState;
/// let t = transition(Some(SlotState::Starting), NotifyState::AddComplete);
/// assert_eq!((t.next, t.hook, t.outcome), (Some(SlotState::Online), Hook::Online, Outcome::Online));
/// ```
#[must_use]
pub const fn transition(current: Option<SlotState>, state: NotifyState) -> Transition {
    use NotifyState::{AddComplete, AddFailure, AddStart};
    use SlotState::{Online, Starting, Vacant};
    match (state, current) {
        (_, Some(Online)) => Transition::ignore(state, Anomaly::AlreadyOnline),
        (AddStart, None) => Transition::to(state, Starting, true, Hook::Starting, Outcome::Started),
        (AddStart, Some(Vacant)) => Transition::to(state, Starting, false, Hook::Starting, Outcome::Started),
        (AddStart, Some(Starting)) => Transition::to(state, Starting, false, Hook::Starting, Outcome::Restarted),
        (AddComplete, Some(Starting)) => Transition::to(state, Online, false, Hook::Online, Outcome::Online),
        (AddComplete, None) => Transition::to(state, Online, true, Hook::Online, Outcome::Adopted),
        (AddComplete, Some(Vacant)) => Transition::to(state, Online, false, Hook::Online, Outcome::Adopted),
        (AddFailure, Some(Starting)) => Transition::to(state, Vacant, false, Hook::Failed, Outcome::Reverted),
        (AddFailure, None | Some(Vacant)) => Transition::ignore(state, Anomaly::NotStarting),
    }
}

#[cfg(test)]
mod tests {
    //! The lifecycle as a table, written from `docs/processor-change-semantics.md`
    //! ("What each state means for per-processor data", the registration and
    //! hot-add orders), not from the code above.
    use super::*;
    use NotifyState::{AddComplete, AddFailure, AddStart};
    use SlotState::{Online, Starting, Vacant};

    const DENIED: NtStatus = NtStatus::ACCESS_DENIED;

    /// (current, notification) → (next, needs a value, hook, outcome).
    type Row = (Option<SlotState>, NotifyState, Option<SlotState>, bool, Hook, Outcome);

    #[rustfmt::skip]
    const TABLE: [Row; 12] = [
        // AddStart: allocate and fully initialise now, then Starting.
        (None,           AddStart,    Some(Starting), true,  Hook::Starting, Outcome::Started),
        // A failed add leaves the count unchanged: the next add reuses the index.
        (Some(Vacant),   AddStart,    Some(Starting), false, Hook::Starting, Outcome::Started),
        // An add whose final notification never came, then a new AddStart.
        (Some(Starting), AddStart,    Some(Starting), false, Hook::Starting, Outcome::Restarted),
        // No removal on Windows: an online processor cannot start again.
        (Some(Online),   AddStart,    None,           false, Hook::None,     Outcome::Ignored(Anomaly::AlreadyOnline)),
        // AddComplete: the processor runs.
        (Some(Starting), AddComplete, Some(Online),   false, Hook::Online,   Outcome::Online),
        // Running without an AddStart we saw: adopt it rather than lose it.
        (None,           AddComplete, Some(Online),   true,  Hook::Online,   Outcome::Adopted),
        (Some(Vacant),   AddComplete, Some(Online),   false, Hook::Online,   Outcome::Adopted),
        (Some(Online),   AddComplete, None,           false, Hook::None,     Outcome::Ignored(Anomaly::AlreadyOnline)),
        // AddFailure: the processor never ran; back to unused.
        (Some(Starting), AddFailure,  Some(Vacant),   false, Hook::Failed,   Outcome::Reverted),
        // "A driver must accept AddFailure for an index whose AddStart it
        // vetoed itself or never saw."
        (None,           AddFailure,  None,           false, Hook::None,     Outcome::Ignored(Anomaly::NotStarting)),
        (Some(Vacant),   AddFailure,  None,           false, Hook::None,     Outcome::Ignored(Anomaly::NotStarting)),
        (Some(Online),   AddFailure,  None,           false, Hook::None,     Outcome::Ignored(Anomaly::AlreadyOnline)),
    ];

    #[test]
    fn every_state_and_notification_has_the_documented_transition() {
        for (current, state, next, needs_value, hook, outcome) in TABLE {
            let t = transition(current, state);
            assert_eq!(
                (t.next, t.needs_value, t.hook, t.outcome),
                (next, needs_value, hook, outcome),
                "{current:?} {state:?}"
            );
        }
        // The table covers all 4 × 3 combinations exactly once.
        for current in [None, Some(Vacant), Some(Starting), Some(Online)] {
            for state in NotifyState::ALL {
                assert_eq!(TABLE.iter().filter(|row| row.0 == current && row.1 == state).count(), 1);
            }
        }
    }

    #[test]
    fn only_add_start_is_vetoed_and_a_veto_leaves_the_slot_vacant() {
        for current in [None, Some(Vacant), Some(Starting)] {
            assert_eq!(transition(current, AddStart).failed(DENIED), (Some(Vacant), Outcome::Vetoed(DENIED)));
        }
        for current in [None, Some(Vacant)] {
            let (next, outcome) = transition(current, AddComplete).failed(DENIED);
            assert_eq!((next, outcome.veto()), (None, None));
        }
    }

    #[test]
    fn levels_follow_severity() {
        assert_eq!(Outcome::Vetoed(DENIED).level(), Level::Error);
        assert_eq!(Outcome::Adopted.level(), Level::Warning);
        assert_eq!(Outcome::Ignored(Anomaly::NotStarting).level(), Level::Trace);
        assert_eq!(Outcome::Started.level(), Level::Trace);
    }
}
