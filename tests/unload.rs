//! Deregistration and unload (`docs/processor-change-semantics.md` §4):
//! deregistration waits for a running callback, unload deregisters, flushes
//! DPCs and only then frees; and `DriverCell`, what `DriverEntry` and
//! `EvtDriverUnload` share.

mod common;

use common::{assert_clean, load};
use procnotify_core::{DriverCell, NtStatus};
use procnotify_sim::{Config, HotAdd, KernelEvent, SimKernel, SimMonitor, SimOs};

// ---- deregistration and unload

#[test]
fn unload_after_adds_deregisters_flushes_then_frees() {
    let kernel = SimKernel::boot(Config::new(3, 40));
    let driver = load(&kernel);
    for index in 3..40 {
        assert_eq!(kernel.hot_add(), HotAdd::Added(index));
    }
    assert!(kernel.pool().stats().live > 0);
    // No flush here: DPCs may still be queued when unload starts.
    driver.unload();
    let events = kernel.kernel_events();
    let deregistered = events.iter().position(|e| matches!(e, KernelEvent::Deregistered { .. })).unwrap();
    assert_eq!(deregistered, events.len() - 1, "nothing after deregistration");
    let logs = kernel.log_lines();
    let freeing = logs.iter().position(|l| l.contains("freeing")).unwrap();
    let deregistering = logs.iter().position(|l| l.contains("deregistering")).unwrap();
    assert!(deregistering < freeing);
    // Every processor's DPC ran, and ran before the free (flushed by unload).
    let visits: Vec<_> = logs.iter().enumerate().filter(|(_, l)| l.starts_with("procnotify: visit ")).collect();
    assert_eq!(visits.len(), 40, "one visit per AddComplete");
    assert!(visits.iter().all(|(at, _)| *at < freeing), "a DPC ran after the free");
    assert_clean(&kernel, "unload");
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
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!unloader.is_finished());
        assert_eq!(kernel.deregistrations_waiting(), 1);
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
    let logs = kernel.log_lines();
    let started = logs.iter().position(|l| l.contains("add-start index=2")).expect("the held callback finished");
    let freeing = logs.iter().position(|l| l.contains("freeing")).unwrap();
    assert!(started < freeing, "the context was freed under a running callback");
    assert_clean(&kernel, "deregistration waits");
}

// ---- DriverCell: what DriverEntry and EvtDriverUnload share

#[test]
fn driver_cell_load_unload_double_load_and_failed_load() {
    let cell = DriverCell::new();
    assert!(!cell.unload(), "unload with nothing loaded is a no-op");
    assert!(cell.context_address().is_null());

    let kernel = SimKernel::boot(Config::new(2, 2));
    kernel.fail_payload_init(2);
    let os = SimOs::new(&kernel);
    assert_eq!(SimMonitor::load_into(&cell, os), NtStatus::INSUFFICIENT_RESOURCES);
    assert!(!cell.is_loaded());
    assert!(!cell.unload(), "a failed load leaves nothing to unload");
    assert_clean(&kernel, "failed load");

    let kernel = SimKernel::boot(Config::new(2, 2));
    let os = SimOs::new(&kernel);
    assert_eq!(SimMonitor::load_into(&cell, os.clone()), NtStatus::SUCCESS);
    assert!(cell.is_loaded());
    assert!(!cell.context_address().is_null());
    let registrations = kernel.kernel_events().len();
    assert_eq!(SimMonitor::load_into(&cell, os.clone()), NtStatus::DEVICE_BUSY);
    assert_eq!(kernel.kernel_events().len(), registrations, "a second load registers nothing");
    assert!(kernel.log_lines().iter().any(|l| l.contains("load while already loaded")));
    assert!(cell.unload());
    assert!(!cell.is_loaded());
    assert!(cell.context_address().is_null());
    assert!(!cell.unload(), "double unload is a no-op");
    assert_clean(&kernel, "cell unload");

    // The cell can be loaded again after an unload.
    assert_eq!(SimMonitor::load_into(&cell, os), NtStatus::SUCCESS);
    assert!(cell.unload());
    assert_clean(&kernel, "reload");
}
