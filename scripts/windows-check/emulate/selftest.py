#!/usr/bin/env python3
"""Offline self-test of the emulation's own logic, for CI (no headers, no
image, no speakeasy): the scenario parser, the line comparison and its two
rules, and every scenario file run through `simulate script` with all its
expectations met.

    python3 scripts/windows-check/emulate/selftest.py [--simulate PATH]

Prints each failed check (every check with -v), then `selftest: N passed, M
failed`; exit status 1 if any failed.
"""

import argparse
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from procemu import catalogue, compare                           # noqa: E402
from procemu.scenario import Script, ScriptError, STATUS         # noqa: E402
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


def simulator_checks(sim):
    scripts = catalogue.files()
    check('scenario files and examples found', len(scripts) >= 10, len(scripts))
    names = [name for name, _ in scripts]
    check('scenario names are unique', len(set(names)) == len(names))
    for sweep in catalogue.SWEEPS:
        scripts.append((None, catalogue.baseline(sweep)))
        scripts.extend((None, s) for s in catalogue.sweep_scripts(sweep, 1))
    for _, script in scripts:
        code, out, err = sim.run(script)
        check('simulate script %s: exit 0, expectations met' % script.name, code == 0, '%d: %s' % (code, err.strip()))
        if script.dpcs_at_unload and code == 0:
            lines = compare.simulator_lines(out)
            check('%s: the moved lines are the same lines' % script.name,
                  sorted(compare.expected(lines, True)) == sorted(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--simulate', help='the simulate binary (default: cargo builds it)')
    ap.add_argument('-v', '--verbose', action='store_true', help='print every check, not only failures')
    a = ap.parse_args()
    global VERBOSE
    VERBOSE = a.verbose
    parser_checks()
    comparison_checks()
    simulator_checks(Simulator(a.simulate))
    failed = RESULTS.count(False)
    print('selftest: %d passed, %d failed' % (len(RESULTS) - failed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
