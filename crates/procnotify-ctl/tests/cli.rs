//! procnotify-ctl against replies the encoder wrote for tables the real
//! engine built in the simulator (`procnotify_sim::query`: the driver's own
//! mapping of the table to rows, `procnotify_core::query`): the printed table is the simulator's, row
//! for row and as JSON; `check` passes and fails for the right reasons;
//! `watch` shows a hot-add arrive; every error has its exit code and says
//! what to do. The binary is run with `--reply FILE`, which works on any
//! host; on Windows the same decoding and printing run on the driver's reply.

mod common;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::Duration;

use clap::Parser;
use procnotify_core::abi::{self, FORMAT_VERSION};
use procnotify_core::{NotifyState, NtStatus, ProcNumber};
use procnotify_ctl::args::Cli;
use procnotify_ctl::error::{CtlError, Exit};
use procnotify_ctl::source::Source;
use procnotify_sim::{Config, NotifyContext, SimKernel, SimOs, query};
use serde_json::Value;

use common::{SCRIPT, TempFile, ctl, ctl_on, machine};

/// `simulate script` on `SCRIPT` then `table`, `--quiet [--format json]`'s
/// output.
fn simulate(json: bool) -> String {
    let flags: &[&str] = if json { &["--quiet", "--format", "json"] } else { &["--quiet"] };
    let (code, out, err) = common::simulate(&format!("{SCRIPT}table\n"), flags);
    assert_eq!(code, 0, "simulate: {err}");
    out
}

#[test]
fn table_prints_the_simulators_rows() {
    let (_kernel, driver) = machine();
    let (code, out, err) = ctl_on(&query::reply(&driver), &["table"]);
    assert_eq!((code, err.as_str()), (0, ""));
    let expected = "\
procnotify table (IOCTL_PROCNOTIFY_QUERY, reply format 1): capacity=8 allocated_slots=8 (1024 bytes of slots + 192 bytes of index)
    index      group  number  state     starts  completes  failures  visits
    [  0]          0       0  online         1          1         0       1
    [  1]          0       1  online         1          1         0       1
    [  2]          0       2  online         1          1         0       1
    [  3]          0       3  online         1          1         0       1
    [  4]          —       —  vacant         1          0         1       0
    [5..7]         —       —  absent         —          —         —       —
present=4 reported_max=8 notifications=10 vetoes=0 anomalies=0
";
    assert_eq!(out, expected);
    // The rows (every line after the title) are the simulator's, for the
    // same machine in the same state.
    let simulated = simulate(false);
    let simulated: Vec<&str> = simulated.lines().skip_while(|line| !line.starts_with("    index")).collect();
    let ours: Vec<&str> = out.lines().skip(1).take(7).collect();
    assert_eq!(ours, simulated[..7]);
    driver.unload();
}

#[test]
fn table_json_holds_the_simulators_table_event() {
    let (_kernel, driver) = machine();
    let (code, out, _) = ctl_on(&query::reply(&driver), &["table", "--json"]);
    assert_eq!(code, 0);
    let ours: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(ours["schema"], "procnotify-ctl/1");
    assert_eq!(ours["reply_format"], FORMAT_VERSION);
    assert_eq!((ours["present"].as_u64(), ours["rows_in_table"].as_u64()), (Some(4), Some(5)));
    assert_eq!(ours["stats"]["notifications"], 10);
    let simulated: Value = serde_json::from_str(&simulate(true)).unwrap();
    let event = simulated["events"].as_array().unwrap().iter().find(|event| event["kind"] == "table").unwrap();
    // The same object, key for key and value for value: one schema for both.
    assert_eq!(&ours["table"], event);
    driver.unload();
}

#[test]
fn check_passes_only_for_online_processors_with_a_visit() {
    let (kernel, driver) = machine();
    // Index 6: an AddStart and no AddComplete yet.
    kernel.inject(NotifyContext {
        state: NotifyState::AddStart.raw(),
        nt_number: 6,
        status: NtStatus::SUCCESS,
        proc_number: ProcNumber::dense(6),
    });
    let reply = query::reply(&driver);
    let (code, out, _) = ctl_on(&reply, &["check", "--expect-online", "3,0,1,2"]);
    assert_eq!(code, 0);
    assert_eq!(out, "procnotify-ctl: check passed: processors 0,1,2,3 online, each with at least one DPC visit\n");
    let (code, out, _) = ctl_on(&reply, &["check", "--expect-online", "0,4,5,6,9"]);
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "procnotify-ctl: check failed: processor 4 is vacant (starts=1 completes=0 failures=1); processor 5 has no \
         slot (absent: never started); processor 6 is starting (starts=1 completes=0 failures=0); processor 9 is past \
         the table's capacity (8 processors); expected online with at least one DPC visit\n"
    );
    assert_eq!(out.lines().count(), 1);
    driver.unload();
}

#[test]
fn check_fails_for_an_online_processor_whose_dpc_has_not_run() {
    let (kernel, driver) = machine();
    // An AddComplete for a processor the DPC cannot be targeted at (group 7
    // does not exist): online, never visited.
    kernel.inject(NotifyContext {
        state: NotifyState::AddComplete.raw(),
        nt_number: 7,
        status: NtStatus::SUCCESS,
        proc_number: ProcNumber { group: 7, number: 3 },
    });
    kernel.flush_dpcs();
    let (code, out, _) = ctl_on(&query::reply(&driver), &["check", "--expect-online", "7"]);
    assert_eq!(code, 1);
    assert!(out.contains("processor 7 is online but its DPC has not run (visits=0)"), "{out}");
    driver.unload();
}

/// Replies handed out in order.
struct Replies(VecDeque<Vec<u8>>);

impl Source for Replies {
    fn fetch(&mut self) -> Result<Vec<u8>, CtlError> {
        self.0.pop_front().ok_or(CtlError::NotInstalled)
    }
}

/// Runs `args` in-process against `replies`; the pauses are recorded, not
/// slept.
fn run_with(args: &[&str], replies: Vec<Vec<u8>>) -> (Result<Exit, CtlError>, String, Vec<Duration>) {
    let cli = Cli::try_parse_from([&["procnotify-ctl"], args].concat()).unwrap();
    let mut out = Vec::new();
    let pauses = RefCell::new(Vec::new());
    let result = procnotify_ctl::run(&cli, &mut Replies(replies.into()), &mut out, &mut |pause| {
        pauses.borrow_mut().push(pause);
    });
    (result, String::from_utf8(out).unwrap(), pauses.into_inner())
}

#[test]
fn watch_shows_a_hot_add_arrive() {
    let kernel = SimKernel::boot(Config::new(2, 4));
    let driver = SimOs::load_monitor(&kernel).unwrap();
    kernel.flush_dpcs();
    let notify = |state: NotifyState| {
        kernel.inject(NotifyContext {
            state: state.raw(),
            nt_number: 2,
            status: NtStatus::SUCCESS,
            proc_number: ProcNumber::dense(2),
        })
    };
    let mut replies = vec![query::reply(&driver), query::reply(&driver)];
    notify(NotifyState::AddStart);
    replies.push(query::reply(&driver));
    notify(NotifyState::AddComplete);
    // The simulator runs DPCs on a worker thread: whether processor 2's DPC
    // has visited by now is a race, so the reply is taken after the flush.
    kernel.flush_dpcs();
    replies.push(query::reply(&driver));
    // Nothing changed since: watch prints nothing for this poll.
    replies.push(query::reply(&driver));
    let (result, out, pauses) = run_with(&["watch", "--interval", "250", "--count", "5"], replies);
    assert_eq!(result, Ok(Exit::Ok));
    assert_eq!(pauses, [Duration::from_millis(250); 4]);
    let lines: Vec<&str> = out.lines().map(|line| line.split_once(' ').unwrap().1).collect();
    assert_eq!(
        lines,
        [
            "[  0] online    { online index=0 group=0 number=0 starts=1 completes=1 failures=0 visits=1 }",
            "[  1] online    { online index=1 group=0 number=1 starts=1 completes=1 failures=0 visits=1 }",
            "[  2] absent -> starting  { starting index=2 group=0 number=2 starts=1 completes=0 failures=0 visits=0 }",
            "[  2] starting -> online  { online index=2 group=0 number=2 starts=1 completes=1 failures=0 visits=1 }",
        ]
    );
    assert!(out.lines().all(|line| line.starts_with('+') && line.split(' ').next().unwrap().ends_with('s')));
    driver.unload();
}

#[test]
fn watch_reports_a_reload_and_stops_at_the_first_error() {
    let (kernel, driver) = machine();
    let before = query::reply(&driver);
    driver.unload();
    let driver = SimOs::load_monitor(&kernel).unwrap();
    kernel.flush_dpcs();
    let after = query::reply(&driver);
    let (result, out, _) = run_with(&["watch", "--interval", "100"], vec![before, after]);
    assert_eq!(result, Err(CtlError::NotInstalled), "the third poll finds no driver");
    let last = out.lines().last().unwrap();
    assert!(last.contains("[  4] vacant -> gone (the driver was reloaded)"), "{out}");
    driver.unload();
}

#[test]
fn dump_saves_a_reply_that_reads_back_the_same() {
    let (_kernel, driver) = machine();
    let reply = query::reply(&driver);
    let saved = TempFile::with(&[]);
    let (code, out, _) = ctl_on(&reply, &["dump", saved.0.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(std::fs::read(&saved.0).unwrap(), reply);
    assert!(out.contains(&format!("saved a reply of {} bytes (5 rows)", reply.len())), "{out}");
    driver.unload();
}

#[test]
fn every_error_has_its_exit_code_and_says_what_to_do() {
    let (_kernel, driver) = machine();
    let reply = query::reply(&driver);
    driver.unload();

    let mut newer = reply.clone();
    newer[4..8].copy_from_slice(&2_u32.to_le_bytes());
    let (code, out, err) = ctl_on(&newer, &["table"]);
    assert_eq!((code, out.as_str()), (5, ""));
    assert!(err.contains("the driver answers with reply format 2, this procnotify-ctl reads format 1"), "{err}");

    let mut foreign = reply.clone();
    foreign[0] = b'X';
    let (code, _, err) = ctl_on(&foreign, &["check", "--expect-online", "0"]);
    assert_eq!(code, 6);
    assert!(err.contains("not a procnotify query reply"), "{err}");

    let (code, _, err) = ctl_on(&reply[..40], &["table"]);
    assert_eq!(code, 6);
    assert!(err.contains("reply too short: 40 bytes, 64 needed"), "{err}");

    let output = ctl(&["--reply", "/nonexistent/procnotify-reply", "table"]);
    assert_eq!(output.status.code(), Some(6));

    for args in [&["watch", "--interval", "99"][..], &["check"], &["check", "--expect-online", "2048"], &["table", "x"]]
    {
        assert_eq!(ctl(args).status.code(), Some(2), "{args:?}");
    }
    // The codes the tests cannot provoke without Windows.
    assert_eq!(CtlError::NotInstalled.exit().code(), 3);
    assert_eq!(CtlError::AccessDenied { call: "CreateFileW" }.exit().code(), 4);
    assert!(CtlError::AccessDenied { call: "CreateFileW" }.to_string().contains("run as Administrator"));
    assert_eq!(CtlError::NoQuery.exit().code(), 5);
    assert!(CtlError::NotInstalled.to_string().contains("{2d38cf3c-e842-45e3-93a0-6c5d9c1409e8}"));
}

#[cfg(not(windows))]
#[test]
fn without_windows_or_a_saved_reply_there_is_nothing_to_ask() {
    let output = ctl(&["table"]);
    assert_eq!(output.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--reply FILE"));
}

#[test]
fn a_reply_cut_short_is_printed_as_far_as_it_goes() {
    let (_kernel, driver) = machine();
    let mut out = vec![0; abi::HEADER_SIZE + 2 * abi::ROW_SIZE];
    assert_eq!(query::answer(&driver, &mut out).status, NtStatus::BUFFER_OVERFLOW);
    let (code, text, _) = ctl_on(&out, &["table"]);
    assert_eq!(code, 0);
    assert!(text.contains("[  1]") && !text.contains("[  2]") && !text.contains("absent"), "{text}");
    assert!(text.contains("(this reply holds 2 of the table's 5 rows"), "{text}");
    let (code, text, _) = ctl_on(&out, &["check", "--expect-online", "3"]);
    assert_eq!(code, 1);
    assert!(text.contains("processor 3 is not in the reply (it holds 2 of 5 rows)"), "{text}");
    driver.unload();
}
