#!/usr/bin/env python3
"""Instructions per lookup under callgrind, for every lookup variant and peer.

Builds the `icount` bench target of procnotify-benches (the `bench` profile:
the same code criterion times in benches/lookup.rs), then runs each
"variant contender" pair it lists twice under `valgrind --tool=callgrind`,
for N1 and N2 iterations of the loop. Each iteration is one call of the
loop function (BATCH = 64 lookups), so

    instructions per lookup = (Ir(N2) - Ir(N1)) / ((N2 - N1) * 64)

with the set-up (building the contender, process start) cancelled out.
Instruction counts do not depend on the machine's load, so one run is the
figure (rerunning gives the same numbers to the last digit).

Prints a Markdown table of instructions per lookup and the ratio to
`fixed_array`, and FAILS (exit 1) when lookup by index through the table's
`Reader` exceeds --bound (1.25) times the fixed array.

    python3 scripts/callgrind.py                    # build, measure, check
    python3 scripts/callgrind.py --json out.json    # also write the figures
    python3 scripts/callgrind.py --jobs 2 --n1 100 --n2 1100

Needs valgrind (`apt-get install valgrind`). Python 3.11, stdlib only.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BATCH = 64
BASELINE = "fixed_array"
# The table's lookup the bound applies to: `Reader::get`, the fast path for
# code that looks up several processors. `Table::get` through `&Table` is
# printed for information (its loop reloads the index pointer after each
# Acquire load; see docs/benchmarks.md).
CHECKED = ["procnotify_reader"]
INFORMATION = ["procnotify_table"]
CHECKED_VARIANT = "by_index"
VARIANTS = [
    ("by_index", "lookup by index"),
    ("own_slot", "own slot"),
    ("own_slot_visit", "own slot + visit"),
]
ORDER = ["fixed_array", "procnotify_table", "procnotify_reader", "procnotify_from_dpc", "rwlock_vec", "mutex_vec",
         "boxcar_vec", "thread_local", "arc_swap_vec"]
ROOT = Path(__file__).resolve().parent.parent


def build() -> Path:
    """Builds the icount bench target and returns its executable."""
    command = ["cargo", "bench", "-p", "procnotify-benches", "--bench", "icount", "--no-run",
               "--message-format=json-render-diagnostics"]
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"callgrind: `{' '.join(command)}` failed")
    for line in done.stdout.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message.get("target", {}).get("name") == "icount":
            if message.get("executable"):
                return Path(message["executable"])
    sys.exit("callgrind: cargo did not report the icount executable")


def instructions(exe: Path, variant: str, contender: str, iterations: int, scratch: Path) -> int:
    """Total instructions (callgrind's `Collected`) of one run."""
    out = scratch / f"{variant}.{contender}.{iterations}.out"
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(exe), variant, contender,
               str(iterations)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if done.returncode != 0 or not found:
        sys.exit(f"callgrind: {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_lookup(exe: Path, pair: tuple[str, str], n1: int, n2: int, scratch: Path) -> float:
    variant, contender = pair
    low = instructions(exe, variant, contender, n1, scratch)
    high = instructions(exe, variant, contender, n2, scratch)
    return (high - low) / ((n2 - n1) * BATCH)


def table(figures: dict[str, dict[str, float]]) -> list[str]:
    lines = ["| contender | " + " | ".join(label for _, label in VARIANTS) + " |",
             "|---|" + "---:|" * len(VARIANTS)]
    names = [n for n in ORDER if n in figures] + sorted(n for n in figures if n not in ORDER)
    for name in names:
        cells = []
        for variant, _ in VARIANTS:
            value = figures[name].get(variant)
            base = figures.get(BASELINE, {}).get(variant)
            if value is None:
                cells.append("n/a")
            elif base:
                cells.append(f"{value:.2f} ({value / base:.2f}×)")
            else:
                cells.append(f"{value:.2f}")
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n1", type=int, default=100, help="iterations of the short run")
    parser.add_argument("--n2", type=int, default=1100, help="iterations of the long run")
    parser.add_argument("--jobs", type=int, default=2, help="valgrind processes at once")
    parser.add_argument("--bound", type=float, default=1.25, help="most a checked lookup may cost, × fixed array")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--exe", type=Path, default=None, help="use this icount executable, do not build")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("callgrind: valgrind is required (apt-get install valgrind)")
    started = time.monotonic()
    exe = args.exe or build()
    built = time.monotonic()
    listing = subprocess.run([str(exe), "list"], capture_output=True, text=True, check=True).stdout
    pairs = [tuple(line.split()) for line in listing.splitlines() if line.strip()]
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="callgrind-") as scratch, ThreadPoolExecutor(args.jobs) as pool:
        results = pool.map(lambda pair: (pair, per_lookup(exe, pair, args.n1, args.n2, Path(scratch))), pairs)
        for (variant, contender), value in results:
            figures.setdefault(contender, {})[variant] = value
    print(f"Instructions per lookup (callgrind, Ir; {len(pairs)} loops, runs of {args.n1} and {args.n2} × {BATCH} "
          f"lookups; ratio to `{BASELINE}` in brackets):\n")
    print("\n".join(table(figures)))
    print()
    base = figures.get(BASELINE, {}).get(CHECKED_VARIANT)
    failed = False
    for name in CHECKED:
        value = figures.get(name, {}).get(CHECKED_VARIANT)
        if value is None or not base:
            print(f"FAIL: no {CHECKED_VARIANT} figure for {name} or {BASELINE}")
            failed = True
            continue
        ratio = value / base
        verdict = "ok" if ratio <= args.bound else "FAIL"
        failed |= ratio > args.bound
        print(f"{verdict}: {name} {CHECKED_VARIANT} = {value:.2f} instructions = {ratio:.3f}× {BASELINE} "
              f"({base:.2f}); bound {args.bound}×")
    for name in INFORMATION:
        value = figures.get(name, {}).get(CHECKED_VARIANT)
        if value is not None and base:
            print(f"info: {name} {CHECKED_VARIANT} = {value:.2f} instructions = {value / base:.3f}× {BASELINE} "
                  "(not checked)")
    print(f"\n(build {built - started:.0f} s, measurement {time.monotonic() - built:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"n1": args.n1, "n2": args.n2, "batch": BATCH, "figures": figures},
                                        indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
