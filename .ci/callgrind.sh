#!/usr/bin/env bash
# Instruction counts of the lookup loops. Builds the
# `icount` bench target of procnotify-benches (the `bench` profile, the same
# loop functions criterion times in benches/benches/lookup.rs; reused when
# `cargo bench -p procnotify-benches --no-run` already built it), runs every
# lookup variant of every contender under valgrind's callgrind twice (100 and
# 1100 loop calls) and prints instructions per lookup and the ratio to the
# fixed 2048-slot array. FAILS when lookup by index through the table's
# `Reader::get` exceeds LOOKUP_BOUND (default 1.25) times the fixed array
# (`Table::get` through `&Table` is printed for information). Writes <criterion dir>/callgrind.json for
# scripts/bench-report.py. About 1 minute on 2 cores once built.
set -euo pipefail
cd "$(dirname "$0")/.."

bound="${LOOKUP_BOUND:-1.25}"
if ! command -v valgrind >/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq valgrind >/dev/null
    else
        echo "callgrind: FAILED: valgrind is required (apt-get install valgrind)"
        exit 1
    fi
fi
command -v python3 >/dev/null || { echo "callgrind: FAILED: python3 is required"; exit 1; }
out="${CRITERION_HOME:-${CARGO_TARGET_DIR:-target}/criterion}"
mkdir -p "$out"
if python3 scripts/callgrind.py --bound "$bound" --json "$out/callgrind.json"; then
    echo "callgrind: OK: lookup by index within ${bound}x the fixed array in instructions"
else
    echo "callgrind: FAILED: lookup by index over ${bound}x the fixed array in instructions (table above)"
    exit 1
fi
