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

/// Checks a script before it runs: at most [`MAX_ADD_ATTEMPTS`] hot-adds in
/// all, other drivers named once and before they are used, known counters.
///
/// # Errors
///
/// The first problem, with where it is.
pub fn validate(script: &Script) -> Result<(), String> {
    let mut adds = 0_u64;
    let mut drivers = BTreeSet::new();
    for (origin, step) in &script.steps {
        match step {
            Step::HotAdd { count, fault } => {
                adds += u64::from(*count);
                if adds > u64::from(MAX_ADD_ATTEMPTS) {
                    return Err(format!(
                        "{origin}: more than {MAX_ADD_ATTEMPTS} hot-add attempts in one session (the limit)"
                    ));
                }
                if let AddFault::Veto { driver, .. } = fault
                    && !drivers.contains(driver.as_str())
                {
                    return Err(format!("{origin}: no other driver \"{driver}\" is registered before this line"));
                }
            }
            Step::OtherDriver { name, .. } if !drivers.insert(name.as_str()) => {
                return Err(format!("{origin}: other driver \"{name}\" is already registered"));
            }
            Step::Expect(Expect::Slot { counters, .. }) => {
                known(origin, counters, &["starts", "completes", "failures", "visits"])?;
            }
            Step::Expect(Expect::Stats(counters)) => {
                known(origin, counters, &["notifications", "vetoes", "anomalies"])?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn known(origin: &Origin, counters: &[(String, u64)], names: &[&str]) -> Result<(), String> {
    match counters.iter().find(|(name, _)| !names.contains(&name.as_str())) {
        Some((name, _)) => Err(format!("{origin}: unknown counter `{name}` (one of {})", names.join(", "))),
        None => Ok(()),
    }
}
