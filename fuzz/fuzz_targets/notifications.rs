//! Arbitrary notification sequences — any state value, any index, any
//! status, any group and number — interleaved with hot-adds (with vetoes,
//! start, allocation, payload and prepare failures), reads on simulated
//! processors and reloads, fed to the real state machine and table in the
//! simulator. `procnotify_sim::script` decodes the bytes and checks the
//! engine against its reference model after every step; any disagreement,
//! leak, double free or use after free is reported as a crash.
//!
//! `cargo +nightly fuzz run notifications fuzz/corpus/notifications`
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(error) = procnotify_sim::script::run(data) {
        panic!("{error}");
    }
});
