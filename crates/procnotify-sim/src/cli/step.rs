//! What a session is made of: the machine ([`Setup`]) and the steps, shared by
//! `run` (built from flags), `script` (parsed from text) and `replay` (decoded
//! from a fuzz input).

use std::fmt;
use std::string::String;
use std::vec::Vec;

use procnotify_core::{MAX_PROCESSORS, NtStatus};

use super::values::status_text;
use crate::kernel::NotifyContext;

/// A session: the machine, then the steps in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// The machine.
    pub setup: Setup,
    /// Each step with where it came from.
    pub steps: Vec<(Origin, Step)>,
}

/// Where a step came from, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A script line (1-based).
    Line(usize),
    /// A command-line flag of `run`, as written.
    Flag(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Line(line) => write!(f, "line {line}"),
            Self::Flag(flag) => f.write_str(flag),
        }
    }
}

/// The machine a session runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    /// Processors at boot.
    pub boot: u32,
    /// The partition's maximum.
    pub max: u32,
    /// What `KeQueryMaximumProcessorCountEx` reports.
    pub reported: Reported,
    /// Whether the platform can hot-add processors.
    pub dynamic_partitioning: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Self { boot: 4, max: 8, reported: Reported::Max, dynamic_partitioning: true }
    }
}

impl Setup {
    /// The kernel's boot configuration.
    pub fn config(self) -> crate::kernel::Config {
        let mut config = crate::kernel::Config::new(self.boot, self.max.min(MAX_PROCESSORS));
        config.reported_max = match self.reported {
            Reported::Max => config.max,
            Reported::Half => (config.max / 2).max(1),
            Reported::Huge => u32::MAX,
            Reported::Value(n) => n,
        };
        config.dynamic_partitioning = self.dynamic_partitioning;
        config
    }
}

/// What the kernel reports as the maximum processor count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reported {
    /// The real maximum.
    Max,
    /// Half of it (at least 1).
    Half,
    /// `u32::MAX`.
    Huge,
    /// This value.
    Value(u32),
}

/// One step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Register another driver (without `ADD_EXISTING`), which vetoes the
    /// first `AddStart` of each listed index with the status given.
    OtherDriver {
        /// Its name in the trace.
        name: String,
        /// (index, status) pairs.
        vetoes: Vec<(u32, NtStatus)>,
    },
    /// A fault that waits for its processor (or allocation, or load).
    Fault(Fault),
    /// Load procnotify.
    Load(LoadFault),
    /// Unload if loaded, then load.
    Reload(LoadFault),
    /// Unload procnotify.
    Unload,
    /// Unload if loaded, else load.
    Toggle,
    /// `count` hot-add attempts; a fault applies to a single attempt.
    HotAdd {
        /// Attempts.
        count: u32,
        /// Its fault.
        fault: AddFault,
    },
    /// Deliver a notification to every registration.
    Notify(NotifyContext),
    /// The read path on one processor.
    Read(u32),
    /// The read path on every running processor.
    ReadAll,
    /// Print procnotify's table now.
    Table,
    /// Issue the user-mode query (`IOCTL_PROCNOTIFY_QUERY`) now and print
    /// what `procnotify-ctl table` would.
    Query {
        /// The output buffer's length; `None`: the size `procnotify-ctl`
        /// asks with (64 + 32 × the capacity).
        bytes: Option<u32>,
    },
    /// Check an outcome.
    Expect(Expect),
}

/// A fault declared once that fires when its target comes (once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The HAL fails to start processor `index` with `status`.
    FailStart {
        /// The processor.
        index: u32,
        /// The failure.
        status: NtStatus,
    },
    /// The kernel fails to prepare processor `index` (no notifications).
    FailPrepare {
        /// The processor.
        index: u32,
    },
    /// procnotify's slot initialisation fails for processor `index`, at
    /// registration or at hot-add, whichever initialises it.
    FailInit {
        /// The processor.
        index: u32,
    },
    /// procnotify's `ordinal`-th pool allocation attempt of the session fails.
    FailAlloc {
        /// 1-based.
        ordinal: u32,
    },
    /// The kernel fails the next registration (NULL, no callbacks).
    FailRegister,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FailStart { index, status } => write!(f, "fail-start {index} {}", status_text(*status)),
            Self::FailPrepare { index } => write!(f, "fail-prepare {index}"),
            Self::FailInit { index } => write!(f, "fail-init {index}"),
            Self::FailAlloc { ordinal } => write!(f, "fail-alloc {ordinal}"),
            Self::FailRegister => f.write_str("fail-register"),
        }
    }
}

/// A fault of one load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadFault {
    /// None.
    None,
    /// The n-th allocation attempt of this load fails.
    Alloc(u32),
    /// Processor k's slot initialisation fails during registration.
    Init(u32),
    /// The kernel fails the registration.
    Register,
}

/// Written after `load` / `reload`, with its leading space.
impl fmt::Display for LoadFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => Ok(()),
            Self::Alloc(n) => write!(f, " fail-alloc {n}"),
            Self::Init(k) => write!(f, " fail-init {k}"),
            Self::Register => f.write_str(" fail-register"),
        }
    }
}

/// A fault of one hot-add.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddFault {
    /// None.
    None,
    /// The named other driver vetoes this add's `AddStart`.
    Veto {
        /// Its name.
        driver: String,
        /// Its status.
        status: NtStatus,
    },
    /// The HAL fails to start the processor.
    FailStart(NtStatus),
    /// The n-th allocation attempt of this add fails.
    FailAlloc(u32),
    /// procnotify's slot initialisation fails.
    FailInit,
    /// The kernel fails to prepare the processor.
    FailPrepare,
}

/// Written after `hot-add`, with its leading space.
impl fmt::Display for AddFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => Ok(()),
            Self::Veto { driver, status } => write!(f, " veto {driver} {}", status_text(*status)),
            Self::FailStart(status) => write!(f, " fail-start {}", status_text(*status)),
            Self::FailAlloc(n) => write!(f, " fail-alloc {n}"),
            Self::FailInit => f.write_str(" fail-init"),
            Self::FailPrepare => f.write_str(" fail-prepare"),
        }
    }
}

/// The expected result of the last hot-add.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddResult {
    /// Added (at this index).
    Added(Option<u32>),
    /// `AddFailure` (at this index, with this status).
    Failed(Option<u32>, Option<NtStatus>),
    /// Refused without notifications (for this reason: `at-maximum`,
    /// `not-supported`, `prepare-failed`).
    Refused(Option<String>),
}

/// What a slot is expected to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotExpect {
    /// No slot allocated.
    Absent,
    /// `vacant`.
    Vacant,
    /// `starting`.
    Starting,
    /// `online`.
    Online,
}

impl SlotExpect {
    /// From its name.
    ///
    /// # Errors
    ///
    /// A message for any other word.
    pub fn parse(text: &str) -> Result<Self, String> {
        Ok(match text {
            "absent" => Self::Absent,
            "vacant" => Self::Vacant,
            "starting" => Self::Starting,
            "online" => Self::Online,
            other => return Err(std::format!("a slot is absent, vacant, starting or online, not `{other}`")),
        })
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Absent => "absent",
            Self::Vacant => "vacant",
            Self::Starting => "starting",
            Self::Online => "online",
        }
    }
}

/// An `expect` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The last load succeeded.
    LoadOk,
    /// The last load failed (with this status).
    LoadFailed(Option<NtStatus>),
    /// The last hot-add's result.
    HotAdd(AddResult),
    /// The outcome procnotify logged for the last notification it handled,
    /// as the trace writes it (`vetoed` matches `vetoed(...)`).
    Outcome(String),
    /// What procnotify wrote to `*OperationStatus` for the last notification
    /// it handled (`None`: no veto).
    Veto(Option<NtStatus>),
    /// A slot's state and counters (`starts=`, `completes=`, `failures=`, `visits=`).
    Slot {
        /// The index.
        index: u32,
        /// Its state.
        state: SlotExpect,
        /// Counter name and value.
        counters: Vec<(String, u64)>,
    },
    /// procnotify's counters (`notifications=`, `vetoes=`, `anomalies=`) of the loaded driver.
    Stats(Vec<(String, u64)>),
    /// The kernel's processor count.
    Processors(u32),
    /// Whether the last read found a slot.
    Read(bool),
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pairs = |f: &mut fmt::Formatter<'_>, pairs: &[(String, u64)]| {
            pairs.iter().try_for_each(|(key, value)| write!(f, " {key}={value}"))
        };
        match self {
            Self::LoadOk => f.write_str("load ok"),
            Self::LoadFailed(None) => f.write_str("load failed"),
            Self::LoadFailed(Some(status)) => write!(f, "load failed {}", status_text(*status)),
            Self::HotAdd(AddResult::Added(index)) => {
                f.write_str("hot-add added")?;
                index.map_or(Ok(()), |index| write!(f, " {index}"))
            }
            Self::HotAdd(AddResult::Failed(index, status)) => {
                f.write_str("hot-add failed")?;
                if let Some(index) = index {
                    write!(f, " {index}")?;
                    if let Some(status) = status {
                        write!(f, " {}", status_text(*status))?;
                    }
                }
                Ok(())
            }
            Self::HotAdd(AddResult::Refused(reason)) => {
                f.write_str("hot-add refused")?;
                reason.as_ref().map_or(Ok(()), |reason| write!(f, " {reason}"))
            }
            Self::Outcome(outcome) => write!(f, "outcome {outcome}"),
            Self::Veto(None) => f.write_str("veto none"),
            Self::Veto(Some(status)) => write!(f, "veto {}", status_text(*status)),
            Self::Slot { index, state, counters } => {
                write!(f, "slot {index} {}", state.name())?;
                pairs(f, counters)
            }
            Self::Stats(counters) => {
                f.write_str("stats")?;
                pairs(f, counters)
            }
            Self::Processors(n) => write!(f, "processors {n}"),
            Self::Read(found) => write!(f, "read {}", if *found { "found" } else { "none" }),
        }
    }
}
