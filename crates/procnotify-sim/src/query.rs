//! The driver's user-mode query (`IOCTL_PROCNOTIFY_QUERY`) against a driver
//! loaded in the simulator, answered by the function the Windows driver's
//! handler calls ([`procnotify_core::query::answer`]). What it returns is what
//! `procnotify-ctl` would receive from that driver; the tests and the fuzz
//! target ([`crate::script::run_query`]) check it, `procnotify-ctl`'s
//! tests decode and print it, and `simulate`'s `query` line and
//! `--query-after-each` ([`crate::cli::query`]) print it as `procnotify-ctl`
//! does.

use std::vec;
use std::vec::Vec;

use procnotify_core::abi::{self, Encoded};
use procnotify_core::query;

use crate::os::SimDriver;

/// The query into `out`, as the driver answers it
/// ([`procnotify_core::query::answer`], the driver's own function).
pub fn answer(driver: &SimDriver, out: &mut [u8]) -> Encoded {
    query::answer(driver.context(), out)
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
