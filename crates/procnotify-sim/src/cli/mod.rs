//! The `simulate` command line: `run`, `script FILE`, `replay CRASH`, each a
//! [`step::Script`] run by `machine::Machine` within the limits of
//! `budget` ([`Limits`]) and written by `report` as text or JSON.
//! `src/bin/simulate.rs` only calls [`main`]; `docs/simulator.md` is the
//! reference.
//!
//! Modules import one way: `machine` uses `faults`, `others`, `budget`,
//! `query` and `report`; `budget` and `report` use `query` (the user-mode
//! query as a session issues it); `faults` uses `others`; `expect` adds
//! `Machine`'s expectation checks; everything uses `step` and `values`.

mod args;
mod budget;
mod exit;
mod expect;
mod faults;
pub mod fuzz_input;
mod machine;
mod others;
pub mod query;
mod report;
pub mod session;
mod source;
pub mod step;
pub mod text;
mod values;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::string::{String, ToString};
use std::vec::Vec;

use clap::Parser;
use clap::error::ErrorKind;

pub use args::{Cli, Command, EXIT_CODES, Format, MAX_ADD_ATTEMPTS, RunArgs};
pub use budget::{DEFAULT_OUTPUT_LIMIT, DEFAULT_WORK_LIMIT, Limit, Limits, Usage};
pub use exit::Exit;
pub use report::{SCHEMA, Summary};

use machine::Machine;
use report::{Json, Shown, Text, write_error, write_script};
use step::Script;

/// The largest crash file `replay` reads.
pub const MAX_CRASH_BYTES: u64 = 1 << 20;

/// Runs the command line `args` (program name first), reading standard
/// input for `script -`, writing to `out` and `err`; returns the exit code.
pub fn main<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    main_with_stdin(args, &mut std::io::stdin().lock(), out, err)
}

/// [`main`], with `stdin` as standard input.
pub fn main_with_stdin<I, T>(args: I, stdin: &mut dyn Read, out: &mut dyn Write, err: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(error) => return refuse_command_line(&error, json_asked(&args), out, err),
    };
    let code = match prepare(&cli, stdin) {
        Ok(Prepared::Print(script)) => {
            print_script(&cli, &script, out);
            0
        }
        Ok(Prepared::Run(script)) => {
            let (code, usage) = run_script(&cli, &script, out, err);
            if cli.print_usage {
                let _ = writeln!(err, "work_units={} output_bytes={}", usage.work, usage.output);
            }
            code
        }
        Err(message) => {
            let _ = writeln!(err, "simulate: {message}");
            if cli.format == Format::Json {
                write_error(out, Some(cli.command.name()), &message, Exit::Usage.code());
            }
            Exit::Usage.code()
        }
    };
    if cli.peak_rss {
        let _ = writeln!(err, "peak_rss_kib={}", peak_rss_kib().unwrap_or(0));
    }
    code
}

/// Whether the raw arguments ask for `--format json` (for errors clap
/// found before there is a parsed command line).
fn json_asked(args: &[OsString]) -> bool {
    args.iter().zip(args.iter().skip(1)).any(|(flag, value)| flag == "--format" && value == "json")
        || args.iter().any(|arg| arg == "--format=json")
}

/// Help and version go to stdout; errors to stderr and, with `--format
/// json`, as a JSON document to stdout.
fn refuse_command_line(error: &clap::Error, json: bool, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let text = error.render().to_string();
    let code = u8::try_from(error.exit_code()).unwrap_or(2);
    if matches!(error.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = write!(out, "{text}");
    } else {
        let _ = write!(err, "{text}");
        if json {
            write_error(out, None, text.trim_end(), code);
        }
    }
    code
}

/// What a command line asks for.
enum Prepared {
    /// Print this script.
    Print(Script),
    /// Run it.
    Run(Script),
}

/// The script to run or print.
fn prepare(cli: &Cli, stdin: &mut dyn Read) -> Result<Prepared, String> {
    let (script, print) = match &cli.command {
        Command::Run(args) => (session::from_run(args)?, args.print_script),
        Command::Script { file } => {
            let bytes = source::read(file, stdin, text::MAX_SCRIPT_BYTES as u64)?;
            let text = source::utf8(&source::name(file), bytes)?;
            let script = text::parse(&text).map_err(|e| format!("{}: {e}", source::name(file)))?;
            (script, false)
        }
        Command::Replay { crash, print_only } => {
            let bytes = source::read(crash, stdin, MAX_CRASH_BYTES)?;
            let (header, ops) = fuzz_input::decode(&bytes);
            (session::from_fuzz(header, &ops), *print_only)
        }
    };
    session::validate(&script)?;
    Ok(if print { Prepared::Print(script) } else { Prepared::Run(script) })
}

fn print_script(cli: &Cli, script: &Script, out: &mut dyn Write) {
    match cli.format {
        Format::Text => {
            let _ = write!(out, "{script}");
        }
        Format::Json => write_script(out, cli.command.name(), &script.to_string()),
    }
}

/// Runs `script` as `cli` asks; returns the exit code and what it used.
fn run_script(cli: &Cli, script: &Script, out: &mut dyn Write, err: &mut dyn Write) -> (u8, Usage) {
    let shown = Shown { quiet: cli.quiet, tables: cli.table };
    let (summary, usage) = match cli.format {
        Format::Text => {
            let mut sink = Text::new(out, shown);
            if let Command::Replay { crash, .. } = &cli.command
                && !cli.quiet
            {
                let name = source::name(crash);
                sink.echo(&std::format!("== {name} as a script (`simulate script` runs the same):\n"));
                sink.echo(&script.to_string());
                sink.echo("== end of script\n");
            }
            Machine::new(script, &mut sink, err, cli.limits()).query_after_each(cli.query_after_each).run(script)
        }
        Format::Json => {
            let mut sink = Json::new(out, shown, cli.command.name(), &script.setup);
            Machine::new(script, &mut sink, err, cli.limits()).query_after_each(cli.query_after_each).run(script)
        }
    };
    let _ = out.flush();
    (summary.exit.code(), usage)
}

/// Replays the fuzz input `bytes` as `simulate replay` does, with `format`,
/// `--quiet`, `--query-after-each` and `limits`: the fuzz target's check
/// that every input stays within its limits. Returns the exit code and what
/// the session used.
pub fn replay(
    bytes: &[u8],
    format: Format,
    quiet: bool,
    query_after_each: bool,
    limits: Limits,
    out: &mut dyn Write,
) -> (u8, Usage) {
    let mut flags = std::vec![
        String::from("simulate"),
        String::from("replay"),
        String::from("-"),
        std::format!("--work-limit={}", limits.work),
        std::format!("--output-limit={}", limits.output),
    ];
    if format == Format::Json {
        flags.push(String::from("--format=json"));
    }
    if quiet {
        flags.push(String::from("--quiet"));
    }
    if query_after_each {
        flags.push(String::from("--query-after-each"));
    }
    let Ok(cli) = Cli::try_parse_from(flags) else { return (Exit::Usage.code(), Usage::default()) };
    let mut err = std::io::sink();
    match prepare(&cli, &mut &*bytes) {
        Ok(Prepared::Run(script)) => run_script(&cli, &script, out, &mut err),
        Ok(Prepared::Print(_)) | Err(_) => (Exit::Usage.code(), Usage::default()),
    }
}

/// `VmHWM` from `/proc/self/status`, in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
