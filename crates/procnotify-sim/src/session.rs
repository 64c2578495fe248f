//! One simulated session: boot, load procnotify, hot-add, print the table,
//! unload — the real engine against the simulated kernel, rendered as the
//! trace and table a user later sees in WinDbg. `examples/simulate.rs` is its
//! command line; `tests/simulate.rs` pins its output.

use std::fmt::Write as _;
use std::format;
use std::string::String;
use std::sync::Arc;

use parking_lot::Mutex;
use std::vec::Vec;

use super::{Config, HotAdd, SimAllocator, SimDpc, SimKernel, SimOs};
use crate::driver::Driver;
use crate::notify::Kind;
use crate::os::{MAX_PROCESSORS, NtStatus};
use crate::table::Table;

/// The status another driver vetoes with in a session.
pub const OTHER_DRIVER_VETO: NtStatus = NtStatus::from_bits(0xC000_0022); // STATUS_ACCESS_DENIED

/// The command line's help text.
pub const USAGE: &str = "\
usage: simulate [options]

Boots a simulated machine, loads procnotify (registration with
KE_PROCESSOR_CHANGE_ADD_EXISTING), hot-adds processors, prints the trace and
the per-processor table, and unloads.

options:
  --boot N              processors present at boot (1..=2048, default 4)
  --max N               the partition's maximum (default boot + add, at most 2048)
  --add N               hot-add attempts after load (default 4)
  --fail-add I          the HAL fails to start the processor at index I (once;
                        the next attempt reuses the index); repeatable
  --veto-add I          another driver vetoes AddStart for index I (once); repeatable
  --fail-alloc K        procnotify's K-th pool allocation fails; repeatable
  --fail-register-at K  procnotify's slot initialisation fails for processor K
                        during registration, so the load fails
  --quiet               print the table and summary only, not the trace
  -h, --help            this text";

/// What to simulate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Processors at boot.
    pub boot: u32,
    /// The partition's maximum.
    pub max: u32,
    /// Hot-add attempts.
    pub add: u32,
    /// Indices whose first start attempt the HAL fails.
    pub fail_add: Vec<u32>,
    /// Indices whose first `AddStart` another driver vetoes.
    pub veto_add: Vec<u32>,
    /// procnotify's pool allocations (1-based) that fail.
    pub fail_alloc: Vec<u64>,
    /// The processor whose slot initialisation fails during registration.
    pub fail_register_at: Option<u32>,
    /// Leave the trace out of the report.
    pub quiet: bool,
}

impl Options {
    /// Parses the command line (without the program name). `Ok(None)` asks
    /// for the help text.
    ///
    /// # Errors
    ///
    /// A message naming the bad argument.
    pub fn parse(args: &[String]) -> Result<Option<Self>, String> {
        let mut boot = 4;
        let mut max = None;
        let mut add = 4;
        let mut options = Self {
            boot,
            max: 0,
            add,
            fail_add: Vec::new(),
            veto_add: Vec::new(),
            fail_alloc: Vec::new(),
            fail_register_at: None,
            quiet: false,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let mut value = || -> Result<u64, String> {
                let raw = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
                raw.parse::<u64>().map_err(|_| format!("{flag}: '{raw}' is not a non-negative whole number"))
            };
            let small = |v: u64| u32::try_from(v).map_err(|_| format!("{flag}: {v} is too large"));
            match flag.as_str() {
                "-h" | "--help" => return Ok(None),
                "--quiet" => options.quiet = true,
                "--boot" => boot = small(value()?)?,
                "--max" => max = Some(small(value()?)?),
                "--add" => add = small(value()?)?,
                "--fail-add" => options.fail_add.push(small(value()?)?),
                "--veto-add" => options.veto_add.push(small(value()?)?),
                "--fail-alloc" => match value()? {
                    0 => return Err("--fail-alloc: allocations are counted from 1".into()),
                    k => options.fail_alloc.push(k),
                },
                "--fail-register-at" => options.fail_register_at = Some(small(value()?)?),
                other => return Err(format!("unknown argument '{other}'")),
            }
        }
        if boot == 0 || boot > MAX_PROCESSORS {
            return Err(format!("--boot must be 1..={MAX_PROCESSORS}, got {boot}"));
        }
        let max = max.unwrap_or_else(|| boot.saturating_add(add).min(MAX_PROCESSORS));
        if max < boot || max > MAX_PROCESSORS {
            return Err(format!("--max must be {boot}..={MAX_PROCESSORS}, got {max}"));
        }
        if let Some(k) = options.fail_register_at
            && k >= boot
        {
            return Err(format!("--fail-register-at {k}: only processors 0..{boot} exist at registration"));
        }
        options.boot = boot;
        options.max = max;
        options.add = add;
        Ok(Some(options))
    }
}

/// What a session produced.
#[derive(Clone, Debug)]
pub struct Report {
    /// The text to print: trace (unless quiet), table, counters, pool account.
    pub text: String,
    /// The status `DriverEntry` would have returned, if the load failed.
    pub load_error: Option<NtStatus>,
    /// Nothing leaked, nothing freed twice, nothing used after free.
    pub clean: bool,
}

/// Runs one session.
#[must_use]
pub fn run(options: &Options) -> Report {
    let kernel = SimKernel::boot(Config::new(options.boot, options.max));
    for &k in &options.fail_alloc {
        kernel.pool().fail_attempt(k);
    }
    if let Some(k) = options.fail_register_at {
        // Payload initialisations happen once per processor, in index order.
        kernel.fail_payload_init(u64::from(k) + 1);
    }
    // Another driver, registered before procnotify, vetoes the chosen adds.
    let vetoes = Arc::new(Mutex::new(options.veto_add.clone()));
    let other = (!options.veto_add.is_empty()).then(|| {
        kernel.register_other_driver(std::boxed::Box::new(move |change| {
            let mut vetoes = vetoes.lock();
            let hit = vetoes.iter().position(|&i| i == change.nt_number && change.state == Kind::ADD_START);
            hit.map_or(NtStatus::SUCCESS, |position| {
                vetoes.remove(position);
                OTHER_DRIVER_VETO
            })
        }))
    });

    kernel.note(format!("== boot: {} processors present, maximum {}", options.boot, options.max));
    kernel.note("== DriverEntry: Driver::load");
    let mut text = String::new();
    let mut shown = 0;
    let load_error = match Driver::load(SimOs::new(&kernel)) {
        Err(status) => {
            kernel.note(format!("== DriverEntry returned {status}; nothing stays allocated"));
            Some(status)
        }
        Ok(driver) => {
            hot_add(&kernel, options);
            // Let the DPCs queued at AddComplete run, as they would within microseconds.
            kernel.flush_dpcs();
            trace(&kernel, options, &mut shown, &mut text);
            let _ = writeln!(text, "\n{}", table(&driver));
            let stats = driver.context().stats();
            let _ = writeln!(
                text,
                "notifications={} vetoes={} anomalies={} missed_visits={}\n",
                stats.notifications, stats.vetoes, stats.anomalies, stats.missed_visits
            );
            kernel.note("== EvtDriverUnload: Driver::unload");
            driver.unload();
            None
        }
    };
    if let Some(other) = other {
        kernel.deregister(other);
    }
    trace(&kernel, options, &mut shown, &mut text);
    let pool = kernel.pool().stats();
    let violations = kernel.violations();
    let clean = pool.live == 0 && violations.is_empty() && kernel.payloads_live() == 0;
    let _ = writeln!(
        text,
        "\npool: allocations={} frees={} live={} bytes_live={} peak={} injected_failures={}",
        pool.allocations, pool.frees, pool.live, pool.bytes_live, pool.bytes_peak, pool.failures_injected
    );
    for violation in &violations {
        let _ = writeln!(text, "VIOLATION: {violation}");
    }
    let _ = writeln!(text, "unload clean: {}", if clean { "yes" } else { "NO" });
    Report { text, load_error, clean }
}

/// Appends the events after the first `shown` to `text`.
fn trace(kernel: &SimKernel, options: &Options, shown: &mut usize, text: &mut String) {
    let events = kernel.events();
    if !options.quiet {
        for event in events.iter().skip(*shown) {
            let _ = writeln!(text, "{event}");
        }
    }
    *shown = events.len();
}

fn hot_add(kernel: &SimKernel, options: &Options) {
    let mut pending_failures = options.fail_add.clone();
    for _ in 0..options.add {
        let next = kernel.processor_count();
        if let Some(position) = pending_failures.iter().position(|&index| index == next) {
            pending_failures.remove(position);
            kernel.fail_next_start(NtStatus::UNSUCCESSFUL);
        }
        kernel.note("== hot-add");
        let line = match kernel.hot_add() {
            HotAdd::Added(index) => format!("== processor {index} added"),
            HotAdd::Failed { index, status } => {
                format!("== add of processor {index} failed with {status}; the next add reuses index {index}")
            }
            HotAdd::Refused(refusal) => format!("== hot-add refused: {refusal:?}"),
        };
        kernel.note(line);
    }
}

/// The table as `dx` shows it in WinDbg.
fn table(driver: &Driver<SimOs>) -> String {
    let table = driver.context().table();
    let mut out = format!(
        "procnotify table: capacity={} allocated_slots={} ({} bytes + {} bytes directory)\n",
        table.capacity(),
        table.allocated_slots(),
        table.allocated_bytes(),
        Table::<SimDpc, SimAllocator>::directory_bytes()
    );
    out.push_str("index group number state     starts completes failures visits\n");
    for slot in table.slots() {
        let s = slot.snapshot();
        let _ = writeln!(
            out,
            "{:>5} {:>5} {:>6} {:<9} {:>6} {:>9} {:>8} {:>6}",
            s.index,
            s.proc_number.group,
            s.proc_number.number,
            s.state.name(),
            s.starts,
            s.completes,
            s.failures,
            s.visits
        );
    }
    out
}

/// The arguments as a `Vec<String>`, for tests.
#[must_use]
pub fn args(line: &str) -> Vec<String> {
    line.split_whitespace().map(String::from).collect::<Vec<_>>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let options = Options::parse(&[]).unwrap().unwrap();
        assert_eq!((options.boot, options.max, options.add), (4, 8, 4));
        assert_eq!(Options::parse(&args("--help")).unwrap(), None);
        for (line, message) in [
            ("--boot x", "--boot: 'x' is not a non-negative whole number"),
            ("--boot 0", "--boot must be 1..=2048, got 0"),
            ("--boot 4 --max 3", "--max must be 4..=2048, got 3"),
            ("--max 5000", "--max must be 4..=2048, got 5000"),
            ("--add", "--add needs a value"),
            ("--frobnicate", "unknown argument '--frobnicate'"),
            ("--fail-alloc 0", "--fail-alloc: allocations are counted from 1"),
            ("--fail-register-at 4", "--fail-register-at 4: only processors 0..4 exist at registration"),
            ("--fail-add 99999999999", "--fail-add: 99999999999 is too large"),
        ] {
            assert_eq!(Options::parse(&args(line)), Err(String::from(message)), "{line}");
        }
    }
}
