//! Ownership labels, compatible with docker compose's `com.docker.compose.*`
//! (compose `api/labels.go`): they are how `down`, `--remove-orphans`,
//! `ps` and crash recovery find what a project owns.

use std::collections::BTreeMap;

use super::translate::Replica;
use crate::spec::model::Service;

pub const PROJECT: &str = "com.docker.compose.project";
pub const SERVICE: &str = "com.docker.compose.service";
pub const NUMBER: &str = "com.docker.compose.container-number";
pub const ONEOFF: &str = "com.docker.compose.oneoff";
pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
pub const IMAGE: &str = "com.docker.compose.image";
pub const DEPENDS_ON: &str = "com.docker.compose.depends_on";
pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
pub const VERSION: &str = "com.docker.compose.version";
/// On networks and volumes: the key in the project file.
pub const NETWORK: &str = "com.docker.compose.network";
pub const VOLUME: &str = "com.docker.compose.volume";

/// The labels that make a container the project's.
pub fn ownership(replica: &Replica<'_>, service: &Service) -> BTreeMap<String, String> {
    let depends_on: Vec<String> = service
        .depends_on
        .iter()
        .map(|(name, d)| {
            let condition = serde_json::to_value(d.condition)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            format!("{name}:{condition}:{}", d.restart.unwrap_or(false))
        })
        .collect();
    [
        (PROJECT, replica.project.name.clone()),
        (SERVICE, replica.service.to_string()),
        (NUMBER, replica.number.to_string()),
        (ONEOFF, if replica.oneoff { "True" } else { "False" }.to_string()),
        (CONFIG_HASH, replica.config_hash.to_string()),
        (IMAGE, replica.image_id.to_string()),
        (DEPENDS_ON, depends_on.join(",")),
        (VERSION, concat!("berth-", env!("CARGO_PKG_VERSION")).to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Labels of a project network or volume.
pub fn resource(project: &str, key_label: &str, key: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (PROJECT.to_string(), project.to_string()),
        (key_label.to_string(), key.to_string()),
    ])
}
