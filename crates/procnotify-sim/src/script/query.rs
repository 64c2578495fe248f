//! The query fuzz target's harness (`fuzz/fuzz_targets/query.rs`): a script
//! (arbitrary table operations: notifications, hot-adds with faults, reads,
//! reloads) run as [`run`](super::run) runs it, and after every step
//! procnotify's `IOCTL_PROCNOTIFY_QUERY` answered into output buffers of
//! arbitrary length, each reply checked against the reference model.
//!
//! # Byte format
//!
//! Two bytes of length seed `s` (little-endian `u16`), then a script in the
//! [format of `run`](super#byte-format). After step `k` the reply is asked
//! for with `(s + 7919·k) % (full + 2·ROW_SIZE + 1)` bytes, where `full` is
//! the size of the whole reply at that moment, and with the lengths around
//! each boundary: 0, the header minus one, the header, `full - ROW_SIZE`,
//! `full - 1`, `full`, `full + 1`.
//!
//! # What is checked for each length
//!
//! The status (`STATUS_BUFFER_TOO_SMALL` below the header,
//! `STATUS_BUFFER_OVERFLOW` when only some rows fit, else `STATUS_SUCCESS`)
//! and the bytes written (0, or the header and exactly the rows that fit);
//! that nothing past them was left unzeroed; that the reply decodes; that its
//! header agrees with the model (rows in the table, rows written, present,
//! capacity, reported maximum, slots allocated, the callback's counters) and
//! that its rows are the model's values, in index order, up to the ones that
//! fit.

use std::format;
use std::string::String;
use std::vec;
use std::vec::Vec;

use procnotify_core::abi::{self, HEADER_SIZE, ROW_SIZE, Row, Summary};
use procnotify_core::{NtStatus, StatsSnapshot};

use super::Summary as ScriptSummary;
use crate::os::SimDriver;
use crate::query;

/// What the model says the reply must hold.
pub(super) struct Expected {
    /// The model's values, in index order.
    pub rows: Vec<Row>,
    /// The table's capacity.
    pub capacity: u32,
    /// What the kernel reports as the maximum.
    pub reported_max: u32,
    /// Slots the table allocated.
    pub allocated_slots: u32,
    /// The callback's counters.
    pub stats: StatsSnapshot,
}

/// The lengths to ask with after step `step` when the whole reply is `full`
/// bytes.
fn lengths(seed: u16, step: u32, full: usize) -> [usize; 8] {
    let arbitrary = usize::from(seed).wrapping_add(7919 * step as usize) % (full + 2 * ROW_SIZE + 1);
    [arbitrary, 0, HEADER_SIZE - 1, HEADER_SIZE, full.saturating_sub(ROW_SIZE), full - 1, full, full + 1]
}

/// Asks `driver` for the table with every length of [`lengths`] and checks
/// each reply against `expected`.
pub(super) fn check(driver: &SimDriver, expected: &Expected, seed: u16, step: u32) -> Result<(), String> {
    let n = expected.rows.len();
    let full = HEADER_SIZE + n * ROW_SIZE;
    for len in lengths(seed, step, full) {
        check_one(driver, expected, len)
            .map_err(|what| format!("query into {len} bytes (full reply {full}): {what}"))?;
    }
    Ok(())
}

fn check_one(driver: &SimDriver, expected: &Expected, len: usize) -> Result<(), String> {
    let n = expected.rows.len();
    let mut out = vec![0xA5_u8; len];
    let answer = query::answer(driver, &mut out);
    let fit = if len < HEADER_SIZE { 0 } else { ((len - HEADER_SIZE) / ROW_SIZE).min(n) };
    let (status, written) = match () {
        () if len < HEADER_SIZE => (NtStatus::BUFFER_TOO_SMALL, 0),
        () if fit < n => (NtStatus::BUFFER_OVERFLOW, HEADER_SIZE + fit * ROW_SIZE),
        () => (NtStatus::SUCCESS, HEADER_SIZE + n * ROW_SIZE),
    };
    if (answer.status, answer.written) != (status, written) {
        return Err(format!("got {} with {} bytes, expected {status} with {written}", answer.status, answer.written));
    }
    if let Some(at) = out.iter().skip(written).position(|&byte| byte != 0) {
        return Err(format!("byte {} past the reply is not zero", written + at));
    }
    if len < HEADER_SIZE {
        return Ok(());
    }
    let reply = abi::decode(&out[..written]).map_err(|error| format!("does not decode: {error}"))?;
    let present = expected.rows.iter().filter(|row| row.is_present()).count();
    let header = reply.header;
    let counts = (header.rows_in_table as usize, header.rows_written as usize, header.present as usize);
    if counts != (n, fit, present) {
        return Err(format!("rows in table, written, present: got {counts:?}, model says {:?}", (n, fit, present)));
    }
    let want = Summary {
        capacity: expected.capacity,
        reported_max: expected.reported_max,
        allocated_slots: expected.allocated_slots,
        notifications: expected.stats.notifications,
        vetoes: expected.stats.vetoes,
        anomalies: expected.stats.anomalies,
        // Layout figures, not modelled: the engine's own.
        slot_bytes: header.summary.slot_bytes,
        index_bytes: header.summary.index_bytes,
    };
    if header.summary != want {
        return Err(format!("header {:?}, model says {want:?}", header.summary));
    }
    let rows: Vec<Row> = reply.rows().collect();
    if rows != expected.rows[..fit] {
        return Err(format!("rows {rows:?}, model says {:?}", &expected.rows[..fit]));
    }
    Ok(())
}

/// Decodes `bytes` (a little-endian `u16` length seed `s`, then a script in
/// the [format of `run`](super#byte-format)), runs the script with
/// [`run`](super::run)'s checks and, after every step, asks the loaded
/// driver for its table with `(s + 7919·step) % (full + 2·ROW_SIZE + 1)`
/// bytes and with each boundary length (0, `HEADER_SIZE - 1`,
/// `HEADER_SIZE`, `full - ROW_SIZE`, `full - 1`, `full`, `full + 1`),
/// checking the status, the bytes written, the zeroed tail, and the decoded
/// header and rows against the reference model.
///
/// # Errors
///
/// As [`run`](super::run), and the first reply that disagrees with the
/// model.
pub fn run_query(bytes: &[u8]) -> Result<ScriptSummary, String> {
    let (seed, script) = match bytes {
        [a, b, rest @ ..] => (u16::from_le_bytes([*a, *b]), rest),
        _ => (0, &[][..]),
    };
    let (header, ops) = super::decode(script);
    super::run_ops_with_query(header, &ops, seed)
}
