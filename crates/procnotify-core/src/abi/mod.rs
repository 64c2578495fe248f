//! The user-mode query's wire format: the device interface GUID, the I/O
//! control code, the reply's `#[repr(C)]` header and row, [`encode`] (the
//! driver's side, `no_std`, no panic path) and [`decode`] (the reader's
//! side), and the printed forms of a decoded table ([`format`]).
//!
//! One definition for the driver (`src/entry.rs`), `procnotify-ctl` and the
//! simulator: no other copy of these numbers or this layout exists. It
//! depends on plain values only ([`ProcNumber`], [`SlotState`],
//! [`NtStatus`](crate::NtStatus)), not on the engine: [`crate::query`] maps a context's table to
//! [`Row`]s and [`Summary`] and hands them to [`encode`].
//!
//! # The request
//!
//! `DeviceIoControl(handle, IOCTL_PROCNOTIFY_QUERY, NULL, 0, out, out_len,
//! &returned, NULL)` on a handle to the [`GUID_DEVINTERFACE_PROCNOTIFY`]
//! interface opened with `GENERIC_READ`. The code is
//! `CTL_CODE(FILE_DEVICE_UNKNOWN, 0x800, METHOD_BUFFERED, FILE_READ_ACCESS)`
//! = `0x00226000` ([`IOCTL_PROCNOTIFY_QUERY`]): buffered, and the I/O manager
//! refuses it on a handle without read access.
//!
//! # The reply
//!
//! A [`WireHeader`] (64 bytes) followed by `rows_written` [`WireRow`]s
//! (32 bytes each), one per processor index that has a slot in the table,
//! in increasing index order. Every field is a little-endian fixed-width
//! integer at the offset the tables below give (checked at compile time);
//! every byte the driver does not set is zero. The reply holds no pointer,
//! handle or pool address: only counts, indices and counters.
//!
//! | offset | header field | meaning |
//! |---|---|---|
//! | 0 | `magic` u32 | [`MAGIC`], the bytes `PNQR` |
//! | 4 | `version` u32 | [`FORMAT_VERSION`] (1) |
//! | 8 | `header_size` u32 | [`HEADER_SIZE`] (64) |
//! | 12 | `row_size` u32 | [`ROW_SIZE`] (32) |
//! | 16 | `reply_size` u32 | bytes of the whole reply: `header_size + rows_in_table * row_size` |
//! | 20 | `rows_in_table` u32 | rows the table had when it was read |
//! | 24 | `rows_written` u32 | rows in this reply (fewer when the buffer was short) |
//! | 28 | `present` u32 | rows whose state is `starting` or `online` |
//! | 32 | `capacity` u32 | the table's capacity (highest index + 1) |
//! | 36 | `reported_max` u32 | what `KeQueryMaximumProcessorCountEx(ALL_PROCESSOR_GROUPS)` reports |
//! | 40 | `allocated_slots` u32 | slots allocated, linked or not |
//! | 44 | `notifications` u32 | notifications the callback received |
//! | 48 | `vetoes` u32 | `AddStart`s the driver vetoed |
//! | 52 | `anomalies` u32 | notifications out of order, invalid or re-entrant |
//! | 56 | `slot_bytes` u32 | bytes of slot storage |
//! | 60 | `index_bytes` u32 | bytes of the table's index |
//!
//! | offset | row field | meaning |
//! |---|---|---|
//! | 0 | `index` u32 | system-wide processor index (`NtNumber`) |
//! | 4 | `group` u16 | `PROCESSOR_NUMBER::Group` |
//! | 6 | `number` u8 | `PROCESSOR_NUMBER::Number` |
//! | 7 | `state` u8 | 0 vacant, 1 starting, 2 online ([`SlotState`]) |
//! | 8 | `starts` u32 | accepted `AddStart`s |
//! | 12 | `completes` u32 | `AddComplete`s that brought it online |
//! | 16 | `failures` u32 | `AddFailure`s that reverted it |
//! | 20 | `reserved` u32 | zero |
//! | 24 | `visits` u64 | runs of its DPC on it |
//!
//! A row and the header are each read wait-free, field by field, while the
//! callback may be changing the table: a reply is a snapshot of each field,
//! not of the whole table at one instant.
//!
//! # Statuses and the probe convention
//!
//! | output buffer | status | bytes written (`Information`) |
//! |---|---|---|
//! | input buffer not empty | `STATUS_INVALID_PARAMETER` | 0 |
//! | fewer than [`HEADER_SIZE`] bytes | `STATUS_BUFFER_TOO_SMALL` | 0 |
//! | the header and only some rows fit | `STATUS_BUFFER_OVERFLOW` | header + the rows that fit |
//! | everything fits | `STATUS_SUCCESS` | header + every row |
//! | any other I/O control code | `STATUS_INVALID_DEVICE_REQUEST` | 0 |
//!
//! **Probe with exactly [`HEADER_SIZE`] bytes.** The required size cannot
//! travel with `STATUS_BUFFER_TOO_SMALL`: for an error status the I/O manager
//! copies nothing back to a `METHOD_BUFFERED` caller. So the smallest useful
//! buffer is the header itself: the driver answers it with the header alone
//! (`STATUS_BUFFER_OVERFLOW`, which the I/O manager does copy back, and which
//! `DeviceIoControl` reports as `FALSE` with `ERROR_MORE_DATA`; or
//! `STATUS_SUCCESS` for an empty table), and the header's `reply_size` is the
//! size to ask for next. The table may grow between the two calls; a caller
//! that sizes its buffer for `capacity` rows (`header_size + capacity *
//! row_size`, at most 64 + 2048 × 32 bytes) never needs a third.
//!
//! # Versions
//!
//! Any change to the layout or the meaning of a field increments
//! [`FORMAT_VERSION`]; [`decode`] refuses a reply of another version and
//! names both ([`DecodeError::Version`]). Whatever the version, the first
//! 20 bytes keep their meaning (`magic`, `version`, `header_size`,
//! `row_size`, `reply_size`) and a buffer of 64 bytes is always answered
//! with at least those, so a reader of any version can say which version a
//! driver speaks.

use core::mem::{offset_of, size_of};

use crate::lifecycle::SlotState;
use crate::values::ProcNumber;

mod decode;
mod encode;
pub mod format;

pub use decode::{DecodeError, Reply, ReplyHeader, RowProblem, decode};
pub use encode::{Encoded, check_request, encode};

/// A GUID in its native layout (`GUID` / `DEFINE_GUID`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Guid {
    /// `Data1`.
    pub data1: u32,
    /// `Data2`.
    pub data2: u16,
    /// `Data3`.
    pub data3: u16,
    /// `Data4`.
    pub data4: [u8; 8],
}

/// `{2d38cf3c-e842-45e3-93a0-6c5d9c1409e8}`, as the registry and `Get-PnpDevice`
/// write it.
impl core::fmt::Display for Guid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{{{:08x}-{:04x}-{:04x}-", self.data1, self.data2, self.data3)?;
        for (position, byte) in self.data4.iter().enumerate() {
            if position == 2 {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        f.write_str("}")
    }
}

/// The device interface class procnotify's device registers
/// (`WdfDeviceCreateDeviceInterface`) and `procnotify-ctl` looks up
/// (`CM_Get_Device_Interface_List`): `{2d38cf3c-e842-45e3-93a0-6c5d9c1409e8}`.
pub const GUID_DEVINTERFACE_PROCNOTIFY: Guid =
    Guid { data1: 0x2d38_cf3c, data2: 0xe842, data3: 0x45e3, data4: [0x93, 0xa0, 0x6c, 0x5d, 0x9c, 0x14, 0x09, 0xe8] };

/// `FILE_DEVICE_UNKNOWN` (devioctl.h).
pub const FILE_DEVICE_UNKNOWN: u32 = 0x22;
/// `METHOD_BUFFERED` (devioctl.h).
pub const METHOD_BUFFERED: u32 = 0;
/// `FILE_READ_ACCESS` (devioctl.h).
pub const FILE_READ_ACCESS: u32 = 1;

/// `CTL_CODE(DeviceType, Function, Method, Access)` of devioctl.h:
/// `(DeviceType << 16) | (Access << 14) | (Function << 2) | Method`.
#[must_use]
pub const fn ctl_code(device_type: u32, function: u32, method: u32, access: u32) -> u32 {
    device_type.wrapping_shl(16) | access.wrapping_shl(14) | function.wrapping_shl(2) | method
}

/// The query: `CTL_CODE(FILE_DEVICE_UNKNOWN, 0x800, METHOD_BUFFERED,
/// FILE_READ_ACCESS)`. Function codes from 0x800 up are for vendors.
pub const IOCTL_PROCNOTIFY_QUERY: u32 = ctl_code(FILE_DEVICE_UNKNOWN, 0x800, METHOD_BUFFERED, FILE_READ_ACCESS);

const _: () = assert!(IOCTL_PROCNOTIFY_QUERY == 0x0022_6000);

/// The reply's first four bytes: `PNQR` ("procnotify query reply").
pub const MAGIC: u32 = u32::from_le_bytes(*b"PNQR");

/// The reply format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The reply header, as it lies in the output buffer (every field
/// little-endian). Documentation of the layout and the source of its
/// offsets: [`encode`] and [`decode`] read and write each field at
/// `offset_of!` of this struct, and never through a reference to it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WireHeader {
    /// [`MAGIC`].
    pub magic: u32,
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// [`HEADER_SIZE`].
    pub header_size: u32,
    /// [`ROW_SIZE`].
    pub row_size: u32,
    /// Bytes of the complete reply: `header_size + rows_in_table * row_size`.
    pub reply_size: u32,
    /// Rows the table had when it was read.
    pub rows_in_table: u32,
    /// Rows in this reply.
    pub rows_written: u32,
    /// Rows whose state is `starting` or `online`.
    pub present: u32,
    /// [`Summary::capacity`].
    pub capacity: u32,
    /// [`Summary::reported_max`].
    pub reported_max: u32,
    /// [`Summary::allocated_slots`].
    pub allocated_slots: u32,
    /// [`Summary::notifications`].
    pub notifications: u32,
    /// [`Summary::vetoes`].
    pub vetoes: u32,
    /// [`Summary::anomalies`].
    pub anomalies: u32,
    /// [`Summary::slot_bytes`].
    pub slot_bytes: u32,
    /// [`Summary::index_bytes`].
    pub index_bytes: u32,
}

/// One row, as it lies in the output buffer (every field little-endian).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WireRow {
    /// System-wide processor index.
    pub index: u32,
    /// Processor group.
    pub group: u16,
    /// Group-relative number.
    pub number: u8,
    /// [`SlotState`] as `u8`.
    pub state: u8,
    /// Accepted `AddStart`s.
    pub starts: u32,
    /// `AddComplete`s that brought it online.
    pub completes: u32,
    /// `AddFailure`s that reverted it.
    pub failures: u32,
    /// Zero. Makes the padding before `visits` explicit.
    pub reserved: u32,
    /// DPC runs on the processor.
    pub visits: u64,
}

/// Bytes of the header.
pub const HEADER_SIZE: usize = size_of::<WireHeader>();
/// Bytes of one row.
pub const ROW_SIZE: usize = size_of::<WireRow>();

// The layout the module documentation promises, checked at compile time
// (a mismatch is a build error, not a test failure).
const _: () = {
    assert!(HEADER_SIZE == 64 && ROW_SIZE == 32);
    assert!(offset_of!(WireHeader, magic) == 0);
    assert!(offset_of!(WireHeader, version) == 4);
    assert!(offset_of!(WireHeader, header_size) == 8);
    assert!(offset_of!(WireHeader, row_size) == 12);
    assert!(offset_of!(WireHeader, reply_size) == 16);
    assert!(offset_of!(WireHeader, rows_in_table) == 20);
    assert!(offset_of!(WireHeader, rows_written) == 24);
    assert!(offset_of!(WireHeader, present) == 28);
    assert!(offset_of!(WireHeader, capacity) == 32);
    assert!(offset_of!(WireHeader, reported_max) == 36);
    assert!(offset_of!(WireHeader, allocated_slots) == 40);
    assert!(offset_of!(WireHeader, notifications) == 44);
    assert!(offset_of!(WireHeader, vetoes) == 48);
    assert!(offset_of!(WireHeader, anomalies) == 52);
    assert!(offset_of!(WireHeader, slot_bytes) == 56);
    assert!(offset_of!(WireHeader, index_bytes) == 60);
    assert!(offset_of!(WireRow, index) == 0);
    assert!(offset_of!(WireRow, group) == 4);
    assert!(offset_of!(WireRow, number) == 6);
    assert!(offset_of!(WireRow, state) == 7);
    assert!(offset_of!(WireRow, starts) == 8);
    assert!(offset_of!(WireRow, completes) == 12);
    assert!(offset_of!(WireRow, failures) == 16);
    assert!(offset_of!(WireRow, reserved) == 20);
    assert!(offset_of!(WireRow, visits) == 24);
    // The stable prefix every version keeps (see "Versions") ends with
    // `reply_size`.
    assert!(STABLE_PREFIX == 20);
    // The sizes travel as u32; a full table's reply fits with room to spare.
    assert!(MAX_REPLY_SIZE <= u32::MAX as usize);
};

/// Bytes at the start of the header whose meaning no version changes.
pub const STABLE_PREFIX: usize = 20;

/// The largest reply: the header and one row for each of
/// [`MAX_PROCESSORS`](crate::values::MAX_PROCESSORS) processors (65,600
/// bytes). A buffer of this size always receives the whole table.
pub const MAX_REPLY_SIZE: usize = HEADER_SIZE + ROW_SIZE * crate::values::MAX_PROCESSORS as usize;

/// [`HEADER_SIZE`] as the header's `u32` (64, asserted above).
#[allow(clippy::cast_possible_truncation)]
const HEADER_SIZE_U32: u32 = HEADER_SIZE as u32;
/// [`ROW_SIZE`] as the header's `u32` (32, asserted above).
#[allow(clippy::cast_possible_truncation)]
const ROW_SIZE_U32: u32 = ROW_SIZE as u32;

/// Bytes of a reply with `rows` rows, saturating at `u32::MAX`.
#[must_use]
pub const fn reply_size(rows: u32) -> u32 {
    HEADER_SIZE_U32.saturating_add(ROW_SIZE_U32.saturating_mul(rows))
}

/// What the header says about the driver beyond the rows: the table's size
/// and the callback's counters. The driver fills it from its context at its
/// edge (`src/entry.rs`); the simulator from its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// The table's capacity: the highest index it can hold, plus one.
    pub capacity: u32,
    /// What the OS reports as the partition's maximum processor count
    /// (before the engine clamps it to `1 ..= 2048` for the capacity).
    pub reported_max: u32,
    /// Slots allocated so far, linked or not.
    pub allocated_slots: u32,
    /// Bytes of slot storage.
    pub slot_bytes: u32,
    /// Bytes of the table's index.
    pub index_bytes: u32,
    /// Notifications the callback received.
    pub notifications: u32,
    /// `AddStart`s the driver vetoed.
    pub vetoes: u32,
    /// Notifications that were out of order, invalid or re-entrant.
    pub anomalies: u32,
}

/// One processor's row: what the driver knows of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row {
    /// System-wide processor index.
    pub index: u32,
    /// Group and group-relative number (meaningless while vacant: the
    /// printed forms leave them out).
    pub number: ProcNumber,
    /// Where the slot is in its lifecycle.
    pub state: SlotState,
    /// Accepted `AddStart`s.
    pub starts: u32,
    /// `AddComplete`s that brought it online.
    pub completes: u32,
    /// `AddFailure`s that reverted it.
    pub failures: u32,
    /// DPC runs on the processor.
    pub visits: u64,
}

impl Row {
    /// Whether the slot is `starting` or `online` (what `present` counts).
    #[must_use]
    pub fn is_present(&self) -> bool {
        self.state != SlotState::Vacant
    }

    /// The row's wire form.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; ROW_SIZE] {
        let mut bytes = [0; ROW_SIZE];
        put(&mut bytes, offset_of!(WireRow, index), self.index.to_le_bytes());
        put(&mut bytes, offset_of!(WireRow, group), self.number.group.to_le_bytes());
        put(&mut bytes, offset_of!(WireRow, number), [self.number.number]);
        put(&mut bytes, offset_of!(WireRow, state), [self.state as u8]);
        put(&mut bytes, offset_of!(WireRow, starts), self.starts.to_le_bytes());
        put(&mut bytes, offset_of!(WireRow, completes), self.completes.to_le_bytes());
        put(&mut bytes, offset_of!(WireRow, failures), self.failures.to_le_bytes());
        put(&mut bytes, offset_of!(WireRow, visits), self.visits.to_le_bytes());
        bytes
    }
}

/// Writes `bytes` at `at` in `buf`; nothing if they would not fit (every
/// caller writes inside a buffer whose size it checked or fixed).
#[inline]
fn put<const N: usize>(buf: &mut [u8], at: usize, bytes: [u8; N]) {
    if let Some(place) = buf.get_mut(at..).and_then(<[u8]>::first_chunk_mut::<N>) {
        *place = bytes;
    }
}

/// The `N` bytes at `at` in `buf`; zeros if `buf` is too short (every caller
/// checked the length first).
#[inline]
fn take<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    buf.get(at..).and_then(<[u8]>::first_chunk::<N>).copied().unwrap_or([0; N])
}

/// The little-endian `u32` at `at`.
#[inline]
fn take_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(take(buf, at))
}

#[cfg(test)]
mod tests;
