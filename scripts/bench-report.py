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

The other timed groups (contention, false_sharing, growth) are reported the
same way: `--group-runs N` makes N runs, run k being one process of each of

    cargo bench -p procnotify-benches --bench <contention|false_sharing|growth> -- \
        --warm-up-time 1 --measurement-time 2 --save-baseline groups-run<k>

and every figure is the median (min-max) over the runs, each ratio (to
`fixed_array`, to the table, to `alloc_one_slot`, to the padded slot, to the
C-style bring-up) taken within one run; a per-run table shows the
contention figures of each run side by side. Without saved `groups-run*`
baselines, the last `cargo bench` (criterion's `new` results) is one run.
Both `--runs` and `--group-runs` record the load average before and after
each run (`<prefix>-load.json`) and the report prints it. Memory comes from
`memory.json` (written by benches/growth.rs). Instruction counts come from
`callgrind.json` (written by `scripts/callgrind.py --json`), all in the
criterion directory.

    python3 scripts/bench-report.py --runs 5                # 5 lookup runs, then print
    python3 scripts/bench-report.py --group-runs 5          # 5 runs of the other groups, then print
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
CONTEXT = "procnotify_context"
DRIVER = "procnotify_driver"
FROM_DPC = "procnotify_from_dpc"
PEERS = ["rwlock_vec", "mutex_vec", "boxcar_vec", "thread_local", "arc_swap_vec"]
LOOKUP_CONTENDERS = ["fixed_array", TABLE, READER, CONTEXT, DRIVER, FROM_DPC, *PEERS]
# The lookup loops: callgrind's variant, criterion's group, the label.
MODES = [("by_index", "lookup_by_index", "by index: state"),
         ("by_index_plain", "lookup_by_index_plain", "by index: plain field"),
         ("own_slot", "lookup_own_slot", "own slot: state"),
         ("own_slot_plain", "lookup_own_slot_plain", "own slot: plain field"),
         ("own_slot_visit", "lookup_own_slot_visit", "own slot + visit")]
# Instructions per lookup of the public paths before the table's and the
# context's mutable state moved out of line (`Table` and `Context` held
# atomics, so a loop over `&Table` / `&Context` reloaded the index pointer and
# capacity after each lookup), measured with scripts/callgrind.py on the
# harness of commit dd8c9eb (the same loops, the same fixed array).
BEFORE_OUT_OF_LINE = {("procnotify_table", "by_index"): 18.28, ("procnotify_table", "own_slot"): 19.22,
                      ("procnotify_table", "own_slot_visit"): 13.17, ("procnotify_table", "by_index_plain"): 12.39,
                      ("procnotify_table", "own_slot_plain"): 13.20, ("procnotify_context", "own_slot_plain"): 13.20,
                      ("procnotify_context", "own_slot_visit"): 13.17, ("procnotify_driver", "own_slot_plain"): 13.22,
                      ("procnotify_driver", "own_slot_visit"): 13.19}
RUN_PREFIX = "lookup-run"
# The other timed groups, run together: run k of each is saved as
# `groups-run<k>`.
GROUP_BENCHES = ["contention", "false_sharing", "growth"]
GROUP_PREFIX = "groups-run"
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


def saved_runs(root: Path, prefix: str) -> list[dict[str, float]]:
    """Each saved run `<prefix><k>`'s medians (ns per element), in run order."""
    names = sorted({p.parent.name for p in root.glob(f"**/{prefix}*/benchmark.json")},
                   key=lambda name: int(name.removeprefix(prefix) or 0))
    return [load(root, name)[0] for name in names]


def lookup_runs(root: Path) -> list[dict[str, float]]:
    """Each saved lookup run's medians (ns per lookup), in run order."""
    return saved_runs(root, RUN_PREFIX)


def make_runs(root: Path, benches: list[str], prefix: str, count: int) -> None:
    """Runs each of `benches` `count` times, saving run k as `<prefix><k>`,
    and records the load average before and after each run in
    `<root>/<prefix>-load.json`."""
    record = []
    for k in range(1, count + 1):
        before = os.getloadavg()
        for bench in benches:
            command = ["cargo", "bench", "-p", "procnotify-benches", "--bench", bench, "--", "--warm-up-time", "1",
                       "--measurement-time", "2", "--save-baseline", f"{prefix}{k}"]
            print(f"run {k}/{count}: {' '.join(command)}", file=sys.stderr)
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        record.append({"run": k, "load_before": list(before), "load_after": list(os.getloadavg())})
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{prefix}-load.json").write_text(json.dumps(record, indent=2) + "\n")


def load_note(root: Path, prefix: str) -> str | None:
    """The load averages recorded by `make_runs`, one clause per run."""
    path = root / f"{prefix}-load.json"
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    runs = "; ".join(f"run {r['run']}: {r['load_before'][0]:.2f} → {r['load_after'][0]:.2f}" for r in record)
    return (f"The machine's 1-minute load average (the benchmark's own threads included) before → after each run: "
            f"{runs}.")


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
                 runs: list[dict[str, float]], icount: dict | None, group_runs: list[dict[str, float]] | None = None,
                 notes: dict[str, str] | None = None):
        self.runs = runs
        # The contention, false sharing and growth runs; the last `cargo bench`
        # (one run) when none was saved.
        self.group_runs = group_runs or [results]
        self.notes = notes or {}
        self.icount = icount
        self.r = results
        self.ci = intervals
        self.memory = memory
        self.lines: list[str] = []
        self.verdicts: list[tuple[str, str, str]] = []

    def get(self, full_id: str) -> float | None:
        return self.r.get(full_id)

    def series(self, *ids: str, combine=None) -> list[float]:
        """Over the group runs that have every one of `ids`: the value of the
        first, or `combine` of all of them (a ratio in the same run)."""
        values = []
        for run in self.group_runs:
            found = [run.get(i) for i in ids]
            if all(v is not None and v > 0 for v in found):
                values.append(combine(*found) if combine else found[0])
        return values

    def over_runs(self) -> str:
        return f"median (min–max) over {len(self.group_runs)} run(s), each ratio taken within one run"

    def load_line(self, key: str) -> None:
        """The load averages recorded during the runs, as a paragraph."""
        if note := self.notes.get(key):
            self.out(note)
            self.out()

    def out(self, line: str = "") -> None:
        self.lines.append(line)

    def lookup(self) -> None:
        modes = [(group, label) for _, group, label in MODES]
        runs = self.runs or [self.r]
        self.out("### 1. Lookup, one thread, hot cache")
        self.out()
        self.out(f"Time per lookup as a ratio to `fixed_array` in the same run: median (min–max) over {len(runs)} "
                 "run(s); below it the time per lookup, median (min–max). `procnotify_context` is "
                 "`Context::current` on a `&Context` argument, `procnotify_driver` the same through "
                 "`Driver::context()`; `procnotify_from_dpc` is the DPC routine's path (no lookup), in the own "
                 "slot + visit column. Groups a run did not include show n/a."
                 )
        self.out()
        self.load_line("lookup")
        self.out("| contender | " + " | ".join(label for _, label in modes) + " |")
        self.out("|---|" + "---:|" * len(modes))
        for name in LOOKUP_CONTENDERS:
            if not any(f"{group}/{name}" in run for run in runs for group, _ in modes):
                continue
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
            for name in (TABLE, READER, CONTEXT, FROM_DPC):
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
        self.out("### 1b. Instructions per lookup (callgrind)")
        self.out()
        self.out("From `scripts/callgrind.py`: the same loop functions as the timings, instructions per lookup "
                 "(deterministic: the machine's load does not change them); in brackets the ratio to "
                 "`fixed_array` and the instructions per lookup over it (the figure that does not depend on the "
                 "loop around the lookup).")
        self.out()
        self.out("| contender | " + " | ".join(label for _, _, label in MODES) + " |")
        self.out("|---|" + "---:|" * len(MODES))
        for name in LOOKUP_CONTENDERS:
            if name not in figures:
                continue
            cells = []
            for variant, _, _ in MODES:
                value, base = figures[name].get(variant), figures.get("fixed_array", {}).get(variant)
                cells.append("n/a" if value is None or not base
                             else f"{value:.2f} ({value / base:.2f}×, {value - base:+.2f})")
            self.out(f"| `{name}` | " + " | ".join(cells) + " |")
        self.out()
        self.public_lookups(figures)
        self.out("Before the flat index (the previous, segmented table with its directory), against this run:")
        self.out()
        self.out("| operation | fixed array before | procnotify before | ratio before | fixed array now | "
                 "`Table::get` now | ratio | `Reader::get` now | ratio |")
        self.out("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for variant, group, label in MODES:
            if group not in BEFORE:
                continue
            fixed_before, table_before, ratio_before = BEFORE[group]
            base = figures.get("fixed_array", {}).get(variant)
            get, reader = figures.get(TABLE, {}).get(variant), figures.get(READER, {}).get(variant)
            if base and get and reader:
                self.out(f"| {label} | {fixed_before} | {table_before} | {ratio_before:.2f}× | "
                         f"{base:.2f} | {get:.2f} | {get / base:.2f}× | {reader:.2f} | {reader / base:.2f}× |")
        self.out()

    def public_lookups(self, figures: dict) -> None:
        """Each public lookup in each loop it is bounded in: now, against the
        fixed array and `Reader::get`, and before the out-of-line state."""
        bounds = self.icount.get("bounds") or {}
        checked = self.icount.get("checked") or []
        if not checked or not bounds:
            return
        extra, over, ratio_bound = bounds["extra"], bounds["over_reader"], bounds["ratio"]
        ratio_variants = set(bounds["ratio_variants"])
        labels = {variant: label for variant, _, label in MODES}
        self.out(f"Every public lookup, as `.ci/callgrind.sh` bounds it: at most +{extra} instructions per lookup "
                 f"over the fixed array, +{over} over `Reader::get` in the same loop, and {ratio_bound}× the fixed "
                 "array in the state and visit loops. \"Before\" is the same harness with `Table` and `Context` "
                 "holding their atomics inline.")
        self.out()
        self.out("| lookup | loop | instructions | × fixed array | over fixed array | over `Reader::get` | before | "
                 "before, over fixed array |")
        self.out("|---|---|---:|---:|---:|---:|---:|---:|")
        rows = [(c["path"], c["contender"], v, True) for c in checked for v in c["variants"]]
        rows += [("Driver::context().current() (not bounded)", DRIVER, v, False)
                 for v in ("own_slot_plain", "own_slot_visit")]
        verdicts: dict[str, list[tuple[str, bool]]] = {}
        for path, name, variant, bounded in rows:
            value = figures.get(name, {}).get(variant)
            base = figures.get("fixed_array", {}).get(variant)
            reader = figures.get(READER, {}).get(variant)
            if value is None or not base or reader is None:
                continue
            before = BEFORE_OUT_OF_LINE.get((name, variant))
            before_cells = f"{before:.2f} | {before - base:+.2f}" if before else "— | —"
            self.out(f"| `{path}` | {labels[variant]} | {value:.2f} | {value / base:.3f}× | {value - base:+.2f} | "
                     f"{value - reader:+.2f} | {before_cells} |")
            if bounded:
                ok = (round(value - base, 2) <= extra and round(value - reader, 2) <= over
                      and (variant not in ratio_variants or value / base <= ratio_bound))
                verdicts.setdefault(path, []).append(
                    (f"{labels[variant]} {value - base:+.2f} ({value / base:.3f}×, {value - reader:+.2f} vs reader)", ok))
        self.out()
        for path, results in verdicts.items():
            self.verdicts.append((f"1. `{path}`, every loop: ≤ +{extra} instructions over the fixed array, ≤ +{over} "
                                  f"over `Reader::get`, ≤ {ratio_bound}× in the state and visit loops",
                                  "; ".join(text for text, _ in results),
                                  verdict(all(ok for _, ok in results), "")))

    def contention(self) -> None:
        if not self.series(f"contention_steady/{TABLE}"):
            return
        ns = lambda x: fmt_ns(x)  # noqa: E731
        times = lambda x: f"{x:.2f}×"  # noqa: E731
        pct = lambda x: f"{x * 100:.0f}%"  # noqa: E731
        self.out("### 2. Reads under contention")
        self.out()
        self.out("Time per read per thread (reads/s per thread = 1 / time), "
                 f"{self.over_runs()}. `steady`: one reader per core, own slot + visit; `steady_1` / `growing` / "
                 "`spin control`: cores − 1 readers, the last two with one more thread on the remaining core "
                 "(a grower adding processors through the writer; a thread spinning on its own stack).")
        self.out()
        self.load_line("groups")
        self.out("| contender | steady | steady ÷ `fixed_array` | contender's time ÷ table's (table's reads/s ÷ "
                 "contender's) | steady_1 | growing | growing ÷ steady_1 throughput |")
        self.out("|---|---:|---:|---:|---:|---:|---:|")
        for name in LOOKUP_CONTENDERS:
            steady = self.series(f"contention_steady/{name}")
            s1, grow = self.series(f"contention_steady_1/{name}"), self.series(f"contention_growing/{name}")
            if not steady and not s1 and not grow:
                continue
            vs_fixed = self.series(f"contention_steady/{name}", "contention_steady/fixed_array", combine=lambda a, b: a / b)
            vs_table = self.series(f"contention_steady/{name}", f"contention_steady/{TABLE}", combine=lambda a, b: a / b)
            kept = self.series(f"contention_steady_1/{name}", f"contention_growing/{name}", combine=lambda a, b: a / b)
            self.out(f"| `{name}` | {spread(steady, ns)} | {spread(vs_fixed, times)} | {spread(vs_table, times)} | "
                     f"{spread(s1, ns)} | {spread(grow, ns)} | {spread(kept, pct)} |")
        spin = self.series(f"contention_spin_control/{TABLE}")
        spin_kept = self.series(f"contention_steady_1/{TABLE}", f"contention_spin_control/{TABLE}",
                                combine=lambda a, b: a / b)
        if spin:
            self.out(f"| `{TABLE}`, spin control | | | | {spread(self.series(f'contention_steady_1/{TABLE}'), ns)} | "
                     f"{spread(spin, ns)} | {spread(spin_kept, pct)} |")
        self.out()
        self.contention_per_run()
        rw = self.series("contention_steady/rwlock_vec", f"contention_steady/{TABLE}", combine=lambda a, b: a / b)
        if rw:
            self.verdicts.append(("2. reads/s per thread ≥ 10× `RwLock<Vec<T>>` (one reader per core)",
                                  f"{spread(rw, lambda x: f'{x:.1f}×')} over {len(rw)} runs",
                                  verdict(statistics.median(rw) >= CONTENTION_TARGET,
                                          f"(median {statistics.median(rw):.1f}×; see the per-run table)")))
        kept = self.series(f"contention_steady_1/{TABLE}", f"contention_growing/{TABLE}", combine=lambda a, b: a / b)
        if kept:
            note = ""
            if spin_kept:
                vs_spin = self.series(f"contention_spin_control/{TABLE}", f"contention_growing/{TABLE}",
                                      combine=lambda a, b: a / b)
                note = f"; spin control keeps {spread(spin_kept, pct)}, growing ÷ spin control {spread(vs_spin, pct)}"
            self.verdicts.append(("2. throughput while growing ≥ 90% of steady state",
                                  f"{spread(kept, pct)} over {len(kept)} runs{note}",
                                  verdict(statistics.median(kept) >= GROWING_TARGET,
                                          f"(median {statistics.median(kept) * 100:.0f}%)")))

    def contention_per_run(self) -> None:
        """One row per run: where the hypervisor put the two vCPUs shows in
        each run's figures together, which a median per column hides."""
        if len(self.group_runs) < 2:
            return
        self.out("Each run (the regime of the run shows in its row as a whole):")
        self.out()
        self.out("| run | table, 1 reader per core | `fixed_array`, same | `rwlock_vec`, same | RwLock ÷ table | "
                 "growing ÷ steady_1 (table) | spin control ÷ steady_1 | unpadded ÷ padded |")
        self.out("|---:|---:|---:|---:|---:|---:|---:|---:|")

        def cell(run: dict[str, float], a: str, b: str | None = None, fmt=fmt_ns) -> str:
            x, y = run.get(a), run.get(b) if b else 1.0
            return fmt(x / y) if x and y else "n/a"

        for k, run in enumerate(self.group_runs, 1):
            ratio = lambda x: f"{x:.2f}×"  # noqa: E731
            pct = lambda x: f"{x * 100:.0f}%"  # noqa: E731
            self.out(f"| {k} | {cell(run, f'contention_steady/{TABLE}')} | {cell(run, 'contention_steady/fixed_array')} | "
                     f"{cell(run, 'contention_steady/rwlock_vec')} | "
                     f"{cell(run, 'contention_steady/rwlock_vec', f'contention_steady/{TABLE}', ratio)} | "
                     f"{cell(run, f'contention_steady_1/{TABLE}', f'contention_growing/{TABLE}', pct)} | "
                     f"{cell(run, f'contention_steady_1/{TABLE}', f'contention_spin_control/{TABLE}', pct)} | "
                     f"{cell(run, 'false_sharing/unpadded', 'false_sharing/padded_slot', ratio)} |")
        self.out()

    def false_sharing(self) -> None:
        padded, unpadded = self.series("false_sharing/padded_slot"), self.series("false_sharing/unpadded")
        if not padded or not unpadded:
            return
        ratio = self.series("false_sharing/unpadded", "false_sharing/padded_slot", combine=lambda a, b: a / b)
        self.out("### 2b. False sharing")
        self.out()
        self.out(f"One thread per core bumping its own counter; {self.over_runs()}.")
        self.out()
        self.out("| slots | time per bump per thread | ratio to padded |")
        self.out("|---|---:|---:|")
        self.out(f"| padded (`Slot`, 128-byte aligned) | {spread(padded, fmt_ns)} | 1.00× |")
        self.out(f"| unpadded (`#[repr(C)]` packed `AtomicU64`s) | {spread(unpadded, fmt_ns)} | "
                 f"{spread(ratio, lambda x: f'{x:.2f}×')} |")
        self.out()
        self.verdicts.append(("3. false sharing: unpadded ÷ padded (report only)",
                              f"{spread(ratio, lambda x: f'{x:.2f}×')} over {len(ratio)} runs", "reported"))

    def growth(self) -> None:
        g = "growth_add_start"
        base = self.series(f"{g}/alloc_one_slot")
        if not base:
            return
        times = lambda x: f"{x:.2f}×"  # noqa: E731
        per_base = lambda key: self.series(key, f"{g}/alloc_one_slot", combine=lambda a, b: a / b)  # noqa: E731
        self.out("### 3. Growth")
        self.out()
        self.out("Per add, as a ratio to allocating one zeroed slot (`alloc_one_slot`, "
                 f"{spread(base, fmt_ns)}) measured in the same run; {self.over_runs()}.")
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
            values = self.series(key)
            if values:
                self.out(f"| {label} | {spread(values, fmt_ns)} | {spread(per_base(key), times)} |")
        self.out()
        ratio = lambda a, b: a / b  # noqa: E731
        late = self.series(f"{g}/table_add_in_segment/1025", f"{g}/table_add_in_segment/9", combine=ratio)
        fill = self.series(f"{g}/table_fill_segment/1024", f"{g}/table_fill_segment/8", combine=ratio)
        first8, first1024 = self.series(f"{g}/table_first_add/8"), self.series(f"{g}/table_first_add/1024")
        if late and fill:
            worst = ""
            if first8 and first1024:
                worst = (f"; the one add per segment that allocates it costs O(segment): "
                         f"{spread(first8, fmt_ns)} for 8 slots, {spread(first1024, fmt_ns)} for 1024")
            self.verdicts.append((
                "4. O(1) per add, no copying of existing slots",
                f"add at 1025 ÷ add at 9 = {spread(late, times)}; amortised per add, 1024..2048 ÷ 8..16 = "
                f"{spread(fill, times)}{worst}",
                verdict(statistics.median(late) <= 1.5 and statistics.median(fill) <= 1.5,
                        "(per-add cost grows with the table)")))

        c_style = self.series("growth_bring_up_2048/c_style_fixed_array")
        driver = self.series("growth_bring_up_2048/procnotify_driver")
        vs_c = self.series("growth_bring_up_2048/procnotify_driver", "growth_bring_up_2048/c_style_fixed_array",
                           combine=ratio)
        if c_style and driver:
            self.out("Bring-up of 2048 processors in the simulator (boot 1, load, 2047 hot-adds, unload):")
            self.out()
            self.out("| driver | time | ratio |")
            self.out("|---|---:|---:|")
            self.out(f"| C-style callback, array of 2048 preallocated (baseline) | {spread(c_style, fmt_ns)} | 1.00× |")
            self.out(f"| procnotify `Driver<SimOs>` | {spread(driver, fmt_ns)} | {spread(vs_c, times)} |")
            self.out()
            self.verdicts.append(("4. bring-up of 2048 processors in the simulator (report only)",
                                  f"{spread(driver, fmt_ns)}, {spread(vs_c, times)} the C-style baseline", "reported"))

    def memory_section(self) -> None:
        m = self.memory
        if not m:
            return
        self.out("### 4. Memory")
        self.out()
        slot, fixed, overhead = m["slot_bytes"], m["fixed_array_bytes"], m["segment_overhead"]
        self.out(f"Memory of the driver's table with a reported maximum of {m['max']} (slot = {slot} B; index = 8 B × "
                 f"{m['max']} after a fixed header, the table's writer state and the engine's counters; each segment is one 128-byte-aligned pool request of its slots + {overhead} B; "
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
            "4/5. memory ≤ 2× present slots + the index (8 B × reported maximum + its header) + ≤ 12 segment "
            "overheads",
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
    parser.add_argument("--group-runs", type=int, default=0,
                        help="make this many runs of contention, false_sharing and growth first")
    args = parser.parse_args()
    root = args.dir or criterion_dir()
    if args.runs:
        make_runs(root, ["lookup"], RUN_PREFIX, args.runs)
    if args.group_runs:
        make_runs(root, GROUP_BENCHES, GROUP_PREFIX, args.group_runs)
    results, intervals = load(root)
    if not results:
        print(f"no criterion results under {root}; run `cargo bench` first", file=sys.stderr)
        return 1
    memory_path = root / "memory.json"
    memory = json.loads(memory_path.read_text()) if memory_path.exists() else None
    icount_path = root / "callgrind.json"
    icount = json.loads(icount_path.read_text()) if icount_path.exists() else None

    notes = {key: note for key, prefix in (("lookup", RUN_PREFIX), ("groups", GROUP_PREFIX))
             if (note := load_note(root, prefix))}
    report = Report(results, intervals, memory, lookup_runs(root), icount, saved_runs(root, GROUP_PREFIX), notes)
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
