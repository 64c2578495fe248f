//! A script of notifications, hot-adds, reads and reloads, run against the
//! real engine (procnotify's own [`Monitor`](procnotify_core::monitor::Monitor)
//! hooks over [`SimOs`](crate::SimOs)) and checked, after every step, against
//! a small reference model.
//!
//! One decoder serves both the cargo-fuzz target (`fuzz/fuzz_targets/notifications.rs`)
//! and the corpus replay test (`tests/fuzz_corpus.rs`), so a seed that passes
//! one passes the other; the property test (`tests/properties.rs`) builds
//! [`Op`]s directly and calls [`run_ops`]. [`run_query`] runs the same
//! scripts for the query's fuzz target (`fuzz/fuzz_targets/query.rs`) and
//! also checks `IOCTL_PROCNOTIFY_QUERY`'s reply after every step.
//!
//! # The reference model
//!
//! The model does not restate procnotify's rules. For every notification it
//! reaches procnotify it asks the engine's own pure state machine,
//! [`procnotify_core::lifecycle::transition`] (and
//! [`Transition::failed`](procnotify_core::lifecycle::Transition::failed)
//! when creating the value fails), what happens to the slot. What it models
//! itself is only what lies *outside* that function:
//!
//! - **the kernel**: the registration order (another driver before
//!   procnotify, one after its first load), `KE_PROCESSOR_CHANGE_ADD_EXISTING`
//!   replay and its unwinding on a veto, hot-add order and index reuse,
//!   refusals (no dynamic partitioning, at the maximum, prepare failure),
//!   other drivers' vetoes, HAL start failures, where a DPC targeted by group
//!   and number can run;
//! - **allocation**: which allocation ordinal of an operation fails. A load
//!   allocates the table's index, then the context; then, during the
//!   registration and in every later callback, the table may allocate
//!   storage the first time a value is created at an index. *Whether* a given
//!   index needs new storage is a fact of the table's layout, which the model
//!   does not restate: it keeps a shadow [`Table`](procnotify_core::Table) of
//!   the same capacity over a pool of its own, creates a value there whenever
//!   `transition` says the engine creates one, and reads that pool's attempt
//!   counter;
//! - **the engine's bookkeeping around the state machine**: the range check
//!   (an out-of-range `AddStart` is vetoed), the first vetoing status kept,
//!   the counters (`notifications`, `vetoes`, anomalies as
//!   [`Outcome::is_anomaly`](procnotify_core::Outcome::is_anomaly) classifies
//!   them), and procnotify's per-processor counters
//!   ([`Counters`](procnotify_core::monitor::Counters): `starts` = accepted
//!   `AddStart`s, `completes`, `failures` = reverted `Starting` slots,
//!   `visits` = DPC runs and reads).
//!
//! The model's per-processor counters exist only for an index that has a
//! value, whatever storage the table allocated around it, so they do not
//! depend on memory layout: the same notifications give the same counts.
//!
//! # Byte format
//!
//! Three header bytes, then one operation per opcode byte until the input
//! runs out (a truncated operation reads zeros):
//!
//! | byte | meaning |
//! |---|---|
//! | `h0` | boot processors: `1 + h0 % 64` |
//! | `h1` | maximum: `boot + h1 % 128`, or 2048 when `h1 == 0xFF` |
//! | `h2` | bit 0: another driver registered *before* procnotify; bit 1: one registered *after* it; bit 2: the kernel reports half the maximum; bit 3: it reports `u32::MAX`; bit 4: no dynamic partitioning |
//!
//! | opcode `% 10` | operation and its argument bytes |
//! |---|---|
//! | 0 | inject a notification: `state`, `index`, `status`, `proc_number` bytes (small values, see [`decode`]) |
//! | 1 | inject a raw notification: four little-endian `u32`s: state, index, status, `group << 16 \| number` |
//! | 2 | hot-add |
//! | 3 | hot-add, another driver vetoes `AddStart`: `b` (bit 0: the driver after procnotify; the rest: the status) |
//! | 4 | hot-add, the HAL fails to start the processor: status byte |
//! | 5 | hot-add, the `1 + b % 3`-th allocation attempt of the hot-add fails |
//! | 6 | hot-add, `b` odd: the kernel fails to prepare; even: the next value initialisation fails |
//! | 7 | read on processor `b % (max + 2)` (`b == 0xFF`: a raw `u32` processor follows) |
//! | 8 | read on every running processor |
//! | 9 | `b % 5`: 0 unload (or load when unloaded), 1 reload, 2 reload with allocation attempt `1 + c % 8` failing, 3 reload with the value initialisation of processor `c` failing, 4 reload with the registration failing in the kernel |
//!
//! # What is checked after each step
//!
//! The status each caller saw (the hot-add result, every registration's
//! `*OperationStatus` for an injected notification, the load result); every
//! slot the step touched (every slot, every 64 steps and at each reload):
//! whether it has a value, its state, processor number and counters, and the
//! value's own index; the driver's statistics and recorded status; the pool
//! (the allocation attempts the step made, live allocations = the context
//! plus what the shadow table holds, the slots allocated, no double or
//! foreign free, no callback or DPC after free); the kernel-level facts of
//! `processor-change-semantics.md`, checked on the engine alone (a processor
//! whose add completed has an online slot, one whose add failed has none
//! present, every processor is online after a load); live values (each holds a simulated DPC); the processor count.
//! After the last step the driver unloads and nothing may stay allocated.

use std::string::String;

use procnotify_core::NtStatus;

use crate::kernel::{Config, NotifyContext};

mod bytes;
mod harness;
mod memory;
mod model;
mod query;

pub use bytes::{decode, encode};
pub use query::run_query;

/// The machine a script runs on (decoded from the header bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Processors at boot.
    pub boot: u32,
    /// The partition's maximum.
    pub max: u32,
    /// Another driver registered before procnotify (it can veto hot-adds).
    pub other_before: bool,
    /// Another driver registered after procnotify's first load.
    pub other_after: bool,
    /// What `KeQueryMaximumProcessorCountEx` reports.
    pub reported_max: Reported,
    /// Whether the platform supports hot-add.
    pub dynamic_partitioning: bool,
}

/// What the kernel reports as the maximum processor count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reported {
    /// The real maximum.
    Max,
    /// Half of it (at least 1): the table is smaller than the partition.
    Half,
    /// `u32::MAX`: the driver must clamp it.
    Huge,
}

impl Header {
    /// `boot` processors, up to `max`, nothing unusual.
    #[must_use]
    pub fn new(boot: u32, max: u32) -> Self {
        Self {
            boot,
            max,
            other_before: false,
            other_after: false,
            reported_max: Reported::Max,
            dynamic_partitioning: true,
        }
    }

    /// The simulated kernel's boot parameters.
    fn config(self) -> Config {
        let mut config = Config::new(self.boot, self.max);
        config.reported_max = match self.reported_max {
            Reported::Max => config.max,
            Reported::Half => (config.max / 2).max(1),
            Reported::Huge => u32::MAX,
        };
        config.dynamic_partitioning = self.dynamic_partitioning;
        config
    }
}

/// Something a hot-add is made to suffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddFault {
    /// Nothing.
    None,
    /// Another driver vetoes `AddStart` with this (failing) status.
    Veto {
        /// The driver registered after procnotify (else the one before it).
        after: bool,
        /// Its status.
        status: NtStatus,
    },
    /// The HAL fails to start the processor.
    StartFailure(NtStatus),
    /// The n-th allocation attempt (1-based) during the hot-add fails. A
    /// hot-add makes at most one (the table's storage for a new index), so
    /// only `Alloc(1)` can fire.
    Alloc(u32),
    /// The next value initialisation fails: the simulated DPC's `init`
    /// ([`SimKernel::fail_payload_init`](crate::SimKernel::fail_payload_init)),
    /// called by procnotify's `Hooks::init` the first time an index gets a
    /// value. A hot-add that reuses an index whose value exists initialises
    /// nothing, so the fault stays armed for the next initialisation.
    PayloadInit,
    /// The kernel fails to prepare the processor (no notifications).
    Prepare,
}

/// Something a load is made to suffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadFault {
    /// Nothing.
    None,
    /// The n-th allocation attempt (1-based) of the load fails: 1 is the
    /// table's index, 2 the context, later ones the table's storage as the
    /// existing processors' values are created.
    Alloc(u32),
    /// The k-th value initialisation (0-based) of the load fails (on a load,
    /// every existing processor's value is initialised once, in index order);
    /// see [`AddFault::PayloadInit`].
    PayloadInit(u32),
    /// The kernel fails the registration before linking it (NULL, no
    /// callbacks).
    Register,
}

/// One step of a script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Deliver this notification to every registration (`SimKernel::inject`).
    Inject(NotifyContext),
    /// `KeStartDynamicProcessor`, with a fault.
    HotAdd(AddFault),
    /// Run the read path on this processor (`Context::current`, then
    /// `PerProcessor::visit`, as a DPC routine would), and look the index up
    /// with `Table::get`.
    Read(u32),
    /// Run the read path on every running processor.
    ReadAll,
    /// Unload, or load when not loaded.
    Toggle,
    /// Unload if loaded, then load with a fault.
    Reload(LoadFault),
}

/// What a script did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Operations run.
    pub steps: u32,
    /// Notifications procnotify's callback received, over all loads.
    pub notifications: u64,
    /// Hot-adds attempted.
    pub hot_adds: u32,
    /// Loads attempted (the first included).
    pub loads: u32,
    /// Loads that failed.
    pub failed_loads: u32,
    /// Read-path runs.
    pub reads: u32,
    /// Faults injected (vetoes, start, allocation, value initialisation,
    /// prepare and registration failures).
    pub faults: u32,
}

/// Decodes `bytes` (see the [module documentation](self)) and runs them.
///
/// # Errors
///
/// A description of the first step where the engine and the model disagree,
/// or where memory was leaked, freed twice or used after free.
pub fn run(bytes: &[u8]) -> Result<Summary, String> {
    let (header, ops) = decode(bytes);
    run_ops(header, &ops)
}

/// Runs `ops` on the machine `header` describes, checking after each step.
///
/// # Errors
///
/// As [`run`].
pub fn run_ops(header: Header, ops: &[Op]) -> Result<Summary, String> {
    run_ops_checked(header, ops, None)
}

/// [`run_ops`], with procnotify's query also checked after every step, with
/// output lengths derived from `seed` (see [`run_query`]).
///
/// # Errors
///
/// As [`run_query`].
pub fn run_ops_with_query(header: Header, ops: &[Op], seed: u16) -> Result<Summary, String> {
    run_ops_checked(header, ops, Some(seed))
}

fn run_ops_checked(header: Header, ops: &[Op], query: Option<u16>) -> Result<Summary, String> {
    let mut harness = harness::Harness::new(header, query);
    harness.start()?;
    for &op in ops {
        harness.step(op)?;
    }
    harness.finish()
}
