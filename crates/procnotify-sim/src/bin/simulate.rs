//! `simulate`: the simulator's command line. Everything is in
//! `procnotify_sim::cli`; see `simulate --help` and `docs/simulator.md`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let code = procnotify_sim::cli::main(std::env::args_os(), &mut std::io::stdout().lock(), &mut std::io::stderr());
    ExitCode::from(code)
}
