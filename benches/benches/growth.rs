//! Growth and memory.
//!
//! - `growth_add_start`: the AddStart path (segment allocation on first use,
//!   value initialisation, link, state, through the table's public writer)
//!   on a table over the C heap. Baseline: allocating one zeroed slot
//!   (`alloc_one_slot`), what a driver that allocates per processor pays at
//!   minimum.
//!   - `table_bring_up`: AddStart for indices 1 .. 2048 on a fresh table,
//!     per add (amortised over the 11 segment allocations).
//!   - `table_first_add/{8,1024}`: the one add that allocates the segment
//!     starting at that index (8 or 1024 slots present).
//!   - `table_add_in_segment/{9,1025}`: an add whose segment already exists.
//!   - These single adds (and `vec_push_full`) are timed one per setup
//!     (`BatchSize::PerIteration`), so the structure the setup built is still
//!     in cache, whatever its size; each figure then includes one
//!     `Instant::now` pair (tens of nanoseconds), the same for all of them.
//!   - `table_fill_segment/{8,1024}`: the whole segment `k .. 2k` added to a
//!     table holding `k`, per add.
//!   - `vec_push_full/{8,1024}` and `vec_fill/{8,1024}`: the same for a
//!     `Vec<T>` whose capacity is exactly `k` (a doubling vector at a power of
//!     two), which must reallocate and copy every existing slot.
//! - `growth_bring_up_2048`: the simulator boots 1 processor with a maximum
//!   of 2048, a driver loads, 2047 processors are hot-added, the driver
//!   unloads. Baseline `c_style_fixed_array`: the same kernel and the same
//!   2047 hot-adds, with a minimal C-style driver registered through the same
//!   simulated `KeRegisterProcessorChangeCallback`, whose callback flips a state
//!   byte in an array of 2048 slots preallocated at load. `procnotify_driver`
//!   is the real driver (`SimOs::load_monitor`): table growth, the state
//!   machine, one trace line per notification and one DPC per AddComplete.
//! - Memory (computed by `procnotify_benches::memory`, printed, and written to
//!   `<criterion dir>/memory.json` for `scripts/bench-report.py`): slot bytes,
//!   index bytes and what the Windows pool is asked for, for 1 .. 2048 present
//!   of 2048.

use std::alloc::Layout;
use std::ffi::c_void;
use std::hint::black_box;
use std::ops::Range;
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group};
use procnotify_benches::memory::{self, Footprint};
use procnotify_benches::peers::Counter;
use procnotify_benches::table::{BenchTable, Visits, table_with};
use procnotify_benches::{MAX, table};
use procnotify_core::{ADD_EXISTING, NotifyState, NtStatus, PoolAllocator, Slot};
use procnotify_sim::kit::Heap;
use procnotify_sim::{Config, Handle, HotAdd, NotifyContext, SimAllocator, SimKernel, SimOs};

/// One slot's memory from the allocator, returned on drop (outside the timing).
struct OneSlot(NonNull<u8>);

impl OneSlot {
    const LAYOUT: Layout = Layout::new::<Slot<Visits>>();

    fn new() -> Self {
        Self(Heap.allocate(Self::LAYOUT).expect("allocate one slot"))
    }
}

impl Drop for OneSlot {
    fn drop(&mut self) {
        // SAFETY: allocated by `Heap` with `LAYOUT` in `new`, freed once here.
        unsafe { Heap.deallocate(self.0, Self::LAYOUT) };
    }
}

/// A fresh table with `0 .. present` brought up.
fn table(present: u32) -> BenchTable {
    table_with(present, MAX)
}

fn add_start(table: &BenchTable, indices: Range<u32>) {
    for index in indices {
        black_box(table::add_start(table, index));
    }
}

/// A `Vec` of `k` slots with no spare capacity.
fn full_vec(k: u32) -> Vec<Counter> {
    let mut vec = Vec::with_capacity(k as usize);
    vec.extend((0..k).map(|_| Counter::default()));
    vec.shrink_to_fit();
    vec
}

fn add_start_group(c: &mut Criterion) {
    let mut group = c.benchmark_group("growth_add_start");
    group.throughput(Throughput::Elements(1));
    group.bench_function("alloc_one_slot", |b| b.iter_with_large_drop(OneSlot::new));

    group.throughput(Throughput::Elements(u64::from(MAX - 1)));
    table_case(&mut group, BenchmarkId::from_parameter("table_bring_up"), 1, 1..MAX, BatchSize::LargeInput);

    for k in [8_u32, 1024] {
        group.throughput(Throughput::Elements(1));
        table_case(&mut group, BenchmarkId::new("table_first_add", k), k, k..k + 1, BatchSize::PerIteration);
        let in_segment = BenchmarkId::new("table_add_in_segment", k + 1);
        table_case(&mut group, in_segment, k + 1, k + 1..k + 2, BatchSize::PerIteration);
        vec_case(&mut group, BenchmarkId::new("vec_push_full", k), k, 1, BatchSize::PerIteration);

        group.throughput(Throughput::Elements(u64::from(k)));
        table_case(&mut group, BenchmarkId::new("table_fill_segment", k), k, k..2 * k, BatchSize::LargeInput);
        vec_case(&mut group, BenchmarkId::new("vec_fill", k), k, k, BatchSize::LargeInput);
    }
    group.finish();
}

/// Times `add_start` of `adds` on a table already holding `0..prefilled`.
fn table_case(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    prefilled: u32,
    adds: Range<u32>,
    batch: BatchSize,
) {
    group.bench_function(id, |b| {
        b.iter_batched(
            || table(prefilled),
            |table| {
                add_start(&table, adds.clone());
                table
            },
            batch,
        );
    });
}

/// Times `pushes` pushes onto a `Vec` of `len` slots with no spare capacity.
fn vec_case(group: &mut BenchmarkGroup<'_, WallTime>, id: BenchmarkId, len: u32, pushes: u32, batch: BatchSize) {
    group.bench_function(id, |b| {
        b.iter_batched(
            || full_vec(len),
            |mut vec| {
                for _ in 0..pushes {
                    vec.push(Counter::default());
                }
                vec
            },
            batch,
        );
    });
}

// ---------------------------------------------------------------------------
// A minimal C-style driver for the bring-up baseline.

/// The C-style driver's per-processor slot: zeroed memory is "vacant".
#[repr(C, align(128))]
struct CSlot {
    state: AtomicU8,
    visits: AtomicU64,
}

/// What `DriverEntry` allocates: `max` slots in one non-paged allocation.
struct CStyleDriver {
    pool: SimAllocator,
    slots: NonNull<CSlot>,
    layout: Layout,
    max: u32,
}

impl CStyleDriver {
    fn load(kernel: &SimKernel) -> (Self, Handle) {
        let max = kernel.config().reported_max;
        let layout = Layout::array::<CSlot>(max as usize).expect("slot array layout");
        let pool = kernel.pool().clone();
        let slots = pool.allocate(layout).expect("allocate the slot array").cast::<CSlot>();
        let driver = Self { pool, slots, layout, max };
        let handle = kernel
            .register(c_style_callback, driver.slots.as_ptr().cast(), ADD_EXISTING)
            .expect("register the C-style callback");
        (driver, handle)
    }
}

impl Drop for CStyleDriver {
    fn drop(&mut self) {
        // SAFETY: allocated from this pool with this layout in `load`; the
        // callback was deregistered before the driver is dropped.
        unsafe { self.pool.deallocate(self.slots.cast(), self.layout) };
    }
}

/// The C-style callback: bounds check, flip the state byte.
fn c_style_callback(context: *mut c_void, change: &NotifyContext, _status: &mut NtStatus) {
    if change.nt_number >= MAX {
        return;
    }
    let state = match NotifyState::try_from(change.state) {
        Ok(NotifyState::AddStart) => 1,
        Ok(NotifyState::AddComplete) => 2,
        Ok(NotifyState::AddFailure) => 0,
        Err(_) => return,
    };
    // SAFETY: `context` is the array of `MAX` slots allocated at load and the
    // index is in bounds (checked above), so the offset stays inside it.
    let slot = unsafe { context.cast::<CSlot>().add(change.nt_number as usize) };
    // SAFETY: zeroed memory is a valid `CSlot` (atomics), live until after
    // deregistration, which waits for this callback to return.
    let slot = unsafe { &*slot };
    slot.state.store(state, Ordering::Release);
}

fn hot_add_all(kernel: &SimKernel) {
    for _ in 1..MAX {
        let added = kernel.hot_add();
        debug_assert!(matches!(added, HotAdd::Added(_)));
        black_box(added);
    }
}

fn bring_up_group(c: &mut Criterion) {
    let mut group = c.benchmark_group("growth_bring_up_2048");
    group.sample_size(10).measurement_time(Duration::from_secs(4));
    group.bench_function("c_style_fixed_array", |b| {
        b.iter_batched(
            || SimKernel::boot(Config::new(1, MAX)),
            |kernel| {
                let (driver, handle) = CStyleDriver::load(&kernel);
                hot_add_all(&kernel);
                kernel.deregister(handle);
                assert!(driver.max == MAX);
                drop(driver);
                kernel
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function("procnotify_driver", |b| {
        b.iter_batched(
            || SimKernel::boot(Config::new(1, MAX)),
            |kernel| {
                let driver = SimOs::load_monitor(&kernel).expect("driver loads");
                hot_add_all(&kernel);
                driver.unload();
                kernel
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

// ---------------------------------------------------------------------------
// Memory.

/// Where criterion writes its results: `$CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion`, else the workspace's `target/criterion`
/// (whatever directory the benchmark runs in: `cargo test` runs it in the
/// package's).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let workspace = || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("target");
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(workspace, PathBuf::from).join("criterion")
}

fn row(f: &Footprint) -> String {
    format!(
        "{{\"present\": {}, \"at_load\": {}, \"slots\": {}, \"slot_bytes\": {}, \"index_bytes\": {}, \
         \"segments\": {}, \"pool_bytes\": {}}}",
        f.present, f.at_load, f.slots, f.slot_bytes, f.index_bytes, f.segments, f.pool_bytes
    )
}

fn memory_report() {
    let slot = memory::SLOT_BYTES;
    let fixed = MAX as usize * slot;
    let sweep = [1_u32, 2, 3, 4, 5, 8, 9, 64, 65, 1024, 1025, 2048];
    // Each count twice: all present at load (the driver's first segment holds
    // them), and one at load with the rest hot-added (one segment per doubling).
    let mut rows: Vec<Footprint> = sweep
        .iter()
        .flat_map(|&present| [present, 1].map(|at_load| memory::footprint(present, at_load, MAX)))
        .collect();
    rows.dedup(); // one row for 1 present
    println!(
        "memory: slot {slot} B, fixed array of {MAX}: {fixed} B (pool request {} B)",
        memory::pool_request(fixed, slot)
    );
    for f in &rows {
        println!(
            "memory: {:>4} present ({:>4} at load): {:>4} slots ({:.2}x present) = {:>6} B, index {} B, {:>2} segments, \
             pool {:>6} B ({:.2}x slot bytes)",
            f.present,
            f.at_load,
            f.slots,
            f64::from(f.slots) / f64::from(f.present),
            f.slot_bytes,
            f.index_bytes,
            f.segments,
            f.pool_bytes,
            ratio(f.pool_bytes, f.slot_bytes)
        );
    }
    let body: Vec<String> = rows.iter().map(|f| format!("    {}", row(f))).collect();
    let json = format!(
        "{{\n  \"slot_bytes\": {slot},\n  \"max\": {MAX},\n  \"fixed_array_bytes\": {fixed},\n  \
         \"fixed_array_pool_bytes\": {},\n  \"segment_overhead\": {},\n  \"sweep\": [\n{}\n  ]\n}}\n",
        memory::pool_request(fixed, slot),
        memory::pool_request(0, slot),
        body.join(",\n")
    );
    let dir = criterion_dir();
    if std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join("memory.json"), json)).is_err() {
        eprintln!("memory: could not write {}", dir.join("memory.json").display());
    }
}

#[allow(clippy::cast_precision_loss)] // byte counts far below 2^52
fn ratio(a: usize, b: usize) -> f64 {
    a as f64 / b as f64
}

criterion_group! {
    name = benches;
    config = procnotify_benches::config();
    targets = add_start_group, bring_up_group
}

fn main() {
    memory_report();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
