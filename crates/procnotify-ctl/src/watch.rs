//! `procnotify-ctl watch --interval MS`: poll the table, print a line for
//! each row that changed since the previous poll, so a person sees a hot-add
//! arrive (`absent -> starting`, `starting -> online`, the DPC's visit).

use std::collections::BTreeMap;
use std::fmt;

use procnotify_core::abi::format::Natvis;
use procnotify_core::abi::{Reply, Row};

/// The rows of the previous poll, by index.
#[derive(Clone, Debug, Default)]
pub struct Watch {
    rows: Option<BTreeMap<u32, Row>>,
}

/// One row's change between two polls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The first poll: the row as it is.
    Now(Row),
    /// A row that appeared or changed (`None`: it had no slot before).
    Changed {
        /// The row before.
        before: Option<Row>,
        /// The row now.
        after: Row,
    },
    /// A row that is gone: the table was freed and built again (the driver
    /// was reloaded).
    Gone(Row),
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Now(row) => write!(f, "[{:>3}] {:<8}  {}", row.index, row.state.name(), Natvis(row)),
            Self::Changed { before, after } => {
                let before = before.map_or("absent", |row| row.state.name());
                write!(f, "[{:>3}] {before} -> {}  {}", after.index, after.state.name(), Natvis(after))
            }
            Self::Gone(row) => {
                write!(f, "[{:>3}] {} -> gone (the driver was reloaded)  {}", row.index, row.state.name(), Natvis(row))
            }
        }
    }
}

impl Watch {
    /// Nothing seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The changes since the previous poll, in index order (every row, on
    /// the first poll), and remembers `reply`'s rows for the next one.
    pub fn poll(&mut self, reply: &Reply<'_>) -> Vec<Change> {
        let now: BTreeMap<u32, Row> = reply.rows().map(|row| (row.index, row)).collect();
        let changes = match &self.rows {
            None => now.values().copied().map(Change::Now).collect(),
            Some(before) => {
                let mut changes: Vec<(u32, Change)> = now
                    .values()
                    .filter(|row| before.get(&row.index) != Some(*row))
                    .map(|&after| (after.index, Change::Changed { before: before.get(&after.index).copied(), after }))
                    .collect();
                changes.extend(
                    before
                        .values()
                        .filter(|row| !now.contains_key(&row.index))
                        .map(|&row| (row.index, Change::Gone(row))),
                );
                changes.sort_by_key(|(index, _)| *index);
                changes.into_iter().map(|(_, change)| change).collect()
            }
        };
        self.rows = Some(now);
        changes
    }
}
