//! A push: a local image (by name or id) → `registry/repository:tag`.
//!
//! Each blob (the layers, a few at a time, then the config) is checked with
//! a HEAD and skipped when the registry has it; otherwise it is mounted
//! from another repository of the same registry the image was pulled from
//! or pushed to (the registry answers with an upload session instead when
//! it cannot), else uploaded: POST for an upload session, then one PUT of
//! the whole blob with its digest (monolithic upload). The manifest goes
//! last, byte for byte as the store holds it, so its digest — the one
//! `image inspect` shows and a pull by digest names — is the same on the
//! registry.
//!
//! The store keeps every layer blob as it was shipped or built (gzip for
//! builds and pulls of gzip images, plain tar for imports and uncompressed
//! layers) next to its unpacked snapshot, so blobs are pushed as they are:
//! nothing is recompressed and no digest changes.

use std::fmt;
use std::sync::atomic::Ordering;

use reqwest::blocking::Client;

use super::client::{http_client, RetryPolicy, Session};
use super::config::EngineConfig;
use super::credentials::CredentialStore;
use super::manifest::{self, Descriptor, Manifest, DOCKER_MANIFEST, OCI_MANIFEST};
use super::progress::Progress;
use super::upload::{Counts, Upload};
use super::RegistryError;
use crate::image::digest::Digest;
use crate::image::index::Index;
use crate::image::reference::{Reference, DEFAULT_TAG};
use crate::image::{ImageError, ImageStore};
use crate::store::Root;

/// docker's config media type: a manifest without `mediaType` that names
/// it is a docker schema 2 manifest.
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushOutcome {
    /// Where it went (`registry/repository:tag`).
    pub reference: Reference,
    /// The manifest digest, the same locally and on the registry.
    pub manifest: Digest,
    /// The manifest's size in bytes.
    pub size: u64,
    /// Blobs uploaded.
    pub uploaded: u64,
    /// Blobs mounted from another repository of the registry.
    pub mounted: u64,
    /// Blobs the repository had already.
    pub existing: u64,
}

/// The step of a push that failed, for its error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushStep {
    Connect,
    ReadBlob(Digest),
    CheckBlob(Digest),
    MountBlob(Digest),
    UploadBlob(Digest),
    PutManifest(String),
}

impl fmt::Display for PushStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushStep::Connect => write!(f, "connecting"),
            PushStep::ReadBlob(d) => write!(f, "reading local blob {d}"),
            PushStep::CheckBlob(d) => write!(f, "checking for blob {d}"),
            PushStep::MountBlob(d) => write!(f, "mounting blob {d}"),
            PushStep::UploadBlob(d) => write!(f, "uploading blob {d}"),
            PushStep::PutManifest(tag) => write!(f, "putting the manifest as tag {tag}"),
        }
    }
}

/// Everything a push can fail with. Messages do not repeat their source:
/// print the chain.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("invalid push target {target:?}")]
    Target {
        target: String,
        #[source]
        source: ImageError,
    },
    #[error("cannot push to {target}: a push names a tag, not a digest")]
    DigestTarget { target: String },
    #[error("cannot push {image}: not in the local store")]
    Local {
        image: String,
        #[source]
        source: ImageError,
    },
    #[error("cannot push {image} to {registry}/{repository}: {step} failed")]
    Step {
        image: String,
        registry: String,
        repository: String,
        step: PushStep,
        #[source]
        source: Box<RegistryError>,
    },
}

/// Pushes images of one engine root.
pub struct Pusher {
    store: ImageStore,
    config: EngineConfig,
    credentials: CredentialStore,
    http: Client,
    retry: RetryPolicy,
}

impl Pusher {
    /// With the engine config of `root` and the user's credential files.
    pub fn new(root: &Root) -> Result<Self, RegistryError> {
        Self::with_credentials(root, CredentialStore::from_env())
    }

    pub fn with_credentials(root: &Root, credentials: CredentialStore) -> Result<Self, RegistryError> {
        Ok(Pusher {
            store: ImageStore::open(root)?,
            config: EngineConfig::load(root)?,
            credentials,
            http: http_client()?,
            retry: RetryPolicy::default(),
        })
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Pushes the stored image `source` (a name or an id) as `target`
    /// (`[registry/]repository[:tag]`, docker's defaults).
    pub fn push(&self, source: &str, target: &str, progress: &Progress) -> Result<PushOutcome, PushError> {
        let reference = Reference::parse(target).map_err(|source| PushError::Target {
            target: target.to_string(),
            source,
        })?;
        if reference.digest.is_some() {
            return Err(PushError::DigestTarget {
                target: target.to_string(),
            });
        }
        let local = |error: ImageError| PushError::Local {
            image: source.to_string(),
            source: error,
        };
        let index = Index::load(&self.store.root).map_err(local)?;
        let (manifest_digest, _) = self.store.lookup(&index, source).map_err(local)?;
        let bytes = self.store.blobs.read_blob(&manifest_digest).map_err(local)?;
        let Ok(Manifest::Image { config, layers }) = manifest::parse(&bytes, None) else {
            return Err(local(ImageError::InvalidImage {
                image: manifest_digest.to_string(),
                reason: "its stored manifest is not an image manifest".into(),
            }));
        };
        let mount_from = mount_source(&index.names_of(&manifest_digest), &reference);
        let image = LocalImage {
            manifest: manifest_digest,
            media_type: media_type(&bytes, &config),
            bytes,
            config,
            layers,
            mount_from,
        };

        let step_error = |step: PushStep| {
            let reference = &reference;
            move |error: RegistryError| PushError::Step {
                image: source.to_string(),
                registry: reference.registry.clone(),
                repository: reference.repository.clone(),
                step,
                source: Box::new(error),
            }
        };
        // Pushes go to the registry itself, never to a mirror.
        let endpoint = self
            .config
            .endpoints(&reference.registry)
            .pop()
            .ok_or_else(|| RegistryError::InvalidAddress {
                address: reference.registry.clone(),
                reason: "no endpoint to push to".into(),
            })
            .map_err(step_error(PushStep::Connect))?;
        let credentials = self
            .credentials
            .get(&reference.registry)
            .map_err(step_error(PushStep::Connect))?;
        let session = Session::connect(&self.http, &reference.registry, &endpoint, credentials, &self.retry)
            .map_err(step_error(PushStep::Connect))?;

        progress.line(&format!("The push refers to repository [{}]", reference.name()));
        let counts = Counts::default();
        let upload = Upload {
            session: &session,
            store: &self.store,
            repository: &reference.repository,
            mount_from: image.mount_from.as_deref(),
            progress,
            counts: &counts,
        };
        upload
            .send_all(&image.layers)
            .map_err(|(step, error)| step_error(step)(error))?;
        upload
            .send(&image.config, false)
            .map_err(|(step, error)| step_error(step)(error))?;
        let tag = reference.tag.clone().unwrap_or_else(|| DEFAULT_TAG.to_string());
        upload
            .put_manifest(&tag, &image.manifest, &image.media_type, &image.bytes)
            .map_err(step_error(PushStep::PutManifest(tag.clone())))?;

        let size = image.bytes.len() as u64;
        progress.line(&format!("{tag}: digest: {} size: {size}", image.manifest));
        progress.result(&reference.to_string());
        Ok(PushOutcome {
            reference: reference.clone(),
            manifest: image.manifest,
            size,
            uploaded: counts.uploaded.load(Ordering::Relaxed),
            mounted: counts.mounted.load(Ordering::Relaxed),
            existing: counts.existing.load(Ordering::Relaxed),
        })
    }
}

/// The stored image being pushed.
struct LocalImage {
    manifest: Digest,
    bytes: Vec<u8>,
    media_type: String,
    config: Descriptor,
    layers: Vec<Descriptor>,
    /// A repository of the target registry that has the image already.
    mount_from: Option<String>,
}

/// The manifest's own `mediaType`, else what its config implies (a
/// manifest must be PUT with its type: registries check it).
fn media_type(bytes: &[u8], config: &Descriptor) -> String {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Typed {
        #[serde(default)]
        media_type: Option<String>,
    }
    let declared = serde_json::from_slice::<Typed>(bytes).ok().and_then(|t| t.media_type);
    declared.filter(|t| !t.is_empty()).unwrap_or_else(|| {
        match config.media_type == DOCKER_CONFIG {
            true => DOCKER_MANIFEST,
            false => OCI_MANIFEST,
        }
        .to_string()
    })
}

/// Another repository of the target's registry that the image is known
/// by (pulled from or pushed to), to mount blobs from.
fn mount_source(names: &[String], target: &Reference) -> Option<String> {
    names
        .iter()
        .filter_map(|name| Reference::parse(name).ok())
        .find(|r| r.registry == target.registry && r.repository != target.repository)
        .map(|r| r.repository)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_put_with_their_own_type() {
        let config = |media_type: &str| Descriptor {
            media_type: media_type.into(),
            digest: Digest::of(b"c"),
            size: 1,
            platform: None,
        };
        let typed = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#;
        assert_eq!(media_type(typed, &config(OCI_MANIFEST)), DOCKER_MANIFEST);
        let untyped = br#"{"schemaVersion":2}"#;
        assert_eq!(media_type(untyped, &config(DOCKER_CONFIG)), DOCKER_MANIFEST);
        assert_eq!(
            media_type(untyped, &config("application/vnd.oci.image.config.v1+json")),
            OCI_MANIFEST
        );
    }

    #[test]
    fn mounts_come_from_another_repository_of_the_same_registry() {
        let target = Reference::parse("r.example:5000/team/app:v2").unwrap();
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            mount_source(
                &names(&["docker.io/library/busybox:latest", "r.example:5000/base/busybox:1"]),
                &target
            ),
            Some("base/busybox".to_string())
        );
        assert_eq!(mount_source(&names(&["r.example:5000/team/app:v1"]), &target), None);
        assert_eq!(mount_source(&names(&["other:5000/base/x:1"]), &target), None);
    }

    #[test]
    fn errors_name_the_registry_repository_and_step() {
        let error = PushError::Step {
            image: "app:v1".into(),
            registry: "r.example:5000".into(),
            repository: "team/app".into(),
            step: PushStep::UploadBlob(Digest::of(b"l")),
            source: Box::new(RegistryError::AuthenticationRequired {
                registry: "r.example:5000".into(),
                detail: String::new(),
            }),
        };
        let text = error.to_string();
        assert!(text.contains("r.example:5000/team/app"), "{text}");
        assert!(text.contains("uploading blob sha256:"), "{text}");
    }
}
