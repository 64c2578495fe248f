//! [`BenchOs`]: the [`Os`] the engine's own read paths are measured over.
//!
//! Its current processor is [`current_processor`](crate::current_processor),
//! the same opaque thread-local read every contender's "own slot" uses, and
//! its `log` discards the line without touching memory. The test kit's
//! `MiniOs` counts each line with a `Relaxed` `fetch_add` on a shared
//! counter; in the "own slot + visit" loop that is a second `lock`-prefixed
//! add next to the visit's own, which no other contender does (on Windows the
//! line is a `DbgPrintEx` call, filtered by the debug print mask, and no
//! locked add of procnotify's). Over `BenchOs`, `PerProcessor::visit` does
//! one locked add, as every contender's visit does.

use core::fmt;
use core::ptr::NonNull;

use procnotify_core::monitor::Procnotify;
use procnotify_core::{Level, NotifyState, Os, PoolAllocator, RawNotification, Sink};
use procnotify_sim::kit::Heap;

/// `present` processors (`0 .. present`) out of `max`, allocating from `A`
/// (the C heap for the timings, the simulator's accounting pool for the
/// memory figures); see the [module documentation](self).
#[derive(Clone, Copy, Debug)]
pub struct BenchOs<A = Heap> {
    /// Processors present at registration (and active, for the table's first
    /// segment).
    pub present: u32,
    /// What `max_processors` reports.
    pub max: u32,
    /// Where the table's memory comes from.
    pub allocator: A,
}

impl BenchOs {
    /// `present` of `max` over the C heap.
    pub fn new(present: u32, max: u32) -> Self {
        Self { present, max, allocator: Heap }
    }
}

/// What a [`BenchOs`] allocates from.
pub trait BenchAllocator: PoolAllocator + Clone + Send + Sync {}

impl<A: PoolAllocator + Clone + Send + Sync> BenchAllocator for A {}

// SAFETY: `register` calls back only with the sink it was given,
// synchronously, before it returns; nothing is deferred (the benchmarks'
// `BenchDpc` runs no routine), so `deregister` and `flush_deferred` have
// nothing to wait for.
unsafe impl<A: BenchAllocator> Os for BenchOs<A> {
    type Identity = Procnotify;
    type Allocator = A;
    type Registration = ();

    fn allocator(&self) -> A {
        self.allocator.clone()
    }

    fn max_processors(&self) -> u32 {
        self.max
    }

    fn active_processors(&self) -> u32 {
        self.present
    }

    #[inline]
    fn current_processor(&self) -> u32 {
        crate::current_processor()
    }

    #[inline]
    fn log(&self, _level: Level, _args: fmt::Arguments<'_>) {}

    /// `AddStart` then `AddComplete` for each present processor, as Windows
    /// delivers them for existing processors before returning the handle.
    unsafe fn register<S: Sink>(&self, sink: NonNull<S>) -> Option<()> {
        // SAFETY: the caller keeps the sink alive for the registration.
        let sink = unsafe { sink.as_ref() };
        bring_up(sink, self.present).then_some(())
    }

    fn deregister(&self, (): ()) {}

    fn flush_deferred(&self) {}
}

/// Delivers `AddStart` then `AddComplete` for `0 .. present` to `sink`, as
/// for the processors present at registration. `false` when an `AddStart`
/// was vetoed (nothing is rolled back: the benchmarks stop there).
pub fn bring_up<S: Sink>(sink: &S, present: u32) -> bool {
    for index in 0..present {
        if sink.on_notification(RawNotification::dense(NotifyState::AddStart, index)).is_some() {
            return false;
        }
    }
    for index in 0..present {
        sink.on_notification(RawNotification::dense(NotifyState::AddComplete, index));
    }
    true
}

/// Hot-adds processor `index`: `AddStart` then `AddComplete`. `false` when
/// the `AddStart` was vetoed.
pub fn hot_add<S: Sink>(sink: &S, index: u32) -> bool {
    if sink.on_notification(RawNotification::dense(NotifyState::AddStart, index)).is_some() {
        return false;
    }
    sink.on_notification(RawNotification::dense(NotifyState::AddComplete, index));
    true
}
