//! The engine's registry settings, `<root>/config.json`, in the shape of
//! docker's daemon.json (unknown keys are left to their owners):
//!
//! ```json
//! { "registry-mirrors": ["https://mirror.example"],
//!   "insecure-registries": ["registry.lan:5000", "10.0.0.0/8"],
//!   "max-concurrent-downloads": 3 }
//! ```

use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;

use super::RegistryError;
use crate::image::reference::DEFAULT_REGISTRY;
use crate::store::Root;

/// Where docker.io's API is served.
pub const DOCKER_HUB_HOST: &str = "registry-1.docker.io";
/// docker's default for `max-concurrent-downloads`.
pub const DEFAULT_CONCURRENT_DOWNLOADS: usize = 3;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EngineConfig {
    /// Pull-through caches of docker.io, tried in order before it.
    #[serde(default)]
    pub registry_mirrors: Vec<String>,
    /// Registries (`host[:port]` or CIDR) reachable over plain HTTP.
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    #[serde(default)]
    pub max_concurrent_downloads: Option<usize>,
}

/// One place to pull from: base URLs tried in order when the connection
/// fails (`https` then `http` for an insecure registry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub urls: Vec<String>,
    /// A mirror: any failure falls through to the next endpoint.
    pub mirror: bool,
}

impl EngineConfig {
    pub fn load(root: &Root) -> Result<Self, RegistryError> {
        Self::load_file(&root.path().join("config.json"))
    }

    pub fn load_file(path: &Path) -> Result<Self, RegistryError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(RegistryError::file("cannot read", path)(e)),
        };
        let config: EngineConfig = serde_json::from_slice(&bytes).map_err(|e| RegistryError::InvalidFile {
            what: "engine config",
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        for mirror in &config.registry_mirrors {
            mirror_url(mirror).map_err(|reason| RegistryError::InvalidFile {
                what: "engine config",
                path: path.to_path_buf(),
                reason: format!("registry-mirrors: {reason}"),
            })?;
        }
        Ok(config)
    }

    pub fn concurrent_downloads(&self) -> usize {
        self.max_concurrent_downloads
            .unwrap_or(DEFAULT_CONCURRENT_DOWNLOADS)
            .clamp(1, 32)
    }

    /// Plain HTTP is allowed for loopback hosts and for what is configured.
    pub fn is_insecure(&self, registry: &str) -> bool {
        let host = host_of(registry);
        if host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
            return true;
        }
        self.insecure_registries.iter().any(|entry| {
            entry == registry
                || entry == host
                || match (entry.split_once('/'), host.parse::<IpAddr>()) {
                    (Some((net, bits)), Ok(ip)) => in_cidr(ip, net, bits),
                    _ => false,
                }
        })
    }

    /// The endpoints to pull `registry`'s images from, in order: docker.io's
    /// mirrors first, then the registry itself.
    pub fn endpoints(&self, registry: &str) -> Vec<Endpoint> {
        let mut endpoints = Vec::new();
        if registry == DEFAULT_REGISTRY {
            endpoints.extend(
                self.registry_mirrors
                    .iter()
                    .filter_map(|m| mirror_url(m).ok())
                    .map(|url| Endpoint {
                        urls: vec![url],
                        mirror: true,
                    }),
            );
        }
        let host = if registry == DEFAULT_REGISTRY {
            DOCKER_HUB_HOST
        } else {
            registry
        };
        let mut urls = vec![format!("https://{host}")];
        if self.is_insecure(registry) {
            urls.push(format!("http://{host}"));
        }
        endpoints.push(Endpoint { urls, mirror: false });
        endpoints
    }
}

/// A mirror's base URL without the trailing slash; it must name its scheme.
fn mirror_url(text: &str) -> Result<String, String> {
    let trimmed = text.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or_else(|| format!("mirror {text:?} must start with https:// or http://"))?;
    if rest.is_empty() || rest.contains(['?', '#', ' ']) {
        return Err(format!("mirror {text:?} is not a base URL"));
    }
    Ok(trimmed.to_string())
}

/// `host` of `host:port`, `[v6]:port` or a bare host.
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match registry.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !host.contains(':') => host,
        _ => registry,
    }
}

fn in_cidr(ip: IpAddr, net: &str, bits: &str) -> bool {
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    let (ip, net, width) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    if bits > width {
        return false;
    }
    let shift = width - bits;
    shift >= 128 || (ip >> shift) == (net >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_configured_hosts_may_use_http() {
        let config = EngineConfig {
            insecure_registries: vec!["registry.lan:5000".into(), "10.1.0.0/16".into(), "plain.example".into()],
            ..EngineConfig::default()
        };
        for yes in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.3.2.1",
            "[::1]:5000",
            "registry.lan:5000",
            "10.1.200.3:443",
            "plain.example:8080",
        ] {
            assert!(config.is_insecure(yes), "{yes}");
        }
        for no in ["docker.io", "registry.lan:5001", "10.2.0.1", "ghcr.io", "127.example"] {
            assert!(!config.is_insecure(no), "{no}");
        }
    }

    #[test]
    fn mirrors_come_first_and_only_for_docker_hub() {
        let config = EngineConfig {
            registry_mirrors: vec!["http://127.0.0.1:1/".into(), "https://mirror.example".into()],
            ..EngineConfig::default()
        };
        let hub = config.endpoints("docker.io");
        let urls: Vec<_> = hub.iter().map(|e| (e.urls.join(" "), e.mirror)).collect();
        assert_eq!(
            urls,
            vec![
                ("http://127.0.0.1:1".to_string(), true),
                ("https://mirror.example".to_string(), true),
                ("https://registry-1.docker.io".to_string(), false),
            ]
        );
        let local = config.endpoints("127.0.0.1:5000");
        assert_eq!(
            local,
            vec![Endpoint {
                urls: vec!["https://127.0.0.1:5000".into(), "http://127.0.0.1:5000".into()],
                mirror: false
            }]
        );
        assert_eq!(config.endpoints("ghcr.io")[0].urls, vec!["https://ghcr.io".to_string()]);
    }

    #[test]
    fn reads_daemon_json_and_refuses_bad_mirrors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        assert_eq!(EngineConfig::load_file(&path).unwrap(), EngineConfig::default());
        std::fs::write(
            &path,
            br#"{"registry-mirrors": ["https://m.example/"], "max-concurrent-downloads": 5, "debug": true}"#,
        )
        .unwrap();
        let config = EngineConfig::load_file(&path).unwrap();
        assert_eq!(config.registry_mirrors, vec!["https://m.example/"]);
        assert_eq!(config.concurrent_downloads(), 5);
        std::fs::write(&path, br#"{"registry-mirrors": ["m.example"]}"#).unwrap();
        let err = EngineConfig::load_file(&path).unwrap_err().to_string();
        assert!(err.contains("must start with https://"), "{err}");
    }
}
