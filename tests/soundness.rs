//! The soundness review's reproducers, kept as regression tests (the ones
//! the fixes made impossible to write are compile-fail tests in
//! `crates/procnotify-core/tests/compile_fail/`):
//!
//! - a context dropped while its DPC is queued: dropping a `Context` now
//!   flushes deferred work first, so the DPC runs before the free;
//! - the simulator's "DPC ran after its context was freed" guard, now one
//!   step (a pin) instead of check-then-act: a free racing a running DPC is
//!   recorded and the memory stays until the DPC returns;
//! - `Driver::load` when a hook panics during the `ADD_EXISTING` replay:
//!   the context is leaked, never freed under the OS's registration; and a
//!   hook panicking during a hot-add leaves a driver that unloads cleanly;
//! - unloading from inside a hook: refused instead of waiting for itself.
//!
//! Host-only: a panic in the kernel is a bugcheck, so only hosts unwind.

mod common;

use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use common::{assert_clean, load_with};
use procnotify_core::monitor::Monitor;
use procnotify_core::{
    Context, Cpu, DriverCell, Hooks, NotifyState, NtStatus, PoolAllocator, RawNotification, Sink, SlotState,
};
use procnotify_sim::{Config, HotAdd, SimDpc, SimKernel, SimOs};

// ------------------------------------------------------------ deferred work

/// Finding 2: `Context::new`, an AddStart and an AddComplete (which queues
/// the processor's DPC), then `drop(context)`: the DPC used to run on the
/// freed value. Dropping the context now waits for it.
#[test]
fn dropping_a_context_flushes_its_dpcs_first() {
    for round in 0..20 {
        let kernel = SimKernel::boot(Config::new(1, 4));
        let os = SimOs::new(&kernel);
        // SAFETY: the hooks go straight to the context, which alone calls them.
        let hooks = unsafe { Monitor::<SimDpc>::new(os.clone()) };
        let context = Context::new(os, hooks).expect("context");
        for state in [NotifyState::AddStart, NotifyState::AddComplete] {
            assert_eq!(context.on_notification(RawNotification::dense(state, 0)), None);
        }
        drop(context);
        assert_eq!(kernel.violations(), Vec::<String>::new(), "round {round}");
        let visits: Vec<_> = kernel.log_lines().into_iter().filter(|l| l.starts_with("procnotify: visit ")).collect();
        assert_eq!(visits, ["procnotify: visit index=0 visits=1"], "round {round}: the DPC ran, before the free");
        assert_clean(&kernel, "context drop");
    }
}

/// The guard itself: a DPC whose context is freed *while it runs* (another
/// thread frees it) is recorded as a violation, and the freed memory stays
/// readable by the DPC until it returns; a DPC whose context was freed
/// before it ran does not run at all.
#[test]
fn the_dpc_guard_pins_its_context_while_the_routine_runs() {
    static ENTERED: AtomicBool = AtomicBool::new(false);
    static RELEASE: AtomicBool = AtomicBool::new(false);
    static SEEN: AtomicU32 = AtomicU32::new(0);
    fn never(_: NonNull<c_void>) {
        panic!("a DPC ran on freed memory");
    }
    fn routine(context: NonNull<c_void>) {
        ENTERED.store(true, Ordering::SeqCst);
        while !RELEASE.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        // SAFETY: the pool pinned the allocation for this call: freed or
        // not, its memory is still there (poisoned only after the pin goes).
        let word = unsafe { context.cast::<AtomicU32>().as_ref() };
        SEEN.store(word.load(Ordering::SeqCst), Ordering::SeqCst);
    }
    let kernel = SimKernel::boot(Config::new(1, 1));
    let pool = kernel.pool().clone();
    let layout = std::alloc::Layout::new::<AtomicU32>();
    let block = pool.allocate(layout).expect("block");
    // SAFETY: fresh, aligned, zeroed: a valid `AtomicU32`.
    unsafe { block.cast::<AtomicU32>().as_ref() }.store(42, Ordering::SeqCst);
    kernel.queue_dpc(0, routine, block.cast());
    while !ENTERED.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    // SAFETY: allocated above with this layout; the DPC still uses it (the
    // bug under test), which the pool must catch without a use after free.
    unsafe { pool.deallocate(block, layout) };
    RELEASE.store(true, Ordering::SeqCst);
    kernel.flush_dpcs();
    assert_eq!(SEEN.load(Ordering::SeqCst), 42, "the routine read freed (poisoned) memory");
    let violations = kernel.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].contains("while a DPC or callback was using it"), "{violations:?}");
    assert_eq!(kernel.pool().stats().live, 0, "the block is freed once the DPC returned");

    // Queued after the free: never runs.
    let block = pool.allocate(layout).expect("block");
    // SAFETY: allocated just above with this layout, unused.
    unsafe { pool.deallocate(block, layout) };
    kernel.queue_dpc(0, never, block.cast());
    kernel.flush_dpcs();
    let violations = kernel.violations();
    assert!(violations.last().is_some_and(|v| v.contains("ran after its context was freed")), "{violations:?}");
}

// ------------------------------------------------------------ unwinding

/// Where a [`Panicky`] hook panics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PanicAt {
    Init,
    Starting,
}

/// Hooks that panic once, in `init` or `starting`, at one index; values
/// count themselves so a test sees which were dropped.
struct Panicky {
    at: u32,
    when: PanicAt,
    armed: AtomicBool,
    live: Arc<AtomicI64>,
}

struct Counted {
    live: Arc<AtomicI64>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Panicky {
    fn new(at: u32, when: PanicAt) -> Self {
        Self { at, when, armed: AtomicBool::new(true), live: Arc::default() }
    }

    fn fire(&self, cpu: Cpu, when: PanicAt) {
        let fires = cpu.index == self.at && self.when == when && self.armed.swap(false, Ordering::SeqCst);
        assert!(!fires, "{when:?} hook panics for processor {}", cpu.index);
    }
}

impl Hooks for Panicky {
    type Value = Counted;

    fn init<'a>(&self, cpu: Cpu, place: &'a mut MaybeUninit<Counted>) -> Result<&'a mut Counted, NtStatus> {
        self.fire(cpu, PanicAt::Init);
        self.live.fetch_add(1, Ordering::SeqCst);
        Ok(place.write(Counted { live: Arc::clone(&self.live) }))
    }

    fn starting(&self, cpu: Cpu, _value: &Counted) -> Result<(), NtStatus> {
        self.fire(cpu, PanicAt::Starting);
        Ok(())
    }
}

/// Kernels whose driver was leaked on purpose, kept reachable until the
/// process ends so that LeakSanitizer reports only real leaks. Pushed to
/// only while holding [`one_panicking_test`]'s lock.
static LEAKED: Mutex<Vec<SimKernel>> = Mutex::new(Vec::new());

/// Whether a test whose hook panics is running: [`one_panicking_test`].
static PANICKING: AtomicBool = AtomicBool::new(false);

/// Held by each test whose hook panics, so that they run one at a time.
/// std's panic machinery (the default hook's shared state, behind std's own
/// lock) is precompiled without ThreadSanitizer instrumentation here, so two
/// hooks panicking at once on two test threads are reported as a race
/// inside std (`.ci/sanitizers.sh`); so would two pushes to `LEAKED`, whose
/// std lock TSan cannot see either. This lock is taken and given back with
/// atomics compiled into this test (Acquire on taking, pairing with the
/// Release on giving back), which TSan sees, and is given back on unwind.
struct OnePanickingTest;

fn one_panicking_test() -> OnePanickingTest {
    while PANICKING.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        std::thread::yield_now();
    }
    OnePanickingTest
}

impl Drop for OnePanickingTest {
    fn drop(&mut self) {
        PANICKING.store(false, Ordering::Release);
    }
}

/// Finding 3: a hook panics while `KeRegisterProcessorChangeCallback`
/// replays the existing processors. The registration the OS made stays
/// (it never returned a handle), so the context must stay too: leaked,
/// never freed. Later hot-adds reach it, alive.
#[test]
fn a_hook_panicking_during_the_replay_leaks_the_context_never_frees_it() {
    let _one = one_panicking_test();
    for when in [PanicAt::Init, PanicAt::Starting] {
        let kernel = SimKernel::boot(Config::new(4, 8));
        let hooks = Panicky::new(2, when);
        let live = Arc::clone(&hooks.live);
        let load = catch_unwind(AssertUnwindSafe(|| load_with(&kernel, hooks)));
        assert!(load.is_err(), "{when:?}: the panic unwinds out of Driver::load");
        let pool = kernel.pool().stats();
        assert!(pool.live >= 3, "{when:?}: the context, its index and a segment stay allocated: {pool:?}");
        assert_eq!(pool.frees, 0, "{when:?}: nothing was freed: {pool:?}");
        // The kernel goes on: the next hot-add is delivered to the leaked
        // context, which is alive (a free would show as a violation).
        assert!(matches!(kernel.hot_add(), HotAdd::Added(4)), "{when:?}");
        assert_eq!(kernel.violations(), Vec::<String>::new(), "{when:?}");
        assert!(live.load(Ordering::SeqCst) >= 2, "{when:?}: values of the leaked table stay");
        // The cell a driver would use is left busy, not half-loaded.
        LEAKED.lock().unwrap().push(kernel);
    }
}

/// The same through `DriverCell`: the cell stays busy (a second load is
/// refused, an unload is a no-op) instead of pointing at a driver that was
/// never registered.
#[test]
fn a_panicking_load_leaves_the_cell_busy() {
    static CELL: DriverCell<SimOs, Panicky> = DriverCell::new();
    let _one = one_panicking_test();
    let kernel = SimKernel::boot(Config::new(2, 4));
    let loaded = catch_unwind(AssertUnwindSafe(|| CELL.load(SimOs::new(&kernel), Panicky::new(1, PanicAt::Init))));
    assert!(loaded.is_err());
    assert!(!CELL.is_loaded());
    assert!(!CELL.unload(), "nothing to unload");
    let busy = CELL.load(SimOs::new(&kernel), Panicky::new(9, PanicAt::Init));
    assert_eq!(busy, NtStatus::DEVICE_BUSY);
    assert_eq!(kernel.violations(), Vec::<String>::new());
    LEAKED.lock().unwrap().push(kernel);
}

/// A hook panics during a hot-add of a loaded driver: the add unwinds, and
/// the driver is left defined: the index is usable again, and unload
/// (which waits for running callbacks) neither hangs nor leaks.
#[test]
fn a_hook_panicking_during_a_hot_add_leaves_a_driver_that_unloads_cleanly() {
    let _one = one_panicking_test();
    for when in [PanicAt::Init, PanicAt::Starting] {
        let kernel = SimKernel::boot(Config::new(2, 4));
        let hooks = Panicky::new(2, when);
        let live = Arc::clone(&hooks.live);
        let driver = load_with(&kernel, hooks).expect("load");
        assert!(catch_unwind(AssertUnwindSafe(|| kernel.hot_add())).is_err(), "{when:?}");
        let slot = driver.context().table().get(2);
        match when {
            // `init` panicked before writing: nothing linked.
            PanicAt::Init => assert!(slot.is_none(), "{when:?}"),
            // `starting` panicked: the value exists, the slot stays vacant.
            PanicAt::Starting => assert_eq!(slot.map(procnotify_core::Slot::state), Some(SlotState::Vacant)),
        }
        // The index is usable again; the hook panics only once.
        assert_eq!(kernel.hot_add(), HotAdd::Added(2), "{when:?}");
        assert_eq!(driver.context().present(), 3);
        driver.unload();
        assert_eq!(live.load(Ordering::SeqCst), 0, "{when:?}: every value dropped");
        assert_clean(&kernel, "panicking hook at hot-add");
    }
}

// ------------------------------------------------------------ unload from a hook

/// Hooks whose `online` unloads the driver they belong to (through the
/// cell), as a driver might by mistake.
struct Unloader;

static UNLOADER: DriverCell<SimOs, Unloader> = DriverCell::new();
static UNLOADED_IN_HOOK: AtomicU32 = AtomicU32::new(0);
static REFUSED_IN_HOOK: AtomicU32 = AtomicU32::new(0);

impl Hooks for Unloader {
    type Value = u32;

    fn init<'a>(&self, cpu: Cpu, place: &'a mut MaybeUninit<u32>) -> Result<&'a mut u32, NtStatus> {
        Ok(place.write(cpu.index))
    }

    fn online(&self, _cpu: Cpu, _value: &u32) {
        // Deregistration would wait for this very callback: refused.
        let counter = if UNLOADER.unload() { &UNLOADED_IN_HOOK } else { &REFUSED_IN_HOOK };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn unloading_from_inside_a_hook_is_refused_instead_of_deadlocking() {
    let kernel = SimKernel::boot(Config::new(1, 4));
    assert_eq!(UNLOADER.load(SimOs::new(&kernel), Unloader), NtStatus::SUCCESS);
    // During the replay the cell was still loading: refused as well.
    assert_eq!(REFUSED_IN_HOOK.load(Ordering::SeqCst), 1);
    assert_eq!(kernel.hot_add(), HotAdd::Added(1));
    assert_eq!(UNLOADED_IN_HOOK.load(Ordering::SeqCst), 0);
    assert_eq!(REFUSED_IN_HOOK.load(Ordering::SeqCst), 2);
    assert!(UNLOADER.is_loaded(), "the refused unload left the driver loaded");
    assert!(
        kernel
            .log_lines()
            .iter()
            .any(|l| l == "procnotify: unload refused: called from inside the driver's own callback"),
        "{:?}",
        kernel.log_lines()
    );
    // From outside the callback it unloads as usual.
    assert!(UNLOADER.unload());
    assert_clean(&kernel, "unload from a hook");
}
