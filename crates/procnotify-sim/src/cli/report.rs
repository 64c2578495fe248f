//! The two outputs, text and JSON, written as the session goes: trace lines
//! are printed (or, with `--quiet`, dropped) as they happen and never kept.

use std::fmt::Write as _;
use std::io::Write;
use std::string::String;
use std::vec::Vec;

use procnotify_core::monitor::Counters;
use procnotify_core::{ProcNumber, SlotState};

use super::Exit;
use super::step::Setup;
use super::values::status_words;
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

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Note => "note",
            Self::Kernel => "kernel",
            Self::Procnotify => "procnotify",
        }
    }
}

/// One row of procnotify's table.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    /// Processor index.
    pub index: u32,
    /// Slot state.
    pub state: SlotState,
    /// Group and number (meaningless while vacant).
    pub number: ProcNumber,
    /// The counters.
    pub counters: Counters,
}

/// procnotify's table at one moment.
#[derive(Clone, Debug, Default)]
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
}

impl TableView {
    /// Index ranges with no slot, `(first, last)` inclusive.
    pub fn absent(&self) -> Vec<(u32, u32)> {
        let mut ranges = Vec::new();
        let mut next = 0;
        for row in &self.rows {
            if row.index > next {
                ranges.push((next, row.index - 1));
            }
            next = row.index + 1;
        }
        if next < self.capacity {
            ranges.push((next, self.capacity - 1));
        }
        ranges
    }
}

/// Everything the summary shows.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Hot-add attempts.
    pub attempted: u32,
    /// Adds that brought a processor online.
    pub succeeded: u32,
    /// Adds that ended in `AddFailure`.
    pub failed: u32,
    /// Adds refused before any notification.
    pub refused: u32,
    /// Vetoes by registration: ("procnotify" or `other driver "x"`, count).
    pub vetoes: Vec<(String, u32)>,
    /// Notifications procnotify received, over all loads.
    pub notifications: u64,
    /// Anomalies procnotify counted, over all loads.
    pub anomalies: u64,
    /// Reads run.
    pub reads: u32,
    /// Loads attempted.
    pub loads: u32,
    /// Failed loads' statuses, in order.
    pub failed_loads: Vec<(u32, procnotify_core::NtStatus)>,
    /// Planned faults: (what, fired).
    pub faults: Vec<(String, bool)>,
    /// Expectations checked.
    pub expectations: u32,
    /// Expectations not met (messages).
    pub unmet: Vec<String>,
    /// The pool at the end.
    pub pool: AllocStats,
    /// Violations found.
    pub violations: Vec<String>,
    /// Payloads still live at the end.
    pub payloads_live: i64,
    /// Whether any load succeeded.
    pub ever_loaded: bool,
    /// Nothing leaked, nothing used after free.
    pub clean: bool,
    /// The exit code.
    pub exit: Exit,
}

/// Where a session's output goes.
pub trait Sink {
    /// A trace line.
    fn line(&mut self, kind: Kind, text: &str);
    /// procnotify's table, printed before an unload or on `table`.
    fn table(&mut self, table: &TableView);
    /// The end.
    fn finish(&mut self, summary: &Summary);
}

/// Human-readable output.
pub struct Text<'w> {
    out: &'w mut dyn Write,
    quiet: bool,
    /// The last thing written ended with a blank line.
    blank: bool,
}

impl<'w> Text<'w> {
    /// Text to `out`; `quiet` leaves the trace out.
    pub fn new(out: &'w mut dyn Write, quiet: bool) -> Self {
        Self { out, quiet, blank: true }
    }
}

fn dash_or(value: impl std::fmt::Display, show: bool) -> String {
    if show { std::format!("{value}") } else { String::from("—") }
}

impl Sink for Text<'_> {
    fn line(&mut self, _kind: Kind, text: &str) {
        if !self.quiet {
            let _ = writeln!(self.out, "{text}");
            self.blank = false;
        }
    }

    fn table(&mut self, table: &TableView) {
        let mut text = std::format!(
            "\nprocnotify table (`dx -r2 ...table` with procnotify.natvis): capacity={} allocated_slots={} \
             ({} bytes of slots + {} bytes of index)\n",
            table.capacity,
            table.allocated_slots,
            table.slot_bytes,
            table.index_bytes
        );
        text.push_str("    index      group  number  state     starts  completes  failures  visits\n");
        let mut absent = table.absent().into_iter().peekable();
        for row in &table.rows {
            while let Some(&(first, last)) = absent.peek().filter(|(first, _)| *first < row.index) {
                absent_row(&mut text, first, last);
                absent.next();
            }
            let placed = row.state != SlotState::Vacant;
            let c = row.counters;
            let _ = writeln!(
                text,
                "    {:<9}  {:>5}  {:>6}  {:<8}  {:>6}  {:>9}  {:>8}  {:>6}",
                std::format!("[{:>3}]", row.index),
                dash_or(row.number.group, placed),
                dash_or(row.number.number, placed),
                row.state.name(),
                c.starts,
                c.completes,
                c.failures,
                c.visits
            );
        }
        for (first, last) in absent {
            absent_row(&mut text, first, last);
        }
        let _ = writeln!(self.out, "{text}");
        self.blank = true;
    }

    fn finish(&mut self, s: &Summary) {
        let mut text = String::from(if self.blank { "== summary\n" } else { "\n== summary\n" });
        let _ = writeln!(
            text,
            "hot-adds: attempted={} succeeded={} failed={} refused={}",
            s.attempted, s.succeeded, s.failed, s.refused
        );
        let vetoes: Vec<String> = s.vetoes.iter().map(|(who, n)| std::format!("{who}={n}")).collect();
        let _ = writeln!(text, "vetoes: {}", vetoes.join(" "));
        let _ = writeln!(text, "notifications={} anomalies={} reads={}", s.notifications, s.anomalies, s.reads);
        for (fault, fired) in &s.faults {
            let _ = writeln!(text, "fault {fault}: {}", if *fired { "fired" } else { "DID NOT FIRE" });
        }
        if s.expectations > 0 {
            let _ = writeln!(text, "expectations: {} checked, {} not met", s.expectations, s.unmet.len());
        }
        let p = &s.pool;
        let _ = writeln!(
            text,
            "pool: allocations={} frees={} live={} bytes_live={} peak={} injected_failures={}",
            p.allocations, p.frees, p.live, p.bytes_live, p.bytes_peak, p.failures_injected
        );
        for violation in &s.violations {
            let _ = writeln!(text, "VIOLATION: {violation}");
        }
        for (load, status) in &s.failed_loads {
            let which = if s.loads == 1 { String::new() } else { std::format!(" {load}") };
            let _ = writeln!(text, "load{which} failed: {}", status_words(*status));
        }
        let verdict = if s.clean { "yes" } else { "NO" };
        if s.ever_loaded {
            let _ = writeln!(text, "unload clean: {verdict}");
        } else {
            let _ = writeln!(text, "never loaded; nothing left allocated: {verdict}");
        }
        let _ = writeln!(text, "exit code: {} ({})", s.exit.code(), s.exit.meaning());
        let _ = write!(self.out, "{text}");
    }
}

fn absent_row(text: &mut String, first: u32, last: u32) {
    let index = if first == last { std::format!("[{first:>3}]") } else { std::format!("[{first}..{last}]") };
    let _ = writeln!(
        text,
        "    {index:<9}  {:>5}  {:>6}  {:<8}  {:>6}  {:>9}  {:>8}  {:>6}",
        "—", "—", "absent", "—", "—", "—", "—"
    );
}

/// A JSON string literal.
pub fn json_str(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_status(status: procnotify_core::NtStatus) -> String {
    std::format!(
        "{{\"value\":\"0x{:08X}\",\"name\":{}}}",
        status.bits(),
        status.name().map_or_else(|| String::from("null"), json_str)
    )
}

/// Machine-readable output; the schema is in `docs/simulator.md`.
pub struct Json<'w> {
    out: &'w mut dyn Write,
    quiet: bool,
    first: bool,
}

impl<'w> Json<'w> {
    /// Writes the opening of the document.
    pub fn new(out: &'w mut dyn Write, quiet: bool, command: &str, setup: &Setup) -> Self {
        let config = setup.config();
        let _ = write!(
            out,
            "{{\"schema\":\"procnotify-simulate/1\",\"command\":{},\"machine\":{{\"boot\":{},\"max\":{},\
             \"reported_max\":{},\"dynamic_partitioning\":{}}},\"events\":[",
            json_str(command),
            config.boot,
            config.max,
            config.reported_max,
            config.dynamic_partitioning
        );
        Self { out, quiet, first: true }
    }

    fn event(&mut self, body: &str) {
        let comma = if self.first { "" } else { "," };
        self.first = false;
        let _ = write!(self.out, "{comma}\n{body}");
    }
}

impl Sink for Json<'_> {
    fn line(&mut self, kind: Kind, text: &str) {
        if !self.quiet {
            self.event(&std::format!("{{\"kind\":\"{}\",\"line\":{}}}", kind.name(), json_str(text)));
        }
    }

    fn table(&mut self, table: &TableView) {
        let mut body = std::format!(
            "{{\"kind\":\"table\",\"capacity\":{},\"allocated_slots\":{},\"slot_bytes\":{},\"index_bytes\":{},\"rows\":[",
            table.capacity,
            table.allocated_slots,
            table.slot_bytes,
            table.index_bytes
        );
        for (n, row) in table.rows.iter().enumerate() {
            let c = row.counters;
            let placed = row.state != SlotState::Vacant;
            let _ = write!(
                body,
                "{}{{\"index\":{},\"state\":\"{}\",\"group\":{},\"number\":{},\"starts\":{},\"completes\":{},\
                 \"failures\":{},\"visits\":{}}}",
                if n == 0 { "" } else { "," },
                row.index,
                row.state.name(),
                if placed { row.number.group.to_string() } else { String::from("null") },
                if placed { row.number.number.to_string() } else { String::from("null") },
                c.starts,
                c.completes,
                c.failures,
                c.visits
            );
        }
        body.push_str("],\"absent\":[");
        for (n, (first, last)) in table.absent().iter().enumerate() {
            let _ = write!(body, "{}{{\"first\":{first},\"last\":{last}}}", if n == 0 { "" } else { "," });
        }
        body.push_str("]}");
        self.event(&body);
    }

    fn finish(&mut self, s: &Summary) {
        let list = |items: &mut dyn Iterator<Item = String>| items.collect::<Vec<_>>().join(",");
        let vetoes =
            list(&mut s.vetoes.iter().map(|(who, n)| std::format!("{{\"by\":{},\"count\":{n}}}", json_str(who))));
        let faults = list(
            &mut s
                .faults
                .iter()
                .map(|(what, fired)| std::format!("{{\"fault\":{},\"fired\":{fired}}}", json_str(what))),
        );
        let unmet = list(&mut s.unmet.iter().map(|m| json_str(m)));
        let failed_loads = list(
            &mut s.failed_loads.iter().map(|(n, st)| std::format!("{{\"load\":{n},\"status\":{}}}", json_status(*st))),
        );
        let violations = list(&mut s.violations.iter().map(|v| json_str(v)));
        let p = &s.pool;
        let _ = writeln!(
            self.out,
            "\n],\"summary\":{{\"adds\":{{\"attempted\":{},\"succeeded\":{},\"failed\":{},\"refused\":{}}},\
             \"vetoes\":[{vetoes}],\"notifications\":{},\"anomalies\":{},\"reads\":{},\"loads\":{},\
             \"failed_loads\":[{failed_loads}],\"faults\":[{faults}],\"expectations\":{{\"checked\":{},\
             \"unmet\":[{unmet}]}},\"pool\":{{\"allocations\":{},\"frees\":{},\"live\":{},\"bytes_live\":{},\
             \"bytes_peak\":{},\"injected_failures\":{}}},\"violations\":[{violations}],\"ever_loaded\":{},\
             \"clean\":{},\"exit_code\":{}}}}}",
            s.attempted,
            s.succeeded,
            s.failed,
            s.refused,
            s.notifications,
            s.anomalies,
            s.reads,
            s.loads,
            s.expectations,
            p.allocations,
            p.frees,
            p.live,
            p.bytes_live,
            p.bytes_peak,
            p.failures_injected,
            s.ever_loaded,
            s.clean,
            s.exit.code()
        );
    }
}
