//! Scalars as compose accepts them.
//!
//! Interpolation runs before type conversion, so a field typed as a number or
//! a boolean may hold a string (`replicas: ${N}`); compose-go casts such
//! strings by schema path. berth does the same per field with the lenient
//! deserializers below, and the schema documents both types.

use std::borrow::Cow;
use std::fmt::Display;
use std::str::FromStr;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_yaml::Value;

/// Renders a YAML scalar as the string compose would pass on
/// (`environment`, `labels`, `args` values may be numbers or booleans).
pub fn scalar_to_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A short human name for a YAML value's type, for error messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a sequence",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Converts a YAML value to `T`, accepting a string that parses as `T`.
pub fn lenient_from_value<T, E>(value: Value) -> Result<T, E>
where
    T: DeserializeOwned + FromStr,
    T::Err: Display,
    E: serde::de::Error,
{
    match value {
        Value::String(s) => {
            let trimmed = s.trim();
            trimmed
                .parse::<T>()
                .map_err(|e| E::custom(format!("invalid value {s:?}: {e}")))
        }
        other => serde_yaml::from_value(other).map_err(E::custom),
    }
}

/// `#[serde(deserialize_with = "lenient")]` for a required number/bool field.
pub fn lenient<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned + FromStr,
    T::Err: Display,
{
    let value = Value::deserialize(deserializer)?;
    lenient_from_value(value)
}

/// `#[serde(default, deserialize_with = "lenient_opt")]` for an optional
/// number/bool field; `null` stays `None`.
pub fn lenient_opt<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned + FromStr,
    T::Err: Display,
{
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        value => lenient_from_value(value).map(Some),
    }
}

/// A string field that YAML may have typed as a number or boolean
/// (`user: 1000`, `cpuset: 0`), kept as the string compose would use.
pub fn stringly_opt<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        value => scalar_to_string(&value)
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("expected a string, found {}", type_name(&value)))),
    }
}

/// Schema marker: an integer, or a string holding one (after interpolation).
pub struct IntOrString;

impl JsonSchema for IntOrString {
    fn schema_name() -> Cow<'static, str> {
        "IntOrString".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["integer", "string"] })
    }
}

/// Schema marker: a number, or a string holding one.
pub struct NumberOrString;

impl JsonSchema for NumberOrString {
    fn schema_name() -> Cow<'static, str> {
        "NumberOrString".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["number", "string"] })
    }
}

/// Schema marker: a boolean, or a string holding one.
pub struct BoolOrString;

impl JsonSchema for BoolOrString {
    fn schema_name() -> Cow<'static, str> {
        "BoolOrString".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["boolean", "string"] })
    }
}

/// Schema marker: a scalar written as a string, number or boolean.
pub struct Scalar;

impl JsonSchema for Scalar {
    fn schema_name() -> Cow<'static, str> {
        "Scalar".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["string", "number", "boolean"] })
    }
}

pub fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct T {
        #[serde(default, deserialize_with = "lenient_opt")]
        n: Option<u32>,
        #[serde(default, deserialize_with = "lenient_opt")]
        b: Option<bool>,
        #[serde(default, deserialize_with = "stringly_opt")]
        s: Option<String>,
    }

    #[test]
    fn accepts_numbers_in_strings() {
        let t: T = serde_yaml::from_str("n: '3'\nb: 'true'\ns: 1000").unwrap();
        assert_eq!(t.n, Some(3));
        assert_eq!(t.b, Some(true));
        assert_eq!(t.s.as_deref(), Some("1000"));
        let t: T = serde_yaml::from_str("n: 4\nb: false\ns: ~").unwrap();
        assert_eq!(t.n, Some(4));
        assert_eq!(t.b, Some(false));
        assert_eq!(t.s, None);
    }

    #[test]
    fn rejects_non_numbers_clearly() {
        let err = serde_yaml::from_str::<T>("n: three").err().unwrap().to_string();
        assert!(err.contains("invalid value \"three\""), "{err}");
        let err = serde_yaml::from_str::<T>("s: [1]").err().unwrap().to_string();
        assert!(err.contains("expected a string, found a sequence"), "{err}");
    }
}
