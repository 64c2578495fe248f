//! `simulate` is bounded whatever its input: the worst scripts and crash
//! files that fit in the 1 MiB input limit (reload, read-all, table and
//! toggle storms at 2048 processors, notifications to 64 other drivers,
//! 8192 hot-adds, veto and fault storms) are stopped by the work or output
//! limit, or refused before they run, with exit code 2 and the limit named.
//!
//! Each case runs in a child process (this test binary again, running
//! `cli::main` on real stdout and stderr) whose output is counted, not kept,
//! and cut off past 64 MB. The tests assert the exit code, the message and
//! that stdout + stderr stay under 50 MB; they print the elapsed time (run
//! with `--nocapture` to see it) but do not assert it: a loaded 2-core
//! machine would make such a bound flaky. `docs/simulator.md` (Limits)
//! records the times measured.

use std::fmt::Write as _;
use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use procnotify_sim::cli::{self, Format, Limits, session};
use proptest::prelude::*;

/// The bound the issue sets on any session's output.
const OUTPUT_BOUND: u64 = 50_000_000;

/// Past this the parent kills the child (the test then fails).
const KILL_AT_BYTES: u64 = 64_000_000;

/// A child still running after this is killed (the test then fails).
const KILL_AFTER: Duration = Duration::from_mins(2);

/// The most work a session does past its limit: the kernel operation in
/// progress (a load of 2048 processors: 4096 notifications, 2048 DPCs, ~14,300
/// units) and the final unload and deregistrations.
const WORK_OVERSHOOT: u64 = 20_000;

/// The most bytes a session writes past its output limit: the line, table
/// or query in progress (a table of 2048 rows: ~160 KB; a query of 2048 rows
/// in JSON: ~240 KB) and the summary.
const OUTPUT_OVERSHOOT: u64 = 1 << 20;

/// What the child's test harness writes on stdout before the session.
const HARNESS_HEADER: u64 = 64;

const CHILD_ARGS: &str = "PROCNOTIFY_SIMULATE_LIMITS_CHILD";

/// The child half: runs `simulate` with the arguments in `CHILD_ARGS` on
/// this process's stdout and stderr, and exits with its code.
#[test]
#[ignore = "run by the other tests of this file in a child process"]
fn child() {
    let Ok(args) = std::env::var(CHILD_ARGS) else { return };
    // Everything is dropped before the exit (LeakSanitizer looks then).
    let code = {
        let stdout = std::io::stdout();
        let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
        let code = cli::main(std::iter::once("simulate").chain(args.split('\n')), &mut out, &mut std::io::stderr());
        let _ = out.flush();
        code
    };
    drop(args);
    std::process::exit(i32::from(code));
}

struct Measured {
    code: Option<i32>,
    stdout: u64,
    stderr: u64,
    elapsed: Duration,
    /// The end of stderr.
    err: String,
}

impl Measured {
    fn bytes(&self) -> u64 {
        self.stdout + self.stderr
    }
}

/// Counts what `pipe` delivers, keeping the last 8 KiB; raises `over` past
/// [`KILL_AT_BYTES`] in all.
fn drain(
    mut pipe: impl Read + Send + 'static,
    total: Arc<AtomicU64>,
    over: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(u64, Vec<u8>)> {
    std::thread::spawn(move || {
        let (mut count, mut tail, mut buffer) = (0_u64, Vec::new(), vec![0_u8; 1 << 16]);
        while let Ok(n) = pipe.read(&mut buffer) {
            if n == 0 {
                break;
            }
            count += n as u64;
            tail.extend_from_slice(&buffer[..n]);
            tail.drain(..tail.len().saturating_sub(8192));
            if total.fetch_add(n as u64, Ordering::Relaxed) + n as u64 > KILL_AT_BYTES {
                over.store(true, Ordering::Relaxed);
            }
        }
        (count, tail)
    })
}

/// Runs `simulate args` in a child process, bounded in time and output.
fn bounded(args: &[String]) -> Measured {
    let start = Instant::now();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ARGS, args.join("\n"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (total, over) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let out = drain(child.stdout.take().unwrap(), Arc::clone(&total), Arc::clone(&over));
    let err = drain(child.stderr.take().unwrap(), total, Arc::clone(&over));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if over.load(Ordering::Relaxed) || start.elapsed() > KILL_AFTER {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    let (stdout, _) = out.join().unwrap();
    let (stderr, tail) = err.join().unwrap();
    Measured {
        code: status.and_then(|s| s.code()),
        stdout,
        stderr,
        elapsed,
        err: String::from_utf8_lossy(&tail).into(),
    }
}

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("procnotify-simulate-limits-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `head`, then `line` as many times as fit in the 1 MiB script limit.
fn storm(head: &str, line: &str) -> String {
    let limit = cli::text::MAX_SCRIPT_BYTES;
    let mut text = String::from(head);
    text.push_str(&line.repeat((limit - head.len()) / line.len()));
    assert!(text.len() <= limit && text.len() + line.len() > limit);
    text
}

/// 64 other drivers with 32-byte names: the most registrations a session
/// may have, each named in every kernel line about it.
fn others() -> String {
    let mut text = String::new();
    for n in 0..session::MAX_OTHER_DRIVERS {
        let _ = writeln!(text, "other-driver d{n:02}{}", "x".repeat(29));
    }
    text
}

/// Runs `command file flags` bounded; checks the exit code, that stdout and
/// stderr stay under the bound, and that a stop names its limit.
fn check(name: &str, command: &str, bytes: &[u8], flags: &str, code: i32, limit: &str) -> Measured {
    let path = temp_file(name, bytes);
    let mut args = vec![command.to_string(), path.to_str().unwrap().to_string()];
    args.extend(flags.split_whitespace().map(String::from));
    let run = bounded(&args);
    eprintln!(
        "{name} {flags}: exit {:?}, {} bytes of stdout + {} of stderr, {:.2} s",
        run.code,
        run.stdout,
        run.stderr,
        run.elapsed.as_secs_f64()
    );
    assert!(run.bytes() < OUTPUT_BOUND, "{name} {flags}: {} bytes", run.bytes());
    assert_eq!(run.code, Some(code), "{name} {flags}: {}", run.err);
    assert!(run.err.contains(limit), "{name} {flags}: {}", run.err);
    let _ = std::fs::remove_file(path);
    run
}

const WORK: &str = "stopped: the work limit of 500000 units (steps, trace lines, table and query lines) was reached; \
                    raise it with --work-limit N";
const OUTPUT: &str = "stopped: the output limit of 16777216 bytes was reached; raise it with --output-limit BYTES";

#[test]
fn the_defaults_are_the_documented_ones() {
    assert_eq!(Limits::default(), Limits { work: 500_000, output: 16 << 20 });
    assert_eq!((cli::DEFAULT_WORK_LIMIT, cli::DEFAULT_OUTPUT_LIMIT), (500_000, 16_777_216));
}

#[test]
fn a_reload_storm_at_2048_processors_is_stopped() {
    let script = storm("boot 2048\nload\n", "reload\n");
    check("reload", "script", script.as_bytes(), "", 2, OUTPUT);
    check("reload", "script", script.as_bytes(), "-q", 2, WORK);
    check("reload", "script", script.as_bytes(), "--format json", 2, OUTPUT);
}

#[test]
fn a_read_all_storm_is_stopped() {
    let script = storm("boot 2048\nload\n", "read-all\n");
    check("read-all", "script", script.as_bytes(), "", 2, OUTPUT);
    check("read-all", "script", script.as_bytes(), "-q --format json", 2, WORK);
}

#[test]
fn a_table_storm_is_stopped() {
    let script = storm("boot 2048\nload\n", "table\n");
    check("table", "script", script.as_bytes(), "-q", 2, OUTPUT);
}

#[test]
fn a_query_storm_is_stopped() {
    // Each query of a 2048-processor table prints 2052 lines (about 160 KB
    // of text, 240 KB of JSON), with -q too: the output limit stops it.
    let script = storm("boot 2048\nload\n", "query\n");
    check("query", "script", script.as_bytes(), "-q", 2, OUTPUT);
    check("query", "script", script.as_bytes(), "-q --format json", 2, OUTPUT);
    // Queries too small for the header print one line each: the whole
    // script runs within the limits.
    let script = storm("boot 2048\nload\n", "query bytes=63\n");
    let run = check("query-63", "script", script.as_bytes(), "-q", 0, "");
    assert!(run.stdout > 8_000_000, "{} bytes", run.stdout);
    // After each of 8192 hot-adds at up to 2048 processors.
    let args: Vec<String> =
        "run --boot 1 --max 2048 --add 8192 --query-after-each -q".split_whitespace().map(String::from).collect();
    let run = bounded(&args);
    eprintln!("query-after-each: exit {:?}, {} bytes, {:.2} s", run.code, run.bytes(), run.elapsed.as_secs_f64());
    assert_eq!(run.code, Some(2), "{}", run.err);
    assert!(run.err.contains(OUTPUT) && run.bytes() < OUTPUT_BOUND, "{}", run.err);
}

#[test]
fn a_toggle_storm_is_stopped() {
    check("toggle", "script", storm("boot 2048\n", "toggle\n").as_bytes(), "-q", 2, WORK);
}

#[test]
fn notifications_to_64_other_drivers_are_stopped() {
    let script = storm(&format!("boot 1\nmax 2048\n{}load\n", others()), "notify add-start 5\n");
    check("notify", "script", script.as_bytes(), "", 2, OUTPUT);
    check("notify", "script", script.as_bytes(), "-q", 2, WORK);
}

#[test]
fn the_most_hot_adds_with_64_other_drivers_finish_within_the_limits() {
    let head = format!("boot 1\nmax 2048\n{}load\nhot-add {}\n", others(), cli::MAX_ADD_ATTEMPTS);
    let script = storm(&head, "expect processors 2048\n");
    check("adds", "script", script.as_bytes(), "-q", 0, "6145 of 8192 hot-add attempts were refused");
    check("adds", "script", script.as_bytes(), "", 2, OUTPUT);
}

#[test]
fn a_veto_storm_is_stopped_or_refused() {
    // The most standing vetoes a session may plan, then every hot-add.
    let mut vetoes = String::new();
    for n in 0..session::MAX_PLANNED_FAULTS {
        let _ = write!(vetoes, " veto {}", 5 + n % 2000);
    }
    let script = storm(&format!("boot 4\nmax 2048\nother-driver v{vetoes}\nload\nhot-add 8192\n"), "read-all\n");
    check("vetoes", "script", script.as_bytes(), "", 2, OUTPUT);
    // One more is refused before anything runs.
    let script = format!("boot 4\nmax 2048\nother-driver v{vetoes} veto 5\nload\nhot-add 8192\n");
    let run = check("too-many-vetoes", "script", script.as_bytes(), "", 2, "more than 1024 planned faults");
    assert!(run.stdout < HARNESS_HEADER, "nothing ran: {} bytes", run.stdout);
}

#[test]
fn a_fault_storm_is_stopped_or_refused() {
    // Loads that fail at their first allocation: little work each, but a
    // message on stderr and two lines of summary each. The lines the summary
    // will take are charged as they accrue: the trace stops in time for the
    // summary to fit. With -q the whole script runs within the limits.
    let script = storm("boot 2048\nload\n", "reload fail-alloc 1\n");
    let run = check("reload-fail", "script", script.as_bytes(), "", 2, OUTPUT);
    assert!(run.bytes() < (16 << 20) + OUTPUT_OVERSHOOT, "{} bytes", run.bytes());
    let run = check("reload-fail", "script", script.as_bytes(), "-q", 3, "load failed: STATUS_INSUFFICIENT_RESOURCES");
    assert!(run.bytes() < (16 << 20) + OUTPUT_OVERSHOOT, "{} bytes", run.bytes());
    let script = storm("boot 1\nmax 2048\nload\n", "fault fail-alloc 7\n");
    let run = check("faults", "script", script.as_bytes(), "", 2, "more than 1024 planned faults");
    assert!(run.stdout < HARNESS_HEADER, "nothing ran: {} bytes", run.stdout);
    let script = storm("boot 1\nmax 2048\nload\n", "hot-add fail-init\n");
    check("add-faults", "script", script.as_bytes(), "", 2, "more than 8192 hot-add attempts");
}

#[test]
fn the_worst_crash_files_replay_within_the_limits() {
    // boot 64, maximum 2048, a driver before and one after procnotify; 2048
    // hot-adds, then read-alls to the end of 1 MiB.
    let mut crash = vec![63, 0xFF, 3];
    crash.extend([2].repeat(2048));
    let limit = usize::try_from(cli::MAX_CRASH_BYTES).unwrap();
    crash.resize(limit, 8);
    check("crash-read-all", "replay", &crash, "", 2, OUTPUT);
    check("crash-read-all", "replay", &crash, "-q", 2, WORK);
    // Reloads (two bytes each) to the end of 1 MiB.
    let mut crash = vec![63, 0xFF, 3];
    crash.extend([9, 1].repeat((limit - 3) / 2));
    check("crash-reload", "replay", &crash, "-q --format json", 2, WORK);
    // Too many hot-adds is refused before the run.
    check("crash-adds", "replay", &[2].repeat(10_000), "", 2, "more than 8192 hot-add attempts");
}

#[test]
fn inputs_past_1_mib_are_refused() {
    let script = storm("boot 2048\nload\n", "reload\n") + "reload\nreload\n";
    check("oversize", "script", script.as_bytes(), "", 2, "larger than the limit of 1048576 bytes");
    check("oversize-crash", "replay", &[8].repeat((1 << 20) + 1), "", 2, "larger than the limit of 1048576 bytes");
}

#[test]
fn a_raised_limit_lets_the_session_go_further() {
    let script = storm("boot 2048\nload\n", "read-all\n");
    let path = temp_file("raised", script.as_bytes());
    let usage = |flags: &str| {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut args = vec!["simulate", "script", path.to_str().unwrap(), "-q", "--print-usage"];
        args.extend(flags.split_whitespace());
        let code = cli::main(args, &mut out, &mut err);
        let err = String::from_utf8(err).unwrap();
        let line = err.lines().find(|l| l.starts_with("work_units=")).unwrap().to_string();
        let number = |key: &str| -> u64 { line.split(' ').find_map(|w| w.strip_prefix(key)).unwrap().parse().unwrap() };
        (code, number("work_units="), number("output_bytes="))
    };
    let (code, low, _) = usage("--work-limit 100000");
    assert_eq!(code, 2);
    assert!((100_000..100_000 + WORK_OVERSHOOT).contains(&low), "{low}");
    let (code, high, _) = usage("--work-limit 300000");
    assert_eq!(code, 2);
    assert!((300_000..300_000 + WORK_OVERSHOOT).contains(&high), "{high}");
    let (code, _, bytes) = usage("--output-limit 1000 --table");
    assert_eq!(code, 2);
    assert!(bytes < 1000 + OUTPUT_OVERSHOOT, "{bytes}");
    let _ = std::fs::remove_file(path);
}

/// The fuzz target's limits and checks (`fuzz/fuzz_targets/notifications.rs`).
fn replays_within(bytes: &[u8], json: bool, quiet: bool, queries: bool) -> Result<(), String> {
    let limits = Limits { work: 5_000, output: 64 << 10 };
    let format = if json { Format::Json } else { Format::Text };
    let mut out = Vec::new();
    let (code, usage) = cli::replay(bytes, format, quiet, queries, limits, &mut out);
    if ![0, 2, 3, 4].contains(&code) {
        return Err(format!("exit {code}"));
    }
    if usage.work > limits.work + WORK_OVERSHOOT || usage.output > limits.output + OUTPUT_OVERSHOOT {
        return Err(format!("past the limits: {usage:?}"));
    }
    if out.len() as u64 > usage.output {
        return Err(format!("{} bytes written, {usage:?} counted", out.len()));
    }
    if json && usage.work > 0 && serde_json::from_slice::<serde_json::Value>(&out).is_err() {
        return Err(String::from("not one JSON document"));
    }
    Ok(())
}

#[test]
fn every_seed_of_the_fuzz_corpus_replays_within_small_limits() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/notifications");
    let mut seeds = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for (json, quiet) in [(false, false), (false, true), (true, false), (true, true)] {
            for queries in [false, true] {
                replays_within(&bytes, json, quiet, queries).unwrap();
            }
        }
        seeds += 1;
    }
    assert!(seeds >= 10, "{seeds} seeds");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// The fuzz target's budget check (`fuzz/fuzz_targets/notifications.rs`),
    /// on inputs proptest makes: whatever the bytes, a replay stays within
    /// its limits (plus one kernel operation) and exits 0, 2, 3 or 4.
    #[test]
    fn any_fuzz_input_replays_within_its_limits(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        json in any::<bool>(),
        quiet in any::<bool>(),
        queries in any::<bool>(),
    ) {
        prop_assert_eq!(replays_within(&bytes, json, quiet, queries), Ok(()));
    }
}
