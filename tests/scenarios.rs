//! Every scenario of `processor-change-semantics.md`, run through the real
//! load → notify → unload code against the simulated kernel.
// Not yet ported to the new workspace on this branch (revert on merge).
#![cfg(any())]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{assert_clean, assert_online_exactly, delivered};
use procnotify::notify::Kind;
use procnotify::sim::{Config, HotAdd, KernelEvent, NotifyContext, Refusal, SimKernel, SimOs};
use procnotify::{Driver, DriverCell, MAX_PROCESSORS, NtStatus, ProcNumber, SlotState};

const START: u32 = Kind::ADD_START;
const COMPLETE: u32 = Kind::ADD_COMPLETE;
const FAILURE: u32 = Kind::ADD_FAILURE;
const OK: u32 = 0;
const ACCESS_DENIED: NtStatus = NtStatus::from_bits(0xC000_0022);

fn load(kernel: &SimKernel) -> Driver<SimOs> {
    Driver::load(SimOs::new(kernel)).expect("load succeeds")
}

/// The registration id of procnotify's callback (the last one linked).
fn driver_registration(kernel: &SimKernel) -> u64 {
    kernel
        .kernel_events()
        .iter()
        .rev()
        .find_map(|event| match event {
            KernelEvent::RegisterBegin { registration, add_existing: true } => Some(*registration),
            _ => None,
        })
        .expect("procnotify registered")
}

// ---- registration with KE_PROCESSOR_CHANGE_ADD_EXISTING

fn boot_and_load(processors: u32) {
    let kernel = SimKernel::boot(Config::new(processors, MAX_PROCESSORS));
    let driver = load(&kernel);
    let id = driver_registration(&kernel);

    // Steps 2-5: AddStart for 0..n in order, then AddComplete for 0..n, all
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
    let allocated = driver.context().table().allocated_slots();
    assert!(allocated >= processors && allocated <= 2 * processors, "{allocated} slots for {processors}");

    // The DPC queued at each AddComplete reached its processor's own slot.
    kernel.flush_dpcs();
    for slot in driver.context().table().slots().take(processors as usize) {
        let snapshot = slot.snapshot();
        assert_eq!((snapshot.starts, snapshot.completes, snapshot.failures, snapshot.visits), (1, 1, 0, 1));
    }
    assert_eq!(driver.context().stats().missed_visits, 0);

    driver.unload();
    assert_eq!(kernel.kernel_events().last(), Some(&KernelEvent::Deregistered { registration: id }));
    assert_clean(&kernel);
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
    let slot = driver.context().table().get(129).expect("slot 129").snapshot();
    assert_eq!(slot.proc_number, ProcNumber { group: 2, number: 1 });
    driver.unload();
    assert_clean(&kernel);
}

/// Step 6: AddStart fails at k → unregister, AddFailure for 0..k-1 (not k),
/// NULL; the driver returns the recorded status and leaves nothing behind.
fn registration_fails_at(processors: u32, k: u32) {
    let kernel = SimKernel::boot(Config::new(processors, processors));
    // Slot payloads are initialised once per processor, in index order.
    kernel.fail_payload_init(u64::from(k) + 1);
    let status = Driver::load(SimOs::new(&kernel)).err().expect("load fails");
    assert_eq!(status, NtStatus::INSUFFICIENT_RESOURCES, "k={k}");

    let id = driver_registration(&kernel);
    let mut expected: Vec<_> = (0..=k).map(|i| (START, i, OK, false)).collect();
    expected.extend((0..k).map(|i| (FAILURE, i, NtStatus::INSUFFICIENT_RESOURCES.bits(), false)));
    assert_eq!(delivered(&kernel, id), expected, "k={k}");
    let events = kernel.kernel_events();
    assert!(events.contains(&KernelEvent::Vetoed { registration: id, status: NtStatus::INSUFFICIENT_RESOURCES }));
    assert_eq!(events.last(), Some(&KernelEvent::RegisterReturned { registration: id, handle: false }));
    assert_clean(&kernel);
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

#[test]
fn registration_failing_when_a_segment_cannot_be_allocated() {
    // Allocation 1 is the context; 2.. are segments 0, 1, 2 (processors 0, 1, 2-3).
    for (attempt, first_failing_processor) in [(2_u64, 0_u32), (3, 1), (4, 2)] {
        let kernel = SimKernel::boot(Config::new(4, 4));
        kernel.pool().fail_attempt(attempt);
        let status = Driver::load(SimOs::new(&kernel)).err().expect("load fails");
        assert_eq!(status, NtStatus::INSUFFICIENT_RESOURCES);
        let id = driver_registration(&kernel);
        let failures = delivered(&kernel, id).iter().filter(|d| d.0 == FAILURE).count();
        assert_eq!(failures, first_failing_processor as usize, "attempt {attempt}");
        assert_clean(&kernel);
    }
}

#[test]
fn context_allocation_failure_fails_load_before_registering() {
    let kernel = SimKernel::boot(Config::new(4, 4));
    kernel.pool().fail_attempt(1);
    assert_eq!(Driver::load(SimOs::new(&kernel)).err(), Some(NtStatus::INSUFFICIENT_RESOURCES));
    assert!(kernel.kernel_events().is_empty(), "nothing registered");
    assert_clean(&kernel);
}

#[test]
fn null_registration_without_recorded_status_is_unsuccessful() {
    let kernel = SimKernel::boot(Config::new(4, 4));
    kernel.fail_next_register();
    assert_eq!(Driver::load(SimOs::new(&kernel)).err(), Some(NtStatus::UNSUCCESSFUL));
    assert_clean(&kernel);
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
    assert_eq!(driver.context().table().get(2).map(|s| s.snapshot().visits), Some(1));
    driver.unload();
    assert_clean(&kernel);
}

#[test]
fn hal_start_failure_reverts_and_the_next_add_reuses_the_index() {
    let kernel = SimKernel::boot(Config::new(4, 8));
    let driver = load(&kernel);
    kernel.fail_next_start(NtStatus::UNSUCCESSFUL);
    assert_eq!(kernel.hot_add(), HotAdd::Failed { index: 4, status: NtStatus::UNSUCCESSFUL });
    assert_eq!(kernel.processor_count(), 4, "a failed add leaves the count unchanged");
    let slot = driver.context().table().get(4).expect("slot allocated at AddStart").snapshot();
    assert_eq!((slot.state, slot.starts, slot.failures), (SlotState::Vacant, 1, 1));
    assert_online_exactly(&driver, 4);

    assert_eq!(kernel.hot_add(), HotAdd::Added(4), "the index is reused");
    let slot = driver.context().table().get(4).expect("slot").snapshot();
    assert_eq!((slot.state, slot.starts, slot.completes, slot.failures), (SlotState::Online, 2, 1, 1));
    assert_online_exactly(&driver, 5);
    driver.unload();
    assert_clean(&kernel);
}

fn vetoing_driver(kernel: &SimKernel, index: u32) -> procnotify::sim::Handle {
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
    assert_online_exactly(&driver, 4);
    assert_eq!(kernel.hot_add(), HotAdd::Added(4));
    assert_online_exactly(&driver, 5);
    driver.unload();
    kernel.deregister(other);
    assert_clean(&kernel);
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
    let slot = driver.context().table().get(4).expect("slot").snapshot();
    assert_eq!((slot.state, slot.starts, slot.failures), (SlotState::Vacant, 1, 1));
    assert_eq!(kernel.hot_add(), HotAdd::Added(4));
    assert_online_exactly(&driver, 5);
    driver.unload();
    kernel.deregister(other);
    assert_clean(&kernel);
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
    assert!(driver.context().table().get(4).is_none(), "no segment was published");
    assert_eq!(driver.context().stats().vetoes, 1);
    assert_eq!(kernel.hot_add(), HotAdd::Added(4));
    assert_online_exactly(&driver, 5);
    driver.unload();
    kernel.deregister(other);
    assert_clean(&kernel);
}

#[test]
fn adds_are_refused_at_the_maximum_without_notifications() {
    let kernel = SimKernel::boot(Config::new(2, 3));
    let driver = load(&kernel);
    assert_eq!(kernel.hot_add(), HotAdd::Added(2));
    kernel.clear_events();
    assert_eq!(kernel.hot_add(), HotAdd::Refused(Refusal::AtMaximum));
    assert_eq!(kernel.kernel_events(), vec![KernelEvent::HotAddRefused { refusal: Refusal::AtMaximum }]);
    kernel.fail_next_prepare();
    driver.unload();
    assert_clean(&kernel);
}

#[test]
fn prepare_failure_and_unsupported_platform_deliver_nothing() {
    let kernel = SimKernel::boot(Config::new(2, 4));
    let driver = load(&kernel);
    kernel.fail_next_prepare();
    kernel.clear_events();
    assert_eq!(kernel.hot_add(), HotAdd::Refused(Refusal::PrepareFailed));
    assert_eq!(kernel.kernel_events().len(), 1);
    assert_eq!(kernel.hot_add(), HotAdd::Added(2));
    driver.unload();
    assert_clean(&kernel);

    let mut config = Config::new(2, 4);
    config.dynamic_partitioning = false;
    let kernel = SimKernel::boot(config);
    let driver = load(&kernel);
    assert_eq!(kernel.hot_add(), HotAdd::Refused(Refusal::NotSupported));
    assert_online_exactly(&driver, 2);
    driver.unload();
    assert_clean(&kernel);
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
    assert_clean(&kernel);
}

#[test]
fn a_reported_maximum_past_2048_is_clamped_and_logged() {
    let mut config = Config::new(4, 8);
    config.reported_max = 5000;
    let kernel = SimKernel::boot(config);
    let driver = load(&kernel);
    assert_eq!(driver.context().table().capacity(), MAX_PROCESSORS);
    assert!(kernel.log_lines().iter().any(|l| l.contains("clamped to 2048")));
    driver.unload();
    assert_clean(&kernel);
}

#[test]
fn code_on_a_new_processor_finds_its_state_before_add_complete() {
    let kernel = SimKernel::boot(Config::new(1, 4));
    // A driver called before procnotify: its AddComplete callback runs after
    // the HAL started the processor but before procnotify's AddComplete.
    let context_address = Arc::new(AtomicUsize::new(0));
    let observed = Arc::new(Mutex::new(Vec::new()));
    let (address, seen) = (Arc::clone(&context_address), Arc::clone(&observed));
    let probe_kernel = kernel.clone();
    let other = kernel.register_other_driver(Box::new(move |change| {
        let address = address.load(Ordering::Acquire);
        if change.state == COMPLETE && address != 0 {
            assert!(probe_kernel.is_running(change.nt_number));
            // SAFETY: the address is the loaded driver's context, which lives
            // until the driver is unloaded after this test's hot-adds.
            let context = unsafe { &*(address as *const procnotify::Context<SimOs>) };
            let snapshot = SimKernel::run_on(change.nt_number, || {
                let slot = context.table().get(SimKernel::current_processor()).expect("own slot");
                slot.visit();
                assert!(slot.payload().is_some(), "payload initialised at AddStart");
                slot.snapshot()
            });
            seen.lock().unwrap().push(snapshot);
        }
        NtStatus::SUCCESS
    }));
    let driver = load(&kernel);
    context_address.store(std::ptr::from_ref(driver.context()) as usize, Ordering::Release);
    assert_eq!(kernel.hot_add(), HotAdd::Added(1));
    let snapshots = observed.lock().unwrap().clone();
    assert_eq!(snapshots.len(), 1);
    assert_eq!(snapshots[0].state, SlotState::Starting);
    assert_eq!(snapshots[0].proc_number, ProcNumber::dense(1));
    assert_eq!(snapshots[0].visits, 1);
    driver.unload();
    kernel.deregister(other);
    assert_clean(&kernel);
}

// ---- deregistration and unload

#[test]
fn unload_after_adds_frees_everything_and_deregisters_first() {
    let kernel = SimKernel::boot(Config::new(3, 40));
    let driver = load(&kernel);
    for index in 3..40 {
        assert_eq!(kernel.hot_add(), HotAdd::Added(index));
    }
    assert!(kernel.pool().stats().live > 0);
    driver.unload();
    let events = kernel.kernel_events();
    let deregistered = events.iter().position(|e| matches!(e, KernelEvent::Deregistered { .. })).unwrap();
    assert_eq!(deregistered, events.len() - 1, "nothing after deregistration");
    let logs = kernel.log_lines();
    let freeing = logs.iter().position(|l| l.contains("freeing")).unwrap();
    let deregistering = logs.iter().position(|l| l.contains("deregistering")).unwrap();
    assert!(deregistering < freeing);
    assert_clean(&kernel);
}

#[test]
fn deregistration_waits_for_a_running_callback() {
    let kernel = SimKernel::boot(Config::new(2, 4));
    let driver = load(&kernel);
    let gate = kernel.hold_next_callback();
    std::thread::scope(|scope| {
        let adder = scope.spawn(|| kernel.hot_add());
        gate.wait_entered();
        let unloader = scope.spawn(move || driver.unload());
        while kernel.deregistrations_waiting() == 0 {
            std::thread::yield_now();
        }
        // Deregistration is blocked on the held AddStart callback.
        assert!(!unloader.is_finished());
        gate.release();
        unloader.join().unwrap();
        // The add went on without procnotify after deregistration.
        assert_eq!(adder.join().unwrap(), HotAdd::Added(2));
    });
    let events = kernel.kernel_events();
    let deregistered = events.iter().position(|e| matches!(e, KernelEvent::Deregistered { .. })).unwrap();
    let held =
        events.iter().position(|e| matches!(e, KernelEvent::Callback { change, .. } if change.nt_number == 2)).unwrap();
    assert!(held < deregistered);
    assert_clean(&kernel);
}

// ---- bad input: defined, logged, corrupts nothing

fn inject(kernel: &SimKernel, state: u32, index: u32, status: NtStatus) -> NtStatus {
    let change = NotifyContext { state, nt_number: index, status, proc_number: ProcNumber::dense(index) };
    kernel.inject(change)[0]
}

fn last_log(kernel: &SimKernel) -> String {
    kernel.log_lines().last().cloned().unwrap_or_default()
}

#[test]
fn unknown_state_is_ignored_and_logged() {
    let kernel = SimKernel::boot(Config::new(2, 4));
    let driver = load(&kernel);
    assert_eq!(inject(&kernel, 7, 1, NtStatus::SUCCESS), NtStatus::SUCCESS);
    assert_eq!(
        last_log(&kernel),
        "procnotify: unknown-state-7 index=1 group=0 number=1 status=0x00000000 outcome=ignored(unknown-state=7)"
    );
    assert_online_exactly(&driver, 2);
    assert_eq!(driver.context().stats().anomalies, 1);
    driver.unload();
    assert_clean(&kernel);
}

#[test]
fn indices_at_or_past_the_maximum() {
    let kernel = SimKernel::boot(Config::new(2, 4));
    let driver = load(&kernel);
    // AddStart for a processor we could hold no state for is vetoed.
    assert_eq!(inject(&kernel, START, 4, NtStatus::SUCCESS), NtStatus::INVALID_PARAMETER);
    assert!(last_log(&kernel).ends_with("outcome=vetoed(0xC000000D)"));
    for state in [COMPLETE, FAILURE] {
        assert_eq!(inject(&kernel, state, u32::MAX, NtStatus::SUCCESS), NtStatus::SUCCESS);
        assert!(last_log(&kernel).ends_with("outcome=ignored(index-out-of-range)"));
    }
    assert_online_exactly(&driver, 2);
    assert_eq!(driver.context().table().allocated_slots(), 2);
    driver.unload();
    assert_clean(&kernel);
}

#[test]
fn notifications_out_of_order() {
    let kernel = SimKernel::boot(Config::new(2, 8));
    let driver = load(&kernel);
    let table = driver.context().table();

    // AddComplete for an index whose AddStart was never seen: adopted.
    assert_eq!(inject(&kernel, COMPLETE, 5, NtStatus::SUCCESS), NtStatus::SUCCESS);
    assert!(last_log(&kernel).ends_with("outcome=adopted"));
    assert_eq!(table.get(5).unwrap().state(), SlotState::Online);

    // Duplicate AddComplete, AddStart and AddFailure for an online processor.
    for state in [COMPLETE, START, FAILURE] {
        assert_eq!(inject(&kernel, state, 1, NtStatus::UNSUCCESSFUL), NtStatus::SUCCESS);
        assert!(last_log(&kernel).ends_with("outcome=ignored(already-online)"), "{}", last_log(&kernel));
        assert_eq!(table.get(1).unwrap().state(), SlotState::Online);
    }

    // AddFailure for an index never started.
    assert_eq!(inject(&kernel, FAILURE, 6, NtStatus::UNSUCCESSFUL), NtStatus::SUCCESS);
    assert!(last_log(&kernel).ends_with("outcome=ignored(not-starting)"));

    // AddStart twice: restarted, still starting; then a failure reverts it.
    assert_eq!(inject(&kernel, START, 3, NtStatus::SUCCESS), NtStatus::SUCCESS);
    assert_eq!(inject(&kernel, START, 3, NtStatus::SUCCESS), NtStatus::SUCCESS);
    assert!(last_log(&kernel).ends_with("outcome=restarted"));
    assert_eq!(table.get(3).unwrap().state(), SlotState::Starting);
    assert_eq!(inject(&kernel, FAILURE, 3, NtStatus::UNSUCCESSFUL), NtStatus::SUCCESS);
    assert_eq!(table.get(3).unwrap().state(), SlotState::Vacant);

    assert_eq!(driver.context().present(), 3); // 0, 1 and the adopted 5
    driver.unload();
    assert_clean(&kernel);
}

#[test]
fn operation_status_is_written_only_to_veto_add_start() {
    let kernel = SimKernel::boot(Config::new(1, 4));
    let driver = load(&kernel);
    let mut vetoes = 0;
    for state in 0..5 {
        for index in [0, 1, 3, 4, 100] {
            let status = inject(&kernel, state, index, NtStatus::UNSUCCESSFUL);
            if status != NtStatus::SUCCESS {
                assert_eq!(state, START, "only AddStart may be vetoed");
                vetoes += 1;
            }
        }
    }
    assert_eq!(vetoes, 2, "AddStart for 4 and 100 (past the maximum of 4)");
    driver.unload();
    assert_clean(&kernel);
}

#[test]
fn concurrent_callbacks_violating_serialisation_corrupt_nothing() {
    let kernel = SimKernel::boot(Config::new(1, 16));
    let driver = load(&kernel);
    let context = driver.context();
    let notification = |state, index| procnotify::RawNotification {
        state,
        index,
        status: NtStatus::SUCCESS,
        proc_number: ProcNumber::dense(index),
    };
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..2_u32)
            .map(|thread| {
                scope.spawn(move || {
                    for round in 0..500_u32 {
                        let index = 1 + (round + thread) % 15;
                        let _ = context.on_notification(notification(START, index));
                        let last = if round % 2 == 0 { COMPLETE } else { FAILURE };
                        let _ = context.on_notification(notification(last, index));
                    }
                })
            })
            .collect();
        // Joined explicitly (pthread_join), which ThreadSanitizer sees.
        for thread in threads {
            thread.join().unwrap();
        }
    });
    let stats = context.stats();
    assert_eq!(stats.notifications, 2000 + 2); // + boot's AddStart/AddComplete
    for slot in context.table().slots() {
        let s = slot.snapshot();
        assert_eq!(s.index, slot.index());
        if s.state != SlotState::Vacant {
            assert_eq!(s.proc_number, ProcNumber::dense(s.index));
        }
    }
    driver.unload();
    assert_clean(&kernel);
}

#[test]
fn driver_cell_load_unload_and_failed_load() {
    let cell = DriverCell::<SimOs>::new();
    assert!(!cell.unload(), "unload with nothing loaded is a no-op");

    let kernel = SimKernel::boot(Config::new(2, 2));
    kernel.fail_payload_init(2);
    assert_eq!(cell.load(SimOs::new(&kernel)), NtStatus::INSUFFICIENT_RESOURCES);
    assert!(!cell.unload(), "a failed load leaves nothing to unload");
    assert_clean(&kernel);

    let kernel = SimKernel::boot(Config::new(2, 2));
    assert_eq!(cell.load(SimOs::new(&kernel)), NtStatus::SUCCESS);
    assert_eq!(cell.load(SimOs::new(&kernel)), NtStatus::DEVICE_BUSY, "already loaded");
    assert_eq!(cell.with_context(procnotify::Context::present), Some(2));
    assert!(cell.unload());
    assert_eq!(cell.with_context(procnotify::Context::present), None);
    assert_clean(&kernel);
}

#[test]
fn a_callback_with_a_freed_context_is_caught_by_the_simulator() {
    // Guards the guard: a driver that freed its context before deregistering
    // would be called with a dangling pointer. The simulator refuses the call
    // and records the use after free.
    fn callback(_: *mut std::ffi::c_void, _: &NotifyContext, _: &mut NtStatus) {
        panic!("must not be called with a freed context");
    }
    let kernel = SimKernel::boot(Config::new(1, 2));
    let layout = std::alloc::Layout::new::<u64>();
    let memory = procnotify::os::PoolAllocator::allocate(kernel.pool(), layout).unwrap();
    let handle = kernel.register(callback, memory.as_ptr().cast(), 0).unwrap();
    // SAFETY: allocated just above with this layout.
    unsafe { procnotify::os::PoolAllocator::deallocate(kernel.pool(), memory, layout) };
    assert_eq!(kernel.hot_add(), HotAdd::Added(1));
    assert_eq!(kernel.violations().len(), 2, "AddStart and AddComplete both caught");
    kernel.deregister(handle);
}
