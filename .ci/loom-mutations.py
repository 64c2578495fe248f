#!/usr/bin/env python3
"""Loom mutation check: the loom models must be able to fail.

Every `Ordering::Release`, `Acquire`, `AcqRel` and `SeqCst` in the non-test
code of procnotify-core is a *site*. The script finds them all (comments,
strings, `#[cfg(test)]` modules and test-only files left out) and requires
each to be listed exactly once, either in SITES (it is weakened to
`Relaxed` and some loom model must fail) or in JUSTIFIED (with the written
reason loom cannot observe it). A site in neither list, or an entry whose
text is no longer in the code, fails the script: a new ordering cannot go
unchecked.

How: in a temporary copy of the workspace (never the working tree), each
listed site's ordering becomes `crate::sync::mutant(K, Ordering::X)`, which
is `Relaxed` when the environment variable PROCNOTIFY_MUTANT is K and `X`
otherwise. The models are built once; the unmutated run (no
PROCNOTIFY_MUTANT) must pass, then for each site the models are run with
PROCNOTIFY_MUTANT=K, each in its own process (a failing loom model can
abort while unwinding): the models named for the site first, stopping at
the first that fails, then, only if none did, every other model. Prints a
Markdown table "site | mutation | caught by" and exits non-zero if a
mutation is not caught, if the site lists are incomplete or stale, or if
the unmutated models fail.

Usage: python3 .ci/loom-mutations.py [--all] [--list] [--keep]
  --all   run every model against every mutation (the full table for
          docs/reliability.md) instead of stopping at the first catch
  --list  only check that the site lists are complete, print them, exit
  --keep  keep the temporary copy
Environment: LOOM_MUTATIONS_TARGET_DIR (default:
<workspace>/target/loom-mutations). Never point it at the target dir of the
ordinary loom run: cargo's freshness check is by modification time and does
not tell the copy from the working tree, so that run could reuse the
mutated build.
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
STRONG = ("Release", "Acquire", "AcqRel", "SeqCst")
ENV = "PROCNOTIFY_MUTANT"

# (file, site, exact text holding one non-Relaxed ordering, models expected
# to catch its weakening, tried first)
SITES = [
    ("table/writer.rs", "links[i] store (Writer::get_or_insert)",
     "self.table.link(index).store(ptr::from_ref(slot).cast_mut(), Ordering::Release);",
     ["loom_reader_sees_no_slot_or_a_whole_one"]),
    ("table/reader.rs", "links[i] load (Reader::get, behind Table::get)",
     "let slot = entry.load(Ordering::Acquire);",
     ["loom_reader_sees_no_slot_or_a_whole_one"]),
    ("table/writer.rs", "Slot::state store (Writer::set_state)",
     "slot.state.store(state as u8, Ordering::Release);",
     ["loom_reader_sees_starting_hooks_writes", "loom_reader_races_the_online_hook"]),
    ("table/slot.rs", "Slot::state load (Slot::state)",
     "SlotState::from_bits(self.state.load(Ordering::Acquire))",
     ["loom_reader_sees_starting_hooks_writes", "loom_reader_races_the_online_hook"]),
    ("table/mod.rs", "writing swap (Table::writer)",
     "self.control().writing.swap(true, Ordering::Acquire)",
     ["loom_successive_writers_same_segment"]),
    ("table/writer.rs", "writing store (Writer::drop)",
     "self.table.control().writing.store(false, Ordering::Release);",
     ["loom_successive_writers_same_segment"]),
    ("driver.rs", "state compare-exchange EMPTY -> BUSY (DriverCell::load)",
     "self.state.compare_exchange(EMPTY, BUSY, Ordering::Acquire, Ordering::Relaxed)",
     ["loom_cell_loads_and_unloads_race"]),
    ("driver.rs", "state store LOADED/EMPTY after the load (DriverCell::load)",
     "self.state.store(next, Ordering::Release);",
     ["loom_cell_loads_and_unloads_race"]),
    ("driver.rs", "state compare-exchange LOADED -> BUSY (DriverCell::unload)",
     "self.state.compare_exchange(LOADED, BUSY, Ordering::Acquire, Ordering::Relaxed)",
     ["loom_cell_loads_and_unloads_race"]),
    ("driver.rs", "state store LOADED on a refused unload (DriverCell::unload)",
     "self.state.store(LOADED, Ordering::Release);",
     ["loom_cell_unload_inside_the_callback_races_an_unload"]),
    ("driver.rs", "state store EMPTY after the unload (DriverCell::unload)",
     "self.state.store(EMPTY, Ordering::Release);",
     ["loom_cell_loads_and_unloads_race"]),
]

# (file, site, exact text, why loom cannot observe its weakening). Checked
# for completeness and staleness exactly like SITES, never mutated.
JUSTIFIED = []

MUTANT_FN = '''
/// Written by `.ci/loom-mutations.py` into its copy of the workspace only:
/// site `site`'s ordering, or `Relaxed` when the environment variable
/// PROCNOTIFY_MUTANT selects that site.
#[inline]
pub(crate) fn mutant(site: usize, ordering: Ordering) -> Ordering {
    static SELECTED: ::std::sync::OnceLock<usize> = ::std::sync::OnceLock::new();
    let selected = *SELECTED.get_or_init(|| {
        ::std::env::var("PROCNOTIFY_MUTANT").ok().and_then(|k| k.parse().ok()).unwrap_or(0)
    });
    if selected == site { Ordering::Relaxed } else { ordering }
}
'''


# ------------------------------------------------------------ finding sites

def blank(text, start, end):
    """`text` with [start, end) replaced by spaces (newlines kept)."""
    return text[:start] + re.sub(r"[^\n]", " ", text[start:end]) + text[end:]


def code_only(text):
    """The source with comments, string and char literals blanked out, every
    offset and line unchanged."""
    out, i, n = list(text), 0, len(text)

    def wipe(a, b):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            wipe(i, end)
            i = end
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            wipe(i, j)
            i = j
        elif (m := re.match(r'b?r(#*)"', text[i:i + 260])) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            close = '"' + m.group(1)
            end = text.find(close, i + m.end())
            end = n if end < 0 else end + len(close)
            wipe(i, end)
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            wipe(i, j + 1)
            i = j + 1
        elif c == "'" and (m := re.match(r"'(\\.[^']*|[^\\'])'", text[i:i + 12])):
            wipe(i, i + m.end())
            i += m.end()
        else:
            i += 1
    return "".join(out)


TEST_MOD = re.compile(r"#\[cfg\(([^\]]*)\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*([;{])")


def is_test_cfg(predicate):
    return re.search(r"\btest\b", predicate) is not None and "not(test)" not in predicate


def matching_brace(code, open_at):
    depth = 0
    for k in range(open_at, len(code)):
        if code[k] == "{":
            depth += 1
        elif code[k] == "}":
            depth -= 1
            if depth == 0:
                return k + 1
    raise SystemExit(f"loom-mutations: unbalanced braces after offset {open_at}")


def module_dir(rel):
    """Where the child modules of source file `rel` (relative to CORE) live."""
    base, name = os.path.split(rel)
    return base if name in ("lib.rs", "mod.rs") else os.path.join(base, name[:-3])


def non_test_code(root):
    """{file relative to CORE: (original text, code with comments, literals
    and test-only modules blanked)} for every non-test source file."""
    src = os.path.join(root, CORE)
    files = {}
    for directory, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs"):
                rel = os.path.relpath(os.path.join(directory, name), src)
                with open(os.path.join(src, rel)) as f:
                    files[rel] = f.read()
    excluded, result = [], {}
    for rel, text in sorted(files.items()):
        code = code_only(text)
        for m in TEST_MOD.finditer(code):
            if not is_test_cfg(m.group(1)):
                continue
            if m.group(3) == "{":
                code = blank(code, m.start(), matching_brace(code, m.end() - 1))
            else:
                child = os.path.join(module_dir(rel), m.group(2))
                excluded += [child + ".rs", os.path.join(child, "")]
        result[rel] = (text, code)
    return {rel: v for rel, v in result.items()
            if not any(rel == e or rel.startswith(e) for e in excluded if e)}, sorted(set(excluded))


def occurrences(files):
    """Every non-Relaxed ordering in the code: [(file, offset, line, token)]."""
    found = []
    for rel, (text, code) in sorted(files.items()):
        for m in re.finditer(r"\b(" + "|".join(STRONG) + r")\b", code):
            line = code.count("\n", 0, m.start()) + 1
            if not code[:m.start()].rstrip().endswith("Ordering::"):
                raise SystemExit(f"loom-mutations: {CORE}/{rel}:{line}: `{m.group(1)}` not written as "
                                 f"`Ordering::{m.group(1)}`; the check only understands that form")
            found.append((rel, m.start(), line, m.group(1)))
    return found


def check_lists(files):
    """Maps every occurrence to its one entry; fails on a missing, duplicate
    or stale entry. Returns {entry index: (file, line, token)} for SITES."""
    entries = [("site", i, f, s, exact) for i, (f, s, exact, _) in enumerate(SITES)]
    entries += [("justified", i, f, s, exact) for i, (f, s, exact, _) in enumerate(JUSTIFIED)]
    spans, errors = [], []
    for kind, index, rel, site, exact in entries:
        text = files.get(rel, ("", ""))[0]
        if text.count(exact) != 1:
            errors.append(f"{kind} `{site}`: its text is not in {rel} exactly once (stale entry?): {exact}")
            continue
        start = text.index(exact)
        spans.append((kind, index, rel, start, start + len(exact)))
    covered, sites = set(), {}
    for rel, offset, line, token in occurrences(files):
        owners = [(k, i) for k, i, f, a, b in spans if f == rel and a <= offset < b]
        if len(owners) != 1:
            errors.append(f"{CORE}/{rel}:{line}: Ordering::{token} is "
                          + ("in no entry of SITES or JUSTIFIED: add one" if not owners else f"in {len(owners)} entries"))
            continue
        if owners[0] in covered:
            errors.append(f"{CORE}/{rel}:{line}: a second non-Relaxed ordering in one entry's text: split it")
        covered.add(owners[0])
        if owners[0][0] == "site":
            sites[owners[0][1]] = (rel, line, token)
    for kind, index, rel, _, _ in spans:
        if (kind, index) not in covered:
            errors.append(f"{kind} #{index} in {rel} holds no non-Relaxed ordering")
    if errors:
        raise SystemExit("loom-mutations: the site lists are incomplete or stale:\n  " + "\n  ".join(errors))
    return sites


# ------------------------------------------------------------ the mutated copy

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
        # target dir shared across runs may hold a build newer than the
        # working tree's files.
        shutil.copy(src, dst)
    # The models need none of the dev-dependencies (the simulator for the
    # doc-tests, trybuild for the compile-fail tests): drop them in the copy
    # so the build compiles procnotify-core and loom only.
    manifest = os.path.join(dest, "crates/procnotify-core/Cargo.toml")
    with open(manifest) as f:
        text = f.read()
    text, dropped = re.subn(r"\n(procnotify-sim|trybuild) = [^\n]*\n", "\n", text)
    if dropped != 2:
        raise SystemExit("loom-mutations: the core's dev-dependencies changed: update copy_workspace")
    with open(manifest, "w") as f:
        f.write(text)


def plant_mutants(copy):
    """Routes every listed site's ordering through `crate::sync::mutant`."""
    for k, (rel, _, exact, _) in enumerate(SITES, start=1):
        path = os.path.join(copy, CORE, rel)
        with open(path) as f:
            text = f.read()
        mutated = re.sub(r"Ordering::(" + "|".join(STRONG) + r")\b",
                         lambda m: f"crate::sync::mutant({k}, Ordering::{m.group(1)})", exact, count=1)
        with open(path, "w") as f:
            f.write(text.replace(exact, mutated))
    with open(os.path.join(copy, CORE, "sync.rs"), "a") as f:
        f.write(MUTANT_FN)


def build(copy, target):
    """Builds the loom test binary once; returns its path and model names."""
    env = dict(os.environ, RUSTFLAGS="--cfg procnotify_loom", CARGO_TARGET_DIR=target)
    result = subprocess.run(
        ["cargo", "test", "-p", "procnotify-core", "--lib", "--release", "--no-run", "--message-format=json"],
        cwd=copy, env=env, capture_output=True, text=True)
    binary = None
    for line in result.stdout.splitlines():
        if line.startswith("{"):
            message = json.loads(line)
            if (message.get("reason") == "compiler-artifact" and message.get("executable")
                    and message["target"]["name"] == "procnotify_core" and message["profile"]["test"]):
                binary = message["executable"]
    if result.returncode != 0 or binary is None:
        sys.stderr.write(result.stderr[-4000:])
        raise SystemExit("loom-mutations: the models did not build")
    listing = subprocess.run([binary, "--list", "loom"], capture_output=True, text=True, check=True)
    models = [line[: -len(": test")] for line in listing.stdout.splitlines() if line.endswith(": test")]
    if not models:
        raise SystemExit("loom-mutations: no loom models found")
    return binary, models


def run_model(binary, model, mutant):
    env = {k: v for k, v in os.environ.items() if k not in ("LOOM_MAX_PREEMPTIONS", ENV)}
    if mutant:
        env[ENV] = str(mutant)
    proc = subprocess.run([binary, "--exact", model, "--test-threads=1", "--nocapture"],
                          env=env, capture_output=True, text=True)
    return proc.returncode == 0, proc.stdout + proc.stderr


def reason(log):
    """The first panic message of a failed model, shortened."""
    match = re.search(r"panicked at [^\n]*:\n\s*\n?([^\n]+)", log)
    if not match:
        return "failed"
    message = match.group(1).strip()
    return "causality violation" if message.startswith("Causality violation") else message[:60]


def short(model):
    return model.rsplit("::", 1)[-1]


def main():
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    started = time.time()
    files, excluded = non_test_code(root)
    sites = check_lists(files)
    print(f"sites: {len(SITES)} mutated, {len(JUSTIFIED)} justified, every non-Relaxed ordering in "
          f"{len(files)} non-test files of {CORE} (test-only: {', '.join(excluded)})", flush=True)
    for k, (rel, site, _, _) in enumerate(SITES, start=1):
        print(f"  #{k} {rel}:{sites[k - 1][1]} {site} ({sites[k - 1][2]})")
    for rel, site, _, why in JUSTIFIED:
        print(f"  justified: {rel}: {site}: {why}")
    if "--list" in sys.argv:
        return 0

    target = os.environ.get("LOOM_MUTATIONS_TARGET_DIR", os.path.join(root, "target", "loom-mutations"))
    copy = tempfile.mkdtemp(prefix="procnotify-loom-mutations-")
    try:
        copy_workspace(root, copy)
        plant_mutants(copy)
        binary, models = build(copy, target)
        print(f"built once: {len(models)} models ({time.time() - started:.0f}s)", flush=True)
        for model in models:
            ok, log = run_model(binary, model, 0)
            if not ok:
                sys.stderr.write(log[-3000:])
                raise SystemExit(f"loom-mutations: unmutated model fails: {model}")
        print(f"baseline: {len(models)} models pass, unmutated ({time.time() - started:.0f}s)", flush=True)

        by_short = {short(m): m for m in models}
        rows, missed = [], 0
        for k, (rel, site, exact, expected) in enumerate(SITES, start=1):
            unknown = [name for name in expected if name not in by_short]
            if unknown:
                raise SystemExit(f"loom-mutations: site `{site}` names unknown models {unknown}")
            first = [by_short[name] for name in expected]
            order = first + [m for m in models if m not in first]
            caught, tried, at = [], 0, time.time()
            for model in order:
                if caught and "--all" not in sys.argv:
                    break
                ok, log = run_model(binary, model, k)
                tried += 1
                if not ok:
                    caught.append((short(model), reason(log)))
            missed += not caught
            token = re.search(r"Ordering::(\w+)", exact).group(1)
            where = f"`{CORE}/{rel}` {site}"
            cell = "; ".join(f"`{name}` ({why})" for name, why in caught) or "**NOT CAUGHT**"
            rows.append((where, f"{token} -> Relaxed", cell))
            unexpected = [name for name, _ in caught if name not in expected]
            note = f" (not by the expected {', '.join(expected)})" if caught and len(unexpected) == len(caught) else ""
            print(f"  #{k} {site}: {'caught by ' + ', '.join(n for n, _ in caught) if caught else 'NOT CAUGHT'}"
                  f"{note} ({tried} model runs, {time.time() - at:.1f}s)", flush=True)

        print()
        print("| site | mutation | caught by |")
        print("|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        for rel, site, _, why in JUSTIFIED:
            print(f"| `{CORE}/{rel}` {site} | not mutated | {why} |")
        print()
        print(f"loom-mutations: {len(rows) - missed}/{len(rows)} mutations caught, {len(JUSTIFIED)} justified, "
              f"in {time.time() - started:.0f}s")
        return 1 if missed else 0
    finally:
        if "--keep" in sys.argv:
            print(f"copy kept in {copy}")
        else:
            shutil.rmtree(copy, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
