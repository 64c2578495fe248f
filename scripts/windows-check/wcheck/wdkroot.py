"""Lay out the WDK content root wdk-build 0.6.0 reads, from the user's headers.

    python3 -m wcheck.wdkroot --headers DIR --out OUT [--sdk-version 10.0.X.0]

DIR is one of:

- a *git header set*, as `extract-headers.sh` writes it from the three public
  repositories at the pinned commits: DIR/ddk/km, DIR/ddk/shared,
  DIR/sdk/shared, DIR/wdf/src/publicinc/wdf/kmdf/1.33 (and DIR/SOURCES, the
  commits they came from);
- a *WDK copy*: the `Include` folder of a Windows Driver Kit copied as
  DIR/Include (DIR/Include/10.0.X.0/{km,shared}, DIR/Include/wdf/kmdf/1.33).

OUT receives, as symlinks only (no header is copied or changed):

    OUT/Include/<ver>/km, shared, um      what wdk-build's Config::include_paths wants
    OUT/Include/wdf/kmdf/1.33
    OUT/Lib/<ver>/km/x64                  empty; the link step puts the import
    OUT/Lib/wdf/kmdf/x64/1.33             libraries here, where a WDK has them

The headers are written for a case-insensitive file system (`#include
<DriverSpecs.h>` for driverspecs.h). Every `#include` of every header is
looked up as clang will look it up; a name that exists only in another case
gets a symlink with the spelling asked for, beside the real file.

A stamp (OUT/.layout) records what OUT was made from; an unchanged input is
not laid out again, so the build's header timestamps stay put.
"""

import argparse
import json
import os
import re
import shutil
import sys

from wcheck import line

KMDF = "1.33"
GIT_SET_VERSION = "10.0.22000.0"  # the version of the pinned header commits
LAYOUT_VERSION = 1  # bump when the layout below changes
INCLUDE = re.compile(rb'^[ \t]*#[ \t]*include[ \t]*[<"]([^>"\r\n]+)[>"]', re.M)


class HeaderError(Exception):
    """The headers folder is not one of the two accepted layouts."""


def find_sources(headers, sdk_version=None):
    """Return {km, shared, kmdf, version, origin} for a headers folder."""
    h = os.path.abspath(headers)
    git_km = os.path.join(h, "ddk", "km")
    git_kmdf = os.path.join(h, "wdf", "src", "publicinc", "wdf", "kmdf", KMDF)
    if os.path.isfile(os.path.join(git_km, "wdm.h")):
        need = [os.path.join(git_kmdf, "wdf.h"), os.path.join(h, "sdk", "shared", "ntdef.h")]
        missing = [p for p in need if not os.path.isfile(p)]
        if missing:
            raise HeaderError(f"git header set {h} lacks {', '.join(missing)}")
        shared = [os.path.join(h, "sdk", "shared")]
        if os.path.isdir(os.path.join(h, "ddk", "shared")):
            shared.append(os.path.join(h, "ddk", "shared"))
        origin = "git set"
        sources = os.path.join(h, "SOURCES")
        if os.path.isfile(sources):
            with open(sources) as f:
                origin += " (" + "; ".join(l.strip() for l in f if l.strip() and not l.startswith("#")) + ")"
        return {"km": [git_km], "shared": shared, "kmdf": git_kmdf,
                "version": sdk_version or GIT_SET_VERSION, "origin": origin}
    inc = os.path.join(h, "Include")
    if os.path.isdir(inc):
        versions = sorted((v for v in os.listdir(inc)
                           if v.startswith("10.") and os.path.isfile(os.path.join(inc, v, "km", "wdm.h"))),
                          key=lambda v: [int(p) if p.isdigit() else 0 for p in v.split(".")])
        if sdk_version:
            versions = [v for v in versions if v == sdk_version]
        if not versions:
            raise HeaderError(f"{inc} has no 10.*/km/wdm.h" + (f" for {sdk_version}" if sdk_version else ""))
        v = versions[-1]
        kmdf = os.path.join(inc, "wdf", "kmdf", KMDF)
        if not os.path.isfile(os.path.join(kmdf, "wdf.h")):
            raise HeaderError(f"{kmdf}/wdf.h missing (copy Include\\wdf\\kmdf\\{KMDF} from the WDK)")
        return {"km": [os.path.join(inc, v, "km")], "shared": [os.path.join(inc, v, "shared")],
                "kmdf": kmdf, "version": v, "origin": f"WDK copy {v}"}
    raise HeaderError(
        f"{h}: neither a git header set (ddk/km/wdm.h, sdk/shared, wdf/src/publicinc/wdf/kmdf/{KMDF}; "
        f"see extract-headers.sh) nor a WDK copy (Include/10.*/km/wdm.h, Include/wdf/kmdf/{KMDF})")


def farm(sources, dest):
    """Symlink every file of the source trees into dest; an earlier tree wins."""
    count = 0
    for src in sources:
        for dirpath, _dirs, files in os.walk(src, followlinks=True):
            out = os.path.join(dest, os.path.relpath(dirpath, src))
            os.makedirs(out, exist_ok=True)
            for name in files:
                target = os.path.join(out, name)
                if not os.path.lexists(target):
                    os.symlink(os.path.join(dirpath, name), target)
                    count += 1
    return count


class CaseIndex:
    """Case-insensitive directory listings, refreshed when an alias is added."""

    def __init__(self):
        self._dirs = {}

    def lookup(self, directory, name):
        if directory not in self._dirs:
            try:
                entries = os.listdir(directory)
            except OSError:
                entries = []
            self._dirs[directory] = {}
            for e in sorted(entries):
                self._dirs[directory].setdefault(e.lower(), e)
        return self._dirs[directory].get(name.lower())

    def forget(self, directory):
        self._dirs.pop(directory, None)


def alias_include(name, bases, index):
    """Make `name` resolvable from the first base where it exists in another
    case. Returns the number of aliases made, or None if found nowhere."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(os.path.exists(os.path.join(b, *parts)) for b in bases):
        return 0
    for base in bases:
        cur, plan = base, []
        for part in parts:
            if part == "..":
                cur = os.path.dirname(cur)
                continue
            real = part if os.path.lexists(os.path.join(cur, part)) else index.lookup(cur, part)
            if real is None:
                break
            if real != part:
                plan.append((cur, part, real))
            cur = os.path.join(cur, part if real == part else real)
        else:
            for directory, want, real in plan:
                os.symlink(real, os.path.join(directory, want))
                index.forget(directory)
            return len(plan)
    return None


def add_case_aliases(roots, search_path):
    """Alias every include of every file under roots; return (aliases, unresolved)."""
    index, made, unresolved = CaseIndex(), 0, set()
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            for fname in files:
                try:
                    with open(os.path.join(dirpath, fname), "rb") as f:
                        text = f.read()
                except OSError:
                    continue
                for m in INCLUDE.finditer(text):
                    name = m.group(1).decode("latin-1").strip()
                    n = alias_include(name, [dirpath] + search_path, index)
                    if n is None:
                        unresolved.add(name)
                    else:
                        made += n
    return made, unresolved


def lay_out(src, out):
    """Build OUT from the sources; return a one-line description."""
    v = src["version"]
    km = os.path.join(out, "Include", v, "km")
    shared = os.path.join(out, "Include", v, "shared")
    kmdf = os.path.join(out, "Include", "wdf", "kmdf", KMDF)
    files = farm(src["km"], km) + farm(src["shared"], shared) + farm([src["kmdf"]], kmdf)
    # wdk-build checks that each include folder exists; a header tree may lack some.
    for d in (os.path.join(km, "crt"), os.path.join(km, "ufx", "1.1"), os.path.join(out, "Include", v, "um"),
              os.path.join(out, "Lib", v, "km", "x64"), os.path.join(out, "Lib", "wdf", "kmdf", "x64", KMDF)):
        os.makedirs(d, exist_ok=True)
    # The KMDF include order of wdk-build 0.6.0's Config::include_paths.
    search = [os.path.join(km, "crt"), km, shared, kmdf, os.path.join(km, "ufx", "1.1")]
    aliases, unresolved = add_case_aliases([km, shared, kmdf], search)
    with open(os.path.join(out, "unresolved-includes.txt"), "w") as f:
        f.write("".join(n + "\n" for n in sorted(unresolved)))
    return f"{files} headers, {aliases} case aliases, {len(unresolved)} include names found nowhere"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--headers", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--sdk-version")
    a = ap.parse_args(argv)
    try:
        src = find_sources(a.headers, a.sdk_version)
    except HeaderError as e:
        line("headers", False, str(e))
        return 1
    out = os.path.abspath(a.out)
    stamp = json.dumps({"layout": LAYOUT_VERSION, **src}, sort_keys=True)
    stamp_file = os.path.join(out, ".layout")
    try:
        with open(stamp_file) as f:
            old = f.read().split("\n", 1)
    except OSError:
        old = None
    if old and old[0] == stamp:
        detail = old[1].strip() + " (unchanged)"
    else:
        if os.path.lexists(out):
            shutil.rmtree(out)
        os.makedirs(out)
        detail = lay_out(src, out)
        with open(stamp_file, "w") as f:
            f.write(stamp + "\n" + detail + "\n")
    line("headers", True, f"{src['origin']} -> WDK root {src['version']}, KMDF {KMDF}: {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
