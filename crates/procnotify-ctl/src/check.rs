//! `procnotify-ctl check --expect-online N[,N...]`: the building block for
//! scripts. Every listed processor must have a slot that is `online` with at
//! least one DPC visit: the new processor ran procnotify's DPC and reached
//! its own state.

use std::collections::BTreeSet;

use procnotify_core::SlotState;
use procnotify_core::abi::Reply;

/// Why one processor does not pass.
fn problem(reply: &Reply<'_>, index: u32) -> Option<String> {
    let capacity = reply.header.summary.capacity;
    if index >= capacity {
        return Some(format!("processor {index} is past the table's capacity ({capacity} processors)"));
    }
    match reply.rows().find(|row| row.index == index) {
        None if reply.header.is_complete() || index < reply.known_end() => {
            Some(format!("processor {index} has no slot (absent: never started)"))
        }
        None => Some(format!(
            "processor {index} is not in the reply (it holds {} of {} rows)",
            reply.header.rows_written, reply.header.rows_in_table
        )),
        Some(row) if row.state != SlotState::Online => Some(format!(
            "processor {index} is {} (starts={} completes={} failures={})",
            row.state.name(),
            row.starts,
            row.completes,
            row.failures
        )),
        Some(row) if row.visits == 0 => Some(format!("processor {index} is online but its DPC has not run (visits=0)")),
        Some(_) => None,
    }
}

/// `Ok` with a one-line confirmation when every processor of `expected`
/// passes, else `Err` with one line naming each one that does not.
///
/// # Errors
///
/// The one-line reason, for the exit code 1.
pub fn verify(reply: &Reply<'_>, expected: &[u32]) -> Result<String, String> {
    let expected: BTreeSet<u32> = expected.iter().copied().collect();
    let problems: Vec<String> = expected.iter().filter_map(|&index| problem(reply, index)).collect();
    if problems.is_empty() {
        let list: Vec<String> = expected.iter().map(u32::to_string).collect();
        Ok(format!("check passed: processors {} online, each with at least one DPC visit", list.join(",")))
    } else {
        Err(format!("check failed: {}; expected online with at least one DPC visit", problems.join("; ")))
    }
}
