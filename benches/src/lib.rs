//! What procnotify's benchmarks share: the contenders behind one trait, the
//! lookup loops (the same compiled functions for criterion's timings and for
//! callgrind's instruction counts), the DPC read path and the memory figures.
//!
//! - [`peers`]: the structures a driver author could use instead of the
//!   table, and the fixed array that is the physical limit of a lookup.
//! - [`table`]: procnotify-core's `Table`, through `Table::get` /
//!   `Table::value` and through a [`Reader`](procnotify_core::table::Reader).
//! - [`context`]: the engine's current-processor path, `Context::current`.
//! - [`dpc`]: the driver's real read path, `PerProcessor::from_context`.
//! - [`os`]: the `Os` the engine's paths run over.
//! - [`memory`]: bytes of slots, of the index, and what the Windows pool is
//!   asked for.
//!
//! "My own slot" needs the current processor index. On Windows it is
//! `KeGetCurrentProcessorNumberEx`, a call into ntoskrnl that loads through
//! `gs:`. Here every contender gets it the same way from
//! [`current_processor`]: a thread-local `Cell<u32>` read through
//! `black_box`, which stands in for the opaque call the compiler cannot hoist
//! out of a loop.

pub mod context;
pub mod dpc;
pub mod memory;
pub mod os;
pub mod peers;
pub mod table;

use std::cell::Cell;
use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use procnotify_core::MAX_PROCESSORS;

/// Processors present in the lookup and contention benchmarks.
pub const PRESENT: u32 = 64;

/// The partition's maximum: what `KeQueryMaximumProcessorCountEx` reports.
pub const MAX: u32 = MAX_PROCESSORS;

/// Lookups per call of a lookup loop (per criterion iteration).
pub const BATCH: u32 = 64;

/// The processor every single-threaded "own slot" lookup runs on.
pub const OWN: u32 = 37;

/// The criterion configuration of every group: short, so a run takes a few
/// minutes on two cores. Command-line options override it.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .nresamples(20_000)
        .configure_from_args()
}

std::thread_local! {
    static CURRENT: Cell<u32> = const { Cell::new(0) };
}

/// The calling thread's simulated processor index (`KeGetCurrentProcessorNumberEx`).
#[inline]
pub fn current_processor() -> u32 {
    CURRENT.with(|current| black_box(current).get())
}

/// Makes the calling thread run "on" processor `index`.
pub fn set_current_processor(index: u32) {
    CURRENT.with(|current| current.set(index));
}

/// `0 .. PRESENT` in a fixed scrambled order, [`BATCH`] of them
/// (multiplication by an odd number modulo a power of two is a permutation).
pub fn indices() -> Vec<u32> {
    (0..BATCH).map(|i| (i * 37 + 11) % PRESENT).collect()
}

/// One per-processor structure. A lookup loop takes a [`PerCpu::View`] once
/// (for most contenders `&Self`; for the fixed array its slice; for the
/// table's reader a [`Reader`](procnotify_core::table::Reader)), then `read`
/// is a lookup plus an `Acquire` load of the slot's state, `read_plain` a
/// lookup plus a load of a plain (non-atomic) field of the value, and
/// `visit` a lookup plus one `Relaxed` `fetch_add` on the slot's counter.
pub trait PerCpu: Sync + Send {
    /// Name in the benchmark id.
    const NAME: &'static str;
    /// Whether it has a by-index lookup (`ThreadLocal` and the engine's
    /// `Context::current` have not).
    const BY_INDEX: bool = true;
    /// Whether its lookup gives the slot's state (`Context::current` gives
    /// only the value).
    const STATE: bool = true;

    /// What a loop holds while it looks up.
    type View<'a>: Copy
    where
        Self: 'a;

    /// `present` processors online, room for `max`.
    fn with_present(present: u32, max: u32) -> Self;

    /// The view a loop uses.
    fn view(&self) -> Self::View<'_>;

    /// Looks processor `index` up and loads its state (0 if absent).
    fn read(view: Self::View<'_>, index: u32) -> u64;

    /// Looks processor `index` up and loads a plain field of its value: the
    /// processor's index, a `u32` written once (0 if absent).
    fn read_plain(view: Self::View<'_>, index: u32) -> u64;

    /// Looks processor `index` up and bumps its visit counter.
    fn visit(view: Self::View<'_>, index: u32);

    /// `read` of the calling processor's own slot.
    #[inline]
    fn read_own(view: Self::View<'_>) -> u64 {
        Self::read(view, current_processor())
    }

    /// `read_plain` of the calling processor's own slot.
    #[inline]
    fn read_plain_own(view: Self::View<'_>) -> u64 {
        Self::read_plain(view, current_processor())
    }

    /// `visit` of the calling processor's own slot.
    #[inline]
    fn visit_own(view: Self::View<'_>) {
        Self::visit(view, current_processor());
    }
}

/// A contender that can grow while it is read: the grower thread's side.
pub trait Grow: PerCpu {
    /// Adds one processor (the AddStart path). `next` is the grower's cursor,
    /// starting at `present`. When the structure is full it starts over, if it
    /// can; returns `false` when it can grow no further.
    fn grow(&self, present: u32, next: &mut u32) -> bool;
}

// ---------------------------------------------------------------------------
// The lookup loops. `inline(never)`: criterion (benches/lookup.rs) and
// callgrind (benches/icount.rs) run the very same machine code, and
// `objdump` finds it by name (docs/benchmarks.md quotes it).

/// Lookup by index: every index of `indices`, summing the states.
#[inline(never)]
pub fn by_index<C: PerCpu>(contender: &C, indices: &[u32]) -> u64 {
    let view = contender.view();
    let mut sum = 0_u64;
    for &index in indices {
        sum = sum.wrapping_add(C::read(view, index));
    }
    sum
}

/// Lookup by index, plain field: every index of `indices`, summing a plain
/// field of each value.
#[inline(never)]
pub fn by_index_plain<C: PerCpu>(contender: &C, indices: &[u32]) -> u64 {
    let view = contender.view();
    let mut sum = 0_u64;
    for &index in indices {
        sum = sum.wrapping_add(C::read_plain(view, index));
    }
    sum
}

/// Own slot: [`BATCH`] reads of the calling processor's slot.
#[inline(never)]
pub fn own_slot<C: PerCpu>(contender: &C) -> u64 {
    let view = contender.view();
    let mut sum = 0_u64;
    for _ in 0..BATCH {
        sum = sum.wrapping_add(C::read_own(view));
    }
    sum
}

/// Own slot, plain field: [`BATCH`] reads of a plain field of the calling
/// processor's value.
#[inline(never)]
pub fn own_slot_plain<C: PerCpu>(contender: &C) -> u64 {
    let view = contender.view();
    let mut sum = 0_u64;
    for _ in 0..BATCH {
        sum = sum.wrapping_add(C::read_plain_own(view));
    }
    sum
}

/// Own slot + visit: [`BATCH`] counter bumps in the calling processor's slot.
#[inline(never)]
pub fn own_slot_visit<C: PerCpu>(contender: &C) {
    let view = contender.view();
    for _ in 0..BATCH {
        C::visit_own(view);
    }
}
