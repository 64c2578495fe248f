//! The script text format: one command a line, `#` starts a comment. Parsed
//! into a [`Script`] and printed back ([`Script`]'s `Display`) so that
//! `parse(print(s)) == s`. The reference is `docs/simulator.md`.
//!
//! This module reads the file and its setup lines; `commands` parses each
//! action line and `print` writes a script back.

mod commands;
mod print;

use std::fmt;
use std::string::String;
use std::vec::Vec;

use procnotify_core::MAX_PROCESSORS;

use super::step::{Origin, Reported, Script, Setup};
use super::values::parse_u32;
use commands::parse_step;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::step::{AddResult, Expect, LoadFault, SlotExpect, Step};
    use procnotify_core::NtStatus;

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
query
query bytes=100
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
        assert!(script.steps.iter().any(|(_, step)| *step == Step::Query { bytes: None }));
        assert!(script.steps.iter().any(|(_, step)| *step == Step::Query { bytes: Some(100) }));
        let hex = parse("query bytes=0x40\nquery bytes=65600\n").unwrap();
        let bytes: Vec<_> = hex.steps.iter().map(|(_, step)| step.clone()).collect();
        assert_eq!(bytes, [Step::Query { bytes: Some(64) }, Step::Query { bytes: Some(65_600) }]);
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
            ("query 128", 1, "`query` takes `bytes=N` (the output buffer's length), not `128`"),
            ("query bytes", 1, "`query` takes `bytes=N`"),
            ("query bytes=", 1, "`` is not a whole number"),
            ("query bytes=-1", 1, "`-1` is not a whole number"),
            ("query bytes=65601", 1, "bytes=65601: at most 65600"),
            ("query bytes=1 bytes=2", 1, "`query [bytes=N]` takes one argument at most"),
        ] {
            let error = parse(text).unwrap_err();
            assert_eq!(error.line, line, "{text}");
            assert!(error.message.contains(message), "{text}: {}", error.message);
        }
        let huge = "#".repeat(MAX_SCRIPT_BYTES + 1);
        assert!(parse(&huge).unwrap_err().message.contains("larger than"));
    }
}
