"""The framework as far as the image uses it: WDFLDR.SYS's WdfVersionBind /
WdfVersionUnbind (imported by the stand-in WdfDriverEntry stub), a KMDF 1.33
function table, WdfDriverCreate, the device (WdfDeviceCreate,
WdfDeviceCreateDeviceInterface), the framework's DriverUnload that calls the
driver's EvtDriverUnload, and PnP's part (device add, start, removal). The
queue and its requests are in wdfio.py.

Each function checks what KMDF 1.33 checks, with the status KMDF returns
(microsoft/Windows-Driver-Frameworks, src/framework/shared/core/
fxdriverapi.cpp, fxdeviceapi.cpp, support/fxdeviceinterfaceapi.cpp,
object/fxvalidatefunctions.cpp: cited per function). What KMDF would
bugcheck for under its verifier (a NULL required pointer, a stale handle)
stops the run. On top of KMDF's checks, the arguments procnotify documents
(src/device.rs, docs/query.md) are asserted: the interface GUID is abi's
GUID_DEVINTERFACE_PROCNOTIFY, and so on (`contract` below).

This is a model of the calls and their contracts, not Microsoft's KMDF: no
object tree beyond one driver, one device, one queue; no PnP or power state
machine beyond add, start and remove; no IRQL. Every other entry of the
function table is a trap that fails the run when called, naming the
function's index (wdffuncenum.h).
"""

import struct

import unicorn

from .contract import guid_text
from .guest import Stop, PAGE
from .wdfio import Io, validate_attributes

# wdffuncenum.h, KMDF 1.33: the table's size and the entries the image calls.
FUNCTION_COUNT = 458
WDF_DEVICE_CREATE = 75
WDF_DEVICE_CREATE_DEVICE_INTERFACE = 77
WDF_DRIVER_CREATE = 116
# DRIVER_OBJECT (wdm.h, x64): DriverUnload and MajorFunction[IRP_MJ_MAXIMUM_FUNCTION + 1].
DRIVER_UNLOAD = 0x68
MAJOR_FUNCTION, MAJOR_FUNCTIONS = 0x70, 28
IRP_MJ_DEVICE_CONTROL = 0x0E
# WDF_DRIVER_CONFIG (wdfdriver.h): Size, EvtDriverDeviceAdd @8, EvtDriverUnload
# @16, DriverInitFlags @24, DriverPoolTag @28; 32 bytes, as WDF_DRIVER_CONFIG_V1_1.
WDF_DRIVER_CONFIG_SIZE = 32
INIT_NON_PNP, INIT_NO_DISPATCH_OVERRIDE, INIT_COMPANION = 0x1, 0x2, 0x10
# WDF_DRIVER_GLOBALS (wdfglobals.h, x64): Driver @0, DriverFlags @8, DriverTag
# @12, DriverName[32] @16, DisplaceDriverUnload @48 (0x30); 56 bytes.
GLOBALS_DRIVER, GLOBALS_FLAGS, GLOBALS_TAG, GLOBALS_NAME, DISPLACE_DRIVER_UNLOAD = 0, 8, 12, 16, 0x30
GLOBALS_SIZE, NAME_LEN = 56, 32
FX_TAG = int.from_bytes(b'FxDr', 'little')

STATUS_INFO_LENGTH_MISMATCH = 0xC0000004
STATUS_INVALID_PARAMETER = 0xC000000D
STATUS_INVALID_DEVICE_STATE = 0xC0000184
STATUS_DRIVER_INTERNAL_ERROR = 0xC0000183

BASE, PAGES = 0x7FC00000, 4           # the framework's own data
GLOBALS = BASE + 0x2000               # WDF_DRIVER_GLOBALS: a page of its own, no access once unbound
DRIVER_HANDLE = BASE + 0x3000         # the WDFDRIVER the framework hands to callbacks
DEVICE_HANDLE = BASE + 0x3100         # the WDFDEVICE
DEVICE_INIT = BASE + 0x3200           # the PWDFDEVICE_INIT of the add in progress (opaque)


class Framework:
    def __init__(self, guest, log, contract):
        """`contract`: what procnotify documents it passes (see `Contract`)."""
        self.guest, self.log, self.contract = guest, log, contract
        guest.map(BASE, PAGES * PAGE)
        self.globals = GLOBALS
        self.table = BASE + 0x1000                # WdfFunctions_01033 points here
        self.io = Io(self)
        handlers = {WDF_DRIVER_CREATE: (self.WdfDriverCreate, 6), WDF_DEVICE_CREATE: (self.WdfDeviceCreate, 4),
                    WDF_DEVICE_CREATE_DEVICE_INTERFACE: (self.WdfDeviceCreateDeviceInterface, 4)}
        handlers.update(self.io.functions())
        for index in range(FUNCTION_COUNT):
            handler = handlers.get(index) or (self._unmodelled(index), 0)
            guest.w64(self.table + 8 * index, guest.new_trap('WdfFunctions_01033[%d]' % index, *handler))
        self.fx_unload = guest.new_trap('FxDriver::Unload', self.fx_driver_unload, 1)
        self.fx_dispatch = guest.new_trap('FxDevice::Dispatch', self._dispatch_called, 2)
        self.reset()

    def reset(self):
        """A fresh framework for a fresh load of the image."""
        self.bound = False
        self.binds = self.unbinds = 0
        self.bind_info = None
        self.driver_object = self.registry_path = None
        self.config = None                        # (EvtDriverDeviceAdd, EvtDriverUnload)
        self.device_init = None                   # the PWDFDEVICE_INIT of the add in progress
        self.device = None                        # DEVICE_HANDLE while the device exists
        self.started = False
        self.interfaces = []                      # GUIDs (bytes) of the device's interfaces
        self.events = []                          # 'unload', 'unbind': their order is checked
        self.io.reset()
        self.guest.protect(GLOBALS, PAGE, unicorn.UC_PROT_NONE)

    def _unmodelled(self, index):
        def handler():
            raise Stop('the image called WdfFunctions_01033[%d], which the emulated framework does not model'
                       % index, 'import')
        return handler

    def describe_fault(self, address):
        if GLOBALS <= address < GLOBALS + PAGE and not self.bound:
            return 'use-after-free', 'WdfDriverGlobals after WdfVersionUnbind freed them (or before WdfVersionBind)'
        return None

    def check_globals(self, globals_, api):
        if not self.bound or globals_ != self.globals:
            raise Stop('%s: DriverGlobals 0x%x is not the bound WdfDriverGlobals' % (api, globals_))

    # -- WDFLDR.SYS --------------------------------------------------------------------------
    def WdfVersionBind(self, driver_object, registry_path, bind_info, globals_out):
        """The loader binds the client: a fresh, zeroed WDF_DRIVER_GLOBALS
        (FxAllocateDriverGlobals zero-fills it: DisplaceDriverUnload is
        FALSE until WdfDriverCreate), the function table in
        *BindInfo->FuncTable."""
        g = self.guest
        size, major, minor = g.r32(bind_info), g.r32(bind_info + 16), g.r32(bind_info + 20)
        count, table_out = g.r32(bind_info + 28), g.r64(bind_info + 32)
        if self.bound:
            raise Stop('WdfVersionBind while already bound')
        if size < 48 or (major, minor) != (1, 33) or count != FUNCTION_COUNT or not table_out or not globals_out:
            raise Stop('WdfVersionBind: bind info Size=%d version %d.%d FuncCount=%d FuncTable=0x%x: not a KMDF 1.33 '
                       'client' % (size, major, minor, count, table_out))
        g.protect(GLOBALS, PAGE, unicorn.UC_PROT_READ | unicorn.UC_PROT_WRITE)
        g.write(GLOBALS, bytes(GLOBALS_SIZE))
        g.w64(table_out, self.table)              # the stub's WdfFunctions_01033
        g.w64(globals_out, self.globals)          # the stub's WdfDriverGlobals
        self.bound, self.binds = True, self.binds + 1
        self.bind_info, self.driver_object = bind_info, driver_object
        self.log('wdf', 'WdfVersionBind: KMDF %d.%d, %d functions' % (major, minor, count))
        return 0

    def WdfVersionUnbind(self, registry_path, bind_info, globals_):
        if not self.bound or globals_ != self.globals or bind_info != self.bind_info:
            raise Stop('WdfVersionUnbind without a matching WdfVersionBind (globals 0x%x, bind info 0x%x)'
                       % (globals_, bind_info))
        if self.device is not None:
            raise Stop('WdfVersionUnbind while the device still exists')
        self.bound, self.unbinds = False, self.unbinds + 1
        self.config = None                        # the framework deletes the driver object
        self.events.append('unbind')
        self.guest.protect(GLOBALS, PAGE, unicorn.UC_PROT_NONE)   # FxFreeDriverGlobals
        self.log('wdf', 'WdfVersionUnbind')
        return 0

    # -- the driver (fxdriverapi.cpp, FxDriver::Initialize) ---------------------------------------
    def WdfDriverCreate(self, globals_, driver_object, registry_path, attributes, config, driver_out):
        g = self.guest
        self.check_globals(globals_, 'WdfDriverCreate')
        if not driver_object or not registry_path or not config:
            raise Stop('WdfDriverCreate: a NULL DriverObject, RegistryPath or DriverConfig (FxPointerNotNull)')
        if driver_object != self.driver_object:
            raise Stop('WdfDriverCreate: driver object 0x%x is not the one bound' % driver_object)
        if g.r32(config) != WDF_DRIVER_CONFIG_SIZE:
            return self._refuse('WdfDriverCreate: WDF_DRIVER_CONFIG.Size %d' % g.r32(config),
                                STATUS_INFO_LENGTH_MISMATCH)
        flags = g.r32(config + 24)
        if flags & ~(INIT_NON_PNP | INIT_NO_DISPATCH_OVERRIDE | INIT_COMPANION):
            return self._refuse('WdfDriverCreate: DriverInitFlags 0x%x' % flags, STATUS_INVALID_PARAMETER)
        if self.config is not None or g.r64(GLOBALS + GLOBALS_DRIVER):
            return self._refuse('WdfDriverCreate called twice', STATUS_DRIVER_INTERNAL_ERROR)
        device_add, unload = g.r64(config + 8), g.r64(config + 16)
        if flags & INIT_NON_PNP and not flags & INIT_NO_DISPATCH_OVERRIDE and device_add:
            return self._refuse('WdfDriverCreate: a non-PnP driver with EvtDriverDeviceAdd', STATUS_INVALID_PARAMETER)
        status = validate_attributes(g, attributes, parent=False, execution=True, scope=True)
        if status:
            return self._refuse('WdfDriverCreate: the driver attributes', status)
        self._name_and_tag(registry_path, g.r32(config + 28))
        if not flags & INIT_NO_DISPATCH_OVERRIDE:
            self.config = (device_add, unload)
            for i in range(MAJOR_FUNCTIONS):      # every IRP goes to the framework
                g.w64(driver_object + MAJOR_FUNCTION + 8 * i, self.fx_dispatch)
            if not flags & INIT_NON_PNP or unload:
                g.w64(driver_object + DRIVER_UNLOAD, self.fx_unload)    # FxDriver::Unload
        else:
            self.config = (0, 0)
        g.w64(GLOBALS + GLOBALS_DRIVER, DRIVER_HANDLE)
        g.w32(GLOBALS + GLOBALS_FLAGS, g.r32(GLOBALS + GLOBALS_FLAGS) | flags)
        # The stub displaces DriverUnload unless a miniport or legacy driver has no unload.
        displace = bool(unload) or not flags & (INIT_NON_PNP | INIT_NO_DISPATCH_OVERRIDE)
        g.write(GLOBALS + DISPLACE_DRIVER_UNLOAD, bytes([displace]))
        if driver_out:
            g.w64(driver_out, DRIVER_HANDLE)
        self.log('wdf', 'WdfDriverCreate: EvtDriverDeviceAdd=0x%x EvtDriverUnload=0x%x' % self.config)
        self.contract.driver(self.config, flags)
        return 0

    def _refuse(self, what, status):
        self.log('wdf', '%s: 0x%08X (what KMDF returns)' % (what, status))
        return status

    def _name_and_tag(self, registry_path, pool_tag):
        """FxDriver::_InitializeDriverName and _InitializeTag: the service
        name (the last registry path component, 31 characters at most) and
        the tag WDF allocates with for the driver."""
        g = self.guest
        length, _, buffer = struct.unpack('<HHxxxxQ', g.read(registry_path, 16))
        path = g.read(buffer, length).decode('utf-16-le', 'replace') if length else ''
        name = path.rsplit('\\', 1)[1] if '\\' in path[1:] else 'WDF'
        raw = name[:NAME_LEN - 1].encode('latin-1', 'replace')
        g.write(GLOBALS + GLOBALS_NAME, raw + bytes(NAME_LEN - len(raw)))
        if pool_tag and pool_tag != int.from_bytes(b'Ddk ', 'little'):
            tag = pool_tag
        else:
            stem = raw[3:] if raw[:3].lower() == b'wdf' else raw
            tag = int.from_bytes(stem[:4], 'little') if len(stem) > 2 else FX_TAG
        g.w32(GLOBALS + GLOBALS_TAG, tag)

    def fx_driver_unload(self, driver_object):
        """Generator: FxDriver::Unload: EvtDriverUnload(WDFDRIVER), if any,
        then the driver object is deleted."""
        if self.config is None:
            raise Stop('the framework unload routine ran for a driver WdfDriverCreate did not create')
        if self.device is not None:
            raise Stop('DriverUnload while the device still exists (PnP removes it first)')
        if self.config[1]:
            yield self.config[1], [DRIVER_HANDLE]
        self.events.append('unload')
        self.guest.w64(GLOBALS + GLOBALS_DRIVER, 0)
        return 0

    def _dispatch_called(self, device_object, irp):
        raise Stop('the image called the framework\'s IRP dispatch routine itself')

    def dispatch_routine(self, major):
        """DriverObject->MajorFunction[major]: must still be the framework's."""
        return self.guest.r64(self.driver_object + MAJOR_FUNCTION + 8 * major)

    # -- the device (fxdeviceapi.cpp, fxdeviceinterfaceapi.cpp) -------------------------------------
    def WdfDeviceCreate(self, globals_, device_init_in, attributes, device_out):
        g = self.guest
        self.check_globals(globals_, 'WdfDeviceCreate')
        if not device_init_in or not g.r64(device_init_in) or not device_out:
            raise Stop('WdfDeviceCreate: a NULL DeviceInit, *DeviceInit or Device (FxPointerNotNull)')
        if self.device_init is None or g.r64(device_init_in) != self.device_init:
            raise Stop('WdfDeviceCreate: not the PWDFDEVICE_INIT EvtDriverDeviceAdd received')
        g.w64(device_out, 0)
        status = validate_attributes(g, attributes, parent=False, execution=True, scope=True)
        if status:
            return self._refuse('WdfDeviceCreate: the device attributes', status)
        if self.device is not None:
            return self._refuse('WdfDeviceCreate: the device was already created', STATUS_INVALID_DEVICE_STATE)
        g.w64(device_init_in, 0)                  # FxDevice::_Create: the framework owns the init structure now
        g.w64(device_out, DEVICE_HANDLE)
        self.device = DEVICE_HANDLE
        self.log('wdf', 'WdfDeviceCreate -> 0x%x' % DEVICE_HANDLE)
        return 0

    def check_device(self, device, api):
        if self.device is None or device != self.device:
            raise Stop('%s: 0x%x is not a live WDFDEVICE handle' % (api, device))

    def WdfDeviceCreateDeviceInterface(self, globals_, device, guid, reference):
        g = self.guest
        self.check_globals(globals_, 'WdfDeviceCreateDeviceInterface')
        self.check_device(device, 'WdfDeviceCreateDeviceInterface')
        if not guid:
            raise Stop('WdfDeviceCreateDeviceInterface: a NULL InterfaceClassGUID (FxPointerNotNull)')
        if reference:
            length, maximum = struct.unpack('<HH', g.read(reference, 4))
            if length % 2 or maximum % 2 or length > maximum:
                return self._refuse('WdfDeviceCreateDeviceInterface: ReferenceString', STATUS_INVALID_PARAMETER)
        value = g.read(guid, 16)
        self.interfaces.append(value)
        self.log('wdf', 'WdfDeviceCreateDeviceInterface %s' % guid_text(value))
        self.contract.interface(value, reference)
        return 0

    # -- PnP --------------------------------------------------------------------------------------
    def device_add(self):
        """Generator: PnP adds the root-enumerated device (FxDriver::AddDevice):
        EvtDriverDeviceAdd(WDFDRIVER, PWDFDEVICE_INIT), the init structure
        opaque to the driver. A failure deletes what the add created; success
        with no device is a failure too."""
        if self.config is None or not self.config[0]:
            raise Stop('no EvtDriverDeviceAdd was given to WdfDriverCreate')
        self.device_init = DEVICE_INIT
        status = yield self.config[0], [DRIVER_HANDLE, DEVICE_INIT]
        self.device_init = None
        if status & 0x80000000 == 0 and self.device is None:
            raise Stop('EvtDriverDeviceAdd returned 0x%08X but created no device' % status)
        if status & 0x80000000:
            self.remove_device()                  # DeleteDeviceFromFailedCreate
        else:
            self.contract.device_added(self)
        return status

    def start_device(self):
        """PnP starts the device: its interfaces are enabled, its queues dispatch."""
        if self.device is not None:
            self.started = True

    def remove_device(self):
        """PnP removes the device before the driver can unload: interfaces
        disabled, queues purged (none holds a request: every request is
        completed in its callback or the run fails), device deleted. The
        driver registered no device or queue callbacks, so none runs."""
        self.started = False
        self.device = None
        self.interfaces = []
        self.io.delete_queues()

    def interface_enabled(self, guid):
        return self.started and guid in self.interfaces
