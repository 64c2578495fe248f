"""The `.def` files under scripts/windows-check/link, and imports against them.

Each `.def` lists EXACTLY the functions the objects linked into
procnotify.sys import from one module (llvm-dlltool turns it into the import
library the link uses). By default both profiles' images import a listed
symbol; the comment `; profile: debug` (or release) on its line marks one
only that profile's image imports, `; profile: none` one the objects refer
to only from code the linker drops. Three checks keep the lists exact:

- at link time, an object importing a symbol no `.def` lists is an undefined
  symbol for lld-link: `python3 -m wcheck.defs undefined STEP LOG DEF...`
  names them after a failed link; and a listed symbol that no input of the
  debug or release link refers to is stale (`referenced`);
- on the linked image, `compare` (used by the pe step) fails for an import
  the `.def` files do not list for that profile, and for a listed symbol the
  image of that profile does not import (a stale entry).
"""

import os
import re
import sys

from wcheck import line

PROFILES = ("debug", "release")


class DefError(Exception):
    """A .def file this module cannot read."""


def parse_def(text, name="<def>"):
    """Return (library, {symbol: set of profiles}) for a .def file's text."""
    library, symbols, in_exports = None, {}, False
    for number, raw in enumerate(text.splitlines(), 1):
        code, _, comment = raw.partition(";")
        code = code.strip()
        if not code:
            continue
        if code.upper().startswith("LIBRARY"):
            parts = code.split()
            if len(parts) != 2:
                raise DefError(f"{name}:{number}: LIBRARY takes one module name")
            library = parts[1].strip('"')
            continue
        if code.upper() == "EXPORTS":
            in_exports = True
            continue
        if not in_exports:
            raise DefError(f"{name}:{number}: unexpected {code!r} before EXPORTS")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_@?$]*", code):
            raise DefError(f"{name}:{number}: {code!r}: one plain symbol name per line")
        profiles = set(PROFILES)
        m = re.search(r"\bprofile:\s*([a-z]+(?:\s*,\s*[a-z]+)*)", comment)
        if m:
            profiles = {p.strip() for p in m.group(1).split(",")}
            if profiles == {"none"}:
                profiles = set()
            elif not profiles <= set(PROFILES):
                raise DefError(f"{name}:{number}: unknown profile in {m.group(0)!r} "
                               f"(debug, release, or none)")
        if code in symbols:
            raise DefError(f"{name}:{number}: {code} listed twice")
        symbols[code] = profiles
    if library is None:
        raise DefError(f"{name}: no LIBRARY line")
    return library, symbols


def load_defs(paths):
    """{module name (lower case): (module name, {symbol: profiles})} for .def files."""
    out = {}
    for path in paths:
        with open(path) as f:
            library, symbols = parse_def(f.read(), os.path.basename(path))
        out[library.lower()] = (library, symbols)
    return out


def expected_imports(defs, profile):
    """{module (lower case): set of symbols} the given profile must import."""
    return {lib: {s for s, profiles in symbols.items() if profile in profiles}
            for lib, (_name, symbols) in defs.items()}


def compare(defs, imports, profile):
    """Compare an image's imports ({module: set of symbols}) with the .def files.

    Returns a list of problems (empty when the image imports exactly what the
    .def files list for this profile)."""
    expected = expected_imports(defs, profile)
    actual = {}
    for module, symbols in imports.items():
        actual.setdefault(module.lower(), set()).update(symbols)
    problems = []
    for key, symbols in sorted(actual.items()):
        if key not in expected:
            problems.append(f"imports from {key}, which no .def file describes: {', '.join(sorted(symbols))}")
            continue
        extra = symbols - expected[key]
        if extra:
            problems.append(f"{defs[key][0]}: imported but not listed for {profile}: {', '.join(sorted(extra))}")
    for key, symbols in sorted(expected.items()):
        stale = symbols - actual.get(key, set())
        if stale:
            problems.append(f"{defs[key][0]}: listed for {profile} but not imported: {', '.join(sorted(stale))}")
    return problems


def unreferenced(defs, referenced_symbols):
    """Listed symbols no object of the link refers to (stale .def entries)."""
    return sorted(s for _lib, symbols in defs.values() for s in symbols if s not in referenced_symbols)


UNDEFINED = re.compile(r"undefined symbol: (?:__imp_)?([A-Za-z_][A-Za-z0-9_@?$]*)")


def undefined_symbols(log_text):
    """The symbols an lld-link log reports undefined."""
    return sorted(set(UNDEFINED.findall(log_text)))


def main(argv=None):
    args = argv if argv is not None else sys.argv[1:]
    if args[:1] == ["referenced"] and "--" in args:
        # referenced STEP DEF... -- UNDEFINED_LIST...: every listed symbol is
        # referenced by the inputs of at least one of the links given
        cut = args.index("--")
        names = set()
        for path in args[cut + 1:]:
            with open(path) as f:
                names |= {n.strip() for n in f if n.strip()}
        names |= {n[len("__imp_"):] for n in names if n.startswith("__imp_")}
        listed = load_defs(args[2:cut])
        stale = unreferenced(listed, names)
        count = sum(len(s) for _l, s in listed.values())
        links = len(args) - cut - 1
        ok = line(args[1], not stale,
                  f"{', '.join(stale)}: listed in link/*.def but referenced by no input of the "
                  f"{links} link(s)" if stale else
                  f"each of the {count} listed imports is referenced by the inputs of the {links} link(s)")
        return 0 if ok else 1
    if len(args) < 3 or args[0] != "undefined":
        print("usage: python3 -m wcheck.defs undefined STEP LINK_LOG DEF...\n"
              "       python3 -m wcheck.defs referenced STEP DEF... -- UNDEFINED_LIST...", file=sys.stderr)
        return 2
    with open(args[2], errors="replace") as f:
        missing = undefined_symbols(f.read())
    listed = {s for _lib, symbols in load_defs(args[3:]).values() for s in symbols}
    new = [s for s in missing if s not in listed]
    if new:
        line(args[1], False, f"the objects import {', '.join(new)}, which no .def file under "
             "scripts/windows-check/link lists: add each to the module's .def (and, for ntoskrnl.exe, "
             "a row to ntoskrnl-allowlist.tsv, from Microsoft's reference page)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
