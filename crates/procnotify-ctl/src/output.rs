//! `procnotify-ctl table`: the reply printed in the simulator's table layout
//! or as JSON, both written by `procnotify_core::abi::format`.

use std::fmt::Write as _;

use procnotify_core::abi::format::{JsonTable, TextRows, Title};
use procnotify_core::abi::{FORMAT_VERSION, Reply};

/// The `schema` value of `table --json`.
pub const SCHEMA: &str = "procnotify-ctl/1";

/// The table as text: the title, the rows (the simulator's layout) and one
/// line with the counts the header carries beyond the rows.
pub fn text(reply: &Reply<'_>) -> String {
    let header = reply.header;
    let summary = header.summary;
    let source = format!("IOCTL_PROCNOTIFY_QUERY, reply format {FORMAT_VERSION}");
    let mut text = format!(
        "{}\n{}",
        Title { source: &source, summary: &summary },
        TextRows { rows: reply.rows(), end: reply.known_end() }
    );
    let _ = writeln!(
        text,
        "present={} reported_max={} notifications={} vetoes={} anomalies={}",
        header.present, summary.reported_max, summary.notifications, summary.vetoes, summary.anomalies
    );
    if !header.is_complete() {
        let _ = writeln!(
            text,
            "(this reply holds {} of the table's {} rows; indices after the last one are not shown)",
            header.rows_written, header.rows_in_table
        );
    }
    text
}

/// The table as one JSON object (one line): the counts of the header, and
/// under `table` the same object the simulator's JSON output has for a
/// `table` event (`docs/simulator.md`), so one schema validates both.
///
/// ```text
/// {"schema":"procnotify-ctl/1","reply_format":1,"present":4,"reported_max":8,"rows_in_table":4,
///  "rows_written":4,"stats":{"notifications":8,"vetoes":0,"anomalies":0},
///  "table":{"kind":"table","capacity":8,...,"rows":[...],"absent":[{"first":4,"last":7}]}}
/// ```
pub fn json(reply: &Reply<'_>) -> String {
    let header = reply.header;
    let summary = header.summary;
    format!(
        "{{\"schema\":\"{SCHEMA}\",\"reply_format\":{},\"present\":{},\"reported_max\":{},\"rows_in_table\":{},\
         \"rows_written\":{},\"stats\":{{\"notifications\":{},\"vetoes\":{},\"anomalies\":{}}},\"table\":{}}}",
        header.version,
        header.present,
        summary.reported_max,
        header.rows_in_table,
        header.rows_written,
        summary.notifications,
        summary.vetoes,
        summary.anomalies,
        JsonTable { summary: &summary, rows: reply.rows(), end: reply.known_end() }
    )
}
