//! Runs the real load → notify → unload code against the simulated Windows
//! kernel and prints the notification trace and the per-processor table, as a
//! user later sees them in WinDbg.
//!
//! ```text
//! cargo run --example simulate -- --boot 4 --add 4 --fail-add 6
//! ```

use std::fmt::Write as _;
use std::process::ExitCode;

use procnotify::sim::{Config, HotAdd, SimKernel, SimOs};
use procnotify::{Driver, MAX_PROCESSORS, NtStatus};

const USAGE: &str = "\
usage: simulate [options]

Boots a simulated machine, loads procnotify (registration with
KE_PROCESSOR_CHANGE_ADD_EXISTING), hot-adds processors, prints the trace and
the per-processor table, and unloads.

options:
  --boot N            processors present at boot (1..=2048, default 4)
  --max N             the partition's maximum (default boot + add, at most 2048)
  --add N             hot-add attempts after load (default 4)
  --fail-add I        the HAL fails to start the processor at index I (once; the
                      next attempt reuses the index); repeatable
  --veto-add I        another driver vetoes AddStart for index I (once); repeatable
  --fail-alloc K      procnotify's K-th pool allocation fails; repeatable
  --fail-register-at K  procnotify's slot initialisation fails for processor K
                      during registration, so the load fails
  --quiet             print the table and summary only, not the trace
  -h, --help          this text";

#[derive(Debug)]
struct Options {
    boot: u32,
    max: Option<u32>,
    add: u32,
    fail_add: Vec<u32>,
    veto_add: Vec<u32>,
    fail_alloc: Vec<u64>,
    fail_register_at: Option<u32>,
    quiet: bool,
}

fn parse(args: &[String]) -> Result<Option<Options>, String> {
    let mut options = Options {
        boot: 4,
        max: None,
        add: 4,
        fail_add: Vec::new(),
        veto_add: Vec::new(),
        fail_alloc: Vec::new(),
        fail_register_at: None,
        quiet: false,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            let raw = args.next().ok_or_else(|| format!("{name} needs a value"))?;
            raw.parse::<u64>().map_err(|_| format!("{name}: '{raw}' is not a non-negative whole number"))
        };
        let small = |name: &str, v: u64| u32::try_from(v).map_err(|_| format!("{name}: {v} is too large"));
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--quiet" => options.quiet = true,
            "--boot" => options.boot = small("--boot", value("--boot")?)?,
            "--max" => options.max = Some(small("--max", value("--max")?)?),
            "--add" => options.add = small("--add", value("--add")?)?,
            "--fail-add" => options.fail_add.push(small("--fail-add", value("--fail-add")?)?),
            "--veto-add" => options.veto_add.push(small("--veto-add", value("--veto-add")?)?),
            "--fail-alloc" => {
                let k = value("--fail-alloc")?;
                if k == 0 {
                    return Err("--fail-alloc: allocations are counted from 1".into());
                }
                options.fail_alloc.push(k);
            }
            "--fail-register-at" => {
                options.fail_register_at = Some(small("--fail-register-at", value("--fail-register-at")?)?);
            }
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    if options.boot == 0 || options.boot > MAX_PROCESSORS {
        return Err(format!("--boot must be 1..={MAX_PROCESSORS}, got {}", options.boot));
    }
    let max = options.max.unwrap_or_else(|| options.boot.saturating_add(options.add).min(MAX_PROCESSORS));
    if max < options.boot || max > MAX_PROCESSORS {
        return Err(format!("--max must be {}..={MAX_PROCESSORS}, got {max}", options.boot));
    }
    if let Some(k) = options.fail_register_at
        && k >= options.boot
    {
        return Err(format!("--fail-register-at {k}: only processors 0..{} exist at registration", options.boot));
    }
    options.max = Some(max);
    Ok(Some(options))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
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
    run(&options)
}

fn run(options: &Options) -> ExitCode {
    let max = options.max.unwrap_or(options.boot);
    let kernel = SimKernel::boot(Config::new(options.boot, max));
    kernel.set_echo(!options.quiet);
    for &k in &options.fail_alloc {
        kernel.pool().fail_attempt(k);
    }
    if let Some(k) = options.fail_register_at {
        // Payload initialisations happen once per processor, in index order.
        kernel.fail_payload_init(u64::from(k) + 1);
    }
    // Another driver, registered before procnotify, that vetoes chosen adds.
    let vetoes = std::sync::Arc::new(std::sync::Mutex::new(options.veto_add.clone()));
    let other = (!options.veto_add.is_empty()).then(|| {
        let vetoes = std::sync::Arc::clone(&vetoes);
        kernel.register_other_driver(Box::new(move |change| {
            let mut vetoes = vetoes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match vetoes.iter().position(|&index| index == change.nt_number && change.state == 0) {
                Some(position) => {
                    vetoes.remove(position);
                    NtStatus::from_bits(0xC000_0022) // STATUS_ACCESS_DENIED
                }
                None => NtStatus::SUCCESS,
            }
        }))
    });

    println!("== boot: {} processors present, maximum {max}", options.boot);
    println!("== DriverEntry: Driver::load");
    let driver = match Driver::load(SimOs::new(&kernel)) {
        Ok(driver) => driver,
        Err(status) => {
            println!("== DriverEntry returned {status}; nothing stays allocated");
            return summary(&kernel, Some(status));
        }
    };
    let mut pending_failures = options.fail_add.clone();
    for _ in 0..options.add {
        let next = kernel.processor_count();
        if let Some(position) = pending_failures.iter().position(|&index| index == next) {
            pending_failures.remove(position);
            kernel.fail_next_start(NtStatus::UNSUCCESSFUL);
        }
        println!("== hot-add");
        match kernel.hot_add() {
            HotAdd::Added(index) => println!("== processor {index} added"),
            HotAdd::Failed { index, status } => {
                println!("== add of processor {index} failed with {status}; the next add reuses index {index}");
            }
            HotAdd::Refused(refusal) => println!("== hot-add refused: {refusal:?}"),
        }
    }
    // Let the DPCs queued at AddComplete run, as they would within microseconds.
    kernel.flush_dpcs();
    println!("\n{}", table(&driver));
    let stats = driver.context().stats();
    println!(
        "notifications={} vetoes={} anomalies={} missed_visits={}",
        stats.notifications, stats.vetoes, stats.anomalies, stats.missed_visits
    );
    println!("\n== EvtDriverUnload: Driver::unload");
    driver.unload();
    if let Some(other) = other {
        kernel.deregister(other);
    }
    summary(&kernel, None)
}

/// The table as `dx` shows it in WinDbg.
fn table(driver: &Driver<SimOs>) -> String {
    let table = driver.context().table();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "procnotify table: capacity={} allocated_slots={} ({} bytes + {} bytes directory)",
        table.capacity(),
        table.allocated_slots(),
        table.allocated_bytes(),
        procnotify::Table::<procnotify::sim::SimDpc, procnotify::sim::SimAllocator>::directory_bytes()
    );
    let _ = writeln!(out, "index group number state     starts completes failures visits");
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

fn summary(kernel: &SimKernel, load_error: Option<NtStatus>) -> ExitCode {
    let pool = kernel.pool().stats();
    let violations = kernel.violations();
    println!(
        "\npool: allocations={} frees={} live={} bytes_live={} peak={} injected_failures={}",
        pool.allocations, pool.frees, pool.live, pool.bytes_live, pool.bytes_peak, pool.failures_injected
    );
    for violation in &violations {
        println!("VIOLATION: {violation}");
    }
    let clean = pool.live == 0 && violations.is_empty() && kernel.payloads_live() == 0;
    println!("unload clean: {}", if clean { "yes" } else { "NO" });
    match (clean, load_error) {
        (false, _) => ExitCode::from(1),
        (true, Some(_)) => ExitCode::from(3),
        (true, None) => ExitCode::SUCCESS,
    }
}
