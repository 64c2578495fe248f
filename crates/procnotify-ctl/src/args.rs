//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use procnotify_core::MAX_PROCESSORS;

/// Shortest `watch` interval: ten polls a second at most.
pub const MIN_INTERVAL_MS: u32 = 100;
/// Longest `watch` interval: one hour.
pub const MAX_INTERVAL_MS: u32 = 3_600_000;
/// Most polls one `watch --count` asks for.
pub const MAX_COUNT: u32 = 1_000_000;

/// Reads the procnotify driver's per-processor table from user mode
/// (IOCTL_PROCNOTIFY_QUERY): print it, watch hot-adds arrive, check that
/// processors are online. Needs an elevated prompt (the device admits only
/// SYSTEM and Administrators).
///
/// Exit codes: 0 ok; 1 `check` failed; 2 bad command line; 3 driver not
/// installed; 4 access denied (run as Administrator); 5 version mismatch
/// between the driver and this tool; 6 a reply or a Windows call failed;
/// 7 not on Windows (read a saved reply with --reply).
#[derive(Debug, Parser)]
#[command(name = "procnotify-ctl", version)]
pub struct Cli {
    /// Read the reply from FILE (saved by `dump`) instead of asking the
    /// driver: works on any host.
    #[arg(long, value_name = "FILE", global = true)]
    pub reply: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the table in the simulator's layout (one row per processor,
    /// absent runs folded), or as JSON.
    Table {
        /// One JSON object instead of the text table.
        #[arg(long)]
        json: bool,
    },
    /// Poll the table and print a line for each row that changed since the
    /// previous poll (every row at the first one). Runs until interrupted,
    /// or for --count polls.
    Watch {
        /// Milliseconds between polls (100 to 3600000).
        #[arg(long, value_name = "MS", default_value_t = 500,
              value_parser = clap::value_parser!(u32).range(i64::from(MIN_INTERVAL_MS)..=i64::from(MAX_INTERVAL_MS)))]
        interval: u32,
        /// Stop after N polls (1 to 1000000).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_COUNT)))]
        count: Option<u32>,
    },
    /// Exit 0 only if every listed processor is online with at least one
    /// DPC visit; else exit 1 with a one-line reason.
    Check {
        /// Processor indices, comma-separated (0 to 2047).
        #[arg(long = "expect-online", value_name = "N[,N...]", required = true, value_delimiter = ',',
              num_args = 1..=MAX_PROCESSORS as usize,
              value_parser = clap::value_parser!(u32).range(0..i64::from(MAX_PROCESSORS)))]
        expect_online: Vec<u32>,
    },
    /// Save the raw reply to FILE, for a bug report or for --reply.
    Dump {
        /// Where to write it.
        file: PathBuf,
    },
}
