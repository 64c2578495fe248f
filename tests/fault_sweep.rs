//! Fault-injection sweep, in the spirit of Driver Verifier's low-resources
//! simulation and Linux's CPU-hotplug failure injection: every allocation
//! point failed once in turn and from there on, an `AddStart` veto (by
//! procnotify itself, by a driver before it, by a driver after it), a
//! processor start failure and a preparation failure at every position, for a
//! load with 1, 4, 64 and 2048 processors and for sequences of hot-adds.
//!
//! Allocation points of the current layout: at load, the table's index (one
//! allocation for every possible processor) and the context, both before
//! registering; then one per slot segment, made at the first `AddStart`
//! inside it. A slot is linked only once its value is initialised.
//!
//! Every run asserts: no panic; the status the caller sees is the injected
//! one; the fault was really hit; nothing leaked, nothing freed twice, no
//! callback or DPC after free (the simulator accounts every byte); the table's
//! states and procnotify's per-processor counters match the notifications the
//! kernel delivered (derived independently from `kernel_events()`); and
//! unload is clean. The test prints one line, `fault sweep: N points`, and
//! checks N against the count its loops plan:
//! `cargo test --test fault_sweep -- --nocapture`.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use common::{COMPLETE, FAILURE, START, assert_clean, callbacks, expected_from_trace, procnotify_registration};
use procnotify_core::monitor::Counters;
use procnotify_core::{MAX_PROCESSORS, NtStatus, SlotState};
use procnotify_sim::{Config, HotAdd, KernelEvent, Refusal, SimDriver, SimKernel, SimOs};

const INSUFFICIENT: NtStatus = NtStatus::INSUFFICIENT_RESOURCES;

/// Load sizes swept.
const LOAD_SIZES: [u32; 4] = [1, 4, 64, 2048];

/// Fault points: those a sweep planned from its loops, and those its runs
/// showed were really hit.
#[derive(Clone, Copy, Debug, Default)]
struct Points {
    planned: u64,
    hit: u64,
}

impl Points {
    fn add(&mut self, other: Self) {
        self.planned += other.planned;
        self.hit += other.hit;
    }

    fn run(&mut self, hit: bool) {
        self.hit += u64::from(hit);
    }
}

// ------------------------------------------------------------------ oracles

/// The loaded driver's table holds exactly the states, and each value exactly
/// the counters, that the notifications delivered to it imply.
fn assert_table_matches_events(kernel: &SimKernel, driver: &SimDriver, what: &str) {
    kernel.flush_dpcs();
    let events = kernel.kernel_events();
    let registration = procnotify_registration(&events).expect("procnotify registered");
    let expected = expected_from_trace(&events, registration);
    let table = driver.context().table();
    for index in 0..table.capacity() {
        let slot = table.get(index);
        let wanted = expected.get(&index).copied().unwrap_or_default();
        let actual = slot.map_or(SlotState::Vacant, procnotify_core::Slot::state);
        assert_eq!(actual, wanted.state.unwrap_or(SlotState::Vacant), "{what}: slot {index}");
        let counters = slot.map_or(Counters::default(), |slot| slot.value().counters());
        assert_eq!(counters, wanted.counters, "{what}: counters of {index}");
        if let Some(slot) = slot {
            assert_eq!((slot.index(), slot.value().index()), (index, index), "{what}");
        }
    }
}

/// After a failed registration: the register call returned NULL, and every
/// processor whose `AddStart` procnotify accepted also saw `AddFailure` with
/// the failing status; no `AddComplete` was delivered. Returns the index whose
/// `AddStart` procnotify vetoed, if any.
fn assert_failed_registration(kernel: &SimKernel, status: NtStatus, what: &str) -> Option<u32> {
    let events = kernel.kernel_events();
    let registration = procnotify_registration(&events)?;
    assert!(
        events.contains(&KernelEvent::RegisterReturned { registration, handle: false }),
        "{what}: register returned a handle"
    );
    let mut accepted = Vec::new();
    let mut failed = Vec::new();
    let mut vetoed = None;
    for (change, veto) in callbacks(&events, registration) {
        match change.state {
            START if veto => assert!(vetoed.replace(change.nt_number).is_none(), "{what}: two vetoes"),
            START => accepted.push(change.nt_number),
            COMPLETE => panic!("{what}: AddComplete during a failed registration"),
            FAILURE => {
                assert_eq!(change.status, status, "{what}: AddFailure status");
                failed.push(change.nt_number);
            }
            _ => {}
        }
    }
    assert_eq!(accepted, failed, "{what}: every accepted AddStart must see AddFailure");
    let present =
        expected_from_trace(&events, registration).values().filter(|e| e.state != Some(SlotState::Vacant)).count();
    assert_eq!(present, 0, "{what}: processors left present");
    vetoed
}

// ------------------------------------------------------------------ load

/// A clean load: how many allocation attempts it makes.
fn clean_load(processors: u32) -> u64 {
    let kernel = SimKernel::boot(Config::new(processors, MAX_PROCESSORS));
    let driver = SimOs::load_monitor(&kernel).expect("clean load");
    let attempts = kernel.pool().stats().attempts;
    assert_table_matches_events(&kernel, &driver, "clean load");
    assert_eq!(driver.context().present(), processors);
    driver.unload();
    assert_clean(&kernel, "clean load");
    attempts
}

/// Loads with `inject` applied first; the load must fail with `status` and
/// leave nothing behind. Returns the kernel for the caller to check the fault
/// was hit.
fn failing_load(processors: u32, status: NtStatus, what: &str, inject: impl FnOnce(&SimKernel)) -> SimKernel {
    let kernel = SimKernel::boot(Config::new(processors, MAX_PROCESSORS));
    inject(&kernel);
    let result = SimOs::load_monitor(&kernel);
    assert_eq!(result.as_ref().err(), Some(&status), "{what}: load result");
    drop(result);
    assert_clean(&kernel, what);
    kernel
}

fn load_sweep(processors: u32) -> Points {
    let attempts = clean_load(processors);
    // Every allocation point once, both ways; an AddStart veto at every
    // position; the kernel's own registration failure.
    let mut points = Points { planned: 2 * attempts + u64::from(processors) + 1, hit: 0 };
    for ordinal in 1..=attempts {
        for from_on in [false, true] {
            let what = format!("load({processors}) allocation #{ordinal} fails (from on: {from_on})");
            let kernel = failing_load(processors, INSUFFICIENT, &what, |k| {
                if from_on { k.pool().fail_from(ordinal) } else { k.pool().fail_attempt(ordinal) }
            });
            let vetoed = assert_failed_registration(&kernel, INSUFFICIENT, &what);
            // Ordinals 1 and 2 (index, context) fail before registering.
            assert_eq!(vetoed.is_none(), ordinal <= 2, "{what}: vetoed {vetoed:?}");
            points.run(kernel.pool().stats().failures_injected >= 1);
        }
    }
    // procnotify's own veto at every position: its DPC payload for processor
    // k cannot be initialised (payloads are made once per processor, in order).
    for position in 0..processors {
        let what = format!("load({processors}) payload of processor {position} fails");
        let kernel = failing_load(processors, INSUFFICIENT, &what, |k| k.fail_payload_init(u64::from(position) + 1));
        points.run(assert_failed_registration(&kernel, INSUFFICIENT, &what) == Some(position));
    }
    // The kernel fails the registration itself: NULL, no callback, nothing recorded.
    let kernel = failing_load(processors, NtStatus::UNSUCCESSFUL, "registration fails", SimKernel::fail_next_register);
    points.run(kernel.kernel_events() == [KernelEvent::RegisterReturned { registration: 1, handle: false }]);
    points
}

// ------------------------------------------------------------------ hot-add sequences

/// What a hot-add sequence is made to suffer at one position.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Another driver, registered before procnotify, vetoes `AddStart`.
    VetoBefore,
    /// Another driver, registered after procnotify, vetoes `AddStart`.
    VetoAfter,
    /// The HAL fails to start the processor.
    StartFailure,
    /// procnotify's DPC payload initialisation fails (its own veto).
    PayloadInit,
    /// The kernel fails to prepare the processor (no notifications).
    Prepare,
}

const FAULTS: [Fault; 5] =
    [Fault::VetoBefore, Fault::VetoAfter, Fault::StartFailure, Fault::PayloadInit, Fault::Prepare];

/// Another driver that vetoes the `AddStart` of the add numbered `at` (0-based
/// count of the AddStarts it sees) with `status`.
fn veto_driver(kernel: &SimKernel, arm: Arc<Mutex<Option<(u32, NtStatus)>>>) {
    let seen = AtomicU32::new(0);
    let _handle = kernel.register_other_driver(Box::new(move |change| {
        if change.state != START {
            return NtStatus::SUCCESS;
        }
        let n = seen.fetch_add(1, Ordering::Relaxed);
        match *arm.lock().unwrap() {
            Some((at, status)) if at == n => status,
            _ => NtStatus::SUCCESS,
        }
    }));
}

/// How a sequence's one fault is planned.
#[derive(Clone, Copy, Debug)]
enum Plan {
    /// The `n`-th allocation attempt after the load fails.
    Alloc(u64),
    /// Every allocation attempt from the `n`-th after the load on fails
    /// (low resources): the add that needs memory fails, a retry fails at
    /// the same index, then memory comes back.
    AllocFrom(u64),
    /// `fault` at the add at `position` (0-based add attempt).
    At(Fault, u32),
    /// Nothing: the clean run.
    None,
}

/// Plants the parts of `plan` that must exist before or right after the load.
fn plant(kernel: &SimKernel, plan: Plan, status: NtStatus, boot: u32, load_attempts: Option<u64>) {
    let arm = Arc::new(Mutex::new(None));
    match (plan, load_attempts) {
        (Plan::At(Fault::VetoBefore, position), None) | (Plan::At(Fault::VetoAfter, position), Some(_)) => {
            veto_driver(kernel, Arc::clone(&arm));
            *arm.lock().unwrap() = Some((position, status));
        }
        (Plan::At(Fault::PayloadInit, position), Some(_)) => {
            kernel.fail_payload_init(u64::from(boot) + u64::from(position) + 1);
        }
        (Plan::Alloc(n), Some(load_attempts)) => kernel.pool().fail_attempt(load_attempts + n),
        (Plan::AllocFrom(n), Some(load_attempts)) => kernel.pool().fail_from(load_attempts + n),
        _ => {}
    }
}

/// Boots `boot`, loads, adds until `target` processors run. Returns the
/// allocation attempts the adds made and whether the planned fault was hit
/// where it was planned. Asserts everything the module documentation lists.
fn run_sequence(boot: u32, target: u32, plan: Plan) -> (u64, bool) {
    let what = format!("hot-add {boot}->{target} {plan:?}");
    let kernel = SimKernel::boot(Config::new(boot, target));
    let status = match plan {
        Plan::At(_, position) => NtStatus::from_bits(0xC0A0_0000 | position),
        _ => INSUFFICIENT,
    };
    plant(&kernel, plan, status, boot, None);
    let driver = SimOs::load_monitor(&kernel).expect("load");
    let load_attempts = kernel.pool().stats().attempts;
    plant(&kernel, plan, status, boot, Some(load_attempts));
    let mut position = 0;
    let mut faulted = None;
    while kernel.processor_count() < target {
        if let Plan::At(fault, at) = plan
            && at == position
        {
            match fault {
                // Applies to the next add whose AddStarts all succeed: this one.
                Fault::StartFailure => kernel.fail_next_start(status),
                Fault::Prepare => kernel.fail_next_prepare(),
                _ => {}
            }
        }
        let index = kernel.processor_count();
        let result = kernel.hot_add();
        match result {
            HotAdd::Added(added) => assert_eq!(added, index, "{what}"),
            HotAdd::Failed { index: failed, status: seen } => {
                assert_eq!(failed, index, "{what}: failed index");
                let expected = match plan {
                    Plan::Alloc(_) | Plan::AllocFrom(_) | Plan::At(Fault::PayloadInit, _) => INSUFFICIENT,
                    _ => status,
                };
                assert_eq!(seen, expected, "{what}: the status the caller sees");
                assert!(faulted.replace(position).is_none(), "{what}: second failure {result:?}");
                if let Plan::AllocFrom(_) = plan {
                    // Still no memory: the retry fails at the same index.
                    assert_eq!(kernel.hot_add(), HotAdd::Failed { index, status: INSUFFICIENT }, "{what}: retry");
                    kernel.pool().clear_faults();
                }
            }
            HotAdd::Refused(refusal) => {
                assert_eq!(refusal, Refusal::PrepareFailed, "{what}");
                assert!(matches!(plan, Plan::At(Fault::Prepare, _)), "{what}: refused {refusal:?}");
                assert!(faulted.replace(position).is_none(), "{what}: second failure {result:?}");
            }
        }
        position += 1;
        assert!(position <= 2 * target, "{what}: no progress");
    }
    // The fault hit where it was planned (allocation faults hit wherever the
    // table grows).
    let hit = match plan {
        Plan::At(_, at) => faulted == Some(at),
        Plan::Alloc(_) => faulted.is_some() && kernel.pool().stats().failures_injected == 1,
        Plan::AllocFrom(_) => faulted.is_some() && kernel.pool().stats().failures_injected == 2,
        Plan::None => faulted.is_none(),
    };
    assert!(hit, "{what}: planned fault not hit where planned ({faulted:?})");
    assert_eq!(kernel.hot_add(), HotAdd::Refused(Refusal::AtMaximum), "{what}");
    assert_table_matches_events(&kernel, &driver, &what);
    assert_eq!(driver.context().present(), target, "{what}: present");
    assert_eq!(kernel.violations(), Vec::<String>::new(), "{what}");
    let attempts = kernel.pool().stats().attempts - load_attempts;
    driver.unload();
    assert_clean(&kernel, &what);
    (attempts, hit)
}

/// Sweeps one sequence: every allocation point (once, and from there on),
/// and every fault kind at each of `positions`.
fn sweep_sequence(boot: u32, target: u32, positions: &[u32]) -> Points {
    let (attempts, _) = run_sequence(boot, target, Plan::None);
    let kinds = FAULTS.len() as u64;
    let mut points = Points { planned: 2 * attempts + positions.len() as u64 * kinds, hit: 0 };
    for n in 1..=attempts {
        points.run(run_sequence(boot, target, Plan::Alloc(n)).1);
        points.run(run_sequence(boot, target, Plan::AllocFrom(n)).1);
    }
    for &position in positions {
        for fault in FAULTS {
            points.run(run_sequence(boot, target, Plan::At(fault, position)).1);
        }
    }
    points
}

/// Every position of short sequences that cross several segment boundaries.
fn hot_add_every_position() -> Points {
    let mut points = Points::default();
    for (boot, target) in [(1, 130), (4, 70), (64, 130)] {
        let positions: Vec<u32> = (0..target - boot).collect();
        points.add(sweep_sequence(boot, target, &positions));
    }
    points
}

/// Positions sampled deterministically in sequences that grow to 2048: every
/// segment boundary and its neighbours, plus a stride, plus the last add.
fn sampled_positions(boot: u32, target: u32) -> Vec<u32> {
    let mut indices: Vec<u32> = (1..=11).flat_map(|k| [(1 << k) - 1, 1 << k, (1 << k) + 1]).collect();
    indices.extend((boot..target).step_by(61));
    indices.push(target - 1);
    let mut positions: Vec<u32> = indices.into_iter().filter(|&i| i >= boot && i < target).map(|i| i - boot).collect();
    positions.sort_unstable();
    positions.dedup();
    positions
}

/// From one processor to the maximum (all allocation points, sampled
/// positions), and the last adds before the maximum (every position).
fn hot_add_to_2048() -> Points {
    let mut points = sweep_sequence(1, MAX_PROCESSORS, &sampled_positions(1, MAX_PROCESSORS));
    points.add(sweep_sequence(2040, MAX_PROCESSORS, &(0..8).collect::<Vec<_>>()));
    points
}

#[test]
fn fault_sweep() {
    // The three parts are independent; run them side by side.
    let parts: Vec<std::thread::JoinHandle<(&str, Points)>> = vec![
        std::thread::spawn(|| {
            let mut points = Points::default();
            for processors in LOAD_SIZES {
                points.add(load_sweep(processors));
            }
            ("load", points)
        }),
        std::thread::spawn(|| ("hot-add every position", hot_add_every_position())),
        std::thread::spawn(|| ("hot-add to 2048", hot_add_to_2048())),
    ];
    let mut total = Points::default();
    let mut detail = Vec::new();
    for part in parts {
        let (name, points) = part.join().expect("a sweep part failed");
        detail.push(format!("{name} {}", points.hit));
        total.add(points);
    }
    println!("fault sweep: {} points ({})", total.hit, detail.join(", "));
    assert!(total.planned > 0);
    assert!(total.hit >= total.planned, "{} of {} planned fault points were hit", total.hit, total.planned);
}
