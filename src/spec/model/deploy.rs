//! `deploy:` and GPU requests (`gpus:` and device reservations).

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_yaml::Value;

use super::forms::{string_list, StringMap};
use super::scalar::{lenient_opt, stringly_opt, IntOrString, NumberOrString};
use crate::spec::syntax::units::{ByteSize, ComposeDuration};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<IntOrString>")]
    pub replicas: Option<u64>,
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub labels: StringMap,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub rollback_config: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub update_config: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub placement: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceLimits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservations: Option<ResourceReservations>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceLimits {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<NumberOrString>")]
    pub cpus: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteSize>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<IntOrString>")]
    pub pids: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceReservations {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<NumberOrString>")]
    pub cpus: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteSize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub generic_resources: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceRequest>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartPolicy {
    /// `none`, `on-failure` or `any`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<ComposeDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<IntOrString>")]
    pub max_attempts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<ComposeDuration>,
}

/// How many devices a request wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceCount {
    All,
    Count(u64),
}

impl Serialize for DeviceCount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            DeviceCount::All => s.serialize_str("all"),
            DeviceCount::Count(n) => s.serialize_u64(*n),
        }
    }
}

impl<'de> Deserialize<'de> for DeviceCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // `count: ${GPUS:-all}` arrives as a string (docker/compose#11097).
        match Value::deserialize(d)? {
            Value::String(s) if s.trim() == "all" => Ok(DeviceCount::All),
            Value::String(s) if s.trim() == "-1" => Ok(DeviceCount::All),
            Value::Number(n) if n.as_i64() == Some(-1) => Ok(DeviceCount::All),
            value => super::scalar::lenient_from_value::<u64, D::Error>(value).map(DeviceCount::Count),
        }
    }
}

impl JsonSchema for DeviceCount {
    fn schema_name() -> Cow<'static, str> {
        "DeviceCount".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["string", "integer"] })
    }
}

/// A device reservation (`deploy.resources.reservations.devices[]`, `gpus:`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceRequest {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// Normalized: neither `count` nor `device_ids` means `count: all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<DeviceCount>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub options: StringMap,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceRequestInput {
    #[serde(default, deserialize_with = "string_list")]
    capabilities: Vec<String>,
    #[serde(default)]
    count: Option<DeviceCount>,
    #[serde(default, deserialize_with = "string_list")]
    device_ids: Vec<String>,
    #[serde(default, deserialize_with = "stringly_opt")]
    driver: Option<String>,
    #[serde(default)]
    options: StringMap,
}

impl<'de> Deserialize<'de> for DeviceRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let input = DeviceRequestInput::deserialize(d)?;
        // compose-go transform/devices.go: the two selectors exclude each
        // other, and a request with neither wants every device.
        let count = match (input.count, input.device_ids.is_empty()) {
            (Some(_), false) => {
                return Err(D::Error::custom(
                    "count and device_ids are mutually exclusive in a device request",
                ))
            }
            (None, true) => Some(DeviceCount::All),
            (count, _) => count,
        };
        Ok(DeviceRequest {
            capabilities: input.capabilities,
            count,
            device_ids: input.device_ids,
            driver: input.driver,
            options: input.options,
        })
    }
}

/// The `gpus:` service key: `all`, or a list of device requests whose
/// `gpu` capability is implied.
#[derive(Debug, Clone, PartialEq)]
pub enum Gpus {
    All,
    Requests(Vec<DeviceRequest>),
}

impl Gpus {
    /// The device requests `gpus:` stands for (compose-go transform/gpus.go).
    pub fn requests(&self) -> Vec<DeviceRequest> {
        match self {
            Gpus::All => vec![DeviceRequest {
                capabilities: vec!["gpu".into()],
                count: Some(DeviceCount::All),
                device_ids: Vec::new(),
                driver: None,
                options: StringMap::default(),
            }],
            Gpus::Requests(requests) => requests
                .iter()
                .cloned()
                .map(|mut r| {
                    if !r.capabilities.iter().any(|c| c == "gpu") {
                        r.capabilities.insert(0, "gpu".into());
                    }
                    r
                })
                .collect(),
        }
    }
}

impl Serialize for Gpus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Gpus::All => s.serialize_str("all"),
            Gpus::Requests(r) => r.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Gpus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) if s == "all" => Ok(Gpus::All),
            value @ Value::Sequence(_) => serde_yaml::from_value(value)
                .map(Gpus::Requests)
                .map_err(D::Error::custom),
            other => Err(D::Error::custom(format!(
                "expected \"all\" or a list of device requests, found {}",
                super::scalar::type_name(&other)
            ))),
        }
    }
}

impl JsonSchema for Gpus {
    fn schema_name() -> Cow<'static, str> {
        "Gpus".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let request = generator.subschema_for::<DeviceRequest>();
        json_schema!({ "oneOf": [ { "type": "string", "enum": ["all"] }, { "type": "array", "items": request } ] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_request_defaults_to_all() {
        let r: DeviceRequest = serde_yaml::from_str("{driver: nvidia, capabilities: [gpu]}").unwrap();
        assert_eq!(r.count, Some(DeviceCount::All));
        let r: DeviceRequest = serde_yaml::from_str("{count: '2', capabilities: [gpu]}").unwrap();
        assert_eq!(r.count, Some(DeviceCount::Count(2)));
        let r: DeviceRequest = serde_yaml::from_str("{device_ids: ['0', '3'], capabilities: [gpu]}").unwrap();
        assert_eq!(r.count, None);
    }

    #[test]
    fn count_and_ids_conflict() {
        let err = serde_yaml::from_str::<DeviceRequest>("{count: 1, device_ids: ['0']}").unwrap_err();
        assert!(err.to_string().contains("mutually exclusive"), "{err}");
    }

    #[test]
    fn gpus_all_is_one_request_for_every_gpu() {
        let g: Gpus = serde_yaml::from_str("all").unwrap();
        let r = g.requests();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].capabilities, vec!["gpu"]);
        assert_eq!(r[0].count, Some(DeviceCount::All));
        let g: Gpus = serde_yaml::from_str("[{driver: nvidia, count: 1}]").unwrap();
        assert_eq!(g.requests()[0].capabilities, vec!["gpu"]);
        assert!(serde_yaml::from_str::<Gpus>("some").is_err());
    }
}
