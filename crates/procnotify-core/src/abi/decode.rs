//! The reader's side: [`decode`] checks a reply completely, then hands out
//! its header and rows.

use core::fmt;
use core::mem::offset_of;
use core::slice::ChunksExact;

use super::{
    FORMAT_VERSION, HEADER_SIZE, MAGIC, ROW_SIZE, Row, STABLE_PREFIX, Summary, WireHeader, WireRow, reply_size, take,
    take_u32,
};
use crate::lifecycle::SlotState;
use crate::values::{MAX_PROCESSORS, ProcNumber};

/// The header of a decoded reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyHeader {
    /// The reply format ([`FORMAT_VERSION`]).
    pub version: u32,
    /// Bytes of the complete reply.
    pub reply_size: u32,
    /// Rows the table had.
    pub rows_in_table: u32,
    /// Rows in this reply.
    pub rows_written: u32,
    /// Rows whose state is `starting` or `online`, over the whole table.
    pub present: u32,
    /// The table's size and the callback's counters.
    pub summary: Summary,
}

impl ReplyHeader {
    /// Whether every row of the table is in the reply.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.rows_written == self.rows_in_table
    }
}

/// A reply [`decode`] checked: its header and its rows.
#[derive(Clone, Copy, Debug)]
pub struct Reply<'a> {
    /// The header.
    pub header: ReplyHeader,
    /// `rows_written` rows of [`ROW_SIZE`] bytes, each checked.
    rows: &'a [u8],
}

impl<'a> Reply<'a> {
    /// The rows, in increasing index order.
    #[must_use]
    pub fn rows(&self) -> Rows<'a> {
        Rows { chunks: self.rows.chunks_exact(ROW_SIZE) }
    }

    /// Where the printed table stops showing absent indices: the capacity
    /// for a complete reply, else just after the last row it holds (what
    /// lies beyond is unknown, not absent).
    #[must_use]
    pub fn known_end(&self) -> u32 {
        if self.header.is_complete() {
            self.header.summary.capacity
        } else {
            self.rows().last().map_or(0, |row| row.index.saturating_add(1))
        }
    }
}

/// The rows of a [`Reply`].
#[derive(Clone, Debug)]
pub struct Rows<'a> {
    chunks: ChunksExact<'a, u8>,
}

impl Iterator for Rows<'_> {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        // Every row was checked by `decode`, so none is skipped here.
        self.chunks.next().and_then(|bytes| row_from_bytes(bytes).ok())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }
}

/// What is wrong with one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowProblem {
    /// The state byte is not 0, 1 or 2.
    UnknownState(u8),
    /// The reserved field is not zero.
    Reserved(u32),
    /// The index does not follow the previous row's.
    NotAscending {
        /// This row's index.
        index: u32,
        /// The previous row's.
        previous: u32,
    },
    /// The index is at or past the table's capacity.
    PastCapacity {
        /// This row's index.
        index: u32,
        /// The capacity.
        capacity: u32,
    },
}

/// Why a buffer is not a reply this build can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the header, or than the header and the rows it
    /// announces.
    Short {
        /// Bytes given.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// The first four bytes are not [`MAGIC`]: not a procnotify reply.
    Magic(u32),
    /// Another reply format.
    Version {
        /// The version in the reply.
        found: u32,
        /// [`FORMAT_VERSION`].
        expected: u32,
    },
    /// The header or row size is not this version's.
    Sizes {
        /// The header's `header_size`.
        header_size: u32,
        /// The header's `row_size`.
        row_size: u32,
    },
    /// The header's counts contradict each other.
    Counts {
        /// Which rule: a sentence naming the fields.
        rule: &'static str,
    },
    /// A row is malformed.
    Row {
        /// Its position in the reply (0-based).
        position: u32,
        /// What is wrong.
        problem: RowProblem,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Short { len, need } => write!(f, "reply too short: {len} bytes, {need} needed"),
            Self::Magic(found) => {
                write!(f, "not a procnotify query reply: signature 0x{found:08X}, expected 0x{MAGIC:08X} (\"PNQR\")")
            }
            Self::Version { found, expected } => {
                write!(f, "reply format version {found}, but this build reads version {expected}")
            }
            Self::Sizes { header_size, row_size } => write!(
                f,
                "bad sizes for reply format {FORMAT_VERSION}: header_size={header_size} row_size={row_size} \
                 (expected {HEADER_SIZE} and {ROW_SIZE})"
            ),
            Self::Counts { rule } => write!(f, "inconsistent reply header: {rule}"),
            Self::Row { position, problem } => {
                write!(f, "bad row {position}: ")?;
                match problem {
                    RowProblem::UnknownState(state) => write!(f, "unknown state {state}"),
                    RowProblem::Reserved(value) => write!(f, "reserved field is 0x{value:08X}, not zero"),
                    RowProblem::NotAscending { index, previous } => {
                        write!(f, "index {index} does not follow index {previous}")
                    }
                    RowProblem::PastCapacity { index, capacity } => {
                        write!(f, "index {index} is not below the capacity {capacity}")
                    }
                }
            }
        }
    }
}

/// The row in `bytes` (at least [`ROW_SIZE`] long).
fn row_from_bytes(bytes: &[u8]) -> Result<Row, RowProblem> {
    let state = match take::<1>(bytes, offset_of!(WireRow, state)) {
        [0] => SlotState::Vacant,
        [1] => SlotState::Starting,
        [2] => SlotState::Online,
        [other] => return Err(RowProblem::UnknownState(other)),
    };
    let reserved = take_u32(bytes, offset_of!(WireRow, reserved));
    if reserved != 0 {
        return Err(RowProblem::Reserved(reserved));
    }
    let [number] = take::<1>(bytes, offset_of!(WireRow, number));
    Ok(Row {
        index: take_u32(bytes, offset_of!(WireRow, index)),
        number: ProcNumber { group: u16::from_le_bytes(take(bytes, offset_of!(WireRow, group))), number },
        state,
        starts: take_u32(bytes, offset_of!(WireRow, starts)),
        completes: take_u32(bytes, offset_of!(WireRow, completes)),
        failures: take_u32(bytes, offset_of!(WireRow, failures)),
        visits: u64::from_le_bytes(take(bytes, offset_of!(WireRow, visits))),
    })
}

/// The header in `bytes`, checked on its own.
fn header(bytes: &[u8]) -> Result<ReplyHeader, DecodeError> {
    let field = |at| take_u32(bytes, at);
    if bytes.len() < offset_of!(WireHeader, header_size) {
        return Err(DecodeError::Short { len: bytes.len(), need: HEADER_SIZE });
    }
    let magic = field(offset_of!(WireHeader, magic));
    if magic != MAGIC {
        return Err(DecodeError::Magic(magic));
    }
    let version = field(offset_of!(WireHeader, version));
    if version != FORMAT_VERSION {
        return Err(DecodeError::Version { found: version, expected: FORMAT_VERSION });
    }
    if bytes.len() < HEADER_SIZE {
        return Err(DecodeError::Short { len: bytes.len(), need: HEADER_SIZE });
    }
    let (header_size, row_size) = (field(offset_of!(WireHeader, header_size)), field(offset_of!(WireHeader, row_size)));
    if header_size as usize != HEADER_SIZE || row_size as usize != ROW_SIZE {
        return Err(DecodeError::Sizes { header_size, row_size });
    }
    let header = ReplyHeader {
        version,
        reply_size: field(offset_of!(WireHeader, reply_size)),
        rows_in_table: field(offset_of!(WireHeader, rows_in_table)),
        rows_written: field(offset_of!(WireHeader, rows_written)),
        present: field(offset_of!(WireHeader, present)),
        summary: Summary {
            capacity: field(offset_of!(WireHeader, capacity)),
            reported_max: field(offset_of!(WireHeader, reported_max)),
            allocated_slots: field(offset_of!(WireHeader, allocated_slots)),
            slot_bytes: field(offset_of!(WireHeader, slot_bytes)),
            index_bytes: field(offset_of!(WireHeader, index_bytes)),
            notifications: field(offset_of!(WireHeader, notifications)),
            vetoes: field(offset_of!(WireHeader, vetoes)),
            anomalies: field(offset_of!(WireHeader, anomalies)),
        },
    };
    let rule = if header.summary.capacity > MAX_PROCESSORS {
        Some("capacity is above 2048")
    } else if header.rows_in_table > header.summary.capacity {
        Some("rows_in_table is above capacity")
    } else if header.rows_written > header.rows_in_table {
        Some("rows_written is above rows_in_table")
    } else if header.present > header.rows_in_table {
        Some("present is above rows_in_table")
    } else if header.reply_size != reply_size(header.rows_in_table) {
        Some("reply_size is not header_size + rows_in_table * row_size")
    } else {
        None
    };
    match rule {
        Some(rule) => Err(DecodeError::Counts { rule }),
        None => Ok(header),
    }
}

/// Checks `bytes` as a reply and decodes it: the header, then each of the
/// `rows_written` rows that follow it (anything after them is ignored).
///
/// Accepted: exactly this build's [`FORMAT_VERSION`] and sizes, counts that
/// agree (`rows_written <= rows_in_table <= capacity <= 2048`, `present`
/// and `reply_size` as the header defines them), rows with a known state, a
/// zero reserved field and strictly increasing indices below the capacity.
///
/// # Errors
///
/// The first thing found wrong, in that order; the magic and the version
/// are checked before anything else, so a reply of another format is always
/// reported as such.
pub fn decode(bytes: &[u8]) -> Result<Reply<'_>, DecodeError> {
    let header = header(bytes)?;
    let rows_len = (header.rows_written as usize).saturating_mul(ROW_SIZE);
    let need = rows_len.saturating_add(HEADER_SIZE);
    let Some(rows) = bytes.get(HEADER_SIZE..need) else {
        return Err(DecodeError::Short { len: bytes.len(), need });
    };
    let mut previous = None;
    let mut present = 0_u32;
    for (position, chunk) in (0_u32..).zip(rows.chunks_exact(ROW_SIZE)) {
        let problem = |problem| DecodeError::Row { position, problem };
        let row = row_from_bytes(chunk).map_err(problem)?;
        if let Some(previous) = previous
            && row.index <= previous
        {
            return Err(problem(RowProblem::NotAscending { index: row.index, previous }));
        }
        if row.index >= header.summary.capacity {
            return Err(problem(RowProblem::PastCapacity { index: row.index, capacity: header.summary.capacity }));
        }
        previous = Some(row.index);
        present = present.saturating_add(u32::from(row.is_present()));
    }
    if header.is_complete() && present != header.present {
        return Err(DecodeError::Counts { rule: "present does not count the rows that are starting or online" });
    }
    Ok(Reply { header, rows })
}

// `STABLE_PREFIX` covers what `header` reads before the version check.
const _: () = assert!(offset_of!(WireHeader, header_size) <= STABLE_PREFIX);
