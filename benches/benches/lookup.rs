//! Lookup on one thread with a hot cache.
//!
//! Each iteration is one call of a lookup loop of `procnotify_benches`
//! ([`by_index`], [`own_slot`], [`own_slot_visit`]): [`BATCH`] lookups
//! (criterion reports time per iteration; the throughput is set so the report
//! script divides by [`BATCH`]). [`PRESENT`] processors are present out of a
//! maximum of 2048. `benches/icount.rs` runs the same functions under
//! callgrind.
//!
//! - `lookup_by_index`: look up processors in a fixed shuffled order of the
//!   present indices and load each slot's state.
//! - `lookup_by_index_plain`: the same lookups, loading a plain field of each
//!   value (`Table::value` for `procnotify_table`).
//! - `lookup_own_slot`: look up the calling processor's own slot (index from
//!   [`current_processor`](procnotify_benches::current_processor), the same
//!   for every contender; the `thread_local` peer uses its own per-thread
//!   lookup) and load its state.
//! - `lookup_own_slot_plain`: own slot, loading a plain field of the value;
//!   `procnotify_context` is the engine's `Context::current` on a `&Context`
//!   argument, `procnotify_driver` the same through `Driver::context()`.
//! - `lookup_own_slot_visit`: own slot plus a `Relaxed` `fetch_add` on its
//!   counter. Next to them, `procnotify_from_dpc`: the driver's real read
//!   path, which starts from the address the DPC is queued with and does no lookup
//!   ([`from_dpc_visit`]).
//!
//! Baseline: `fixed_array`, the preallocated array of the maximum count.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use procnotify_benches::context::{ContextView, DriverView};
use procnotify_benches::dpc::{DpcBench, from_dpc_visit};
use procnotify_benches::peers::{Boxcar, CopyOnGrow, Fixed, MutexLocked, PerThread, RwLocked};
use procnotify_benches::table::{ReaderView, Segmented};
use procnotify_benches::{
    BATCH, MAX, OWN, PRESENT, PerCpu, by_index, by_index_plain, indices, own_slot, own_slot_plain, own_slot_visit,
};

fn all<C: PerCpu>(c: &mut Criterion) {
    let contender = C::with_present(PRESENT, MAX);
    procnotify_benches::set_current_processor(OWN);
    let indices = indices();
    if C::BY_INDEX && C::STATE {
        let mut group = c.benchmark_group("lookup_by_index");
        group.throughput(Throughput::Elements(u64::from(BATCH)));
        group.bench_function(C::NAME, |b| b.iter(|| by_index(&contender, black_box(indices.as_slice()))));
        group.finish();
    }
    if C::BY_INDEX {
        let mut group = c.benchmark_group("lookup_by_index_plain");
        group.throughput(Throughput::Elements(u64::from(BATCH)));
        group.bench_function(C::NAME, |b| b.iter(|| by_index_plain(&contender, black_box(indices.as_slice()))));
        group.finish();
    }
    if C::STATE {
        let mut group = c.benchmark_group("lookup_own_slot");
        group.throughput(Throughput::Elements(u64::from(BATCH)));
        group.bench_function(C::NAME, |b| b.iter(|| own_slot(&contender)));
        group.finish();
    }
    let mut group = c.benchmark_group("lookup_own_slot_plain");
    group.throughput(Throughput::Elements(u64::from(BATCH)));
    group.bench_function(C::NAME, |b| b.iter(|| own_slot_plain(&contender)));
    group.finish();

    let mut group = c.benchmark_group("lookup_own_slot_visit");
    group.throughput(Throughput::Elements(u64::from(BATCH)));
    group.bench_function(C::NAME, |b| b.iter(|| own_slot_visit(&contender)));
    group.finish();
}

/// The DPC routine's read path, in the `lookup_own_slot_visit` group.
fn from_dpc(c: &mut Criterion) {
    let bench = DpcBench::new(PRESENT, MAX);
    let dpc = bench.context_of(OWN).expect("processor OWN is present");
    let mut group = c.benchmark_group("lookup_own_slot_visit");
    group.throughput(Throughput::Elements(u64::from(BATCH)));
    // SAFETY: `dpc` comes from `bench`, alive for the whole group.
    group.bench_function("procnotify_from_dpc", |b| b.iter(|| unsafe { from_dpc_visit(dpc, bench.os()) }));
    group.finish();
}

fn lookup(c: &mut Criterion) {
    all::<Fixed>(c);
    all::<Segmented>(c);
    all::<ReaderView>(c);
    all::<ContextView>(c);
    all::<DriverView>(c);
    all::<RwLocked>(c);
    all::<MutexLocked>(c);
    all::<Boxcar>(c);
    all::<PerThread>(c);
    all::<CopyOnGrow>(c);
    from_dpc(c);
}

criterion_group! {
    name = benches;
    config = procnotify_benches::config();
    targets = lookup
}
criterion_main!(benches);
