//! The JSON Schema of a stack file, generated from [`ComposeFile`].
//!
//! The checked-in copy lives at `schemas/compose.schema.json`;
//! `tests/schema.rs` fails when it is stale (rerun it with
//! `BERTH_UPDATE_SCHEMA=1` to rewrite it).

use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

use super::model::ComposeFile;

/// `$id` of the generated schema.
pub const SCHEMA_ID: &str = "https://berth.dev/schemas/compose.schema.json";

/// The JSON Schema (draft 2020-12) of one stack file as a user writes it.
///
/// The output is deterministic: definitions and properties are emitted in a
/// fixed order (serde_json's sorted maps).
pub fn stack_file_schema() -> Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let root = generator.into_root_schema_for::<ComposeFile>();
    let mut value = root.to_value();
    allow_extensions(&mut value);
    if let Value::Object(object) = &mut value {
        object.insert("$id".into(), json!(SCHEMA_ID));
        object.insert("title".into(), json!("berth stack file"));
        object.insert(
            "description".into(),
            json!(
                "One berth stack file (compose.yaml) as written, after variable interpolation: \
                 the subset of the Compose Specification that berth reads. Keys starting with \
                 `x-` are extensions and are allowed on every object of the model."
            ),
        );
    }
    value
}

/// The model rejects unknown keys but the loader splits `x-*` extension
/// keys off every model mapping first, so every closed object accepts them.
fn allow_extensions(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if object.get("additionalProperties") == Some(&Value::Bool(false)) {
                let patterns = object
                    .entry("patternProperties")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(patterns) = patterns {
                    patterns.entry("^x-").or_insert_with(|| json!({}));
                }
            }
            for child in object.values_mut() {
                allow_extensions(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(allow_extensions),
        _ => {}
    }
}
