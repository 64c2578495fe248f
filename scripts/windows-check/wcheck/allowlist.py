"""The ntoskrnl allowlist and the INF's OS floor.

scripts/windows-check/ntoskrnl-allowlist.tsv has one row per ntoskrnl.exe
export procnotify.sys may import: the symbol, the first Windows version
that exports it as Microsoft's reference page states it, that version as an
NT version number (`any` where the page states no minimum), and the page. The INF (inf/procnotify.inx) installs on
`NT$ARCH$.10.0...20348` and later; every import must exist there:
`check` fails for an import with no row, and for a row newer than the floor.
"""

import re

VERSION = re.compile(r"^\d+\.\d+\.\d+$")


class AllowlistError(Exception):
    """A row this module cannot read."""


ANY = (0, 0, 0)  # "any": the page states no minimum


def version_tuple(text):
    if text == "any":
        return ANY
    if not VERSION.match(text):
        raise ValueError(f"{text!r} is not MAJOR.MINOR.BUILD (or any)")
    return tuple(int(p) for p in text.split("."))


def parse_allowlist(text, name="allowlist"):
    """{symbol: (first version as the page says, (major, minor, build), url)}."""
    rows = {}
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        cols = raw.split("\t")
        if len(cols) != 4:
            raise AllowlistError(f"{name}:{number}: 4 tab-separated columns expected, found {len(cols)}")
        symbol, stated, version, url = (c.strip() for c in cols)
        try:
            vt = version_tuple(version)
        except ValueError as e:
            raise AllowlistError(f"{name}:{number}: {e}") from None
        if not url.startswith("https://learn.microsoft.com/"):
            raise AllowlistError(f"{name}:{number}: {symbol}: the source must be a learn.microsoft.com page")
        if symbol in rows:
            raise AllowlistError(f"{name}:{number}: {symbol} listed twice")
        rows[symbol] = (stated, vt, url)
    return rows


FLOOR = re.compile(r"NT\$ARCH\$\.(\d+)\.(\d+)\.\.\.(\d+)", re.I)


def inf_floor(inf_text):
    """The lowest OS version the INF's models install on, as (major, minor, build).

    Every `NT$ARCH$.MAJOR.MINOR...BUILD` decoration in the file is read; they
    must agree (one floor for the whole package)."""
    found = {(int(a), int(b), int(c)) for a, b, c in FLOOR.findall(inf_text)}
    if not found:
        raise AllowlistError("no NT$ARCH$.MAJOR.MINOR...BUILD decoration in the INF")
    if len(found) > 1:
        raise AllowlistError(f"the INF has several OS floors: {sorted(found)}")
    return found.pop()


def check(imports, rows, floor):
    """Return (problems, details) for ntoskrnl imports against the allowlist."""
    problems, newest = [], None
    for symbol in sorted(imports):
        row = rows.get(symbol)
        if row is None:
            problems.append(f"{symbol} is not in the allowlist")
            continue
        stated, vt, _url = row
        if vt > floor:
            problems.append(f"{symbol} needs {stated} ({'.'.join(map(str, vt))}), newer than the INF's "
                            f"{'.'.join(map(str, floor))}")
        if newest is None or vt > newest[1]:
            newest = (symbol, vt, stated)
    return problems, newest
