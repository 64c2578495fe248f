#!/usr/bin/env bash
# Stack use of the kernel paths. Builds
# crates/procnotify-core/examples/no_panic_proof.rs (the callback and read
# paths instantiated with the test kit's MiniOs and procnotify's Monitor
# hooks) in release with the nightly toolchain and
# RUSTFLAGS="-Z emit-stack-sizes", then .ci/stack_sizes.py reads the
# .stack_sizes section and walks the call graph from objdump to the deepest
# chain of frames under each root:
#   Context::on_notification   the callback path
#   read_path                  Context::current (a reader on its processor)
#   visit_path                 Context::current + PerProcessor::visit (the DPC)
#   lookup                     Table::get
#   query_path                 the IOCTL_PROCNOTIFY_QUERY handler: abi::check_request,
#                              the table mapped to rows, abi::encode
# Fails if any exceeds STACK_BUDGET bytes (default 2048, a twelfth of the
# 24 KiB x64 kernel stack). ~1 minute on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

budget="${STACK_BUDGET:-2048}"
target="${CARGO_TARGET_DIR:-target}/stack"
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "stack: FAILED: nightly toolchain missing: install it with 'rustup toolchain install nightly'"
    exit 1
fi
for tool in objdump objcopy nm python3; do
    command -v "$tool" >/dev/null || { echo "stack: FAILED: $tool is required (binutils, python3)"; exit 1; }
done
RUSTFLAGS="-Z emit-stack-sizes" CARGO_TARGET_DIR="$target" \
    cargo +nightly build --release -p procnotify-core --example no_panic_proof --target x86_64-unknown-linux-gnu
binary="$target/x86_64-unknown-linux-gnu/release/examples/no_panic_proof"
roots=('as procnotify_core::os::Sink>::on_notification' 'no_panic_proof::read_path' 'no_panic_proof::visit_path'
    'no_panic_proof::lookup' 'no_panic_proof::query_path')
report="$(python3 .ci/stack_sizes.py "$binary" "${roots[@]}")"
echo "$report"
worst=$(sed -n 's/^stack-worst-bytes: //p' <<<"$report")
found=$(sed -n 's/^stack-roots-measured: //p' <<<"$report")
if [ -z "$found" ] || [ -z "$worst" ]; then
    echo "stack: FAILED: stack_sizes.py printed no result"
    exit 1
fi
if [ "$found" -lt "${#roots[@]}" ]; then
    echo "stack: FAILED: expected ${#roots[@]} measured roots, found $found"
    exit 1
fi
if [ "$worst" -gt "$budget" ]; then
    echo "stack: FAILED: worst case ${worst} bytes exceeds the budget of ${budget} bytes"
    exit 1
fi
echo "stack: OK: worst case ${worst} bytes over ${found} roots: callback, current-processor read, DPC visit, lookup, query handler (budget ${budget}; kernel stack 24576)"
