//! Planned faults: armed in the kernel or pool just before the step they
//! target, checked right after it (did it fire?), disarmed, and reported. A
//! fault that never fired is named on stderr and changes the exit code.
//!
//! [`Faults`] works on the kernel and the other drivers it is handed; it
//! knows nothing of the machine that runs the session.

use std::format;
use std::string::String;
use std::vec::Vec;

use std::io::Write;

use super::others::Others;
use super::step::{AddFault, Fault, LoadFault, Origin};
use crate::kernel::SimKernel;

/// A fault declared once (`fault ...`, or a `run` flag) and whether it fired.
struct Planned {
    origin: Origin,
    fault: Fault,
    fired: bool,
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

/// The session's planned faults, and the result of every fault so far.
#[derive(Default)]
pub(super) struct Faults {
    planned: Vec<Planned>,
    /// (label, fired) of each step's own fault, as checked, then of every
    /// planned fault and standing veto at the end.
    results: Vec<(String, bool)>,
    /// Bytes the results added since [`Faults::take_summary_bytes`] was
    /// last called: what they will add to the summary.
    summary_bytes: u64,
}

/// About the bytes a fault's line takes in the summary, text or JSON.
fn summary_bytes(label: &str) -> u64 {
    label.len() as u64 + 32
}

fn step_label(origin: &Origin, what: &str) -> String {
    format!("{origin}: {what}")
}

fn arm_alloc(kernel: &SimKernel, n: u32) -> Check {
    let ordinal = kernel.pool().stats().attempts + u64::from(n);
    kernel.pool().fail_attempt(ordinal);
    Check::Alloc(ordinal)
}

fn arm_payload(kernel: &SimKernel, offset: u32) -> Check {
    let ordinal = kernel.pending_faults().payload_attempts + 1 + u64::from(offset);
    kernel.fail_payload_init(ordinal);
    Check::Payload(ordinal)
}

impl Faults {
    /// Declares a fault that waits for its target.
    pub(super) fn plan(&mut self, kernel: &SimKernel, origin: &Origin, fault: Fault) {
        if let Fault::FailAlloc { ordinal } = fault {
            kernel.pool().fail_attempt(u64::from(ordinal));
        }
        self.planned.push(Planned { origin: origin.clone(), fault, fired: false });
    }

    /// Arms the faults of a load: its own, a planned `fail-register`, and
    /// planned `fail-init`s for the processors present.
    pub(super) fn arm_load(&self, kernel: &SimKernel, origin: &Origin, fault: LoadFault) -> Vec<Armed> {
        let mut armed = Vec::new();
        let own = |check| Armed { source: Err(step_label(origin, &format!("load{fault}"))), check };
        match fault {
            LoadFault::None => {}
            LoadFault::Alloc(n) => armed.push(own(arm_alloc(kernel, n))),
            LoadFault::Init(k) => armed.push(own(arm_payload(kernel, k))),
            LoadFault::Register => {
                kernel.fail_next_register();
                armed.push(own(Check::Register));
            }
        }
        let present = kernel.processor_count();
        let mut register = fault == LoadFault::Register;
        for (n, planned) in self.planned.iter().enumerate().filter(|(_, planned)| !planned.fired) {
            let check = match planned.fault {
                Fault::FailRegister if !register => {
                    register = true;
                    kernel.fail_next_register();
                    Check::Register
                }
                Fault::FailInit { index } if index < present && fault != LoadFault::Init(index) => {
                    arm_payload(kernel, index)
                }
                _ => continue,
            };
            armed.push(Armed { source: Ok(n), check });
        }
        armed
    }

    /// Arms the faults of a hot-add of processor `index`: its own, then the
    /// planned ones for that index (one of each kind). A veto by a driver
    /// that is not registered is named on `err` and counts as not fired.
    pub(super) fn arm_add(
        &mut self,
        kernel: &SimKernel,
        others: &Others,
        (origin, index, fault): (&Origin, u32, &AddFault),
        err: &mut dyn Write,
    ) -> Vec<Armed> {
        let mut armed = Vec::new();
        let label = step_label(origin, &format!("hot-add{fault}"));
        let check = match fault {
            AddFault::None => None,
            AddFault::Veto { driver, status } => match others.arm(driver, *status) {
                Some((other, before)) => Some(Check::Veto { other, before }),
                None => {
                    let _ = writeln!(err, "simulate: {origin}: no registered other driver \"{driver}\" to veto");
                    self.summary_bytes += summary_bytes(&label);
                    self.results.push((label.clone(), false));
                    None
                }
            },
            AddFault::FailStart(status) => {
                kernel.fail_next_start(*status);
                Some(Check::Start)
            }
            AddFault::FailAlloc(n) => Some(arm_alloc(kernel, *n)),
            AddFault::FailInit => Some(arm_payload(kernel, 0)),
            AddFault::FailPrepare => {
                kernel.fail_next_prepare();
                Some(Check::Prepare)
            }
        };
        if let Some(check) = check {
            armed.push(Armed { source: Err(label), check });
        }
        self.arm_planned_add(kernel, index, fault, &mut armed);
        armed
    }

    /// The planned faults for a hot-add of `index`, one of each kind, none
    /// of a kind the step's own `fault` already arms.
    fn arm_planned_add(&self, kernel: &SimKernel, index: u32, fault: &AddFault, armed: &mut Vec<Armed>) {
        let (mut start, mut prepare, mut init) =
            (matches!(fault, AddFault::FailStart(_)), *fault == AddFault::FailPrepare, *fault == AddFault::FailInit);
        for (n, planned) in self.planned.iter().enumerate().filter(|(_, planned)| !planned.fired) {
            let check = match planned.fault {
                Fault::FailStart { index: at, status } if at == index && !start => {
                    start = true;
                    kernel.fail_next_start(status);
                    Check::Start
                }
                Fault::FailPrepare { index: at } if at == index && !prepare => {
                    prepare = true;
                    kernel.fail_next_prepare();
                    Check::Prepare
                }
                Fault::FailInit { index: at } if at == index && !init => {
                    init = true;
                    arm_payload(kernel, 0)
                }
                _ => continue,
            };
            armed.push(Armed { source: Ok(n), check });
        }
    }

    /// After the step: records which armed faults fired (naming on `err`
    /// each of the step's own that did not), then disarms the rest.
    pub(super) fn check(&mut self, kernel: &SimKernel, others: &Others, armed: Vec<Armed>, err: &mut dyn Write) {
        let pending = kernel.pending_faults();
        let attempts = kernel.pool().stats().attempts;
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
                Check::Veto { other, before } => others.vetoes_at(other) > before,
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
                            err,
                            "simulate: fault did not fire: {label}: its target was not reached in that step"
                        );
                    }
                    self.summary_bytes += summary_bytes(&label);
                    self.results.push((label, fired));
                }
            }
        }
        kernel.clear_faults();
        others.disarm();
        if pool_armed {
            // Clearing the pool's plan drops the session-wide ordinals too:
            // plan again those still ahead.
            kernel.pool().clear_faults();
            for planned in &self.planned {
                if let Fault::FailAlloc { ordinal } = planned.fault
                    && u64::from(ordinal) > attempts
                {
                    kernel.pool().fail_attempt(u64::from(ordinal));
                }
            }
        }
    }

    /// The bytes the results added to the summary since the last call (the
    /// session charges them to its output limit as they accrue).
    pub(super) fn take_summary_bytes(&mut self) -> u64 {
        std::mem::take(&mut self.summary_bytes)
    }

    /// At the end: every planned fault and standing veto, fired or not (each
    /// that did not is named on `err`); returns every fault's result.
    pub(super) fn finish(mut self, kernel: &SimKernel, others: &Others, err: &mut dyn Write) -> Vec<(String, bool)> {
        let attempts = kernel.pool().stats().attempts;
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
        results.extend(others.standing());
        for (label, fired, why) in results {
            if !fired {
                let _ = writeln!(err, "simulate: fault did not fire: {label}: {why}");
            }
            self.results.push((label, fired));
        }
        self.results
    }
}
