//! The work budget of a session. Every session is bounded in the
//! simulator's own units, whatever its input, so that no script, crash file
//! or flag keeps `simulate` busy for long or fills a disk:
//!
//! - **work**: one unit per step run, per trace line the session produces
//!   (printed or not: `--quiet` drops lines, the simulation still makes
//!   them), per table line printed and per line a query prints (its heading
//!   and what `procnotify-ctl table` prints). A load of 2048 processors is
//!   about 14,000 units;
//! - **output**: the bytes written to standard output and standard error.
//!
//! [`Metered`] wraps the session's [`Sink`]: it charges every line, table
//! and query, and from the moment either limit is passed it writes nothing more
//! and the machine stops after the kernel operation in progress (a load of
//! 2048 processors at most). The session then ends with exit code 2 and
//! the limit named.

use std::format;
use std::io::{self, Write};
use std::string::String;

use super::query::QueryView;
use super::report::{Counted, Kind, Sink, Summary, TableView};

/// The default work limit, in units (see the module documentation).
pub const DEFAULT_WORK_LIMIT: u64 = 500_000;

/// The default output limit, in bytes (16 MiB).
pub const DEFAULT_OUTPUT_LIMIT: u64 = 16 << 20;

/// A session's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Work units.
    pub work: u64,
    /// Bytes written to standard output and standard error.
    pub output: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { work: DEFAULT_WORK_LIMIT, output: DEFAULT_OUTPUT_LIMIT }
    }
}

/// Which limit stopped a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// The work limit.
    Work,
    /// The output limit.
    Output,
}

/// What a session used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Work units.
    pub work: u64,
    /// Bytes written to standard output and standard error.
    pub output: u64,
}

/// A [`Sink`] and standard error, charged against [`Limits`].
pub struct Metered<'a> {
    sink: &'a mut dyn Sink,
    err: Counted<'a>,
    /// Where messages go once a limit is reached.
    muted: io::Sink,
    limits: Limits,
    work: u64,
    /// Bytes the summary will take (its lists grow with the session).
    reserved: u64,
    reached: Option<Limit>,
}

impl<'a> Metered<'a> {
    /// Meters `sink` and `err`.
    pub fn new(sink: &'a mut dyn Sink, err: &'a mut dyn Write, limits: Limits) -> Self {
        Self { sink, err: Counted::new(err), muted: io::sink(), limits, work: 0, reserved: 0, reached: None }
    }

    /// Standard error, for messages; they are dropped once a limit is reached.
    pub fn err(&mut self) -> &mut dyn Write {
        if self.reached.is_some() { &mut self.muted } else { &mut self.err }
    }

    /// Standard error, even after a limit was reached (to say so).
    pub fn err_always(&mut self) -> &mut dyn Write {
        &mut self.err
    }

    fn written(&self) -> u64 {
        self.sink.written().saturating_add(self.err.bytes())
    }

    /// Reserves `bytes` of output for the summary, which is written at the
    /// end whatever was reached: a session whose summary grows (a failed
    /// load, a fault, an unmet expectation each add a line) is stopped
    /// before the summary would take it past the output limit.
    pub fn reserve(&mut self, bytes: u64) {
        self.reserved = self.reserved.saturating_add(bytes);
    }

    /// Charges `units` of work; `false` once a limit has been passed.
    pub fn charge(&mut self, units: u64) -> bool {
        self.work = self.work.saturating_add(units);
        if self.reached.is_none() {
            if self.work > self.limits.work {
                self.reached = Some(Limit::Work);
            } else if self.written().saturating_add(self.reserved) > self.limits.output {
                self.reached = Some(Limit::Output);
            }
        }
        self.reached.is_none()
    }

    /// The limit passed, if any.
    pub fn reached(&self) -> Option<Limit> {
        self.reached
    }

    /// What the session used so far.
    pub fn usage(&self) -> Usage {
        Usage { work: self.work, output: self.written() }
    }

    /// The message for the limit passed, without where.
    pub fn message(&self) -> Option<String> {
        Some(match self.reached? {
            Limit::Work => format!(
                "the work limit of {} units (steps, trace lines, table and query lines) was reached; \
                 raise it with --work-limit N",
                self.limits.work
            ),
            Limit::Output => format!(
                "the output limit of {} bytes was reached; raise it with --output-limit BYTES",
                self.limits.output
            ),
        })
    }

    /// A trace line, charged one unit.
    pub fn line(&mut self, kind: Kind, text: &str) {
        if self.charge(1) {
            self.sink.line(kind, text);
        }
    }

    /// procnotify's table, charged one unit per line.
    pub fn table(&mut self, table: &TableView) {
        if self.charge(table.lines()) {
            self.sink.table(table);
        }
    }

    /// The user-mode query, charged one unit per line its text prints
    /// (the heading and what `procnotify-ctl table` prints), in either
    /// format. Once a limit is reached it is neither charged nor written.
    pub fn query(&mut self, query: &QueryView) {
        if self.reached.is_none() && self.charge(query.lines()) {
            self.sink.query(query);
        }
    }

    /// Whether a limit was reached: nothing more is written (a query need
    /// not be asked).
    pub fn muted(&self) -> bool {
        self.reached.is_some()
    }

    /// Whether trace lines are written: when not, the caller may charge
    /// the line without making it.
    pub fn wants_lines(&self) -> bool {
        self.reached.is_none() && self.sink.shows_lines()
    }

    /// Whether the table is printed before each unload.
    pub fn tables_at_unload(&self) -> bool {
        self.reached.is_none() && self.sink.tables_at_unload()
    }

    /// The summary, written whatever was reached.
    pub fn finish(&mut self, summary: &Summary) {
        self.sink.finish(summary);
    }
}
