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

Prints a Markdown table of instructions per lookup, the ratio to
`fixed_array` and the instructions per lookup over it (the figure that does
not depend on the loop around the lookup), then checks every public lookup
(`Reader::get`, `Table::get`, `Table::value`, `Context::current`) in every
loop it runs in, and FAILS (exit 1) when one costs

- more than --extra (+3.25) instructions per lookup over the fixed array,
- more than --over-reader (+0.25) instructions per lookup over
  `Reader::get` in the same loop (every path must cost what the reader
  costs), or
- more than --bound (1.25) times the fixed array in the state and visit
  loops (in the plain-field loops the fixed array's loop is 8-10
  instructions, so the same +3 is 1.36x: the extra count is their bound).

`Driver::context().current()` is printed for information, not checked.

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
VARIANTS = [
    ("by_index", "by index: state"),
    ("by_index_plain", "by index: plain field"),
    ("own_slot", "own slot: state"),
    ("own_slot_plain", "own slot: plain field"),
    ("own_slot_visit", "own slot + visit"),
]
# Every public lookup of the table and the engine, the contender that runs
# it, and the loops it is checked in (`Table::get` gives a slot, so the state
# and the visit; `Table::value` and `Context::current` give the value, so the
# plain field, and `Context::current` the visit through `PerProcessor::visit`).
CHECKED = [
    ("Reader::get", "procnotify_reader", ["by_index", "by_index_plain", "own_slot", "own_slot_plain", "own_slot_visit"]),
    ("Table::get", "procnotify_table", ["by_index", "own_slot", "own_slot_visit"]),
    ("Table::value", "procnotify_table", ["by_index_plain", "own_slot_plain"]),
    ("Context::current", "procnotify_context", ["own_slot_plain", "own_slot_visit"]),
]
READER = "procnotify_reader"
# The bounds (see `check`), chosen from the measurement in docs/benchmarks.md.
BOUND = 1.25
RATIO_VARIANTS = {"by_index", "own_slot", "own_slot_visit"}
EXTRA = 3.25
OVER_READER = 0.25
# Printed beside them, not checked: `Driver::context().current()` in a loop
# (the context behind a raw pointer: its fields are reloaded after each
# lookup; see docs/benchmarks.md).
INFORMATION = [("Driver::context().current()", "procnotify_driver", ["own_slot_plain", "own_slot_visit"])]
ORDER = ["fixed_array", "procnotify_table", "procnotify_reader", "procnotify_context", "procnotify_driver",
         "procnotify_from_dpc",
         "rwlock_vec", "mutex_vec", "boxcar_vec", "thread_local", "arc_swap_vec"]
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


def cell(value: float | None, base: float | None) -> str:
    """`value (ratio×, +extra)`: instructions per lookup, the ratio to the
    baseline and the instructions over it."""
    if value is None:
        return "n/a"
    if not base:
        return f"{value:.2f}"
    return f"{value:.2f} ({value / base:.2f}×, {value - base:+.2f})"


def table(figures: dict[str, dict[str, float]]) -> list[str]:
    lines = ["| contender | " + " | ".join(label for _, label in VARIANTS) + " |",
             "|---|" + "---:|" * len(VARIANTS)]
    names = [n for n in ORDER if n in figures] + sorted(n for n in figures if n not in ORDER)
    for name in names:
        cells = [cell(figures[name].get(variant), figures.get(BASELINE, {}).get(variant)) for variant, _ in VARIANTS]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return lines


def check(figures: dict[str, dict[str, float]], args: argparse.Namespace) -> tuple[list[str], bool]:
    """One line per checked (public lookup, loop), and whether any failed.

    A lookup fails when it costs more than `--extra` instructions over the
    fixed array, more than `--bound` × the fixed array in a loop of
    RATIO_VARIANTS, or more than `--over-reader` instructions over
    `Reader::get` in the same loop (the reader is the floor the other paths
    must reach)."""
    lines, failed = [], False
    for path, name, variants in CHECKED:
        for variant in variants:
            value = figures.get(name, {}).get(variant)
            base = figures.get(BASELINE, {}).get(variant)
            reader = figures.get(READER, {}).get(variant)
            if value is None or not base or reader is None:
                lines.append(f"FAIL: {path} ({name}) {variant}: no figure for it, {BASELINE} or {READER}")
                failed = True
                continue
            ratio, extra, over = value / base, value - base, value - reader
            faults = []
            if extra > args.extra:
                faults.append(f"+{extra:.2f} > +{args.extra}")
            if variant in RATIO_VARIANTS and ratio > args.bound:
                faults.append(f"{ratio:.3f}× > {args.bound}×")
            if over > args.over_reader:
                faults.append(f"{over:+.2f} over Reader::get > +{args.over_reader}")
            failed |= bool(faults)
            bound = f"bounds +{args.extra}" + (f", {args.bound}×" if variant in RATIO_VARIANTS else "")
            verdict = "FAIL" if faults else "ok"
            detail = f" ({'; '.join(faults)})" if faults else ""
            lines.append(f"{verdict}: {path:<16} {variant:<15} {value:6.2f} Ir = {ratio:.3f}× {BASELINE} "
                         f"({base:.2f}), {extra:+.2f} per lookup, {over:+.2f} vs Reader::get; {bound}{detail}")
    return lines, failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n1", type=int, default=100, help="iterations of the short run")
    parser.add_argument("--n2", type=int, default=1100, help="iterations of the long run")
    parser.add_argument("--jobs", type=int, default=2, help="valgrind processes at once")
    parser.add_argument("--bound", type=float, default=BOUND,
                        help="most a checked lookup may cost in the state and visit loops, × fixed array")
    parser.add_argument("--extra", type=float, default=EXTRA,
                        help="most instructions per lookup a checked lookup may add to the fixed array's")
    parser.add_argument("--over-reader", type=float, default=OVER_READER,
                        help="most instructions per lookup a checked lookup may add to Reader::get's")
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
          f"lookups; in brackets the ratio to `{BASELINE}` and the instructions per lookup over it):\n")
    print("\n".join(table(figures)))
    print()
    lines, failed = check(figures, args)
    print("\n".join(lines))
    for path, name, variants in INFORMATION:
        for variant in variants:
            value = figures.get(name, {}).get(variant)
            base = figures.get(BASELINE, {}).get(variant)
            reader = figures.get(READER, {}).get(variant)
            if value is not None and base and reader is not None:
                print(f"info: {path} {variant} {value:.2f} Ir = {value / base:.3f}× {BASELINE}, "
                      f"{value - base:+.2f} per lookup, {value - reader:+.2f} vs Reader::get (not checked)")
    print(f"\n(build {built - started:.0f} s, measurement {time.monotonic() - built:.0f} s)")
    if args.json:
        bounds = {"ratio": args.bound, "ratio_variants": sorted(RATIO_VARIANTS), "extra": args.extra,
                  "over_reader": args.over_reader}
        checked = [{"path": path, "contender": name, "variants": variants} for path, name, variants in CHECKED]
        args.json.write_text(json.dumps({"n1": args.n1, "n2": args.n2, "batch": BATCH, "figures": figures,
                                         "checked": checked, "bounds": bounds}, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
