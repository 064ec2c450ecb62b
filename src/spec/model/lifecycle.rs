//! Health, logging, hooks and the development loop of a service.

use schemars::JsonSchema;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_yaml::Value;

use super::forms::{string_or_list, Command, Environment, StringMap, StringOrList};
use super::scalar::{lenient_opt, stringly_opt, BoolOrString, IntOrString};
use crate::spec::syntax::units::ComposeDuration;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    /// Canonical: `["CMD", ...]`, `["CMD-SHELL", cmd]` or `["NONE"]`; a
    /// string is the `CMD-SHELL` form.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "health_test")]
    #[schemars(with = "Option<StringOrList>")]
    pub test: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<ComposeDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<ComposeDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<IntOrString>")]
    pub retries: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<ComposeDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<ComposeDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<BoolOrString>")]
    pub disable: Option<bool>,
}

impl Healthcheck {
    /// `disable: true` or `test: ["NONE"]` turn the image's check off.
    pub fn is_disabled(&self) -> bool {
        self.disable == Some(true)
            || self
                .test
                .as_deref()
                .and_then(|t| t.first())
                .is_some_and(|t| t == "NONE")
    }
}

fn health_test<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(vec!["CMD-SHELL".to_string(), s])),
        value @ Value::Sequence(_) => {
            let test: Vec<String> = serde_yaml::from_value(value).map_err(D::Error::custom)?;
            match test.first().map(String::as_str) {
                Some("CMD") | Some("CMD-SHELL") | Some("NONE") => Ok(Some(test)),
                Some(other) => Err(D::Error::custom(format!(
                    "healthcheck test must start with \"CMD\", \"CMD-SHELL\" or \"NONE\", found {other:?}"
                ))),
                None => Err(D::Error::custom("healthcheck test is an empty list")),
            }
        }
        other => Err(D::Error::custom(format!(
            "expected a string or a list, found {}",
            super::scalar::type_name(&other)
        ))),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Logging {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub options: StringMap,
}

/// `post_start` / `pre_stop`: a command run by exec in the service container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceHook {
    pub command: Command,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "stringly_opt")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<BoolOrString>")]
    pub privileged: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Environment::is_empty")]
    pub environment: Environment,
}

/// `pre_start`: an init container run to completion before the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreStartHook {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Command>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "stringly_opt")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<BoolOrString>")]
    pub privileged: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Environment::is_empty")]
    pub environment: Environment,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<BoolOrString>")]
    pub per_replica: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Develop {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<WatchRule>,
}

/// What `berth watch` does when a watched path changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum WatchAction {
    #[serde(rename = "sync")]
    Sync,
    #[serde(rename = "rebuild")]
    Rebuild,
    #[serde(rename = "restart")]
    Restart,
    #[serde(rename = "sync+restart")]
    SyncRestart,
    #[serde(rename = "sync+exec")]
    SyncExec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WatchRule {
    pub path: String,
    pub action: WatchAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "string_or_list")]
    #[schemars(with = "Option<StringOrList>")]
    pub ignore: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "string_or_list")]
    #[schemars(with = "Option<StringOrList>")]
    pub include: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_opt")]
    #[schemars(with = "Option<BoolOrString>")]
    pub initial_sync: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ServiceHook>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthcheck_string_is_cmd_shell() {
        let h: Healthcheck = serde_yaml::from_str("{test: 'curl -f localhost', interval: 30s}").unwrap();
        assert_eq!(h.test.unwrap(), vec!["CMD-SHELL", "curl -f localhost"]);
        let h: Healthcheck = serde_yaml::from_str("{test: [NONE]}").unwrap();
        assert!(h.is_disabled());
        let err = serde_yaml::from_str::<Healthcheck>("{test: [curl, x]}").unwrap_err();
        assert!(err.to_string().contains("must start with"), "{err}");
    }

    #[test]
    fn watch_actions_parse() {
        let d: Develop =
            serde_yaml::from_str("watch: [{path: ./src, action: sync+restart, target: /app, ignore: node_modules}]")
                .unwrap();
        assert_eq!(d.watch[0].action, WatchAction::SyncRestart);
        assert_eq!(d.watch[0].ignore, vec!["node_modules"]);
        assert!(serde_yaml::from_str::<Develop>("watch: [{path: ., action: teleport}]").is_err());
    }
}
