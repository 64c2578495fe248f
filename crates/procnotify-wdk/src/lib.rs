//! # procnotify-wdk
//!
//! The Windows kernel as [`procnotify_core::Os`], over wdk-sys: the only
//! library code of procnotify that touches the WDK.
//!
//! - `WindowsKernel<I>`: `KeRegisterProcessorChangeCallback(..ADD_EXISTING)`
//!   with a generic trampoline, `KeDeregisterProcessorChangeCallback`,
//!   processor queries, `KeFlushQueuedDpcs`, `DbgPrintEx` logging, for the
//!   driver whose [`procnotify_core::Identity`] is `I`.
//! - `NonPagedPool<I>`: `ExAllocatePool2` under the driver's tag
//!   (`I::POOL_TAG`, validated when the driver is compiled), honouring the
//!   128-byte alignment of the table's slots. This crate names no driver:
//!   procnotify passes its own identity, `procnotify_core::monitor::Procnotify`.
//! - `Kdpc<I>`: a `KDPC` as [`procnotify_core::monitor::TargetedDpc`], queued
//!   with its processor's value's address, which its routine reads back (no
//!   lookup).
//!
//! 64-bit Windows only: the pool code relies on `ExAllocatePool2`'s 16-byte
//! alignment (`MEMORY_ALLOCATION_ALIGNMENT` there; 8 bytes on 32-bit
//! Windows), so a Windows target of any other pointer width is a compile
//! error.
//!
//! On any host but Windows the crate is empty.
//! That includes its page on docs.rs, which cannot build it for Windows
//! (wdk-sys needs the WDK): read the API with `cargo doc -p procnotify-wdk
//! --open` on a Windows host with the WDK, or in the repository's sources.
#![no_std]
// Kernel code must not panic: a panic is a bugcheck.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented
)]

#[cfg(all(windows, not(target_pointer_width = "64")))]
compile_error!(
    "procnotify-wdk supports 64-bit Windows only: its pool alignment assumes ExAllocatePool2's 16-byte \
     MEMORY_ALLOCATION_ALIGNMENT, which 32-bit Windows does not give"
);

#[cfg(windows)]
mod dpc;
#[cfg(windows)]
mod kernel;
#[cfg(windows)]
mod pool;

#[cfg(windows)]
pub use dpc::Kdpc;
#[cfg(windows)]
pub use kernel::{Registration, WindowsKernel};
#[cfg(windows)]
pub use pool::NonPagedPool;
