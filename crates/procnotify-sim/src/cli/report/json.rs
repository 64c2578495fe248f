//! The JSON output: one document on stdout, described by
//! `docs/schema/simulate.schema.json`. Every value in it is serialised by
//! serde_json from the report types; the document is streamed (the trace
//! is never kept), so its envelope (`{"schema":...,"events":[`, the commas,
//! `],"summary":...}`) is written around them here.

use std::boxed::Box;
use std::io::Write;
use std::vec::Vec;

use serde::Serialize;
use serde_json::value::RawValue;

use super::{Counted, Kind, Shown, Sink, Status, Summary, TableView};
use crate::cli::query::QueryView;
use crate::cli::step::Setup;

/// The schema's name and version, the document's first member.
pub const SCHEMA: &str = "procnotify-simulate/1";

/// The machine a session ran on.
#[derive(Serialize)]
struct Machine {
    boot: u32,
    max: u32,
    reported_max: u32,
    dynamic_partitioning: bool,
}

/// One element of `events`.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Event<'a> {
    Note { line: &'a str },
    Kernel { line: &'a str },
    Procnotify { line: &'a str },
    Table(&'a TableView),
    Query(Query<'a>),
}

/// A `query` event: where it was asked, the request and the driver's
/// answer, and the decoded reply as `procnotify-ctl table --json` prints it
/// (without `schema`). Without a loaded driver, only `at`, `after` and
/// `loaded`.
#[derive(Serialize)]
struct Query<'a> {
    at: &'a str,
    after: Option<&'a str>,
    loaded: bool,
    #[serde(flatten)]
    answer: Option<Answered>,
}

/// The members of a `query` event with a loaded driver.
#[derive(Serialize)]
struct Answered {
    buffer: u32,
    status: Status,
    written: usize,
    /// `null` when nothing was written.
    reply: Option<Box<RawValue>>,
}

impl<'a> Query<'a> {
    fn new(view: &'a QueryView) -> Self {
        let answer = view.answer.as_ref().map(|answer| Answered {
            buffer: answer.buffer,
            status: Status(answer.status),
            written: answer.bytes.len(),
            reply: view.reply_json().and_then(|json| RawValue::from_string(json).ok()),
        });
        Query { at: &view.at, after: view.after, loaded: answer.is_some(), answer }
    }
}

/// Why `simulate` stopped or refused, with its exit code.
#[derive(Serialize)]
struct Error<'a> {
    message: &'a str,
    exit_code: u8,
}

/// The document for an error before any session ran.
#[derive(Serialize)]
struct ErrorDocument<'a> {
    schema: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<&'a str>,
    error: Error<'a>,
}

/// The document `--print-script` / `--print-only` writes.
#[derive(Serialize)]
struct ScriptDocument<'a> {
    schema: &'static str,
    command: &'a str,
    script: &'a str,
}

/// Writes the document of an error before any session ran (a bad command
/// line, a bad script, a file that cannot be read).
pub fn write_error(out: &mut dyn Write, command: Option<&str>, message: &str, exit_code: u8) {
    let document = ErrorDocument { schema: SCHEMA, command, error: Error { message, exit_code } };
    let _ = serde_json::to_writer(&mut *out, &document);
    let _ = writeln!(out);
}

/// Writes the document of a printed script.
pub fn write_script(out: &mut dyn Write, command: &str, script: &str) {
    let _ = serde_json::to_writer(&mut *out, &ScriptDocument { schema: SCHEMA, command, script });
    let _ = writeln!(out);
}

/// Machine-readable output.
pub struct Json<'w> {
    out: Counted<'w>,
    shown: Shown,
    first: bool,
    /// One event, serialised before it is written in one piece.
    buffer: Vec<u8>,
}

impl<'w> Json<'w> {
    /// Writes the opening of the document: `schema`, `command`, `machine`,
    /// and the opening of `events`.
    pub fn new(out: &'w mut dyn Write, shown: Shown, command: &str, setup: &Setup) -> Self {
        let config = setup.config();
        let machine = Machine {
            boot: config.boot,
            max: config.max,
            reported_max: config.reported_max,
            dynamic_partitioning: config.dynamic_partitioning,
        };
        let mut json = Self { out: Counted::new(out), shown, first: true, buffer: Vec::new() };
        json.member("{", "schema", &SCHEMA);
        json.member(",", "command", &command);
        json.member(",", "machine", &machine);
        let _ = json.out.write_all(b",\"events\":[");
        json
    }

    /// `separator`, then `"key":value`.
    fn member(&mut self, separator: &str, key: &str, value: &impl Serialize) {
        let _ = self.out.write_all(separator.as_bytes());
        let _ = serde_json::to_writer(&mut self.out, key);
        let _ = self.out.write_all(b":");
        let _ = serde_json::to_writer(&mut self.out, value);
    }

    fn event(&mut self, event: &Event<'_>) {
        self.buffer.clear();
        self.buffer.extend_from_slice(if self.first { b"\n" } else { b",\n" });
        self.first = false;
        if serde_json::to_writer(&mut self.buffer, event).is_ok() {
            let _ = self.out.write_all(&self.buffer);
        }
    }
}

impl Sink for Json<'_> {
    fn line(&mut self, kind: Kind, line: &str) {
        if !self.shown.quiet {
            self.event(&match kind {
                Kind::Note => Event::Note { line },
                Kind::Kernel => Event::Kernel { line },
                Kind::Procnotify => Event::Procnotify { line },
            });
        }
    }

    fn table(&mut self, table: &TableView) {
        self.event(&Event::Table(table));
    }

    fn query(&mut self, query: &QueryView) {
        self.event(&Event::Query(Query::new(query)));
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

    /// Closes `events`, writes `summary` and, for a session stopped by a
    /// limit, `error`.
    fn finish(&mut self, summary: &Summary) {
        self.member("\n],", "summary", summary);
        if let Some(message) = &summary.stopped {
            self.member(",", "error", &Error { message, exit_code: summary.exit.code() });
        }
        let _ = self.out.write_all(b"}\n");
    }
}
