//! The structures a driver author could use instead of procnotify's table,
//! behind [`PerCpu`] so each benchmark runs the same loop over all of them.
//!
//! - [`Fixed`]: a preallocated array of `KeQueryMaximumProcessorCountEx`
//!   slots, what C drivers do and the physical limit of a lookup.
//! - [`Locked`]: `RwLock<Vec<T>>` and `Mutex<Vec<T>>` from std, a lock taken
//!   per read.
//! - [`Boxcar`]: `boxcar::Vec<T>`, an append-only lock-free vector of doubling
//!   buckets (the closest relative of the table).
//! - [`PerThread`]: `thread_local::ThreadLocal<T>`, keyed by thread, so it has
//!   no by-index lookup.
//! - [`CopyOnGrow`]: `ArcSwap<Vec<Arc<T>>>`; readers `load()` a guard (the
//!   crate's fast path), growth copies the vector of pointers and swaps it.
//!   Slots are `Arc`s so a slot keeps its identity (and its counter) across
//!   growths, as per-processor state must.
//!
//! Every peer stores a [`Counter`]: a cache-line padded struct with a state
//! byte, a plain `u32` (the processor's index) and an `AtomicU64`, laid out
//! like the table's `Slot`, so one read (an `Acquire` load of the state
//! decoded into a `SlotState`, as `Slot::state`), one plain read (a load of
//! the `u32`, as `PerProcessor::index`) and one visit (one `Relaxed`
//! `fetch_add`) do the same work everywhere.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use arc_swap::ArcSwap;
use procnotify_core::SlotState;

use crate::{Grow, MAX, PerCpu};

// ---------------------------------------------------------------------------
// The peers' slot.

/// One processor's state in every peer: padded to the table's cache-line
/// size, a state byte, the processor's index (a plain field, written once)
/// and a visit counter, as the table's `Slot` and its value.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), repr(C, align(128)))]
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), repr(C, align(64)))]
#[derive(Default)]
pub struct Counter {
    state: AtomicU8,
    index: u32,
    visits: AtomicU64,
}

impl Counter {
    fn online(index: u32) -> Self {
        Self { state: AtomicU8::new(2), index, visits: AtomicU64::new(0) }
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

    /// A load of the plain field.
    #[inline]
    fn read_plain(&self) -> u64 {
        u64::from(self.index)
    }

    #[inline]
    fn visit(&self) {
        self.visits.fetch_add(1, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------
// The contenders.

/// The fixed, preallocated array.
pub struct Fixed(Box<[Counter]>);

impl PerCpu for Fixed {
    const NAME: &'static str = "fixed_array";
    type View<'a> = &'a [Counter];

    fn view(&self) -> &[Counter] {
        &self.0
    }

    fn with_present(present: u32, max: u32) -> Self {
        Self((0..max).map(|index| if index < present { Counter::online(index) } else { Counter::default() }).collect())
    }

    #[inline]
    fn read(view: &[Counter], index: u32) -> u64 {
        view.get(index as usize).map_or(0, Counter::read)
    }

    #[inline]
    fn read_plain(view: &[Counter], index: u32) -> u64 {
        view.get(index as usize).map_or(0, Counter::read_plain)
    }

    #[inline]
    fn visit(view: &[Counter], index: u32) {
        if let Some(counter) = view.get(index as usize) {
            counter.visit();
        }
    }
}

/// A `Vec` behind a std lock, locked for every read.
pub struct Locked<L>(L);

/// `RwLock<Vec<T>>`.
pub type RwLocked = Locked<RwLock<Vec<Counter>>>;
/// `Mutex<Vec<T>>`.
pub type MutexLocked = Locked<Mutex<Vec<Counter>>>;

fn online_vec(present: u32) -> Vec<Counter> {
    (0..present).map(Counter::online).collect()
}

/// The Vec-based growers' step: push, or when full start over from `present`
/// slots with the capacity released, so every pass reallocates (and copies)
/// its way up again as a growing `Vec` does.
fn grow_vec(vec: &mut Vec<Counter>, present: u32) {
    if vec.len() >= MAX as usize {
        vec.truncate(present as usize);
        vec.shrink_to_fit();
    } else {
        let index = u32::try_from(vec.len()).unwrap_or(u32::MAX);
        vec.push(Counter::online(index));
    }
}

impl PerCpu for RwLocked {
    const NAME: &'static str = "rwlock_vec";
    type View<'a> = &'a Self;

    fn view(&self) -> &Self {
        self
    }

    fn with_present(present: u32, _max: u32) -> Self {
        Self(RwLock::new(online_vec(present)))
    }

    #[inline]
    fn read(view: &Self, index: u32) -> u64 {
        view.0.read().unwrap_or_else(PoisonError::into_inner).get(index as usize).map_or(0, Counter::read)
    }

    #[inline]
    fn read_plain(view: &Self, index: u32) -> u64 {
        view.0.read().unwrap_or_else(PoisonError::into_inner).get(index as usize).map_or(0, Counter::read_plain)
    }

    #[inline]
    fn visit(view: &Self, index: u32) {
        if let Some(counter) = view.0.read().unwrap_or_else(PoisonError::into_inner).get(index as usize) {
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
    type View<'a> = &'a Self;

    fn view(&self) -> &Self {
        self
    }

    fn with_present(present: u32, _max: u32) -> Self {
        Self(Mutex::new(online_vec(present)))
    }

    #[inline]
    fn read(view: &Self, index: u32) -> u64 {
        view.0.lock().unwrap_or_else(PoisonError::into_inner).get(index as usize).map_or(0, Counter::read)
    }

    #[inline]
    fn read_plain(view: &Self, index: u32) -> u64 {
        view.0.lock().unwrap_or_else(PoisonError::into_inner).get(index as usize).map_or(0, Counter::read_plain)
    }

    #[inline]
    fn visit(view: &Self, index: u32) {
        if let Some(counter) = view.0.lock().unwrap_or_else(PoisonError::into_inner).get(index as usize) {
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
    type View<'a> = &'a Self;

    fn view(&self) -> &Self {
        self
    }

    fn with_present(present: u32, _max: u32) -> Self {
        let vec = boxcar::Vec::new();
        for index in 0..present {
            vec.push(Counter::online(index));
        }
        Self(vec)
    }

    #[inline]
    fn read(view: &Self, index: u32) -> u64 {
        view.0.get(index as usize).map_or(0, Counter::read)
    }

    #[inline]
    fn read_plain(view: &Self, index: u32) -> u64 {
        view.0.get(index as usize).map_or(0, Counter::read_plain)
    }

    #[inline]
    fn visit(view: &Self, index: u32) {
        if let Some(counter) = view.0.get(index as usize) {
            counter.visit();
        }
    }
}

impl Grow for Boxcar {
    /// Pushes up to the maximum. A `boxcar::Vec` cannot shrink while shared,
    /// so after that it can grow no further (like the table, whose later
    /// passes only re-run AddStart on allocated segments).
    fn grow(&self, _present: u32, _next: &mut u32) -> bool {
        let count = self.0.count();
        if count >= MAX as usize {
            return false;
        }
        self.0.push(Counter::online(u32::try_from(count).unwrap_or(u32::MAX)));
        true
    }
}

/// `thread_local::ThreadLocal<T>`: the calling thread's own entry.
pub struct PerThread(thread_local::ThreadLocal<Counter>);

impl PerThread {
    /// The entry a thread gets on its first lookup (every benchmark thread
    /// stands for one processor; the index is not used by any check).
    fn first() -> Counter {
        Counter::online(0)
    }
}

impl PerCpu for PerThread {
    const NAME: &'static str = "thread_local";
    const BY_INDEX: bool = false;
    type View<'a> = &'a Self;

    fn view(&self) -> &Self {
        self
    }

    fn with_present(_present: u32, _max: u32) -> Self {
        Self(thread_local::ThreadLocal::new())
    }

    /// No by-index lookup exists; the benchmarks never call this.
    fn read(view: &Self, _index: u32) -> u64 {
        Self::read_own(view)
    }

    fn read_plain(view: &Self, _index: u32) -> u64 {
        Self::read_plain_own(view)
    }

    fn visit(view: &Self, _index: u32) {
        Self::visit_own(view);
    }

    #[inline]
    fn read_own(view: &Self) -> u64 {
        view.0.get_or(Self::first).read()
    }

    #[inline]
    fn read_plain_own(view: &Self) -> u64 {
        view.0.get_or(Self::first).read_plain()
    }

    #[inline]
    fn visit_own(view: &Self) {
        view.0.get_or(Self::first).visit();
    }
}

/// `ArcSwap<Vec<Arc<T>>>`, copied on growth.
pub struct CopyOnGrow(ArcSwap<Vec<Arc<Counter>>>);

impl PerCpu for CopyOnGrow {
    const NAME: &'static str = "arc_swap_vec";
    type View<'a> = &'a Self;

    fn view(&self) -> &Self {
        self
    }

    fn with_present(present: u32, _max: u32) -> Self {
        Self(ArcSwap::from_pointee((0..present).map(|index| Arc::new(Counter::online(index))).collect()))
    }

    #[inline]
    fn read(view: &Self, index: u32) -> u64 {
        view.0.load().get(index as usize).map_or(0, |counter| counter.read())
    }

    #[inline]
    fn read_plain(view: &Self, index: u32) -> u64 {
        view.0.load().get(index as usize).map_or(0, |counter| counter.read_plain())
    }

    #[inline]
    fn visit(view: &Self, index: u32) {
        if let Some(counter) = view.0.load().get(index as usize) {
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
            next.push(Arc::new(Counter::online(u32::try_from(current.len()).unwrap_or(u32::MAX))));
            next
        };
        self.0.store(Arc::new(next));
        true
    }
}
