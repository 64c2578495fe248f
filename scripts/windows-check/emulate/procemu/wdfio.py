"""The framework's I/O package as far as the image uses it: WdfIoQueueCreate,
the dispatch of a device I/O control request to the default queue's
EvtIoDeviceControl, WdfRequestRetrieveOutputBuffer and
WdfRequestCompleteWithInformation.

KMDF 1.33's checks and statuses, from microsoft/Windows-Driver-Frameworks:
WdfIoQueueCreate in src/framework/shared/irphandlers/io/fxioqueueapi.cpp and
FxIoQueue::Initialize in fxioqueue.cpp; the requests in
src/framework/shared/core/fxrequestapi.cpp and
FxRequest::GetDeviceControlOutputMemoryObject in fxrequest.cpp;
FxValidateObjectAttributes in src/framework/shared/object/
fxvalidatefunctions.cpp. A request handle used after its completion, or a
request completed twice, stops the run (KMDF's verifier bugchecks).

A request here is METHOD_BUFFERED: its output buffer is the I/O manager's
system buffer (ioctl.py makes it and checks it afterwards).
"""

from .stop import Stop

WDF_IO_QUEUE_CREATE = 152
WDF_REQUEST_COMPLETE_WITH_INFORMATION = 265
WDF_REQUEST_RETRIEVE_OUTPUT_BUFFER = 270

# WDF_IO_QUEUE_CONFIG (wdfio.h, x64): Size, DispatchType @4, PowerManaged @8,
# AllowZeroLengthRequests @12, DefaultQueue @13, EvtIoDefault @16, EvtIoRead
# @24, EvtIoWrite @32, EvtIoDeviceControl @40, EvtIoInternalDeviceControl @48,
# EvtIoStop @56, EvtIoResume @64, EvtIoCanceledOnQueue @72,
# Settings.Parallel.NumberOfPresentedRequests @80, Driver @88. KMDF accepts
# the 1.33 size and the 1.9 (no Driver) and 1.7 (no Settings) sizes.
QUEUE_CONFIG_SIZES = (96, 88, 80)
CALLBACKS = ('EvtIoDefault', 'EvtIoRead', 'EvtIoWrite', 'EvtIoDeviceControl', 'EvtIoInternalDeviceControl',
             'EvtIoStop', 'EvtIoResume', 'EvtIoCanceledOnQueue')
DISPATCH_SEQUENTIAL, DISPATCH_PARALLEL, DISPATCH_MANUAL, DISPATCH_MAX = 1, 2, 3, 4
# WDF_OBJECT_ATTRIBUTES (wdfobject.h, x64): Size, EvtCleanupCallback @8,
# EvtDestroyCallback @16, ExecutionLevel @24, SynchronizationScope @28,
# ParentObject @32, ContextSizeOverride @40, ContextTypeInfo @48; 56 bytes.
OBJECT_ATTRIBUTES_SIZE = 56
CONTEXT_TYPE_INFO_SIZES = (40, 24)        # WDF_OBJECT_CONTEXT_TYPE_INFO, its 1.0 size
LEVEL_INHERIT, LEVEL_PASSIVE, LEVEL_DISPATCH = 1, 2, 3
SCOPE_INHERIT, SCOPE_DEVICE, SCOPE_NONE = 1, 2, 4
IRP_MJ_DEVICE_CONTROL = 0x0E

STATUS_INFO_LENGTH_MISMATCH = 0xC0000004
STATUS_INVALID_PARAMETER = 0xC000000D
STATUS_INVALID_PARAMETER_4 = 0xC00000F2
STATUS_BUFFER_TOO_SMALL = 0xC0000023
STATUS_INVALID_DEVICE_STATE = 0xC0000184
STATUS_WDF_OBJECT_ATTRIBUTES_INVALID = 0xC0200209
STATUS_WDF_NO_CALLBACK = 0xC020020B
STATUS_WDF_PARENT_ASSIGNMENT_NOT_ALLOWED = 0xC020020F
STATUS_WDF_SYNCHRONIZATION_SCOPE_INVALID = 0xC0200210
STATUS_WDF_EXECUTION_LEVEL_INVALID = 0xC0200211

QUEUE_HANDLE = 0x7FC03300             # the default WDFQUEUE (in wdf.py's framework pages)
REQUEST_HANDLES = 0x7FC03400          # WDFREQUEST handles: one per request, never reused


def validate_attributes(guest, attributes, parent, execution, scope):
    """FxValidateObjectAttributes: 0, or the status KMDF refuses the
    attributes with. `parent`, `execution`, `scope`: whether a parent, an
    execution level, a synchronisation scope may be set."""
    if not attributes:
        return 0
    g = guest
    if g.r32(attributes) != OBJECT_ATTRIBUTES_SIZE:
        return STATUS_INFO_LENGTH_MISMATCH
    info, override = g.r64(attributes + 48), g.r64(attributes + 40)
    if info:
        if g.r32(info) not in CONTEXT_TYPE_INFO_SIZES:
            return STATUS_INFO_LENGTH_MISMATCH
        if g.r64(info + 16) and not g.r64(info + 8):
            return STATUS_WDF_OBJECT_ATTRIBUTES_INVALID
    if override and (not info or override < g.r64(info + 16)):
        return STATUS_WDF_OBJECT_ATTRIBUTES_INVALID
    if not parent and g.r64(attributes + 32):
        return STATUS_WDF_PARENT_ASSIGNMENT_NOT_ALLOWED
    level, sync = g.r32(attributes + 24), g.r32(attributes + 28)
    if not LEVEL_INHERIT <= level <= LEVEL_DISPATCH or not SCOPE_INHERIT <= sync <= SCOPE_NONE:
        return STATUS_WDF_OBJECT_ATTRIBUTES_INVALID
    if not scope and sync not in (SCOPE_INHERIT, SCOPE_NONE):
        return STATUS_WDF_SYNCHRONIZATION_SCOPE_INVALID
    if not execution and level != LEVEL_INHERIT:
        return STATUS_WDF_EXECUTION_LEVEL_INVALID
    return 0


class Queue:
    def __init__(self, config, level, scope):
        self.config, self.level, self.scope = config, level, scope


class Request:
    """One IRP_MJ_DEVICE_CONTROL request as the framework presents it."""

    def __init__(self, handle, code, input_length, output_length, system_buffer):
        self.handle, self.code = handle, code
        self.input_length, self.output_length, self.system_buffer = input_length, output_length, system_buffer
        self.completion = None            # (status, information) once completed
        self.retrieved = None             # (required length, the length returned) of WdfRequestRetrieveOutputBuffer


class Io:
    def __init__(self, framework):
        self.fx = framework
        self.guest = framework.guest
        self.serial = 0
        self.completed = set()            # handles of completed requests
        self.reset()

    def reset(self):
        self.queue = None                 # the default queue
        self.request = None               # the request being presented

    def functions(self):
        return {WDF_IO_QUEUE_CREATE: (self.WdfIoQueueCreate, 5),
                WDF_REQUEST_RETRIEVE_OUTPUT_BUFFER: (self.WdfRequestRetrieveOutputBuffer, 5),
                WDF_REQUEST_COMPLETE_WITH_INFORMATION: (self.WdfRequestCompleteWithInformation, 4)}

    def delete_queues(self):
        if self.request is not None:
            raise Stop('the device is removed while request 0x%x is not completed' % self.request.handle)
        self.queue = None

    # -- WdfIoQueueCreate ---------------------------------------------------------------------------
    def WdfIoQueueCreate(self, globals_, device, config, attributes, queue_out):
        g, fx = self.guest, self.fx
        fx.check_globals(globals_, 'WdfIoQueueCreate')
        fx.check_device(device, 'WdfIoQueueCreate')
        if not config:
            raise Stop('WdfIoQueueCreate: a NULL Config (FxPointerNotNull)')
        status = validate_attributes(g, attributes, parent=True, execution=True, scope=True)
        if status:
            return fx._refuse('WdfIoQueueCreate: the queue attributes', status)
        size = g.r32(config)
        if size not in QUEUE_CONFIG_SIZES:
            return fx._refuse('WdfIoQueueCreate: WDF_IO_QUEUE_CONFIG.Size %d' % size, STATUS_INFO_LENGTH_MISMATCH)
        c = self._read_config(config, size)
        if not c['DefaultQueue'] and not queue_out:
            return fx._refuse('WdfIoQueueCreate: no handle wanted for a queue that is not the default',
                              STATUS_INVALID_PARAMETER_4)
        if c['DefaultQueue'] and (fx.started or self.queue is not None):
            return fx._refuse('WdfIoQueueCreate: a default queue after the start, or a second one',
                              STATUS_INVALID_DEVICE_STATE)
        status = self._initialize(c, size)
        if status:
            return fx._refuse('WdfIoQueueCreate: FxIoQueue::Initialize', status)
        level = g.r32(attributes + 24) if attributes else LEVEL_INHERIT
        scope = g.r32(attributes + 28) if attributes else SCOPE_INHERIT
        fx.contract.queue(c, size, attributes and g.read(attributes, OBJECT_ATTRIBUTES_SIZE), queue_out)
        self.queue = Queue(c, level, scope)
        if queue_out:
            g.w64(queue_out, QUEUE_HANDLE)
        fx.log('wdf', 'WdfIoQueueCreate: default=%d dispatch=%d EvtIoDeviceControl=0x%x level=%d'
               % (c['DefaultQueue'], c['DispatchType'], c['EvtIoDeviceControl'], level))
        return 0

    def _read_config(self, config, size):
        g = self.guest
        c = {'DispatchType': g.r32(config + 4), 'PowerManaged': g.r32(config + 8),
             'AllowZeroLengthRequests': g.read(config + 12, 1)[0], 'DefaultQueue': g.read(config + 13, 1)[0]}
        for i, name in enumerate(CALLBACKS):
            c[name] = g.r64(config + 16 + 8 * i)
        c['NumberOfPresentedRequests'] = g.r32(config + 80) if size > 80 else None
        c['Driver'] = g.r64(config + 88) if size > 88 else 0
        return c

    @staticmethod
    def _initialize(c, size):
        """FxIoQueue::Initialize's checks of the configuration."""
        dispatch = c['DispatchType']
        if not 0 < dispatch < DISPATCH_MAX:
            return STATUS_INVALID_PARAMETER
        handlers = [c[n] for n in ('EvtIoDefault', 'EvtIoRead', 'EvtIoWrite', 'EvtIoDeviceControl',
                                   'EvtIoInternalDeviceControl')]
        if dispatch != DISPATCH_MANUAL and not any(handlers):
            return STATUS_WDF_NO_CALLBACK
        if dispatch == DISPATCH_MANUAL and any(handlers):
            return STATUS_INVALID_PARAMETER
        if size > 80 and c['NumberOfPresentedRequests'] and dispatch in (DISPATCH_SEQUENTIAL, DISPATCH_MANUAL):
            return STATUS_INVALID_PARAMETER
        return 0

    # -- a request ----------------------------------------------------------------------------------
    def present(self, code, input_length, output_length, system_buffer):
        """Generator: the framework presents a device control request to the
        default queue: EvtIoDeviceControl(Queue, Request, OutputBufferLength,
        InputBufferLength, IoControlCode). Returns the Request."""
        fx = self.fx
        if not fx.started or self.queue is None:
            raise Stop('a request for a device that is not started or has no default queue')
        handler = self.queue.config['EvtIoDeviceControl'] or self.queue.config['EvtIoDefault']
        if not handler:
            raise Stop('the default queue has no EvtIoDeviceControl (KMDF would fail the request itself)')
        self.serial += 1
        request = Request(REQUEST_HANDLES + 0x10 * self.serial, code, input_length, output_length, system_buffer)
        self.request = request
        yield handler, [QUEUE_HANDLE, request.handle, output_length, input_length, code]
        self.request = None
        return request

    def _live(self, handle, api):
        if handle in self.completed:
            raise Stop('%s: request 0x%x was already completed (its handle is no longer valid)' % (api, handle))
        if self.request is None or handle != self.request.handle:
            raise Stop('%s: 0x%x is not a request presented to the driver' % (api, handle))
        return self.request

    def WdfRequestRetrieveOutputBuffer(self, globals_, handle, required, buffer_out, length_out):
        g = self.guest
        self.fx.check_globals(globals_, 'WdfRequestRetrieveOutputBuffer')
        request = self._live(handle, 'WdfRequestRetrieveOutputBuffer')
        if not buffer_out:
            raise Stop('WdfRequestRetrieveOutputBuffer: a NULL Buffer (FxPointerNotNull)')
        g.w64(buffer_out, 0)
        if length_out:
            g.w64(length_out, 0)
        length = request.output_length
        status = 0
        if length == 0 or length < required:     # METHOD_BUFFERED: the system buffer
            status = STATUS_BUFFER_TOO_SMALL
        else:
            g.w64(buffer_out, request.system_buffer)
            if length_out:
                g.w64(length_out, length)
        request.retrieved = (required, length, status)
        return status

    def WdfRequestCompleteWithInformation(self, globals_, handle, status, information):
        self.fx.check_globals(globals_, 'WdfRequestCompleteWithInformation')
        request = self._live(handle, 'WdfRequestCompleteWithInformation')
        request.completion = (status & 0xFFFFFFFF, information)
        self.completed.add(handle)            # the handle is not valid after completion
        self.request = None
        return 0
