"""The line-by-line comparison: the `procnotify:` lines the image printed
through DbgPrintEx against the `procnotify:` lines `simulate script` printed
for the same script.

Two rules, both explicit, and nothing else is filtered or reordered:

1. Driver-only lines. src/entry.rs prints two lines the simulator cannot:
   `procnotify: loaded, context=0x...` (the context's address, after a
   successful DriverEntry) and `procnotify: unloaded=true` (after
   EvtDriverUnload). They are taken out of the image's lines before the
   comparison, and checked instead: exactly one `loaded` line per successful
   load and one `unloaded=true` per unload (the runner checks that the
   address is a live pool block when it is printed). `unloaded=false`, or
   either line at any other count, is a failure.
2. `#@ dpcs at-unload`. The simulator prints a DPC's `visit` line at the end
   of the step that queued it. A scenario with that directive keeps every
   DPC queued until unload's KeFlushQueuedDpcs runs it, so the image prints
   the `visit` lines right after `procnotify: unload: deregistering`: the
   expected lines are the simulator's with each load's `visit` lines moved
   there, in their order.
"""

import difflib
import re

DRIVER_ONLY = (
    ('loaded', re.compile(r'^procnotify: loaded, context=0x[0-9a-f]+$')),
    ('unloaded', re.compile(r'^procnotify: unloaded=true$')),
)
DEREGISTERING = 'procnotify: unload: deregistering'
VISIT = 'procnotify: visit '


def simulator_lines(output):
    """The `procnotify:` lines of `simulate script`'s text output."""
    return [line for line in output.splitlines() if line.startswith('procnotify: ')]


def split_driver_only(lines):
    """(lines to compare, {kind: count of driver-only lines})."""
    kept, counts = [], {kind: 0 for kind, _ in DRIVER_ONLY}
    for line in lines:
        kind = next((kind for kind, pattern in DRIVER_ONLY if pattern.match(line)), None)
        if kind is None:
            kept.append(line)
        else:
            counts[kind] += 1
    return kept, counts


def check_driver_only(counts, loads, unloads):
    """Problems with the driver-only lines, given the successful loads and unloads."""
    problems = []
    if counts['loaded'] != loads:
        problems.append('%d `loaded, context=` lines for %d successful loads' % (counts['loaded'], loads))
    if counts['unloaded'] != unloads:
        problems.append('%d `unloaded=true` lines for %d unloads' % (counts['unloaded'], unloads))
    return problems


def expected(lines, dpcs_at_unload):
    """The simulator's lines as the image must print them (rule 2)."""
    if not dpcs_at_unload:
        return list(lines)
    out, visits = [], []
    for line in lines:
        if line.startswith(VISIT):
            visits.append(line)
            continue
        out.append(line)
        if line == DEREGISTERING:
            out.extend(visits)
            visits = []
    return out + visits


def diff(want, got, name):
    """None when equal, else a unified diff (simulator first)."""
    if want == got:
        return None
    return '\n'.join(difflib.unified_diff(want, got, 'simulate script %s' % name,
                                          'procnotify.sys (emulated) %s' % name, lineterm='', n=2))
