//! The typed model of a compose file.
//!
//! [`ComposeFile`] is what one file may say (and what `schemas/` describes);
//! [`Project`] is the resolved result of loading, merging, interpolating and
//! normalizing every file: what `berth config` prints and the engine runs.

pub mod build;
pub mod deploy;
pub mod forms;
pub mod lifecycle;
pub mod links;
pub mod resources;
pub mod scalar;
pub mod service;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use serde_yaml::Value;

pub use build::Build;
pub use deploy::{Deploy, DeviceCount, DeviceRequest, Gpus};
pub use forms::{Command, Environment, ExtraHosts, StringMap};
pub use lifecycle::{Develop, Healthcheck, WatchAction, WatchRule};
pub use links::{Condition, DependsOn, Extends, FileReference, ServiceNetwork, Ulimit};
pub use resources::{FileObject, Include, Ipam, IpamPool, Model, Network, Volume};
pub use service::{EnvFile, Service};

/// One compose file as written (after interpolation).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "berth stack file (Compose Specification)")]
pub struct ComposeFile {
    /// Obsolete; accepted and ignored, as compose does.
    #[serde(default, deserialize_with = "scalar::stringly_opt")]
    pub version: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable_list")]
    #[schemars(with = "Option<Vec<Include>>")]
    pub include: Vec<Include>,
    #[serde(default, deserialize_with = "nullable_map")]
    #[schemars(with = "Option<BTreeMap<String, Option<Service>>>")]
    pub services: BTreeMap<String, Service>,
    #[serde(default, deserialize_with = "nullable_map")]
    #[schemars(with = "Option<BTreeMap<String, Option<Network>>>")]
    pub networks: BTreeMap<String, Network>,
    #[serde(default, deserialize_with = "nullable_map")]
    #[schemars(with = "Option<BTreeMap<String, Option<Volume>>>")]
    pub volumes: BTreeMap<String, Volume>,
    #[serde(default, deserialize_with = "nullable_map")]
    #[schemars(with = "Option<BTreeMap<String, Option<FileObject>>>")]
    pub configs: BTreeMap<String, FileObject>,
    #[serde(default, deserialize_with = "nullable_map")]
    #[schemars(with = "Option<BTreeMap<String, Option<FileObject>>>")]
    pub secrets: BTreeMap<String, FileObject>,
    #[serde(default, deserialize_with = "nullable_map")]
    #[schemars(with = "Option<BTreeMap<String, Option<Model>>>")]
    pub models: BTreeMap<String, Model>,
}

/// The resolved project.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Project {
    pub name: String,
    pub services: BTreeMap<String, Service>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, Network>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, Volume>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, FileObject>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, FileObject>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, Model>,
    /// Top-level `x-*` keys.
    #[serde(skip)]
    pub extensions: BTreeMap<String, Value>,
}

/// A map whose values may be written as `null` (`volumes: {data: }`),
/// meaning "all defaults".
fn nullable_map<'de, D, T>(d: D) -> Result<BTreeMap<String, T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned + Default,
{
    let raw: Option<BTreeMap<String, Option<T>>> = Option::deserialize(d)?;
    Ok(raw
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

fn nullable_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        value => serde_yaml::from_value(value).map_err(D::Error::custom),
    }
}
