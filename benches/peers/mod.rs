//! The contenders every benchmark shares: procnotify's segmented table and the
//! structures a driver author could use instead, behind one small trait so each
//! benchmark runs the same loop over all of them.
//!
//! - [`Fixed`]: a preallocated array of `KeQueryMaximumProcessorCountEx` slots,
//!   what C drivers do and the physical limit of a lookup.
//! - [`Locked`]: `RwLock<Vec<T>>` and `Mutex<Vec<T>>` from std, a lock taken per
//!   read.
//! - [`Boxcar`]: `boxcar::Vec<T>`, an append-only lock-free vector of doubling
//!   buckets (the closest relative of the table).
//! - [`PerThread`]: `thread_local::ThreadLocal<T>`, keyed by thread, so it has
//!   no by-index lookup.
//! - [`CopyOnGrow`]: `ArcSwap<Vec<Arc<T>>>`; readers `load()` a guard (the
//!   crate's fast path), growth copies the vector of pointers and swaps it.
//!   Slots are `Arc`s so a slot keeps its identity (and its counter) across
//!   growths, as per-processor state must.
//! - [`Segmented`]: the table under test, `Table<NoPayload, Heap>`.
//!
//! Every peer stores a [`Counter`]: a cache-line padded struct with a state
//! byte and an `AtomicU64`, laid out like the table's `Slot`, so one read (an
//! `Acquire` load of the state decoded into a `SlotState`, as `Slot::state`)
//! and one visit (one `Relaxed` `fetch_add`) do the same work everywhere.
//!
//! "My own slot" needs the current processor index. On Windows it is
//! `KeGetCurrentProcessorNumberEx`, a call into ntoskrnl that loads through
//! `gs:`. Here every contender gets it the same way from [`current_processor`]:
//! a thread-local `Cell<u32>` read through `black_box`, which stands in for the
//! opaque call the compiler cannot hoist out of a loop.
#![allow(dead_code)] // each bench target uses a subset of the contenders

use std::alloc::Layout;
use std::cell::Cell;
use std::ffi::c_void;
use std::hint::black_box;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use criterion::Criterion;
use procnotify::notify::{self, Kind};
use procnotify::os::{AllocError, PoolAllocator, SlotPayload};
use procnotify::{MAX_PROCESSORS, NtStatus, ProcNumber, RawNotification, SlotState, Table};

/// Processors present in the lookup and contention benchmarks.
pub const PRESENT: u32 = 64;

/// The partition's maximum: what `KeQueryMaximumProcessorCountEx` reports.
pub const MAX: u32 = MAX_PROCESSORS;

/// The criterion configuration of every group: short, so `cargo bench` takes a
/// few minutes on two cores.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .nresamples(20_000)
        .configure_from_args()
}

// ---------------------------------------------------------------------------
// The current processor, identical for every contender.

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

// ---------------------------------------------------------------------------
// The engine's OS-side pieces, reduced to what a benchmark needs.

/// `ExAllocatePool2` stand-in: the global allocator, zeroed. The simulator's
/// tracking pool (a mutex and a hash map per allocation) would dominate the
/// growth figures, so the table benchmarks use this one.
#[derive(Clone, Copy, Default)]
pub struct Heap;

// SAFETY: memory comes from the global allocator with the requested layout,
// zeroed, and is returned to it with the same layout.
unsafe impl PoolAllocator for Heap {
    fn allocate(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if layout.size() == 0 {
            return Err(AllocError);
        }
        // SAFETY: the layout has a non-zero size (checked above).
        NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) }).ok_or(AllocError)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller guarantees `ptr` came from `allocate` with `layout`.
        unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) }
    }
}

/// A payload with nothing in it: the table without an OS layer.
pub struct NoPayload;

impl SlotPayload for NoPayload {
    unsafe fn init(place: NonNull<Self>, _context: *const c_void, _index: u32) -> Result<(), NtStatus> {
        // SAFETY: the caller hands us aligned, writable storage.
        unsafe { place.as_ptr().write(Self) };
        Ok(())
    }
}

/// The table as the benchmarks use it.
pub type BenchTable = Table<NoPayload, Heap>;

/// Delivers one notification for `index` to `table` through the real state
/// machine (`notify::apply`), as the processor change callback does.
///
/// Callers keep to one writer per table: each benchmark's writer is a single
/// thread.
pub fn deliver(table: &BenchTable, kind: Kind, index: u32) {
    let notification =
        RawNotification { state: kind.raw(), index, status: NtStatus::SUCCESS, proc_number: ProcNumber::dense(index) };
    // SAFETY: every caller is the only writer of `table`, and `NoPayload::init`
    // never looks at the context, so no driver context is needed.
    let outcome = unsafe { notify::apply(table, notification, std::ptr::null()) };
    black_box(outcome);
}

/// A table for `max` processors with `0 .. present` brought online by
/// AddStart + AddComplete.
pub fn table_with(present: u32, max: u32) -> BenchTable {
    let table = Table::new(max, Heap);
    for index in 0..present {
        deliver(&table, Kind::AddStart, index);
        deliver(&table, Kind::AddComplete, index);
    }
    table
}

// ---------------------------------------------------------------------------
// The peers' slot.

/// One processor's state in every peer: padded to the table's cache-line
/// size, a state byte and a visit counter, as the table's `Slot`.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), repr(C, align(128)))]
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), repr(C, align(64)))]
#[derive(Default)]
pub struct Counter {
    state: AtomicU8,
    visits: AtomicU64,
}

impl Counter {
    fn online() -> Self {
        Self { state: AtomicU8::new(2), visits: AtomicU64::new(0) }
    }

    /// The same work as `Slot::state`: an `Acquire` load of the state byte,
    /// decoded into a [`SlotState`].
    #[inline]
    fn read(&self) -> u64 {
        let state = match self.state.load(Ordering::Acquire) {
            1 => SlotState::Starting,
            2 => SlotState::Online,
            _ => SlotState::Vacant,
        };
        state as u64
    }

    #[inline]
    fn visit(&self) {
        self.visits.fetch_add(1, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------
// The contenders.

/// One per-processor structure. `read` is a lookup plus one load of the slot;
/// `visit` is a lookup plus one `Relaxed` `fetch_add` on the slot's counter
/// (the driver's read path, `Context::visit_current`).
pub trait PerCpu: Sync + Send {
    /// Name in the benchmark id.
    const NAME: &'static str;
    /// Whether it has a by-index lookup (`ThreadLocal` has not).
    const BY_INDEX: bool = true;

    /// `present` processors online, room for `max`.
    fn with_present(present: u32, max: u32) -> Self;

    /// Looks processor `index` up and loads its state (0 if absent).
    fn read(&self, index: u32) -> u64;

    /// Looks processor `index` up and bumps its visit counter.
    fn visit(&self, index: u32);

    /// `read` of the calling processor's own slot.
    #[inline]
    fn read_own(&self) -> u64 {
        self.read(current_processor())
    }

    /// `visit` of the calling processor's own slot.
    #[inline]
    fn visit_own(&self) {
        self.visit(current_processor());
    }
}

/// A contender that can grow while it is read: the grower thread's side.
pub trait Grow: PerCpu {
    /// Adds one processor (the AddStart path). `next` is the grower's cursor,
    /// starting at `present`. When the structure is full it starts over, if it
    /// can; returns `false` when it can grow no further.
    fn grow(&self, present: u32, next: &mut u32) -> bool;
}

/// The fixed, preallocated array.
pub struct Fixed(Box<[Counter]>);

impl PerCpu for Fixed {
    const NAME: &'static str = "fixed_array";

    fn with_present(present: u32, max: u32) -> Self {
        Self((0..max).map(|index| if index < present { Counter::online() } else { Counter::default() }).collect())
    }

    #[inline]
    fn read(&self, index: u32) -> u64 {
        self.0.get(index as usize).map_or(0, Counter::read)
    }

    #[inline]
    fn visit(&self, index: u32) {
        if let Some(counter) = self.0.get(index as usize) {
            counter.visit();
        }
    }
}

/// The table under test.
pub struct Segmented(pub BenchTable);

impl PerCpu for Segmented {
    const NAME: &'static str = "procnotify_table";

    fn with_present(present: u32, max: u32) -> Self {
        Self(table_with(present, max))
    }

    #[inline]
    fn read(&self, index: u32) -> u64 {
        self.0.get(index).map_or(0, |slot| slot.state() as u64)
    }

    #[inline]
    fn visit(&self, index: u32) {
        if let Some(slot) = self.0.get(index) {
            slot.visit();
        }
    }
}

impl Grow for Segmented {
    /// The real AddStart path (ensure + payload init + publish) for the next
    /// index, then AddFailure so the index can be added again on the next
    /// pass. The first pass over a fresh table allocates and publishes every
    /// segment; the table never shrinks, so later passes find them allocated.
    fn grow(&self, present: u32, next: &mut u32) -> bool {
        if *next >= self.0.capacity() {
            *next = present;
        }
        deliver(&self.0, Kind::AddStart, *next);
        deliver(&self.0, Kind::AddFailure, *next);
        *next += 1;
        true
    }
}

/// A `Vec` behind a std lock, locked for every read.
pub struct Locked<L>(L);

/// `RwLock<Vec<T>>`.
pub type RwLocked = Locked<RwLock<Vec<Counter>>>;
/// `Mutex<Vec<T>>`.
pub type MutexLocked = Locked<Mutex<Vec<Counter>>>;

fn online_vec(present: u32) -> Vec<Counter> {
    (0..present).map(|_| Counter::online()).collect()
}

/// The Vec-based growers' step: push, or when full start over from `present`
/// slots with the capacity released, so every pass reallocates (and copies)
/// its way up again as a growing `Vec` does.
fn grow_vec(vec: &mut Vec<Counter>, present: u32) {
    if vec.len() >= MAX as usize {
        vec.truncate(present as usize);
        vec.shrink_to_fit();
    } else {
        vec.push(Counter::online());
    }
}

impl PerCpu for RwLocked {
    const NAME: &'static str = "rwlock_vec";

    fn with_present(present: u32, _max: u32) -> Self {
        Self(RwLock::new(online_vec(present)))
    }

    #[inline]
    fn read(&self, index: u32) -> u64 {
        self.0.read().unwrap_or_else(PoisonError::into_inner).get(index as usize).map_or(0, Counter::read)
    }

    #[inline]
    fn visit(&self, index: u32) {
        if let Some(counter) = self.0.read().unwrap_or_else(PoisonError::into_inner).get(index as usize) {
            counter.visit();
        }
    }
}

impl Grow for RwLocked {
    fn grow(&self, present: u32, _next: &mut u32) -> bool {
        grow_vec(&mut self.0.write().unwrap_or_else(PoisonError::into_inner), present);
        true
    }
}

impl PerCpu for MutexLocked {
    const NAME: &'static str = "mutex_vec";

    fn with_present(present: u32, _max: u32) -> Self {
        Self(Mutex::new(online_vec(present)))
    }

    #[inline]
    fn read(&self, index: u32) -> u64 {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(index as usize).map_or(0, Counter::read)
    }

    #[inline]
    fn visit(&self, index: u32) {
        if let Some(counter) = self.0.lock().unwrap_or_else(PoisonError::into_inner).get(index as usize) {
            counter.visit();
        }
    }
}

impl Grow for MutexLocked {
    fn grow(&self, present: u32, _next: &mut u32) -> bool {
        grow_vec(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner), present);
        true
    }
}

/// `boxcar::Vec<T>`.
pub struct Boxcar(boxcar::Vec<Counter>);

impl PerCpu for Boxcar {
    const NAME: &'static str = "boxcar_vec";

    fn with_present(present: u32, _max: u32) -> Self {
        let vec = boxcar::Vec::new();
        for _ in 0..present {
            vec.push(Counter::online());
        }
        Self(vec)
    }

    #[inline]
    fn read(&self, index: u32) -> u64 {
        self.0.get(index as usize).map_or(0, Counter::read)
    }

    #[inline]
    fn visit(&self, index: u32) {
        if let Some(counter) = self.0.get(index as usize) {
            counter.visit();
        }
    }
}

impl Grow for Boxcar {
    /// Pushes up to the maximum. A `boxcar::Vec` cannot shrink while shared,
    /// so after that it can grow no further (like the table, whose later
    /// passes only re-run AddStart on allocated segments).
    fn grow(&self, _present: u32, _next: &mut u32) -> bool {
        if self.0.count() >= MAX as usize {
            return false;
        }
        self.0.push(Counter::online());
        true
    }
}

/// `thread_local::ThreadLocal<T>`: the calling thread's own entry.
pub struct PerThread(thread_local::ThreadLocal<Counter>);

impl PerCpu for PerThread {
    const NAME: &'static str = "thread_local";
    const BY_INDEX: bool = false;

    fn with_present(_present: u32, _max: u32) -> Self {
        Self(thread_local::ThreadLocal::new())
    }

    /// No by-index lookup exists; the benchmarks never call this.
    fn read(&self, _index: u32) -> u64 {
        self.read_own()
    }

    fn visit(&self, _index: u32) {
        self.visit_own();
    }

    #[inline]
    fn read_own(&self) -> u64 {
        self.0.get_or(Counter::online).read()
    }

    #[inline]
    fn visit_own(&self) {
        self.0.get_or(Counter::online).visit();
    }
}

/// `ArcSwap<Vec<Arc<T>>>`, copied on growth.
pub struct CopyOnGrow(ArcSwap<Vec<Arc<Counter>>>);

impl PerCpu for CopyOnGrow {
    const NAME: &'static str = "arc_swap_vec";

    fn with_present(present: u32, _max: u32) -> Self {
        Self(ArcSwap::from_pointee((0..present).map(|_| Arc::new(Counter::online())).collect()))
    }

    #[inline]
    fn read(&self, index: u32) -> u64 {
        self.0.load().get(index as usize).map_or(0, |counter| counter.read())
    }

    #[inline]
    fn visit(&self, index: u32) {
        if let Some(counter) = self.0.load().get(index as usize) {
            counter.visit();
        }
    }
}

impl Grow for CopyOnGrow {
    /// Copy, push, swap (one writer, so no `rcu` retry loop is needed); when
    /// full, swap in a copy of the first `present` slots.
    fn grow(&self, present: u32, _next: &mut u32) -> bool {
        let current = self.0.load_full();
        let next = if current.len() >= MAX as usize {
            current.iter().take(present as usize).cloned().collect()
        } else {
            let mut next = Vec::with_capacity(current.len() + 1);
            next.extend(current.iter().cloned());
            next.push(Arc::new(Counter::online()));
            next
        };
        self.0.store(Arc::new(next));
        true
    }
}
