//! The reference model (see the [module documentation](super)): the kernel
//! and allocation, with procnotify's rules taken from
//! [`lifecycle::transition`] rather than restated.

use std::collections::VecDeque;
use std::vec::Vec;

use procnotify_core::lifecycle::{self, Hook, Transition};
use procnotify_core::monitor::Counters;
use procnotify_core::{
    Anomaly, GROUP_SIZE, MAX_PROCESSORS, NotifyState, NtStatus, Outcome, ProcNumber, SlotState, StatsSnapshot,
};

use super::memory::{Inits, Memory};
use crate::kernel::{Config, HotAdd, NotifyContext, Refusal};

/// What the model knows of one processor's value (only indices that have
/// one: the counters live in the value, wherever the table put it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Value {
    /// The slot's lifecycle state.
    pub state: SlotState,
    /// Group and number, as the notification that created the value gave them.
    pub number: ProcNumber,
    /// procnotify's per-processor counters.
    pub counters: Counters,
}

/// A registration in `\Callback\ProcessorAdd`, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reg {
    /// Another driver, registered before procnotify's first load.
    Before,
    /// procnotify.
    Procnotify,
    /// Another driver, registered after procnotify's first load.
    After,
}

/// The kernel's planned faults. Like the simulated kernel's, they stay
/// planned until they fire.
#[derive(Default)]
pub(super) struct KernelFaults {
    /// Hot-adds whose preparation fails.
    pub prepare: u32,
    /// HAL start failures, for the next hot-adds whose `AddStart`s pass.
    pub start: VecDeque<NtStatus>,
    /// Registrations that fail.
    pub register: u32,
    /// The other drivers' vetoes for this operation (before, after).
    pub armed: [Option<NtStatus>; 2],
}

/// The reference model.
pub(super) struct Model {
    config: Config,
    /// The table's capacity: the reported maximum, clamped.
    pub capacity: u32,
    /// `KeNumberProcessors`.
    pub count: u32,
    /// The registrations, in order.
    pub regs: Vec<Reg>,
    /// Whether procnotify is loaded.
    pub loaded: bool,
    /// Each index's value, if it has one.
    values: Vec<Option<Value>>,
    /// The callback's counters.
    pub stats: StatsSnapshot,
    /// The first status procnotify vetoed with.
    pub recorded: Option<NtStatus>,
    /// Allocation.
    pub memory: Memory,
    /// Value initialisations.
    pub inits: Inits,
    /// The kernel's planned faults.
    pub faults: KernelFaults,
    /// Indices the current step touched.
    pub touched: Vec<u32>,
}

fn dense(state: NotifyState, index: u32) -> NotifyContext {
    NotifyContext {
        state: state.raw(),
        nt_number: index,
        status: NtStatus::SUCCESS,
        proc_number: ProcNumber::dense(index),
    }
}

impl Model {
    pub(super) fn new(config: Config) -> Self {
        let capacity = config.reported_max.clamp(1, MAX_PROCESSORS);
        Self {
            config,
            capacity,
            count: config.boot,
            regs: Vec::new(),
            loaded: false,
            values: std::vec![None; capacity as usize],
            stats: StatsSnapshot::default(),
            recorded: None,
            memory: Memory::new(),
            inits: Inits::default(),
            faults: KernelFaults::default(),
            touched: Vec::new(),
        }
    }

    /// The value at `index`, if it has one.
    pub(super) fn value(&self, index: u32) -> Option<&Value> {
        self.values.get(index as usize)?.as_ref()
    }

    /// Forgets the driver (unload, or a failed load).
    pub(super) fn reset_driver(&mut self) {
        self.loaded = false;
        self.regs.retain(|reg| *reg != Reg::Procnotify);
        self.values.fill(None);
        self.stats = StatsSnapshot::default();
        self.recorded = None;
        self.memory.drop_table();
    }

    /// Whether `KeSetTargetProcessorDpcEx` accepts `number` on this machine
    /// (`KeGetProcessorIndexFromNumber` finds an index for it).
    fn dpc_runs(&self, number: ProcNumber) -> bool {
        let index = u32::from(number.group) * GROUP_SIZE + u32::from(number.number);
        u32::from(number.number) < GROUP_SIZE && index < self.config.max
    }

    /// What procnotify's callback does with `n`, and the change to its slot.
    fn decide(&mut self, n: NotifyContext) -> Outcome {
        let state = match NotifyState::try_from(n.state) {
            Ok(state) => state,
            Err(unknown) => return Outcome::Ignored(Anomaly::UnknownState(unknown.0)),
        };
        let index = n.nt_number;
        if index >= self.capacity {
            // The engine's range check, before the state machine.
            return match state {
                NotifyState::AddStart => Outcome::Vetoed(NtStatus::INVALID_PARAMETER),
                NotifyState::AddComplete | NotifyState::AddFailure => Outcome::Ignored(Anomaly::IndexOutOfRange),
            };
        }
        self.touched.push(index);
        let transition = lifecycle::transition(self.value(index).map(|value| value.state), state);
        let Some(next) = transition.next else { return transition.outcome };
        if transition.needs_value {
            let inits = &mut self.inits;
            if let Err(status) = self.memory.create_value(index, n.proc_number, || inits.init()) {
                return self.failed(index, transition, status);
            }
            self.values[index as usize] =
                Some(Value { state: SlotState::Vacant, number: n.proc_number, counters: Counters::default() });
        }
        let dpc_runs = self.dpc_runs(n.proc_number);
        let Some(value) = self.values[index as usize].as_mut() else {
            return self.failed(index, transition, NtStatus::UNSUCCESSFUL);
        };
        let counters = &mut value.counters;
        match transition.hook {
            Hook::None => {}
            // procnotify's `starting` hook counts and never fails.
            Hook::Starting => counters.starts += 1,
            // `online` counts and queues the DPC to the notification's
            // processor; the DPC visits this value wherever it runs.
            Hook::Online => {
                counters.completes += 1;
                counters.visits += u64::from(dpc_runs);
            }
            Hook::Failed => counters.failures += 1,
        }
        value.state = next;
        transition.outcome
    }

    /// Creating the value failed with `status`.
    fn failed(&mut self, index: u32, transition: Transition, status: NtStatus) -> Outcome {
        let (next, outcome) = transition.failed(status);
        if let (Some(next), Some(Some(value))) = (next, self.values.get_mut(index as usize)) {
            value.state = next;
        }
        outcome
    }

    /// procnotify's callback: the veto it writes, if any.
    pub(super) fn callback(&mut self, n: NotifyContext) -> Option<NtStatus> {
        self.stats.notifications += 1;
        let outcome = self.decide(n);
        if let Outcome::Vetoed(status) = outcome {
            self.stats.vetoes += 1;
            self.recorded.get_or_insert(status);
        } else if outcome.is_anomaly() {
            self.stats.anomalies += 1;
        }
        outcome.veto()
    }

    /// The read path on `processor`: whether it found a value (and visited it).
    pub(super) fn read(&mut self, processor: u32) -> bool {
        let Some(Some(value)) = self.values.get_mut(processor as usize) else { return false };
        value.counters.visits += 1;
        self.touched.push(processor);
        true
    }

    /// Every registration's `*OperationStatus` for an injected notification.
    pub(super) fn inject(&mut self, change: NotifyContext) -> Vec<NtStatus> {
        let regs = self.regs.clone();
        regs.into_iter()
            .map(|reg| match reg {
                Reg::Procnotify => self.callback(change).unwrap_or(NtStatus::SUCCESS),
                Reg::Before | Reg::After => NtStatus::SUCCESS,
            })
            .collect()
    }

    /// `KeStartDynamicProcessor`.
    pub(super) fn hot_add(&mut self) -> HotAdd {
        if !self.config.dynamic_partitioning {
            return HotAdd::Refused(Refusal::NotSupported);
        }
        if self.count >= self.config.max {
            return HotAdd::Refused(Refusal::AtMaximum);
        }
        if self.faults.prepare > 0 {
            self.faults.prepare -= 1;
            return HotAdd::Refused(Refusal::PrepareFailed);
        }
        let index = self.count;
        let start = dense(NotifyState::AddStart, index);
        let mut failure = None;
        for reg in self.regs.clone() {
            let status = match reg {
                Reg::Procnotify => self.callback(start),
                Reg::Before => self.faults.armed[0],
                Reg::After => self.faults.armed[1],
            };
            if let Some(status) = status.filter(|status| status.is_failure()) {
                failure = Some(status);
                break;
            }
        }
        if failure.is_none() {
            match self.faults.start.pop_front() {
                Some(status) => failure = Some(status),
                None => self.count += 1,
            }
        }
        let (state, status) = match failure {
            None => (NotifyState::AddComplete, NtStatus::SUCCESS),
            Some(status) => (NotifyState::AddFailure, status),
        };
        if self.regs.contains(&Reg::Procnotify) {
            self.callback(NotifyContext { state: state.raw(), status, ..start });
        }
        match failure {
            None => HotAdd::Added(index),
            Some(status) => HotAdd::Failed { index, status },
        }
    }

    /// `Driver::load` (table index, context, registration with
    /// `ADD_EXISTING`): the status it returns on failure.
    pub(super) fn load(&mut self) -> Result<(), NtStatus> {
        self.reset_driver();
        if !self.memory.create_table(self.capacity, self.count) || !self.memory.attempt() {
            self.memory.drop_table();
            return Err(NtStatus::INSUFFICIENT_RESOURCES);
        }
        if self.faults.register > 0 {
            self.faults.register -= 1;
            self.memory.drop_table();
            return Err(NtStatus::UNSUCCESSFUL);
        }
        self.regs.push(Reg::Procnotify);
        for index in 0..self.count {
            let veto = self.callback(dense(NotifyState::AddStart, index));
            if let Some(status) = veto.filter(|status| status.is_failure()) {
                // Unlinked, then AddFailure for the processors before it.
                self.regs.retain(|reg| *reg != Reg::Procnotify);
                for earlier in 0..index {
                    self.callback(NotifyContext { status, ..dense(NotifyState::AddFailure, earlier) });
                }
                let recorded = self.recorded.unwrap_or(NtStatus::UNSUCCESSFUL);
                self.reset_driver();
                return Err(recorded);
            }
        }
        for index in 0..self.count {
            self.callback(dense(NotifyState::AddComplete, index));
        }
        self.loaded = true;
        Ok(())
    }

    /// Pool allocations live: the table's and the context.
    pub(super) fn live_allocations(&self) -> usize {
        if self.loaded { self.memory.live() + 1 } else { 0 }
    }

    /// Slots the table allocated.
    pub(super) fn allocated_slots(&self) -> u32 {
        self.memory.allocated_slots()
    }

    /// Values live (each holds a simulated DPC).
    pub(super) fn live_values(&self) -> i64 {
        let live = if self.loaded { self.values.iter().flatten().count() } else { 0 };
        i64::try_from(live).unwrap_or(i64::MAX)
    }
}
