"""The framework as far as the image uses it: WDFLDR.SYS's WdfVersionBind /
WdfVersionUnbind (imported by the stand-in WdfDriverEntry stub), a KMDF 1.33
function table, WdfDriverCreate, WdfDeviceCreate, and the framework's
DriverUnload that calls the driver's EvtDriverUnload.

This is a model of the calls and their contracts, not Microsoft's KMDF: no
object tree, no PnP or power state machine, no IRQL. Every other entry of
the function table is a trap that fails the run when called, naming the
function's index (wdffuncenum.h).
"""

from .guest import Stop

# wdffuncenum.h, KMDF 1.33: the table's size and the two entries the image calls.
FUNCTION_COUNT = 458
WDF_DEVICE_CREATE = 75
WDF_DRIVER_CREATE = 116
DRIVER_UNLOAD = 0x68                  # DRIVER_OBJECT.DriverUnload (wdm.h, x64)
WDF_DRIVER_CONFIG_SIZE = 32           # Size, EvtDriverDeviceAdd, EvtDriverUnload, DriverInitFlags, DriverPoolTag
BASE = 0x7FC00000                     # the framework's own data
DRIVER_HANDLE = BASE + 0x3000         # the WDFDRIVER the framework hands to callbacks
DEVICE_HANDLE = BASE + 0x3100


class Framework:
    def __init__(self, guest, log):
        self.guest, self.log = guest, log
        guest.map(BASE, 0x4000)
        self.globals = BASE                       # WDF_DRIVER_GLOBALS (opaque here)
        self.table = BASE + 0x1000                # WdfFunctions_01033 points here
        for index in range(FUNCTION_COUNT):
            handler = {WDF_DRIVER_CREATE: (self.WdfDriverCreate, 6),
                       WDF_DEVICE_CREATE: (self.WdfDeviceCreate, 4)}.get(index) or (self._unmodelled(index), 0)
            guest.w64(self.table + 8 * index, guest.new_trap('WdfFunctions_01033[%d]' % index, *handler))
        self.fx_unload = guest.new_trap('FxDriverUnload', self.fx_driver_unload, 1)
        self.reset()

    def reset(self):
        """A fresh framework for a fresh load of the image."""
        self.bound = False
        self.binds = self.unbinds = 0
        self.driver_object = None
        self.config = None                        # (EvtDriverDeviceAdd, EvtDriverUnload)
        self.device_init = None
        self.devices = 0

    def _unmodelled(self, index):
        def handler():
            raise Stop('the image called WdfFunctions_01033[%d], which the emulated framework does not model'
                       % index, 'import')
        return handler

    # -- WDFLDR.SYS --------------------------------------------------------------------------
    def WdfVersionBind(self, driver_object, registry_path, bind_info, globals_out):
        g = self.guest
        size, major, minor = g.r32(bind_info), g.r32(bind_info + 16), g.r32(bind_info + 20)
        count, table_out = g.r32(bind_info + 28), g.r64(bind_info + 32)
        if self.bound:
            raise Stop('WdfVersionBind while already bound')
        if size < 48 or (major, minor) != (1, 33) or count != FUNCTION_COUNT or not table_out or not globals_out:
            raise Stop('WdfVersionBind: bind info Size=%d version %d.%d FuncCount=%d FuncTable=0x%x: not a KMDF 1.33 '
                       'client' % (size, major, minor, count, table_out))
        g.w64(table_out, self.table)              # the stub's WdfFunctions_01033
        g.w64(globals_out, self.globals)          # the stub's WdfDriverGlobals
        self.bound, self.binds = True, self.binds + 1
        self.driver_object = driver_object
        self.log('wdf', 'WdfVersionBind: KMDF %d.%d, %d functions' % (major, minor, count))
        return 0

    def WdfVersionUnbind(self, registry_path, bind_info, globals_):
        if not self.bound or globals_ != self.globals:
            raise Stop('WdfVersionUnbind without a matching WdfVersionBind (globals 0x%x)' % globals_)
        self.bound, self.unbinds = False, self.unbinds + 1
        self.config = None                        # the framework deletes the driver object
        self.log('wdf', 'WdfVersionUnbind')
        return 0

    # -- KMDF functions ------------------------------------------------------------------------
    def WdfDriverCreate(self, globals_, driver_object, registry_path, attributes, config, driver_out):
        g = self.guest
        if globals_ != self.globals or driver_object != self.driver_object:
            raise Stop('WdfDriverCreate: globals 0x%x / driver object 0x%x are not the bound ones' % (globals_, driver_object))
        if self.config is not None:
            raise Stop('WdfDriverCreate called twice')
        if not config or g.r32(config) != WDF_DRIVER_CONFIG_SIZE:
            raise Stop('WdfDriverCreate: WDF_DRIVER_CONFIG.Size is not %d' % WDF_DRIVER_CONFIG_SIZE)
        self.config = (g.r64(config + 8), g.r64(config + 16))
        if self.config[1]:
            # KMDF's own DriverUnload, which calls EvtDriverUnload; the stub displaces it.
            g.w64(driver_object + DRIVER_UNLOAD, self.fx_unload)
        if driver_out:
            g.w64(driver_out, DRIVER_HANDLE)
        self.log('wdf', 'WdfDriverCreate: EvtDriverDeviceAdd=0x%x EvtDriverUnload=0x%x' % self.config)
        return 0

    def WdfDeviceCreate(self, globals_, device_init_in, attributes, device_out):
        g = self.guest
        if globals_ != self.globals or self.device_init is None or g.r64(device_init_in) != self.device_init:
            raise Stop('WdfDeviceCreate: not the PWDFDEVICE_INIT EvtDriverDeviceAdd received')
        g.w64(device_init_in, 0)                  # the framework owns the init structure now
        g.w64(device_out, DEVICE_HANDLE)
        self.devices += 1
        return 0

    def device_add(self, init):
        """Generator: PnP adds the root-enumerated device: EvtDriverDeviceAdd."""
        if self.config is None or not self.config[0]:
            raise Stop('no EvtDriverDeviceAdd was given to WdfDriverCreate')
        self.device_init = init
        status = yield self.config[0], [DRIVER_HANDLE, init]
        self.device_init = None
        return status

    def fx_driver_unload(self, driver_object):
        """Generator: the framework's DriverUnload: EvtDriverUnload(WDFDRIVER)."""
        if self.config is None or not self.config[1]:
            raise Stop('the framework unload routine ran with no EvtDriverUnload')
        yield self.config[1], [DRIVER_HANDLE]
        self.devices = 0
        return 0
