//! Registry credentials: berth's own file (written by `berth login`) and,
//! read only, docker's `config.json`. Both use docker's format:
//! `{"auths": {"registry.example": {"auth": base64("user:password")}}}`.
//!
//! Credential helpers (`credsStore`, `credHelpers`) and identity tokens are
//! not consulted.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};

use super::RegistryError;
use crate::image::reference::DEFAULT_REGISTRY;
use crate::store::{create_private_dir, write_atomic};

/// The key docker (and so berth) files Docker Hub's credentials under.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Where credentials are read from and written to.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    /// berth's file: read first, and the one login/logout write.
    pub berth_file: PathBuf,
    /// docker's `config.json`, read only.
    pub docker_file: Option<PathBuf>,
}

impl CredentialStore {
    /// `$XDG_CONFIG_HOME/berth/auth.json` (else `~/.config/berth/auth.json`)
    /// and `$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`).
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let home = var("HOME").unwrap_or_else(|| PathBuf::from("/root"));
        let config_home = var("XDG_CONFIG_HOME").unwrap_or_else(|| home.join(".config"));
        let docker_dir = var("DOCKER_CONFIG").unwrap_or_else(|| home.join(".docker"));
        CredentialStore {
            berth_file: config_home.join("berth/auth.json"),
            docker_file: Some(docker_dir.join("config.json")),
        }
    }

    /// The credentials for `registry` (a normalized reference's registry),
    /// berth's file first.
    pub fn get(&self, registry: &str) -> Result<Option<Credentials>, RegistryError> {
        for path in std::iter::once(&self.berth_file).chain(&self.docker_file) {
            if let Some(found) = find(&read(path)?, registry).map_err(|reason| invalid(path, reason))? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Records `credentials` for `registry` in berth's file (mode 0600).
    pub fn store(&self, registry: &str, credentials: &Credentials) -> Result<(), RegistryError> {
        let mut document = read(&self.berth_file)?;
        let auth = BASE64.encode(format!("{}:{}", credentials.username, credentials.password));
        if !document.is_object() {
            document = json!({});
        }
        let auths = document
            .as_object_mut()
            .map(|o| o.entry("auths").or_insert_with(|| json!({})))
            .filter(|a| a.is_object());
        let Some(Value::Object(auths)) = auths else {
            return Err(invalid(&self.berth_file, "\"auths\" is not an object".into()));
        };
        auths.retain(|key, _| !same_registry(key, registry));
        auths.insert(key_for(registry), json!({ "auth": auth }));
        self.write(&document)
    }

    /// Forgets `registry`'s credentials in berth's file; whether there were any.
    pub fn erase(&self, registry: &str) -> Result<bool, RegistryError> {
        let mut document = read(&self.berth_file)?;
        let Some(Value::Object(auths)) = document.get_mut("auths") else {
            return Ok(false);
        };
        let before = auths.len();
        auths.retain(|key, _| !same_registry(key, registry));
        if auths.len() == before {
            return Ok(false);
        }
        self.write(&document)?;
        Ok(true)
    }

    fn write(&self, document: &Value) -> Result<(), RegistryError> {
        let path = &self.berth_file;
        if let Some(dir) = path.parent() {
            create_private_dir(dir).map_err(RegistryError::file("cannot create", dir))?;
        }
        let mut bytes = serde_json::to_vec_pretty(document).map_err(|e| invalid(path, e.to_string()))?;
        bytes.push(b'\n');
        // write_atomic creates the file 0600 and renames it into place, so
        // the secret is never readable by others, not even briefly.
        write_atomic(path, &bytes).map_err(RegistryError::file("cannot write", path))
    }
}

fn invalid(path: &Path, reason: String) -> RegistryError {
    RegistryError::InvalidFile {
        what: "credentials file",
        path: path.to_path_buf(),
        reason,
    }
}

fn read(path: &Path) -> Result<Value, RegistryError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| invalid(path, e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Value::Null),
        Err(e) => Err(RegistryError::file("cannot read", path)(e)),
    }
}

/// The key to file `registry`'s credentials under, as docker does.
pub fn key_for(registry: &str) -> String {
    if canonical(registry) == DEFAULT_REGISTRY {
        DOCKER_HUB_KEY.to_string()
    } else {
        registry.to_string()
    }
}

/// The registry a user names (`https://index.docker.io/v1/`,
/// `127.0.0.1:5000`, `docker.io`) as references name it.
pub fn normalize_registry(text: &str) -> String {
    canonical(text.trim()).to_string()
}

/// A key's registry: no scheme, no path, Docker Hub's aliases folded.
fn canonical(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = rest.split('/').next().unwrap_or(rest);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => DEFAULT_REGISTRY,
        other => other,
    }
}

fn same_registry(key: &str, registry: &str) -> bool {
    canonical(key) == canonical(registry)
}

fn find(document: &Value, registry: &str) -> Result<Option<Credentials>, String> {
    let Some(auths) = document.get("auths").and_then(Value::as_object) else {
        return Ok(None);
    };
    let Some((key, entry)) = auths.iter().find(|(key, _)| same_registry(key, registry)) else {
        return Ok(None);
    };
    let text = |name: &str| entry.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
    if let Some(auth) = text("auth") {
        let decoded = BASE64
            .decode(auth.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| format!("the \"auth\" of {key:?} is not base64 of user:password"))?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| format!("the \"auth\" of {key:?} has no ':' between user and password"))?;
        return Ok(Some(Credentials {
            username: username.to_string(),
            password: password.to_string(),
        }));
    }
    Ok(text("username").zip(text("password")).map(|(u, p)| Credentials {
        username: u.to_string(),
        password: p.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn store_in(dir: &Path) -> CredentialStore {
        CredentialStore {
            berth_file: dir.join("berth/auth.json"),
            docker_file: Some(dir.join("docker/config.json")),
        }
    }

    #[test]
    fn reads_docker_config_auths() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        std::fs::create_dir_all(dir.path().join("docker")).unwrap();
        let config = json!({"auths": {
            DOCKER_HUB_KEY: {"auth": BASE64.encode("hub:pa:ss")},
            "https://ghcr.io": {"username": "gh", "password": "tok"},
            "bad.example": {"auth": "!!"},
        }});
        std::fs::write(store.docker_file.as_ref().unwrap(), config.to_string()).unwrap();
        let hub = store.get("docker.io").unwrap().unwrap();
        assert_eq!((hub.username.as_str(), hub.password.as_str()), ("hub", "pa:ss"));
        assert_eq!(store.get("ghcr.io").unwrap().unwrap().username, "gh");
        assert_eq!(store.get("quay.io").unwrap(), None);
        let err = store.get("bad.example").unwrap_err().to_string();
        assert!(err.contains("not base64"), "{err}");
        assert!(!format!("{hub:?}").contains("pa:ss"), "Debug never shows the password");
    }

    #[test]
    fn login_writes_a_private_file_that_wins_and_logout_erases() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        let creds = Credentials {
            username: "u".into(),
            password: "p".into(),
        };
        store.store("127.0.0.1:5000", &creds).unwrap();
        store.store("docker.io", &creds).unwrap();
        let mode = std::fs::metadata(&store.berth_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let written: Value = serde_json::from_slice(&std::fs::read(&store.berth_file).unwrap()).unwrap();
        assert!(written["auths"][DOCKER_HUB_KEY]["auth"].is_string(), "{written}");
        assert_eq!(store.get("127.0.0.1:5000").unwrap(), Some(creds.clone()));
        assert!(store.erase("127.0.0.1:5000").unwrap());
        assert!(!store.erase("127.0.0.1:5000").unwrap());
        assert_eq!(store.get("127.0.0.1:5000").unwrap(), None);
        assert_eq!(store.get("docker.io").unwrap(), Some(creds));
        assert_eq!(normalize_registry("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_registry("http://127.0.0.1:5000/"), "127.0.0.1:5000");
    }
}
