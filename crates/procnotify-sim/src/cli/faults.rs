//! Planned faults: armed in the kernel or pool just before the step they
//! target, checked right after it (did it fire?), disarmed, and reported. A
//! fault that never fired is named on stderr and changes the exit code.

use std::format;
use std::string::String;
use std::vec::Vec;

use super::machine::Machine;
use super::step::{AddFault, Fault, LoadFault, Origin};

/// A fault declared once (`fault ...`, or a `run` flag) and whether it fired.
pub(super) struct Planned {
    pub origin: Origin,
    pub fault: Fault,
    pub fired: bool,
}

impl Planned {
    fn label(&self) -> String {
        match &self.origin {
            Origin::Line(_) => format!("{}: fault {}", self.origin, self.fault),
            Origin::Flag(flag) => flag.clone(),
        }
    }
}

/// How to tell, after the step, whether an armed fault fired.
#[derive(Clone, Copy)]
enum Check {
    Register,
    Prepare,
    Start,
    /// The payload initialisation with this ordinal was attempted.
    Payload(u64),
    /// The pool allocation attempt with this ordinal was made.
    Alloc(u64),
    /// The other driver (by position) vetoed more than `before` times.
    Veto {
        other: usize,
        before: u32,
    },
}

/// A fault armed for one step.
pub(super) struct Armed {
    /// The planned fault it came from, or the step's own fault (its label).
    source: Result<usize, String>,
    check: Check,
}

impl Machine<'_> {
    pub(super) fn plan(&mut self, origin: &Origin, fault: Fault) {
        if let Fault::FailAlloc { ordinal } = fault {
            self.kernel.pool().fail_attempt(u64::from(ordinal));
        }
        self.planned.push(Planned { origin: origin.clone(), fault, fired: false });
    }

    fn step_label(origin: &Origin, what: &str) -> String {
        format!("{origin}: {what}")
    }

    fn arm_alloc(&self, n: u32) -> Check {
        let ordinal = self.kernel.pool().stats().attempts + u64::from(n);
        self.kernel.pool().fail_attempt(ordinal);
        Check::Alloc(ordinal)
    }

    fn arm_payload(&self, offset: u32) -> Check {
        let ordinal = self.kernel.pending_faults().payload_attempts + 1 + u64::from(offset);
        self.kernel.fail_payload_init(ordinal);
        Check::Payload(ordinal)
    }

    /// Arms the faults of a load: its own, a planned `fail-register`, and
    /// planned `fail-init`s for the processors present.
    pub(super) fn arm_load(&mut self, origin: &Origin, fault: LoadFault) -> Vec<Armed> {
        let mut armed = Vec::new();
        let own = |check| Armed { source: Err(Self::step_label(origin, &format!("load{fault}"))), check };
        match fault {
            LoadFault::None => {}
            LoadFault::Alloc(n) => armed.push(own(self.arm_alloc(n))),
            LoadFault::Init(k) => armed.push(own(self.arm_payload(k))),
            LoadFault::Register => {
                self.kernel.fail_next_register();
                armed.push(own(Check::Register));
            }
        }
        let present = self.kernel.processor_count();
        let mut register = fault == LoadFault::Register;
        for n in 0..self.planned.len() {
            let Some(planned) = self.planned.get(n).filter(|planned| !planned.fired) else { continue };
            let check = match planned.fault {
                Fault::FailRegister if !register => {
                    register = true;
                    self.kernel.fail_next_register();
                    Check::Register
                }
                Fault::FailInit { index } if index < present && fault != LoadFault::Init(index) => {
                    self.arm_payload(index)
                }
                _ => continue,
            };
            armed.push(Armed { source: Ok(n), check });
        }
        armed
    }

    /// Arms the faults of a hot-add of processor `index`: its own, then the
    /// planned ones for that index (one of each kind).
    pub(super) fn arm_add(&mut self, origin: &Origin, index: u32, fault: &AddFault) -> Vec<Armed> {
        let mut armed = Vec::new();
        let label = Self::step_label(origin, &format!("hot-add{fault}"));
        let check = match fault {
            AddFault::None => None,
            AddFault::Veto { driver, status } => {
                match self.others.iter().position(|other| other.name == *driver && other.handle.is_some()) {
                    Some(other) => self.others.get(other).map(|o| {
                        let mut plan = o.plan.lock();
                        plan.armed = Some(*status);
                        Check::Veto { other, before: plan.vetoes }
                    }),
                    None => {
                        self.complain(origin, &format!("no registered other driver \"{driver}\" to veto"));
                        self.summary.faults.push((label.clone(), false));
                        None
                    }
                }
            }
            AddFault::FailStart(status) => {
                self.kernel.fail_next_start(*status);
                Some(Check::Start)
            }
            AddFault::FailAlloc(n) => Some(self.arm_alloc(*n)),
            AddFault::FailInit => Some(self.arm_payload(0)),
            AddFault::FailPrepare => {
                self.kernel.fail_next_prepare();
                Some(Check::Prepare)
            }
        };
        if let Some(check) = check {
            armed.push(Armed { source: Err(label), check });
        }
        let (mut start, mut prepare, mut init) =
            (matches!(fault, AddFault::FailStart(_)), *fault == AddFault::FailPrepare, *fault == AddFault::FailInit);
        for n in 0..self.planned.len() {
            let Some(planned) = self.planned.get(n).filter(|planned| !planned.fired) else { continue };
            let check = match planned.fault {
                Fault::FailStart { index: at, status } if at == index && !start => {
                    start = true;
                    self.kernel.fail_next_start(status);
                    Check::Start
                }
                Fault::FailPrepare { index: at } if at == index && !prepare => {
                    prepare = true;
                    self.kernel.fail_next_prepare();
                    Check::Prepare
                }
                Fault::FailInit { index: at } if at == index && !init => {
                    init = true;
                    self.arm_payload(0)
                }
                _ => continue,
            };
            armed.push(Armed { source: Ok(n), check });
        }
        armed
    }

    /// After the step: records which armed faults fired, then disarms the rest.
    pub(super) fn check_armed(&mut self, armed: Vec<Armed>) {
        let pending = self.kernel.pending_faults();
        let attempts = self.kernel.pool().stats().attempts;
        let mut pool_armed = false;
        for Armed { source, check } in armed {
            let fired = match check {
                Check::Register => pending.register == 0,
                Check::Prepare => pending.prepare == 0,
                Check::Start => pending.start == 0,
                Check::Payload(ordinal) => pending.payload_attempts >= ordinal,
                Check::Alloc(ordinal) => {
                    pool_armed = true;
                    attempts >= ordinal
                }
                Check::Veto { other, before } => {
                    self.others.get(other).is_some_and(|other| other.plan.lock().vetoes > before)
                }
            };
            match source {
                Ok(n) => {
                    if let Some(planned) = self.planned.get_mut(n) {
                        planned.fired |= fired;
                    }
                }
                Err(label) => {
                    if !fired {
                        let _ = writeln!(
                            self.err,
                            "simulate: fault did not fire: {label}: its target was not reached in that step"
                        );
                    }
                    self.summary.faults.push((label, fired));
                }
            }
        }
        self.kernel.clear_faults();
        for other in &self.others {
            other.plan.lock().armed = None;
        }
        if pool_armed {
            // Clearing the pool's plan drops the session-wide ordinals too:
            // plan again those still ahead.
            self.kernel.pool().clear_faults();
            for planned in &self.planned {
                if let Fault::FailAlloc { ordinal } = planned.fault
                    && u64::from(ordinal) > attempts
                {
                    self.kernel.pool().fail_attempt(u64::from(ordinal));
                }
            }
        }
    }

    /// At the end: every planned fault and standing veto, fired or not.
    pub(super) fn report_planned(&mut self) {
        let attempts = self.kernel.pool().stats().attempts;
        let mut results = Vec::new();
        for planned in &self.planned {
            let (fired, why) = match planned.fault {
                Fault::FailAlloc { ordinal } => (
                    attempts >= u64::from(ordinal),
                    format!("procnotify made {attempts} pool allocation attempts in all"),
                ),
                Fault::FailStart { index, .. } | Fault::FailPrepare { index } => {
                    (planned.fired, format!("no hot-add of processor {index} got that far"))
                }
                Fault::FailInit { index } => (
                    planned.fired,
                    format!("processor {index}'s slot was never initialised while the fault was planned"),
                ),
                Fault::FailRegister => (planned.fired, String::from("procnotify never registered afterwards")),
            };
            results.push((planned.label(), fired, why));
        }
        for other in &self.others {
            for &(index, _, fired) in &other.plan.lock().standing {
                let label = match &other.origin {
                    Origin::Line(_) => format!("{}: other-driver {} veto {index}", other.origin, other.name),
                    Origin::Flag(_) => format!("--veto-add {index}"),
                };
                results.push((label, fired, format!("no AddStart for index {index} reached \"{}\"", other.name)));
            }
        }
        for (label, fired, why) in results {
            if !fired {
                let _ = writeln!(self.err, "simulate: fault did not fire: {label}: {why}");
            }
            self.summary.faults.push((label, fired));
        }
    }
}
