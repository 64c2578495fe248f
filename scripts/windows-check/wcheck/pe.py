"""Checks on the linked procnotify.sys (needs pefile: run with the venv's python).

    python -m wcheck.pe checksum IMAGE
    python -m wcheck.pe check --image IMAGE --profile debug|release --defs DEF...
                              --allowlist TSV --inf INX --exports TSV [--map MAP]

`checksum` sets the PE checksum, which link.exe sets for /SUBSYSTEM:NATIVE
(as /RELEASE does) and lld-link never sets. `check` prints one summary line
per check; `facts` turns the image into plain data and `checks` judges that
data, so the tests can judge fixtures without pefile.
"""

import argparse
import os
import re
import sys

from wcheck import allowlist, defs, line

IMAGE_FILE_MACHINE_AMD64 = 0x8664
IMAGE_SUBSYSTEM_NATIVE = 1
DLL_FLAGS = {"HIGH_ENTROPY_VA": 0x0020, "DYNAMIC_BASE": 0x0040, "FORCE_INTEGRITY": 0x0080, "NX_COMPAT": 0x0100}
REQUIRED_DLL_FLAGS = ("NX_COMPAT", "DYNAMIC_BASE", "FORCE_INTEGRITY")
SCN_EXECUTE, SCN_WRITE, SCN_DISCARDABLE = 0x20000000, 0x80000000, 0x02000000
ALLOWED_MODULES = ("ntoskrnl.exe", "WDFLDR.SYS")
ENTRY = "FxDriverEntry"


def facts(path, map_path=None):
    """The image as plain data (everything `checks` looks at)."""
    import pefile  # only the venv has it

    pe = pefile.PE(path)
    oh = pe.OPTIONAL_HEADER
    imports = {}
    for entry in getattr(pe, "DIRECTORY_ENTRY_IMPORT", []):
        names = imports.setdefault(entry.dll.decode(), set())
        for imp in entry.imports:
            names.add(imp.name.decode() if imp.name else f"#{imp.ordinal}")
    exports = sorted(s.name.decode() if s.name else f"#{s.ordinal}"
                     for s in getattr(getattr(pe, "DIRECTORY_ENTRY_EXPORT", None), "symbols", []))
    data = {
        "size": os.path.getsize(path),
        "machine": pe.FILE_HEADER.Machine,
        "subsystem": oh.Subsystem,
        "subsystem_version": f"{oh.MajorSubsystemVersion}.{oh.MinorSubsystemVersion}",
        "entry_rva": oh.AddressOfEntryPoint,
        "image_base": oh.ImageBase,
        "dll_characteristics": oh.DllCharacteristics,
        "checksum": oh.CheckSum,
        "checksum_computed": pe.generate_checksum(),
        "sections": [(s.Name.rstrip(b"\0").decode(), s.Characteristics, s.Misc_VirtualSize) for s in pe.sections],
        "imports": imports,
        "delay_imports": [e.dll.decode() for e in getattr(pe, "DIRECTORY_ENTRY_DELAY_IMPORT", [])],
        "exports": exports,
        "entry_symbols": [],
    }
    if map_path and os.path.isfile(map_path):
        with open(map_path, errors="replace") as f:
            data["entry_symbols"] = symbols_at(f.read(), oh.ImageBase + oh.AddressOfEntryPoint)
    return data


# lld-link's /MAP is link.exe's format: " 0001:0000aca0  FxDriverEntry  000000018000bca0  Lib:Object"
MAP_SYMBOL = re.compile(r"^\s*[0-9a-fA-F]{4}:[0-9a-fA-F]{8}\s+(\S+)\s+([0-9a-fA-F]{16})\s")


def symbols_at(map_text, address):
    """The public symbols the /MAP file places at `address` (a virtual address)."""
    return sorted({m.group(1) for m in map(MAP_SYMBOL.match, map_text.splitlines())
                   if m and int(m.group(2), 16) == address})


def flag_names(value):
    return [n for n, bit in DLL_FLAGS.items() if value & bit]


def checks(f, profile, def_files, rows, floor, expected_exports):
    """[(check name, ok, detail)] for the image facts `f`."""
    out = []
    out.append(("machine", f["machine"] == IMAGE_FILE_MACHINE_AMD64, f"0x{f['machine']:04X}"
                + (" (AMD64)" if f["machine"] == IMAGE_FILE_MACHINE_AMD64 else ", not AMD64 (0x8664)")))
    out.append(("subsystem", f["subsystem"] == IMAGE_SUBSYSTEM_NATIVE,
                f"{f['subsystem']} " + ("(NATIVE" if f["subsystem"] == IMAGE_SUBSYSTEM_NATIVE else "(not NATIVE")
                + f", subsystem version {f['subsystem_version']})"))
    ok = ENTRY in f["entry_symbols"]
    out.append(("entry", ok, f"RVA 0x{f['entry_rva']:X} = {', '.join(f['entry_symbols']) or 'no symbol in the map'}"
                + ("" if ok else f"; expected {ENTRY}")))
    missing = [n for n in REQUIRED_DLL_FLAGS if not f["dll_characteristics"] & DLL_FLAGS[n]]
    out.append(("dll characteristics", not missing, f"0x{f['dll_characteristics']:04X}: "
                + " ".join(flag_names(f["dll_characteristics"])) + (f"; missing {' '.join(missing)}" if missing else "")))
    wx = [n for n, c, _ in f["sections"] if c & SCN_WRITE and c & SCN_EXECUTE]
    desc = " ".join(f"{n}({'R' if c & 0x40000000 else ''}{'W' if c & SCN_WRITE else ''}{'X' if c & SCN_EXECUTE else ''}"
                    f"{'D' if c & SCN_DISCARDABLE else ''})" for n, c, _ in f["sections"])
    out.append(("sections", not wx, desc + (f"; writable AND executable: {' '.join(wx)}" if wx else "; none W+X")))
    modules = sorted(f["imports"])
    bad = [m for m in modules if m.lower() not in {a.lower() for a in ALLOWED_MODULES}] + f["delay_imports"]
    out.append(("import modules", not bad, ", ".join(f"{m} ({len(f['imports'][m])})" for m in modules)
                + (f"; not allowed: {', '.join(bad)}" if bad else "")))
    problems = defs.compare(def_files, f["imports"], profile)
    out.append(("imports = .def", not problems, "; ".join(problems) if problems else
                f"every import is listed for {profile} in link/*.def and every listed one is imported"))
    nt = next((s for m, s in f["imports"].items() if m.lower() == "ntoskrnl.exe"), set())
    problems, newest = allowlist.check(nt, rows, floor)
    floor_text = ".".join(map(str, floor))
    out.append(("ntoskrnl allowlist", not problems, "; ".join(problems) if problems else
                f"{len(nt)} imports on the allowlist, newest {newest[0]} ({newest[2]}, "
                f"{'.'.join(map(str, newest[1]))}) <= INF floor {floor_text}" if newest else "no ntoskrnl imports"))
    got, want = set(f["exports"]), set(expected_exports)
    detail = ", ".join(f"{e} [{expected_exports[e][0]}]" if e in expected_exports else f"{e} [UNEXPECTED]"
                       for e in sorted(got)) + " (why: exports.tsv)"
    if want - got:
        detail += f"; expected but missing: {', '.join(sorted(want - got))}"
    out.append(("exports", got == want, detail))
    ok = f["checksum"] == f["checksum_computed"]
    out.append(("checksum", ok, f"0x{f['checksum']:08X}" + ("" if ok else f" != computed 0x{f['checksum_computed']:08X}")))
    return out


def parse_exports(text):
    """exports.tsv: {symbol: (source, why)} (tab-separated; # comments)."""
    out = {}
    for number, raw in enumerate(text.splitlines(), 1):
        if raw.strip() and not raw.lstrip().startswith("#"):
            cols = [c.strip() for c in raw.split("\t")]
            if len(cols) != 3 or not all(cols):
                raise ValueError(f"exports.tsv:{number}: symbol, source and why expected")
            out[cols[0]] = (cols[1], cols[2])
    return out


def set_checksum(path):
    import pefile

    pe = pefile.PE(path)
    pe.OPTIONAL_HEADER.CheckSum = pe.generate_checksum()
    data = pe.write()
    pe.close()
    with open(path, "wb") as f:
        f.write(data)
    return pefile.PE(path).OPTIONAL_HEADER.CheckSum


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["checksum"]:
        print(f"checksum set: 0x{set_checksum(args[1]):08X}")
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["check"])
    ap.add_argument("--image", required=True)
    ap.add_argument("--profile", required=True, choices=defs.PROFILES)
    ap.add_argument("--defs", nargs="+", required=True)
    ap.add_argument("--allowlist", required=True)
    ap.add_argument("--inf", required=True)
    ap.add_argument("--exports", required=True)
    ap.add_argument("--map")
    a = ap.parse_args(args)
    with open(a.allowlist) as fa, open(a.inf, errors="replace") as fi, open(a.exports) as fe:
        rows = allowlist.parse_allowlist(fa.read(), os.path.basename(a.allowlist))
        floor = allowlist.inf_floor(fi.read())
        expected_exports = parse_exports(fe.read())
    f = facts(a.image, a.map or os.path.splitext(a.image)[0] + ".map")
    sections = len(f["sections"])
    line(f"pe[{a.profile}]", True, f"{os.path.basename(a.image)}: {f['size']:,} B, {sections} sections, "
         f"image base 0x{f['image_base']:X}")
    ok = True
    for name, good, detail in checks(f, a.profile, defs.load_defs(a.defs), rows, floor, expected_exports):
        ok = line(f"pe[{a.profile}] {name}", good, detail) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
