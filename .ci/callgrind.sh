#!/usr/bin/env bash
# Instruction counts of the lookup loops. Builds the
# `icount` bench target of procnotify-benches (the `bench` profile, the same
# loop functions criterion times in benches/benches/lookup.rs; reused when
# `cargo bench -p procnotify-benches --no-run` already built it), runs every
# lookup variant of every contender under valgrind's callgrind twice (100 and
# 1100 loop calls) and prints instructions per lookup, the ratio to the fixed
# 2048-slot array and the instructions per lookup over it. FAILS when a public
# lookup (`Reader::get`, `Table::get`, `Table::value`, `Context::current`), in
# any loop it runs in, costs more than LOOKUP_EXTRA (default 3.25)
# instructions per lookup over the fixed array, more than LOOKUP_OVER_READER
# (0.25) over `Reader::get` in the same loop, or, in the state and visit
# loops, more than LOOKUP_BOUND (1.25) times the fixed array (see
# scripts/callgrind.py). Writes <criterion dir>/callgrind.json for
# scripts/bench-report.py. About 1 minute on 2 cores once built.
set -euo pipefail
cd "$(dirname "$0")/.."

bound="${LOOKUP_BOUND:-1.25}"
extra="${LOOKUP_EXTRA:-3.25}"
over_reader="${LOOKUP_OVER_READER:-0.25}"
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
if python3 scripts/callgrind.py --bound "$bound" --extra "$extra" --over-reader "$over_reader" \
    --json "$out/callgrind.json"; then
    echo "callgrind: OK: every public lookup within +${extra} instructions of the fixed array, +${over_reader} of" \
        "Reader::get, and ${bound}x in the state and visit loops"
else
    echo "callgrind: FAILED: a public lookup is over its bound (the FAIL lines above)"
    exit 1
fi
