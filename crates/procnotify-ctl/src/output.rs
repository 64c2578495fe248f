//! `procnotify-ctl table`: the reply printed in the simulator's table layout
//! or as JSON, both written by `procnotify_core::abi::format` (the simulator's
//! `query` prints the same, from the same code).

use procnotify_core::abi::Reply;
use procnotify_core::abi::format::{ReplyJson, ReplyText};

/// The `schema` value of `table --json` (`docs/schema/table.schema.json`,
/// `$defs/ctl`).
pub const SCHEMA: &str = "procnotify-ctl/1";

/// The table as text: the title, the rows (the simulator's layout) and one
/// line with the counts the header carries beyond the rows ([`ReplyText`]).
pub fn text(reply: &Reply<'_>) -> String {
    ReplyText(reply).to_string()
}

/// The table as one JSON object (one line): `schema`, the counts of the
/// header, and under `table` the same object the simulator's JSON output has
/// for a `table` event (`docs/simulator.md`); [`ReplyJson`]. One schema file,
/// `docs/schema/table.schema.json`, describes it and the simulator's `query`
/// events (its `$defs/reply`).
///
/// ```text
/// {"schema":"procnotify-ctl/1","reply_format":1,"present":4,"reported_max":8,"rows_in_table":4,
///  "rows_written":4,"stats":{"notifications":8,"vetoes":0,"anomalies":0},
///  "table":{"kind":"table","capacity":8,...,"rows":[...],"absent":[{"first":4,"last":7}]}}
/// ```
pub fn json(reply: &Reply<'_>) -> String {
    ReplyJson { reply, schema: Some(SCHEMA) }.to_string()
}
