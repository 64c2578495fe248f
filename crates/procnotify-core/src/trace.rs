//! The engine's log lines, formatted once for every OS layer: the Windows
//! layer hands them to `DbgPrintEx`, the simulator prints them, so what the
//! simulator shows is, line for line, what WinDbg shows.
//!
//! Every line starts with the driver's name ([`Identity::NAME`] of
//! `Os::Identity`): [`log`] adds it, once, for every line of the engine, so
//! the structs here and the engine's messages never spell a name.
//! procnotify's own lines read `procnotify: add-start index=4 ...`; a driver
//! named `percpu_stats` gets `percpu_stats: add-start index=4 ...`.

use core::fmt;

use crate::identity::Identity;
use crate::lifecycle::Outcome;
use crate::os::Os;
use crate::values::{Level, ProcNumber, RawNotification, StateName};

/// Writes `NAME: <args>` through `os`, `NAME` being the driver's
/// [`Identity::NAME`]. Every line the engine logs goes through here; a
/// driver's own hooks may use it too, to log under the same name.
#[inline]
pub fn log<O: Os>(os: &O, level: Level, args: fmt::Arguments<'_>) {
    os.log(level, format_args!("{}: {}", <O::Identity as Identity>::NAME, args));
}

/// One notification and what it did:
/// `add-start index=4 group=0 number=4 status=0x00000000(STATUS_SUCCESS) outcome=started`.
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
            "{} index={} group={} number={} status={} outcome={}",
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
/// `dpc index=4 group=0 number=4 queued=true`.
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
            "dpc index={} group={} number={} queued={}",
            self.index, self.number.group, self.number.number, self.queued
        )
    }
}

/// The DPC ran on its processor and found its own value:
/// `visit index=4 visits=1`.
#[derive(Clone, Copy, Debug)]
pub struct Visit {
    /// The processor the DPC ran on (its own slot's index).
    pub index: u32,
    /// The slot's visit count after this visit.
    pub visits: u64,
}

impl fmt::Display for Visit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "visit index={} visits={}", self.index, self.visits)
    }
}
