//! # procnotify
//!
//! A Windows KMDF driver that keeps per-processor state correct while
//! processors are hot-added to a running machine, and the portable engine
//! behind it.
//!
//! One data path, one module per step:
//!
//! ```text
//! Windows kernel ──notification──▶ trampoline ──▶ state machine ──▶ per-processor table ◀── readers
//!  (or simulator)                  windows/ sim/   notify            table                  (DPCs, any IRQL)
//!                                  └──────────── driver: load / unload order, over the os interface
//! ```
//!
//! - [`os`]: the narrow interface to the OS (register / deregister, processor
//!   queries, tagged allocation, deferred work, logging) and its value types.
//! - [`table`]: the lock-free, segmented per-processor table. Wait-free reads.
//! - [`notify`]: the notification state machine, the only writer of slot
//!   lifecycle.
//! - [`driver`]: load and unload, written once over [`os::Os`].
//! - `windows` (Windows only): `DriverEntry`, the callback trampoline, the DPC
//!   and the wdk-sys implementation of [`os::Os`]. Nothing else touches wdk-sys.
//! - [`sim`] (hosts other than Windows): a simulator of the Windows kernel's
//!   processor-change machinery, the other implementation of [`os::Os`].
//!
//! The engine is `no_std` and uses no global allocator: every allocation goes
//! through [`os::PoolAllocator`], so allocation failure is always a value.
#![no_std]
// WinDbg / Visual Studio visualizers of the table and its slots, embedded in
// the driver's PDB (the path is relative to this file).
#![cfg_attr(target_os = "windows", debugger_visualizer(natvis_file = "windows/procnotify.natvis"))]
// The engine is no_std: nothing may reach for std by accident.
#![deny(clippy::std_instead_of_core, clippy::std_instead_of_alloc, clippy::alloc_instead_of_core)]
// Kernel-reachable code must not panic: a panic is a bugcheck. The simulator
// and the tests opt out below.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented,
        clippy::panic_in_result_fn,
        clippy::string_slice,
    )
)]

#[cfg(any(test, procnotify_loom, not(target_os = "windows")))]
extern crate std;

pub mod driver;
pub mod log;
pub mod notify;
pub mod os;
mod sync;
pub mod table;

#[cfg(not(target_os = "windows"))]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::std_instead_of_core,
    clippy::std_instead_of_alloc,
    clippy::missing_panics_doc
)]
pub mod sim;

#[cfg(target_os = "windows")]
mod windows;

pub use driver::{Context, Driver, DriverCell};
pub use notify::{Anomaly, Kind, Outcome};
pub use os::{Level, MAX_PROCESSORS, NtStatus, Os, ProcNumber, RawNotification};
pub use table::{Slot, SlotSnapshot, SlotState, Table};
