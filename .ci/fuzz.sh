#!/usr/bin/env bash
# Fuzzing (issue 5, item 2): the cargo-fuzz target fuzz/fuzz_targets/notifications.rs
# feeds arbitrary notification sequences, hot-adds (with vetoes, start,
# allocation, payload and prepare failures), reads and reloads to the engine
# in the simulator; procnotify::sim::script checks it against a reference
# model after every step. The seed corpus (fuzz/corpus/notifications) is
# replayed as a normal test by tests/fuzz_corpus.rs (`cargo test`); here it
# seeds a bounded fuzzing run. New inputs go to a scratch directory, so the
# repository's corpus is not modified; a crash leaves its input in
# fuzz/artifacts/notifications/ and fails the script.
#
# FUZZ_SECONDS bounds the run (default 240). Installs cargo-fuzz if missing
# (~40 s); the first build takes ~1.5 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-240}"
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: FAILED: the nightly toolchain is required (rustup toolchain install nightly)"
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

scratch="$(mktemp -d)"
log="$(mktemp)"
trap 'rm -rf "$scratch" "$log"' EXIT
seeds=$(find fuzz/corpus/notifications -type f | wc -l)

echo "fuzz: building the target (nightly, AddressSanitizer, libFuzzer)"
cargo +nightly fuzz build notifications

echo "fuzz: fuzzing for ${seconds}s from ${seeds} seed files"
status=0
cargo +nightly fuzz run notifications "$scratch" fuzz/corpus/notifications -- \
    -max_total_time="$seconds" -print_final_stats=1 -timeout=30 -rss_limit_mb=4096 >"$log" 2>&1 || status=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
added=$(find "$scratch" -type f | wc -l)
if [ "$status" -ne 0 ]; then
    grep -E "^(==|thread|step|  [0-9]+:|SUMMARY|artifact_prefix|Test unit written)" "$log" | head -60 || tail -60 "$log"
    echo "fuzz: FAILED after ${execs:-?} execs: crash input in fuzz/artifacts/notifications/ (reproduce: cargo +nightly fuzz run notifications <file>)"
    exit 1
fi
echo "fuzz: OK: ${execs} execs in ${seconds}s (${rate} exec/s), 0 crashes, ${seeds} seed files, ${added} new corpus inputs (not kept)"
