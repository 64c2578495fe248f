//! The driver's edge of `IOCTL_PROCNOTIFY_QUERY`: procnotify's table,
//! statistics and per-processor counters mapped to the reply's plain
//! [`Summary`] and [`Row`]s, then [`abi::encode`]. The simulator makes the
//! same mapping (`procnotify_sim::query`), and its tests and fuzz target
//! check the replies against the reference model.
//!
//! Wait-free: one `Acquire` load per index of the table's index (`Table::slots`),
//! the slot's state (`Acquire`) and its counters and the callback's
//! statistics (`Relaxed`); no lock, no allocation, no wait. A reply is a
//! snapshot of each field, not of the whole table at one instant.

use crate::entry::{DRIVER, KERNEL};
use procnotify_core::abi::{self, Encoded, Row, Summary};
use procnotify_core::{NtStatus, Os};

/// Encodes the loaded engine's table into `out`. `STATUS_DEVICE_NOT_READY`
/// with nothing written if no engine is loaded (which cannot happen while a
/// device exists: see below).
pub fn answer(out: &mut [u8]) -> Encoded {
    let address = DRIVER.context_address();
    // SAFETY: the context is live from the end of a successful DriverEntry
    // (which stored this address) until EvtDriverUnload frees it. A request
    // exists only in between: PnP adds the device after DriverEntry returned
    // success, and KMDF calls EvtDriverUnload only after the last device was
    // removed, which waits until every request of its queue was completed.
    // The handler runs before it completes its request.
    let Some(context) = (unsafe { address.as_ref() }) else {
        out.fill(0);
        return Encoded { status: NtStatus::DEVICE_NOT_READY, written: 0, reply_size: 0 };
    };
    let table = context.table();
    let stats = context.stats();
    let summary = Summary {
        capacity: table.capacity(),
        reported_max: KERNEL.max_processors(),
        allocated_slots: table.allocated_slots(),
        slot_bytes: u32::try_from(table.slot_bytes()).unwrap_or(u32::MAX),
        index_bytes: u32::try_from(table.index_bytes()).unwrap_or(u32::MAX),
        notifications: stats.notifications,
        vetoes: stats.vetoes,
        anomalies: stats.anomalies,
    };
    let rows = table.slots().map(|slot| {
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
    });
    abi::encode(out, &summary, rows)
}
