"""Scenarios: the simulator's script format (docs/simulator.md, "The script
format"), read here so that ONE text drives both `simulate script` and the
emulated image.

The emulator runs the subset of the format that makes sense against the
real binary and refuses the rest with a message (exit status 2): `read`,
`read-all` and `table` call into procnotify's own code, and `fail-init`
injects a fault inside it, which only the simulator can do. `expect slot`
and `expect stats` read the driver's table and counters: the simulator
checks them, the emulator counts them as left to it.

Lines starting `#@` are directives for the emulator (comments to the
simulator):

- `#@ dpcs at-unload`: queued DPCs are not delivered at the end of each step
  but left queued, so unload's KeFlushQueuedDpcs must run them before the
  table is freed (see compare.py for what this does to the comparison).
- `#@ detector KIND [ARG]`: a test of a detector, not of the driver: the
  emulator injects a fault (below) and the scenario passes only if the
  detector named KIND reports it. Not compared with the simulator.
  `use-after-free dpc-after-unload | callback-after-deregister`, `leak`,
  `line-diff`, `stack BYTES` (a stack limit low enough to be exceeded),
  `query tail | address | status` (a query's reply tampered with after the
  driver completed it), `unbind` (DriverUnload left to the framework, as a
  stub that ignored DisplaceDriverUnload would).
- `#@ query-after-each`: the simulator runs with `--query-after-each`, and
  the emulator issues the query to the image after the same steps (load,
  reload, unload, toggle, notify, each hot-add attempt, the end-of-session
  unload).
- `#@ ioctl [code=C] [input=N] [bytes=N] expect STATUS`, at its place among
  the steps: a device I/O control request the emulator alone sends (the
  simulator has no device): code C (default IOCTL_PROCNOTIFY_QUERY), an
  input buffer of N bytes (default 0), an output buffer of N bytes (default
  64); the driver must complete it with STATUS, Information 0, and the
  buffer untouched. For the refusals: a non-empty input buffer, another code.

`query [bytes=N]` is run by both: the emulator delivers IOCTL_PROCNOTIFY_QUERY
to the image's EvtIoDeviceControl (after procnotify-ctl's 64-byte probe
when no N is given) and prints the reply through `procnotify-ctl --reply`
(see compare.py).
"""

import re

MAX_PROCESSORS = 2048

STATUS = {
    'STATUS_SUCCESS': 0x00000000, 'STATUS_UNSUCCESSFUL': 0xC0000001,
    'STATUS_INVALID_PARAMETER': 0xC000000D, 'STATUS_ACCESS_DENIED': 0xC0000022,
    'STATUS_INSUFFICIENT_RESOURCES': 0xC000009A, 'STATUS_NOT_SUPPORTED': 0xC00000BB,
    'STATUS_DEVICE_BUSY': 0x80000011, 'STATUS_NO_MEMORY': 0xC0000017,
    'STATUS_DEVICE_NOT_READY': 0xC00000A3, 'STATUS_TIMEOUT': 0x00000102,
    'STATUS_BUFFER_OVERFLOW': 0x80000005, 'STATUS_BUFFER_TOO_SMALL': 0xC0000023,
    'STATUS_INVALID_DEVICE_REQUEST': 0xC0000010,
}
STATUS_NAME = {value: name for name, value in STATUS.items()}
STATES = {'add-start': 0, 'add-complete': 1, 'add-failure': 2}
DETECTORS = {'use-after-free', 'leak', 'line-diff', 'stack', 'query', 'unbind'}
INJECTIONS = {'dpc-after-unload', 'callback-after-deregister'}
TAMPERS = {'tail', 'address', 'status'}
MAX_QUERY_BYTES = 65600           # simulate's limit for `query bytes=N`: the reply of 2048 processors
IOCTL_PROCNOTIFY_QUERY = 0x00226000
METHOD_BUFFERED = 0


class ScriptError(Exception):
    pass


def number(text):
    try:
        value = int(text[2:], 16) if text.lower().startswith('0x') else int(text, 10)
    except ValueError:
        raise ScriptError('`%s` is not a whole number' % text) from None
    if not 0 <= value <= 0xFFFFFFFF:
        raise ScriptError('`%s` is not in 0..=4294967295' % text)
    return value


def status(text):
    name = text.split('(')[0]
    if name in STATUS:
        return STATUS[name]
    if name.startswith('STATUS_'):
        raise ScriptError('unknown status name `%s`' % name)
    return number(name)


def status_text(value):
    """`0xC000009A(STATUS_INSUFFICIENT_RESOURCES)`, as procnotify's lines write it."""
    name = STATUS_NAME.get(value)
    return '0x%08X(%s)' % (value, name) if name else '0x%08X' % value


def state(text):
    return STATES[text] if text in STATES else number(text)


class Script:
    def __init__(self, name, text):
        self.name, self.text = name, text
        self.boot, self.max, self.reported, self.dynamic = 4, None, 'max', True
        self.steps = []            # (line number, command, dict)
        self.dpcs_at_unload = False
        self.query_after_each = False
        self.detector = None       # (kind, argument) for detector tests
        self.simulator_only = 0    # expect lines the emulator leaves to the simulator
        self._parse()

    def config(self):
        """(boot, max, what KeQueryMaximumProcessorCountEx reports)."""
        maximum = min(self.max, MAX_PROCESSORS)
        reported = {'max': maximum, 'half': max(maximum // 2, 1), 'huge': 0xFFFFFFFF}.get(self.reported, self.reported)
        return self.boot, maximum, reported

    def _parse(self):
        for n, raw in enumerate(self.text.splitlines(), 1):
            try:
                if raw.startswith('#@'):
                    self._directive(n, raw[2:].split())
                    continue
                words = raw.split('#')[0].split()
                if words:
                    self._line(n, words[0], words[1:])
            except ScriptError as error:
                raise ScriptError('%s: line %d: %s' % (self.name, n, error)) from None
        if self.max is None:
            self.max = min(self.boot + 4, MAX_PROCESSORS)
        if self.max < self.boot:
            raise ScriptError('%s: max %d is below boot %d' % (self.name, self.max, self.boot))
        if self.dpcs_at_unload and (self.query_after_each or any(c == 'query' for _, c, _ in self.steps)):
            raise ScriptError('%s: a query reads the DPCs\' visit counts, which `#@ dpcs at-unload` leaves '
                              'at 0 in the image and the simulator does not: not both' % self.name)

    def _directive(self, n, words):
        if words == ['dpcs', 'at-unload']:
            self.dpcs_at_unload = True
        elif words == ['query-after-each']:
            self.query_after_each = True
        elif words[:1] == ['ioctl']:
            self.steps.append((n, 'ioctl', _ioctl(words[1:])))
        elif len(words) in (2, 3) and words[0] == 'detector' and words[1] in DETECTORS:
            arg = words[2] if len(words) == 3 else None
            if words[1] == 'use-after-free' and arg not in INJECTIONS:
                raise ScriptError('detector use-after-free needs one of %s' % ', '.join(sorted(INJECTIONS)))
            if words[1] == 'query' and arg not in TAMPERS:
                raise ScriptError('detector query needs one of %s' % ', '.join(sorted(TAMPERS)))
            if words[1] == 'stack':
                arg = number(arg or '')
            self.detector = (words[1], arg)
        else:
            raise ScriptError('unknown directive `#@ %s`' % ' '.join(words))

    def _setup(self, command, args):
        if len(args) != 1:
            raise ScriptError('`%s` takes one value' % command)
        value = args[0]
        if self.steps:
            raise ScriptError('`%s` must come before the first action' % command)
        if command in ('boot', 'max'):
            count = number(value)
            if not 1 <= count <= MAX_PROCESSORS:
                raise ScriptError('%d is not in 1..=%d' % (count, MAX_PROCESSORS))
            setattr(self, command, count)
        elif command == 'reported-max':
            self.reported = value if value in ('max', 'half', 'huge') else number(value)
        elif value in ('on', 'off'):
            self.dynamic = value == 'on'
        else:
            raise ScriptError('dynamic-partitioning is `on` or `off`')

    def _line(self, n, command, args):
        if command in ('boot', 'max', 'reported-max', 'dynamic-partitioning'):
            return self._setup(command, args)
        parse = PARSERS.get(command)
        if parse is None:
            raise ScriptError(REFUSED.get(command, 'unknown command `%s`' % command))
        step = parse(args)
        if step is not None:
            self.steps.append((n, command, step))
        else:
            self.simulator_only += 1


REFUSED = {
    'read': '`read` runs procnotify\'s read path from the simulator; the emulator cannot call into the image there',
    'read-all': '`read-all` runs procnotify\'s read path from the simulator; the emulator cannot',
    'table': '`table` prints the driver\'s table from the simulator; the emulator cannot',
}


def _no_init(args):
    if 'fail-init' in args:
        raise ScriptError('fail-init injects a fault inside procnotify\'s own code: only the simulator can')


def _load(args):
    _no_init(args)
    if not args:
        return {}
    if args[0] == 'fail-alloc' and len(args) == 2:
        return {'fail_alloc': number(args[1])}
    if args == ['fail-register']:
        return {'fail_register': True}
    raise ScriptError('load takes fail-alloc N or fail-register')


def _other(args):
    if not args:
        raise ScriptError('other-driver needs a name')
    name, rest, vetoes = args[0], list(args[1:]), []
    while rest:
        if rest[0] != 'veto' or len(rest) < 2:
            raise ScriptError('other-driver NAME [veto INDEX [STATUS]]...')
        index = number(rest[1])
        rest = rest[2:]
        code = STATUS['STATUS_ACCESS_DENIED']
        if rest and rest[0] != 'veto':
            code, rest = status(rest[0]), rest[1:]
        vetoes.append((index, code))
    return {'name': name, 'vetoes': vetoes}


def _fault(args):
    _no_init(args)
    if args[:1] == ['fail-start'] and len(args) in (2, 3):
        return {'kind': 'fail-start', 'index': number(args[1]),
                'status': status(args[2]) if len(args) == 3 else STATUS['STATUS_UNSUCCESSFUL']}
    if args[:1] == ['fail-prepare'] and len(args) == 2:
        return {'kind': 'fail-prepare', 'index': number(args[1])}
    if args[:1] == ['fail-alloc'] and len(args) == 2:
        return {'kind': 'fail-alloc', 'ordinal': number(args[1])}
    if args == ['fail-register']:
        return {'kind': 'fail-register'}
    raise ScriptError('unknown fault `%s`' % ' '.join(args))


def _hot_add(args):
    _no_init(args)
    if not args:
        return {'count': 1}
    if len(args) == 1 and re.fullmatch(r'\d+|0x[0-9a-fA-F]+', args[0]):
        count = number(args[0])
        if count > 8192:
            raise ScriptError('at most 8192 hot-add attempts')
        return {'count': count}
    kind = args[0]
    if kind == 'veto' and len(args) in (2, 3):
        return {'count': 1, 'veto': args[1],
                'status': status(args[2]) if len(args) == 3 else STATUS['STATUS_ACCESS_DENIED']}
    if kind == 'fail-start' and len(args) in (1, 2):
        return {'count': 1, 'fail_start': status(args[1]) if len(args) == 2 else STATUS['STATUS_UNSUCCESSFUL']}
    if kind == 'fail-alloc' and len(args) == 2:
        return {'count': 1, 'fail_alloc': number(args[1])}
    if args == ['fail-prepare']:
        return {'count': 1, 'fail_prepare': True}
    raise ScriptError('unknown hot-add form `%s`' % ' '.join(args))


def _notify(args):
    if len(args) < 2:
        raise ScriptError('notify STATE INDEX [status S] [group G] [number N]')
    index = number(args[1])
    step = {'state': state(args[0]), 'index': index, 'status': 0, 'group': index // 64, 'number': index % 64}
    rest = args[2:]
    while rest:
        if len(rest) < 2 or rest[0] not in ('status', 'group', 'number'):
            raise ScriptError('notify options are status S, group G, number N')
        step[rest[0]] = status(rest[1]) if rest[0] == 'status' else number(rest[1])
        rest = rest[2:]
    return step


def _expect(args):
    if args[:1] in (['slot'], ['stats']):
        return None                                    # left to the simulator
    if args[:2] == ['load', 'ok'] and len(args) == 2:
        return {'what': 'load-ok'}
    if args[:2] == ['load', 'failed'] and len(args) in (2, 3):
        return {'what': 'load-failed', 'status': status(args[2]) if len(args) == 3 else None}
    if args[:2] == ['hot-add', 'added'] and len(args) in (2, 3):
        return {'what': 'added', 'index': number(args[2]) if len(args) == 3 else None}
    if args[:2] == ['hot-add', 'failed'] and len(args) in (2, 3, 4):
        return {'what': 'failed', 'index': number(args[2]) if len(args) >= 3 else None,
                'status': status(args[3]) if len(args) == 4 else None}
    if args[:2] == ['hot-add', 'refused'] and len(args) in (2, 3):
        return {'what': 'refused', 'reason': args[2] if len(args) == 3 else None}
    if args[:1] == ['outcome'] and len(args) == 2:
        return {'what': 'outcome', 'outcome': args[1]}
    if args[:1] == ['veto'] and len(args) == 2:
        return {'what': 'veto', 'status': None if args[1] == 'none' else status(args[1])}
    if args[:1] == ['processors'] and len(args) == 2:
        return {'what': 'processors', 'count': number(args[1])}
    raise ScriptError('the emulator does not check `expect %s`' % ' '.join(args))


def _query(args):
    if not args:
        return {'bytes': None}
    if len(args) == 1 and args[0].startswith('bytes='):
        size = number(args[0][len('bytes='):])
        if size > MAX_QUERY_BYTES:
            raise ScriptError('bytes=%d: at most %d' % (size, MAX_QUERY_BYTES))
        return {'bytes': size}
    raise ScriptError('`query [bytes=N]` takes one argument at most')


def _ioctl(args):
    """`#@ ioctl [code=C] [input=N] [bytes=N] expect STATUS`."""
    request = {'code': IOCTL_PROCNOTIFY_QUERY, 'input': 0, 'bytes': 64}
    if len(args) < 2 or args[-2] != 'expect':
        raise ScriptError('#@ ioctl [code=C] [input=N] [bytes=N] expect STATUS')
    request['expect'] = status(args[-1])
    for arg in args[:-2]:
        key, _, value = arg.partition('=')
        if key not in ('code', 'input', 'bytes') or not value:
            raise ScriptError('#@ ioctl: `%s` is not code=C, input=N or bytes=N' % arg)
        request[key] = number(value)
    if request['code'] & 3 != METHOD_BUFFERED:
        raise ScriptError('#@ ioctl: code 0x%08X is not METHOD_BUFFERED (the only transfer type modelled)'
                          % request['code'])
    if max(request['input'], request['bytes']) > MAX_QUERY_BYTES:
        raise ScriptError('#@ ioctl: buffers of at most %d bytes' % MAX_QUERY_BYTES)
    return request


def _bare(name):
    def parse(args):
        if args:
            raise ScriptError('`%s` takes no arguments' % name)
        return {}
    return parse


PARSERS = {
    'other-driver': _other, 'fault': _fault, 'load': _load, 'reload': _load,
    'unload': _bare('unload'), 'toggle': _bare('toggle'), 'hot-add': _hot_add,
    'notify': _notify, 'expect': _expect, 'query': _query,
}
