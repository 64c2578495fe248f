"""Which scenarios run: the files of tests/windows-scenarios/, the README's
bad-input examples that the emulator can run, and the generated allocation
sweeps.

A sweep fails the N-th ExAllocatePool2 of a step for every N that step
reaches (a hot-add sweep queries the table after the failed add and after
the next one). How many it reaches is measured first, by a baseline run of the same
machine in the emulator, and that count is checked against the simulator's
own pool count for the baseline (they must agree, or the sweep would not be
"every N").
"""

import os

from .scenario import Script

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, '..', '..', '..', '..'))
SCENARIO_DIR = os.path.join(REPO, 'tests', 'windows-scenarios')
EXAMPLE_DIR = os.path.join(REPO, 'examples', 'scripts')
# examples/scripts/ files whose every line the emulator runs (the others use
# `read`, `table` or `fail-init`, which only the simulator can do).
EXAMPLES = ('add-complete-without-add-start', 'duplicate-add-start', 'index-past-maximum',
            'out-of-order', 'unknown-state')
# (name, boot, max, the step whose allocations are swept)
SWEEPS = (('load-b1', 1, 4, 'load'), ('load-b4', 4, 8, 'load'), ('load-b64', 64, 2048, 'load'),
          ('hot-add-b4', 4, 8, 'hot-add'), ('hot-add-b64', 64, 2048, 'hot-add'))


def files():
    """[(name, Script)] of the scenario files and the examples, in name order."""
    found = []
    for name in sorted(os.listdir(SCENARIO_DIR)):
        if name.endswith('.txt'):
            found.append((name[:-4], os.path.join(SCENARIO_DIR, name)))
    for name in EXAMPLES:
        found.append(('example-' + name, os.path.join(EXAMPLE_DIR, name + '.txt')))
    scripts = []
    for name, path in found:
        with open(path, encoding='utf-8') as f:
            scripts.append((name, Script(name, f.read())))
    return scripts


def baseline(sweep):
    """The machine of a sweep, with nothing failing: load, one hot-add, unload."""
    name, boot, maximum, _ = sweep
    text = ('# Baseline of the %s allocation sweep: how many ExAllocatePool2 calls the\n'
            '# load and a hot-add make.\nboot %d\nmax %d\nload\nexpect load ok\nhot-add\nexpect hot-add added %d\n'
            % (name, boot, maximum, boot))
    return Script('alloc-%s-baseline' % name, text)


def sweep_scripts(sweep, count):
    """One script per N in 1..=count: the N-th allocation of the swept step fails."""
    name, boot, maximum, step = sweep
    scripts = []
    for n in range(1, count + 1):
        if step == 'load':
            body = ('load fail-alloc %d\nexpect load failed STATUS_INSUFFICIENT_RESOURCES\n'
                    '# a fresh load afterwards works\nload\nexpect load ok\n' % n)
        else:
            body = ('load\nexpect load ok\nhot-add fail-alloc %d\n'
                    'expect hot-add failed %d STATUS_INSUFFICIENT_RESOURCES\n'
                    '# the query after the failed add, then the next add reuses the index\nquery\n'
                    'hot-add\nexpect hot-add added %d\nquery\n' % (n, boot, boot))
        text = ('# Generated: allocation %d of %d of the %s fails.\nboot %d\nmax %d\n%s'
                % (n, count, step, boot, maximum, body))
        scripts.append(Script('alloc-%s-n%d' % (name, n), text))
    return scripts
