//! `simulate` with the inputs a newcomer produces, on Windows as on Linux:
//! scripts with a byte-order mark, in UTF-16 or with CRLF line endings, a
//! script on standard input, numbers out of range, `--print-script` and
//! errors with `--format json`, conflicting or impossible flags, and `-q`.

#[path = "simulate/harness.rs"]
mod harness;
#[path = "simulate/schema.rs"]
mod schema;

use harness::{Outcome, line, simulate, simulate_with_stdin, temp_file};

fn script(name: &str, bytes: &[u8], flags: &[&str]) -> Outcome {
    let path = temp_file(name, bytes);
    let mut args = vec!["script", path.to_str().unwrap()];
    args.extend(flags);
    simulate(&args)
}

/// UTF-16 little-endian with a byte-order mark: what Windows PowerShell 5.1's
/// `>` writes.
fn powershell_5(text: &str) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    bytes
}

const SCRIPT: &str = "# A hot-add that the HAL fails, then one that reuses the index.\n\
                      boot 2\nmax 4\nfault fail-start 2\nload\nhot-add 2\nexpect hot-add added 2\n";

#[test]
fn a_script_with_a_byte_order_mark_or_crlf_runs_as_without() {
    let plain = script("plain.txt", SCRIPT.as_bytes(), &[]);
    assert_eq!(plain.code, 0, "{}", plain.err);
    assert!(plain.out.contains("expectations: 1 checked, 0 not met"), "{}", plain.out);
    let crlf = SCRIPT.replace('\n', "\r\n");
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend(SCRIPT.as_bytes());
    let mut bom_crlf = b"\xEF\xBB\xBF".to_vec();
    bom_crlf.extend(crlf.as_bytes());
    for (name, bytes) in [("bom.txt", bom), ("crlf.txt", crlf.into_bytes()), ("bom-crlf.txt", bom_crlf)] {
        let run = script(name, &bytes, &[]);
        assert_eq!((run.code, run.err.as_str()), (0, ""), "{name}");
        assert_eq!(run.out, plain.out, "{name}: the same session");
    }
    // A CRLF line with an error names the line, without the CR.
    let run = script("crlf-bad.txt", b"boot 2\r\nload\r\nfrobnicate\r\n", &[]);
    assert_eq!(run.code, 2);
    assert!(run.err.contains("line 3: unknown command `frobnicate`"), "{}", run.err);
}

#[test]
fn a_utf16_script_is_named_with_the_fix() {
    // What `simulate run --print-script > s.txt` writes in Windows PowerShell 5.1.
    let printed = line("run --boot 2 --add 1 --print-script");
    for flags in [&[][..], &["--format", "json"][..]] {
        let run = script("utf16.txt", &powershell_5(&printed.out), flags);
        assert_eq!(run.code, 2);
        assert!(
            run.err.contains("the file is UTF-16 (little-endian, with a byte-order mark), not UTF-8; save it as UTF-8"),
            "{}",
            run.err
        );
        assert!(run.err.contains("Out-File -Encoding utf8"), "{}", run.err);
        if flags.is_empty() {
            assert_eq!(run.out, "");
        } else {
            let doc = schema::document(&run.out);
            assert!(doc["error"]["message"].as_str().unwrap().contains("UTF-16"), "{doc}");
        }
    }
    // Without the mark too, and other bytes name their line.
    let mut bare = powershell_5("boot 2\r\nload\r\n");
    bare.drain(..2);
    assert!(script("utf16-bare.txt", &bare, &[]).err.contains("the file is UTF-16 (little-endian), not UTF-8"));
    let run = script("latin1.txt", b"boot 2\nload\n# caf\xE9\n", &[]);
    assert_eq!(run.code, 2);
    assert!(run.err.contains("line 3: not UTF-8 text (byte 0xE9); save it as UTF-8"), "{}", run.err);
}

#[test]
fn script_dash_reads_standard_input() {
    let from_stdin = simulate_with_stdin(&["script", "-"], SCRIPT.as_bytes());
    let from_file = script("stdin-twin.txt", SCRIPT.as_bytes(), &[]);
    assert_eq!((from_stdin.code, from_stdin.err.as_str()), (0, ""));
    assert_eq!(from_stdin.out, from_file.out);
    let bad = simulate_with_stdin(&["script", "-"], b"boot 2\nload\nhot-add sideways\n");
    assert_eq!(bad.code, 2);
    assert!(bad.err.starts_with("simulate: standard input: line 3: a hot-add fault is one of"), "{}", bad.err);
    let huge = vec![b'#'; 1 << 21];
    let run = simulate_with_stdin(&["script", "-"], &huge);
    assert!(run.err.contains("standard input: larger than the limit of 1048576 bytes"), "{}", run.err);
    // `run --print-script | simulate script -` is the same session as the run.
    let printed = line("run --boot 3 --add 3 --fail-add 4 --print-script");
    let piped = simulate_with_stdin(&["script", "-"], printed.out.as_bytes());
    assert_eq!(piped.code, 0, "{}", piped.err);
    assert!(piped.out.contains("hot-adds: attempted=3 succeeded=2 failed=1"), "{}", piped.out);
}

#[test]
fn numbers_out_of_range_get_the_same_message_on_the_command_line_as_in_a_script() {
    for (flag, setting, message) in [
        ("--boot -1", "boot -1", "`-1` is not a whole number from 0 to 4294967295"),
        ("--boot 0", "boot 0", "0 is not in 1..=2048"),
        ("--max 4096", "max 4096", "4096 is not in 1..=2048"),
        ("--boot 0x10000000000", "boot 0x10000000000", "`0x10000000000` is not a whole number"),
    ] {
        let run = line(&format!("run {flag}"));
        assert_eq!(run.code, 2, "{flag}");
        assert!(run.err.contains(message), "{flag}: {}", run.err);
        assert!(!run.err.contains("unexpected argument"), "{flag}: {}", run.err);
        let run = script("number.txt", format!("{setting}\nload\n").as_bytes(), &[]);
        assert_eq!(run.code, 2, "{setting}");
        assert!(run.err.contains(message), "{setting}: {}", run.err);
    }
    for (flag, message) in [
        ("--fail-add -3", "`-3` is not a whole number"),
        ("--fail-alloc 0", "allocations are counted from 1"),
        ("--add 8193", "8193 is more than 8192 hot-add attempts in one session (the limit)"),
        ("--work-limit -5", "`-5` is not a whole number"),
    ] {
        let run = line(&format!("run {flag}"));
        assert_eq!(run.code, 2, "{flag}");
        assert!(run.err.contains(message), "{flag}: {}", run.err);
    }
    // Hexadecimal, as in scripts.
    assert_eq!(line("run --boot 0x4 --add 0 -q").code, 0);
}

#[test]
fn print_script_honours_the_format() {
    let text = line("run --boot 2 --add 2 --fail-add 3 --print-script");
    let json = line("run --boot 2 --add 2 --fail-add 3 --print-script --format json");
    assert_eq!(json.code, 0, "{}", json.err);
    let doc = schema::document(&json.out);
    assert_eq!(doc["command"], "run");
    assert_eq!(doc["script"], text.out.as_str());
    let crash = temp_file("print-only", &[3, 4, 1, 2, 3, 2]);
    let printed = simulate(&["replay", crash.to_str().unwrap(), "--print-only", "--format", "json"]);
    let doc = schema::document(&printed.out);
    assert_eq!(doc["command"], "replay");
    assert!(doc["script"].as_str().unwrap().starts_with("boot 4\nmax 8\nother-driver before\nload\n"), "{doc}");
}

#[test]
fn every_error_under_format_json_is_one_json_document() {
    let missing = std::env::temp_dir().join("procnotify-simulate-no-such-file.txt");
    let bad_line = temp_file("bad-line.txt", b"boot 2\nload\nnotify add-begin 1\n");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["run".into(), "--frobnicate".into()], "--frobnicate"),
        (vec!["run".into(), "--boot".into(), "-1".into()], "`-1` is not a whole number"),
        (vec!["run".into(), "--add".into(), "8193".into()], "8193 is more than 8192"),
        (vec!["run".into(), "--fail-register".into(), "--fail-register-at".into(), "1".into()], "cannot be used with"),
        (vec!["run".into(), "--fail-add".into(), "0".into()], "can never fire"),
        (vec!["frobnicate".into()], "frobnicate"),
        (vec!["script".into(), missing.to_str().unwrap().into()], "No such file or directory"),
        (vec!["script".into(), bad_line.to_str().unwrap().into()], "line 3: `add-begin` is not a state"),
    ];
    for (mut args, message) in cases {
        for format in [["--format", "json"].as_slice(), ["--format=json"].as_slice()] {
            args.extend(format.iter().map(|s| String::from(*s)));
            let run = simulate(&args.iter().map(String::as_str).collect::<Vec<_>>());
            assert_eq!(run.code, 2, "{args:?}");
            let doc = schema::document(&run.out);
            let error = doc["error"]["message"].as_str().unwrap();
            assert!(error.contains(message), "{args:?}: {error}");
            assert_eq!(doc["error"]["exit_code"], 2);
            // The same message, for people, on stderr.
            assert!(run.err.contains(message), "{args:?}: {}", run.err);
            args.truncate(args.len() - format.len());
        }
    }
    // Help is not an error: text, exit 0.
    let help = line("run --help --format json");
    assert_eq!(help.code, 0);
    assert!(help.out.contains("Exit codes:"));
}

#[test]
fn quiet_prints_no_table_unless_asked() {
    let quiet = line("run --boot 2 --add 2 -q");
    assert_eq!(quiet.code, 0);
    assert!(!quiet.out.contains("procnotify table"), "{}", quiet.out);
    assert!(quiet.out.starts_with("== summary\n"), "{}", quiet.out);
    assert!(quiet.out.contains("hot-adds: attempted=2 succeeded=2"));
    let tables = line("run --boot 2 --add 2 -q --table");
    assert_eq!(tables.out.matches("procnotify table").count(), 1, "{}", tables.out);
    // A `table` step is asked for: printed once, not again at the unload.
    let run = script("table.txt", b"boot 2\nload\nhot-add\ntable\nreload\n", &["-q"]);
    assert_eq!(run.out.matches("procnotify table").count(), 1, "{}", run.out);
    assert!(run.out.contains("[  2]          0       2  online"), "{}", run.out);
    // Without -q every unload prints it (here: the reload and the end).
    let run = script("table-loud.txt", b"boot 2\nload\nhot-add\nreload\n", &[]);
    assert_eq!(run.out.matches("procnotify table").count(), 2, "{}", run.out);
}
