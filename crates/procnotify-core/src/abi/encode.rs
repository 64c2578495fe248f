//! The driver's side: [`check_request`] and [`encode`].

use core::mem::offset_of;

use super::{
    FORMAT_VERSION, HEADER_SIZE, HEADER_SIZE_U32, IOCTL_PROCNOTIFY_QUERY, MAGIC, ROW_SIZE, ROW_SIZE_U32, Row, Summary,
    WireHeader, put, reply_size,
};
use crate::values::NtStatus;

/// What [`encode`] did: the status to complete the request with and the bytes
/// written (the request's `Information`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// `STATUS_SUCCESS`, `STATUS_BUFFER_OVERFLOW` (only some rows fit) or
    /// `STATUS_BUFFER_TOO_SMALL` (not even the header fit).
    pub status: NtStatus,
    /// Bytes written from the start of the buffer: the header and the rows
    /// that fit, or 0. Never more than the buffer.
    pub written: usize,
    /// Bytes the whole reply needs (the header's `reply_size`).
    pub reply_size: u32,
}

/// Whether a request is the query with no input: `Ok` to go on with
/// [`encode`], else the status to complete it with (`STATUS_INVALID_DEVICE_REQUEST`
/// for any other code, `STATUS_INVALID_PARAMETER` for a non-empty input
/// buffer), with no bytes written.
///
/// ```
/// use procnotify_core::NtStatus;
/// use procnotify_core::abi::{IOCTL_PROCNOTIFY_QUERY, check_request};
///
/// assert_eq!(check_request(IOCTL_PROCNOTIFY_QUERY, 0), Ok(()));
/// assert_eq!(check_request(IOCTL_PROCNOTIFY_QUERY, 4), Err(NtStatus::INVALID_PARAMETER));
/// assert_eq!(check_request(0x0022_2000, 0), Err(NtStatus::INVALID_DEVICE_REQUEST));
/// ```
///
/// # Errors
///
/// The status the request must be completed with.
#[cfg_attr(procnotify_no_panic, no_panic::no_panic)]
pub fn check_request(io_control_code: u32, input_len: usize) -> Result<(), NtStatus> {
    if io_control_code != IOCTL_PROCNOTIFY_QUERY {
        Err(NtStatus::INVALID_DEVICE_REQUEST)
    } else if input_len != 0 {
        Err(NtStatus::INVALID_PARAMETER)
    } else {
        Ok(())
    }
}

/// Writes the reply for `summary` and `rows` into `out` (see the
/// [module documentation](super) for the layout and statuses).
///
/// The whole of `out` is zeroed first, so no byte of it keeps what was there
/// before. Then the rows are taken in order, once each: the ones that fit
/// after the header are written, all of them are counted (`rows_in_table`,
/// and `present` for those `starting` or `online`), so the header agrees
/// with the rows it describes even while the table grows. Pass the rows in
/// increasing index order, each index once (what a table gives); the reader
/// checks it. Allocates nothing, takes no lock and cannot panic; the work is
/// one pass over `rows` and one over `out`.
///
/// ```
/// use procnotify_core::abi::{self, Row, Summary};
/// use procnotify_core::{NtStatus, ProcNumber, SlotState};
///
/// let rows = (0..4).map(|index| Row {
///     index,
///     number: ProcNumber::dense(index),
///     state: SlotState::Online,
///     starts: 1,
///     completes: 1,
///     failures: 0,
///     visits: 1,
/// });
/// let summary = Summary { capacity: 8, ..Summary::default() };
///
/// // The probe: just the header, which says how big the reply is.
/// let mut probe = [0_u8; abi::HEADER_SIZE];
/// let answer = abi::encode(&mut probe, &summary, rows.clone());
/// assert_eq!((answer.status, answer.written), (NtStatus::BUFFER_OVERFLOW, abi::HEADER_SIZE));
/// let header = abi::decode(&probe).expect("a header").header;
/// assert_eq!((header.rows_in_table, header.reply_size), (4, 64 + 4 * 32));
///
/// // Then the whole reply.
/// let mut out = vec![0_u8; header.reply_size as usize];
/// let answer = abi::encode(&mut out, &summary, rows);
/// assert_eq!((answer.status, answer.written), (NtStatus::SUCCESS, out.len()));
/// assert_eq!(abi::decode(&out).expect("a reply").rows().count(), 4);
/// ```
#[cfg_attr(procnotify_no_panic, no_panic::no_panic)]
pub fn encode<I: IntoIterator<Item = Row>>(out: &mut [u8], summary: &Summary, rows: I) -> Encoded {
    out.fill(0);
    let room = out.len().saturating_sub(HEADER_SIZE) / ROW_SIZE;
    let (mut rows_in_table, mut rows_written, mut present) = (0_u32, 0_u32, 0_u32);
    for row in rows {
        if (rows_written as usize) < room {
            let at = (rows_written as usize).saturating_mul(ROW_SIZE).saturating_add(HEADER_SIZE);
            put(out, at, row.to_bytes());
            rows_written = rows_written.saturating_add(1);
        }
        rows_in_table = rows_in_table.saturating_add(1);
        present = present.saturating_add(u32::from(row.is_present()));
    }
    let reply_size = reply_size(rows_in_table);
    if out.len() < HEADER_SIZE {
        return Encoded { status: NtStatus::BUFFER_TOO_SMALL, written: 0, reply_size };
    }
    let fields = [
        (offset_of!(WireHeader, magic), MAGIC),
        (offset_of!(WireHeader, version), FORMAT_VERSION),
        (offset_of!(WireHeader, header_size), HEADER_SIZE_U32),
        (offset_of!(WireHeader, row_size), ROW_SIZE_U32),
        (offset_of!(WireHeader, reply_size), reply_size),
        (offset_of!(WireHeader, rows_in_table), rows_in_table),
        (offset_of!(WireHeader, rows_written), rows_written),
        (offset_of!(WireHeader, present), present),
        (offset_of!(WireHeader, capacity), summary.capacity),
        (offset_of!(WireHeader, reported_max), summary.reported_max),
        (offset_of!(WireHeader, allocated_slots), summary.allocated_slots),
        (offset_of!(WireHeader, notifications), summary.notifications),
        (offset_of!(WireHeader, vetoes), summary.vetoes),
        (offset_of!(WireHeader, anomalies), summary.anomalies),
        (offset_of!(WireHeader, slot_bytes), summary.slot_bytes),
        (offset_of!(WireHeader, index_bytes), summary.index_bytes),
    ];
    for (at, value) in fields {
        put(out, at, value.to_le_bytes());
    }
    let status = if rows_written < rows_in_table { NtStatus::BUFFER_OVERFLOW } else { NtStatus::SUCCESS };
    let written = (rows_written as usize).saturating_mul(ROW_SIZE).saturating_add(HEADER_SIZE);
    Encoded { status, written, reply_size }
}
