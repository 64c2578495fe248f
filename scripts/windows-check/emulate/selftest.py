#!/usr/bin/env python3
"""Offline self-test of the emulation's own logic, for CI (no headers, no
image, no speakeasy): the scenario parser, the line comparison and its
rules, the query's judgements and heading (procemu/query.py), the ABI's
numbers read from its source (procemu/contract.py), and every scenario file
run through `simulate script` with all its expectations met, its query
headings rebuilt by query.heading exactly.

    python3 scripts/windows-check/emulate/selftest.py [--simulate PATH]

Prints each failed check (every check with -v), then `selftest: N passed, M
failed`; exit status 1 if any failed.
"""

import argparse
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import re                                                        # noqa: E402
import struct                                                    # noqa: E402

from procemu import catalogue, compare, contract, query          # noqa: E402
from procemu.scenario import Script, ScriptError, STATUS, STATUS_NAME  # noqa: E402
from procemu.simulator import Simulator, pool_allocations        # noqa: E402

RESULTS = []
VERBOSE = False


def check(name, condition, detail=''):
    RESULTS.append(bool(condition))
    if VERBOSE or not condition:
        print('%s %s%s' % ('ok  ' if condition else 'FAIL', name, '' if condition else ': %s' % (detail,)))


def refused(text, needle):
    try:
        Script('t', text)
    except ScriptError as error:
        return needle in str(error)
    return False


def parser_checks():
    s = Script('t', 'boot 3\nload\nhot-add 2\nexpect slot 2 online\nexpect stats vetoes=0\n')
    check('max defaults to boot + 4', s.config() == (3, 7, 7), s.config())
    check('expect slot/stats are left to the simulator', s.simulator_only == 2, s.simulator_only)
    check('steps in order', [c for _, c, _ in s.steps] == ['load', 'hot-add'], s.steps)
    s = Script('t', 'boot 64\nmax 2048\nreported-max half\n')
    check('reported-max half', s.config() == (64, 2048, 1024), s.config())
    check('max above 2048 refused', refused('max 4096\n', 'not in 1..=2048'))
    s = Script('t', 'other-driver a veto 4 veto 5 STATUS_DEVICE_BUSY veto 6 0xC0DE0001\n')
    check('other-driver vetoes with default and named statuses',
          s.steps[0][2]['vetoes'] == [(4, STATUS['STATUS_ACCESS_DENIED']), (5, 0x80000011), (6, 0xC0DE0001)],
          s.steps[0][2])
    s = Script('t', 'notify add-failure 4294967295 status STATUS_UNSUCCESSFUL\n')
    check('notify defaults group/number from the index',
          (s.steps[0][2]['group'], s.steps[0][2]['number']) == (67108863, 63), s.steps[0][2])
    for text, needle in (('read 2\n', 'read path'), ('table\n', 'table'), ('load fail-init 1\n', 'fail-init'),
                         ('hot-add fail-init\n', 'fail-init'), ('fault fail-init 3\n', 'fail-init'),
                         ('load\nboot 2\n', 'before the first action'), ('frobnicate\n', 'unknown command'),
                         ('#@ detector nonsense\n', 'unknown directive'), ('expect read found\n', 'does not check'),
                         ('boot 4\nmax 2\n', 'below boot'), ('hot-add veto a STATUS_NOPE\n', 'unknown status')):
        check('refused: %r' % text.strip(), refused(text, needle), 'no error naming %r' % needle)
    s = Script('t', '#@ dpcs at-unload\n#@ detector stack 512\n')
    check('directives', s.dpcs_at_unload and s.detector == ('stack', 512), (s.dpcs_at_unload, s.detector))
    s = Script('t', '#@ query-after-each\nload\nquery\nquery bytes=0x40\n'
                    '#@ ioctl input=4 expect STATUS_INVALID_PARAMETER\n'
                    '#@ ioctl code=0x00226004 bytes=8 expect STATUS_INVALID_DEVICE_REQUEST\n')
    check('query lines, query-after-each, ioctl directives in place',
          s.query_after_each and [(c, a) for _, c, a in s.steps] == [
              ('load', {}), ('query', {'bytes': None}), ('query', {'bytes': 64}),
              ('ioctl', {'code': 0x226000, 'input': 4, 'bytes': 64, 'expect': 0xC000000D}),
              ('ioctl', {'code': 0x226004, 'input': 0, 'bytes': 8, 'expect': 0xC0000010})], s.steps)
    s = Script('t', '#@ detector query tail\n')
    t = Script('t', '#@ detector unbind\n')
    check('query and unbind detectors', (s.detector, t.detector) == (('query', 'tail'), ('unbind', None)),
          (s.detector, t.detector))
    s = Script('t', '#@ query-after-each\nload\nquery\nquery bytes=0x40\n'
                    '#@ ioctl input=4 expect STATUS_INVALID_PARAMETER\n'
                    '#@ ioctl code=0x00226004 bytes=8 expect STATUS_INVALID_DEVICE_REQUEST\n')
    check('ioctl directive keeps its line number', [n for n, c, _ in s.steps if c == 'ioctl'] == [5, 6], s.steps)
    for text, needle in (('query bytes=65601\n', 'at most 65600'), ('query 12\n', 'bytes=N'),
                         ('#@ ioctl code=0x00226003 expect STATUS_SUCCESS\n', 'METHOD_BUFFERED'),
                         ('#@ ioctl input=4\n', 'expect STATUS'), ('#@ ioctl size=4 expect STATUS_SUCCESS\n', 'size=4'),
                         ('#@ dpcs at-unload\nload\nquery\n', 'not both'),
                         ('#@ dpcs at-unload\n#@ query-after-each\n', 'not both'),
                         ('#@ detector query nope\n', 'detector query needs')):
        check('refused: %r' % text.strip(), refused(text, needle), 'no error naming %r' % needle)


def status_name_checks():
    """The emulator names statuses as procnotify's NtStatus does (its query
    headings must equal simulate's)."""
    with open(os.path.join(catalogue.REPO, 'crates', 'procnotify-core', 'src', 'values.rs'), encoding='utf-8') as f:
        rust = f.read()
    consts = {name: int(value.replace('_', ''), 0) for name, value in
              re.findall(r'pub const (\w+): Self = Self(?:::from_bits)?\((0x[0-9A-Fa-f_]+|\d+)\)', rust)}
    names = {consts.get(c): n for c, n in re.findall(r'\(Self::(\w+), "(STATUS_\w+)"\)', rust)}
    check('NtStatus::NAMES read from values.rs', len(names) >= 13, names)
    check('scenario.STATUS names every status NtStatus names, with the same values', names == STATUS_NAME,
          set(names.items()) ^ set(STATUS_NAME.items()))


def abi_checks():
    abi = contract.read_abi(catalogue.REPO)
    with open(os.path.join(catalogue.REPO, 'docs', 'query.md'), encoding='utf-8') as f:
        docs = f.read()
    check('abi: the GUID is the one docs/query.md states', '`GUID_DEVINTERFACE_PROCNOTIFY` = `%s`'
          % contract.guid_text(abi['guid']) in docs, contract.guid_text(abi['guid']))
    check('abi: IOCTL_PROCNOTIFY_QUERY, header and row sizes',
          (abi['ioctl'], abi['header'], abi['row']) == (0x226000, query.HEADER, query.ROW), abi)
    try:
        contract.parse_abi('pub const GUID_DEVINTERFACE_PROCNOTIFY: u32 = 0;')
        check('abi: a source without the definitions is refused', False)
    except contract.AbiError as error:
        check('abi: a source without the definitions is refused', 'not found' in str(error), error)


def reply(rows_in_table, rows_written, capacity=8):
    header = struct.pack('<16I', query.MAGIC, 1, 64, 32, 64 + 32 * rows_in_table, rows_in_table, rows_written,
                         rows_written, capacity, capacity, capacity, 0, 0, 0, 0, 0)
    return header + bytes(32 * rows_written)


def query_checks():
    full = reply(5, 5)
    cases = ((0, full, (query.STATUS_BUFFER_TOO_SMALL, 0)), (63, b'', (query.STATUS_BUFFER_TOO_SMALL, 0)),
             (64, reply(5, 0), (query.STATUS_BUFFER_OVERFLOW, 64)), (127, full, (query.STATUS_BUFFER_OVERFLOW, 96)),
             (224, full, (query.STATUS_SUCCESS, 224)), (65600, full, (query.STATUS_SUCCESS, 224)),
             (64, reply(0, 0), (query.STATUS_SUCCESS, 64)), (100, b'', None))
    for size, data, want in cases:
        got = query.expected_completion(size, data)
        check('expected_completion(%d bytes) = %s' % (size, want), got == want, got)
    pad = bytes([query.UNINITIALISED])
    check('buffer: zero past the bytes written is right',
          not query.buffer_problems(b'\x11' * 64 + bytes(64), 0, 128, True, 64))
    got = query.buffer_problems(b'\x11' * 64 + bytes(10) + b'\x01' + bytes(53), 0, 128, True, 64)
    check('buffer: a non-zero byte past the bytes written is found', len(got) == 1 and 'byte 74' in got[0], got)
    check('buffer: untouched when refused is right', not query.buffer_problems(b'\x01\x02' + pad * 62, 2, 64, False, 0))
    got = query.buffer_problems(b'\x01\x02' + bytes(62), 2, 64, False, 0)
    check('buffer: a write to a refused request\'s buffer is found', len(got) == 1 and 'byte 2 ' in got[0], got)
    got = query.buffer_problems(pad * 63 + b'\x00', 0, 63, False, 0)
    check('buffer: a write past the end (in the 16-byte rounding) is found', len(got) == 1 and 'past the end' in got[0],
          got)
    addr = 0xFFFFB00000003F70
    data = b'\x00' * 5 + struct.pack('<Q', addr) + b'\x00' * 3
    check('addresses: an unaligned pointer is found', query.addresses(data, [(0xFFFFB00000000000, 0xFFFFB00001000000)])
          == [(5, addr)])
    pool = [(0xFFFFB00000000000, 0xFFFFB00001000000)]
    check('addresses: counters are not addresses', not query.addresses(full, pool))
    check('nt_error: warnings are not errors', query.nt_error(0xC0000023) and not query.nt_error(0x80000005)
          and not query.nt_error(0))


HEADING = re.compile(r'^== query (?:after (\S+) )?\(([^)]*)\): IOCTL_PROCNOTIFY_QUERY into (\d+) bytes'
                     r'(?: \(64 \+ 32 \u00d7 capacity (\d+), as procnotify-ctl asks after its 64-byte probe\))?: '
                     r'\S+ \(0x([0-9A-F]{8})\), (\d+) bytes written: (?:no reply|the header and (\d+) of the '
                     r'table\'s (\d+) rows)$')
NOT_LOADED = re.compile(r'^== query (?:after (\S+) )?\(([^)]*)\): procnotify is not loaded')


def rebuilt_heading(line):
    """query.heading's line for the numbers a simulate heading states, or None."""
    m = NOT_LOADED.match(line)
    if m:
        return query.heading(m.group(2), m.group(1), None, STATUS_NAME)
    m = HEADING.match(line)
    if not m:
        return None
    after, at, size, capacity, status, written, rows_written, rows_in_table = m.groups()
    data = b''
    if int(written):
        data = struct.pack('<8I', query.MAGIC, 1, 64, 32, 0, int(rows_in_table), int(rows_written), 0)
        data += bytes(int(written) - len(data))
    answer = {'buffer': int(size), 'capacity': None if capacity is None else int(capacity),
              'status': int(status, 16), 'bytes': data, 'decoded': True}
    return query.heading(at, after, answer, STATUS_NAME)


def comparison_checks():
    lines = ['procnotify: load: capacity=4 registering', 'procnotify: loaded, context=0xffffb00000002f70',
             'procnotify: visit index=0 visits=1', 'procnotify: unload: deregistering',
             'procnotify: unloaded=true', 'procnotify: unloaded=false']
    kept, counts = compare.split_driver_only(lines)
    check('driver-only lines split out (unloaded=false is not one)',
          counts == {'loaded': 1, 'unloaded': 1} and kept[-1] == 'procnotify: unloaded=false', (kept, counts))
    check('driver-only counts must match the loads and unloads',
          not compare.check_driver_only(counts, 1, 1) and len(compare.check_driver_only(counts, 2, 0)) == 2)
    sim = ['a', 'procnotify: visit index=0 visits=1', 'b', compare.DEREGISTERING, 'c',
           'd', 'procnotify: visit index=1 visits=1', compare.DEREGISTERING, 'e']
    moved = compare.expected(sim, True)
    check('dpcs at-unload: visit lines move after each deregistering line, in order',
          moved == ['a', 'b', compare.DEREGISTERING, 'procnotify: visit index=0 visits=1', 'c', 'd',
                    compare.DEREGISTERING, 'procnotify: visit index=1 visits=1', 'e'], moved)
    check('without the directive nothing moves', compare.expected(sim, False) == sim)
    check('equal lines: no diff', compare.diff(['x', 'y'], ['x', 'y'], 't') is None)
    d = compare.diff(['x', 'y'], ['x', 'z'], 't') or ''
    check('different lines: a unified diff', '-y' in d and '+z' in d and d.startswith('--- simulate'), d)
    check('a missing line is a difference', compare.diff(['x', 'y'], ['x'], 't') is not None)
    out = 'kernel: x\nprocnotify: a\n== note\nprocnotify: b\npool: allocations=4 frees=4 live=0\n'
    check('simulator lines and pool count read from its output',
          compare.simulator_lines(out) == ['procnotify: a', 'procnotify: b'] and pool_allocations(out) == 4)
    out = ('procnotify: a\n\n== query (line 3): X\nprocnotify table (IOCTL...)\n    [  0] row\n\n== hot-add\n'
           'kernel: y\nprocnotify: b\n\n== query (line 5): not loaded\n\nprocnotify table (`dx`)\n    [  1] row\n')
    got = compare.simulator_lines(out)
    check('query blocks are kept up to the empty line; other tables are not',
          got == ['procnotify: a', '== query (line 3): X', 'procnotify table (IOCTL...)', '    [  0] row',
                  'procnotify: b', '== query (line 5): not loaded'], got)


def simulator_checks(sim):
    scripts = catalogue.files()
    check('scenario files and examples found', len(scripts) >= 10, len(scripts))
    names = [name for name, _ in scripts]
    check('scenario names are unique', len(set(names)) == len(names))
    for sweep in catalogue.SWEEPS:
        scripts.append((None, catalogue.baseline(sweep)))
        scripts.extend((None, s) for s in catalogue.sweep_scripts(sweep, 1))
    headings = 0
    for _, script in scripts:
        code, out, err = sim.run(script)
        check('simulate script %s: exit 0, expectations met' % script.name, code == 0, '%d: %s' % (code, err.strip()))
        for line in out.splitlines():
            if line.startswith(compare.QUERY):
                headings += 1
                check('%s: query.heading rebuilds %r' % (script.name, line), rebuilt_heading(line) == line,
                      rebuilt_heading(line))
        if script.dpcs_at_unload and code == 0:
            lines = compare.simulator_lines(out)
            check('%s: the moved lines are the same lines' % script.name,
                  sorted(compare.expected(lines, True)) == sorted(lines))
    check('query headings were rebuilt (the query scenarios ran)', headings >= 20, headings)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--simulate', help='the simulate binary (default: cargo builds it)')
    ap.add_argument('-v', '--verbose', action='store_true', help='print every check, not only failures')
    a = ap.parse_args()
    global VERBOSE
    VERBOSE = a.verbose
    parser_checks()
    comparison_checks()
    status_name_checks()
    abi_checks()
    query_checks()
    simulator_checks(Simulator(a.simulate))
    failed = RESULTS.count(False)
    print('selftest: %d passed, %d failed' % (len(RESULTS) - failed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
