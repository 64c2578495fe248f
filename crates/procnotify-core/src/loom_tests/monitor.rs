//! procnotify's own hooks ([`Monitor`]) over the fake kernel, with a DPC
//! whose `init` writes a loom-tracked cell ([`LoomDpc`]): the DPC routine
//! on another thread reading the value the `online` hook queued it for, and
//! readers racing the hooks that run after the state store (`online`,
//! `failed`), including a reader that holds a slot across a failed add and
//! a second `AddStart` for the same index.
//!
//! `Monitor`'s counters are `Relaxed` (statistics); what a reader may rely
//! on comes from the slot state's Release/Acquire: a reader that sees
//! `Starting` or `Online` sees the `starting` hook's count.

use loom::sync::Arc;
use loom::sync::atomic::Ordering;
use std::sync::atomic::Ordering as StdOrdering;

use super::kernel::{Kernel, LoomDpc, LoomOs};
use super::{Outcomes, explore, explore_bounded, spawn};
use crate::driver::Driver;
use crate::lifecycle::SlotState;
use crate::monitor::{Counters, Monitor, PerProcessor};
use crate::table::Slot;
use crate::values::NotifyState;

type MonitorDriver = Driver<LoomOs, Monitor<LoomDpc>>;

fn load(kernel: &Arc<Kernel>) -> Arc<MonitorDriver> {
    Arc::new(Monitor::<LoomDpc>::load(LoomOs::new(kernel, 0)).expect("load"))
}

fn unload(kernel: &Kernel, driver: Arc<MonitorDriver>) {
    Arc::try_unwrap(driver).ok().expect("last reference").unload();
    assert!(kernel.freed.load(Ordering::SeqCst));
    assert_eq!(kernel.dpc_inits.load(StdOrdering::Relaxed), 1, "`init` ran more than once for one index");
}

/// What a reader sees of a slot: its state, then the counters (`Relaxed`
/// loads after the state's `Acquire`), checking what the state promises.
fn observe(slot: &Slot<PerProcessor<LoomDpc>>) -> (SlotState, Counters) {
    let value = slot.value();
    assert_eq!(value.dpc().tag(), LoomDpc::TAG, "a linked value without `init`'s write");
    let state = slot.state();
    let counters = value.counters();
    if state != SlotState::Vacant {
        assert!(counters.starts >= 1, "{state:?} without the `starting` hook's count: {counters:?}");
    }
    (state, counters)
}

/// A hot-add of processor 1 races the DPC processor. The `online` hook
/// (after the slot went `Online`) counts the completion and queues the DPC
/// with the value's address; when the DPC runs, its routine (on another
/// thread, on processor 1) finds the value through `from_context` and sees
/// `init`'s write (a tracked cell) and both hooks' counts, and the slot is
/// `Online`. Unload afterwards flushes a DPC that did not run.
#[test]
fn loom_monitor_dpc_reads_what_online_published() {
    static SEEN: Outcomes<2> = Outcomes::new();
    explore("monitor_dpc_reads_what_online_published", 58, || {
        let kernel = Arc::new(Kernel::default());
        let driver = load(&kernel);
        let callback = {
            let kernel = Arc::clone(&kernel);
            spawn(move || assert!(kernel.hot_add(1)))
        };
        let dpc = {
            let os = LoomOs::observer(&kernel);
            let driver = Arc::clone(&driver);
            spawn(move || {
                let ran = os.kernel.run_dpc(&os);
                if let Some(cpu) = ran {
                    let slot = driver.context().table().get(cpu).expect("the DPC's slot");
                    assert_eq!(slot.state(), SlotState::Online, "the DPC ran before its slot was online");
                }
                ran.is_some()
            })
        };
        callback.join().expect("callback");
        let ran = dpc.join().expect("dpc");
        let counters = driver.context().table().value(1).map(PerProcessor::counters).expect("linked");
        assert_eq!(counters, Counters { starts: 1, completes: 1, failures: 0, visits: u64::from(ran) });
        SEEN.hit(usize::from(ran));
        unload(&kernel, driver);
    });
    SEEN.assert_all("monitor_dpc_reads_what_online_published", ["DPC not queued yet (flushed by unload)", "DPC ran"]);
}

/// A reader races the hot-add of processor 1 and the `online` hook, which
/// runs after the slot went `Online`: it sees no slot, a `Vacant` one
/// (hooks running), `Starting`, or `Online` before or after the hook counted
/// the completion; whenever the slot is `Starting` or `Online` it sees the
/// `starting` hook's count (catches a Relaxed state store or load).
#[test]
fn loom_reader_races_the_online_hook() {
    static SEEN: Outcomes<5> = Outcomes::new();
    explore("reader_races_the_online_hook", 3000, || {
        let kernel = Arc::new(Kernel::default());
        let driver = load(&kernel);
        let callback = {
            let kernel = Arc::clone(&kernel);
            spawn(move || assert!(kernel.hot_add(1)))
        };
        let reader = {
            let driver = Arc::clone(&driver);
            spawn(move || match driver.context().table().get(1).map(observe) {
                None => SEEN.hit(0),
                Some((SlotState::Vacant, _)) => SEEN.hit(1),
                Some((SlotState::Starting, _)) => SEEN.hit(2),
                Some((SlotState::Online, counters)) => SEEN.hit(3 + counters.completes as usize),
            })
        };
        callback.join().expect("callback");
        reader.join().expect("reader");
        unload(&kernel, driver);
    });
    SEEN.assert_all(
        "reader_races_the_online_hook",
        ["no slot", "linked, Vacant", "Starting", "Online, hook not counted yet", "Online, hook counted"],
    );
}

/// The kernel delivers `AddStart`, `AddFailure`, `AddStart` for processor 1
/// (a failed add, then a retry that reuses the index) while a reader holds
/// the slot it found and looks at it twice. The value is initialised once
/// and never moves (a second `init` would write the tracked cell under the
/// reader); the reader sees the first add, the revert with the `failed`
/// hook (which runs after the state store) not yet or already counted, and
/// the second add. Preemption-bounded: the kernel thread delivers three
/// notifications.
#[test]
fn loom_reader_holds_a_slot_across_a_failed_add_and_a_second_add_start() {
    static SEEN: Outcomes<5> = Outcomes::new();
    let name = "reader_holds_a_slot_across_a_failed_add_and_a_second_add_start";
    explore_bounded(name, 41_900, 3, || {
        let kernel = Arc::new(Kernel::default());
        let driver = load(&kernel);
        let callback = {
            let kernel = Arc::clone(&kernel);
            spawn(move || {
                let states = [NotifyState::AddStart, NotifyState::AddFailure, NotifyState::AddStart];
                assert!(kernel.deliver(1, &states));
            })
        };
        let reader = {
            let driver = Arc::clone(&driver);
            spawn(move || {
                let Some(slot) = driver.context().table().get(1) else {
                    SEEN.hit(0);
                    return None;
                };
                let (first, second) = (observe(slot), observe(slot));
                for (state, counters) in [first, second] {
                    assert!(counters.starts <= 2 && counters.failures <= 1 && counters.completes == 0, "{counters:?}");
                    match (state, counters.starts) {
                        (SlotState::Starting, 1) if counters.failures == 0 => SEEN.hit(1),
                        (SlotState::Starting, 2) => SEEN.hit(4),
                        _ => {}
                    }
                }
                if (first.0, second.0) == (SlotState::Starting, SlotState::Vacant) {
                    // The revert's state store came before the `failed` hook.
                    SEEN.hit(2 + second.1.failures as usize);
                }
                Some(core::ptr::from_ref(slot).addr())
            })
        };
        callback.join().expect("callback");
        let held = reader.join().expect("reader");
        let slot = driver.context().table().get(1).expect("linked");
        if let Some(address) = held {
            assert_eq!(address, core::ptr::from_ref(slot).addr(), "the slot moved");
        }
        assert_eq!(slot.state(), SlotState::Starting);
        let counters = slot.value().counters();
        assert_eq!((counters.starts, counters.failures, counters.completes), (2, 1, 0));
        unload(&kernel, driver);
    });
    SEEN.assert_all(
        name,
        [
            "no slot yet",
            "the first add (Starting, 1 start)",
            "reverted, `failed` not counted yet",
            "reverted, `failed` counted",
            "the second add (Starting, 2 starts)",
        ],
    );
}
