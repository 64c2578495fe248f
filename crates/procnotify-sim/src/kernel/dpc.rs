//! Deferred procedure calls and the current processor: targeted DPCs
//! (`KeInsertQueueDpc`) run by one worker thread, `KeFlushQueuedDpcs`, the
//! calling thread's simulated processor (`KeGetCurrentProcessorNumberEx`)
//! and its identity (`KeGetCurrentThread`).
//!
//! A DPC's context stays a pointer from queueing to the call (no round trip
//! through an integer, so the routine gets the provenance it was queued
//! with), and the worker *pins* the pool allocation that holds it for the
//! duration of the call ([`SimAllocator::pin`]): whether the context is still
//! live and keeping it so are one step, so a free racing the DPC cannot slip
//! in between the check and the call. A DPC whose context was already freed
//! does not run; it is recorded as a violation.

use std::cell::Cell;
use std::collections::VecDeque;
use std::ffi::c_void;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::locks::{Condvar, Mutex};

use super::{Inner, SimKernel, lock};
use crate::alloc::SimAllocator;

/// A deferred procedure call queued to a processor.
struct Dpc {
    processor: u32,
    routine: fn(NonNull<c_void>),
    context: NonNull<c_void>,
}

// SAFETY: the context is only handed to the routine, on the worker thread;
// whoever queued it vouches for its use there (`SimKernel::queue_dpc`).
unsafe impl Send for Dpc {}

#[derive(Default)]
pub(super) struct DpcQueue {
    queue: Mutex<(VecDeque<Dpc>, u64, bool)>, // (queued, not yet finished, shutdown)
    changed: Condvar,
}

impl Drop for Inner {
    fn drop(&mut self) {
        lock(&self.dpcs.queue).2 = true;
        self.dpcs.changed.notify_all();
        // Joined, not detached: the worker's last use of the shared pool
        // happens-before everything after this (and ThreadSanitizer sees it).
        if let Some(worker) = self.dpc_worker.get_mut().take() {
            let _ = worker.join();
        }
    }
}

std::thread_local! {
    /// The simulated processor the calling thread runs on.
    static CURRENT: Cell<u32> = const { Cell::new(0) };
    /// A byte whose address identifies the calling thread.
    static THREAD: u8 = const { 0 };
}

impl SimKernel {
    /// Runs `f` as code on simulated processor `index` (the calling thread's
    /// current-processor number is `index` while `f` runs).
    pub fn run_on<R>(index: u32, f: impl FnOnce() -> R) -> R {
        let previous = CURRENT.with(|current| current.replace(index));
        let result = f();
        CURRENT.with(|current| current.set(previous));
        result
    }

    /// The calling thread's simulated processor (`KeGetCurrentProcessorNumberEx`).
    #[must_use]
    pub fn current_processor() -> u32 {
        CURRENT.with(Cell::get)
    }

    /// An identity of the calling thread (`KeGetCurrentThread`): the address
    /// of a thread-local, unique among the threads alive now.
    #[must_use]
    pub fn current_thread() -> NonZeroUsize {
        THREAD.with(|byte| NonZeroUsize::new(std::ptr::from_ref(byte).addr()).unwrap_or(NonZeroUsize::MIN))
    }

    /// Queues `routine(context)` to run on `processor` (`KeInsertQueueDpc` on
    /// a targeted DPC). A worker thread runs it with the current processor
    /// set to `processor`, and only if `context` is still inside a live pool
    /// allocation, which stays pinned while the routine runs (see the module
    /// documentation); `context` must stay valid for `routine` as long as
    /// that allocation is live.
    pub fn queue_dpc(&self, processor: u32, routine: fn(NonNull<c_void>), context: NonNull<c_void>) {
        self.start_dpc_worker();
        let mut queue = lock(&self.inner.dpcs.queue);
        queue.0.push_back(Dpc { processor, routine, context });
        queue.1 += 1;
        self.inner.dpcs.changed.notify_all();
    }

    /// `KeFlushQueuedDpcs`: waits until every queued DPC has run.
    pub fn flush_dpcs(&self) {
        let mut queue = lock(&self.inner.dpcs.queue);
        while queue.1 > 0 {
            self.inner.dpcs.changed.wait(&mut queue);
        }
    }

    fn start_dpc_worker(&self) {
        let mut worker = lock(&self.inner.dpc_worker);
        if worker.is_some() {
            return;
        }
        let dpcs = Arc::clone(&self.inner.dpcs);
        let pool = self.inner.pool.clone();
        *worker = Some(
            std::thread::Builder::new()
                .name("sim-dpc".into())
                .spawn(move || dpc_worker(&dpcs, &pool))
                .expect("spawn the simulated DPC worker"),
        );
    }
}

fn dpc_worker(dpcs: &DpcQueue, pool: &SimAllocator) {
    loop {
        let dpc = {
            let mut queue = lock(&dpcs.queue);
            loop {
                if let Some(dpc) = queue.0.pop_front() {
                    break dpc;
                }
                if queue.2 {
                    return;
                }
                dpcs.changed.wait(&mut queue);
            }
        };
        // Check and keep in one step: no free can come between them.
        match pool.pin(dpc.context.as_ptr().addr()) {
            Some(pin) => {
                SimKernel::run_on(dpc.processor, || (dpc.routine)(dpc.context));
                drop(pin);
            }
            None => pool
                .record_violation(std::format!("DPC for processor {} ran after its context was freed", dpc.processor)),
        }
        let mut queue = lock(&dpcs.queue);
        queue.1 -= 1;
        dpcs.changed.notify_all();
    }
}
