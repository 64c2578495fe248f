#!/usr/bin/env bash
# Bounded fuzzing of two cargo-fuzz targets:
# - fuzz/fuzz_targets/notifications.rs hands arbitrary bytes to
#   procnotify_sim::script::run, which decodes them into a simulated machine
#   and a sequence of notifications, hot-adds (with vetoes and every fault),
#   reads and reloads, runs them against the real engine and checks it after
#   every step; FUZZ_SECONDS (default 240);
# - fuzz/fuzz_targets/query.rs runs the same kind of script through
#   procnotify_sim::script::run_query, which after every step also asks for
#   IOCTL_PROCNOTIFY_QUERY's reply into output buffers of an arbitrary length
#   and checks each reply against the model; FUZZ_QUERY_SECONDS (default 120).
# Each target's seed corpus (fuzz/corpus/<target>) is replayed as a normal
# test by `cargo test --workspace` (tests/fuzz_corpus.rs, tests/query.rs);
# here it seeds the run.
#
# Hygiene (the run leaves nothing behind outside target/ and fuzz/target/):
# - cargo-fuzz is pinned to one version and installed into
#   target/tools/bin of this checkout (not globally), then run from there;
# - the fuzz crate's dependencies must resolve from fuzz/Cargo.lock exactly
#   (`--locked`): the script fails, naming the fix, rather than rewrite it;
# - new inputs go to a scratch directory, so the repository's corpus is not
#   modified; fuzz/artifacts/notifications/ is kept only when it holds a
#   crash input (and then the script fails).
#
# First run on a fresh machine: ~3.5 min to install cargo-fuzz, ~1.5 min to
# build the target; then FUZZ_SECONDS.
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.13.2
tools="$PWD/target/tools"
cargo_fuzz="$tools/bin/cargo-fuzz"

if ! nightly="$(cargo +nightly --version 2>&1)"; then
    echo "fuzz: FAILED: nightly toolchain missing: ${nightly%%$'\n'*} (rustup toolchain install nightly)"
    exit 1
fi
if [ "$("$cargo_fuzz" --version 2>/dev/null)" != "cargo-fuzz $version" ]; then
    echo "fuzz: installing cargo-fuzz $version into $tools"
    cargo install --locked --quiet --version "$version" --root "$tools" cargo-fuzz
fi
echo "fuzz: $("$cargo_fuzz" --version) ($tools/bin), $nightly"

# cargo-fuzz has no --locked of its own: resolve the fuzz crate's graph with
# --locked first (this fails instead of writing), so the build that follows
# finds the lock file already complete and leaves it alone.
if ! cargo +nightly metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null; then
    echo "fuzz: FAILED: fuzz/Cargo.lock is out of date (--locked would rewrite it); update it with" \
        "'cargo +nightly fetch --manifest-path fuzz/Cargo.toml' (a minimal update) and commit it"
    exit 1
fi
lock_before="$(sha256sum fuzz/Cargo.lock)"

targets=(notifications query)
# Scratch corpora and logs of every run, removed at exit; cargo-fuzz creates
# an artifact directory on every run: keep it only if it holds something (a
# crash input) or existed before.
scratch=()
artifacts_existed=false
[ -d fuzz/artifacts ] && artifacts_existed=true
cleanup() {
    rm -rf "${scratch[@]}"
    for target in "${targets[@]}"; do rmdir "fuzz/artifacts/$target" 2>/dev/null || true; done
    if [ "$artifacts_existed" = false ]; then rmdir fuzz/artifacts 2>/dev/null || true; fi
}
trap cleanup EXIT

# fuzz_target TARGET SECONDS HINT: build TARGET, fuzz it from its seed corpus
# for SECONDS, fail on a crash (HINT says how to read a crash input).
fuzz_target() {
    local target="$1" seconds="$2" hint="$3"
    local corpus log
    corpus="$(mktemp -d)"
    log="$(mktemp)"
    scratch+=("$corpus" "$log")
    local seeds
    seeds=$(find fuzz/corpus/$target -type f | wc -l)

    echo "fuzz: building the target $target (nightly, AddressSanitizer, libFuzzer)"
    fuzz build $target

    echo "fuzz: fuzzing $target for ${seconds}s from ${seeds} seed files"
    local status=0
    fuzz run $target "$corpus" fuzz/corpus/$target -- \
        -max_total_time="$seconds" -print_final_stats=1 -timeout=30 -rss_limit_mb=4096 >"$log" 2>&1 || status=$?
    if [ "$(sha256sum fuzz/Cargo.lock)" != "$lock_before" ]; then
        echo "fuzz: FAILED: the fuzz build rewrote fuzz/Cargo.lock (see 'git diff fuzz/Cargo.lock')"
        return 1
    fi
    local execs rate added
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    added=$(find "$corpus" -type f | wc -l)
    if [ "$status" -ne 0 ]; then
        grep -E "^(==|thread|step|  [0-9]+:|SUMMARY|artifact_prefix|Test unit written)" "$log" | head -60 || tail -60 "$log"
        echo "fuzz: FAILED after ${execs:-?} execs: crash input in fuzz/artifacts/$target/" \
            "(reproduce: RUSTUP_TOOLCHAIN=nightly target/tools/bin/cargo-fuzz fuzz run $target <file>; $hint)"
        return 1
    fi
    echo "fuzz: OK: $target: ${execs} execs in ${seconds}s (${rate} exec/s), 0 crashes, ${seeds} seed files," \
        "${added} new corpus inputs (not kept)"
}

# Run the pinned binary directly, on the nightly toolchain.
fuzz() { RUSTUP_TOOLCHAIN=nightly "$cargo_fuzz" fuzz "$@"; }

fuzz_target notifications "${FUZZ_SECONDS:-240}" \
    "read it: cargo run -p procnotify-sim --bin simulate -- replay <file>"
fuzz_target query "${FUZZ_QUERY_SECONDS:-120}" \
    "its bytes after the first two are a script: tail -c +3 <file> > s; simulate replay s"
