//! Helpers shared by the corpus-driven integration tests.
#![allow(dead_code)] // each test crate uses a different subset

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth::spec::{load, LoadError, LoadOptions, LoadedProject};

/// The shared corpus: `$BERTH_CORPUS`, else `<repo>/../shared/corpus`.
///
/// A missing corpus is a failure, never a skip: these tests exist to run
/// against it.
pub fn corpus_dir() -> PathBuf {
    let (dir, origin) = match std::env::var_os("BERTH_CORPUS") {
        Some(dir) => (PathBuf::from(dir), "BERTH_CORPUS"),
        None => (
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"),
            "the default location (set BERTH_CORPUS to override)",
        ),
    };
    assert!(
        dir.join("awesome-compose").is_dir(),
        "compose corpus not found at {} (from {origin}): expected an `awesome-compose/` folder \
         of compose files there and the Compose schemas under `schema/`",
        dir.display()
    );
    dir
}

/// Every compose file of the awesome-compose corpus, sorted.
pub fn corpus_files() -> Vec<PathBuf> {
    let root = corpus_dir().join("awesome-compose");
    let mut files = Vec::new();
    let entries = std::fs::read_dir(&root).unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()));
    for entry in entries {
        let dir = entry
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()))
            .path();
        if !dir.is_dir() {
            continue;
        }
        for name in [
            "compose.yaml",
            "compose.yml",
            "docker-compose.yaml",
            "docker-compose.yml",
        ] {
            let file = dir.join(name);
            if file.is_file() {
                files.push(file);
            }
        }
    }
    files.sort();
    assert!(
        !files.is_empty(),
        "no compose files under {}: the corpus looks empty",
        root.display()
    );
    files
}

/// The variables the corpus files interpolate (`${PIHOLE_PW}`, `${TIMEZONE}`, …)
/// so that loading never depends on the caller's environment.
pub fn corpus_env() -> BTreeMap<String, String> {
    [
        ("HOME", "/home/berth-test"),
        ("PGADMIN_MAIL", "admin@example.com"),
        ("PGADMIN_PW", "secret"),
        ("PIHOLE_HOST_IP", "192.168.1.10"),
        ("PIHOLE_HOST_IPV6", "fd00::10"),
        ("PIHOLE_NETWORK_DOMAIN", "lan"),
        ("PIHOLE_PW", "secret"),
        ("PIHOLE_REVERSE_DNS", "192.168.1.1"),
        ("PIHOLE_ROUTER_IP", "192.168.1.1"),
        ("PLEX_MEDIA_PATH", "/srv/media"),
        ("POSTGRES_DB", "app"),
        ("POSTGRES_PW", "secret"),
        ("POSTGRES_USER", "app"),
        ("TIMEZONE", "Europe/Berlin"),
        ("VPN_SERVER_URL", "vpn.example.com"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Loads one file the way `berth -f FILE` run from its directory would.
pub fn load_file(file: &Path) -> Result<LoadedProject, LoadError> {
    let options = LoadOptions {
        files: vec![file.to_path_buf()],
        working_dir: file.parent().unwrap_or(Path::new("/")).to_path_buf(),
        os_env: corpus_env(),
        ..LoadOptions::default()
    };
    load(&options)
}

/// The raw YAML of a file as JSON, the way schema validators see it.
pub fn yaml_to_json(text: &str) -> serde_json::Value {
    let yaml: serde_yaml::Value = serde_yaml::from_str(text).unwrap_or_else(|e| panic!("invalid YAML: {e}\n{text}"));
    to_json(yaml)
}

fn to_json(yaml: serde_yaml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    use serde_yaml::Value as Y;
    match yaml {
        Y::Null => J::Null,
        Y::Bool(b) => J::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                J::from(i)
            } else if let Some(u) = n.as_u64() {
                J::from(u)
            } else {
                n.as_f64().map(J::from).unwrap_or(J::Null)
            }
        }
        Y::String(s) => J::String(s),
        Y::Sequence(items) => J::Array(items.into_iter().map(to_json).collect()),
        Y::Mapping(map) => J::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Y::String(s) => s,
                        other => serde_yaml::to_string(&other).unwrap_or_default().trim_end().to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Y::Tagged(tagged) => to_json(tagged.value),
    }
}

/// Reads a corpus file, panicking with its path on failure.
pub fn read(file: &Path) -> String {
    std::fs::read_to_string(file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()))
}

/// A readable name for a corpus file: `<example>/<file name>`.
pub fn short_name(file: &Path) -> String {
    let parts: Vec<_> = file.iter().rev().take(2).collect();
    format!(
        "{}/{}",
        parts.get(1).map(|p| p.to_string_lossy()).unwrap_or_default(),
        parts.first().map(|p| p.to_string_lossy()).unwrap_or_default()
    )
}
