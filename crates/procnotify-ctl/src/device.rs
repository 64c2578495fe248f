//! The driver over Win32 (Windows only): find the device interface, open it,
//! probe, then ask for the whole table.
//!
//! 1. `CM_Get_Device_Interface_List_SizeW` / `CM_Get_Device_Interface_ListW`
//!    with [`GUID_DEVINTERFACE_PROCNOTIFY`] and
//!    `CM_GET_DEVICE_INTERFACE_LIST_PRESENT`: the symbolic link of each
//!    started procnotify device (none: not installed).
//! 2. `CreateFileW(link, GENERIC_READ, ...)`: the device's security
//!    descriptor lets only SYSTEM and Administrators open it
//!    (`ERROR_ACCESS_DENIED` otherwise), and the query needs read access.
//! 3. `DeviceIoControl(IOCTL_PROCNOTIFY_QUERY)` with a header-sized buffer
//!    (the probe; `ERROR_MORE_DATA` when the table has rows), then with room
//!    for the table's capacity, which no table exceeds: one more call, never
//!    a retry loop.

use std::ptr;

use procnotify_core::abi::{self, GUID_DEVINTERFACE_PROCNOTIFY, HEADER_SIZE, IOCTL_PROCNOTIFY_QUERY};
use windows_sys::Win32::Devices::DeviceAndDriverInstallation::{
    CM_GET_DEVICE_INTERFACE_LIST_PRESENT, CM_Get_Device_Interface_List_SizeW, CM_Get_Device_Interface_ListW,
    CR_BUFFER_SMALL, CR_SUCCESS,
};
use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_ACCESS_DENIED, ERROR_FILE_NOT_FOUND, ERROR_INVALID_FUNCTION, ERROR_MORE_DATA,
    ERROR_PATH_NOT_FOUND, GENERIC_READ, GetLastError, HANDLE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_ATTRIBUTE_NORMAL, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING,
};
use windows_sys::Win32::System::IO::DeviceIoControl;
use windows_sys::core::GUID;

use crate::error::CtlError;

// The ABI's numbers are the SDK's.
const _: () = {
    use windows_sys::Win32::System::Ioctl;
    assert!(abi::FILE_DEVICE_UNKNOWN == Ioctl::FILE_DEVICE_UNKNOWN);
    assert!(abi::METHOD_BUFFERED == Ioctl::METHOD_BUFFERED);
    assert!(abi::FILE_READ_ACCESS == Ioctl::FILE_READ_ACCESS);
};

/// [`GUID_DEVINTERFACE_PROCNOTIFY`] as Win32's `GUID`.
const INTERFACE: GUID = GUID {
    data1: GUID_DEVINTERFACE_PROCNOTIFY.data1,
    data2: GUID_DEVINTERFACE_PROCNOTIFY.data2,
    data3: GUID_DEVINTERFACE_PROCNOTIFY.data3,
    data4: GUID_DEVINTERFACE_PROCNOTIFY.data4,
};

/// Attempts at reading the interface list when it grows between the size
/// and the list call (a device arriving).
const LIST_ATTEMPTS: usize = 4;

/// The symbolic link of the first present procnotify interface, as a
/// NUL-terminated UTF-16 string.
fn interface_path() -> Result<Vec<u16>, CtlError> {
    for _ in 0..LIST_ATTEMPTS {
        let mut len = 0_u32;
        // SAFETY: `len` is writable; the GUID is a valid static; no device
        // instance filter (NULL).
        let status = unsafe {
            CM_Get_Device_Interface_List_SizeW(
                &raw mut len,
                &INTERFACE,
                ptr::null(),
                CM_GET_DEVICE_INTERFACE_LIST_PRESENT,
            )
        };
        if status != CR_SUCCESS {
            return Err(CtlError::Win32 { call: "CM_Get_Device_Interface_List_SizeW", code: status });
        }
        // An empty list is one NUL: no interface.
        if len <= 1 {
            return Err(CtlError::NotInstalled);
        }
        let mut list = vec![0_u16; len as usize];
        // SAFETY: `list` holds `len` UTF-16 units, the length passed.
        let status = unsafe {
            CM_Get_Device_Interface_ListW(
                &INTERFACE,
                ptr::null(),
                list.as_mut_ptr(),
                len,
                CM_GET_DEVICE_INTERFACE_LIST_PRESENT,
            )
        };
        match status {
            CR_SUCCESS => {}
            CR_BUFFER_SMALL => continue,
            code => return Err(CtlError::Win32 { call: "CM_Get_Device_Interface_ListW", code }),
        }
        // A list of NUL-terminated strings ending with an empty one: keep the
        // first string and its NUL.
        let end = list.iter().position(|&unit| unit == 0).unwrap_or(list.len());
        if end == 0 {
            return Err(CtlError::NotInstalled);
        }
        list.truncate(end);
        list.push(0);
        return Ok(list);
    }
    Err(CtlError::Win32 { call: "CM_Get_Device_Interface_ListW", code: CR_BUFFER_SMALL })
}

/// An open handle to the procnotify device.
pub struct Device {
    handle: HANDLE,
}

impl Drop for Device {
    fn drop(&mut self) {
        // SAFETY: a handle CreateFileW returned, closed once, here.
        unsafe { CloseHandle(self.handle) };
    }
}

impl Device {
    /// Finds and opens the device for reading.
    ///
    /// # Errors
    ///
    /// [`CtlError::NotInstalled`] with no interface, [`CtlError::AccessDenied`]
    /// when not elevated, else the failing call.
    pub fn open() -> Result<Self, CtlError> {
        let path = interface_path()?;
        // SAFETY: `path` is NUL-terminated; no security attributes and no
        // template (NULL) are allowed for OPEN_EXISTING.
        let handle = unsafe {
            CreateFileW(
                path.as_ptr(),
                GENERIC_READ,
                FILE_SHARE_READ | FILE_SHARE_WRITE,
                ptr::null(),
                OPEN_EXISTING,
                FILE_ATTRIBUTE_NORMAL,
                ptr::null_mut(),
            )
        };
        if handle == INVALID_HANDLE_VALUE {
            // SAFETY: no preconditions.
            return Err(match unsafe { GetLastError() } {
                ERROR_ACCESS_DENIED => CtlError::AccessDenied { call: "CreateFileW" },
                // The interface went away between the list and the open.
                ERROR_FILE_NOT_FOUND | ERROR_PATH_NOT_FOUND => CtlError::NotInstalled,
                code => CtlError::Win32 { call: "CreateFileW", code },
            });
        }
        Ok(Self { handle })
    }

    /// `DeviceIoControl(IOCTL_PROCNOTIFY_QUERY)` into `out`: the bytes the
    /// driver wrote and whether more rows did not fit (`ERROR_MORE_DATA`,
    /// which is `STATUS_BUFFER_OVERFLOW`).
    fn ioctl(&self, out: &mut [u8]) -> Result<(usize, bool), CtlError> {
        let len =
            u32::try_from(out.len()).map_err(|_| CtlError::Protocol(format!("a buffer of {} bytes", out.len())))?;
        let mut returned = 0_u32;
        // SAFETY: `out` is writable for `len` bytes; no input buffer;
        // `returned` is writable; synchronous (no OVERLAPPED).
        let ok = unsafe {
            DeviceIoControl(
                self.handle,
                IOCTL_PROCNOTIFY_QUERY,
                ptr::null(),
                0,
                out.as_mut_ptr().cast(),
                len,
                &raw mut returned,
                ptr::null_mut(),
            )
        };
        let written = (returned as usize).min(out.len());
        if ok != 0 {
            return Ok((written, false));
        }
        // SAFETY: no preconditions.
        match unsafe { GetLastError() } {
            ERROR_MORE_DATA => Ok((written, true)),
            ERROR_INVALID_FUNCTION => Err(CtlError::NoQuery),
            ERROR_ACCESS_DENIED => Err(CtlError::AccessDenied { call: "DeviceIoControl" }),
            code => Err(CtlError::Win32 { call: "DeviceIoControl", code }),
        }
    }

    /// The probe, then the whole table.
    ///
    /// # Errors
    ///
    /// A failed call, a reply of another format or one that does not decode.
    pub fn query(&self) -> Result<Vec<u8>, CtlError> {
        let mut probe = [0_u8; HEADER_SIZE];
        let (written, _) = self.ioctl(&mut probe)?;
        let header = abi::decode(&probe[..written])?.header;
        // `decode` checked capacity <= 2048: at most 65,600 bytes.
        let size = abi::reply_size(header.summary.capacity).max(header.reply_size) as usize;
        let mut out = vec![0_u8; size];
        let (written, more) = self.ioctl(&mut out)?;
        if more {
            return Err(CtlError::Protocol(format!("{size} bytes, room for the capacity, were not enough")));
        }
        out.truncate(written);
        Ok(out)
    }
}
