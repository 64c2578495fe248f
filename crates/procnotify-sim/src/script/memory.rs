//! Allocation and value initialisation as the [model](super::model) sees
//! them: which attempt of an operation fails, and when the table needs
//! storage, learnt from a shadow table rather than from its layout.

use std::collections::BTreeSet;

use procnotify_core::{NtStatus, ProcNumber, Table};

use crate::alloc::SimAllocator;

/// Allocation: ordinals of the attempts within one operation, the planned
/// failure, and the shadow table that says when the engine's table needs
/// storage (the model does not restate the table's layout).
pub(super) struct Memory {
    /// The shadow table's own pool: its attempt counter is the oracle.
    pool: SimAllocator,
    /// A table of the engine's capacity, holding a `()` wherever the engine
    /// holds a value.
    shadow: Option<Table<(), SimAllocator>>,
    /// Attempts made by the current operation.
    attempts: u32,
    /// The attempt of the current operation that fails (1-based, counted
    /// from the operation's start).
    fail_at: Option<u32>,
}

impl Memory {
    pub(super) fn new() -> Self {
        Self { pool: SimAllocator::new(), shadow: None, attempts: 0, fail_at: None }
    }

    /// Starts an operation: no attempt made, none planned to fail.
    pub(super) fn begin(&mut self) {
        self.attempts = 0;
        self.fail_at = None;
    }

    /// Plans the `nth` attempt from now (1-based) to fail.
    pub(super) fn plan(&mut self, nth: u32) {
        self.fail_at = Some(self.attempts.saturating_add(nth));
    }

    /// Attempts made by the current operation.
    pub(super) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Runs `f` on the shadow pool with the planned failure armed at the
    /// right ordinal, and counts the attempts `f` made.
    fn counted<R>(&mut self, f: impl FnOnce(&SimAllocator, Option<&Table<(), SimAllocator>>) -> R) -> R {
        let before = self.pool.stats().attempts;
        if let Some(nth) = self.fail_at.and_then(|nth| nth.checked_sub(self.attempts)).filter(|&ahead| ahead > 0) {
            self.pool.fail_attempt(before + u64::from(nth));
        }
        let result = f(&self.pool, self.shadow.as_ref());
        self.pool.clear_faults();
        let made = self.pool.stats().attempts - before;
        self.attempts += u32::try_from(made).unwrap_or(u32::MAX);
        result
    }

    /// One attempt of the driver's own (the context): whether it succeeds.
    pub(super) fn attempt(&mut self) -> bool {
        self.attempts += 1;
        self.fail_at != Some(self.attempts)
    }

    /// `Table::with_first_segment`, with the processors active at load as
    /// the engine passes them: whether the index could be allocated.
    pub(super) fn create_table(&mut self, capacity: u32, active: u32) -> bool {
        let table = self.counted(|pool, _| Table::with_first_segment(capacity, active, pool.clone()));
        self.shadow = table.ok();
        self.shadow.is_some()
    }

    pub(super) fn drop_table(&mut self) {
        self.shadow = None;
    }

    /// Creates the value at `index`, as `Writer::get_or_insert` does in the
    /// engine; `init` stands for `Hooks::init`.
    pub(super) fn create_value(
        &mut self,
        index: u32,
        number: ProcNumber,
        init: impl FnOnce() -> Result<(), NtStatus>,
    ) -> Result<(), NtStatus> {
        self.counted(|_, shadow| {
            let mut writer = shadow.and_then(Table::writer).ok_or(NtStatus::UNSUCCESSFUL)?;
            match writer.get_or_insert(index, number, |place| init().map(|()| place.write(()))) {
                Ok(_) => Ok(()),
                Err(error) => Err(NtStatus::from(error)),
            }
        })
    }

    /// Live allocations of the table (index and storage).
    pub(super) fn live(&self) -> usize {
        self.pool.stats().live
    }

    /// Slots the table allocated.
    pub(super) fn allocated_slots(&self) -> u32 {
        self.shadow.as_ref().map_or(0, Table::allocated_slots)
    }
}

/// Value initialisations (the simulated DPC's `init`), counted over the
/// kernel's life, and the ordinals planned to fail.
#[derive(Default)]
pub(super) struct Inits {
    attempts: u64,
    failures: BTreeSet<u64>,
}

impl Inits {
    /// Plans the `k`-th initialisation from now (0-based) to fail; returns
    /// its ordinal over the kernel's life.
    pub(super) fn plan(&mut self, k: u32) -> u64 {
        let ordinal = self.attempts + 1 + u64::from(k);
        self.failures.insert(ordinal);
        ordinal
    }

    /// `SimDpc::init`: fails with `STATUS_INSUFFICIENT_RESOURCES` when planned.
    pub(super) fn init(&mut self) -> Result<(), NtStatus> {
        self.attempts += 1;
        if self.failures.remove(&self.attempts) { Err(NtStatus::INSUFFICIENT_RESOURCES) } else { Ok(()) }
    }
}
