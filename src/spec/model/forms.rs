//! The "list or dict", "string or list" and other dual forms of the compose
//! file, each read into one canonical shape.
//!
//! Every form here deserializes from a `serde_yaml::Value` first and matches
//! on it by hand: untagged serde enums would only say "did not match any
//! variant", and users need to know what was expected.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_yaml::Value;

use super::scalar::{scalar_to_string, type_name};
use crate::spec::syntax::hosts::parse_extra_host;

/// Splits `KEY=VALUE`; a bare `KEY` gives `None` as the value.
pub fn split_key_value(item: &str) -> (String, Option<String>) {
    match item.split_once('=') {
        Some((k, v)) => (k.to_string(), Some(v.to_string())),
        None => (item.to_string(), None),
    }
}

fn expect_sequence<E: serde::de::Error>(value: Value, expected: &str) -> Result<Vec<Value>, E> {
    match value {
        Value::Sequence(items) => Ok(items),
        other => Err(E::custom(format!("expected {expected}, found {}", type_name(&other)))),
    }
}

fn item_string<E: serde::de::Error>(item: &Value, expected: &str) -> Result<String, E> {
    scalar_to_string(item).ok_or_else(|| E::custom(format!("expected {expected}, found {}", type_name(item))))
}

fn key_string<E: serde::de::Error>(key: &Value) -> Result<String, E> {
    scalar_to_string(key).ok_or_else(|| E::custom(format!("mapping keys must be strings, found {}", type_name(key))))
}

/// `list_or_dict` with values that may be absent: `environment`.
/// `KEY` (list) or `KEY:` (map, null) means "take it from the caller's
/// environment, or leave it unset" — kept as `None` until resolution.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Environment(pub BTreeMap<String, Option<String>>);

impl Environment {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Reads a `list_or_dict` into key → optional value.
pub fn list_or_dict<E: serde::de::Error>(value: Value) -> Result<BTreeMap<String, Option<String>>, E> {
    let mut map = BTreeMap::new();
    match value {
        Value::Null => {}
        Value::Sequence(items) => {
            for item in &items {
                let (k, v) = split_key_value(&item_string::<E>(item, "a KEY=VALUE string")?);
                map.insert(k, v);
            }
        }
        Value::Mapping(m) => {
            for (k, v) in &m {
                let value = match v {
                    Value::Null => None,
                    other => Some(item_string::<E>(other, "a string, number or boolean")?),
                };
                map.insert(key_string::<E>(k)?, value);
            }
        }
        other => {
            return Err(E::custom(format!(
                "expected a mapping or a list of KEY=VALUE strings, found {}",
                type_name(&other)
            )))
        }
    }
    Ok(map)
}

impl<'de> Deserialize<'de> for Environment {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        list_or_dict(Value::deserialize(d)?).map(Environment)
    }
}

impl JsonSchema for Environment {
    fn schema_name() -> Cow<'static, str> {
        "ListOrDict".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        list_or_dict_schema()
    }
}

fn list_or_dict_schema() -> Schema {
    json_schema!({
        "oneOf": [
            { "type": "object", "additionalProperties": { "type": ["string", "number", "boolean", "null"] } },
            { "type": "array", "items": { "type": "string" }, "uniqueItems": true }
        ]
    })
}

/// `list_or_dict` where a missing value means the empty string: labels,
/// annotations, build args, sysctls, driver options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct StringMap(pub BTreeMap<String, String>);

impl StringMap {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for StringMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = list_or_dict(Value::deserialize(d)?)?;
        Ok(StringMap(
            map.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect(),
        ))
    }
}

impl JsonSchema for StringMap {
    fn schema_name() -> Cow<'static, str> {
        "ListOrDict".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        list_or_dict_schema()
    }
}

/// `string_or_list`: `dns: 8.8.8.8` or `dns: [8.8.8.8, 1.1.1.1]`.
pub fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        Value::Sequence(items) => items.iter().map(|i| item_string::<D::Error>(i, "a string")).collect(),
        other => Ok(vec![item_string::<D::Error>(&other, "a string or a list of strings")?]),
    }
}

/// Schema marker for [`string_or_list`] fields.
pub struct StringOrList;

impl JsonSchema for StringOrList {
    fn schema_name() -> Cow<'static, str> {
        "StringOrList".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "oneOf": [ { "type": "string" }, { "type": "array", "items": { "type": "string" } } ] })
    }
}

/// A list of strings where YAML may type items as numbers (`group_add: [1000]`).
pub fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        value => expect_sequence::<D::Error>(value, "a list of strings")?
            .iter()
            .map(|i| item_string::<D::Error>(i, "a string"))
            .collect(),
    }
}

/// Schema marker for [`string_list`] fields whose items the Compose
/// Specification also allows as numbers (`expose: [3306]`, `group_add: [1000]`).
pub struct StringOrNumberList;

impl JsonSchema for StringOrNumberList {
    fn schema_name() -> Cow<'static, str> {
        "StringOrNumberList".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "array", "items": { "type": ["string", "number"] } })
    }
}

/// `command` / `entrypoint` / hook commands. A string is split into words
/// like a shell would (no expansion), as compose does; `''` and `[]` give an
/// empty list, which clears the image default (unlike an absent key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Command(pub Vec<String>);

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => shell_words::split(&s)
                .map(Command)
                .map_err(|e| D::Error::custom(format!("cannot split command {s:?} into words: {e}"))),
            Value::Sequence(items) => items
                .iter()
                .map(|i| item_string::<D::Error>(i, "a string"))
                .collect::<Result<_, _>>()
                .map(Command),
            other => Err(D::Error::custom(format!(
                "expected a command string or a list of strings, found {}",
                type_name(&other)
            ))),
        }
    }
}

impl JsonSchema for Command {
    fn schema_name() -> Cow<'static, str> {
        "Command".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "oneOf": [ { "type": "null" }, { "type": "string" }, { "type": "array", "items": { "type": "string" } } ] })
    }
}

/// `extra_hosts`: `["host:ip", "host=ip"]` or `{host: ip}` / `{host: [ip, ip]}`,
/// kept as host → addresses (a host may map to several addresses).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ExtraHosts(pub BTreeMap<String, Vec<String>>);

impl ExtraHosts {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for ExtraHosts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut hosts: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut add = |host: String, ip: String| -> Result<(), D::Error> {
            // Re-validate through the short-syntax parser so both forms obey
            // the same address rules.
            let (host, ip) = parse_extra_host(&format!("{host}={ip}")).map_err(D::Error::custom)?;
            let ips = hosts.entry(host).or_default();
            if !ips.contains(&ip) {
                ips.push(ip);
            }
            Ok(())
        };
        match Value::deserialize(d)? {
            Value::Null => {}
            Value::Sequence(items) => {
                for item in &items {
                    let entry = item_string::<D::Error>(item, "a host:ip string")?;
                    let (host, ip) = parse_extra_host(&entry).map_err(D::Error::custom)?;
                    add(host, ip)?;
                }
            }
            Value::Mapping(m) => {
                for (k, v) in &m {
                    let host = key_string::<D::Error>(k)?;
                    match v {
                        Value::Sequence(ips) => {
                            for ip in ips {
                                add(host.clone(), item_string::<D::Error>(ip, "an IP address")?)?;
                            }
                        }
                        other => add(host, item_string::<D::Error>(other, "an IP address")?)?,
                    }
                }
            }
            other => {
                return Err(D::Error::custom(format!(
                    "expected a list of host:ip strings or a mapping, found {}",
                    type_name(&other)
                )))
            }
        }
        Ok(ExtraHosts(hosts))
    }
}

impl JsonSchema for ExtraHosts {
    fn schema_name() -> Cow<'static, str> {
        "ExtraHosts".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "oneOf": [
                { "type": "object", "additionalProperties": { "oneOf": [ { "type": "string" }, { "type": "array", "items": { "type": "string" } } ] } },
                { "type": "array", "items": { "type": "string" }, "uniqueItems": true }
            ]
        })
    }
}

/// Deserializes a sequence whose items are each either a short-syntax
/// string or the long mapping: `parse_short` handles the former.
pub fn short_or_long_list<'de, D, T, F>(d: D, expected: &str, parse_short: F) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
    F: Fn(&str) -> Result<Vec<T>, String>,
{
    let value = Value::deserialize(d)?;
    if value.is_null() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for item in expect_sequence::<D::Error>(value, "a list")? {
        match item {
            Value::Mapping(_) => out.push(serde_yaml::from_value(item).map_err(D::Error::custom)?),
            other => {
                let short = item_string::<D::Error>(&other, expected)?;
                out.extend(parse_short(&short).map_err(D::Error::custom)?);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_list_and_map_agree() {
        let a: Environment = serde_yaml::from_str("[A=1, B, C=]").unwrap();
        let b: Environment = serde_yaml::from_str("{A: 1, B: null, C: ''}").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.0["A"], Some("1".into()));
        assert_eq!(a.0["B"], None);
        assert_eq!(a.0["C"], Some(String::new()));
    }

    #[test]
    fn environment_value_with_equals_is_kept_whole() {
        let e: Environment = serde_yaml::from_str("[URL=a=b=c]").unwrap();
        assert_eq!(e.0["URL"].as_deref(), Some("a=b=c"));
    }

    #[test]
    fn string_map_accepts_scalars() {
        let m: StringMap = serde_yaml::from_str("{a: true, b: 3, c: null}").unwrap();
        assert_eq!(m.0["a"], "true");
        assert_eq!(m.0["b"], "3");
        assert_eq!(m.0["c"], "");
        let err = serde_yaml::from_str::<StringMap>("5").unwrap_err().to_string();
        assert!(err.contains("expected a mapping or a list"), "{err}");
    }

    #[test]
    fn command_forms() {
        let c: Command = serde_yaml::from_str("\"sh -c 'echo hi there'\"").unwrap();
        assert_eq!(c.0, vec!["sh", "-c", "echo hi there"]);
        let c: Command = serde_yaml::from_str("['']").unwrap();
        assert_eq!(c.0, vec![""]);
        let c: Command = serde_yaml::from_str("''").unwrap();
        assert!(c.0.is_empty());
        let c: Command = serde_yaml::from_str("[]").unwrap();
        assert!(c.0.is_empty());
        assert!(serde_yaml::from_str::<Command>("\"echo 'unterminated\"").is_err());
    }

    #[test]
    fn extra_hosts_forms_agree() {
        let a: ExtraHosts = serde_yaml::from_str("['db:10.0.0.2', 'db=10.0.0.3', 'gw:host-gateway']").unwrap();
        let b: ExtraHosts = serde_yaml::from_str("{db: ['10.0.0.2', '10.0.0.3'], gw: host-gateway}").unwrap();
        assert_eq!(a, b);
        assert!(serde_yaml::from_str::<ExtraHosts>("['db:notanip']").is_err());
    }
}
