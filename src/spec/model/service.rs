//! A service definition: every key of the Compose Specification's `service`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use serde_yaml::Value;

use super::build::Build;
use super::deploy::{Deploy, DeviceRequest, Gpus};
use super::forms::{string_list, string_or_list, Command, Environment, ExtraHosts, StringMap, StringOrList};
use super::lifecycle::{Develop, Healthcheck, Logging, PreStartHook, ServiceHook};
use super::links::{DependsOn, Extends, FileReference, ServiceNetwork, Ulimit};
use super::scalar::{is_false, lenient_opt, stringly_opt, BoolOrString, IntOrString, NumberOrString};
use crate::spec::syntax::devices::DeviceEntry;
use crate::spec::syntax::ports::PortConfig;
use crate::spec::syntax::units::{ByteSize, ComposeDuration};
use crate::spec::syntax::volumes::ServiceVolume;

/// One service, in canonical (long) form once loaded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    // --- image and build ---
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<super::build::BuildSchema>")]
    pub build: Option<Build>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// `always`, `never`, `missing` (`if_not_present` is normalized to it),
    /// `build`, `daily`, `weekly`, `every_<duration>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_refresh_after: Option<String>,

    // --- process ---
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Command>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Command>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "stringly_opt")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    #[serde(default, skip_serializing_if = "Environment::is_empty")]
    pub environment: Environment,
    /// Resolved into `environment` when the project is loaded.
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "env_files")]
    #[schemars(with = "Option<EnvFileSchema>")]
    pub env_file: Vec<EnvFile>,
    /// Resolved into `labels` when the project is loaded.
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "string_or_list")]
    #[schemars(with = "Option<StringOrList>")]
    pub label_file: Vec<String>,
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub labels: StringMap,
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub annotations: StringMap,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<BoolOrString>")]
    pub init: Option<bool>,
    #[serde(default, skip_serializing_if = "is_false", deserialize_with = "lenient_bool")]
    #[schemars(with = "Option<BoolOrString>")]
    pub tty: bool,
    #[serde(default, skip_serializing_if = "is_false", deserialize_with = "lenient_bool")]
    #[schemars(with = "Option<BoolOrString>")]
    pub stdin_open: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<ComposeDuration>,
    /// `no`, `always`, `on-failure[:N]`, `unless-stopped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<Logging>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<BoolOrString>")]
    pub attach: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_start: Vec<ServiceHook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_stop: Vec<ServiceHook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_start: Vec<PreStartHook>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,

    // --- orchestration ---
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "super::links::depends_on"
    )]
    #[schemars(with = "Option<super::links::DependsOnSchema>")]
    pub depends_on: BTreeMap<String, DependsOn>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "string_list")]
    pub links: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "string_list")]
    pub external_links: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "string_list")]
    pub profiles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<IntOrString>")]
    pub scale: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<Deploy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub develop: Option<Develop>,
    /// Resolved (and removed) when the project is loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<Extends>,

    // --- networking ---
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "super::links::service_networks"
    )]
    #[schemars(with = "Option<super::links::ServiceNetworksSchema>")]
    pub networks: BTreeMap<String, ServiceNetwork>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "ports")]
    #[schemars(with = "Option<Vec<PortItemSchema>>")]
    pub ports: Vec<PortConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "string_list")]
    #[schemars(with = "Option<super::forms::StringOrNumberList>")]
    pub expose: Vec<String>,
    #[serde(default, skip_serializing_if = "ExtraHosts::is_empty")]
    pub extra_hosts: ExtraHosts,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "string_or_list")]
    #[schemars(with = "Option<StringOrList>")]
    pub dns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "string_or_list")]
    #[schemars(with = "Option<StringOrList>")]
    pub dns_search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "string_list")]
    pub dns_opt: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,

    // --- storage ---
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "volumes")]
    #[schemars(with = "Option<Vec<VolumeItemSchema>>")]
    pub volumes: Vec<ServiceVolume>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "string_list")]
    pub volumes_from: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "string_or_list")]
    #[schemars(with = "Option<StringOrList>")]
    pub tmpfs: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "super::links::file_references"
    )]
    #[schemars(with = "Option<Vec<super::links::FileReferenceSchema>>")]
    pub configs: Vec<FileReference>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "super::links::file_references"
    )]
    #[schemars(with = "Option<Vec<super::links::FileReferenceSchema>>")]
    pub secrets: Vec<FileReference>,
    #[serde(default, skip_serializing_if = "is_false", deserialize_with = "lenient_bool")]
    #[schemars(with = "Option<BoolOrString>")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<ByteSize>,
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub storage_opt: StringMap,

    // --- resources ---
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<NumberOrString>")]
    pub cpus: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<IntOrString>")]
    pub cpu_shares: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<IntOrString>")]
    pub cpu_quota: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<IntOrString>")]
    pub cpu_period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "stringly_opt")]
    #[schemars(with = "Option<IntOrString>")]
    pub cpu_rt_period: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "stringly_opt")]
    #[schemars(with = "Option<IntOrString>")]
    pub cpu_rt_runtime: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<IntOrString>")]
    pub cpu_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<NumberOrString>")]
    pub cpu_percent: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "stringly_opt")]
    pub cpuset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_limit: Option<ByteSize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_reservation: Option<ByteSize>,
    /// `-1` means unlimited swap, as in docker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memswap_limit: Option<SwapLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<IntOrString>")]
    pub mem_swappiness: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<BoolOrString>")]
    pub oom_kill_disable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<IntOrString>")]
    pub oom_score_adj: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<IntOrString>")]
    pub pids_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blkio_config: Option<BlkioConfig>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ulimits: BTreeMap<String, Ulimit>,
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub sysctls: StringMap,

    // --- devices ---
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "string_list")]
    pub device_cgroup_rules: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<Gpus>,

    // --- security and namespaces ---
    #[serde(default, skip_serializing_if = "is_false", deserialize_with = "lenient_bool")]
    #[schemars(with = "Option<BoolOrString>")]
    pub privileged: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "string_list")]
    pub cap_add: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "string_list")]
    pub cap_drop: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "string_list")]
    pub security_opt: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "string_list")]
    #[schemars(with = "Option<super::forms::StringOrNumberList>")]
    pub group_add: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uts: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_parent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_spec: Option<CredentialSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<BoolOrString>")]
    pub use_api_socket: Option<bool>,
    /// AI models (`models:` top-level); parsed, not run by berth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub models: Option<Value>,

    /// `x-*` keys of the service, kept for `berth config`. They are split
    /// off before deserialization (see `spec::extensions`), so that unknown
    /// keys stay errors.
    #[serde(skip)]
    pub extensions: BTreeMap<String, Value>,
}

impl Service {
    /// Replicas requested by the file: `deploy.replicas`, else `scale`, else 1.
    pub fn replicas(&self) -> u64 {
        self.deploy
            .as_ref()
            .and_then(|d| d.replicas)
            .or(self.scale)
            .unwrap_or(1)
    }

    /// GPU and device reservations, from `deploy` and from `gpus:`.
    pub fn device_requests(&self) -> Vec<DeviceRequest> {
        let mut requests: Vec<DeviceRequest> = self
            .deploy
            .as_ref()
            .and_then(|d| d.resources.as_ref())
            .and_then(|r| r.reservations.as_ref())
            .map(|r| r.devices.clone())
            .unwrap_or_default();
        if let Some(gpus) = &self.gpus {
            requests.extend(gpus.requests());
        }
        requests
    }
}

fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    lenient_opt(d).map(|b: Option<bool>| b.unwrap_or(false))
}

fn ports<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PortConfig>, D::Error> {
    super::forms::short_or_long_list(d, "a port (number, string or mapping)", |s| {
        crate::spec::syntax::ports::parse_port(s).map_err(|e| e.to_string())
    })
}

fn volumes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ServiceVolume>, D::Error> {
    super::forms::short_or_long_list(d, "a volume (string or mapping)", |s| {
        crate::spec::syntax::volumes::parse_volume(s)
            .map(|v| vec![v])
            .map_err(|e| e.to_string())
    })
}

/// Schema of one `ports` item: a number, a short-syntax string, or the long form.
pub struct PortItemSchema;

impl JsonSchema for PortItemSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PortItem".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let long = generator.subschema_for::<PortConfig>();
        schemars::json_schema!({ "oneOf": [ { "type": "number" }, { "type": "string" }, long ] })
    }
}

/// Schema of one `volumes` item: a short-syntax string or the long form.
pub struct VolumeItemSchema;

impl JsonSchema for VolumeItemSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "VolumeItem".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let long = generator.subschema_for::<ServiceVolume>();
        schemars::json_schema!({ "oneOf": [ { "type": "string" }, long ] })
    }
}

/// An `env_file` entry in long form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvFile {
    pub path: String,
    /// Missing optional files are skipped; required ones are an error.
    #[serde(default = "default_true", deserialize_with = "super::scalar::lenient")]
    #[schemars(with = "BoolOrString")]
    pub required: bool,
    /// `raw`: no quoting rules, no interpolation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

fn default_true() -> bool {
    true
}

fn env_files<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EnvFile>, D::Error> {
    let value = Value::deserialize(d)?;
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Sequence(items) => items,
        other => vec![other],
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(path) => Ok(EnvFile {
                path,
                required: true,
                format: None,
            }),
            other => serde_yaml::from_value(other).map_err(serde::de::Error::custom),
        })
        .collect()
}

/// Schema of `env_file`: a path, or a list of paths and long entries.
pub struct EnvFileSchema;

impl JsonSchema for EnvFileSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "EnvFileList".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let long = generator.subschema_for::<EnvFile>();
        schemars::json_schema!({
            "oneOf": [ { "type": "string" }, { "type": "array", "items": { "oneOf": [ { "type": "string" }, long ] } } ]
        })
    }
}

/// Swap limit: bytes, or unlimited (`-1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(transparent)]
#[schemars(with = "IntOrString")]
pub struct SwapLimit(pub i64);

impl<'de> Deserialize<'de> for SwapLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        let is_unlimited = matches!(&value, Value::Number(n) if n.as_i64() == Some(-1))
            || matches!(&value, Value::String(s) if s.trim() == "-1");
        if is_unlimited {
            return Ok(SwapLimit(-1));
        }
        let bytes: ByteSize = serde_yaml::from_value(value).map_err(serde::de::Error::custom)?;
        i64::try_from(bytes.0)
            .map(SwapLimit)
            .map_err(|_| serde::de::Error::custom("swap limit is too large"))
    }
}

/// `provider:` services whose lifecycle an external binary manages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub options: Option<Value>,
}

/// Windows credential specs: parsed for compatibility, meaningless on Linux.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
}

/// Block I/O weights and limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlkioConfig {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<IntOrString>")]
    pub weight: Option<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weight_device: Vec<BlkioWeight>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_read_bps: Vec<BlkioLimit>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_read_iops: Vec<BlkioLimit>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_write_bps: Vec<BlkioLimit>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_write_iops: Vec<BlkioLimit>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlkioWeight {
    pub path: String,
    #[serde(deserialize_with = "super::scalar::lenient")]
    #[schemars(with = "IntOrString")]
    pub weight: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlkioLimit {
    pub path: String,
    pub rate: ByteSize,
}
