#!/usr/bin/env python3
"""Runs the linked procnotify.sys under an x86-64 emulator (speakeasy-emulator
over unicorn) through every scenario, and compares the `procnotify:` lines it
prints with the simulator's for the same script.

    emulate.py --sys procnotify.sys [--pdb procnotify.pdb] --profile debug|release
               [--simulate PATH] [--ctl PATH] [--scenario NAME ...] [--list] [--trace]

One line per scenario, `== emulate NAME: PASS|FAIL ...` with the deepest
stack use, then `== emulate: N of M scenarios passed`; exit status 1 if any
failed, 2 for bad arguments or a scenario the emulator cannot run. What is
modelled and what is not: docs/windows-check.md, section "Emulation".
"""

import argparse
import fnmatch
import os
import sys
import time

sys.dont_write_bytecode = True            # never leave __pycache__ in the checkout
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from procemu import catalogue, contract, simulator      # noqa: E402
from procemu.scenario import ScriptError                         # noqa: E402

STACK_LIMIT = 12 * 1024                   # half of the 24 KiB x64 kernel stack


def arguments():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--sys', required=True, help='the linked driver image')
    ap.add_argument('--pdb', help='its PDB: names the functions in fault reports (needs llvm-pdbutil)')
    ap.add_argument('--profile', required=True, choices=('debug', 'release'))
    ap.add_argument('--simulate', help='the simulate binary (default: cargo builds it)')
    ap.add_argument('--ctl', help='the procnotify-ctl binary, which prints query replies (default: cargo builds it)')
    ap.add_argument('--scenario', action='append', default=[], metavar='NAME',
                    help='run only these scenarios (shell patterns; repeatable)')
    ap.add_argument('--list', action='store_true', help='list the scenarios and exit')
    ap.add_argument('--trace', action='store_true', help='print every kernel call and line as it happens')
    return ap.parse_args()


def selected(name, patterns):
    return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)


def main():
    a = arguments()
    if not os.path.isfile(a.sys):
        print('emulate: no such image: %s' % a.sys, file=sys.stderr)
        return 2
    try:
        from procemu import run                                 # speakeasy is imported here
        scripts = catalogue.files()
        abi = contract.read_abi(catalogue.REPO)
    except ImportError as error:
        print('emulate: %s: install scripts/windows-check/emulate/requirements.txt' % error, file=sys.stderr)
        return 2
    except (ScriptError, contract.AbiError) as error:
        print('emulate: %s' % error, file=sys.stderr)
        return 2
    if a.list:
        for name, _ in scripts:
            print(name)
        for sweep in catalogue.SWEEPS:
            print('alloc-%s-baseline, alloc-%s-n1.. (generated)' % (sweep[0], sweep[0]))
        return 0
    sim = simulator.Simulator(a.simulate)
    ctl = simulator.Ctl(a.ctl)
    tools = run.Tools(sim, ctl, abi, run.Symbols(a.sys, a.pdb), STACK_LIMIT, a.trace)
    print('== emulate: %s image %s (%d bytes), simulator %s, procnotify-ctl %s'
          % (a.profile, a.sys, os.path.getsize(a.sys), sim.path, ctl.path))
    started, outcomes = time.time(), []
    for name, script in scripts:
        if selected(name, a.scenario):
            outcomes.append(run.scenario(a.sys, script, tools)[0])
    for sweep in catalogue.SWEEPS:
        if any(selected('alloc-%s-n%d' % (sweep[0], n), a.scenario) for n in range(1, 64)) or \
                selected('alloc-%s-baseline' % sweep[0], a.scenario):
            outcomes.extend(run.sweep(a.sys, sweep, tools, a.scenario))
    passed = sum(outcomes)
    deepest = max(run.DEEPEST or [0])
    print('== emulate: %d of %d scenarios passed (%s, deepest stack use %s of %s bytes, limit %s; %.0f s)'
          % (passed, len(outcomes), a.profile, format(deepest, ','), format(24 * 1024, ','),
             format(STACK_LIMIT, ','), time.time() - started))
    return 0 if outcomes and passed == len(outcomes) else 1


if __name__ == '__main__':
    sys.exit(main())
