#!/usr/bin/env python3
"""Turns criterion's and callgrind's results into the tables of docs/benchmarks.md.

Lookup (one thread, hot cache) is reported over several runs. A *run* is one
process of

    cargo bench -p procnotify-benches --bench lookup -- \
        --warm-up-time 1 --measurement-time 2 --save-baseline lookup-run<k>

(30 samples per benchmark, criterion's median over them is the run's
figure; every contender of the three lookup groups is measured once per run,
so each run's ratios to `fixed_array` come from the same process). `--runs N`
makes N runs (k = 1 .. N) before reporting; without it the script reads
whatever `lookup-run*` baselines exist. For each contender it prints the
median and the min-max over the runs of (its time ÷ `fixed_array`'s time in
the same run), and of its time per lookup.

The other groups (contention, false_sharing, growth) are read from the last
`cargo bench` (criterion's `new` results, one run), and memory from
`memory.json` (written by benches/growth.rs). Instruction counts come from
`callgrind.json` (written by `scripts/callgrind.py --json`), all in the
criterion directory.

    python3 scripts/bench-report.py --runs 5                # 5 lookup runs, then print
    python3 scripts/bench-report.py                         # print from existing results
    python3 scripts/bench-report.py --write docs/benchmarks.md

`--write` replaces the text between the `<!-- bench-report:begin -->` and
`<!-- bench-report:end -->` markers. The criterion directory is
$CRITERION_HOME, else $CARGO_TARGET_DIR/criterion, else target/criterion
(criterion's own rule); `--dir` overrides it. Python 3.11, stdlib only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

BEGIN = "<!-- bench-report:begin -->"
END = "<!-- bench-report:end -->"

TABLE = "procnotify_table"
READER = "procnotify_reader"
FROM_DPC = "procnotify_from_dpc"
PEERS = ["rwlock_vec", "mutex_vec", "boxcar_vec", "thread_local", "arc_swap_vec"]
LOOKUP_CONTENDERS = ["fixed_array", TABLE, READER, FROM_DPC, *PEERS]
RUN_PREFIX = "lookup-run"
# The instruction counts before the flat index (fixed array, table,
# the ratio as first reported).
BEFORE = {"lookup_by_index": (14.4, 24.3, 1.68), "lookup_own_slot": (16.1, 25.1, 1.56),
          "lookup_own_slot_visit": (10.1, 19.1, 1.89)}
GROWERS = [TABLE, "rwlock_vec", "mutex_vec", "boxcar_vec", "arc_swap_vec"]

LOOKUP_TARGET = 1.25
CONTENTION_TARGET = 10.0
GROWING_TARGET = 0.90


def criterion_dir() -> Path:
    if home := os.environ.get("CRITERION_HOME"):
        return Path(home)
    return Path(os.environ.get("CARGO_TARGET_DIR", "target")) / "criterion"


def load(root: Path, baseline: str = "new") -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """full_id -> median nanoseconds per element, and its 95% confidence interval."""
    results: dict[str, float] = {}
    intervals: dict[str, tuple[float, float]] = {}
    for bench in root.glob(f"**/{baseline}/benchmark.json"):
        meta = json.loads(bench.read_text())
        estimates = json.loads((bench.parent / "estimates.json").read_text())
        elements = (meta.get("throughput") or {}).get("Elements", 1)
        median = estimates["median"]
        results[meta["full_id"]] = median["point_estimate"] / elements
        bounds = median["confidence_interval"]
        intervals[meta["full_id"]] = (bounds["lower_bound"] / elements, bounds["upper_bound"] / elements)
    return results, intervals


def lookup_runs(root: Path) -> list[dict[str, float]]:
    """Each saved lookup run's medians (ns per lookup), in run order."""
    names = sorted({p.name for p in root.glob(f"lookup_*/*/{RUN_PREFIX}*")},
                   key=lambda name: int(name.removeprefix(RUN_PREFIX) or 0))
    return [load(root, name)[0] for name in names]


def make_runs(count: int) -> None:
    """Runs the lookup benchmark `count` times, saving run k as lookup-run<k>."""
    for k in range(1, count + 1):
        command = ["cargo", "bench", "-p", "procnotify-benches", "--bench", "lookup", "--", "--warm-up-time", "1",
                   "--measurement-time", "2", "--save-baseline", f"{RUN_PREFIX}{k}"]
        print(f"run {k}/{count}: {' '.join(command)}", file=sys.stderr)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def spread(values: list[float], fmt) -> str:
    """`median (min–max)` of `values`."""
    if not values:
        return "n/a"
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}–{fmt(max(values))})"


def fmt_ns(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.2f} ns"


def verdict(met: bool, miss: str) -> str:
    return "**met**" if met else f"**missed** {miss}"


class Report:
    def __init__(self, results: dict[str, float], intervals: dict[str, tuple[float, float]], memory: dict | None,
                 runs: list[dict[str, float]], icount: dict | None):
        self.runs = runs
        self.icount = icount
        self.r = results
        self.ci = intervals
        self.memory = memory
        self.lines: list[str] = []
        self.verdicts: list[tuple[str, str, str]] = []

    def get(self, full_id: str) -> float | None:
        return self.r.get(full_id)

    def out(self, line: str = "") -> None:
        self.lines.append(line)

    def lookup(self) -> None:
        modes = [
            ("lookup_by_index", "by index"),
            ("lookup_own_slot", "own slot (read)"),
            ("lookup_own_slot_visit", "own slot + visit"),
        ]
        runs = self.runs or [self.r]
        self.out("### 1. Lookup, one thread, hot cache")
        self.out()
        self.out(f"Time per lookup as a ratio to `fixed_array` in the same run: median (min–max) over {len(runs)} "
                 "run(s); below it the time per lookup, median (min–max). `procnotify_from_dpc` is the DPC "
                 "routine's path (no lookup), in the own slot + visit column.")
        self.out()
        self.out("| contender | " + " | ".join(label for _, label in modes) + " |")
        self.out("|---|" + "---:|" * len(modes))
        for name in LOOKUP_CONTENDERS:
            cells = []
            for group, _ in modes:
                pairs = [(run[f"{group}/{name}"], run[f"{group}/fixed_array"]) for run in runs
                         if f"{group}/{name}" in run and f"{group}/fixed_array" in run]
                if not pairs:
                    cells.append("n/a")
                    continue
                ratios = spread([v / base for v, base in pairs], lambda x: f"{x:.2f}×")
                times = spread([v for v, _ in pairs], lambda x: f"{x:.2f}")
                cells.append(f"{ratios}<br>{times} ns")
            self.out(f"| `{name}` | " + " | ".join(cells) + " |")
        self.out()
        for group, label in modes:
            for name in (TABLE, READER):
                ratios = [run[f"{group}/{name}"] / run[f"{group}/fixed_array"] for run in runs
                          if f"{group}/{name}" in run and f"{group}/fixed_array" in run]
                if ratios:
                    self.verdicts.append((f"1. lookup, {label}, `{name}`: time ÷ fixed array (report only; the bound "
                                          "is on instructions)",
                                          spread(ratios, lambda x: f"{x:.2f}×") + f" over {len(ratios)} runs",
                                          "reported"))

    def instructions(self) -> None:
        if not self.icount:
            return
        figures = self.icount["figures"]
        modes = [("by_index", "lookup_by_index", "lookup by index"), ("own_slot", "lookup_own_slot", "own slot"),
                 ("own_slot_visit", "lookup_own_slot_visit", "own slot + visit")]
        self.out("### 1b. Instructions per lookup (callgrind)")
        self.out()
        self.out("From `scripts/callgrind.py`: the same loop functions as the timings, instructions per lookup "
                 "(deterministic: the machine's load does not change them); ratio to `fixed_array` in brackets.")
        self.out()
        self.out("| contender | " + " | ".join(label for _, _, label in modes) + " |")
        self.out("|---|" + "---:|" * len(modes))
        for name in LOOKUP_CONTENDERS:
            if name not in figures:
                continue
            cells = []
            for variant, _, _ in modes:
                value, base = figures[name].get(variant), figures.get("fixed_array", {}).get(variant)
                cells.append("n/a" if value is None or not base else f"{value:.2f} ({value / base:.2f}×)")
            self.out(f"| `{name}` | " + " | ".join(cells) + " |")
        self.out()
        self.out("Before and after (before: the previous, segmented table with its directory; after: "
                 "this run):")
        self.out()
        self.out("| operation | fixed array before | procnotify before | ratio before | fixed array now | "
                 "`Table::get` now | ratio | `Reader::get` now | ratio |")
        self.out("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for variant, group, label in modes:
            fixed_before, table_before, ratio_before = BEFORE[group]
            base = figures.get("fixed_array", {}).get(variant)
            get, reader = figures.get(TABLE, {}).get(variant), figures.get(READER, {}).get(variant)
            if base and get and reader:
                self.out(f"| {label} | {fixed_before} | {table_before} | {ratio_before:.2f}× | "
                         f"{base:.2f} | {get:.2f} | {get / base:.2f}× | {reader:.2f} | {reader / base:.2f}× |")
        self.out()
        base = figures.get("fixed_array", {}).get("by_index")
        for name in (TABLE, READER):
            value = figures.get(name, {}).get("by_index")
            if base and value:
                ratio = value / base
                self.verdicts.append((f"1. lookup by index, `{name}`: ≤ 1.25× fixed array in instructions",
                                      f"{ratio:.3f}× ({value:.2f} ÷ {base:.2f})",
                                      verdict(ratio <= LOOKUP_TARGET, f"({(ratio / LOOKUP_TARGET - 1) * 100:.1f}% over)")))

    def contention(self) -> None:
        if not any(k.startswith("contention_") for k in self.r):
            return
        self.out("### 2. Reads under contention")
        self.out()
        self.out("Time per read per thread (reads/s per thread = 1 / time). "
                 "`steady`: one reader per core; `steady_1` / `growing` / `spin control`: cores − 1 readers, "
                 "the last two with one more thread on the remaining core.")
        self.out()
        self.out("| contender | steady | table's reads/s ÷ contender's | steady_1 | growing | "
                 "growing ÷ steady_1 throughput |")
        self.out("|---|---:|---:|---:|---:|---:|")
        table_steady = self.get(f"contention_steady/{TABLE}")
        for name in LOOKUP_CONTENDERS:
            steady = self.get(f"contention_steady/{name}")
            s1, grow = self.get(f"contention_steady_1/{name}"), self.get(f"contention_growing/{name}")
            if steady is None and s1 is None and grow is None:
                continue
            speedup = f"{steady / table_steady:.2f}×" if steady and table_steady else "n/a"
            kept = f"{s1 / grow * 100:.0f}%" if s1 and grow else "n/a"
            self.out(f"| `{name}` | {fmt_ns(steady) if steady else 'n/a'} | {speedup} | "
                     f"{fmt_ns(s1) if s1 else 'n/a'} | {fmt_ns(grow) if grow else 'n/a'} | {kept} |")
        spin, s1 = self.get(f"contention_spin_control/{TABLE}"), self.get(f"contention_steady_1/{TABLE}")
        if spin and s1:
            self.out(f"| `{TABLE}`, spin control | | | {fmt_ns(s1)} | {fmt_ns(spin)} | {s1 / spin * 100:.0f}% |")
        self.out()
        rw = self.get("contention_steady/rwlock_vec")
        if rw and table_steady:
            ratio = rw / table_steady
            self.verdicts.append(("2. reads/s per thread ≥ 10× `RwLock<Vec<T>>` (one reader per core)",
                                  f"{ratio:.1f}×",
                                  verdict(ratio >= CONTENTION_TARGET,
                                          f"by {(1 - ratio / CONTENTION_TARGET) * 100:.0f}%")))
        grow = self.get(f"contention_growing/{TABLE}")
        if grow and s1:
            kept = s1 / grow
            note = ""
            if spin:
                note = f"; spin control keeps {s1 / spin * 100:.0f}%, growing ÷ spin control = {spin / grow * 100:.0f}%"
            self.verdicts.append(("2. throughput while growing ≥ 90% of steady state", f"{kept * 100:.0f}%{note}",
                                  verdict(kept >= GROWING_TARGET,
                                          f"by {(GROWING_TARGET - kept) * 100:.0f} points")))

    def false_sharing(self) -> None:
        padded, unpadded = self.get("false_sharing/padded_slot"), self.get("false_sharing/unpadded")
        if not padded or not unpadded:
            return
        self.out("### 2b. False sharing")
        self.out()
        self.out("| slots | time per bump per thread | ratio to padded |")
        self.out("|---|---:|---:|")
        self.out(f"| padded (`Slot`, 128-byte aligned) | {fmt_ns(padded)} | 1.00× |")
        self.out(f"| unpadded (`#[repr(C)]` packed `AtomicU64`s) | {fmt_ns(unpadded)} | {unpadded / padded:.2f}× |")
        self.out()
        self.verdicts.append(("3. false sharing: unpadded ÷ padded (report only)", f"{unpadded / padded:.2f}×", "reported"))

    def growth(self) -> None:
        g = "growth_add_start"
        base = self.get(f"{g}/alloc_one_slot")
        if not base:
            return
        self.out("### 3. Growth")
        self.out()
        self.out("Per add, as a ratio to allocating one zeroed slot (`alloc_one_slot`, "
                 f"{fmt_ns(base)}) measured in the same run.")
        self.out()
        self.out("| operation | per add | ratio to one slot allocation |")
        self.out("|---|---:|---:|")
        rows = [
            ("table: AddStart 1 → 2048 on a fresh table (amortised)", f"{g}/table_bring_up"),
            ("table: first add of segment 8..16 (allocates 8 slots)", f"{g}/table_first_add/8"),
            ("table: first add of segment 1024..2048 (allocates 1024 slots)", f"{g}/table_first_add/1024"),
            ("table: add 9 (segment allocated)", f"{g}/table_add_in_segment/9"),
            ("table: add 1025 (segment allocated)", f"{g}/table_add_in_segment/1025"),
            ("table: fill 8..16 holding 8 (amortised)", f"{g}/table_fill_segment/8"),
            ("table: fill 1024..2048 holding 1024 (amortised)", f"{g}/table_fill_segment/1024"),
            ("`Vec`: push at len = capacity = 8 (realloc + copy 8)", f"{g}/vec_push_full/8"),
            ("`Vec`: push at len = capacity = 1024 (realloc + copy 1024)", f"{g}/vec_push_full/1024"),
            ("`Vec`: fill 8..16 (amortised)", f"{g}/vec_fill/8"),
            ("`Vec`: fill 1024..2048 (amortised)", f"{g}/vec_fill/1024"),
        ]
        for label, key in rows:
            value = self.get(key)
            if value is not None:
                self.out(f"| {label} | {fmt_ns(value)} | {value / base:.2f}× |")
        self.out()
        in9, in1025 = self.get(f"{g}/table_add_in_segment/9"), self.get(f"{g}/table_add_in_segment/1025")
        f8, f1024 = self.get(f"{g}/table_fill_segment/8"), self.get(f"{g}/table_fill_segment/1024")
        first8, first1024 = self.get(f"{g}/table_first_add/8"), self.get(f"{g}/table_first_add/1024")
        if in9 and in1025 and f8 and f1024:
            worst = ""
            if first8 and first1024:
                worst = (f"; the one add per segment that allocates it costs O(segment): "
                         f"{fmt_ns(first8)} for 8 slots, {fmt_ns(first1024)} for 1024")
            self.verdicts.append((
                "4. O(1) per add, no copying of existing slots",
                f"add at 1025 ÷ add at 9 = {in1025 / in9:.2f}×; amortised per add, 1024..2048 ÷ 8..16 = "
                f"{f1024 / f8:.2f}×{worst}",
                verdict(in1025 / in9 <= 1.5 and f1024 / f8 <= 1.5, "(per-add cost grows with the table)")))

        c_style, driver = self.get("growth_bring_up_2048/c_style_fixed_array"), \
            self.get("growth_bring_up_2048/procnotify_driver")
        if c_style and driver:
            self.out("Bring-up of 2048 processors in the simulator (boot 1, load, 2047 hot-adds, unload):")
            self.out()
            self.out("| driver | time | ratio |")
            self.out("|---|---:|---:|")
            self.out(f"| C-style callback, array of 2048 preallocated (baseline) | {fmt_ns(c_style)} | 1.00× |")
            self.out(f"| procnotify `Driver<SimOs>` | {fmt_ns(driver)} | {driver / c_style:.2f}× |")
            self.out()
            self.verdicts.append(("4. bring-up of 2048 processors in the simulator (report only)",
                                  f"{fmt_ns(driver)}, {driver / c_style:.2f}× the C-style baseline", "reported"))

    def memory_section(self) -> None:
        m = self.memory
        if not m:
            return
        self.out("### 4. Memory")
        self.out()
        slot, fixed, overhead = m["slot_bytes"], m["fixed_array_bytes"], m["segment_overhead"]
        self.out(f"Memory of the driver's table with a reported maximum of {m['max']} (slot = {slot} B; index = 8 B × "
                 f"{m['max']}; each segment is one 128-byte-aligned pool request of its slots + {overhead} B; "
                 f"a preallocated array of {m['max']} = {fixed} B of slots, {m['fixed_array_pool_bytes']} B from "
                 "the pool):")
        self.out()
        self.out("Each present count twice: all present when the driver loaded (the table's first segment holds "
                 "them, rounded up to a power of two: the driver's case), and one present at load with the rest "
                 "hot-added one by one (a segment per doubling: the worst case, and the layout before the first "
                 "segment was sized).")
        self.out()
        self.out("| present | at load | slots | slots ÷ present | slot bytes | index bytes | segments | pool bytes | "
                 "pool ÷ slot bytes | slot pool bytes ÷ slot bytes |")
        self.out("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")

        def slot_pool(r: dict) -> int:
            """Pool bytes of the slots alone: each segment's slots plus its request overhead."""
            return r["slot_bytes"] + r["segments"] * overhead

        for row in m["sweep"]:
            self.out(f"| {row['present']} | {row.get('at_load', 1)} | {row['slots']} | "
                     f"{row['slots'] / row['present']:.2f} | "
                     f"{row['slot_bytes']} | {row['index_bytes']} | {row['segments']} | {row['pool_bytes']} | "
                     f"{row['pool_bytes'] / row['slot_bytes']:.2f} | {slot_pool(row) / row['slot_bytes']:.2f} |")
        self.out()
        worst = max(row["slots"] / row["present"] for row in m["sweep"])
        met = all(row["pool_bytes"] <= 2 * row["present"] * slot + row["index_bytes"] + 12 * overhead
                  for row in m["sweep"])

        def four(at_load: int) -> str:
            r = next((r for r in m["sweep"] if r["present"] == 4 and r.get("at_load", 1) == at_load), None)
            if r is None:
                return "n/a"
            return (f"{r['pool_bytes']} B from the pool ({r['slot_bytes']} B slots in {r['segments']} "
                    f"segment(s), {slot_pool(r) / r['slot_bytes']:.2f}× the slots; {r['index_bytes']} B index)")
        self.verdicts.append((
            "4/5. memory ≤ 2× present slots + 8 B × reported maximum + ≤ 12 segment overheads",
            f"worst slots ÷ present {worst:.2f}; 4 present at load: {four(4)}; 1 at load, 3 hot-added: {four(1)}",
            verdict(met and worst <= 2.0, "")))

    def summary(self) -> None:
        self.out("### Verdicts")
        self.out()
        self.out("| target | measured | verdict |")
        self.out("|---|---|---|")
        for target, measured, outcome in self.verdicts:
            self.out(f"| {target} | {measured} | {outcome} |")
        self.out()


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        rustc = "rustc (unknown)"
    return f"{model}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}; {rustc}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=None, help="criterion output directory")
    parser.add_argument("--write", type=Path, default=None, help="Markdown file whose marked section to replace")
    parser.add_argument("--runs", type=int, default=0, help="make this many lookup runs first")
    args = parser.parse_args()
    root = args.dir or criterion_dir()
    if args.runs:
        make_runs(args.runs)
    results, intervals = load(root)
    if not results:
        print(f"no criterion results under {root}; run `cargo bench` first", file=sys.stderr)
        return 1
    memory_path = root / "memory.json"
    memory = json.loads(memory_path.read_text()) if memory_path.exists() else None
    icount_path = root / "callgrind.json"
    icount = json.loads(icount_path.read_text()) if icount_path.exists() else None

    report = Report(results, intervals, memory, lookup_runs(root), icount)
    report.out(f"Machine: {machine()}.")
    report.out()
    report.lookup()
    report.instructions()
    report.contention()
    report.false_sharing()
    report.growth()
    report.memory_section()
    report.summary()
    text = "\n".join(report.lines)

    if args.write:
        doc = args.write.read_text()
        if BEGIN not in doc or END not in doc:
            print(f"{args.write} has no {BEGIN} ... {END} section", file=sys.stderr)
            return 1
        head, rest = doc.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        args.write.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
