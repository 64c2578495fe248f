//! `procnotify-ctl`: see the library's documentation and `--help`.

use std::io;
use std::process::ExitCode;

use clap::Parser;
use procnotify_ctl::args::Cli;
use procnotify_ctl::source::{self, Source};

fn main() -> ExitCode {
    // A bad command line exits 2 (clap), `--help` and `--version` 0.
    let cli = Cli::parse();
    let mut source: Box<dyn Source> = match &cli.reply {
        Some(path) => Box::new(source::File::new(path.clone())),
        None => Box::new(source::Driver),
    };
    let mut stdout = io::stdout().lock();
    match procnotify_ctl::run(&cli, source.as_mut(), &mut stdout, &mut std::thread::sleep) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(error) => {
            eprintln!("procnotify-ctl: {error}");
            ExitCode::from(error.exit().code())
        }
    }
}
