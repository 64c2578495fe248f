//! The `simulate` command line: `run`, `script FILE`, `replay CRASH`, each a
//! [`step::Script`] run by `machine::Machine` and written by
//! `report` as text or JSON. `src/bin/simulate.rs` only calls [`main`];
//! `docs/simulator.md` is the reference.

mod args;
mod expect;
mod faults;
pub mod fuzz_input;
mod machine;
mod others;
mod report;
pub mod session;
pub mod step;
pub mod text;
mod values;

use std::ffi::OsString;
use std::io::Write;
use std::string::{String, ToString};
use std::vec::Vec;

use clap::Parser;
use clap::error::ErrorKind;

pub use args::{Cli, Command, EXIT_CODES, Format, MAX_ADD_ATTEMPTS, RunArgs};
pub use report::{Summary, json_str};

use machine::Machine;
use report::{Json, Sink, Text};
use step::Script;

/// The largest crash file `replay` reads.
pub const MAX_CRASH_BYTES: u64 = 1 << 20;

/// How a session ended; see [`EXIT_CODES`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Exit {
    /// 0.
    #[default]
    Ok,
    /// 1: leak, double free, use after free.
    Leak,
    /// 2: bad command line or script.
    Usage,
    /// 3: the load failed.
    LoadFailed,
    /// 4: a planned fault did not fire.
    FaultNotFired,
    /// 5: an expectation was not met.
    Expectation,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Leak => 1,
            Self::Usage => 2,
            Self::LoadFailed => 3,
            Self::FaultNotFired => 4,
            Self::Expectation => 5,
        }
    }

    /// What it means, in words.
    pub fn meaning(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Leak => "memory leaked or misused",
            Self::Usage => "usage error",
            Self::LoadFailed => "load failed",
            Self::FaultNotFired => "a planned fault did not fire",
            Self::Expectation => "an expectation was not met",
        }
    }

    /// The code for a finished session (first of 1, 5, 3, 4).
    pub fn of(summary: &Summary, unexpected_load_failure: bool) -> Self {
        if !summary.clean {
            Self::Leak
        } else if !summary.unmet.is_empty() {
            Self::Expectation
        } else if unexpected_load_failure {
            Self::LoadFailed
        } else if summary.faults.iter().any(|(_, fired)| !fired) {
            Self::FaultNotFired
        } else {
            Self::Ok
        }
    }
}

/// Runs the command line `args` (program name first), writing to `out` and
/// `err`; returns the exit code.
pub fn main<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let text = error.render().to_string();
            let _ = if matches!(error.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                write!(out, "{text}")
            } else {
                write!(err, "{text}")
            };
            return u8::try_from(error.exit_code()).unwrap_or(2);
        }
    };
    let code = match prepare(&cli, out) {
        Ok(None) => 0,
        Ok(Some((command, script))) => run_script(&cli, &command, &script, out, err),
        Err(message) => {
            let _ = writeln!(err, "simulate: {message}");
            Exit::Usage.code()
        }
    };
    if cli.peak_rss {
        let _ = writeln!(err, "peak_rss_kib={}", peak_rss_kib().unwrap_or(0));
    }
    code
}

/// The script to run, or `None` when the command only printed something.
fn prepare(cli: &Cli, out: &mut dyn Write) -> Result<Option<(String, Script)>, String> {
    let (command, script, print) = match &cli.command {
        Command::Run(args) => ("run", session::from_run(args)?, args.print_script),
        Command::Script { file } => {
            let text = read_limited(file, text::MAX_SCRIPT_BYTES as u64)?;
            let text = String::from_utf8(text).map_err(|_| format!("{}: not UTF-8 text", file.display()))?;
            let script = text::parse(&text).map_err(|e| format!("{}: {e}", file.display()))?;
            ("script", script, false)
        }
        Command::Replay { crash, print_only } => {
            let bytes = read_limited(crash, MAX_CRASH_BYTES)?;
            let (header, ops) = fuzz_input::decode(&bytes);
            let script = session::from_fuzz(header, &ops);
            if !*print_only && !cli.quiet && cli.format == Format::Text {
                let _ = writeln!(out, "== {} as a script (`simulate script` runs the same):", crash.display());
                let _ = write!(out, "{script}");
                let _ = writeln!(out, "== end of script");
            }
            ("replay", script, *print_only)
        }
    };
    session::validate(&script)?;
    if print {
        let _ = write!(out, "{script}");
        return Ok(None);
    }
    Ok(Some((command.to_string(), script)))
}

fn read_limited(path: &std::path::Path, limit: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > limit {
        return Err(format!("{}: larger than the limit of {limit} bytes", path.display()));
    }
    Ok(bytes)
}

fn run_script(cli: &Cli, command: &str, script: &Script, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let summary = match cli.format {
        Format::Text => {
            let mut sink = Text::new(out, cli.quiet);
            let summary = Machine::new(script, &mut sink, err).run(script);
            sink.finish(&summary);
            summary
        }
        Format::Json => {
            let mut sink = Json::new(out, cli.quiet, command, &script.setup);
            let summary = Machine::new(script, &mut sink, err).run(script);
            sink.finish(&summary);
            summary
        }
    };
    let _ = out.flush();
    summary.exit.code()
}

/// `VmHWM` from `/proc/self/status`, in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
