//! Building a session: `run`'s flags as a [`Script`], a fuzz input as a
//! [`Script`], and the checks every script passes before it runs.

use std::collections::BTreeSet;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use procnotify_core::{MAX_PROCESSORS, NtStatus};

use super::args::{MAX_ADD_ATTEMPTS, RunArgs, each, flag};
use super::fuzz_input::{self, Header, Op};
use super::step::{AddFault, Expect, Fault, LoadFault, Origin, Reported, Script, Setup, Step};

/// `run`'s flags as a script: the other driver and the faults first, then
/// `load`, then the hot-adds (the unload happens at the end of every session).
///
/// # Errors
///
/// A message for flags that contradict each other.
pub fn from_run(args: &RunArgs) -> Result<Script, String> {
    let max = args.max.unwrap_or_else(|| args.boot.saturating_add(args.add).min(MAX_PROCESSORS));
    if max < args.boot {
        return Err(format!("--max {max} is below --boot {}", args.boot));
    }
    if let Some(k) = args.fail_register_at
        && k >= args.boot
    {
        return Err(format!("--fail-register-at {k}: only processors 0..{} are present at registration", args.boot));
    }
    let setup = Setup { boot: args.boot, max, reported: Reported::Max, dynamic_partitioning: true };
    let mut steps = Vec::new();
    if !args.veto_add.is_empty() {
        let vetoes = args.veto_add.iter().map(|&index| (index, NtStatus::ACCESS_DENIED)).collect();
        let origin = Origin::Flag(String::from("--veto-add"));
        steps.push((origin, Step::OtherDriver { name: String::from("other"), vetoes }));
    }
    for (origin, index) in each("fail-add", &args.fail_add) {
        steps.push((Origin::Flag(origin), Step::Fault(Fault::FailStart { index, status: NtStatus::UNSUCCESSFUL })));
    }
    for (origin, index) in each("fail-prepare", &args.fail_prepare) {
        steps.push((Origin::Flag(origin), Step::Fault(Fault::FailPrepare { index })));
    }
    for (origin, index) in each("fail-init", &args.fail_init) {
        steps.push((Origin::Flag(origin), Step::Fault(Fault::FailInit { index })));
    }
    if let Some(index) = args.fail_register_at {
        steps.push((Origin::Flag(flag("fail-register-at", index)), Step::Fault(Fault::FailInit { index })));
    }
    for (origin, ordinal) in each("fail-alloc", &args.fail_alloc) {
        steps.push((Origin::Flag(origin), Step::Fault(Fault::FailAlloc { ordinal })));
    }
    if args.fail_register {
        steps.push((Origin::Flag(String::from("--fail-register")), Step::Fault(Fault::FailRegister)));
    }
    steps.push((Origin::Flag(String::from("run")), Step::Load(LoadFault::None)));
    if args.add > 0 {
        steps.push((Origin::Flag(flag("add", args.add)), Step::HotAdd { count: args.add, fault: AddFault::None }));
    }
    Ok(Script { setup, steps })
}

/// A decoded fuzz input as a script, step for step.
pub fn from_fuzz(header: Header, ops: &[Op]) -> Script {
    let setup = Setup {
        boot: header.boot,
        max: header.max,
        reported: match header.reported_max {
            fuzz_input::Reported::Max => Reported::Max,
            fuzz_input::Reported::Half => Reported::Half,
            fuzz_input::Reported::Huge => Reported::Huge,
        },
        dynamic_partitioning: header.dynamic_partitioning,
    };
    let mut steps = Vec::new();
    let mut push = |step| steps.push((Origin::Line(steps.len() + 1), step));
    let other = |name: &str| Step::OtherDriver { name: name.to_string(), vetoes: Vec::new() };
    if header.other_before {
        push(other("before"));
    }
    push(Step::Load(LoadFault::None));
    if header.other_after {
        push(other("after"));
    }
    for op in ops {
        push(match *op {
            Op::Inject(change) => Step::Notify(change),
            Op::HotAdd(fault) => Step::HotAdd { count: 1, fault: add_fault(header, fault) },
            Op::Read(processor) => Step::Read(processor),
            Op::ReadAll => Step::ReadAll,
            Op::Toggle => Step::Toggle,
            Op::Reload(fault) => Step::Reload(match fault {
                fuzz_input::LoadFault::None => LoadFault::None,
                fuzz_input::LoadFault::Alloc(n) => LoadFault::Alloc(n),
                fuzz_input::LoadFault::PayloadInit(k) => LoadFault::Init(k),
                fuzz_input::LoadFault::Register => LoadFault::Register,
            }),
        });
    }
    // Printed line numbers: the setup lines come first.
    let offset = 2 + usize::from(setup.reported != Reported::Max) + usize::from(!setup.dynamic_partitioning);
    for (origin, _) in &mut steps {
        if let Origin::Line(line) = origin {
            *line += offset;
        }
    }
    Script { setup, steps }
}

fn add_fault(header: Header, fault: fuzz_input::AddFault) -> AddFault {
    match fault {
        fuzz_input::AddFault::None => AddFault::None,
        // The fuzz harness arms a driver that does not exist as no fault.
        fuzz_input::AddFault::Veto { after, status }
            if (after && header.other_after) || (!after && header.other_before) =>
        {
            AddFault::Veto { driver: String::from(if after { "after" } else { "before" }), status }
        }
        fuzz_input::AddFault::Veto { .. } => AddFault::None,
        fuzz_input::AddFault::StartFailure(status) => AddFault::FailStart(status),
        fuzz_input::AddFault::Alloc(n) => AddFault::FailAlloc(n),
        fuzz_input::AddFault::PayloadInit => AddFault::FailInit,
        fuzz_input::AddFault::Prepare => AddFault::FailPrepare,
    }
}

/// The most other drivers one session may register.
pub const MAX_OTHER_DRIVERS: usize = 64;

/// The longest name an other driver may have, in bytes.
pub const MAX_DRIVER_NAME: usize = 32;

/// The most planned faults one session may declare: `fault` lines and
/// `run`'s fault flags, and each `veto INDEX` of an other driver.
pub const MAX_PLANNED_FAULTS: usize = 1024;

/// Checks a script before it runs: at most [`MAX_ADD_ATTEMPTS`] hot-adds in
/// all, [`MAX_OTHER_DRIVERS`] other drivers (named once, before they are
/// used, in at most [`MAX_DRIVER_NAME`] bytes) and [`MAX_PLANNED_FAULTS`]
/// planned faults; known counters; and no planned fault that can never
/// fire (see [`Reach`]).
///
/// # Errors
///
/// The first problem, with where it is.
pub fn validate(script: &Script) -> Result<(), String> {
    let reach = Reach::of(script)?;
    let mut drivers = BTreeSet::new();
    let mut planned = 0_usize;
    for (origin, step) in &script.steps {
        match step {
            Step::HotAdd { fault: AddFault::Veto { driver, .. }, .. } if !drivers.contains(driver.as_str()) => {
                return Err(format!("{origin}: no other driver \"{driver}\" is registered before this line"));
            }
            Step::OtherDriver { name, vetoes } => {
                other_driver(origin, name, drivers.len())?;
                if !drivers.insert(name.as_str()) {
                    return Err(format!("{origin}: other driver \"{name}\" is already registered"));
                }
                for (index, _) in vetoes {
                    let what = match origin {
                        Origin::Flag(flag) => format!("{flag} {index}"),
                        Origin::Line(_) => format!("{origin}: other-driver {name} veto {index}"),
                    };
                    reach.hot_added(*index).map_err(|why| format!("{what}: can never fire: {why}"))?;
                }
                planned += vetoes.len();
            }
            Step::Fault(fault) => {
                reach.fault(*fault).map_err(|why| match origin {
                    Origin::Flag(flag) => format!("{flag}: can never fire: {why}"),
                    Origin::Line(_) => format!("{origin}: fault {fault}: can never fire: {why}"),
                })?;
                planned += 1;
            }
            Step::Expect(Expect::Slot { counters, .. }) => {
                known(origin, counters, &["starts", "completes", "failures", "visits"])?;
            }
            Step::Expect(Expect::Stats(counters)) => {
                known(origin, counters, &["notifications", "vetoes", "anomalies"])?;
            }
            _ => {}
        }
        if planned > MAX_PLANNED_FAULTS {
            return Err(format!("{origin}: more than {MAX_PLANNED_FAULTS} planned faults in one session (the limit)"));
        }
    }
    Ok(())
}

fn other_driver(origin: &Origin, name: &str, registered: usize) -> Result<(), String> {
    if name.len() > MAX_DRIVER_NAME {
        return Err(format!("{origin}: other driver names are at most {MAX_DRIVER_NAME} bytes long"));
    }
    if registered >= MAX_OTHER_DRIVERS {
        return Err(format!("{origin}: more than {MAX_OTHER_DRIVERS} other drivers in one session (the limit)"));
    }
    Ok(())
}

/// The processors a session's hot-adds can reach: from `boot` (the first
/// index a hot-add gets) to below `end` = boot + hot-add attempts, at most
/// the maximum. A hot-add reuses the index of one that failed and only a
/// success moves on, so an index at or past `end` is never hot-added, and
/// one below `boot` never is either: it is present at boot.
pub struct Reach {
    boot: u32,
    max: u32,
    adds: u32,
    dynamic_partitioning: bool,
}

impl Reach {
    /// The reach of `script`'s hot-adds.
    ///
    /// # Errors
    ///
    /// More than [`MAX_ADD_ATTEMPTS`] hot-add attempts in all.
    pub fn of(script: &Script) -> Result<Self, String> {
        let mut adds = 0_u32;
        for (origin, step) in &script.steps {
            if let Step::HotAdd { count, .. } = step {
                adds = adds.saturating_add(*count);
                if adds > MAX_ADD_ATTEMPTS {
                    return Err(format!(
                        "{origin}: more than {MAX_ADD_ATTEMPTS} hot-add attempts in one session (the limit)"
                    ));
                }
            }
        }
        let setup = script.setup;
        Ok(Self { boot: setup.boot, max: setup.max, adds, dynamic_partitioning: setup.dynamic_partitioning })
    }

    /// Whether some hot-add of the session can get processor `index`.
    ///
    /// # Errors
    ///
    /// Why none can.
    pub fn hot_added(&self, index: u32) -> Result<(), String> {
        let end = self.boot.saturating_add(self.adds).min(self.max);
        if !self.dynamic_partitioning {
            Err(String::from("dynamic partitioning is off: no hot-add happens"))
        } else if index < self.boot {
            Err(format!("processor {index} is present at boot (0..{}): it is never hot-added", self.boot))
        } else if index >= self.max {
            Err(format!("processor {index} is not below the maximum of {} processors", self.max))
        } else if index >= end {
            Err(format!(
                "the session's {} hot-add attempts reach processor {} at most",
                self.adds,
                end.saturating_sub(1)
            ))
        } else {
            Ok(())
        }
    }

    /// Whether a planned fault can fire.
    ///
    /// # Errors
    ///
    /// Why it cannot.
    pub fn fault(&self, fault: Fault) -> Result<(), String> {
        match fault {
            Fault::FailStart { index, .. } | Fault::FailPrepare { index } => self.hot_added(index),
            // Processors present at boot are initialised at every load.
            Fault::FailInit { index } if index < self.boot => Ok(()),
            Fault::FailInit { index } => self.hot_added(index),
            Fault::FailAlloc { .. } | Fault::FailRegister => Ok(()),
        }
    }
}

fn known(origin: &Origin, counters: &[(String, u64)], names: &[&str]) -> Result<(), String> {
    match counters.iter().find(|(name, _)| !names.contains(&name.as_str())) {
        Some((name, _)) => Err(format!("{origin}: unknown counter `{name}` (one of {})", names.join(", "))),
        None => Ok(()),
    }
}
