//! Kernel fault planning: a registration that fails before linking, a
//! hot-add whose preparation or HAL start fails, a slot payload
//! initialisation that fails. Each planned fault fires once, at the next
//! chance, and [`SimKernel::pending_faults`] tells which have not fired yet.

use std::collections::{BTreeSet, VecDeque};

use procnotify_core::NtStatus;

use super::{SimKernel, lock};

/// Kernel faults planned and not yet consumed ([`SimKernel::pending_faults`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PendingFaults {
    /// Registrations still to fail ([`SimKernel::fail_next_register`]).
    pub register: u32,
    /// Hot-adds still to fail in preparation ([`SimKernel::fail_next_prepare`]).
    pub prepare: u32,
    /// Processor starts still to fail ([`SimKernel::fail_next_start`]).
    pub start: usize,
    /// Payload initialisations still to fail ([`SimKernel::fail_payload_init`]).
    pub payload: usize,
    /// Payload initialisations attempted so far (the ordinal of the last one).
    pub payload_attempts: u64,
}

#[derive(Default)]
pub(super) struct Faults {
    register_failures: u32,
    prepare_failures: u32,
    start_failures: VecDeque<NtStatus>,
    payload_attempts: u64,
    payload_failures: BTreeSet<u64>,
}

impl SimKernel {
    /// The next registration fails inside the kernel before anything is
    /// linked (the register routine returns NULL; no callback runs).
    pub fn fail_next_register(&self) {
        lock(&self.inner.faults).register_failures += 1;
    }

    /// The next hot-add fails while the kernel prepares the processor (no
    /// notifications).
    pub fn fail_next_prepare(&self) {
        lock(&self.inner.faults).prepare_failures += 1;
    }

    /// The next hot-add whose `AddStart`s all succeed fails in the HAL with
    /// `status`.
    pub fn fail_next_start(&self, status: NtStatus) {
        lock(&self.inner.faults).start_failures.push_back(status);
    }

    /// Forgets every planned kernel fault not yet consumed (the pool's own
    /// plan is cleared with [`SimAllocator::clear_faults`](crate::SimAllocator::clear_faults)).
    pub fn clear_faults(&self) {
        let mut faults = lock(&self.inner.faults);
        faults.register_failures = 0;
        faults.prepare_failures = 0;
        faults.start_failures.clear();
        faults.payload_failures.clear();
    }

    /// The kernel faults planned and not yet consumed, and how many payload
    /// initialisations were attempted so far: lets a caller tell whether a
    /// fault it planned fired.
    #[must_use]
    pub fn pending_faults(&self) -> PendingFaults {
        let faults = lock(&self.inner.faults);
        PendingFaults {
            register: faults.register_failures,
            prepare: faults.prepare_failures,
            start: faults.start_failures.len(),
            payload: faults.payload_failures.len(),
            payload_attempts: faults.payload_attempts,
        }
    }

    /// The `ordinal`-th slot payload initialisation (1-based, counted over the
    /// kernel's life) fails.
    pub fn fail_payload_init(&self, ordinal: u64) {
        lock(&self.inner.faults).payload_failures.insert(ordinal);
    }

    pub(crate) fn payload_init_should_fail(&self) -> bool {
        let mut faults = lock(&self.inner.faults);
        faults.payload_attempts += 1;
        let attempt = faults.payload_attempts;
        faults.payload_failures.remove(&attempt)
    }

    /// Consumes a planned registration failure, if there is one.
    pub(super) fn take_register_failure(&self) -> bool {
        let mut faults = lock(&self.inner.faults);
        if faults.register_failures == 0 {
            return false;
        }
        faults.register_failures -= 1;
        true
    }

    /// Consumes a planned preparation failure, if there is one.
    pub(super) fn take_prepare_failure(&self) -> bool {
        let mut faults = lock(&self.inner.faults);
        if faults.prepare_failures == 0 {
            return false;
        }
        faults.prepare_failures -= 1;
        true
    }

    /// Consumes the next planned HAL start failure, if there is one.
    pub(super) fn take_start_failure(&self) -> Option<NtStatus> {
        lock(&self.inner.faults).start_failures.pop_front()
    }
}
