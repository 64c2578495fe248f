//! The `simulate` command line (`procnotify_sim::cli`, the library behind
//! `crates/procnotify-sim/src/bin/simulate.rs`): output, exit codes, the
//! script format and its examples, replay, JSON, and bounded memory.
//!
//! The golden trace `golden/simulate-boot4-add4-fail6.txt` was checked line by
//! line against `docs/processor-change-semantics.md`: §2 registration with
//! ADD_EXISTING (step 2: linked, handle not returned; step 4: AddStart for
//! 0..3 in order; step 6: AddComplete for 0..3, then the handle); §3 hot-add
//! for each add (step 2: the index is the processor count; step 4: AddStart;
//! step 5: the HAL starts it, before AddComplete; step 6: exactly one final
//! notification), with index 6 reused after the HAL failed to start it
//! (AddFailure with the HAL's status, `reverted`, then AddStart again at 6);
//! the DPC's `visit` lines after each step that brought a processor online;
//! unload: deregistration returns before the slots are freed (§4).

#[path = "simulate/json.rs"]
mod json;

use std::path::{Path, PathBuf};

use json::Json;
use procnotify_sim::cli;

struct Outcome {
    code: u8,
    out: String,
    err: String,
}

fn simulate(args: &[&str]) -> Outcome {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = cli::main(std::iter::once("simulate").chain(args.iter().copied()), &mut out, &mut err);
    Outcome { code, out: String::from_utf8(out).unwrap(), err: String::from_utf8(err).unwrap() }
}

fn line(command: &str) -> Outcome {
    simulate(&command.split_whitespace().collect::<Vec<_>>())
}

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("procnotify-simulate-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

fn example_scripts() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scripts");
    let mut scripts: Vec<_> = std::fs::read_dir(dir).unwrap().map(|entry| entry.unwrap().path()).collect();
    scripts.sort();
    scripts
}

#[test]
fn boot_4_add_4_with_one_failed_add_matches_the_golden_trace() {
    let run = line("run --boot 4 --add 4 --fail-add 6");
    let golden = include_str!("golden/simulate-boot4-add4-fail6.txt");
    for (n, (got, want)) in run.out.lines().zip(golden.lines()).enumerate() {
        assert_eq!(got, want, "first difference at line {}", n + 1);
    }
    assert_eq!(run.out.lines().count(), golden.lines().count(), "line count");
    assert_eq!((run.code, run.err.as_str()), (0, ""));
}

#[test]
fn a_failed_load_says_so_by_name_and_does_not_claim_a_clean_unload() {
    let run = line("run --boot 4 --fail-register-at 2");
    assert_eq!(run.code, 3, "{}", run.err);
    assert!(run.out.contains("load failed: STATUS_INSUFFICIENT_RESOURCES (0xC000009A)"), "{}", run.out);
    assert!(run.err.contains("load failed: STATUS_INSUFFICIENT_RESOURCES (0xC000009A)"), "{}", run.err);
    assert!(!run.out.contains("unload clean"), "{}", run.out);
    assert!(run.out.contains("never loaded; nothing left allocated: yes"));
    // AddFailure for 0 and 1, not for 2 (the one that failed), then NULL.
    let failures: Vec<_> = run.out.lines().filter(|l| l.starts_with("procnotify: add-failure")).collect();
    assert_eq!(failures.len(), 2, "{}", run.out);
    assert!(failures[0].contains("index=0") && failures[1].contains("index=1"));
    assert!(run.out.contains("KeRegisterProcessorChangeCallback returns NULL to procnotify"));
    // The machine goes on without procnotify: the kernel's adds reach nobody.
    assert!(run.out.contains("hot-adds: attempted=4 succeeded=4"), "{}", run.out);
    let quiet = line("run --boot 4 --fail-register-at 2 -q");
    assert_eq!(quiet.code, 3);
    assert!(quiet.out.contains("load failed: STATUS_INSUFFICIENT_RESOURCES (0xC000009A)"));
}

#[test]
fn another_drivers_registration_and_veto_are_named_in_order() {
    let run = line("run --boot 2 --add 2 --veto-add 2");
    assert_eq!(run.code, 0, "{}", run.err);
    let lines: Vec<&str> = run.out.lines().collect();
    let at = |needle: &str| lines.iter().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle}"));
    assert!(at("== boot") < at("other driver \"other\" registers"));
    assert!(at("other driver \"other\" registers") < at("DriverEntry: procnotify loads"));
    assert!(at("(other driver \"other\") vetoed: OperationStatus=0xC0000022(STATUS_ACCESS_DENIED)") > at("== hot-add"));
    assert!(run.out.contains("vetoes: procnotify=0 other driver \"other\"=1"), "{}", run.out);
    assert!(run.out.contains("hot-adds: attempted=2 succeeded=1 failed=1 refused=0"), "{}", run.out);
    assert!(!run.out.contains("AtMaximum"));
    let quiet = line("run --boot 2 --add 2 --veto-add 2 --quiet");
    assert!(!quiet.out.contains("kernel:"), "quiet leaves the trace out");
    // Index 2 was vetoed once, then reused: 0..2 online, 3 has no slot.
    assert!(quiet.out.contains("[  2]          0       2  online"), "{}", quiet.out);
    assert!(quiet.out.contains("[  3]          —       —  absent"), "{}", quiet.out);
}

#[test]
fn every_fault_that_does_not_fire_is_named_and_exits_4() {
    for (flags, name) in [
        ("--fail-add 100", "--fail-add 100"),
        ("--veto-add 0", "--veto-add 0"),
        ("--fail-alloc 99", "--fail-alloc 99"),
        ("--fail-prepare 50", "--fail-prepare 50"),
        ("--fail-init 3 --add 1", "--fail-init 3"),
    ] {
        let add = if flags.contains("--add") { "" } else { "--add 2" };
        let run = line(&format!("run --boot 2 {add} {flags}"));
        assert_eq!(run.code, 4, "{flags}: {}", run.err);
        assert!(run.err.contains(&format!("fault did not fire: {name}")), "{flags}: {}", run.err);
        assert!(run.out.contains(&format!("fault {name}: DID NOT FIRE")), "{flags}: {}", run.out);
    }
    for flags in ["--fail-add 3", "--veto-add 2", "--fail-alloc 4", "--fail-prepare 2", "--fail-init 3"] {
        let run = line(&format!("run --boot 2 --add 2 {flags}"));
        assert_eq!(run.code, 0, "{flags}: {}", run.err);
        assert!(run.out.contains(": fired"), "{flags}: {}", run.out);
    }
}

#[test]
fn command_line_conventions_and_exit_codes_in_help() {
    assert_eq!(line("run --boot=8 --add=0 -q").code, 0);
    let version = line("--version");
    assert_eq!((version.code, version.out.trim()), (0, "simulate 0.1.0"));
    for help in [line("--help"), line("run --help"), line("script --help")] {
        assert_eq!(help.code, 0);
        for code in 0..=5 {
            assert!(help.out.contains(&format!("\n  {code}  ")), "exit code {code} in --help:\n{}", help.out);
        }
    }
    let unknown = line("run --frobnicate");
    assert_eq!(unknown.code, 2);
    assert!(unknown.err.contains("--frobnicate"));
}

#[test]
fn the_number_of_hot_adds_is_limited() {
    let run = line(&format!("run --add {}", cli::MAX_ADD_ATTEMPTS + 1));
    assert_eq!(run.code, 2);
    assert!(run.err.contains(&cli::MAX_ADD_ATTEMPTS.to_string()), "{}", run.err);
    let script =
        temp_file("limit.txt", format!("boot 2\nload\nhot-add {}\nhot-add\n", cli::MAX_ADD_ATTEMPTS).as_bytes());
    let run = simulate(&["script", script.to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(run.err.contains("more than 8192 hot-add attempts"), "{}", run.err);
}

#[test]
fn the_example_scripts_run_and_meet_every_expectation() {
    let scripts = example_scripts();
    let names: Vec<_> = scripts.iter().map(|p| p.file_name().unwrap().to_str().unwrap().to_owned()).collect();
    for wanted in [
        "unknown-state.txt",
        "index-past-maximum.txt",
        "add-complete-without-add-start.txt",
        "duplicate-add-start.txt",
        "add-failure-vetoed-or-unseen.txt",
        "out-of-order.txt",
    ] {
        assert!(names.iter().any(|name| name == wanted), "examples/scripts/{wanted} is missing");
    }
    for script in &scripts {
        let run = simulate(&["script", script.to_str().unwrap()]);
        assert_eq!(run.code, 0, "{}: {}", script.display(), run.err);
        let checked = run.out.lines().find(|l| l.starts_with("expectations: ")).unwrap_or_default();
        assert!(checked.ends_with(" checked, 0 not met") && !checked.starts_with("expectations: 0 "), "{checked}");
    }
}

#[test]
fn scripts_print_back_as_they_parse() {
    for script in example_scripts() {
        let text = std::fs::read_to_string(&script).unwrap();
        let parsed = cli::text::parse(&text).unwrap();
        let printed = parsed.to_string();
        let again = cli::text::parse(&printed).unwrap();
        let steps = |s: &cli::step::Script| s.steps.iter().map(|(_, step)| step.clone()).collect::<Vec<_>>();
        assert_eq!((parsed.setup, steps(&parsed)), (again.setup, steps(&again)), "{}", script.display());
    }
}

#[test]
fn an_unmet_expectation_and_a_bad_line_are_reported_with_their_line() {
    let script = temp_file("unmet.txt", b"boot 2\nload\nnotify add-start 2\nexpect outcome online\n");
    let run = simulate(&["script", script.to_str().unwrap()]);
    assert_eq!(run.code, 5);
    assert!(run.err.contains("line 4: expect outcome online: not met: the last outcome was started"), "{}", run.err);
    let script = temp_file("bad.txt", b"boot 2\nload\nnotify add-begin 2\n");
    let run = simulate(&["script", script.to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(run.err.contains("line 3: `add-begin` is not a state"), "{}", run.err);
}

#[test]
fn run_is_the_script_it_prints() {
    let flags = "run --boot 3 --add 9 --fail-add 4 --veto-add 5 --fail-alloc 5 --fail-prepare 6";
    let printed = line(&format!("{flags} --print-script"));
    assert_eq!(printed.code, 0);
    let script = temp_file("printed.txt", printed.out.as_bytes());
    let from_script = simulate(&["script", script.to_str().unwrap()]);
    let from_run = line(flags);
    let trace = |out: &str| out.lines().filter(|l| !l.starts_with("fault ")).map(String::from).collect::<Vec<_>>();
    assert_eq!(trace(&from_script.out), trace(&from_run.out));
    assert_eq!(from_run.code, 0, "{}", from_run.err);
}

#[test]
fn replay_prints_a_fuzz_input_as_a_script_and_runs_it() {
    // Header: boot 4, max 8, another driver before procnotify. Then: hot-add;
    // hot-add vetoed by it (STATUS_UNSUCCESSFUL); hot-add; read on 5; inject
    // state 7 for index 2; unload; load.
    let crash = temp_file("crash", &[3, 4, 1, 2, 3, 2, 2, 7, 5, 0, 7, 2, 0, 0, 9, 0, 9, 0]);
    let printed = simulate(&["replay", crash.to_str().unwrap(), "--print-only"]);
    assert_eq!(printed.code, 0, "{}", printed.err);
    assert_eq!(
        printed.out,
        "boot 4\nmax 8\nother-driver before\nload\nhot-add\nhot-add veto before STATUS_UNSUCCESSFUL\nhot-add\n\
         read 5\nnotify 7 2\ntoggle\ntoggle\n"
    );
    let run = simulate(&["replay", crash.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.err);
    assert!(run.out.starts_with(&format!("== {} as a script", crash.display())));
    assert!(run.out.contains("outcome=ignored(unknown-state=7)"));
    assert!(run.out.contains("vetoes: procnotify=0 other driver \"before\"=1"), "{}", run.out);
}

#[test]
fn replay_runs_every_seed_of_the_fuzz_corpus_without_a_leak() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/notifications");
    let mut seeds = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let run = simulate(&["replay", path.to_str().unwrap(), "--quiet"]);
        // Load failures and faults that never fire are normal in fuzz inputs.
        assert!([0, 3, 4].contains(&run.code), "{}: exit {}: {}", path.display(), run.code, run.err);
        assert!(run.out.contains("unload clean: yes") || run.out.contains("nothing left allocated: yes"));
        seeds += 1;
    }
    assert!(seeds >= 10, "{seeds} seeds");
}

fn kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "bool",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

fn require(value: &Json, fields: &[(&str, &str)]) {
    for (key, want) in fields {
        let got = value.get(key).unwrap_or_else(|| panic!("missing `{key}` in {:?}", value.keys()));
        assert_eq!(kind(got), *want, "`{key}`");
    }
}

#[test]
fn json_output_follows_the_documented_schema() {
    for command in
        ["run --boot 4 --add 4 --fail-add 6 --veto-add 5 --format json", "run --fail-register-at 1 --format json -q"]
    {
        let run = line(command);
        let doc = json::parse(&run.out).unwrap_or_else(|e| panic!("{command}: {e}\n{}", run.out));
        require(
            &doc,
            &[
                ("schema", "string"),
                ("command", "string"),
                ("machine", "object"),
                ("events", "array"),
                ("summary", "object"),
            ],
        );
        assert_eq!(doc.get("schema"), Some(&Json::String("procnotify-simulate/1".into())));
        let machine = doc.get("machine").unwrap();
        require(
            machine,
            &[("boot", "number"), ("max", "number"), ("reported_max", "number"), ("dynamic_partitioning", "bool")],
        );
        let Some(Json::Array(events)) = doc.get("events") else { unreachable!() };
        for event in events {
            match event.get("kind") {
                Some(Json::String(k)) if ["note", "kernel", "procnotify"].contains(&k.as_str()) => {
                    require(event, &[("line", "string")]);
                }
                Some(Json::String(k)) if k == "table" => {
                    require(
                        event,
                        &[
                            ("capacity", "number"),
                            ("allocated_slots", "number"),
                            ("rows", "array"),
                            ("absent", "array"),
                        ],
                    );
                    let Some(Json::Array(rows)) = event.get("rows") else { unreachable!() };
                    for row in rows {
                        require(
                            row,
                            &[
                                ("index", "number"),
                                ("state", "string"),
                                ("starts", "number"),
                                ("completes", "number"),
                                ("failures", "number"),
                                ("visits", "number"),
                            ],
                        );
                        let placed = row.get("state") != Some(&Json::String("vacant".into()));
                        assert_eq!(kind(row.get("group").unwrap()), if placed { "number" } else { "null" });
                    }
                }
                other => panic!("unknown event kind {other:?}"),
            }
        }
        let summary = doc.get("summary").unwrap();
        require(
            summary,
            &[
                ("adds", "object"),
                ("vetoes", "array"),
                ("notifications", "number"),
                ("anomalies", "number"),
                ("loads", "number"),
                ("failed_loads", "array"),
                ("faults", "array"),
                ("expectations", "object"),
                ("pool", "object"),
                ("violations", "array"),
                ("ever_loaded", "bool"),
                ("clean", "bool"),
                ("exit_code", "number"),
            ],
        );
        require(
            summary.get("adds").unwrap(),
            &[("attempted", "number"), ("succeeded", "number"), ("failed", "number"), ("refused", "number")],
        );
        assert_eq!(summary.get("exit_code"), Some(&Json::Number(f64::from(run.code))));
        if command.contains("-q") {
            assert!(events.iter().all(|e| e.get("kind") == Some(&Json::String("table".into()))));
            let Some(Json::Array(failed)) = summary.get("failed_loads") else { unreachable!() };
            let status = failed[0].get("status").unwrap();
            assert_eq!(status.get("name"), Some(&Json::String("STATUS_INSUFFICIENT_RESOURCES".into())));
            assert_eq!(status.get("value"), Some(&Json::String("0xC000009A".into())));
        }
    }
}

/// The child half of `memory_does_not_grow_with_the_number_of_hot_adds`:
/// runs `simulate` with the arguments in `PROCNOTIFY_SIMULATE_CHILD` in this
/// fresh process and prints its peak memory.
#[test]
#[ignore = "run by memory_does_not_grow_with_the_number_of_hot_adds in a subprocess"]
fn simulate_child() {
    let args = std::env::var("PROCNOTIFY_SIMULATE_CHILD").expect("run by the memory test only");
    let run = line(&args);
    assert_eq!(run.code, 0, "{}", run.err);
    let peak = run.err.lines().find(|l| l.starts_with("peak_rss_kib=")).expect("peak line");
    println!("CHILD {peak}");
}

fn peak_kib(add: u32) -> u64 {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "simulate_child", "--nocapture", "--test-threads=1"])
        .env("PROCNOTIFY_SIMULATE_CHILD", format!("run --boot 4 --add {add} --quiet --peak-rss"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let line = stdout.lines().find_map(|l| l.split("CHILD peak_rss_kib=").nth(1)).expect("child's peak");
    line.trim().parse().unwrap()
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "peak memory is read from /proc/self/status (Linux only)")]
fn memory_does_not_grow_with_the_number_of_hot_adds() {
    let small = peak_kib(cli::MAX_ADD_ATTEMPTS / 8);
    let large = peak_kib(cli::MAX_ADD_ATTEMPTS);
    eprintln!(
        "peak RSS: {small} KiB for {} hot-adds, {large} KiB for {}",
        cli::MAX_ADD_ATTEMPTS / 8,
        cli::MAX_ADD_ATTEMPTS
    );
    assert!(small > 0 && large > 0);
    // 8 times the attempts (and twice the processors, 1028 vs 2048): the
    // trace is streamed and dropped, so the peak stays within a small factor.
    assert!(large * 2 < small * 3, "{large} KiB vs {small} KiB");
    // Keeping the trace of the 7168 further attempts would cost megabytes
    // (1.2 MB more when the kernel's events were kept, measured); the table
    // for 1020 more processors costs about 150 KB.
    assert!(large < small + 1024, "{large} KiB vs {small} KiB: the peak grew by more than 1 MiB");
}
