//! What the integration tests share: the one loader, the one clean-unload
//! check, readers of the kernel's trace, and [`Probe`], a driver's own
//! [`Hooks`] with faults a test can plant.
#![allow(dead_code, clippy::missing_panics_doc)]

use std::collections::BTreeMap;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicI64, AtomicPtr, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use procnotify_core::monitor::Counters;
use procnotify_core::{Cpu, Driver, Hooks, NotifyState, NtStatus, ProcNumber, SlotState};
use procnotify_sim::{KernelEvent, NotifyContext, SimDriver, SimKernel, SimOs};

pub const START: u32 = NotifyState::AddStart.raw();
pub const COMPLETE: u32 = NotifyState::AddComplete.raw();
pub const FAILURE: u32 = NotifyState::AddFailure.raw();

// ------------------------------------------------------------------ loading

/// Loads procnotify's own driver (its `Monitor` hooks); the load must succeed.
pub fn load(kernel: &SimKernel) -> SimDriver {
    SimOs::load_monitor(kernel).expect("load succeeds")
}

/// Loads a driver with the test's own `hooks`.
pub fn load_with<H: Hooks>(kernel: &SimKernel, hooks: H) -> Result<Driver<SimOs, H>, NtStatus> {
    Driver::load(SimOs::new(kernel), hooks)
}

/// After unload: nothing allocated, nothing freed twice, no callback or DPC
/// after free, every DPC payload dropped.
pub fn assert_clean(kernel: &SimKernel, what: &str) {
    let pool = kernel.pool().stats();
    assert_eq!((pool.live, pool.bytes_live), (0, 0), "{what}: leaked {pool:?}");
    assert_eq!(pool.allocations, pool.frees, "{what}: allocations and frees differ: {pool:?}");
    assert_eq!(kernel.violations(), Vec::<String>::new(), "{what}: violations");
    assert_eq!(kernel.payloads_live(), 0, "{what}: payloads not dropped");
}

/// Every index below `present` is online at its dense location with its own
/// value, and nothing else is present.
pub fn assert_online_exactly(driver: &SimDriver, present: u32) {
    let table = driver.context().table();
    for index in 0..table.capacity() {
        let Some(slot) = table.get(index) else {
            assert!(index >= present, "processor {index} has no slot");
            continue;
        };
        assert_eq!(slot.index(), index);
        assert_eq!(slot.value().index(), index, "processor {index}: value of another slot");
        if index < present {
            assert_eq!(slot.state(), SlotState::Online, "processor {index}");
            assert_eq!(slot.proc_number(), ProcNumber::dense(index), "processor {index}");
        } else {
            assert_eq!(slot.state(), SlotState::Vacant, "processor {index} should not be present");
        }
    }
    assert_eq!(driver.context().present(), present);
}

/// The counters of processor `index`'s value, if its slot is linked.
pub fn counters(driver: &SimDriver, index: u32) -> Option<Counters> {
    driver.context().table().value(index).map(procnotify_core::monitor::PerProcessor::counters)
}

// ------------------------------------------------------------------ the trace

/// The registration number of procnotify's latest registration (the only one
/// made with `KE_PROCESSOR_CHANGE_ADD_EXISTING`).
pub fn procnotify_registration(events: &[KernelEvent]) -> Option<u64> {
    events.iter().rev().find_map(|event| match event {
        KernelEvent::RegisterBegin { registration, add_existing: true } => Some(*registration),
        _ => None,
    })
}

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

/// What the notifications delivered to one registration say about one index,
/// derived from the trace alone (never from the table): its state, and the
/// counters procnotify's hooks must show. Assumes the hooks themselves do not
/// fail once a value exists (true of `Monitor`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    pub state: Option<SlotState>,
    pub counters: Counters,
}

/// [`Expected`] for every index registration `id` was told about.
pub fn expected_from_trace(events: &[KernelEvent], id: u64) -> BTreeMap<u32, Expected> {
    let mut indices: BTreeMap<u32, Expected> = BTreeMap::new();
    for (change, vetoed) in callbacks(events, id) {
        let entry = indices.entry(change.nt_number).or_default();
        let state = entry.state.unwrap_or(SlotState::Vacant);
        let counters = &mut entry.counters;
        entry.state = Some(match (change.state, state) {
            (_, SlotState::Online) => SlotState::Online,
            (START, _) if vetoed => SlotState::Vacant,
            (START, _) => {
                counters.starts += 1;
                SlotState::Starting
            }
            (COMPLETE, _) => {
                counters.completes += 1;
                // Each AddComplete queues one DPC, which visits once.
                counters.visits += 1;
                SlotState::Online
            }
            (FAILURE, SlotState::Starting) => {
                counters.failures += 1;
                SlotState::Vacant
            }
            (_, unchanged) => unchanged,
        });
    }
    indices
}

// ------------------------------------------------------------------ injection

/// Delivers one notification to every registration; returns the first
/// callback's `*OperationStatus`.
pub fn inject(kernel: &SimKernel, state: u32, index: u32, status: NtStatus) -> NtStatus {
    let change = NotifyContext { state, nt_number: index, status, proc_number: ProcNumber::dense(index) };
    kernel.inject(change)[0]
}

/// The driver's last log line.
pub fn last_log(kernel: &SimKernel) -> String {
    kernel.log_lines().last().cloned().unwrap_or_default()
}

// ------------------------------------------------------------------ Probe

/// What a [`Probe`] did, shared with the test so it can be read after the
/// driver (and the hooks with it) are gone.
#[derive(Default)]
pub struct ProbeLedger {
    /// Values created (by `init`, or handed out by a foreign `init`) and not
    /// dropped yet.
    live: AtomicI64,
    /// The foreign value handed out by `InitReturnsForeign`, for the test to free.
    foreign: AtomicPtr<ProbeValue>,
    /// Every hook call, as (hook, index).
    calls: Mutex<Vec<(&'static str, u32)>>,
}

impl ProbeLedger {
    /// Values alive now.
    pub fn live(&self) -> i64 {
        self.live.load(Ordering::Relaxed)
    }

    /// The hook calls so far.
    pub fn calls(&self) -> Vec<(&'static str, u32)> {
        self.calls.lock().unwrap().clone()
    }

    /// Frees the foreign value, if one was handed out. Returns whether one was.
    pub fn free_foreign(&self) -> bool {
        let foreign = self.foreign.swap(std::ptr::null_mut(), Ordering::Relaxed);
        if foreign.is_null() {
            return false;
        }
        // SAFETY: made by `Box::into_raw` in `Probe::init` and refused by the
        // engine (the test checks that), so nothing else refers to it; swapped
        // out above, so freed once.
        drop(unsafe { Box::from_raw(foreign) });
        true
    }

    fn record(&self, hook: &'static str, index: u32) {
        self.calls.lock().unwrap().push((hook, index));
    }
}

/// A driver's own per-processor value: its index, how often `starting`
/// accepted it, and a share in its [`ProbeLedger`]'s live count.
pub struct ProbeValue {
    pub index: u32,
    pub starts: AtomicU32,
    ledger: Arc<ProbeLedger>,
}

impl ProbeValue {
    fn new(index: u32, ledger: &Arc<ProbeLedger>) -> Self {
        ledger.live.fetch_add(1, Ordering::Relaxed);
        Self { index, starts: AtomicU32::new(0), ledger: Arc::clone(ledger) }
    }
}

impl Drop for ProbeValue {
    fn drop(&mut self) {
        self.ledger.live.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A fault a [`Probe`] plants once, at one index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeFault {
    /// `init` fails with this status.
    InitFails(NtStatus),
    /// `init` leaves the place alone and returns a reference to a value of
    /// its own instead (which the engine must refuse).
    InitReturnsForeign,
    /// `starting` fails with this status.
    StartingFails(NtStatus),
}

/// Hooks written the way another driver would, only from the public API,
/// with one planted fault that fires once.
pub struct Probe {
    fault: Mutex<Option<(u32, ProbeFault)>>,
    ledger: Arc<ProbeLedger>,
}

impl Probe {
    /// Hooks that plant `fault` at `index` (if any).
    pub fn new(fault: Option<(u32, ProbeFault)>) -> Self {
        Self { fault: Mutex::new(fault), ledger: Arc::default() }
    }

    /// What the hooks did.
    pub fn ledger(&self) -> Arc<ProbeLedger> {
        Arc::clone(&self.ledger)
    }

    /// The planted fault, if it is for `index` and `which` accepts it; once.
    fn take(&self, index: u32, which: impl Fn(ProbeFault) -> bool) -> Option<ProbeFault> {
        let mut fault = self.fault.lock().unwrap();
        match *fault {
            Some((at, planted)) if at == index && which(planted) => fault.take().map(|(_, planted)| planted),
            _ => None,
        }
    }
}

impl Hooks for Probe {
    type Value = ProbeValue;

    fn init<'a>(&self, cpu: Cpu, place: &'a mut MaybeUninit<ProbeValue>) -> Result<&'a mut ProbeValue, NtStatus> {
        self.ledger.record("init", cpu.index);
        match self.take(cpu.index, |f| !matches!(f, ProbeFault::StartingFails(_))) {
            Some(ProbeFault::InitFails(status)) => Err(status),
            Some(ProbeFault::InitReturnsForeign) => {
                // The pointer the ledger keeps and the reference returned
                // both come from the raw pointer (the reference is derived
                // from it), so freeing through the pointer later is valid
                // under Stacked Borrows (Miri, `.ci/miri.sh`).
                let foreign = Box::into_raw(Box::new(ProbeValue::new(cpu.index, &self.ledger)));
                self.ledger.foreign.store(foreign, Ordering::Relaxed);
                // SAFETY: just allocated, not freed before the test's
                // `free_foreign`, which runs after the engine let go of it.
                Ok(unsafe { &mut *foreign })
            }
            _ => Ok(place.write(ProbeValue::new(cpu.index, &self.ledger))),
        }
    }

    fn starting(&self, cpu: Cpu, value: &ProbeValue) -> Result<(), NtStatus> {
        self.ledger.record("starting", cpu.index);
        if let Some(ProbeFault::StartingFails(status)) =
            self.take(cpu.index, |f| matches!(f, ProbeFault::StartingFails(_)))
        {
            return Err(status);
        }
        value.starts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn online(&self, cpu: Cpu, _value: &ProbeValue) {
        self.ledger.record("online", cpu.index);
    }

    fn failed(&self, cpu: Cpu, _value: &ProbeValue, _status: NtStatus) {
        self.ledger.record("failed", cpu.index);
    }
}
