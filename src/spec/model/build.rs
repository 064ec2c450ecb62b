//! `build:` — how a service's image is built.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use serde_yaml::Value;

use super::forms::{string_list, StringMap};
use super::scalar::{lenient_opt, BoolOrString, Scalar};
use crate::spec::syntax::units::ByteSize;

/// `build: ./dir` is the short form of `build: {context: ./dir}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct Build {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile_inline: Option<String>,
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub args: StringMap,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub labels: StringMap,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "string_list")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "string_list")]
    pub platforms: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub additional_contexts: StringMap,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "string_list")]
    pub cache_from: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "string_list")]
    pub cache_to: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<BoolOrString>")]
    pub no_cache: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "string_list")]
    pub no_cache_filter: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<BoolOrString>")]
    pub pull: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<BoolOrString>")]
    pub privileged: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<ByteSize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_hosts: Option<super::forms::ExtraHosts>,
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub ulimits: StringMap,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "string_list")]
    pub entitlements: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub ssh: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub secrets: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Scalar>")]
    pub provenance: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Scalar>")]
    pub sbom: Option<Value>,
}

impl<'de> Deserialize<'de> for Build {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(context) => Ok(Build {
                context: Some(context),
                ..Build::default()
            }),
            // The derived (remote = "Self") inherent fn reads the long form.
            value => Build::deserialize(value).map_err(serde::de::Error::custom),
        }
    }
}

/// Schema of `build`: a context path, or the long form.
pub struct BuildSchema;

impl JsonSchema for BuildSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "BuildOrContext".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let long = generator.subschema_for::<Build>();
        schemars::json_schema!({ "oneOf": [ { "type": "string" }, long ] })
    }
}

impl Serialize for Build {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Build::serialize(self, s)
    }
}
