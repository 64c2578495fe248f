#!/usr/bin/env bash
# Sanitizers, nightly toolchain, without -Zbuild-std (this machine's nightly
# has no rust-src): `--target` keeps build scripts and proc-macros
# uninstrumented.
#
# AddressSanitizer (+ LeakSanitizer) and ThreadSanitizer over
#   cargo +nightly test --workspace --exclude procnotify-benches --lib --tests
# i.e. every package's unit tests and every integration test, the
# 2048-processor stress test included. procnotify-benches is excluded: its
# criterion harness and peers are not kernel code and do not build cleanly
# instrumented. SANITIZE_SCOPE replaces the package/target selection (e.g.
# SANITIZE_SCOPE="-p procnotify-core -p procnotify-sim --lib").
#
# ThreadSanitizer with a precompiled (uninstrumented) std needs two things:
# - the simulator locks with parking_lot, which is compiled from source and so
#   instrumented (std's Mutex/Condvar park in precompiled code TSan cannot
#   see), and threads that must be waited for are joined (pthread_join);
# - .ci/tsan-suppressions.txt, which names only libtest's own types and
#   alloc::sync::Arc's drop path (std's Arc synchronises its last drop with a
#   fence TSan does not model). No procnotify frame is ever suppressed.
#
# ~6 minutes on 2 cores (two instrumented builds).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "sanitizers: FAILED: nightly toolchain missing: install it with 'rustup toolchain install nightly'"
    exit 1
fi
host=x86_64-unknown-linux-gnu
root="${CARGO_TARGET_DIR:-target}"
# shellcheck disable=SC2206 # word splitting of the scope is intended
scope=(${SANITIZE_SCOPE:---workspace --exclude procnotify-benches --lib --tests})
# The one test that measures the process's peak memory (the simulator's
# trace must not grow with the number of hot-adds) is skipped here: under a
# sanitizer the peak is the quarantine's and the shadow memory's, not the
# program's. The plain `cargo test --workspace` step runs it.
# misuse_does_not_compile is a compile-fail check (trybuild): it runs no
# code to sanitize, and its expected messages are the pinned stable's.
command=(cargo +nightly test --target "$host" "${scope[@]}" -- --skip memory_does_not_grow_with_the_number_of_hot_adds --skip misuse_does_not_compile)

echo "sanitizers: AddressSanitizer: ${command[*]}"
RUSTFLAGS="-Zsanitizer=address" ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" CARGO_TARGET_DIR="$root/asan" \
    "${command[@]}"
echo "sanitizers: AddressSanitizer: clean"

echo "sanitizers: ThreadSanitizer: ${command[*]}"
export TSAN_OPTIONS="suppressions=$PWD/.ci/tsan-suppressions.txt:halt_on_error=1"
RUSTFLAGS="-Zsanitizer=thread -Cunsafe-allow-abi-mismatch=sanitizer" CARGO_TARGET_DIR="$root/tsan" \
    "${command[@]}"
echo "sanitizers: OK: AddressSanitizer and ThreadSanitizer clean on: ${scope[*]} (all tests but the peak-memory one)"
