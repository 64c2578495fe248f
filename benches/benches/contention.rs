//! reads under contention, with and without a concurrent
//! grower.
//!
//! Each reader thread runs "on" its own simulated processor and performs the
//! driver's read path (own slot + `Relaxed` `fetch_add` on its counter) a fixed
//! number of times after a start barrier. Criterion's time per iteration is
//! the wall time of the slowest reader divided by the reads each reader made:
//! the time per read per thread, whose inverse is reads per second per thread.
//!
//! - `contention_steady`: one reader per core
//!   (`available_parallelism`), nothing else running.
//! - `contention_steady_1`: `cores - 1` readers (at least one), nothing else
//!   running: the baseline for the growing case.
//! - `contention_growing`: the same `cores - 1` readers plus one grower thread
//!   that adds processors without pause (the table: the real AddStart path
//!   through the table's writer, then AddFailure so the index can be re-added; the
//!   peers: push under the write lock / copy-and-swap, starting over when
//!   full). The grower gets the remaining core, so what is measured is the
//!   structure's interference with readers, not two threads time-sharing a
//!   core. Each sample starts from a fresh structure, so every sample includes
//!   real segment allocation and publication.
//!
//! - `contention_spin_control`: the table's `cores - 1` readers next to a
//!   thread that only spins on a private counter: how much a busy neighbour
//!   costs the readers on this host, whatever the structure.
//!
//! The fixed array cannot grow and `thread_local` grows only when a new thread
//! touches it, so neither has a growing case.

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use procnotify_benches::peers::{Boxcar, CopyOnGrow, Fixed, MutexLocked, PerThread, RwLocked};
use procnotify_benches::table::Segmented;
use procnotify_benches::{Grow, MAX, PRESENT, PerCpu};

/// Threads that can run at once on this host.
fn cores() -> u32 {
    thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
}

/// Runs `readers` reader threads doing `iters` reads of their own slot each,
/// optionally with a grower, and returns the slowest reader's elapsed time.
fn run<C, G>(contender: &C, readers: u32, iters: u64, grower: Option<G>) -> Duration
where
    C: PerCpu,
    G: FnOnce(&AtomicBool) + Send,
{
    let start = Barrier::new(readers as usize + usize::from(grower.is_some()));
    let stop = AtomicBool::new(false);
    thread::scope(|scope| {
        let grower = grower.map(|grow| {
            let (start, stop) = (&start, &stop);
            scope.spawn(move || {
                start.wait();
                grow(stop);
            })
        });
        let handles: Vec<_> = (0..readers)
            .map(|reader| {
                let start = &start;
                scope.spawn(move || {
                    procnotify_benches::set_current_processor(reader);
                    let view = contender.view();
                    // First touch outside the timing (thread_local inserts here).
                    C::visit_own(view);
                    start.wait();
                    let began = Instant::now();
                    for _ in 0..iters {
                        C::visit_own(view);
                    }
                    began.elapsed()
                })
            })
            .collect();
        let slowest = handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .max()
            .unwrap_or_default();
        // Release: nothing to publish, but keeps the grower's exit prompt.
        stop.store(true, Ordering::Release);
        if let Some(grower) = grower {
            grower.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        }
        slowest
    })
}

fn steady<C: PerCpu>(c: &mut Criterion, group_name: &str, readers: u32) {
    let contender = C::with_present(PRESENT, MAX);
    let mut group = c.benchmark_group(group_name);
    group.sampling_mode(SamplingMode::Flat).throughput(Throughput::Elements(1));
    group.bench_function(C::NAME, |b| {
        b.iter_custom(|iters| run(&contender, readers, iters, None::<fn(&AtomicBool)>));
    });
    group.finish();
}

fn growing<C: Grow>(c: &mut Criterion, readers: u32) {
    let mut group = c.benchmark_group("contention_growing");
    group.sampling_mode(SamplingMode::Flat).throughput(Throughput::Elements(1));
    group.bench_function(C::NAME, |b| {
        b.iter_custom(|iters| {
            let contender = C::with_present(PRESENT, MAX);
            let grower = |stop: &AtomicBool| {
                let mut next = PRESENT;
                // Acquire: pairs with the Release store after the readers finish.
                while !stop.load(Ordering::Acquire) {
                    if !contender.grow(PRESENT, &mut next) {
                        thread::yield_now();
                    }
                }
            };
            run(&contender, readers, iters, Some(grower))
        });
    });
    group.finish();
}

/// Control for the growing case: the table's readers next to a thread that
/// spins on its own stack and touches nothing shared. Whatever this costs the
/// readers is the host's (a busy sibling vCPU), not the structure's.
fn spin_control(c: &mut Criterion, readers: u32) {
    let mut group = c.benchmark_group("contention_spin_control");
    group.sampling_mode(SamplingMode::Flat).throughput(Throughput::Elements(1));
    group.bench_function(Segmented::NAME, |b| {
        b.iter_custom(|iters| {
            let contender = Segmented::with_present(PRESENT, MAX);
            let spinner = |stop: &AtomicBool| {
                let mut spins = 0_u64;
                // Acquire: pairs with the Release store after the readers finish.
                while !stop.load(Ordering::Acquire) {
                    spins = std::hint::black_box(spins.wrapping_add(1));
                }
            };
            run(&contender, readers, iters, Some(spinner))
        });
    });
    group.finish();
}

fn contention(c: &mut Criterion) {
    let all = cores();
    let fewer = all.saturating_sub(1).max(1);

    steady::<Fixed>(c, "contention_steady", all);
    steady::<Segmented>(c, "contention_steady", all);
    steady::<RwLocked>(c, "contention_steady", all);
    steady::<MutexLocked>(c, "contention_steady", all);
    steady::<Boxcar>(c, "contention_steady", all);
    steady::<PerThread>(c, "contention_steady", all);
    steady::<CopyOnGrow>(c, "contention_steady", all);

    steady::<Segmented>(c, "contention_steady_1", fewer);
    steady::<RwLocked>(c, "contention_steady_1", fewer);
    steady::<MutexLocked>(c, "contention_steady_1", fewer);
    steady::<Boxcar>(c, "contention_steady_1", fewer);
    steady::<CopyOnGrow>(c, "contention_steady_1", fewer);

    spin_control(c, fewer);

    growing::<Segmented>(c, fewer);
    growing::<RwLocked>(c, fewer);
    growing::<MutexLocked>(c, fewer);
    growing::<Boxcar>(c, fewer);
    growing::<CopyOnGrow>(c, fewer);
}

criterion_group! {
    name = benches;
    config = procnotify_benches::config();
    targets = contention
}
criterion_main!(benches);
