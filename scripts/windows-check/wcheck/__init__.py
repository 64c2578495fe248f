"""procnotify's Windows check (scripts/windows-check/run.sh): the Python parts.

One module per check, each usable as `python3 -m wcheck.<module>` with
`scripts/windows-check` on `sys.path`:

- `wdkroot`   lays out the WDK content root wdk-build expects from the headers
- `treesync`  copies the working tree into the scratch build folder
- `defs`      the `.def` files: parsing, and imports compared with them
- `allowlist` the ntoskrnl allowlist and the INF's OS floor
- `pe`        the checks on a linked image (needs `pefile`, from the venv)
- `natvis`    what src/procnotify.natvis names: types, field paths, layout
- `pdb`       the NatVis checked against the PDB (llvm-pdbutil)

The pure logic (parsing and comparison) takes plain data so the unit tests in
`scripts/windows-check/tests` run without headers, a build or `pefile`.
Every module prints its results as `== <step>: PASS|FAIL <detail>` lines.
"""


def line(step, ok, detail):
    """One summary line, as run.sh and the result file expect it. `ok` None
    is a check that does not apply (N/A): it neither passes nor fails."""
    status = "N/A" if ok is None else "PASS" if ok else "FAIL"
    print(f"== {step}: {status} {detail}".rstrip(), flush=True)
    return ok is not False
