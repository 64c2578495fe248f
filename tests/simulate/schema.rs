//! Validates `simulate --format json` documents and `procnotify-ctl table
//! --json` documents against the published JSON Schemas,
//! `docs/schema/simulate.schema.json` and the table schema both refer to
//! (`docs/schema/table.schema.json`, the one definition of the table and of
//! a decoded reply), with the `jsonschema` crate. Included by the
//! simulator's tests and by procnotify-ctl's (`#[path]`).

use std::fmt::Write as _;
use std::sync::OnceLock;

use serde_json::Value;

const SIMULATE: &str = include_str!("../../docs/schema/simulate.schema.json");
const TABLE: &str = include_str!("../../docs/schema/table.schema.json");

#[allow(dead_code)] // not every test binary that includes this uses each
pub struct Schemas {
    /// simulate.schema.json.
    pub simulate: jsonschema::Validator,
    /// table.schema.json as a document: a bare table or procnotify-ctl's.
    pub table: jsonschema::Validator,
    /// table.schema.json's `$defs/ctl`: `procnotify-ctl table --json`.
    pub ctl: jsonschema::Validator,
}

fn id(schema: &Value) -> &str {
    schema["$id"].as_str().expect("$id")
}

/// Both validators, built once; building checks each schema against the
/// JSON Schema 2020-12 meta-schema.
pub fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let simulate: Value = serde_json::from_str(SIMULATE).expect("simulate.schema.json is JSON");
        let table: Value = serde_json::from_str(TABLE).expect("table.schema.json is JSON");
        let registry = jsonschema::Registry::new()
            .add(id(&table), table.clone())
            .and_then(jsonschema::RegistryBuilder::prepare)
            .expect("registry");
        let build = |schema: &Value| {
            jsonschema::options()
                .with_registry(&registry)
                .build(schema)
                .unwrap_or_else(|e| panic!("{}: {e}", id(schema)))
        };
        let ctl = serde_json::json!({ "$ref": format!("{}#/$defs/ctl", id(&table)) });
        Schemas { simulate: build(&simulate), table: build(&table), ctl: build(&ctl) }
    })
}

/// The errors of `value` against `validator`, one a line.
pub fn errors(validator: &jsonschema::Validator, value: &Value) -> String {
    let mut text = String::new();
    for error in validator.iter_errors(value) {
        let _ = writeln!(text, "{error} at {}", error.instance_path());
    }
    text
}

/// Parses `text` as exactly one JSON document and validates it against
/// simulate.schema.json; returns it.
#[allow(dead_code)] // procnotify-ctl's tests check its documents only
pub fn document(text: &str) -> Value {
    let value: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not one JSON document: {e}\n{text:.2000}"));
    let errors = errors(&schemas().simulate, &value);
    assert!(errors.is_empty(), "does not match simulate.schema.json:\n{errors}\n{text:.2000}");
    value
}

/// Parses `text` as exactly one JSON document and validates it against
/// table.schema.json, as a whole and as its `$defs/ctl`; returns it.
#[allow(dead_code)] // the simulator's tests check its documents only
pub fn ctl_document(text: &str) -> Value {
    let value: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not one JSON document: {e}\n{text:.2000}"));
    for (validator, what) in [(&schemas().table, "table.schema.json"), (&schemas().ctl, "its $defs/ctl")] {
        let errors = errors(validator, &value);
        assert!(errors.is_empty(), "does not match {what}:\n{errors}\n{text:.2000}");
    }
    value
}
