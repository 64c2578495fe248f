//! The driver's edge of `IOCTL_PROCNOTIFY_QUERY`: the loaded engine's
//! context handed to [`query::answer`], which maps procnotify's table,
//! statistics and per-processor counters to the reply (wait-free; see
//! there). The simulator answers through the same function
//! (`procnotify_sim::query`), and its tests and fuzz target check the
//! replies against the reference model.

use crate::entry::DRIVER;
use procnotify_core::abi::Encoded;
use procnotify_core::{NtStatus, query};

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
    query::answer(context, out)
}
