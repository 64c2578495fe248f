//! # procnotify-ctl
//!
//! The user-mode side of the procnotify driver's query: a test VM's table
//! read without a debugger. It finds the driver's device interface
//! (`CM_Get_Device_Interface_List`), opens it, issues
//! `IOCTL_PROCNOTIFY_QUERY` (a header-sized probe, then a buffer sized for
//! the table's capacity) and decodes the reply with
//! [`procnotify_core::abi`], the module the driver encodes it with.
//!
//! ```text
//! procnotify-ctl table                       the table, in the simulator's layout
//! procnotify-ctl table --json                one JSON object (the simulator's table event inside)
//! procnotify-ctl watch --interval 500        a line per row that changed since the last poll
//! procnotify-ctl check --expect-online 0,1,2,3,4
//!                                            exit 0, or 1 with a one-line reason
//! procnotify-ctl dump reply.bin              the raw reply; --reply reply.bin reads it back
//! ```
//!
//! Only `device` (Windows) touches Win32; everything else — decoding,
//! printing, watching, checking — is portable, and is tested on any host
//! against replies the encoder wrote for tables the real engine built in the
//! simulator (`tests/`). See [`args::Cli`] for the exit codes.

pub mod args;
pub mod check;
#[cfg(windows)]
pub mod device;
pub mod error;
pub mod output;
pub mod source;
pub mod watch;

use std::fs;
use std::io::Write;
use std::time::{Duration, Instant};

use procnotify_core::abi;

use crate::args::{Cli, Command};
use crate::error::{CtlError, Exit};
use crate::source::Source;

/// Writes a line to `out`; a closed stdout is not worth a second error.
macro_rules! line {
    ($out:expr, $($arg:tt)*) => {
        writeln!($out, $($arg)*).map_err(|error| CtlError::File(format!("writing the output: {error}")))
    };
}

/// Runs `cli`'s command against `source`, writing to `out`; `pause` waits
/// between the polls of `watch`.
///
/// # Errors
///
/// What kept the command from running; its [`CtlError::exit`] is the exit
/// code. A failed `check` is not an error: it returns [`Exit::CheckFailed`]
/// after printing its reason.
pub fn run(
    cli: &Cli,
    source: &mut dyn Source,
    out: &mut dyn Write,
    pause: &mut dyn FnMut(Duration),
) -> Result<Exit, CtlError> {
    match &cli.command {
        Command::Table { json } => {
            let bytes = source.fetch()?;
            let reply = abi::decode(&bytes)?;
            let text = if *json { output::json(&reply) } else { output::text(&reply) };
            line!(out, "{}", text.trim_end())?;
            Ok(Exit::Ok)
        }
        Command::Check { expect_online } => {
            let bytes = source.fetch()?;
            let reply = abi::decode(&bytes)?;
            match check::verify(&reply, expect_online) {
                Ok(message) => {
                    line!(out, "procnotify-ctl: {message}")?;
                    Ok(Exit::Ok)
                }
                Err(reason) => {
                    line!(out, "procnotify-ctl: {reason}")?;
                    Ok(Exit::CheckFailed)
                }
            }
        }
        Command::Watch { interval, count } => {
            let start = Instant::now();
            let mut watch = watch::Watch::new();
            let mut polls = 0_u32;
            loop {
                let bytes = source.fetch()?;
                let reply = abi::decode(&bytes)?;
                let elapsed = start.elapsed().as_secs_f64();
                for change in watch.poll(&reply) {
                    line!(out, "+{elapsed:.3}s {change}")?;
                }
                out.flush().map_err(|error| CtlError::File(format!("writing the output: {error}")))?;
                polls = polls.saturating_add(1);
                if count.is_some_and(|count| polls >= count) {
                    return Ok(Exit::Ok);
                }
                pause(Duration::from_millis(u64::from(*interval)));
            }
        }
        Command::Dump { file } => {
            let bytes = source.fetch()?;
            // Only a reply that decodes is worth saving; the check also
            // reports a version mismatch now rather than at reading time.
            let rows = abi::decode(&bytes)?.header.rows_written;
            fs::write(file, &bytes).map_err(|error| CtlError::File(format!("{}: {error}", file.display())))?;
            line!(out, "procnotify-ctl: saved a reply of {} bytes ({rows} rows) to {}", bytes.len(), file.display())?;
            Ok(Exit::Ok)
        }
    }
}
