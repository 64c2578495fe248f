"""The I/O manager's part of a device I/O control request, and the query as
procnotify-ctl issues it: a mixin of the session (runner.Host).

A request (`ioctl`): the device's interface must be enabled (the device
added and started) and DriverObject->MajorFunction[IRP_MJ_DEVICE_CONTROL]
still the framework's; the I/O manager allocates the METHOD_BUFFERED system
buffer, max(input, output) bytes of non-paged pool (with the pool's guard
page after it), fills it with 0xCD (pool is not initialised), copies the
input to its start; the framework presents the request to the default
queue's EvtIoDeviceControl (a guest call on the same stack); the driver must
complete it before returning (docs/query.md); Information must not exceed
the output buffer (the I/O manager would copy that many bytes back) and is 0
for an error status; the buffer is checked (query.buffer_problems); then the
I/O manager copies Information bytes back when the status is not an error,
and frees the system buffer: any later access by the driver faults as a use
after free.

The query (`query`): procnotify-ctl's two calls when no size is given (the
64-byte probe, then 64 + 32 x capacity bytes, the capacity read from the
probe's header), else one call with the given size; the completion must be
the one docs/query.md's table gives; the reply must hold no address of the
emulated kernel; its bytes are printed by `procnotify-ctl --reply FILE
table` under simulate's heading, into the lines compared with the
simulator's.
"""

from . import query as q
from .guest import Stop, PAGE, STACK_TOP, KERNEL_STACK, TRAP_BASE, TRAP_PAGES
from .kernel import KERNEL_DATA
from .pool import POOL_BASE
from .runner import SYSTEM_BASE
from .scenario import STATUS_NAME
from .wdf import IRP_MJ_DEVICE_CONTROL, BASE as FRAMEWORK_BASE, PAGES as FRAMEWORK_PAGES

SYSTEM_BUFFER_TAG = int.from_bytes(b'Irp ', 'little')


def tamper(guest, pool, how, request):
    """Detector tests (`#@ detector query HOW`): after the driver completed
    the request, make the fault the query's checks exist for. Returns the
    completion the checks then see."""
    status, information = request.completion
    if how == 'tail' and request.output_length > information:
        guest.write(request.system_buffer + information, b'\x01')           # a byte past the reply
    elif how == 'address' and information >= q.HEADER + q.ROW:
        guest.w64(request.system_buffer + q.HEADER + 24, pool.driver_blocks()[0].ptr)   # the first row's visits
    elif how == 'status' and status == q.STATUS_BUFFER_OVERFLOW:
        status = q.STATUS_SUCCESS
    return status, information


class Completion:
    def __init__(self, status, information, received, took_buffer):
        self.status, self.information, self.received, self.took_buffer = status, information, received, took_buffer


class Requests:
    """Mixin of runner.Host (needs guest, pool, wdf, abi, ctl, result)."""

    def ioctl(self, code, input_length, output_length):
        """One request, checked. Returns a Completion, or None if the run stopped."""
        fx = self.wdf
        if not fx.interface_enabled(self.abi['guid']):
            raise Stop('a request to procnotify\'s device, whose interface is not enabled')
        if fx.dispatch_routine(IRP_MJ_DEVICE_CONTROL) != fx.fx_dispatch:
            raise Stop('DriverObject->MajorFunction[IRP_MJ_DEVICE_CONTROL] is no longer the framework\'s')
        size = max(input_length, output_length)
        block = None
        if size:
            block = self.pool.kernel_allocate(size, SYSTEM_BUFFER_TAG, 'the system buffer of request #%d'
                                              % (fx.io.serial + 1))
            rounded = (size + 15) & ~15
            self.guest.write(block.ptr, bytes([q.UNINITIALISED]) * rounded)
            self.guest.write(block.ptr, bytes(range(1, input_length + 1)) if input_length <= 255
                             else b'\x5a' * input_length)
        self.note('io', 'IRP_MJ_DEVICE_CONTROL 0x%08X input %d output %d' % (code, input_length, output_length))
        request = self.step(fx.io.present(code, input_length, output_length, block.ptr if block else 0))
        if request is None:
            return None
        if request.completion is None:
            raise Stop('EvtIoDeviceControl returned without completing request 0x%x (docs/query.md: every request '
                       'is completed in the callback)' % request.handle)
        if self.script.detector and self.script.detector[0] == 'query':
            request.completion = tamper(self.guest, self.pool, self.script.detector[1], request)
        status, information = request.completion
        # What the driver may have written: on an error status nothing
        # (docs/query.md), else the reply, the rest of the buffer zeroed.
        took = not q.nt_error(status)
        problems = []
        if information > output_length:
            problems.append('Information %d is larger than the %d-byte output buffer' % (information, output_length))
        if q.nt_error(status) and information:
            problems.append('Information %d with the error status 0x%08X (docs/query.md: 0)' % (information, status))
        after = self.guest.read(block.ptr, (size + 15) & ~15) if block else b''
        problems += q.buffer_problems(after, input_length, output_length, took, information)
        received = b'' if q.nt_error(status) else after[:min(information, output_length)]
        if block:
            self.pool.kernel_free(block)
        for problem in problems:
            self.violation('ioctl', 'request 0x%08X (input %d, output %d): %s'
                           % (code, input_length, output_length, problem))
        self.note('io', 'completed: 0x%08X, Information %d' % (status, information))
        return Completion(status, information, received, took)

    def do_ioctl(self, args):
        """`#@ ioctl`: the emulator's own request; the driver must refuse it as expected."""
        if not self.loaded:
            self.violation('ioctl', '#@ ioctl needs procnotify loaded')
            return
        done = self.ioctl(args['code'], args['input'], args['bytes'])
        if done is not None and (done.status, done.information) != (args['expect'], 0):
            self.violation('ioctl', 'request 0x%08X (input %d, output %d) completed with %s, Information %d; '
                           'expected %s, Information 0' % (args['code'], args['input'], args['bytes'],
                                                           q.status_words(done.status, STATUS_NAME), done.information,
                                                           q.status_words(args['expect'], STATUS_NAME)))
        self.result.expectations += 1

    # -- the query -------------------------------------------------------------------------------------
    def query(self, size, at, after=None):
        """Issues the query as procnotify-ctl would and adds its printed lines."""
        if not self.loaded:
            if self.wdf.interface_enabled(self.abi['guid']):
                self.violation('query', 'the device interface is enabled while procnotify is not loaded')
            self.result.lines.append(q.heading(at, after, None, STATUS_NAME))
            return
        capacity = None
        if size is None:                      # procnotify-ctl: the 64-byte probe, then the whole table
            probe = self._ask(q.HEADER)
            if probe is None:
                return
            fields = q.header_fields(probe.received)
            if fields is None:
                self.violation('query', 'the 64-byte probe returned %d bytes, not the header'
                               % len(probe.received))
                return
            capacity = fields['capacity']
            size = q.HEADER + q.ROW * capacity
        done = self._ask(size)
        if done is None:
            return
        code, out, err = self.ctl.table(done.received) if done.received else (0, '', '')
        if code != 0:
            self.violation('query', 'procnotify-ctl --reply FILE table exited %d: %s' % (code, err.strip()))
        answer = {'buffer': size, 'capacity': capacity, 'status': done.status, 'bytes': done.received,
                  'decoded': code == 0}
        self.result.lines.append(q.heading(at, after, answer, STATUS_NAME))
        self.result.lines.extend(out.splitlines() if code == 0 else err.strip().splitlines())
        self.result.queries += 1

    def _ask(self, size):
        """IOCTL_PROCNOTIFY_QUERY into `size` bytes, judged by docs/query.md."""
        done = self.ioctl(self.abi['ioctl'], 0, size)
        if done is None:
            return None
        want = q.expected_completion(size, done.received)
        if want is None or (done.status, done.information) != want:
            self.violation('query', 'IOCTL_PROCNOTIFY_QUERY into %d bytes completed with %s, Information %d; '
                           'docs/query.md gives %s' % (size, q.status_words(done.status, STATUS_NAME),
                                                       done.information,
                                                       'a header to read' if want is None else
                                                       '%s, Information %d' % (q.status_words(want[0], STATUS_NAME),
                                                                               want[1])))
        found = q.addresses(done.received, self.kernel_ranges())
        if found:
            self.violation('query', 'the reply holds kernel addresses: ' + ', '.join(
                'offset %d: 0x%x' % hit for hit in found[:4]))
        return done

    def kernel_ranges(self):
        """[start, end) of every range of the emulated kernel's memory."""
        module = self.guest.module
        return [(POOL_BASE, self.pool.cursor + PAGE), (module.base, module.base + len(module.mapped_image)),
                (FRAMEWORK_BASE, FRAMEWORK_BASE + FRAMEWORK_PAGES * PAGE), (STACK_TOP - KERNEL_STACK, STACK_TOP),
                (SYSTEM_BASE, SYSTEM_BASE + PAGE), (KERNEL_DATA, KERNEL_DATA + PAGE),
                (TRAP_BASE, TRAP_BASE + TRAP_PAGES * PAGE)]
