//! Runs a [`Script`] against the simulated kernel and the real procnotify
//! driver, writing the trace to a [`Sink`] as it goes (never keeping it):
//! after each step the DPCs are flushed and the kernel's events are taken,
//! named and printed.

use std::format;
use std::io::Write;
use std::string::{String, ToString};
use std::vec::Vec;

use procnotify_core::NtStatus;

use super::budget::{Limits, Metered, Usage};
use super::faults::Faults;
use super::others::Others;
use super::query::QueryView;
use super::report::{FailedLoad, FaultResult, Kind, Pool, Row, Sink, Status, Summary, TableView, Vetoes};
use super::step::{AddFault, LoadFault, Origin, Script, Step};
use super::values::{parse_status, status_words};
use crate::kernel::{HotAdd, KernelEvent, SimEvent, SimKernel};
use crate::os::{SimDriver, SimOs};

/// About the bytes a line of the summary takes, text or JSON (a failed load,
/// an unmet expectation beyond its message).
pub(super) const SUMMARY_LINE: u64 = 80;

/// What the last steps did, for `expect`.
#[derive(Default)]
pub(super) struct Last {
    pub load: Option<Result<(), NtStatus>>,
    pub hot_add: Option<HotAdd>,
    pub outcome: Option<String>,
    pub read: Option<bool>,
}

/// A session in progress.
pub struct Machine<'a> {
    pub(super) kernel: SimKernel,
    pub(super) driver: Option<SimDriver>,
    others: Others,
    pub(super) sink: Metered<'a>,
    faults: Faults,
    pub(super) last: Last,
    pub(super) summary: Summary,
    procnotify_vetoes: u32,
    pub(super) unexpected_load_failure: bool,
    /// The step at which a limit was reached.
    stopped_at: Option<Origin>,
    /// `--query-after-each`.
    query_after_each: bool,
    /// Replies that did not decode (a bug: reported as violations).
    query_violations: Vec<String>,
}

impl<'a> Machine<'a> {
    /// Boots the machine `script.setup` describes; the session writes to
    /// `sink` and `err` within `limits`.
    pub fn new(script: &Script, sink: &'a mut dyn Sink, err: &'a mut dyn Write, limits: Limits) -> Self {
        let config = script.setup.config();
        let kernel = SimKernel::boot(config);
        let mut sink = Metered::new(sink, err, limits);
        sink.line(
            Kind::Note,
            &format!(
                "== boot: {} processors present, maximum {} (the kernel reports {}){}",
                config.boot,
                config.max,
                config.reported_max,
                if config.dynamic_partitioning { "" } else { "; no dynamic partitioning" }
            ),
        );
        Self {
            kernel,
            driver: None,
            others: Others::default(),
            sink,
            faults: Faults::default(),
            last: Last::default(),
            summary: Summary::default(),
            procnotify_vetoes: 0,
            unexpected_load_failure: false,
            stopped_at: None,
            query_after_each: false,
            query_violations: Vec::new(),
        }
    }

    /// With `on`, the query is issued after each step that can change
    /// procnotify's table ([`query_after`]), after each hot-add attempt and
    /// after the end-of-session unload.
    #[must_use]
    pub fn query_after_each(mut self, on: bool) -> Self {
        self.query_after_each = on;
        self
    }

    /// Runs every step (until a limit is reached), unloads, writes the
    /// summary and returns it with what the session used.
    pub fn run(mut self, script: &Script) -> (Summary, Usage) {
        for (origin, step) in &script.steps {
            if self.sink.charge(1) {
                self.step(origin, step);
                if let Some(after) = query_after(step).filter(|_| self.query_after_each) {
                    self.query(origin, None, Some(after));
                }
            }
            if self.sink.reached().is_some() {
                self.stopped_at = Some(origin.clone());
                break;
            }
        }
        self.finish()
    }

    pub(super) fn note(&mut self, text: &str) {
        self.sink.line(Kind::Note, text);
    }

    /// A message on stderr.
    pub(super) fn complain(&mut self, origin: &Origin, text: &str) {
        let _ = writeln!(self.sink.err(), "simulate: {origin}: {text}");
    }

    /// Whether a limit was reached: the session stops.
    fn stopping(&self) -> bool {
        self.sink.reached().is_some()
    }

    fn step(&mut self, origin: &Origin, step: &Step) {
        match step {
            Step::OtherDriver { name, vetoes } => self.register_other(origin, name, vetoes),
            Step::Fault(fault) => self.faults.plan(&self.kernel, origin, *fault),
            Step::Load(fault) => {
                if self.driver.is_some() {
                    self.note("== load: procnotify is already loaded; nothing to do");
                } else {
                    self.load(origin, *fault);
                }
            }
            Step::Reload(fault) => {
                self.unload();
                self.load(origin, *fault);
            }
            Step::Unload => {
                if self.driver.is_none() {
                    self.note("== unload: procnotify is not loaded; nothing to do");
                }
                self.unload();
            }
            Step::Toggle => {
                if self.driver.is_some() {
                    self.unload();
                } else {
                    self.load(origin, LoadFault::None);
                }
            }
            Step::HotAdd { count, fault } => {
                for n in 0..*count {
                    if self.stopping() {
                        break;
                    }
                    self.hot_add(origin, if n == 0 { fault } else { &AddFault::None });
                    if self.query_after_each {
                        self.query(origin, None, Some("hot-add"));
                    }
                }
            }
            Step::Notify(change) => {
                self.note(&format!("== notify (delivered to every registration): {}", Step::Notify(*change)));
                self.kernel.inject(*change);
                self.drain();
            }
            Step::Read(processor) => self.read(*processor),
            Step::ReadAll => {
                for processor in 0..self.kernel.processor_count() {
                    if self.stopping() {
                        break;
                    }
                    self.read(processor);
                }
            }
            Step::Table => match self.table() {
                Some(table) => self.sink.table(&table),
                None => self.note("== table: procnotify is not loaded"),
            },
            Step::Query { bytes } => self.query(origin, *bytes, None),
            Step::Expect(expect) => self.expect(origin, expect),
        }
    }

    fn register_other(&mut self, origin: &Origin, name: &str, vetoes: &[(u32, NtStatus)]) {
        self.note(&Others::announcement(name, vetoes));
        self.others.register(&self.kernel, origin, name, vetoes);
        self.drain();
    }

    /// Flushes DPCs and prints what happened since the last drain. The DPC's
    /// `visit` lines come last: on Windows they are printed on the target
    /// processor at its own time; here, after the step that queued them.
    pub(super) fn drain(&mut self) {
        self.kernel.flush_dpcs();
        let max = self.kernel.config().max;
        let mut visits = Vec::new();
        for event in self.kernel.take_events() {
            match event {
                SimEvent::Log(_, line) if line.starts_with("procnotify: visit ") => visits.push(line),
                SimEvent::Log(_, line) => {
                    if let Some((_, outcome)) = line.split_once(" outcome=") {
                        // One such line per notification procnotify handled.
                        self.summary.notifications += 1;
                        self.summary.anomalies += u64::from(is_anomaly(outcome));
                        self.last.outcome = Some(outcome.to_string());
                    }
                    self.sink.line(Kind::Procnotify, &line);
                }
                SimEvent::Note(line) => self.sink.line(Kind::Note, &line),
                SimEvent::Kernel(event) => {
                    if let KernelEvent::Vetoed { registration, .. } = event
                        && !self.others.is_other(registration)
                    {
                        self.procnotify_vetoes += 1;
                    }
                    if self.sink.wants_lines() {
                        let line = event.line(&|id| Some(self.others.who(id)), Some(max));
                        self.sink.line(Kind::Kernel, &line);
                    } else {
                        // Made and dropped all the same: charged, not formatted.
                        self.sink.charge(1);
                    }
                }
            }
        }
        for line in visits {
            self.sink.line(Kind::Procnotify, &line);
        }
    }

    fn load(&mut self, origin: &Origin, fault: LoadFault) {
        self.summary.loads += 1;
        self.note("== DriverEntry: procnotify loads (KeRegisterProcessorChangeCallback with ADD_EXISTING)");
        let armed = self.faults.arm_load(&self.kernel, origin, fault);
        let result = SimOs::load_monitor(&self.kernel);
        self.drain();
        self.faults.check(&self.kernel, &self.others, armed, self.sink.err());
        self.sink.reserve(self.faults.take_summary_bytes());
        match result {
            Ok(driver) => {
                let present = driver.context().present();
                self.driver = Some(driver);
                self.summary.ever_loaded = true;
                self.note(&format!("== DriverEntry returned STATUS_SUCCESS: loaded, {present} processors present"));
                self.last.load = Some(Ok(()));
            }
            Err(status) => {
                let live = self.kernel.pool().stats().live;
                self.note(&format!(
                    "== DriverEntry returned {status}: load failed; {live} pool allocations left (expected 0)"
                ));
                self.complain(origin, &format!("load failed: {}", status_words(status)));
                self.summary.failed_loads.push(FailedLoad { load: self.summary.loads, status: Status(status) });
                self.sink.reserve(SUMMARY_LINE);
                self.unexpected_load_failure = true;
                self.last.load = Some(Err(status));
            }
        }
    }

    /// Issues the user-mode query with an output buffer of `bytes` (by
    /// default, the size `procnotify-ctl` asks with) and prints what
    /// `procnotify-ctl table` would; `after` names the step
    /// `--query-after-each` follows.
    fn query(&mut self, origin: &Origin, bytes: Option<u32>, after: Option<&'static str>) {
        if self.sink.muted() {
            return;
        }
        let view = QueryView::ask(self.driver.as_ref(), bytes, origin.to_string(), after);
        if let Some(error) = view.decode_error() {
            let message = format!("{origin}: query: the reply does not decode: {error}");
            self.complain(origin, &format!("query: the reply does not decode: {error} (a bug: please report it)"));
            self.query_violations.push(message);
        }
        self.sink.query(&view);
    }

    pub(super) fn table(&self) -> Option<TableView> {
        let table = self.driver.as_ref()?.context().table();
        let rows =
            table.slots().map(|slot| Row::new(slot.index(), slot.state(), slot.proc_number(), slot.value().counters()));
        Some(TableView::new(
            table.capacity(),
            table.allocated_slots(),
            (table.slot_bytes(), table.index_bytes()),
            rows.collect(),
        ))
    }

    /// Prints the table (unless the output leaves it out), then unloads.
    fn unload(&mut self) {
        if self.driver.is_none() {
            return;
        }
        if self.sink.tables_at_unload()
            && let Some(table) = self.table()
        {
            self.sink.table(&table);
        }
        if let Some(driver) = self.driver.take() {
            self.note("== EvtDriverUnload: procnotify unloads");
            driver.unload();
        }
        self.drain();
    }

    fn hot_add(&mut self, origin: &Origin, fault: &AddFault) {
        self.summary.adds.attempted += 1;
        let index = self.kernel.processor_count();
        let armed = self.faults.arm_add(&self.kernel, &self.others, (origin, index, fault), self.sink.err());
        self.note("== hot-add");
        let result = self.kernel.hot_add();
        self.drain();
        self.faults.check(&self.kernel, &self.others, armed, self.sink.err());
        self.sink.reserve(self.faults.take_summary_bytes());
        let line = match result {
            HotAdd::Added(index) => {
                self.summary.adds.succeeded += 1;
                format!("== processor {index} added")
            }
            HotAdd::Failed { index, status } => {
                self.summary.adds.failed += 1;
                format!(
                    "== add of processor {index} failed: {}; the next add reuses index {index}",
                    status_words(status)
                )
            }
            HotAdd::Refused(refusal) => {
                self.summary.adds.refused += 1;
                format!("== hot-add refused: {}", refusal.words(Some(self.kernel.config().max)))
            }
        };
        self.note(&line);
        self.last.hot_add = Some(result);
    }

    fn read(&mut self, processor: u32) {
        let found = self.driver.as_ref().map(|driver| {
            let context = driver.context();
            SimKernel::run_on(processor, || {
                context.current().map(|value| (value.visit(context.os()), context.table().get(processor)))
            })
        });
        let line = match found {
            None => String::from("not loaded"),
            Some(None) => String::from("no slot (current() returned None)"),
            Some(Some((visits, slot))) => {
                format!("found its slot ({}), visits={visits}", slot.map_or("?", |slot| slot.state().name()))
            }
        };
        self.last.read = Some(matches!(found, Some(Some(_))));
        self.summary.reads += 1;
        self.note(&format!("== read on processor {processor}: {line}"));
        self.drain();
    }

    /// The status procnotify vetoed the last notification with, from its outcome.
    pub(super) fn last_veto(&self) -> Option<NtStatus> {
        let outcome = self.last.outcome.as_deref()?;
        let inner = outcome.strip_prefix("vetoed(")?;
        parse_status(inner.trim_end_matches(')')).ok()
    }

    fn finish(mut self) -> (Summary, Usage) {
        if self.driver.is_some() {
            self.note("== end of session: procnotify unloads");
            self.unload();
            if self.query_after_each {
                self.query(&Origin::Flag(String::from("end of session")), None, Some("unload"));
            }
        }
        for (name, handle) in self.others.take_handles() {
            self.note(&format!("== other driver \"{name}\" deregisters"));
            self.kernel.deregister(handle);
            self.drain();
        }
        self.close()
    }

    fn close(mut self) -> (Summary, Usage) {
        let mut summary = std::mem::take(&mut self.summary);
        let faults = std::mem::take(&mut self.faults).finish(&self.kernel, &self.others, self.sink.err());
        summary.faults.extend(faults.into_iter().map(|(fault, fired)| FaultResult { fault, fired }));
        summary.vetoes.push(Vetoes { by: String::from("procnotify"), count: self.procnotify_vetoes });
        summary.vetoes.extend(self.others.veto_counts().into_iter().map(|(by, count)| Vetoes { by, count }));
        summary.pool = Pool::from(self.kernel.pool().stats());
        summary.violations = self.kernel.violations();
        summary.violations.append(&mut self.query_violations);
        summary.payloads_live = self.kernel.payloads_live();
        summary.clean = summary.pool.live == 0 && summary.violations.is_empty() && summary.payloads_live == 0;
        let adds = summary.adds;
        if adds.refused > 0 {
            let _ = writeln!(
                self.sink.err(),
                "simulate: note: {} of {} hot-add attempts were refused before any notification",
                adds.refused,
                adds.attempted
            );
        }
        // A limit reached by the final unload stops nothing more, but its
        // lines were dropped all the same: say so.
        let stopped_at = self.stopped_at.take().or_else(|| Some(Origin::Flag(String::from("end of session"))));
        if let (Some(origin), Some(message)) = (stopped_at, self.sink.message()) {
            let _ = writeln!(self.sink.err_always(), "simulate: {origin}: stopped: {message}");
            summary.stopped = Some(format!("{origin}: {message}"));
        }
        summary.exit = summary.verdict(self.unexpected_load_failure);
        self.sink.finish(&summary);
        (summary, self.sink.usage())
    }
}

/// The steps `--query-after-each` issues the query after, by name: those
/// that can change procnotify's table (hot-adds are queried after each
/// attempt, in the step). `other-driver`, `fault`, `table`, `query` and
/// `expect` lines change no row.
fn query_after(step: &Step) -> Option<&'static str> {
    match step {
        Step::Load(_) => Some("load"),
        Step::Reload(_) => Some("reload"),
        Step::Unload => Some("unload"),
        Step::Toggle => Some("toggle"),
        Step::Notify(_) => Some("notify"),
        Step::Read(_) => Some("read"),
        Step::ReadAll => Some("read-all"),
        Step::OtherDriver { .. }
        | Step::Fault(_)
        | Step::HotAdd { .. }
        | Step::Table
        | Step::Query { .. }
        | Step::Expect(_) => None,
    }
}

/// Whether a trace line's outcome counts as an anomaly, as
/// `Outcome::is_anomaly` decides (an `AddFailure` procnotify never started is
/// expected).
fn is_anomaly(outcome: &str) -> bool {
    outcome == "adopted"
        || outcome == "restarted"
        || (outcome.starts_with("ignored(") && outcome != "ignored(not-starting)")
}
