#!/usr/bin/env python3
"""Loom mutation check: the loom models must be able to fail.

In a temporary copy of the workspace (never the working tree), weakens each
Release/Acquire of the table's lock-free code to Relaxed, one site at a time,
runs the loom models, and records which models fail (a failing model = the
mutation is caught). Prints a Markdown table "site | mutation | caught by" and
exits non-zero if any mutation is not caught, if a site's text is not found
exactly once (the list below is stale), or if the unmutated models fail.

Usage: python3 .ci/loom-mutations.py [--keep]
Environment: LOOM_MUTATIONS_TARGET_DIR (default:
<workspace>/target/loom-mutations), shared by every mutation so only
procnotify-core is rebuilt each time. Never point it at the target dir of the
ordinary loom run: cargo's freshness check is by modification time and does
not tell the copy from the working tree, so that run could reuse a mutated
build.

The sites are every non-Relaxed ordering on a loom-modelled atomic in
procnotify-core: `table/` (the link, the slot state, the writer token; the
token is declared in `table/control.rs`, the table's out-of-line state, and
used in `table/mod.rs` and `table/writer.rs`).
`lifecycle.rs` is a pure function (no atomics); `engine.rs` uses only Relaxed
(statistics and the recorded status, documented there). `driver.rs`'s
`DriverCell` state word uses `core` atomics, which loom does not see; it is
not modelled (see docs/reliability.md).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

CORE = "crates/procnotify-core/src"

# (file, site, exact text, weakened text)
SITES = [
    ("table/writer.rs", "links[i] store (Writer::get_or_insert)",
     "self.table.link(index).store(ptr::from_ref(slot).cast_mut(), Ordering::Release);",
     "self.table.link(index).store(ptr::from_ref(slot).cast_mut(), Ordering::Relaxed);"),
    ("table/reader.rs", "links[i] load (Reader::get, behind Table::get)",
     "let slot = entry.load(Ordering::Acquire);",
     "let slot = entry.load(Ordering::Relaxed);"),
    ("table/writer.rs", "Slot::state store (Writer::set_state)",
     "slot.state.store(state as u8, Ordering::Release);",
     "slot.state.store(state as u8, Ordering::Relaxed);"),
    ("table/slot.rs", "Slot::state load (Slot::state)",
     "SlotState::from_bits(self.state.load(Ordering::Acquire))",
     "SlotState::from_bits(self.state.load(Ordering::Relaxed))"),
    ("table/mod.rs", "writing swap (Table::writer)",
     "self.control().writing.swap(true, Ordering::Acquire)",
     "self.control().writing.swap(true, Ordering::Relaxed)"),
    ("table/writer.rs", "writing store (Writer::drop)",
     "self.table.control().writing.store(false, Ordering::Release);",
     "self.table.control().writing.store(false, Ordering::Relaxed);"),
]


def workspace_files(root):
    out = subprocess.run(
        ["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True, capture_output=True).stdout
    return [p for p in out.decode().split("\0") if p]


def copy_workspace(root, dest):
    for rel in workspace_files(root):
        src = os.path.join(root, rel)
        if not os.path.isfile(src):
            continue  # deleted in the working tree
        dst = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        # Fresh modification times: cargo decides freshness by mtime, and a
        # target dir shared across runs may hold a mutated build newer than
        # the working tree's files.
        shutil.copy(src, dst)
    # The models need nothing from procnotify-sim (a dev-dependency for the
    # doc-tests): drop it in the copy so each mutation rebuilds one crate.
    manifest = os.path.join(dest, "crates/procnotify-core/Cargo.toml")
    with open(manifest) as f:
        text = f.read()
    text = re.sub(r"\nprocnotify-sim = \{[^\n]*\}\n", "\n", text)
    with open(manifest, "w") as f:
        f.write(text)


def run_models(copy, target):
    """Builds the loom test binary, then runs each model in its own process
    (a failing loom model can abort its process while unwinding, which must
    not hide the other models' results). Returns {model: "ok" | "FAILED"}."""
    env = dict(os.environ, RUSTFLAGS="--cfg procnotify_loom", CARGO_TARGET_DIR=target)
    env.pop("LOOM_MAX_PREEMPTIONS", None)  # exhaustive: the floors apply
    build = subprocess.run(
        ["cargo", "test", "-p", "procnotify-core", "--lib", "--release", "--no-run",
         "--message-format=json"],
        cwd=copy, env=env, capture_output=True, text=True)
    binary = None
    for line in build.stdout.splitlines():
        if not line.startswith("{"):
            continue
        message = json.loads(line)
        if (message.get("reason") == "compiler-artifact" and message.get("executable")
                and message["target"]["name"] == "procnotify_core" and message["profile"]["test"]):
            binary = message["executable"]
    if build.returncode != 0 or binary is None:
        sys.stderr.write(build.stderr[-4000:])
        raise SystemExit("loom-mutations: the models did not build")
    listing = subprocess.run([binary, "--list", "loom"], env=env, capture_output=True, text=True, check=True)
    models = [line[: -len(": test")] for line in listing.stdout.splitlines() if line.endswith(": test")]
    if not models:
        raise SystemExit("loom-mutations: no loom models found")
    results, logs = {}, {}
    for model in models:
        proc = subprocess.run([binary, "--exact", model, "--test-threads=1"],
                              env=env, capture_output=True, text=True)
        name = model.rsplit("::", 1)[-1]
        results[name] = "ok" if proc.returncode == 0 else "FAILED"
        logs[name] = proc.stdout + proc.stderr
    return results, logs


def reason(log):
    """The first panic message of a failed model, shortened."""
    match = re.search(r"panicked at [^\n]*:\n\s*\n?([^\n]+)", log)
    if not match:
        return "failed"
    message = match.group(1).strip()
    return "causality violation" if message.startswith("Causality violation") else message[:60]


def main():
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    target = os.environ.get("LOOM_MUTATIONS_TARGET_DIR", os.path.join(root, "target", "loom-mutations"))
    started = time.time()
    copy = tempfile.mkdtemp(prefix="procnotify-loom-mutations-")
    try:
        copy_workspace(root, copy)
        baseline, log = run_models(copy, target)
        failed = [name for name, status in baseline.items() if status != "ok"]
        if failed:
            for name in failed:
                sys.stderr.write(log[name][-3000:])
            raise SystemExit(f"loom-mutations: unmutated models fail: {failed}")
        print(f"baseline: {len(baseline)} models pass ({time.time() - started:.0f}s)", flush=True)

        rows, missed = [], 0
        for file, site, exact, weak in SITES:
            path = os.path.join(copy, CORE, file)
            with open(path) as f:
                original = f.read()
            if original.count(exact) != 1:
                raise SystemExit(f"loom-mutations: `{exact}` is not in {file} exactly once: update SITES")
            with open(path, "w") as f:
                f.write(original.replace(exact, weak))
            try:
                results, logs = run_models(copy, target)
            finally:
                with open(path, "w") as f:
                    f.write(original)
            caught = sorted(name for name, status in results.items() if status != "ok")
            why = {name: reason(logs[name]) for name in caught}
            missed += not caught
            mutation = re.search(r"Ordering::(\w+)", exact).group(1) + " -> Relaxed"
            rows.append((f"{file}: {site}", mutation, "; ".join(f"`{c}` ({why[c]})" for c in caught) or "**NOT CAUGHT**"))
            print(f"  {site}: {'caught by ' + ', '.join(caught) if caught else 'NOT CAUGHT'} "
                  f"({time.time() - started:.0f}s)", flush=True)

        print()
        print("| site | mutation | caught by |")
        print("|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        print()
        print(f"loom-mutations: {len(rows) - missed}/{len(rows)} mutations caught "
              f"in {time.time() - started:.0f}s")
        return 1 if missed else 0
    finally:
        if "--keep" in sys.argv:
            print(f"copy kept in {copy}")
        else:
            shutil.rmtree(copy, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
