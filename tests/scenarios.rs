//! The scenarios of `docs/processor-change-semantics.md` for registration
//! (§2) and hot-add (§3, §6), run through the real load → notify → unload
//! code (procnotify-core's engine with procnotify's own `Monitor` hooks)
//! against the simulated kernel. Deregistration and unload are in
//! `unload.rs`, bad input in `bad_input.rs`, a driver's own hooks in
//! `hooks.rs`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{
    COMPLETE, FAILURE, Probe, ProbeFault, START, assert_clean, assert_online_exactly, counters, delivered, load,
    procnotify_registration,
};
use procnotify_core::monitor::Counters;
use procnotify_core::{DriverCell, MAX_PROCESSORS, NtStatus, ProcNumber, SlotState};
use procnotify_sim::{Config, Handle, HotAdd, KernelEvent, NotifyContext, Refusal, SimDriver, SimKernel, SimOs};

const OK: u32 = 0;
const ACCESS_DENIED: NtStatus = NtStatus::ACCESS_DENIED;

/// The registration id of procnotify's callback (the last one linked with
/// `ADD_EXISTING`).
fn driver_registration(kernel: &SimKernel) -> u64 {
    procnotify_registration(&kernel.kernel_events()).expect("procnotify registered")
}

/// What a processor that came up once, cleanly, shows after its DPC ran.
const UP_ONCE: Counters = Counters { starts: 1, completes: 1, failures: 0, visits: 1 };

// ---- registration with KE_PROCESSOR_CHANGE_ADD_EXISTING

fn boot_and_load(processors: u32) {
    let kernel = SimKernel::boot(Config::new(processors, MAX_PROCESSORS));
    let driver = load(&kernel);
    let id = driver_registration(&kernel);

    // Steps 2-6: AddStart for 0..n in order, then AddComplete for 0..n, all
    // before the handle is returned; then the handle.
    let expected: Vec<_> = (0..processors)
        .map(|i| (START, i, OK, false))
        .chain((0..processors).map(|i| (COMPLETE, i, OK, false)))
        .collect();
    assert_eq!(delivered(&kernel, id), expected);
    let events = kernel.kernel_events();
    assert_eq!(events.first(), Some(&KernelEvent::RegisterBegin { registration: id, add_existing: true }));
    assert_eq!(events.last(), Some(&KernelEvent::RegisterReturned { registration: id, handle: true }));

    assert_online_exactly(&driver, processors);
    // Memory follows the processors present: at most twice the slots in use.
    let table = driver.context().table();
    let allocated = table.allocated_slots();
    assert!(allocated >= processors && allocated <= 2 * processors, "{allocated} slots for {processors}");

    // The DPC queued at each AddComplete reached its processor's own value.
    kernel.flush_dpcs();
    for index in 0..processors {
        assert_eq!(counters(&driver, index), Some(UP_ONCE), "processor {index}");
    }
    let stats = driver.context().stats();
    assert_eq!((stats.notifications, stats.vetoes, stats.anomalies), (2 * processors, 0, 0));

    driver.unload();
    assert_eq!(kernel.kernel_events().last(), Some(&KernelEvent::Deregistered { registration: id }));
    assert_clean(&kernel, "boot and load");
}

#[test]
fn boot_with_1_processor() {
    boot_and_load(1);
}

#[test]
fn boot_with_4_processors() {
    boot_and_load(4);
}

#[test]
fn boot_with_64_processors() {
    boot_and_load(64);
}

#[test]
fn boot_with_2048_processors() {
    boot_and_load(2048);
}

#[test]
fn groups_are_reported_group_relative() {
    let kernel = SimKernel::boot(Config::new(130, 130));
    let driver = load(&kernel);
    let slot = driver.context().table().get(129).expect("slot 129");
    assert_eq!(slot.proc_number(), ProcNumber { group: 2, number: 1 });
    assert_eq!(kernel.index_from_number(slot.proc_number()), Some(129));
    driver.unload();
    assert_clean(&kernel, "groups");
}

/// Step 7: AddStart fails at k → the kernel unlinks, AddFailure for 0..k-1
/// (not k) with the failing status, NULL; the driver returns the recorded
/// status and leaves nothing behind.
fn assert_registration_failed_at(kernel: &SimKernel, k: u32, status: NtStatus) {
    let id = driver_registration(kernel);
    let mut expected: Vec<_> = (0..=k).map(|i| (START, i, OK, false)).collect();
    expected.extend((0..k).map(|i| (FAILURE, i, status.bits(), false)));
    assert_eq!(delivered(kernel, id), expected, "k={k}");
    let events = kernel.kernel_events();
    let vetoed = events.iter().position(|e| *e == KernelEvent::Vetoed { registration: id, status }).expect("veto");
    let unlinked = events.iter().position(|e| *e == KernelEvent::Unlinked { registration: id }).expect("unlinked");
    assert!(vetoed < unlinked, "k={k}: unlinked before the AddFailures");
    assert_eq!(events.last(), Some(&KernelEvent::RegisterReturned { registration: id, handle: false }));
}

/// procnotify's own veto: its DPC payload cannot be initialised at k.
fn registration_fails_at(processors: u32, k: u32) {
    let kernel = SimKernel::boot(Config::new(processors, processors));
    // DPC payloads are initialised once per processor, in index order.
    kernel.fail_payload_init(u64::from(k) + 1);
    let status = SimOs::load_monitor(&kernel).err().expect("load fails");
    assert_eq!(status, NtStatus::INSUFFICIENT_RESOURCES, "k={k}");
    assert_registration_failed_at(&kernel, k, status);
    assert_clean(&kernel, &format!("registration failing at {k}"));
}

#[test]
fn registration_failing_at_every_index_of_4() {
    for k in 0..4 {
        registration_fails_at(4, k);
    }
}

#[test]
fn registration_failing_at_every_index_of_64() {
    for k in 0..64 {
        registration_fails_at(64, k);
    }
}

/// The status `DriverEntry` returns is the one the callback recorded, whatever
/// it is: a driver's own hook vetoes processor k with a status of its own,
/// through `init` or through `starting`, and `DriverCell::load` (what
/// `DriverEntry` calls) returns exactly that status.
#[test]
fn driver_entry_returns_the_recorded_status() {
    for k in 0..8 {
        let status = NtStatus::from_bits(0xC0DE_0000 | k);
        for fault in [ProbeFault::InitFails(status), ProbeFault::StartingFails(status)] {
            let kernel = SimKernel::boot(Config::new(8, 8));
            let probe = Probe::new(Some((k, fault)));
            let ledger = probe.ledger();
            let cell = DriverCell::new();
            assert_eq!(cell.load(SimOs::new(&kernel), probe), status, "k={k} {fault:?}");
            assert!(!cell.is_loaded());
            assert_registration_failed_at(&kernel, k, status);
            assert_eq!(ledger.live(), 0, "k={k} {fault:?}: values left behind");
            assert_clean(&kernel, &format!("k={k} {fault:?}"));
        }
    }
}

#[test]
fn registration_failing_when_a_segment_cannot_be_allocated() {
    // Allocation 1 is the table's index, 2 the context (both before
    // registering); 3 is slot segment 0, which holds every processor present
    // at load (their count rounded up to a power of two), allocated at the
    // first AddStart. A load makes no other allocation.
    for boot in 1..=5_u32 {
        let kernel = SimKernel::boot(Config::new(boot, 16));
        let driver = SimOs::load_monitor(&kernel).expect("load");
        assert_eq!(kernel.pool().stats().attempts, 3, "boot {boot}: index, context, one segment");
        assert_eq!(driver.context().table().allocated_slots(), boot.next_power_of_two(), "boot {boot}");
        driver.unload();
        assert_clean(&kernel, &format!("boot {boot}"));

        let kernel = SimKernel::boot(Config::new(boot, 16));
        kernel.pool().fail_attempt(3);
        let status = SimOs::load_monitor(&kernel).err().expect("load fails");
        assert_eq!(status, NtStatus::INSUFFICIENT_RESOURCES);
        assert_eq!(kernel.pool().stats().failures_injected, 1, "boot {boot}: attempt 3 was made");
        assert_registration_failed_at(&kernel, 0, status);
        assert_clean(&kernel, &format!("boot {boot}, attempt 3"));
    }
}

#[test]
fn hot_adds_past_the_first_segment_allocate_doubling_segments() {
    // 3 present at load: segment 0 spans 0..4; hot-adds of 4 and 8 open
    // segments 1 (4..8) and 2 (8..16), one allocation each.
    let kernel = SimKernel::boot(Config::new(3, 16));
    let driver = SimOs::load_monitor(&kernel).expect("load");
    let table = driver.context().table();
    assert_eq!((table.first_segment(), table.allocated_slots()), (4, 4));
    // (index added, allocation attempts since the load's 3, slots allocated)
    let mut observed = vec![];
    for index in 3..9 {
        assert_eq!(kernel.hot_add(), HotAdd::Added(index));
        observed.push((index, kernel.pool().stats().attempts - 3, table.allocated_slots()));
    }
    assert_eq!(observed, vec![(3, 0, 4), (4, 1, 8), (5, 1, 8), (6, 1, 8), (7, 1, 8), (8, 2, 16)]);
    driver.unload();
    assert_clean(&kernel, "hot-adds past the first segment");
}

#[test]
fn index_or_context_allocation_failure_fails_load_before_registering() {
    for attempt in [1, 2] {
        let kernel = SimKernel::boot(Config::new(4, 4));
        kernel.pool().fail_attempt(attempt);
        assert_eq!(SimOs::load_monitor(&kernel).err(), Some(NtStatus::INSUFFICIENT_RESOURCES));
        assert_eq!(kernel.pool().stats().failures_injected, 1, "attempt {attempt} was made");
        assert!(kernel.kernel_events().is_empty(), "nothing registered");
        assert_clean(&kernel, &format!("attempt {attempt}"));
    }
}

#[test]
fn null_registration_without_recorded_status_is_unsuccessful() {
    let kernel = SimKernel::boot(Config::new(4, 4));
    kernel.fail_next_register();
    assert_eq!(SimOs::load_monitor(&kernel).err(), Some(NtStatus::UNSUCCESSFUL));
    assert_eq!(kernel.kernel_events(), vec![KernelEvent::RegisterReturned { registration: 1, handle: false }]);
    assert_clean(&kernel, "NULL registration");
}

#[test]
fn registration_without_add_existing_delivers_nothing() {
    let kernel = SimKernel::boot(Config::new(4, 8));
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let handle = kernel.register_other_driver(Box::new(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
        NtStatus::SUCCESS
    }));
    assert_eq!(calls.load(Ordering::Relaxed), 0);
    assert_eq!(kernel.hot_add(), HotAdd::Added(4));
    assert_eq!(calls.load(Ordering::Relaxed), 2, "AddStart and AddComplete for the new processor");
    kernel.deregister(handle);
}

// ---- hot-add

#[test]
fn hot_add_success_in_order() {
    let kernel = SimKernel::boot(Config::new(2, 4));
    let driver = load(&kernel);
    let id = driver_registration(&kernel);
    kernel.clear_events();
    assert_eq!(kernel.hot_add(), HotAdd::Added(2));
    let events = kernel.kernel_events();
    let change =
        |state| NotifyContext { state, nt_number: 2, status: NtStatus::SUCCESS, proc_number: ProcNumber::dense(2) };
    assert_eq!(
        events,
        vec![
            KernelEvent::HotAddBegin { index: 2 },
            KernelEvent::Callback { registration: id, change: change(START), handle_returned: true },
            KernelEvent::ProcessorStarted { index: 2 },
            KernelEvent::Callback { registration: id, change: change(COMPLETE), handle_returned: true },
        ]
    );
    assert_online_exactly(&driver, 3);
    kernel.flush_dpcs();
    assert_eq!(counters(&driver, 2), Some(UP_ONCE));
    driver.unload();
    assert_clean(&kernel, "hot-add");
}

#[test]
fn hal_start_failure_reverts_and_the_next_add_reuses_the_index() {
    let kernel = SimKernel::boot(Config::new(4, 8));
    let driver = load(&kernel);
    kernel.fail_next_start(NtStatus::UNSUCCESSFUL);
    assert_eq!(kernel.hot_add(), HotAdd::Failed { index: 4, status: NtStatus::UNSUCCESSFUL });
    assert_eq!(kernel.processor_count(), 4, "a failed add leaves the count unchanged");
    let slot = driver.context().table().get(4).expect("slot initialised at AddStart");
    assert_eq!(slot.state(), SlotState::Vacant);
    assert_eq!(counters(&driver, 4), Some(Counters { starts: 1, failures: 1, ..Counters::default() }));
    assert_online_exactly(&driver, 4);
    let allocated = driver.context().table().allocated_slots();

    assert_eq!(kernel.hot_add(), HotAdd::Added(4), "the index is reused");
    assert_eq!(driver.context().table().allocated_slots(), allocated, "and so is its slot");
    kernel.flush_dpcs();
    assert_eq!(counters(&driver, 4), Some(Counters { starts: 2, completes: 1, failures: 1, visits: 1 }));
    assert_online_exactly(&driver, 5);
    driver.unload();
    assert_clean(&kernel, "HAL start failure");
}

fn vetoing_driver(kernel: &SimKernel, index: u32) -> Handle {
    let armed = Mutex::new(true);
    kernel.register_other_driver(Box::new(move |change| {
        let mut armed = armed.lock().unwrap();
        if *armed && change.state == START && change.nt_number == index {
            *armed = false;
            ACCESS_DENIED
        } else {
            NtStatus::SUCCESS
        }
    }))
}

#[test]
fn veto_by_a_driver_called_before_procnotify() {
    let kernel = SimKernel::boot(Config::new(4, 8));
    let other = vetoing_driver(&kernel, 4);
    let driver = load(&kernel);
    let id = driver_registration(&kernel);
    kernel.clear_events();
    assert_eq!(kernel.hot_add(), HotAdd::Failed { index: 4, status: ACCESS_DENIED });
    // procnotify never saw AddStart, but must accept the AddFailure.
    assert_eq!(delivered(&kernel, id), vec![(FAILURE, 4, ACCESS_DENIED.bits(), true)]);
    assert!(kernel.log_lines().iter().any(|l| l.contains("add-failure index=4") && l.contains("not-starting")));
    assert!(driver.context().table().get(4).is_none(), "nothing was created for an add never seen");
    assert_eq!(driver.context().stats().anomalies, 0, "an expected AddFailure is no anomaly");
    assert_online_exactly(&driver, 4);
    assert_eq!(kernel.hot_add(), HotAdd::Added(4));
    assert_online_exactly(&driver, 5);
    kernel.flush_dpcs();
    assert_eq!(counters(&driver, 4), Some(UP_ONCE));
    driver.unload();
    kernel.deregister(other);
    assert_clean(&kernel, "veto before");
}

#[test]
fn veto_by_a_driver_called_after_procnotify() {
    let kernel = SimKernel::boot(Config::new(4, 8));
    let driver = load(&kernel);
    let other = vetoing_driver(&kernel, 4);
    let id = driver_registration(&kernel);
    kernel.clear_events();
    assert_eq!(kernel.hot_add(), HotAdd::Failed { index: 4, status: ACCESS_DENIED });
    assert_eq!(delivered(&kernel, id), vec![(START, 4, OK, true), (FAILURE, 4, ACCESS_DENIED.bits(), true)]);
    assert_eq!(driver.context().table().get(4).map(procnotify_core::Slot::state), Some(SlotState::Vacant));
    assert_eq!(counters(&driver, 4), Some(Counters { starts: 1, failures: 1, ..Counters::default() }));
    assert_eq!(kernel.hot_add(), HotAdd::Added(4));
    assert_online_exactly(&driver, 5);
    driver.unload();
    kernel.deregister(other);
    assert_clean(&kernel, "veto after");
}

#[test]
fn procnotify_vetoes_when_it_cannot_allocate_and_accepts_its_own_failure() {
    // Boot 4: segments 0-2 hold processors 0-3; processor 4 needs segment 3.
    let kernel = SimKernel::boot(Config::new(4, 8));
    let driver = load(&kernel);
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&calls);
    let other = kernel.register_other_driver(Box::new(move |change| {
        seen.lock().unwrap().push((change.state, change.nt_number));
        NtStatus::SUCCESS
    }));
    kernel.pool().fail_next();
    assert_eq!(kernel.hot_add(), HotAdd::Failed { index: 4, status: NtStatus::INSUFFICIENT_RESOURCES });
    // The driver after procnotify never saw AddStart; everyone saw AddFailure.
    assert_eq!(*calls.lock().unwrap(), vec![(FAILURE, 4)]);
    assert!(driver.context().table().get(4).is_none(), "no slot was linked");
    assert_eq!(driver.context().stats().vetoes, 1);
    assert_eq!(driver.context().recorded_status(), Some(NtStatus::INSUFFICIENT_RESOURCES));
    assert_eq!(kernel.hot_add(), HotAdd::Added(4));
    assert_online_exactly(&driver, 5);
    driver.unload();
    kernel.deregister(other);
    assert_clean(&kernel, "own veto");
}

#[test]
fn adds_are_refused_at_the_maximum_without_notifications() {
    let kernel = SimKernel::boot(Config::new(2, 3));
    let driver = load(&kernel);
    assert_eq!(kernel.hot_add(), HotAdd::Added(2));
    kernel.clear_events();
    assert_eq!(kernel.hot_add(), HotAdd::Refused(Refusal::AtMaximum));
    assert_eq!(kernel.kernel_events(), vec![KernelEvent::HotAddRefused { refusal: Refusal::AtMaximum }]);
    assert_online_exactly(&driver, 3);
    driver.unload();
    assert_clean(&kernel, "at the maximum");
}

#[test]
fn prepare_failure_and_unsupported_platform_deliver_nothing() {
    let kernel = SimKernel::boot(Config::new(2, 4));
    let driver = load(&kernel);
    let notifications = driver.context().stats().notifications;
    kernel.fail_next_prepare();
    kernel.clear_events();
    assert_eq!(kernel.hot_add(), HotAdd::Refused(Refusal::PrepareFailed));
    assert_eq!(kernel.kernel_events(), vec![KernelEvent::HotAddRefused { refusal: Refusal::PrepareFailed }]);
    assert_eq!(driver.context().stats().notifications, notifications);
    assert!(driver.context().table().get(2).is_none());
    assert_eq!(kernel.hot_add(), HotAdd::Added(2), "the index was never used");
    driver.unload();
    assert_clean(&kernel, "prepare failure");

    let mut config = Config::new(2, 4);
    config.dynamic_partitioning = false;
    let kernel = SimKernel::boot(config);
    let driver = load(&kernel);
    assert_eq!(kernel.hot_add(), HotAdd::Refused(Refusal::NotSupported));
    assert_online_exactly(&driver, 2);
    driver.unload();
    assert_clean(&kernel, "not supported");
}

#[test]
fn the_2048_processor_limit() {
    let kernel = SimKernel::boot(Config::new(2040, 4096));
    assert_eq!(kernel.config().max, MAX_PROCESSORS, "the simulator caps the partition at 2048");
    let driver = load(&kernel);
    for index in 2040..2048 {
        assert_eq!(kernel.hot_add(), HotAdd::Added(index));
    }
    assert_eq!(kernel.hot_add(), HotAdd::Refused(Refusal::AtMaximum));
    assert_online_exactly(&driver, 2048);
    assert_eq!(driver.context().table().allocated_slots(), 2048);
    driver.unload();
    assert_clean(&kernel, "2048");
}

#[test]
fn a_reported_maximum_past_2048_is_clamped_and_logged() {
    let mut config = Config::new(4, 8);
    config.reported_max = 5000;
    let kernel = SimKernel::boot(config);
    let driver = load(&kernel);
    assert_eq!(driver.context().table().capacity(), MAX_PROCESSORS);
    assert!(kernel.log_lines().iter().any(|l| l.contains("5000 clamped to 2048")));
    driver.unload();
    assert_clean(&kernel, "clamped");
}

#[test]
fn code_on_a_new_processor_finds_its_state_before_add_complete() {
    let kernel = SimKernel::boot(Config::new(1, 4));
    // A driver called before procnotify: its AddComplete callback runs after
    // the HAL started the processor but before procnotify's AddComplete.
    let shared: Arc<Mutex<Option<SimDriver>>> = Arc::new(Mutex::new(None));
    let observed = Arc::new(Mutex::new(Vec::new()));
    let (driver_slot, seen) = (Arc::clone(&shared), Arc::clone(&observed));
    let probe_kernel = kernel.clone();
    let other = kernel.register_other_driver(Box::new(move |change| {
        let guard = driver_slot.lock().unwrap();
        if let Some(driver) = guard.as_ref()
            && change.state == COMPLETE
        {
            assert!(probe_kernel.is_running(change.nt_number));
            let context = driver.context();
            let found = SimKernel::run_on(change.nt_number, || {
                // The reader's path: the current processor's own value.
                let value = context.current().expect("own value before AddComplete");
                let visits = value.visit(context.os());
                let slot = context.table().get(value.index()).expect("own slot");
                (value.index(), slot.state(), slot.proc_number(), visits)
            });
            seen.lock().unwrap().push(found);
        }
        NtStatus::SUCCESS
    }));
    *shared.lock().unwrap() = Some(load(&kernel));
    assert_eq!(kernel.hot_add(), HotAdd::Added(1));
    assert_eq!(*observed.lock().unwrap(), vec![(1, SlotState::Starting, ProcNumber::dense(1), 1)]);
    kernel.deregister(other);
    let driver = shared.lock().unwrap().take().expect("loaded");
    kernel.flush_dpcs();
    assert_eq!(counters(&driver, 1), Some(Counters { visits: 2, ..UP_ONCE }), "early visit plus the DPC's");
    driver.unload();
    assert_clean(&kernel, "code before AddComplete");
}
