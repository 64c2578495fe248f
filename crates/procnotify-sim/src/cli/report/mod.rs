//! What a session reports, and the two outputs that write it, text
//! ([`Text`]) and JSON ([`Json`]), as the session goes: trace lines are
//! printed (or, with `--quiet`, dropped) as they happen and never kept.
//!
//! The report types derive `serde::Serialize`: the JSON output is theirs,
//! as `docs/schema/simulate.schema.json` describes it.

mod json;
mod text;

use std::io::{self, Write};
use std::string::String;
use std::vec::Vec;

use procnotify_core::monitor::Counters;
use procnotify_core::{NtStatus, ProcNumber, SlotState};
use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

pub use json::{Json, SCHEMA, write_error, write_script};
pub use text::Text;

use super::exit::Exit;
use super::query::QueryView;
use crate::alloc::AllocStats;

/// Who wrote a trace line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The session itself (`== ...`).
    Note,
    /// The simulated kernel.
    Kernel,
    /// procnotify, through `Os::log` (the `procnotify:` lines).
    Procnotify,
}

/// One row of procnotify's table: an index with a slot.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Row {
    /// Processor index.
    pub index: u32,
    /// Slot state: `vacant`, `starting` or `online`.
    pub state: &'static str,
    /// Processor group; `None` while vacant.
    pub group: Option<u16>,
    /// Number in the group; `None` while vacant.
    pub number: Option<u8>,
    /// Accepted `AddStart`s.
    pub starts: u32,
    /// `AddComplete`s that brought it online.
    pub completes: u32,
    /// `AddFailure`s that reverted it.
    pub failures: u32,
    /// DPC runs and reads that visited it.
    pub visits: u64,
}

impl Row {
    /// The row of a slot.
    pub fn new(index: u32, state: SlotState, number: ProcNumber, counters: Counters) -> Self {
        let placed = state != SlotState::Vacant;
        Self {
            index,
            state: state.name(),
            group: placed.then_some(number.group),
            number: placed.then_some(number.number),
            starts: counters.starts,
            completes: counters.completes,
            failures: counters.failures,
            visits: counters.visits,
        }
    }
}

/// A run of indices with no slot, `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Absent {
    /// The first index.
    pub first: u32,
    /// The last index.
    pub last: u32,
}

/// procnotify's table at one moment.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TableView {
    /// Capacity.
    pub capacity: u32,
    /// Slots allocated.
    pub allocated_slots: u32,
    /// Bytes of slot storage.
    pub slot_bytes: usize,
    /// Bytes of the index.
    pub index_bytes: usize,
    /// Allocated slots, by index.
    pub rows: Vec<Row>,
    /// Index ranges with no slot.
    pub absent: Vec<Absent>,
}

impl TableView {
    /// A table of `capacity` with these `rows` (by index); the absent
    /// ranges are the indices between them.
    pub fn new(capacity: u32, allocated_slots: u32, (slot_bytes, index_bytes): (usize, usize), rows: Vec<Row>) -> Self {
        let mut absent = Vec::new();
        let mut next = 0;
        for row in &rows {
            if row.index > next {
                absent.push(Absent { first: next, last: row.index - 1 });
            }
            next = row.index + 1;
        }
        if next < capacity {
            absent.push(Absent { first: next, last: capacity - 1 });
        }
        Self { capacity, allocated_slots, slot_bytes, index_bytes, rows, absent }
    }

    /// Lines the table prints: its rows and absent ranges.
    pub fn lines(&self) -> u64 {
        (self.rows.len() + self.absent.len()) as u64
    }
}

/// Hot-add attempts by result.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Adds {
    /// Hot-add attempts.
    pub attempted: u32,
    /// Adds that brought a processor online.
    pub succeeded: u32,
    /// Adds that ended in `AddFailure`.
    pub failed: u32,
    /// Adds refused before any notification.
    pub refused: u32,
}

/// The vetoes one registration issued.
#[derive(Clone, Debug, Serialize)]
pub struct Vetoes {
    /// `procnotify`, or `other driver "NAME"`.
    pub by: String,
    /// How many.
    pub count: u32,
}

/// An `NTSTATUS`: `{"value": "0xC000009A", "name": "STATUS_INSUFFICIENT_RESOURCES"}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status(pub NtStatus);

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut status = serializer.serialize_struct("Status", 2)?;
        status.serialize_field("value", &std::format!("0x{:08X}", self.0.bits()))?;
        status.serialize_field("name", &self.0.name())?;
        status.end()
    }
}

/// A load that failed.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct FailedLoad {
    /// Which load (counted from 1).
    pub load: u32,
    /// `DriverEntry`'s status.
    pub status: Status,
}

/// A fault and whether it fired.
#[derive(Clone, Debug, Serialize)]
pub struct FaultResult {
    /// The fault, as written (`--fail-add 6`, `line 4: fault fail-init 5`).
    pub fault: String,
    /// Whether it fired.
    pub fired: bool,
}

/// The `expect` lines.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Expectations {
    /// Expectations checked.
    pub checked: u32,
    /// Those not met (messages).
    pub unmet: Vec<String>,
}

/// The pool's account at the end. Bytes are the sizes procnotify requested
/// (`Layout::size`), without the padding the Windows pool adds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Pool {
    /// Successful allocations.
    pub allocations: u64,
    /// Frees of live allocations.
    pub frees: u64,
    /// Allocations not freed.
    pub live: usize,
    /// Bytes not freed.
    pub bytes_live: usize,
    /// The most bytes live at once.
    pub bytes_peak: usize,
    /// Allocation attempts failed on purpose.
    pub injected_failures: u64,
}

impl From<AllocStats> for Pool {
    fn from(stats: AllocStats) -> Self {
        Self {
            allocations: stats.allocations,
            frees: stats.frees,
            live: stats.live,
            bytes_live: stats.bytes_live,
            bytes_peak: stats.bytes_peak,
            injected_failures: stats.failures_injected,
        }
    }
}

/// Everything the summary shows.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Hot-adds.
    pub adds: Adds,
    /// Vetoes by registration.
    pub vetoes: Vec<Vetoes>,
    /// Notifications procnotify received, over all loads.
    pub notifications: u64,
    /// Anomalies procnotify counted, over all loads.
    pub anomalies: u64,
    /// Reads run.
    pub reads: u32,
    /// Loads attempted.
    pub loads: u32,
    /// Failed loads, in order.
    pub failed_loads: Vec<FailedLoad>,
    /// Every fault and whether it fired.
    pub faults: Vec<FaultResult>,
    /// The `expect` lines.
    pub expectations: Expectations,
    /// The pool at the end.
    pub pool: Pool,
    /// Violations found (double frees, uses after free).
    pub violations: Vec<String>,
    /// Payloads still live at the end.
    #[serde(skip)]
    pub payloads_live: i64,
    /// Whether any load succeeded.
    pub ever_loaded: bool,
    /// Nothing leaked, nothing used after free.
    pub clean: bool,
    /// Why the session stopped early (a limit), if it did.
    #[serde(skip)]
    pub stopped: Option<String>,
    /// The exit code.
    #[serde(rename = "exit_code")]
    pub exit: Exit,
}

impl Summary {
    /// The exit code of a finished session: 2 when it was stopped, else
    /// the first of 1, 5, 3, 4 that applies.
    pub fn verdict(&self, unexpected_load_failure: bool) -> Exit {
        if !self.clean {
            Exit::Leak
        } else if self.stopped.is_some() {
            Exit::Usage
        } else if !self.expectations.unmet.is_empty() {
            Exit::Expectation
        } else if unexpected_load_failure {
            Exit::LoadFailed
        } else if self.faults.iter().any(|fault| !fault.fired) {
            Exit::FaultNotFired
        } else {
            Exit::Ok
        }
    }
}

/// Where a session's output goes.
pub trait Sink {
    /// A trace line (dropped with `--quiet`).
    fn line(&mut self, kind: Kind, text: &str);
    /// Whether trace lines are written (not with `--quiet`).
    fn shows_lines(&self) -> bool;
    /// procnotify's table, on a `table` step or before an unload.
    fn table(&mut self, table: &TableView);
    /// Whether the table is printed before each unload (not with `--quiet`
    /// unless `--table` asks for it).
    fn tables_at_unload(&self) -> bool;
    /// The user-mode query and what `procnotify-ctl table` prints for it, on
    /// a `query` step or with `--query-after-each` (also with `--quiet`).
    fn query(&mut self, query: &QueryView);
    /// Bytes written so far.
    fn written(&self) -> u64;
    /// The end.
    fn finish(&mut self, summary: &Summary);
}

/// A writer that counts the bytes written through it.
pub struct Counted<'w> {
    out: &'w mut dyn Write,
    bytes: u64,
}

impl<'w> Counted<'w> {
    /// Counts what goes to `out`.
    pub fn new(out: &'w mut dyn Write) -> Self {
        Self { out, bytes: 0 }
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.out.write(buf)?;
        self.bytes = self.bytes.saturating_add(written as u64);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// What the output shows: `--quiet` and `--table`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Shown {
    /// Leave the trace out.
    pub quiet: bool,
    /// Print the table before each unload even with `quiet`.
    pub tables: bool,
}

impl Shown {
    /// Whether tables are printed before each unload.
    pub fn tables_at_unload(self) -> bool {
        !self.quiet || self.tables
    }
}
