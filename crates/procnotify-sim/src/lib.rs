//! # procnotify-sim
//!
//! A simulator of the Windows kernel's processor-change machinery, faithful
//! to `docs/processor-change-semantics.md`, and [`SimOs`], the
//! [`procnotify_core::Os`] that runs a real procnotify-core driver against it
//! on any host.
//!
//! - [`SimKernel`]: registration with and without `ADD_EXISTING` in the
//!   observed order (the handle is returned only after the existing-processor
//!   callbacks), hot-add with index reuse after a failed add, the 2048 limit,
//!   deregistration that waits for a running callback, DPCs, and fault
//!   injection (the k-th allocation fails, another driver vetoes, the HAL
//!   fails to start a processor, the kernel fails to prepare one).
//! - [`SimAllocator`]: the non-paged pool, accounting every allocation (with
//!   its pool tag) so leaks, double frees, frees under the wrong tag and uses
//!   after free are found.
//! - [`SimOs`] and [`SimDpc`], generic over the driver's identity
//!   (procnotify's by default): the simulator's side of the OS interface,
//!   mirroring the Windows layer (a trampoline, a targeted DPC per processor).
//! - [`query`]: the driver's `IOCTL_PROCNOTIFY_QUERY` answered by a driver
//!   loaded in the simulator, with the Windows driver's mapping of the table
//!   to the reply's rows.
#![allow(
    clippy::missing_panics_doc,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss
)]

mod alloc;
pub mod cli;
mod kernel;
pub mod kit;
mod locks;
mod os;
pub mod query;
pub mod script;

pub use alloc::{AllocStats, POISON, Pinned, SimAllocator, TagCount};
pub use kernel::{
    Config, Gate, Handle, HotAdd, KernelEvent, NotifyContext, OtherCallback, PendingFaults, RawCallback, Refusal,
    SimEvent, SimKernel, StartHook,
};
pub use os::{SimDpc, SimDriver, SimMonitor, SimOs};
