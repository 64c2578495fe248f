//! The driver's user-mode query (`IOCTL_PROCNOTIFY_QUERY`) against a driver
//! loaded in the simulator: the same mapping of procnotify's table to
//! [`abi::Row`]s and [`abi::Summary`] that the Windows driver makes at its
//! edge (`src/entry.rs`), then [`abi::encode`]. What it returns is what
//! `procnotify-ctl` would receive from that driver; the tests and the fuzz
//! target ([`crate::script::run_query`]) check it, `procnotify-ctl`'s
//! tests decode and print it, and `simulate`'s `query` line and
//! `--query-after-each` ([`crate::cli::query`]) print it as `procnotify-ctl`
//! does.

use std::vec;
use std::vec::Vec;

use procnotify_core::abi::{self, Encoded, Row, Summary};
use procnotify_core::monitor::PerProcessor;
use procnotify_core::{Os, PoolAllocator, Table};

use crate::os::SimDriver;

/// Every linked slot of `table` as a row, in index order (each field read
/// wait-free, as the driver's handler reads them).
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

/// The header's summary of `driver`: its table's size, the maximum the
/// kernel reports, the callback's counters.
#[must_use]
pub fn summary(driver: &SimDriver) -> Summary {
    let context = driver.context();
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

/// The query into `out`, as the driver answers it.
pub fn answer(driver: &SimDriver, out: &mut [u8]) -> Encoded {
    abi::encode(out, &summary(driver), rows(driver.context().table()))
}

/// The complete reply: a buffer sized for the table's capacity, as
/// `procnotify-ctl` sizes it, cut to the bytes written.
#[must_use]
pub fn reply(driver: &SimDriver) -> Vec<u8> {
    let capacity = driver.context().table().capacity();
    let mut out = vec![0; abi::reply_size(capacity) as usize];
    let written = answer(driver, &mut out).written;
    out.truncate(written);
    out
}
