//! Issue 4, item 1: lookup on one thread with a hot cache.
//!
//! Each iteration performs [`BATCH`] lookups (criterion reports time per
//! iteration; the throughput is set so the report script divides by
//! [`BATCH`]). [`PRESENT`] processors are present out of a maximum of 2048.
//!
//! - `lookup_by_index`: look up processors in a fixed shuffled order of the
//!   present indices and load each slot's state.
//! - `lookup_own_slot`: look up the calling processor's own slot (index from
//!   [`peers::current_processor`], the same for every contender; the
//!   `thread_local` peer uses its own per-thread lookup) and load its state.
//! - `lookup_own_slot_visit`: the driver's read path, `Context::visit_current`:
//!   own slot plus a `Relaxed` `fetch_add` on its counter.
//!
//! Baseline: `fixed_array`, the preallocated array of the maximum count.

mod peers;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use peers::{Boxcar, CopyOnGrow, Fixed, MAX, MutexLocked, PRESENT, PerCpu, PerThread, RwLocked, Segmented};

/// Lookups per criterion iteration.
const BATCH: u32 = 64;

/// The processor every single-threaded "own slot" lookup runs on.
const OWN: u32 = 37;

/// `0 .. PRESENT` in a fixed scrambled order (multiplication by an odd number
/// modulo a power of two is a permutation).
fn indices() -> Vec<u32> {
    (0..BATCH).map(|i| (i * 37 + 11) % PRESENT).collect()
}

fn by_index<C: PerCpu>(c: &mut Criterion) {
    if !C::BY_INDEX {
        return;
    }
    let contender = C::with_present(PRESENT, MAX);
    let indices = indices();
    let mut group = c.benchmark_group("lookup_by_index");
    group.throughput(Throughput::Elements(u64::from(BATCH)));
    group.bench_function(C::NAME, |b| {
        b.iter(|| {
            let mut sum = 0_u64;
            for &index in black_box(indices.as_slice()) {
                sum = sum.wrapping_add(contender.read(index));
            }
            sum
        });
    });
    group.finish();
}

fn own_slot<C: PerCpu>(c: &mut Criterion) {
    let contender = C::with_present(PRESENT, MAX);
    peers::set_current_processor(OWN);
    let mut group = c.benchmark_group("lookup_own_slot");
    group.throughput(Throughput::Elements(u64::from(BATCH)));
    group.bench_function(C::NAME, |b| {
        b.iter(|| {
            let mut sum = 0_u64;
            for _ in 0..BATCH {
                sum = sum.wrapping_add(contender.read_own());
            }
            sum
        });
    });
    group.finish();
}

fn own_slot_visit<C: PerCpu>(c: &mut Criterion) {
    let contender = C::with_present(PRESENT, MAX);
    peers::set_current_processor(OWN);
    let mut group = c.benchmark_group("lookup_own_slot_visit");
    group.throughput(Throughput::Elements(u64::from(BATCH)));
    group.bench_function(C::NAME, |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                contender.visit_own();
            }
        });
    });
    group.finish();
}

fn all<C: PerCpu>(c: &mut Criterion) {
    by_index::<C>(c);
    own_slot::<C>(c);
    own_slot_visit::<C>(c);
}

fn lookup(c: &mut Criterion) {
    all::<Fixed>(c);
    all::<Segmented>(c);
    all::<RwLocked>(c);
    all::<MutexLocked>(c);
    all::<Boxcar>(c);
    all::<PerThread>(c);
    all::<CopyOnGrow>(c);
}

criterion_group! {
    name = benches;
    config = peers::config();
    targets = lookup
}
criterion_main!(benches);
