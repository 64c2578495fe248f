//! Notifications outside `docs/processor-change-semantics.md` (§7: "anything
//! else is logged and leaves the table as it was"): each gets a defined,
//! logged outcome and corrupts nothing. Delivered through the simulated
//! kernel (`SimKernel::inject`) to procnotify's own driver.

mod common;

use common::{COMPLETE, FAILURE, START, assert_clean, assert_online_exactly, inject, last_log, load};
use procnotify_core::{NotifyState, NtStatus, PoolAllocator, ProcNumber, RawNotification, Sink, SlotState};
use procnotify_sim::{Config, HotAdd, NotifyContext, SimKernel};

#[test]
fn unknown_state_is_ignored_and_logged() {
    let kernel = SimKernel::boot(Config::new(2, 4));
    let driver = load(&kernel);
    assert_eq!(inject(&kernel, 7, 1, NtStatus::SUCCESS), NtStatus::SUCCESS);
    assert_eq!(
        last_log(&kernel),
        "procnotify: unknown-state-7 index=1 group=0 number=1 status=0x00000000(STATUS_SUCCESS) \
         outcome=ignored(unknown-state=7)"
    );
    // Also for an index that was never seen: nothing is created for it.
    assert_eq!(inject(&kernel, u32::MAX, 3, NtStatus::SUCCESS), NtStatus::SUCCESS);
    assert!(driver.context().table().get(3).is_none());
    assert_online_exactly(&driver, 2);
    assert_eq!(driver.context().stats().anomalies, 2);
    driver.unload();
    assert_clean(&kernel, "unknown state");
}

#[test]
fn indices_at_or_past_the_maximum() {
    let kernel = SimKernel::boot(Config::new(2, 4));
    let driver = load(&kernel);
    let allocated = driver.context().table().allocated_slots();
    // AddStart for a processor we could hold no state for is vetoed.
    assert_eq!(inject(&kernel, START, 4, NtStatus::SUCCESS), NtStatus::INVALID_PARAMETER);
    assert!(
        last_log(&kernel).ends_with("outcome=vetoed(0xC000000D(STATUS_INVALID_PARAMETER))"),
        "{}",
        last_log(&kernel)
    );
    for state in [COMPLETE, FAILURE] {
        assert_eq!(inject(&kernel, state, u32::MAX, NtStatus::SUCCESS), NtStatus::SUCCESS);
        assert!(last_log(&kernel).ends_with("outcome=ignored(index-out-of-range)"));
    }
    assert_online_exactly(&driver, 2);
    assert_eq!(driver.context().table().allocated_slots(), allocated, "nothing allocated for them");
    let stats = driver.context().stats();
    assert_eq!((stats.vetoes, stats.anomalies), (1, 2));
    driver.unload();
    assert_clean(&kernel, "past the maximum");
}

#[test]
fn notifications_out_of_order() {
    let kernel = SimKernel::boot(Config::new(2, 8));
    let driver = load(&kernel);
    let table = driver.context().table();

    // AddComplete for an index whose AddStart was never seen: adopted, with
    // its value created then (the processor runs, so it must have one).
    assert_eq!(inject(&kernel, COMPLETE, 5, NtStatus::SUCCESS), NtStatus::SUCCESS);
    assert!(last_log(&kernel).ends_with("outcome=adopted"));
    let adopted = table.get(5).expect("adopted slot");
    assert_eq!((adopted.state(), adopted.value().index()), (SlotState::Online, 5));
    assert_eq!(adopted.proc_number(), ProcNumber::dense(5));

    // Duplicate AddComplete, AddStart and AddFailure for an online processor.
    for state in [COMPLETE, START, FAILURE] {
        assert_eq!(inject(&kernel, state, 1, NtStatus::UNSUCCESSFUL), NtStatus::SUCCESS);
        assert!(last_log(&kernel).ends_with("outcome=ignored(already-online)"), "{}", last_log(&kernel));
        assert_eq!(table.get(1).unwrap().state(), SlotState::Online);
    }

    // AddFailure for an index never started: nothing is created.
    assert_eq!(inject(&kernel, FAILURE, 6, NtStatus::UNSUCCESSFUL), NtStatus::SUCCESS);
    assert!(last_log(&kernel).ends_with("outcome=ignored(not-starting)"));
    assert!(table.get(6).is_none());

    // AddStart twice: restarted, still starting; then a failure reverts it;
    // then an AddFailure for the index it vetoed or reverted is ignored.
    assert_eq!(inject(&kernel, START, 3, NtStatus::SUCCESS), NtStatus::SUCCESS);
    assert_eq!(inject(&kernel, START, 3, NtStatus::SUCCESS), NtStatus::SUCCESS);
    assert!(last_log(&kernel).ends_with("outcome=restarted"));
    assert_eq!(table.get(3).unwrap().state(), SlotState::Starting);
    assert_eq!(inject(&kernel, FAILURE, 3, NtStatus::UNSUCCESSFUL), NtStatus::SUCCESS);
    assert!(last_log(&kernel).ends_with("outcome=reverted"));
    assert_eq!(table.get(3).unwrap().state(), SlotState::Vacant);
    assert_eq!(inject(&kernel, FAILURE, 3, NtStatus::UNSUCCESSFUL), NtStatus::SUCCESS);
    assert!(last_log(&kernel).ends_with("outcome=ignored(not-starting)"));
    let counters = table.value(3).unwrap().counters();
    assert_eq!((counters.starts, counters.failures), (2, 1));

    // AddFailure for an index procnotify itself vetoed (its DPC payload
    // could not be made): ignored, and the index is usable afterwards.
    // No payload initialisation has failed yet, so the attempts so far are
    // the live payloads (0, 1, 5 and 3).
    assert_eq!(kernel.payloads_live(), 4);
    kernel.fail_payload_init(5);
    assert_eq!(inject(&kernel, START, 4, NtStatus::SUCCESS), NtStatus::INSUFFICIENT_RESOURCES);
    assert_eq!(inject(&kernel, FAILURE, 4, NtStatus::INSUFFICIENT_RESOURCES), NtStatus::SUCCESS);
    assert!(last_log(&kernel).ends_with("outcome=ignored(not-starting)"));
    assert!(table.get(4).is_none());

    assert_eq!(driver.context().present(), 3); // 0, 1 and the adopted 5
    let stats = driver.context().stats();
    // adopted, 3 × already-online, restarted; not-starting is expected, not an anomaly.
    assert_eq!((stats.vetoes, stats.anomalies), (1, 5));
    driver.unload();
    assert_clean(&kernel, "out of order");
}

#[test]
fn operation_status_is_written_only_to_veto_add_start() {
    // Through the kernel: only AddStart's status is ever a failure.
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

    // At the callback itself: the OS layer writes `*OperationStatus` only
    // when the callback returns a status, and it returns one only for an
    // AddStart it refuses (never a success status, never for another state).
    let context = driver.context();
    let mut returned = 0;
    for state in 0..5 {
        for index in [0, 1, 2, 3, 4, 100] {
            let mut n = RawNotification::dense(NotifyState::AddStart, index);
            n.state = state;
            n.status = NtStatus::UNSUCCESSFUL;
            if let Some(status) = context.on_notification(n) {
                assert_eq!(state, START, "a status returned for state {state}");
                assert!(status.is_failure(), "a success status written for index {index}");
                returned += 1;
            }
        }
    }
    assert_eq!(returned, 2, "AddStart for 4 and 100 only");
    driver.unload();
    assert_clean(&kernel, "operation status");
}

/// §7: a callback that re-enters itself (which Windows' serialisation rules
/// out) vetoes an AddStart with `STATUS_DEVICE_BUSY` and ignores anything
/// else. Made deterministic by holding the table's only writer, as a running
/// callback would.
#[test]
fn a_reentered_callback_vetoes_add_start_and_ignores_the_rest() {
    let kernel = SimKernel::boot(Config::new(2, 8));
    let driver = load(&kernel);
    let context = driver.context();
    let writer = context.table().writer().expect("no callback is running");
    assert_eq!(context.on_notification(RawNotification::dense(NotifyState::AddStart, 2)), Some(NtStatus::DEVICE_BUSY));
    assert!(last_log(&kernel).ends_with("outcome=vetoed(0x80000011(STATUS_DEVICE_BUSY))"), "{}", last_log(&kernel));
    for state in [NotifyState::AddComplete, NotifyState::AddFailure] {
        assert_eq!(context.on_notification(RawNotification::dense(state, 1)), None);
        assert!(last_log(&kernel).ends_with("outcome=ignored(reentered)"), "{}", last_log(&kernel));
    }
    assert!(context.table().get(2).is_none());
    drop(writer);
    assert_online_exactly(&driver, 2);
    let stats = context.stats();
    assert_eq!((stats.vetoes, stats.anomalies), (1, 2));
    // Once the writer is back, the same AddStart goes through.
    assert_eq!(kernel.hot_add(), HotAdd::Added(2));
    assert_online_exactly(&driver, 3);
    driver.unload();
    assert_clean(&kernel, "re-entered");
}

#[test]
fn concurrent_callbacks_violating_serialisation_corrupt_nothing() {
    let kernel = SimKernel::boot(Config::new(1, 16));
    let driver = load(&kernel);
    let context = driver.context();
    // Under Miri (`.ci/miri.sh`), 50 rounds a thread instead of 500: the
    // interpreter runs this race thousands of times slower than native code.
    let rounds: u32 = if cfg!(miri) { 50 } else { 500 };
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..2_u32)
            .map(|thread| {
                scope.spawn(move || {
                    for round in 0..rounds {
                        let index = 1 + (round + thread) % 15;
                        let _ = context.on_notification(RawNotification::dense(NotifyState::AddStart, index));
                        let last = if round % 2 == 0 { NotifyState::AddComplete } else { NotifyState::AddFailure };
                        let _ = context.on_notification(RawNotification::dense(last, index));
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
    assert_eq!(stats.notifications, 4 * rounds + 2); // + boot's AddStart/AddComplete
    // A call that found the other one writing was refused (AddStart vetoed
    // with STATUS_DEVICE_BUSY, anything else ignored), logged and counted.
    let logs = kernel.log_lines();
    let busy = logs.iter().filter(|l| l.ends_with("outcome=vetoed(0x80000011(STATUS_DEVICE_BUSY))")).count();
    let reentered = logs.iter().filter(|l| l.ends_with("outcome=ignored(reentered)")).count();
    assert_eq!(stats.vetoes as usize, busy, "the only possible veto here is the busy one");
    assert!(stats.anomalies as usize >= reentered);
    for slot in context.table().slots() {
        assert_eq!(slot.value().index(), slot.index());
        assert_eq!(slot.proc_number(), ProcNumber::dense(slot.index()));
    }
    driver.unload();
    assert_clean(&kernel, "concurrent callbacks");
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
    let memory = kernel.pool().allocate(layout).unwrap();
    let handle = kernel.register(callback, memory.as_ptr().cast(), 0).unwrap();
    // SAFETY: allocated just above with this layout, and not used again.
    unsafe { kernel.pool().deallocate(memory, layout) };
    assert_eq!(kernel.hot_add(), HotAdd::Added(1));
    assert_eq!(kernel.violations().len(), 2, "AddStart and AddComplete both caught");
    kernel.deregister(handle);
}
