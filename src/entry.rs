//! The driver's entry points.
//!
//! - `DriverEntry` creates the KMDF driver object (`WdfDriverCreate`, with
//!   `EvtDriverDeviceAdd` for the root-enumerated device the INF installs and
//!   `EvtDriverUnload`), then loads the engine into [`DRIVER`]: the context
//!   first, then `KeRegisterProcessorChangeCallback(..ADD_EXISTING)`. A
//!   failure returns the status the callback recorded (or
//!   `STATUS_UNSUCCESSFUL`) with nothing of the engine left allocated.
//! - `EvtDriverUnload` unloads the engine: deregister, `KeFlushQueuedDpcs`,
//!   then free.
//!
//! In WinDbg: `dx -r2 procnotify!procnotify::entry::DEBUG_CONTEXT` (the
//! table; `docs/windows.md` §11 has the commands).

use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

use wdk::nt_success;
use wdk_sys::{
    NTSTATUS, PCUNICODE_STRING, PDRIVER_OBJECT, ULONG, WDF_DRIVER_CONFIG, WDF_NO_HANDLE, WDF_NO_OBJECT_ATTRIBUTES,
    WDFDEVICE, WDFDEVICE_INIT, WDFDRIVER, call_unsafe_wdf_function_binding,
};

use procnotify_core::monitor::Monitor;
use procnotify_core::{Context, DriverCell, Level, NtStatus, Os};
use procnotify_wdk::{Kdpc, WindowsKernel};

// The panic handler: a panic bugchecks with code 0x52504E43 ("RPNC"). Test
// builds link std's handler instead.
#[cfg(not(test))]
extern crate wdk_panic;

/// procnotify's hooks over the Windows kernel.
type Hooks = Monitor<Kdpc>;

/// The loaded engine, shared by `DriverEntry` and `EvtDriverUnload`.
static DRIVER: DriverCell<WindowsKernel, Hooks> = DriverCell::new();

/// The engine's context while it is loaded, null otherwise. Nothing reads it:
/// it is the debugger's entry point (`dx procnotify!procnotify::entry::DEBUG_CONTEXT`),
/// so `#[used]` keeps the optimiser from deleting a store-only global.
#[used]
static DEBUG_CONTEXT: AtomicPtr<Context<WindowsKernel, Hooks>> = AtomicPtr::new(ptr::null_mut());

/// `sizeof(WDF_DRIVER_CONFIG)` as the `ULONG` its `Size` field wants.
const DRIVER_CONFIG_SIZE: ULONG = {
    let size = size_of::<WDF_DRIVER_CONFIG>();
    assert!(size <= ULONG::MAX as usize);
    #[allow(clippy::cast_possible_truncation)] // checked just above
    let size = size as ULONG;
    size
};

/// The driver's entry point, called by KMDF's `FxDriverEntry` at
/// PASSIVE_LEVEL.
///
/// # Safety
///
/// Only the I/O manager calls it, with a valid driver object and registry path.
// Why the export is sound: "DriverEntry" is the symbol KMDF's FxDriverEntry
// calls, and nothing else in the image exports that name.
#[unsafe(export_name = "DriverEntry")]
pub unsafe extern "system" fn driver_entry(driver: PDRIVER_OBJECT, registry_path: PCUNICODE_STRING) -> NTSTATUS {
    // WDF keeps its default pool tag for its own objects, so `PNfy` counts
    // only the engine's allocations.
    let mut config = WDF_DRIVER_CONFIG {
        Size: DRIVER_CONFIG_SIZE,
        EvtDriverDeviceAdd: Some(evt_driver_device_add),
        EvtDriverUnload: Some(evt_driver_unload),
        ..WDF_DRIVER_CONFIG::default()
    };
    // SAFETY: `driver` and `registry_path` come from the I/O manager;
    // `config` is a valid, sized WDF_DRIVER_CONFIG.
    let status = unsafe { wdf_driver_create(driver, registry_path, &raw mut config) };
    if !nt_success(status) {
        WindowsKernel
            .log(Level::Error, format_args!("procnotify: WdfDriverCreate failed: status={}", NtStatus(status)));
        return status;
    }
    // The context exists before the callback is registered; on failure the
    // cell stays empty and nothing of the engine is left allocated.
    let loaded = DRIVER.load(WindowsKernel, Monitor::new(WindowsKernel));
    if loaded.is_success() {
        let context = DRIVER.context_address().cast_mut();
        // Release: a debugger reading it sees a complete context.
        DEBUG_CONTEXT.store(context, Ordering::Release);
        WindowsKernel.log(Level::Info, format_args!("procnotify: loaded, context={context:p}"));
    }
    // If this fails, KMDF tears the driver object down; EvtDriverUnload, if
    // called at all, finds the cell empty.
    loaded.0
}

/// `EvtDriverDeviceAdd` for the root-enumerated `Root\procnotify` device: a
/// plain device object so that PnP can start the devnode. The engine is
/// driver-wide and does not depend on it.
extern "C" fn evt_driver_device_add(_driver: WDFDRIVER, device_init: *mut WDFDEVICE_INIT) -> NTSTATUS {
    let mut device_init = device_init;
    let mut device: WDFDEVICE = WDF_NO_HANDLE.cast();
    // SAFETY: `device_init` comes from the framework for this call; `device`
    // receives the handle.
    unsafe { wdf_device_create(&raw mut device_init, &raw mut device) }
}

// The two WDF calls. `call_unsafe_wdf_function_binding!` (wdk-sys, through
// wdk-macros) expands to a function that slices and indexes the WDF function
// table and has an `unreachable!`; the allows are for that expansion only,
// which is why each call sits alone in its own function.

/// `WdfDriverCreate(driver, registry_path, WDF_NO_OBJECT_ATTRIBUTES, config,
/// WDF_NO_HANDLE)`.
///
/// # Safety
///
/// `DriverEntry`'s arguments, and a valid, sized `config`.
#[allow(clippy::indexing_slicing, clippy::unreachable, clippy::multiple_unsafe_ops_per_block, unused_qualifications)]
unsafe fn wdf_driver_create(
    driver: PDRIVER_OBJECT,
    registry_path: PCUNICODE_STRING,
    config: *mut WDF_DRIVER_CONFIG,
) -> NTSTATUS {
    // SAFETY: forwarded from the caller; no object attributes, and no driver
    // handle wanted (WDF_NO_HANDLE).
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDriverCreate,
            driver,
            registry_path,
            WDF_NO_OBJECT_ATTRIBUTES,
            config,
            WDF_NO_HANDLE.cast::<WDFDRIVER>(),
        )
    }
}

/// `WdfDeviceCreate(device_init, WDF_NO_OBJECT_ATTRIBUTES, device)`.
///
/// # Safety
///
/// `device_init` points to the `PWDFDEVICE_INIT` `EvtDriverDeviceAdd`
/// received; `device` is writable.
#[allow(clippy::indexing_slicing, clippy::unreachable, clippy::multiple_unsafe_ops_per_block, unused_qualifications)]
unsafe fn wdf_device_create(device_init: *mut *mut WDFDEVICE_INIT, device: *mut WDFDEVICE) -> NTSTATUS {
    // SAFETY: forwarded from the caller; no object attributes.
    unsafe { call_unsafe_wdf_function_binding!(WdfDeviceCreate, device_init, WDF_NO_OBJECT_ATTRIBUTES, device) }
}

/// `EvtDriverUnload`: deregisters the callback, flushes queued DPCs, then
/// frees the table and the context (all in [`DriverCell::unload`]).
extern "C" fn evt_driver_unload(_driver: WDFDRIVER) {
    DEBUG_CONTEXT.store(ptr::null_mut(), Ordering::Release);
    let unloaded = DRIVER.unload();
    WindowsKernel.log(Level::Info, format_args!("procnotify: unloaded={unloaded}"));
}
