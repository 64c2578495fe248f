//! `simulate`: the simulator's command line. Everything is in
//! `procnotify_sim::cli`; see `simulate --help` and `docs/simulator.md`.

use std::io::{BufWriter, IsTerminal, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let stdout = std::io::stdout();
    let mut err = std::io::stderr();
    let code = if stdout.is_terminal() {
        // Line by line, in order with the messages on stderr.
        procnotify_sim::cli::main(std::env::args_os(), &mut stdout.lock(), &mut err)
    } else {
        // A pipe or a file: one write per 64 KiB instead of one per line.
        let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
        let code = procnotify_sim::cli::main(std::env::args_os(), &mut out, &mut err);
        let _ = out.flush();
        code
    };
    ExitCode::from(code)
}
