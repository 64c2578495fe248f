//! Where replies come from: the driver (Windows, `crate::device`) or a
//! file holding a saved reply (any host; how the tests and a bug report
//! reach the decoder without a driver).

use std::fs;
use std::path::PathBuf;

use procnotify_core::abi;

use crate::error::CtlError;

/// Something that answers `IOCTL_PROCNOTIFY_QUERY`.
pub trait Source {
    /// One complete reply: its bytes, as the driver wrote them.
    ///
    /// # Errors
    ///
    /// What kept the reply from being read; see [`CtlError`].
    fn fetch(&mut self) -> Result<Vec<u8>, CtlError>;
}

/// A saved reply, read again at every fetch (so a test or a person can
/// replace it between the polls of `watch`).
#[derive(Clone, Debug)]
pub struct File {
    path: PathBuf,
}

impl File {
    /// The reply saved at `path`.
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }
}

impl Source for File {
    fn fetch(&mut self) -> Result<Vec<u8>, CtlError> {
        let too_big = |len| CtlError::File(format!("{}: {len} bytes, more than any reply", self.path.display()));
        let len =
            fs::metadata(&self.path).map_err(|error| CtlError::File(format!("{}: {error}", self.path.display())))?;
        // The largest reply is 65,600 bytes: refuse to read anything much
        // larger instead of reading it all.
        if len.len() > abi::MAX_REPLY_SIZE as u64 + 4096 {
            return Err(too_big(len.len()));
        }
        fs::read(&self.path).map_err(|error| CtlError::File(format!("{}: {error}", self.path.display())))
    }
}

/// The driver, asked at every fetch (opened and closed each time, so a
/// `watch` does not keep the device from being removed). Windows only.
#[derive(Clone, Copy, Debug, Default)]
pub struct Driver;

impl Source for Driver {
    #[cfg(windows)]
    fn fetch(&mut self) -> Result<Vec<u8>, CtlError> {
        crate::device::Device::open()?.query()
    }

    #[cfg(not(windows))]
    fn fetch(&mut self) -> Result<Vec<u8>, CtlError> {
        Err(CtlError::Unsupported)
    }
}
