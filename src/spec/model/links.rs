//! How a service refers to other things: dependencies, networks, extended
//! services, configs and secrets, ulimits.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_yaml::Value;

use super::forms::{string_list, StringMap};
use super::scalar::{lenient_from_value, lenient_opt, stringly_opt, type_name, BoolOrString, IntOrString};

/// When a dependency counts as ready.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    #[default]
    ServiceStarted,
    ServiceHealthy,
    ServiceCompletedSuccessfully,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DependsOn {
    #[serde(default)]
    pub condition: Condition,
    /// Restart this service when the dependency is restarted or recreated.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<BoolOrString>")]
    pub restart: Option<bool>,
    #[serde(default = "default_true", deserialize_with = "super::scalar::lenient")]
    #[schemars(with = "BoolOrString")]
    pub required: bool,
}

fn default_true() -> bool {
    true
}

impl DependsOn {
    /// The list form's meaning: started, required, no restart.
    pub fn started() -> Self {
        DependsOn {
            condition: Condition::ServiceStarted,
            restart: None,
            required: true,
        }
    }
}

/// `depends_on: [a, b]` or `depends_on: {a: {condition: ...}}`.
pub fn depends_on<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, DependsOn>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(BTreeMap::new()),
        Value::Sequence(items) => items
            .iter()
            .map(|item| match item {
                Value::String(name) => Ok((name.clone(), DependsOn::started())),
                other => Err(D::Error::custom(format!(
                    "expected a service name, found {}",
                    type_name(other)
                ))),
            })
            .collect(),
        value @ Value::Mapping(_) => serde_yaml::from_value(value).map_err(D::Error::custom),
        other => Err(D::Error::custom(format!(
            "expected a list of service names or a mapping, found {}",
            type_name(&other)
        ))),
    }
}

/// Schema of `depends_on`.
pub struct DependsOnSchema;

impl JsonSchema for DependsOnSchema {
    fn schema_name() -> Cow<'static, str> {
        "DependsOnList".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let long = generator.subschema_for::<DependsOn>();
        json_schema!({
            "oneOf": [
                { "type": "array", "items": { "type": "string" }, "uniqueItems": true },
                { "type": "object", "additionalProperties": long }
            ]
        })
    }
}

/// A service's membership of one network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceNetwork {
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "string_list")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "string_list")]
    pub link_local_ips: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_name: Option<String>,
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub driver_opts: StringMap,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<IntOrString>")]
    pub priority: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<IntOrString>")]
    pub gw_priority: Option<i64>,
}

/// `networks: [a, b]` or `networks: {a: null, b: {aliases: [...]}}`.
pub fn service_networks<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, ServiceNetwork>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(BTreeMap::new()),
        Value::Sequence(items) => items
            .iter()
            .map(|item| match item {
                Value::String(name) => Ok((name.clone(), ServiceNetwork::default())),
                other => Err(D::Error::custom(format!(
                    "expected a network name, found {}",
                    type_name(other)
                ))),
            })
            .collect(),
        Value::Mapping(m) => m
            .into_iter()
            .map(|(k, v)| {
                let name = super::scalar::scalar_to_string(&k)
                    .ok_or_else(|| D::Error::custom("network names must be strings"))?;
                let network = match v {
                    Value::Null => ServiceNetwork::default(),
                    other => serde_yaml::from_value(other).map_err(D::Error::custom)?,
                };
                Ok((name, network))
            })
            .collect(),
        other => Err(D::Error::custom(format!(
            "expected a list of network names or a mapping, found {}",
            type_name(&other)
        ))),
    }
}

/// Schema of a service's `networks`.
pub struct ServiceNetworksSchema;

impl JsonSchema for ServiceNetworksSchema {
    fn schema_name() -> Cow<'static, str> {
        "ServiceNetworks".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let long = generator.subschema_for::<ServiceNetwork>();
        json_schema!({
            "oneOf": [
                { "type": "array", "items": { "type": "string" }, "uniqueItems": true },
                { "type": "object", "additionalProperties": { "oneOf": [ long, { "type": "null" } ] } }
            ]
        })
    }
}

/// `extends: base` or `extends: {service: base, file: other.yaml}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct Extends {
    pub service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

impl<'de> Deserialize<'de> for Extends {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(service) => Ok(Extends { service, file: None }),
            value => Extends::deserialize(value).map_err(D::Error::custom),
        }
    }
}

impl Serialize for Extends {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Extends::serialize(self, s)
    }
}

/// A service's grant of a config or secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileReference {
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "stringly_opt")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "stringly_opt")]
    pub gid: Option<String>,
    /// File mode; YAML octal (`0440`) arrives as a number, strings are octal.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "file_mode")]
    #[schemars(with = "Option<IntOrString>")]
    pub mode: Option<u32>,
}

fn file_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => u32::from_str_radix(s.trim_start_matches("0o"), 8)
            .map(Some)
            .map_err(|_| D::Error::custom(format!("invalid file mode {s:?}: expected an octal number"))),
        value => lenient_from_value(value).map(Some),
    }
}

/// `secrets: [name]` or the long form.
pub fn file_references<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<FileReference>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        Value::Sequence(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(source) => Ok(FileReference {
                    source,
                    target: None,
                    uid: None,
                    gid: None,
                    mode: None,
                }),
                other => serde_yaml::from_value(other).map_err(D::Error::custom),
            })
            .collect(),
        other => Err(D::Error::custom(format!(
            "expected a list, found {}",
            type_name(&other)
        ))),
    }
}

/// Schema of one config/secret grant.
pub struct FileReferenceSchema;

impl JsonSchema for FileReferenceSchema {
    fn schema_name() -> Cow<'static, str> {
        "FileReferenceItem".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let long = generator.subschema_for::<FileReference>();
        json_schema!({ "oneOf": [ { "type": "string" }, long ] })
    }
}

/// One ulimit: a single value sets soft and hard alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(with = "UlimitSchema")]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UlimitPair {
    #[serde(deserialize_with = "super::scalar::lenient")]
    soft: i64,
    #[serde(deserialize_with = "super::scalar::lenient")]
    hard: i64,
}

impl<'de> Deserialize<'de> for Ulimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            value @ Value::Mapping(_) => {
                let pair: UlimitPair = serde_yaml::from_value(value).map_err(D::Error::custom)?;
                if pair.soft > pair.hard && pair.hard >= 0 {
                    return Err(D::Error::custom(format!(
                        "soft limit {} is above hard limit {}",
                        pair.soft, pair.hard
                    )));
                }
                Ok(Ulimit {
                    soft: pair.soft,
                    hard: pair.hard,
                })
            }
            value => {
                let n: i64 = lenient_from_value(value)?;
                Ok(Ulimit { soft: n, hard: n })
            }
        }
    }
}

struct UlimitSchema;

impl JsonSchema for UlimitSchema {
    fn schema_name() -> Cow<'static, str> {
        "Ulimit".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "oneOf": [
                { "type": ["integer", "string"] },
                {
                    "type": "object",
                    "properties": { "soft": { "type": ["integer", "string"] }, "hard": { "type": ["integer", "string"] } },
                    "required": ["soft", "hard"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct S {
        #[serde(default, deserialize_with = "depends_on")]
        depends_on: BTreeMap<String, DependsOn>,
        #[serde(default, deserialize_with = "service_networks")]
        networks: BTreeMap<String, ServiceNetwork>,
        #[serde(default, deserialize_with = "file_references")]
        secrets: Vec<FileReference>,
        #[serde(default)]
        ulimits: BTreeMap<String, Ulimit>,
    }

    #[test]
    fn depends_on_list_is_started_required() {
        let s: S = serde_yaml::from_str("depends_on: [db, cache]").unwrap();
        assert_eq!(s.depends_on["db"], DependsOn::started());
        let s: S = serde_yaml::from_str("depends_on: {db: {condition: service_healthy, restart: true}}").unwrap();
        assert_eq!(s.depends_on["db"].condition, Condition::ServiceHealthy);
        assert_eq!(s.depends_on["db"].restart, Some(true));
        assert!(s.depends_on["db"].required);
        assert!(serde_yaml::from_str::<S>("depends_on: {db: {condition: whenever}}").is_err());
    }

    #[test]
    fn networks_list_and_map() {
        let s: S = serde_yaml::from_str("networks: [front, back]").unwrap();
        assert_eq!(s.networks.len(), 2);
        let s: S =
            serde_yaml::from_str("networks: {front: null, back: {aliases: [db], ipv4_address: 10.0.0.5}}").unwrap();
        assert_eq!(s.networks["back"].aliases, vec!["db"]);
        assert_eq!(s.networks["front"], ServiceNetwork::default());
    }

    #[test]
    fn secrets_short_and_long() {
        let s: S =
            serde_yaml::from_str("secrets: [pw, {source: key, target: /k, mode: 0440}, {source: c, mode: '0400'}]")
                .unwrap();
        assert_eq!(s.secrets[0].source, "pw");
        assert_eq!(s.secrets[1].mode, Some(0o440));
        assert_eq!(s.secrets[2].mode, Some(0o400));
    }

    #[test]
    fn ulimits_single_and_pair() {
        let s: S = serde_yaml::from_str("ulimits: {nproc: 65535, nofile: {soft: 1024, hard: '4096'}}").unwrap();
        assert_eq!(
            s.ulimits["nproc"],
            Ulimit {
                soft: 65535,
                hard: 65535
            }
        );
        assert_eq!(s.ulimits["nofile"], Ulimit { soft: 1024, hard: 4096 });
        assert!(serde_yaml::from_str::<S>("ulimits: {nofile: {soft: 9, hard: 1}}").is_err());
    }
}
