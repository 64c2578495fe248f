"""Runs one scenario against the real image: the I/O manager's and PnP's
part (load, device add, unload), the script's steps against the kernel
model, the checks after each step and at the end.

A load calls the image's entry point (the WdfDriverEntry stub's
FxDriverEntry) with a DRIVER_OBJECT and registry path of our own; a second
load rewrites the image's pristine bytes first, as Windows maps a fresh copy.
After a successful load the framework's WdfDriverGlobals->DisplaceDriverUnload
must be TRUE (WdfDriverCreate sets it for a PnP driver) and the stub must have
put its own routine in DriverObject->DriverUnload; PnP calls
EvtDriverDeviceAdd once and starts the device. Unload: PnP removes the device,
then the I/O manager calls DriverObject->DriverUnload (the stub's), which must
call the framework's (FxDriver::Unload, which calls EvtDriverUnload) and then
WdfVersionUnbind, in that order.
"""

import re
import struct

from .contract import Contract
from .guest import Guest, Stop, KERNEL_STACK, STACK_TOP, PAGE
from .kernel import Kernel
from .pool import Pool
from .scenario import STATUS_NAME
from .wdf import Framework, DISPLACE_DRIVER_UNLOAD, DRIVER_UNLOAD

POOL_TAG = int.from_bytes(b'PNfy', 'little')
DPFLTR_IHVDRIVER_ID = 77
LEVELS = {0: 'error', 1: 'warning', 2: 'trace', 3: 'info'}
REGISTRY_PATH = '\\Registry\\Machine\\System\\CurrentControlSet\\Services\\procnotify'
SYSTEM_BASE = 0x7FB00000              # DRIVER_OBJECT, registry path, WDFDEVICE_INIT
CONTEXT_LINE = re.compile(r'^procnotify: loaded, context=(0x[0-9a-f]+)$')
PRINTF = re.compile(r'%(?:%|[-+ #0]*\d*(?:\.\d+)?(?:ll|l|I64|h|z)?([sdiuxXpc]))')


class Result:
    def __init__(self, name):
        self.name = name
        self.violations = []      # (kind, message)
        self.lines = []           # DbgPrintEx lines, in order
        self.log = []             # the emulator's own trace
        self.loads = self.successful_loads = self.unloads = 0
        self.allocations = self.frees = 0
        self.unfired = []         # faults that did not fire
        self.expectations = 0
        self.queries = 0          # queries issued to the image (each one or two requests)
        self.step_allocs = []     # (command, ExAllocatePool2 calls it made)
        self.stack = 0            # deepest stack use, bytes


def status_words(value):
    name = STATUS_NAME.get(value)
    return '%s (0x%08X)' % (name, value) if name else '0x%08X' % value


class Host:
    def __init__(self, image, script, abi, ctl, trace=False):
        """`abi`: contract.read_abi's numbers; `ctl`: simulator.Ctl, which
        prints query replies."""
        self.script, self.trace, self.abi, self.ctl = script, trace, abi, ctl
        self.result = Result(script.name)
        self.guest = g = Guest(image)
        self.pool = Pool(g, self.note)
        boot, maximum, reported = script.config()
        self.kernel = Kernel(g, self.pool, boot, maximum, reported, script.dynamic, self.note)
        self.wdf = Framework(g, self.note, Contract(abi))
        g.watch_memory(self._describe_fault)
        g.bind_imports(self._serve)
        if g.unmodelled:
            self.result.violations.append(('import', 'the image imports what the emulated kernel does not model: '
                                           + ', '.join(g.unmodelled)))
        self._system_objects()
        self.loaded = False
        self.where = 'start'
        self.fresh_image = True
        self.others = {}          # name -> {'reg', 'standing': [[index, status, fired]], 'armed'}
        self.planned = []         # [fault dict, fired]
        self.last = {}

    # -- plumbing ---------------------------------------------------------------------------------
    def note(self, who, text):
        self.result.log.append('[%s] %s' % (who, text))
        if self.trace:
            print('    [%s] %s' % (who, text))

    def _serve(self, module, name):
        k, p = self.kernel, self.pool
        table = {
            'ntoskrnl': {
                'ExAllocatePool2': (p.ExAllocatePool2, 3), 'ExFreePoolWithTag': (p.ExFreePoolWithTag, 2),
                'KeQueryActiveProcessorCountEx': (k.KeQueryActiveProcessorCountEx, 1),
                'KeQueryMaximumProcessorCountEx': (k.KeQueryMaximumProcessorCountEx, 1),
                'KeGetCurrentProcessorNumberEx': (k.KeGetCurrentProcessorNumberEx, 1),
                'KeRegisterProcessorChangeCallback': (k.KeRegisterProcessorChangeCallback, 3),
                'KeDeregisterProcessorChangeCallback': (k.KeDeregisterProcessorChangeCallback, 1),
                'KeInitializeDpc': (k.KeInitializeDpc, 3), 'KeSetImportanceDpc': (k.KeSetImportanceDpc, 2),
                'KeSetTargetProcessorDpcEx': (k.KeSetTargetProcessorDpcEx, 2),
                'KeInsertQueueDpc': (k.KeInsertQueueDpc, 3), 'KeFlushQueuedDpcs': (k.KeFlushQueuedDpcs, 0),
                'KeBugCheckEx': (self.KeBugCheckEx, 5), 'DbgPrintEx': (self.DbgPrintEx, 8),
                'PsGetCurrentThreadId': (k.PsGetCurrentThreadId, 0),
                'RtlCopyUnicodeString': (k.RtlCopyUnicodeString, 2),
            },
            'wdfldr': {'WdfVersionBind': (self.wdf.WdfVersionBind, 4),
                       'WdfVersionUnbind': (self.wdf.WdfVersionUnbind, 3)},
        }
        return table.get(module.lower().split('.')[0], {}).get(name)

    def _describe_fault(self, address):
        named = self.pool.describe_fault(address) or self.wdf.describe_fault(address)
        if named:
            return named
        bottom = STACK_TOP - KERNEL_STACK
        if bottom - PAGE <= address < bottom:
            return 'stack-overflow', 'below the 24 KiB kernel stack'
        return 'memory', 'not mapped by the emulated kernel'

    def _system_objects(self):
        g = self.guest
        g.map(SYSTEM_BASE, PAGE)
        self.driver_object = SYSTEM_BASE                              # DRIVER_OBJECT: 0x150 bytes
        g.write(self.driver_object, struct.pack('<HH', 4, 0x150))     # Type IO_TYPE_DRIVER, Size
        text = REGISTRY_PATH.encode('utf-16-le')
        self.registry_path = SYSTEM_BASE + 0x200                      # UNICODE_STRING, then the text
        g.write(self.registry_path + 16, text + b'\0\0')
        g.write(self.registry_path, struct.pack('<HHI', len(text), len(text) + 2, 0))
        g.w64(self.registry_path + 8, self.registry_path + 16)

    # -- ntoskrnl services the session itself provides ------------------------------------------
    def KeBugCheckEx(self, code, p1, p2, p3, p4):
        raise Stop('KeBugCheckEx(0x%x, 0x%x, 0x%x, 0x%x, 0x%x)' % (code, p1, p2, p3, p4), 'bugcheck')

    def DbgPrintEx(self, component, level, fmt, *varargs):
        if component & 0xFFFFFFFF != DPFLTR_IHVDRIVER_ID or level & 0xFFFFFFFF not in LEVELS:
            raise Stop('DbgPrintEx(component %d, level %d): not DPFLTR_IHVDRIVER_ID at a DPFLTR_*_LEVEL'
                       % (component, level))
        text = self._format(self.guest.cstring(fmt), list(varargs))
        for line in text.rstrip('\n').split('\n'):
            self.result.lines.append(line)
            self.note('DbgPrintEx ' + LEVELS[level], line)
            found = CONTEXT_LINE.match(line)
            if found and self.pool.live_at(int(found.group(1), 16)) is None:
                raise Stop('"%s": the address is not in a live pool block' % line)
        return 0

    def _format(self, fmt, args):
        """The printf subset the image uses; any other conversion fails the run."""
        def one(match):
            conv = match.group(1)
            if match.group(0) == '%%':
                return '%'
            if not args:
                raise Stop('DbgPrintEx: more than 5 arguments')
            value = args.pop(0)
            if conv == 's':
                return self.guest.cstring(value)
            if conv == 'c':
                return chr(value & 0xFF)
            if conv == 'p':
                return '%016X' % value
            if conv in 'di':
                value = value & 0xFFFFFFFF
                return str(value - (1 << 32) if value & 0x80000000 else value)
            return ('%u' if conv == 'u' else '%' + conv) % (value & 0xFFFFFFFF)
        if re.search(r'%(?![-+ #0]*\d*(?:\.\d+)?(?:ll|l|I64|h|z)?[sdiuxXpc%])', fmt):
            raise Stop('DbgPrintEx format %r has a conversion the emulator does not model' % fmt)
        return PRINTF.sub(one, fmt)

    # -- the I/O manager and PnP ------------------------------------------------------------------
    def _entry(self):
        entry = self.guest.module.base + self.guest.module.ep
        status = yield entry, [self.driver_object, self.registry_path]
        return status & 0xFFFFFFFF

    def _call_unload(self):
        unload = self.guest.r64(self.driver_object + DRIVER_UNLOAD)
        if not unload:
            raise Stop('DriverObject->DriverUnload is NULL after a successful load: the driver cannot be unloaded')
        yield unload, [self.driver_object]
        return 0

    def _device_add(self):
        status = yield from self.wdf.device_add()
        return status & 0xFFFFFFFF

    def check_displaced(self):
        """After a successful DriverEntry: WdfDriverCreate set
        DisplaceDriverUnload (KMDF does for a PnP driver), and the stub put its
        own unload routine first: DriverUnload is neither NULL nor the
        framework's."""
        g, fx = self.guest, self.wdf
        displace = g.read(fx.globals + DISPLACE_DRIVER_UNLOAD, 1)[0]
        unload = g.r64(self.driver_object + DRIVER_UNLOAD)
        module = g.module
        if displace != 1:
            self.violation('wdf', 'WdfDriverGlobals->DisplaceDriverUnload is %d after WdfDriverCreate' % displace)
        elif not module.base <= unload < module.base + len(module.mapped_image):
            self.violation('wdf', 'the stub did not displace DriverUnload: it is 0x%x (the framework\'s is 0x%x)'
                           % (unload, fx.fx_unload))

    def check_unbound_after_unload(self, before):
        """The stub's unload called the framework's unload, then WdfVersionUnbind."""
        events = self.wdf.events[before:]
        if events != ['unload', 'unbind']:
            self.violation('wdf', 'unload ran %s; the stub must run the framework\'s unload (EvtDriverUnload), '
                           'then WdfVersionUnbind' % (events or 'neither'))

    def step(self, gen):
        """Runs a generator of guest calls as one top-level run; None if it stopped."""
        value = self.guest.run_step(gen)
        for violation in self.guest.violations[len(self.result.violations):]:
            self.result.violations.append(violation)
        return value

    def deliver_dpcs(self):
        if self.kernel.queue and not self.script.dpcs_at_unload:
            return self.step(self._dpcs()) is not None
        return True

    def _dpcs(self):
        start = len(self.result.lines)
        yield from self.kernel.run_queued()
        for dpc, target, ran_on in self.kernel.ran_dpcs:
            if target is not None and target != ran_on:
                raise Stop('DPC 0x%x targeted at processor %d ran on %d' % (dpc, target, ran_on))
        self._check_visit_lines(start)
        return 0

    def _check_visit_lines(self, start):
        """Each DPC ran on its target processor, and its `visit` line names
        that processor (the DPC found its own processor's value)."""
        visits = [line for line in self.result.lines[start:] if line.startswith('procnotify: visit ')]
        targets = ['procnotify: visit index=%d ' % target for _, target, _ in self.kernel.ran_dpcs]
        self.kernel.ran_dpcs = []
        for line, prefix in zip(visits, targets):
            if not line.startswith(prefix):
                raise Stop('"%s" printed by the DPC that ran on processor %s' % (line, prefix.split('=')[1]))
