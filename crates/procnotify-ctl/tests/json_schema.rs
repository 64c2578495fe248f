//! One schema for procnotify-ctl's JSON and the simulator's:
//! `docs/schema/table.schema.json` defines the table and the decoded reply
//! once; `procnotify-ctl table --json` is validated against it (as a whole
//! and as its `$defs/ctl`) for replies of simulated tables, full and cut
//! short, and `simulate`'s `query` events (validated against
//! `simulate.schema.json`, which refers to the same definitions) hold what
//! procnotify-ctl prints for the same bytes, in text and in JSON.

mod common;
#[path = "../../../tests/simulate/schema.rs"]
mod schema;

use procnotify_core::abi::{self, HEADER_SIZE, ROW_SIZE};
use procnotify_core::{NotifyState, NtStatus, ProcNumber};
use procnotify_sim::{Config, NotifyContext, SimKernel, SimOs, query};
use serde_json::{Value, json};

use common::{SCRIPT, ctl_on, machine, simulate};

/// The first `len` bytes of the driver's answer into a buffer of `len`
/// bytes: what the caller receives.
fn answer(driver: &procnotify_sim::SimDriver, len: usize) -> (NtStatus, Vec<u8>) {
    let mut out = vec![0; len];
    let answer = query::answer(driver, &mut out);
    out.truncate(answer.written);
    (answer.status, out)
}

/// `procnotify-ctl --reply FILE table --json` on `reply`, validated.
fn ctl_json(reply: &[u8]) -> Value {
    let (code, out, err) = ctl_on(reply, &["table", "--json"]);
    assert_eq!((code, err.as_str()), (0, ""));
    schema::ctl_document(&out)
}

#[test]
fn table_json_validates_against_the_table_schema() {
    let mut documents = Vec::new();
    // The usual machine: online, vacant and absent indices; and its reply
    // cut short (some rows, then the header alone).
    let (kernel, driver) = machine();
    for len in [abi::MAX_REPLY_SIZE, HEADER_SIZE + 2 * ROW_SIZE, HEADER_SIZE] {
        documents.push(ctl_json(&answer(&driver, len).1));
    }
    // A starting row and an anomaly (an AddComplete for an index past the
    // capacity, ignored).
    for (state, index) in [(NotifyState::AddStart, 6), (NotifyState::AddComplete, 70)] {
        let proc_number = ProcNumber::dense(index);
        kernel.inject(NotifyContext { state: state.raw(), nt_number: index, status: NtStatus::SUCCESS, proc_number });
    }
    documents.push(ctl_json(&query::reply(&driver)));
    driver.unload();
    // One processor; 2048 with a kernel that reports u32::MAX.
    let mut huge = Config::new(2048, 2048);
    huge.reported_max = u32::MAX;
    for config in [Config::new(1, 1), huge] {
        let kernel = SimKernel::boot(config);
        let driver = SimOs::load_monitor(&kernel).unwrap();
        kernel.flush_dpcs();
        documents.push(ctl_json(&query::reply(&driver)));
        driver.unload();
    }
    let rows = |doc: &Value| doc["table"]["rows"].as_array().unwrap().len();
    assert_eq!(documents.iter().map(rows).collect::<Vec<_>>(), [5, 2, 0, 6, 1, 2048]);
    assert_eq!(documents[1]["rows_in_table"], 5);
    assert_eq!(documents[3]["table"]["rows"][5]["state"], "starting");
    assert_eq!(documents[3]["stats"]["anomalies"], 1);
    assert_eq!(documents[5]["reported_max"], u64::from(u32::MAX));
}

type Mutation = Box<dyn Fn(&mut Value)>;

/// The schema is strict: documents that differ from procnotify-ctl's in
/// the ways a regression would are rejected, as a whole and as `$defs/ctl`.
#[test]
fn the_table_schema_rejects_what_procnotify_ctl_must_not_print() {
    let (_kernel, driver) = machine();
    let good = ctl_json(&query::reply(&driver));
    driver.unload();
    let mutations: Vec<(&str, Mutation)> = vec![
        ("another schema", Box::new(|v| v["schema"] = json!("procnotify-simulate/1"))),
        ("no schema", Box::new(|v| drop(v.as_object_mut().unwrap().remove("schema")))),
        ("no stats", Box::new(|v| drop(v.as_object_mut().unwrap().remove("stats")))),
        ("reply format 2", Box::new(|v| v["reply_format"] = json!(2))),
        ("unknown member", Box::new(|v| v["extra"] = json!(1))),
        ("unknown counter", Box::new(|v| v["stats"]["resets"] = json!(0))),
        ("table without kind", Box::new(|v| drop(v["table"].as_object_mut().unwrap().remove("kind")))),
        ("rows_written 2049", Box::new(|v| v["rows_written"] = json!(2049))),
        ("a vacant row with a group", Box::new(|v| v["table"]["rows"][4]["group"] = json!(0))),
        ("a bare table", Box::new(|v| *v = v["table"].clone())),
    ];
    let schemas = schema::schemas();
    for (what, mutate) in mutations {
        let mut bad = good.clone();
        mutate(&mut bad);
        assert!(!schemas.ctl.is_valid(&bad), "{what}: accepted by $defs/ctl");
        // A bare table is a document of the file (its other branch), with
        // no `kind`; with it, it is neither.
        assert!(!schemas.table.is_valid(&bad), "{what}: accepted by table.schema.json");
    }
    let mut bare = good["table"].clone();
    bare.as_object_mut().unwrap().remove("kind");
    assert!(schemas.table.is_valid(&bare) && !schemas.ctl.is_valid(&bare));
}

/// The queries of a script: a full one, one cut short, the header alone,
/// one too small for the header.
const QUERIES: &str = "query\nquery bytes=128\nquery bytes=64\nquery bytes=63\n";
const LENGTHS: [Option<usize>; 4] = [None, Some(128), Some(64), Some(63)];

#[test]
fn simulate_query_prints_what_procnotify_ctl_table_prints() {
    let (code, out, err) = simulate(&format!("{SCRIPT}{QUERIES}"), &["--quiet"]);
    assert_eq!(code, 0, "{err}");
    let blocks: Vec<&str> = out.split("== query ").skip(1).map(|block| block.split("\n\n").next().unwrap()).collect();
    assert_eq!(blocks.len(), 4, "{out}");
    let (_kernel, driver) = machine();
    for (block, len) in blocks.iter().zip(LENGTHS) {
        let (heading, printed) = block.split_once('\n').unwrap_or((block, ""));
        let (status, bytes) = match len {
            None => (NtStatus::SUCCESS, query::reply(&driver)),
            Some(len) => answer(&driver, len),
        };
        let buffer = len.unwrap_or(HEADER_SIZE + 8 * ROW_SIZE);
        let expected = format!("IOCTL_PROCNOTIFY_QUERY into {buffer} bytes");
        assert!(heading.contains(&expected), "{heading}");
        let name = status.name().unwrap();
        assert!(
            heading.contains(&format!("{name} (0x{:08X}), {} bytes written", status.bits(), bytes.len())),
            "{heading}"
        );
        if bytes.is_empty() {
            assert!(heading.ends_with("0 bytes written: no reply") && printed.is_empty(), "{block}");
        } else {
            let (code, ctl_out, _) = ctl_on(&bytes, &["table"]);
            assert_eq!(code, 0);
            assert_eq!(format!("{printed}\n"), ctl_out, "the lines after: {heading}");
        }
    }
    assert!(
        blocks[1].contains("STATUS_BUFFER_OVERFLOW") && blocks[1].contains("the header and 2 of the table's 5 rows")
    );
    assert!(blocks[3].contains("STATUS_BUFFER_TOO_SMALL"));
    driver.unload();
}

#[test]
fn simulate_query_events_hold_what_procnotify_ctl_table_json_prints() {
    let (code, out, err) = simulate(&format!("{SCRIPT}{QUERIES}"), &["--quiet", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let document = schema::document(&out);
    let events: Vec<&Value> = document["events"].as_array().unwrap().iter().collect();
    assert!(events.iter().all(|event| event["kind"] == "query"), "-q: only the queries");
    assert_eq!(events.len(), 4);
    let (_kernel, driver) = machine();
    for (event, len) in events.iter().zip(LENGTHS) {
        let (status, bytes) = match len {
            None => (NtStatus::SUCCESS, query::reply(&driver)),
            Some(len) => answer(&driver, len),
        };
        assert_eq!(event["loaded"], true);
        assert_eq!(event["after"], Value::Null);
        assert_eq!(event["written"], bytes.len());
        assert_eq!(event["status"]["value"], format!("0x{:08X}", status.bits()));
        if bytes.is_empty() {
            assert_eq!(event["reply"], Value::Null);
            continue;
        }
        // The same object as procnotify-ctl's document, but for its
        // `schema`: one `$defs/reply` describes both.
        let mut ctl = ctl_json(&bytes);
        ctl.as_object_mut().unwrap().remove("schema");
        assert_eq!(event["reply"], ctl);
    }
    driver.unload();
}
