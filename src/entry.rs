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
//! - The device, its interface and the `IOCTL_PROCNOTIFY_QUERY` handler are
//!   in `device.rs`; the handler's mapping of the table to the reply in
//!   `query.rs`.
//!
//! In WinDbg: `dx -r2 procnotify!procnotify::entry::DEBUG_CONTEXT` (the
//! table; `docs/windows.md` §11 has the commands).

use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

use wdk::nt_success;
use wdk_sys::{
    NTSTATUS, PCUNICODE_STRING, PDRIVER_OBJECT, ULONG, WDF_DRIVER_CONFIG, WDF_NO_HANDLE, WDF_NO_OBJECT_ATTRIBUTES,
    WDFDRIVER, call_unsafe_wdf_function_binding,
};

use procnotify_core::monitor::{Monitor, Procnotify};
use procnotify_core::{Context, DriverCell, Level, NtStatus, trace};
use procnotify_wdk::{Kdpc, WindowsKernel};

use crate::device::evt_driver_device_add;

// The panic handler: a panic bugchecks with code 0x52504E43 ("RPNC"). Test
// builds link std's handler instead.
#[cfg(not(test))]
extern crate wdk_panic;

/// The Windows kernel, for procnotify: its lines start `procnotify:`, its
/// pool allocations carry `PNfy` (both from [`Procnotify`], procnotify's
/// identity, defined once in `procnotify_core::monitor`).
pub(crate) type Kernel = WindowsKernel<Procnotify>;

/// The kernel as a value (a ZST).
pub(crate) const KERNEL: Kernel = Kernel::new();

/// procnotify's hooks over the Windows kernel.
type Hooks = Monitor<Kdpc<Procnotify>>;

/// The loaded engine, shared by `DriverEntry`, `EvtDriverUnload` and the
/// query handler (`query.rs`).
pub(crate) static DRIVER: DriverCell<Kernel, Hooks> = DriverCell::new();

/// The engine's context while it is loaded, null otherwise. Nothing reads it:
/// it is the debugger's entry point (`dx procnotify!procnotify::entry::DEBUG_CONTEXT`),
/// so `#[used]` keeps the optimiser from deleting a store-only global.
#[used]
static DEBUG_CONTEXT: AtomicPtr<Context<Kernel, Hooks>> = AtomicPtr::new(ptr::null_mut());

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
    // WDF keeps its default pool tag for its own objects, so procnotify's
    // tag (`PNfy`) counts only the engine's allocations.
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
        trace::log(&KERNEL, Level::Error, format_args!("WdfDriverCreate failed: status={}", NtStatus(status)));
        return status;
    }
    // The context exists before the callback is registered; on failure the
    // cell stays empty and nothing of the engine is left allocated.
    let loaded = Monitor::load_into(&DRIVER, KERNEL);
    if loaded.is_success() {
        let context = DRIVER.context_address().cast_mut();
        // Release: a debugger reading it sees a complete context.
        DEBUG_CONTEXT.store(context, Ordering::Release);
        trace::log(&KERNEL, Level::Info, format_args!("loaded, context={context:p}"));
    }
    // If this fails, KMDF tears the driver object down; EvtDriverUnload, if
    // called at all, finds the cell empty.
    loaded.0
}

// The WDF call. `call_unsafe_wdf_function_binding!` (wdk-sys, through
// wdk-macros) expands to a function that slices and indexes the WDF function
// table and has an `unreachable!`; the allows are for that expansion only,
// which is why each call sits alone in its own function (the device's calls
// are in `device.rs`).

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

/// `EvtDriverUnload`: deregisters the callback, flushes queued DPCs, then
/// frees the table and the context (all in [`DriverCell::unload`]).
extern "C" fn evt_driver_unload(_driver: WDFDRIVER) {
    DEBUG_CONTEXT.store(ptr::null_mut(), Ordering::Release);
    let unloaded = DRIVER.unload();
    trace::log(&KERNEL, Level::Info, format_args!("unloaded={unloaded}"));
}
