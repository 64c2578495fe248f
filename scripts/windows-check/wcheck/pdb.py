"""What WinDbg will see: the NatVis checked against procnotify.pdb.

    python3 -m wcheck.pdb --pdb PDB --natvis src/procnotify.natvis --profile P
                          [--pdbutil llvm-pdbutil] [--rustc "rustc 1.95.0 (...)"]

Reads the PDB with llvm-pdbutil (`dump -streams`, `export`, `dump -globals`,
`dump -types`, the modules' S_COMPILE3) and checks, one summary line each:

- natvis stream: a named stream /src/files/...natvis holds exactly
  src/procnotify.natvis (what the linker's /NATVIS embedded);
- compiler: the rustc version that built the objects (the pinned one);
- DEBUG_CONTEXT: `procnotify::entry::DEBUG_CONTEXT` is a data symbol in the
  globals stream, of type AtomicPtr<procnotify_core::engine::Context<...>>;
- types: every <Type> of the NatVis matches at least one type record (by
  its Name or an AlternativeType), and every `$T1` cast names a type record;
- fields: every field path of every expression resolves in each matching
  type, and is a scalar / pointer where the expression needs one;
- layout: every `layout` line of the NatVis header holds (sizes, offsets,
  kinds).

A PDB without type records (a profile built without debug information)
cannot show types; the type checks then report that instead of passing.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

from wcheck import line, natvis

RECORD = re.compile(r"^\s+(0x[0-9A-F]+) \| (LF_\w+) \[size = \d+\](?: `(.*)`)?\s*$")
MEMBER = re.compile(r"^\s+- LF_MEMBER \[name = `([^`]*)`, Type = (0x[0-9A-F]+)[^,]*, offset = (\d+)")
SIMPLE_KINDS = {0x10: "i8", 0x11: "i16", 0x12: "i32", 0x13: "i64", 0x20: "u8", 0x21: "u16", 0x22: "u32",
                0x23: "u64", 0x30: "bool", 0x68: "i8", 0x69: "u8", 0x74: "i32", 0x75: "u32", 0x76: "i64",
                0x77: "u64", 0x7B: "u32", 0x40: "f32", 0x41: "f64", 0x14: "i128", 0x24: "u128"}


class Types:
    """The TPI stream as llvm-pdbutil `dump -types` prints it."""

    def __init__(self, dump):
        self.records = {}
        cur = None
        for raw in dump.splitlines():
            m = RECORD.match(raw)
            if m:
                cur = {"kind": m.group(2), "name": m.group(3), "lines": []}
                self.records[int(m.group(1), 16)] = cur
            elif cur is not None:
                cur["lines"].append(raw)
        for rec in self.records.values():
            text = "\n".join(rec["lines"])
            get = lambda pattern: re.search(pattern, text)  # noqa: E731
            rec["members"] = [(n, int(t, 16), int(o)) for n, t, o in
                              (MEMBER.match(l).groups() for l in rec["lines"] if MEMBER.match(l))]
            m = get(r"field list: (0x[0-9A-F]+)")
            rec["fieldlist"] = int(m.group(1), 16) if m else None
            m = get(r"forward ref \(-> (0x[0-9A-F]+)\)")
            rec["definition"] = int(m.group(1), 16) if m else None
            m = get(r"sizeof (\d+)")
            rec["size"] = int(m.group(1)) if m else None
            m = get(r"referent = (0x[0-9A-F]+)")
            rec["referent"] = int(m.group(1), 16) if m else None
            m = get(r"element type = (0x[0-9A-F]+)")
            rec["element"] = int(m.group(1), 16) if m else None
        self.by_name = {}
        for index, rec in self.records.items():
            if rec["kind"] in ("LF_STRUCTURE", "LF_CLASS", "LF_UNION", "LF_ENUM") and rec["name"]:
                self.by_name.setdefault(rec["name"], []).append(index)

    def complete(self, index):
        """The defining record of a (possibly forward-referenced) type."""
        rec = self.records.get(index)
        if rec and rec.get("definition"):
            return rec["definition"]
        return index

    def named(self, name):
        """Complete record indexes of a struct/union/enum name (deduplicated)."""
        return sorted({self.complete(i) for i in self.by_name.get(name, [])})

    def named_in_expression(self, name):
        """`named` for a type named in an expression (a cast): the debugger
        parses it as C++, so blanks before `>` and `,` do not matter
        (`A<B<C> >`, the PDB's spelling, is `A<B<C>>`)."""
        bare = lambda text: re.sub(r"\s+(?=[>,])", "", text)  # noqa: E731
        want = bare(name)
        return sorted({self.complete(i) for n, ids in self.by_name.items() if bare(n) == want for i in ids})

    def matching(self, pattern):
        rx = natvis.pattern_regex(pattern)
        return sorted({self.complete(i) for name, ids in self.by_name.items() if rx.match(name) for i in ids})

    def kind(self, index):
        """u8 ... u64, i8 ..., bool, f32/f64, pointer, enum, struct, array, or other."""
        if index < 0x1000:
            if (index >> 8) & 0xF:
                return "pointer"
            return SIMPLE_KINDS.get(index & 0xFF, "other")
        rec = self.records.get(index)
        if rec is None:
            return "other"
        return {"LF_POINTER": "pointer", "LF_ENUM": "enum", "LF_ARRAY": "array", "LF_STRUCTURE": "struct",
                "LF_CLASS": "struct", "LF_UNION": "struct"}.get(rec["kind"], "modifier"
                                                                  if rec["kind"] == "LF_MODIFIER" else "other")

    def strip(self, index):
        """Follow LF_MODIFIER (const/volatile) to the modified type."""
        while index >= 0x1000 and self.records.get(index, {}).get("kind") == "LF_MODIFIER":
            index = self.records[index]["referent"]
        return self.complete(index)

    def members(self, index):
        rec = self.records.get(self.complete(index))
        if not rec or rec["fieldlist"] is None:
            return []
        return self.records.get(rec["fieldlist"], {}).get("members", [])

    def size(self, index):
        return self.records.get(self.complete(index), {}).get("size")

    def name(self, index):
        if index < 0x1000:
            return self.kind(index)
        return self.records.get(index, {}).get("name") or f"0x{index:X}"

    def walk(self, root, steps):
        """Resolve a field path from struct `root`: (type index, offset or None) or an error."""
        cur, offset = self.strip(root), 0
        for step in steps:
            if step[0] in ("index", "arrow"):
                k = self.kind(cur)
                if k not in ("pointer", "array"):
                    return f"{'[]' if step[0] == 'index' else '->'} on {self.name(cur)}, which is a {k}"
                if cur < 0x1000:
                    return f"{'[]' if step[0] == 'index' else '->'} on a pointer to a simple type"
                rec = self.records[cur]
                cur = self.strip(rec["referent"] if k == "pointer" else rec["element"])
                offset = None
                if step[0] == "index":
                    continue
            if self.kind(cur) != "struct":
                return f".{step[1]} on {self.name(cur)}, which is a {self.kind(cur)}"
            found = [m for m in self.members(cur) if m[0] == step[1]]
            if not found:
                names = ", ".join(m[0] for m in self.members(cur))
                return f"{self.name(cur)} has no field {step[1]} (fields: {names or 'none'})"
            _n, ftype, foff = found[0]
            offset = None if offset is None else offset + foff
            cur = self.strip(ftype)
        return cur, offset


def satisfies(kind, need):
    if need == "any":
        return True
    if need == "pointer":
        return kind in ("pointer", "array")
    return kind not in ("struct", "array", "other")  # scalar: integers, bool, enum, pointer


def check_types(types, visualizers):
    """[(check, ok, detail)] for the visualizers' names, casts and field paths."""
    out, missing, uses_checked, bad = [], [], 0, []
    for vis in visualizers:
        matches = {}
        for pattern in vis.names:
            for index in types.matching(pattern):
                matches[index] = pattern
        if not matches:
            missing.append(vis.names[0])
            continue
        for index in sorted(matches):
            type_name = types.name(index)
            args = natvis.template_args(type_name)
            for cast in vis.casts:
                n = int(cast.param[2:])
                arg = args[n - 1] if 0 < n <= len(args) else None
                if arg is None or not types.named(arg) and not arg.endswith("*"):
                    bad.append(f"{vis.names[0]}: {cast.param} in {cast.expr!r} names no type record ({arg})")
            for use in vis.uses:
                uses_checked += 1
                start = index
                if use.root:
                    root = natvis.substitute(use.root, args)
                    named = types.named_in_expression(root)
                    if not named:
                        bad.append(f"{vis.names[0]} ({use.where}) {use.text()}: no type record named {root}")
                        continue
                    start = named[0]
                got = types.walk(start, use.steps)
                if isinstance(got, str):
                    bad.append(f"{vis.names[0]} ({use.where}) {use.text()}: {got}")
                elif not satisfies(types.kind(got[0]), use.need):
                    bad.append(f"{vis.names[0]} ({use.where}) {use.text()}: is a {types.kind(got[0])} "
                               f"({types.name(got[0])}); {use.expr!r} needs a {use.need}")
    count = len(visualizers)
    out.append(("types", not missing, f"{count - len(missing)} of {count} NatVis types match type records"
                + (f"; no record for: {', '.join(missing)}" if missing else "")))
    out.append(("fields", not bad, "; ".join(bad[:8]) + (f" (and {len(bad) - 8} more)" if len(bad) > 8 else "")
                if bad else f"{uses_checked} field-path uses resolve, each of the kind its expression needs"))
    return out


def check_layout(types, layout):
    problems, checked = [], 0
    for entry in layout:
        found = types.matching(entry.pattern)
        if not found:
            problems.append(f"{entry.pattern}: no type record")
            continue
        for index in found:
            checked += 1
            if types.size(index) != entry.size:
                problems.append(f"{types.name(index)}: size {types.size(index)}, the NatVis says {entry.size}")
            for path, offset, kind in entry.fields:
                got = types.walk(index, [("field", p) for p in path])
                if isinstance(got, str):
                    problems.append(f"{entry.pattern} {'.'.join(path)}: {got}")
                    continue
                if got[1] != offset:
                    problems.append(f"{types.name(index)}.{'.'.join(path)} at 0x{got[1]:X}, the NatVis says 0x{offset:X}")
                if kind and types.kind(got[0]) != kind:
                    problems.append(f"{types.name(index)}.{'.'.join(path)} is a {types.kind(got[0])}, "
                                    f"the NatVis says {kind}")
    return ("layout", not problems and checked > 0,
            "; ".join(problems) if problems else
            f"{len(layout)} layout lines ({checked} type records): sizes, offsets and kinds as stated")


def pdbutil(tool, *args):
    out = subprocess.run([tool, *args], capture_output=True, text=True, errors="replace")
    if out.returncode != 0:
        raise RuntimeError(f"{os.path.basename(tool)} {' '.join(args[:2])}: {out.stderr.strip()[:300]}")
    return out.stdout


def natvis_streams(tool, pdb):
    """[(stream index, name)] of the named streams holding .natvis files."""
    out = []
    for m in re.finditer(r"Stream\s+(\d+) \(\s*\d+ bytes\): \[Named Stream \"(/src/files/[^\"]*)\"\]",
                         pdbutil(tool, "dump", "-streams", pdb)):
        if m.group(2).lower().endswith(".natvis"):
            out.append((int(m.group(1)), m.group(2)))
    return out


def export_stream(tool, pdb, index):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "stream")
        pdbutil(tool, "export", f"-stream={index}", f"-out={path}", pdb)
        with open(path, "rb") as f:
            return f.read()


def debug_context(globals_dump, types):
    m = re.search(r"(S_[GL]DATA32) \[size = \d+\] `procnotify::entry::DEBUG_CONTEXT`\s*\n\s*type = (0x[0-9A-F]+)",
                  globals_dump)
    if not m:
        return False, "procnotify::entry::DEBUG_CONTEXT is not in the globals stream"
    name = types.name(types.complete(int(m.group(2), 16)))
    ok = name.startswith("core::sync::atomic::AtomicPtr<procnotify_core::engine::Context<")
    return ok, f"{m.group(1)} of type {name}" + ("" if ok else " (expected AtomicPtr<procnotify_core::engine::Context<...>>)")


def compiler(tool, pdb):
    """The rustc version in the first module with an S_COMPILE3 record naming rustc."""
    for i in range(12):
        out = subprocess.run([tool, "dump", f"-modi={i}", "-symbols", pdb], capture_output=True, text=True,
                             errors="replace")
        if out.returncode != 0:
            break
        m = re.search(r"\(rustc version ([^)]*\))\)", out.stdout)
        if m:
            return "rustc " + m.group(1)
    return None


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--pdb", required=True)
    ap.add_argument("--natvis", required=True)
    ap.add_argument("--profile", required=True)
    ap.add_argument("--pdbutil", default="llvm-pdbutil")
    ap.add_argument("--rustc", help="the `rustc --version` the objects must come from")
    a = ap.parse_args(argv)
    step = f"pdb[{a.profile}]"
    with open(a.natvis, "rb") as f:
        source = f.read()
    ok = True
    streams = natvis_streams(a.pdbutil, a.pdb)
    same = [s for s in streams if export_stream(a.pdbutil, a.pdb, s[0]) == source]
    ok &= line(f"{step} natvis stream", len(same) == 1,
               f"stream {same[0][0]} {same[0][1].split(chr(92))[-1]} = {os.path.basename(a.natvis)} "
               f"({len(source):,} B, byte for byte)" if len(same) == 1 else
               f"{len(streams)} .natvis streams, {len(same)} equal to {a.natvis}")
    types = Types(pdbutil(a.pdbutil, "dump", "-types", a.pdb))
    rustc = compiler(a.pdbutil, a.pdb)
    if rustc is None:
        line(f"{step} compiler", None, "no module records its compiler (no debug information)")
    else:
        same_rustc = a.rustc is None or rustc == a.rustc
        ok &= line(f"{step} compiler", same_rustc, f"the objects' S_COMPILE3: {rustc}"
                   + ("" if same_rustc else f", not the pinned {a.rustc}"))
    try:
        visualizers, layout = natvis.parse(source.decode("utf-8"))
    except (natvis.NatvisError, SyntaxError) as e:
        line(f"{step} natvis", False, f"cannot read {a.natvis}: {e}")
        return 1
    if not types.by_name:
        line(f"{step} types", None, f"this PDB has no type records (the {a.profile} profile builds without "
             "debug information): WinDbg cannot apply the NatVis to it; the debug PDB's types are checked")
        return 0 if ok else 1
    good, detail = debug_context(pdbutil(a.pdbutil, "dump", "-globals", a.pdb), types)
    ok &= line(f"{step} DEBUG_CONTEXT", good, detail)
    for name, good, detail in check_types(types, visualizers) + [check_layout(types, layout)]:
        ok &= line(f"{step} {name}", good, detail)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
