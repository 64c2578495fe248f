//! # procnotify
//!
//! The KMDF driver: `DriverEntry` creates the WDF driver object, then loads
//! `procnotify_core`'s engine with procnotify's own hooks
//! (`procnotify_core::monitor::Monitor`: per-processor counters and a DPC
//! to each processor when it comes online) over the Windows kernel
//! (`procnotify_wdk::WindowsKernel`); `EvtDriverUnload` unloads it. The
//! root-enumerated device exposes the table to user mode through one
//! read-only I/O control code, `IOCTL_PROCNOTIFY_QUERY`
//! (`procnotify_core::abi`), which `procnotify-ctl` issues. (Plain names, not
//! links: on other hosts the crate has neither dependency.)
//!
//! Everything here is Windows-only. On any other host the crate is empty:
//! the engine lives in `crates/procnotify-core`, and the driver's behaviour
//! is tested against the simulator (`crates/procnotify-sim`) by this
//! package's `tests/`.
#![cfg_attr(target_os = "windows", no_std)]
// WinDbg / Visual Studio visualizers of the table and its slots, embedded in
// the driver's PDB (the path is relative to this file).
#![cfg_attr(target_os = "windows", debugger_visualizer(natvis_file = "procnotify.natvis"))]

#[cfg(target_os = "windows")]
mod device;
#[cfg(target_os = "windows")]
mod entry;
#[cfg(target_os = "windows")]
mod query;
