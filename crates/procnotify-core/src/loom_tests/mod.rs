//! Loom models of the table and the engine. Run with
//!
//! ```text
//! RUSTFLAGS="--cfg procnotify_loom" cargo test -p procnotify-core --lib --release loom
//! ```
//!
//! Under `procnotify_loom` the crate's atomics and its `UnsafeCell`
//! (`crate::sync`) are loom's, so the models check the real table and engine
//! code, not a copy: loom reports a read of a cell that is not ordered after
//! its last write ("causality violation"), a write racing a read, a leaked
//! allocation (the models' allocator is loom's tracked one) and a deadlock.
//!
//! Every model counts the executions loom explored and fails below a floor
//! (about three quarters of the count measured when it was written; the
//! count is printed with `--nocapture`), and counts how often each
//! interleaving it is about happened, failing if one never did: a model that
//! explores one execution (tokio-rs/loom#392) proves nothing. See [`spawn`]
//! for the workaround.
//!
//! The models are exhaustive (no preemption bound) unless they set their
//! own bound or `LOOM_MAX_PREEMPTIONS` sets one; with the environment's
//! bound the floors do not apply and the counts are only printed.
//!
//! Where the models are:
//!
//! - `table`: the table alone (the link, the writer token), with one first
//!   slot and with the production layout (a first segment of several);
//! - `engine`: the engine end to end over the fake kernel of `kernel`
//!   (`Driver::load`, a hot-add's callback, readers, unload racing a
//!   callback and a DPC);
//! - `monitor`: procnotify's own hooks, their DPC's routine on another
//!   thread, readers racing the hooks that run after the state store, a
//!   failed add and a second `AddStart` under a reader;
//! - `driver_cell`: `DriverCell`'s state word, loads and unloads racing.
//!
//! Some models bound loom's preemptions (`explore_bounded`) to keep their
//! run short; their floors apply to that bounded search.
//!
//! `.ci/loom-mutations.py` finds every `Release`/`Acquire`/`AcqRel`/`SeqCst`
//! in the crate's non-test code, weakens each to `Relaxed` in turn and
//! checks that some model here fails (docs/reliability.md has the table).

mod driver_cell;
mod engine;
mod kernel;
mod monitor;
mod table;

use core::alloc::Layout;
use core::ptr::NonNull;
use std::sync::Arc as StdArc;
use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};

use crate::pool::PoolAllocator;
use crate::values::AllocError;

/// Loom's tracked heap: every allocation must be freed by the end of each
/// execution, or loom fails the model ("Allocation leaked").
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Heap;

// SAFETY: `alloc_zeroed` returns zeroed memory valid for `layout` (size > 0
// per the trait's contract) until it is given back to `dealloc`.
unsafe impl PoolAllocator for Heap {
    fn allocate(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: `layout` has a non-zero size (the trait's contract).
        NonNull::new(unsafe { loom::alloc::alloc_zeroed(layout) }).ok_or(AllocError)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: allocated above with this layout (the caller's contract).
        unsafe { loom::alloc::dealloc(ptr.as_ptr(), layout) };
    }
}

/// Spawns a model thread, then yields the spawning thread: the new thread
/// gets to run first in some executions. Without the yield, loom 0.7.3 can
/// explore a single schedule when the spawned thread loads an atomic before
/// storing to it (tokio-rs/loom#392); a yield as the *spawned* thread's first
/// action does not help (measured: still one execution), the spawner's
/// yield does. The yield has a cost: loom then runs the spawned thread
/// first up to its first blocking point, so a model whose threads start by
/// taking a lock the spawner also takes spawns them plainly. Either way each
/// model asserts that every interleaving it is about was reached
/// ([`Outcomes`]): that, not the execution count, is what catches a model
/// that explores too little.
pub(crate) fn spawn<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> loom::thread::JoinHandle<R> {
    let handle = loom::thread::spawn(f);
    loom::thread::yield_now();
    handle
}

/// Runs `f` under loom, exhaustively, and returns the number of executions
/// explored; fails when that is below `floor` (unless `LOOM_MAX_PREEMPTIONS`
/// bounds the search).
pub(crate) fn explore(name: &str, floor: usize, f: impl Fn() + Sync + Send + 'static) -> usize {
    explore_with(name, floor, None, f)
}

/// [`explore`] with loom's preemption bound set to `bound` (a thread is
/// preempted at most `bound` times per execution), for models whose
/// exhaustive search takes too long. The bound is the model's own, so the
/// count is as repeatable as an exhaustive one and the floor applies
/// (unless `LOOM_MAX_PREEMPTIONS` overrides the bound).
pub(crate) fn explore_bounded(name: &str, floor: usize, bound: usize, f: impl Fn() + Sync + Send + 'static) -> usize {
    explore_with(name, floor, Some(bound), f)
}

fn explore_with(name: &str, floor: usize, bound: Option<usize>, f: impl Fn() + Sync + Send + 'static) -> usize {
    let runs = StdArc::new(AtomicUsize::new(0));
    let counter = StdArc::clone(&runs);
    let mut builder = loom::model::Builder::new();
    let from_env = builder.preemption_bound.is_some();
    if !from_env {
        builder.preemption_bound = bound;
    }
    let started = std::time::Instant::now();
    builder.check(move || {
        counter.fetch_add(1, StdOrdering::Relaxed);
        f();
    });
    let explored = runs.load(StdOrdering::Relaxed);
    let search = match builder.preemption_bound {
        None => std::string::String::from("exhaustive"),
        Some(bound) => std::format!("preemption bound {bound}"),
    };
    std::println!(
        "loom model {name}: {explored} executions explored (floor {floor}, {search}) in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    if !from_env {
        assert!(explored >= floor, "loom model {name} explored {explored} executions, fewer than its floor {floor}");
    }
    explored
}

/// The models' per-processor value: two loom-tracked cells, so that loom
/// checks who may read them when, and a DPC counter.
#[derive(Debug)]
pub(crate) struct Probe {
    /// The processor index, written by `init` before the slot is linked.
    tag: loom::cell::UnsafeCell<u32>,
    /// 0, then 1 once the `starting` hook ran (before the slot's state moved
    /// to `Starting`). Read only by a reader that saw `Starting`/`Online`.
    armed: loom::cell::UnsafeCell<u32>,
    /// Visits by the models' DPCs. `Relaxed`: a counter.
    visits: loom::sync::atomic::AtomicU32,
}

// SAFETY: `tag` is written only by `init`, before the slot is published, and
// `armed` only by `starting`, before the state that publishes it; afterwards
// both are only read. Loom checks exactly this (a violation fails the model).
unsafe impl Sync for Probe {}

impl Probe {
    /// Initialises `place` as `init` does: writes the tag through the cell
    /// so that loom records the write.
    pub(crate) fn init(place: &mut core::mem::MaybeUninit<Self>, tag: u32) -> &mut Self {
        let probe = place.write(Self {
            tag: loom::cell::UnsafeCell::new(0),
            armed: loom::cell::UnsafeCell::new(0),
            visits: loom::sync::atomic::AtomicU32::new(0),
        });
        // SAFETY: `probe` is not shared yet (the slot is unlinked).
        probe.tag.with_mut(|p| unsafe { *p = tag });
        probe
    }

    pub(crate) fn tag(&self) -> u32 {
        // SAFETY: only read once published (loom checks the ordering).
        self.tag.with(|p| unsafe { *p })
    }

    /// The `starting` hook's write.
    pub(crate) fn arm(&self) {
        // SAFETY: runs in the hook, before the state that publishes it.
        self.armed.with_mut(|p| unsafe { *p = 1 });
    }

    pub(crate) fn armed(&self) -> u32 {
        // SAFETY: read only after `Starting`/`Online` was seen.
        self.armed.with(|p| unsafe { *p })
    }

    pub(crate) fn visit(&self) {
        self.visits.fetch_add(1, loom::sync::atomic::Ordering::Relaxed);
    }
}

/// Counts how often a model reached an outcome, across its executions.
#[derive(Debug)]
pub(crate) struct Outcomes<const N: usize>([AtomicUsize; N]);

impl<const N: usize> Outcomes<N> {
    pub(crate) const fn new() -> Self {
        Self([const { AtomicUsize::new(0) }; N])
    }

    pub(crate) fn hit(&self, outcome: usize) {
        self.0[outcome].fetch_add(1, StdOrdering::Relaxed);
    }

    /// Fails unless every outcome happened in some execution (the model
    /// reached the interleavings it is about); returns the counts.
    pub(crate) fn assert_all(&self, name: &str, labels: [&str; N]) -> [usize; N] {
        let counts = core::array::from_fn(|i| self.0[i].load(StdOrdering::Relaxed));
        std::println!("loom model {name}: outcomes {:?}", labels.iter().zip(counts).collect::<std::vec::Vec<_>>());
        for (label, count) in labels.iter().zip(counts) {
            assert!(count > 0, "loom model {name}: no execution reached `{label}`");
        }
        counts
    }
}
