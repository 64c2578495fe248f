//! The text output, for people: the trace as it happens, procnotify's table
//! in the NatVis layout, and the summary.

use std::fmt::Write as _;
use std::io::Write;
use std::string::String;
use std::vec::Vec;

use super::{Counted, Kind, Shown, Sink, Summary, TableView};
use crate::cli::query::QueryView;
use crate::cli::values::status_words;

/// Human-readable output.
pub struct Text<'w> {
    out: Counted<'w>,
    shown: Shown,
    /// The last thing written ended with a blank line.
    blank: bool,
}

impl<'w> Text<'w> {
    /// Text to `out`.
    pub fn new(out: &'w mut dyn Write, shown: Shown) -> Self {
        Self { out: Counted::new(out), shown, blank: true }
    }

    /// Writes `text` as it is, before the session (`replay`'s script).
    pub fn echo(&mut self, text: &str) {
        let _ = self.out.write_all(text.as_bytes());
    }
}

fn dash_or<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| String::from("—"), |value| std::format!("{value}"))
}

impl Sink for Text<'_> {
    fn line(&mut self, _kind: Kind, text: &str) {
        if !self.shown.quiet {
            let _ = writeln!(self.out, "{text}");
            self.blank = false;
        }
    }

    fn table(&mut self, table: &TableView) {
        let mut text = std::format!(
            "\nprocnotify table (`dx -r2 procnotify!procnotify::entry::DEBUG_CONTEXT` with procnotify.natvis): capacity={} allocated_slots={} \
             ({} bytes of slots + {} bytes of index)\n",
            table.capacity,
            table.allocated_slots,
            table.slot_bytes,
            table.index_bytes
        );
        text.push_str("    index      group  number  state     starts  completes  failures  visits\n");
        let mut absent = table.absent.iter().peekable();
        for row in &table.rows {
            while let Some(range) = absent.next_if(|range| range.first < row.index) {
                absent_row(&mut text, range.first, range.last);
            }
            let _ = writeln!(
                text,
                "    {:<9}  {:>5}  {:>6}  {:<8}  {:>6}  {:>9}  {:>8}  {:>6}",
                std::format!("[{:>3}]", row.index),
                dash_or(row.group),
                dash_or(row.number),
                row.state,
                row.starts,
                row.completes,
                row.failures,
                row.visits
            );
        }
        for range in absent {
            absent_row(&mut text, range.first, range.last);
        }
        let _ = writeln!(self.out, "{text}");
        self.blank = true;
    }

    /// The query's heading and what `procnotify-ctl table` prints, set off
    /// by blank lines like a table (one between two queries).
    fn query(&mut self, query: &QueryView) {
        let before = if self.blank { "" } else { "\n" };
        let _ = writeln!(self.out, "{before}{}", query.text());
        self.blank = true;
    }

    fn shows_lines(&self) -> bool {
        !self.shown.quiet
    }

    fn tables_at_unload(&self) -> bool {
        self.shown.tables_at_unload()
    }

    fn written(&self) -> u64 {
        self.out.bytes()
    }

    fn finish(&mut self, s: &Summary) {
        let mut text = String::from(if self.blank { "== summary\n" } else { "\n== summary\n" });
        let a = &s.adds;
        let _ = writeln!(
            text,
            "hot-adds: attempted={} succeeded={} failed={} refused={}",
            a.attempted, a.succeeded, a.failed, a.refused
        );
        let vetoes: Vec<String> = s.vetoes.iter().map(|v| std::format!("{}={}", v.by, v.count)).collect();
        let _ = writeln!(text, "vetoes: {}", vetoes.join(" "));
        let _ = writeln!(text, "notifications={} anomalies={} reads={}", s.notifications, s.anomalies, s.reads);
        for fault in &s.faults {
            let _ = writeln!(text, "fault {}: {}", fault.fault, if fault.fired { "fired" } else { "DID NOT FIRE" });
        }
        if s.expectations.checked > 0 {
            let _ = writeln!(
                text,
                "expectations: {} checked, {} not met",
                s.expectations.checked,
                s.expectations.unmet.len()
            );
        }
        let p = &s.pool;
        let _ = writeln!(
            text,
            "pool: allocations={} frees={} live={} bytes_live={} peak={} injected_failures={}",
            p.allocations, p.frees, p.live, p.bytes_live, p.bytes_peak, p.injected_failures
        );
        for violation in &s.violations {
            let _ = writeln!(text, "VIOLATION: {violation}");
        }
        for failed in &s.failed_loads {
            let which = if s.loads == 1 { String::new() } else { std::format!(" {}", failed.load) };
            let _ = writeln!(text, "load{which} failed: {}", status_words(failed.status.0));
        }
        let verdict = if s.clean { "yes" } else { "NO" };
        if s.ever_loaded {
            let _ = writeln!(text, "unload clean: {verdict}");
        } else {
            let _ = writeln!(text, "never loaded; nothing left allocated: {verdict}");
        }
        if let Some(stopped) = &s.stopped {
            let _ = writeln!(text, "stopped: {stopped}");
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
