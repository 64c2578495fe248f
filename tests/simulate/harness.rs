//! Runs `simulate` in-process (`procnotify_sim::cli`, the library behind
//! the binary) and keeps what it printed. Included by the simulator's
//! integration tests (`#[path]`); `tests/simulate_limits.rs` runs the
//! binary in a child process instead, to bound its output.
#![allow(dead_code)] // not every test binary that includes this uses each

use std::path::PathBuf;

use procnotify_sim::cli;

/// The exit code and both streams of one invocation.
pub struct Outcome {
    pub code: u8,
    pub out: String,
    pub err: String,
}

/// `simulate ARGS...` with `stdin` as its standard input.
pub fn simulate_with_stdin(args: &[&str], stdin: &[u8]) -> Outcome {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let args = std::iter::once("simulate").chain(args.iter().copied());
    let code = cli::main_with_stdin(args, &mut &*stdin, &mut out, &mut err);
    Outcome { code, out: String::from_utf8(out).unwrap(), err: String::from_utf8(err).unwrap() }
}

/// `simulate ARGS...` with nothing on standard input.
pub fn simulate(args: &[&str]) -> Outcome {
    simulate_with_stdin(args, b"")
}

/// `simulate` with `command` split at whitespace.
pub fn line(command: &str) -> Outcome {
    simulate(&command.split_whitespace().collect::<Vec<_>>())
}

/// Writes `bytes` to a file in the temporary folder, named for this test
/// binary and process, so that test binaries running at once never share one.
pub fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let file = format!("procnotify-{}-{}-{name}", env!("CARGO_CRATE_NAME"), std::process::id());
    let path = std::env::temp_dir().join(file);
    std::fs::write(&path, bytes).unwrap();
    path
}
