//! The config hash: what the engine compares to decide whether a service's
//! containers must be recreated.
//!
//! Like docker compose's `ServiceHash` (pkg/compose/hash.go) it covers the
//! fully resolved service except what never requires a new container:
//! `build`, `pull_policy`, `scale`/`deploy.replicas`, `depends_on` and
//! `profiles`. The model serializes with sorted maps and fixed field order,
//! so the hash does not depend on key order in the file.

use sha2::{Digest, Sha256};

use super::model::Service;

/// Hex SHA-256 of the service's hashed configuration.
pub fn service_hash(service: &Service) -> String {
    let mut hashed = service.clone();
    hashed.build = None;
    hashed.pull_policy = None;
    hashed.scale = None;
    if let Some(deploy) = &mut hashed.deploy {
        deploy.replicas = None;
    }
    // `deploy: {replicas: N}` alone must hash like no `deploy` at all.
    if hashed.deploy.as_ref().is_some_and(|d| *d == Default::default()) {
        hashed.deploy = None;
    }
    hashed.depends_on.clear();
    hashed.profiles.clear();
    hashed.extensions.clear();
    // Serializing a plain data model cannot fail; an empty input would
    // still give a stable (if useless) hash rather than a panic.
    let bytes = serde_json::to_vec(&hashed).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
