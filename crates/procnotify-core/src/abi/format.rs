//! The printed forms of procnotify's table, written once for every tool that
//! shows it (`procnotify-ctl` and the simulator): the text table, the JSON
//! table object, a decoded reply as `procnotify-ctl table` prints it
//! ([`ReplyText`], [`ReplyJson`]), and a row in the shape WinDbg's NatVis
//! shows it. Each is a [`Display`] value over [`Row`]s: `core::fmt` only, no
//! allocation.
//!
//! The text table, one processor per row; runs of indices with no slot are
//! one `absent` row, and a vacant slot (its last add failed) shows `—` for
//! group and number:
//!
//! ```text
//! procnotify table (IOCTL_PROCNOTIFY_QUERY): capacity=8 allocated_slots=8 (1024 bytes of slots + 192 bytes of index)
//!     index      group  number  state     starts  completes  failures  visits
//!     [  0]          0       0  online         1          1         0       1
//!     [  6]          —       —  vacant         1          0         1       0
//!     [  7]          —       —  absent         —          —         —       —
//! ```
//!
//! The JSON table object (one line), the same keys and types as the
//! simulator's `table` event in `docs/simulator.md` (`group` and `number`
//! are `null` while vacant; `absent` lists the index ranges with no slot):
//!
//! ```text
//! {"kind":"table","capacity":8,"allocated_slots":8,"slot_bytes":1024,"index_bytes":192,
//!  "rows":[{"index":0,"state":"online","group":0,"number":0,"starts":1,"completes":1,"failures":0,"visits":1}],
//!  "absent":[{"first":1,"last":7}]}
//! ```

use core::fmt::{self, Display, Formatter};

use super::{Reply, Row, Summary};
use crate::log::FixedBuf;

/// The column heading of the text table (no line end).
pub const COLUMNS: &str = "    index      group  number  state     starts  completes  failures  visits";

/// The text table's first line (no line end): `procnotify table (SOURCE):
/// capacity=.. allocated_slots=.. (.. bytes of slots + .. bytes of index)`.
#[derive(Clone, Copy, Debug)]
pub struct Title<'a> {
    /// Where the table comes from, e.g. `IOCTL_PROCNOTIFY_QUERY`.
    pub source: &'a str,
    /// The table's size.
    pub summary: &'a Summary,
}

impl Display for Title<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let s = self.summary;
        write!(
            f,
            "procnotify table ({}): capacity={} allocated_slots={} ({} bytes of slots + {} bytes of index)",
            self.source, s.capacity, s.allocated_slots, s.slot_bytes, s.index_bytes
        )
    }
}

/// A number, or `—` where a value has no meaning; honours width and
/// alignment.
#[derive(Clone, Copy, Debug)]
enum Cell {
    Number(u64),
    Dash,
}

impl Display for Cell {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => Display::fmt(n, f),
            Self::Dash => f.pad("—"),
        }
    }
}

/// `[  7]`, or `[8..2047]` for a run, left-aligned in 9 columns.
fn index_cell(f: &mut Formatter<'_>, first: u32, last: u32) -> fmt::Result {
    let text = if first == last {
        FixedBuf::<32>::format(format_args!("[{first:>3}]"))
    } else {
        FixedBuf::<32>::format(format_args!("[{first}..{last}]"))
    };
    write!(f, "    {:<9}", text.as_str())
}

fn absent_line(f: &mut Formatter<'_>, first: u32, last: u32) -> fmt::Result {
    index_cell(f, first, last)?;
    let dash = Cell::Dash;
    writeln!(f, "  {dash:>5}  {dash:>6}  {:<8}  {dash:>6}  {dash:>9}  {dash:>8}  {dash:>6}", "absent")
}

fn row_line(f: &mut Formatter<'_>, row: &Row) -> fmt::Result {
    index_cell(f, row.index, row.index)?;
    let (group, number) = if row.is_present() {
        (Cell::Number(row.number.group.into()), Cell::Number(row.number.number.into()))
    } else {
        (Cell::Dash, Cell::Dash)
    };
    writeln!(
        f,
        "  {group:>5}  {number:>6}  {:<8}  {:>6}  {:>9}  {:>8}  {:>6}",
        row.state.name(),
        row.starts,
        row.completes,
        row.failures,
        row.visits
    )
}

/// One line of the table: a row, or a run of indices with no row.
#[derive(Clone, Copy, Debug)]
enum Line<'a> {
    Row(&'a Row),
    Absent { first: u32, last: u32 },
}

/// Calls `visit` for each row and each run of indices with no row before
/// `end`, in index order.
fn walk(rows: impl Iterator<Item = Row>, end: u32, mut visit: impl FnMut(Line<'_>) -> fmt::Result) -> fmt::Result {
    let mut next = 0_u32;
    for row in rows {
        if row.index > next {
            visit(Line::Absent { first: next, last: row.index.saturating_sub(1) })?;
        }
        visit(Line::Row(&row))?;
        next = row.index.saturating_add(1);
    }
    if next < end {
        visit(Line::Absent { first: next, last: end.saturating_sub(1) })?;
    }
    Ok(())
}

/// The column heading and one line per row or absent run (each line ends
/// with `\n`). Absent runs are shown up to `end` (exclusive): the capacity,
/// or for an incomplete reply [`Reply::known_end`](super::Reply::known_end).
#[derive(Clone, Debug)]
pub struct TextRows<I> {
    /// The rows, in increasing index order.
    pub rows: I,
    /// Where absent runs stop.
    pub end: u32,
}

impl<I: Iterator<Item = Row> + Clone> Display for TextRows<I> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(f, "{COLUMNS}")?;
        walk(self.rows.clone(), self.end, |line| match line {
            Line::Row(row) => row_line(f, row),
            Line::Absent { first, last } => absent_line(f, first, last),
        })
    }
}

/// One row as a JSON object: `{"index":..,"state":"online","group":..,
/// "number":..,"starts":..,"completes":..,"failures":..,"visits":..}`,
/// `group` and `number` `null` while vacant.
#[derive(Clone, Copy, Debug)]
pub struct JsonRow<'a>(pub &'a Row);

impl Display for JsonRow<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let row = self.0;
        write!(f, "{{\"index\":{},\"state\":\"{}\",", row.index, row.state.name())?;
        if row.is_present() {
            write!(f, "\"group\":{},\"number\":{},", row.number.group, row.number.number)?;
        } else {
            f.write_str("\"group\":null,\"number\":null,")?;
        }
        write!(
            f,
            "\"starts\":{},\"completes\":{},\"failures\":{},\"visits\":{}}}",
            row.starts, row.completes, row.failures, row.visits
        )
    }
}

/// The table as one JSON object (see the [module documentation](self)):
/// the shape of the simulator's `table` event.
#[derive(Clone, Debug)]
pub struct JsonTable<'a, I> {
    /// The table's size.
    pub summary: &'a Summary,
    /// The rows, in increasing index order.
    pub rows: I,
    /// Where absent runs stop (as for [`TextRows`]).
    pub end: u32,
}

impl<I: Iterator<Item = Row> + Clone> Display for JsonTable<'_, I> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let s = self.summary;
        write!(
            f,
            "{{\"kind\":\"table\",\"capacity\":{},\"allocated_slots\":{},\"slot_bytes\":{},\"index_bytes\":{},\"rows\":[",
            s.capacity, s.allocated_slots, s.slot_bytes, s.index_bytes
        )?;
        let mut comma = "";
        for row in self.rows.clone() {
            write!(f, "{comma}{}", JsonRow(&row))?;
            comma = ",";
        }
        f.write_str("],\"absent\":[")?;
        let mut comma = "";
        walk(self.rows.clone(), self.end, |line| match line {
            Line::Row(_) => Ok(()),
            Line::Absent { first, last } => {
                write!(f, "{comma}{{\"first\":{first},\"last\":{last}}}")?;
                comma = ",";
                Ok(())
            }
        })?;
        f.write_str("]}")
    }
}

/// A decoded reply as `procnotify-ctl table` prints it, and the simulator's
/// `query`: the [`Title`] (source `IOCTL_PROCNOTIFY_QUERY, reply format N`),
/// the [`TextRows`] up to [`Reply::known_end`], a line with the header's
/// counts beyond the rows, and, when the reply holds only some of the
/// table's rows, a line saying so. Every line ends with `\n`.
///
/// ```text
/// procnotify table (IOCTL_PROCNOTIFY_QUERY, reply format 1): capacity=8 allocated_slots=8 (1024 bytes of slots + 192 bytes of index)
///     index      group  number  state     starts  completes  failures  visits
///     [  0]          0       0  online         1          1         0       1
///     [1..7]         —       —  absent         —          —         —       —
/// present=1 reported_max=8 notifications=2 vetoes=0 anomalies=0
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ReplyText<'r, 'a>(pub &'r Reply<'a>);

impl ReplyText<'_, '_> {
    /// Lines it prints (what the simulator charges for it).
    #[must_use]
    pub fn lines(&self) -> u64 {
        let mut lines = 0_u64;
        let _ = walk(self.0.rows(), self.0.known_end(), |_| {
            lines = lines.saturating_add(1);
            Ok(())
        });
        // The title, the column heading, the counts, and the note of an
        // incomplete reply.
        let incomplete = u64::from(!self.0.header.is_complete());
        lines.saturating_add(3).saturating_add(incomplete)
    }
}

impl Display for ReplyText<'_, '_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let reply = self.0;
        let header = reply.header;
        let summary = &header.summary;
        let source = FixedBuf::<64>::format(format_args!("IOCTL_PROCNOTIFY_QUERY, reply format {}", header.version));
        writeln!(f, "{}", Title { source: source.as_str(), summary })?;
        write!(f, "{}", TextRows { rows: reply.rows(), end: reply.known_end() })?;
        writeln!(
            f,
            "present={} reported_max={} notifications={} vetoes={} anomalies={}",
            header.present, summary.reported_max, summary.notifications, summary.vetoes, summary.anomalies
        )?;
        if !header.is_complete() {
            writeln!(
                f,
                "(this reply holds {} of the table's {} rows; indices after the last one are not shown)",
                header.rows_written, header.rows_in_table
            )?;
        }
        Ok(())
    }
}

/// A JSON string: `"` and `\` escaped, control characters as `\u00XX`.
struct JsonStr<'s>(&'s str);

impl Display for JsonStr<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if u32::from(c) < 0x20 => write!(f, "\\u{:04x}", u32::from(c))?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

/// A decoded reply as one JSON object (one line), as `procnotify-ctl table
/// --json` prints it and the simulator's `query` events hold it: the
/// header's counts, and under `table` the [`JsonTable`] object (the
/// simulator's `table` event). `docs/schema/table.schema.json` describes
/// it (`$defs/reply`; with `schema`, `$defs/ctl`).
///
/// ```text
/// {"schema":"procnotify-ctl/1","reply_format":1,"present":4,"reported_max":8,"rows_in_table":4,
///  "rows_written":4,"stats":{"notifications":8,"vetoes":0,"anomalies":0},
///  "table":{"kind":"table","capacity":8,...,"rows":[...],"absent":[{"first":4,"last":7}]}}
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ReplyJson<'r, 'a> {
    /// The reply.
    pub reply: &'r Reply<'a>,
    /// The object's first member, `"schema"`, when given (escaped as a JSON
    /// string); none in the simulator's events.
    pub schema: Option<&'r str>,
}

impl Display for ReplyJson<'_, '_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let reply = self.reply;
        let header = reply.header;
        let summary = &header.summary;
        f.write_str("{")?;
        if let Some(schema) = self.schema {
            write!(f, "\"schema\":{},", JsonStr(schema))?;
        }
        write!(
            f,
            "\"reply_format\":{},\"present\":{},\"reported_max\":{},\"rows_in_table\":{},\"rows_written\":{},\
             \"stats\":{{\"notifications\":{},\"vetoes\":{},\"anomalies\":{}}},\"table\":{}}}",
            header.version,
            header.present,
            summary.reported_max,
            header.rows_in_table,
            header.rows_written,
            summary.notifications,
            summary.vetoes,
            summary.anomalies,
            JsonTable { summary, rows: reply.rows(), end: reply.known_end() }
        )
    }
}

/// A row as WinDbg's NatVis summarises a slot: `{ online index=4 group=0
/// number=4 starts=1 completes=1 failures=0 visits=1 }` (no group and number
/// while vacant).
#[derive(Clone, Copy, Debug)]
pub struct Natvis<'a>(pub &'a Row);

impl Display for Natvis<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let row = self.0;
        write!(f, "{{ {} index={} ", row.state.name(), row.index)?;
        if row.is_present() {
            write!(f, "group={} number={} ", row.number.group, row.number.number)?;
        }
        write!(
            f,
            "starts={} completes={} failures={} visits={} }}",
            row.starts, row.completes, row.failures, row.visits
        )
    }
}
