//! False sharing. One thread per core, each bumping its own
//! processor's counter with a `Relaxed` `fetch_add`, a fixed number of times
//! after a start barrier.
//!
//! - `false_sharing/padded_slot`: the table's real `Slot` (`repr(align(128))`
//!   on x86-64), its value's counter bumped.
//! - `false_sharing/unpadded`: the same counters packed side by side in a
//!   `#[repr(C)]` array of `AtomicU64`, so neighbouring processors' counters
//!   share a cache line.
//!
//! Criterion's time per iteration is the slowest thread's time per bump.

use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use procnotify_benches::table::table_with;

/// Counters packed together, as a naive per-processor array would be.
#[repr(C)]
struct Unpadded {
    counters: [AtomicU64; 16],
}

fn threads() -> u32 {
    thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX)).min(16)
}

/// Runs one thread per counter, each calling `bump(thread)` `iters` times;
/// returns the slowest thread's time.
fn run(threads: u32, iters: u64, bump: &(impl Fn(u32) + Sync)) -> Duration {
    let start = Barrier::new(threads as usize);
    thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    let began = Instant::now();
                    for _ in 0..iters {
                        bump(thread);
                    }
                    began.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .max()
            .unwrap_or_default()
    })
}

fn false_sharing(c: &mut Criterion) {
    let threads = threads();
    let mut group = c.benchmark_group("false_sharing");
    group.sampling_mode(SamplingMode::Flat).throughput(Throughput::Elements(1));

    let table = table_with(threads, procnotify_benches::MAX);
    let slots: Vec<_> = (0..threads).map(|index| table.get(index).expect("slot brought up")).collect();
    group.bench_function("padded_slot", |b| {
        b.iter_custom(|iters| {
            run(threads, iters, &|thread| {
                if let Some(slot) = slots.get(thread as usize) {
                    slot.value().bump();
                }
            })
        });
    });

    let unpadded = Unpadded { counters: std::array::from_fn(|_| AtomicU64::new(0)) };
    group.bench_function("unpadded", |b| {
        b.iter_custom(|iters| {
            run(threads, iters, &|thread| {
                if let Some(counter) = unpadded.counters.get(thread as usize) {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = procnotify_benches::config();
    targets = false_sharing
}
criterion_main!(benches);
