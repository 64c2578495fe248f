//! Readers on every simulated processor while processors are hot-added up to
//! the maximum (2048 by default; `PROCNOTIFY_STRESS_MAX` lowers it, e.g. for
//! sanitizer runs). One reader thread per processor runs as that processor
//! (`SimKernel::run_on`) and reads through the lock-free path
//! (`Context::current`, `Table::get`). The HAL's start of a processor wakes
//! its reader and waits for its first read (`SimKernel::on_processor_start`),
//! so every hot-added processor's first read happens before its AddComplete,
//! while its slot is `Starting`. Every read checks that the slot it finds is
//! whole: its own exists as soon as its processor runs and carries the right
//! index, location and value, and any other slot it finds is fully formed.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use common::{assert_clean, assert_online_exactly, load};
use procnotify_core::{ProcNumber, SlotState};
use procnotify_sim::{Config, HotAdd, Refusal, SimDriver, SimKernel};

fn max_processors() -> u32 {
    std::env::var("PROCNOTIFY_STRESS_MAX").ok().and_then(|v| v.parse().ok()).unwrap_or(2048).clamp(2, 2048)
}

/// A small xorshift so each reader probes other slots without a dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Shared by the adder and the readers. Plain `spawn` + `join` rather than
/// `thread::scope`: `join` is `pthread_join`, which ThreadSanitizer sees, while
/// the scope's own completion handshake parks inside precompiled std.
struct Shared {
    kernel: SimKernel,
    driver: SimDriver,
    max: u32,
    stop: AtomicBool,
    /// Set by each reader once its first burst is done (or it failed).
    arrived: Vec<AtomicBool>,
    /// The adding thread, parked in the HAL-start hook until the reader arrives.
    adder: Thread,
    reads: AtomicU64,
    /// First reads that found the reader's own slot `Starting`.
    starting_reads: AtomicU64,
}

/// Marks the reader as arrived when dropped, even if a check panicked, so the
/// HAL-start hook waiting for it never hangs.
struct Arrival<'a>(&'a AtomicBool, &'a Thread);

impl Drop for Arrival<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
        self.1.unpark();
    }
}

/// One burst of reads on `me`'s processor; returns its own slot's state at
/// the first read.
fn burst(shared: &Shared, me: u32, seed: &mut u64) -> SlotState {
    let context = shared.driver.context();
    let table = context.table();
    let mut first = None;
    for _ in 0..32 {
        // Own value, found through the read path for the current processor.
        let value = context.current().expect("a running processor always has its value");
        assert_eq!(value.index(), me, "processor {me} found another processor's value");
        let slot = table.get(me).expect("a running processor always has its slot");
        let state = slot.state();
        assert_ne!(state, SlotState::Vacant, "processor {me} runs on a vacant slot");
        assert_eq!(slot.index(), me);
        assert_eq!(slot.proc_number(), ProcNumber::dense(me));
        first.get_or_insert(state);
        // Any other slot: absent, or whole.
        let other = u32::try_from(next(seed) % u64::from(shared.max)).unwrap();
        if let Some(slot) = table.get(other) {
            assert_eq!((slot.index(), slot.value().index()), (other, other));
            assert_eq!(slot.proc_number(), ProcNumber::dense(other));
        }
    }
    first.expect("32 reads")
}

/// One simulated processor: park until the HAL starts it, then read in
/// bursts until told to stop. The first burst also visits its own value once
/// (so the counters show code on the processor reached it).
fn reader(shared: &Shared, processor: u32) {
    let arrival = Arrival(&shared.arrived[processor as usize], &shared.adder);
    while !shared.kernel.is_running(processor) {
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        std::thread::park_timeout(Duration::from_millis(200));
    }
    let mut seed = u64::from(processor) * 0x9E37_79B9 + 1;
    let mut bursts = 0_u64;
    SimKernel::run_on(processor, || {
        let first = burst(shared, processor, &mut seed);
        if first == SlotState::Starting {
            shared.starting_reads.fetch_add(1, Ordering::Relaxed);
        }
        let context = shared.driver.context();
        context.current().expect("own value").visit(context.os());
        bursts += 1;
        drop(arrival);
        loop {
            let done = shared.stop.load(Ordering::Acquire);
            burst(shared, processor, &mut seed);
            bursts += 1;
            if done {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    shared.reads.fetch_add(bursts * 32, Ordering::Relaxed);
}

fn spawn_readers(shared: &Arc<Shared>) -> Vec<JoinHandle<()>> {
    (0..shared.max)
        .map(|processor| {
            let shared = Arc::clone(shared);
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || reader(&shared, processor))
                .expect("spawn reader")
        })
        .collect()
}

#[test]
fn readers_on_every_processor_while_adding_to_the_maximum() {
    let max = max_processors();
    let kernel = SimKernel::boot(Config::new(1, max));
    let shared = Arc::new(Shared {
        kernel: kernel.clone(),
        driver: load(&kernel),
        max,
        stop: AtomicBool::new(false),
        arrived: (0..max).map(|_| AtomicBool::new(false)).collect(),
        adder: std::thread::current(),
        reads: AtomicU64::new(0),
        starting_reads: AtomicU64::new(0),
    });
    let readers = spawn_readers(&shared);
    // When the HAL starts a processor (before AddComplete), wake its reader
    // and wait until it has read its own slot.
    let threads: Vec<Thread> = readers.iter().map(|handle| handle.thread().clone()).collect();
    let hook_shared = Arc::clone(&shared);
    kernel.on_processor_start(Arc::new(move |index| {
        threads[index as usize].unpark();
        while !hook_shared.arrived[index as usize].load(Ordering::Acquire) {
            std::thread::park_timeout(Duration::from_millis(10));
        }
    }));

    for expected in 1..max {
        assert_eq!(kernel.hot_add(), HotAdd::Added(expected));
    }
    assert_eq!(kernel.hot_add(), HotAdd::Refused(Refusal::AtMaximum));
    shared.stop.store(true, Ordering::Release);
    let mut failed = 0;
    for reader in readers {
        failed += usize::from(reader.join().is_err());
    }
    assert_eq!(failed, 0, "readers saw a torn or missing slot");
    // The hook holds a reference to `shared`: drop it with the kernel's hook.
    kernel.on_processor_start(Arc::new(|_| {}));

    kernel.flush_dpcs();
    let Ok(Shared { driver, reads, starting_reads, .. }) = Arc::try_unwrap(shared) else {
        panic!("every reader has been joined");
    };
    assert_online_exactly(&driver, max);
    // Every hot-added processor's first read came before its AddComplete.
    let starting_reads = starting_reads.into_inner();
    assert_eq!(starting_reads, u64::from(max - 1), "first reads that found their slot starting");
    let table = driver.context().table();
    for slot in table.slots() {
        // The DPC at AddComplete plus the reader's own visit.
        let counters = slot.value().counters();
        assert_eq!(counters.visits, 2, "processor {}", slot.index());
    }
    assert!(table.allocated_slots() <= 2 * max);
    let reads = reads.into_inner();
    assert!(reads >= u64::from(max) * 64, "every reader read at least two bursts ({reads} reads)");
    println!("stress: {max} processors, {reads} reads, {starting_reads} first reads before AddComplete");
    driver.unload();
    assert_clean(&kernel, "stress");
}
