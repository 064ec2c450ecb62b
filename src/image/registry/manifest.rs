//! What a registry's manifest endpoint returns, and which image of an
//! index to pull: pure functions over bytes and data, no I/O.

use std::fmt;

use serde::Deserialize;

use super::RegistryError;
use crate::image::digest::Digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1";

/// The `Accept` header of a manifest request: every kind we can pull.
pub fn accept_header() -> String {
    [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST].join(", ")
}

/// An OS/architecture/variant triple, in GOOS/GOARCH terms.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// The host's platform (with the variant docker assumes for it).
    pub fn host() -> Self {
        let architecture = crate::image::import::host_arch().to_string();
        let variant = default_variant(&architecture).map(str::to_string);
        Platform {
            os: "linux".into(),
            architecture,
            variant,
        }
    }

    /// Parses `os/arch[/variant]` (`linux/arm64/v8`), normalizing aliases
    /// (`x86_64` → `amd64`, `aarch64` → `arm64`).
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        let invalid = || RegistryError::InvalidPlatform {
            platform: text.to_string(),
        };
        let mut parts = text.split('/');
        let (os, arch) = (parts.next().ok_or_else(invalid)?, parts.next().ok_or_else(invalid)?);
        let variant = parts.next();
        let valid = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if parts.next().is_some() || !valid(os) || !valid(arch) || variant.is_some_and(|v| !valid(v)) {
            return Err(invalid());
        }
        let (architecture, implied) = match arch.to_ascii_lowercase().as_str() {
            "x86_64" | "x86-64" => ("amd64".to_string(), None),
            "aarch64" => ("arm64".to_string(), None),
            "armhf" => ("arm".to_string(), Some("v7")),
            "armel" => ("arm".to_string(), Some("v6")),
            "i386" => ("386".to_string(), None),
            other => (other.to_string(), None),
        };
        Ok(Platform {
            os: os.to_ascii_lowercase(),
            architecture,
            variant: variant.or(implied).map(str::to_ascii_lowercase),
        })
    }

    /// Whether an image for `self` (as a descriptor or config states it)
    /// runs where `wanted` is asked for. An unstated variant matches the
    /// architecture's default one.
    pub fn satisfies(&self, wanted: &Platform) -> bool {
        if self.os != wanted.os || self.architecture != wanted.architecture {
            return false;
        }
        let normal = |p: &Platform| {
            p.variant
                .clone()
                .or_else(|| default_variant(&p.architecture).map(String::from))
        };
        match &wanted.variant {
            None => true,
            Some(_) => normal(self) == normal(wanted),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

fn default_variant(architecture: &str) -> Option<&'static str> {
    match architecture {
        "arm64" => Some("v8"),
        "arm" => Some("v7"),
        _ => None,
    }
}

/// A content descriptor, as manifests and indexes carry them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

/// A parsed manifest response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    /// An OCI index or docker manifest list: one image per platform.
    Index(Vec<Descriptor>),
    /// One image: its config and layers, lowest first.
    Image {
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
}

/// Parses a manifest by its content type (the header, else its own
/// `mediaType`, else its shape).
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Manifest, RegistryError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Raw {
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        schema_version: Option<u32>,
        #[serde(default)]
        manifests: Option<Vec<Descriptor>>,
        #[serde(default)]
        config: Option<Descriptor>,
        #[serde(default)]
        layers: Option<Vec<Descriptor>>,
    }
    let raw: Raw = serde_json::from_slice(bytes).map_err(|source| RegistryError::InvalidManifest {
        reason: source.to_string(),
    })?;
    let header = content_type
        .map(|t| t.split(';').next().unwrap_or(t).trim())
        .filter(|t| !t.is_empty() && *t != "application/json" && *t != "text/plain");
    let media_type = header.map(str::to_string).or(raw.media_type);
    if raw.schema_version == Some(1) || media_type.as_deref().is_some_and(|t| t.starts_with(DOCKER_SCHEMA1)) {
        return Err(RegistryError::UnsupportedManifest {
            media_type: media_type.unwrap_or_else(|| "schema 1".into()),
        });
    }
    match (media_type.as_deref(), raw.manifests, raw.config) {
        (Some(OCI_INDEX | DOCKER_LIST) | None, Some(manifests), None) => Ok(Manifest::Index(manifests)),
        (Some(OCI_MANIFEST | DOCKER_MANIFEST) | None, None, Some(config)) => Ok(Manifest::Image {
            config,
            layers: raw.layers.unwrap_or_default(),
        }),
        (Some(other), _, _) if ![OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST].contains(&other) => {
            Err(RegistryError::UnsupportedManifest {
                media_type: other.to_string(),
            })
        }
        _ => Err(RegistryError::InvalidManifest {
            reason: "neither an image manifest (config, layers) nor an index (manifests)".into(),
        }),
    }
}

/// Chooses the image for `wanted` from an index: an exact variant match
/// first, then one without a stated variant that still satisfies it.
/// Attestation manifests (platform `unknown/unknown`) never match.
pub fn select<'a>(entries: &'a [Descriptor], wanted: &Platform) -> Result<&'a Descriptor, RegistryError> {
    let images = || {
        entries
            .iter()
            .filter(|d| matches!(d.media_type.as_str(), OCI_MANIFEST | DOCKER_MANIFEST | ""))
    };
    let exact = images().find(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.satisfies(wanted) && (wanted.variant.is_none() || p.variant == wanted.variant))
    });
    let loose = || images().find(|d| d.platform.as_ref().is_some_and(|p| p.satisfies(wanted)));
    exact.or_else(loose).ok_or_else(|| {
        let available: Vec<String> = entries
            .iter()
            .filter_map(|d| d.platform.as_ref())
            .filter(|p| p.os != "unknown")
            .map(ToString::to_string)
            .collect();
        RegistryError::NoMatchingPlatform {
            wanted: wanted.to_string(),
            available: if available.is_empty() {
                "none".into()
            } else {
                available.join(", ")
            },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn descriptor(platform: &str, media_type: &str) -> serde_json::Value {
        let mut parts = platform.split('/');
        let mut p = json!({"os": parts.next(), "architecture": parts.next()});
        if let Some(v) = parts.next() {
            p["variant"] = json!(v);
        }
        json!({"mediaType": media_type, "digest": Digest::of(platform.as_bytes()), "size": 1, "platform": p})
    }

    fn index(platforms: &[&str]) -> Vec<Descriptor> {
        let manifests: Vec<_> = platforms.iter().map(|p| descriptor(p, OCI_MANIFEST)).collect();
        let bytes = serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": manifests})).unwrap();
        match parse(&bytes, Some(OCI_INDEX)).unwrap() {
            Manifest::Index(entries) => entries,
            other => panic!("{other:?}"),
        }
    }

    fn pick(platforms: &[&str], wanted: &str) -> Result<String, RegistryError> {
        let entries = index(platforms);
        let chosen = select(&entries, &Platform::parse(wanted).unwrap())?;
        Ok(chosen.platform.clone().unwrap().to_string())
    }

    #[test]
    fn platforms_parse_and_normalize() {
        assert_eq!(Platform::parse("linux/x86_64").unwrap().to_string(), "linux/amd64");
        assert_eq!(Platform::parse("linux/aarch64").unwrap().to_string(), "linux/arm64");
        assert_eq!(Platform::parse("linux/arm/v6").unwrap().to_string(), "linux/arm/v6");
        assert_eq!(Platform::parse("linux/armhf").unwrap().to_string(), "linux/arm/v7");
        for bad in ["", "linux", "linux/", "linux/amd64/v1/x", "linux/am d64", "/amd64"] {
            assert!(Platform::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Platform::host().os, "linux");
    }

    #[test]
    fn selects_by_os_arch_and_variant() {
        let all = [
            "linux/amd64",
            "linux/arm64/v8",
            "linux/arm/v6",
            "linux/arm/v7",
            "windows/amd64",
        ];
        assert_eq!(pick(&all, "linux/amd64").unwrap(), "linux/amd64");
        assert_eq!(pick(&all, "linux/arm64").unwrap(), "linux/arm64/v8");
        assert_eq!(pick(&all, "linux/arm64/v8").unwrap(), "linux/arm64/v8");
        assert_eq!(pick(&all, "linux/arm/v6").unwrap(), "linux/arm/v6");
        assert_eq!(
            pick(&all, "linux/arm").unwrap(),
            "linux/arm/v6",
            "first arm when no variant is asked"
        );
        assert_eq!(pick(&all, "windows/amd64").unwrap(), "windows/amd64");
        // An index entry without a variant serves the default one.
        assert_eq!(pick(&["linux/arm64"], "linux/arm64/v8").unwrap(), "linux/arm64");
        assert_eq!(pick(&["linux/arm"], "linux/arm/v7").unwrap(), "linux/arm");
        assert!(pick(&["linux/arm"], "linux/arm/v6").is_err());
    }

    #[test]
    fn another_platform_only_is_a_clear_error() {
        let err = pick(&["linux/amd64", "unknown/unknown"], "linux/arm64").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("linux/arm64") && text.contains("available: linux/amd64"),
            "{text}"
        );
        assert!(!text.contains("unknown"), "attestations are not platforms: {text}");
    }

    #[test]
    fn attestation_manifests_are_skipped() {
        let mut entries = index(&["linux/amd64"]);
        let mut attestation = entries[0].clone();
        attestation.media_type = "application/vnd.in-toto+json".into();
        entries.insert(0, attestation);
        let chosen = select(&entries, &Platform::parse("linux/amd64").unwrap()).unwrap();
        assert_eq!(chosen.media_type, OCI_MANIFEST);
    }

    #[test]
    fn parses_images_indexes_and_refuses_the_rest() {
        let config = json!({"mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": Digest::of(b"c"), "size": 1});
        let layer = json!({"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "digest": Digest::of(b"l"), "size": 2});
        let image = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
            "config": config, "layers": [layer]}))
        .unwrap();
        // The body's mediaType is enough without a header, and the
        // header wins over a generic one.
        for content_type in [None, Some("application/json"), Some(DOCKER_MANIFEST)] {
            match parse(&image, content_type).unwrap() {
                Manifest::Image { config, layers } => {
                    assert_eq!(config.digest, Digest::of(b"c"));
                    assert_eq!(layers.len(), 1);
                    assert_eq!(layers[0].size, 2);
                }
                other => panic!("{other:?}"),
            }
        }
        let schema1 = br#"{"schemaVersion": 1, "name": "x", "fsLayers": []}"#;
        assert!(matches!(
            parse(schema1, None),
            Err(RegistryError::UnsupportedManifest { .. })
        ));
        assert!(matches!(
            parse(&image, Some("application/vnd.example+json")),
            Err(RegistryError::UnsupportedManifest { .. })
        ));
        assert!(matches!(
            parse(b"not json", None),
            Err(RegistryError::InvalidManifest { .. })
        ));
        assert!(matches!(parse(b"{}", None), Err(RegistryError::InvalidManifest { .. })));
    }
}
