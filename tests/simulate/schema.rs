//! Validates `simulate --format json` documents against the published JSON
//! Schemas, `docs/schema/simulate.schema.json` and the table schema it
//! refers to, with the `jsonschema` crate.

use std::fmt::Write as _;
use std::sync::OnceLock;

use serde_json::Value;

const SIMULATE: &str = include_str!("../../docs/schema/simulate.schema.json");
const TABLE: &str = include_str!("../../docs/schema/table.schema.json");

pub struct Schemas {
    pub simulate: jsonschema::Validator,
    #[allow(dead_code)] // not every test binary that includes this checks tables alone
    pub table: jsonschema::Validator,
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
        Schemas { simulate: build(&simulate), table: build(&table) }
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
pub fn document(text: &str) -> Value {
    let value: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not one JSON document: {e}\n{text:.2000}"));
    let errors = errors(&schemas().simulate, &value);
    assert!(errors.is_empty(), "does not match simulate.schema.json:\n{errors}\n{text:.2000}");
    value
}
