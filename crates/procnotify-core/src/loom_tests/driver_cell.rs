//! [`DriverCell`]'s state word: whoever moves it to `BUSY` (Acquire) owns
//! the cell's `Driver` until it stores the next state (Release). The cell's
//! `Driver` slot is a loom-tracked cell (`crate::sync::UnsafeCell`), so an
//! owner whose accesses are not ordered after the previous owner's fails
//! the model.

use core::fmt;
use core::mem::MaybeUninit;
use core::ptr::NonNull;
use std::sync::atomic::Ordering as StdOrdering;

use loom::sync::Arc;

use super::kernel::{Kernel, LoomOs};
use super::{Heap, Outcomes, explore, spawn};
use crate::driver::DriverCell;
use crate::hooks::{Cpu, Hooks};
use crate::os::{Os, Sink};
use crate::values::{Level, NtStatus};

/// An OS with no processors and nothing to wait for: registration,
/// deregistration and the flush do nothing, so the models' interleavings
/// are the cell's own (and the context's allocation and free).
struct QuietOs;

// SAFETY: it never calls back, and has no deferred work.
unsafe impl Os for QuietOs {
    type Identity = crate::monitor::Procnotify;
    type Allocator = Heap;
    type Registration = ();

    fn allocator(&self) -> Heap {
        Heap
    }
    fn max_processors(&self) -> u32 {
        1
    }
    fn current_processor(&self) -> u32 {
        0
    }
    fn log(&self, _: Level, _: fmt::Arguments<'_>) {}
    unsafe fn register<S: Sink>(&self, _: NonNull<S>) -> Option<()> {
        Some(())
    }
    fn deregister(&self, (): ()) {}
    fn flush_deferred(&self) {}
}

/// Hooks that are never called (no processor arrives).
struct Idle;

impl Hooks for Idle {
    type Value = u32;

    fn init<'a>(&self, cpu: Cpu, place: &'a mut MaybeUninit<u32>) -> Result<&'a mut u32, NtStatus> {
        Ok(place.write(cpu.index))
    }
}

/// Load and unload racing a second load and unload: two threads each load
/// a driver into one cell, then unload the cell. Exactly one load can hold
/// the cell at a time; every loaded driver is unloaded exactly once (by
/// either thread) and freed (loom's tracked heap fails a leak, and a double
/// free). Reaches both hand-overs of the cell's `Driver`: from a load to
/// the other thread's unload (catches a Relaxed `LOADED` store in `load` or
/// compare-exchange in `unload`), and from an unload to the other thread's
/// load (a Relaxed `EMPTY` store in `unload` or compare-exchange in `load`).
#[test]
fn loom_cell_loads_and_unloads_race() {
    static SEEN: Outcomes<3> = Outcomes::new();
    explore("cell_loads_and_unloads_race", 1170, || {
        let cell = Arc::new(DriverCell::<QuietOs, Idle>::new());
        let start = || {
            let cell = Arc::clone(&cell);
            spawn(move || {
                let loaded = match cell.load(QuietOs, Idle) {
                    NtStatus::SUCCESS => true,
                    NtStatus::DEVICE_BUSY => false,
                    status => panic!("load failed: {status}"),
                };
                (loaded, cell.unload())
            })
        };
        let (a, b) = (start(), start());
        let (a, b) = (a.join().expect("a"), b.join().expect("b"));
        assert!(a.0 || b.0, "one load must succeed");
        assert_eq!(usize::from(a.0) + usize::from(b.0), usize::from(a.1) + usize::from(b.1), "{a:?} {b:?}");
        assert!(!cell.is_loaded());
        assert!(cell.context_address().is_null());
        match (a, b) {
            ((true, true), (true, true)) => SEEN.hit(1),
            ((false, true), _) | (_, (false, true)) => SEEN.hit(0),
            _ => SEEN.hit(2),
        }
    });
    SEEN.assert_all(
        "cell_loads_and_unloads_race",
        [
            "a refused load's thread unloads the other's driver",
            "both load and unload in turn",
            "a refused load, nothing left to unload",
        ],
    );
}

/// Hooks whose `online` unloads their own driver through the cell, as a
/// driver might by mistake; the cell refuses (the callback would wait for
/// itself).
struct Unloader {
    cell: Arc<DriverCell<LoomOs, Unloader>>,
}

impl Hooks for Unloader {
    type Value = u32;

    fn init<'a>(&self, cpu: Cpu, place: &'a mut MaybeUninit<u32>) -> Result<&'a mut u32, NtStatus> {
        Ok(place.write(cpu.index))
    }

    fn online(&self, _: Cpu, _: &u32) {
        assert!(!self.cell.unload(), "unloaded from inside its own callback");
    }
}

/// An unload from inside the driver's own callback (refused: it reads the
/// cell's `Driver` and hands it back with a Release `LOADED` store) races
/// the unload routine on another thread. The routine unloads exactly once,
/// retrying while the callback holds the cell; its accesses to the cell's
/// `Driver` must come after the callback's read (catches a Relaxed store on
/// the refusal path).
#[test]
fn loom_cell_unload_inside_the_callback_races_an_unload() {
    static SEEN: Outcomes<4> = Outcomes::new();
    explore("cell_unload_inside_the_callback_races_an_unload", 8800, || {
        let kernel = Arc::new(Kernel::default());
        let cell = Arc::new(DriverCell::new());
        let hooks = Unloader { cell: Arc::clone(&cell) };
        assert_eq!(cell.load(LoomOs::new(&kernel, 0).with_threads(), hooks), NtStatus::SUCCESS);
        let callback = {
            let kernel = Arc::clone(&kernel);
            spawn(move || kernel.hot_add(1))
        };
        let mut retried = false;
        while !cell.unload() {
            retried = true;
            loom::thread::yield_now();
        }
        let delivered = callback.join().expect("callback");
        assert!(!cell.is_loaded());
        let refusals = kernel.errors.load(StdOrdering::Relaxed);
        match (delivered, refusals) {
            (false, 0) => SEEN.hit(2),
            (true, 1) => SEEN.hit(0),
            (true, 0) => SEEN.hit(1),
            other => panic!("unexpected (delivered, refusals) {other:?}"),
        }
        if retried {
            SEEN.hit(3);
        }
    });
    SEEN.assert_all(
        "cell_unload_inside_the_callback_races_an_unload",
        [
            "refused inside the callback",
            "the callback found the cell busy",
            "no callback (deregistered first)",
            "the unload routine retried",
        ],
    );
}
