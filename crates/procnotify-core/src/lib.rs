//! # procnotify-core
//!
//! Per-processor state that stays correct while processors are hot-added to a
//! running Windows machine: the portable, `no_std` engine of the procnotify
//! KMDF driver, for any driver that needs the same thing.
//!
//! A driver hands in its per-processor type and bring-up hooks ([`Hooks`],
//! in the shape of Linux's `cpuhp_setup_state`), and an [`Os`] (the Windows
//! one is in `procnotify-wdk`, a simulated one in `procnotify-sim`) that
//! carries the driver's [`Identity`]: the name every log line of the engine
//! starts with and the pool tag every allocation is made under. The
//! engine registers the processor change callback with
//! `KE_PROCESSOR_CHANGE_ADD_EXISTING`, replays the existing processors
//! through the hooks, keeps a lock-free [`Table`] of per-processor values
//! grown by the callback, and unloads in the only safe order.
//!
//! ```text
//! Windows kernel ──notification──▶ OS layer ──RawNotification──▶ engine ──▶ lifecycle ──▶ table ◀── readers
//!  (or simulator)                  (trampoline)                  (Context)  (pure fn)     (Table<T>)  (any IRQL)
//!                                  driver: load / unload order, over the Os trait
//! ```
//!
//! One module per concept; dependencies run one way (down this list):
//!
//! - [`values`]: plain values (`NtStatus`, `ProcNumber`, the raw notification,
//!   [`NotifyState`], limits). Imports nothing else of the crate.
//! - [`identity`]: who the driver is ([`Identity`]: its [`Name`] and
//!   [`PoolTag`], checked when it is compiled). A leaf too.
//! - [`pool`]: the fallible allocator trait. No global allocator is used: an
//!   allocation failure is always a value.
//! - [`lifecycle`]: the slot state machine as a pure function.
//! - [`table`]: the lock-free table, generic over `T`. Wait-free reads.
//! - [`hooks`]: what a driver plugs in.
//! - [`os`]: what the engine needs of the OS.
//! - [`trace`]: the log lines, formatted once for every OS layer, each
//!   starting with the driver's name.
//! - [`engine`]: the callback ([`Context`]).
//! - [`driver`]: load and unload ([`Driver`], [`DriverCell`] for a `static`).
//! - [`monitor`]: procnotify's own hooks (counters and a DPC per processor)
//!   and procnotify's own identity ([`monitor::Procnotify`]: `procnotify`,
//!   `PNfy`).
//!
//! # Whose name, whose tag
//!
//! The engine never spells a driver's name. A driver declares itself once,
//! on a zero-sized type, and gives that type to its OS layer (`Os::Identity`;
//! `procnotify_wdk::WindowsKernel<I>`, `procnotify_sim::SimOs<I>`). It is a
//! type parameter, not a value, on purpose:
//!
//! - **zero run-time cost**: the name and the tag are constants, folded into
//!   the calls that use them; nothing is stored or passed around;
//! - **checked at compile time**: a tag that is not four printable ASCII
//!   bytes, or a name with a space, `%` or non-ASCII, does not build
//!   ([`name!`], [`pool_tag!`]);
//! - **cannot be forgotten**: `Os::Identity` has no default, so no line and
//!   no allocation of the engine can go out under someone else's name.
//!
//! See [`identity`] for the rules and an example.
//!
//! Beside them, [`abi`]: the wire format of the driver's user-mode query
//! (`IOCTL_PROCNOTIFY_QUERY`), its encoder and decoder and the printed
//! forms of the table. It uses plain values only; [`query`] maps a context
//! whose values are procnotify's [`monitor::PerProcessor`]s to the query's
//! header and rows, for the driver's handler and the simulator alike.
//!
//! # Example
//!
//! A per-processor counter, loaded against the simulator (on Windows the
//! `Os` would be `procnotify_wdk::WindowsKernel<PacketsDriver>`):
//!
//! ```
//! use core::mem::MaybeUninit;
//! use core::sync::atomic::{AtomicU64, Ordering};
//! use procnotify_core::identity::{Identity, Name, PoolTag};
//! use procnotify_core::{Cpu, Driver, Hooks, NtStatus, name, pool_tag};
//! use procnotify_sim::{Config, SimKernel, SimOs};
//!
//! /// Who the driver is: `packets: ...` in the log, `Pkts` in PoolMon.
//! struct PacketsDriver;
//! impl Identity for PacketsDriver {
//!     const NAME: Name = name!("packets");
//!     const POOL_TAG: PoolTag = pool_tag!(b"Pkts");
//! }
//!
//! struct Packets;
//! impl Hooks for Packets {
//!     type Value = AtomicU64;
//!     fn init<'a>(&self, _: Cpu, place: &'a mut MaybeUninit<AtomicU64>) -> Result<&'a mut AtomicU64, NtStatus> {
//!         Ok(place.write(AtomicU64::new(0)))
//!     }
//! }
//!
//! let kernel = SimKernel::boot(Config::new(2, 8));
//! let driver = Driver::load(SimOs::<PacketsDriver>::with_identity(&kernel), Packets).expect("load");
//! kernel.hot_add();
//! // A reader on processor 2 (the hot-added one) counts a packet.
//! SimKernel::run_on(2, || driver.context().current().map(|n| n.fetch_add(1, Ordering::Relaxed)));
//! assert_eq!(driver.context().table().value(2).map(|n| n.load(Ordering::Relaxed)), Some(1));
//! assert_eq!(driver.context().present(), 3);
//! driver.unload();
//! assert_eq!(kernel.pool().stats().live, 0);
//! assert!(kernel.log_lines().iter().all(|line| line.starts_with("packets: ")));
//! assert!(kernel.pool().tags().iter().all(|count| count.tag == Some(PacketsDriver::POOL_TAG)));
//! ```
#![no_std]
// Kernel-reachable code must not panic: a panic is a bugcheck.
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

// `no_std` is a compile-time fact: std only for the crate's own tests (unit
// tests and the loom models, which are tests too).
#[cfg(test)]
extern crate std;

pub mod abi;
pub mod driver;
pub mod engine;
pub mod hooks;
pub mod identity;
pub mod lifecycle;
pub mod log;
pub mod monitor;
pub mod os;
pub mod pool;
pub mod query;
mod sync;
pub mod table;
pub mod trace;
pub mod values;

#[cfg(all(test, procnotify_loom))]
mod loom_tests;

pub use driver::{Driver, DriverCell};
pub use engine::{Context, StatsSnapshot};
pub use hooks::{Cpu, Hooks};
pub use identity::{Identity, Name, PoolTag};
pub use lifecycle::{Anomaly, Outcome, SlotState};
pub use os::{Os, Sink};
pub use pool::PoolAllocator;
pub use table::{Slot, Table};
pub use values::{
    ADD_EXISTING, AllocError, GROUP_SIZE, Level, MAX_PROCESSORS, NotifyState, NtStatus, ProcNumber, RawNotification,
    UnknownState,
};

// The README's example (it is the crate's page on crates.io) is compiled and
// run with the doc-tests, so it cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
