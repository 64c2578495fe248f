//! What can go wrong, each with its own exit code and a one-line message
//! that says what to do.

use std::fmt;

use procnotify_core::abi::{self, DecodeError, FORMAT_VERSION, GUID_DEVINTERFACE_PROCNOTIFY};

/// The exit codes. `2` is clap's, for a bad command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Done; for `check`, every listed processor is online with a visit.
    Ok = 0,
    /// `check`: a listed processor is not online with a DPC visit.
    CheckFailed = 1,
    /// A bad command line (clap's code).
    Usage = 2,
    /// No procnotify device interface: the driver is not installed or its
    /// device is not started.
    NotInstalled = 3,
    /// The device refused to open: not elevated.
    AccessDenied = 4,
    /// The driver speaks another reply format (or none).
    VersionMismatch = 5,
    /// A reply that does not decode, or a Windows call that failed otherwise.
    Failed = 6,
    /// Not Windows, and no saved reply to read.
    Unsupported = 7,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// An error, with what the user should do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CtlError {
    /// No device interface of procnotify's class is present.
    NotInstalled,
    /// Opening the device or the query was refused.
    AccessDenied {
        /// The Windows call that was refused.
        call: &'static str,
    },
    /// The reply's format version is not this tool's.
    Version {
        /// The driver's.
        driver: u32,
    },
    /// The device refuses the query's code (`ERROR_INVALID_FUNCTION`:
    /// `STATUS_INVALID_DEVICE_REQUEST`): it speaks no reply format.
    NoQuery,
    /// The reply does not decode.
    BadReply(DecodeError),
    /// A reply that breaks the protocol in a way decoding cannot see.
    Protocol(String),
    /// A Windows call failed with this error code.
    Win32 {
        /// The call.
        call: &'static str,
        /// `GetLastError()` (or a `CONFIGRET`).
        code: u32,
    },
    /// A file could not be read.
    File(String),
    /// There is no driver to ask on this host.
    Unsupported,
}

impl CtlError {
    /// The exit code for this error.
    pub fn exit(&self) -> Exit {
        match self {
            Self::NotInstalled => Exit::NotInstalled,
            Self::AccessDenied { .. } => Exit::AccessDenied,
            Self::Version { .. } | Self::NoQuery => Exit::VersionMismatch,
            Self::BadReply(DecodeError::Version { .. }) => Exit::VersionMismatch,
            Self::BadReply(_) | Self::Protocol(_) | Self::Win32 { .. } | Self::File(_) => Exit::Failed,
            Self::Unsupported => Exit::Unsupported,
        }
    }
}

impl From<DecodeError> for CtlError {
    fn from(error: DecodeError) -> Self {
        match error {
            DecodeError::Version { found, .. } => Self::Version { driver: found },
            other => Self::BadReply(other),
        }
    }
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotInstalled => write!(
                f,
                "the procnotify driver is not installed or its device is not started (no device interface \
                 {GUID_DEVINTERFACE_PROCNOTIFY}): install it with Install-Procnotify.ps1 (docs/windows.md, section 7)"
            ),
            Self::AccessDenied { call } => write!(
                f,
                "access denied ({call}): only SYSTEM and Administrators may open the procnotify device; run as \
                 Administrator"
            ),
            Self::Version { driver } => write!(
                f,
                "version mismatch: the driver answers with reply format {driver}, this procnotify-ctl reads format \
                 {FORMAT_VERSION}; use the procnotify-ctl built from the same sources as the driver"
            ),
            Self::NoQuery => write!(
                f,
                "version mismatch: the device refuses IOCTL_PROCNOTIFY_QUERY (0x{:08X}), so its driver speaks no reply \
                 format; this procnotify-ctl reads format {FORMAT_VERSION}: install the driver built from the same \
                 sources",
                abi::IOCTL_PROCNOTIFY_QUERY
            ),
            Self::BadReply(error) => write!(f, "the driver's reply does not decode: {error}"),
            Self::Protocol(what) => write!(f, "the driver's reply breaks the protocol: {what}"),
            Self::Win32 { call, code } => write!(f, "{call} failed: Windows error {code} (0x{code:X})"),
            Self::File(what) => f.write_str(what),
            Self::Unsupported => f.write_str(
                "procnotify-ctl talks to the driver on Windows only; on this host it can only read a saved reply \
                 (--reply FILE)",
            ),
        }
    }
}

impl std::error::Error for CtlError {}
