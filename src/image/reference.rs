//! Image references: `[registry/]repository[:tag][@sha256:…]`, normalized
//! the way docker does (`busybox` → `docker.io/library/busybox:latest`).

use std::fmt;

use super::digest::{is_sha256_hex, Digest};
use super::ImageError;

pub const DEFAULT_REGISTRY: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";

/// A parsed, normalized reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `docker.io`, `ghcr.io`, `localhost:5000`.
    pub registry: String,
    /// `library/busybox`, `org/app`.
    pub repository: String,
    /// `latest` when neither a tag nor a digest was given.
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalizes `text`.
    pub fn parse(text: &str) -> Result<Self, ImageError> {
        let invalid = |reason: String| ImageError::InvalidReference {
            reference: text.to_string(),
            reason,
        };
        if text.is_empty() {
            return Err(invalid("empty reference".into()));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (rest, Some(Digest::parse(digest).map_err(|e| invalid(e.to_string()))?)),
            None => (text, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(invalid)?;
        }
        let (registry, remainder) = match name.split_once('/') {
            Some((first, remainder)) if first.contains('.') || first.contains(':') || first == "localhost" => {
                (first.to_string(), remainder)
            }
            _ => (DEFAULT_REGISTRY.to_string(), name),
        };
        let registry = if registry == "index.docker.io" {
            DEFAULT_REGISTRY.to_string()
        } else {
            registry
        };
        check_registry(&registry).map_err(invalid)?;
        if is_sha256_hex(remainder) {
            return Err(invalid(
                "a repository name cannot be a 64-digit hex string (use an image id instead)".into(),
            ));
        }
        check_repository(remainder).map_err(invalid)?;
        let repository = if registry == DEFAULT_REGISTRY && !remainder.contains('/') {
            format!("library/{remainder}")
        } else {
            remainder.to_string()
        };
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_string()),
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// `docker.io/library/busybox:latest`, the key of the reference index;
    /// `None` for a digest-only reference.
    pub fn tagged(&self) -> Option<String> {
        self.tag.as_ref().map(|tag| format!("{}:{tag}", self.name()))
    }

    /// The short form docker prints: `busybox`, `org/app`, `ghcr.io/x/y`.
    pub fn familiar_name(&self) -> String {
        familiar(&self.name())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Strips the default registry and `library/` from a normalized name.
pub fn familiar(name: &str) -> String {
    let short = name
        .strip_prefix("docker.io/")
        .map(|rest| rest.strip_prefix("library/").unwrap_or(rest))
        .unwrap_or(name);
    short.to_string()
}

/// Splits a normalized `name:tag` key into name and tag.
pub fn split_tagged(key: &str) -> (&str, &str) {
    let last_slash = key.rfind('/').map_or(0, |i| i + 1);
    match key[last_slash..].rfind(':') {
        Some(i) => (&key[..last_slash + i], &key[last_slash + i + 1..]),
        None => (key, ""),
    }
}

fn check_tag(tag: &str) -> Result<(), String> {
    let mut bytes = tag.bytes();
    let valid = tag.len() <= 128
        && bytes.next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid tag {tag:?}: use letters, digits, '_', '.' and '-' (not first), at most 128"
        ))
    }
}

fn check_registry(registry: &str) -> Result<(), String> {
    let (host, port) = match registry.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry, None),
    };
    let host_ok = !host.is_empty()
        && host
            .split('.')
            .all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(format!("invalid registry host {registry:?}"))
    }
}

/// Path components: lowercase alphanumerics separated by `.`, `_`, `__` or
/// runs of `-`.
fn check_repository(repository: &str) -> Result<(), String> {
    if repository.is_empty() {
        return Err("empty repository name".into());
    }
    for component in repository.split('/') {
        if !valid_component(component) {
            return Err(format!(
                "invalid repository name component {component:?}: use lowercase letters, \
                 digits and single separators ('.', '_', '__', '-')"
            ));
        }
    }
    if repository.len() > 255 {
        return Err("repository name longer than 255 characters".into());
    }
    Ok(())
}

fn valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-')) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(text: &str) -> String {
        Reference::parse(text).unwrap().to_string()
    }

    #[test]
    fn normalizes_like_docker() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("org/app"), "docker.io/org/app:latest");
        assert_eq!(norm("index.docker.io/library/x:y"), "docker.io/library/x:y");
        assert_eq!(norm("ghcr.io/a/b:c"), "ghcr.io/a/b:c");
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(norm("localhost:5000/app:v1"), "localhost:5000/app:v1");
        assert_eq!(norm("my-reg.example:5000/a/b/c"), "my-reg.example:5000/a/b/c:latest");
        let hex = "a".repeat(64);
        assert_eq!(
            norm(&format!("busybox@sha256:{hex}")),
            format!("docker.io/library/busybox@sha256:{hex}")
        );
        assert_eq!(
            norm(&format!("busybox:1@sha256:{hex}")),
            format!("docker.io/library/busybox:1@sha256:{hex}")
        );
    }

    #[test]
    fn familiar_forms() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.familiar_name(), "busybox");
        assert_eq!(r.tagged().unwrap(), "docker.io/library/busybox:latest");
        assert_eq!(familiar("docker.io/org/app"), "org/app");
        assert_eq!(familiar("ghcr.io/library/x"), "ghcr.io/library/x");
        assert_eq!(split_tagged("localhost:5000/app:v1"), ("localhost:5000/app", "v1"));
    }

    #[test]
    fn refuses_malformed_references() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "busybox:-x",
            "a//b",
            "/abs",
            "app@sha256:zz",
            "app@md5:abcd",
            "-app",
            "app-",
            "a..b",
            "host:port:extra/x",
            &"a".repeat(64),
            "busybox:tag with space",
        ] {
            let err = Reference::parse(bad).unwrap_err();
            assert!(
                matches!(&err, ImageError::InvalidReference { reference, .. } if reference == bad),
                "{bad:?} gave {err:?}"
            );
        }
    }
}
