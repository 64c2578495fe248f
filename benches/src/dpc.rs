//! The driver's real read path: the DPC routine receives the address of its
//! processor's [`PerProcessor`] as its context (queued with the `KDPC`), so
//! `PerProcessor::from_context` finds the value with no lookup at all. Measured here with procnotify-core's own
//! [`Monitor`] hooks over a trivial [`TargetedDpc`] ([`BenchDpc`], the size
//! of an x64 `KDPC`) and [`BenchOs`], whose `log` discards the visit's trace
//! line (see [`crate::os`]), so the loop does one locked add per visit, as
//! every other contender's visit does.

use std::hint::black_box;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

use procnotify_core::monitor::{Monitor, PerProcessor, TargetedDpc};
use procnotify_core::{Cpu, Hooks, NtStatus, PoolAllocator, ProcNumber, SlotState, Table};
use procnotify_sim::kit::Heap;

use crate::BATCH;
use crate::os::{BenchAllocator, BenchOs};

/// A DPC that only records that it was queued; 64 bytes, the size of a
/// `KDPC` on x64, so the slot is laid out as the Windows driver's. Generic
/// over where its [`BenchOs`] allocates (the heap for timings, the
/// simulator's pool for the memory figures).
#[repr(C)]
pub struct BenchDpc<A = Heap> {
    queued: AtomicBool,
    _kdpc: [u8; 63],
    _os: PhantomData<fn() -> A>,
}

// SAFETY: nothing is ever deferred (`queue` only flips a flag and no routine
// runs), so there is no routine to break the trait's promises; `init` writes
// its place. Both are infallible.
unsafe impl<A: BenchAllocator> TargetedDpc for BenchDpc<A> {
    type Os = BenchOs<A>;

    fn init<'a>(_os: &BenchOs<A>, place: &'a mut MaybeUninit<Self>) -> Result<&'a mut Self, NtStatus> {
        Ok(place.write(Self { queued: AtomicBool::new(false), _kdpc: [0; 63], _os: PhantomData }))
    }

    unsafe fn queue(value: &PerProcessor<Self>, _os: &BenchOs<A>, _target: ProcNumber) -> Result<bool, NtStatus> {
        // Relaxed: a flag nobody else reads for ordering.
        Ok(!value.dpc().queued.swap(true, Ordering::Relaxed))
    }
}

/// procnotify's per-processor value, as the benchmarks build it.
pub type Value = PerProcessor<BenchDpc>;

/// A table of procnotify's own values, filled by [`Monitor::init`] through
/// the public writer, and the DPC address of one of them.
pub struct DpcBench {
    table: Table<Value, Heap>,
    os: BenchOs,
}

impl DpcBench {
    /// `0 .. present` online out of `max`.
    ///
    /// # Panics
    ///
    /// When the table cannot be allocated.
    pub fn new(present: u32, max: u32) -> Self {
        let os = BenchOs::new(present, max);
        let table = Table::new(max, Heap).expect("allocate the table's index");
        bring_up(&table, present, os);
        Self { table, os }
    }

    /// What the kernel passes the DPC routine of processor `index`: the
    /// address of its value, as `TargetedDpc::queue` takes it.
    pub fn context_of(&self, index: u32) -> Option<NonNull<Value>> {
        self.table.value(index).map(NonNull::from)
    }

    /// The OS the values log through.
    pub fn os(&self) -> &BenchOs {
        &self.os
    }

    /// The visits processor `index` has counted.
    pub fn visits(&self, index: u32) -> Option<u64> {
        self.table.value(index).map(|value| value.counters().visits)
    }
}

/// Brings `0 .. present` online in `table` with [`Monitor::init`] (the
/// driver's own hooks) through the public writer.
///
/// # Panics
///
/// When a slot cannot be created or another writer exists.
pub fn bring_up<A: PoolAllocator>(table: &Table<Value, A>, present: u32, os: BenchOs) {
    // SAFETY: the benchmarks never call `online` (nothing is queued), and
    // `BenchDpc` defers nothing anyway.
    let monitor = unsafe { Monitor::<BenchDpc>::new(os) };
    let mut writer = table.writer().expect("the only writer");
    for index in 0..present {
        let cpu = Cpu { index, number: ProcNumber::dense(index) };
        let slot = writer.get_or_insert(index, cpu.number, |place| monitor.init(cpu, place));
        assert!(slot.is_ok() && writer.set_state(index, SlotState::Online), "bring up {index}");
    }
}

/// [`BATCH`] runs of the DPC routine's work: `PerProcessor::from_context` on
/// the address the kernel passes (opaque to the compiler: `black_box`), then
/// `PerProcessor::visit` (a `Relaxed` `fetch_add`, and the trace line, which
/// `BenchOs::log` discards).
///
/// # Safety
///
/// `context` comes from [`DpcBench::context_of`] of a `DpcBench` that is
/// still alive.
#[inline(never)]
pub unsafe fn from_dpc_visit(context: NonNull<Value>, os: &BenchOs) {
    for _ in 0..BATCH {
        // SAFETY: a live `PerProcessor<BenchDpc>` in a table slot, its address
        // taken from a reference to it (the caller's promise), which
        // outlives this call.
        let value = unsafe { PerProcessor::from_context(black_box(context)) };
        value.visit(os);
    }
}
