//! The root-enumerated device and its I/O: `EvtDriverDeviceAdd` creates the
//! device, its [`GUID_DEVINTERFACE_PROCNOTIFY`] interface and a default
//! queue whose `EvtIoDeviceControl` answers `IOCTL_PROCNOTIFY_QUERY`.
//!
//! - **Who may open it**: the INF's `Security` directive
//!   (`D:P(A;;GA;;;SY)(A;;GA;;;BA)`, `SDDL_DEVOBJ_SYS_ALL_ADM_ALL`: SYSTEM
//!   and Administrators only) and `FILE_DEVICE_SECURE_OPEN`, applied by PnP
//!   to the whole device stack, including the PDO whose name the interface's
//!   symbolic link points to. `WdfDeviceInitAssignSDDLString` would not do:
//!   it needs a named device object, and this FDO is unnamed (an interface
//!   is how user mode reaches a PnP device). The I/O control code requires
//!   `FILE_READ_ACCESS` on the handle besides.
//! - **The queue**: the default queue, parallel (the handler only reads
//!   the table, wait-free, and keeps no state of its own, so serialising
//!   callers would buy nothing), not power-managed (there is no hardware to
//!   power up), at `WdfExecutionLevelPassive` (KMDF calls the handler at
//!   `PASSIVE_LEVEL`, queuing a work item itself if it ever has to).
//! - **The handler** ([`evt_io_device_control`]): other codes complete with
//!   `STATUS_INVALID_DEVICE_REQUEST`, an input buffer with
//!   `STATUS_INVALID_PARAMETER` (`abi::check_request`); the query zeroes the
//!   output buffer and encodes the table into it ([`crate::query`]),
//!   completing with the encoder's status and `Information` = bytes written.
//!   It allocates nothing and takes no lock: in particular none that the
//!   processor change callback takes.

use core::ptr::{self, NonNull};

use wdk::nt_success;
use wdk_sys::{
    _WDF_EXECUTION_LEVEL::WdfExecutionLevelPassive, _WDF_IO_QUEUE_CONFIG__bindgen_ty_1,
    _WDF_IO_QUEUE_CONFIG__bindgen_ty_1__bindgen_ty_1, _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel,
    _WDF_SYNCHRONIZATION_SCOPE::WdfSynchronizationScopeInheritFromParent, _WDF_TRI_STATE::WdfFalse, GUID, NTSTATUS,
    PVOID, ULONG, ULONG_PTR, WDF_IO_QUEUE_CONFIG, WDF_NO_HANDLE, WDF_NO_OBJECT_ATTRIBUTES, WDF_OBJECT_ATTRIBUTES,
    WDFDEVICE, WDFDEVICE_INIT, WDFDRIVER, WDFQUEUE, WDFREQUEST, call_unsafe_wdf_function_binding,
};

use procnotify_core::abi::{self, GUID_DEVINTERFACE_PROCNOTIFY};
use procnotify_core::{Level, NtStatus, trace};

use crate::entry::KERNEL;
use crate::query;

/// `size_of::<T>()` as the `ULONG` a WDF structure's `Size` field wants.
const fn wdf_size<T>() -> ULONG {
    let size = size_of::<T>();
    assert!(size <= ULONG::MAX as usize);
    #[allow(clippy::cast_possible_truncation)] // checked just above
    let size = size as ULONG;
    size
}

// The ABI's numbers are the WDK's: devioctl.h's, and ntstatus.h's for the
// statuses the handler completes with.
const _: () = {
    assert!(abi::FILE_DEVICE_UNKNOWN == wdk_sys::FILE_DEVICE_UNKNOWN);
    assert!(abi::METHOD_BUFFERED == wdk_sys::METHOD_BUFFERED);
    assert!(abi::FILE_READ_ACCESS == wdk_sys::FILE_READ_ACCESS);
    assert!(NtStatus::BUFFER_OVERFLOW.0 == wdk_sys::STATUS_BUFFER_OVERFLOW);
    assert!(NtStatus::BUFFER_TOO_SMALL.0 == wdk_sys::STATUS_BUFFER_TOO_SMALL);
    assert!(NtStatus::INVALID_DEVICE_REQUEST.0 == wdk_sys::STATUS_INVALID_DEVICE_REQUEST);
    assert!(NtStatus::INVALID_PARAMETER.0 == wdk_sys::STATUS_INVALID_PARAMETER);
    assert!(NtStatus::SUCCESS.0 == wdk_sys::STATUS_SUCCESS);
    assert!(NtStatus::DEVICE_NOT_READY.0 == wdk_sys::STATUS_DEVICE_NOT_READY);
};

/// [`GUID_DEVINTERFACE_PROCNOTIFY`] as the WDK's `GUID`.
static INTERFACE: GUID = GUID {
    Data1: GUID_DEVINTERFACE_PROCNOTIFY.data1,
    Data2: GUID_DEVINTERFACE_PROCNOTIFY.data2,
    Data3: GUID_DEVINTERFACE_PROCNOTIFY.data3,
    Data4: GUID_DEVINTERFACE_PROCNOTIFY.data4,
};

/// `EvtDriverDeviceAdd` for the root-enumerated `Root\procnotify` device:
/// the device, its interface, its default queue. A failure deletes the
/// device (KMDF does, when this returns it) and leaves the engine, which is
/// driver-wide, loaded.
pub extern "C" fn evt_driver_device_add(_driver: WDFDRIVER, device_init: *mut WDFDEVICE_INIT) -> NTSTATUS {
    let mut device_init = device_init;
    let mut device: WDFDEVICE = WDF_NO_HANDLE.cast();
    // SAFETY: `device_init` comes from the framework for this call; `device`
    // receives the handle.
    let status = unsafe { wdf_device_create(&raw mut device_init, &raw mut device) };
    if !nt_success(status) {
        return failed("WdfDeviceCreate", status);
    }
    // SAFETY: `device` was just created; `INTERFACE` is a static GUID.
    let status = unsafe { wdf_device_create_device_interface(device, &raw const INTERFACE) };
    if !nt_success(status) {
        return failed("WdfDeviceCreateDeviceInterface", status);
    }
    let mut config = WDF_IO_QUEUE_CONFIG {
        Size: wdf_size::<WDF_IO_QUEUE_CONFIG>(),
        DispatchType: WdfIoQueueDispatchParallel,
        PowerManaged: WdfFalse,
        DefaultQueue: 1,
        EvtIoDeviceControl: Some(evt_io_device_control),
        // What WDF_IO_QUEUE_CONFIG_INIT sets for a parallel queue: no limit.
        Settings: _WDF_IO_QUEUE_CONFIG__bindgen_ty_1 {
            Parallel: _WDF_IO_QUEUE_CONFIG__bindgen_ty_1__bindgen_ty_1 { NumberOfPresentedRequests: ULONG::MAX },
        },
        ..WDF_IO_QUEUE_CONFIG::default()
    };
    let mut attributes = WDF_OBJECT_ATTRIBUTES {
        Size: wdf_size::<WDF_OBJECT_ATTRIBUTES>(),
        ExecutionLevel: WdfExecutionLevelPassive,
        SynchronizationScope: WdfSynchronizationScopeInheritFromParent,
        ..WDF_OBJECT_ATTRIBUTES::default()
    };
    // SAFETY: `device` was just created; `config` and `attributes` are
    // valid, sized structures; no queue handle is wanted.
    let status = unsafe { wdf_io_queue_create(device, &raw mut config, &raw mut attributes) };
    if !nt_success(status) {
        return failed("WdfIoQueueCreate", status);
    }
    status
}

/// Logs a failed step of `EvtDriverDeviceAdd` and returns its status.
fn failed(what: &str, status: NTSTATUS) -> NTSTATUS {
    trace::log(&KERNEL, Level::Error, format_args!("device add: {what} failed: status={}", NtStatus(status)));
    status
}

/// `EvtIoDeviceControl` of the default queue, at `PASSIVE_LEVEL` (the
/// queue's execution level). Completes every request it receives, once.
extern "C" fn evt_io_device_control(
    _queue: WDFQUEUE,
    request: WDFREQUEST,
    output_len: usize,
    input_len: usize,
    io_control_code: ULONG,
) {
    let (status, written) = match abi::check_request(io_control_code, input_len) {
        Ok(()) => answer(request, output_len),
        Err(status) => (status, 0),
    };
    // `written` is at most the output buffer's length, a `usize`, and
    // ULONG_PTR is pointer-sized on every Windows target.
    let information = ULONG_PTR::try_from(written).unwrap_or(0);
    // SAFETY: `request` was presented to this callback and is completed
    // here, once; the status and information are plain values.
    unsafe { wdf_request_complete_with_information(request, status.0, information) };
}

/// The query: the output buffer zeroed, then the reply encoded into it.
/// Returns the status and the bytes written.
fn answer(request: WDFREQUEST, output_len: usize) -> (NtStatus, usize) {
    if output_len < abi::HEADER_SIZE {
        // The probe convention: nothing written, and the required size is
        // the published header size (see `abi`).
        return (NtStatus::BUFFER_TOO_SMALL, 0);
    }
    let mut buffer: PVOID = ptr::null_mut();
    let mut length = 0_usize;
    // SAFETY: `request` is the request being handled; both out-parameters
    // are writable locals.
    let status =
        unsafe { wdf_request_retrieve_output_buffer(request, abi::HEADER_SIZE, &raw mut buffer, &raw mut length) };
    if !nt_success(status) {
        return (NtStatus(status), 0);
    }
    let Some(buffer) = NonNull::new(buffer.cast::<u8>()) else { return (NtStatus::INVALID_PARAMETER, 0) };
    // METHOD_BUFFERED: `buffer` is the I/O manager's system buffer, `length`
    // bytes of non-paged pool this request owns until it is completed. Its
    // bytes past the (empty) input are not initialised: write them before
    // any `&mut [u8]` exists.
    // SAFETY: `buffer` is valid for writes of `length` bytes (above), and
    // nothing else accesses it while the request is in this callback.
    unsafe { ptr::write_bytes(buffer.as_ptr(), 0, length) };
    // SAFETY: as above, and every byte is now initialised; the slice lives
    // only until this function returns, before the request is completed.
    let out = unsafe { core::slice::from_raw_parts_mut(buffer.as_ptr(), length) };
    let encoded = query::answer(out);
    (encoded.status, encoded.written)
}

// The WDF calls. `call_unsafe_wdf_function_binding!` (wdk-sys, through
// wdk-macros) expands to a function that slices and indexes the WDF function
// table and has an `unreachable!`; the allows are for that expansion only,
// which is why each call sits alone in its own function (as in `entry.rs`).

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

/// `WdfDeviceCreateDeviceInterface(device, guid, NULL)`: no reference
/// string.
///
/// # Safety
///
/// `device` is a live device handle; `guid` is a valid GUID.
#[allow(clippy::indexing_slicing, clippy::unreachable, clippy::multiple_unsafe_ops_per_block, unused_qualifications)]
unsafe fn wdf_device_create_device_interface(device: WDFDEVICE, guid: *const GUID) -> NTSTATUS {
    // SAFETY: forwarded from the caller; a NULL reference string is allowed.
    unsafe { call_unsafe_wdf_function_binding!(WdfDeviceCreateDeviceInterface, device, guid, ptr::null()) }
}

/// `WdfIoQueueCreate(device, config, attributes, WDF_NO_HANDLE)`.
///
/// # Safety
///
/// `device` is a live device handle; `config` and `attributes` point to
/// valid, sized structures.
#[allow(clippy::indexing_slicing, clippy::unreachable, clippy::multiple_unsafe_ops_per_block, unused_qualifications)]
unsafe fn wdf_io_queue_create(
    device: WDFDEVICE,
    config: *mut WDF_IO_QUEUE_CONFIG,
    attributes: *mut WDF_OBJECT_ATTRIBUTES,
) -> NTSTATUS {
    // SAFETY: forwarded from the caller; the queue handle is optional.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfIoQueueCreate,
            device,
            config,
            attributes,
            WDF_NO_HANDLE.cast::<WDFQUEUE>()
        )
    }
}

/// `WdfRequestRetrieveOutputBuffer(request, minimum, buffer, length)`.
///
/// # Safety
///
/// `request` is a request the driver owns; `buffer` and `length` are
/// writable.
#[allow(clippy::indexing_slicing, clippy::unreachable, clippy::multiple_unsafe_ops_per_block, unused_qualifications)]
unsafe fn wdf_request_retrieve_output_buffer(
    request: WDFREQUEST,
    minimum: usize,
    buffer: *mut PVOID,
    length: *mut usize,
) -> NTSTATUS {
    // SAFETY: forwarded from the caller.
    unsafe { call_unsafe_wdf_function_binding!(WdfRequestRetrieveOutputBuffer, request, minimum, buffer, length) }
}

/// `WdfRequestCompleteWithInformation(request, status, information)`.
///
/// # Safety
///
/// `request` is a request the driver owns and has not completed.
#[allow(clippy::indexing_slicing, clippy::unreachable, clippy::multiple_unsafe_ops_per_block, unused_qualifications)]
unsafe fn wdf_request_complete_with_information(request: WDFREQUEST, status: NTSTATUS, information: ULONG_PTR) {
    // SAFETY: forwarded from the caller.
    unsafe { call_unsafe_wdf_function_binding!(WdfRequestCompleteWithInformation, request, status, information) }
}
