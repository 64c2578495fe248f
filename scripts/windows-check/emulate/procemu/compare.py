"""The line-by-line comparison: the `procnotify:` lines the image printed
through DbgPrintEx, and what its query replies print, against the
`procnotify:` lines and query blocks `simulate script` printed for the same
script.

What is compared, from the simulator's text output: every line starting
`procnotify: `, and every query block: a line starting `== query`, then the
lines after it up to the next empty line (`procnotify-ctl table`'s lines for
the reply). Every other line of the simulator's (its `kernel:` trace, `==`
notes, tables, the summary) is not. On the image's side the lines are, in
the order they happened, every DbgPrintEx line and every query's block
(ioctl.py): a heading built by query.heading from what the request
returned, then `procnotify-ctl --reply FILE table`'s output for the bytes
the driver wrote. So the real driver's reply, decoded and printed by the
real tool, must equal what the simulator's engine answers for the same
script, line for line, headings included (buffer, status, bytes written,
rows). When procnotify is not loaded the image has no device to ask: the
emulator checks that the framework has no enabled interface and writes the
simulator's "not loaded" heading.

Three rules, all explicit, and nothing else is filtered or reordered:

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
3. `--query-after-each` (`#@ query-after-each`) runs the simulator with that
   flag; the emulator queries after the same steps (steps.QUERY_AFTER, each
   hot-add attempt, the end-of-session unload). No line is moved for it.
   Queries and `#@ dpcs at-unload` are refused together (scenario.py): the
   visits a query reads would differ by design.
"""

import difflib
import re

DRIVER_ONLY = (
    ('loaded', re.compile(r'^procnotify: loaded, context=0x[0-9a-f]+$')),
    ('unloaded', re.compile(r'^procnotify: unloaded=true$')),
)
DEREGISTERING = 'procnotify: unload: deregistering'
VISIT = 'procnotify: visit '


QUERY = '== query'


def simulator_lines(output):
    """The `procnotify:` lines and the query blocks of `simulate script`'s
    text output, in order."""
    kept, in_query = [], False
    for line in output.splitlines():
        if in_query and line:
            kept.append(line)
            continue
        in_query = line.startswith(QUERY)
        if in_query or line.startswith('procnotify: '):
            kept.append(line)
    return kept


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
