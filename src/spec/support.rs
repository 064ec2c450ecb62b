//! Keys berth reads but does not act on. Each is reported as a warning
//! naming the key and where it is written, never silently dropped.

use super::model::{Project, Service};
use super::path::YamlPath;
use super::Locator;

/// Service keys that are parsed for compatibility only.
fn unsupported_service_keys(service: &Service) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let mut flag = |set: bool, key: &'static str| {
        if set {
            keys.push(key);
        }
    };
    flag(service.runtime.is_some(), "runtime");
    flag(service.isolation.is_some(), "isolation");
    flag(service.credential_spec.is_some(), "credential_spec");
    flag(service.cpu_count.is_some(), "cpu_count");
    flag(service.cpu_percent.is_some(), "cpu_percent");
    flag(service.cpu_rt_period.is_some(), "cpu_rt_period");
    flag(service.cpu_rt_runtime.is_some(), "cpu_rt_runtime");
    flag(service.blkio_config.is_some(), "blkio_config");
    flag(!service.storage_opt.is_empty(), "storage_opt");
    flag(service.userns_mode.is_some(), "userns_mode");
    flag(service.use_api_socket.is_some(), "use_api_socket");
    flag(service.provider.is_some(), "provider");
    flag(service.models.is_some(), "models");
    flag(!service.pre_start.is_empty(), "pre_start");
    flag(service.mac_address.is_some(), "mac_address");
    flag(!service.external_links.is_empty(), "external_links");
    if let Some(deploy) = &service.deploy {
        flag(deploy.placement.is_some(), "deploy.placement");
        flag(deploy.update_config.is_some(), "deploy.update_config");
        flag(deploy.rollback_config.is_some(), "deploy.rollback_config");
        flag(deploy.mode.as_deref().is_some_and(|m| m != "replicated"), "deploy.mode");
        flag(deploy.endpoint_mode.is_some(), "deploy.endpoint_mode");
    }
    keys
}

/// Warnings for every unsupported key set in the project.
pub fn unsupported_keys(project: &Project, locator: &Locator) -> Vec<String> {
    let mut warnings = Vec::new();
    for (name, service) in &project.services {
        for key in unsupported_service_keys(service) {
            let mut path = YamlPath::root().key("services").key(name);
            for part in key.split('.') {
                path = path.key(part);
            }
            warnings.push(format!(
                "{}: parsed but not supported by berth; ignored",
                locator.describe(&path)
            ));
        }
    }
    if !project.models.is_empty() {
        warnings.push(format!(
            "{}: AI models are parsed but not supported by berth; ignored",
            locator.describe(&YamlPath::root().key("models"))
        ));
    }
    for (name, network) in &project.networks {
        if network.driver.as_deref().is_some_and(|d| d != "bridge") {
            warnings.push(format!(
                "{}: only the bridge driver is supported by berth",
                locator.describe(&YamlPath::root().key("networks").key(name).key("driver"))
            ));
        }
    }
    for (name, volume) in &project.volumes {
        if volume.driver.as_deref().is_some_and(|d| d != "local") {
            warnings.push(format!(
                "{}: only the local volume driver is supported by berth",
                locator.describe(&YamlPath::root().key("volumes").key(name).key("driver"))
            ));
        }
    }
    warnings
}
