//! A driver's own hooks, and what the engine guarantees about them whatever
//! they do: a value that `init` did not put in its place is refused, a failing
//! `starting` vetoes and leaves the slot `Vacant`, and the counters a hook
//! keeps depend only on the notifications, not on what memory the table had
//! allocated before: the same counters whether the slot's segment is new,
//! already holds an online neighbour, or was allocated for a neighbour whose
//! add procnotify vetoed.

mod common;

use common::{COMPLETE, FAILURE, Probe, ProbeFault, START, assert_clean, inject, load, load_with};
use procnotify_core::monitor::Counters;
use procnotify_core::{NtStatus, SlotState, StatsSnapshot};
use procnotify_sim::{Config, HotAdd, KernelEvent, SimKernel};

const REFUSED: &str = "outcome=vetoed(0xC0000001(STATUS_UNSUCCESSFUL))";

/// `init` returns a reference to a value of its own instead of the place it
/// was given (the soundness check in `Writer::get_or_insert`): the `AddStart`
/// is vetoed with `STATUS_UNSUCCESSFUL`, no slot is linked (readers never see
/// the place, which was never written), nothing is dropped that the engine
/// does not own, and the next add at that index works.
#[test]
fn init_returning_another_reference_is_refused_at_hot_add() {
    let kernel = SimKernel::boot(Config::new(2, 8));
    let probe = Probe::new(Some((2, ProbeFault::InitReturnsForeign)));
    let ledger = probe.ledger();
    let driver = load_with(&kernel, probe).expect("load");
    assert_eq!(kernel.hot_add(), HotAdd::Failed { index: 2, status: NtStatus::UNSUCCESSFUL });
    let context = driver.context();
    assert!(context.table().get(2).is_none(), "a slot was linked with a value that is not in it");
    assert!(kernel.log_lines().iter().any(|l| l.starts_with("procnotify: add-start index=2 ") && l.ends_with(REFUSED)));
    assert_eq!(context.stats().vetoes, 1);
    assert_eq!(context.recorded_status(), Some(NtStatus::UNSUCCESSFUL));
    assert_eq!(context.present(), 2);
    // `starting` never ran on it, and the AddFailure that followed the veto
    // found nothing to revert.
    assert_eq!(ledger.calls().iter().filter(|(_, index)| *index == 2).collect::<Vec<_>>(), vec![&("init", 2)]);
    // The engine kept no reference to the foreign value: the test frees it.
    assert_eq!(ledger.live(), 3);
    assert!(ledger.free_foreign());
    assert_eq!(ledger.live(), 2);

    // The index is usable: the next add calls `init` again, which now behaves.
    assert_eq!(kernel.hot_add(), HotAdd::Added(2));
    let slot = context.table().get(2).expect("slot 2");
    assert_eq!((slot.state(), slot.value().index), (SlotState::Online, 2));
    driver.unload();
    assert_eq!(ledger.live(), 0, "values left behind");
    assert_clean(&kernel, "foreign init");
}

/// The same at registration: the load fails with the refusal's status, which
/// the kernel saw as a veto of processor 1's AddStart.
#[test]
fn init_returning_another_reference_is_refused_at_load() {
    let kernel = SimKernel::boot(Config::new(4, 4));
    let probe = Probe::new(Some((1, ProbeFault::InitReturnsForeign)));
    let ledger = probe.ledger();
    assert_eq!(load_with(&kernel, probe).err(), Some(NtStatus::UNSUCCESSFUL));
    let vetoes: Vec<_> =
        kernel.kernel_events().into_iter().filter(|e| matches!(e, KernelEvent::Vetoed { .. })).collect();
    assert_eq!(vetoes, vec![KernelEvent::Vetoed { registration: 1, status: NtStatus::UNSUCCESSFUL }]);
    assert!(kernel.log_lines().iter().any(|l| l.starts_with("procnotify: add-start index=1 ") && l.ends_with(REFUSED)));
    assert!(ledger.free_foreign());
    assert_eq!(ledger.live(), 0, "values left behind");
    assert_clean(&kernel, "foreign init at load");
}

/// `starting` fails: the `AddStart` is vetoed with its status, the slot (whose
/// value `init` did create) stays `Vacant`, the AddFailure that follows is not
/// a revert, and the next add reuses the value without calling `init` again.
#[test]
fn starting_failure_vetoes_and_leaves_the_slot_vacant() {
    let status = NtStatus::DEVICE_NOT_READY;
    let kernel = SimKernel::boot(Config::new(2, 8));
    let probe = Probe::new(Some((2, ProbeFault::StartingFails(status))));
    let ledger = probe.ledger();
    let driver = load_with(&kernel, probe).expect("load");
    assert_eq!(kernel.hot_add(), HotAdd::Failed { index: 2, status });
    let context = driver.context();
    let slot = context.table().get(2).expect("the value was created");
    assert_eq!(slot.state(), SlotState::Vacant);
    assert_eq!(slot.value().starts.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert_eq!((context.present(), context.stats().vetoes, context.recorded_status()), (2, 1, Some(status)));
    assert_eq!(ledger.calls()[6..], [("init", 2), ("starting", 2)], "no `failed` for an add it vetoed");

    assert_eq!(kernel.hot_add(), HotAdd::Added(2));
    assert_eq!(ledger.calls()[8..], [("starting", 2), ("online", 2)], "no second `init`");
    assert_eq!((slot.state(), slot.value().starts.load(std::sync::atomic::Ordering::Relaxed)), (SlotState::Online, 1));
    driver.unload();
    assert_eq!(ledger.live(), 0, "values left behind");
    assert_clean(&kernel, "starting fails");
}

#[test]
fn a_driver_with_its_own_hooks_loads_and_unloads_cleanly() {
    let kernel = SimKernel::boot(Config::new(3, 8));
    let probe = Probe::new(None);
    let ledger = probe.ledger();
    let driver = load_with(&kernel, probe).expect("load");
    assert_eq!(kernel.hot_add(), HotAdd::Added(3));
    assert_eq!(ledger.live(), 4);
    let mut expected: Vec<_> = (0..3).flat_map(|i| [("init", i), ("starting", i)]).collect();
    expected.extend((0..3).map(|i| ("online", i)));
    expected.extend([("init", 3), ("starting", 3), ("online", 3)]);
    assert_eq!(ledger.calls(), expected);
    driver.unload();
    assert_eq!(ledger.live(), 0, "every value dropped at unload");
    assert_clean(&kernel, "own hooks");
}

// ---- counters that depend only on the notifications, not on the table's layout

/// How the table looks before the notifications for index 3 arrive. Index 3
/// shares its segment (indices 2-3) with index 2.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// Index 2 never seen: the segment holding 3 does not exist.
    Fresh,
    /// Index 2 hot-added: the segment holding 3 exists, slot 3 unlinked.
    NeighbourOnline,
    /// Index 2's AddStart vetoed by procnotify (its DPC payload failed): the
    /// segment exists, neither slot is linked.
    NeighbourVetoed,
}

/// The same notifications for index 3 on each layout: two AddFailures for an
/// index never started (another driver vetoed it), an AddStart, a revert, a
/// stray AddFailure, then a successful add.
const SEQUENCE: [(u32, NtStatus); 7] = [
    (FAILURE, NtStatus::ACCESS_DENIED),
    (FAILURE, NtStatus::ACCESS_DENIED),
    (START, NtStatus::SUCCESS),
    (FAILURE, NtStatus::UNSUCCESSFUL),
    (FAILURE, NtStatus::UNSUCCESSFUL),
    (START, NtStatus::SUCCESS),
    (COMPLETE, NtStatus::SUCCESS),
];

/// What index 3 went through: its counters after each notification, the
/// engine's stats for the sequence, and the outcome of each notification.
type Observed = (Vec<Option<Counters>>, StatsSnapshot, Vec<String>);

fn run_on_layout(layout: Layout) -> Observed {
    let kernel = SimKernel::boot(Config::new(2, 8));
    let driver = load(&kernel);
    let context = driver.context();
    match layout {
        Layout::Fresh => {}
        Layout::NeighbourOnline => assert_eq!(kernel.hot_add(), HotAdd::Added(2)),
        Layout::NeighbourVetoed => {
            kernel.fail_payload_init(3); // after the payloads of 0 and 1
            assert_eq!(inject(&kernel, START, 2, NtStatus::SUCCESS), NtStatus::INSUFFICIENT_RESOURCES);
            assert_eq!(inject(&kernel, FAILURE, 2, NtStatus::INSUFFICIENT_RESOURCES), NtStatus::SUCCESS);
        }
    }
    // The layouts really differ where it matters: the memory for slot 3.
    let segment_exists = context.table().allocated_slots() >= 4;
    assert_eq!(segment_exists, !matches!(layout, Layout::Fresh), "{layout:?}");
    assert!(context.table().get(3).is_none(), "{layout:?}");

    let before = context.stats();
    let mut counters = Vec::new();
    let mut outcomes = Vec::new();
    for (state, status) in SEQUENCE {
        assert_eq!(inject(&kernel, state, 3, status), NtStatus::SUCCESS, "{layout:?}");
        kernel.flush_dpcs();
        counters.push(context.table().value(3).map(procnotify_core::monitor::PerProcessor::counters));
        let logs = kernel.log_lines();
        let line = logs.iter().rev().find(|l| l.contains(" index=3 ") && l.contains("outcome=")).expect("index 3");
        outcomes.push(line[line.find("outcome=").expect("an outcome")..].to_owned());
    }
    let after = context.stats();
    let stats = StatsSnapshot {
        notifications: after.notifications - before.notifications,
        vetoes: after.vetoes - before.vetoes,
        anomalies: after.anomalies - before.anomalies,
    };
    driver.unload();
    assert_clean(&kernel, &format!("{layout:?}"));
    (counters, stats, outcomes)
}

#[test]
fn counters_do_not_depend_on_what_was_allocated_before() {
    let fresh = run_on_layout(Layout::Fresh);
    // What the notifications alone say: AddFailure counts only when it
    // reverts a Starting slot, so 1 failure, whatever the layout.
    let up = Counters { starts: 2, completes: 1, failures: 1, visits: 1 };
    let reverted = Counters { starts: 1, failures: 1, ..Counters::default() };
    let started = Counters { starts: 1, ..Counters::default() };
    let expected = vec![
        None,
        None,
        Some(started),
        Some(reverted),
        Some(reverted),
        Some(Counters { starts: 2, ..reverted }),
        Some(up),
    ];
    assert_eq!(fresh.0, expected);
    assert_eq!(fresh.1, StatsSnapshot { notifications: 7, vetoes: 0, anomalies: 0 });
    for layout in [Layout::NeighbourOnline, Layout::NeighbourVetoed] {
        assert_eq!(run_on_layout(layout), fresh, "{layout:?} differs from a fresh table");
    }
}
