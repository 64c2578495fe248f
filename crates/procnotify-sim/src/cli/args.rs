//! The command line, declared with clap's derive API. Numbers are parsed by
//! the same functions as the script format's, so `--boot -1` and `boot -1`
//! get the same message.

use std::format;
use std::path::PathBuf;
use std::string::String;
use std::vec::Vec;

use clap::{Args, Parser, Subcommand, ValueEnum};
use procnotify_core::MAX_PROCESSORS;

use super::budget::{DEFAULT_OUTPUT_LIMIT, DEFAULT_WORK_LIMIT, Limits};
use super::values::{parse_u32, parse_u64};

/// The most hot-add attempts one session may make: four times Windows' 2048
/// processors, enough to fill any partition and retry every index after a
/// failure. Bounds the run time; memory does not grow with it.
pub const MAX_ADD_ATTEMPTS: u32 = 8192;

/// Shown after `--help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  the session ran as asked and everything was freed
  1  memory leaked, was freed twice or used after free (a bug: please report it)
  2  bad command line or script, a fault that can never fire, or a limit
     reached (e.g. --add above 8192, --work-limit, --output-limit)
  3  procnotify's load failed (DriverEntry's status is printed by name) and no
     `expect load failed` line covered it
  4  a planned fault did not fire: its target was never reached (named on stderr)
  5  an `expect` line of a script was not met (named on stderr)
When several apply, the first of 1, 2, 5, 3, 4 in that order is returned.

Reference (commands, the script format, limits, the JSON schema): docs/simulator.md";

/// Simulates the Windows kernel's processor hot-add machinery around the real
/// procnotify driver: load (KeRegisterProcessorChangeCallback with
/// KE_PROCESSOR_CHANGE_ADD_EXISTING), hot-adds, another driver's vetoes,
/// injected faults, unload; prints the trace WinDbg would show, procnotify's
/// table and a summary.
#[derive(Debug, Parser)]
#[command(name = "simulate", version, after_help = EXIT_CODES)]
#[allow(clippy::struct_excessive_bools)] // independent flags
pub struct Cli {
    /// What to simulate.
    #[command(subcommand)]
    pub command: Command,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text, global = true)]
    pub format: Format,
    /// Leave the trace and the tables out: only the summary (and the tables
    /// `table` lines or --table ask for).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print procnotify's table before each unload, also with --quiet.
    #[arg(long, global = true)]
    pub table: bool,
    /// Issue the user-mode query (IOCTL_PROCNOTIFY_QUERY) after each step
    /// that can change procnotify's table and print what `procnotify-ctl
    /// table` would, also with --quiet: for `run`, after the load, after each
    /// hot-add attempt and after the final unload (docs/simulator.md).
    #[arg(long, global = true)]
    pub query_after_each: bool,
    /// Stop the session with exit code 2 after N work units: steps, trace
    /// lines and table lines (docs/simulator.md, Limits).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_WORK_LIMIT, global = true,
          value_parser = parse_u64, allow_negative_numbers = true)]
    pub work_limit: u64,
    /// Stop the session with exit code 2 once it has written BYTES to
    /// stdout and stderr.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_OUTPUT_LIMIT, global = true,
          value_parser = parse_u64, allow_negative_numbers = true)]
    pub output_limit: u64,
    /// Print what the session used on stderr at the end
    /// (`work_units=N output_bytes=M`; for the limit tests).
    #[arg(long, global = true, hide = true)]
    pub print_usage: bool,
    /// Print this process's peak resident memory on stderr at the end
    /// (`peak_rss_kib=N`, Linux only; for the memory test).
    #[arg(long, global = true, hide = true)]
    pub peak_rss: bool,
}

impl Cli {
    /// The session's limits.
    pub fn limits(&self) -> Limits {
        Limits { work: self.work_limit, output: self.output_limit }
    }
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// One JSON document (docs/schema/simulate.schema.json).
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boot, load procnotify, hot-add, inject faults, unload.
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// Run a script in the text format (docs/simulator.md).
    #[command(after_help = EXIT_CODES)]
    Script {
        /// The script file (UTF-8; `-` reads standard input).
        file: PathBuf,
    },
    /// Print a fuzz input (a crash file) as a script, then run it.
    #[command(after_help = EXIT_CODES)]
    Replay {
        /// The fuzz input.
        crash: PathBuf,
        /// Only print the script.
        #[arg(long)]
        print_only: bool,
    },
}

impl Command {
    /// The subcommand's name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Run(_) => "run",
            Self::Script { .. } => "script",
            Self::Replay { .. } => "replay",
        }
    }
}

/// `simulate run`.
#[derive(Clone, Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // independent flags
pub struct RunArgs {
    /// Processors present at boot (1..=2048).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = processors, allow_negative_numbers = true)]
    pub boot: u32,
    /// The partition's maximum [default: boot + add, at most 2048].
    #[arg(long, value_name = "N", value_parser = processors, allow_negative_numbers = true)]
    pub max: Option<u32>,
    /// Hot-add attempts after the load (at most 8192).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = adds, allow_negative_numbers = true)]
    pub add: u32,
    /// The HAL fails to start processor INDEX, once (the next add reuses the index).
    #[arg(long, alias = "fail-start", value_name = "INDEX", value_parser = parse_u32, allow_negative_numbers = true)]
    pub fail_add: Vec<u32>,
    /// Another driver, registered before procnotify, vetoes the first AddStart of INDEX.
    #[arg(long, value_name = "INDEX", value_parser = parse_u32, allow_negative_numbers = true)]
    pub veto_add: Vec<u32>,
    /// The kernel fails to prepare processor INDEX, once (no notifications).
    #[arg(long, value_name = "INDEX", value_parser = parse_u32, allow_negative_numbers = true)]
    pub fail_prepare: Vec<u32>,
    /// procnotify's slot initialisation fails for processor INDEX, once
    /// (at registration for INDEX < boot, so the load fails; else at its hot-add).
    #[arg(long, value_name = "INDEX", value_parser = parse_u32, allow_negative_numbers = true)]
    pub fail_init: Vec<u32>,
    /// procnotify's K-th pool allocation attempt (counted from 1) fails.
    #[arg(long, value_name = "K", value_parser = ordinal, allow_negative_numbers = true)]
    pub fail_alloc: Vec<u32>,
    /// Same as --fail-init K for a processor present at boot: the load fails.
    #[arg(long, value_name = "K", value_parser = parse_u32, allow_negative_numbers = true)]
    pub fail_register_at: Option<u32>,
    /// The kernel fails procnotify's registration (NULL, no callbacks).
    #[arg(long, conflicts_with_all = ["fail_register_at", "fail_init"])]
    pub fail_register: bool,
    /// Print the session as a script (for `simulate script`) instead of
    /// running it (with --format json: a JSON document holding it).
    #[arg(long)]
    pub print_script: bool,
}

/// A processor count, 1..=2048.
fn processors(text: &str) -> Result<u32, String> {
    let n = parse_u32(text)?;
    if (1..=MAX_PROCESSORS).contains(&n) { Ok(n) } else { Err(format!("{n} is not in 1..={MAX_PROCESSORS}")) }
}

/// A number of hot-add attempts, at most [`MAX_ADD_ATTEMPTS`].
fn adds(text: &str) -> Result<u32, String> {
    let n = parse_u32(text)?;
    if n <= MAX_ADD_ATTEMPTS {
        Ok(n)
    } else {
        Err(format!("{n} is more than {MAX_ADD_ATTEMPTS} hot-add attempts in one session (the limit)"))
    }
}

/// An allocation ordinal, counted from 1.
fn ordinal(text: &str) -> Result<u32, String> {
    match parse_u32(text)? {
        0 => Err(String::from("allocations are counted from 1")),
        n => Ok(n),
    }
}

/// Every index a flag names, for messages: `--fail-add 6`.
pub fn flag(name: &str, value: impl std::fmt::Display) -> String {
    std::format!("--{name} {value}")
}

/// Indices given more than once to the same flag are kept: each is one fault.
pub fn each<'a>(name: &'a str, values: &'a [u32]) -> impl Iterator<Item = (String, u32)> + 'a {
    values.iter().map(move |&value| (flag(name, value), value))
}
