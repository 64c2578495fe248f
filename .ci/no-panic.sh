#!/usr/bin/env bash
# No-panic proof. A release build of
# crates/procnotify-core/examples/no_panic_proof.rs with
# RUSTFLAGS="--cfg procnotify_no_panic" puts `#[no_panic]` on
# Context::on_notification (the callback path), Context::current (a reader on
# the current processor), PerProcessor::visit (procnotify's DPC work),
# Table::get (a lookup), abi::check_request and abi::encode (the
# IOCTL_PROCNOTIFY_QUERY handler); any panic path the optimiser cannot rule
# out becomes a link error naming the function. A second build links a deliberately
# panicking `#[no_panic]` canary and must FAIL, proving the check is live.
# Needs panic = "unwind" for the check (the driver ships with abort).
# Self-contained: stable toolchain only. ~1-2 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}/no-panic"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export CARGO_PROFILE_RELEASE_PANIC=unwind
build=(cargo build --release -p procnotify-core --example no_panic_proof)
paths="Context::on_notification, Context::current, PerProcessor::visit, Table::get, abi::check_request and abi::encode"

echo "no-panic: building the proof (release, panic=unwind, --cfg procnotify_no_panic)"
if ! RUSTFLAGS="--cfg procnotify_no_panic" CARGO_TARGET_DIR="$target" "${build[@]}" >"$log" 2>&1; then
    grep -E "ERROR\[no-panic\]|^error" "$log" || tail -40 "$log"
    echo "no-panic: FAILED: a panic path is reachable from a kernel path (see ERROR[no-panic] above)"
    exit 1
fi
"$target/release/examples/no_panic_proof"

echo "no-panic: building the canary (must fail to link)"
if RUSTFLAGS="--cfg procnotify_no_panic --cfg procnotify_no_panic_canary" CARGO_TARGET_DIR="$target" \
    "${build[@]}" >"$log" 2>&1; then
    echo "no-panic: FAILED: the panicking canary linked, so the check is not live"
    exit 1
fi
if ! grep -q 'ERROR\[no-panic\]: detected panic in function `canary`' "$log"; then
    tail -40 "$log"
    echo "no-panic: FAILED: the canary build failed for another reason"
    exit 1
fi
echo "no-panic: OK: $paths are proven panic-free at link time; the canary was caught"
