//! The script text format: one command a line, `#` starts a comment. Parsed
//! into a [`Script`] and printed back ([`Script`]'s `Display`) so that
//! `parse(print(s)) == s`. The reference is `docs/simulator.md`.

use std::fmt;
use std::string::{String, ToString};
use std::vec::Vec;

use procnotify_core::{MAX_PROCESSORS, NtStatus, ProcNumber};

use super::step::{AddFault, Expect, Fault, LoadFault, Origin, Reported, Script, Setup, Step};
use super::values::{parse_state, parse_status, parse_u32, state_text, status_text};
use crate::kernel::NotifyContext;

/// The most bytes a script file may have.
pub const MAX_SCRIPT_BYTES: usize = 1 << 20;

/// A line that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Parses a script (see the module documentation).
///
/// # Errors
///
/// The first line that is not a valid command, or a setup line after the
/// first action, or a script above [`MAX_SCRIPT_BYTES`].
pub fn parse(text: &str) -> Result<Script, ParseError> {
    if text.len() > MAX_SCRIPT_BYTES {
        return Err(ParseError { line: 0, message: format!("the script is larger than {MAX_SCRIPT_BYTES} bytes") });
    }
    let mut script = Script { setup: Setup::default(), steps: Vec::new() };
    let mut max_given = false;
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let words: Vec<&str> = raw.split('#').next().unwrap_or("").split_whitespace().collect();
        let Some((&command, args)) = words.split_first() else { continue };
        let fail = |message: String| ParseError { line, message };
        if let Some(setting) = parse_setup(command, args, &mut script.setup).map_err(&fail)? {
            if !script.steps.is_empty() {
                return Err(fail(format!("`{command}` must come before the first action")));
            }
            max_given |= setting;
            continue;
        }
        let step = parse_step(command, args).map_err(fail)?;
        script.steps.push((Origin::Line(line), step));
    }
    if !max_given {
        script.setup.max = script.setup.boot.saturating_add(4).min(MAX_PROCESSORS);
    }
    if script.setup.max < script.setup.boot {
        return Err(ParseError {
            line: 0,
            message: format!("max {} is below boot {}", script.setup.max, script.setup.boot),
        });
    }
    Ok(script)
}

/// A setup line: `Ok(Some(true))` when it set the maximum, `Ok(Some(false))`
/// for other settings, `Ok(None)` when `command` is not a setup command.
fn parse_setup(command: &str, args: &[&str], setup: &mut Setup) -> Result<Option<bool>, String> {
    let one = || match args {
        [value] => Ok(*value),
        _ => Err(format!("`{command}` takes one value")),
    };
    let processors = |value: &str| {
        let n = parse_u32(value)?;
        if (1..=MAX_PROCESSORS).contains(&n) { Ok(n) } else { Err(format!("{n} is not in 1..={MAX_PROCESSORS}")) }
    };
    match command {
        "boot" => setup.boot = processors(one()?)?,
        "max" => {
            setup.max = processors(one()?)?;
            return Ok(Some(true));
        }
        "reported-max" => {
            setup.reported = match one()? {
                "max" => Reported::Max,
                "half" => Reported::Half,
                "huge" => Reported::Huge,
                value => Reported::Value(parse_u32(value)?),
            }
        }
        "dynamic-partitioning" => {
            setup.dynamic_partitioning = match one()? {
                "on" => true,
                "off" => false,
                other => return Err(format!("dynamic-partitioning is `on` or `off`, not `{other}`")),
            }
        }
        _ => return Ok(None),
    }
    Ok(Some(false))
}

/// `key value` pairs after a command's fixed arguments.
fn pairs<'a>(args: &[&'a str]) -> Result<Vec<(&'a str, &'a str)>, String> {
    if !args.len().is_multiple_of(2) {
        return Err(format!("`{}` needs a value", args.last().copied().unwrap_or_default()));
    }
    Ok(args.chunks(2).map(|pair| (pair[0], pair[1])).collect())
}

fn parse_step(command: &str, args: &[&str]) -> Result<Step, String> {
    let none = || if args.is_empty() { Ok(()) } else { Err(format!("`{command}` takes no arguments")) };
    Ok(match command {
        "other-driver" => parse_other(args)?,
        "fault" => Step::Fault(parse_fault(args)?),
        "load" => Step::Load(parse_load_fault(args)?),
        "reload" => Step::Reload(parse_load_fault(args)?),
        "unload" => none().map(|()| Step::Unload)?,
        "toggle" => none().map(|()| Step::Toggle)?,
        "hot-add" => parse_hot_add(args)?,
        "notify" => parse_notify(args)?,
        "read" => match args {
            [processor] => Step::Read(parse_u32(processor)?),
            _ => return Err("`read` takes a processor index".into()),
        },
        "read-all" => none().map(|()| Step::ReadAll)?,
        "table" => none().map(|()| Step::Table)?,
        "expect" => Step::Expect(parse_expect(args)?),
        other => return Err(format!("unknown command `{other}` (see docs/simulator.md)")),
    })
}

fn parse_other(args: &[&str]) -> Result<Step, String> {
    let Some((&name, rest)) = args.split_first() else {
        return Err("`other-driver` needs a name".into());
    };
    if name == "procnotify" || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(format!("`{name}` is not a usable driver name (letters, digits, - and _)"));
    }
    let mut vetoes = Vec::new();
    let mut words = rest.iter();
    while let Some(&word) = words.next() {
        if word != "veto" {
            return Err(format!("`other-driver {name}` expects `veto INDEX [STATUS]`, not `{word}`"));
        }
        let index = parse_u32(words.next().ok_or("`veto` needs an index")?)?;
        let status = match words.clone().next() {
            Some(&next) if next != "veto" => {
                words.next();
                parse_failing(next)?
            }
            _ => NtStatus::ACCESS_DENIED,
        };
        vetoes.push((index, status));
    }
    Ok(Step::OtherDriver { name: name.to_string(), vetoes })
}

fn parse_failing(text: &str) -> Result<NtStatus, String> {
    let status = parse_status(text)?;
    if status.is_failure() { Ok(status) } else { Err(format!("{status} is not a failing status")) }
}

fn parse_fault(args: &[&str]) -> Result<Fault, String> {
    let number = |value: Option<&&str>| parse_u32(value.copied().ok_or("the fault needs a number")?);
    Ok(match args {
        ["fail-start", index, rest @ ..] => Fault::FailStart {
            index: parse_u32(index)?,
            status: match rest {
                [] => NtStatus::UNSUCCESSFUL,
                [status] => parse_failing(status)?,
                _ => return Err("`fault fail-start INDEX [STATUS]`".into()),
            },
        },
        ["fail-prepare", index] => Fault::FailPrepare { index: parse_u32(index)? },
        ["fail-init", index] => Fault::FailInit { index: parse_u32(index)? },
        ["fail-alloc", rest @ ..] if rest.len() == 1 => match number(rest.first())? {
            0 => return Err("allocations are counted from 1".into()),
            ordinal => Fault::FailAlloc { ordinal },
        },
        ["fail-register"] => Fault::FailRegister,
        _ => {
            return Err("`fault` is one of: fail-start INDEX [STATUS], fail-prepare INDEX, fail-init INDEX, \
                        fail-alloc N, fail-register"
                .into());
        }
    })
}

fn parse_load_fault(args: &[&str]) -> Result<LoadFault, String> {
    Ok(match args {
        [] => LoadFault::None,
        ["fail-alloc", n] => LoadFault::Alloc(parse_u32(n)?.max(1)),
        ["fail-init", k] => LoadFault::Init(parse_u32(k)?),
        ["fail-register"] => LoadFault::Register,
        _ => return Err("a load fault is one of: fail-alloc N, fail-init PROCESSOR, fail-register".into()),
    })
}

fn parse_hot_add(args: &[&str]) -> Result<Step, String> {
    let (count, rest) = match args.split_first() {
        Some((first, rest)) if first.starts_with(|c: char| c.is_ascii_digit()) => (parse_u32(first)?, rest),
        _ => (1, args),
    };
    let fault = match rest {
        [] => AddFault::None,
        ["veto", driver, rest @ ..] => AddFault::Veto {
            driver: (*driver).to_string(),
            status: match rest {
                [] => NtStatus::ACCESS_DENIED,
                [status] => parse_failing(status)?,
                _ => return Err("`hot-add veto DRIVER [STATUS]`".into()),
            },
        },
        ["fail-start"] => AddFault::FailStart(NtStatus::UNSUCCESSFUL),
        ["fail-start", status] => AddFault::FailStart(parse_failing(status)?),
        ["fail-alloc", n] => AddFault::FailAlloc(parse_u32(n)?.max(1)),
        ["fail-init"] => AddFault::FailInit,
        ["fail-prepare"] => AddFault::FailPrepare,
        _ => {
            return Err("a hot-add fault is one of: veto DRIVER [STATUS], fail-start [STATUS], fail-alloc N, \
                        fail-init, fail-prepare"
                .into());
        }
    };
    if count != 1 && fault != AddFault::None {
        return Err("a hot-add with a fault adds one processor".into());
    }
    Ok(Step::HotAdd { count, fault })
}

fn parse_notify(args: &[&str]) -> Result<Step, String> {
    let [state, index, rest @ ..] = args else {
        return Err("`notify STATE INDEX [status S] [group G] [number N]`".into());
    };
    let state = parse_state(state)?;
    let nt_number = parse_u32(index)?;
    let mut change =
        NotifyContext { state, nt_number, status: NtStatus::SUCCESS, proc_number: ProcNumber::dense(nt_number) };
    for (key, value) in pairs(rest)? {
        match key {
            "status" => change.status = parse_status(value)?,
            "group" => {
                change.proc_number.group =
                    u16::try_from(parse_u32(value)?).map_err(|_| format!("group {value} does not fit 16 bits"))?;
            }
            "number" => {
                change.proc_number.number =
                    u8::try_from(parse_u32(value)?).map_err(|_| format!("number {value} does not fit 8 bits"))?;
            }
            other => return Err(format!("`notify` has no `{other}`")),
        }
    }
    Ok(Step::Notify(change))
}

fn parse_expect(args: &[&str]) -> Result<Expect, String> {
    use super::step::{AddResult, SlotExpect};
    let counters = |rest: &[&str]| -> Result<Vec<(String, u64)>, String> {
        rest.iter()
            .map(|pair| {
                let (key, value) = pair.split_once('=').ok_or(format!("`{pair}`: expected NAME=VALUE"))?;
                Ok((key.to_string(), u64::from(parse_u32(value)?)))
            })
            .collect()
    };
    let optional_index = |rest: &[&str]| rest.first().map(|v| parse_u32(v)).transpose();
    Ok(match args {
        ["load", "ok"] => Expect::LoadOk,
        ["load", "failed"] => Expect::LoadFailed(None),
        ["load", "failed", status] => Expect::LoadFailed(Some(parse_status(status)?)),
        ["hot-add", "added", rest @ ..] if rest.len() <= 1 => Expect::HotAdd(AddResult::Added(optional_index(rest)?)),
        ["hot-add", "failed", rest @ ..] if rest.len() <= 2 => {
            Expect::HotAdd(AddResult::Failed(optional_index(rest)?, rest.get(1).map(|s| parse_status(s)).transpose()?))
        }
        ["hot-add", "refused", rest @ ..] if rest.len() <= 1 => {
            Expect::HotAdd(AddResult::Refused(rest.first().map(|s| (*s).to_string())))
        }
        ["outcome", outcome] => Expect::Outcome((*outcome).to_string()),
        ["veto", "none"] => Expect::Veto(None),
        ["veto", status] => Expect::Veto(Some(parse_status(status)?)),
        ["slot", index, state, rest @ ..] => {
            Expect::Slot { index: parse_u32(index)?, state: SlotExpect::parse(state)?, counters: counters(rest)? }
        }
        ["stats", rest @ ..] if !rest.is_empty() => Expect::Stats(counters(rest)?),
        ["processors", n] => Expect::Processors(parse_u32(n)?),
        ["read", "found"] => Expect::Read(true),
        ["read", "none"] => Expect::Read(false),
        _ => return Err("unknown expectation (see docs/simulator.md for the list)".into()),
    })
}

impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let setup = &self.setup;
        writeln!(f, "boot {}\nmax {}", setup.boot, setup.max)?;
        match setup.reported {
            Reported::Max => {}
            Reported::Half => writeln!(f, "reported-max half")?,
            Reported::Huge => writeln!(f, "reported-max huge")?,
            Reported::Value(n) => writeln!(f, "reported-max {n}")?,
        }
        if !setup.dynamic_partitioning {
            writeln!(f, "dynamic-partitioning off")?;
        }
        for (_, step) in &self.steps {
            writeln!(f, "{step}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OtherDriver { name, vetoes } => {
                write!(f, "other-driver {name}")?;
                for (index, status) in vetoes {
                    write!(f, " veto {index} {}", status_text(*status))?;
                }
                Ok(())
            }
            Self::Fault(fault) => write!(f, "fault {fault}"),
            Self::Load(fault) => write!(f, "load{fault}"),
            Self::Reload(fault) => write!(f, "reload{fault}"),
            Self::Unload => f.write_str("unload"),
            Self::Toggle => f.write_str("toggle"),
            Self::HotAdd { count, fault } => {
                f.write_str("hot-add")?;
                if *count != 1 {
                    write!(f, " {count}")?;
                }
                write!(f, "{fault}")
            }
            Self::Notify(change) => {
                write!(f, "notify {} {}", state_text(change.state), change.nt_number)?;
                if change.status != NtStatus::SUCCESS {
                    write!(f, " status {}", status_text(change.status))?;
                }
                if change.proc_number != ProcNumber::dense(change.nt_number) {
                    write!(f, " group {} number {}", change.proc_number.group, change.proc_number.number)?;
                }
                Ok(())
            }
            Self::Read(processor) => write!(f, "read {processor}"),
            Self::ReadAll => f.write_str("read-all"),
            Self::Table => f.write_str("table"),
            Self::Expect(expect) => write!(f, "expect {expect}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::step::{AddResult, SlotExpect};

    /// Every command and option, as `Display` writes them.
    const EVERY_LINE: &str = "\
boot 3
max 9
reported-max half
dynamic-partitioning off
other-driver first veto 4 STATUS_ACCESS_DENIED veto 5 0xC0DE0001
other-driver second
fault fail-start 4 STATUS_UNSUCCESSFUL
fault fail-prepare 5
fault fail-init 6
fault fail-alloc 7
fault fail-register
load fail-alloc 2
reload fail-init 1
reload fail-register
load
unload
toggle
hot-add 3
hot-add veto first STATUS_DEVICE_BUSY
hot-add fail-start 0xC0DE0002
hot-add fail-alloc 2
hot-add fail-init
hot-add fail-prepare
notify add-start 4
notify 7 4294967295 status STATUS_UNSUCCESSFUL
notify add-failure 65 group 3 number 200
read 2
read-all
table
expect load ok
expect load failed
expect load failed STATUS_INSUFFICIENT_RESOURCES
expect hot-add added
expect hot-add added 4
expect hot-add failed 4 STATUS_ACCESS_DENIED
expect hot-add refused at-maximum
expect outcome ignored(unknown-state=7)
expect veto none
expect veto STATUS_INVALID_PARAMETER
expect slot 2 online starts=1 visits=2
expect stats anomalies=1
expect processors 4
expect read found
expect read none
";

    #[test]
    fn every_line_prints_back_as_written() {
        let script = parse(EVERY_LINE).unwrap();
        assert_eq!(script.to_string(), EVERY_LINE);
        assert_eq!(script.steps.len(), EVERY_LINE.lines().count() - 4);
        assert_eq!(script.steps.first().map(|(origin, _)| origin.clone()), Some(Origin::Line(5)));
        let last = &script.steps.last().unwrap().1;
        assert_eq!(*last, Step::Expect(Expect::Read(false)));
        assert!(script.steps.iter().any(|(_, step)| *step
            == Step::Expect(Expect::HotAdd(AddResult::Failed(Some(4), Some(NtStatus::ACCESS_DENIED))))));
        assert!(script.steps.iter().any(|(_, step)| matches!(step,
            Step::Expect(Expect::Slot { index: 2, state: SlotExpect::Online, counters }) if counters.len() == 2)));
    }

    #[test]
    fn comments_blank_lines_and_defaults() {
        let script = parse("# a comment\n\n  boot 6   # trailing comment\nload\n").unwrap();
        assert_eq!((script.setup.boot, script.setup.max), (6, 10));
        assert_eq!(script.steps, std::vec![(Origin::Line(4), Step::Load(LoadFault::None))]);
        assert_eq!(parse("boot 2048\n").unwrap().setup.max, 2048);
    }

    #[test]
    fn bad_lines_name_their_line_and_problem() {
        for (text, line, message) in [
            ("frobnicate", 1, "unknown command `frobnicate`"),
            ("load\nboot 3", 2, "`boot` must come before the first action"),
            ("boot 0", 1, "0 is not in 1..=2048"),
            ("boot 4\nmax 2", 0, "max 2 is below boot 4"),
            ("notify add-begin 1", 1, "`add-begin` is not a state"),
            ("notify add-start", 1, "`notify STATE INDEX"),
            ("notify add-start 1 group 70000", 1, "does not fit 16 bits"),
            ("notify add-start 1 status", 1, "`status` needs a value"),
            ("notify add-start 1 status STATUS_BOGUS", 1, "unknown status name `STATUS_BOGUS`"),
            ("hot-add 2 fail-init", 1, "a hot-add with a fault adds one processor"),
            ("hot-add fail-start STATUS_SUCCESS", 1, "is not a failing status"),
            ("fault fail-alloc 0", 1, "allocations are counted from 1"),
            ("other-driver procnotify", 1, "not a usable driver name"),
            ("other-driver x veto", 1, "`veto` needs an index"),
            ("expect slot 1 sleeping", 1, "not `sleeping`"),
            ("expect nothing", 1, "unknown expectation"),
            ("read", 1, "`read` takes a processor index"),
            ("unload now", 1, "`unload` takes no arguments"),
        ] {
            let error = parse(text).unwrap_err();
            assert_eq!(error.line, line, "{text}");
            assert!(error.message.contains(message), "{text}: {}", error.message);
        }
        let huge = "#".repeat(MAX_SCRIPT_BYTES + 1);
        assert!(parse(&huge).unwrap_err().message.contains("larger than"));
    }
}
