"""The script's steps, as the simulator's machine runs them
(crates/procnotify-sim/src/cli/machine.rs and faults.rs): the same faults,
armed at the same moments, and the same checks a step is followed by.
"""

from .guest import Stop
from .kernel import Registration, SUCCESS, ADD_START, failed
from .runner import POOL_TAG, status_words
from .wdf import DRIVER_UNLOAD


def finish(gen):
    """Runs a kernel generator that makes no guest call (another driver's registration)."""
    try:
        next(gen)
    except StopIteration as done:
        return done.value
    raise Stop('another driver\'s registration tried to call into the image')


# The steps simulate --query-after-each queries after (crates/procnotify-sim/
# src/cli/machine.rs, `query_after`); hot-adds are queried after each attempt.
QUERY_AFTER = ('load', 'reload', 'unload', 'toggle', 'notify')


class Steps:
    """Mixin of runner.Host: one method per script command."""

    def run(self):
        if self.result.violations:
            return self.result
        for line, command, args in self.script.steps:
            self.where = 'line %d (%s)' % (line, command)
            self.line = line
            calls = self.pool.calls
            getattr(self, 'do_' + command.replace('-', '_'))(args)
            self.result.step_allocs.append((command, self.pool.calls - calls))
            if self.result.violations:
                return self.result
            if self.script.query_after_each and command in QUERY_AFTER:
                self.query(None, 'line %d' % line, command)
                if self.result.violations:
                    return self.result
        self.where = 'end of script'
        self.end()
        return self.result

    # -- drivers --------------------------------------------------------------------------------
    def do_load(self, args):
        if self.loaded:
            self.note('step', 'load: procnotify is already loaded; nothing to do')
            return
        self.load(args)

    def do_reload(self, args):
        self.unload()
        if not self.result.violations:
            self.load(args)

    def do_unload(self, args):
        if not self.loaded:
            self.note('step', 'unload: procnotify is not loaded; nothing to do')
        self.unload()

    def do_toggle(self, args):
        if self.loaded:
            self.unload()
        else:
            self.load({})

    def load(self, fault):
        r, k = self.result, self.kernel
        if not self.fresh_image:
            self.guest.reload_image(self._serve)
            self.wdf.reset()
        self.fresh_image = False
        armed = []
        if 'fail_alloc' in fault:
            armed.append(('load fail-alloc %d' % fault['fail_alloc'], self._arm_alloc(fault['fail_alloc'])))
        register = bool(fault.get('fail_register'))
        for planned in self.planned:
            if planned[0]['kind'] == 'fail-register' and not planned[1] and not register:
                register = True
                planned[1] = 'armed'
        if register:
            k.fail_register += 1
            if fault.get('fail_register'):
                armed.append(('load fail-register', lambda: k.fail_register == 0))
        r.loads += 1
        self.note('step', 'DriverEntry (FxDriverEntry, the stub)')
        status = self.step(self._entry())
        if status is None:
            return
        self._settle_register_faults()
        self._check_armed(armed)
        self.last['load'] = status
        self.note('step', 'DriverEntry returned %s' % status_words(status))
        if failed(status):
            self.check_gone('after the failed load')
            return
        self.loaded = True
        r.successful_loads += 1
        if self.script.detector == ('unbind', None):   # detector test: the stub's displacement undone
            self.guest.w64(self.driver_object + DRIVER_UNLOAD, self.wdf.fx_unload)
        self.check_displaced()
        if self.deliver_dpcs():
            added = self.step(self._device_add())
            if added is not None and failed(added):
                self.violation('device-add', 'EvtDriverDeviceAdd returned %s' % status_words(added))
            elif added is not None:
                self.wdf.start_device()

    def _settle_register_faults(self):
        for planned in self.planned:
            if planned[1] == 'armed':
                planned[1] = self.kernel.fail_register == 0
        self.kernel.fail_register = 0

    def unload(self):
        if not self.loaded:
            return
        self.note('step', 'DriverObject->DriverUnload (the stub, then the framework, then EvtDriverUnload)')
        if self.script.detector == ('leak', None):
            self.pool.skip_frees = 1
        self.wdf.remove_device()                  # PnP removes the device before the driver unloads
        events = len(self.wdf.events)
        if self.step(self._call_unload()) is None:
            return
        self.loaded = False
        self.result.unloads += 1
        self.check_unbound_after_unload(events)
        self.check_gone('after unload')

    def check_gone(self, when):
        """What an unloaded (or failed) driver must leave: nothing."""
        k, problems = self.kernel, []
        live = [b for b in self.pool.live() if b.tag == POOL_TAG]
        if live:
            problems.append(('leak', 'pool blocks still allocated: ' + ', '.join(b.describe() for b in live)))
        if k.image_registrations():
            problems.append(('registration', '%d processor-change registrations left' % len(k.image_registrations())))
        if k.queue:
            problems.append(('dpc', '%d DPCs still queued' % len(k.queue)))
        if self.wdf.bound:
            problems.append(('wdf', 'the stub did not call WdfVersionUnbind'))
        for kind, text in problems:
            self.violation(kind, '%s: %s' % (when, text))

    def violation(self, kind, text):
        self.result.violations.append((kind, '%s: %s' % (self.where, text)))

    # -- other drivers and faults ------------------------------------------------------------------
    def do_other_driver(self, args):
        name = args['name']
        other = {'standing': [[i, s, False] for i, s in args['vetoes']], 'armed': None, 'vetoes': 0}

        def veto(state, index):
            if state != ADD_START:
                return SUCCESS
            status = other['armed']
            if status is None:
                for entry in other['standing']:
                    if entry[0] == index and not entry[2]:
                        entry[2], status = True, entry[1]
                        break
            other['vetoes'] += status is not None
            return SUCCESS if status is None else status
        other['reg'] = Registration(0, 'other driver "%s"' % name, veto=veto)
        finish(self.kernel.register(other['reg'], 0))
        self.others[name] = other

    def do_fault(self, fault):
        if fault['kind'] == 'fail-alloc':
            self.pool.failures.add(fault['ordinal'])
        self.planned.append([fault, False])

    def _arm_alloc(self, n):
        ordinal = self.pool.calls + n
        self.pool.failures.add(ordinal)
        return lambda: self.pool.calls >= ordinal

    def _check_armed(self, armed):
        for label, fired in armed:
            if not fired():
                self.result.unfired.append('%s: %s: its target was not reached in that step' % (self.where, label))
        planned_allocs = {p[0]['ordinal'] for p in self.planned if p[0]['kind'] == 'fail-alloc'}
        self.pool.failures = {n for n in self.pool.failures if n in planned_allocs and n > self.pool.calls}
        for other in self.others.values():
            other['armed'] = None

    # -- hot-adds and notifications ------------------------------------------------------------------
    def do_hot_add(self, args):
        for n in range(args['count']):
            self.hot_add(args if n == 0 else {})
            if self.result.violations:
                return
            if self.script.query_after_each:
                self.query(None, 'line %d' % self.line, 'hot-add')
                if self.result.violations:
                    return

    def do_query(self, args):
        self.query(args['bytes'], 'line %d' % self.line)

    def hot_add(self, fault):
        k = self.kernel
        index, armed = k.count, []
        if 'veto' in fault:
            other = self.others.get(fault['veto'])
            if other is None or other['reg'] not in k.registrations:
                self.result.unfired.append('%s: hot-add veto %s: no such registered other driver'
                                           % (self.where, fault['veto']))
            else:
                other['armed'], before = fault['status'], other['vetoes']
                armed.append(('hot-add veto ' + fault['veto'], lambda: other['vetoes'] > before))
        if 'fail_alloc' in fault:
            armed.append(('hot-add fail-alloc %d' % fault['fail_alloc'], self._arm_alloc(fault['fail_alloc'])))
        start = 'fail_start' in fault
        prepare = bool(fault.get('fail_prepare'))
        if start:
            k.fail_start.append(fault['fail_start'])
            armed.append(('hot-add fail-start', lambda: not k.fail_start))
        if prepare:
            k.fail_prepare += 1
            armed.append(('hot-add fail-prepare', lambda: not k.fail_prepare))
        for planned in self.planned:
            f = planned[0]
            if planned[1] or f.get('index') != index:
                continue
            if f['kind'] == 'fail-start' and not start:
                start = True
                k.fail_start.append(f['status'])
                armed.append((None, planned))
            elif f['kind'] == 'fail-prepare' and not prepare:
                prepare = True
                k.fail_prepare += 1
                armed.append((None, planned))
        self.note('step', 'hot-add (KeStartDynamicProcessor)')
        outcome = self.step(k.hot_add())
        if outcome is None:
            return
        for label, planned in [a for a in armed if a[0] is None]:
            planned[1] = not (k.fail_start if planned[0]['kind'] == 'fail-start' else k.fail_prepare)
        armed = [a for a in armed if a[0] is not None]
        self._check_armed(armed)
        k.fail_start, k.fail_prepare = [], 0
        self.last['hot_add'] = outcome
        self.note('step', 'hot-add: %s' % (outcome,))
        self.deliver_dpcs()

    def do_notify(self, args):
        self.note('step', 'notify %s' % args)
        if self.step(self.kernel.inject(args['state'], args['index'], args['status'],
                                        args['group'], args['number'])) is not None:
            self.deliver_dpcs()

    # -- expectations ------------------------------------------------------------------------------------
    def do_expect(self, e):
        self.result.expectations += 1
        last_load, last_add = self.last.get('load'), self.last.get('hot_add')
        what = e['what']
        if what == 'load-ok':
            met = last_load == 0
        elif what == 'load-failed':
            met = last_load is not None and failed(last_load) and e['status'] in (None, last_load)
        elif what == 'added':
            met = last_add is not None and last_add[0] == 'added' and e['index'] in (None, last_add[1])
        elif what == 'failed':
            met = (last_add is not None and last_add[0] == 'failed' and e['index'] in (None, last_add[1])
                   and e['status'] in (None, last_add[2]))
        elif what == 'refused':
            met = last_add is not None and last_add[0] == 'refused' and e['reason'] in (None, last_add[1])
        elif what == 'outcome':
            outcome = self.last_outcome()
            met = outcome == e['outcome'] or (e['outcome'] == 'vetoed' and (outcome or '').startswith('vetoed('))
        elif what == 'veto':
            met = self.kernel.last_veto == e['status']
        else:
            met = self.kernel.count == e['count']
        if not met:
            self.violation('expect', 'not met (last load %s, last hot-add %s, last outcome %s)'
                           % (last_load, last_add, self.last_outcome()))

    def last_outcome(self):
        for line in reversed(self.result.lines):
            if ' outcome=' in line:
                return line.split(' outcome=', 1)[1]
        return None

    # -- the end -------------------------------------------------------------------------------------------
    def end(self):
        """As the simulator ends a script: unload if loaded (and query after it
        with --query-after-each), the other drivers deregister; then every
        fault must have fired and the pool be empty."""
        loaded = self.loaded
        self.unload()
        if loaded and self.script.query_after_each and not self.result.violations:
            self.query(None, 'end of session', 'unload')
        if self.result.violations:
            return
        for name, other in self.others.items():
            if other['reg'] in self.kernel.registrations:
                self.kernel.registrations.remove(other['reg'])
            for index, _, fired in other['standing']:
                if not fired:
                    self.result.unfired.append('other-driver %s veto %d: no AddStart for index %d reached it'
                                               % (name, index, index))
        for fault, fired in self.planned:
            if fault['kind'] == 'fail-alloc':
                fired = self.pool.calls >= fault['ordinal']
            if not fired:
                self.result.unfired.append('fault %s: its target was never reached' % fault)
        live = self.pool.live()
        if live:
            self.violation('leak', 'pool blocks never freed: ' + ', '.join(b.describe() for b in live))
