//! Top-level resources: networks, volumes, configs, secrets, includes.

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_yaml::Value;

use super::forms::{string_or_list, StringMap, StringOrList};
use super::scalar::{is_false, lenient, lenient_opt, BoolOrString};

/// `external: true` (or the legacy `external: {name: x}`).
fn external<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(false),
        // Compose file format 2/3 wrote the external name here.
        Value::Mapping(_) => Ok(true),
        value => super::scalar::lenient_from_value(value),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// The real name; defaults to `<project>_<key>` (or the key if external).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub driver_opts: StringMap,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<Ipam>,
    #[serde(default, skip_serializing_if = "is_false", deserialize_with = "external")]
    #[schemars(with = "Option<BoolOrString>")]
    pub external: bool,
    #[serde(default, skip_serializing_if = "is_false", deserialize_with = "lenient")]
    #[schemars(with = "Option<BoolOrString>")]
    pub internal: bool,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<BoolOrString>")]
    pub enable_ipv4: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<BoolOrString>")]
    pub enable_ipv6: Option<bool>,
    #[serde(default, skip_serializing_if = "is_false", deserialize_with = "lenient")]
    #[schemars(with = "Option<BoolOrString>")]
    pub attachable: bool,
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub labels: StringMap,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ipam {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<IpamPool>,
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub options: StringMap,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IpamPool {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub aux_addresses: StringMap,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub driver_opts: StringMap,
    #[serde(default, skip_serializing_if = "is_false", deserialize_with = "external")]
    #[schemars(with = "Option<BoolOrString>")]
    pub external: bool,
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub labels: StringMap,
}

/// A top-level config or secret: its content comes from a file, an
/// environment variable, inline `content` (configs), or it is external.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileObject {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "is_false", deserialize_with = "external")]
    #[schemars(with = "Option<BoolOrString>")]
    pub external: bool,
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub labels: StringMap,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub driver_opts: StringMap,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_driver: Option<String>,
}

/// An `include` entry: `- path/to/compose.yaml` or the long form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(with = "IncludeSchema")]
pub struct Include {
    pub path: Vec<String>,
    pub env_file: Vec<String>,
    pub project_directory: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IncludeLong {
    #[serde(deserialize_with = "string_or_list")]
    path: Vec<String>,
    #[serde(default, deserialize_with = "string_or_list")]
    env_file: Vec<String>,
    #[serde(default)]
    project_directory: Option<String>,
}

impl<'de> Deserialize<'de> for Include {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(path) => Ok(Include {
                path: vec![path],
                ..Include::default()
            }),
            value => {
                let long: IncludeLong = serde_yaml::from_value(value).map_err(D::Error::custom)?;
                Ok(Include {
                    path: long.path,
                    env_file: long.env_file,
                    project_directory: long.project_directory,
                })
            }
        }
    }
}

struct IncludeSchema;

impl JsonSchema for IncludeSchema {
    fn schema_name() -> Cow<'static, str> {
        "Include".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let list = generator.subschema_for::<StringOrList>();
        json_schema!({
            "oneOf": [
                { "type": "string" },
                {
                    "type": "object",
                    "properties": { "path": list, "env_file": list, "project_directory": { "type": "string" } },
                    "required": ["path"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

/// A top-level AI model (`models:`); parsed for compatibility, not run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Model {
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<super::scalar::IntOrString>")]
    pub context_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtime_flags: Vec<String>,
}
