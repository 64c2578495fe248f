//! The simulation's trace: what the kernel did ([`KernelEvent`]) and the
//! driver's and the caller's lines ([`SimEvent`]), with the one-line text
//! each prints as, and the kernel's queries over the trace.

use std::fmt;
use std::string::String;
use std::vec::Vec;

use std::format;

use procnotify_core::{GROUP_SIZE, Level, NotifyState as Kind, NtStatus};

use super::{NotifyContext, Refusal, SimKernel, lock};

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

/// Names a registration in trace lines (`procnotify`, `other driver "x"`),
/// or `None` to leave it as `#n` only.
pub type Namer<'a> = &'a dyn Fn(u64) -> Option<String>;

impl KernelEvent {
    /// The event as one trace line. `who` names registrations where it can
    /// (`by procnotify`, `callback #1 (procnotify)`); `max`, the partition's
    /// maximum, is quoted by an at-maximum refusal when given.
    #[must_use]
    pub fn line(&self, who: Namer<'_>, max: Option<u32>) -> String {
        let by = |registration: u64| who(registration).map(|name| format!(" by {name}")).unwrap_or_default();
        let to = |registration: u64| who(registration).map(|name| format!(" to {name}")).unwrap_or_default();
        let named = |registration: u64| who(registration).map(|name| format!(" ({name})")).unwrap_or_default();
        match self {
            Self::RegisterBegin { registration, add_existing } => format!(
                "kernel: KeRegisterProcessorChangeCallback(flags={}){}: takes KiDynamicProcessorLock, links \
                 registration #{registration}; handle not returned yet",
                if *add_existing { "KE_PROCESSOR_CHANGE_ADD_EXISTING" } else { "0" },
                by(*registration)
            ),
            Self::Unlinked { registration } => format!(
                "kernel: AddStart failed: registration #{registration}{} unlinked, delivering AddFailure to the \
                 processors that succeeded",
                named(*registration)
            ),
            Self::RegisterReturned { registration, handle } => format!(
                "kernel: KeRegisterProcessorChangeCallback returns {}{} (registration #{registration})",
                if *handle { "the handle" } else { "NULL" },
                to(*registration)
            ),
            Self::Callback { registration, change, handle_returned } => format!(
                "kernel:   -> callback #{registration}{} {} NtNumber={} group={} number={} Status={}{}",
                named(*registration),
                StateName(change.state),
                change.nt_number,
                change.proc_number.group,
                change.proc_number.number,
                change.status,
                if *handle_returned { "" } else { " (handle not yet returned)" }
            ),
            Self::Vetoed { registration, status } => {
                format!(
                    "kernel:   <- callback #{registration}{} vetoed: OperationStatus={status}",
                    named(*registration)
                )
            }
            Self::HotAddBegin { index } => format!(
                "kernel: KeStartDynamicProcessor: new processor index={index} (group {} number {})",
                index / GROUP_SIZE,
                index % GROUP_SIZE
            ),
            Self::HotAddRefused { refusal } => {
                format!("kernel: KeStartDynamicProcessor refused, no notifications: {}", refusal.words(max))
            }
            Self::ProcessorStarted { index } => {
                format!("kernel: HAL started processor {index}: it runs code now, before AddComplete")
            }
            Self::ProcessorStartFailed { index, status } => {
                format!("kernel: HAL failed to start processor {index}: {status}")
            }
            Self::Deregistered { registration } => format!(
                "kernel: KeDeregisterProcessorChangeCallback(#{registration}){} returns: no callback runs any more",
                by(*registration)
            ),
        }
    }
}

/// `AddStart`, or `State=7` for an unknown state.
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
            Self::Kernel(event) => f.write_str(&event.line(&|_| None, None)),
        }
    }
}

impl SimKernel {
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

    pub(super) fn push(&self, event: SimEvent) {
        lock(&self.inner.events).push(event);
    }

    /// Writes a line of the caller's own into the trace.
    pub fn note(&self, line: impl Into<String>) {
        self.push(SimEvent::Note(line.into()));
    }

    pub(crate) fn log(&self, level: Level, line: String) {
        self.push(SimEvent::Log(level, line));
    }
}
