//! The `procnotify:` trace lines, formatted once for every OS layer: the
//! Windows layer hands them to `DbgPrintEx`, the simulator prints them, so
//! what the simulator shows is, line for line, what WinDbg shows.

use core::fmt;

use crate::lifecycle::Outcome;
use crate::values::{ProcNumber, RawNotification, StateName};

/// One notification and what it did:
/// `procnotify: add-start index=4 group=0 number=4 status=0x00000000(STATUS_SUCCESS) outcome=started`.
#[derive(Clone, Copy, Debug)]
pub struct Notification {
    /// The notification as delivered.
    pub n: RawNotification,
    /// What the engine did with it.
    pub outcome: Outcome,
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = &self.n;
        write!(
            f,
            "procnotify: {} index={} group={} number={} status={} outcome={}",
            StateName(n.state),
            n.index,
            n.proc_number.group,
            n.proc_number.number,
            n.status,
            self.outcome,
        )
    }
}

/// A DPC queued to a processor that just came online:
/// `procnotify: dpc index=4 group=0 number=4 queued=true`.
#[derive(Clone, Copy, Debug)]
pub struct DpcQueued {
    /// The processor's index.
    pub index: u32,
    /// Its group and number.
    pub number: ProcNumber,
    /// `KeInsertQueueDpc`'s result: `false` if it was already queued.
    pub queued: bool,
}

impl fmt::Display for DpcQueued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "procnotify: dpc index={} group={} number={} queued={}",
            self.index, self.number.group, self.number.number, self.queued
        )
    }
}

/// The DPC ran on its processor and found its own value:
/// `procnotify: visit index=4 visits=1`.
#[derive(Clone, Copy, Debug)]
pub struct Visit {
    /// The processor the DPC ran on (its own slot's index).
    pub index: u32,
    /// The slot's visit count after this visit.
    pub visits: u64,
}

impl fmt::Display for Visit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "procnotify: visit index={} visits={}", self.index, self.visits)
    }
}
