//! Assertions shared by the integration tests.
#![allow(dead_code, clippy::missing_panics_doc)]

use procnotify::sim::{KernelEvent, NotifyContext, SimKernel};
use procnotify::{Driver, ProcNumber, SlotState};

/// One callback as the kernel delivered it: (state, index, status bits, handle returned yet).
pub type Delivered = (u32, u32, u32, bool);

/// Every callback delivered to registration `id`, in order.
pub fn delivered(kernel: &SimKernel, id: u64) -> Vec<Delivered> {
    kernel
        .kernel_events()
        .into_iter()
        .filter_map(|event| match event {
            KernelEvent::Callback { registration, change, handle_returned } if registration == id => {
                Some((change.state, change.nt_number, change.status.bits(), handle_returned))
            }
            _ => None,
        })
        .collect()
}

/// Every notification delivered to registration `id`, in order, with whether
/// that callback vetoed it (the kernel records a veto right after the call).
pub fn callbacks(events: &[KernelEvent], id: u64) -> Vec<(NotifyContext, bool)> {
    events
        .iter()
        .enumerate()
        .filter_map(|(at, event)| match event {
            KernelEvent::Callback { registration, change, .. } if *registration == id => {
                let vetoed =
                    matches!(events.get(at + 1), Some(KernelEvent::Vetoed { registration: v, .. }) if *v == id);
                Some((*change, vetoed))
            }
            _ => None,
        })
        .collect()
}

/// After unload: nothing allocated, nothing freed twice, no callback or DPC
/// after free, every payload dropped.
pub fn assert_clean(kernel: &SimKernel) {
    let pool = kernel.pool().stats();
    assert_eq!(pool.live, 0, "leaked allocations: {pool:?}");
    assert_eq!(pool.bytes_live, 0, "leaked bytes: {pool:?}");
    assert_eq!(pool.allocations, pool.frees, "allocations and frees differ: {pool:?}");
    assert!(kernel.violations().is_empty(), "violations: {:?}", kernel.violations());
    assert_eq!(kernel.payloads_live(), 0, "payloads not dropped");
}

/// Every index below `present` is online at its dense location, and nothing
/// else is present.
pub fn assert_online_exactly(driver: &Driver<procnotify::sim::SimOs>, present: u32) {
    let table = driver.context().table();
    for index in 0..table.capacity() {
        let snapshot = table.get(index).map(procnotify::Slot::snapshot);
        if index < present {
            let slot = snapshot.unwrap_or_else(|| panic!("processor {index} has no slot"));
            assert_eq!(slot.state, SlotState::Online, "processor {index}");
            assert_eq!(slot.index, index);
            assert_eq!(slot.proc_number, ProcNumber::dense(index), "processor {index}");
        } else if let Some(slot) = snapshot {
            assert_eq!(slot.state, SlotState::Vacant, "processor {index} should not be present");
        }
    }
    assert_eq!(driver.context().present(), present);
}
