//! Runs the real load → notify → unload code against the simulated Windows
//! kernel and prints the notification trace and the per-processor table, as a
//! user later sees them in WinDbg.
//!
//! ```text
//! cargo run --example simulate -- --boot 4 --add 4 --fail-add 6
//! ```
//!
//! Exit status: 0 when the session ran and unloaded cleanly, 3 when the load
//! failed (cleanly, as asked for with a fault), 2 for bad arguments, 1 when
//! anything leaked or was used after free.

use std::process::ExitCode;

use procnotify::sim::session::{self, Options, USAGE};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match Options::parse(&args) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("simulate: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let report = session::run(&options);
    print!("{}", report.text);
    match (report.clean, report.load_error) {
        (false, _) => ExitCode::from(1),
        (true, Some(_)) => ExitCode::from(3),
        (true, None) => ExitCode::SUCCESS,
    }
}
