"""What procnotify documents it passes to the framework (src/entry.rs,
src/device.rs, docs/query.md), asserted on the real image's calls, on top of
the checks KMDF itself makes (wdf.py, wdfio.py): KMDF would accept a
sequential queue or another GUID; procnotify's documentation would then be
wrong, and the run fails.

The ABI's numbers (the interface GUID, the I/O control code, the header and
row sizes) are read from crates/procnotify-core/src/abi/mod.rs, their one
definition, so the emulator follows the source rather than a copy.
"""

import os
import re
import struct

from .stop import Stop
from .wdfio import DISPATCH_PARALLEL, LEVEL_PASSIVE, SCOPE_INHERIT, CALLBACKS

ABI = os.path.join('crates', 'procnotify-core', 'src', 'abi', 'mod.rs')
WDF_FALSE = 0
ULONG_MAX = 0xFFFFFFFF


class AbiError(Exception):
    pass


def guid_text(value):
    """The registry form of a GUID's 16 bytes."""
    d1, d2, d3 = struct.unpack('<IHH', value[:8])
    return '{%08x-%04x-%04x-%s-%s}' % (d1, d2, d3, value[8:10].hex(), value[10:].hex())


def read_abi(repo):
    """{'guid': 16 bytes, 'ioctl': int, 'header': int, 'row': int} from the
    ABI's source."""
    with open(os.path.join(repo, ABI), encoding='utf-8') as f:
        return parse_abi(f.read())


def _int(text):
    return int(text.replace('_', ''), 0)


def parse_abi(text):
    found = re.search(r'GUID_DEVINTERFACE_PROCNOTIFY: Guid =\s*Guid\s*\{\s*data1:\s*(\w+),\s*data2:\s*(\w+),'
                      r'\s*data3:\s*(\w+),\s*data4:\s*\[([^\]]*)\]', text)
    code = re.search(r'assert!\(IOCTL_PROCNOTIFY_QUERY == (\w+)\)', text)
    sizes = re.search(r'assert!\(HEADER_SIZE == (\d+) && ROW_SIZE == (\d+)\)', text)
    if not (found and code and sizes):
        raise AbiError('%s: GUID_DEVINTERFACE_PROCNOTIFY, the IOCTL_PROCNOTIFY_QUERY assertion or the size '
                       'assertion not found (update procemu/contract.py)' % ABI)
    data4 = bytes(_int(b) for b in found.group(4).split(','))
    if len(data4) != 8:
        raise AbiError('%s: GUID_DEVINTERFACE_PROCNOTIFY.data4 has %d bytes' % (ABI, len(data4)))
    guid = struct.pack('<IHH', _int(found.group(1)), _int(found.group(2)), _int(found.group(3))) + data4
    return {'guid': guid, 'ioctl': _int(code.group(1)), 'header': int(sizes.group(1)), 'row': int(sizes.group(2))}


class Contract:
    def __init__(self, abi):
        self.abi = abi

    @staticmethod
    def _fail(text):
        raise Stop('procnotify\'s documented contract: ' + text, 'contract')

    def driver(self, config, flags):
        """src/entry.rs: a PnP driver (no init flags) with EvtDriverDeviceAdd and EvtDriverUnload."""
        if flags or not config[0] or not config[1]:
            self._fail('WdfDriverCreate with DriverInitFlags 0x%x, EvtDriverDeviceAdd 0x%x, EvtDriverUnload 0x%x '
                       '(src/entry.rs: no flags, both callbacks)' % (flags, config[0], config[1]))

    def interface(self, guid, reference):
        """src/device.rs: GUID_DEVINTERFACE_PROCNOTIFY, no reference string."""
        if guid != self.abi['guid'] or reference:
            self._fail('WdfDeviceCreateDeviceInterface(%s, reference 0x%x): abi\'s GUID_DEVINTERFACE_PROCNOTIFY is %s '
                       'with no reference string' % (guid_text(guid), reference, guid_text(self.abi['guid'])))

    def queue(self, c, size, attributes, queue_out):
        """src/device.rs and docs/query.md: the default queue, parallel with no
        limit, not power-managed, EvtIoDeviceControl only, its attributes at
        WdfExecutionLevelPassive, the scope inherited; no handle wanted."""
        wrong = []
        if size != 96:
            wrong.append('Size %d (not the 1.33 size 96)' % size)
        if c['DispatchType'] != DISPATCH_PARALLEL:
            wrong.append('DispatchType %d (not WdfIoQueueDispatchParallel)' % c['DispatchType'])
        if c['PowerManaged'] != WDF_FALSE:
            wrong.append('PowerManaged %d (not WdfFalse)' % c['PowerManaged'])
        if c['DefaultQueue'] != 1 or c['AllowZeroLengthRequests']:
            wrong.append('DefaultQueue %d AllowZeroLengthRequests %d'
                         % (c['DefaultQueue'], c['AllowZeroLengthRequests']))
        others = [n for n in CALLBACKS if n != 'EvtIoDeviceControl' and c[n]]
        if not c['EvtIoDeviceControl'] or others:
            wrong.append('callbacks: EvtIoDeviceControl 0x%x, also %s' % (c['EvtIoDeviceControl'], others or 'none'))
        if c['NumberOfPresentedRequests'] != ULONG_MAX or c['Driver']:
            wrong.append('NumberOfPresentedRequests %s, Driver 0x%x' % (c['NumberOfPresentedRequests'], c['Driver']))
        if not attributes:
            wrong.append('no WDF_OBJECT_ATTRIBUTES (the execution level is set there)')
        else:
            a = struct.unpack('<I4xQQIIQQQ', attributes)
            if a[3] != LEVEL_PASSIVE or a[4] != SCOPE_INHERIT or a[1] or a[2] or any(a[5:]):
                wrong.append('attributes: ExecutionLevel %d (not WdfExecutionLevelPassive), SynchronizationScope %d '
                             '(not inherited), callbacks, parent or context set: %s' % (a[3], a[4], a[1:3] + a[5:]))
        if queue_out:
            wrong.append('a queue handle was asked for (WDF_NO_HANDLE documented)')
        if wrong:
            self._fail('WdfIoQueueCreate: ' + '; '.join(wrong))

    def device_added(self, fx):
        """After EvtDriverDeviceAdd: one device, abi's interface, the default queue."""
        if fx.interfaces != [self.abi['guid']] or fx.io.queue is None:
            self._fail('EvtDriverDeviceAdd succeeded with interfaces %s and %s default queue'
                       % (len(fx.interfaces), 'a' if fx.io.queue else 'no'))
