//! A second driver on procnotify-core, built only from its public API:
//! per-processor packet and byte counters, as a network filter driver might
//! keep them, with an admission limit.
//!
//! The driver supplies its own [`Hooks`]:
//!
//! - `init` creates a processor's zeroed counters in place;
//! - `starting` vetoes the processor's `AddStart` once `limit` processors
//!   are admitted (the kernel then sends `AddFailure`, and the processor is
//!   not started);
//! - `online` logs that the processor came up;
//! - `failed` gives the admission back when the kernel fails an add.
//!
//! It names itself ([`PercpuStats`], an [`Identity`]): the engine's lines
//! read `percpu_stats: add-start ...` and every pool allocation is tagged
//! `PcSt`, so neither can be mistaken for procnotify's. The identity is the
//! `Os`'s type parameter: `SimOs<PercpuStats>` here, and on Windows
//! `procnotify_wdk::WindowsKernel<PercpuStats>`.
//!
//! It is loaded with [`Driver::load`] into the simulated kernel. The simulated machine
//! boots 2 of 8 processors, the driver admits at most 4; three hot-adds give
//! two more processors and one veto. Code on each running processor then
//! counts its traffic through `Context::current` (no lock, no lookup by the
//! caller), the table is printed, the driver unloads and the simulated pool
//! must be empty.
//!
//! `cargo run -p procnotify-core --example percpu_stats` (`.ci/run` runs it).
//! Exits non-zero if any check fails. `cargo test -p procnotify-core
//! --example percpu_stats` runs its test: its log lines carry its name and
//! never procnotify's, and every allocation carried its tag.

use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::process::ExitCode;

use procnotify_core::identity::{Identity, Name, PoolTag};
use procnotify_core::{Cpu, Driver, Hooks, Level, NtStatus, Os, SlotState, name, pool_tag, trace};
use procnotify_sim::{Config, HotAdd, SimKernel, SimOs};

/// Who this driver is: its name in log lines and its pool tag. A bad name
/// or tag (`pool_tag!(b"P fy")`) would not compile.
struct PercpuStats;

impl Identity for PercpuStats {
    const NAME: Name = name!("percpu_stats");
    const POOL_TAG: PoolTag = pool_tag!(b"PcSt");
}

/// The simulated kernel as this driver's OS.
type StatsOs = SimOs<PercpuStats>;

/// One processor's statistics. Each processor updates only its own counters,
/// and anyone may read them: `Relaxed` throughout, they publish nothing.
#[derive(Debug, Default)]
struct CpuStats {
    packets: AtomicU64,
    bytes: AtomicU64,
}

impl CpuStats {
    /// Counts one packet of `bytes` bytes.
    fn record(&self, bytes: u64) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// The driver's hooks.
struct PerCpuStats<O: Os> {
    os: O,
    /// Most processors the driver accepts.
    limit: u32,
    /// Processors accepted and not failed. Only the hooks touch it, and the
    /// engine runs them one at a time: `Relaxed` is enough.
    admitted: AtomicU32,
}

/// The status the driver vetoes with when the limit is reached.
const OVER_LIMIT: NtStatus = NtStatus::INSUFFICIENT_RESOURCES;

impl<O: Os> Hooks for PerCpuStats<O> {
    type Value = CpuStats;

    fn init<'a>(&self, _cpu: Cpu, place: &'a mut MaybeUninit<CpuStats>) -> Result<&'a mut CpuStats, NtStatus> {
        Ok(place.write(CpuStats::default()))
    }

    fn starting(&self, cpu: Cpu, _stats: &CpuStats) -> Result<(), NtStatus> {
        let admitted = self.admitted.load(Ordering::Relaxed);
        if admitted >= self.limit {
            // `trace::log` writes the line under the driver's own name.
            trace::log(
                &self.os,
                Level::Warning,
                format_args!("veto processor {}: limit of {} reached", cpu.index, self.limit),
            );
            return Err(OVER_LIMIT);
        }
        self.admitted.store(admitted.saturating_add(1), Ordering::Relaxed);
        Ok(())
    }

    fn online(&self, cpu: Cpu, _stats: &CpuStats) {
        let (group, number) = (cpu.number.group, cpu.number.number);
        trace::log(
            &self.os,
            Level::Info,
            format_args!("processor {} online (group {group} number {number})", cpu.index),
        );
    }

    fn failed(&self, cpu: Cpu, _stats: &CpuStats, status: NtStatus) {
        let admitted = self.admitted.load(Ordering::Relaxed);
        self.admitted.store(admitted.saturating_sub(1), Ordering::Relaxed);
        trace::log(&self.os, Level::Warning, format_args!("processor {} failed to start: {status}", cpu.index));
    }
}

/// Checks a condition, printing what failed.
fn check(ok: bool, what: &str, failures: &mut u32) {
    if !ok {
        println!("CHECK FAILED: {what}");
        *failures += 1;
    }
}

/// Sends `rounds` packets on every running processor; returns (packets, bytes)
/// sent. Each packet is counted by code running on that processor.
fn traffic(kernel: &SimKernel, driver: &Driver<StatsOs, PerCpuStats<StatsOs>>, rounds: u64) -> (u64, u64) {
    let (mut packets, mut bytes) = (0, 0);
    for index in (0..kernel.config().max).filter(|&index| kernel.is_running(index)) {
        for round in 0..rounds {
            let size = 64 + (u64::from(index) * 7 + round * 13) % 1400;
            let counted = SimKernel::run_on(index, || driver.context().current().map(|stats| stats.record(size)));
            if counted.is_some() {
                packets += 1;
                bytes += size;
            }
        }
    }
    (packets, bytes)
}

fn print_table(driver: &Driver<StatsOs, PerCpuStats<StatsOs>>) -> (u64, u64) {
    println!("\n{:>5} {:>5} {:>6} {:<8} {:>8} {:>10}", "index", "group", "number", "state", "packets", "bytes");
    let (mut packets, mut bytes) = (0, 0);
    for slot in driver.context().table().slots() {
        let stats = slot.value();
        let (p, b) = (stats.packets.load(Ordering::Relaxed), stats.bytes.load(Ordering::Relaxed));
        let number = slot.proc_number();
        println!(
            "{:>5} {:>5} {:>6} {:<8} {p:>8} {b:>10}",
            slot.index(),
            number.group,
            number.number,
            slot.state().name()
        );
        packets += p;
        bytes += b;
    }
    println!("{:>5} {:>5} {:>6} {:<8} {packets:>8} {bytes:>10}\n", "total", "", "", "");
    (packets, bytes)
}

fn main() -> ExitCode {
    let kernel = SimKernel::boot(Config::new(2, 8));
    run(&kernel)
}

/// Loads the driver into `kernel`, adds processors, sends traffic, unloads
/// and checks everything; prints the log.
fn run(kernel: &SimKernel) -> ExitCode {
    let mut failures = 0;
    let os = StatsOs::with_identity(kernel);
    let hooks = PerCpuStats { os: os.clone(), limit: 4, admitted: AtomicU32::new(0) };
    let driver = match Driver::load(os, hooks) {
        Ok(driver) => driver,
        Err(status) => {
            println!("percpu_stats: load failed: {status}");
            return ExitCode::FAILURE;
        }
    };
    let adds: Vec<HotAdd> = (0..3).map(|_| kernel.hot_add()).collect();
    for add in &adds {
        match add {
            HotAdd::Added(index) => println!("hot-add: processor {index} added"),
            HotAdd::Failed { index, status } => println!("hot-add: processor {index} failed: {status}"),
            HotAdd::Refused(why) => println!("hot-add: refused: {why:?}"),
        }
    }
    check(adds[..2] == [HotAdd::Added(2), HotAdd::Added(3)], "the first two hot-adds succeed", &mut failures);
    check(
        adds[2] == HotAdd::Failed { index: 4, status: OVER_LIMIT },
        "the third is vetoed at the limit",
        &mut failures,
    );

    let sent = traffic(kernel, &driver, 25);
    let counted = print_table(&driver);
    check(sent == counted, "every packet sent is counted once, on its processor", &mut failures);
    check(sent.0 == 4 * 25, "4 running processors x 25 packets", &mut failures);
    let table = driver.context().table();
    let online = table.slots().filter(|slot| slot.state() == SlotState::Online).count();
    check(online == 4, "4 slots online", &mut failures);
    check(
        table.get(4).is_none_or(|slot| slot.state() == SlotState::Vacant),
        "the vetoed index is vacant",
        &mut failures,
    );
    check(driver.context().stats().vetoes == 1, "the engine counted one veto", &mut failures);

    driver.unload();
    for line in kernel.log_lines() {
        println!("log: {line}");
    }
    let pool = kernel.pool().stats();
    println!(
        "pool after unload: {} live allocations, {} bytes live ({} allocations, {} frees)",
        pool.live, pool.bytes_live, pool.allocations, pool.frees
    );
    check(pool.live == 0 && pool.bytes_live == 0, "the pool is empty after unload", &mut failures);
    check(kernel.pool().violations().is_empty(), "no double or foreign free", &mut failures);
    let tags = kernel.pool().tags();
    println!("pool tags: {tags:?}");
    check(
        tags.iter().all(|count| count.tag == Some(PercpuStats::POOL_TAG)),
        "every allocation was made under PcSt",
        &mut failures,
    );
    if failures == 0 {
        println!("percpu_stats: OK: {} packets, {} bytes on 4 processors; 1 veto; pool clean", sent.0, sent.1);
        ExitCode::SUCCESS
    } else {
        println!("percpu_stats: FAILED: {failures} checks");
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The driver carries its own identity end to end: every line the
    /// engine and its hooks logged starts with `percpu_stats:` (none with
    /// `procnotify:`), and every pool allocation was made, and freed, under
    /// `PcSt`.
    #[test]
    fn logs_under_its_name_and_allocates_under_its_tag() {
        let kernel = SimKernel::boot(Config::new(2, 8));
        assert_eq!(run(&kernel), ExitCode::SUCCESS);
        let lines = kernel.log_lines();
        assert!(lines.len() > 10, "too few lines to prove anything: {lines:?}");
        for line in &lines {
            assert!(line.starts_with("percpu_stats: "), "{line}");
            assert!(!line.contains("procnotify"), "{line}");
        }
        // The engine's own lines, not only the hooks', carry the name.
        assert!(lines.iter().any(|line| line.starts_with("percpu_stats: add-start index=2 ")));
        assert!(lines.iter().any(|line| line.starts_with("percpu_stats: load: registered")));
        let tags = kernel.pool().tags();
        let tag = PercpuStats::POOL_TAG;
        assert_eq!(tags.len(), 1, "{tags:?}");
        assert_eq!(tags[0].tag, Some(tag));
        assert!(tags[0].allocations >= 3, "{tags:?}");
        assert_eq!(tags[0].allocations, tags[0].frees);
        assert_eq!(kernel.pool().stats().allocations, tags[0].allocations);
    }
}
