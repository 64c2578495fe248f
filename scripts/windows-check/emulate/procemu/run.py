"""One scenario, end to end: the image in the emulator, the script in the
simulator, the checks, the comparison, and its summary line."""

import fnmatch
import re
import subprocess
import time
import traceback

from . import catalogue, compare
from .detectors import detected, inject_after
from .session import Session
from .simulator import pool_allocations

DEEPEST = []                              # every scenario's deepest stack use


def _n(value):
    return format(value, ',')


class Symbols:
    """Function names for addresses in fault reports. The image's .pdata
    gives each function's extent; the PDB's public symbols (llvm-pdbutil,
    demangled by llvm-cxxfilt when it is there) name those that start where
    a public symbol does. A release PDB has few public symbols, so most
    addresses there get the function's start only. Without a PDB, addresses
    stay bare."""

    def __init__(self, image, pdb):
        self.functions = []               # (start rva, end rva)
        self.names = {}                   # start rva -> name
        if not pdb:
            return
        try:
            import pefile
            pe = pefile.PE(image, fast_load=True)
            pe.parse_data_directories(directories=[pefile.DIRECTORY_ENTRY['IMAGE_DIRECTORY_ENTRY_EXCEPTION']])
            sections = [s.VirtualAddress for s in pe.sections]
            self.functions = sorted((e.struct.BeginAddress, e.struct.EndAddress)
                                    for e in getattr(pe, 'DIRECTORY_ENTRY_EXCEPTION', []))
            out = subprocess.run(['llvm-pdbutil', 'dump', '-publics', pdb], capture_output=True, text=True).stdout
        except (OSError, ImportError):
            return
        found = [(sections[int(section) - 1] + int(offset), name) for name, section, offset
                 in re.findall(r'`([^`]+)`\n\s+flags = function, addr = (\d+):(\d+)', out)
                 if 0 < int(section) <= len(sections)]
        names = [name for _, name in found]
        try:
            plain = subprocess.run(['llvm-cxxfilt'], input='\n'.join(names), capture_output=True,
                                   text=True).stdout.splitlines()
        except OSError:
            plain = names
        if len(plain) != len(names):
            plain = names
        self.names = {rva: name for (rva, _), name in zip(found, plain)}

    def annotate(self, text, base):
        def name(match):
            rva = int(match.group(1), 16) - base
            extent = next(((start, end) for start, end in self.functions if start <= rva < end), None)
            if extent is None:
                return match.group(0)
            fn = self.names.get(extent[0], 'the function at image+0x%x' % extent[0])
            return match.group(0) + ' (%s+0x%x)' % (fn, rva - extent[0])
        return re.sub(r'pc (0x[0-9a-f]+)', name, text) if self.functions else text


class Tools:
    """What every scenario uses: the simulator, procnotify-ctl, the ABI's
    numbers (contract.read_abi), the image's symbols, the stack limit, and
    whether to trace."""

    def __init__(self, sim, ctl, abi, symbols, limit, trace):
        self.sim, self.ctl, self.abi, self.symbols, self.limit, self.trace = sim, ctl, abi, symbols, limit, trace


def _emulate(image, script, tools):
    """(Session or None, its result, the exception text if the emulator itself broke)."""
    try:
        session = Session(image, script, tools.abi, tools.ctl, tools.trace)
        session.run()
        if script.detector:
            inject_after(session)
        session.result.stack = session.guest.stack_used()
        return session, session.result, None
    except Exception:                     # an emulator bug: report, never hide
        return None, None, traceback.format_exc()


def scenario(image, script, tools):
    """Runs, checks and reports one scenario. Returns (passed, result)."""
    sim, symbols, limit = tools.sim, tools.symbols, tools.limit
    started = time.time()
    session, r, crash = _emulate(image, script, tools)
    if crash:
        print('== emulate %s: FAIL (the emulator raised)\n%s' % (script.name, _indent(crash)))
        return False, None
    DEEPEST.append(r.stack)
    base = session.guest.module.base
    problems = [(k, symbols.annotate(t, base)) for k, t in r.violations] + [('fault', u) for u in r.unfired]
    lines, counts = compare.split_driver_only(r.lines)
    problems += [('driver-only', p) for p in compare.check_driver_only(counts, r.successful_loads, r.unloads)]
    kind = script.detector[0] if script.detector else None
    if kind == 'line-diff':                   # the detector test: alter the first visit line
        at = next((i for i, line in enumerate(lines) if line.startswith(compare.VISIT)), 0)
        lines = lines[:at] + [lines[at] + ' (altered)'] + lines[at + 1:]
    mismatch, sim_out = None, ''
    if kind in (None, 'line-diff'):
        code, sim_out, err = sim.run(script)
        if code != 0:
            problems.append(('simulate', 'simulate script exited %d:\n%s' % (code, err.strip())))
        else:
            want = compare.expected(compare.simulator_lines(sim_out), script.dpcs_at_unload)
            mismatch = compare.diff(want, lines, script.name)
    stack_limit = script.detector[1] if kind == 'stack' else limit
    seconds = time.time() - started
    if kind:
        passed, seen = detected(kind, r.violations, mismatch, r.stack, stack_limit)
        print('== emulate %s: %s (detector %s: %s; %.1f s)'
              % (script.name, 'PASS' if passed else 'FAIL', kind, symbols.annotate(seen, base), seconds))
        return passed, r
    if mismatch:
        problems.append(('diff', 'the image\'s lines differ from the simulator\'s:\n' + mismatch))
    if r.stack > stack_limit:
        problems.append(('stack', 'deepest stack use %s bytes is above %s' % (_n(r.stack), _n(stack_limit))))
    _report(script, r, lines, counts, problems, seconds, session)
    return not problems, r


def _report(script, r, lines, counts, problems, seconds, session):
    pool = session.pool
    freed = sum(1 for b in pool.driver_blocks() if b.freed)
    detail = ('%d lines = simulate, %d driver-only; ExAllocatePool2 %d (%d failed, %d freed); '
              '%d expectations (+%d left to simulate); stack %s of %s bytes; %.1f s'
              % (len(lines), sum(counts.values()), pool.calls, len(pool.injected), freed,
                 r.expectations, script.simulator_only, _n(r.stack), _n(24 * 1024), seconds))
    print('== emulate %s: %s (%s)' % (script.name, 'FAIL' if problems else 'PASS', detail))
    for kind, text in problems:
        print(_indent('[%s] %s' % (kind, text)))


def _indent(text):
    return '\n'.join('   ' + line for line in text.rstrip().splitlines())


def sweep(image, spec, tools, patterns):
    """A baseline run, then one scenario per allocation the swept step makes."""
    name, _, _, step = spec
    base = catalogue.baseline(spec)
    ok, r = scenario(image, base, tools)
    outcomes = [ok]
    if r is None:
        return outcomes
    counts = [calls for command, calls in r.step_allocs if command == step]
    code, out, _ = tools.sim.run(base)
    total = sum(calls for _, calls in r.step_allocs)
    if not counts or pool_allocations(out) != total:
        print('== emulate alloc-%s-sweep: FAIL (the image made %d ExAllocatePool2 calls, the simulator counts %s)'
              % (name, total, pool_allocations(out)))
        return outcomes + [False]
    for script in catalogue.sweep_scripts(spec, counts[0]):
        if not patterns or any(fnmatch.fnmatchcase(script.name, p) for p in patterns):
            outcomes.append(scenario(image, script, tools)[0])
    return outcomes
