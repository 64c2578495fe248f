//! Arbitrary table operations — notifications of any state, index, status,
//! group and number, hot-adds with vetoes and every fault, reads, reloads —
//! run against the real engine in the simulator, and after every step
//! procnotify's `IOCTL_PROCNOTIFY_QUERY` answered into output buffers of an
//! arbitrary length and of every boundary length. `procnotify_sim::script::run_query`
//! checks each reply's status, bytes written, zeroed tail, header and rows
//! against the reference model; any disagreement, leak or use after free is
//! reported as a crash.
//!
//! `cargo +nightly fuzz run query fuzz/corpus/query`
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(error) = procnotify_sim::script::run_query(data) {
        panic!("{error}");
    }
});
