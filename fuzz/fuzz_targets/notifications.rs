//! Arbitrary notification sequences — any state value, any index, any
//! status, any group and number — interleaved with hot-adds (with vetoes,
//! start, allocation, payload and prepare failures), reads on simulated
//! processors and reloads, fed to the real state machine and table in the
//! simulator. `procnotify_sim::script` decodes the bytes and checks the
//! engine against its reference model after every step; any disagreement,
//! leak, double free or use after free is reported as a crash.
//!
//! The same bytes are then replayed as `simulate replay` does
//! (`procnotify_sim::cli::replay`, with `--query-after-each` for half the
//! inputs, so the user-mode query is printed and charged after every step),
//! within small work and output limits:
//! whatever the script, the session must stay within them (plus the kernel
//! operation in progress when a limit is reached), end with exit code 0, 2,
//! 3 or 4, and, in JSON, write one JSON document.
//!
//! `cargo +nightly fuzz run notifications fuzz/corpus/notifications`
#![no_main]

use libfuzzer_sys::fuzz_target;
use procnotify_sim::cli::{self, Format, Limits};

/// Small limits, so that every input reaches them quickly.
const LIMITS: Limits = Limits { work: 5_000, output: 64 << 10 };

/// The most work past the limit: a load of 2048 processors (~14,300 units),
/// the final unload and the other drivers' deregistration.
const WORK_OVERSHOOT: u64 = 20_000;

/// The most output past the limit: a table or a query of 2048 rows (~160 KB
/// of text, ~240 KB of JSON) and the summary.
const OUTPUT_OVERSHOOT: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Err(error) = procnotify_sim::script::run(data) {
        panic!("{error}");
    }
    // The format, -q and --query-after-each from the length, so every input
    // tries one of each.
    let json = data.len() % 2 == 1;
    let quiet = data.len() % 4 >= 2;
    let queries = data.len() % 8 >= 4;
    let mut out = Vec::new();
    let format = if json { Format::Json } else { Format::Text };
    let (code, usage) = cli::replay(data, format, quiet, queries, LIMITS, &mut out);
    assert!([0, 2, 3, 4].contains(&code), "replay exited {code}");
    assert!(usage.work <= LIMITS.work + WORK_OVERSHOOT, "work past the limit: {usage:?}");
    assert!(usage.output <= LIMITS.output + OUTPUT_OVERSHOOT, "output past the limit: {usage:?}");
    assert!(out.len() as u64 <= usage.output, "output not counted: {} bytes, {usage:?}", out.len());
    if json && usage.work > 0 {
        assert!(serde_json::from_slice::<serde_json::Value>(&out).is_ok(), "not one JSON document");
    }
});
