//! `simulate`'s user-mode query: the `query` script line (with the size
//! `procnotify-ctl` asks with, or `bytes=N` for the short-buffer replies),
//! `--query-after-each` (after the load, each hot-add attempt and the final
//! unload of a `run`; after each step that can change the table in a
//! script), in text and JSON; what it leaves alone (the trace and table are
//! those of the same session without it, the golden trace among them); its
//! errors; and its cost in the work and output budget. That the printed
//! reply is what `procnotify-ctl` prints for the same bytes is checked in
//! `crates/procnotify-ctl/tests/json_schema.rs`.

#[path = "simulate/harness.rs"]
mod harness;
#[path = "simulate/schema.rs"]
mod schema;

use harness::{Outcome, line, simulate_with_stdin};
use serde_json::{Value, json};

/// `simulate script` on `text` (standard input) with `flags`.
fn script(text: &str, flags: &str) -> Outcome {
    let args: Vec<&str> = ["script", "-"].into_iter().chain(flags.split_whitespace()).collect();
    simulate_with_stdin(&args, text.as_bytes())
}

/// The `== query` headings of a text output.
fn headings(out: &str) -> Vec<&str> {
    out.lines().filter(|line| line.starts_with("== query")).collect()
}

/// The text output without its query blocks (a heading and the lines up to
/// the next blank one) and without blank lines.
fn without_queries(out: &str) -> Vec<&str> {
    let mut kept = Vec::new();
    let mut in_query = false;
    for line in out.lines() {
        in_query = (in_query || line.starts_with("== query")) && !line.is_empty();
        if !in_query && !line.is_empty() {
            kept.push(line);
        }
    }
    kept
}

/// The JSON document's events.
fn events(out: &str) -> Vec<Value> {
    schema::document(out)["events"].as_array().unwrap().clone()
}

#[test]
fn a_query_line_prints_the_reply_and_the_short_buffer_cases() {
    let text = "boot 4\nmax 8\nload\nquery\nhot-add fail-start\nquery bytes=160\nquery bytes=64\nquery bytes=0\n\
                unload\nquery\n";
    let run = script(text, "-q");
    assert_eq!(run.code, 0, "{}", run.err);
    assert_eq!(
        headings(&run.out),
        [
            "== query (line 4): IOCTL_PROCNOTIFY_QUERY into 320 bytes (64 + 32 × capacity 8, as procnotify-ctl asks \
             after its 64-byte probe): STATUS_SUCCESS (0x00000000), 192 bytes written: the header and 4 of the \
             table's 4 rows",
            "== query (line 6): IOCTL_PROCNOTIFY_QUERY into 160 bytes: STATUS_BUFFER_OVERFLOW (0x80000005), 160 \
             bytes written: the header and 3 of the table's 5 rows",
            "== query (line 7): IOCTL_PROCNOTIFY_QUERY into 64 bytes: STATUS_BUFFER_OVERFLOW (0x80000005), 64 \
             bytes written: the header and 0 of the table's 5 rows",
            "== query (line 8): IOCTL_PROCNOTIFY_QUERY into 0 bytes: STATUS_BUFFER_TOO_SMALL (0xC0000023), 0 bytes \
             written: no reply",
            "== query (line 10): procnotify is not loaded: no device interface, so `procnotify-ctl table` would \
             exit 3 (not installed)",
        ]
    );
    // The first reply as procnotify-ctl prints it, after its heading.
    let first: Vec<&str> = run.out.lines().skip(1).take_while(|line| !line.is_empty()).collect();
    assert_eq!(
        first,
        [
            "procnotify table (IOCTL_PROCNOTIFY_QUERY, reply format 1): capacity=8 allocated_slots=4 (512 bytes of \
             slots + 192 bytes of index)",
            "    index      group  number  state     starts  completes  failures  visits",
            "    [  0]          0       0  online         1          1         0       1",
            "    [  1]          0       1  online         1          1         0       1",
            "    [  2]          0       2  online         1          1         0       1",
            "    [  3]          0       3  online         1          1         0       1",
            "    [4..7]         —       —  absent         —          —         —       —",
            "present=4 reported_max=8 notifications=8 vetoes=0 anomalies=0",
        ]
    );
    assert!(run.out.contains(
        "    [  2]          0       2  online         1          1         0       1\n\
         present=4 reported_max=8 notifications=10 vetoes=0 anomalies=0\n\
         (this reply holds 3 of the table's 5 rows; indices after the last one are not shown)\n"
    ));
    // JSON: the same five queries, one event each.
    let events = events(&script(text, "-q --format json").out);
    let view: Vec<Value> = events
        .iter()
        .map(|e| {
            json!([e["at"], e["loaded"], e["buffer"], e["status"]["name"], e["written"], e["reply"]["rows_written"]])
        })
        .collect();
    assert_eq!(
        view,
        [
            json!(["line 4", true, 320, "STATUS_SUCCESS", 192, 4]),
            json!(["line 6", true, 160, "STATUS_BUFFER_OVERFLOW", 160, 3]),
            json!(["line 7", true, 64, "STATUS_BUFFER_OVERFLOW", 64, 0]),
            json!(["line 8", true, 0, "STATUS_BUFFER_TOO_SMALL", 0, null]),
            json!(["line 10", false, null, null, null, null]),
        ]
    );
    assert_eq!(events[3]["reply"], Value::Null);
    assert!(events[4].get("reply").is_none() && events[4].get("status").is_none());
    assert!(events.iter().all(|e| e["kind"] == "query" && e["after"] == Value::Null));
}

#[test]
fn query_after_each_follows_the_load_each_hot_add_and_the_final_unload_of_a_run() {
    let run = line("run --boot 2 --add 3 --fail-add 3 --query-after-each -q");
    assert_eq!(run.code, 0, "{}", run.err);
    let headings: Vec<&str> = headings(&run.out).iter().map(|h| h.split(':').next().unwrap()).collect();
    assert_eq!(
        headings,
        [
            "== query after load (run)",
            "== query after hot-add (--add 3)",
            "== query after hot-add (--add 3)",
            "== query after hot-add (--add 3)",
            "== query after unload (end of session)",
        ]
    );
    // Index 3 is absent, fails (vacant), and is reused.
    let rows: Vec<&str> = run
        .out
        .lines()
        .filter(|l| l.starts_with("    [2..4]") || l.starts_with("    [3..4]") || l.starts_with("    [  3]"))
        .collect();
    assert_eq!(
        rows,
        [
            "    [2..4]         —       —  absent         —          —         —       —",
            "    [3..4]         —       —  absent         —          —         —       —",
            "    [  3]          —       —  vacant         1          0         1       0",
            "    [  3]          0       3  online         2          1         1       1",
        ]
    );
    let events = events(&line("run --boot 2 --add 3 --fail-add 3 --query-after-each -q --format json").out);
    let after: Vec<(&Value, &Value, &Value)> = events.iter().map(|e| (&e["after"], &e["at"], &e["loaded"])).collect();
    assert_eq!(
        after,
        [
            (&json!("load"), &json!("run"), &json!(true)),
            (&json!("hot-add"), &json!("--add 3"), &json!(true)),
            (&json!("hot-add"), &json!("--add 3"), &json!(true)),
            (&json!("hot-add"), &json!("--add 3"), &json!(true)),
            (&json!("unload"), &json!("end of session"), &json!(false)),
        ]
    );
    let present: Vec<&Value> = events[..4].iter().map(|e| &e["reply"]["present"]).collect();
    assert_eq!(present, [&json!(2), &json!(3), &json!(3), &json!(4)]);
}

#[test]
fn query_after_each_follows_every_script_step_that_can_change_the_table() {
    let text = "boot 2\nmax 6\nother-driver x\nfault fail-start 3\nload\nexpect load ok\ntable\nnotify add-start 4\n\
                read 0\nread-all\nhot-add 2\nquery bytes=64\ntoggle\ntoggle\nreload\nunload\n";
    let events = events(&script(text, "-q --query-after-each --format json").out);
    let queries: Vec<(&str, Value)> = events
        .iter()
        .filter(|e| e["kind"] == "query")
        .map(|e| (e["at"].as_str().unwrap(), e["after"].clone()))
        .collect();
    let expected = [
        ("line 5", json!("load")),
        ("line 8", json!("notify")),
        ("line 9", json!("read")),
        ("line 10", json!("read-all")),
        ("line 11", json!("hot-add")),
        ("line 11", json!("hot-add")),
        ("line 12", Value::Null),
        ("line 13", json!("toggle")),
        ("line 14", json!("toggle")),
        ("line 15", json!("reload")),
        ("line 16", json!("unload")),
    ];
    assert_eq!(queries, expected);
    // Unloaded by line 13 and line 16: no device then, and no query at the
    // end of the session (nothing is left to unload).
    let loaded: Vec<bool> = events.iter().filter(|e| e["kind"] == "query").map(|e| e["loaded"] == true).collect();
    assert_eq!(loaded, [true, true, true, true, true, true, true, false, true, true, false]);
    // Reads visit; a query does not: the visits only grow with reads.
    let visits: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "query")
        .take(4)
        .map(|e| &e["reply"]["table"]["rows"][0]["visits"])
        .collect();
    assert_eq!(visits, [&json!(1), &json!(1), &json!(2), &json!(3)]);
}

#[test]
fn the_query_changes_nothing_else_and_appears_only_when_asked() {
    // The golden trace's session: with --query-after-each, the same lines
    // and the queries; without, the golden trace exactly
    // (tests/simulate.rs checks it line for line).
    let golden = include_str!("golden/simulate-boot4-add4-fail6.txt");
    let with = line("run --boot 4 --add 4 --fail-add 6 --query-after-each");
    assert_eq!(with.code, 0, "{}", with.err);
    assert_eq!(headings(&with.out).len(), 1 + 4 + 1);
    let golden_lines: Vec<&str> = golden.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(without_queries(&with.out), golden_lines);
    assert!(headings(golden).is_empty());
    // JSON: the same events but the queries.
    let plain = events(&line("run --boot 4 --add 4 --fail-add 6 --format json").out);
    let with = events(&line("run --boot 4 --add 4 --fail-add 6 --query-after-each --format json").out);
    let others: Vec<&Value> = with.iter().filter(|e| e["kind"] != "query").collect();
    assert_eq!(others, plain.iter().collect::<Vec<_>>());
    assert_eq!(with.len(), plain.len() + 6);
}

#[test]
fn bad_query_lines_are_refused_with_their_line() {
    for (text, message) in [
        ("query bytes", "line 3: `query` takes `bytes=N` (the output buffer's length), not `bytes`"),
        ("query 64", "line 3: `query` takes `bytes=N` (the output buffer's length), not `64`"),
        ("query bytes=lots", "line 3: `lots` is not a whole number from 0 to 4294967295"),
        ("query bytes=65601", "line 3: bytes=65601: at most 65600 (a buffer of 65600 bytes holds the whole table"),
        ("query bytes=1 bytes=2", "line 3: `query [bytes=N]` takes one argument at most"),
    ] {
        let run = script(&format!("boot 2\nload\n{text}\n"), "");
        assert_eq!((run.code, run.out.as_str()), (2, ""), "{text}");
        assert!(run.err.contains(message), "{text}: {}", run.err);
        let json = script(&format!("boot 2\nload\n{text}\n"), "--format json");
        assert!(schema::document(&json.out)["error"]["message"].as_str().unwrap().contains(message));
    }
    let run = script("boot 2\nload\nquery bytes=65600\nquery bytes=0x40\n", "-q");
    assert_eq!(run.code, 0, "{}", run.err);
    assert!(run.out.contains("into 65600 bytes: STATUS_SUCCESS (0x00000000), 128 bytes written"), "{}", run.out);
    assert!(run.out.contains("into 64 bytes: STATUS_BUFFER_OVERFLOW (0x80000005), 64 bytes written"), "{}", run.out);
}

/// `work_units` and `output_bytes` of `script text -q --print-usage FLAGS`.
fn usage(text: &str, flags: &str) -> (u64, u64, usize) {
    let run = script(text, &format!("-q --print-usage {flags}"));
    let line = run.err.lines().find(|l| l.starts_with("work_units=")).unwrap();
    let number = |key: &str| -> u64 { line.split(' ').find_map(|w| w.strip_prefix(key)).unwrap().parse().unwrap() };
    (number("work_units="), number("output_bytes="), run.out.len())
}

#[test]
fn a_query_is_charged_for_every_line_it_prints() {
    let base = "boot 4\nmax 8\nload\n";
    for flags in ["", "--format json"] {
        let (work, bytes, _) = usage(base, flags);
        let (queried, queried_bytes, out) = usage(&format!("{base}query\n"), flags);
        // The step, the heading, the title, the columns, 4 rows, one absent
        // run, the counts: 10 units, in either format.
        assert_eq!(queried - work, 10, "{flags}");
        assert_eq!(queried_bytes, out as u64, "{flags}: every byte written is counted");
        assert!(queried_bytes > bytes + 500, "{flags}: {queried_bytes} vs {bytes}");
        let (short, _, _) = usage(&format!("{base}query bytes=10\n"), flags);
        assert_eq!(short - work, 2, "{flags}: the step and the heading");
    }
    // So the limits stop a session of queries: each takes 10 units.
    let (load, _, _) = usage(base, "");
    let storm = format!("{base}{}", "query\n".repeat(100));
    let run = script(&storm, "-q --work-limit 200");
    assert_eq!(run.code, 2);
    assert!(run.err.contains("the work limit of 200 units (steps, trace lines, table and query lines)"), "{}", run.err);
    // The load takes at most `load` units (its total counts the unload at
    // the end too), then queries as long as they fit.
    let queries = headings(&run.out).len() as u64;
    assert!(((200 - load) / 10..=200 / 10).contains(&queries), "{queries} queries, {load} units: {}", run.out);
    let run = script(&storm, "-q --output-limit 5000 --format json");
    assert_eq!(run.code, 2);
    let doc = schema::document(&run.out);
    assert!(doc["error"]["message"].as_str().unwrap().contains("output limit of 5000 bytes"), "{doc}");
    assert!(run.out.len() < 5000 + 2000, "{} bytes", run.out.len());
}

type Mutation = Box<dyn Fn(&mut Value)>;

/// The schema is strict about query events too.
#[test]
fn the_schema_rejects_bad_query_events() {
    let run = script("boot 2\nload\nquery\nquery bytes=8\nunload\nquery\n", "-q --format json");
    let good = schema::document(&run.out);
    let mutations: Vec<(&str, Mutation)> = vec![
        ("unknown member", Box::new(|v| v["events"][0]["extra"] = json!(1))),
        ("no at", Box::new(|v| drop(v["events"][0].as_object_mut().unwrap().remove("at")))),
        ("unknown step", Box::new(|v| v["events"][0]["after"] = json!("expect"))),
        ("loaded without a status", Box::new(|v| drop(v["events"][0].as_object_mut().unwrap().remove("status")))),
        (
            "not loaded with a status",
            Box::new(|v| v["events"][2]["status"] = json!({"value": "0x00000000", "name": null})),
        ),
        ("buffer past 65600", Box::new(|v| v["events"][0]["buffer"] = json!(65_601))),
        (
            "reply with procnotify-ctl's schema",
            Box::new(|v| v["events"][0]["reply"]["schema"] = json!("procnotify-ctl/1")),
        ),
        ("reply without stats", Box::new(|v| drop(v["events"][0]["reply"].as_object_mut().unwrap().remove("stats")))),
        (
            "reply table without kind",
            Box::new(|v| drop(v["events"][0]["reply"]["table"].as_object_mut().unwrap().remove("kind"))),
        ),
        (
            "a vacant row with a group",
            Box::new(|v| {
                v["events"][0]["reply"]["table"]["rows"][0]["state"] = json!("vacant");
            }),
        ),
    ];
    for (what, mutate) in mutations {
        let mut bad = good.clone();
        mutate(&mut bad);
        assert!(!schema::schemas().simulate.is_valid(&bad), "{what}: accepted");
    }
    assert_eq!(good["events"][1]["reply"], Value::Null);
}

/// docs/simulator.md's example of the query is the output of the script it
/// names.
#[test]
fn the_documented_example_is_what_simulate_prints() {
    let doc = include_str!("../docs/simulator.md");
    let example = doc
        .split("$ simulate script s.txt -q")
        .nth(1)
        .and_then(|rest| rest.split_once('\n'))
        .and_then(|(_, rest)| rest.split("\n```").next())
        .expect("the query example in docs/simulator.md");
    let run = script("boot 4\nmax 8\nload\nhot-add fail-start\nquery bytes=128\nquery bytes=63\n", "-q");
    assert!(run.out.starts_with(&format!("{example}\n")), "{}", run.out);
}
