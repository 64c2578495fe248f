//! procnotify's answer to `IOCTL_PROCNOTIFY_QUERY`: a [`Context`] whose
//! values are [`PerProcessor`]s (the [`Monitor`](crate::monitor::Monitor)
//! hooks') mapped to the reply's plain [`Summary`] and [`Row`]s, then
//! [`abi::encode`]. [`abi`] depends on plain values only; this is the one
//! place that reads them out of the engine, for the driver's handler
//! (`src/query.rs`), the simulator and the no-panic proof alike.
//!
//! Wait-free: one `Acquire` load per entry of the table's index
//! ([`Table::slots`]), each linked slot's state (`Acquire`), its counters and
//! the callback's statistics (`Relaxed`); no lock, no allocation, no wait. A
//! reply is a snapshot of each field, not of the whole table at one instant.
//!
//! ```
//! use procnotify_core::{NtStatus, abi, query};
//! use procnotify_sim::{Config, SimKernel, SimOs};
//!
//! let kernel = SimKernel::boot(Config::new(4, 8));
//! let driver = SimOs::load_monitor(&kernel).unwrap();
//! let mut out = [0_u8; 4096];
//! let answer = query::answer(driver.context(), &mut out);
//! assert_eq!(answer.status, NtStatus::SUCCESS);
//! let reply = abi::decode(&out[..answer.written]).unwrap();
//! assert_eq!(reply.header.summary.capacity, 8);
//! assert_eq!(reply.rows().count(), 4);
//! ```

use crate::abi::{self, Encoded, Row, Summary};
use crate::engine::Context;
use crate::hooks::Hooks;
use crate::monitor::PerProcessor;
use crate::os::Os;
use crate::pool::PoolAllocator;
use crate::table::Table;

/// The reply's header for `context`: its table's size, the maximum its OS
/// reports, the callback's counters. Sizes past `u32::MAX` read `u32::MAX`.
#[must_use]
pub fn summary<O: Os, H: Hooks>(context: &Context<O, H>) -> Summary {
    let table = context.table();
    let stats = context.stats();
    Summary {
        capacity: table.capacity(),
        reported_max: context.os().max_processors(),
        allocated_slots: table.allocated_slots(),
        slot_bytes: u32::try_from(table.slot_bytes()).unwrap_or(u32::MAX),
        index_bytes: u32::try_from(table.index_bytes()).unwrap_or(u32::MAX),
        notifications: stats.notifications,
        vetoes: stats.vetoes,
        anomalies: stats.anomalies,
    }
}

/// Every linked slot of `table` as a row, in index order.
pub fn rows<D, A: PoolAllocator>(table: &Table<PerProcessor<D>, A>) -> impl Iterator<Item = Row> + '_ {
    table.slots().map(|slot| {
        let counters = slot.value().counters();
        Row {
            index: slot.index(),
            number: slot.proc_number(),
            state: slot.state(),
            starts: counters.starts,
            completes: counters.completes,
            failures: counters.failures,
            visits: counters.visits,
        }
    })
}

/// The reply to a query with output buffer `out`, as [`abi::encode`] writes
/// it: the status, the bytes written and the size a complete reply needs.
pub fn answer<O, H, D>(context: &Context<O, H>, out: &mut [u8]) -> Encoded
where
    O: Os,
    H: Hooks<Value = PerProcessor<D>>,
{
    abi::encode(out, &summary(context), rows(context.table()))
}
