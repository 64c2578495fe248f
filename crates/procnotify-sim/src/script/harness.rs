//! Runs a script against the real engine in the simulator and compares it
//! with the [model](super::model) after every step.

use core::fmt::Write as _;
use std::boxed::Box;
use std::format;
use std::string::String;
use std::sync::Arc;
use std::vec::Vec;

use crate::locks::Mutex;
use procnotify_core::{NotifyState, NtStatus, Slot, SlotState};

use super::model::{Model, Reg, Value};
use super::query::{self, Expected};
use super::{AddFault, Header, LoadFault, Op, Summary};
use crate::kernel::{Handle, HotAdd, SimKernel};
use crate::os::{SimDriver, SimOs};

/// Steps between two comparisons of the whole table with the model (every
/// other step compares the slots it touched).
const FULL_CHECK_EVERY: u32 = 64;

/// Another driver's veto plan for the current operation.
type Plan = Arc<Mutex<Option<NtStatus>>>;

/// Registers another driver (without `ADD_EXISTING`) that vetoes `AddStart`
/// with its plan, if any.
fn other_driver(kernel: &SimKernel) -> (Handle, Plan) {
    let plan: Plan = Arc::default();
    let theirs = Arc::clone(&plan);
    let handle = kernel.register_other_driver(Box::new(move |change| {
        let armed = *theirs.lock();
        match armed {
            Some(status) if change.state == NotifyState::AddStart.raw() => status,
            _ => NtStatus::SUCCESS,
        }
    }));
    (handle, plan)
}

/// The engine, the model, and what they did so far.
pub(super) struct Harness {
    kernel: SimKernel,
    driver: Option<SimDriver>,
    model: Model,
    /// The other drivers: before, after.
    others: [Option<(Handle, Plan)>; 2],
    want_after: bool,
    /// The pool's attempt counter when the current operation began.
    attempts_at_start: u64,
    summary: Summary,
    trace: Vec<String>,
    /// The length seed of the query checks, when they are on.
    query: Option<u16>,
}

impl Harness {
    pub(super) fn new(header: Header, query: Option<u16>) -> Self {
        let config = header.config();
        let kernel = SimKernel::boot(config);
        let mut harness = Self {
            kernel,
            driver: None,
            model: Model::new(config),
            others: [None, None],
            want_after: header.other_after,
            attempts_at_start: 0,
            summary: Summary::default(),
            trace: std::vec![format!("{header:?}; load")],
            query,
        };
        if header.other_before {
            harness.others[0] = Some(other_driver(&harness.kernel));
            harness.model.regs.push(Reg::Before);
        }
        harness
    }

    /// The first load.
    pub(super) fn start(&mut self) -> Result<(), String> {
        self.begin_op();
        self.load(LoadFault::None)?;
        self.end_op()?;
        self.check(true)?;
        self.check_query()
    }

    /// The final unload: nothing may stay allocated.
    pub(super) fn finish(mut self) -> Result<Summary, String> {
        self.unload();
        for (handle, _) in self.others.iter_mut().filter_map(Option::take) {
            self.kernel.deregister(handle);
        }
        self.trace.push(String::from("final unload"));
        self.check(true)?;
        let pool = self.kernel.pool().stats();
        if pool.live != 0 || pool.bytes_live != 0 {
            return Err(self.fail(&format!("after the final unload: {pool:?}")));
        }
        if self.kernel.payloads_live() != 0 {
            return Err(self.fail("values (simulated DPCs) live after the final unload"));
        }
        Ok(self.summary)
    }

    fn fail(&self, what: &str) -> String {
        let start = self.trace.len().saturating_sub(12);
        let mut message = format!("step {}: {what}\nlast operations:\n", self.trace.len().saturating_sub(1));
        for (n, line) in self.trace.iter().enumerate().skip(start) {
            let _ = writeln!(message, "  {n}: {line}");
        }
        message
    }

    #[allow(clippy::needless_pass_by_value)] // called with tuples built in place
    fn expect<T: PartialEq + core::fmt::Debug>(&self, what: &str, actual: T, expected: T) -> Result<(), String> {
        if actual == expected {
            Ok(())
        } else {
            Err(self.fail(&format!("{what}: got {actual:?}, model says {expected:?}")))
        }
    }

    /// Arms the pool: the `nth` allocation attempt from now fails.
    fn plan_alloc(&mut self, nth: u32) {
        self.model.memory.plan(nth);
        let attempts = self.kernel.pool().stats().attempts;
        self.kernel.pool().fail_attempt(attempts + u64::from(nth));
        self.summary.faults += 1;
    }

    /// Starts an operation: its allocation attempts are counted from here.
    fn begin_op(&mut self) {
        self.attempts_at_start = self.kernel.pool().stats().attempts;
        self.model.memory.begin();
    }

    /// Plans the `k`-th value initialisation from now to fail.
    fn plan_init(&mut self, k: u32) {
        self.kernel.fail_payload_init(self.model.inits.plan(k));
        self.summary.faults += 1;
    }

    /// Ends an operation; the allocation attempts it made must be the ones
    /// the model predicts (reads and unloads make none).
    fn end_op(&mut self) -> Result<(), String> {
        self.kernel.pool().clear_faults();
        self.model.faults.armed = [None; 2];
        for (_, plan) in self.others.iter().flatten() {
            *plan.lock() = None;
        }
        // Every DPC queued by this step has run: visits are deterministic.
        self.kernel.flush_dpcs();
        let attempts = self.kernel.pool().stats().attempts - self.attempts_at_start;
        self.expect("allocation attempts of this step", attempts, u64::from(self.model.memory.attempts()))
    }

    fn load(&mut self, fault: LoadFault) -> Result<(), String> {
        self.summary.loads += 1;
        match fault {
            LoadFault::None => {}
            LoadFault::Alloc(n) => self.plan_alloc(n),
            LoadFault::PayloadInit(k) => self.plan_init(k),
            LoadFault::Register => {
                self.kernel.fail_next_register();
                self.model.faults.register += 1;
                self.summary.faults += 1;
            }
        }
        let expected = self.model.load();
        let actual = SimOs::load_monitor(&self.kernel).map(|driver| self.driver = Some(driver));
        self.summary.failed_loads += u32::from(actual.is_err());
        self.expect("load result", actual, expected)?;
        if actual.is_ok() {
            self.check_loaded()?;
        }
        // The driver "after" procnotify registers once procnotify first loaded.
        if self.model.loaded && self.others[1].is_none() && self.want_after {
            self.others[1] = Some(other_driver(&self.kernel));
            self.model.regs.push(Reg::After);
        }
        Ok(())
    }

    fn unload(&mut self) {
        if let Some(driver) = self.driver.take() {
            self.summary.notifications += u64::from(driver.context().stats().notifications);
            driver.unload();
        }
        self.model.reset_driver();
    }

    fn hot_add(&mut self, fault: AddFault) -> Result<(), String> {
        self.summary.hot_adds += 1;
        match fault {
            AddFault::None => {}
            AddFault::Veto { after, status } => {
                let which = usize::from(after);
                if let Some((_, plan)) = &self.others[which] {
                    *plan.lock() = Some(status);
                    self.model.faults.armed[which] = Some(status);
                    self.summary.faults += 1;
                }
            }
            AddFault::StartFailure(status) => {
                self.kernel.fail_next_start(status);
                self.model.faults.start.push_back(status);
                self.summary.faults += 1;
            }
            AddFault::Alloc(n) => self.plan_alloc(n),
            AddFault::PayloadInit => self.plan_init(0),
            AddFault::Prepare => {
                self.kernel.fail_next_prepare();
                self.model.faults.prepare += 1;
                self.summary.faults += 1;
            }
        }
        let next = self.kernel.processor_count();
        let online_before = self.state(next) == Some(SlotState::Online);
        let expected = self.model.hot_add();
        let actual = self.kernel.hot_add();
        self.expect("hot-add result", actual, expected)?;
        self.check_add(actual, online_before)
    }

    /// The state of the engine's slot at `index`, if it has a value.
    fn state(&self, index: u32) -> Option<SlotState> {
        self.driver.as_ref()?.context().table().get(index).map(Slot::state)
    }

    /// What `processor-change-semantics.md` says a finished add leaves,
    /// checked on the engine without the model (whose rules come from the
    /// same `transition` as the engine's): a processor whose add completed
    /// runs, so its slot is online; one whose add failed never ran, so its
    /// slot is not present (unless it was online before: an index adopted
    /// from an unannounced `AddComplete`).
    fn check_add(&self, result: HotAdd, online_before: bool) -> Result<(), String> {
        if self.driver.is_none() {
            return Ok(());
        }
        match result {
            HotAdd::Added(index) => self.expect(
                &format!("slot {index} after its add completed"),
                self.state(index),
                Some(SlotState::Online),
            ),
            HotAdd::Failed { index, .. } if !online_before => match self.state(index) {
                None | Some(SlotState::Vacant) => Ok(()),
                Some(state) => Err(self.fail(&format!("slot {index} is {state:?} after its add failed"))),
            },
            HotAdd::Failed { .. } | HotAdd::Refused(_) => Ok(()),
        }
    }

    /// After a load succeeded, every processor present is online.
    fn check_loaded(&self) -> Result<(), String> {
        for index in 0..self.kernel.processor_count() {
            self.expect(&format!("slot {index} after the load"), self.state(index), Some(SlotState::Online))?;
        }
        Ok(())
    }

    /// The read path on `processor`, as a DPC routine or any reader runs it.
    fn read(&mut self, processor: u32) -> Result<(), String> {
        let Some(driver) = &self.driver else { return Ok(()) };
        self.summary.reads += 1;
        let context = driver.context();
        let visited = SimKernel::run_on(processor, || context.current().map(|value| value.visit(context.os())));
        let expected = self.model.read(processor);
        self.expect(&format!("read on processor {processor} found a value"), visited.is_some(), expected)?;
        let found = context.table().get(processor).map(Slot::index);
        self.expect("Table::get(processor).index()", found, expected.then_some(processor))
    }

    pub(super) fn step(&mut self, op: Op) -> Result<(), String> {
        self.trace.push(format!("{op:?}"));
        self.summary.steps += 1;
        self.model.touched.clear();
        self.begin_op();
        match op {
            Op::Inject(change) => {
                let expected = self.model.inject(change);
                let actual = self.kernel.inject(change);
                self.expect("injected notification's OperationStatus per registration", actual, expected)?;
            }
            Op::HotAdd(fault) => self.hot_add(fault)?,
            Op::Read(processor) => self.read(processor)?,
            Op::ReadAll => {
                for processor in 0..self.kernel.processor_count() {
                    self.read(processor)?;
                }
            }
            Op::Toggle if self.driver.is_some() => self.unload(),
            Op::Toggle => self.load(LoadFault::None)?,
            Op::Reload(fault) => {
                self.unload();
                self.check(true)?;
                self.load(fault)?;
            }
        }
        self.end_op()?;
        let full = matches!(op, Op::Toggle | Op::Reload(_)) || self.summary.steps.is_multiple_of(FULL_CHECK_EVERY);
        self.check(full)?;
        self.check_query()
    }

    /// With query checks on and procnotify loaded: its query's replies, for
    /// the lengths `query::check` picks, against the model.
    fn check_query(&self) -> Result<(), String> {
        let (Some(seed), Some(driver)) = (self.query, &self.driver) else { return Ok(()) };
        let rows = (0..self.model.capacity)
            .filter_map(|index| {
                let value = self.model.value(index)?;
                let c = value.counters;
                Some(procnotify_core::abi::Row {
                    index,
                    number: value.number,
                    state: value.state,
                    starts: c.starts,
                    completes: c.completes,
                    failures: c.failures,
                    visits: c.visits,
                })
            })
            .collect();
        let expected = Expected {
            rows,
            capacity: self.model.capacity,
            reported_max: self.kernel.config().reported_max,
            allocated_slots: self.model.allocated_slots(),
            stats: self.model.stats,
        };
        query::check(driver, &expected, seed, self.summary.steps).map_err(|what| self.fail(&what))
    }

    /// Compares the slot at `index` (or its absence) with the model.
    fn check_slot(&self, driver: &SimDriver, index: u32) -> Result<(), String> {
        let actual = driver.context().table().get(index).map(|slot| {
            let value = slot.value();
            let model = Value { state: slot.state(), number: slot.proc_number(), counters: value.counters() };
            (slot.index(), value.index(), model)
        });
        let expected = self.model.value(index).map(|value| (index, index, *value));
        self.expect(&format!("slot {index} (index, value's index, state/number/counters)"), actual, expected)
    }

    /// Compares everything observable with the model: the touched slots, or
    /// with `full` every slot.
    fn check(&self, full: bool) -> Result<(), String> {
        let violations = self.kernel.violations();
        if !violations.is_empty() {
            return Err(self.fail(&format!("pool / kernel violations: {violations:?}")));
        }
        let pool = self.kernel.pool().stats();
        self.expect("live allocations", pool.live, self.model.live_allocations())?;
        self.expect("live values (simulated DPCs)", self.kernel.payloads_live(), self.model.live_values())?;
        self.expect("processor count", self.kernel.processor_count(), self.model.count)?;
        self.expect("loaded", self.driver.is_some(), self.model.loaded)?;
        let Some(driver) = &self.driver else { return Ok(()) };
        let context = driver.context();
        let table = context.table();
        self.expect("capacity", table.capacity(), self.model.capacity)?;
        self.expect("slots allocated", table.allocated_slots(), self.model.allocated_slots())?;
        self.expect("stats", context.stats(), self.model.stats)?;
        self.expect("recorded status", context.recorded_status(), self.model.recorded)?;
        if full {
            for index in 0..table.capacity() {
                self.check_slot(driver, index)?;
            }
            for index in [table.capacity(), table.capacity().saturating_add(1), u32::MAX] {
                self.expect("Table::get past capacity", table.get(index).is_some(), false)?;
            }
        } else {
            for &index in &self.model.touched {
                self.check_slot(driver, index)?;
            }
        }
        Ok(())
    }
}
